//! A turn's run, from the request's own thread: admitted as an ordinary
//! `chat` run (so WebSocket clients see its `agent` and `chat` events and
//! it is listed with the sessions), then followed through its tap until it
//! ends. The wait is cut in short slices so a client that goes away is
//! noticed and its run aborted, rather than left to burn a model's time
//! for nobody; and it has a deadline, the run's own limit and a margin,
//! so no request thread waits on a run forever.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::super::head::Head;
use super::super::response::Reply;
use super::wire::{agent_id_ok, session_header, session_key, Turn};
use super::{api_error, invalid};
use crate::agent::tap::TapUsage;
use crate::agent::{tap, TapEnd, TapReader};
use crate::protocol::ErrorShape;
use crate::runs::admit::{admit, Admission, Request};
use crate::state::{Job, Live, RunKind, Shared};

/// How long one wait on the tap lasts before the peer is looked at again.
const SLICE: Duration = Duration::from_millis(200);
/// Beyond the run's own limit: its end still has to be written and sent.
const MARGIN: Duration = Duration::from_secs(30);
/// The limit of a run when `agents.defaults.timeoutSeconds` is 0 (none):
/// as long as an `agent` caller waits for its final answer.
const NO_LIMIT: Duration = Duration::from_secs(48 * 3600);
/// After an abort, how long its ending is waited for.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// Where a turn runs.
pub(super) struct Place {
    /// `x-openclaw-agent-id`, over the agent `model` names.
    pub agent: Option<String>,
    /// `x-openclaw-session-key`, over the `user`'s or a fresh session.
    pub session: Option<String>,
    /// `x-openclaw-model`: `<provider>/<model>` for this run.
    pub model: Option<String>,
}

impl Place {
    /// The `x-openclaw-*` headers of a request.
    pub(super) fn of(head: &Head) -> Result<Place, Reply> {
        let header = |name| head.header(name).map(str::trim).filter(|v| !v.is_empty());
        let agent = match header("x-openclaw-agent-id") {
            Some(a) if !agent_id_ok(a) => {
                return Err(invalid("x-openclaw-agent-id is not an agent id."))
            }
            a => a.map(str::to_string),
        };
        let session =
            session_header(head.header("x-openclaw-session-key")).map_err(|e| invalid(&e))?;
        Ok(Place {
            agent,
            session,
            model: header("x-openclaw-model").map(str::to_string),
        })
    }
}

/// A run admitted for this request.
pub(super) struct Running {
    pub id: Arc<str>,
    session: String,
    reader: TapReader,
    limit: Duration,
}

/// How a run ended, as its HTTP answer needs it.
#[derive(Debug)]
pub(super) struct Outcome {
    /// `ok`, `error`, `timeout` or `aborted`.
    pub status: &'static str,
    pub stop_reason: String,
    pub error: Option<String>,
    pub usage: TapUsage,
}

impl Outcome {
    fn of(end: TapEnd, usage: Option<TapUsage>) -> Outcome {
        Outcome {
            status: end.status,
            stop_reason: end.stop_reason,
            error: end.error,
            usage: usage.unwrap_or_default(),
        }
    }

    fn failed(status: &'static str, why: &str) -> Outcome {
        Outcome {
            status,
            stop_reason: String::new(),
            error: Some(why.to_string()),
            usage: TapUsage::default(),
        }
    }

    /// The upstream stopped at its token limit.
    pub fn cut_short(&self) -> bool {
        matches!(self.stop_reason.as_str(), "length" | "max_tokens")
    }

    /// Why a run that did not end `ok` failed, for its client.
    pub fn why(&self) -> String {
        match (self.status, &self.error) {
            (_, Some(e)) if !e.is_empty() => e.clone(),
            ("timeout", _) => "the run timed out".into(),
            ("aborted", _) => "the run was aborted".into(),
            _ => "the run failed".into(),
        }
    }
}

/// How following a run went.
pub(super) enum Followed {
    Ended(Outcome),
    /// The client went away; its run was aborted.
    Left,
}

/// A request's turn (read from its body by `parse`) admitted as a run
/// under a fresh `<id_prefix>_<uuid>`, in `prefix`'s sessions, with the
/// request's `x-openclaw-*` headers applied; refusals come as the reply to
/// send.
pub(super) fn begin(
    shared: &Arc<Shared>,
    live: &Live,
    req: &super::super::request::Request,
    parse: fn(&[u8]) -> Result<Turn, String>,
    id_prefix: &str,
    prefix: &str,
) -> Result<(Turn, Running), Reply> {
    let turn = parse(req.body).map_err(|why| invalid(&why))?;
    let place = Place::of(req.head)?;
    let id = format!("{id_prefix}_{}", crate::sys::uuid_v4());
    let running = start(shared, live, &id, prefix, &turn, place)?;
    Ok((turn, running))
}

/// Admits the turn's run in `prefix`'s sessions (`openai`,
/// `openresponses`) under the id `id`; refusals come as the reply to send.
fn start(
    shared: &Arc<Shared>,
    live: &Live,
    id: &str,
    prefix: &str,
    turn: &Turn,
    place: Place,
) -> Result<Running, Reply> {
    let s = &live.settings;
    let agent = place
        .agent
        .or_else(|| turn.agent.clone())
        .unwrap_or_else(|| s.default_agent_id.clone())
        .to_ascii_lowercase();
    let session = place.session.unwrap_or_else(|| {
        let fresh = crate::sys::uuid_v4();
        session_key(prefix, &agent, turn.user.as_deref(), &fresh)
    });
    if let Some(m) = &place.model {
        s.agents
            .resolve(m)
            .map_err(|e| invalid(&format!("x-openclaw-model: {e}")))?;
    }
    let limit = match s.agents.timeout_seconds {
        0 => NO_LIMIT,
        t => Duration::from_secs(t),
    };
    let (tap, reader) = tap();
    let req = Request {
        kind: RunKind::Chat,
        id,
        agent: Some(&agent),
        session: Some(&session),
        message: &turn.message,
        job: Job {
            message: turn.message.clone(),
            model: place.model,
            timeout: None,
            extra_system_prompt: turn.system.clone(),
            tap: Some(tap),
        },
    };
    match admit(shared, s, req, None) {
        Ok(Admission::Started {
            run_id, session, ..
        }) => Ok(Running {
            id: run_id,
            session,
            reader,
            limit: limit + MARGIN,
        }),
        // A fresh id is never in flight nor ended.
        Ok(Admission::InFlight { .. } | Admission::Replay(_)) => {
            Err(api_error(500, "internal error"))
        }
        Err(e) => Err(refused(&e)),
    }
}

/// An admission refused: a full gateway asks the client to retry, a bad
/// request is the client's to fix.
fn refused(e: &ErrorShape) -> Reply {
    if e.retryable == Some(true) {
        let secs = e.retry_after_ms.map_or(1, |ms| ms.div_ceil(1000).max(1));
        return Reply {
            retry_after: Some(u32::try_from(secs).unwrap_or(u32::MAX)),
            ..Reply::json(
                503,
                json!({"error": {"message": e.message, "type": "api_error", "code": "overloaded"}}),
            )
        };
    }
    match e.code {
        "INVALID_REQUEST" => invalid(&e.message),
        _ => api_error(500, &e.message),
    }
}

impl Running {
    /// Follows the run to its end, handing each new piece of its text to
    /// `text`. A failed `text` (a write to a gone client), the peer closing
    /// its side, or the deadline abort the run.
    pub(super) fn follow(
        &self,
        shared: &Shared,
        peer: &TcpStream,
        mut text: impl FnMut(&str) -> io::Result<()>,
    ) -> Followed {
        let admitted = Instant::now();
        let mut deadline = admitted + NO_LIMIT + self.limit;
        let mut started = false;
        let mut offset = 0;
        let mut looked = admitted;
        loop {
            let seen = self.reader.next(offset, SLICE);
            if !seen.text.is_empty() {
                offset += seen.text.len();
                if text(&seen.text).is_err() {
                    self.abort(shared, "its client stopped reading");
                    return Followed::Left;
                }
            }
            if let Some(end) = seen.end {
                return Followed::Ended(Outcome::of(end, seen.usage));
            }
            if seen.gone {
                return Followed::Ended(Outcome::failed(
                    "error",
                    "the run ended without an answer",
                ));
            }
            let now = Instant::now();
            // The run's own limit counts from its start: a run queued
            // behind another of its session waits its turn first.
            if !started && (offset > 0 || self.executing(shared)) {
                started = true;
                deadline = deadline.min(now + self.limit);
            }
            if now >= deadline {
                self.abort(shared, "it passed its deadline");
                let late = self.reader.next(offset, ABORT_GRACE);
                return Followed::Ended(match late.end {
                    Some(end) => Outcome::of(end, late.usage),
                    None => Outcome::failed("timeout", "the run timed out"),
                });
            }
            // Looked at once a slice, not once a piece.
            if now.duration_since(looked) >= SLICE {
                looked = now;
                if peer_closed(peer) {
                    self.abort(shared, "its client went away");
                    return Followed::Left;
                }
            }
        }
    }

    fn executing(&self, shared: &Shared) -> bool {
        shared.run_active_in(&self.session).as_deref() == Some(&*self.id)
    }

    pub(super) fn abort(&self, shared: &Shared, why: &str) {
        log::info!("run {}: aborted because {why}", self.id);
        let _ = shared.run_abort(&self.session, Some(&self.id));
    }
}

/// Whether the peer has closed its side. Its request was read whole, so
/// anything readable now is either its end (a read of 0) or a pipelined
/// request, which is left where it is.
fn peer_closed(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    let _ = s.set_nonblocking(false);
    match r {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    }
}
