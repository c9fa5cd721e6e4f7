//! The per-connection outbox: a byte-bounded queue of frames for one
//! connection plus an eventfd that wakes the connection's poll, so a slow
//! reader costs only its own queue and never stalls the broadcaster or
//! other clients.
//!
//! It carries events and replies that are answered later, from another
//! thread (a node's `node.invoke.result`). Events may use `max_bytes`;
//! replies may use one `maxPayload` more, a headroom events never take,
//! so the answer a client is waiting for always fits behind whatever
//! events are queued, and is never dropped while the connection lives. A
//! client that leaves more than that unread is a slow consumer like any
//! other and is closed 1008 (its retry, with the same idempotency key,
//! finds the answer cached). What an outbox holds is thus at most
//! `max_bytes + maxPayload`, the bound `config::ceiling` counts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::lock;
use crate::protocol::StateVersion;
use crate::sys::EventFd;

/// A queued frame for one connection. Events keep their payload serialized
/// once for all receivers; the connection adds its own `seq` when writing.
#[derive(Debug, Clone)]
pub struct QueuedEvent {
    pub name: &'static str,
    pub payload: Arc<str>,
    pub state_version: Option<StateVersion>,
    /// Sent to one connection for its own sake (`node.invoke.request`, a
    /// node's own `node.pair.resolved`): written without a `seq`, as the
    /// reference does, since `seq` numbers the broadcast stream.
    pub directed: bool,
}

impl QueuedEvent {
    pub fn new(name: &'static str, payload: String, sv: Option<StateVersion>) -> QueuedEvent {
        QueuedEvent {
            name,
            payload: payload.into(),
            state_version: sv,
            directed: false,
        }
    }

    /// An event for one connection, written without a `seq`.
    pub fn directed(name: &'static str, payload: String) -> QueuedEvent {
        QueuedEvent {
            directed: true,
            ..QueuedEvent::new(name, payload, None)
        }
    }
}

/// What happens to an event that does not fit a full outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Dropped: the next one supersedes it (tick, presence).
    Droppable,
    /// Never dropped: the connection is closed 1008 "slow consumer"
    /// instead.
    Required,
    /// Dropped when the outbox is full, never replacing an earlier one: a
    /// run's streamed deltas, each part of a sequence whose final is
    /// `Required` and carries the whole text.
    Lossy,
}

/// An answer to a request that was not answered at once: the whole `res`
/// frame, and the request id it answers so the connection can forget its
/// deadline.
#[derive(Debug, Clone)]
pub struct Reply {
    pub req_id: Box<str>,
    pub frame: String,
}

#[derive(Debug)]
enum Item {
    Event(QueuedEvent),
    Reply(Reply),
}

impl Item {
    fn size(&self) -> usize {
        match self {
            Item::Event(e) => event_size(e),
            Item::Reply(r) => r.frame.len(),
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Item>,
    bytes: usize,
    close: Option<(u16, String)>,
    /// Set with the first close request and never cleared: a closing
    /// connection takes no more events.
    closing: bool,
}

/// What a connection takes from its outbox next.
#[derive(Debug)]
pub enum Next {
    Event(QueuedEvent),
    Reply(Reply),
    /// Close with this code and reason: comes after every queued event.
    Close(u16, String),
    Empty,
}

#[derive(Debug)]
pub struct Outbox {
    queue: Mutex<Queue>,
    wake: EventFd,
    max_bytes: usize,
    /// What replies may use beyond `max_bytes`: the largest reply.
    reply_headroom: usize,
}

impl Outbox {
    /// An outbox holding up to `max_bytes` of events, and replies up to
    /// `reply_headroom` (`maxPayload`, the largest reply) beyond that.
    pub fn new(max_bytes: usize, reply_headroom: usize) -> std::io::Result<Outbox> {
        Ok(Outbox {
            queue: Mutex::new(Queue::default()),
            wake: EventFd::new()?,
            max_bytes,
            reply_headroom,
        })
    }

    pub fn wake_fd(&self) -> &EventFd {
        &self.wake
    }

    /// Queues an event. A droppable event (tick, presence: each is whole)
    /// replaces one of the same name still waiting, so a slow reader holds
    /// at most one of each. Over `maxBufferedBytes`, a droppable event is
    /// dropped; anything else closes the connection 1008 "slow consumer".
    pub fn push(&self, ev: QueuedEvent, delivery: Delivery) {
        let mut q = lock(&self.queue);
        if q.closing {
            return;
        }
        let size = event_size(&ev);
        if delivery == Delivery::Droppable {
            let same = q
                .items
                .iter()
                .position(|i| matches!(i, Item::Event(e) if e.name == ev.name));
            if let Some(i) = same {
                let old = q.items[i].size();
                if q.bytes - old + size <= self.max_bytes {
                    q.bytes = q.bytes - old + size;
                    q.items[i] = Item::Event(ev);
                }
                // Already queued, so the connection is already woken.
                return;
            }
        }
        if q.bytes + size > self.max_bytes {
            if delivery != Delivery::Required {
                return;
            }
            slow_consumer(&mut q);
        } else {
            q.bytes += size;
            q.items.push_back(Item::Event(ev));
        }
        self.woken(q);
    }

    /// Queues a reply to a request answered later. It is never dropped
    /// for a droppable reason: it may use the headroom beyond `max_bytes`
    /// that events never take, and only a client that has left all of
    /// that unread is closed as a slow consumer. Returns `false` when the
    /// connection is closing (and so will never read it).
    pub fn push_reply(&self, reply: Reply) -> bool {
        let mut q = lock(&self.queue);
        if q.closing {
            return false;
        }
        let size = reply.frame.len();
        if q.bytes + size > self.max_bytes + self.reply_headroom {
            slow_consumer(&mut q);
            self.woken(q);
            return false;
        }
        q.bytes += size;
        q.items.push_back(Item::Reply(reply));
        self.woken(q);
        true
    }

    /// Wakes the connection if this made its queue non-empty (or closing).
    fn woken(&self, q: std::sync::MutexGuard<'_, Queue>) {
        let first = q.items.len() <= 1;
        drop(q);
        if first {
            self.wake.signal();
        }
    }

    /// Asks the connection to close after writing what is queued.
    pub fn close(&self, code: u16, reason: &str) {
        let mut q = lock(&self.queue);
        if !q.closing {
            q.close = Some((code, reason.to_string()));
            q.closing = true;
        }
        drop(q);
        self.wake.signal();
    }

    /// Whether a close was asked for, without taking any events: for a
    /// connection that cannot write. Clears the wake-up.
    pub fn close_requested(&self) -> bool {
        self.wake.drain();
        lock(&self.queue).close.is_some()
    }

    /// Clears the wake-up before the connection starts taking events, so
    /// a push that lands while it takes them wakes it again.
    pub fn begin(&self) {
        self.wake.drain();
    }

    /// The next event, one at a time, so a connection that cannot write
    /// leaves the rest here, where `maxBufferedBytes` bounds them.
    pub fn pop(&self) -> Next {
        let mut q = lock(&self.queue);
        match q.items.pop_front() {
            Some(item) => {
                q.bytes = q.bytes.saturating_sub(item.size());
                match item {
                    Item::Event(ev) => Next::Event(ev),
                    Item::Reply(r) => Next::Reply(r),
                }
            }
            None => match q.close.take() {
                Some((code, reason)) => Next::Close(code, reason),
                None => Next::Empty,
            },
        }
    }
}

/// Nothing more is queued and what was is dropped: the connection closes
/// 1008 once it takes the close.
fn slow_consumer(q: &mut Queue) {
    q.items.clear();
    q.bytes = 0;
    q.close = Some((1008, "slow consumer".into()));
    q.closing = true;
}

/// What an event counts against `maxBufferedBytes`: its frame's size.
fn event_size(ev: &QueuedEvent) -> usize {
    ev.payload.len() + ev.name.len() + 64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: usize) -> QueuedEvent {
        QueuedEvent {
            name: "x",
            payload: "a".repeat(n).into(),
            state_version: None,
            directed: false,
        }
    }

    fn drain(o: &Outbox) -> (usize, Option<(u16, String)>) {
        let mut n = 0;
        loop {
            match o.pop() {
                Next::Event(_) | Next::Reply(_) => n += 1,
                Next::Close(code, reason) => return (n, Some((code, reason))),
                Next::Empty => return (n, None),
            }
        }
    }

    #[test]
    fn outbox_drops_droppable_events_when_full() {
        let o = Outbox::new(1000, 500).unwrap();
        o.push(ev(800), Delivery::Droppable);
        o.push(ev(800), Delivery::Droppable);
        assert_eq!(drain(&o), (1, None));
    }

    #[test]
    fn outbox_closes_slow_consumers_on_non_droppable_overflow() {
        let o = Outbox::new(1000, 500).unwrap();
        o.push(ev(800), Delivery::Droppable);
        o.push(ev(800), Delivery::Required);
        assert_eq!(drain(&o), (0, Some((1008, "slow consumer".to_string()))));
        // Nothing more is queued once closing.
        o.push(ev(1), Delivery::Required);
        assert_eq!(drain(&o), (0, None));
    }

    #[test]
    fn popping_frees_the_budget_and_close_comes_last() {
        let o = Outbox::new(1000, 500).unwrap();
        o.push(ev(800), Delivery::Required);
        assert!(matches!(o.pop(), Next::Event(_)));
        o.push(ev(800), Delivery::Required);
        o.close(1012, "service restart");
        assert_eq!(drain(&o), (1, Some((1012, "service restart".to_string()))));
    }

    #[test]
    fn a_waiting_droppable_event_is_replaced_by_the_next_of_its_name() {
        let o = Outbox::new(10_000, 500).unwrap();
        let named = |name: &'static str, n: usize| QueuedEvent::new(name, "b".repeat(n), None);
        o.push(named("presence", 100), Delivery::Droppable);
        o.push(named("tick", 10), Delivery::Droppable);
        o.push(named("shutdown", 10), Delivery::Required);
        o.push(named("presence", 300), Delivery::Droppable);
        o.push(named("tick", 20), Delivery::Droppable);
        let mut got = Vec::new();
        while let Next::Event(e) = o.pop() {
            got.push((e.name, e.payload.len()));
        }
        assert_eq!(got, [("presence", 300), ("tick", 20), ("shutdown", 10)]);
    }

    fn reply(n: usize) -> Reply {
        Reply {
            req_id: "r".into(),
            frame: "a".repeat(n),
        }
    }

    #[test]
    fn a_reply_fits_behind_a_full_queue_of_events_and_comes_in_order() {
        let o = Outbox::new(1000, 500).unwrap();
        o.push(ev(800), Delivery::Required);
        assert!(o.push_reply(reply(400)));
        // Events cannot use the replies' headroom.
        o.push(ev(200), Delivery::Droppable);
        assert!(matches!(o.pop(), Next::Event(_)));
        assert!(matches!(o.pop(), Next::Reply(r) if r.frame.len() == 400));
        assert!(matches!(o.pop(), Next::Empty));
    }

    #[test]
    fn replies_left_unread_beyond_the_headroom_close_the_slow_consumer() {
        let o = Outbox::new(1000, 500).unwrap();
        o.push(ev(800), Delivery::Required);
        assert!(o.push_reply(reply(400)));
        assert!(!o.push_reply(reply(400)));
        assert_eq!(drain(&o), (0, Some((1008, "slow consumer".to_string()))));
        // A closing connection takes no more replies.
        assert!(!o.push_reply(reply(1)));
    }
}
