//! `GET /v1/models` and `GET /v1/models/{id}`: the model ids are agent
//! targets (`openclaw`, `openclaw/default`, `openclaw/<agentId>` for each
//! configured agent), never the upstream models, which stay the gateway's
//! business.

use serde_json::{json, Value};

use super::super::request::Request;
use super::super::response::Reply;
use super::wire::model_agent;
use super::{error, invalid};
use crate::state::Live;

fn model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "openclaw", "permission": []})
}

/// The ids listed: the two default names, then each agent, the default
/// agent first.
pub(super) fn ids(live: &Live) -> Vec<String> {
    let s = &live.settings;
    let mut out = vec!["openclaw".to_string(), "openclaw/default".to_string()];
    out.push(format!("openclaw/{}", s.default_agent_id));
    for a in &s.agents.list {
        if a.id != s.default_agent_id {
            out.push(format!("openclaw/{}", a.id));
        }
    }
    out
}

pub(super) fn answer(live: &Live, req: &Request) -> Reply {
    let path = req.head.path();
    let Some(raw) = path.strip_prefix("/v1/models/") else {
        let data: Vec<Value> = ids(live).iter().map(|id| model(id)).collect();
        return Reply::json(200, json!({"object": "list", "data": data}));
    };
    let Some(id) = percent_decode(raw) else {
        return invalid("Invalid model id.");
    };
    let s = &live.settings;
    match model_agent(&id) {
        None => invalid("Invalid model id."),
        Some(Some(agent)) if !s.agents.knows_agent(&agent, &s.default_agent_id) => error(
            404,
            &format!("Model '{}' not found.", crate::protocol::clip(&id, 256)),
            "invalid_request_error",
        ),
        Some(_) => Reply::json(200, model(&id)),
    }
}

/// A path segment percent-decoded; `None` for a bad escape or bytes that
/// are not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
