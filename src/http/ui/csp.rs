//! The Content-Security-Policy of an HTML page: its inline scripts are
//! allowed by their SHA-256 hashes, computed from the page as served (a
//! page that changes gets new hashes; nothing is hard-coded), everything
//! else comes from the gateway's own origin.

use data_encoding::BASE64;
use sha2::{Digest, Sha256};

/// `'sha256-…'` for each inline `<script>` (one without `src`), in order.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = lower[at..].find("<script").map(|i| i + at) {
        let Some(tag_end) = lower[open..].find('>').map(|i| i + open) else {
            break;
        };
        let Some(close) = lower[tag_end..].find("</script").map(|i| i + tag_end) else {
            break;
        };
        let tag = &lower[open..tag_end];
        if !has_src(tag) {
            let body = &html[tag_end + 1..close];
            out.push(format!(
                "'sha256-{}'",
                BASE64.encode(&Sha256::digest(body.as_bytes()))
            ));
        }
        at = close + "</script".len();
    }
    out
}

/// Whether a lowercased `<script …` tag has a `src` attribute.
fn has_src(tag: &str) -> bool {
    tag.split(|c: char| c.is_ascii_whitespace())
        .any(|attr| attr == "src" || attr.starts_with("src="))
}

/// The policy for the built-in page: its own scripts by hash, styles
/// inline, connections only back to the gateway.
pub fn builtin_policy(hashes: &[String]) -> String {
    format!(
        "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; \
         form-action 'none'; script-src 'self' {}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'",
        hashes.join(" ")
    )
}

/// The policy for the stock Control UI: the reference's, less its
/// third-party hosts (fonts, and the two `connect-src` services only
/// cosmetic features use) and less `'wasm-unsafe-eval'` (the terminal,
/// which clawgate does not offer). Pages list their inline scripts'
/// hashes; every other response gets it with none.
pub fn stock_policy(hashes: &[String]) -> String {
    let mut script = String::from("'self'");
    for h in hashes {
        script.push(' ');
        script.push_str(h);
    }
    format!(
        "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; \
         frame-src 'self' http: https:; script-src {script}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; \
         media-src 'self' data: blob:; font-src 'self'; worker-src 'self'; \
         connect-src 'self' ws: wss: data:"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inline_scripts_are_hashed_from_their_exact_text() {
        let html = "<html><script type=\"module\" src=\"/a.js\"></script>\
                    <SCRIPT>let a = 1;</SCRIPT><script data-x>x()</script></html>";
        let h = inline_script_hashes(html);
        assert_eq!(h.len(), 2, "{h:?}");
        let want = BASE64.encode(&Sha256::digest(b"let a = 1;"));
        assert_eq!(h[0], format!("'sha256-{want}'"));
        assert!(inline_script_hashes("<script>unterminated").is_empty());
        assert!(builtin_policy(&h).contains(&h[1]));
    }

    #[test]
    fn the_stock_policy_lists_hashes_and_no_third_party_hosts() {
        let p = stock_policy(&["'sha256-abc'".into()]);
        assert!(p.contains("script-src 'self' 'sha256-abc';"), "{p}");
        assert!(p.contains("connect-src 'self' ws: wss: data:"), "{p}");
        assert!(
            !p.contains("wasm-unsafe-eval") && !p.contains("https://"),
            "{p}"
        );
        assert!(stock_policy(&[]).contains("script-src 'self';"));
    }
}
