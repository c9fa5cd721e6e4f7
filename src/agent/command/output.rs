//! Reading a CLI's stdout into a reply (PROTOCOL-AGENTS §10.2 "Parsing"):
//! the text, the CLI's session id and the token usage, or the error the
//! CLI reported. Pure: text in, reply out.
//!
//! Records are handled one at a time, parsed to their top-level keys with
//! the values left as JSON text, and only the few values read are parsed
//! further. Memory beyond the (at most 1 MiB) stdout: one record's keys,
//! the texts collected (no more than stdout holds), and for a top-level
//! array one 16-byte reference per element.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::Reply;
use crate::config::backend::OutputKind;

/// A record's top-level keys, each value still JSON text.
type Record<'a> = BTreeMap<String, &'a RawValue>;

#[derive(Deserialize)]
struct Usage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

fn field<'de, T: Deserialize<'de>>(r: &Record<'de>, key: &str) -> Option<T> {
    serde_json::from_str(r.get(key)?.get()).ok()
}

/// Reads the CLI's stdout (§10.2 "Parsing"). `text`: all of stdout,
/// trimmed. `json`: one document (an array is a list of records), else
/// one record per line; `jsonl`: one record per line, lines that are not
/// JSON skipped. Output with no JSON record at all is taken as text, as
/// the reference does. A `type:"result"` record's text is the reply;
/// without one, the texts of all records joined by newlines.
pub fn parse_output(kind: OutputKind, stdout: &str, id_fields: &[&str]) -> Result<Reply, String> {
    let trimmed = stdout.trim();
    let as_text = Reply {
        text: trimmed.to_owned(),
        session_id: None,
        usage: None,
    };
    if kind == OutputKind::Text {
        return Ok(as_text);
    }
    let mut scan = Scan {
        id_fields,
        records: 0,
        reply: Reply {
            text: String::new(),
            session_id: None,
            usage: None,
        },
        texts: Vec::new(),
        result: None,
    };
    let whole = match kind {
        OutputKind::Json => serde_json::from_str::<&RawValue>(trimmed).ok(),
        _ => None,
    };
    match whole {
        Some(doc) => match serde_json::from_str::<Vec<&RawValue>>(doc.get()) {
            Ok(items) => {
                for item in items {
                    scan.take(item.get())?;
                }
            }
            Err(_) => scan.take(doc.get())?,
        },
        None => {
            for line in trimmed.lines() {
                scan.take(line.trim())?;
            }
        }
    }
    if scan.records == 0 {
        return Ok(as_text);
    }
    let mut reply = scan.reply;
    reply.text = scan
        .result
        .unwrap_or_else(|| scan.texts.join("\n"))
        .trim()
        .to_owned();
    Ok(reply)
}

/// What the records read so far say.
struct Scan<'f> {
    id_fields: &'f [&'f str],
    records: usize,
    /// The session id (the first found) and usage (the last found).
    reply: Reply,
    texts: Vec<String>,
    /// The text of the last `type:"result"` record.
    result: Option<String>,
}

impl Scan<'_> {
    /// Reads one record; text that is not a JSON object is skipped.
    fn take(&mut self, text: &str) -> Result<(), String> {
        let Some(r) = record(text) else {
            return Ok(());
        };
        self.records += 1;
        let kind: Option<String> = field(&r, "type");
        let subtype: Option<String> = field(&r, "subtype");
        let is_result = kind.as_deref() == Some("result");
        if field::<bool>(&r, "is_error") == Some(true)
            || kind.as_deref() == Some("error")
            || (is_result && subtype.as_deref().is_some_and(|s| s.starts_with("error")))
        {
            return Err(error_text(&r, subtype.as_deref()));
        }
        if self.reply.session_id.is_none() {
            self.reply.session_id = self
                .id_fields
                .iter()
                .filter_map(|f| field::<String>(&r, f))
                .map(|id| id.trim().to_owned())
                .find(|id| !id.is_empty());
        }
        if let Some(u) = field::<Usage>(&r, "usage") {
            if u.input_tokens.is_some() || u.output_tokens.is_some() {
                let (i, o) = (u.input_tokens.unwrap_or(0), u.output_tokens.unwrap_or(0));
                self.reply.usage = Some((i, o));
            }
        }
        let text = ["message", "content", "result", "response"]
            .iter()
            .filter_map(|k| field::<Value>(&r, k))
            .map(|v| collect_text(&v, 0))
            .find(|t| !t.trim().is_empty());
        match text {
            Some(t) if is_result => self.result = Some(t),
            Some(t) => self.texts.push(t),
            None => {}
        }
        Ok(())
    }
}

/// An object record, or None for anything else.
fn record(text: &str) -> Option<Record<'_>> {
    if !text.starts_with('{') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// A string; an array of strings or `{text}` parts, concatenated; an
/// object's `text`, `message` (a string) or `content`. Two levels deep at
/// most, which covers `{"message":{"content":[{"text":...}]}}`.
fn collect_text(v: &Value, depth: u8) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => o.get("text").and_then(Value::as_str),
                _ => None,
            })
            .collect(),
        Value::Object(o) => {
            if let Some(s) = ["text", "message"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str))
            {
                return s.to_owned();
            }
            match o.get("content") {
                Some(c) if depth < 2 => collect_text(c, depth + 1),
                _ => String::new(),
            }
        }
        _ => String::new(),
    }
}

/// What an error record says, in the CLI's words when it has any.
fn error_text(r: &Record, subtype: Option<&str>) -> String {
    let said = ["error", "result", "message", "content", "response"]
        .iter()
        .filter_map(|k| field::<Value>(r, k))
        .map(|v| collect_text(&v, 0).trim().to_owned())
        .find(|t| !t.is_empty());
    match (said, subtype) {
        (Some(t), _) => t,
        (None, Some(s)) => format!("backend reported an error ({s})"),
        (None, None) => "backend reported an error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = r#"{"type":"result","subtype":"success","is_error":false,"result":"Hello from the fake CLI.","session_id":"abc","usage":{"input_tokens":10,"output_tokens":5}}"#;

    const IDS: &[&str] = crate::config::backend::DEFAULT_SESSION_ID_FIELDS;

    #[test]
    fn the_reference_result_line_is_the_reply() {
        let reply = parse_output(OutputKind::Json, &format!("{REFERENCE}\n"), IDS).expect("reply");
        assert_eq!(
            reply,
            Reply {
                text: "Hello from the fake CLI.".into(),
                session_id: Some("abc".into()),
                usage: Some((10, 5)),
            }
        );
        let jsonl = parse_output(OutputKind::Jsonl, REFERENCE, IDS).expect("reply");
        assert_eq!(jsonl.text, "Hello from the fake CLI.");
    }

    #[test]
    fn a_jsonl_stream_takes_the_first_id_the_last_usage_and_the_result() {
        let stream = [
            r#"{"type":"system","subtype":"init","session_id":"s-1"}"#,
            "not json, a banner",
            r#"{"type":"assistant","session_id":"s-2","message":{"role":"assistant","content":[{"type":"text","text":"Hel"},{"type":"text","text":"lo"}]},"usage":{"input_tokens":3,"output_tokens":1}}"#,
            r#"{"type":"result","subtype":"success","result":"Hello","usage":{"input_tokens":7,"output_tokens":2}}"#,
        ]
        .join("\n");
        let reply = parse_output(OutputKind::Jsonl, &stream, IDS).expect("reply");
        assert_eq!(reply.text, "Hello");
        assert_eq!(reply.session_id.as_deref(), Some("s-1"));
        assert_eq!(reply.usage, Some((7, 2)));
    }

    #[test]
    fn without_a_result_record_the_texts_are_joined() {
        let stream = "{\"content\":\"one\"}\n{\"response\":\"two\"}\n{\"message\":[\"th\",{\"text\":\"ree\"}]}\n";
        let reply = parse_output(OutputKind::Jsonl, stream, IDS).expect("reply");
        assert_eq!(reply.text, "one\ntwo\nthree");
        // json falls back to one record per line when stdout is not one doc.
        let json = parse_output(OutputKind::Json, stream, IDS).expect("reply");
        assert_eq!(json.text, "one\ntwo\nthree");
        let array = r#"[{"conversationId":"c"},{"type":"result","result":" a "}]"#;
        let reply = parse_output(OutputKind::Json, array, IDS).expect("reply");
        assert_eq!(
            (reply.text.as_str(), reply.session_id.as_deref()),
            ("a", Some("c"))
        );
    }

    #[test]
    fn error_records_are_errors() {
        let cases = [
            (
                r#"{"type":"result","subtype":"success","is_error":true,"result":"Credit balance too low"}"#,
                "Credit balance too low",
            ),
            (
                r#"{"type":"error","error":{"type":"overloaded","message":"Overloaded"}}"#,
                "Overloaded",
            ),
            (
                r#"{"type":"result","subtype":"error_max_turns","session_id":"x"}"#,
                "backend reported an error (error_max_turns)",
            ),
            (r#"{"type":"error"}"#, "backend reported an error"),
        ];
        for (line, want) in cases {
            let got = parse_output(OutputKind::Jsonl, line, IDS);
            assert_eq!(got, Err(want.to_string()), "{line}");
        }
    }

    #[test]
    fn text_output_and_output_that_is_not_json_are_taken_as_text() {
        let reply = parse_output(OutputKind::Text, "  {\"result\":\"x\"}\n", IDS).expect("text");
        assert_eq!(reply.text, "{\"result\":\"x\"}");
        assert_eq!(reply.session_id, None);
        let plain = parse_output(OutputKind::Json, "\nJust words.\n", IDS).expect("text");
        assert_eq!(plain.text, "Just words.");
        let custom = parse_output(
            OutputKind::Json,
            r#"{"thread_id":"t","result":"r"}"#,
            &["thread_id"],
        );
        assert_eq!(custom.expect("reply").session_id.as_deref(), Some("t"));
    }
}
