//! The handshaken clients, by connection id, as other threads see them:
//! an outbox each. A fan-out is collected here under the state lock and
//! delivered after it is released.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use super::outbox::{Delivery, Outbox, QueuedEvent};
use crate::protocol::{has_scope, Role, SCOPE_READ};

/// A connection's id within this process: distinct for its lifetime,
/// never reused. (The `connId` clients see is a UUID.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    pub(crate) fn new(n: usize) -> ConnId {
        ConnId(n as u64)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What other threads need to know of a handshaken client to pick it out
/// of a fan-out or a close: its role, its scopes and its device.
#[derive(Debug, Clone)]
pub struct Member {
    pub role: Role,
    pub scopes: Vec<String>,
    /// The verified `device.id`, when the connect carried a device block
    /// (a node's id is its device id).
    pub device: Option<Arc<str>>,
}

/// Who an event or a close is for.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// Every handshaken client.
    All,
    /// Operators holding this scope (or `operator.admin`, which implies
    /// every operator scope).
    Scope(&'static str),
    /// One connection.
    Conn(ConnId),
    /// Every connection of this device, in this role when one is given.
    Device(&'a str, Option<Role>),
    /// Connections that called `sessions.subscribe` (and may still read).
    Subscribers,
}

impl Audience<'_> {
    fn admits(&self, id: ConnId, m: &Member) -> bool {
        match *self {
            Audience::All => true,
            Audience::Scope(scope) => m.role == Role::Operator && has_scope(&m.scopes, scope),
            Audience::Conn(c) => c == id,
            Audience::Device(device, role) => {
                m.device.as_deref() == Some(device) && role.is_none_or(|r| r == m.role)
            }
            // Filtered by the subscription set in `outboxes`.
            Audience::Subscribers => m.role == Role::Operator && has_scope(&m.scopes, SCOPE_READ),
        }
    }
}

#[derive(Debug)]
struct Client {
    outbox: Arc<Outbox>,
    member: Member,
}

#[derive(Debug, Default)]
pub(super) struct Clients {
    by_id: HashMap<ConnId, Client>,
    /// Who gets `sessions.changed`.
    subscribed: HashSet<ConnId>,
}

impl Clients {
    pub(super) fn insert(&mut self, id: ConnId, outbox: Arc<Outbox>, member: Member) {
        self.by_id.insert(id, Client { outbox, member });
    }

    pub(super) fn remove(&mut self, id: ConnId) {
        self.by_id.remove(&id);
        self.subscribed.remove(&id);
    }

    /// `sessions.subscribe` / `sessions.unsubscribe` of a client.
    pub(super) fn subscribe(&mut self, id: ConnId, on: bool) {
        if !on {
            self.subscribed.remove(&id);
        } else if self.by_id.contains_key(&id) {
            self.subscribed.insert(id);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The devices with at least one connection open, and in which roles.
    pub(super) fn devices(&self) -> Vec<(Arc<str>, Role)> {
        self.by_id
            .values()
            .filter_map(|c| c.member.device.clone().map(|d| (d, c.member.role)))
            .collect()
    }

    /// The outboxes of the clients `to` picks out.
    pub(super) fn outboxes(&self, to: Audience) -> Vec<Arc<Outbox>> {
        match to {
            // The common case of one target, without a scan.
            Audience::Conn(id) => self
                .by_id
                .get(&id)
                .map(|c| c.outbox.clone())
                .into_iter()
                .collect(),
            Audience::Subscribers => self
                .subscribed
                .iter()
                .filter_map(|id| self.by_id.get(id).map(|c| (id, c)))
                .filter(|(id, c)| to.admits(**id, &c.member))
                .map(|(_, c)| c.outbox.clone())
                .collect(),
            _ => self
                .by_id
                .iter()
                .filter(|(id, c)| to.admits(**id, &c.member))
                .map(|(_, c)| c.outbox.clone())
                .collect(),
        }
    }

    /// `event` for the clients `to` picks out, to deliver once the lock
    /// is released.
    pub(super) fn fanout(&self, to: Audience, event: QueuedEvent, delivery: Delivery) -> Fanout {
        Fanout {
            event,
            delivery,
            targets: self.outboxes(to),
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
