//! `/v1/chat/completions` turns: answered whole and streamed (parsed
//! from the raw SSE), the sessions and events they leave for WebSocket
//! clients, a failed run, a client that goes away (its run is aborted)
//! and the concurrency cap shared with WebSocket runs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{both, chat_body, json_of, post, reply, request, sse, start};
use crate::runs::op;
use crate::util::fake_openai::{Behaviour, FakeOpenAi, PROMPT_TOKENS};
use crate::util::{rand_id, Gateway};

#[test]
fn a_chat_completion_answers_the_agents_reply_with_its_usage() {
    let up = FakeOpenAi::start(reply(&["Hello", " from", " the fake."]));
    let gw = start(&up, both(), json!({}));
    let body = json!({"model": "openclaw/default", "messages": [
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "reply"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]}]});
    let (status, headers, text) = post(&gw, "/v1/chat/completions", &body, &[]);
    assert_eq!(status, 200, "{text}");
    assert!(headers["content-type"].starts_with("application/json"));
    let v = json_of(&text);
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl_"), "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "openclaw/default");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Hello from the fake."},
                "finish_reason": "stop"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 3, "total_tokens": PROMPT_TOKENS + 3})
    );
    // Upstream: the system message joined the system prompt; the earlier
    // turns came as context above the last user message.
    let sent = &up.requests()[0]["messages"];
    let system = sent[0]["content"].as_str().unwrap();
    assert!(system.ends_with("Answer in English."), "{system}");
    let user = sent.as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap();
    assert!(user.contains("User: first\nAssistant: reply\n"), "{user}");
    assert!(user.ends_with("User: second"), "{user}");
    // Neither the secret nor what was said reaches the log.
    let log = gw.stderr_lines().join("\n");
    for secret in [gw.token().as_str(), "Answer in English.", "Hello from"] {
        assert!(!log.contains(secret), "{secret:?} in the log: {log}");
    }
}

#[test]
fn a_streamed_chat_completion_sends_the_role_deltas_finish_usage_and_done() {
    let up = FakeOpenAi::start(Behaviour::Reply {
        pieces: vec!["one ".into(), "two ".into(), "three".into()],
        gap_ms: 50,
    });
    let gw = start(&up, both(), json!({}));
    let body = chat_body(
        "count",
        json!({"stream": true, "stream_options": {"include_usage": true}}),
    );
    let (status, headers, text) = post(&gw, "/v1/chat/completions", &body, &[]);
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    let events = sse(&text);
    assert!(events.iter().all(|(name, _)| name.is_none()), "{text}");
    assert_eq!(events.last().unwrap().1, "[DONE]", "{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| json_of(d))
        .collect();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl_"));
    for c in &chunks {
        assert_eq!(
            (c["id"].as_str(), &c["object"]),
            (Some(id), &json!("chat.completion.chunk"))
        );
        assert_eq!(c["model"], "openclaw");
    }
    assert_eq!(
        chunks[0]["choices"],
        json!([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}])
    );
    let n = chunks.len();
    let content: String = chunks[1..n - 2]
        .iter()
        .map(|c| {
            assert_eq!(c["choices"][0]["finish_reason"], Value::Null, "{c}");
            c["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(content, "one two three");
    assert_eq!(
        chunks[n - 2]["choices"],
        json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    );
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert_eq!(chunks[n - 1]["usage"]["completion_tokens"], 3);
    assert_eq!(chunks[n - 1]["usage"]["prompt_tokens"], PROMPT_TOKENS);
    // Without include_usage there is no usage chunk.
    let (_, _, text) = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("again", json!({"stream": true})),
        &[],
    );
    let events = sse(&text);
    let last = json_of(&events[events.len() - 2].1);
    assert_eq!(last["choices"][0]["finish_reason"], "stop", "{text}");
}

#[test]
fn a_users_turns_run_in_one_session_that_websocket_clients_see() {
    let up = FakeOpenAi::start(reply(&["Hi Alice."]));
    let gw = start(&up, both(), json!({}));
    let mut op = op(&gw);
    let body = chat_body("hello", json!({"user": "alice"}));
    for _ in 0..2 {
        let (status, _, text) = post(&gw, "/v1/chat/completions", &body, &[]);
        assert_eq!(status, 200, "{text}");
    }
    let key = "agent:main:openai-user:alice";
    let fin = op.wait_event("chat", Duration::from_secs(10), |e| {
        e["payload"]["sessionKey"] == key && e["payload"]["state"] == "final"
    });
    assert_eq!(fin["payload"]["message"]["content"][0]["text"], "Hi Alice.");
    assert!(fin["payload"]["runId"]
        .as_str()
        .unwrap()
        .starts_with("chatcmpl_"));
    let l = op.call("sessions.list", Some(json!({"limit": 50})));
    let keys: Vec<&str> = l["payload"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [key], "{l}");
    let h = op.call("chat.history", Some(json!({"sessionKey": key})));
    assert_eq!(h["payload"]["messages"].as_array().unwrap().len(), 4, "{h}");
    // Without `user` each request is a fresh session; /v1/responses has
    // its own prefix; a header names the session outright.
    post(&gw, "/v1/chat/completions", &chat_body("x", json!({})), &[]);
    post(
        &gw,
        "/v1/responses",
        &json!({"input": "x", "user": "bob"}),
        &[],
    );
    let header = [("x-openclaw-session-key", "agent:main:picked")];
    assert_eq!(
        post(
            &gw,
            "/v1/chat/completions",
            &chat_body("x", json!({})),
            &header
        )
        .0,
        200
    );
    let l = op.call("sessions.list", Some(json!({"limit": 50})));
    let keys: Vec<String> = l["payload"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_string())
        .collect();
    assert!(
        keys.iter().any(|k| k.starts_with("agent:main:openai:")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"agent:main:openresponses-user:bob".to_string()),
        "{keys:?}"
    );
    assert!(keys.contains(&"agent:main:picked".to_string()), "{keys:?}");
}

#[test]
fn a_failed_run_is_a_500_or_an_error_event_in_the_stream() {
    let up = FakeOpenAi::start(Behaviour::Status(
        500,
        r#"{"error":{"message":"boom"}}"#.into(),
    ));
    let gw = start(&up, both(), json!({}));
    let (status, _, text) = post(&gw, "/v1/chat/completions", &chat_body("x", json!({})), &[]);
    assert_eq!(status, 500, "{text}");
    let e = json_of(&text);
    assert_eq!(e["error"]["type"], "api_error");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("500"),
        "{e}"
    );
    let (status, _, text) = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("x", json!({"stream": true})),
        &[],
    );
    assert_eq!(status, 200);
    let events = sse(&text);
    let n = events.len();
    assert_eq!(events[n - 1].1, "[DONE]", "{text}");
    assert_eq!(
        json_of(&events[n - 2].1)["error"]["type"],
        "api_error",
        "{text}"
    );
    assert_eq!(
        json_of(&events[0].1)["choices"][0]["delta"]["role"],
        "assistant"
    );
    let (status, _, text) = post(&gw, "/v1/responses", &json!({"input": "x"}), &[]);
    assert_eq!(status, 500, "{text}");
    let v = json_of(&text);
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("500"),
        "{v}"
    );
}

/// Sends a turn on a socket of its own, to be read (or dropped) by the
/// test.
fn open_turn(gw: &Gateway, path: &str, body: &Value) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request(gw, "POST", path, &body.to_string(), &[]).as_bytes())
        .unwrap();
    s
}

/// Reads `s` until `needle` has arrived; what came.
fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = s.read(&mut buf).expect("read the stream");
        assert!(
            n > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_client_that_goes_away_aborts_its_run_and_the_upstream_call() {
    let up = FakeOpenAi::start(Behaviour::Stall);
    let gw = start(&up, both(), json!({}));
    let mut op = op(&gw);
    for (i, stream) in [true, false].into_iter().enumerate() {
        let user = format!("leaver-{}", rand_id());
        let body = chat_body("wait", json!({"stream": stream, "user": user}));
        let mut s = open_turn(&gw, "/v1/chat/completions", &body);
        if stream {
            read_until(&mut s, "thinking");
        } else {
            assert_eq!(
                up.wait_requests(i + 1, Duration::from_secs(10)).len(),
                i + 1
            );
        }
        assert_eq!(up.open_connections(), 1);
        let t0 = Instant::now();
        drop(s);
        let key = format!("agent:main:openai-user:{user}");
        op.wait_event("chat", Duration::from_secs(5), |e| {
            e["payload"]["sessionKey"] == key.as_str() && e["payload"]["state"] == "aborted"
        });
        assert!(
            up.wait_closed(Duration::from_secs(3)),
            "the upstream call stayed open"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "stream {stream}: {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn past_the_shared_concurrency_cap_a_turn_is_refused_with_retry_after() {
    let up = FakeOpenAi::start(Behaviour::Stall);
    let gw = start(&up, both(), json!({"maxConcurrent": 1}));
    let mut op = op(&gw);
    // A WebSocket run holds the one slot.
    let key = format!("slot-{}", rand_id());
    op.call(
        "chat.send",
        Some(json!({"sessionKey": "agent:main:holder", "message": "hold", "idempotencyKey": key})),
    );
    op.wait_event("chat", Duration::from_secs(10), |e| {
        e["payload"]["runId"] == key.as_str() && e["payload"]["state"] == "delta"
    });
    for (path, body) in [
        ("/v1/chat/completions", chat_body("x", json!({}))),
        (
            "/v1/chat/completions",
            chat_body("x", json!({"stream": true})),
        ),
        ("/v1/responses", json!({"input": "x"})),
    ] {
        let (status, headers, text) = post(&gw, path, &body, &[]);
        assert_eq!(status, 503, "{path}: {text}");
        assert_eq!(headers["retry-after"], "1");
        let e = json_of(&text);
        assert_eq!(e["error"]["type"], "api_error");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("maxConcurrent"),
            "{e}"
        );
    }
    assert_eq!(
        up.requests().len(),
        1,
        "the refused turns never reached the upstream"
    );
    op.call(
        "chat.abort",
        Some(json!({"sessionKey": "agent:main:holder"})),
    );
}
