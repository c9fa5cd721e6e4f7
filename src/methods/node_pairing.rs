//! The second approval a node needs: its command surface.
//! `node.pair.list`, `approve`, `reject`, `remove`.
//!
//! Device pairing lets a node's socket in; until an operator approves what
//! it declared (`caps`, `commands`), it may be invoked for nothing it did
//! not have approved before. Approving needs more the more the node can
//! do (`protocol::approve_scopes`). Surface requests
//! do not expire: the node keeps declaring them on every connect.

use serde_json::{json, Value};

use super::devices::{connected, notify};
use super::ids::{NodeId, RequestId};
use super::Ctx;
use crate::protocol::{self, has_scope, ErrorShape, Payload, Role};
use crate::state::{now_ms, Audience, Delivery, QueuedEvent};
use crate::store::devices::{NodeSurface, PairedDevice, PendingSurface};

/// A surface request as `node.pair.requested` and `node.pair.list` show it.
pub fn request_json(node_id: &str, r: &PendingSurface) -> Value {
    json!({
        "requestId": r.request_id,
        "nodeId": node_id,
        "clientId": r.client_id,
        "clientMode": r.client_mode,
        "displayName": r.display_name,
        "platform": r.platform,
        "version": r.version,
        "deviceFamily": r.device_family,
        "caps": r.caps,
        "commands": r.commands,
        "remoteIp": r.remote_ip,
        "requiredApproveScopes": protocol::approve_scopes(&r.commands),
        "silent": false,
        "ts": r.ts,
    })
}

/// An approved node as `node.pair.approve` and `node.pair.list` show it.
pub fn node_json(node_id: &str, r: &PairedDevice, s: &NodeSurface) -> Value {
    json!({
        "nodeId": node_id,
        "clientId": r.client_id,
        "clientMode": r.client_mode,
        "displayName": s.display_name.as_ref().or(r.display_name.as_ref()),
        "platform": r.platform,
        "version": s.version,
        "deviceFamily": r.device_family,
        "caps": s.caps,
        "commands": s.commands,
        "createdAtMs": s.created_at_ms,
        "approvedAtMs": s.approved_at_ms,
        "lastSeenAtMs": r.last_seen_at_ms,
        "lastSeenReason": r.last_seen_reason,
        "remoteIp": r.remote_ip,
    })
}

pub(super) fn list(c: &Ctx) -> Result<Payload, ErrorShape> {
    let d = c.shared.devices().snapshot();
    let on = connected(c.shared);
    let pending: Vec<Value> = d
        .paired
        .iter()
        .filter_map(|(id, r)| r.pending_node_surface.as_ref().map(|s| request_json(id, s)))
        .collect();
    let paired: Vec<Value> = d
        .paired
        .iter()
        .filter_map(|(id, r)| {
            r.node_surface.as_ref().map(|s| {
                let mut v = node_json(id, r, s);
                v["connected"] = json!(on(id));
                v
            })
        })
        .collect();
    Ok(json!({"pending": pending, "paired": paired}).into())
}

fn unknown_request() -> ErrorShape {
    ErrorShape::invalid("unknown requestId")
}

/// The node whose surface request is `request_id`.
fn owner(d: &crate::store::devices::Devices, request_id: &str) -> Option<String> {
    d.paired
        .iter()
        .find(|(_, r)| {
            r.pending_node_surface
                .as_ref()
                .is_some_and(|s| s.request_id == request_id)
        })
        .map(|(id, _)| id.clone())
}

pub(super) fn approve(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: RequestId = protocol::parse("node.pair.approve", c.params)?;
    let commands = c
        .shared
        .devices()
        .read(|d| {
            let id = owner(d, &p.request_id)?;
            d.paired[&id]
                .pending_node_surface
                .as_ref()
                .map(|s| s.commands.clone())
        })
        .ok_or_else(unknown_request)?;
    for scope in protocol::approve_scopes(&commands) {
        if !has_scope(&c.caller.scopes, scope) {
            return Err(protocol::missing_scope(scope, c.caller.protocol));
        }
    }
    let now = now_ms();
    let out = c.shared.devices().change(|d| {
        let id = owner(d, &p.request_id).ok_or_else(unknown_request)?;
        let r = d.paired.get_mut(&id).ok_or_else(unknown_request)?;
        let req = r.pending_node_surface.take().ok_or_else(unknown_request)?;
        let created = r.node_surface.as_ref().map_or(now, |s| s.created_at_ms);
        let surface = NodeSurface {
            caps: req.caps,
            commands: req.commands,
            display_name: req.display_name,
            version: Some(req.version),
            created_at_ms: created,
            approved_at_ms: now,
        };
        r.node_surface = Some(surface.clone());
        Ok::<_, ErrorShape>((id, r.clone(), surface))
    });
    let (node_id, record, surface) = out.map_err(|e| {
        log::error!(
            "cannot write '{}': {e}",
            c.shared.devices().path().display()
        );
        ErrorShape::unavailable("gateway cannot store the node approval")
    })??;
    // Live at once: the node's next invoke is allowed without a reconnect.
    c.shared.node_surface_approved(
        &node_id,
        surface.caps.clone(),
        surface.commands.clone(),
        surface.approved_at_ms,
    );
    log::info!(
        "node {} may now use {} commands",
        protocol::clip(&node_id, 12),
        surface.commands.len()
    );
    let resolved = json!({"requestId": p.request_id, "nodeId": node_id,
                          "decision": "approved", "ts": now});
    c.shared.broadcast(
        "node.runnerInventory.changed",
        &json!({"nodeId": node_id}),
        Delivery::Required,
    );
    notify(c.shared, "node.pair.resolved", &resolved);
    // The node itself learns it directly, without a seq, as the
    // reference does; its retried start-up calls then succeed.
    c.shared.send(
        Audience::Device(&node_id, Some(Role::Node)),
        QueuedEvent::directed("node.pair.resolved", resolved.to_string()),
        Delivery::Required,
    );
    Ok(json!({"requestId": p.request_id, "node": node_json(&node_id, &record, &surface)}).into())
}

pub(super) fn reject(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: RequestId = protocol::parse("node.pair.reject", c.params)?;
    let now = now_ms();
    let out = c.shared.devices().change(|d| {
        let id = owner(d, &p.request_id).ok_or_else(unknown_request)?;
        let r = d.paired.get_mut(&id).ok_or_else(unknown_request)?;
        let req = r.pending_node_surface.take().ok_or_else(unknown_request)?;
        Ok::<_, ErrorShape>((id, req))
    });
    let (node_id, req) = out.map_err(|e| {
        log::error!(
            "cannot write '{}': {e}",
            c.shared.devices().path().display()
        );
        ErrorShape::unavailable("gateway cannot store the node rejection")
    })??;
    // The node keeps what was approved before; nothing waits any more.
    c.shared.node_surface_pending(&node_id, None);
    let resolved = json!({"requestId": p.request_id, "nodeId": node_id,
                          "decision": "rejected", "ts": now});
    notify(c.shared, "node.pair.resolved", &resolved);
    c.shared.send(
        Audience::Device(&node_id, Some(Role::Node)),
        QueuedEvent::directed("node.pair.resolved", resolved.to_string()),
        Delivery::Required,
    );
    Ok(request_json(&node_id, &req).into())
}

pub(super) fn remove(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: NodeId = protocol::parse("node.pair.remove", c.params)?;
    let out = c.shared.devices().change(|d| {
        let r = d
            .paired
            .get_mut(&p.node_id)
            .filter(|r| r.roles.iter().any(|x| x == "node"))
            .ok_or_else(|| ErrorShape::invalid("unknown nodeId"))?;
        r.roles.retain(|x| x != "node");
        r.tokens.remove("node");
        r.node_surface = None;
        r.pending_node_surface = None;
        if r.roles.is_empty() {
            d.paired.remove(&p.node_id);
        }
        Ok::<_, ErrorShape>(())
    });
    out.map_err(|e| {
        log::error!(
            "cannot write '{}': {e}",
            c.shared.devices().path().display()
        );
        ErrorShape::unavailable("gateway cannot store the node removal")
    })??;
    c.shared.close(
        Audience::Device(&p.node_id, Some(Role::Node)),
        4001,
        "node removed",
    );
    Ok(json!({"nodeId": p.node_id}).into())
}
