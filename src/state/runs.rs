//! Agent runs in progress: which run holds each session, which runs wait
//! their turn behind it, and which requests wait for each run's end.
//!
//! Runs are serialised per session: the first run of a session's queue is
//! the one executing; a `chat.send` or `agent` on a busy session waits
//! behind it (the reference's default). At most `max_running` sessions run
//! at once; a new session past that is refused, never queued, so a small
//! host is never handed more work than it was sized for. A waiter is
//! removed by whoever answers it, exactly once: the run's thread at its
//! end (`finish`), the waiter's own thread at its deadline (`expire`), or
//! its connection leaving (`drop_conn`, no answer). Plain data under the
//! state lock; every count is bounded ([`RunCaps`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::pending::Waiter;
use super::ConnId;
use crate::agent::Cancel;

/// How much may run and wait at once.
#[derive(Debug, Clone, Copy)]
pub struct RunCaps {
    /// Sessions with a run executing (`agents.defaults.maxConcurrent`).
    pub max_running: usize,
    /// Runs waiting behind a busy session, per session.
    pub max_queued_per_session: usize,
    /// Runs in the table, executing or waiting.
    pub max_total: usize,
    /// Requests waiting for one run's end (its caller and `agent.wait`s).
    pub max_waiters: usize,
}

/// Which request started a run: it decides the events' audience and how
/// its end is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `agent`: its caller gets a second `res` at the end.
    Agent,
    /// `chat.send`: answered at once; the rest comes as events.
    Chat,
}

/// What a waiter gets at the run's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// The `agent` caller's final `res`.
    Final,
    /// An `agent.wait`: the run's status, `ok:true` always.
    Wait,
}

/// What a run needs to execute, kept while it waits its turn.
#[derive(Debug, Clone)]
pub struct Job {
    pub message: String,
    /// `<provider>/<model>` asked for by the caller, over the session's.
    pub model: Option<String>,
    /// The run's own limit; `None` = none.
    pub timeout: Option<Duration>,
    pub extra_system_prompt: Option<String>,
    /// An HTTP request's view of the run (its text and end), if any.
    pub tap: Option<crate::agent::Tap>,
}

#[derive(Debug)]
pub struct Run {
    pub id: Arc<str>,
    pub agent: Arc<str>,
    /// The session key, lowercased.
    pub session: Arc<str>,
    pub kind: Kind,
    pub cancel: Cancel,
    /// A hash of what was asked, to tell a retry from a conflicting reuse
    /// of the same idempotency key.
    pub fingerprint: u64,
    pub job: Job,
    pub started: bool,
    pub started_at: Option<u64>,
    waiters: Vec<(Waiter, WaitKind)>,
}

impl Run {
    pub fn new(id: Arc<str>, agent: Arc<str>, session: Arc<str>, kind: Kind, job: Job) -> Run {
        Run {
            id,
            agent,
            session,
            kind,
            cancel: Cancel::new(),
            fingerprint: 0,
            job,
            started: false,
            started_at: None,
            waiters: Vec::new(),
        }
    }

    pub fn waiters(&self) -> &[(Waiter, WaitKind)] {
        &self.waiters
    }
}

/// Why a run cannot be admitted, or a waiter added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `max_running` sessions are running already.
    Running(usize),
    /// This session has `max_queued_per_session` runs waiting.
    Queue(usize),
    Total(usize),
    Waiters,
}

#[derive(Debug)]
pub struct Runs {
    caps: RunCaps,
    runs: HashMap<Arc<str>, Run>,
    /// Per session, its runs in order: the first is executing.
    queues: HashMap<Arc<str>, VecDeque<Arc<str>>>,
}

impl Runs {
    pub fn new(caps: RunCaps) -> Runs {
        Runs {
            caps,
            runs: HashMap::new(),
            queues: HashMap::new(),
        }
    }

    /// A reload may change `max_running`; runs admitted stay.
    pub fn set_max_running(&mut self, n: usize) {
        self.caps.max_running = n.max(1);
    }

    pub fn get(&self, id: &str) -> Option<&Run> {
        self.runs.get(id)
    }

    /// Sessions with a run executing.
    pub fn running(&self) -> usize {
        self.queues.len()
    }

    /// Runs in the table, executing or waiting.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// The run executing in `session`, if any.
    pub fn active_in(&self, session: &str) -> Option<&Run> {
        let id = self.queues.get(session)?.front()?;
        self.runs.get(id)
    }

    /// Adds `run` with its first waiter. `Ok(true)`: it starts now (the
    /// caller spawns its thread); `Ok(false)`: it waits behind the
    /// session's current run, whose thread will run it next.
    pub fn admit(
        &mut self,
        mut run: Run,
        waiter: Option<(Waiter, WaitKind)>,
    ) -> Result<bool, Full> {
        if self.runs.len() >= self.caps.max_total {
            return Err(Full::Total(self.caps.max_total));
        }
        let busy = self.queues.get(&run.session).map_or(0, VecDeque::len);
        if busy == 0 && self.queues.len() >= self.caps.max_running {
            return Err(Full::Running(self.caps.max_running));
        }
        if busy > self.caps.max_queued_per_session {
            return Err(Full::Queue(self.caps.max_queued_per_session));
        }
        run.started = busy == 0;
        run.waiters.extend(waiter);
        let start = run.started;
        self.queues
            .entry(run.session.clone())
            .or_default()
            .push_back(run.id.clone());
        self.runs.insert(run.id.clone(), run);
        Ok(start)
    }

    /// Adds an `agent.wait` (or another waiter) to a run in the table.
    pub fn join(&mut self, id: &str, waiter: Waiter, kind: WaitKind) -> Result<(), Full> {
        let r = self.runs.get_mut(id).ok_or(Full::Waiters)?;
        if r.waiters.len() >= self.caps.max_waiters {
            return Err(Full::Waiters);
        }
        r.waiters.push((waiter, kind));
        Ok(())
    }

    /// Records the start time of run `id`, which its thread took up.
    pub fn mark_started(&mut self, id: &str, at_ms: u64) {
        if let Some(r) = self.runs.get_mut(id) {
            r.started = true;
            r.started_at = Some(at_ms);
        }
    }

    /// Removes run `id` at its end: the caller answers its waiters. Also
    /// returns the session's next run, which the same thread executes.
    pub fn finish(&mut self, id: &str) -> Option<(Run, Option<Arc<str>>)> {
        let run = self.runs.remove(id)?;
        let mut next = None;
        if let Some(q) = self.queues.get_mut(&run.session) {
            q.retain(|r| &**r != id);
            next = q.front().cloned();
            if next.is_none() {
                self.queues.remove(&run.session);
            }
        }
        if let Some(n) = &next {
            if let Some(r) = self.runs.get_mut(n) {
                r.started = true;
            }
        }
        Some((run, next))
    }

    /// The runs of `session` to cancel (all of them, or only `run_id`):
    /// their ids and cancel handles. `Err` when `run_id` is a run of
    /// another session.
    pub fn to_cancel(
        &self,
        session: &str,
        run_id: Option<&str>,
    ) -> Result<Vec<(Arc<str>, Cancel)>, ()> {
        if let Some(id) = run_id {
            return match self.runs.get(id) {
                Some(r) if &*r.session == session => Ok(vec![(r.id.clone(), r.cancel.clone())]),
                Some(_) => Err(()),
                None => Ok(Vec::new()),
            };
        }
        let Some(q) = self.queues.get(session) else {
            return Ok(Vec::new());
        };
        Ok(q.iter()
            .filter_map(|id| self.runs.get(id))
            .map(|r| (r.id.clone(), r.cancel.clone()))
            .collect())
    }

    /// Every run's cancel handle (the gateway is stopping).
    pub fn all_cancels(&self) -> Vec<Cancel> {
        self.runs.values().map(|r| r.cancel.clone()).collect()
    }

    /// Removes the waiter `(conn, req_id)` of run `id` whose deadline
    /// passed: its own thread answers it. `None` when already answered.
    pub fn expire(&mut self, id: &str, conn: ConnId, req_id: &str) -> Option<(Waiter, WaitKind)> {
        let r = self.runs.get_mut(id)?;
        let i = r
            .waiters
            .iter()
            .position(|(w, _)| w.conn == conn && &*w.req_id == req_id)?;
        Some(r.waiters.swap_remove(i))
    }

    /// `conn` left: nobody is left to read its waiters' answers.
    pub fn drop_conn(&mut self, conn: ConnId) {
        for r in self.runs.values_mut() {
            r.waiters.retain(|(w, _)| w.conn != conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const CAPS: RunCaps = RunCaps {
        max_running: 2,
        max_queued_per_session: 1,
        max_total: 8,
        max_waiters: 2,
    };

    fn run(id: &str, session: &str) -> Run {
        let job = Job {
            message: "hi".into(),
            model: None,
            timeout: None,
            extra_system_prompt: None,
            tap: None,
        };
        Run::new(id.into(), "main".into(), session.into(), Kind::Chat, job)
    }

    fn waiter(conn: usize, req: &str) -> Waiter {
        Waiter {
            conn: ConnId::new(conn),
            req_id: req.into(),
            deadline: Instant::now(),
            max_payload: 1024,
        }
    }

    #[test]
    fn a_busy_session_queues_and_its_next_run_follows_the_first() {
        let mut r = Runs::new(CAPS);
        assert_eq!(r.admit(run("a", "s1"), None), Ok(true));
        assert_eq!(r.admit(run("b", "s1"), None), Ok(false));
        assert_eq!(r.admit(run("c", "s1"), None), Err(Full::Queue(1)));
        assert_eq!(r.running(), 1);
        let (done, next) = r.finish("a").expect("a");
        assert_eq!(&*done.id, "a");
        assert_eq!(next.as_deref(), Some("b"));
        assert!(r.get("b").expect("b").started);
        assert_eq!(r.active_in("s1").map(|x| &*x.id), Some("b"));
        let (_, next) = r.finish("b").expect("b");
        assert!(next.is_none());
        assert_eq!((r.running(), r.len()), (0, 0));
    }

    #[test]
    fn past_the_running_cap_a_new_session_is_refused_not_queued() {
        let mut r = Runs::new(CAPS);
        assert_eq!(r.admit(run("a", "s1"), None), Ok(true));
        assert_eq!(r.admit(run("b", "s2"), None), Ok(true));
        assert_eq!(r.admit(run("c", "s3"), None), Err(Full::Running(2)));
        r.finish("a");
        assert_eq!(r.admit(run("c", "s3"), None), Ok(true));
    }

    #[test]
    fn waiters_are_answered_once_and_leave_with_their_connection() {
        let mut r = Runs::new(CAPS);
        let w = (waiter(1, "r1"), WaitKind::Final);
        r.admit(run("a", "s1"), Some(w)).expect("admit");
        r.join("a", waiter(2, "w1"), WaitKind::Wait).expect("join");
        assert_eq!(
            r.join("a", waiter(3, "w2"), WaitKind::Wait),
            Err(Full::Waiters)
        );
        let (gone, kind) = r.expire("a", ConnId::new(2), "w1").expect("expire");
        assert_eq!((&*gone.req_id, kind), ("w1", WaitKind::Wait));
        assert!(r.expire("a", ConnId::new(2), "w1").is_none());
        r.drop_conn(ConnId::new(1));
        let (done, _) = r.finish("a").expect("a");
        assert!(done.waiters().is_empty());
    }

    #[test]
    fn cancel_picks_the_session_runs_and_refuses_a_foreign_run_id() {
        let mut r = Runs::new(CAPS);
        r.admit(run("a", "s1"), None).expect("a");
        r.admit(run("b", "s1"), None).expect("b");
        r.admit(run("c", "s2"), None).expect("c");
        let ids: Vec<_> = r
            .to_cancel("s1", None)
            .expect("s1")
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(ids.iter().map(|x| &**x).collect::<Vec<_>>(), ["a", "b"]);
        assert!(r.to_cancel("s1", Some("c")).is_err());
        assert!(r.to_cancel("s1", Some("zzz")).expect("none").is_empty());
    }
}
