//! `agent` and `agent.wait` (PROTOCOL-AGENTS §1–2): a turn answered in
//! two frames (accepted now, the final when the run ends), its
//! idempotency (`runId` is the `idempotencyKey`; a retry while it runs is
//! `in_flight`, after its end the final is replayed), and waiting for a
//! run's end without starting one.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Answer, Ctx};
use crate::protocol::{self, ErrorShape, Invalid, Params, SCOPE_ADMIN};
use crate::runs::admit::{admit, Admission, Request};
use crate::state::{now_ms, Job, Later, RunKind, WaitKind, Waiter};

/// The longest a caller's final `res` is waited for beyond the run's own
/// limit; a run without one is still answered within this.
const FINAL_WAIT: Duration = Duration::from_secs(48 * 3600);
/// `agent.wait`'s default and longest wait.
const WAIT_DEFAULT_MS: u64 = 30_000;
const WAIT_MAX_MS: u64 = 10 * 60 * 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct AgentParams {
    message: String,
    idempotency_key: String,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    session_key: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default)]
    extra_system_prompt: Option<String>,
}

impl Params for AgentParams {
    /// A message is bounded by `session.maxMessageBytes` (at most 4 MiB),
    /// checked once parsed.
    const MAX_BYTES: usize = 4 * 1024 * 1024 + 64 * 1024;

    fn check(&self) -> Result<(), Invalid> {
        protocol::non_empty("/message", &self.message)?;
        protocol::non_empty("/idempotencyKey", &self.idempotency_key)
    }
}

pub(super) fn agent(c: &Ctx) -> Result<Answer, ErrorShape> {
    let p: AgentParams = protocol::parse("agent", c.params)?;
    let trimmed = p.message.trim();
    if (trimmed == "/new" || trimmed == "/reset")
        && !protocol::has_scope(&c.caller.scopes, SCOPE_ADMIN)
    {
        return Err(protocol::missing_scope(SCOPE_ADMIN, c.caller.protocol));
    }
    if p.model.is_some() && !protocol::has_scope(&c.caller.scopes, SCOPE_ADMIN) {
        return Err(ErrorShape::invalid(
            "provider/model overrides are not authorized for this caller.",
        ));
    }
    let timeout = match p.timeout {
        Some(0) => None,
        Some(secs) => Some(Duration::from_secs(secs)),
        None => {
            let t = c.live.settings.agents.timeout_seconds;
            (t > 0).then(|| Duration::from_secs(t))
        }
    };
    let deadline = Instant::now()
        + timeout.map_or(FINAL_WAIT, |t| {
            (t + Duration::from_secs(30)).min(FINAL_WAIT)
        });
    let waiter = Waiter {
        conn: c.caller.conn,
        req_id: c.req_id.into(),
        deadline,
        max_payload: c.max_payload,
    };
    let req = Request {
        kind: RunKind::Agent,
        id: &p.idempotency_key,
        agent: p.agent_id.as_deref(),
        session: p.session_key.as_deref(),
        message: &p.message,
        job: Job {
            message: p.message.clone(),
            model: p.model.clone(),
            timeout: timeout.or(Some(FINAL_WAIT)),
            extra_system_prompt: p.extra_system_prompt.clone(),
            tap: None,
        },
    };
    match admit(c.shared, &c.live.settings, req, Some(waiter))? {
        Admission::Started {
            run_id,
            session,
            agent,
        } => Ok(Answer::NowAndLater(
            json!({"runId": &*run_id, "sessionKey": session, "agentId": agent,
                   "status": "accepted", "acceptedAt": now_ms()})
            .into(),
            Later {
                key: format!("{}{run_id}", crate::state::RUN_LATER_PREFIX).into(),
                deadline,
            },
        )),
        Admission::InFlight {
            run_id,
            session,
            agent,
        } => Ok(
            json!({"runId": &*run_id, "status": "in_flight", "sessionKey": session,
                        "agentId": agent})
            .into(),
        ),
        Admission::Replay(e) => Ok(Answer::Frame(e.frame(c.req_id, WaitKind::Final))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct WaitParams {
    run_id: String,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

impl Params for WaitParams {
    fn check(&self) -> Result<(), Invalid> {
        protocol::non_empty("/runId", &self.run_id)
    }
}

pub(super) fn agent_wait(c: &Ctx) -> Result<Answer, ErrorShape> {
    let p: WaitParams = protocol::parse("agent.wait", c.params)?;
    let ms = p.timeout_ms.unwrap_or(WAIT_DEFAULT_MS).min(WAIT_MAX_MS);
    let deadline = Instant::now() + Duration::from_millis(ms);
    let waiter = Waiter {
        conn: c.caller.conn,
        req_id: c.req_id.into(),
        deadline,
        max_payload: c.max_payload,
    };
    let timeout = || -> Value { json!({"runId": p.run_id, "status": "timeout"}) };
    match c.shared.run_wait(&p.run_id, waiter) {
        Ok(Some(done)) => Ok(done.into()),
        Ok(None) if ms == 0 => {
            // Nothing to wait for: take the waiter back and answer now.
            let _ = c.shared.run_expired(&p.run_id, c.caller.conn, c.req_id);
            Ok(timeout().into())
        }
        Ok(None) => Ok(Answer::Later(Later {
            key: format!("{}{}", crate::state::RUN_LATER_PREFIX, p.run_id).into(),
            deadline,
        })),
        Err(()) => Ok(timeout().into()),
    }
}
