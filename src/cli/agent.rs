//! The flags of `agent` and `sessions`, and phase two of both: a message
//! is required and non-empty, the run's own timeout decides how long the
//! client waits for its answer, and each `sessions` action takes only the
//! flags that mean something to it (the action word itself is checked with
//! those of `devices` and `nodes`, in `pairing`). Pure, like the rest of
//! the parser: no I/O, no environment.

use super::pairing::{settle, Verb};
use super::values::{nonempty, switch, value, word};
use super::{
    client_args, AgentArgs, Raw, RunWait, SessionAction, SessionVerb, SessionsArgs, Sub,
    DEFAULT_TIMEOUT_MS,
};
use crate::error::Error;

/// `agent`: what to say, to whom, in which session, for how long.
pub const AGENT_FLAGS: &[&str] = &[
    "message",
    "agent",
    "session",
    "run-timeout",
    "idempotency-key",
];
/// `sessions`: the filters of `list`, the length of `list` and `history`,
/// and what `delete` removes.
pub const SESSIONS_FLAGS: &[&str] = &["agent", "search", "limit", "transcript"];

/// What the gateway is told a run may take unless `--run-timeout` says:
/// the value the stock `openclaw agent` sends.
pub const DEFAULT_RUN_TIMEOUT_S: u64 = 600;
/// The most sessions or messages one `sessions` call asks for.
pub const MAX_SESSIONS_LIMIT: usize = 1000;

/// Phase one's values of the flags only `agent` and `sessions` take.
#[derive(Debug, Default)]
pub struct RawAgent {
    message: Option<String>,
    agent: Option<String>,
    session: Option<String>,
    run_timeout_s: Option<u64>,
    search: Option<String>,
    transcript: bool,
}

impl RawAgent {
    /// Which of these flags were given, for the check that an action of
    /// `sessions` takes each of them.
    pub fn given(&self) -> [(&'static str, bool); 6] {
        [
            ("message", self.message.is_some()),
            ("agent", self.agent.is_some()),
            ("session", self.session.is_some()),
            ("run-timeout", self.run_timeout_s.is_some()),
            ("search", self.search.is_some()),
            ("transcript", self.transcript),
        ]
    }
}

/// Store one of these flags; `false` when `name` is none of them.
pub fn set_flag(
    raw: &mut RawAgent,
    name: &str,
    parser: &mut lexopt::Parser,
) -> Result<bool, Error> {
    match name {
        "message" => raw.message = Some(value(parser, name, nonempty)?),
        "agent" => raw.agent = Some(value(parser, name, word)?),
        "session" => raw.session = Some(value(parser, name, nonempty)?),
        "run-timeout" => raw.run_timeout_s = Some(value(parser, name, seconds)?),
        "search" => raw.search = Some(value(parser, name, nonempty)?),
        "transcript" => raw.transcript = switch(parser, name)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// A run timeout: 0 means none, as on the wire.
fn seconds(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| "expected a number of seconds (0 for no limit)".into())
}

/// `--limit` of `sessions`: how many sessions or messages.
pub fn count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_SESSIONS_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("expected a number from 1 to {MAX_SESSIONS_LIMIT}")),
    }
}

pub fn agent(mut raw: Raw) -> Result<AgentArgs, Error> {
    let message = raw.agent.message.take().ok_or_else(|| {
        Error::usage("'clawgate agent' needs '--message' (e.g. 'clawgate agent --message hello')")
    })?;
    let explicit_timeout = raw.timeout_ms.is_some();
    let client = client_args(&mut raw)?;
    let run_timeout_s = raw.agent.run_timeout_s.unwrap_or(DEFAULT_RUN_TIMEOUT_S);
    // The gateway answers when the run ends, which may be minutes away:
    // the client waits as long as the run may take, and a little more
    // for the answer that reports its timeout, unless the user set a
    // deadline of their own.
    let wait = match (explicit_timeout, run_timeout_s) {
        (true, _) => RunWait::Timeout,
        (false, 0) => RunWait::Unbounded,
        (false, s) => RunWait::Ms(s.saturating_mul(1000).saturating_add(DEFAULT_TIMEOUT_MS)),
    };
    Ok(AgentArgs {
        client,
        message,
        agent: raw.agent.agent,
        session: raw.agent.session,
        run_timeout_s,
        wait,
        idempotency_key: raw.idempotency_key,
    })
}

pub fn sessions(mut raw: Raw) -> Result<SessionsArgs, Error> {
    let (verb, key) = settle(Sub::Sessions, &mut raw)?;
    let client = client_args(&mut raw)?;
    let Verb::Session(v) = verb else {
        unreachable!("sessions takes session actions")
    };
    let action = match v {
        SessionVerb::List => SessionAction::List {
            agent: raw.agent.agent,
            search: raw.agent.search,
            limit: raw.limit,
        },
        SessionVerb::History => SessionAction::History {
            key,
            limit: raw.limit,
        },
        SessionVerb::Reset => SessionAction::Reset { key },
        SessionVerb::Delete => SessionAction::Delete {
            key,
            transcript: raw.agent.transcript,
        },
    };
    Ok(SessionsArgs { client, action })
}
