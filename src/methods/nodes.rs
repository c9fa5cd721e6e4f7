//! The node methods other than the invoke relay: what operators read
//! (`node.list`, `node.describe`) and what a node reports (`node.event`,
//! and the three start-up publications the stock node host sends right
//! after `hello-ok`, acknowledged so it settles, PROTOCOL-NODES §4.3).

use serde::Deserialize;
use serde_json::{json, Value};

use super::Ctx;
use crate::protocol::{self, non_empty, ErrorShape, Invalid, Params, Payload};
use crate::state::now_ms;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct NodeId {
    node_id: String,
}

impl Params for NodeId {
    fn check(&self) -> Result<(), Invalid> {
        non_empty("/nodeId", &self.node_id)
    }
}

pub(super) fn node_list(c: &Ctx) -> Result<Payload, ErrorShape> {
    // Connected nodes only for now: paired nodes that are offline come
    // from the pairing store, listed after these.
    Ok(json!({"ts": now_ms(), "nodes": c.shared.nodes_snapshot()}).into())
}

pub(super) fn node_describe(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: NodeId = protocol::parse("node.describe", c.params)?;
    let Some(Value::Object(entry)) = c.shared.node_entry(p.node_id.trim()) else {
        return Err(ErrorShape::invalid("unknown nodeId"));
    };
    let mut out = serde_json::Map::with_capacity(entry.len() + 1);
    out.insert("ts".into(), json!(now_ms()));
    out.extend(entry);
    Ok(Value::Object(out).into())
}

/// `node.event`: `payloadJSON` (text) or `payload` (a value).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct NodeEvent {
    event: String,
    #[serde(default, rename = "payloadJSON")]
    payload_json: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
}

impl Params for NodeEvent {
    fn check(&self) -> Result<(), Invalid> {
        non_empty("/event", &self.event)
    }
}

/// The node's id: its registry entry, found by its connection.
fn caller_node(c: &Ctx) -> Result<std::sync::Arc<str>, ErrorShape> {
    c.shared
        .node_id_of(c.caller.conn)
        .ok_or_else(|| ErrorShape::unavailable("node not registered"))
}

pub(super) fn node_event(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: NodeEvent = protocol::parse("node.event", c.params)?;
    if p.event != "node.host.stats" {
        // Events this gateway does not act on are acknowledged as such:
        // the node host only logs a failure, once (§4.2).
        return Ok(json!({"ok": true, "event": p.event, "handled": false}).into());
    }
    let stats = match (&p.payload_json, p.payload) {
        (Some(text), _) => serde_json::from_str::<Value>(text).map_err(|e| {
            ErrorShape::invalid(format!("invalid node.event params: at /payloadJSON: {e}"))
        })?,
        (None, Some(v)) => v,
        (None, None) => Value::Null,
    };
    if !stats.is_object() {
        return Err(ErrorShape::invalid(
            "invalid node.event params: node.host.stats needs an object payload",
        ));
    }
    c.shared
        .node_host_stats(c.caller.conn, stats)
        .ok_or_else(|| ErrorShape::unavailable("node not registered"))?;
    Ok(json!({"ok": true, "event": p.event, "handled": true, "reason": "updated"}).into())
}

/// Params read only to be echoed, within the default 64 KiB.
#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct Skills {
    #[serde(default)]
    skills: Vec<Value>,
}

impl Params for Skills {}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct Tools {
    #[serde(default)]
    tools: Vec<Value>,
}

impl Params for Tools {}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct Anything {}

impl Params for Anything {}

pub(super) fn runner_inventory_update(c: &Ctx) -> Result<Payload, ErrorShape> {
    let _: Anything = protocol::parse("node.runnerInventory.update", c.params)?;
    Ok(json!({"nodeId": &*caller_node(c)?}).into())
}

pub(super) fn skills_update(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: Skills = protocol::parse("node.skills.update", c.params)?;
    Ok(json!({"nodeId": &*caller_node(c)?, "skills": p.skills}).into())
}

pub(super) fn plugin_tools_update(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: Tools = protocol::parse("node.pluginTools.update", c.params)?;
    Ok(json!({"nodeId": &*caller_node(c)?, "tools": p.tools}).into())
}
