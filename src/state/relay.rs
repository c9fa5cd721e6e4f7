//! `Shared`'s side of the nodes and of requests answered later: the node
//! registry, the `node.invoke` relay and its endings.
//!
//! An invoke is an entry in the pending table, keyed by the id sent to the
//! node. Whoever removes its waiters answers them, once, into each
//! waiter's outbox as a reply: the node's thread with the result, the
//! waiter's own thread at its deadline, or the node's leaving (UNAVAILABLE).
//! Every answer is built and pushed after the state lock is released; the
//! lock is taken only to look up, take and record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::idem::{Bounds, Outcome};
use super::nodes::{NodeInfo, NotAllowed, Route};
use super::pending::{Caps, Entry, Full, Waiter, Work};
use super::{Audience, ConnId, Delivery, Outbox, QueuedEvent, Reply, Shared};
use crate::protocol::{self, ErrorShape, SCOPE_READ};

/// How long an idempotent answer is replayed, as the reference keeps its
/// own (PROTOCOL.md §5).
pub const IDEM_TTL: Duration = Duration::from_secs(5 * 60);

/// What may wait for a later answer at once. Each waiter is a few hundred
/// bytes and at most one reply in its connection's outbox, which that
/// outbox bounds; the caps keep a flood of invokes a refusal, not a queue.
pub(super) const PENDING_CAPS: Caps = Caps {
    total: 1024,
    per_worker: 64,
    per_conn: 64,
    per_entry: 16,
};

/// The idempotent answers kept: as many as the reference (1000), in at
/// most 1 MiB (a router's share), none over 256 KiB.
pub const IDEM_BOUNDS: Bounds = Bounds {
    ttl: IDEM_TTL,
    max_entries: 1000,
    max_bytes: crate::config::IDEM_MAX_BYTES,
    max_entry: 256 * 1024,
};

/// A request registered to be answered later: the connection answers a
/// timeout itself at `deadline` unless the answer came first.
#[derive(Debug, Clone)]
pub struct Later {
    pub key: Arc<str>,
    pub deadline: Instant,
}

/// A `node.invoke` as the method handler hands it over.
#[derive(Debug)]
pub struct Invoke<'a> {
    pub waiter: Waiter,
    pub node_id: &'a str,
    pub command: &'a str,
    pub idempotency_key: Option<&'a str>,
    /// The `node.invoke.request` payload, built before locking; its `id`
    /// is `key`.
    pub key: Arc<str>,
    pub request: String,
}

/// How `Shared::invoke` went.
#[derive(Debug)]
pub enum Invoked {
    /// Sent to the node (or joined to the same idempotent request in
    /// flight): the answer comes later.
    Later(Later),
    /// The same idempotent request was answered within `IDEM_TTL`.
    Cached(Outcome),
    NotConnected,
    NotAllowed(NotAllowed),
    Busy(Full),
}

/// The reference's error for a node's failure: `UNAVAILABLE "<code>:
/// <message>"`, with what the node said and whether it had the command.
pub fn node_error(error: &Value, dispatched: bool) -> ErrorShape {
    let field = |k: &str| {
        error
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let message = field("message").unwrap_or("node invoke failed");
    let message = match field("code") {
        Some(code) => format!("{code}: {message}"),
        None => message.to_string(),
    };
    ErrorShape::unavailable(message)
        .with_details(json!({"nodeError": error, "nodeCommandDispatched": dispatched}))
}

fn ended(code: &str, message: String) -> ErrorShape {
    node_error(&json!({"code": code, "message": message}), true)
}

/// The waiter's frame for `outcome`, within what its connection accepts.
fn frame(w: &Waiter, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok(text) => {
            let f = protocol::res_ok_json(&w.req_id, text);
            if f.len() <= w.max_payload {
                return f;
            }
            let e = ErrorShape::unavailable(format!(
                "reply too large: {} bytes, over maxPayload ({} bytes)",
                f.len(),
                w.max_payload
            ));
            protocol::res_err(&w.req_id, &e)
        }
        Outcome::Err(e) => protocol::res_err(&w.req_id, e),
    }
}

/// Waiters to answer, each with its connection's outbox (none when it
/// left).
type Targets = Vec<(Option<Arc<Outbox>>, Waiter)>;

fn answer(targets: Targets, outcome: &Outcome) {
    for (outbox, w) in targets {
        if let Some(o) = outbox {
            let frame = frame(&w, outcome);
            o.push_reply(Reply {
                req_id: w.req_id,
                frame,
            });
        }
    }
}

impl Shared {
    /// Registers a node that completed `connect` on `conn`.
    pub fn node_connected(&self, conn: ConnId, info: NodeInfo) {
        self.state().nodes.connected(conn, info);
    }

    /// The connection `conn` left (`unregister` calls this for every
    /// one): if it was a node, it is unlisted and its invokes in flight
    /// fail UNAVAILABLE; its own requests waiting for an answer are
    /// dropped, as nobody is left to read one.
    pub fn node_gone(&self, conn: ConnId) {
        let failed = {
            let mut st = self.state();
            st.nodes.gone(conn);
            let failed = st.pending.drop_conn(conn);
            st.waiter_outboxes(failed)
        };
        Self::fail(failed);
    }

    /// Answers the waiters of entries whose worker left.
    fn fail(failed: Vec<(Work, Targets)>) {
        for (work, targets) in failed {
            let Work::Invoke { command, .. } = work;
            let e = ended("DISCONNECTED", format!("node disconnected ({command})"));
            answer(targets, &Outcome::Err(e));
        }
    }

    /// Makes `caps` and `commands` the approved surface of node `node_id`,
    /// live for the next invoke; settles a pending surface request.
    /// `false` when that node is not connected.
    pub fn node_surface_approved(
        &self,
        node_id: &str,
        caps: Vec<String>,
        commands: Vec<String>,
        approved_at_ms: u64,
    ) -> bool {
        self.state()
            .nodes
            .approve(node_id, caps, commands, approved_at_ms)
    }

    /// Marks a surface request of node `node_id` as waiting for approval,
    /// or (`None`) that none waits any more (it was rejected).
    pub fn node_surface_pending(&self, node_id: &str, request_id: Option<&str>) -> bool {
        self.state().nodes.pending(node_id, request_id)
    }

    /// The `node.list` entries of the connected nodes.
    pub fn nodes_snapshot(&self) -> Vec<Value> {
        self.state().nodes.entries()
    }

    pub fn node_entry(&self, node_id: &str) -> Option<Value> {
        self.state().nodes.entry(node_id)
    }

    /// The node id of the node on `conn`.
    pub fn node_id_of(&self, conn: ConnId) -> Option<Arc<str>> {
        self.state().nodes.id_of(conn)
    }

    /// Keeps the host stats of the node on `conn` and tells the operators
    /// who may read them. Droppable: the next report supersedes it, and
    /// `node.list` has the latest.
    pub fn node_host_stats(&self, conn: ConnId, stats: Value) -> Option<Arc<str>> {
        let (id, fanout) = {
            let mut st = self.state();
            let id = st.nodes.host_stats(conn, stats.clone())?;
            let payload = json!({"nodeId": &*id, "hostStats": stats}).to_string();
            let event = QueuedEvent::new("node.hostStats", payload, None);
            let to = Audience::Scope(SCOPE_READ);
            (id, st.clients.fanout(to, event, Delivery::Droppable))
        };
        fanout.deliver();
        Some(id)
    }

    /// Sends a `node.invoke` to its node, or answers it from the
    /// idempotency cache, or says why not.
    pub fn invoke(&self, inv: Invoke) -> Invoked {
        let now = Instant::now();
        let idem = inv
            .idempotency_key
            .map(|k| format!("{}\n{}\n{k}", inv.node_id, inv.command).into_boxed_str());
        let later = Later {
            key: inv.key.clone(),
            deadline: inv.waiter.deadline,
        };
        let node = {
            let mut st = self.state();
            let node_conn = match st.nodes.route(inv.node_id, inv.command) {
                Route::To(c) => c,
                Route::NotConnected => return Invoked::NotConnected,
                Route::NotAllowed(n) => return Invoked::NotAllowed(n),
            };
            if let Some(idem) = &idem {
                if let Some(o) = st.idem.get(idem, now) {
                    return Invoked::Cached(o);
                }
                // The same request is in flight: this one shares its
                // answer, so the command runs once.
                if let Some(key) = st.pending.in_flight(idem) {
                    return match st.pending.join(&key, inv.waiter) {
                        Ok(()) => Invoked::Later(Later { key, ..later }),
                        Err(full) => Invoked::Busy(full),
                    };
                }
            }
            if let Err(full) = st.pending.check(inv.waiter.conn, node_conn) {
                return Invoked::Busy(full);
            }
            let work = Work::Invoke {
                node_id: inv.node_id.into(),
                command: inv.command.into(),
            };
            let entry = Entry {
                waiters: vec![inv.waiter],
                worker: node_conn,
                work,
                idem,
            };
            st.pending.insert(inv.key, entry);
            st.clients.outboxes(Audience::Conn(node_conn)).pop()
        };
        // A node that cannot take it is closing: its leaving fails the
        // entry, so nobody waits in vain.
        if let Some(o) = node {
            o.push(
                QueuedEvent::directed("node.invoke.request", inv.request),
                Delivery::Required,
            );
        }
        Invoked::Later(later)
    }

    /// The node on `conn` answered the request sent under `key`: `build`
    /// makes the answer (outside the lock) from what was asked. `false`
    /// when nobody waits for it any more (late, unknown or not this
    /// node's): the caller says it was ignored.
    pub fn invoke_result(
        &self,
        conn: ConnId,
        key: &str,
        build: impl FnOnce(&Work) -> Outcome,
    ) -> bool {
        let work = match self.state().pending.peek(key) {
            Some((worker, work)) if worker == conn => work.clone(),
            _ => return false,
        };
        let outcome = build(&work);
        let targets = {
            let mut st = self.state();
            match st.pending.peek(key) {
                Some((worker, _)) if worker == conn => {}
                _ => return false,
            }
            let Some(entry) = st.pending.take(key) else {
                return false;
            };
            if let Some(idem) = &entry.idem {
                st.idem.put(idem, outcome.clone(), Instant::now());
            }
            st.targets(entry.waiters)
        };
        answer(targets, &outcome);
        true
    }

    /// The waiter `(conn, req_id)` of `key` reached its deadline: its
    /// timeout reply, unless the answer came first.
    pub fn later_expired(&self, key: &str, conn: ConnId, req_id: &str) -> Option<String> {
        if let Some(run) = key.strip_prefix(super::run_relay::LATER_PREFIX) {
            return self.run_expired(run, conn, req_id);
        }
        let (waiter, work) = self.state().pending.expire(key, conn, req_id)?;
        let e = match work {
            Work::Invoke { .. } => ended("TIMEOUT", "node invoke timed out".into()),
        };
        Some(protocol::res_err(&waiter.req_id, &e))
    }
}

impl super::State {
    fn targets(&self, waiters: Vec<Waiter>) -> Targets {
        waiters
            .into_iter()
            .map(|w| (self.clients.outboxes(Audience::Conn(w.conn)).pop(), w))
            .collect()
    }

    fn waiter_outboxes(&self, entries: Vec<Entry>) -> Vec<(Work, Targets)> {
        entries
            .into_iter()
            .map(|e| (e.work, self.targets(e.waiters)))
            .collect()
    }
}
