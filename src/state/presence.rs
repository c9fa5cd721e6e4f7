//! The presence table: who is connected or recently reported in.
//!
//! Pure data with explicit clocks (`now_ms`), owned by the shared state.
//! Entries merge on update (roles and scopes unioned), expire after a TTL and
//! are capped, oldest evicted first, so a client flood cannot grow it.

use std::collections::HashMap;

use serde_json::{Map, Value};

pub const TTL_MS: u64 = 5 * 60 * 1000;
pub const MAX_ENTRIES: usize = 200;

/// Fields a presence entry may carry (PROTOCOL.md section 9); anything else
/// a client sends is dropped, so entries stay within the documented shape.
const FIELDS: &[&str] = &[
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

#[derive(Debug, Default)]
pub struct Presence {
    entries: HashMap<String, Map<String, Value>>,
}

impl Presence {
    /// Merges `fields` into the entry under `key` (lowercased) and stamps it.
    pub fn upsert(&mut self, key: &str, fields: &Map<String, Value>, now_ms: u64) {
        let key = key.to_lowercase();
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            self.evict_oldest();
        }
        let entry = self.entries.entry(key).or_default();
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
    pub fn mark(&mut self, key: &str, reason: &str, now_ms: u64) -> bool {
        match self.entries.get_mut(&key.to_lowercase()) {
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
    pub fn list(&self, own: Map<String, Value>, now_ms: u64) -> Vec<Value> {
        let mut rows: Vec<&Map<String, Value>> = self
            .entries
            .values()
            .filter(|e| now_ms.saturating_sub(ts(e)) <= TTL_MS)
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse(ts(e)));
        let mut out = Vec::with_capacity(rows.len() + 1);
        out.push(Value::Object(own));
        out.extend(rows.into_iter().map(|e| Value::Object(e.clone())));
        out
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

    fn own() -> Map<String, Value> {
        obj(json!({"host": "gw", "mode": "gateway", "reason": "self", "ts": 0}))
    }

    #[test]
    fn updates_merge_and_union_roles_and_scopes() {
        let mut p = Presence::default();
        p.upsert(
            "Dev-1",
            &obj(json!({"host": "a", "roles": ["operator"], "scopes": ["x"]})),
            10,
        );
        p.upsert(
            "dev-1",
            &obj(json!({"text": "hi", "roles": ["node", "operator"]})),
            20,
        );
        let list = p.list(own(), 30);
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
        let mut p = Presence::default();
        let long = "x".repeat(10_000);
        p.upsert(
            "k",
            &obj(json!({"evil": 1, "text": long, "host": {"nested": 1}})),
            1,
        );
        let e = &p.list(own(), 1)[1];
        assert!(e.get("evil").is_none());
        assert!(e.get("host").is_none());
        assert_eq!(e["text"].as_str().unwrap().len(), MAX_STRING);
    }

    #[test]
    fn list_is_newest_first_and_expires_after_ttl() {
        let mut p = Presence::default();
        p.upsert("old", &Map::new(), 1_000);
        p.upsert("new", &Map::new(), 2_000);
        let list = p.list(own(), 3_000);
        assert_eq!(list[1]["ts"], 2_000);
        assert_eq!(list[2]["ts"], 1_000);
        assert_eq!(p.list(own(), 1_000 + TTL_MS + 1).len(), 2);
        assert!(p.prune(1_000 + TTL_MS + 1));
        assert_eq!(p.len(), 1);
        assert!(!p.prune(1_000 + TTL_MS + 1));
    }

    #[test]
    fn table_is_capped_by_evicting_the_oldest() {
        let mut p = Presence::default();
        for i in 0..(MAX_ENTRIES as u64 + 50) {
            p.upsert(&format!("k{i}"), &Map::new(), 100 + i);
        }
        assert_eq!(p.len(), MAX_ENTRIES);
        let list = p.list(own(), 1_000);
        assert_eq!(list.last().unwrap()["ts"], 150);
    }

    #[test]
    fn disconnect_marks_the_entry() {
        let mut p = Presence::default();
        p.upsert("c", &obj(json!({"reason": "connect"})), 1);
        assert!(p.mark("C", "disconnect", 5));
        assert!(!p.mark("missing", "disconnect", 5));
        assert_eq!(p.list(own(), 5)[1]["reason"], "disconnect");
    }
}
