//! What a run tells its watchers: the `agent` event streams (lifecycle,
//! assistant, usage) with their per-run `seq`, and the `chat` events
//! (delta, final, aborted, error) that reuse the `seq` of the agent event
//! behind them. Streamed text is paced: the first piece goes out at once,
//! later ones at most every 75 ms (what the reference coalesces to), and a
//! last delta flushes what is left right before the final. Deltas may be
//! dropped for a slow reader; lifecycle events and finals never are.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::protocol::SCOPE_READ;
use crate::state::{now_ms, Audience, Delivery, QueuedEvent, Shared};

/// How often streamed text goes out at most.
pub const PACE: Duration = Duration::from_millis(75);

/// One run's event stream.
pub struct Emitter<'a> {
    shared: &'a Shared,
    run_id: Arc<str>,
    session_key: Arc<str>,
    agent_id: Arc<str>,
    session_id: String,
    seq: u64,
    /// The reply so far, and how much of it was sent.
    text: String,
    sent: usize,
    last_sent: Option<Instant>,
    item: String,
    /// The run's HTTP watcher, which gets every piece unpaced.
    tap: Option<crate::agent::Tap>,
}

impl<'a> Emitter<'a> {
    pub fn new(
        shared: &'a Shared,
        run_id: Arc<str>,
        session_key: Arc<str>,
        agent_id: Arc<str>,
    ) -> Self {
        let item = format!("{}:0", crate::sys::uuid_v4());
        Emitter {
            shared,
            run_id,
            session_key,
            agent_id,
            session_id: String::new(),
            seq: 0,
            text: String::new(),
            sent: 0,
            last_sent: None,
            item,
            tap: None,
        }
    }

    pub fn set_tap(&mut self, tap: Option<crate::agent::Tap>) {
        self.tap = tap;
    }

    pub fn set_session_id(&mut self, id: &str) {
        self.session_id = id.to_string();
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Sends one `agent` event; returns its per-run `seq`.
    pub fn agent(&mut self, stream: &str, data: Value, delivery: Delivery) -> u64 {
        self.seq += 1;
        let mut p = json!({
            "runId": &*self.run_id, "seq": self.seq, "stream": stream, "ts": now_ms(),
            "data": data, "sessionKey": &*self.session_key, "agentId": &*self.agent_id,
        });
        if !self.session_id.is_empty() {
            p["sessionId"] = json!(self.session_id);
        }
        self.broadcast("agent", &p, delivery);
        self.seq
    }

    /// Sends one `chat` event of `state` with `extra` keys, under the
    /// `seq` of the agent event behind it.
    pub fn chat(&mut self, state: &str, extra: Value, delivery: Delivery) {
        let mut p = json!({
            "runId": &*self.run_id, "sessionKey": &*self.session_key,
            "agentId": &*self.agent_id, "seq": self.seq, "state": state,
        });
        if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), extra) {
            p.extend(extra);
        }
        self.broadcast("chat", &p, delivery);
    }

    fn broadcast(&self, name: &'static str, payload: &Value, delivery: Delivery) {
        let ev = QueuedEvent::new(name, payload.to_string(), None);
        self.shared.send(Audience::Scope(SCOPE_READ), ev, delivery);
    }

    /// A piece of the reply: sent at once when the last send is at least
    /// [`PACE`] ago, else kept for the next send.
    pub fn piece(&mut self, piece: &str) {
        self.text.push_str(piece);
        if let Some(t) = &self.tap {
            t.piece(piece);
        }
        if self.last_sent.is_none_or(|t| t.elapsed() >= PACE) {
            self.flush();
        }
    }

    /// Sends the text not sent yet, if any, as an `assistant` event and a
    /// `chat` delta.
    pub fn flush(&mut self) {
        if self.sent >= self.text.len() {
            return;
        }
        let delta = self.text[self.sent..].to_string();
        self.sent = self.text.len();
        self.last_sent = Some(Instant::now());
        let data = json!({"text": self.text, "delta": delta, "itemId": self.item});
        self.agent("assistant", data, Delivery::Lossy);
        let extra = json!({"deltaText": delta, "message": message(&self.text)});
        self.chat("delta", extra, Delivery::Lossy);
    }
}

/// The assistant message as chat events carry it.
pub fn message(text: &str) -> Value {
    json!({"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": now_ms()})
}
