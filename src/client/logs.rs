//! `clawgate logs`: the gateway's log file, read through its `logs.tail`
//! method, once or followed.
//!
//! Following polls with the cursor each answer carries, once a second (at
//! once while the gateway says there is more), so no line is printed twice
//! or skipped. A rotated or truncated file (`reset`) is read again from its
//! start, and a connection lost while following (a restart of the gateway)
//! is re-opened until it succeeds, continuing from the same cursor. Lines
//! go out through the callback `main` gives, batch by batch, as they come.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{open, resolve, Failure, Hello, Session};
use crate::cli::LogsArgs;
use crate::error::Error;
use crate::protocol;

/// How often `--follow` asks for new lines.
const POLL: Duration = Duration::from_secs(1);

/// Prints the log; returns the exit status. `out` gets stdout text (lines
/// joined by newlines), `note` one message for stderr, and `idle` waits up
/// to the time it is given between polls, returning true as soon as
/// nobody reads stdout any more (`logs --follow | head -1`): following
/// then ends at once, with status 0, instead of at the next line.
pub fn logs(
    args: &LogsArgs,
    out: &mut dyn FnMut(&str),
    note: &mut dyn FnMut(&str),
    idle: &mut dyn FnMut(Duration) -> bool,
) -> Result<i32, Error> {
    let c = &args.client;
    let target = resolve(c)?;
    let hello = Hello {
        mode: "cli",
        scopes: vec![protocol::SCOPE_READ.to_string()],
    };
    let first = open(&target, c, &hello).and_then(|mut s| {
        let r = s.request("logs.tail", Some(&json!({"limit": args.limit})), false);
        r.map(|p| (s, p))
    });
    let (mut session, payload) = match first {
        Ok(ok) => ok,
        Err(f) if c.json => {
            out(&f.json().to_string());
            note(&explain(&f));
            return Ok(1);
        }
        Err(f) => return Err(Error::runtime(explain(&f))),
    };
    let mut cursor = payload["cursor"].as_u64();
    emit(&payload, c.json, true, out, note);
    if !args.follow {
        session.close();
        return Ok(0);
    }
    let mut more = payload["truncated"] == true;
    loop {
        if !more && idle(POLL) {
            session.close();
            return Ok(0);
        }
        // Each poll gets the whole --timeout, not what the first left.
        session.deadline = Instant::now() + Duration::from_millis(c.timeout_ms);
        let params = match cursor {
            Some(at) => json!({ "cursor": at }),
            None => json!({ "limit": args.limit }),
        };
        match session.request("logs.tail", Some(&params), false) {
            Ok(p) => {
                cursor = p["cursor"].as_u64().or(cursor);
                more = p["truncated"] == true;
                emit(&p, c.json, false, out, note);
            }
            Err(f @ (Failure::Remote(_) | Failure::Refused(_))) => {
                return Err(Error::runtime(explain(&f)))
            }
            Err(Failure::Other(why)) => {
                note(&format!(
                    "lost the gateway ({why}); reconnecting every second"
                ));
                let Some(s) = reconnect(&target, c, &hello, idle) else {
                    return Ok(0);
                };
                session = s;
                note("reconnected");
                more = true;
            }
        }
    }
}

/// Opens a new session, trying once a second for as long as it takes:
/// `--follow` runs until interrupted, across gateway restarts. None when
/// stdout's reader went away meanwhile.
fn reconnect(
    target: &crate::config::ClientTarget,
    args: &crate::cli::ClientArgs,
    hello: &Hello,
    idle: &mut dyn FnMut(Duration) -> bool,
) -> Option<Session> {
    loop {
        if idle(POLL) {
            return None;
        }
        if let Ok(s) = open(target, args, hello) {
            return Some(s);
        }
    }
}

/// Prints one answer: its lines (control characters made visible, as they
/// go to a terminal and may come from a gateway elsewhere), or with
/// `--json` the answer itself on one line, when it has news.
fn emit(
    p: &Value,
    json_out: bool,
    first: bool,
    out: &mut dyn FnMut(&str),
    note: &mut dyn FnMut(&str),
) {
    let reset = p["reset"] == true;
    let lines: Vec<&str> = p["lines"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if json_out {
        if first || reset || !lines.is_empty() {
            out(&p.to_string());
        }
        return;
    }
    if reset {
        note("the log file was rotated or truncated; reading it from its start");
    }
    if !lines.is_empty() {
        let text: Vec<String> = lines
            .iter()
            .map(|l| crate::logging::escape_controls(l).into_owned())
            .collect();
        out(&text.join("\n"));
    }
}

/// The gateway's refusal, with where else to look when it writes no file.
fn explain(f: &Failure) -> String {
    let msg = f.message();
    match f {
        Failure::Remote(e) if e["code"] == "UNAVAILABLE" && msg.contains("logging.file") => {
            format!(
                "{msg}; a service's output is also in 'journalctl -u clawgate' (systemd) or 'logread -e clawgate' (OpenWrt)"
            )
        }
        _ => msg,
    }
}
