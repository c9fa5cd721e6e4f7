//! `config.get`: the file as written and the settings in force, secrets
//! redacted, with the memory ceiling those settings give.

use serde_json::{json, Value};

use super::Ctx;
use crate::config;
use crate::protocol::{ErrorShape, Payload};
use crate::state::Live;

pub(super) fn config_get(c: &Ctx) -> Result<Payload, ErrorShape> {
    let s = &c.live.settings;
    let parsed = s.config_json.as_ref().map(config::redact);
    let raw = parsed
        .as_ref()
        .and_then(|p| serde_json::to_string_pretty(p).ok());
    Ok(json!({
        "path": s.config_path.display().to_string(),
        "exists": s.config_raw.is_some(),
        "raw": raw,
        "parsed": parsed,
        "config": effective_config(c.live),
        "memoryCeiling": super::system::memory_ceiling(&s.limits),
        "valid": true,
        "issues": [],
        "warnings": [],
        "legacyIssues": [],
    })
    .into())
}

/// The settings in force, in the file's shape, secrets redacted.
fn effective_config(live: &Live) -> Value {
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
                "maxUnauthTotal": l.max_unauth_total,
                "firstByteTimeoutMs": l.first_byte_timeout_ms,
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
