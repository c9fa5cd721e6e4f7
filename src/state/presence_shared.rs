//! `Shared`'s side of presence: the snapshot `hello-ok` carries, and each
//! change to the table broadcast as a whole list under a new version, in
//! one global order (`ordered`), so every client sees the versions rise.

use serde_json::{Map, Value};

use super::presence::{self, Presence};
use super::{lock, now_ms, Audience, Delivery, PresenceKey, QueuedEvent, Shared};
use crate::protocol::StateVersion;

impl Shared {
    /// The presence list as JSON (the gateway's own entry first, sized to
    /// fit under `max_payload`, see `presence::list_budget`) and the
    /// versions it belongs to, for `hello-ok`.
    pub fn presence_snapshot(&self, max_payload: usize) -> (String, StateVersion) {
        let budget = presence::list_budget(max_payload);
        let st = self.state();
        (st.presence.list_json(now_ms(), budget), st.versions)
    }

    pub fn presence_list_json(&self, max_payload: usize) -> String {
        self.presence_snapshot(max_payload).0
    }

    /// Merges `fields` into `key`'s entry and tells everyone.
    pub fn presence_update(&self, key: &PresenceKey, fields: &Map<String, Value>) {
        self.change_presence(|p, now| {
            p.upsert(key, fields, now);
            true
        });
    }

    /// Marks `key` as gone (it stays listed until it expires).
    pub fn presence_leave(&self, key: &PresenceKey) {
        self.change_presence(|p, now| p.mark(key, "disconnect", now));
    }

    /// Drops expired entries, telling everyone if any went.
    pub fn presence_expire(&self) {
        self.change_presence(|p, now| p.prune(now));
    }

    /// Applies `change` and, if it reports a change, bumps the version and
    /// sends the full list to everyone (droppable: the next one supersedes
    /// it).
    fn change_presence(&self, change: impl FnOnce(&mut Presence, u64) -> bool) {
        let _order = lock(&self.ordered);
        let budget = presence::list_budget(self.live().settings.limits.max_payload);
        let fanout = {
            let mut st = self.state();
            let now = now_ms();
            if !change(&mut st.presence, now) {
                return;
            }
            st.versions.presence += 1;
            let payload = format!(r#"{{"presence":{}}}"#, st.presence.list_json(now, budget));
            let event = QueuedEvent::new("presence", payload, Some(st.versions));
            st.clients.fanout(Audience::All, event, Delivery::Droppable)
        };
        fanout.deliver();
    }
}
