//! Agent runs against the real binary with a fake OpenAI-compatible
//! upstream on loopback: the two-frame `agent` call and its events,
//! `chat.send` with deltas and the history, aborts, timeouts, upstream
//! failures, idempotent retries, the concurrency cap, and transcripts
//! that survive a restart and `kill -9`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::fake_openai::{Behaviour, FakeOpenAi};
use crate::util::{rand_id, Gateway, Operator};

pub fn config(upstream: &FakeOpenAi, extra_defaults: &str) -> String {
    format!(
        r#"{{"gateway":{{"mode":"local"}},
  "models":{{"providers":{{"fake":{{"baseUrl":"{}","apiKey":"${{FAKE_KEY}}","api":"openai-completions",
    "timeoutSeconds":30,"models":[{{"id":"fake-model","name":"Fake Model","contextWindow":32000,"maxTokens":256,
    "input":["text"],"cost":{{"input":0,"output":0}}}}]}}}}}},
  "agents":{{"defaults":{{"model":{{"primary":"fake/fake-model"}}{extra_defaults}}}}}}}"#,
        upstream.base_url()
    )
}

pub fn start(upstream: &FakeOpenAi, extra_defaults: &str) -> Gateway {
    Gateway::with(crate::util::Opts {
        config: Some(&config(upstream, extra_defaults)),
        env: &[("FAKE_KEY", "sk-test-secret")],
        ..Default::default()
    })
}

fn reply(pieces: &[&str]) -> Behaviour {
    Behaviour::Reply {
        pieces: pieces.iter().map(|s| s.to_string()).collect(),
        gap_ms: 0,
    }
}

pub fn op(gw: &Gateway) -> Operator {
    Operator::connect(gw, "cli", &["operator.admin"])
}

fn chat_events<'a>(op: &'a Operator, run: &str) -> Vec<&'a Value> {
    op.events("chat")
        .into_iter()
        .filter(|e| e["payload"]["runId"] == run)
        .collect()
}

#[test]
fn an_agent_turn_answers_twice_and_streams_its_events_in_order() {
    let up = FakeOpenAi::start(reply(&["Hello", " from", " the fake model."]));
    let gw = start(&up, "");
    let mut op = op(&gw);
    let key = format!("k-{}", rand_id());
    let id = op.request(
        "agent",
        Some(
            json!({"message": "hi", "agentId": "main", "deliver": false, "timeout": 60,
                    "idempotencyKey": key}),
        ),
    );
    let accepted = op.response(&id);
    assert_eq!(accepted["ok"], true, "{accepted}");
    let p = &accepted["payload"];
    assert_eq!(p["status"], "accepted");
    assert_eq!(p["runId"], key.as_str(), "runId is the idempotencyKey");
    assert_eq!(p["sessionKey"], "agent:main:main");
    let fin = op.response(&id);
    assert_eq!(fin["ok"], true, "{fin}");
    assert_eq!(fin["payload"]["status"], "ok");
    assert_eq!(fin["payload"]["summary"], "completed");
    assert_eq!(
        fin["payload"]["result"]["payloads"][0]["text"],
        "Hello from the fake model."
    );
    // Per-run seq rises; lifecycle start first, end last; chat final
    // carries the whole text.
    let agent: Vec<&Value> = op
        .events("agent")
        .into_iter()
        .map(|e| &e["payload"])
        .filter(|p| p["runId"] == key.as_str())
        .collect();
    let seqs: Vec<u64> = agent.iter().map(|p| p["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(agent[0]["stream"], "lifecycle");
    assert_eq!(agent[0]["data"]["phase"], "start");
    let last = agent.last().unwrap();
    assert_eq!(last["data"]["phase"], "end", "{last}");
    let text: Vec<&str> = agent
        .iter()
        .filter(|p| p["stream"] == "assistant")
        .map(|p| p["data"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text.last().copied(), Some("Hello from the fake model."));
    let chats = chat_events(&op, &key);
    let fin_chat = chats.last().unwrap();
    assert_eq!(fin_chat["payload"]["state"], "final");
    assert_eq!(
        fin_chat["payload"]["message"]["content"][0]["text"],
        "Hello from the fake model."
    );
    assert!(chats
        .iter()
        .any(|c| c["payload"]["state"] == "delta" && c["payload"]["deltaText"].is_string()));
    // What went upstream: the system prompt, then the user's message,
    // with the key from the environment.
    let sent = &up.requests()[0];
    assert_eq!(sent["model"], "fake-model");
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["max_completion_tokens"], 256);
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    assert_eq!(msgs.last().unwrap()["content"], "hi");
    assert_eq!(
        up.headers()[0].get("authorization").map(String::as_str),
        Some("Bearer sk-test-secret")
    );
}

#[test]
fn chat_send_streams_to_every_reader_and_the_history_keeps_both_messages() {
    let up = FakeOpenAi::start(Behaviour::Reply {
        pieces: vec!["one ".into(), "two ".into(), "three".into()],
        gap_ms: 100,
    });
    let gw = start(&up, "");
    let mut a = op(&gw);
    let mut b = Operator::connect(&gw, "cli", &["operator.read"]);
    let key = format!("c-{}", rand_id());
    let ack = a.call(
        "chat.send",
        Some(json!({"sessionKey": "agent:main:chat1", "message": "count", "idempotencyKey": key})),
    );
    assert_eq!(
        ack["payload"],
        json!({"runId": key, "status": "started"}),
        "{ack}"
    );
    for who in [&mut a, &mut b] {
        let fin = who.wait_event("chat", Duration::from_secs(20), |e| {
            e["payload"]["runId"] == key.as_str() && e["payload"]["state"] == "final"
        });
        assert_eq!(
            fin["payload"]["message"]["content"][0]["text"],
            "one two three"
        );
        assert_eq!(fin["payload"]["sessionKey"], "agent:main:chat1");
    }
    let deltas = chat_events(&b, &key);
    assert!(!deltas.is_empty(), "deltas reach a read-only client too");
    let h = b.call(
        "chat.history",
        Some(json!({"sessionKey": "agent:main:chat1", "limit": 10})),
    );
    let msgs = h["payload"]["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(msgs.len(), 2, "{h}");
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(msgs[0]["content"], "count");
    assert_eq!(msgs[0]["__openclaw"]["seq"], 1);
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["content"][0]["text"], "one two three");
    assert_eq!(h["payload"]["totalMessages"], 2);
    // A second turn sends the first one upstream as history.
    let key2 = format!("c-{}", rand_id());
    a.call(
        "chat.send",
        Some(json!({"sessionKey": "agent:main:chat1", "message": "again", "idempotencyKey": key2})),
    );
    a.wait_event("chat", Duration::from_secs(20), |e| {
        e["payload"]["runId"] == key2.as_str() && e["payload"]["state"] == "final"
    });
    let roles: Vec<String> = up.requests()[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["role"].as_str().unwrap(),
                m["content"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        roles[1..],
        ["user:count", "assistant:one two three", "user:again"],
        "{roles:?}"
    );
}

#[test]
fn an_abort_ends_the_run_at_once_and_closes_the_upstream() {
    let up = FakeOpenAi::start(Behaviour::Stall);
    let gw = start(&up, "");
    let mut op = op(&gw);
    let key = format!("a-{}", rand_id());
    let id = op.request(
        "agent",
        Some(json!({"message": "wait", "sessionKey": "agent:main:slow", "idempotencyKey": key})),
    );
    assert_eq!(op.response(&id)["payload"]["status"], "accepted");
    op.wait_event("chat", Duration::from_secs(10), |e| {
        e["payload"]["runId"] == key.as_str() && e["payload"]["state"] == "delta"
    });
    let t0 = Instant::now();
    let mut other = crate::runs::op(&gw);
    let ab = other.call("chat.abort", Some(json!({"sessionKey": "agent:main:slow"})));
    assert_eq!(
        ab["payload"],
        json!({"ok": true, "aborted": true, "runIds": [key]}),
        "{ab}"
    );
    let fin = op.response(&id);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(fin["payload"]["status"], "timeout", "{fin}");
    assert_eq!(fin["payload"]["summary"], "aborted");
    assert!(chat_events(&op, &key)
        .iter()
        .any(|e| e["payload"]["state"] == "aborted"));
    let deadline = Instant::now() + Duration::from_secs(3);
    while up.open_connections() > 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream connection stayed open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Nothing running any more; an aborted run leaves no assistant row.
    let again = other.call("chat.abort", Some(json!({"sessionKey": "agent:main:slow"})));
    assert_eq!(again["payload"]["aborted"], false);
    let h = other.call(
        "chat.history",
        Some(json!({"sessionKey": "agent:main:slow"})),
    );
    let roles: Vec<&str> = h["payload"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user"]);
}

#[test]
fn a_run_past_its_timeout_ends_as_timeout() {
    let up = FakeOpenAi::start(Behaviour::Stall);
    let gw = start(&up, "");
    let mut op = op(&gw);
    let key = format!("t-{}", rand_id());
    let id = op.request(
        "agent",
        Some(json!({"message": "wait", "timeout": 1, "idempotencyKey": key})),
    );
    op.response(&id);
    let t0 = Instant::now();
    let fin = op.response(&id);
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(fin["payload"]["status"], "timeout", "{fin}");
    let w = op.call("agent.wait", Some(json!({"runId": key, "timeoutMs": 1000})));
    assert_eq!(w["payload"]["status"], "timeout", "{w}");
}

#[test]
fn an_upstream_failure_is_the_runs_error_in_both_frames_and_events() {
    for (behaviour, want) in [
        (
            Behaviour::Status(500, r#"{"error":{"message":"boom"}}"#.into()),
            "500",
        ),
        (
            Behaviour::Status(401, r#"{"error":{"message":"bad key"}}"#.into()),
            "401",
        ),
        (Behaviour::FailMidStream, "ended"),
    ] {
        let up = FakeOpenAi::start(behaviour);
        let gw = start(&up, "");
        let mut op = op(&gw);
        let key = format!("e-{}", rand_id());
        let id = op.request(
            "agent",
            Some(json!({"message": "hi", "idempotencyKey": key})),
        );
        op.response(&id);
        let fin = op.response(&id);
        assert_eq!(fin["ok"], false, "{fin}");
        assert_eq!(fin["error"]["code"], "UNAVAILABLE");
        let msg = fin["error"]["message"].as_str().unwrap();
        assert!(msg.contains(want), "{msg}");
        assert!(
            !msg.contains("sk-test-secret"),
            "the key never shows: {msg}"
        );
        assert_eq!(fin["payload"]["status"], "error");
        let err = op.wait_event("chat", Duration::from_secs(5), |e| {
            e["payload"]["runId"] == key.as_str() && e["payload"]["state"] == "error"
        });
        assert!(err["payload"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains(want));
        // A retry after the end replays the same final frame.
        let again = op.call(
            "agent",
            Some(json!({"message": "hi", "idempotencyKey": key})),
        );
        assert_eq!(again["ok"], false, "{again}");
        assert_eq!(again["payload"]["status"], "error");
        assert_eq!(
            up.requests().len(),
            1,
            "the retry did not reach the upstream"
        );
    }
}

#[test]
fn a_retry_while_running_is_in_flight_and_after_the_end_a_replay() {
    let up = FakeOpenAi::start(Behaviour::Reply {
        pieces: vec!["slow".into(), " reply".into()],
        gap_ms: 600,
    });
    let gw = start(&up, "");
    let mut op = op(&gw);
    let key = format!("i-{}", rand_id());
    let params = json!({"message": "hi", "sessionKey": "agent:main:idem", "idempotencyKey": key});
    let id = op.request("agent", Some(params.clone()));
    op.response(&id);
    let mut other = crate::runs::op(&gw);
    let dup = other.call("agent", Some(params.clone()));
    assert_eq!(dup["payload"]["status"], "in_flight", "{dup}");
    assert_eq!(dup["payload"]["runId"], key.as_str());
    let conflict = other.call(
        "chat.send",
        Some(json!({"sessionKey": "agent:main:idem", "message": "else", "idempotencyKey": key})),
    );
    assert_eq!(conflict["ok"], false, "{conflict}");
    let fin = op.response(&id);
    assert_eq!(fin["payload"]["status"], "ok");
    let replay = other.call("agent", Some(params));
    assert_eq!(replay["payload"], fin["payload"], "the final is replayed");
    assert_eq!(up.requests().len(), 1);
    let w = other.call("agent.wait", Some(json!({"runId": key})));
    assert_eq!(w["payload"]["status"], "ok", "{w}");
}

#[test]
fn past_the_concurrency_cap_a_new_session_is_refused_and_a_busy_one_queues() {
    let up = FakeOpenAi::start(Behaviour::Reply {
        pieces: vec!["a".into(), "b".into()],
        gap_ms: 700,
    });
    let gw = start(&up, r#","maxConcurrent":1"#);
    let mut op = op(&gw);
    let k1 = format!("q1-{}", rand_id());
    let send = |op: &mut Operator, session: &str, key: &str| {
        op.call(
            "chat.send",
            Some(json!({"sessionKey": session, "message": "x", "idempotencyKey": key})),
        )
    };
    assert_eq!(
        send(&mut op, "agent:main:s1", &k1)["payload"]["status"],
        "started"
    );
    let refused = send(&mut op, "agent:main:s2", &format!("q2-{}", rand_id()));
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"]["code"], "UNAVAILABLE");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("maxConcurrent"));
    let k3 = format!("q3-{}", rand_id());
    assert_eq!(
        send(&mut op, "agent:main:s1", &k3)["payload"]["status"],
        "started"
    );
    let w = op.call("agent.wait", Some(json!({"runId": k3, "timeoutMs": 100})));
    assert_eq!(
        w["payload"]["status"], "pending",
        "queued behind the first: {w}"
    );
    for k in [&k1, &k3] {
        op.wait_event("chat", Duration::from_secs(20), |e| {
            e["payload"]["runId"] == k.as_str() && e["payload"]["state"] == "final"
        });
    }
}

#[test]
fn the_history_survives_a_restart_and_kill_9_mid_run_records_the_failure() {
    let up = FakeOpenAi::start(reply(&["kept"]));
    let gw = start(&up, "");
    let mut op = op(&gw);
    let key = format!("r-{}", rand_id());
    op.call(
        "chat.send",
        Some(json!({"sessionKey": "agent:main:durable", "message": "remember", "idempotencyKey": key})),
    );
    op.wait_event("chat", Duration::from_secs(20), |e| {
        e["payload"]["runId"] == key.as_str() && e["payload"]["state"] == "final"
    });
    drop(op);
    let gw = gw.kill9_and_restart().expect("restart");
    let mut op = crate::runs::op(&gw);
    let h = op.call(
        "chat.history",
        Some(json!({"sessionKey": "agent:main:durable"})),
    );
    let msgs = h["payload"]["messages"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), 2, "{h}");
    assert_eq!(msgs[1]["content"][0]["text"], "kept");
}

#[test]
fn kill_9_mid_run_keeps_the_message_and_records_the_run_as_failed() {
    let up = FakeOpenAi::start(Behaviour::Stall);
    let gw = start(&up, "");
    let mut op = op(&gw);
    let key = format!("k-{}", rand_id());
    op.call("sessions.subscribe", Some(json!({})));
    op.call(
        "chat.send",
        Some(json!({"sessionKey": "agent:main:crash", "message": "in flight", "idempotencyKey": key})),
    );
    op.wait_event("chat", Duration::from_secs(10), |e| {
        e["payload"]["runId"] == key.as_str() && e["payload"]["state"] == "delta"
    });
    // The message and the run's mark are committed concurrently with the
    // upstream's first piece: kill only once both have landed.
    op.wait_event("sessions.changed", Duration::from_secs(10), |e| {
        e["payload"]["reason"] == "agent.run.started"
    });
    drop(op);
    let gw = gw.kill9_and_restart().expect("restart");
    let mut op = crate::runs::op(&gw);
    let h = op.call(
        "chat.history",
        Some(json!({"sessionKey": "agent:main:crash"})),
    );
    let msgs = h["payload"]["messages"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), 1, "{h}");
    assert_eq!(msgs[0]["content"], "in flight");
    let d = op.call(
        "sessions.describe",
        Some(json!({"key": "agent:main:crash"})),
    );
    assert_eq!(d["payload"]["session"]["abortedLastRun"], true, "{d}");
    assert_eq!(d["payload"]["session"]["hasActiveRun"], false);
}
