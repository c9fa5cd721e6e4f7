//! Device pairing and device tokens for operators: `device.pair.list`,
//! `approve`, `reject`, `remove`, `device.token.rotate`, `revoke`, and the
//! gateway's own `gateway.identity.get`.
//!
//! Each change is written to the device store before it is answered, and
//! takes effect at once: a removed device or a revoked token closes that
//! device's open connections, and the next connect is checked against the
//! new record. Token values are never listed; a rotated one is handed out
//! only to the device it belongs to.

use serde::Deserialize;
use serde_json::{json, Value};

use super::ids::{DeviceId, RequestId};
use super::Ctx;
use crate::protocol::{
    self, has_scope, non_empty, ErrorShape, Invalid, Params, Payload, Role, SCOPE_ADMIN,
    SCOPE_PAIRING,
};
use crate::state::{now_ms, Audience, Delivery, QueuedEvent, Shared};
use crate::store::devices::{Devices, PairedDevice, PendingRequest};

/// Sends a pairing event to the operators who may act on it.
pub fn notify(shared: &Shared, name: &'static str, payload: &Value) {
    let ev = QueuedEvent::new(name, payload.to_string(), None);
    shared.send(Audience::Scope(SCOPE_PAIRING), ev, Delivery::Required);
}

/// Operations on a role other than operator (a node) also need admin.
fn check_role_scope(c: &Ctx, role: &str) -> Result<(), ErrorShape> {
    if role != "operator" && !has_scope(&c.caller.scopes, SCOPE_ADMIN) {
        return Err(protocol::missing_scope(SCOPE_ADMIN, c.caller.protocol));
    }
    Ok(())
}

/// A store write that failed: nothing changed, and the caller is told.
fn store_failed(shared: &Shared, e: std::io::Error) -> ErrorShape {
    log::error!("cannot write '{}': {e}", shared.devices().path().display());
    ErrorShape::unavailable("gateway cannot store the device pairing")
}

pub(super) fn pending_json(id: &str, r: &PendingRequest) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["requestId"] = json!(id);
    v
}

/// A paired device as `device.pair.list` shows it: everything but the
/// token hashes.
pub(super) fn paired_json(id: &str, r: &PairedDevice, connected: bool) -> Value {
    let tokens: Vec<Value> = r
        .tokens
        .iter()
        .map(|(role, t)| {
            json!({"role": role, "scopes": t.scopes, "createdAtMs": t.created_at_ms,
                   "rotatedAtMs": t.rotated_at_ms, "revokedAtMs": t.revoked_at_ms})
        })
        .collect();
    let mut v = json!({
        "deviceId": id,
        "publicKey": r.public_key,
        "displayName": r.display_name,
        "platform": r.platform,
        "deviceFamily": r.device_family,
        "clientId": r.client_id,
        "clientMode": r.client_mode,
        "role": r.roles.first(),
        "roles": r.roles,
        "scopes": r.scopes,
        "approvedVia": r.approved_via,
        "createdAtMs": r.created_at_ms,
        "approvedAtMs": r.approved_at_ms,
        "lastSeenAtMs": r.last_seen_at_ms,
        "lastSeenReason": r.last_seen_reason,
        "remoteIp": r.remote_ip,
        "connected": connected,
        "tokens": tokens,
    });
    if let Some(s) = &r.node_surface {
        v["nodeSurface"] = json!({"displayName": s.display_name, "version": s.version,
            "caps": s.caps, "commands": s.commands, "createdAtMs": s.created_at_ms,
            "approvedAtMs": s.approved_at_ms, "sessionHost": false});
    }
    v
}

/// Which devices are connected, to fill in `connected`.
pub(super) fn connected(shared: &Shared) -> impl Fn(&str) -> bool {
    let ids: Vec<_> = shared.connected_devices();
    move |id: &str| ids.iter().any(|(d, _)| &**d == id)
}

pub(super) fn list(c: &Ctx) -> Result<Payload, ErrorShape> {
    let now = now_ms();
    // Forgetting expired requests needs no disk write: they are dropped
    // from the file with the next change, and ignored until then.
    c.shared.devices().touch(|d| {
        d.prune(now);
    });
    let d = c.shared.devices().snapshot();
    let on = connected(c.shared);
    let pending: Vec<Value> = d.pending.iter().map(|(k, r)| pending_json(k, r)).collect();
    let paired: Vec<Value> = d
        .paired
        .iter()
        .map(|(k, r)| paired_json(k, r, on(k)))
        .collect();
    Ok(json!({"pending": pending, "paired": paired}).into())
}

fn unknown_request() -> ErrorShape {
    ErrorShape::invalid("unknown requestId")
}

fn unknown_device() -> ErrorShape {
    ErrorShape::invalid("unknown deviceId")
}

pub(super) fn approve(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: RequestId = protocol::parse("device.pair.approve", c.params)?;
    let now = now_ms();
    let role = c
        .shared
        .devices()
        .read(|d| d.pending.get(&p.request_id).map(|r| r.role.clone()))
        .ok_or_else(unknown_request)?;
    check_role_scope(c, &role)?;
    let out = c.shared.devices().change(|d: &mut Devices| {
        let req = d
            .pending
            .remove(&p.request_id)
            .ok_or_else(unknown_request)?;
        let r = d
            .paired
            .entry(req.device_id.clone())
            .or_insert_with(|| PairedDevice::new(req.public_key.clone(), now));
        widen(r, &req, now);
        Ok((req.device_id.clone(), r.clone()))
    });
    let (device_id, record) = out.map_err(|e| store_failed(c.shared, e))??;
    log::info!(
        "device {} approved as {role} by an operator",
        crate::protocol::clip(&device_id, 12)
    );
    notify(
        c.shared,
        "device.pair.resolved",
        &json!({"requestId": p.request_id, "deviceId": device_id,
                "decision": "approved", "ts": now}),
    );
    let on = connected(c.shared)(&device_id);
    Ok(json!({"requestId": p.request_id, "device": paired_json(&device_id, &record, on)}).into())
}

/// What an approved request grants: its role and scopes join the record,
/// and the key and client details become the requested ones. The device
/// gets its token when it next connects.
fn widen(r: &mut PairedDevice, req: &PendingRequest, now: u64) {
    r.public_key = req.public_key.clone();
    r.display_name = req.display_name.clone().or(r.display_name.take());
    r.platform = req.platform.clone();
    r.device_family = req.device_family.clone();
    r.client_id = req.client_id.clone();
    r.client_mode = req.client_mode.clone();
    for role in &req.roles {
        if !r.roles.contains(role) {
            r.roles.push(role.clone());
        }
    }
    for s in &req.scopes {
        if !r.scopes.contains(s) {
            r.scopes.push(s.clone());
        }
    }
    r.scopes.sort();
    r.approved_via = "operator".into();
    r.approved_at_ms = now;
}

pub(super) fn reject(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: RequestId = protocol::parse("device.pair.reject", c.params)?;
    let now = now_ms();
    let out = c.shared.devices().change(|d| {
        // Removed from the copy: a refusal below leaves the store as it was.
        let req = d
            .pending
            .remove(&p.request_id)
            .ok_or_else(unknown_request)?;
        check_role_scope(c, &req.role)?;
        Ok(req)
    });
    let req = out.map_err(|e| store_failed(c.shared, e))??;
    notify(
        c.shared,
        "device.pair.resolved",
        &json!({"requestId": p.request_id, "deviceId": req.device_id,
                "decision": "rejected", "ts": now}),
    );
    Ok(pending_json(&p.request_id, &req).into())
}

pub(super) fn remove(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: DeviceId = protocol::parse("device.pair.remove", c.params)?;
    let out = c.shared.devices().change(|d| {
        let r = d.paired.get(&p.device_id).ok_or_else(unknown_device)?;
        if r.roles.iter().any(|x| x != "operator") {
            check_role_scope(c, "node")?;
        }
        d.paired.remove(&p.device_id);
        d.pending.retain(|_, r| r.device_id != p.device_id);
        Ok(())
    });
    out.map_err(|e| store_failed(c.shared, e))??;
    let closed = c
        .shared
        .close(Audience::Device(&p.device_id, None), 4001, "device removed");
    log::info!(
        "device {} removed ({closed} connections closed)",
        crate::protocol::clip(&p.device_id, 12)
    );
    Ok(json!({"deviceId": p.device_id, "removedAtMs": now_ms()}).into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenOp {
    device_id: String,
    role: String,
    scopes: Option<Vec<String>>,
}

impl Params for TokenOp {
    fn check(&self) -> Result<(), Invalid> {
        non_empty("/deviceId", &self.device_id)?;
        non_empty("/role", &self.role)
    }
}

fn role_of(s: &str) -> Result<Role, ErrorShape> {
    match s {
        "operator" => Ok(Role::Operator),
        "node" => Ok(Role::Node),
        _ => Err(ErrorShape::invalid("unknown role")),
    }
}

pub(super) fn rotate(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: TokenOp = protocol::parse("device.token.rotate", c.params)?;
    let role = role_of(&p.role)?;
    check_role_scope(c, &p.role)?;
    let now = now_ms();
    let out = c.shared.devices().change(|d| {
        let r = d.paired.get_mut(&p.device_id).ok_or_else(unknown_device)?;
        if !r.roles.contains(&p.role) {
            return Err(ErrorShape::invalid(format!(
                "device is not paired for role {}",
                p.role
            )));
        }
        let scopes = match &p.scopes {
            None => r
                .tokens
                .get(&p.role)
                .map(|t| t.scopes.clone())
                .unwrap_or_else(|| r.scopes.clone()),
            Some(want) => {
                for s in want {
                    if !r.scopes.contains(s) {
                        return Err(ErrorShape::invalid(format!(
                            "scope {s} is not approved for this device"
                        )));
                    }
                    if !has_scope(&c.caller.scopes, s) {
                        return Err(protocol::missing_scope(s, c.caller.protocol));
                    }
                }
                want.clone()
            }
        };
        let (token, at) = r.mint_token(role, now).map_err(|e| {
            log::error!("cannot make a device token: {e}");
            ErrorShape::unavailable("gateway cannot make a device token")
        })?;
        if let Some(t) = r.tokens.get_mut(&p.role) {
            t.scopes = if role == Role::Node {
                Vec::new()
            } else {
                scopes.clone()
            };
        }
        Ok((token, at, scopes))
    });
    let (token, at, scopes) = out.map_err(|e| store_failed(c.shared, e))??;
    c.shared.close(
        Audience::Device(&p.device_id, Some(role)),
        4001,
        "device token rotated",
    );
    let own = c.caller.device.as_deref() == Some(p.device_id.as_str());
    let mut v = json!({"deviceId": p.device_id, "role": p.role, "scopes": scopes,
                       "rotatedAtMs": at,
                       "tokenDelivery": if own { "in-band" } else { "withheld-cross-device" }});
    if own {
        v["token"] = json!(token);
    }
    Ok(v.into())
}

pub(super) fn revoke(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: TokenOp = protocol::parse("device.token.revoke", c.params)?;
    let role = role_of(&p.role)?;
    check_role_scope(c, &p.role)?;
    let now = now_ms();
    let out = c.shared.devices().change(|d| {
        let r = d.paired.get_mut(&p.device_id).ok_or_else(unknown_device)?;
        let t = r
            .tokens
            .get_mut(&p.role)
            .ok_or_else(|| ErrorShape::invalid("no token for that role"))?;
        t.revoked_at_ms = Some(now);
        Ok(())
    });
    out.map_err(|e| store_failed(c.shared, e))??;
    let closed = c.shared.close(
        Audience::Device(&p.device_id, Some(role)),
        4001,
        "device token revoked",
    );
    log::info!(
        "device {} token for {} revoked ({closed} connections closed)",
        crate::protocol::clip(&p.device_id, 12),
        p.role
    );
    Ok(json!({"deviceId": p.device_id, "role": p.role, "revokedAtMs": now}).into())
}

pub(super) fn identity(c: &Ctx) -> Result<Payload, ErrorShape> {
    let id = c.shared.identity();
    Ok(json!({"deviceId": id.device_id, "publicKey": id.public_key}).into())
}
