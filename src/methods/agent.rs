//! `agent` and `agent.wait` (PROTOCOL-AGENTS §1–2): a turn answered in
//! two frames (accepted now, the final when the run ends), its
//! idempotency (`runId` is the `idempotencyKey`; a retry while it runs is
//! `in_flight`, after its end the final is replayed), and waiting for a
//! run's end without starting one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Answer, Ctx};
use crate::protocol::{self, ErrorShape, Invalid, Params, SCOPE_ADMIN};
use crate::runs::{self, keys};
use crate::state::{now_ms, Admitted, Job, Later, Run, RunKind, RunsFull, WaitKind, Waiter};

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

/// What `agent` and `chat.send` share: an admitted run, or the answer
/// that replaces it.
pub(super) struct Request<'a> {
    pub kind: RunKind,
    pub id: &'a str,
    pub agent: Option<&'a str>,
    pub session: Option<&'a str>,
    pub message: &'a str,
    pub job: Job,
}

/// How a request for a run went.
pub(super) enum Admission {
    Started {
        run_id: Arc<str>,
        session: String,
        agent: String,
    },
    InFlight {
        run_id: Arc<str>,
        session: String,
        agent: String,
    },
    Replay(crate::state::Ending),
}

/// Checks and admits a run; starts its thread when its session is free.
pub(super) fn admit(c: &Ctx, r: Request, waiter: Option<Waiter>) -> Result<Admission, ErrorShape> {
    let s = &c.live.settings;
    if r.message.len() > s.agents.max_message_bytes {
        return Err(ErrorShape::invalid(format!(
            "message too large: {} bytes, over session.maxMessageBytes ({})",
            r.message.len(),
            s.agents.max_message_bytes
        )));
    }
    if r.message.contains('\0') {
        return Err(ErrorShape::invalid("message must not contain null bytes"));
    }
    let at = keys::resolve(r.session, r.agent, &s.default_agent_id, &s.main_key);
    if !s.agents.knows_agent(&at.agent, &s.default_agent_id) {
        return Err(ErrorShape::invalid(format!(
            "unknown agent id \"{}\"",
            at.agent
        )));
    }
    let id: Arc<str> = r.id.into();
    let mut run = Run::new(
        id.clone(),
        at.agent.as_str().into(),
        at.key.as_str().into(),
        r.kind,
        r.job,
    );
    run.fingerprint = fingerprint(&[r.message, &at.key]);
    // The thread's copy: the table keeps the run and its waiters.
    let twin = run.twin();
    match c
        .shared
        .run_admit(run, waiter.map(|w| (w, WaitKind::Final)))
    {
        Admitted::New(start) => {
            if start {
                runs::spawn(c.shared, twin);
            }
            Ok(Admission::Started {
                run_id: id,
                session: at.key,
                agent: at.agent,
            })
        }
        Admitted::InFlight { same: true, .. } => Ok(Admission::InFlight {
            run_id: id,
            session: at.key,
            agent: at.agent,
        }),
        Admitted::InFlight { same: false, .. } => Err(ErrorShape::invalid(
            "This message ID was already used for different input; send a new idempotencyKey",
        )
        .with_details(json!({"reason": "chat-request-conflict"}))),
        Admitted::Replay(e) => Ok(Admission::Replay(e)),
        Admitted::Busy(full) => Err(busy(full)),
    }
}

fn busy(full: RunsFull) -> ErrorShape {
    let why = match full {
        RunsFull::Running(n) => format!(
            "{n} sessions are running already (agents.defaults.maxConcurrent); try again when one ends"
        ),
        RunsFull::Queue(n) => format!("{n} runs already wait on this session"),
        RunsFull::Total(n) => format!("{n} runs are in progress"),
        RunsFull::Waiters => "too many requests wait for this run".to_string(),
    };
    let mut e = ErrorShape::unavailable(format!("agent run admission failed: {why}"));
    e.retryable = Some(true);
    e
}

/// A 64-bit FNV-1a over the parts: tells a retry from a reused key.
fn fingerprint(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
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
        },
    };
    match admit(c, req, Some(waiter))? {
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
