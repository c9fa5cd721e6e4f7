//! The Control UI on the gateway's port: the stock build from
//! `gateway.controlUi.root` when one is configured, else the small page
//! compiled into the binary, both under `gateway.controlUi.basePath`,
//! and the stock UI's bootstrap config.
//!
//! Every answer of the stock branch (files, the shell, the config, its
//! 404s and 405s) carries the reference's security headers; the shell's
//! CSP allows its inline scripts by hash. Only GET and HEAD are served.

mod bootstrap;
mod builtin;
mod csp;
mod files;
mod index;
mod negotiate;

use std::path::Path;
use std::sync::OnceLock;

use serde_json::json;

use super::request::Request;
use super::response::Reply;
use crate::state::{Live, Shared};
use files::Target;

const PERMISSIONS: &str = "camera=(self), microphone=*, geolocation=*, clipboard-write=*";

/// The UI's answer to a request under its base path; `None` when the
/// path is not the UI's (or the UI is off), so it ends as 404.
pub(super) fn handle(shared: &Shared, live: &Live, req: &Request) -> Option<Reply> {
    let ui = &live.settings.http.control_ui;
    if !ui.enabled {
        return None;
    }
    let path = req.head.path();
    if bootstrap::owns(path, &ui.base_path) {
        return Some(secure(bootstrap::handle(shared, live, req), None));
    }
    let rest = path.strip_prefix(ui.base_path.as_str())?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    match &ui.root {
        None => builtin::handle(req, rest),
        Some(root) => Some(stock(live, req, root, rest)),
    }
}

/// The stock build's answer for `rest`, the path under the mount.
fn stock(live: &Live, req: &Request, root: &Path, rest: &str) -> Reply {
    if !req.is_get() {
        return secure(method_not_allowed(), None);
    }
    if rest.is_empty() {
        // `/base` → `/base/`, where the shell's links and socket agree.
        let query = req.head.target.split_once('?').map_or("", |(_, q)| q);
        let sep = if query.is_empty() { "" } else { "?" };
        let to = format!("{}/{sep}{query}", req.head.path());
        return secure(
            Reply::bytes(302, "text/plain; charset=utf-8", Vec::new()),
            None,
        )
        .with("Location", to);
    }
    if rest == "/api" || rest.starts_with("/api/") || rest.starts_with("/__openclaw__/") {
        // What the reference answers the UI's own probes (an owner
        // avatar, workspace icons), which the UI tolerates.
        if !is_namespaced_asset(rest) {
            let body = json!({"ok": false, "error": {"type": "not_found"}});
            return secure(Reply::json(404, body), None);
        }
    }
    let base = &live.settings.http.control_ui.base_path;
    match files::resolve(root, rest) {
        Target::Refused(400) => secure(text(400, "Bad Request"), None),
        Target::Refused(_) => secure(not_found(), None),
        Target::Index => shell(root, base),
        Target::File(real) => {
            let rel = real
                .strip_prefix(root)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default();
            if rel == "index.html" {
                return shell(root, base);
            }
            let immutable = files::is_fingerprinted(&rel) || versioned(req, root, base);
            secure(files::serve(req, root, &real, immutable), None)
        }
    }
}

/// `/__openclaw__/<root file>`: the build's root files, also served there.
fn is_namespaced_asset(rest: &str) -> bool {
    rest.strip_prefix("/__openclaw__/")
        .is_some_and(index::is_root_public_asset)
}

/// Whether the request carries `?v=` with the served build's id: the
/// reference's mark of a file that cannot change under that URL.
fn versioned(req: &Request, root: &Path, base: &str) -> bool {
    let Some((_, query)) = req.head.target.split_once('?') else {
        return false;
    };
    let Some(v) = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("v="))
        .filter(|v| !v.is_empty())
    else {
        return false;
    };
    let Ok(index) = index::load(root, base) else {
        return false;
    };
    index
        .build_id
        .as_deref()
        .is_some_and(|id| files::percent_decode(v).is_ok_and(|decoded| decoded == id))
}

/// The app shell, stamped for the mount, with its own CSP.
fn shell(root: &Path, base: &str) -> Reply {
    match index::load(root, base) {
        Ok(index) => secure(
            Reply::bytes(200, "text/html; charset=utf-8", index.html.clone())
                .with("Cache-Control", "no-cache"),
            Some(&index.csp),
        ),
        Err(e) => {
            log::warn!("control ui: '{}': {e}", root.join("index.html").display());
            secure(not_found(), None)
        }
    }
}

/// The reference's security headers; `csp` for a page with inline
/// scripts, the plain policy otherwise.
fn secure(reply: Reply, csp: Option<&str>) -> Reply {
    static PLAIN: OnceLock<String> = OnceLock::new();
    let csp = csp.unwrap_or_else(|| PLAIN.get_or_init(|| csp::stock_policy(&[])));
    reply
        .with("X-Frame-Options", "DENY")
        .with("Content-Security-Policy", csp)
        .with("Permissions-Policy", PERMISSIONS)
}

fn text(status: u16, body: &'static str) -> Reply {
    Reply::bytes(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn not_found() -> Reply {
    text(404, "Not Found")
}

fn method_not_allowed() -> Reply {
    Reply::not_allowed("GET, HEAD")
}
