//! The one writer of plain-HTTP responses. Every answer the gateway gives
//! outside WebSocket (routes, refusals before routing, the accept loop's
//! 503) is a [`Reply`]: a JSON body printed by tiny_http into a buffer and
//! written with one `write_all`; a closing reply is followed by a lingering
//! close so the peer reads it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tiny_http::{HTTPVersion, Header, Response};

/// One JSON response.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Close the connection after it.
    pub close: bool,
    /// The answer to a HEAD request: headers only.
    pub head_only: bool,
    /// The request's HTTP minor version (1.0 clients get 1.0 back).
    pub minor: u8,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u32>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            close: false,
            head_only: false,
            minor: 1,
            retry_after: None,
        }
    }

    /// `{"error": why}`, closing: how every refusal looks.
    pub fn refusal(status: u16, why: impl Into<Value>) -> Reply {
        Reply {
            close: true,
            ..Reply::json(status, json!({ "error": why.into() }))
        }
    }

    /// The bytes on the wire.
    fn render(&self) -> io::Result<Vec<u8>> {
        let mut r = Response::from_string(self.body.to_string())
            .with_status_code(self.status)
            .with_header(header("Content-Type", "application/json"))
            .with_header(header("Server", "clawgate"))
            .with_header(header("Cache-Control", "no-store"));
        if self.status == 405 {
            r = r.with_header(header("Allow", "GET, HEAD"));
        }
        if let Some(secs) = self.retry_after {
            r = r.with_header(header("Retry-After", &secs.to_string()));
        }
        let mut out = Vec::with_capacity(256);
        let version = HTTPVersion(1, self.minor.min(1));
        r.raw_print(&mut out, version, &[], self.head_only, None)?;
        if self.close {
            // tiny_http drops a `Connection` header given to it, so it is
            // put in after the status line here.
            if let Some(i) = out.windows(2).position(|w| w == b"\r\n") {
                out.splice(i + 2..i + 2, b"Connection: close\r\n".iter().copied());
            }
        }
        Ok(out)
    }
}

/// Writes `reply` (giving up after 5 s on a peer that does not read) and,
/// when it closes, lingers so the reply is not lost to a reset.
pub fn send(stream: &mut TcpStream, reply: &Reply) -> io::Result<()> {
    let out = reply.render()?;
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    stream.write_all(&out)?;
    if reply.close {
        linger_close(stream);
    }
    Ok(())
}

/// Writes `reply` without ever blocking, for the accept loop: what does
/// not fit the socket buffer at once is dropped with the socket.
pub fn send_nowait(mut stream: TcpStream, reply: &Reply) {
    if let Ok(out) = reply.render() {
        let _ = stream.set_nonblocking(true);
        let _ = stream.write_all(&out);
    }
}

/// The accept loop's answer over a connection cap: 503 with `Retry-After`,
/// so health checks still get an answer.
pub fn busy(stream: TcpStream, why: &str) {
    let reply = Reply {
        retry_after: Some(1),
        ..Reply::refusal(503, why)
    };
    send_nowait(stream, &reply);
}

/// Closes after a reply without losing it: half-close, then drain what the
/// peer still sends, because closing with unread input makes the kernel
/// send a reset that can destroy the reply before the peer reads it.
fn linger_close(stream: &mut TcpStream) {
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
    Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("header names and values are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &Reply) -> String {
        String::from_utf8(r.render().unwrap()).unwrap()
    }

    #[test]
    fn replies_carry_their_headers_and_body() {
        let t = text(&Reply::json(200, json!({"ok": true})));
        assert!(t.starts_with("HTTP/1.1 200 OK\r\n"), "{t}");
        assert!(t.contains("Content-Type: application/json\r\n"), "{t}");
        assert!(t.contains("Cache-Control: no-store\r\n"), "{t}");
        assert!(!t.contains("Connection: close"), "{t}");
        assert!(t.ends_with("\r\n\r\n{\"ok\":true}"), "{t}");
    }

    #[test]
    fn refusals_close_and_busy_asks_to_retry() {
        let r = Reply {
            retry_after: Some(1),
            ..Reply::refusal(503, "too many connections")
        };
        let t = text(&r);
        assert!(t.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{t}");
        assert!(t.contains("Retry-After: 1\r\n"), "{t}");
        assert!(t.contains("Connection: close\r\n"), "{t}");
        assert!(t.ends_with("{\"error\":\"too many connections\"}"), "{t}");
        assert!(text(&Reply::refusal(405, "x")).contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn head_requests_and_http_1_0_are_answered_in_kind() {
        let r = Reply {
            head_only: true,
            minor: 0,
            ..Reply::json(200, json!({"ok": true}))
        };
        let t = text(&r);
        assert!(t.starts_with("HTTP/1.0 200 OK\r\n"), "{t}");
        assert!(t.contains("Content-Length: 11\r\n"), "{t}");
        assert!(t.ends_with("\r\n\r\n"), "{t}");
    }
}
