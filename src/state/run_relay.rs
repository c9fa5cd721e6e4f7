//! `Shared`'s side of agent runs: admitting a run (or answering a retry
//! from the idempotency cache), the requests that wait for a run's end,
//! aborts, and the end itself.
//!
//! A run's end is one [`Ending`]: the final `res` its `agent` caller gets
//! (`ok` with a payload, or `ok:false` with a payload *and* an error, as
//! the reference sends) and the status `agent.wait` reports. It is kept in
//! the idempotency cache under `agent:<runId>` or `chat:<runId>`, so a
//! retry within five minutes replays it. As with node invokes, whoever
//! removes a waiter answers it, after unlocking.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::outbox::Reply;
use super::runs::{Full, Kind, Run, WaitKind};
use super::{Audience, ConnId, Outcome, Shared, Waiter};
use crate::protocol::{self, ErrorShape};

/// What a request waiting for a run's end is registered under (see
/// [`Later`](super::Later)); node invokes use bare ids.
pub const LATER_PREFIX: &str = "run:";

/// How a run ended, as its waiters and a later retry are told.
#[derive(Debug, Clone)]
pub struct Ending {
    /// The final `res` payload (`{runId, status, summary, result?}`).
    pub payload: Value,
    /// Set for a run that failed outright: the final `res` is `ok:false`.
    pub error: Option<ErrorShape>,
    /// What `agent.wait` answers: `{runId, status, startedAt, endedAt, error?}`.
    pub wait: Value,
}

impl Ending {
    fn to_cache(&self) -> Outcome {
        let mut v = json!({"payload": self.payload, "wait": self.wait});
        if let Some(e) = &self.error {
            v["error"] = e.to_json();
        }
        Outcome::Ok(v.to_string().into())
    }

    fn from_cache(o: &Outcome) -> Option<Ending> {
        let Outcome::Ok(text) = o else { return None };
        let v: Value = serde_json::from_str(text).ok()?;
        let error = v.get("error").map(|e| {
            let msg = e["message"].as_str().unwrap_or("run failed");
            match e["code"].as_str() {
                Some("INVALID_REQUEST") => ErrorShape::invalid(msg),
                _ => ErrorShape::unavailable(msg),
            }
        });
        Some(Ending {
            payload: v["payload"].clone(),
            error,
            wait: v["wait"].clone(),
        })
    }

    /// The frame that answers request `req_id` with this ending.
    pub fn frame(&self, req_id: &str, kind: WaitKind) -> String {
        match (kind, &self.error) {
            (WaitKind::Wait, _) => protocol::res_ok_json(req_id, &self.wait.to_string()),
            (WaitKind::Final, None) => protocol::res_ok_json(req_id, &self.payload.to_string()),
            (WaitKind::Final, Some(e)) => json!({
                "type": "res", "id": req_id, "ok": false,
                "payload": self.payload, "error": e.to_json(),
            })
            .to_string(),
        }
    }
}

/// How `Shared::run_admit` went.
#[derive(Debug)]
pub enum Admitted {
    /// Admitted; `true` when it starts now (spawn its thread), `false`
    /// when it waits behind the session's current run.
    New(bool),
    /// A run under this id is in the table: `same` when it asked for the
    /// same thing (a retry), else a conflicting reuse of the key.
    InFlight {
        same: bool,
    },
    /// A run under this id ended within the idempotency window.
    Replay(Ending),
    Busy(Full),
}

fn cache_key(kind: Kind, id: &str) -> String {
    match kind {
        Kind::Agent => format!("agent:{id}"),
        Kind::Chat => format!("chat:{id}"),
    }
}

impl Shared {
    /// Admits `run` (with its caller as first waiter), unless its id is
    /// in flight or was answered within the idempotency window.
    pub fn run_admit(&self, run: Run, waiter: Option<(Waiter, WaitKind)>) -> Admitted {
        let mut st = self.state();
        let now = Instant::now();
        if let Some(o) = st.idem.get(&cache_key(run.kind, &run.id), now) {
            if let Some(e) = Ending::from_cache(&o) {
                return Admitted::Replay(e);
            }
        }
        if let Some(r) = st.runs.get(&run.id) {
            let same = r.fingerprint == run.fingerprint;
            return Admitted::InFlight { same };
        }
        match st.runs.admit(run, waiter) {
            Ok(start) => Admitted::New(start),
            Err(full) => Admitted::Busy(full),
        }
    }

    /// What `agent.wait` gets at once: the ending of a run that ended
    /// (`Some`), or `None` after joining `waiter` to a run in progress.
    /// `Err(())` when the run is unknown or cannot take another waiter.
    pub fn run_wait(&self, id: &str, waiter: Waiter) -> Result<Option<Value>, ()> {
        let mut st = self.state();
        let now = Instant::now();
        for kind in [Kind::Agent, Kind::Chat] {
            if let Some(o) = st.idem.get(&cache_key(kind, id), now) {
                if let Some(e) = Ending::from_cache(&o) {
                    return Ok(Some(e.wait));
                }
            }
        }
        st.runs
            .join(id, waiter, WaitKind::Wait)
            .map(|()| None)
            .map_err(|_| ())
    }

    pub fn run_started(&self, id: &str, at_ms: u64) {
        self.state().runs.mark_started(id, at_ms);
    }

    /// Ends run `id`: keeps its ending for retries, answers its waiters
    /// and returns the session's next run, if one waits, with its
    /// details, which the calling thread executes next.
    pub fn run_finish(&self, id: &str, kind: Kind, ending: &Ending) -> Option<Run> {
        let (targets, next) = {
            let mut st = self.state();
            st.idem
                .put(&cache_key(kind, id), ending.to_cache(), Instant::now());
            let (run, next) = st.runs.finish(id)?;
            let targets: Vec<_> = run
                .waiters()
                .iter()
                .map(|(w, k)| {
                    let o = st.clients.outboxes(Audience::Conn(w.conn)).pop();
                    (o, w.clone(), *k)
                })
                .collect();
            let next = next.and_then(|n| st.runs.get(&n).map(Run::twin));
            (targets, next)
        };
        for (outbox, w, k) in targets {
            if let Some(o) = outbox {
                let frame = bounded(&w, ending.frame(&w.req_id, k));
                o.push_reply(Reply {
                    req_id: w.req_id,
                    frame,
                });
            }
        }
        next
    }

    /// Cancels the runs of `session` (or only `run_id`); returns their
    /// ids. `Err` when `run_id` belongs to another session. The cancel
    /// hooks run here, after unlocking.
    pub fn run_abort(&self, session: &str, run_id: Option<&str>) -> Result<Vec<Arc<str>>, ()> {
        let picked = self.state().runs.to_cancel(session, run_id)?;
        Ok(picked
            .into_iter()
            .map(|(id, c)| {
                c.cancel();
                id
            })
            .collect())
    }

    /// Cancels every run (the gateway is stopping).
    pub fn runs_abort_all(&self) {
        let all = self.state().runs.all_cancels();
        for c in all {
            c.cancel();
        }
    }

    /// The run executing in `session`: its id, if any.
    pub fn run_active_in(&self, session: &str) -> Option<Arc<str>> {
        self.state().runs.active_in(session).map(|r| r.id.clone())
    }

    /// `sessions.subscribe` (`on`) or `sessions.unsubscribe` of `conn`.
    pub fn sessions_subscribe(&self, conn: ConnId, on: bool) {
        self.state().clients.subscribe(conn, on);
    }

    /// The waiter `(conn, req_id)` of run `id` reached its deadline: its
    /// answer (`agent.wait`: still running; `agent`: gave up waiting).
    pub fn run_expired(&self, id: &str, conn: ConnId, req_id: &str) -> Option<String> {
        let mut st = self.state();
        let started = st.runs.get(id).is_some_and(|r| r.started);
        let (w, kind) = st.runs.expire(id, conn, req_id)?;
        drop(st);
        let payload = match (kind, started) {
            (WaitKind::Wait, false) => json!({"runId": id, "status": "pending",
                "timeoutPhase": "queue", "providerStarted": false}),
            (WaitKind::Wait, true) => json!({"runId": id, "status": "timeout"}),
            (WaitKind::Final, _) => json!({"runId": id, "status": "timeout",
                "summary": "the run outlived its caller's wait"}),
        };
        Some(protocol::res_ok_json(&w.req_id, &payload.to_string()))
    }
}

impl Run {
    /// A copy of what a run needs to execute, for its thread (its waiters
    /// stay in the table).
    pub fn twin(&self) -> Run {
        let mut r = Run::new(
            self.id.clone(),
            self.agent.clone(),
            self.session.clone(),
            self.kind,
            self.job.clone(),
        );
        r.cancel = self.cancel.clone();
        r.fingerprint = self.fingerprint;
        r.started = true;
        r
    }
}

/// `frame`, or an error in its place when it exceeds what the waiter's
/// connection accepts.
fn bounded(w: &Waiter, frame: String) -> String {
    if frame.len() <= w.max_payload {
        return frame;
    }
    let e = ErrorShape::unavailable(format!(
        "reply too large: {} bytes, over maxPayload ({} bytes)",
        frame.len(),
        w.max_payload
    ));
    protocol::res_err(&w.req_id, &e)
}
