//! `POST /v1/responses`: one turn of an agent in the shape of OpenAI's
//! Responses API, answered whole as a `response` object or streamed as
//! its named events (`event: <type>`), each with its `sequence_number`:
//! the response created and in progress, the message item and its text
//! part opened, the text deltas, the part and item closed, then
//! `response.completed`, `response.incomplete` (the model's token limit)
//! or `response.failed`, and `[DONE]`. One message item, one text part:
//! clawgate's runs produce text only.

use std::net::TcpStream;
use std::sync::Arc;

use serde_json::{json, Value};

use super::super::request::{Request, Routed};
use super::super::response::{stream_end, Reply};
use super::chat::NO_RESPONSE;
use super::run::{self, Followed, Outcome, Running};
use super::sse::Sse;
use super::{unix_now, wire};
use crate::state::{Live, Shared};

pub(super) fn answer(
    shared: &Arc<Shared>,
    live: &Live,
    req: &Request,
    stream: &mut TcpStream,
) -> Routed {
    let (turn, running) = match run::begin(
        shared,
        live,
        req,
        wire::responses_turn,
        "resp",
        "openresponses",
    ) {
        Ok(x) => x,
        Err(r) => return r.into(),
    };
    let at = Shape {
        id: &running.id,
        item_id: format!("msg_{}", crate::sys::uuid_v4()),
        model: &turn.model,
        created_at: unix_now(),
    };
    if turn.stream {
        streamed(shared, &running, &at, req.head.minor, stream);
        return Routed::Streamed;
    }
    let mut text = String::new();
    match running.follow(shared, stream, |t| {
        text.push_str(t);
        Ok(())
    }) {
        // Nobody is left to answer: the connection just closes.
        Followed::Left => Routed::Streamed,
        Followed::Ended(o) => {
            let v = at.ended(&text, &o);
            // A failed run is an error to OpenAI's clients, which read its
            // `error.message`; the body is still the whole response.
            let status = if v["status"] == "failed" { 500 } else { 200 };
            Reply::json(status, v).into()
        }
    }
}

/// What the objects of one response share.
struct Shape<'a> {
    id: &'a str,
    item_id: String,
    model: &'a str,
    created_at: u64,
}

impl Shape<'_> {
    /// The response object, its output and fields as given.
    fn response(&self, status: &str, output: Value) -> Value {
        json!({"id": self.id, "object": "response", "created_at": self.created_at,
               "status": status, "model": self.model, "output": output, "usage": null,
               "error": null, "incomplete_details": null})
    }

    /// The message item.
    fn item(&self, status: &str, text: Option<&str>) -> Value {
        let content = match text {
            Some(t) => json!([part(t)]),
            None => json!([]),
        };
        json!({"type": "message", "id": self.item_id, "role": "assistant",
               "status": status, "content": content})
    }

    /// The response as the run ended: completed, incomplete at the
    /// model's limit, or failed.
    fn ended(&self, text: &str, o: &Outcome) -> Value {
        if o.status != "ok" {
            let mut v = self.response("failed", json!([]));
            v["error"] = json!({"code": "api_error", "message": o.why()});
            return v;
        }
        let text = if text.is_empty() { NO_RESPONSE } else { text };
        let status = if o.cut_short() {
            "incomplete"
        } else {
            "completed"
        };
        let mut v = self.response(status, json!([self.item(status, Some(text))]));
        let (input, output, total) = o.usage;
        v["usage"] = json!({"input_tokens": input, "output_tokens": output, "total_tokens": total});
        if o.cut_short() {
            v["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        v
    }

    /// Fields of the events about the one text part.
    fn at_part(&self, mut v: Value) -> Value {
        v["item_id"] = json!(self.item_id);
        v["output_index"] = json!(0);
        v["content_index"] = json!(0);
        v
    }
}

fn part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

/// Numbers the events of one stream.
struct Events<'s, 'a> {
    sse: &'s mut Sse<'a>,
    seq: u64,
}

impl Events<'_, '_> {
    fn send(&mut self, kind: &str, mut v: Value) -> std::io::Result<()> {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.sse.event(kind, &v)
    }
}

fn streamed(shared: &Shared, running: &Running, at: &Shape, minor: u8, stream: &mut TcpStream) {
    let mut sse = match Sse::start(&mut *stream, minor) {
        Ok(s) => s,
        Err(_) => return running.abort(shared, "its client went away"),
    };
    let peer = sse.socket();
    let mut ev = Events {
        sse: &mut sse,
        seq: 0,
    };
    let opened = at.response("in_progress", json!([]));
    let opening = ev
        .send("response.created", json!({"response": opened}))
        .and_then(|()| ev.send("response.in_progress", json!({"response": opened})))
        .and_then(|()| {
            let item = at.item("in_progress", None);
            ev.send(
                "response.output_item.added",
                json!({"output_index": 0, "item": item}),
            )
        })
        .and_then(|()| {
            let v = at.at_part(json!({"part": part("")}));
            ev.send("response.content_part.added", v)
        });
    if opening.is_err() {
        return running.abort(shared, "its client went away");
    }
    // Kept for the closing events, which repeat the whole text.
    let mut text = String::new();
    let followed = running.follow(shared, peer, |t| {
        text.push_str(t);
        let v = at.at_part(json!({"delta": t, "logprobs": []}));
        ev.send("response.output_text.delta", v)
    });
    let o = match followed {
        Followed::Left => return,
        Followed::Ended(o) => o,
    };
    let closed = if o.status == "ok" {
        close_ok(&mut ev, at, &mut text, &o)
    } else {
        let failed = at.ended(&text, &o);
        ev.send("response.failed", json!({"response": failed}))
    };
    if closed.is_ok() {
        sse.done();
    }
    stream_end(stream);
}

/// The closing events of a run that ended well.
fn close_ok(ev: &mut Events, at: &Shape, text: &mut String, o: &Outcome) -> std::io::Result<()> {
    if text.is_empty() {
        text.push_str(NO_RESPONSE);
        let v = at.at_part(json!({"delta": NO_RESPONSE, "logprobs": []}));
        ev.send("response.output_text.delta", v)?;
    }
    let done = at.at_part(json!({"text": text, "logprobs": []}));
    ev.send("response.output_text.done", done)?;
    let v = at.at_part(json!({"part": part(text)}));
    ev.send("response.content_part.done", v)?;
    let whole = at.ended(text, o);
    let item = whole["output"][0].clone();
    ev.send(
        "response.output_item.done",
        json!({"output_index": 0, "item": item}),
    )?;
    let kind = match whole["status"].as_str() {
        Some("incomplete") => "response.incomplete",
        _ => "response.completed",
    };
    ev.send(kind, json!({"response": whole}))
}
