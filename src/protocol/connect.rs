//! `connect`: its parameters, version negotiation and the scopes a
//! device-less client keeps.

use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::params::{non_empty, Invalid, Params};
use super::{ErrorShape, MAX_PROTOCOL, MIN_PROBE_PROTOCOL, SUPPORTED};
use crate::words::words;

const CLIENT_IDS: &[&str] = &[
    "cli",
    "gateway-client",
    "openclaw-control-ui",
    "webchat-ui",
    "webchat",
    "openclaw-tui",
    "openclaw-macos",
    "openclaw-ios",
    "openclaw-android",
    "openclaw-linux",
    "openclaw-watchos",
    "openclaw-browser-copilot",
    "node-host",
    "openclaw-worker",
    "openclaw-probe",
    "test",
    "fingerprint",
];

const CLIENT_MODES: &[&str] = &[
    "cli", "ui", "webchat", "backend", "node", "probe", "test", "worker",
];

words! {
    /// The role a client connects as.
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Role {
        #[default]
        Operator = "operator",
        Node = "node",
    }
}

/// The parts of `client` in connect params that the gateway uses. `id` and
/// `mode` compare case-insensitively, so they are kept lowercased.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub struct ClientInfo {
    #[serde(deserialize_with = "lowercase")]
    pub id: String,
    #[serde(deserialize_with = "lowercase")]
    pub mode: String,
    pub version: String,
    pub platform: String,
    pub display_name: Option<String>,
    pub device_family: Option<String>,
    pub model_identifier: Option<String>,
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub struct ConnectAuth {
    pub token: Option<String>,
    pub password: Option<String>,
    /// The per-device token a paired device replays.
    pub device_token: Option<String>,
    /// Setup-code hand-off (not supported; it only enters the signature).
    pub bootstrap_token: Option<String>,
}

/// The `device` block: an Ed25519 identity and its proof of the challenge
/// (`auth::device` verifies it). Every field is optional here so that a
/// missing one is refused with the reference's device-auth error, not as
/// malformed params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub struct DeviceBlock {
    pub id: Option<String>,
    pub public_key: Option<String>,
    pub signature: Option<String>,
    /// Milliseconds. Kept as sent: a value that is not a number fails the
    /// freshness check (as the reference's does), not the params schema.
    pub signed_at: Option<serde_json::Value>,
    pub nonce: Option<String>,
}

/// `connect` params. Unknown keys are ignored on purpose: clients add
/// fields between releases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub struct ConnectParams {
    pub min_protocol: u64,
    pub max_protocol: u64,
    pub client: ClientInfo,
    #[serde(default, deserialize_with = "or_default")]
    pub role: Role,
    #[serde(default, deserialize_with = "or_default")]
    pub scopes: Vec<String>,
    #[serde(default, deserialize_with = "or_default")]
    pub auth: ConnectAuth,
    pub device: Option<DeviceBlock>,
    /// What a node offers (role `node`): capability groups, commands, the
    /// permissions it holds and its `PATH`.
    #[serde(default, deserialize_with = "or_default")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "or_default")]
    pub commands: Vec<String>,
    pub permissions: Option<serde_json::Value>,
    pub path_env: Option<String>,
}

impl ConnectParams {
    /// `device.id` when a device block was sent.
    pub fn device_id(&self) -> Option<&str> {
        self.device.as_ref().and_then(|d| d.id.as_deref())
    }
}

impl Params for ConnectParams {
    fn check(&self) -> Result<(), Invalid> {
        for (path, n) in [
            ("/minProtocol", self.min_protocol),
            ("/maxProtocol", self.max_protocol),
        ] {
            if n < 1 {
                return Err(Invalid::at(path, "must be >= 1"));
            }
        }
        let c = &self.client;
        non_empty("/client/id", &c.id)?;
        if !CLIENT_IDS.contains(&c.id.as_str()) {
            return Err(Invalid::at(
                "/client/id",
                "must be equal to one of the allowed values",
            ));
        }
        non_empty("/client/mode", &c.mode)?;
        if !CLIENT_MODES.contains(&c.mode.as_str()) {
            return Err(Invalid::at(
                "/client/mode",
                "must be equal to one of the allowed values",
            ));
        }
        non_empty("/client/version", &c.version)?;
        non_empty("/client/platform", &c.platform)
    }
}

fn lowercase<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|s| s.to_ascii_lowercase())
}

/// `null` counts as absent.
fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// The highest supported version within the client's range.
pub fn negotiate(min: u64, max: u64) -> Option<u64> {
    SUPPORTED
        .iter()
        .rev()
        .copied()
        .find(|v| min <= *v && *v <= max)
}

pub fn protocol_mismatch(min: u64, max: u64) -> ErrorShape {
    ErrorShape::invalid("protocol mismatch").with_details(json!({
        "code": "PROTOCOL_MISMATCH",
        "expectedProtocol": MAX_PROTOCOL,
        "minimumProbeProtocol": MIN_PROBE_PROTOCOL,
        "clientMinProtocol": min,
        "clientMaxProtocol": max,
    }))
}

/// Scopes kept for a device-less operator. The reference keeps them only for
/// its own CLI (`cli`/`cli`) and its backend helper (`gateway-client`/
/// `backend`, which `openclaw nodes approve` uses) on a direct loopback
/// connection without a browser `Origin`; everyone else device-less gets
/// none (and so may call only `health`).
pub fn granted_scopes(p: &ConnectParams, direct_local: bool) -> Vec<String> {
    let own = matches!(
        (p.client.id.as_str(), p.client.mode.as_str()),
        ("cli", "cli") | ("gateway-client", "backend")
    );
    if p.role == Role::Operator && own && direct_local {
        let mut s = p.scopes.clone();
        s.sort();
        s.dedup();
        s
    } else {
        Vec::new()
    }
}
