//! One accepted connection's HTTP side: read a bounded request head, then
//! either answer it (health, the OpenAI-compatible endpoints, hooks, the
//! Control UI: see `route`) or hand a WebSocket upgrade to `ws` after the
//! Host, Origin, URL-token and per-IP checks.
//!
//! Heads are read into our own buffer with a total deadline (not a per-read
//! one, so a 1-byte-per-second sender cannot hold a thread forever) and
//! parsed once with httparse; a declared body is refused over
//! its route's limit before a byte of it is read, and otherwise read
//! within `bodyTimeoutMs`. Every answer goes through the one writer in
//! `response`.

mod auth;
mod body;
mod gate;
mod head;
mod hooks;
mod openai;
mod request;
mod response;
mod route;
mod ui;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Peer;
use crate::state::{Shared, UnauthSlot};
use crate::ws;
use body::Body;
pub use gate::canonical_ip;
use gate::upgrade;
use head::{read_head, wants_close, ReadHead};
use request::{Request, Routed};
pub use response::busy;
use response::Reply;
use route::{body_limit, route};

/// An accepted upgrade: the socket, what the peer sent after its request
/// head, and who the gate says the peer is.
type Upgraded = (TcpStream, Vec<u8>, Peer);

/// Serves one accepted connection until it closes. `slot` is held for the
/// connection's life, or until a WebSocket client authenticates.
pub fn serve(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr, slot: UnauthSlot) {
    // The HTTP side's frame is gone by the time a WebSocket connection is
    // served: what a connection's thread keeps touched of its stack is its
    // deepest point, and that point is in the handshake.
    if let Some((stream, leftover, peer)) = serve_http(shared, stream, peer) {
        ws::serve(shared, stream, leftover, peer, slot);
    }
}

/// Plain HTTP requests until the connection closes or asks to upgrade.
#[inline(never)]
fn serve_http(shared: &Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) -> Option<Upgraded> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    // The first request gets the full head deadline; later ones on a
    // kept-alive connection first wait at most the idle time for a byte.
    let mut first_byte_wait = None;
    loop {
        // One configuration snapshot per request.
        let live = shared.live();
        let limits = &live.settings.limits;
        // A new socket must speak soon; the whole head then has
        // `headTimeoutMs` from its first byte.
        let wait = first_byte_wait.unwrap_or(Duration::from_millis(limits.first_byte_timeout_ms));
        let head = match read_head(&mut stream, &mut buf, limits, wait) {
            ReadHead::Head(h) => h,
            ReadHead::Idle => return None,
            ReadHead::Timeout => return refuse(&mut stream, 408, "request head timeout"),
            ReadHead::TooLarge => {
                return refuse(&mut stream, 431, "request header fields too large")
            }
            ReadHead::Bad(why) => return refuse(&mut stream, 400, why),
        };
        buf.drain(..head.len);
        // Refuse an oversized body from its declared length, before
        // reading a byte of it.
        let limit = body_limit(&live, &head);
        let declared = match head.content_length() {
            Err(why) => return refuse(&mut stream, 400, why),
            Ok(Some(n)) if n > limit => {
                let why = format!("request body too large (limit {limit} bytes)");
                return refuse_at(&mut stream, &head, 413, why);
            }
            Ok(n) => n.unwrap_or(0),
        };
        if head.header("upgrade").is_some() {
            // Keep nothing of the head for the connection's lifetime: only
            // bytes that arrived after it are handed on.
            let leftover = if buf.is_empty() { Vec::new() } else { buf };
            return upgrade(shared, &live, stream, peer, head)
                .map(|(stream, peer)| (stream, leftover, peer));
        }
        // The declared body is read whole within `bodyTimeoutMs`, so the
        // next request on the connection starts where it should. A chunked
        // body is not read: the answer closes the connection instead.
        let body_timeout = Duration::from_millis(limits.body_timeout_ms);
        let body = match body::read(&mut stream, &mut buf, declared, body_timeout) {
            Body::Read(b) => b,
            Body::Timeout => return refuse_at(&mut stream, &head, 408, "request body timeout"),
            Body::Closed => return None,
        };
        let req = Request {
            head: &head,
            body: &body,
            client: gate::client(&live, &head, peer),
        };
        let mut reply = match route(shared, &live, &req, &mut stream) {
            Routed::Reply(r) => r,
            Routed::Streamed => return None,
        };
        reply.close |= wants_close(&head) || head.header("transfer-encoding").is_some();
        reply.head_only = head.method == "HEAD";
        reply.minor = head.minor;
        let close = reply.close;
        if response::send(&mut stream, reply).is_err() || close {
            return None;
        }
        first_byte_wait = Some(Duration::from_millis(limits.keep_alive_idle_ms));
    }
}

/// Answers `{"error": why}` with `status` and closes: every way a request
/// is refused before it is routed.
fn refuse(
    stream: &mut TcpStream,
    status: u16,
    why: impl Into<serde_json::Value>,
) -> Option<Upgraded> {
    let _ = response::send(stream, Reply::refusal(status, why));
    None
}

/// `refuse` for a request whose head was read: on the OpenAI-compatible
/// paths in the error shape their clients read.
fn refuse_at(
    stream: &mut TcpStream,
    head: &head::Head,
    status: u16,
    why: impl Into<serde_json::Value>,
) -> Option<Upgraded> {
    match openai::early_refusal(head, status) {
        Some(reply) => {
            let _ = response::send(stream, reply);
            None
        }
        None => refuse(stream, status, why),
    }
}
