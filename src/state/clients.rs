//! The handshaken clients, by connection id, as other threads see them:
//! an outbox each. A fan-out is collected here under the state lock and
//! delivered after it is released.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::outbox::{Delivery, Outbox, QueuedEvent};

/// A connection's id within this process: distinct for its lifetime,
/// never reused. (The `connId` clients see is a UUID.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    pub(super) fn new(n: usize) -> ConnId {
        ConnId(n as u64)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[derive(Debug, Default)]
pub(super) struct Clients {
    by_id: HashMap<ConnId, Arc<Outbox>>,
}

impl Clients {
    pub(super) fn insert(&mut self, id: ConnId, outbox: Arc<Outbox>) {
        self.by_id.insert(id, outbox);
    }

    pub(super) fn remove(&mut self, id: ConnId) {
        self.by_id.remove(&id);
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub(super) fn outboxes(&self) -> Vec<Arc<Outbox>> {
        self.by_id.values().cloned().collect()
    }

    /// `event` for every client, to deliver once the lock is released.
    pub(super) fn fanout(&self, event: QueuedEvent, delivery: Delivery) -> Fanout {
        Fanout {
            event,
            delivery,
            targets: self.outboxes(),
        }
    }
}

/// One event and the outboxes it goes to: what a change of the shared
/// state leaves to do after unlocking.
#[derive(Debug)]
pub struct Fanout {
    event: QueuedEvent,
    delivery: Delivery,
    targets: Vec<Arc<Outbox>>,
}

impl Fanout {
    /// Queues the event for every target (its payload is serialized once
    /// and shared) and hands the targets back.
    pub fn deliver(self) -> Vec<Arc<Outbox>> {
        for t in &self.targets {
            t.push(self.event.clone(), self.delivery);
        }
        self.targets
    }
}
