//! Static files of the stock Control UI from `gateway.controlUi.root`:
//! a request path becomes a file inside the root, or the app shell for a
//! client route, or 404; never anything outside the root.
//!
//! Paths are decoded segment by segment; a `.`/`..` segment, a NUL, a
//! backslash or an encoded `/` is refused, malformed percent-encoding is a
//! 400, and the file's canonical path (symlinks resolved) must still lie in
//! the canonical root. Directories are never listed. Files are streamed
//! from an open descriptor (`Payload::File`), never read whole; the cache
//! class, `Last-Modified`, revalidation and precompressed siblings follow
//! PROTOCOL-HTTP §7.3.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::super::request::Request;
use super::super::response::{Payload, Reply};
use super::index;
use super::negotiate::{self, Encoding};

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Content types by extension, as the reference sends them.
const TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("js", "application/javascript; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("json", "application/json; charset=utf-8"),
    ("map", "application/json; charset=utf-8"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("ico", "image/x-icon"),
    ("txt", "text/plain; charset=utf-8"),
    ("wasm", "application/wasm"),
    ("webmanifest", "application/manifest+json; charset=utf-8"),
    ("woff2", "font/woff2"),
];

/// Extensions whose precompressed `.br`/`.gz` siblings may be sent.
const COMPRESSIBLE: &[&str] = &[
    "css",
    "html",
    "js",
    "json",
    "svg",
    "txt",
    "wasm",
    "webmanifest",
];

/// What a path under the mount names.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A regular file inside the root, by its canonical path.
    File(PathBuf),
    /// The app shell: `/`, `/index.html`, or a client route.
    Index,
    /// Nothing to serve, with the status to answer (404, or 400 for
    /// malformed percent-encoding).
    Refused(u16),
}

/// The lowercased extension of the last segment of `name`, if any.
fn extension(name: &str) -> Option<String> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let (stem, ext) = last.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

pub fn content_type(name: &str) -> &'static str {
    extension(name)
        .and_then(|e| TYPES.iter().find(|(x, _)| *x == e))
        .map_or("application/octet-stream", |(_, t)| t)
}

/// A file the reference answers 404 for when it is missing, instead of
/// falling back to the app shell: a known asset type (the shell itself
/// aside) or a precompressed sibling.
fn is_static_asset(name: &str) -> bool {
    extension(name).is_some_and(|e| {
        e != "html" && (e == "br" || e == "gz" || TYPES.iter().any(|(x, _)| *x == e))
    })
}

/// A build-fingerprinted asset, `assets/<name>-<hash>.<ext>` with the
/// bundler's 8-character base64url hash: its content never changes.
pub fn is_fingerprinted(rel: &str) -> bool {
    let Some(name) = rel.strip_prefix("assets/") else {
        return false;
    };
    if name.contains('/') {
        return false;
    }
    let name = name
        .strip_suffix(".br")
        .or_else(|| name.strip_suffix(".gz"))
        .unwrap_or(name);
    let Some((stem, _)) = name.rsplit_once('.') else {
        return false;
    };
    let b = stem.as_bytes();
    b.len() > 9
        && b[b.len() - 9] == b'-'
        && b[b.len() - 8..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// One decoded path segment, or the status refusing it.
fn decode_segment(seg: &str) -> Result<String, u16> {
    let s = percent_decode(seg)?;
    if s == "." || s == ".." || s.contains(['/', '\\', '\0']) {
        return Err(404);
    }
    Ok(s)
}

/// `s` percent-decoded: 400 for a `%` without two hex digits, 404 for
/// bytes that are not UTF-8 (no file here has such a name).
pub fn percent_decode(s: &str) -> Result<String, u16> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err(400);
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| 404)
}

/// The path relative to the root that `rest` (the request path under the
/// mount, starting with `/`) names, as the reference maps it: an
/// `/assets/` anywhere in a deep route is the build's assets directory,
/// and the root files are also served under `/__openclaw__/`.
pub fn relative(rest: &str) -> Result<String, u16> {
    let mut segs = Vec::new();
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        segs.push(decode_segment(seg)?);
    }
    if let Some(i) = segs.iter().position(|s| s == "assets") {
        segs.drain(..i);
    } else if segs.len() == 2 && segs[0] == "__openclaw__" && index::is_root_public_asset(&segs[1])
    {
        segs.remove(0);
    }
    Ok(segs.join("/"))
}

/// What `rest` names inside `root` (canonical).
pub fn resolve(root: &Path, rest: &str) -> Target {
    let rel = match relative(rest) {
        Ok(rel) => rel,
        Err(status) => return Target::Refused(status),
    };
    if rel.is_empty() || rel == "index.html" {
        return Target::Index;
    }
    match fs::canonicalize(root.join(&rel)) {
        Ok(real) if !real.starts_with(root) => Target::Refused(404),
        Ok(real) if real.is_file() => Target::File(real),
        // A directory is never listed: it is a client route, or nothing.
        Ok(_) | Err(_) if is_static_asset(&rel) => Target::Refused(404),
        Ok(_) | Err(_) => Target::Index,
    }
}

/// A regular file at `path`, opened, if its canonical path is inside
/// `root`.
fn open_inside(root: &Path, path: &Path) -> Option<(File, fs::Metadata)> {
    let real = fs::canonicalize(path).ok()?;
    if !real.starts_with(root) {
        return None;
    }
    let f = File::open(&real).ok()?;
    let meta = f.metadata().ok()?;
    meta.is_file().then_some((f, meta))
}

/// The file `real` (canonical, inside `root`) as a reply: the representation the
/// client accepts, its cache class, or 304 when it is unchanged since
/// the client's copy.
pub fn serve(req: &Request, root: &Path, real: &Path, immutable: bool) -> Reply {
    let opened = File::open(real).and_then(|f| f.metadata().map(|m| (f, m)));
    let Some((file, meta)) = opened.ok().filter(|(_, m)| m.is_file()) else {
        return super::not_found();
    };
    let name = real.to_string_lossy();
    let now = negotiate::unix_secs(SystemTime::now());
    let modified = meta
        .modified()
        .map_or(now, |t| negotiate::unix_secs(t).min(now));
    let cache = if immutable { IMMUTABLE } else { "no-cache" };
    let compressible = extension(&name).is_some_and(|e| COMPRESSIBLE.contains(&e.as_str()));
    let unchanged = match req.head.header("if-none-match") {
        Some(tags) => tags.trim() == "*",
        None => req
            .head
            .header("if-modified-since")
            .and_then(negotiate::parse_http_date)
            .is_some_and(|since| modified <= since),
    };
    if unchanged {
        return Reply::bytes(304, "", Vec::new())
            .with("Cache-Control", cache)
            .with("Last-Modified", negotiate::http_date(modified))
            .with("Vary", "Accept-Encoding");
    }
    let mut body = (file, meta.len(), None::<Encoding>);
    if compressible {
        for enc in negotiate::encodings(req.head.header("accept-encoding")) {
            let mut sibling = real.as_os_str().to_owned();
            sibling.push(enc.suffix());
            if let Some((f, m)) = open_inside(root, Path::new(&sibling)) {
                body = (f, m.len(), Some(enc));
                break;
            }
        }
    }
    let (file, len, encoding) = body;
    let mut reply = Reply::bytes(200, content_type(&name), Vec::new())
        .with("Cache-Control", cache)
        .with("Last-Modified", negotiate::http_date(modified))
        .with("Vary", "Accept-Encoding");
    if let Some(enc) = encoding {
        reply = reply.with("Content-Encoding", enc.token());
    }
    reply.body = Payload::File(file, len);
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_like_the_reference() {
        assert_eq!(relative("/").unwrap(), "");
        assert_eq!(
            relative("/assets/x-AbCd1234.js").unwrap(),
            "assets/x-AbCd1234.js"
        );
        assert_eq!(
            relative("/chat/main/assets/x-AbCd1234.js").unwrap(),
            "assets/x-AbCd1234.js"
        );
        assert_eq!(
            relative("/__openclaw__/favicon.svg").unwrap(),
            "favicon.svg"
        );
        assert_eq!(relative("/a%20b//c").unwrap(), "a b/c");
        assert_eq!(relative("/fonts/x.css").unwrap(), "fonts/x.css");
    }

    #[test]
    fn traversal_in_any_spelling_is_refused() {
        for bad in [
            "/../etc/passwd",
            "/assets/../../x",
            "/%2e%2e/x",
            "/%2E%2E/x",
            "/..%2fx",
            "/assets%2f..%2f..%2fx",
            "/x%00.js",
            "/a\\..\\b",
            "/a%5c..%5cb",
            "/./index.html",
            "/%ff",
        ] {
            assert_eq!(relative(bad), Err(404), "{bad}");
        }
        for malformed in ["/%zz", "/a%2", "/%"] {
            assert_eq!(relative(malformed), Err(400), "{malformed}");
        }
    }

    #[test]
    fn fingerprints_and_types_are_recognized() {
        assert!(is_fingerprinted("assets/index-DsEuFQRE.js"));
        assert!(is_fingerprinted("assets/gateway-runtime-hTh6B_FS.js"));
        assert!(is_fingerprinted("assets/a-b-Bt5J11Ku.js.br"));
        assert!(is_fingerprinted("assets/x-ab-cdefg.css"));
        assert!(is_fingerprinted("assets/mermaid.min-BZuf2r7K.js.gz"));
        assert!(!is_fingerprinted("assets/index.js"));
        assert!(!is_fingerprinted("assets/sub/x-DsEuFQRE.js"));
        assert!(!is_fingerprinted("fonts/x-DsEuFQRE.css"));
        assert!(!is_fingerprinted("assets/-DsEuFQR.js"));
        assert_eq!(
            content_type("a/b.JS"),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("m.webmanifest"),
            "application/manifest+json; charset=utf-8"
        );
        assert_eq!(content_type("x.br"), "application/octet-stream");
        assert_eq!(content_type("README"), "application/octet-stream");
        assert!(is_static_asset("assets/x.js") && is_static_asset("x.js.gz"));
        assert!(!is_static_asset("chat/main") && !is_static_asset("x.html"));
        assert!(!is_static_asset(".hidden") && !is_static_asset("chat/a.b"));
    }
}
