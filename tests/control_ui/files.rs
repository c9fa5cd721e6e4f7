//! The stock Control UI's files as clawgate serves them from
//! `gateway.controlUi.root`, checked over raw HTTP against a small build
//! in a temp dir: the shell and its CSP, client routes, cache classes,
//! precompressed siblings, revalidation, HEAD, confinement to the root,
//! the mount prefix and the bootstrap config's auth.

use std::collections::HashMap;

use data_encoding::BASE64;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::util::{http, Gateway, Identity, Opts, TempDir};

const INDEX: &str = "<!doctype html>\n<html data-openclaw-control-ui-build-id=\"b-1\" lang=\"en\">\
<head><link rel=\"icon\" href=\"./favicon.svg\">\
<script>window.theme = 'dark';</script>\
<script type=\"module\" crossorigin src=\"./assets/index-AbCd1234.js\"></script></head>\
<body><openclaw-app></openclaw-app><script>\n  window.fallback = 1;\n</script></body></html>";
const ASSET: &str = "assets/index-AbCd1234.js";

/// A UI build in a temp dir, with a secret beside it that symlinks in
/// the build point at.
pub struct Build {
    pub root: TempDir,
    _outside: TempDir,
}

pub fn build() -> Build {
    let root = TempDir::new();
    let outside = TempDir::new();
    let r = root.path();
    std::fs::create_dir_all(r.join("assets")).unwrap();
    std::fs::create_dir_all(r.join("fonts")).unwrap();
    root.write("index.html", INDEX);
    root.write(ASSET, "export const js = 'identity';");
    root.write(&format!("{ASSET}.br"), "BROTLI");
    root.write(&format!("{ASSET}.gz"), "GZIP");
    root.write("assets/photo-ZZZZ9999.webp", "RIFF");
    root.write("favicon.svg", "<svg/>");
    root.write("plain.txt", "plain");
    root.write("fonts/f.css", "@font-face{}");
    outside.write("secret.txt", "top secret");
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), r.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), r.join("linkdir")).unwrap();
    std::os::unix::fs::symlink(r.join("plain.txt"), r.join("alias.txt")).unwrap();
    Build {
        root,
        _outside: outside,
    }
}

fn gateway(b: &Build, extra: &str, args: &[&str]) -> Gateway {
    let root = json!(b.root.path());
    let sep = if extra.is_empty() { "" } else { "," };
    let config =
        format!(r#"{{"gateway":{{"mode":"local","controlUi":{{"root":{root}{sep}{extra}}}}}}}"#);
    Gateway::with(Opts {
        config: Some(&config),
        args,
        ..Opts::default()
    })
}

type Response = (u16, HashMap<String, String>, String);

fn req(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    http(port, &raw)
}

fn get(port: u16, path: &str) -> Response {
    req(port, "GET", path, &[])
}

/// The SHA-256 CSP source of each inline script in `html`.
fn inline_hashes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in html.split("<script").skip(1) {
        let (tag, rest) = part.split_once('>').unwrap();
        if tag.contains(" src=") {
            continue;
        }
        let body = rest.split("</script>").next().unwrap();
        out.push(format!(
            "'sha256-{}'",
            BASE64.encode(&Sha256::digest(body.as_bytes()))
        ));
    }
    out
}

fn assert_ui_headers(r: &Response, what: &str) {
    let h = &r.1;
    assert_eq!(h["x-frame-options"], "DENY", "{what}: {h:?}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(
        h["permissions-policy"], "camera=(self), microphone=*, geolocation=*, clipboard-write=*",
        "{what}"
    );
    let csp = &h["content-security-policy"];
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("connect-src 'self' ws: wss:"), "{what}: {csp}");
    assert!(
        !csp.contains("wasm-unsafe-eval") && !csp.contains("https://"),
        "{csp}"
    );
}

#[test]
fn the_shell_is_stamped_and_its_csp_allows_exactly_its_inline_scripts() {
    let b = build();
    let gw = gateway(&b, "", &[]);
    let r = get(gw.port, "/");
    assert_eq!(r.0, 200, "{r:?}");
    assert_ui_headers(&r, "/");
    assert_eq!(r.1["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.1["cache-control"], "no-cache");
    let html = &r.2;
    assert!(html.contains("<html data-openclaw-control-ui-base-path=\"\" data-openclaw-terminal-enabled=\"false\""), "{html}");
    assert!(html.contains("src=\"/assets/index-AbCd1234.js\""), "{html}");
    assert!(html.contains("href=\"/favicon.svg?v=b-1\""), "{html}");
    let hashes = inline_hashes(html);
    assert_eq!(hashes.len(), 2, "{html}");
    let csp = &r.1["content-security-policy"];
    let script_src = csp
        .split("; ")
        .find(|d| d.starts_with("script-src"))
        .unwrap();
    assert_eq!(
        script_src,
        format!("script-src 'self' {}", hashes.join(" "))
    );
    assert_eq!(get(gw.port, "/index.html").2, *html);
}

#[test]
fn client_routes_get_the_shell_and_unknown_files_a_404() {
    let b = build();
    let gw = gateway(&b, "", &[]);
    let shell = get(gw.port, "/").2;
    for route in [
        "/chat",
        "/chat/main",
        "/sessions",
        "/nodes",
        "/fonts",
        "/fonts/",
    ] {
        let r = get(gw.port, route);
        assert_eq!((r.0, &r.2), (200, &shell), "{route}");
        assert_eq!(r.1["cache-control"], "no-cache", "{route}");
    }
    for missing in [
        "/missing.js",
        "/assets/nope-AbCd1234.js",
        "/fonts/none.woff2",
    ] {
        let r = get(gw.port, missing);
        assert_eq!((r.0, r.2.as_str()), (404, "Not Found"), "{missing}");
        assert_eq!(r.1["content-type"], "text/plain; charset=utf-8");
        assert_ui_headers(&r, missing);
    }
    for probe in [
        "/api/users/gateway-owner/avatar",
        "/api",
        "/__openclaw__/workspace-icon/agent%3Amain%3Amain",
    ] {
        let r = get(gw.port, probe);
        assert_eq!(r.0, 404, "{probe}");
        let v: Value = serde_json::from_str(&r.2).unwrap();
        assert_eq!(
            v,
            json!({"ok": false, "error": {"type": "not_found"}}),
            "{probe}"
        );
    }
    assert_eq!(get(gw.port, "/__openclaw__/favicon.svg").2, "<svg/>");
    assert_eq!(get(gw.port, "/chat/main/assets/index-AbCd1234.js").0, 200);
}

#[test]
fn fingerprinted_and_versioned_files_are_immutable_and_others_revalidate() {
    let b = build();
    let gw = gateway(&b, "", &[]);
    let immutable = "public, max-age=31536000, immutable";
    for (path, cache, ctype) in [
        (
            "/assets/index-AbCd1234.js",
            immutable,
            "application/javascript; charset=utf-8",
        ),
        ("/assets/photo-ZZZZ9999.webp", immutable, "image/webp"),
        ("/favicon.svg?v=b-1", immutable, "image/svg+xml"),
        ("/favicon.svg?v=old", "no-cache", "image/svg+xml"),
        ("/favicon.svg", "no-cache", "image/svg+xml"),
        ("/plain.txt", "no-cache", "text/plain; charset=utf-8"),
        ("/fonts/f.css", "no-cache", "text/css; charset=utf-8"),
    ] {
        let r = get(gw.port, path);
        assert_eq!(r.0, 200, "{path}");
        assert_eq!(r.1["cache-control"], cache, "{path}");
        assert_eq!(r.1["content-type"], ctype, "{path}");
        assert!(r.1["last-modified"].ends_with(" GMT"), "{path}: {:?}", r.1);
        assert_ui_headers(&r, path);
    }
}

#[test]
fn precompressed_siblings_follow_accept_encoding() {
    let b = build();
    let gw = gateway(&b, "", &[]);
    let p = gw.port;
    let with = |ae: &str| {
        req(
            p,
            "GET",
            "/assets/index-AbCd1234.js",
            &[("Accept-Encoding", ae)],
        )
    };
    for (accept, body, encoding) in [
        ("gzip, deflate, br", "BROTLI", Some("br")),
        ("br;q=0, gzip", "GZIP", Some("gzip")),
        ("gzip;q=1.0, br;q=0.5", "GZIP", Some("gzip")),
        ("identity", "export const js = 'identity';", None),
        ("br;q=0, gzip;q=0", "export const js = 'identity';", None),
    ] {
        let r = with(accept);
        assert_eq!(r.2, body, "{accept}");
        assert_eq!(
            r.1.get("content-encoding").map(String::as_str),
            encoding,
            "{accept}"
        );
        assert_eq!(r.1["vary"], "Accept-Encoding", "{accept}");
        assert_eq!(r.1["content-type"], "application/javascript; charset=utf-8");
        assert_eq!(r.1["content-length"], body.len().to_string(), "{accept}");
    }
    let r = get(p, "/assets/index-AbCd1234.js");
    assert!(!r.1.contains_key("content-encoding"), "{:?}", r.1);
    // A type without siblings stays as it is.
    let r = req(
        p,
        "GET",
        "/assets/photo-ZZZZ9999.webp",
        &[("Accept-Encoding", "br")],
    );
    assert_eq!((r.2.as_str(), r.1.get("content-encoding")), ("RIFF", None));
}

#[test]
fn revalidation_answers_304_and_head_answers_without_a_body() {
    let b = build();
    let gw = gateway(&b, "", &[]);
    let p = gw.port;
    let first = get(p, "/plain.txt");
    let lm = first.1["last-modified"].clone();
    let r = req(p, "GET", "/plain.txt", &[("If-Modified-Since", &lm)]);
    assert_eq!((r.0, r.2.as_str()), (304, ""), "{r:?}");
    assert_eq!(r.1["cache-control"], "no-cache");
    assert_eq!(r.1["last-modified"], lm);
    assert!(!r.1.contains_key("content-length"), "{:?}", r.1);
    let old = "Thu, 01 Jan 1970 00:00:00 GMT";
    assert_eq!(
        req(p, "GET", "/plain.txt", &[("If-Modified-Since", old)]).0,
        200
    );
    let r = req(
        p,
        "GET",
        "/plain.txt",
        &[("If-Modified-Since", &lm), ("If-None-Match", "\"x\"")],
    );
    assert_eq!(r.0, 200, "an entity tag wins and none matches");

    for path in ["/plain.txt", "/", "/chat/main", "/assets/index-AbCd1234.js"] {
        let g = get(p, path);
        let h = req(p, "HEAD", path, &[]);
        assert_eq!((h.0, h.2.as_str()), (200, ""), "{path}");
        assert_eq!(h.1["content-length"], g.2.len().to_string(), "{path}");
        for k in ["content-type", "cache-control", "content-security-policy"] {
            assert_eq!(h.1[k], g.1[k], "{path} {k}");
        }
    }
}

#[test]
fn nothing_outside_the_root_is_served_in_any_spelling() {
    let b = build();
    let gw = gateway(&b, "", &[]);
    for path in [
        "/../../../etc/passwd",
        "/assets/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2f%2E%2E%2fetc%2fpasswd",
        "/..%2f..%2fetc%2fpasswd",
        "/assets%2f..%2fplain.txt",
        "/plain.txt%00.js",
        "/..\\..\\etc\\passwd",
        "/leak.txt",
        "/linkdir/secret.txt",
        "/./plain.txt",
    ] {
        let r = get(gw.port, path);
        assert_eq!(r.0, 404, "{path}: {r:?}");
        assert!(
            !r.2.contains("top secret") && !r.2.contains("root:"),
            "{path}"
        );
    }
    for path in ["/%zz", "/assets/%e"] {
        assert_eq!(get(gw.port, path).0, 400, "{path}");
    }
    // A link that stays inside the root is fine; a directory is never listed.
    assert_eq!(get(gw.port, "/alias.txt").2, "plain");
    assert!(get(gw.port, "/assets/").2.contains("<openclaw-app>"));
}

#[test]
fn only_get_and_head_are_served() {
    let b = build();
    let gw = gateway(&b, "", &[]);
    for (method, path) in [
        ("POST", "/"),
        ("PUT", "/plain.txt"),
        ("DELETE", "/assets/index-AbCd1234.js"),
        ("POST", "/control-ui-config.json"),
    ] {
        let r = req(gw.port, method, path, &[]);
        assert_eq!(r.0, 405, "{method} {path}");
        assert_eq!(r.1["allow"], "GET, HEAD", "{method} {path}");
        assert_ui_headers(&r, path);
    }
}

#[test]
fn a_base_path_mounts_the_shell_assets_and_config_under_it() {
    let b = build();
    let gw = gateway(&b, r#""basePath":"/claw/""#, &[]);
    let p = gw.port;
    let r = get(p, "/claw/");
    assert_eq!(r.0, 200);
    assert!(
        r.2.contains("data-openclaw-control-ui-base-path=\"/claw\""),
        "{}",
        r.2
    );
    assert!(
        r.2.contains("src=\"/claw/assets/index-AbCd1234.js\""),
        "{}",
        r.2
    );
    assert!(r.2.contains("href=\"/claw/favicon.svg?v=b-1\""), "{}", r.2);
    assert_eq!(get(p, "/claw/chat/main").2, r.2);
    assert_eq!(get(p, "/claw/assets/index-AbCd1234.js").0, 200);
    let redirect = get(p, "/claw?x=1");
    assert_eq!(
        (redirect.0, redirect.1["location"].as_str()),
        (302, "/claw/?x=1")
    );
    for outside in ["/", "/assets/index-AbCd1234.js", "/clawx/", "/chat"] {
        assert_eq!(get(p, outside).0, 404, "{outside}");
    }
    let bearer = format!("Bearer {}", gw.token());
    for (path, status) in [
        ("/claw/control-ui-config.json", 200),
        ("/claw/__openclaw/control-ui-config.json", 200),
        ("/__openclaw__/control-ui-config.json", 404),
        ("/control-ui-config.json", 404),
    ] {
        let r = req(p, "GET", path, &[("Authorization", &bearer)]);
        assert_eq!(r.0, status, "{path}: {r:?}");
    }
    let r = req(
        p,
        "GET",
        "/claw/control-ui-config.json",
        &[("Authorization", &bearer)],
    );
    let v: Value = serde_json::from_str(&r.2).unwrap();
    assert_eq!(v["basePath"], "/claw");
}

#[test]
fn the_bootstrap_config_needs_the_secret_or_a_device_token() {
    let b = build();
    let gw = gateway(&b, r#""embedSandbox":"strict""#, &[]);
    let p = gw.port;
    for path in [
        "/control-ui-config.json",
        "/__openclaw/control-ui-config.json",
        "/__openclaw__/control-ui-config.json",
    ] {
        let r = get(p, path);
        assert_eq!(r.0, 401, "{path}: {r:?}");
        let v: Value = serde_json::from_str(&r.2).unwrap();
        assert_eq!(v["error"]["type"], "unauthorized");
    }
    let wrong = req(
        p,
        "GET",
        "/control-ui-config.json",
        &[("Authorization", "Bearer nope")],
    );
    assert_eq!(wrong.0, 401);

    let bearer = format!("Bearer {}", gw.token());
    let r = req(
        p,
        "GET",
        "/control-ui-config.json",
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.0, 200, "{r:?}");
    assert_eq!(r.1["cache-control"], "no-cache");
    assert_ui_headers(&r, "config");
    let v: Value = serde_json::from_str(&r.2).unwrap();
    let version = gw.client().1["server"]["version"].clone();
    assert_eq!(v["serverVersion"], version);
    for (k, want) in [
        ("basePath", json!("")),
        ("assistantName", json!("Assistant")),
        ("assistantAgentId", json!("main")),
        ("embedSandbox", json!("strict")),
        ("allowExternalEmbedUrls", json!(false)),
        ("automaticallyFetchFavicons", json!(true)),
        ("communityInvite", json!(false)),
        ("terminalEnabled", json!(false)),
        ("cliAgentsEnabled", json!(false)),
        ("pluginFrameGrants", json!([])),
    ] {
        assert_eq!(v[k], want, "{k}: {v}");
    }
    assert!(
        !r.2.contains(&gw.token()),
        "the secret never leaves: {}",
        r.2
    );

    // A paired device's operator token reads it too.
    let me = Identity::new();
    let mut ws = gw.ws();
    let params = json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "openclaw-control-ui", "mode": "webchat", "version": "test",
                   "platform": "linux", "instanceId": "ui-test"},
        "role": "operator", "scopes": ["operator.read"], "caps": [],
        "auth": {"token": gw.token()},
    });
    let res = me.connect(&mut ws, &params);
    let device_token = res["payload"]["auth"]["deviceToken"]
        .as_str()
        .expect("paired");
    let r = req(
        p,
        "GET",
        "/control-ui-config.json",
        &[("Authorization", &format!("Bearer {device_token}"))],
    );
    assert_eq!(r.0, 200, "{r:?}");
}

#[test]
fn without_auth_the_bootstrap_config_is_open() {
    let b = build();
    let gw = gateway(&b, "", &["--auth", "none"]);
    let r = get(gw.port, "/control-ui-config.json");
    assert_eq!(r.0, 200, "{r:?}");
    let v: Value = serde_json::from_str(&r.2).unwrap();
    assert_eq!(v["pluginAssetsRequireAuth"], false);
}
