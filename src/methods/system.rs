//! The core methods: `health`, `status`, `system-event` and the summary
//! of heartbeats this gateway does not run.

use serde_json::{json, Map, Value};

use super::Caller;
use crate::protocol::VERSION;
use crate::protocol::{self, ErrorShape};
use crate::state::{now_ms, Shared};

/// Heartbeats are an agent-runtime feature this gateway does not run; the
/// summary says so rather than inventing an interval.
fn heartbeat_off() -> Value {
    json!({"enabled": false, "every": "disabled", "everyMs": null,
           "prompt": "", "target": "none", "ackMaxChars": 0})
}

pub fn health(shared: &Shared) -> Value {
    let started = std::time::Instant::now();
    let live = shared.live();
    let agent = &live.settings.default_agent_id;
    let path = &shared.sessions_path;
    let sessions = json!({"path": path, "count": 0, "recent": []});
    json!({
        "ok": true,
        "ts": now_ms(),
        "durationMs": started.elapsed().as_millis() as u64,
        "channels": {},
        "channelOrder": [],
        "channelLabels": {},
        "heartbeatSeconds": 0,
        "defaultAgentId": agent,
        "agents": [{
            "agentId": agent,
            "isDefault": true,
            "heartbeat": heartbeat_off(),
            "sessions": sessions,
        }],
        "sessions": sessions,
    })
}

pub(super) fn status(shared: &Shared) -> Value {
    let live = shared.live();
    let s = &live.settings;
    let agent = &s.default_agent_id;
    let path = &shared.sessions_path;
    let (clients, presence) = {
        let st = shared.state();
        (st.clients.len(), st.presence.len())
    };
    let model = s.models.first();
    json!({
        "runtimeVersion": format!("clawgate {VERSION}"),
        "heartbeat": {
            "defaultAgentId": agent,
            "agents": [{"agentId": agent, "enabled": false, "every": "disabled", "everyMs": null}],
        },
        "channelSummary": [],
        "queuedSystemEvents": [],
        "tasks": {},
        "taskAudit": {},
        "sessions": {
            "paths": [path],
            "count": 0,
            "defaults": {
                "model": model.map(|m| m.id.clone()),
                "contextTokens": model.and_then(|m| m.context_window),
            },
            "recent": [],
            "byAgent": [{"agentId": agent, "path": path, "count": 0, "recent": []}],
        },
        "gateway": {
            "version": VERSION,
            "protocols": protocol::SUPPORTED,
            "pid": std::process::id(),
            "uptimeMs": shared.uptime_ms(),
            "listen": shared.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "connections": {
                "open": shared.open_sockets.load(std::sync::atomic::Ordering::Relaxed),
                "clients": clients,
            },
            "presenceEntries": presence,
        },
    })
}

/// Fields of `system-event` params copied into presence.
const EVENT_FIELDS: &[&str] = &[
    "host",
    "ip",
    "mode",
    "version",
    "platform",
    "deviceFamily",
    "modelIdentifier",
    "lastInputSeconds",
    "reason",
    "roles",
    "scopes",
    "tags",
    "deviceId",
    "instanceId",
];

pub(super) fn system_event(
    shared: &Shared,
    caller: &Caller,
    params: Option<&Value>,
) -> Result<Value, ErrorShape> {
    let Some(Value::Object(p)) = params else {
        return Err(ErrorShape::invalid(
            "invalid system-event params: expected an object",
        ));
    };
    let text = match p.get("text") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.trim(),
        _ => {
            return Err(ErrorShape::invalid(
                "invalid system-event params: text must be a non-empty string",
            ))
        }
    };
    let str_field = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let key = str_field("deviceId")
        .or_else(|| str_field("instanceId"))
        .or_else(|| str_field("host"))
        .unwrap_or_else(|| caller.presence_key.clone());
    let mut fields = Map::new();
    for f in EVENT_FIELDS {
        if let Some(v) = p.get(*f) {
            fields.insert((*f).to_string(), v.clone());
        }
    }
    fields.insert("text".into(), Value::from(text));
    if !fields.contains_key("reason") {
        fields.insert("reason".into(), Value::from("system-event"));
    }
    log::info!("system event from {}: {}", key, protocol::clip(text, 256));
    shared.update_presence(|presence, now| {
        presence.upsert(&key, &fields, now);
        true
    });
    Ok(json!({"ok": true}))
}
