//! The node methods other than the invoke relay: what operators read
//! (`node.list`, `node.describe`) and what a node reports (`node.event`,
//! and the three start-up publications the stock node host sends right
//! after `hello-ok`, acknowledged so it settles, PROTOCOL-NODES §4.3).

use serde::Deserialize;
use serde_json::{json, Value};

use super::ids::NodeId;
use super::Ctx;
use crate::protocol::{self, non_empty, ErrorShape, Invalid, Params, Payload};
use crate::state::now_ms;
use crate::store::devices::PairedDevice;

pub(super) fn node_list(c: &Ctx) -> Result<Payload, ErrorShape> {
    // Connected nodes first, then the paired ones that are offline, from
    // the pairing store (read after the state lock is released).
    let mut nodes = c.shared.nodes_snapshot();
    let online: Vec<String> = nodes
        .iter()
        .filter_map(|n| n["nodeId"].as_str().map(String::from))
        .collect();
    let offline = c.shared.devices().read(|d| {
        d.paired
            .iter()
            .filter(|(id, r)| r.roles.iter().any(|x| x == "node") && !online.contains(id))
            .map(|(id, r)| offline_entry(id, r))
            .collect::<Vec<_>>()
    });
    nodes.extend(offline);
    Ok(json!({"ts": now_ms(), "nodes": nodes}).into())
}

/// A paired node that is not connected, as `node.list` shows it: what it
/// was approved for and when it was last seen.
fn offline_entry(id: &str, r: &PairedDevice) -> Value {
    let surface = r.node_surface.as_ref();
    let mut v = json!({
        "nodeId": id,
        "displayName": surface.and_then(|s| s.display_name.as_ref()).or(r.display_name.as_ref()),
        "platform": r.platform,
        "version": surface.and_then(|s| s.version.as_ref()),
        "clientId": r.client_id,
        "clientMode": r.client_mode,
        "deviceFamily": r.device_family,
        "caps": surface.map(|s| s.caps.clone()).unwrap_or_default(),
        "commands": surface.map(|s| s.commands.clone()).unwrap_or_default(),
        "sessionHost": false,
        "nodePluginTools": [],
        "paired": true,
        "connected": false,
        "lastSeenAtMs": r.last_seen_at_ms,
        "approvalState": if surface.is_some() { "approved" } else { "pending-approval" },
    });
    if let Some(s) = surface {
        v["approvedAtMs"] = json!(s.approved_at_ms);
    }
    if let Some(p) = &r.pending_node_surface {
        v["pendingRequestId"] = json!(p.request_id);
    }
    v
}

pub(super) fn node_describe(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: NodeId = protocol::parse("node.describe", c.params)?;
    let id = p.node_id.trim();
    let entry = c.shared.node_entry(id).or_else(|| {
        c.shared.devices().read(|d| {
            d.paired
                .get(id)
                .filter(|r| r.roles.iter().any(|x| x == "node"))
                .map(|r| offline_entry(id, r))
        })
    });
    let Some(Value::Object(entry)) = entry else {
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
