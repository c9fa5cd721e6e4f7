//! Webhooks: `POST <hooks.path>/wake` and `<hooks.path>/agent`, for
//! home-automation and CI systems. They have a token of their own
//! (`Authorization: Bearer` or `x-openclaw-token`; a token in the URL was
//! refused at the door), their own failed-auth limit with no loopback
//! exemption, and the reference's status codes. `/agent` starts an
//! ordinary agent run (its events reach WebSocket clients, its turn lands
//! in the session's transcript) and answers once it is admitted, or at
//! its end with `waitForCompletion`; `/wake` leaves a text for the
//! session's next run, or starts one with `mode: "now"`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::head::Head;
use super::request::Request;
use super::response::Reply;
use crate::agent::tap;
use crate::config::http::Hooks;
use crate::runs::admit::{admit, fingerprint, Admission, Request as RunRequest};
use crate::runs::keys;
use crate::state::{Job, Live, RunKind, Shared, WakeOutcome};

/// The longest `waitForCompletion` holds a request beyond the run's limit.
const WAIT_MARGIN: Duration = Duration::from_secs(30);

/// Whether `path` is under the hooks' base path.
pub(super) fn owns(base: &str, path: &str) -> bool {
    path == base || path.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
}

fn fail(status: u16, why: impl Into<String>) -> Reply {
    Reply::json(status, json!({"ok": false, "error": why.into()}))
}

pub(super) fn handle(shared: &Arc<Shared>, live: &Live, req: &Request) -> Reply {
    let hooks = &live.settings.http.hooks;
    let name = req.head.path()[hooks.path.len()..].trim_start_matches('/');
    if name != "wake" && name != "agent" {
        return fail(404, "not found");
    }
    if req.head.method != "POST" {
        return Reply::not_allowed("POST");
    }
    let ip = req.client.ip;
    if let Err(ms) = shared.hook_lockout(ip) {
        return Reply {
            retry_after: Some(ms.div_ceil(1000).clamp(1, 3600) as u32),
            ..fail(
                429,
                "too many failed authentication attempts; try again later",
            )
        };
    }
    let Some(token) = hook_token(req.head) else {
        shared.hook_failure(ip);
        return fail(401, "unauthorized");
    };
    let want = hooks.token.as_deref().unwrap_or("");
    if want.is_empty() || !crate::auth::ct_eq(token.as_bytes(), want.as_bytes()) {
        shared.hook_failure(ip);
        log::warn!("hook {name}: refused a wrong token from {ip}");
        return fail(401, "unauthorized");
    }
    let body: Value = match serde_json::from_slice(req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return fail(400, "body must be a JSON object"),
    };
    let answer = match name {
        "wake" => wake(shared, live, hooks, body),
        _ => agent(shared, live, hooks, body, token, req),
    };
    answer.unwrap_or_else(|(status, why)| fail(status, why))
}

/// The hook token: `Authorization: Bearer` wins over `x-openclaw-token`.
fn hook_token(h: &Head) -> Option<&str> {
    super::auth::bearer(h).or_else(|| {
        h.header("x-openclaw-token")
            .map(str::trim)
            .filter(|t| !t.is_empty())
    })
}

type Answer = Result<Reply, (u16, String)>;

fn bad(why: impl Into<String>) -> (u16, String) {
    (400, why.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WakeBody {
    text: Option<String>,
    mode: Option<String>,
    agent_id: Option<String>,
    session_key: Option<String>,
}

fn wake(shared: &Arc<Shared>, live: &Live, hooks: &Hooks, body: Value) -> Answer {
    let b: WakeBody = serde_json::from_value(body).map_err(|e| bad(e.to_string()))?;
    let text = b.text.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(bad("text is required"));
    }
    let mode = b.mode.as_deref().unwrap_or("now");
    if mode != "now" && mode != "next-heartbeat" {
        return Err(bad("mode must be \"now\" or \"next-heartbeat\""));
    }
    let agent = allowed_agent(hooks, b.agent_id.as_deref())?;
    let session = session_for(live, hooks, b.session_key.as_deref(), agent, None)?;
    if mode == "next-heartbeat" {
        let outcome = match shared.wake_queue(&session, &text) {
            WakeOutcome::Full => {
                return Ok(Reply {
                    retry_after: Some(5),
                    ..fail(503, "too many wake events are waiting")
                })
            }
            WakeOutcome::Coalesced => "coalesced",
            WakeOutcome::Queued => "queued",
        };
        return Ok(Reply::json(
            200,
            json!({"ok": true, "mode": mode, "eventOutcome": outcome}),
        ));
    }
    // "now": a run in the session with the event as its message; behind
    // the session's current run when one is going.
    let id = crate::sys::uuid_v4();
    let message = format!("System event: {text}");
    let r = RunRequest {
        kind: RunKind::Chat,
        id: &id,
        agent,
        session: Some(&session),
        message: &message,
        job: job(&message, "A webhook woke you with a system event.", None),
    };
    admit(shared, &live.settings, r, None).map_err(admission_error)?;
    Ok(Reply::json(
        200,
        json!({"ok": true, "mode": mode, "eventOutcome": "queued", "runId": id}),
    ))
}

/// A refused admission: busy is 503 (try again), anything else 400.
fn admission_error(e: crate::protocol::ErrorShape) -> (u16, String) {
    let status = if e.retryable == Some(true) { 503 } else { 400 };
    (status, e.message)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentBody {
    message: Option<String>,
    name: Option<String>,
    agent_id: Option<String>,
    session_key: Option<String>,
    idempotency_key: Option<String>,
    model: Option<String>,
    timeout_seconds: Option<u64>,
    #[serde(default)]
    wait_for_completion: bool,
}

fn agent(
    shared: &Arc<Shared>,
    live: &Live,
    hooks: &Hooks,
    body: Value,
    token: &str,
    req: &Request,
) -> Answer {
    let fields = body.to_string();
    let b: AgentBody = serde_json::from_value(body).map_err(|e| bad(e.to_string()))?;
    let message = b.message.unwrap_or_default();
    if message.trim().is_empty() {
        return Err(bad("message is required"));
    }
    if let Some(k) = &b.idempotency_key {
        if k.len() > 256 {
            return Err(bad("idempotencyKey must be at most 256 characters"));
        }
    }
    let agent_id = allowed_agent(hooks, b.agent_id.as_deref())?;
    // The same token, path and fields under the same key are the same
    // request: its run id (and so its run, or its replayed end) and its
    // fresh session are derived from them.
    let run_id = match &b.idempotency_key {
        Some(k) => format!(
            "hook-{:016x}",
            fingerprint(&[token, req.head.path(), k, &fields])
        ),
        None => crate::sys::uuid_v4(),
    };
    let fresh = format!("hook:{run_id}");
    let session = session_for(
        live,
        hooks,
        b.session_key.as_deref(),
        agent_id,
        Some(&fresh),
    )?;
    let name = b.name.as_deref().unwrap_or("Hook");
    let timeout = b
        .timeout_seconds
        .filter(|&t| t > 0)
        .map(Duration::from_secs);
    let limit = timeout
        .or_else(|| {
            let t = live.settings.agents.timeout_seconds;
            (t > 0).then(|| Duration::from_secs(t))
        })
        .unwrap_or(Duration::from_secs(600))
        + WAIT_MARGIN;
    let deadline = Instant::now() + limit;
    loop {
        let (tap, reader) = tap();
        let mut job = job(
            &message,
            &format!(
                "This message came from the webhook \"{}\".",
                crate::protocol::clip(name, 256)
            ),
            Some(tap),
        );
        job.model = b.model.clone();
        job.timeout = timeout;
        let r = RunRequest {
            kind: RunKind::Chat,
            id: &run_id,
            agent: agent_id,
            session: Some(&session),
            message: &message,
            job,
        };
        let admitted = admit(shared, &live.settings, r, None).map_err(admission_error)?;
        match admitted {
            _ if !b.wait_for_completion => {
                return Ok(Reply::json(200, json!({"ok": true, "runId": run_id})))
            }
            Admission::Started { .. } => return Ok(completion(&reader, &run_id, deadline)),
            Admission::Replay(e) => {
                let status = e.wait["status"].as_str().unwrap_or("error").to_string();
                let text = e.payload["result"]["payloads"][0]["text"].clone();
                return Ok(Reply::json(
                    200,
                    json!({"ok": status == "ok", "runId": run_id, "status": status, "text": text}),
                ));
            }
            // A retry while the first is still running: its end is
            // replayed once it is recorded.
            Admission::InFlight { .. } if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Admission::InFlight { .. } => return Ok(timed_out(&run_id)),
        }
    }
}

fn timed_out(run_id: &str) -> Reply {
    Reply::json(
        504,
        json!({"ok": false, "runId": run_id, "status": "timeout",
               "error": "the run did not end in time; it goes on"}),
    )
}

/// Waits for a hook's run to end, up to `limit`.
fn completion(reader: &crate::agent::TapReader, run_id: &str, deadline: Instant) -> Reply {
    loop {
        let seen = reader.next(usize::MAX, Duration::from_millis(500));
        if let Some(end) = seen.end {
            let text = reader.next(0, Duration::ZERO).text;
            let mut v = json!({"ok": end.status == "ok", "runId": run_id, "status": end.status});
            if end.status == "ok" {
                v["text"] = json!(text);
                return Reply::json(200, v);
            }
            v["error"] = json!(end
                .error
                .unwrap_or_else(|| format!("the run ended: {}", end.status)));
            return Reply::json(if end.status == "error" { 502 } else { 504 }, v);
        }
        if seen.gone {
            return Reply::json(
                502,
                json!({"ok": false, "runId": run_id, "error": "the run ended without an answer"}),
            );
        }
        if Instant::now() >= deadline {
            return timed_out(run_id);
        }
    }
}

fn job(message: &str, extra: &str, tap: Option<crate::agent::Tap>) -> Job {
    Job {
        message: message.to_string(),
        model: None,
        timeout: None,
        extra_system_prompt: Some(extra.to_string()),
        tap,
    }
}

fn allowed_agent<'a>(
    hooks: &Hooks,
    agent: Option<&'a str>,
) -> Result<Option<&'a str>, (u16, String)> {
    let Some(a) = agent.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    if let Some(ids) = &hooks.allowed_agent_ids {
        if !ids.iter().any(|i| i == "*" || i.eq_ignore_ascii_case(a)) {
            return Err(bad(format!(
                "agentId \"{}\" is not allowed for hooks",
                crate::protocol::clip(a, 64)
            )));
        }
    }
    Ok(Some(a))
}

/// The session a hook's run goes to: the caller's key when hooks allow
/// request keys (and it has an allowed prefix), else the configured
/// default, else `fallback` (a fresh `hook:<uuid>` for `/agent`; the main
/// session for `/wake`). Returned as the full `agent:<id>:…` key.
fn session_for(
    live: &Live,
    hooks: &Hooks,
    asked: Option<&str>,
    agent: Option<&str>,
    fallback: Option<&str>,
) -> Result<String, (u16, String)> {
    let s = &live.settings;
    let key = match asked.map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) if !hooks.allow_request_session_key => {
            let _ = k;
            return Err(bad(
                "sessionKey is not allowed here (set hooks.allowRequestSessionKey to allow it)",
            ));
        }
        Some(k) => {
            let lower = k.to_lowercase();
            let ok = hooks.allowed_session_key_prefixes.is_empty()
                || hooks
                    .allowed_session_key_prefixes
                    .iter()
                    .any(|p| lower.starts_with(p.as_str()));
            if !ok {
                return Err(bad(format!(
                    "sessionKey \"{}\" has no prefix listed in hooks.allowedSessionKeyPrefixes",
                    crate::protocol::clip(k, 128)
                )));
            }
            Some(k.to_string())
        }
        None => hooks
            .default_session_key
            .clone()
            .or_else(|| fallback.map(str::to_string)),
    };
    let at = keys::resolve(key.as_deref(), agent, &s.default_agent_id, &s.main_key);
    if !s.agents.knows_agent(&at.agent, &s.default_agent_id) {
        return Err(bad(format!("unknown agent id \"{}\"", at.agent)));
    }
    Ok(at.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hooks_own_their_path_and_what_is_under_it() {
        assert!(owns("/hooks", "/hooks"));
        assert!(owns("/hooks", "/hooks/agent"));
        assert!(!owns("/hooks", "/hooksx/agent"));
        assert!(!owns("/hooks", "/other"));
    }

    #[test]
    fn a_bearer_token_wins_over_the_header() {
        let h = Head {
            headers: vec![
                ("x-openclaw-token".into(), "b".into()),
                ("authorization".into(), "Bearer a".into()),
            ],
            ..Head::default()
        };
        assert_eq!(hook_token(&h), Some("a"));
        let h = Head {
            headers: vec![("x-openclaw-token".into(), " b ".into())],
            ..Head::default()
        };
        assert_eq!(hook_token(&h), Some("b"));
    }
}
