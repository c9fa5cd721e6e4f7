//! The presence table: who is connected or recently reported in.
//!
//! Pure data with explicit clocks (`now_ms`), owned by the shared state.
//! Entries merge on update (roles and scopes unioned), expire after a TTL and
//! are capped, oldest evicted first, so a client flood cannot grow it.

use std::collections::HashMap;
use std::fmt;

use serde_json::{json, Map, Value};

use crate::protocol::VERSION;

pub const TTL_MS: u64 = 5 * 60 * 1000;
pub const MAX_ENTRIES: usize = 200;

/// Fields a presence entry may carry (PROTOCOL.md section 9); anything else
/// a client sends is dropped, so entries stay within the documented shape.
pub const FIELDS: &[&str] = &[
    "host",
    "ip",
    "version",
    "platform",
    "deviceFamily",
    "modelIdentifier",
    "mode",
    "lastInputSeconds",
    "reason",
    "tags",
    "text",
    "deviceId",
    "roles",
    "scopes",
    "instanceId",
];

/// Longest string kept in an entry: presence is broadcast to everyone, so
/// one client must not be able to make every frame large.
const MAX_STRING: usize = 256;
const MAX_LIST: usize = 32;

/// A presence entry's key: `device.id`, else `client.instanceId`, else the
/// connection id, lowercased, so one device is one entry however it
/// spells its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PresenceKey(String);

impl PresenceKey {
    pub fn new(key: &str) -> PresenceKey {
        PresenceKey(key.to_lowercase())
    }

    /// The key of a connecting client.
    pub fn for_connect(
        device_id: Option<&str>,
        instance_id: Option<&str>,
        conn_id: &str,
    ) -> PresenceKey {
        PresenceKey::new(device_id.or(instance_id).unwrap_or(conn_id))
    }
}

impl fmt::Display for PresenceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug)]
pub struct Presence {
    entries: HashMap<PresenceKey, Map<String, Value>>,
    /// The gateway's own entry is built from these on every read.
    hostname: String,
    lan_ip: Option<String>,
}

impl Presence {
    pub fn new(hostname: String, lan_ip: Option<String>) -> Presence {
        Presence {
            entries: HashMap::new(),
            hostname,
            lan_ip,
        }
    }

    /// Merges `fields` into the entry under `key` and stamps it.
    pub fn upsert(&mut self, key: &PresenceKey, fields: &Map<String, Value>, now_ms: u64) {
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_ENTRIES {
            self.evict_oldest();
        }
        let entry = self.entries.entry(key.clone()).or_default();
        for (k, v) in fields {
            let Some(name) = FIELDS.iter().find(|f| **f == k.as_str()) else {
                continue;
            };
            let Some(v) = sanitize(v) else { continue };
            if *name == "roles" || *name == "scopes" {
                union_into(entry, name, &v);
            } else {
                entry.insert((*name).to_string(), v);
            }
        }
        entry.insert("ts".into(), Value::from(now_ms));
    }

    /// Marks an entry as gone without removing it, so others see why it
    /// left until the TTL expires it. Returns whether it existed.
    pub fn mark(&mut self, key: &PresenceKey, reason: &str, now_ms: u64) -> bool {
        match self.entries.get_mut(key) {
            Some(e) => {
                e.insert("reason".into(), Value::from(reason));
                e.insert("ts".into(), Value::from(now_ms));
                true
            }
            None => false,
        }
    }

    /// Drops expired entries; returns whether anything was dropped.
    pub fn prune(&mut self, now_ms: u64) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now_ms.saturating_sub(ts(e)) <= TTL_MS);
        self.entries.len() != before
    }

    /// The full list, newest first, with the gateway's own entry on top.
    pub fn list(&self, now_ms: u64) -> Vec<Value> {
        let mut rows: Vec<&Map<String, Value>> = self
            .entries
            .values()
            .filter(|e| now_ms.saturating_sub(ts(e)) <= TTL_MS)
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse(ts(e)));
        let mut out = Vec::with_capacity(rows.len() + 1);
        out.push(Value::Object(self.own(now_ms)));
        out.extend(rows.into_iter().map(|e| Value::Object(e.clone())));
        out
    }

    /// The gateway's own entry, with a fresh `ts` on every read.
    fn own(&self, now_ms: u64) -> Map<String, Value> {
        let ip = self.lan_ip.as_deref();
        let at = ip.map(|ip| format!(" ({ip})")).unwrap_or_default();
        let text = format!(
            "Gateway: {}{at} · app {VERSION} · mode gateway · reason self",
            self.hostname
        );
        let mut m = Map::new();
        m.insert("host".into(), json!(self.hostname));
        if let Some(ip) = ip {
            m.insert("ip".into(), json!(ip));
        }
        m.insert("version".into(), json!(VERSION));
        m.insert("platform".into(), json!(std::env::consts::OS));
        m.insert("mode".into(), json!("gateway"));
        m.insert("reason".into(), json!("self"));
        m.insert("text".into(), json!(text));
        m.insert("ts".into(), json!(now_ms));
        m
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| ts(e))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.entries.remove(&k);
        }
    }
}

fn ts(e: &Map<String, Value>) -> u64 {
    e.get("ts").and_then(Value::as_u64).unwrap_or(0)
}

fn sanitize(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => Some(Value::from(crate::protocol::clip(s, MAX_STRING))),
        Value::Number(_) | Value::Bool(_) => Some(v.clone()),
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .filter_map(Value::as_str)
                .take(MAX_LIST)
                .map(|s| Value::from(crate::protocol::clip(s, MAX_STRING)))
                .collect(),
        )),
        _ => None,
    }
}

fn union_into(entry: &mut Map<String, Value>, name: &str, add: &Value) {
    let mut list: Vec<Value> = match entry.remove(name) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    if let Value::Array(new) = add {
        for v in new {
            if !list.contains(v) && list.len() < MAX_LIST {
                list.push(v.clone());
            }
        }
    }
    entry.insert(name.to_string(), Value::Array(list));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn key(k: &str) -> PresenceKey {
        PresenceKey::new(k)
    }

    fn table() -> Presence {
        Presence::new("gw".into(), None)
    }

    #[test]
    fn updates_merge_and_union_roles_and_scopes() {
        let mut p = table();
        p.upsert(
            &key("Dev-1"),
            &obj(json!({"host": "a", "roles": ["operator"], "scopes": ["x"]})),
            10,
        );
        p.upsert(
            &key("dev-1"),
            &obj(json!({"text": "hi", "roles": ["node", "operator"]})),
            20,
        );
        let list = p.list(30);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["mode"], "gateway");
        let e = &list[1];
        assert_eq!(e["host"], "a");
        assert_eq!(e["text"], "hi");
        assert_eq!(e["roles"], json!(["operator", "node"]));
        assert_eq!(e["scopes"], json!(["x"]));
        assert_eq!(e["ts"], 20);
    }

    #[test]
    fn unknown_fields_are_dropped_and_strings_capped() {
        let mut p = table();
        let long = "x".repeat(10_000);
        p.upsert(
            &key("k"),
            &obj(json!({"evil": 1, "text": long, "host": {"nested": 1}})),
            1,
        );
        let e = &p.list(1)[1];
        assert!(e.get("evil").is_none());
        assert!(e.get("host").is_none());
        assert_eq!(e["text"].as_str().unwrap().len(), MAX_STRING);
    }

    #[test]
    fn list_is_newest_first_and_expires_after_ttl() {
        let mut p = table();
        p.upsert(&key("old"), &Map::new(), 1_000);
        p.upsert(&key("new"), &Map::new(), 2_000);
        let list = p.list(3_000);
        assert_eq!(list[1]["ts"], 2_000);
        assert_eq!(list[2]["ts"], 1_000);
        assert_eq!(p.list(1_000 + TTL_MS + 1).len(), 2);
        assert!(p.prune(1_000 + TTL_MS + 1));
        assert_eq!(p.len(), 1);
        assert!(!p.prune(1_000 + TTL_MS + 1));
    }

    #[test]
    fn table_is_capped_by_evicting_the_oldest() {
        let mut p = table();
        for i in 0..(MAX_ENTRIES as u64 + 50) {
            p.upsert(&key(&format!("k{i}")), &Map::new(), 100 + i);
        }
        assert_eq!(p.len(), MAX_ENTRIES);
        let list = p.list(1_000);
        assert_eq!(list.last().unwrap()["ts"], 150);
    }

    #[test]
    fn disconnect_marks_the_entry() {
        let mut p = table();
        p.upsert(&key("c"), &obj(json!({"reason": "connect"})), 1);
        assert!(p.mark(&key("C"), "disconnect", 5));
        assert!(!p.mark(&key("missing"), "disconnect", 5));
        assert_eq!(p.list(5)[1]["reason"], "disconnect");
    }

    #[test]
    fn the_gateway_lists_itself_first_and_keys_are_lowercased() {
        let p = Presence::new("router".into(), Some("192.168.1.1".into()));
        let own = &p.list(7)[0];
        assert_eq!(own["host"], "router");
        assert_eq!(own["ip"], "192.168.1.1");
        assert_eq!(own["ts"], 7);
        assert_eq!(
            own["text"],
            format!("Gateway: router (192.168.1.1) · app {VERSION} · mode gateway · reason self")
        );
        assert_eq!(
            PresenceKey::for_connect(Some("ABC"), Some("i"), "c"),
            PresenceKey::new("abc")
        );
        assert_eq!(
            PresenceKey::for_connect(None, Some("I-1"), "c").to_string(),
            "i-1"
        );
        assert_eq!(
            PresenceKey::for_connect(None, None, "C-9").to_string(),
            "c-9"
        );
    }
}
