//! The accept loop: the connection caps, checked before a thread is
//! spawned, and one thread per accepted socket.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::http;
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
            http::busy(stream, "too many connections");
            continue;
        }
        // One address may hold only so many sockets that have not
        // authenticated, so idle or slow sockets from one peer cannot use
        // up the threads everyone else needs.
        let ip = http::canonical_ip(peer.ip());
        let Some(slot) = UnauthSlot::claim(shared, ip, limits.max_unauth_per_ip) else {
            shared.close_socket();
            http::busy(
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
                http::serve(&conn_shared, stream, peer, slot);
                conn_shared.close_socket();
            });
        if let Err(e) = spawned {
            shared.close_socket();
            log::warn!("cannot start a connection thread: {e}");
        }
    }
}
