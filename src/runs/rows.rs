//! A session as `sessions.list`, `sessions.describe` and `sessions.changed`
//! show it: the reference's row, trimmed to the keys its clients read.

use serde_json::{json, Value};

use crate::config::agents::split_ref;
use crate::config::Settings;
use crate::state::{now_ms, Audience, Delivery, QueuedEvent, Shared};
use crate::store::sessions::SessionEntry;

/// Tells the connections that called `sessions.subscribe` that session
/// `key` of `agent` changed (`reason`), with its row as it is now (none
/// once deleted). Lossy: a subscriber too slow to read misses a change,
/// never the connection.
pub fn changed(shared: &Shared, s: &Settings, agent: &str, key: &str, reason: &str) {
    let entry = shared.sessions().get(agent, key);
    // The ending run still holds its session until its thread returns;
    // the row says what is true once this event is read.
    let active = shared
        .run_active_in(key)
        .filter(|_| reason != "agent.run.ended");
    let mut p = json!({"sessionKey": key, "agentId": agent, "reason": reason, "ts": now_ms()});
    if let Some(e) = entry {
        p["session"] = row(s, agent, key, &e, active.as_deref());
    }
    let ev = QueuedEvent::new("sessions.changed", p.to_string(), None);
    shared.send(Audience::Subscribers, ev, Delivery::Lossy);
}

/// The row for session `key` of `agent`; `active` is the run executing
/// in it, if any.
pub fn row(s: &Settings, agent: &str, key: &str, e: &SessionEntry, active: Option<&str>) -> Value {
    let (provider, model) = effective_model(s, agent, e);
    let mut r = json!({
        "key": key,
        "kind": if key == "global" { "global" } else { "direct" },
        "agentId": agent,
        "sessionId": e.session_id,
        "updatedAt": e.updated_at,
        "displayName": e.label.as_deref().unwrap_or(key),
        "hasActiveRun": active.is_some(),
        "status": if active.is_some() { "running" } else { "done" },
    });
    let set = |r: &mut Value, k: &str, v: Option<Value>| {
        if let Some(v) = v {
            r[k] = v;
        }
    };
    set(&mut r, "label", e.label.as_ref().map(|l| json!(l)));
    set(&mut r, "model", model.map(|m| json!(m)));
    set(&mut r, "modelProvider", provider.map(|p| json!(p)));
    set(
        &mut r,
        "thinkingLevel",
        e.thinking_level.as_ref().map(|t| json!(t)),
    );
    set(&mut r, "inputTokens", e.input_tokens.map(|n| json!(n)));
    set(&mut r, "outputTokens", e.output_tokens.map(|n| json!(n)));
    set(&mut r, "totalTokens", e.total_tokens.map(|n| json!(n)));
    set(
        &mut r,
        "contextTokens",
        context_tokens(s, provider, model).map(|n| json!(n)),
    );
    set(&mut r, "lastRunId", active.map(|a| json!(a)));
    if let Some(Value::Bool(true)) = e.extra.get("abortedLastRun") {
        r["abortedLastRun"] = json!(true);
    }
    r
}

/// The provider and model a session runs with: its own override, else
/// its agent's model, else the default.
pub fn effective_model<'a>(
    s: &'a Settings,
    agent: &str,
    e: &'a SessionEntry,
) -> (Option<&'a str>, Option<&'a str>) {
    if let (Some(p), Some(m)) = (e.model_provider.as_deref(), e.model.as_deref()) {
        return (Some(p), Some(m));
    }
    match s.agents.model_of(agent).and_then(split_ref) {
        Some((p, m)) => (Some(p), Some(m)),
        None => (None, None),
    }
}

/// The context window configured for a model, if any.
pub fn context_tokens(s: &Settings, provider: Option<&str>, model: Option<&str>) -> Option<u64> {
    let (provider, model) = (provider?, model?);
    s.models
        .iter()
        .find(|m| m.provider == provider && m.id == model)
        .and_then(|m| m.context_window)
}

/// `defaults` as `sessions.list` and `chat.history` carry them.
pub fn defaults(s: &Settings, agent: &str) -> Value {
    let (p, m) = match s.agents.model_of(agent).and_then(split_ref) {
        Some((p, m)) => (Some(p), Some(m)),
        None => (None, None),
    };
    json!({"modelProvider": p, "model": m, "contextTokens": context_tokens(s, p, m)})
}
