//! The presence table: who is connected or recently reported in.
//!
//! Pure data with explicit clocks (`now_ms`), owned by the shared state.
//! Entries merge on update (roles and scopes unioned), expire after a TTL
//! and are capped, oldest evicted first. Everything a client can put in is
//! bounded in bytes as JSON, escaping counted: each string at
//! [`MAX_STRING`], each list at [`MAX_LIST_TEXT`], so an entry serializes to
//! at most about 7 KiB, and the list sent to clients (in `hello-ok`,
//! `system-presence` and every `presence` event) to at most
//! [`MAX_LIST_BYTES`], newest entries first. Each entry keeps its JSON text,
//! so building the list on every change is concatenation, not
//! serialization.

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

/// Longest string kept in an entry, as JSON (escapes counted), and the
/// longest key: presence is broadcast to everyone, so one client must not
/// be able to make every frame large.
pub const MAX_STRING: usize = 256;
/// Items kept in a list field (roles, scopes, tags), and their JSON size.
const MAX_LIST: usize = 32;
pub const MAX_LIST_TEXT: usize = 1024;
/// The presence list as sent, at most: entries past it (the oldest) are
/// left out until newer ones expire. An entry is at most ~7 KiB, so the
/// newest ~36 always fit, and ~200 ordinary ones (~500 bytes each).
pub const MAX_LIST_BYTES: usize = 256 * 1024;
/// What `hello-ok` and an event envelope need beside the list (about
/// 1.5 KiB today), kept free under `maxPayload`.
const ENVELOPE_RESERVE: usize = 16 * 1024;

/// How large the list may be as sent to clients that accept frames of up
/// to `max_payload`: [`MAX_LIST_BYTES`], less when `maxPayload` is small,
/// so `hello-ok`, `system-presence` and the `presence` event stay under it
/// by leaving the oldest entries out, never by failing.
pub fn list_budget(max_payload: usize) -> usize {
    MAX_LIST_BYTES.min(max_payload.saturating_sub(ENVELOPE_RESERVE))
}

/// A presence entry's key: `device.id`, else `client.instanceId`, else the
/// connection id, lowercased and cut to [`MAX_STRING`] bytes, so one device
/// is one entry however it spells its id and no key is large.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PresenceKey(String);

impl PresenceKey {
    pub fn new(key: &str) -> PresenceKey {
        PresenceKey(crate::protocol::clip(&key.to_lowercase(), MAX_STRING).to_string())
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
struct Entry {
    fields: Map<String, Value>,
    ts: u64,
    /// When it last changed among all entries: orders those changed in
    /// the same millisecond, so "newest first" is exact.
    order: u64,
    /// `fields` (with `ts`) as JSON, kept in step with them.
    json: String,
}

impl Entry {
    fn stamp(&mut self, now_ms: u64, order: u64) {
        self.ts = now_ms;
        self.order = order;
        self.fields.insert("ts".into(), Value::from(now_ms));
        self.json = Value::Object(self.fields.clone()).to_string();
    }
}

#[derive(Debug)]
pub struct Presence {
    entries: HashMap<PresenceKey, Entry>,
    /// Changes so far, for [`Entry::order`].
    changes: u64,
    /// The gateway's own entry is built from these on every read.
    hostname: String,
    lan_ip: Option<String>,
}

impl Presence {
    pub fn new(hostname: String, lan_ip: Option<String>) -> Presence {
        Presence {
            entries: HashMap::new(),
            changes: 0,
            hostname,
            lan_ip,
        }
    }

    /// Merges `fields` into the entry under `key` and stamps it.
    pub fn upsert(&mut self, key: &PresenceKey, fields: &Map<String, Value>, now_ms: u64) {
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_ENTRIES {
            self.evict_oldest();
        }
        let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            fields: Map::new(),
            ts: now_ms,
            order: 0,
            json: String::new(),
        });
        for (k, v) in fields {
            let Some(name) = FIELDS.iter().find(|f| **f == k.as_str()) else {
                continue;
            };
            let Some(v) = sanitize(v) else { continue };
            if *name == "roles" || *name == "scopes" {
                union_into(&mut entry.fields, name, &v);
            } else {
                entry.fields.insert((*name).to_string(), v);
            }
        }
        self.changes += 1;
        entry.stamp(now_ms, self.changes);
    }

    /// Marks an entry as gone without removing it, so others see why it
    /// left until the TTL expires it. Returns whether it existed.
    pub fn mark(&mut self, key: &PresenceKey, reason: &str, now_ms: u64) -> bool {
        match self.entries.get_mut(key) {
            Some(e) => {
                e.fields.insert("reason".into(), Value::from(reason));
                self.changes += 1;
                e.stamp(now_ms, self.changes);
                true
            }
            None => false,
        }
    }

    /// Drops expired entries; returns whether anything was dropped.
    pub fn prune(&mut self, now_ms: u64) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now_ms.saturating_sub(e.ts) <= TTL_MS);
        self.entries.len() != before
    }

    /// The list as JSON: the gateway's own entry, then the others newest
    /// first, as many as fit in `max_bytes` (see [`list_budget`]).
    pub fn list_json(&self, now_ms: u64, max_bytes: usize) -> String {
        let mut rows: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| now_ms.saturating_sub(e.ts) <= TTL_MS)
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse((e.ts, e.order)));
        let mut out = String::with_capacity(1024);
        out.push('[');
        out.push_str(&Value::Object(self.own(now_ms)).to_string());
        for e in rows {
            if out.len() + 1 + e.json.len() + 1 > max_bytes {
                break;
            }
            out.push(',');
            out.push_str(&e.json);
        }
        out.push(']');
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
            .min_by_key(|(_, e)| (e.ts, e.order))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.entries.remove(&k);
        }
    }
}

/// How many bytes a character takes in a JSON string (serde_json's
/// escapes: two for a quote, a backslash and the named controls, six for
/// the other controls).
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The longest prefix of `s` whose JSON form (quotes aside) fits `max`.
fn clip_escaped(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += escaped_len(c);
        if used > max {
            return &s[..i];
        }
    }
    s
}

fn sanitize(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => Some(Value::from(clip_escaped(s, MAX_STRING))),
        Value::Number(_) | Value::Bool(_) => Some(v.clone()),
        Value::Array(a) => {
            let mut room = MAX_LIST_TEXT;
            let mut out = Vec::new();
            for s in a.iter().filter_map(Value::as_str).take(MAX_LIST) {
                let s = clip_escaped(s, MAX_STRING);
                let cost = s.chars().map(escaped_len).sum::<usize>() + 3;
                if cost > room {
                    break;
                }
                room -= cost;
                out.push(Value::from(s));
            }
            Some(Value::Array(out))
        }
        _ => None,
    }
}

/// Adds `add`'s items to the list `name`, within the same bounds as a
/// list sent whole.
fn union_into(entry: &mut Map<String, Value>, name: &str, add: &Value) {
    let mut list: Vec<Value> = match entry.remove(name) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    if let Value::Array(new) = add {
        for v in new {
            if !list.contains(v) {
                list.push(v.clone());
            }
        }
    }
    if let Some(bounded) = sanitize(&Value::Array(list)) {
        entry.insert(name.to_string(), bounded);
    }
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

    fn listed(p: &Presence, now: u64) -> Vec<Value> {
        match serde_json::from_str(&p.list_json(now, MAX_LIST_BYTES)) {
            Ok(Value::Array(a)) => a,
            other => panic!("{other:?}"),
        }
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
        let list = listed(&p, 30);
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
        let e = &listed(&p, 1)[1];
        assert!(e.get("evil").is_none());
        assert!(e.get("host").is_none());
        assert_eq!(e["text"].as_str().unwrap().len(), MAX_STRING);
    }

    #[test]
    fn list_is_newest_first_and_expires_after_ttl() {
        let mut p = table();
        p.upsert(&key("old"), &Map::new(), 1_000);
        p.upsert(&key("new"), &Map::new(), 2_000);
        let list = listed(&p, 3_000);
        assert_eq!(list[1]["ts"], 2_000);
        assert_eq!(list[2]["ts"], 1_000);
        assert_eq!(listed(&p, 1_000 + TTL_MS + 1).len(), 2);
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
        let list = listed(&p, 1_000);
        assert_eq!(list.last().unwrap()["ts"], 150);
    }

    #[test]
    fn disconnect_marks_the_entry() {
        let mut p = table();
        p.upsert(&key("c"), &obj(json!({"reason": "connect"})), 1);
        assert!(p.mark(&key("C"), "disconnect", 5));
        assert!(!p.mark(&key("missing"), "disconnect", 5));
        assert_eq!(listed(&p, 5)[1]["reason"], "disconnect");
    }

    #[test]
    fn the_gateway_lists_itself_first_and_keys_are_lowercased() {
        let p = Presence::new("router".into(), Some("192.168.1.1".into()));
        let own = &listed(&p, 7)[0];
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

    #[test]
    fn strings_lists_and_keys_are_bounded_as_json() {
        let mut p = table();
        // Control characters escape to six bytes each as JSON.
        let nasty = "\u{1}".repeat(10_000);
        let long_key = "K".repeat(10_000);
        let tags: Vec<String> = (0..100)
            .map(|i| format!("{i}{}", "t".repeat(200)))
            .collect();
        p.upsert(
            &key(&long_key),
            &obj(json!({"host": nasty, "text": "x".repeat(10_000), "tags": tags})),
            1,
        );
        let e = &listed(&p, 1)[1];
        assert!(
            e["host"].to_string().len() <= MAX_STRING + 2,
            "{}",
            e["host"]
        );
        assert!(e["text"].as_str().unwrap().len() <= MAX_STRING);
        assert!(
            e["tags"].to_string().len() <= MAX_LIST_TEXT + 2,
            "{}",
            e["tags"]
        );
        assert!(!e["tags"].as_array().unwrap().is_empty());
        assert_eq!(key(&long_key).to_string().len(), MAX_STRING);
    }

    #[test]
    fn the_list_keeps_the_newest_entries_within_its_byte_bound() {
        let mut p = table();
        let big = |i: u64| {
            obj(json!({
                "host": "\u{2}".repeat(100), "text": "\u{3}".repeat(100),
                "deviceFamily": "\u{4}".repeat(100), "modelIdentifier": "\u{5}".repeat(100),
                "version": "\u{6}".repeat(100), "platform": format!("{i}"),
            }))
        };
        for i in 0..MAX_ENTRIES as u64 {
            p.upsert(&key(&format!("k{i}")), &big(i), 100 + i);
        }
        let json = p.list_json(1_000, MAX_LIST_BYTES);
        assert!(json.len() <= MAX_LIST_BYTES, "{}", json.len());
        // A small maxPayload lists fewer, still newest first.
        let small = list_budget(64 * 1024);
        assert_eq!(small, 48 * 1024);
        let json = p.list_json(1_000, small);
        assert!(json.len() <= small, "{}", json.len());
        let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(rows[1]["platform"], format!("{}", MAX_ENTRIES - 1));
        assert!(rows.len() < listed(&p, 1_000).len());
        let rows = listed(&p, 1_000);
        assert!(
            rows.len() > 20 && rows.len() < MAX_ENTRIES,
            "{}",
            rows.len()
        );
        // The newest is listed first after the gateway, the oldest left out.
        assert_eq!(rows[1]["platform"], format!("{}", MAX_ENTRIES - 1));
        assert!(rows.iter().all(|r| r["platform"] != "0"));
    }
}
