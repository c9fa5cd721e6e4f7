//! The bodies and headers of `/v1/chat/completions` and `/v1/responses`,
//! read into one plain [`Turn`]: the agent the `model` names, the message
//! of the turn, the extra system prompt, and how to answer. Pure: no
//! sockets, no state, so every refusal (a 400 whose message an OpenAI
//! client shows its user) is unit-tested here.
//!
//! A conversation is folded into one message as the reference does:
//! `system` and `developer` messages (and `instructions`) become the
//! extra system prompt; the last `user` message is the turn; the `user`
//! and `assistant` messages before it are handed to the agent as context
//! text above it. Only text is taken: images, files and client-side tools
//! are refused, never dropped in silence.

use serde_json::{Map, Value};

/// Session keys a caller may not name: they belong to the gateway's own
/// kinds of runs.
const RESERVED_KEYS: [&str; 3] = ["subagent:", "cron:", "acp:"];
/// `user`: a conversation's name, not a document.
const MAX_USER: usize = 256;
/// As `chat.send`'s `sessionKey`.
const MAX_SESSION_KEY: usize = 512;

const HISTORY_HEAD: &str = "[Chat messages since your last reply - for context]";
const CURRENT_HEAD: &str = "[Current message - respond to this]";

/// One request, read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Turn {
    /// `model` as sent (`openclaw` when absent): echoed in the answer.
    pub model: String,
    /// The agent `model` names; `None` is the default agent.
    pub agent: Option<String>,
    pub message: String,
    pub system: Option<String>,
    pub stream: bool,
    /// `stream_options.include_usage` (chat completions).
    pub include_usage: bool,
    /// `user`: names a conversation kept across requests.
    pub user: Option<String>,
}

/// The agent a `model` names: `Some(None)` for the default agent,
/// `None` when it names none.
pub(super) fn model_agent(model: &str) -> Option<Option<String>> {
    if model == "openclaw" || model == "openclaw/default" {
        return Some(None);
    }
    let id = ["openclaw/", "openclaw:", "agent:"]
        .iter()
        .find_map(|p| model.strip_prefix(p))?;
    agent_id_ok(id).then(|| Some(id.to_string()))
}

/// An agent id as the configuration allows one.
pub(super) fn agent_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.contains(|c: char| c == ':' || c == '/' || c.is_whitespace() || c.is_control())
}

/// `POST /v1/chat/completions`.
pub(super) fn chat_turn(body: &[u8]) -> Result<Turn, String> {
    let o = object(body)?;
    let mut turn = common(&o)?;
    for key in ["functions", "function_call"] {
        if o.get(key).is_some_and(|v| !v.is_null()) {
            return Err(no_tools(key));
        }
    }
    let Some(messages) = o.get("messages").and_then(Value::as_array) else {
        return Err("`messages` must be an array of messages.".into());
    };
    let mut fold = Fold::default();
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = m["role"].as_str().ok_or(format!("{at}.role is missing."))?;
        if m.get("tool_calls").is_some_and(|t| !empty(t)) {
            return Err(no_tools(&format!("{at}.tool_calls")));
        }
        let text = content_text(&m["content"], &at)?;
        match role {
            "system" | "developer" => fold.system(text),
            "user" => fold.entry(true, text),
            "assistant" => fold.entry(false, text),
            "tool" | "function" => return Err(no_tools(&format!("{at} (role '{role}')"))),
            other => return Err(format!("{at}.role '{other}' is not supported.")),
        }
    }
    (turn.message, turn.system) = fold.finish("messages")?;
    turn.include_usage = o
        .get("stream_options")
        .and_then(|s| s.get("include_usage"))
        .and_then(Value::as_bool)
        == Some(true);
    Ok(turn)
}

/// `POST /v1/responses`.
pub(super) fn responses_turn(body: &[u8]) -> Result<Turn, String> {
    let o = object(body)?;
    let mut turn = common(&o)?;
    if o.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Err(
            "`previous_response_id` is not supported: send the conversation in `input`, \
                    or name it with `user`."
                .into(),
        );
    }
    let mut fold = Fold::default();
    match o.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => fold.system(s.clone()),
        Some(_) => return Err("`instructions` must be a string.".into()),
    }
    match o.get("input") {
        Some(Value::String(s)) => fold.entry(true, s.clone()),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(&mut fold, item, &format!("input[{i}]"))?;
            }
        }
        _ => return Err("`input` must be a string or an array of message items.".into()),
    }
    (turn.message, turn.system) = fold.finish("input")?;
    Ok(turn)
}

fn input_item(fold: &mut Fold, item: &Value, at: &str) -> Result<(), String> {
    match item["type"].as_str() {
        None | Some("message") => {}
        Some(t @ ("function_call" | "function_call_output")) => {
            return Err(no_tools(&format!("{at} (type '{t}')")))
        }
        Some(t @ ("input_image" | "input_file")) => return Err(not_text(at, t)),
        Some(t) => return Err(format!("{at}: items of type '{t}' are not supported.")),
    }
    let role = item["role"]
        .as_str()
        .ok_or(format!("{at}.role is missing."))?;
    let text = content_text(&item["content"], at)?;
    match role {
        "system" | "developer" => fold.system(text),
        "user" => fold.entry(true, text),
        "assistant" => fold.entry(false, text),
        other => return Err(format!("{at}.role '{other}' is not supported.")),
    }
    Ok(())
}

/// The body as a JSON object.
fn object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err("The request body must be a JSON object.".into()),
        Err(_) => Err("The request body is not valid JSON.".into()),
    }
}

/// What both endpoints read alike: the model, the tools refused, the
/// stream switch and the user.
fn common(o: &Map<String, Value>) -> Result<Turn, String> {
    let model = match o.get("model") {
        None | Some(Value::Null) => "openclaw".to_string(),
        Some(Value::String(m)) if !m.trim().is_empty() => m.trim().to_string(),
        Some(_) => return Err("`model` must be a string such as 'openclaw'.".into()),
    };
    let Some(agent) = model_agent(&model) else {
        return Err(format!(
            "Invalid `model` '{}': use 'openclaw', 'openclaw/default' or 'openclaw/<agentId>'.",
            crate::protocol::clip(&model, 128)
        ));
    };
    if o.get("tools").is_some_and(|t| !empty(t)) {
        return Err(no_tools("tools"));
    }
    match o.get("tool_choice") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "none" => {}
        Some(_) => return Err(no_tools("tool_choice")),
    }
    let stream = match o.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`stream` must be true or false.".into()),
    };
    let user = match o.get("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => user_name(u)?,
        Some(_) => return Err("`user` must be a string.".into()),
    };
    Ok(Turn {
        model,
        agent,
        stream,
        user,
        ..Turn::default()
    })
}

/// `user`, trimmed; blank is none.
fn user_name(u: &str) -> Result<Option<String>, String> {
    let u = u.trim();
    if u.len() > MAX_USER || u.contains(char::is_control) {
        return Err(format!(
            "`user` must be at most {MAX_USER} bytes without control characters."
        ));
    }
    Ok((!u.is_empty()).then(|| u.to_string()))
}

/// `x-openclaw-session-key`, trimmed; blank is none. A key of the
/// gateway's own run kinds (also under `agent:<id>:`) is refused.
pub(super) fn session_header(v: Option<&str>) -> Result<Option<String>, String> {
    let Some(k) = v.map(str::trim).filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    if k.len() > MAX_SESSION_KEY || k.contains(char::is_control) {
        return Err(format!(
            "x-openclaw-session-key must be at most {MAX_SESSION_KEY} bytes without control characters."
        ));
    }
    let lower = k.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("agent:")
        .and_then(|r| r.split_once(':'))
        .map_or(lower.as_str(), |(_, tail)| tail);
    if let Some(p) = RESERVED_KEYS.iter().find(|p| rest.starts_with(*p)) {
        return Err(format!(
            "x-openclaw-session-key: '{p}' sessions are reserved for the gateway."
        ));
    }
    Ok(Some(k.to_string()))
}

/// The session of a turn without a key of its own: the `user`'s
/// conversation, or a fresh one (`fresh` is a new uuid).
pub(super) fn session_key(prefix: &str, agent: &str, user: Option<&str>, fresh: &str) -> String {
    match user {
        Some(u) => format!("agent:{agent}:{prefix}-user:{u}"),
        None => format!("agent:{agent}:{prefix}:{fresh}"),
    }
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn no_tools(what: &str) -> String {
    format!("`{what}` is not supported: clawgate runs no client-side tools.")
}

fn not_text(at: &str, kind: &str) -> String {
    format!("{at}: '{kind}' content is not supported; send text only.")
}

/// The text of a message's `content`: a string, or text parts joined by
/// line breaks; `null` is empty.
fn content_text(content: &Value, at: &str) -> Result<String, String> {
    let parts = match content {
        Value::Null => return Ok(String::new()),
        Value::String(s) => return Ok(s.clone()),
        Value::Array(parts) => parts,
        _ => {
            return Err(format!(
                "{at}.content must be a string or an array of parts."
            ))
        }
    };
    let mut texts = Vec::with_capacity(parts.len());
    for p in parts {
        match p["type"].as_str() {
            Some("text" | "input_text" | "output_text") => match p["text"].as_str() {
                Some(t) => texts.push(t),
                None => return Err(format!("{at}: a text part has no `text`.")),
            },
            Some(kind) => return Err(not_text(at, kind)),
            None => return Err(format!("{at}: a content part has no `type`.")),
        }
    }
    Ok(texts.join("\n"))
}

/// A conversation being folded into one turn.
#[derive(Default)]
struct Fold {
    system: Vec<String>,
    /// (is the user's, text), in order.
    entries: Vec<(bool, String)>,
}

impl Fold {
    fn system(&mut self, text: String) {
        if !text.trim().is_empty() {
            self.system.push(text);
        }
    }

    fn entry(&mut self, user: bool, text: String) {
        self.entries.push((user, text));
    }

    /// The turn's message and extra system prompt. The last `user`
    /// message is the turn; what follows it (an assistant prefill) is
    /// dropped, what precedes it is context.
    fn finish(self, field: &str) -> Result<(String, Option<String>), String> {
        let missing = || format!("Missing user message in `{field}`.");
        let at = self
            .entries
            .iter()
            .rposition(|(user, _)| *user)
            .ok_or_else(missing)?;
        let current = &self.entries[at].1;
        if current.trim().is_empty() {
            return Err(missing());
        }
        let earlier: Vec<&(bool, String)> = self.entries[..at]
            .iter()
            .filter(|(_, t)| !t.trim().is_empty())
            .collect();
        let message = if earlier.is_empty() {
            current.clone()
        } else {
            let mut m = format!("{HISTORY_HEAD}\n");
            for (user, text) in earlier {
                let who = if *user { "User" } else { "Assistant" };
                m.push_str(&format!("{who}: {text}\n"));
            }
            m.push_str(&format!("\n{CURRENT_HEAD}\nUser: {current}"));
            m
        };
        let system = (!self.system.is_empty()).then(|| self.system.join("\n\n"));
        Ok((message, system))
    }
}
