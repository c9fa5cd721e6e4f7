//! The most memory the gateway can use, worked out from its limits.
//!
//! Every buffer a peer can fill is bounded, and each bound is a term here.
//! Per connection (at most `maxConnections` of them):
//! - its thread's stack, `threadStackBytes` (only touched pages count, and
//!   an idle one touches about 20 KiB, but a deep request may touch all);
//! - reading: tungstenite's 4 KiB buffer, one frame of up to 64 KiB being
//!   assembled and the same again as a message (larger frames come out of
//!   the shared budget below);
//! - parsing: params are read from at most 64 KiB of text into a tree of
//!   at most [`MAX_PARAM_NODES`] values;
//! - writing: the outbox and tungstenite's write buffer together stay
//!   within `maxBufferedBytes`, plus one frame's slack.
//!
//! Shared: the large-frame budget (four `maxPayload`s), the presence table
//! (200 entries of at most ~7 KiB, kept twice: fields and text), the
//! failed-auth table (10,000 addresses), and the process itself.
//!
//! The gateway logs the result at start and reports it in `status`, so an
//! operator can size the limits to the host.

use super::Limits;
use crate::protocol::MAX_PARAM_NODES;
/// What one value of a params tree can take: the value, its place in an
/// array or map, and a short key.
const NODE_BYTES: u64 = 96;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The result, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceiling {
    pub per_connection: u64,
    pub shared: u64,
    pub total: u64,
}

pub fn ceiling(l: &Limits) -> Ceiling {
    let stack = l.thread_stack_bytes as u64;
    let reading = 4 * KIB + 64 * KIB + 64 * KIB;
    let parsing = 64 * KIB + MAX_PARAM_NODES as u64 * NODE_BYTES;
    let writing = l.max_buffered_bytes as u64 + 64 * KIB;
    let per_connection = stack + reading + parsing + writing;
    let presence = 200 * 14 * KIB;
    let limiter = 10_000 * 128;
    // The binary's resident pages, the heap's own overhead, the listeners
    // and the small fixed tables: measured idle RSS is under 3 MiB.
    let process = 4 * MIB;
    let shared = l.large_frame_budget() as u64 + presence + limiter + process;
    Ceiling {
        per_connection,
        shared,
        total: per_connection * l.max_connections as u64 + shared,
    }
}

/// `bytes` for people: "2.3 GiB", "512.0 MiB".
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * MIB => format!("{:.1} GiB", b as f64 / (1024 * MIB) as f64),
        b => format!("{:.1} MiB", b as f64 / MIB as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_is_connections_times_their_bound_plus_what_is_shared() {
        let l = Limits::default();
        let c = ceiling(&l);
        assert_eq!(c.total, c.per_connection * 256 + c.shared);
        // Writing dominates: maxBufferedBytes is 8 MiB by default.
        assert!(
            c.per_connection > 8 * MIB && c.per_connection < 9 * MIB,
            "{c:?}"
        );
        assert!(c.shared > 16 * MIB && c.shared < 24 * MIB, "{c:?}");
        let small = Limits {
            max_connections: 32,
            max_payload: 256 * 1024,
            max_buffered_bytes: 512 * 1024,
            ..Limits::default()
        };
        let s = ceiling(&small);
        assert!(
            s.total < 64 * MIB,
            "a router-sized configuration: {}",
            human(s.total)
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(512 * MIB), "512.0 MiB");
        assert_eq!(human(3 * 1024 * MIB / 2), "1.5 GiB");
    }
}
