//! The handshake's device step, after the shared secret: check the
//! device proof, ask the pairing decision (`auth::pairing`), and carry it
//! out: record a silent approval or a pending request in the device
//! store, mint a device token, tell the operators who may approve.
//!
//! The store is written before `hello-ok` or `NOT_PAIRED` is sent, so
//! what a client was told survives a crash. No state lock is held while
//! the store is written.

use serde_json::json;

use crate::auth::device::{self, Challenge, Verified};
use crate::auth::pairing::{self, Ask, Credential, Decision, Reason};
use crate::auth::{Grant, Method, Peer};
use crate::protocol::{ConnectParams, DeviceBlock, ErrorShape, Role};
use crate::state::{now_ms, Shared};
use crate::store::devices::{Devices, PairedDevice, PendingRequest, PendingSurface};
use crate::sys;

/// A device admitted: its id, the token `hello-ok` hands it, and for a
/// node the surface it may use now.
#[derive(Debug)]
pub(super) struct Paired {
    pub id: String,
    pub token: Option<(String, u64)>,
    pub surface: Option<Surface>,
}

/// A node's command surface as of this connect.
#[derive(Debug, Clone, Default)]
pub(super) struct Surface {
    /// What it may use: approved and still declared.
    pub caps: Vec<String>,
    pub commands: Vec<String>,
    pub approved_at_ms: Option<u64>,
    /// Set while what it declared waits for `node.pair.approve`.
    pub pending_request: Option<String>,
}

/// Why the device may not in: the error, its close reason, and whether it
/// counts as a guess for the failed-auth limiter (a wrong device token).
#[derive(Debug)]
pub(super) struct Refused {
    pub error: ErrorShape,
    pub reason: String,
    pub counts: bool,
}

impl Refused {
    fn plain(error: ErrorShape) -> Refused {
        Refused {
            reason: error.close_reason(),
            error,
            counts: false,
        }
    }
}

/// Kept out of line: inlined, its locals would enlarge the handshake's
/// stack frame for every client, device or not, and a thread's stack pages
/// stay resident once touched (8 KiB per idle client, measured).
#[inline(never)]
pub(super) fn settle(
    shared: &Shared,
    p: &ConnectParams,
    block: &DeviceBlock,
    peer: &Peer,
    grant: &Grant,
    challenge: Challenge,
) -> Result<Paired, Box<Refused>> {
    let v =
        device::verify(block, p, challenge).map_err(|e| Box::new(Refused::plain(e.to_error())))?;
    let credential = match (grant.method, p.auth.device_token.as_deref()) {
        (Method::DeviceToken, Some(t)) => Credential::DeviceToken(t),
        _ => Credential::Secret,
    };
    let ask = Ask {
        role: grant.role,
        scopes: &grant.scopes,
        public_key: &v.public_key,
        credential,
        local: peer.pairing_local(p),
    };
    let now = now_ms();
    let ip = peer.ip.to_string();
    let record = shared.devices().read(|d| d.paired.get(&v.id).cloned());
    let decision = pairing::decide(&ask, record.as_ref());
    let silent = decision == Decision::Silent;
    let stored = match decision {
        Decision::Refuse(error) => {
            let counts = ask.credential != Credential::Secret;
            return Err(Box::new(Refused {
                reason: error.close_reason(),
                error,
                counts,
            }));
        }
        Decision::Wait(reason) => {
            return Err(Box::new(wait(shared, p, peer, grant, &v, reason, now)))
        }
        Decision::Admit { mint } => shared.devices().change(|d| {
            // When it was last seen is not worth a disk write of its own
            // (see `touch` below); a new token or surface request is.
            // `None`: the record is gone; `Some`: no random token.
            let r = d.paired.get_mut(&v.id).ok_or(None)?;
            let token = if mint {
                Some(r.mint_token(grant.role, now).map_err(Some)?)
            } else {
                credential_token(credential, r, grant.role)
            };
            Ok::<_, Option<std::io::Error>>((
                token,
                node_surface(d, &v.id, p, grant.role, &ip, now),
            ))
        }),
        Decision::Silent => shared.devices().change(|d| {
            let superseded = d.pending_of(&v.id).map(|(k, _)| k.clone());
            if let Some(k) = &superseded {
                d.pending.remove(k);
            }
            let r = d
                .paired
                .entry(v.id.clone())
                .or_insert_with(|| PairedDevice::new(v.public_key.clone(), now));
            approve(r, p, &v, grant, now);
            let token = r.mint_token(grant.role, now).map_err(Some)?;
            Ok::<_, Option<std::io::Error>>((
                Some(token),
                node_surface(d, &v.id, p, grant.role, &ip, now),
            ))
        }),
    };
    shared.devices().touch(|d| {
        if let Some(r) = d.paired.get_mut(&v.id) {
            seen(r, now, &ip);
        }
    });
    let (token, (surface, requested)) = match stored {
        Ok(Ok(v)) => v,
        // The record vanished between the read and the change (removed by
        // an operator just now): as if never paired.
        Ok(Err(None)) => {
            return Err(Box::new(wait(
                shared,
                p,
                peer,
                grant,
                &v,
                Reason::NotPaired,
                now,
            )));
        }
        Ok(Err(Some(e))) => {
            log::error!("cannot make a device token: {e}");
            return Err(Box::new(Refused::plain(ErrorShape::unavailable(
                "gateway cannot make a device token",
            ))));
        }
        Err(e) => {
            log::error!("cannot write '{}': {e}", shared.devices().path().display());
            return Err(Box::new(Refused::plain(ErrorShape::unavailable(
                "gateway cannot store the device pairing",
            ))));
        }
    };
    if silent {
        log::info!(
            "device {} paired silently as {}",
            short(&v.id),
            grant.role.as_str()
        );
        let payload = json!({"requestId": sys::uuid_v4(), "deviceId": v.id,
                             "decision": "approved", "ts": now});
        crate::methods::devices::notify(shared, "device.pair.resolved", &payload);
    }
    if let Some(req) = requested {
        crate::methods::devices::notify(shared, "node.pair.requested", &req);
    }
    Ok(Paired {
        id: v.id,
        token,
        surface,
    })
}

/// Records (or refreshes) the device's pending request, tells the
/// operators about a new one, and answers `NOT_PAIRED`.
fn wait(
    shared: &Shared,
    p: &ConnectParams,
    peer: &Peer,
    grant: &Grant,
    v: &Verified,
    reason: Reason,
    now: u64,
) -> Refused {
    let req = PendingRequest {
        device_id: v.id.clone(),
        public_key: v.public_key.clone(),
        display_name: p.client.display_name.clone(),
        platform: p.client.platform.clone(),
        device_family: p.client.device_family.clone(),
        client_id: p.client.id.clone(),
        client_mode: p.client.mode.clone(),
        role: grant.role.as_str().to_string(),
        roles: vec![grant.role.as_str().to_string()],
        scopes: grant.scopes.clone(),
        remote_ip: Some(peer.ip.to_string()),
        reason: reason.as_str().to_string(),
        is_repair: reason != Reason::NotPaired,
        ts: now,
        refreshed_at_ms: now,
    };
    let outcome = shared.devices().change(|d| {
        d.prune(now);
        // A device that keeps retrying the same ask keeps its request id.
        let same = d
            .pending_of(&v.id)
            .filter(|(_, r)| {
                r.role == req.role && r.scopes == req.scopes && r.public_key == req.public_key
            })
            .map(|(k, r)| (k.clone(), r.ts));
        let (id, fresh) = match same {
            Some((k, ts)) => {
                let mut req = req.clone();
                req.ts = ts;
                d.pending.insert(k.clone(), req);
                (k, false)
            }
            None => {
                let k = sys::uuid_v4();
                d.put_pending(k.clone(), req.clone());
                (k, true)
            }
        };
        let approved = d.paired.get(&v.id).cloned();
        Ok::<_, ()>((id, fresh, approved))
    });
    let (request_id, fresh, approved) = match outcome {
        Ok(Ok(v)) => v,
        Ok(Err(())) | Err(_) => {
            log::error!("cannot write '{}'", shared.devices().path().display());
            return Refused::plain(ErrorShape::unavailable(
                "gateway cannot store the pairing request",
            ));
        }
    };
    if fresh {
        log::info!(
            "device {} from {} waits for approval ({}): request {request_id}",
            short(&v.id),
            peer.ip,
            reason.as_str()
        );
        let mut payload = serde_json::to_value(&req).unwrap_or_default();
        payload["requestId"] = json!(request_id);
        crate::methods::devices::notify(shared, "device.pair.requested", &payload);
    }
    let error = pairing::not_paired(
        reason,
        &request_id,
        &v.id,
        grant.role,
        &grant.scopes,
        approved.as_ref(),
    );
    Refused {
        reason: pairing::not_paired_close_reason(&error, &request_id),
        error,
        counts: false,
    }
}

/// Widens `r` to what was asked: the role joins its roles, the scopes
/// join its scopes; the key and client details become the current ones.
fn approve(r: &mut PairedDevice, p: &ConnectParams, v: &Verified, grant: &Grant, now: u64) {
    r.public_key = v.public_key.clone();
    r.display_name = p.client.display_name.clone().or(r.display_name.take());
    r.platform = p.client.platform.clone();
    r.device_family = p.client.device_family.clone();
    r.client_id = p.client.id.clone();
    r.client_mode = p.client.mode.clone();
    let role = grant.role.as_str().to_string();
    if !r.roles.contains(&role) {
        r.roles.push(role);
    }
    for s in &grant.scopes {
        if !r.scopes.contains(s) {
            r.scopes.push(s.clone());
        }
    }
    r.scopes.sort();
    r.approved_via = "silent".to_string();
    r.approved_at_ms = now;
}

fn seen(r: &mut PairedDevice, now: u64, ip: &str) {
    r.last_seen_at_ms = Some(now);
    r.last_seen_reason = Some("connect".into());
    r.remote_ip = Some(ip.to_string());
}

/// The device token a client authenticated with, handed back as it is
/// (only its hash is stored, and it is still valid).
fn credential_token(c: Credential, r: &PairedDevice, role: Role) -> Option<(String, u64)> {
    let Credential::DeviceToken(t) = c else {
        return None;
    };
    let rec = r.tokens.get(role.as_str())?;
    Some((
        t.to_string(),
        rec.rotated_at_ms.unwrap_or(rec.created_at_ms),
    ))
}

/// For a node: what it may use now, and a surface request for what it
/// declared beyond its approval (kept across reconnects: the same ask
/// keeps its request id). Returns the surface and the request to announce
/// when it is new.
fn node_surface(
    d: &mut Devices,
    id: &str,
    p: &ConnectParams,
    role: Role,
    ip: &str,
    now: u64,
) -> (Option<Surface>, Option<serde_json::Value>) {
    if role != Role::Node {
        return (None, None);
    }
    let Some(r) = d.paired.get_mut(id) else {
        return (None, None);
    };
    let declared = |have: &[String], want: &[String]| {
        want.iter()
            .filter(|c| have.contains(c))
            .cloned()
            .collect::<Vec<_>>()
    };
    let approved = r.node_surface.clone().unwrap_or_default();
    let mut surface = Surface {
        caps: declared(&approved.caps, &p.caps),
        commands: declared(&approved.commands, &p.commands),
        approved_at_ms: r.node_surface.as_ref().map(|s| s.approved_at_ms),
        pending_request: None,
    };
    let covered = p.caps.iter().all(|c| approved.caps.contains(c))
        && p.commands.iter().all(|c| approved.commands.contains(c))
        && r.node_surface.is_some();
    if covered {
        r.pending_node_surface = None;
        return (Some(surface), None);
    }
    let same = r
        .pending_node_surface
        .as_ref()
        .filter(|s| s.caps == p.caps && s.commands == p.commands);
    let (request, fresh) = match same {
        Some(s) => (s.clone(), false),
        None => (
            PendingSurface {
                request_id: sys::uuid_v4(),
                caps: p.caps.clone(),
                commands: p.commands.clone(),
                display_name: p.client.display_name.clone(),
                platform: p.client.platform.clone(),
                version: p.client.version.clone(),
                device_family: p.client.device_family.clone(),
                client_id: p.client.id.clone(),
                client_mode: p.client.mode.clone(),
                remote_ip: Some(ip.to_string()),
                ts: now,
            },
            true,
        ),
    };
    surface.pending_request = Some(request.request_id.clone());
    r.pending_node_surface = Some(request.clone());
    let announce = fresh.then(|| crate::methods::node_pairing::request_json(id, &request));
    (Some(surface), announce)
}

/// The first 12 hex digits of a device id, for logs.
pub(crate) fn short(id: &str) -> &str {
    crate::protocol::clip(id, 12)
}
