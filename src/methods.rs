//! The RPC methods served after `hello-ok`, and who may call them.
//!
//! Handlers read the shared state briefly and return a payload or an error
//! object; they never block and never touch the caller's socket. Methods the
//! gateway does not implement answer "unknown method", never a fake success.

use serde_json::{json, Map, Value};

use crate::config;
use crate::logtail;
use crate::protocol::{self, ErrorShape};
use crate::state::{now_ms, Shared, VERSION};

/// Methods served, advertised in `hello-ok.features.methods`.
pub const METHODS: &[&str] = &[
    "health",
    "status",
    "system-presence",
    "system-event",
    "last-heartbeat",
    "config.get",
    "logs.tail",
    "models.list",
];

pub const EVENTS: &[&str] = &["connect.challenge", "tick", "presence", "shutdown"];

/// Who is calling, as settled at `connect`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: String,
    pub scopes: Vec<String>,
    pub protocol: u64,
    /// This connection's presence key (also for `mode: cli` clients, which
    /// are not listed but may still report a system event).
    pub presence_key: String,
}

/// Why a call was refused before it ran. A denial counts toward the
/// "too many unauthorized calls" close; an unknown method does not.
pub enum Refusal {
    Unknown(ErrorShape),
    Denied(ErrorShape),
}

pub fn authorize(caller: &Caller, method: &str) -> Result<(), Refusal> {
    if !METHODS.contains(&method) {
        return Err(Refusal::Unknown(protocol::unknown_method(method)));
    }
    if caller.role == "node" {
        // Nodes may call only node methods (none yet) and health.
        if method == "health" {
            return Ok(());
        }
        return Err(Refusal::Denied(ErrorShape::invalid(
            "unauthorized role: node",
        )));
    }
    match protocol::required_scope(method) {
        Some(scope) if !protocol::has_scope(&caller.scopes, scope) => Err(Refusal::Denied(
            protocol::missing_scope(scope, caller.protocol),
        )),
        _ => Ok(()),
    }
}

pub fn call(
    shared: &Shared,
    caller: &Caller,
    method: &str,
    params: Option<&Value>,
) -> Result<Value, ErrorShape> {
    match method {
        "health" => Ok(health(shared)),
        "status" => Ok(status(shared)),
        "system-presence" => {
            let st = shared.state();
            Ok(Value::Array(shared.presence_list(&st)))
        }
        "system-event" => system_event(shared, caller, params),
        // No heartbeat runs in this gateway, so there is never a last one.
        "last-heartbeat" => Ok(Value::Null),
        "config.get" => Ok(config_get(shared)),
        "logs.tail" => logs_tail(shared, params),
        "models.list" => Ok(models_list(shared)),
        _ => Err(protocol::unknown_method(method)),
    }
}

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

fn status(shared: &Shared) -> Value {
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

fn system_event(
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

fn config_get(shared: &Shared) -> Value {
    let live = shared.live();
    let s = &live.settings;
    let parsed = s.config_json.as_ref().map(config::redact);
    let raw = parsed
        .as_ref()
        .and_then(|p| serde_json::to_string_pretty(p).ok());
    json!({
        "path": s.config_path.display().to_string(),
        "exists": s.config_raw.is_some(),
        "raw": raw,
        "parsed": parsed,
        "config": effective_config(shared),
        "valid": true,
        "issues": [],
        "warnings": [],
        "legacyIssues": [],
    })
}

/// The settings in force, in the file's shape, secrets redacted.
fn effective_config(shared: &Shared) -> Value {
    let live = shared.live();
    let s = &live.settings;
    let l = &s.limits;
    let redacted = |v: &Option<String>| v.as_ref().map(|_| "__REDACTED__");
    json!({
        "gateway": {
            "mode": "local",
            "port": s.port,
            "bind": format!("{:?}", s.bind).to_lowercase(),
            "customBindHost": s.bind_host.map(|h| h.to_string()),
            "auth": {
                "mode": format!("{:?}", s.auth_mode).to_lowercase(),
                "token": redacted(&live.secret.token),
                "password": redacted(&live.secret.password),
            },
            "tickIntervalMs": s.tick_interval_ms,
            "reload": {"mode": s.reload_mode.as_str(), "debounceMs": s.reload_debounce_ms},
            "controlUi": {"allowedOrigins": s.allowed_origins},
            "allowedHosts": s.allowed_hosts,
            "trustedProxies": s.trusted_proxies.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "limits": {
                "maxConnections": l.max_connections,
                "maxUnauthPerIp": l.max_unauth_per_ip,
                "maxHeadBytes": l.max_head_bytes,
                "maxHeaders": l.max_headers,
                "headTimeoutMs": l.head_timeout_ms,
                "maxBodyBytes": l.max_body_bytes,
                "bodyTimeoutMs": l.body_timeout_ms,
                "keepAliveIdleMs": l.keep_alive_idle_ms,
                "handshakeTimeoutMs": l.handshake_timeout_ms,
                "maxPreHelloFrameBytes": l.max_pre_hello_frame_bytes,
                "maxPreHelloFrames": l.max_pre_hello_frames,
                "maxPayload": l.max_payload,
                "maxBufferedBytes": l.max_buffered_bytes,
                "threadStackBytes": l.thread_stack_bytes,
                "authMaxFailures": l.auth_max_failures,
                "authWindowMs": l.auth_window_ms,
                "authLockoutMs": l.auth_lockout_ms,
                "maxUnauthorizedCalls": l.max_unauthorized_calls,
            },
        },
        "logging": {
            "level": s.log.level.to_string().to_lowercase(),
            "file": s.log.file,
        },
        "agents": {"defaultId": s.default_agent_id},
        "session": {"mainKey": s.main_key, "scope": s.session_scope},
        "commands": {"restart": s.restart_enabled},
    })
}

fn logs_tail(shared: &Shared, params: Option<&Value>) -> Result<Value, ErrorShape> {
    let Some(path) = &shared.log_file else {
        return Err(ErrorShape::unavailable(format!(
            "file logging is off: set logging.file to true in '{}'",
            shared.live().settings.config_path.display()
        )));
    };
    let p = params.and_then(Value::as_object);
    let num = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_u64);
    let cursor = num("cursor");
    let limit = num("limit").map_or(logtail::TAIL_DEFAULT_LIMIT, |n| n as usize);
    let max_bytes = num("maxBytes").map_or(logtail::TAIL_DEFAULT_MAX_BYTES, |n| n as usize);
    match logtail::tail(path, cursor, limit, max_bytes) {
        Ok(t) => {
            let mut v = json!({
                "file": t.file, "cursor": t.cursor, "size": t.size, "lines": t.lines,
            });
            if t.truncated {
                v["truncated"] = json!(true);
            }
            if t.reset {
                v["reset"] = json!(true);
            }
            Ok(v)
        }
        Err(e) => Err(ErrorShape::unavailable(format!(
            "cannot read the log file '{}': {}",
            path.display(),
            crate::error::io_message(&e)
        ))),
    }
}

fn models_list(shared: &Shared) -> Value {
    let models: Vec<Value> = shared
        .live()
        .settings
        .models
        .iter()
        .map(|m| {
            let mut v = json!({"id": m.id, "name": m.name, "provider": m.provider});
            if let Some(a) = &m.alias {
                v["alias"] = json!(a);
            }
            if let Some(c) = m.context_window {
                v["contextWindow"] = json!(c);
            }
            if let Some(r) = m.reasoning {
                v["reasoning"] = json!(r);
            }
            v
        })
        .collect();
    json!({ "models": models })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: &str, scopes: &[&str], protocol: u64) -> Caller {
        Caller {
            role: role.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            protocol,
            presence_key: "k".into(),
        }
    }

    #[test]
    fn unknown_methods_are_not_denials() {
        let c = caller("operator", &["operator.admin"], 4);
        match authorize(&c, "cron.list") {
            Err(Refusal::Unknown(e)) => assert_eq!(e.message, "unknown method: cron.list"),
            _ => panic!("expected unknown"),
        }
    }

    #[test]
    fn scopes_and_roles_gate_methods() {
        let none = caller("operator", &[], 4);
        assert!(authorize(&none, "health").is_ok());
        match authorize(&none, "status") {
            Err(Refusal::Denied(e)) => assert_eq!(e.code, "FORBIDDEN"),
            _ => panic!("expected denial"),
        }
        let read = caller("operator", &["operator.read"], 3);
        assert!(authorize(&read, "status").is_ok());
        match authorize(&read, "system-event") {
            Err(Refusal::Denied(e)) => {
                assert_eq!(e.code, "INVALID_REQUEST");
                assert_eq!(e.message, "missing scope: operator.admin");
            }
            _ => panic!("expected denial"),
        }
        let node = caller("node", &["operator.admin"], 4);
        assert!(authorize(&node, "health").is_ok());
        match authorize(&node, "status") {
            Err(Refusal::Denied(e)) => assert_eq!(e.message, "unauthorized role: node"),
            _ => panic!("expected denial"),
        }
    }
}
