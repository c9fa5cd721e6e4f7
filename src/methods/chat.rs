//! `chat.send`, `chat.history` and `chat.abort` (PROTOCOL-AGENTS §4): a
//! message into a session acknowledged at once, its reply arriving as
//! `chat` and `agent` events; the session's messages read from the end of
//! its transcript; and stopping what runs in a session.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Answer, Ctx};
use crate::protocol::{self, ErrorShape, Invalid, Params, Payload};
use crate::runs::admit::{admit, Admission, Request};
use crate::runs::{keys, rows};
use crate::state::{Job, RunKind};
use crate::store::transcript;

/// The session a request names, by the configuration it runs under.
pub(super) fn session_at(c: &Ctx, key: &str, agent: Option<&str>) -> keys::SessionRef {
    let s = &c.live.settings;
    keys::resolve(Some(key), agent, &s.default_agent_id, &s.main_key)
}

/// `chat.history` without a `limit`, and its largest.
const HISTORY_DEFAULT: usize = 200;
const HISTORY_MAX: usize = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct SendParams {
    session_key: String,
    #[serde(default)]
    message: String,
    idempotency_key: String,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

impl Params for SendParams {
    const MAX_BYTES: usize = 4 * 1024 * 1024 + 64 * 1024;

    fn check(&self) -> Result<(), Invalid> {
        if self.session_key.len() > 512 {
            return Err(Invalid::at(
                "/sessionKey",
                "must NOT have more than 512 characters",
            ));
        }
        protocol::non_empty("/sessionKey", &self.session_key)?;
        protocol::non_empty("/idempotencyKey", &self.idempotency_key)
    }
}

/// C0 controls other than tab and line breaks are stripped, as the
/// reference does; a NUL byte is refused by the run's admission.
fn clean(message: &str) -> String {
    message
        .chars()
        .filter(|&c| {
            c == '\0' || c == '\t' || c == '\n' || c == '\r' || !c.is_control() || c as u32 >= 0x7f
        })
        .collect()
}

pub(super) fn chat_send(c: &Ctx) -> Result<Answer, ErrorShape> {
    let p: SendParams = protocol::parse("chat.send", c.params)?;
    let message = clean(&p.message);
    if message.trim().is_empty() {
        return Err(ErrorShape::invalid(
            "invalid chat.send params: message is empty",
        ));
    }
    let req = Request {
        kind: RunKind::Chat,
        id: &p.idempotency_key,
        agent: p.agent_id.as_deref(),
        session: Some(&p.session_key),
        message: &message,
        job: Job {
            message: message.clone(),
            model: None,
            timeout: p.timeout_ms.filter(|&ms| ms > 0).map(Duration::from_millis),
            extra_system_prompt: None,
            tap: None,
        },
    };
    let payload = match admit(c.shared, &c.live.settings, req, None)? {
        Admission::Started { run_id, .. } => json!({"runId": &*run_id, "status": "started"}),
        Admission::InFlight { run_id, .. } => json!({"runId": &*run_id, "status": "in_flight"}),
        Admission::Replay(e) => {
            let status = e.wait["status"].clone();
            json!({"runId": p.idempotency_key, "status": status})
        }
    };
    Ok(payload.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct HistoryParams {
    session_key: String,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    max_chars: Option<usize>,
    #[serde(default)]
    max_bytes: Option<usize>,
}

impl Params for HistoryParams {
    fn check(&self) -> Result<(), Invalid> {
        protocol::non_empty("/sessionKey", &self.session_key)
    }
}

pub(super) fn chat_history(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: HistoryParams = protocol::parse("chat.history", c.params)?;
    let s = &c.live.settings;
    let at = session_at(c, &p.session_key, p.agent_id.as_deref());
    let limit = p.limit.unwrap_or(HISTORY_DEFAULT).clamp(1, HISTORY_MAX);
    // Room for the envelope; the rest of what this client accepts is for
    // the messages (newest kept).
    let room = c.max_payload.saturating_sub(16 * 1024);
    let max_bytes = p.max_bytes.or(p.max_chars).map_or(room, |m| m.min(room));
    let store = c.shared.sessions();
    let entry = store.get(&at.agent, &at.key);
    let (session_id, history) = match &entry {
        Some(e) => {
            let path = store
                .transcript_path(&at.agent, &e.session_id)
                .map_err(|e| ErrorShape::invalid(e.to_string()))?;
            let h = transcript::history(&path, limit, max_bytes)
                .map_err(|e| ErrorShape::unavailable(format!("cannot read the transcript: {e}")))?;
            (Some(e.session_id.clone()), Some(h))
        }
        None => (None, None),
    };
    let (messages, total, has_more) = match history {
        Some(h) => (h.messages, h.total, h.has_more),
        None => (Vec::new(), 0, false),
    };
    Ok(json!({
        "sessionKey": at.key, "sessionId": session_id, "messages": messages,
        "hasMore": has_more, "totalMessages": total,
        "pendingInputs": {"items": [], "total": 0},
        "defaults": rows::defaults(s, &at.agent),
    })
    .into())
}

/// `send` delivers to external channels in the reference; clawgate has
/// none, so it answers as the reference does for a channel it lacks.
pub(super) fn send(c: &Ctx) -> Result<Payload, ErrorShape> {
    let v = protocol::params_value("send", c.params, 64 * 1024)?;
    let text = v["message"].as_str().is_some_and(|m| !m.trim().is_empty());
    let media = v["mediaUrl"].as_str().is_some()
        || v["mediaUrls"].as_array().is_some_and(|a| !a.is_empty());
    if !text && !media {
        return Err(ErrorShape::invalid(
            "invalid send params: text or media is required",
        ));
    }
    let channel = v["channel"].as_str().unwrap_or("").trim();
    Err(ErrorShape::invalid(match channel {
        "webchat" => {
            "unsupported channel: webchat (internal-only). Use `chat.send` for WebChat UI messages."
                .to_string()
        }
        "" => "unsupported channel: none configured".to_string(),
        c => format!("unsupported channel: {}", protocol::clip(c, 64)),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct AbortParams {
    session_key: String,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
}

impl Params for AbortParams {
    fn check(&self) -> Result<(), Invalid> {
        protocol::non_empty("/sessionKey", &self.session_key)
    }
}

pub(super) fn chat_abort(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: AbortParams = protocol::parse("chat.abort", c.params)?;
    let at = session_at(c, &p.session_key, p.agent_id.as_deref());
    let ids = c
        .shared
        .run_abort(&at.key, p.run_id.as_deref())
        .map_err(|()| ErrorShape::invalid("runId does not match sessionKey"))?;
    let ids: Vec<Value> = ids.iter().map(|i| json!(&**i)).collect();
    Ok(json!({"ok": true, "aborted": !ids.is_empty(), "runIds": ids}).into())
}
