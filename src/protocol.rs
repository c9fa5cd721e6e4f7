//! The OpenClaw gateway wire protocol (versions 3 and 4), as pure functions:
//! text frames in, decisions and text frames out.
//!
//! Nothing here touches a socket, a clock or shared state, so every rule of
//! the handshake can be unit-tested. Frames carry only the documented keys,
//! because April-era clients validate frames against closed schemas and drop
//! anything with an extra key.

mod connect;
mod encoding;
mod frame;
mod node_scopes;
mod params;
mod scopes;

use serde_json::{json, Map, Value};

pub use connect::{
    granted_scopes, negotiate, protocol_mismatch, ConnectAuth, ConnectParams, DeviceBlock, Role,
};
pub use encoding::{b64url, device_id, hex};
pub use frame::{parse_frame, FrameError, Inbound};
pub use node_scopes::{approve_scopes, invoke_scope};
pub use params::{
    from_value, non_empty, parse, value as params_value, Invalid, Params, MAX_PARAM_NODES,
};
pub use scopes::{
    has_scope, missing_scope, unknown_method, SCOPE_ADMIN, SCOPE_PAIRING, SCOPE_READ, SCOPE_WRITE,
};

/// clawgate's own version, as `hello-ok.server.version`, presence,
/// `status` and `--version` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Protocol versions served; the reply names the highest shared one.
pub const SUPPORTED: [u64; 2] = [3, 4];
pub const MAX_PROTOCOL: u64 = 4;
/// Lowest version a `gateway status` probe may send.
pub const MIN_PROBE_PROTOCOL: u64 = 3;

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

/// A reply's payload: a JSON value, or JSON text that is already
/// serialized (a list kept as text is sent without being parsed again).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Value(Value),
    Json(String),
}

impl From<Value> for Payload {
    fn from(v: Value) -> Payload {
        Payload::Value(v)
    }
}

pub fn res_ok(id: &str, payload: &Payload) -> String {
    let json;
    let text = match payload {
        Payload::Value(v) => {
            json = v.to_string();
            &json
        }
        Payload::Json(t) => t,
    };
    res_ok_json(id, text)
}

/// A success reply whose payload is JSON text already.
pub fn res_ok_json(id: &str, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + id.len() + 48);
    out.push_str(r#"{"type":"res","id":"#);
    out.push_str(&Value::from(id).to_string());
    out.push_str(r#","ok":true,"payload":"#);
    out.push_str(text);
    out.push('}');
    out
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
mod tests;
