//! An authenticated connection after `hello-ok`: requests are read and
//! answered, and events queued by other threads are written with this
//! connection's own `seq`, until either side closes.
//!
//! A request answered later (`node.invoke`) leaves its deadline here: the
//! poll sleeps no longer than the nearest one, and at it this thread asks
//! the pending table for the request and, if the answer has not come
//! first, answers the timeout itself. The keepalive lives here too: a
//! ping every `ping_interval()`, and a peer that has not answered the
//! last one by the next is closed, so a vanished node leaves the
//! registry within two intervals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::Message;

use super::transport::{finish, Conn};
use super::{close, ping_interval, End, WRITE_STALL};
use crate::config::Limits;
use crate::methods::{self, Answer, Caller, Ctx, Refusal};
use crate::protocol::{self, ErrorShape, Inbound};
use crate::state::{ConnId, Next, Outbox, PresenceKey, Reply, Shared};

/// A request of this connection answered later: when to give up on it,
/// its key in the pending table and its id.
struct Waiting {
    deadline: Instant,
    key: Arc<str>,
    req_id: Box<str>,
}

/// The server's side of the keepalive: when the next ping is due and
/// whether the last one is still unanswered.
struct Keepalive {
    every: Duration,
    next: Instant,
    awaiting: bool,
}

impl Keepalive {
    fn new(every: Duration) -> Keepalive {
        Keepalive {
            every,
            next: Instant::now() + every,
            awaiting: false,
        }
    }

    /// At the due time: closes a peer that did not answer the last ping,
    /// else pings (when the socket can take it; a peer that does not read
    /// is left to the write-stall limit).
    fn tick(&mut self, conn: &mut Conn) -> Result<(), End> {
        let now = Instant::now();
        if now < self.next {
            return Ok(());
        }
        if self.awaiting {
            // The code clients use for their own tick timeout: a
            // transient drop, after which they reconnect.
            return Err(close(4000, "pong timeout"));
        }
        if !conn.want_write {
            conn.ping()?;
            self.awaiting = true;
        }
        self.next = now + self.every;
        Ok(())
    }
}

/// What this connection was promised at `connect`, from that moment's
/// configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Consecutive denied requests allowed before the socket is closed.
    max_denials: u32,
    /// The largest reply sent; a larger one becomes an error reply.
    max_payload: usize,
    /// How long a large or fragmented message may take to arrive whole
    /// (`bodyTimeoutMs`): its bytes hold part of the large-frame budget.
    message_timeout: Duration,
}

impl Bounds {
    pub(super) fn new(l: &Limits) -> Bounds {
        Bounds {
            max_denials: l.max_unauthorized_calls,
            max_payload: l.max_payload,
            message_timeout: Duration::from_millis(l.body_timeout_ms),
        }
    }
}

/// The peer sent a close frame, before `connect` or after. tungstenite has
/// queued the answer: the peer's own code, or 1002 "Protocol violation"
/// when that code may not be sent on the wire (RFC 6455 §7.4: below 1000,
/// 1004 to 1006, 1015, 1016 to 2999, 5000 and above). Dropping the socket
/// now would lose it and leave the peer a bare EOF; `finish` writes it
/// within its bounded linger (the code given to `finish` is not sent, as
/// tungstenite sends no second close frame).
pub(super) fn peer_closed(conn: &mut Conn) -> End {
    finish(conn.ws, 1000, "");
    End::Gone
}

/// An authenticated connection after `hello-ok`.
pub(super) struct Connection {
    id: ConnId,
    caller: Caller,
    /// Its presence entry, when it is listed (clients in mode `cli` are not).
    listed: Option<PresenceKey>,
    outbox: Arc<Outbox>,
    bounds: Bounds,
}

impl Connection {
    pub(super) fn new(
        id: ConnId,
        caller: Caller,
        listed: Option<PresenceKey>,
        outbox: Arc<Outbox>,
        bounds: Bounds,
    ) -> Connection {
        Connection {
            id,
            caller,
            listed,
            outbox,
            bounds,
        }
    }

    pub(super) fn id(&self) -> ConnId {
        self.id
    }

    pub(super) fn listed(&self) -> Option<&PresenceKey> {
        self.listed.as_ref()
    }

    /// Takes it off the client list and marks its presence entry gone.
    pub(super) fn leave(&self, shared: &Shared) {
        shared.unregister(self.id);
        if let Some(key) = &self.listed {
            shared.presence_leave(key);
        }
    }

    pub(super) fn run(&self, shared: &Arc<Shared>, conn: &mut Conn) -> End {
        let mut seq: u64 = 0;
        let mut denials: u32 = 0;
        let mut stalled: Option<Instant> = None;
        let mut later: Vec<Waiting> = Vec::new();
        let mut keepalive = Keepalive::new(ping_interval());
        loop {
            let step = (|| -> Result<(), End> {
                // Requests are read only while replies can be written: a
                // peer that does not read its answers stops being read,
                // and TCP pushes back on it instead of our memory.
                while !conn.want_write {
                    let Some(msg) = conn.read()? else { break };
                    match msg {
                        Message::Text(t) => {
                            self.on_text(shared, conn, t.as_str(), &mut denials, &mut later)?
                        }
                        Message::Binary(_) => {
                            let e = ErrorShape::invalid(
                                "invalid frame: binary frames are not supported",
                            );
                            conn.send(protocol::res_err("invalid", &e))?;
                        }
                        Message::Close(_) => return Err(peer_closed(conn)),
                        Message::Pong(_) => keepalive.awaiting = false,
                        _ => {}
                    }
                    if denials > self.bounds.max_denials {
                        return Err(close(1008, "too many unauthorized requests"));
                    }
                }
                self.expire(shared, &mut later);
                if conn.want_write {
                    // Events wait in the bounded outbox. A close request
                    // (shutdown, slow consumer) cannot be written either,
                    // so it drops the socket.
                    if self.outbox.close_requested() {
                        return Err(End::Gone);
                    }
                } else {
                    self.write_events(conn, &mut seq, &mut later)?;
                }
                keepalive.tick(conn)?;
                conn.flush()?;
                let mut timeout = if conn.want_write {
                    let since = *stalled.get_or_insert_with(Instant::now);
                    let left = WRITE_STALL.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        log::info!("dropping a client that has not read for {WRITE_STALL:?}");
                        return Err(End::Gone);
                    }
                    Some(left)
                } else {
                    stalled = None;
                    None
                };
                if let Some(since) = conn.message_since() {
                    let left = self.bounds.message_timeout.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        return Err(close(1008, "message not completed in time"));
                    }
                    timeout = Some(timeout.map_or(left, |t| t.min(left)));
                }
                let now = Instant::now();
                let due = later
                    .iter()
                    .map(|w| w.deadline)
                    .fold(keepalive.next, Instant::min);
                // Rounded up, so the poll does not wake a moment early
                // and spin until the deadline.
                let left = due.saturating_duration_since(now) + Duration::from_millis(1);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
                conn.wait(Some(self.outbox.wake_fd()), timeout)
            })();
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Writes queued events until the outbox is empty or the socket would
    /// block; each event gets this connection's next `seq` as it is written,
    /// so dropped events leave no gaps.
    fn write_events(
        &self,
        conn: &mut Conn,
        seq: &mut u64,
        later: &mut Vec<Waiting>,
    ) -> Result<(), End> {
        self.outbox.begin();
        while !conn.want_write {
            match self.outbox.pop() {
                Next::Empty => break,
                Next::Close(code, reason) => return Err(End::Close(code, reason)),
                Next::Reply(r) => {
                    if let Some(i) = later.iter().position(|w| w.req_id == r.req_id) {
                        later.swap_remove(i);
                    }
                    conn.write(r.frame)?;
                }
                Next::Event(ev) => {
                    let n = if ev.directed {
                        None
                    } else {
                        *seq += 1;
                        Some(*seq)
                    };
                    let frame = protocol::event_frame(ev.name, &ev.payload, n, ev.state_version);
                    conn.write(frame)?;
                }
            }
        }
        Ok(())
    }

    /// Answers the requests whose deadline passed, unless their answer
    /// came first: the timeout goes through the outbox like any reply.
    fn expire(&self, shared: &Shared, later: &mut Vec<Waiting>) {
        if later.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < later.len() {
            if later[i].deadline > now {
                i += 1;
                continue;
            }
            let w = later.swap_remove(i);
            if let Some(frame) = shared.later_expired(&w.key, self.id, &w.req_id) {
                self.outbox.push_reply(Reply {
                    req_id: w.req_id,
                    frame,
                });
            }
        }
    }

    fn on_text(
        &self,
        shared: &Arc<Shared>,
        conn: &mut Conn,
        text: &str,
        denials: &mut u32,
        later: &mut Vec<Waiting>,
    ) -> Result<(), End> {
        let reply = match protocol::parse_frame(text) {
            Err(protocol::FrameError::NotJson(e)) => protocol::res_err(
                "invalid",
                &ErrorShape::invalid(format!("invalid frame: {e}")),
            ),
            Err(protocol::FrameError::NotObject) => protocol::res_err(
                "invalid",
                &ErrorShape::invalid("invalid frame: expected an object"),
            ),
            Ok(Inbound::Cancel) => return Ok(()),
            Ok(Inbound::Invalid { id, why }) => protocol::res_err(
                id.as_deref().unwrap_or("invalid"),
                &ErrorShape::invalid(why),
            ),
            Ok(Inbound::Req { id, method, params }) => {
                if method == "connect" {
                    protocol::res_err(&id, &ErrorShape::invalid("connect already completed"))
                } else {
                    match methods::authorize(&self.caller, &method) {
                        Err(Refusal::Unknown(e)) => {
                            log::debug!(
                                "{} {}: unknown method",
                                self.id,
                                protocol::clip(&method, 64)
                            );
                            protocol::res_err(&id, &e)
                        }
                        Err(Refusal::Denied(e)) => {
                            log::debug!("{} {method}: refused ({})", self.id, e.message);
                            *denials += 1;
                            protocol::res_err(&id, &e)
                        }
                        Ok(m) => {
                            *denials = 0;
                            // One configuration snapshot per request.
                            let live = shared.live();
                            let ctx = Ctx {
                                shared,
                                live: &live,
                                caller: &self.caller,
                                req_id: &id,
                                max_payload: self.bounds.max_payload,
                                params,
                            };
                            let started = Instant::now();
                            let result = m.call(&ctx);
                            let took = Millis(started.elapsed());
                            match result {
                                Ok(Answer::Later(l)) => {
                                    log::debug!("{} {method}: answered later", self.id);
                                    later.push(Waiting {
                                        deadline: l.deadline,
                                        key: l.key,
                                        req_id: id.as_str().into(),
                                    });
                                    return Ok(());
                                }
                                Ok(Answer::NowAndLater(payload, l)) => {
                                    log::debug!("{} {method}: accepted in {took} ms", self.id);
                                    later.push(Waiting {
                                        deadline: l.deadline,
                                        key: l.key,
                                        req_id: id.as_str().into(),
                                    });
                                    self.bounded(&id, protocol::res_ok(&id, &payload))
                                }
                                Ok(Answer::Frame(frame)) => {
                                    log::debug!("{} {method}: replayed in {took} ms", self.id);
                                    self.bounded(&id, frame)
                                }
                                Ok(Answer::Now(payload)) => {
                                    let reply = self.bounded(&id, protocol::res_ok(&id, &payload));
                                    log::debug!(
                                        "{} {method}: ok in {took} ms ({} bytes)",
                                        self.id,
                                        reply.len()
                                    );
                                    reply
                                }
                                Err(e) => {
                                    log::debug!(
                                        "{} {method}: {} in {took} ms: {}",
                                        self.id,
                                        e.code,
                                        e.message
                                    );
                                    protocol::res_err(&id, &e)
                                }
                            }
                        }
                    }
                }
            }
        };
        conn.send(reply)
    }

    /// `reply`, or an error reply in its place when it would exceed the
    /// `maxPayload` this connection was promised: a client would drop the
    /// connection over a frame larger than that.
    fn bounded(&self, id: &str, reply: String) -> String {
        if reply.len() <= self.bounds.max_payload {
            return reply;
        }
        let e = ErrorShape::unavailable(format!(
            "reply too large: {} bytes, over maxPayload ({} bytes)",
            reply.len(),
            self.bounds.max_payload
        ));
        protocol::res_err(id, &e)
    }
}

/// A duration as milliseconds with three decimals ("0.042"), for the
/// debug log; integer arithmetic keeps float formatting out of the binary.
struct Millis(std::time::Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = self.0.as_micros();
        write!(f, "{}.{:03}", us / 1000, us % 1000)
    }
}
