//! Methods only the stock Control UI calls (PROTOCOL-HTTP §9), each the
//! smallest correct answer a gateway without its extra features gives:
//! `chat.startup` is `chat.history` for the page's opening read,
//! `agent.identity.get` names the assistant as the bootstrap config does,
//! and `sessions.messages.subscribe`/`unsubscribe` acknowledge the live
//! transcript feed with an empty approval replay (clawgate has no
//! approvals; replies reach subscribers as `chat` events). What the UI
//! can live without stays "unknown method".

use serde::Deserialize;
use serde_json::{json, Value};

use super::chat::{chat_history, session_at};
use super::Ctx;
use crate::protocol::{self, ErrorShape, Invalid, Params, Payload};
use crate::state::now_ms;

/// The assistant's identity when none is configured: the reference's
/// default, as the bootstrap config reports it.
pub const ASSISTANT_NAME: &str = "Assistant";
pub const ASSISTANT_AVATAR: &str = "A";

/// `chat.startup {sessionKey, limit, maxBytes}`: the transcript the chat
/// page opens with, in `chat.history`'s shape. (The reference's other
/// form, a short id to resolve, has no use without its session catalog.)
pub(super) fn chat_startup(c: &Ctx) -> Result<Payload, ErrorShape> {
    chat_history(c)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, expecting = "an object")]
struct IdentityParams {
    agent_id: Option<String>,
    session_key: Option<String>,
}

impl Params for IdentityParams {}

pub(super) fn agent_identity_get(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: IdentityParams = match c.params {
        None => IdentityParams::default(),
        Some(_) => protocol::parse("agent.identity.get", c.params)?,
    };
    let agent = match (&p.session_key, &p.agent_id) {
        (Some(key), agent) => session_at(c, key, agent.as_deref()).agent,
        (None, Some(a)) if !a.trim().is_empty() => a.trim().to_ascii_lowercase(),
        (None, _) => c.live.settings.default_agent_id.clone(),
    };
    Ok(json!({
        "agentId": agent,
        "name": ASSISTANT_NAME,
        "nameSource": "default",
        "avatar": ASSISTANT_AVATAR,
    })
    .into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct MessagesParams {
    key: String,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    include_approvals: Option<bool>,
}

impl Params for MessagesParams {
    fn check(&self) -> Result<(), Invalid> {
        protocol::non_empty("/key", &self.key)
    }
}

/// `sessions.messages.subscribe` (`on`) and `.unsubscribe`: the session's
/// key as stored, and for a subscriber that asked, the pending approvals
/// of that session (always none here).
pub(super) fn sessions_messages(c: &Ctx, on: bool) -> Result<Payload, ErrorShape> {
    let method = if on {
        "sessions.messages.subscribe"
    } else {
        "sessions.messages.unsubscribe"
    };
    let p: MessagesParams = protocol::parse(method, c.params)?;
    let at = session_at(c, &p.key, p.agent_id.as_deref());
    let mut out = json!({"subscribed": on, "key": at.key});
    if on && p.include_approvals == Some(true) {
        out["approvalReplay"] = json!({
            "sessionKey": at.key,
            "updatedAtMs": now_ms(),
            "approvals": Value::Array(Vec::new()),
            "truncated": false,
        });
    }
    Ok(out.into())
}
