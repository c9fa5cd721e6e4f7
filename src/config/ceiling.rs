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
//!   within `maxBufferedBytes`, plus one frame's slack, plus one
//!   `maxPayload` an outbox keeps for replies answered later (a node's
//!   result), which events never take.
//!
//! Shared: the large-frame budget (four `maxPayload`s), the presence table
//! (200 entries of at most ~7 KiB, kept twice: fields and text), the
//! failed-auth table (10,000 addresses), the idempotent answers kept
//! (1 MiB), and the process itself.
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

/// What the cache of idempotent `node.invoke` answers may hold, all
/// nodes together (`state` keeps it to this).
pub const IDEM_MAX_BYTES: usize = 1024 * 1024;

pub fn ceiling(l: &Limits) -> Ceiling {
    let stack = l.thread_stack_bytes as u64;
    let reading = 4 * KIB + 64 * KIB + 64 * KIB;
    let parsing = 64 * KIB + MAX_PARAM_NODES as u64 * NODE_BYTES;
    let writing = l.max_buffered_bytes as u64 + l.max_payload as u64 + 64 * KIB;
    let per_connection = stack + reading + parsing + writing;
    let presence = 200 * 14 * KIB;
    let limiter = 10_000 * 128;
    // The binary's resident pages, the heap's own overhead, the listeners
    // and the small fixed tables: measured idle RSS is under 3 MiB.
    let process = 4 * MIB;
    let idempotent = IDEM_MAX_BYTES as u64;
    let shared = l.large_frame_budget() as u64 + presence + limiter + idempotent + process;
    Ceiling {
        per_connection,
        shared,
        total: per_connection * l.max_connections as u64 + shared,
    }
}

/// What agent runs may hold at once, on top of [`ceiling`]: per running
/// session, its thread's stack (256 KiB), the history sent upstream
/// (at most 1 MiB, kept twice: as read and as sent), a CLI backend's
/// output (1 MiB) and the reply being streamed (bounded by that output or
/// by the transcript size); and every admitted run's message, 256 runs at
/// most (executing or waiting).
pub fn runs_ceiling(a: &super::agents::AgentSettings) -> u64 {
    let reply = MIB.min(a.max_transcript_bytes);
    let per_run = 256 * KIB + 2 * MIB + MIB + reply;
    per_run * a.max_concurrent as u64 + 256 * a.max_message_bytes as u64
}

/// What the host allows the process, read at start and at each reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// Its memory, in bytes.
    pub mem_total: Option<u64>,
    /// The descriptors the process may open (after raising the soft limit).
    pub nofile: Option<u64>,
}

/// Descriptors kept for the process itself: stdio, listeners, the lock
/// and log files, the notify socket, the accept loop's reserve, and room.
const RESERVED_FDS: u64 = 32;
/// Each client holds two descriptors: its socket, and its eventfd (or,
/// before it authenticates, a duplicate that lets it be evicted).
const FDS_PER_CLIENT: u64 = 2;
const MIN_CONNECTIONS: u64 = 16;
const MAX_AUTO_CONNECTIONS: u64 = 16_384;

/// Sizes `maxConnections` to the host. Unset, it is derived: as many
/// clients as three quarters of the memory hold at their worst case (see
/// [`ceiling`]), at least 16, at most 16,384. Set or derived, it never
/// exceeds what the descriptor limit allows. Returns what was decided, for
/// the log.
pub fn fit_to_host(l: &mut Limits, host: &Host) -> Vec<String> {
    let mut notes = Vec::new();
    let by_fd = host
        .nofile
        .map(|n| (n.saturating_sub(RESERVED_FDS) / FDS_PER_CLIENT).max(1));
    if l.auto_connections {
        let c = ceiling(&Limits {
            max_connections: 0,
            ..l.clone()
        });
        let by_mem = host
            .mem_total
            .map(|m| (m / 4 * 3).saturating_sub(c.shared) / c.per_connection);
        let n = match (by_mem, by_fd) {
            (Some(m), Some(f)) => m.min(f),
            (Some(m), None) => m,
            (None, Some(f)) => f.min(l.max_connections as u64),
            (None, None) => l.max_connections as u64,
        }
        .clamp(MIN_CONNECTIONS, MAX_AUTO_CONNECTIONS);
        l.max_connections = n as usize;
        notes.push(format!(
            "maxConnections {n}, sized to this host ({} of memory, {} descriptors): set gateway.limits.maxConnections to choose",
            host.mem_total.map_or_else(|| "unknown".into(), human),
            host.nofile.map_or_else(|| "unknown".into(), |n| n.to_string()),
        ));
    }
    if let Some(f) = by_fd {
        if l.max_connections as u64 > f {
            notes.push(format!(
                "maxConnections lowered from {} to {f}: the descriptor limit is {} and each client takes {FDS_PER_CLIENT}",
                l.max_connections,
                host.nofile.unwrap_or(0)
            ));
            l.max_connections = f as usize;
        }
    }
    let total = ceiling(l).total;
    if let Some(m) = host.mem_total {
        if total > m {
            notes.push(format!(
                "the memory ceiling ({}) is more than this host has ({}): lower maxConnections, maxBufferedBytes or maxPayload",
                human(total),
                human(m)
            ));
        }
    }
    notes
}

/// `bytes` for people: "2.3 GiB", "512.0 MiB". In integer tenths, not
/// through `f64`: float formatting would add about 13 KiB to the binary.
pub fn human(bytes: u64) -> String {
    let (unit, name) = match bytes {
        b if b >= 1024 * MIB => (1024 * MIB, "GiB"),
        _ => (MIB, "MiB"),
    };
    let tenths = (u128::from(bytes) * 10 + u128::from(unit) / 2) / u128::from(unit);
    format!("{}.{} {name}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_is_connections_times_their_bound_plus_what_is_shared() {
        let l = Limits::default();
        let c = ceiling(&l);
        assert_eq!(c.total, c.per_connection * 256 + c.shared);
        // Writing dominates: maxBufferedBytes is 8 MiB by default, and
        // replies answered later may take one maxPayload (4 MiB) more.
        assert!(
            c.per_connection > 12 * MIB && c.per_connection < 13 * MIB,
            "{c:?}"
        );
        assert!(c.shared > 16 * MIB && c.shared < 26 * MIB, "{c:?}");
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

    const GIB: u64 = 1024 * MIB;

    #[test]
    fn an_unset_connection_cap_is_sized_to_memory_and_descriptors() {
        let host = |mem: u64, fds: u64| Host {
            mem_total: Some(mem),
            nofile: Some(fds),
        };
        let mut l = Limits::default();
        fit_to_host(&mut l, &host(24 * GIB, 1 << 20));
        assert!(l.max_connections >= 1000, "{}", l.max_connections);
        let mut l = Limits::default();
        let notes = fit_to_host(&mut l, &host(24 * GIB, 1024));
        assert_eq!(l.max_connections, (1024 - 32) / 2);
        assert!(notes[0].contains("sized to this host"), "{notes:?}");
        // A router: the floor, and a warning that the ceiling is too high.
        let mut l = Limits::default();
        let notes = fit_to_host(&mut l, &host(64 * MIB, 4096));
        assert_eq!(l.max_connections, 16);
        assert!(
            notes.iter().any(|n| n.contains("more than this host has")),
            "{notes:?}"
        );
    }

    #[test]
    fn a_set_connection_cap_is_kept_unless_descriptors_forbid_it() {
        let mut l = Limits {
            max_connections: 300,
            auto_connections: false,
            ..Limits::default()
        };
        let host = Host {
            mem_total: Some(64 * GIB),
            nofile: Some(1 << 20),
        };
        assert!(fit_to_host(&mut l, &host).is_empty());
        assert_eq!(l.max_connections, 300);
        let notes = fit_to_host(
            &mut l,
            &Host {
                nofile: Some(64),
                ..host
            },
        );
        assert_eq!(l.max_connections, 16);
        assert!(
            notes[0].starts_with("maxConnections lowered from 300 to 16"),
            "{notes:?}"
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(512 * MIB), "512.0 MiB");
        assert_eq!(human(3 * 1024 * MIB / 2), "1.5 GiB");
    }
}
