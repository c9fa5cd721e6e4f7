//! `clawgate agent`: one agent turn through the gateway's `agent` method,
//! its reply streamed to stdout as the model writes it.
//!
//! `agent` answers twice under one request id: `accepted` at once, the
//! final answer when the run ends. Between the two, the run's `agent`
//! events carry the reply's text; `Reply` (pure, so every order of events
//! is unit-tested) turns them into the pieces not yet printed, and at the
//! end makes sure the final text has been printed once, whole, with a
//! newline after it. The connection is opened under `--timeout` like any
//! other, then waits for the answer as long as the run may take. Nothing
//! here prints: the pieces go to the callback `main` gives.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::link::{open, Hello, Session};
use super::rpc::asked;
use super::table::visible;
use super::{fail, pretty, resolve};
use crate::cli::{AgentArgs, RunWait};
use crate::error::Error;
use crate::output::Output;
use crate::protocol::{SCOPE_ADMIN, SCOPE_WRITE};

/// How far off "no limit" is: ten years, far enough to mean it and near
/// enough to stay a valid `Instant` and socket timeout.
const NO_LIMIT_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// Runs the turn; `out` gets each piece of the reply as it arrives.
pub fn agent(args: &AgentArgs, out: &mut dyn FnMut(&str)) -> Result<Output, Error> {
    let json_out = args.client.json;
    let target = resolve(&args.client)?;
    let key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(crate::sys::uuid_v4);
    let hello = Hello {
        mode: "cli",
        scopes: asked(&scopes(&args.message)),
    };
    let mut session = match open(&target, &args.client, &hello) {
        Ok(s) => s,
        Err(f) => return fail(&f, json_out),
    };
    wait_for_the_run(&mut session, args.wait);
    // The run id is the idempotency key, so the events of this run are
    // known before the gateway accepts it.
    let mut reply = Reply::new(&key);
    let answer = session.exchange("agent", Some(&params(args, &key)), true, &mut |frame| {
        if !json_out {
            if let Some(piece) = reply.event(frame) {
                out(&visible(&piece));
            }
        }
    });
    session.close();
    let frame = match answer {
        Ok(frame) => frame,
        Err(f) => {
            out(reply.abandon());
            return fail(&f, json_out);
        }
    };
    let verdict = judge(&frame, &key);
    if json_out {
        let shown = if frame["ok"] == true {
            frame["payload"].clone()
        } else {
            json!({"ok": false, "payload": frame["payload"], "error": frame["error"]})
        };
        return Ok(match verdict {
            Ok(()) => Output::new(pretty(&shown), 0),
            Err(why) => Output {
                text: pretty(&shown),
                code: 1,
                notes: vec![why],
            },
        });
    }
    out(&visible(&reply.finish(&frame["payload"])));
    verdict.map_err(Error::runtime)?;
    let mut done = Output::new(String::new(), 0);
    if reply.printed.is_empty() {
        done.notes.push("the run ended without a reply".into());
    }
    Ok(done)
}

/// What the turn needs: write, and admin for a message that starts the
/// session over, which the gateway reserves to admins.
pub(super) fn scopes(message: &str) -> Vec<&'static str> {
    let command = message
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if command == "/new" || command == "/reset" {
        vec![SCOPE_WRITE, SCOPE_ADMIN]
    } else {
        vec![SCOPE_WRITE]
    }
}

/// The params of `agent`, as the stock `openclaw agent` sends them.
pub(super) fn params(args: &AgentArgs, key: &str) -> Value {
    let mut p = Map::new();
    p.insert("message".into(), json!(args.message));
    if let Some(agent) = &args.agent {
        p.insert("agentId".into(), json!(agent));
    }
    if let Some(session) = &args.session {
        p.insert("sessionKey".into(), json!(session));
    }
    p.insert("deliver".into(), json!(false));
    p.insert("timeout".into(), json!(args.run_timeout_s));
    p.insert("idempotencyKey".into(), json!(key));
    Value::Object(p)
}

/// Moves the session's deadline from the connect's to the run's.
fn wait_for_the_run(session: &mut Session, wait: RunWait) {
    let ms = match wait {
        RunWait::Timeout => return,
        RunWait::Ms(ms) => ms,
        RunWait::Unbounded => NO_LIMIT_MS,
    };
    if let Some(deadline) = Instant::now().checked_add(Duration::from_millis(ms)) {
        session.deadline = deadline;
        session.timeout_ms = ms;
    }
}

/// Whether the final answer is a success, and if not, what to tell the
/// user: the gateway's own message for a refused or failed run.
pub(super) fn judge(frame: &Value, key: &str) -> Result<(), String> {
    let payload = &frame["payload"];
    if frame["ok"] != true {
        let message = frame["error"]["message"]
            .as_str()
            .or(payload["summary"].as_str())
            .unwrap_or("the gateway refused the run");
        return Err(message.to_owned());
    }
    let run = payload["runId"].as_str().unwrap_or(key);
    match payload["status"].as_str() {
        Some("ok") => Ok(()),
        Some("timeout") => Err(format!("run '{run}' was aborted or timed out")),
        Some("in_flight") => Err(format!(
            "run '{run}' is still running: its reply goes to the call that started it (idempotency key '{key}')"
        )),
        Some("error") => match payload["stopReason"].as_str() {
            Some(why) => Err(format!("run '{run}' failed: {why}")),
            None => Err(format!("run '{run}' failed")),
        },
        Some(other) => Err(format!("run '{run}' ended with status '{other}'")),
        None => Err(format!("run '{run}' ended without a status")),
    }
}

/// The reply's text as printed so far, and what to print next.
pub(super) struct Reply {
    run_id: String,
    printed: String,
}

impl Reply {
    pub(super) fn new(run_id: &str) -> Reply {
        Reply {
            run_id: run_id.to_owned(),
            printed: String::new(),
        }
    }

    /// One frame from the gateway: the new part of the reply when it is
    /// an `assistant` event of this run. The cumulative `text` is
    /// preferred over `delta`, so a coalesced or missed event loses
    /// nothing; a text that no longer extends what was printed (the model
    /// rewrote it) prints nothing until the final answer settles it.
    pub(super) fn event(&mut self, frame: &Value) -> Option<String> {
        let p = &frame["payload"];
        let ours = frame["event"] == "agent"
            && p["runId"] == self.run_id.as_str()
            && p["stream"] == "assistant";
        if !ours {
            return None;
        }
        let data = &p["data"];
        let piece = match (data["text"].as_str(), data["delta"].as_str()) {
            (Some(text), _) => text.strip_prefix(self.printed.as_str())?.to_owned(),
            (None, Some(delta)) if data["replace"] != true => delta.to_owned(),
            _ => return None,
        };
        if piece.is_empty() {
            return None;
        }
        self.printed.push_str(&piece);
        Some(piece)
    }

    /// The end of the reply, given the final answer's payload: the part
    /// of its text not yet printed, then a newline. When the streamed text
    /// and the final one parted ways, the final text follows on a line of
    /// its own, so what is printed last is what the agent said.
    pub(super) fn finish(&mut self, payload: &Value) -> String {
        let text = final_text(payload);
        let mut rest = if let Some(suffix) = text.strip_prefix(self.printed.as_str()) {
            suffix.to_owned()
        } else if self.printed.starts_with(&text) {
            String::new()
        } else {
            format!("\n{text}")
        };
        self.printed.push_str(&rest);
        if !self.printed.is_empty() && !self.printed.ends_with('\n') {
            rest.push('\n');
            self.printed.push('\n');
        }
        rest
    }

    /// What ends a reply cut short: a newline after a partly printed
    /// line, so the error that follows starts on a line of its own.
    pub(super) fn abandon(&mut self) -> &'static str {
        if self.printed.is_empty() || self.printed.ends_with('\n') {
            ""
        } else {
            self.printed.push('\n');
            "\n"
        }
    }
}

/// The final answer's text: its payloads' texts, one per line.
pub(super) fn final_text(payload: &Value) -> String {
    let texts: Vec<&str> = payload["result"]["payloads"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["text"].as_str()).collect())
        .unwrap_or_default();
    texts.join("\n")
}

#[cfg(test)]
mod tests;
