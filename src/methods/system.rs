//! The core methods: `health`, `status`, `system-event` and the summary
//! of heartbeats this gateway does not run.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::Ctx;
use crate::protocol::{self, non_empty, ErrorShape, Invalid, Params, Payload, VERSION};
use crate::state::{now_ms, Live, PresenceKey, Shared, PRESENCE_FIELDS};

/// Heartbeats are an agent-runtime feature this gateway does not run; the
/// summary says so rather than inventing an interval.
fn heartbeat_off() -> Value {
    json!({"enabled": false, "every": "disabled", "everyMs": null,
           "prompt": "", "target": "none", "ackMaxChars": 0})
}

/// The health summary, for the method and for `hello-ok`'s snapshot.
pub fn health(shared: &Shared, live: &Live) -> Value {
    let started = std::time::Instant::now();
    let agent = &live.settings.default_agent_id;
    let path = shared.sessions_path();
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

pub(super) fn status(c: &Ctx) -> Result<Payload, ErrorShape> {
    let shared = c.shared;
    let s = &c.live.settings;
    let agent = &s.default_agent_id;
    let path = shared.sessions_path();
    let counts = shared.counts();
    let model = s.models.first();
    Ok(json!({
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
            "listen": shared.listen().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "connections": {
                "open": shared.open_sockets(),
                "clients": counts.clients,
                "unauthenticated": counts.unauthenticated,
                "nodes": counts.nodes,
                "pendingReplies": counts.pending,
                "agentRuns": counts.runs.0,
                "agentRunsQueued": counts.runs.1 - counts.runs.0,
            },
            "presenceEntries": counts.presence,
            "memoryCeiling": memory_ceiling(&s.limits),
        },
    })
    .into())
}

/// The most memory the gateway can use with `limits`, whatever its peers
/// send (see `config::ceiling`), as `status` and `config.get` report it.
pub(super) fn memory_ceiling(limits: &crate::config::Limits) -> Value {
    let c = crate::config::ceiling(limits);
    json!({
        "totalBytes": c.total,
        "perConnectionBytes": c.per_connection,
        "sharedBytes": c.shared,
    })
}

/// `system-event` params: a non-empty `text`; the other fields a presence
/// entry may carry are taken as sent (the presence table keeps only its
/// own fields, clipped).
#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct SystemEvent {
    text: String,
}

impl Params for SystemEvent {
    fn check(&self) -> Result<(), Invalid> {
        non_empty("/text", &self.text)
    }
}

pub(super) fn system_event(c: &Ctx) -> Result<Payload, ErrorShape> {
    let sent = protocol::params_value("system-event", c.params, SystemEvent::MAX_BYTES)?;
    let event: SystemEvent = protocol::from_value("system-event", &sent)?;
    let text = event.text.trim();
    let sent = sent.as_object();
    let str_field = |k: &str| {
        sent.and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let key = str_field("deviceId")
        .or_else(|| str_field("instanceId"))
        .or_else(|| str_field("host"))
        .map_or_else(|| c.caller.presence_key.clone(), PresenceKey::new);
    // Only what an entry may carry is copied: the rest of the params,
    // however large, stays where it is.
    let mut fields = Map::new();
    for (name, v) in PRESENCE_FIELDS
        .iter()
        .filter_map(|f| Some((f, sent?.get(*f)?)))
    {
        fields.insert((*name).to_string(), v.clone());
    }
    fields.insert("text".into(), Value::from(text));
    fields
        .entry("reason")
        .or_insert_with(|| Value::from("system-event"));
    log::info!("system event from {key}: {}", protocol::clip(text, 256));
    c.shared.presence_update(&key, &fields);
    Ok(json!({"ok": true}).into())
}
