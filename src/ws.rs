//! One WebSocket connection, from `connect.challenge` to close.
//!
//! The thread owns the socket. It is non-blocking and the thread sleeps in
//! `poll` on two fds: the socket and the outbox's eventfd, which other
//! threads signal after queueing an event. So reads, replies and broadcasts
//! interleave without a second thread per connection and without timed
//! polling. This module never holds the state lock while writing.

mod connection;
mod direct;
mod handshake;
mod pairing;
mod tap;
mod transport;

use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::WebSocket;

use crate::auth::Peer;
use crate::protocol;
use crate::state::{now_ms, Shared, UnauthSlot};
use crate::sys;
use tap::Tap;
use transport::{finish, Conn};

/// How long a client may leave our writes blocked (not reading at all)
/// before it is dropped: twice the default tick interval, after which
/// OpenClaw clients give up on a silent gateway themselves.
const WRITE_STALL: Duration = Duration::from_secs(60);

/// How often an authenticated socket is pinged; one that has not answered
/// by the next ping is closed. 25 s as the reference does: under the
/// 30 s idle timeout of common NATs and proxies, and a vanished node
/// leaves the registry (failing its invokes) within 50 s, where the
/// kernel's keepalive would take minutes.
const PING_INTERVAL: Duration = Duration::from_secs(25);

/// `PING_INTERVAL`, or `CLAWGATE_TEST_PING_MS` (at least 50 ms) so the
/// tests can see a silent peer closed without waiting 50 s. Read once. An
/// environment variable rather than a setting: the reference has no
/// keepalive setting, and a client cannot tell one interval from another.
pub(crate) fn ping_interval() -> Duration {
    static INTERVAL: OnceLock<Duration> = OnceLock::new();
    *INTERVAL.get_or_init(|| {
        std::env::var("CLAWGATE_TEST_PING_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(PING_INTERVAL, |ms| Duration::from_millis(ms.max(50)))
    })
}

/// How a connection ends, decided by the protocol layer.
enum End {
    /// Send a close frame with this code and reason, then linger.
    Close(u16, String),
    /// The peer is gone or closed cleanly; nothing more to send.
    Gone,
}

fn close(code: u16, reason: impl Into<String>) -> End {
    End::Close(code, reason.into())
}

/// Serves an upgraded socket: `leftover` holds what the peer sent after
/// the upgrade request; `slot` is its address's place among the sockets
/// that have not authenticated, released once `hello-ok` is sent.
pub fn serve(
    shared: &Arc<Shared>,
    stream: TcpStream,
    leftover: Vec<u8>,
    peer: Peer,
    mut slot: UnauthSlot,
) {
    // This connection's limits until `connect`, which takes its own
    // snapshot for the secret and what it advertises.
    let live = shared.live();
    let limits = &live.settings.limits;
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    // A peer that vanished without a FIN (unplugged, out of range) is found
    // by the kernel instead of holding its thread until the next write.
    let _ = sys::set_tcp_keepalive(&stream, 60);
    // tungstenite's write buffer holds at most one reply (never larger than
    // `maxPayload`) plus what the socket did not take: the connection
    // stops reading while a write would block.
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(limits.max_payload + 64 * 1024)
        .max_message_size(Some(limits.max_pre_hello_frame_bytes))
        .max_frame_size(Some(limits.max_pre_hello_frame_bytes));
    let tap = Tap::new(stream, leftover, shared.frame_budget());
    let mut ws = WebSocket::from_raw_socket(tap, Role::Server, Some(cfg));
    let nonce = sys::uuid_v4();
    let mut conn = Conn {
        ws: &mut ws,
        want_write: false,
    };
    let sent = handshake::Sent {
        nonce: &nonce,
        ts_ms: now_ms(),
        at: std::time::Instant::now(),
    };
    let end = match conn.send(protocol::challenge_frame(&nonce, sent.ts_ms)) {
        Err(end) => end,
        Ok(()) => match handshake::handshake(shared, &live, &mut conn, peer, &mut slot, sent) {
            Err(end) => end,
            Ok(connection) => {
                let end = connection.run(shared, &mut conn);
                connection.leave(shared);
                match &end {
                    End::Close(code, reason) => {
                        log::debug!("{} closed by the gateway: {code} {reason}", connection.id());
                    }
                    End::Gone => log::debug!("{} closed by the client", connection.id()),
                }
                end
            }
        },
    };
    drop(slot);
    if let End::Close(code, reason) = end {
        finish(&mut ws, code, &reason);
    }
}
