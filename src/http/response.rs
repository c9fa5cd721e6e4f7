//! Writing responses: JSON bodies printed by tiny_http into a buffer and
//! written with one `write_all`, and closing without losing the reply.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use tiny_http::{HTTPVersion, Header, Response};

use super::head::Head;

pub(super) fn respond_with(
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
