//! The OpenClaw gateway wire protocol (versions 3 and 4), as pure functions:
//! text frames in, decisions and text frames out.
//!
//! Nothing here touches a socket, a clock or shared state, so every rule of
//! the handshake can be unit-tested. Frames carry only the documented keys,
//! because April-era clients validate frames against closed schemas and drop
//! anything with an extra key.

use serde_json::{json, Map, Value};

/// Protocol versions served; the reply names the highest shared one.
pub const SUPPORTED: [u64; 2] = [3, 4];
pub const MAX_PROTOCOL: u64 = 4;
/// Lowest version a `gateway status` probe may send.
pub const MIN_PROBE_PROTOCOL: u64 = 3;

pub const SCOPE_READ: &str = "operator.read";
pub const SCOPE_WRITE: &str = "operator.write";
pub const SCOPE_ADMIN: &str = "operator.admin";

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

/// A client frame, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Req {
        id: String,
        method: String,
        params: Option<Value>,
    },
    /// `{type:"cancel", id}`: a client gave up on a request. Never answered.
    Cancel,
    /// Valid JSON object that is not a well-formed request; `id` is echoed
    /// in the error reply when the frame had a string one.
    Invalid { id: Option<String>, why: String },
}

/// Why a frame could not be read as a JSON object at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    NotJson(String),
    NotObject,
}

/// Classifies one text frame. Nesting is bounded by serde_json's own
/// recursion limit (128), which the 128 KiB connection stack holds.
pub fn parse_frame(text: &str) -> Result<Inbound, FrameError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| FrameError::NotJson(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(FrameError::NotObject);
    };
    let id = match obj.get("id") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("req") => {
            let Some(id) = id else {
                return Ok(Inbound::Invalid {
                    id: None,
                    why: "invalid request frame: id must be a non-empty string".into(),
                });
            };
            match obj.get("method") {
                Some(Value::String(m)) if !m.is_empty() => Ok(Inbound::Req {
                    id,
                    method: m.clone(),
                    params: obj.get("params").cloned(),
                }),
                _ => Ok(Inbound::Invalid {
                    id: Some(id),
                    why: "invalid request frame: method must be a non-empty string".into(),
                }),
            }
        }
        Some("cancel") => Ok(Inbound::Cancel),
        Some(other) => Ok(Inbound::Invalid {
            id,
            why: format!("invalid frame type: {}", clip(other, 64)),
        }),
        None => Ok(Inbound::Invalid {
            id,
            why: "invalid frame: missing type".into(),
        }),
    }
}

/// An error object: `{code, message, details?, retryable?, retryAfterMs?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorShape {
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retryable: Option<bool>,
    pub retry_after_ms: Option<u64>,
}

impl ErrorShape {
    pub fn new(code: &'static str, message: impl Into<String>) -> ErrorShape {
        ErrorShape {
            code,
            message: message.into(),
            details: None,
            retryable: None,
            retry_after_ms: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ErrorShape {
        ErrorShape::new("INVALID_REQUEST", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ErrorShape {
        ErrorShape::new("UNAVAILABLE", message)
    }

    pub fn with_details(mut self, details: Value) -> ErrorShape {
        self.details = Some(details);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), json!(self.code));
        m.insert("message".into(), json!(self.message));
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        if let Some(r) = self.retryable {
            m.insert("retryable".into(), json!(r));
        }
        if let Some(ms) = self.retry_after_ms {
            m.insert("retryAfterMs".into(), json!(ms));
        }
        Value::Object(m)
    }

    /// The reason of the 1008 close that follows a refused connect: the
    /// message, cut to the 120 bytes a close frame leaves room for.
    pub fn close_reason(&self) -> String {
        clip(&self.message, 120).to_string()
    }
}

pub fn res_ok(id: &str, payload: &Value) -> String {
    json!({"type": "res", "id": id, "ok": true, "payload": payload}).to_string()
}

pub fn res_err(id: &str, err: &ErrorShape) -> String {
    json!({"type": "res", "id": id, "ok": false, "error": err.to_json()}).to_string()
}

/// `stateVersion` as carried by snapshots and broadcast events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateVersion {
    pub presence: u64,
    pub health: u64,
}

impl StateVersion {
    pub fn to_json(self) -> Value {
        json!({"presence": self.presence, "health": self.health})
    }
}

/// An event frame from an already-serialized payload, so a broadcast
/// serializes its payload once and each connection only adds its own `seq`.
pub fn event_frame(
    event: &str,
    payload_json: &str,
    seq: Option<u64>,
    sv: Option<StateVersion>,
) -> String {
    let mut out = String::with_capacity(payload_json.len() + event.len() + 96);
    out.push_str("{\"type\":\"event\",\"event\":");
    out.push_str(&Value::from(event).to_string());
    out.push_str(",\"payload\":");
    out.push_str(payload_json);
    if let Some(seq) = seq {
        out.push_str(",\"seq\":");
        out.push_str(&seq.to_string());
    }
    if let Some(sv) = sv {
        out.push_str(&format!(
            ",\"stateVersion\":{{\"presence\":{},\"health\":{}}}",
            sv.presence, sv.health
        ));
    }
    out.push('}');
    out
}

pub fn challenge_frame(nonce: &str, ts_ms: u64) -> String {
    let payload = json!({"nonce": nonce, "ts": ts_ms}).to_string();
    event_frame("connect.challenge", &payload, None, None)
}

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

/// What a method needs. `None`: no scope (health).
pub fn required_scope(method: &str) -> Option<&'static str> {
    match method {
        "health" => None,
        "status" | "system-presence" | "last-heartbeat" | "config.get" | "logs.tail"
        | "models.list" => Some(SCOPE_READ),
        _ => Some(SCOPE_ADMIN),
    }
}

/// Admin covers everything; write covers read.
pub fn has_scope(granted: &[String], required: &str) -> bool {
    granted
        .iter()
        .any(|g| g == required || g == SCOPE_ADMIN || (required == SCOPE_READ && g == SCOPE_WRITE))
}

pub fn missing_scope(required: &str, protocol: u64) -> ErrorShape {
    let code = if protocol >= 4 {
        "FORBIDDEN"
    } else {
        "INVALID_REQUEST"
    };
    ErrorShape::new(code, format!("missing scope: {required}")).with_details(json!({
        "code": "MISSING_SCOPE",
        "missingScope": required,
        "requiredScopes": [required],
    }))
}

pub fn unknown_method(method: &str) -> ErrorShape {
    ErrorShape::invalid(format!("unknown method: {}", clip(method, 128)))
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
