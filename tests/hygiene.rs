//! Input hygiene at the edges: a weak stored token, credentials hidden in
//! URL spellings, request-smuggling shapes, bare-LF heads, repeated Host
//! and Origin headers, and close frames with codes the wire does not allow.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{
    clawgate, connect_params, free_port, http, parse_response, run_with_timeout, text, Closed,
    Gateway, TempDir, Ws,
};

const LOCAL: &str = r#"{"gateway":{"mode":"local"}}"#;

/// What the gateway says of a weak token file, after `clawgate: `.
fn weak_token_message(path: &Path, problem: &str) -> String {
    format!(
        "'{}': the stored token {problem}; delete the file to have a new one generated, or set gateway.auth.token",
        path.display()
    )
}

#[test]
fn a_weak_stored_token_is_refused_by_run_and_by_the_client() {
    let home = TempDir::new();
    let cfg = home.write("clawgate.json", LOCAL);
    let state = home.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let path = state.join("gateway.token");
    for (stored, problem) in [
        ("x\n", "is too short (1 character)"),
        ("0123456789abcde", "is too short (15 characters)"),
        ("changeme\n", "is a placeholder ('changeme'), not a secret"),
    ] {
        std::fs::write(&path, stored).unwrap();
        let want = format!("clawgate: {}", weak_token_message(&path, problem));
        let mut run = clawgate(home.path());
        run.args(["run", "--port", "0", "--config"])
            .arg(&cfg)
            .arg("--state-dir")
            .arg(&state);
        let out = run_with_timeout(run, Duration::from_secs(5));
        assert_eq!(out.status.code(), Some(78), "{stored:?}");
        assert!(text(&out.stderr).contains(&want), "{}", text(&out.stderr));
        assert!(!text(&out.stdout).contains("listening on"));
        // The client commands read the file by the same rule.
        let mut call = clawgate(home.path());
        call.args(["call", "health", "--port", &free_port().to_string()])
            .args(["--config"])
            .arg(&cfg)
            .arg("--state-dir")
            .arg(&state);
        let out = run_with_timeout(call, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(78), "{stored:?}");
        assert!(text(&out.stderr).contains(&want), "{}", text(&out.stderr));
        // The file is the operator's: it is reported, never replaced.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), stored);
    }
}

#[test]
fn sighup_with_a_weak_stored_token_keeps_the_running_token() {
    let gw = Gateway::start();
    let token = gw.token();
    let path = gw.state.join("gateway.token");
    std::fs::write(&path, "changeme\n").unwrap();
    gw.signal("HUP");
    let want = weak_token_message(&path, "is a placeholder ('changeme'), not a secret");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| {
        l.contains("config reload (SIGHUP) failed, keeping the running configuration")
            && l.contains(&want)
    }) {
        assert!(
            Instant::now() < deadline,
            "no reload failure logged: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
        seen.extend(gw.stderr_lines());
    }
    let mut ws = gw.ws();
    ws.handshake(connect_params(&token, 4, 4, "cli", &["operator.admin"]));
    assert_eq!(ws.call("health", None)["ok"], true);
}

#[test]
fn encoded_and_disguised_token_keys_in_urls_are_refused() {
    let gw = Gateway::start();
    for query in [
        "%74oken=x",
        "TOKEN=x",
        "to%6ben=x",
        "to%6Ben=x",
        "a=1;token=x",
        "token+=x",
        "%2Btoken=x",
        "%50ASSWORD=x",
    ] {
        let req =
            format!("GET /health?{query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let (status, _, body) = http(gw.port, &req);
        assert_eq!(status, 400, "?{query}: {body}");
        assert!(
            body.contains("credentials in the URL are refused"),
            "{body}"
        );
    }
    let upgrade = "GET /?%74oken=x HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(http(gw.port, upgrade).0, 400);
    // Keys that only contain the word are not credentials.
    let req =
        "GET /health?tokens=1&x=token HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_eq!(http(gw.port, req).0, 200);
}

/// Sends `raw` on one connection and reads until the server closes:
/// every status line it answered with, and the text of it all.
fn statuses(port: u16, raw: &str) -> (Vec<u16>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let all = text(&buf);
    let codes = all
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| all[i + 9..].get(..3)?.parse().ok())
        .collect();
    (codes, all)
}

#[test]
fn content_lengths_that_could_smuggle_a_request_are_refused_and_closed() {
    let gw = Gateway::start();
    // What follows the refused request is never served as a second one.
    let next = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for (headers, why) in [
        (
            "Content-Length: 0\r\nContent-Length: 5",
            "conflicting content-length headers",
        ),
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "content-length and transfer-encoding together are refused",
        ),
        ("Content-Length: +5", "content-length must be plain digits"),
        ("Content-Length: 5 5", "content-length must be plain digits"),
        (
            "Content-Length: 0x10",
            "content-length must be plain digits",
        ),
    ] {
        let req =
            format!("POST /health HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n\r\nhello{next}");
        let (codes, all) = statuses(gw.port, &req);
        assert_eq!(codes, [400], "{headers:?}: {all}");
        assert!(all.contains(why), "{headers:?}: {all}");
        assert!(all.contains("Connection: close"), "{all}");
    }
    // Repeats of one length are one length.
    let req = format!(
        "POST /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
         Content-Length: 5\r\n\r\nhello{next}"
    );
    assert_eq!(statuses(gw.port, &req).0, [405, 200]);
    // Too large is still refused from the head, before any body is sent.
    let started = Instant::now();
    let req = "POST /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 999999999\r\n\r\n";
    assert_eq!(statuses(gw.port, req).0, [413]);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn heads_with_bare_lf_line_ends_are_answered_at_once() {
    let gw = Gateway::start();
    let started = Instant::now();
    let (codes, all) = statuses(
        gw.port,
        "GET /health HTTP/1.1\nHost: localhost\nConnection: close\n\n",
    );
    assert_eq!(codes, [200], "{all}");
    assert!(all.contains(r#""status":"live""#), "{all}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Kept alive, the next bare-LF request is answered too.
    let (codes, _) = statuses(
        gw.port,
        "GET /health HTTP/1.1\nHost: localhost\n\nGET /ready HTTP/1.1\nHost: localhost\nConnection: close\n\n",
    );
    assert_eq!(codes, [200, 200]);
}

#[test]
fn repeated_host_or_origin_headers_are_refused() {
    let gw = Gateway::with_config(
        r#"{"gateway":{"mode":"local","controlUi":{"allowedOrigins":["http://app.example"]}}}"#,
    );
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let hosts = "Host: localhost\r\nHost: evil.example\r\n";
    let origins =
        "Host: localhost\r\nOrigin: http://app.example\r\nOrigin: http://evil.example\r\n";
    for (headers, why) in [
        (hosts.to_string(), "more than one host header"),
        (format!("{hosts}{upgrade}"), "more than one host header"),
        (origins.to_string(), "more than one origin header"),
        (format!("{origins}{upgrade}"), "more than one origin header"),
    ] {
        let req = format!("GET /health HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
        let (status, _, body) = http(gw.port, &req);
        assert_eq!(status, 400, "{headers:?}: {body}");
        assert!(body.contains(why), "{body}");
    }
    // One of each is fine, for a request and for an upgrade.
    let one = "GET /health HTTP/1.1\r\nHost: localhost\r\nOrigin: http://app.example\r\nConnection: close\r\n\r\n";
    assert_eq!(http(gw.port, one).0, 200);
    let one =
        format!("GET / HTTP/1.1\r\nHost: localhost\r\nOrigin: http://app.example\r\n{upgrade}\r\n");
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(one.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(parse_response(&text(&buf[..n])).0, 101);
}

/// A client close frame (masked, as clients must send it) with `code`.
fn close_frame(code: u16) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let payload = code.to_be_bytes();
    let mut f = vec![0x88, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Sends a raw close frame with `code` and returns how the server closed.
fn close_with(mut ws: Ws, code: u16) -> Closed {
    ws.ws.get_mut().write_all(&close_frame(code)).unwrap();
    ws.expect_close()
}

#[test]
fn close_frames_with_codes_the_wire_forbids_are_answered_1002() {
    let gw = Gateway::start();
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut ws = gw.ws();
        assert_eq!(ws.recv()["event"], "connect.challenge");
        match close_with(ws, code) {
            Closed::Frame(1002, _) => {}
            other => panic!("before connect, close code {code}: {other:?}"),
        }
    }
    // Codes the wire allows are echoed, as the closing handshake asks.
    for code in [1000, 1001, 3000, 4999] {
        let mut ws = gw.ws();
        assert_eq!(ws.recv()["event"], "connect.challenge");
        assert_eq!(close_with(ws, code), Closed::Frame(code, String::new()));
    }
    // After hello-ok the same.
    for code in [1005, 999, 5000] {
        let (ws, _) = gw.client();
        match close_with(ws, code) {
            Closed::Frame(1002, _) => {}
            other => panic!("after hello, close code {code}: {other:?}"),
        }
    }
    let (ws, _) = gw.client();
    assert_eq!(close_with(ws, 4000), Closed::Frame(4000, String::new()));
    // The gateway is still fine.
    let (mut ws, _) = gw.client();
    assert_eq!(ws.call("health", None)["ok"], true);
}
