//! `connect`: its parameters, version negotiation and the scopes a
//! device-less client keeps.

use serde_json::{json, Value};

use super::{clip, ErrorShape, MAX_PROTOCOL, MIN_PROBE_PROTOCOL, SUPPORTED};

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

/// The parts of `client` in connect params that the gateway uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub id: String,
    pub mode: String,
    pub version: String,
    pub platform: String,
    pub display_name: Option<String>,
    pub device_family: Option<String>,
    pub model_identifier: Option<String>,
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectAuth {
    pub token: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectParams {
    pub min_protocol: u64,
    pub max_protocol: u64,
    pub client: ClientInfo,
    pub role: String,
    pub scopes: Vec<String>,
    pub auth: ConnectAuth,
    /// `device.id` when a device block was sent. The block is accepted but
    /// not verified yet (pairing is future work), so it grants nothing.
    pub device_id: Option<String>,
}

/// Validates connect params. Unknown keys are ignored on purpose: clients
/// add fields between releases. The error text is the message of the
/// `INVALID_REQUEST` reply.
pub fn parse_connect(params: Option<&Value>) -> Result<ConnectParams, String> {
    let bad = |why: &str| format!("invalid connect params: {why}");
    let Some(Value::Object(p)) = params else {
        return Err(bad("params must be an object"));
    };
    let proto = |key: &str| -> Result<u64, String> {
        match p.get(key).and_then(Value::as_u64) {
            Some(n) if n >= 1 => Ok(n),
            _ => Err(bad(&format!("{key} must be an integer >= 1"))),
        }
    };
    let min_protocol = proto("minProtocol")?;
    let max_protocol = proto("maxProtocol")?;
    let Some(Value::Object(c)) = p.get("client") else {
        return Err(bad("client must be an object"));
    };
    let required = |key: &str| -> Result<String, String> {
        match c.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            _ => Err(bad(&format!("client.{key} must be a non-empty string"))),
        }
    };
    let optional = |key: &str| c.get(key).and_then(Value::as_str).map(str::to_string);
    let id = required("id")?.to_ascii_lowercase();
    if !CLIENT_IDS.contains(&id.as_str()) {
        return Err(bad(&format!("unknown client.id: {}", clip(&id, 64))));
    }
    let mode = required("mode")?.to_ascii_lowercase();
    if !CLIENT_MODES.contains(&mode.as_str()) {
        return Err(bad(&format!("unknown client.mode: {}", clip(&mode, 64))));
    }
    let client = ClientInfo {
        id,
        mode,
        version: required("version")?,
        platform: required("platform")?,
        display_name: optional("displayName"),
        device_family: optional("deviceFamily"),
        model_identifier: optional("modelIdentifier"),
        instance_id: optional("instanceId"),
    };
    let role = match p.get("role") {
        None | Some(Value::Null) => "operator".to_string(),
        Some(Value::String(r)) if r == "operator" || r == "node" => r.clone(),
        Some(_) => return Err(bad("role must be \"operator\" or \"node\"")),
    };
    let scopes = match p.get("scopes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for s in a {
                match s.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => return Err(bad("scopes must be an array of strings")),
                }
            }
            out
        }
        Some(_) => return Err(bad("scopes must be an array of strings")),
    };
    let auth = match p.get("auth") {
        Some(Value::Object(a)) => ConnectAuth {
            token: a.get("token").and_then(Value::as_str).map(str::to_string),
            password: a
                .get("password")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        None | Some(Value::Null) => ConnectAuth::default(),
        Some(_) => return Err(bad("auth must be an object")),
    };
    let device_id = match p.get("device") {
        Some(Value::Object(d)) => d.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    Ok(ConnectParams {
        min_protocol,
        max_protocol,
        client,
        role,
        scopes,
        auth,
        device_id,
    })
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
/// its own CLI on a direct loopback connection without a browser `Origin`;
/// everyone else device-less gets none (and so may call only `health`).
pub fn granted_scopes(p: &ConnectParams, direct_local: bool) -> Vec<String> {
    if p.role == "operator" && p.client.id == "cli" && p.client.mode == "cli" && direct_local {
        let mut s = p.scopes.clone();
        s.sort();
        s.dedup();
        s
    } else {
        Vec::new()
    }
}
