//! The accept loop: the connection caps, checked before a thread is
//! spawned, and one thread per accepted socket.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::state::{Shared, UnauthSlot};

pub(super) fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or memory: back off
                // instead of spinning; connections finishing will free some.
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) {
                    log::warn!("accept failed: {e}; backing off");
                    thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
        };
        // Per connection: a reload may have changed the limits.
        let live = shared.live();
        let limits = &live.settings.limits;
        if !shared.open_socket(limits.max_connections) {
            reject_busy(stream, "too many connections");
            continue;
        }
        // One address may hold only so many sockets that have not
        // authenticated, so idle or slow sockets from one peer cannot use
        // up the threads everyone else needs.
        let ip = crate::http::canonical_ip(peer.ip());
        let Some(slot) = UnauthSlot::claim(shared, ip, limits.max_unauth_per_ip) else {
            shared.close_socket();
            reject_busy(
                stream,
                "too many unauthenticated connections from this address",
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn_shared = shared.clone();
        let spawned = thread::Builder::new()
            .stack_size(limits.thread_stack_bytes)
            .spawn(move || {
                crate::http::serve(&conn_shared, stream, peer, slot);
                conn_shared.close_socket();
            });
        if let Err(e) = spawned {
            shared.close_socket();
            log::warn!("cannot start a connection thread: {e}");
        }
    }
}

/// Over the connection cap: a short 503 written without blocking the
/// accept loop, so health checks still get an answer.
fn reject_busy(mut stream: TcpStream, why: &str) {
    let body = json!({ "error": why }).to_string();
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(resp.as_bytes());
}
