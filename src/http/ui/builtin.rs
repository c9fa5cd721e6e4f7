//! The built-in control page: one HTML file with its script and styles
//! inline, compiled into the binary, for hosts without the stock Control
//! UI. Its script is allowed by hash in the page's CSP.

use std::sync::OnceLock;

use super::super::request::Request;
use super::super::response::Reply;
use super::csp;

/// The page, as compiled in.
pub const PAGE: &str = include_str!("builtin.html");

/// The page's CSP, computed once from the page itself.
fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| csp::builtin_policy(&csp::inline_script_hashes(PAGE)))
}

/// `/` (and `/index.html`) under the base path; nothing else.
pub fn handle(req: &Request, rest: &str) -> Option<Reply> {
    if rest != "/" && !rest.is_empty() && rest != "/index.html" {
        return None;
    }
    if !req.is_get() {
        return Some(Reply::not_allowed("GET, HEAD"));
    }
    if rest.is_empty() {
        // `/base` → `/base/`, so relative URLs and the socket path agree.
        let to = format!("{}/", req.head.path());
        return Some(
            Reply::bytes(308, "text/plain; charset=utf-8", Vec::new()).with("Location", to),
        );
    }
    Some(
        Reply::bytes(200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec())
            .with("Cache-Control", "no-cache")
            .with("Content-Security-Policy", policy())
            .with("X-Frame-Options", "DENY")
            .with(
                "Permissions-Policy",
                "camera=(), microphone=(), geolocation=()",
            ),
    )
}
