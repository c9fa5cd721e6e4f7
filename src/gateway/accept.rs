//! The accept loop: the connection caps, checked before a thread is
//! spawned, and one thread per accepted socket.

use std::fs::File;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::http;
use crate::state::{NoSlot, Shared, UnauthSlot};

pub(super) fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    // A descriptor kept in reserve: when the process runs out, it is given
    // up for a moment so the waiting client gets a 503 at once instead of
    // hanging in the backlog until something else closes.
    let mut reserve = File::open("/dev/null").ok();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) && reserve.is_some() => {
                drop(reserve.take());
                if let Ok((stream, _)) = listener.accept() {
                    http::busy(stream, "out of file descriptors");
                }
                log::warn!("out of file descriptors: a connection was refused with 503");
                reserve = File::open("/dev/null").ok();
                continue;
            }
            Err(e) => {
                // Out of descriptors (ENFILE) or memory: back off instead
                // of spinning; connections finishing will free some.
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) {
                    log::warn!("accept failed: {e}; backing off");
                    thread::sleep(Duration::from_millis(100));
                    reserve = reserve.or_else(|| File::open("/dev/null").ok());
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
        // Sockets that have not authenticated are capped per address and
        // in all, so idle or slow sockets cannot use up the threads
        // everyone else needs.
        let ip = http::canonical_ip(peer.ip());
        let caps = (
            limits.max_unauth_per_ip,
            limits.max_unauth_total.min(limits.max_connections),
        );
        let slot = match UnauthSlot::claim(shared, ip, &stream, caps) {
            Ok(slot) => slot,
            Err(why) => {
                shared.close_socket();
                http::busy(
                    stream,
                    match why {
                        NoSlot::PerAddress => {
                            "too many unauthenticated connections from this address"
                        }
                        NoSlot::Total => "too many unauthenticated connections",
                    },
                );
                continue;
            }
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
