//! Plain HTTP on the gateway's port: health routes, errors, bounded heads,
//! keep-alive, the Host check, URL tokens and the connection cap.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{get, http, parse_response, text, Gateway, Ws};

#[test]
fn health_and_ready_routes_answer_json() {
    let gw = Gateway::start();
    for path in ["/health", "/healthz"] {
        let (status, headers, body) = get(gw.port, path);
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v, serde_json::json!({"ok": true, "status": "live"}));
    }
    for path in ["/ready", "/readyz"] {
        let (status, _, body) = get(gw.port, path);
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, r#"{"ready":true}"#);
    }
}

#[test]
fn unknown_paths_get_404_and_wrong_methods_405() {
    let gw = Gateway::start();
    let (status, _, body) = get(gw.port, "/nope");
    assert_eq!(status, 404);
    assert!(body.contains("not found"), "{body}");
    let (status, headers, _) = http(
        gw.port,
        "POST /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET, HEAD");
}

#[test]
fn head_requests_get_headers_only() {
    let gw = Gateway::start();
    let (status, headers, body) = http(
        gw.port,
        "HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert_eq!(headers["content-length"], "27");
    assert_eq!(body, "");
}

#[test]
fn keep_alive_serves_several_requests_then_closes_when_idle() {
    let gw =
        Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"keepAliveIdleMs":300}}}"#);
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for _ in 0..3 {
        s.write_all(req.as_bytes()).unwrap();
        let resp = read_one_response(&mut s);
        assert_eq!(parse_response(&resp).0, 200);
    }
    // Idle past keepAliveIdleMs: the server closes (EOF), well before 5 s.
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected EOF on an idle keep-alive connection");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn oversized_heads_and_too_many_headers_get_431() {
    let gw = Gateway::start();
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    assert_eq!(http(gw.port, &big).0, 431);
    let many: String = (0..120).map(|i| format!("X-H{i}: 1\r\n")).collect();
    let req = format!("GET /health HTTP/1.1\r\nHost: localhost\r\n{many}\r\n");
    assert_eq!(http(gw.port, &req).0, 431);
    // The gateway is still fine.
    assert_eq!(get(gw.port, "/health").0, 200);
}

#[test]
fn a_slow_head_is_cut_at_the_total_deadline_with_408() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"headTimeoutMs":600}}}"#);
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let head = b"GET /health HTTP/1.1\r\nHost: localhost\r\n";
    let mut answer = Vec::new();
    // One byte every 100 ms: each read is quick, only the total is too long.
    for b in head.iter().cycle().take(60) {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let elapsed = started.elapsed();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.read_to_end(&mut answer);
    assert_eq!(parse_response(&text(&answer)).0, 408, "{}", text(&answer));
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

#[test]
fn foreign_host_headers_are_refused_on_a_loopback_bind() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local","allowedHosts":["gw.lan"]}}"#);
    let req =
        |host: &str| format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    assert_eq!(http(gw.port, &req("evil.example")).0, 421);
    assert_eq!(http(gw.port, &req("127.0.0.1.evil.example:80")).0, 421);
    assert_eq!(http(gw.port, &req("gw.lan:18789")).0, 200);
    assert_eq!(http(gw.port, &req("localhost")).0, 200);
    assert_eq!(http(gw.port, &req("[::1]:1")).0, 200);
    // Upgrades too: a rebinding page never reaches the WebSocket.
    assert_eq!(
        Ws::try_connect(gw.port, &[("Host", "evil.example")])
            .err()
            .as_deref(),
        Some("HTTP 421")
    );
}

#[test]
fn tokens_in_urls_are_refused() {
    let gw = Gateway::start();
    let token = gw.token();
    let (status, _, body) = get(gw.port, &format!("/health?token={token}"));
    assert_eq!(status, 400);
    assert!(!body.contains(&token));
    let upgrade = format!(
        "GET /?token={token} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    assert_eq!(http(gw.port, &upgrade).0, 400);
}

#[test]
fn a_broken_upgrade_gets_a_real_400() {
    let gw = Gateway::start();
    let req = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Version: 13\r\n\r\n";
    let (status, _, body) = http(gw.port, req);
    assert_eq!(status, 400);
    assert!(body.contains("Sec-WebSocket-Key"), "{body}");
}

#[test]
fn over_the_connection_cap_new_sockets_get_503_and_the_gateway_recovers() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"maxConnections":3}}}"#);
    // Three idle sockets hold the three connection threads.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", gw.port)).unwrap())
        .collect();
    // Let the accept loop count them before the next connect.
    std::thread::sleep(Duration::from_millis(200));
    let (status, headers, _) = get(gw.port, "/health");
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = get(gw.port, "/health");
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not recover after sockets closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn http_1_0_without_host_is_served_and_closed() {
    let gw = Gateway::start();
    let (status, _, body) = http(gw.port, "GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200);
    assert!(body.contains("live"));
}

/// Reads exactly one response with a Content-Length body.
fn read_one_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read response head");
        assert_eq!(n, 1, "connection closed mid-head");
        buf.push(byte[0]);
    }
    let (_, headers, _) = parse_response(&text(&buf));
    let len: usize = headers["content-length"].parse().unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    buf.extend_from_slice(&body);
    text(&buf)
}

#[test]
fn a_declared_body_is_read_and_the_connection_serves_the_next_request() {
    let gw = Gateway::start();
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The body and the next request arrive in one write: the body must be
    // taken whole and the GET after it answered as a request of its own.
    let two = "POST /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\nhello world\
               GET /ready HTTP/1.1\r\nHost: localhost\r\n\r\n";
    s.write_all(two.as_bytes()).unwrap();
    let first = read_one_response(&mut s);
    assert!(first.starts_with("HTTP/1.1 405"), "{first}");
    let second = read_one_response(&mut s);
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(second.ends_with(r#"{"ready":true}"#), "{second}");
}

#[test]
fn a_body_that_does_not_arrive_in_time_gets_408_and_close() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"bodyTimeoutMs":300}}}"#);
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    s.write_all(
        b"POST /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly a few",
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let (status, headers, body) = parse_response(&text(&resp));
    assert_eq!(status, 408, "{}", text(&resp));
    assert_eq!(headers["connection"], "close");
    assert!(body.contains("request body timeout"), "{body}");
    // Answered at the deadline, not at the head's 10 s one.
    assert!(started.elapsed() < Duration::from_secs(5));
}
