//! The pairing decision for a connect whose device proof checked out: is
//! this device approved for what it asks, may it be approved silently,
//! or must it wait for an operator? And, for a device that authenticates
//! with its device token instead of the shared secret, does the token
//! match and cover the scopes it asks for?
//!
//! Pure: the handshake reads the device's record from the store, asks
//! here, and carries out the answer (a silent approval, a pending
//! request, a token) after.

use serde_json::json;

use crate::protocol::{ErrorShape, Role};
use crate::store::devices::{token_hash, PairedDevice};

use super::secret::ct_eq;

/// Why a device must wait for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NotPaired,
    RoleUpgrade,
    ScopeUpgrade,
    MetadataUpgrade,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotPaired => "not-paired",
            Reason::RoleUpgrade => "role-upgrade",
            Reason::ScopeUpgrade => "scope-upgrade",
            Reason::MetadataUpgrade => "metadata-upgrade",
        }
    }

    fn text(self) -> (&'static str, &'static str) {
        match self {
            Reason::NotPaired => (
                "device is not approved yet",
                "Approve this device from the pending pairing requests.",
            ),
            Reason::RoleUpgrade => (
                "device is asking for a higher role than currently approved",
                "Review the requested role upgrade, then approve the pending request.",
            ),
            Reason::ScopeUpgrade => (
                "device is asking for more scopes than currently approved",
                "Review the requested scopes, then approve the pending upgrade.",
            ),
            Reason::MetadataUpgrade => (
                "device identity changed and must be re-approved",
                "Review the refreshed device details, then approve the pending request.",
            ),
        }
    }
}

/// How the connect proved itself before pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A valid shared token or password, or auth mode `none`.
    Secret,
    /// Only a device token (checked here against the record).
    DeviceToken(&'a str),
}

/// What the connect asks for, with the facts the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub role: Role,
    pub scopes: &'a [String],
    /// The canonical public key the proof was made with.
    pub public_key: &'a str,
    pub credential: Credential<'a>,
    /// A direct loopback peer without a foreign browser origin: see
    /// [`silent_allowed`].
    pub local: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Approved for this; `mint` when it needs a new token for the role
    /// (it has none, or it came with the shared secret and a fresh one is
    /// handed out, since only hashes are kept).
    Admit { mint: bool },
    /// Unknown or asking for more, and allowed to be approved now: record
    /// (or widen) the pairing with `approvedVia: "silent"` and mint.
    Silent,
    /// Must wait for an operator: `NOT_PAIRED` with this reason.
    Wait(Reason),
    /// A device token that does not match or does not cover the ask.
    Refuse(ErrorShape),
}

/// Silent approval is for a local peer that proved the shared secret.
/// Someone who holds only a device token already has a pairing and gets
/// exactly that.
pub fn silent_allowed(ask: &Ask) -> bool {
    ask.local && ask.credential == Credential::Secret
}

pub fn decide(ask: &Ask, record: Option<&PairedDevice>) -> Decision {
    let role = ask.role.as_str();
    if let Credential::DeviceToken(token) = ask.credential {
        return match record.and_then(|r| r.tokens.get(role).map(|t| (r, t))) {
            Some((r, t))
                if t.revoked_at_ms.is_none()
                    && r.public_key == ask.public_key
                    && ct_eq(token_hash(token).as_bytes(), t.token_sha256.as_bytes()) =>
            {
                if ask.scopes.iter().all(|s| t.scopes.contains(s)) {
                    Decision::Admit { mint: false }
                } else {
                    Decision::Refuse(unauthorized(
                        "unauthorized: device token scope mismatch (re-pair or approve scope upgrade)",
                        "AUTH_SCOPE_MISMATCH",
                        "scope_mismatch",
                        "review_auth_configuration",
                    ))
                }
            }
            _ => Decision::Refuse(unauthorized(
                "unauthorized: device token mismatch (rotate/reissue device token)",
                "AUTH_DEVICE_TOKEN_MISMATCH",
                "device_token_mismatch",
                "update_auth_credentials",
            )),
        };
    }
    let silent = silent_allowed(ask);
    let Some(r) = record else {
        return if silent {
            Decision::Silent
        } else {
            Decision::Wait(Reason::NotPaired)
        };
    };
    let wait_unless_silent = |reason| {
        if silent {
            Decision::Silent
        } else {
            Decision::Wait(reason)
        }
    };
    if r.public_key != ask.public_key {
        return wait_unless_silent(Reason::MetadataUpgrade);
    }
    if !r.roles.iter().any(|x| x == role) {
        // A new non-operator role (a phone becoming a node) is never
        // granted silently.
        return if silent && ask.role == Role::Operator {
            Decision::Silent
        } else {
            Decision::Wait(Reason::RoleUpgrade)
        };
    }
    if !ask.scopes.iter().all(|s| r.scopes.contains(s)) {
        return wait_unless_silent(Reason::ScopeUpgrade);
    }
    Decision::Admit { mint: true }
}

fn unauthorized(message: &str, code: &str, reason: &str, next: &str) -> ErrorShape {
    ErrorShape::invalid(message).with_details(json!({
        "code": code,
        "authReason": reason,
        "canRetryWithDeviceToken": false,
        "recommendedNextStep": next,
    }))
}

/// `NOT_PAIRED` for a device that waits, exactly as the reference words it.
pub fn not_paired(
    reason: Reason,
    request_id: &str,
    device_id: &str,
    role: Role,
    scopes: &[String],
    approved: Option<&PairedDevice>,
) -> ErrorShape {
    let (what, hint) = reason.text();
    let mut details = json!({
        "code": "PAIRING_REQUIRED",
        "reason": reason.as_str(),
        "requestId": request_id,
        "remediationHint": hint,
        "deviceId": device_id,
        "requestedRole": role.as_str(),
        "requestedScopes": scopes,
    });
    if let Some(r) = approved {
        details["approvedRoles"] = json!(r.roles);
        details["approvedScopes"] = json!(r.scopes);
    }
    ErrorShape::new("NOT_PAIRED", format!("pairing required: {what}")).with_details(details)
}

/// The close reason after `NOT_PAIRED`: the message and the request id,
/// which the frame's 123-byte limit cuts to 120.
pub fn not_paired_close_reason(e: &ErrorShape, request_id: &str) -> String {
    let full = format!("{} (requestId: {request_id})", e.message);
    crate::protocol::clip(&full, 120).to_string()
}

/// `NOT_PAIRED "device identity required"`: role `node` without a device.
pub fn identity_required() -> ErrorShape {
    ErrorShape::new("NOT_PAIRED", "device identity required").with_details(json!({
        "code": "DEVICE_IDENTITY_REQUIRED",
        "reason": "device-identity-required",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::devices::TokenRecord;
    use std::collections::BTreeMap;

    fn details_of(e: &ErrorShape) -> serde_json::Value {
        e.to_json()["details"].clone()
    }

    fn record(roles: &[&str], scopes: &[&str], token: Option<&str>) -> PairedDevice {
        let mut tokens = BTreeMap::new();
        if let Some(t) = token {
            tokens.insert(
                roles[0].to_string(),
                TokenRecord {
                    token_sha256: token_hash(t),
                    scopes: scopes.iter().map(|s| s.to_string()).collect(),
                    created_at_ms: 1,
                    rotated_at_ms: None,
                    revoked_at_ms: None,
                },
            );
        }
        PairedDevice {
            public_key: "KEY".into(),
            display_name: None,
            platform: "linux".into(),
            device_family: None,
            client_id: "node-host".into(),
            client_mode: "node".into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            approved_via: "operator".into(),
            created_at_ms: 1,
            approved_at_ms: 1,
            last_seen_at_ms: None,
            last_seen_reason: None,
            remote_ip: None,
            tokens,
            node_surface: None,
            pending_node_surface: None,
        }
    }

    fn ask<'a>(role: Role, scopes: &'a [String], cred: Credential<'a>, local: bool) -> Ask<'a> {
        Ask {
            role,
            scopes,
            public_key: "KEY",
            credential: cred,
            local,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn unknown_devices_are_silent_only_locally_with_the_secret() {
        let none = s(&[]);
        let a = ask(Role::Node, &none, Credential::Secret, true);
        assert_eq!(decide(&a, None), Decision::Silent);
        let a = ask(Role::Node, &none, Credential::Secret, false);
        assert_eq!(decide(&a, None), Decision::Wait(Reason::NotPaired));
        let a = ask(Role::Node, &none, Credential::DeviceToken("t"), true);
        assert!(matches!(decide(&a, None), Decision::Refuse(_)));
    }

    #[test]
    fn paired_devices_get_what_they_were_approved_for_and_wait_for_more() {
        let read = s(&["operator.read"]);
        let more = s(&["operator.read", "operator.admin"]);
        let r = record(&["operator"], &["operator.read"], None);
        let a = ask(Role::Operator, &read, Credential::Secret, false);
        assert_eq!(decide(&a, Some(&r)), Decision::Admit { mint: true });
        let a = ask(Role::Operator, &more, Credential::Secret, false);
        assert_eq!(decide(&a, Some(&r)), Decision::Wait(Reason::ScopeUpgrade));
        let a = ask(Role::Operator, &more, Credential::Secret, true);
        assert_eq!(decide(&a, Some(&r)), Decision::Silent);
        // A new node role is never silent, even locally.
        let a = ask(Role::Node, &read, Credential::Secret, true);
        assert_eq!(decide(&a, Some(&r)), Decision::Wait(Reason::RoleUpgrade));
        let mut moved = r.clone();
        moved.public_key = "OTHER".into();
        let a = ask(Role::Operator, &read, Credential::Secret, false);
        assert_eq!(
            decide(&a, Some(&moved)),
            Decision::Wait(Reason::MetadataUpgrade)
        );
    }

    #[test]
    fn device_tokens_match_by_hash_and_cover_only_their_scopes() {
        let read = s(&["operator.read"]);
        let admin = s(&["operator.admin"]);
        let r = record(&["operator"], &["operator.read"], Some("tok"));
        let a = ask(Role::Operator, &read, Credential::DeviceToken("tok"), false);
        assert_eq!(decide(&a, Some(&r)), Decision::Admit { mint: false });
        let code = |d: Decision| match d {
            Decision::Refuse(e) => details_of(&e)["code"].as_str().unwrap().to_string(),
            other => panic!("{other:?}"),
        };
        let a = ask(
            Role::Operator,
            &read,
            Credential::DeviceToken("tok2"),
            false,
        );
        assert_eq!(code(decide(&a, Some(&r))), "AUTH_DEVICE_TOKEN_MISMATCH");
        let a = ask(
            Role::Operator,
            &admin,
            Credential::DeviceToken("tok"),
            false,
        );
        assert_eq!(code(decide(&a, Some(&r))), "AUTH_SCOPE_MISMATCH");
        let a = ask(Role::Node, &read, Credential::DeviceToken("tok"), false);
        assert_eq!(code(decide(&a, Some(&r))), "AUTH_DEVICE_TOKEN_MISMATCH");
        let mut revoked = r.clone();
        revoked.tokens.get_mut("operator").unwrap().revoked_at_ms = Some(2);
        let a = ask(Role::Operator, &read, Credential::DeviceToken("tok"), false);
        assert_eq!(
            code(decide(&a, Some(&revoked))),
            "AUTH_DEVICE_TOKEN_MISMATCH"
        );
    }

    #[test]
    fn not_paired_has_the_references_shape_and_close_reason() {
        let e = not_paired(
            Reason::NotPaired,
            "req-1",
            "dev",
            Role::Operator,
            &s(&["operator.read"]),
            None,
        );
        assert_eq!(e.code, "NOT_PAIRED");
        assert_eq!(e.message, "pairing required: device is not approved yet");
        assert_eq!(
            details_of(&e),
            json!({"code": "PAIRING_REQUIRED", "reason": "not-paired", "requestId": "req-1",
                   "remediationHint": "Approve this device from the pending pairing requests.",
                   "deviceId": "dev", "requestedRole": "operator",
                   "requestedScopes": ["operator.read"]})
        );
        let id = "3f1f6f9e-1111-4222-8333-944455556666";
        let reason = not_paired_close_reason(&e, id);
        assert_eq!(
            reason,
            format!("pairing required: device is not approved yet (requestId: {id})")
        );
        let long = not_paired(Reason::ScopeUpgrade, id, "d", Role::Operator, &[], None);
        assert_eq!(not_paired_close_reason(&long, id).len(), 120);
    }
}
