//! `POST /v1/chat/completions`: one turn of an agent, answered whole as a
//! `chat.completion` or streamed as `chat.completion.chunk` events (the
//! role first, then each new piece of text as it arrives, the finish, the
//! usage when asked, and `[DONE]`). The run is admitted before anything is
//! written, so a refusal is still a plain HTTP error; a failure after the
//! stream's head can only be told in the stream.

use std::net::TcpStream;
use std::sync::Arc;

use serde_json::{json, Value};

use super::super::request::{Request, Routed};
use super::super::response::{stream_end, Reply};
use super::run::{self, Followed, Outcome, Running};
use super::sse::Sse;
use super::{api_error, unix_now, wire};
use crate::state::{Live, Shared};

/// The answer to a run that ended well with no text, as the reference's.
pub(super) const NO_RESPONSE: &str = "No response from OpenClaw.";

pub(super) fn answer(
    shared: &Arc<Shared>,
    live: &Live,
    req: &Request,
    stream: &mut TcpStream,
) -> Routed {
    let (turn, running) = match run::begin(shared, live, req, wire::chat_turn, "chatcmpl", "openai")
    {
        Ok(x) => x,
        Err(r) => return r.into(),
    };
    let at = Chunks {
        id: &running.id,
        model: &turn.model,
        created: unix_now(),
    };
    if turn.stream {
        streamed(
            shared,
            &running,
            &at,
            turn.include_usage,
            req.head.minor,
            stream,
        );
        return Routed::Streamed;
    }
    // The reply is bounded by the run's (which its backend bounds).
    let mut text = String::new();
    match running.follow(shared, stream, |t| {
        text.push_str(t);
        Ok(())
    }) {
        // Nobody is left to answer: the connection just closes.
        Followed::Left => Routed::Streamed,
        Followed::Ended(o) if o.status == "ok" => Reply::json(200, at.whole(&text, &o)).into(),
        Followed::Ended(o) => api_error(500, &o.why()).into(),
    }
}

/// What every chunk of one answer repeats.
struct Chunks<'a> {
    id: &'a str,
    model: &'a str,
    created: u64,
}

impl Chunks<'_> {
    fn whole(&self, text: &str, o: &Outcome) -> Value {
        let content = if text.is_empty() { NO_RESPONSE } else { text };
        json!({"id": self.id, "object": "chat.completion", "created": self.created,
               "model": self.model,
               "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                            "finish_reason": finish_reason(o)}],
               "usage": usage(o)})
    }

    fn chunk(&self, choices: Value) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
               "model": self.model, "choices": choices})
    }

    fn delta(&self, delta: Value, finish: Value) -> Value {
        self.chunk(json!([{"index": 0, "delta": delta, "finish_reason": finish}]))
    }
}

fn finish_reason(o: &Outcome) -> &'static str {
    if o.cut_short() {
        "length"
    } else {
        "stop"
    }
}

fn usage(o: &Outcome) -> Value {
    let (input, output, total) = o.usage;
    json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": total})
}

fn streamed(
    shared: &Shared,
    running: &Running,
    at: &Chunks,
    include_usage: bool,
    minor: u8,
    stream: &mut TcpStream,
) {
    let mut sse = match Sse::start(&mut *stream, minor) {
        Ok(s) => s,
        Err(_) => return running.abort(shared, "its client went away"),
    };
    if sse
        .data(&at.delta(json!({"role": "assistant"}), Value::Null))
        .is_err()
    {
        return running.abort(shared, "its client went away");
    }
    let peer = sse.socket();
    let mut said = false;
    let followed = running.follow(shared, peer, |t| {
        said = true;
        sse.data(&at.delta(json!({"content": t}), Value::Null))
    });
    let o = match followed {
        Followed::Left => return,
        Followed::Ended(o) => o,
    };
    let tail = if o.status == "ok" {
        let mut tail = Vec::new();
        if !said {
            tail.push(at.delta(json!({"content": NO_RESPONSE}), Value::Null));
        }
        tail.push(at.delta(json!({}), json!(finish_reason(&o))));
        if include_usage {
            let mut u = at.chunk(json!([]));
            u["usage"] = usage(&o);
            tail.push(u);
        }
        tail
    } else {
        vec![json!({"error": {"message": o.why(), "type": "api_error"}})]
    };
    if tail.iter().try_for_each(|c| sse.data(c)).is_ok() {
        sse.done();
    }
    stream_end(stream);
}
