//! One turn against an OpenAI-compatible chat completions endpoint: the
//! request the reference sends (model, `stream:true` with usage, the
//! messages, `max_completion_tokens` when configured), and the streamed
//! `chat.completion.chunk` events mapped to pieces as they arrive, so the
//! run can forward each text delta at once. An answer that is not 2xx, an
//! `error` chunk, or a stream that stops before its finish is the run's
//! error; the API key never appears in one.
//!
//! Memory: the HTTP client's 16 KiB buffer, one SSE event (1 MiB at most),
//! a 4 KiB read buffer, and at most 1 MiB of a non-streamed answer.

use std::fmt;
use std::io::{ErrorKind, Read};
use std::time::Duration;

use serde_json::{json, Value};

use crate::agent::{http, sse, Cancel};

/// Characters of upstream text quoted in an error message.
const PREVIEW_CHARS: usize = 200;
/// Bytes of an error answer read for its preview.
const ERROR_BODY: usize = 4096;
/// How long an error answer's body may take to arrive: it only decorates
/// the message, so a slow one is cut short rather than waited for.
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);
/// The largest answer taken whole, when an upstream ignores `stream:true`.
const MAX_WHOLE: usize = 1024 * 1024;

/// A configured provider (`models.providers.<id>`).
#[derive(Clone)]
pub struct Provider {
    /// Up to the version segment, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Sent with every request, after (and over) clawgate's own.
    pub headers: Vec<(String, String)>,
    /// Bounds one whole request, the streamed reply included.
    pub timeout: Duration,
    /// What an `https://` base URL's certificate must chain to; `None`
    /// for the system's CA bundle.
    pub trust: Option<http::Trust>,
}

/// Written by hand so the key cannot reach a log through `{:?}`.
impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("headers", &self.headers.len())
            .field("timeout", &self.timeout)
            .field("trust", &self.trust.as_ref().map(|_| "<given>"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `"system"`, `"user"` or `"assistant"`.
    pub role: &'static str,
    pub text: String,
}

/// What the stream gives, in the order it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A non-empty piece of the reply's text.
    Text(String),
    Usage {
        input: u64,
        output: u64,
        total: u64,
    },
    /// The finish reason: `stop`, `length`, …
    Finish(String),
    /// The upstream's id for the reply, given once.
    ResponseId(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The run's [`Cancel`] fired; the upstream connection is closed.
    Cancelled,
    /// The run's error message.
    Error(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Cancelled => f.write_str("cancelled"),
            Failure::Error(m) => f.write_str(m),
        }
    }
}

/// Runs one chat completion, calling `on` with each piece as it arrives.
/// It returns when the stream ends (`[DONE]`, or the close after a finish
/// reason), fails, times out after `p.timeout`, or `cancel` fires.
pub fn complete(
    p: &Provider,
    model: &str,
    messages: &[Message],
    max_tokens: Option<u64>,
    cancel: &Cancel,
    on: &mut dyn FnMut(Piece),
) -> Result<(), Failure> {
    let result = turn(p, model, messages, max_tokens, cancel, on);
    // One exit for every message, so no path can leak the key: an upstream
    // may quote it back in an error.
    match (result, p.api_key.as_deref()) {
        (Err(Failure::Error(m)), Some(key)) => Err(Failure::Error(hide_key(m, key))),
        (result, _) => result,
    }
}

/// The message with the key replaced by `***`, also where a preview was
/// cut inside it (its start just before the closing `…`). A key under 4
/// characters is no secret worth mangling every message for.
fn hide_key(message: String, key: &str) -> String {
    if key.len() < 4 {
        return message;
    }
    let message = message.replace(key, "***");
    let Some(cut) = message.strip_suffix('…') else {
        return message;
    };
    // Bounded by the key's length.
    for n in (4..key.len()).rev() {
        if let Some(start) = key.get(..n).and_then(|k| cut.strip_suffix(k)) {
            return format!("{start}***…");
        }
    }
    message
}

fn turn(
    p: &Provider,
    model: &str,
    messages: &[Message],
    max_tokens: Option<u64>,
    cancel: &Cancel,
    on: &mut dyn FnMut(Piece),
) -> Result<(), Failure> {
    let url = format!("{}/chat/completions", p.base_url.trim_end_matches('/'));
    let body = request_body(model, messages, max_tokens);
    let trust = p.trust.as_ref();
    let mut resp =
        http::post(&url, &request_headers(p), &body, p.timeout, cancel, trust).map_err(failure)?;
    if !(200..300).contains(&resp.status) {
        return Err(status_failure(&mut resp));
    }
    let json = resp.header("content-type").is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    if json {
        return whole(&mut resp, on);
    }
    stream(&mut resp, on)
}

fn failure(e: http::Error) -> Failure {
    match e {
        http::Error::Cancelled => Failure::Cancelled,
        http::Error::Failed(m) => Failure::Error(m),
    }
}

/// The JSON body of the request.
fn request_body(model: &str, messages: &[Message], max_tokens: Option<u64>) -> Vec<u8> {
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| json!({"role": m.role, "content": m.text}))
        .collect();
    let mut body = json!({
        "model": model,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": messages,
    });
    if let (Some(n), Some(obj)) = (max_tokens, body.as_object_mut()) {
        obj.insert("max_completion_tokens".into(), n.into());
    }
    body.to_string().into_bytes()
}

/// clawgate's headers, each replaced by a configured header of the same
/// name, then the rest of the configured ones.
fn request_headers(p: &Provider) -> Vec<(String, String)> {
    let mut all = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Accept".to_string(), "text/event-stream".to_string()),
    ];
    if let Some(key) = &p.api_key {
        all.push(("Authorization".into(), format!("Bearer {key}")));
    }
    all.retain(|(k, _)| !p.headers.iter().any(|(c, _)| c.eq_ignore_ascii_case(k)));
    all.extend(p.headers.iter().cloned());
    all
}

/// At most [`PREVIEW_CHARS`] of upstream text on one line: control
/// characters (a line break could forge a log line) become spaces.
fn preview(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.trim().chars().enumerate() {
        if i == PREVIEW_CHARS {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// Reads up to `limit` bytes of the body; what arrived before a failure
/// is kept beside it.
fn read_some(resp: &mut http::Response, limit: usize) -> (Vec<u8>, Option<http::Error>) {
    let mut body = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded by `limit` and by the request's deadline.
    while body.len() < limit {
        let want = buf.len().min(limit - body.len());
        match resp.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return (body, Some(http::Error::from_io(e))),
        }
    }
    (body, None)
}

/// "upstream answered 401 Unauthorized: <the body's start>".
fn status_failure(resp: &mut http::Response) -> Failure {
    resp.shorten(ERROR_BODY_WAIT);
    let (body, err) = read_some(resp, ERROR_BODY);
    if err == Some(http::Error::Cancelled) {
        return Failure::Cancelled;
    }
    let mut msg = format!("upstream answered {}", resp.status);
    let reason = preview(&resp.reason);
    if !reason.is_empty() {
        msg = format!("{msg} {reason}");
    }
    let body = preview(&String::from_utf8_lossy(&body));
    if !body.is_empty() {
        msg = format!("{msg}: {body}");
    }
    Failure::Error(msg)
}

/// What the reply has shown so far, across its chunks.
#[derive(Debug, Default)]
struct Turn {
    id_sent: bool,
    finished: bool,
}

/// The pieces of one `data:` payload: a `chat.completion.chunk` (or, for an
/// upstream that ignored `stream`, a whole `chat.completion`, whose
/// `message` stands where a chunk's `delta` does). An `error` object is the
/// turn's error, with the upstream's own message.
fn chunk_pieces(data: &str, turn: &mut Turn) -> Result<Vec<Piece>, String> {
    let v: Value = serde_json::from_str(data).map_err(|_| {
        format!(
            "upstream sent a data line that is not json: {}",
            preview(data)
        )
    })?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let text = match err {
            Value::String(s) => s.as_str(),
            _ => err.get("message").and_then(Value::as_str).unwrap_or(""),
        };
        return Err(match preview(text) {
            t if t.is_empty() => "upstream sent an error without a message".into(),
            t => t,
        });
    }
    let mut pieces = Vec::new();
    if let Some(id) = v.get("id").and_then(Value::as_str) {
        if !turn.id_sent && !id.is_empty() {
            turn.id_sent = true;
            pieces.push(Piece::ResponseId(id.into()));
        }
    }
    if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
        let said = choice.get("delta").or_else(|| choice.get("message"));
        let text = said.and_then(|d| d.get("content")).and_then(Value::as_str);
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            pieces.push(Piece::Text(text.into()));
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            turn.finished = true;
            pieces.push(Piece::Finish(reason.into()));
        }
    }
    if let Some(usage) = v.get("usage").filter(|u| u.is_object()) {
        let n = |k: &str| usage.get(k).and_then(Value::as_u64);
        let (input, output) = (
            n("prompt_tokens").unwrap_or(0),
            n("completion_tokens").unwrap_or(0),
        );
        let total = n("total_tokens").unwrap_or(input.saturating_add(output));
        pieces.push(Piece::Usage {
            input,
            output,
            total,
        });
    }
    Ok(pieces)
}

/// Reads the event stream to its end, handing on each piece.
fn stream(resp: &mut http::Response, on: &mut dyn FnMut(Piece)) -> Result<(), Failure> {
    let mut parser = sse::Parser::new();
    let mut turn = Turn::default();
    let mut events = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded by the request's deadline, which every read checks.
    loop {
        let n = match resp.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(failure(http::Error::from_io(e))),
        };
        if n == 0 {
            // Some servers close right after the finish without `[DONE]`.
            return match turn.finished {
                true => Ok(()),
                false => Err(Failure::Error("upstream stream ended early".into())),
            };
        }
        parser
            .feed(&buf[..n], &mut events)
            .map_err(|e| Failure::Error(e.to_string()))?;
        for event in events.drain(..) {
            let data = event.data.trim();
            if data == "[DONE]" {
                return Ok(());
            }
            if data.is_empty() {
                continue;
            }
            if event.kind == "error" && serde_json::from_str::<Value>(data).is_err() {
                return Err(Failure::Error(preview(data)));
            }
            for piece in chunk_pieces(data, &mut turn).map_err(Failure::Error)? {
                on(piece);
            }
        }
    }
}

/// An answer given whole as JSON although a stream was asked for.
fn whole(resp: &mut http::Response, on: &mut dyn FnMut(Piece)) -> Result<(), Failure> {
    let (body, err) = read_some(resp, MAX_WHOLE + 1);
    if let Some(e) = err {
        return Err(failure(e));
    }
    if body.len() > MAX_WHOLE {
        return Err(Failure::Error(format!(
            "upstream answered with more than {} MiB",
            MAX_WHOLE / (1024 * 1024)
        )));
    }
    let mut turn = Turn::default();
    let pieces =
        chunk_pieces(&String::from_utf8_lossy(&body), &mut turn).map_err(Failure::Error)?;
    if !turn.finished && !pieces.iter().any(|p| matches!(p, Piece::Text(_))) {
        return Err(Failure::Error("upstream answered without a reply".into()));
    }
    pieces.into_iter().for_each(on);
    Ok(())
}

#[cfg(test)]
mod tests;
