//! The one writer of plain-HTTP responses. Every answer the gateway gives
//! outside WebSocket (routes, refusals before routing, the accept loop's
//! 503, static files) is a [`Reply`]: its head is rendered into a buffer
//! and written with one `write_all`, then its body, bytes or a file
//! (which the standard library copies with `sendfile` where it can); a
//! closing reply is followed by a lingering close so the peer reads it.
//! Streamed answers (server-sent events) write their own head with
//! [`stream_head`] and then own the socket.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tiny_http::StatusCode;

/// What follows the head.
#[derive(Debug)]
pub enum Payload {
    Bytes(Vec<u8>),
    /// An open file and its length, for static assets.
    File(File, u64),
}

impl Payload {
    fn len(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::File(_, n) => *n,
        }
    }
}

/// One response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Payload,
    pub content_type: Cow<'static, str>,
    /// Headers beyond the ones every reply gets; a `Cache-Control` here
    /// replaces the default `no-store`.
    pub headers: Vec<(&'static str, String)>,
    /// Close the connection after it.
    pub close: bool,
    /// The answer to a HEAD request: headers only.
    pub head_only: bool,
    /// The request's HTTP minor version (1.0 clients get 1.0 back).
    pub minor: u8,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u32>,
}

pub const JSON: &str = "application/json; charset=utf-8";

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::bytes(status, JSON, body.to_string().into_bytes())
    }

    pub fn bytes(status: u16, content_type: impl Into<Cow<'static, str>>, body: Vec<u8>) -> Reply {
        Reply {
            status,
            body: Payload::Bytes(body),
            content_type: content_type.into(),
            headers: Vec::new(),
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

    /// 405 with the methods the path takes.
    pub fn not_allowed(allow: &str) -> Reply {
        Reply::bytes(
            405,
            "text/plain; charset=utf-8",
            b"Method Not Allowed".to_vec(),
        )
        .with("Allow", allow)
    }

    /// The same reply with one more header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The head on the wire.
    fn render_head(&self) -> Vec<u8> {
        let mut out = head_start(self.minor, self.status);
        let mut line = |k: &str, v: &str| {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        // A 304 describes the representation the client already has: no
        // body of its own, so no type or length for one.
        if self.status != 304 {
            line("Content-Type", &self.content_type);
            line("Content-Length", &self.body.len().to_string());
        }
        if !self.has("cache-control") {
            line("Cache-Control", "no-store");
        }
        if !self.has("permissions-policy") {
            line(
                "Permissions-Policy",
                "camera=(), microphone=(self), geolocation=()",
            );
        }
        if self.status == 405 && !self.has("allow") {
            line("Allow", "GET, HEAD");
        }
        if let Some(secs) = self.retry_after {
            line("Retry-After", &secs.to_string());
        }
        for (k, v) in &self.headers {
            line(k, v);
        }
        if self.close {
            line("Connection", "close");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The bytes on the wire, for a reply with a bytes body.
    #[cfg(test)]
    fn render(&self) -> io::Result<Vec<u8>> {
        let mut out = self.render_head();
        if let (Payload::Bytes(b), false) = (&self.body, self.head_only) {
            out.extend_from_slice(b);
        }
        Ok(out)
    }
}

/// The status line and the headers every response gets.
fn head_start(minor: u8, status: u16) -> Vec<u8> {
    let reason = StatusCode(status).default_reason_phrase();
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(
        format!(
            "HTTP/1.{} {status} {reason}\r\nServer: clawgate\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n",
            minor.min(1)
        )
        .as_bytes(),
    );
    out
}

/// Starts a streamed answer (server-sent events): the head without a
/// length, closing the connection at the end of the stream.
pub fn stream_head(
    stream: &mut TcpStream,
    minor: u8,
    content_type: &str,
    headers: &[(&str, &str)],
) -> io::Result<()> {
    let mut out = head_start(minor, 200);
    out.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    stream.write_all(&out)
}

/// Ends a streamed answer: the connection closes without losing its tail.
pub fn stream_end(stream: &mut TcpStream) {
    linger_close(stream);
}

/// Writes `reply` (giving up after 5 s on a peer that does not read) and,
/// when it closes, lingers so the reply is not lost to a reset.
pub fn send(stream: &mut TcpStream, reply: Reply) -> io::Result<()> {
    let mut out = reply.render_head();
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    match reply.body {
        _ if reply.head_only => stream.write_all(&out)?,
        Payload::Bytes(b) => {
            out.extend_from_slice(&b);
            stream.write_all(&out)?;
        }
        Payload::File(f, len) => {
            stream.write_all(&out)?;
            let sent = io::copy(&mut f.take(len), stream)?;
            if sent != len {
                // The file shrank under us: the length promised is wrong,
                // so the connection cannot go on.
                return Err(io::Error::other("file changed while sent"));
            }
        }
    }
    if reply.close {
        linger_close(stream);
    }
    Ok(())
}

/// Writes `reply` without ever blocking, for the accept loop: what does
/// not fit the socket buffer at once is dropped with the socket.
pub fn send_nowait(mut stream: TcpStream, reply: &Reply) {
    let mut out = reply.render_head();
    if let Payload::Bytes(b) = &reply.body {
        out.extend_from_slice(b);
    }
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(&out);
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
        assert!(
            t.contains("Content-Type: application/json; charset=utf-8\r\n"),
            "{t}"
        );
        assert!(t.contains("X-Content-Type-Options: nosniff\r\n"), "{t}");
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
    fn not_modified_has_no_body_headers() {
        let t = text(&Reply::bytes(304, "", Vec::new()).with("Vary", "Accept-Encoding"));
        assert!(t.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{t}");
        assert!(
            !t.contains("\nContent-Length") && !t.contains("\nContent-Type"),
            "{t}"
        );
        assert!(t.ends_with("Vary: Accept-Encoding\r\n\r\n"), "{t}");
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
