//! One accepted connection's HTTP side: read a bounded request head, then
//! either answer it (health, readiness, errors) or hand a WebSocket upgrade
//! to `ws` after the Host, Origin, URL-token and per-IP checks.
//!
//! Heads are read into our own buffer with a total deadline (not a per-read
//! one, so a 1-byte-per-second sender cannot hold a thread forever) and
//! parsed once with httparse. Responses are printed with tiny_http's
//! `Response::raw_print` into a buffer and written with one `write_all`.

mod gate;
mod head;
mod response;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::state::{Shared, UnauthSlot};
use crate::ws;
pub use gate::canonical_ip;
use gate::{common_checks, upgrade};
use head::{has_body, read_head, wants_close, Head, ReadHead};
use response::{respond, respond_with};

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
