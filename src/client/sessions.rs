//! `clawgate sessions`: the agent sessions a gateway keeps, through
//! `sessions.list`, `chat.history`, `sessions.reset` and `sessions.delete`.
//!
//! Listing and reading ask for `operator.read`; resetting and deleting
//! change what an agent remembers and ask for `operator.admin`, as the
//! gateway requires. The renderings are pure functions of the answers (and
//! the time, for ages), unit-tested beside; nothing here prints.

use serde_json::{json, Map, Value};

use super::link::Failure;
use super::pretty;
use super::rpc::Rpc;
use super::table::{age, items, table, text, visible};
use crate::cli::{SessionAction, SessionsArgs};
use crate::error::Error;
use crate::output::Output;
use crate::protocol::{SCOPE_ADMIN, SCOPE_READ};

pub fn sessions(args: &SessionsArgs) -> Result<Output, Error> {
    super::with_rpc(&args.client, |rpc, json_out| {
        run(rpc, &args.action, json_out)
    })
}

fn run(rpc: &mut Rpc, action: &SessionAction, json_out: bool) -> Result<String, Failure> {
    let (scope, method) = match action {
        SessionAction::List { .. } => (SCOPE_READ, "sessions.list"),
        SessionAction::History { .. } => (SCOPE_READ, "chat.history"),
        SessionAction::Reset { .. } => (SCOPE_ADMIN, "sessions.reset"),
        SessionAction::Delete { .. } => (SCOPE_ADMIN, "sessions.delete"),
    };
    let payload = rpc.call(&[scope], method, Some(&params(action)))?;
    if json_out {
        return Ok(pretty(&payload));
    }
    Ok(match action {
        SessionAction::List { .. } => render_list(&payload, crate::state::now_ms()),
        SessionAction::History { key, .. } => render_history(&payload, key),
        SessionAction::Reset { key } => render_reset(&payload, key),
        SessionAction::Delete { key, .. } => render_delete(&payload, key),
    })
}

/// The params of each action's method; what was not given is left to
/// the gateway's defaults.
pub(super) fn params(action: &SessionAction) -> Value {
    let mut p = Map::new();
    let mut put = |k: &str, v: Value| {
        p.insert(k.into(), v);
    };
    match action {
        SessionAction::List {
            agent,
            search,
            limit,
        } => {
            if let Some(a) = agent {
                put("agentId", json!(a));
            }
            if let Some(s) = search {
                put("search", json!(s));
            }
            if let Some(n) = limit {
                put("limit", json!(n));
            }
        }
        SessionAction::History { key, limit } => {
            put("sessionKey", json!(key));
            if let Some(n) = limit {
                put("limit", json!(n));
            }
        }
        SessionAction::Reset { key } => put("key", json!(key)),
        // Said either way: the gateway's default is not this command's.
        SessionAction::Delete { key, transcript } => {
            put("key", json!(key));
            put("deleteTranscript", json!(transcript));
        }
    }
    Value::Object(p)
}

/// One row per session: key, agent, last update (and whether a run is
/// active), model, tokens, label; a line after the table when the
/// gateway has more than it listed.
pub(super) fn render_list(payload: &Value, now: u64) -> String {
    let sessions = items(payload, "sessions");
    if sessions.is_empty() {
        return "Sessions: none".into();
    }
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            let mut updated = age(now, s["updatedAt"].as_u64());
            if s["hasActiveRun"] == true {
                updated += ", running";
            }
            let model = match (s["modelProvider"].as_str(), s["model"].as_str()) {
                (Some(p), Some(m)) if !p.is_empty() && !m.is_empty() => format!("{p}/{m}"),
                _ => text(s, "model"),
            };
            let tokens = s["totalTokens"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |n| n.to_string());
            vec![
                visible(&text(s, "key")).into_owned(),
                visible(&text(s, "agentId")).into_owned(),
                updated,
                visible(&model).into_owned(),
                tokens,
                visible(&text(s, "label")).into_owned(),
            ]
        })
        .collect();
    let header = ["KEY", "AGENT", "UPDATED", "MODEL", "TOKENS", "LABEL"];
    let mut t = table(&header, &rows);
    let total = payload["totalCount"].as_u64().unwrap_or(0);
    if total > sessions.len() as u64 {
        t += &format!(
            "\nShowing {} of {total} sessions; see --limit and --search.",
            sessions.len()
        );
    }
    t
}

/// The text of a message: a user's is a string, an assistant's a list of
/// parts, of which the text ones are shown.
fn message_text(m: &Value) -> String {
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect();
            if texts.is_empty() && !parts.is_empty() {
                "[no text]".into()
            } else {
                texts.join("\n")
            }
        }
        _ => String::new(),
    }
}

/// One block per message, oldest first: `user:` or `assistant:` on a
/// line of its own, then the text; a line first when older messages
/// were left out.
pub(super) fn render_history(payload: &Value, key: &str) -> String {
    let messages = items(payload, "messages");
    if messages.is_empty() {
        return format!("Session '{key}': no messages");
    }
    let mut blocks = Vec::new();
    let total = payload["totalMessages"].as_u64().unwrap_or(0);
    if payload["hasMore"] == true {
        let earlier = total.saturating_sub(messages.len() as u64);
        blocks.push(if earlier > 0 {
            format!("({earlier} earlier messages not shown; see --limit)")
        } else {
            "(earlier messages not shown; see --limit)".to_owned()
        });
    }
    for m in messages {
        let role = m["role"].as_str().unwrap_or("?");
        let body = message_text(m);
        blocks.push(format!("{}:\n{}", visible(role), visible(body.trim_end())));
    }
    blocks.join("\n\n")
}

pub(super) fn render_reset(payload: &Value, key: &str) -> String {
    let key = payload["key"].as_str().unwrap_or(key);
    match payload["entry"]["sessionId"].as_str() {
        Some(id) => format!("Reset session '{key}': new session id {id}"),
        None => format!("Reset session '{key}'"),
    }
}

pub(super) fn render_delete(payload: &Value, key: &str) -> String {
    let key = payload["key"].as_str().unwrap_or(key);
    if payload["deleted"] == false {
        return format!("Session '{key}' did not exist: nothing was deleted");
    }
    let mut lines = vec![format!("Deleted session '{key}'")];
    let archived = items(payload, "archived").iter().filter_map(Value::as_str);
    lines.extend(archived.map(|path| format!("Transcript archived as {}", visible(path))));
    lines.join("\n")
}

#[cfg(test)]
mod tests;
