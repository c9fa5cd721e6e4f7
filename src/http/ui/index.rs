//! The stock UI's `index.html` as served: stamped, as the reference
//! does, with the mount prefix (`data-openclaw-control-ui-base-path`) and
//! the terminal switch on `<html>`, its asset links made absolute so deep
//! client routes (`/chat/main`) load them from the mount, and its CSP
//! computed from the inline scripts of that served text.
//!
//! The result is kept for the file's (path, mtime, length) and the base
//! path, so a rebuilt UI or a changed mount is picked up on the next
//! request; nothing here is hard-coded to one build. The file is the only
//! one the gateway reads whole, and it is bounded.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::csp;

/// A larger `index.html` is not a UI shell.
const MAX_INDEX_BYTES: u64 = 1024 * 1024;

pub const BASE_PATH_ATTRIBUTE: &str = "data-openclaw-control-ui-base-path";
pub const TERMINAL_ATTRIBUTE: &str = "data-openclaw-terminal-enabled";
pub const BUILD_ID_ATTRIBUTE: &str = "data-openclaw-control-ui-build-id";

/// Files at the root of a UI build that the page links to; all but the
/// service worker are versioned with the build id.
const ROOT_PUBLIC_ASSETS: [&str; 6] = [
    "apple-touch-icon.png",
    "favicon-32.png",
    "favicon.ico",
    "favicon.svg",
    "manifest.webmanifest",
    "sw.js",
];

/// Whether `name` is one of the build's root public files.
pub fn is_root_public_asset(name: &str) -> bool {
    ROOT_PUBLIC_ASSETS.contains(&name)
}

/// The page as served.
#[derive(Debug)]
pub struct Index {
    pub html: Vec<u8>,
    /// The `Content-Security-Policy` with this text's inline script hashes.
    pub csp: String,
    /// The build's id (`<html data-openclaw-control-ui-build-id>`): a
    /// `?v=` with it marks a versioned file as immutable.
    pub build_id: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
struct Key {
    path: PathBuf,
    base: String,
    mtime: Option<SystemTime>,
    len: u64,
}

static CACHE: Mutex<Option<(Key, Arc<Index>)>> = Mutex::new(None);

/// `<root>/index.html` (`root` canonical; the file must resolve inside
/// it) as served under `base`, from the cache while the file is
/// unchanged.
pub fn load(root: &Path, base: &str) -> io::Result<Arc<Index>> {
    let path = root.join("index.html").canonicalize()?;
    if !path.starts_with(root) {
        return Err(io::Error::other("index.html resolves outside the root"));
    }
    let mut file = File::open(&path)?;
    let meta = file.metadata()?;
    let key = Key {
        path,
        base: base.to_string(),
        mtime: meta.modified().ok(),
        len: meta.len(),
    };
    {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, index)) = cache.as_ref() {
            if *k == key {
                return Ok(index.clone());
            }
        }
    }
    if !meta.is_file() || meta.len() > MAX_INDEX_BYTES {
        return Err(io::Error::other("index.html is not a small regular file"));
    }
    let mut text = String::with_capacity(meta.len() as usize);
    file.by_ref()
        .take(MAX_INDEX_BYTES)
        .read_to_string(&mut text)?;
    let index = Arc::new(prepare(&text, base));
    *CACHE.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, index.clone()));
    Ok(index)
}

/// The page stamped for `base`, with its policy and build id.
pub fn prepare(source: &str, base: &str) -> Index {
    let build_id = html_attribute(source, BUILD_ID_ATTRIBUTE);
    let html = rewrite(source, base, build_id.as_deref());
    let csp = csp::stock_policy(&csp::inline_script_hashes(&html));
    Index {
        html: html.into_bytes(),
        csp,
        build_id,
    }
}

/// The reference's rewrite: absolute asset links under the mount, the
/// root files versioned with the build id, and the mount prefix and the
/// terminal switch stamped on `<html>` (first, so they win over any the
/// file carries).
fn rewrite(html: &str, base: &str, build_id: Option<&str>) -> String {
    let b = escape(base);
    let mut out = html
        .replace("src=\"./assets/", &format!("src=\"{b}/assets/"))
        .replace("href=\"./assets/", &format!("href=\"{b}/assets/"));
    for asset in ROOT_PUBLIC_ASSETS {
        let version = match build_id {
            Some(id) if asset != "sw.js" => format!("?v={}", escape(&url_component(id))),
            _ => String::new(),
        };
        let to = format!("href=\"{b}/{asset}{version}\"");
        for from in [
            format!("href=\"./{asset}\""),
            format!("href=\"/{asset}\""),
            format!("href=\"{b}/{asset}\""),
        ] {
            out = out.replace(&from, &to);
        }
    }
    match html_tag(&out) {
        Some(at) => {
            let stamp = format!(" {BASE_PATH_ATTRIBUTE}=\"{b}\" {TERMINAL_ATTRIBUTE}=\"false\"");
            out.insert_str(at + "<html".len(), &stamp);
            out
        }
        None => out,
    }
}

/// Where the `<html` of the root element's start tag begins.
fn html_tag(html: &str) -> Option<usize> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("<html").map(|i| i + from) {
        let next = lower.as_bytes().get(i + 5).copied();
        if next.is_some_and(|c| c == b'>' || c.is_ascii_whitespace()) {
            return Some(i);
        }
        from = i + 5;
    }
    None
}

/// The value of `name="…"` on the `<html>` start tag.
fn html_attribute(html: &str, name: &str) -> Option<String> {
    let start = html_tag(html)?;
    let tag = &html[start..start + html[start..].find('>')?];
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let value = &tag[at..at + tag[at..].find('"')?];
    (!value.is_empty()).then(|| value.to_string())
}

/// Text for an HTML attribute value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `encodeURIComponent`, as the page's own script versions its links.
fn url_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "<!doctype html>\n<html data-openclaw-control-ui-build-id=\"1.2-x\" lang=\"en\">\
        <head><link rel=\"icon\" href=\"./favicon.svg\" /><link rel=\"manifest\" href=\"./manifest.webmanifest\">\
        <script>boot()</script>\
        <script type=\"module\" crossorigin src=\"./assets/index-AbCd1234.js\"></script>\
        <link rel=\"stylesheet\" href=\"./assets/app-ZZZZ9999.css\"></head>\
        <body><script>\n  watch();\n</script></body></html>";

    #[test]
    fn the_page_is_stamped_for_its_mount_and_hashed_as_served() {
        let i = prepare(PAGE, "/openclaw");
        let html = String::from_utf8(i.html.clone()).unwrap();
        assert!(
            html.contains(
                "<html data-openclaw-control-ui-base-path=\"/openclaw\" \
             data-openclaw-terminal-enabled=\"false\" data-openclaw-control-ui-build-id=\"1.2-x\""
            ),
            "{html}"
        );
        assert!(
            html.contains("src=\"/openclaw/assets/index-AbCd1234.js\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/openclaw/assets/app-ZZZZ9999.css\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/openclaw/favicon.svg?v=1.2-x\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/openclaw/manifest.webmanifest?v=1.2-x\""),
            "{html}"
        );
        assert_eq!(i.build_id.as_deref(), Some("1.2-x"));
        let hashes = csp::inline_script_hashes(&html);
        assert_eq!(hashes.len(), 2);
        for h in &hashes {
            assert!(i.csp.contains(h.as_str()), "{}", i.csp);
        }
    }

    #[test]
    fn the_root_mount_gets_an_empty_prefix_and_odd_pages_pass() {
        let html = String::from_utf8(prepare(PAGE, "").html).unwrap();
        assert!(
            html.contains("<html data-openclaw-control-ui-base-path=\"\" "),
            "{html}"
        );
        assert!(html.contains("src=\"/assets/index-AbCd1234.js\""), "{html}");
        let plain = prepare("<HTML><body>hi</body></HTML>", "/a\"b");
        let text = String::from_utf8(plain.html).unwrap();
        assert!(text.starts_with("<HTML data-openclaw-control-ui-base-path=\"/a&quot;b\""));
        assert_eq!(plain.build_id, None);
        assert!(plain.csp.contains("script-src 'self';"));
        assert_eq!(html_tag("<htmlx><html>"), Some(7));
        assert_eq!(url_component("a b/ü"), "a%20b%2F%C3%BC");
    }
}
