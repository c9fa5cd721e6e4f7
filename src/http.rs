//! One accepted connection's HTTP side: read a bounded request head, then
//! either answer it (health, readiness, errors) or hand a WebSocket upgrade
//! to `ws` after the Host, Origin, URL-token and per-IP checks.
//!
//! Heads are read into our own buffer with a total deadline (not a per-read
//! one, so a 1-byte-per-second sender cannot hold a thread forever) and
//! parsed once with httparse. Responses are printed with tiny_http's
//! `Response::raw_print` into a buffer and written with one `write_all`.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tiny_http::{HTTPVersion, Header, Response};

use crate::state::{Shared, UnauthSlot};
use crate::ws::{self, Peer};

/// A parsed request head, owned so the read buffer can be reused.
struct Head {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, String)>,
    len: usize,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

enum ReadHead {
    Head(Head),
    /// The peer closed (or went idle) before sending a byte.
    Idle,
    Timeout,
    TooLarge,
    Bad(String),
}

/// Serves one accepted connection until it closes.
pub fn serve(shared: &Arc<Shared>, mut stream: TcpStream, peer: SocketAddr, slot: UnauthSlot) {
    let live = shared.live();
    let limits = &live.settings.limits;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    // The first request gets the full head deadline; later ones on a
    // kept-alive connection first wait at most the idle time for a byte.
    let mut first_byte_wait = Duration::from_millis(limits.head_timeout_ms);
    loop {
        let head = match read_head(&mut stream, &mut buf, shared, first_byte_wait) {
            ReadHead::Head(h) => h,
            ReadHead::Idle => return,
            ReadHead::Timeout => return refuse(&mut stream, 408, json!("request head timeout")),
            ReadHead::TooLarge => {
                return refuse(&mut stream, 431, json!("request header fields too large"))
            }
            ReadHead::Bad(why) => return refuse(&mut stream, 400, json!(why)),
        };
        buf.drain(..head.len);
        // Refuse an oversized body from its declared length, before
        // reading a byte of it.
        match head
            .header("content-length")
            .map(|v| v.trim().parse::<usize>())
        {
            Some(Ok(n)) if n > limits.max_body_bytes => {
                let why = format!(
                    "request body too large (limit {} bytes)",
                    limits.max_body_bytes
                );
                return refuse(&mut stream, 413, json!(why));
            }
            Some(Err(_)) => return refuse(&mut stream, 400, json!("bad content-length")),
            _ => {}
        }
        if head.header("upgrade").is_some() {
            // Keep nothing of the head for the connection's lifetime: only
            // bytes that arrived after it are handed on.
            let leftover = if buf.is_empty() { Vec::new() } else { buf };
            if let Some((stream, peer)) = upgrade(shared, stream, peer, head) {
                ws::serve(shared, stream, leftover, peer, slot);
            }
            return;
        }
        let close = wants_close(&head) || has_body(&head);
        let (status, body) = route(shared, &head);
        let head_only = head.method == "HEAD";
        if respond_with(&mut stream, status, &body, close, head_only, &head).is_err() || close {
            return;
        }
        first_byte_wait = Duration::from_millis(limits.keep_alive_idle_ms);
    }
}

/// Answers `{"error": why}` with `status` and closes: every way a request
/// is refused before it is routed.
fn refuse(stream: &mut TcpStream, status: u16, why: serde_json::Value) {
    let _ = respond(stream, status, &json!({ "error": why }), true, false);
}

fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    shared: &Shared,
    first_byte_wait: Duration,
) -> ReadHead {
    let live = shared.live();
    let limits = &live.settings.limits;
    let max = limits.max_head_bytes;
    let started = Instant::now();
    let mut deadline = if buf.is_empty() {
        started + first_byte_wait
    } else {
        started + Duration::from_millis(limits.head_timeout_ms)
    };
    loop {
        if let Some(end) = find_head_end(buf) {
            return parse_head(&buf[..end], end, limits.max_headers);
        }
        if buf.len() >= max {
            return ReadHead::TooLarge;
        }
        let now = Instant::now();
        if now >= deadline {
            return if buf.is_empty() {
                ReadHead::Idle
            } else {
                ReadHead::Timeout
            };
        }
        if stream.set_read_timeout(Some(deadline - now)).is_err() {
            return ReadHead::Idle;
        }
        // Read straight into the buffer's tail: no scratch array on the
        // connection thread's small stack.
        let filled = buf.len();
        let room = (max - filled).min(2048);
        buf.resize(filled + room, 0);
        let got = stream.read(&mut buf[filled..]);
        buf.truncate(filled + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => return ReadHead::Idle,
            Ok(_) => {
                if filled == 0 {
                    // The head deadline runs from its first byte.
                    deadline = Instant::now() + Duration::from_millis(limits.head_timeout_ms);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return ReadHead::Idle,
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn parse_head(bytes: &[u8], len: usize, max_headers: usize) -> ReadHead {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return ReadHead::Bad("incomplete request head".into()),
        Err(httparse::Error::TooManyHeaders) => return ReadHead::TooLarge,
        Err(e) => return ReadHead::Bad(format!("malformed request: {e}")),
    }
    let owned = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    ReadHead::Head(Head {
        method: req.method.unwrap_or("").to_string(),
        target: req.path.unwrap_or("/").to_string(),
        minor: req.version.unwrap_or(1),
        headers: owned,
        len,
    })
}

fn wants_close(h: &Head) -> bool {
    if h.minor == 0 {
        !h.has_token("connection", "keep-alive")
    } else {
        h.has_token("connection", "close")
    }
}

/// None of our plain-HTTP routes takes a body; rather than read and drop
/// one, answer and close so it cannot be taken for the next request.
fn has_body(h: &Head) -> bool {
    h.header("transfer-encoding").is_some()
        || h.header("content-length").is_some_and(|v| v.trim() != "0")
}

fn route(shared: &Shared, h: &Head) -> (u16, serde_json::Value) {
    if let Some(refusal) = common_checks(shared, h) {
        return refusal;
    }
    let get = h.method == "GET" || h.method == "HEAD";
    match h.path() {
        "/health" | "/healthz" if get => (200, json!({"ok": true, "status": "live"})),
        "/ready" | "/readyz" if get => (200, json!({"ready": true})),
        "/health" | "/healthz" | "/ready" | "/readyz" => (
            405,
            json!({"error": "method not allowed", "allow": "GET, HEAD"}),
        ),
        _ => (404, json!({"error": "not found"})),
    }
}

/// Checks shared by plain requests and upgrades: tokens in URLs and the
/// Host header on loopback binds (DNS rebinding).
fn common_checks(shared: &Shared, h: &Head) -> Option<(u16, serde_json::Value)> {
    if url_has_token(&h.target) {
        return Some((
            400,
            json!({"error": "credentials in the URL are refused: send the token in the connect frame"}),
        ));
    }
    if shared.loopback_only()
        && !host_allowed(
            h.header("host"),
            &shared.live().settings.allowed_hosts,
            h.minor,
        )
    {
        return Some((421, json!({"error": "host not allowed"})));
    }
    None
}

fn url_has_token(target: &str) -> bool {
    let Some((_, query)) = target.split_once('?') else {
        return false;
    };
    query.split('&').any(|kv| {
        let key = kv.split('=').next().unwrap_or("");
        key.eq_ignore_ascii_case("token") || key.eq_ignore_ascii_case("password")
    })
}

/// The host part of a Host header or an origin's authority, lowercased,
/// without the port and IPv6 brackets.
fn host_name(authority: &str) -> String {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        a.rsplit_once(':').map_or(a, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                a
            }
        })
    };
    host.to_ascii_lowercase()
}

fn host_allowed(host: Option<&str>, extra: &[String], minor: u8) -> bool {
    let Some(host) = host else {
        // HTTP/1.0 may omit Host; HTTP/1.1 must send it.
        return minor == 0;
    };
    let name = host_name(host);
    matches!(name.as_str(), "127.0.0.1" | "localhost" | "::1")
        || extra.iter().any(|e| e.eq_ignore_ascii_case(&name))
}

/// The Origin gate: absent (CLI, native apps) is fine; a browser page may
/// connect only from the gateway's own origin or a configured one.
fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    let origin = origin.trim();
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false; // "null", file:, extensions…
    };
    host.is_some_and(|h| h.trim().eq_ignore_ascii_case(authority))
}

fn has_proxy_headers(h: &Head) -> bool {
    h.headers.iter().any(|(k, _)| {
        let k = k.to_ascii_lowercase();
        k.starts_with("x-forwarded-") || k == "forwarded" || k == "x-real-ip"
    })
}

/// Checks an upgrade request and answers it with 101; the request itself is
/// dropped on return so it does not live as long as the connection.
fn upgrade(
    shared: &Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    head: Head,
) -> Option<(TcpStream, Peer)> {
    if let Some((status, body)) = common_checks(shared, &head) {
        let _ = respond(&mut stream, status, &body, true, false);
        return None;
    }
    let origin = head.header("origin").map(str::to_string);
    if let Some(o) = &origin {
        if !origin_allowed(
            o,
            head.header("host"),
            &shared.live().settings.allowed_origins,
        ) {
            log::warn!(
                "refused websocket from {peer}: origin {} not allowed",
                crate::protocol::clip(o, 256)
            );
            let body =
                json!({"error": "origin not allowed", "code": "CONTROL_UI_ORIGIN_NOT_ALLOWED"});
            let _ = respond(&mut stream, 403, &body, true, false);
            return None;
        }
    }
    let request = match to_http_request(&head) {
        Some(r) => r,
        None => {
            let _ = respond(
                &mut stream,
                400,
                &json!({"error": "malformed upgrade request"}),
                true,
                false,
            );
            return None;
        }
    };
    let response = match tungstenite::handshake::server::create_response(&request) {
        Ok(r) => r,
        Err(e) => {
            let body = json!({ "error": format!("bad websocket upgrade: {e}") });
            let _ = respond(&mut stream, 400, &body, true, false);
            return None;
        }
    };
    let direct = canonical_ip(peer.ip());
    let forwarded = has_proxy_headers(&head);
    let trusted = forwarded && shared.live().settings.trusted_proxies.contains(&direct);
    // Behind a configured reverse proxy the client is who the proxy says it
    // is; anyone else's forwarding headers only make the peer non-local.
    let ip = if trusted {
        forwarded_client(&head).unwrap_or(direct)
    } else {
        direct
    };
    let mut out = Vec::with_capacity(256);
    if tungstenite::handshake::server::write_response(&mut out, &response).is_err()
        || stream.write_all(&out).is_err()
    {
        return None;
    }
    let peer = Peer {
        addr: peer,
        ip,
        local: ip.is_loopback() && (!forwarded || trusted),
        browser: origin.is_some(),
    };
    Some((stream, peer))
}

/// The client address a trusted proxy reports: the last `X-Forwarded-For`
/// entry (the one the proxy itself appended), else `X-Real-IP`.
fn forwarded_client(h: &Head) -> Option<IpAddr> {
    let last = h
        .header("x-forwarded-for")
        .and_then(|v| v.rsplit(',').next())
        .or_else(|| h.header("x-real-ip"))?;
    last.trim().parse::<IpAddr>().ok().map(canonical_ip)
}

/// IPv4-mapped IPv6 peers count as their IPv4 address, so one client
/// cannot dodge per-IP limits by switching address families.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn to_http_request(h: &Head) -> Option<tungstenite::handshake::server::Request> {
    let mut b = tungstenite::http::Request::builder()
        .method(h.method.as_str())
        .uri(h.target.as_str())
        .version(if h.minor == 0 {
            tungstenite::http::Version::HTTP_10
        } else {
            tungstenite::http::Version::HTTP_11
        });
    for (k, v) in &h.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(()).ok()
}

fn respond_with(
    stream: &mut TcpStream,
    status: u16,
    body: &serde_json::Value,
    close: bool,
    head_only: bool,
    head: &Head,
) -> io::Result<()> {
    let version = HTTPVersion(1, head.minor.min(1));
    write_response(stream, status, body, close, head_only, version)
}

/// Answers with a JSON body (HTTP/1.1) and, when `close`, shuts the socket.
pub fn respond(
    stream: &mut TcpStream,
    status: u16,
    body: &serde_json::Value,
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    write_response(stream, status, body, close, head_only, HTTPVersion(1, 1))
}

fn write_response(
    stream: &mut TcpStream,
    status: u16,
    body: &serde_json::Value,
    close: bool,
    head_only: bool,
    version: HTTPVersion,
) -> io::Result<()> {
    let mut r = Response::from_string(body.to_string())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Server", "clawgate"))
        .with_header(header("Cache-Control", "no-store"));
    if status == 405 {
        r = r.with_header(header("Allow", "GET, HEAD"));
    }
    if close {
        r = r.with_header(header("Connection", "close"));
    }
    let mut out = Vec::with_capacity(256);
    r.raw_print(&mut out, version, &[], head_only, None)?;
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    stream.write_all(&out)?;
    if close {
        linger_close(stream);
    }
    Ok(())
}

/// Closes after a reply without losing it: half-close, then drain what the
/// peer still sends, because closing with unread input makes the kernel
/// send a reset that can destroy the reply before the peer reads it.
pub fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut sink = [0u8; 1024];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn header(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes())
        .expect("static header names and values are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_normalized() {
        assert_eq!(host_name("127.0.0.1:18789"), "127.0.0.1");
        assert_eq!(host_name("LOCALHOST"), "localhost");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("evil.com:80"), "evil.com");
    }

    #[test]
    fn loopback_hosts_pass_and_rebinding_names_fail() {
        let extra = vec!["gw.lan".to_string()];
        for ok in ["127.0.0.1:1", "localhost", "[::1]:9", "GW.lan:80"] {
            assert!(host_allowed(Some(ok), &extra, 1), "{ok}");
        }
        for bad in ["evil.com", "127.0.0.1.evil.com", "10.0.0.1:18789", ""] {
            assert!(!host_allowed(Some(bad), &extra, 1), "{bad}");
        }
        assert!(!host_allowed(None, &extra, 1));
        assert!(host_allowed(None, &extra, 0));
    }

    #[test]
    fn origin_gate() {
        let allowed = vec!["https://ui.example".to_string()];
        assert!(origin_allowed("https://ui.example", None, &allowed));
        assert!(origin_allowed(
            "http://127.0.0.1:18789",
            Some("127.0.0.1:18789"),
            &[]
        ));
        assert!(!origin_allowed(
            "http://127.0.0.1:9999",
            Some("127.0.0.1:18789"),
            &[]
        ));
        assert!(!origin_allowed("null", Some("127.0.0.1:18789"), &[]));
        assert!(!origin_allowed(
            "https://evil.example",
            Some("127.0.0.1:1"),
            &allowed
        ));
    }

    #[test]
    fn tokens_in_urls_are_spotted() {
        assert!(url_has_token("/?token=abc"));
        assert!(url_has_token("/ws?x=1&Token=abc"));
        assert!(url_has_token("/?password"));
        assert!(!url_has_token("/?tokens=1"));
        assert!(!url_has_token("/health"));
    }

    #[test]
    fn heads_parse_and_overflow() {
        let raw = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nrest";
        let end = find_head_end(raw).unwrap();
        let ReadHead::Head(h) = parse_head(&raw[..end], end, 100) else {
            panic!("expected a head")
        };
        assert_eq!(h.path(), "/health");
        assert!(wants_close(&h));
        assert_eq!(&raw[h.len..], b"rest");
        let many: String = (0..5).map(|i| format!("X-{i}: 1\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(
            parse_head(raw.as_bytes(), raw.len(), 3),
            ReadHead::TooLarge
        ));
    }

    #[test]
    fn mapped_ipv4_peers_are_canonical() {
        let ip: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(canonical_ip(ip), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
