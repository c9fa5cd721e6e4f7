//! The checks serde cannot express: ranges of limits, origins and host
//! names, blank values, and the models table.

use super::{FileConfig, LimitsFile, Obj};
use crate::config::{Limits, ModelEntry};

/// One limit: the file's value or the default, within `min..=max`.
fn limit(key: &str, value: Option<u64>, default: u64, min: u64, max: u64) -> Result<u64, String> {
    let v = value.unwrap_or(default);
    if v < min {
        return Err(format!("'gateway.limits.{key}' must be at least {min}"));
    }
    if v > max {
        return Err(format!("'gateway.limits.{key}' must be at most {max}"));
    }
    Ok(v)
}

pub(super) fn limits(f: &LimitsFile) -> Result<Limits, String> {
    // Timeouts of 100 ms let tests run fast; a day is beyond any sane use.
    const MS: u64 = 100;
    const DAY: u64 = 24 * 3600 * 1000;
    const GIB: u64 = 1 << 30;
    let d = Limits::default();
    // Every maximum fits a 32-bit usize or u32, so the conversion cannot
    // fail; it is checked rather than cast all the same.
    macro_rules! get {
        ($field:ident, $key:literal, $min:expr, $max:expr) => {{
            let n = limit($key, f.$field, d.$field as u64, $min, $max)?;
            n.try_into()
                .map_err(|_| format!("'gateway.limits.{}' is too large", $key))?
        }};
    }
    let l = Limits {
        max_connections: get!(max_connections, "maxConnections", 1, 65_536),
        auto_connections: f.max_connections.is_none(),
        max_unauth_per_ip: get!(max_unauth_per_ip, "maxUnauthPerIp", 1, 65_536),
        max_unauth_total: get!(max_unauth_total, "maxUnauthTotal", 1, 65_536),
        first_byte_timeout_ms: get!(first_byte_timeout_ms, "firstByteTimeoutMs", MS, DAY),
        max_head_bytes: get!(max_head_bytes, "maxHeadBytes", 1024, 1 << 20),
        max_headers: get!(max_headers, "maxHeaders", 1, 1000),
        head_timeout_ms: get!(head_timeout_ms, "headTimeoutMs", MS, DAY),
        max_body_bytes: get!(max_body_bytes, "maxBodyBytes", 1024, GIB),
        body_timeout_ms: get!(body_timeout_ms, "bodyTimeoutMs", MS, DAY),
        keep_alive_idle_ms: get!(keep_alive_idle_ms, "keepAliveIdleMs", MS, DAY),
        handshake_timeout_ms: get!(handshake_timeout_ms, "handshakeTimeoutMs", MS, DAY),
        max_pre_hello_frame_bytes: get!(
            max_pre_hello_frame_bytes,
            "maxPreHelloFrameBytes",
            1024,
            GIB
        ),
        max_pre_hello_frames: get!(max_pre_hello_frames, "maxPreHelloFrames", 1, 1000),
        // Under 64 KiB `hello-ok` and the presence list would not fit.
        max_payload: get!(max_payload, "maxPayload", 64 * 1024, GIB),
        max_buffered_bytes: get!(max_buffered_bytes, "maxBufferedBytes", 1024, GIB),
        // Below 64 KiB the deep-JSON test no longer proves the stack safe.
        thread_stack_bytes: get!(thread_stack_bytes, "threadStackBytes", 64 * 1024, 64 << 20),
        auth_max_failures: get!(auth_max_failures, "authMaxFailures", 1, 10_000),
        auth_window_ms: get!(auth_window_ms, "authWindowMs", MS, DAY),
        auth_lockout_ms: get!(auth_lockout_ms, "authLockoutMs", MS, DAY),
        max_unauthorized_calls: get!(max_unauthorized_calls, "maxUnauthorizedCalls", 1, 10_000),
    };
    // A buffer smaller than one payload would close every connection that
    // is sent a full-size reply.
    if l.max_buffered_bytes < l.max_payload {
        return Err(format!(
            "'gateway.limits.maxBufferedBytes' ({}) must be at least 'gateway.limits.maxPayload' ({})",
            l.max_buffered_bytes, l.max_payload
        ));
    }
    Ok(l)
}

/// The checks serde cannot express; returns the models, sorted by
/// provider, then id.
pub(super) fn check(f: &FileConfig) -> Result<Vec<ModelEntry>, String> {
    let g = &f.gateway.0;
    // Port 0 ("any free port") is for `run --port 0` alone: the client
    // commands read this port to connect to, and a service needs a fixed one.
    if g.port == Some(0) {
        return Err("'gateway.port' must be a port number from 1 to 65535".to_string());
    }
    if let Some(t) = g.tick_interval_ms {
        if !(100..=3_600_000).contains(&t) {
            return Err(format!(
                "'gateway.tickIntervalMs' must be between 100 and 3600000, not {t}"
            ));
        }
    }
    for o in &g.control_ui.0.allowed_origins {
        if !is_origin(o) {
            return Err(format!(
                "'gateway.controlUi.allowedOrigins': '{o}' is not an origin like 'https://host:port'"
            ));
        }
    }
    for h in &g.allowed_hosts {
        if h.is_empty() || h.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/') {
            return Err(format!("'gateway.allowedHosts': '{h}' is not a host name"));
        }
    }
    nonblank("agents.defaultId", f.agents.0.default_id.as_deref())?;
    nonblank("session.mainKey", f.session.0.main_key.as_deref())?;
    let mut models: Vec<ModelEntry> = Vec::new();
    for (provider, Obj(p)) in &f.models.0.providers {
        if provider.trim().is_empty() {
            return Err("'models.providers' has a provider with an empty name".to_string());
        }
        let at = format!("models.providers.{provider}");
        if let Some(url) = &p.base_url {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(format!(
                    "'{at}.baseUrl' must start with http:// or https://"
                ));
            }
        }
        nonblank(&format!("{at}.apiKey"), p.api_key.as_deref())?;
        nonblank(&format!("{at}.api"), p.api.as_deref())?;
        for Obj(m) in &p.models {
            if m.id.trim().is_empty() {
                return Err(format!("'{at}.models' has a model with an empty id"));
            }
            if models
                .iter()
                .any(|e| e.provider == *provider && e.id == m.id)
            {
                return Err(format!("'{at}.models' lists '{}' twice", m.id));
            }
            models.push(ModelEntry {
                id: m.id.clone(),
                name: m.name.clone().unwrap_or_else(|| m.id.clone()),
                provider: provider.clone(),
                alias: m.alias.clone(),
                context_window: m.context_window,
                reasoning: m.reasoning,
            });
        }
    }
    models.sort_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
    Ok(models)
}

pub(super) fn nonblank(key: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        Some(v) if v.trim().is_empty() => Err(format!("'{key}' must not be blank")),
        _ => Ok(()),
    }
}

/// Browsers send `scheme://host[:port]`, never a path or a trailing slash,
/// and the gateway compares exactly; `null` and `*` are not origins.
fn is_origin(o: &str) -> bool {
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty() && !r.contains(|c: char| c == '/' || c == '*' || c.is_whitespace())
    })
}
