//! Admitting a run, for every way one is asked for (`agent`, `chat.send`,
//! the OpenAI-compatible endpoints, hooks): the message's bounds, the
//! session key, idempotency (a retry, a conflicting reuse of a key, a
//! replay of an ended run) and the run table's caps; a run admitted to
//! start now gets its thread here.

use std::sync::Arc;

use serde_json::json;

use super::keys;
use crate::config::Settings;
use crate::protocol::ErrorShape;
use crate::state::{Admitted, Ending, Job, Run, RunKind, RunsFull, Shared, WaitKind, Waiter};

/// What `agent` and `chat.send` share: an admitted run, or the answer
/// that replaces it.
pub struct Request<'a> {
    pub kind: RunKind,
    pub id: &'a str,
    pub agent: Option<&'a str>,
    pub session: Option<&'a str>,
    pub message: &'a str,
    pub job: Job,
}

/// How a request for a run went.
pub enum Admission {
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
    Replay(Ending),
}

/// Checks and admits a run; starts its thread when its session is free.
pub fn admit(
    shared: &Arc<Shared>,
    s: &Settings,
    r: Request,
    waiter: Option<Waiter>,
) -> Result<Admission, ErrorShape> {
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
    match shared.run_admit(run, waiter.map(|w| (w, WaitKind::Final))) {
        Admitted::New(start) => {
            if start {
                super::spawn(shared, twin);
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
