//! Webhooks against the real binary: off by default, their own token in
//! a header (never the URL), the reference's status codes, the body limit
//! checked before the body is read, the failed-auth throttle that spares
//! no one (loopback included), session-key rules, idempotent retries, and
//! `/hooks/agent` runs that land in the session and answer at their end.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::fake_openai::{Behaviour, FakeOpenAi};
use crate::util::{http, watchdog, Gateway, Opts};

const HOOK_TOKEN: &str = "hook-secret-0123456789";

fn start(up: &FakeOpenAi, hooks: &str) -> Gateway {
    let config = crate::runs::config(up, "").replacen('{', &format!("{{\"hooks\":{hooks},"), 1);
    Gateway::with(Opts {
        config: Some(&config),
        env: &[("FAKE_KEY", "sk-test-secret")],
        ..Default::default()
    })
}

fn enabled(extra: &str) -> String {
    format!(r#"{{"enabled":true,"token":"{HOOK_TOKEN}"{extra}}}"#)
}

fn fake() -> FakeOpenAi {
    FakeOpenAi::start(Behaviour::Reply {
        pieces: vec!["Hook".into(), " reply.".into()],
        gap_ms: 0,
    })
}

/// POSTs `body` to `path` with `headers`; (status, headers, JSON body).
fn post(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, std::collections::HashMap<String, String>, Value) {
    post_to(gw.port, path, headers, body)
}

fn post_to(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, std::collections::HashMap<String, String>, Value) {
    let body = body.to_string();
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(&body);
    let (status, h, text) = http(port, &raw);
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, h, v)
}

fn bearer() -> String {
    format!("Bearer {HOOK_TOKEN}")
}

#[test]
fn hooks_are_off_until_enabled_and_need_their_own_token() {
    watchdog();
    let up = fake();
    let gw = start(&up, r#"{"enabled":false}"#);
    let (status, _, _) = post(
        &gw,
        "/hooks/agent",
        &[("Authorization", &bearer())],
        &json!({"message": "hi"}),
    );
    assert_eq!(status, 404, "disabled hooks are not routed");
    drop(gw);

    let gw = start(&up, &enabled(""));
    let msg = json!({"message": "hi"});
    let (status, _, v) = post(&gw, "/hooks/agent", &[], &msg);
    assert_eq!((status, v["ok"].clone()), (401, json!(false)), "{v}");
    let (status, _, _) = post(
        &gw,
        "/hooks/agent",
        &[("Authorization", "Bearer wrong")],
        &msg,
    );
    assert_eq!(status, 401);
    let gw_token = format!("Bearer {}", gw.token());
    let (status, _, _) = post(&gw, "/hooks/agent", &[("Authorization", &gw_token)], &msg);
    assert_eq!(status, 401, "the gateway's secret is not the hook token");
    let (status, _, v) = post(&gw, "/hooks/agent", &[("Authorization", &bearer())], &msg);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], true);
    assert!(v["runId"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
    let (status, _, v) = post(
        &gw,
        "/hooks/agent",
        &[("x-openclaw-token", HOOK_TOKEN)],
        &msg,
    );
    assert_eq!(status, 200, "{v}");
    // A token in the URL is refused even with a right header.
    let path = format!("/hooks/agent?token={HOOK_TOKEN}");
    let (status, _, _) = post(&gw, &path, &[("Authorization", &bearer())], &msg);
    assert_eq!(status, 400);
    // Wrong method, unknown hook, bad bodies.
    let (status, h, _) = http(
        gw.port,
        "GET /hooks/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
    assert_eq!(h["allow"], "POST");
    let (status, _, _) = post(&gw, "/hooks/nope", &[("Authorization", &bearer())], &msg);
    assert_eq!(status, 404);
    let (status, _, v) = post(
        &gw,
        "/hooks/agent",
        &[("Authorization", &bearer())],
        &json!({"name": "x"}),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "message is required");
    let (status, _, _) = post(
        &gw,
        "/hooks/agent",
        &[("Authorization", &bearer())],
        &json!([1]),
    );
    assert_eq!(status, 400);
}

#[test]
fn a_hook_body_over_the_limit_is_refused_before_it_is_sent() {
    watchdog();
    let up = fake();
    let gw = start(&up, &enabled(""));
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /hooks/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n",
        bearer(),
        256 * 1024 + 1
    );
    s.write_all(head.as_bytes()).unwrap();
    // No body byte is sent: the answer comes from the head alone.
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
}

#[test]
fn failed_hook_tokens_are_throttled_even_from_loopback() {
    watchdog();
    let up = fake();
    let gw = start(&up, &enabled(""));
    let msg = json!({"message": "hi"});
    for i in 0..20 {
        let (status, _, _) = post(
            &gw,
            "/hooks/wake",
            &[("Authorization", "Bearer nope")],
            &msg,
        );
        assert_eq!(status, 401, "attempt {i}");
    }
    let (status, h, v) = post(
        &gw,
        "/hooks/wake",
        &[("Authorization", "Bearer nope")],
        &msg,
    );
    assert_eq!(status, 429, "{v}");
    assert!(h["retry-after"].parse::<u32>().unwrap() >= 1);
    // Locked out: the right token waits too.
    let (status, _, _) = post(&gw, "/hooks/agent", &[("Authorization", &bearer())], &msg);
    assert_eq!(status, 429);
    // The gateway's own WebSocket and health are not affected.
    let (status, _, _) = crate::util::get(gw.port, "/health");
    assert_eq!(status, 200);
}

#[test]
fn a_hook_run_answers_at_its_end_and_lands_in_its_session() {
    watchdog();
    let up = fake();
    let gw = start(&up, &enabled(r#","defaultSessionKey":"hook:ci""#));
    let mut op = crate::runs::op(&gw);
    let (status, _, v) = post(
        &gw,
        "/hooks/agent",
        &[("Authorization", &bearer())],
        &json!({"message": "build 42 failed", "name": "CI", "waitForCompletion": true}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["text"], "Hook reply.");
    let req = &up.requests()[0];
    let system = req["messages"][0]["content"].as_str().unwrap_or("");
    assert!(system.contains("webhook \"CI\""), "{req}");
    let list = op.call("sessions.list", Some(json!({})));
    let keys: Vec<&str> = list["payload"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["key"].as_str())
        .collect();
    assert!(keys.contains(&"hook:ci"), "{keys:?}");
    let hist = op.call("chat.history", Some(json!({"sessionKey": "hook:ci"})));
    let text = hist["payload"].to_string();
    assert!(
        text.contains("build 42 failed") && text.contains("Hook reply."),
        "{text}"
    );
}

#[test]
fn hook_session_keys_and_agents_follow_the_rules_and_retries_replay() {
    watchdog();
    let up = fake();
    let gw = start(&up, &enabled(""));
    let auth = [("Authorization", bearer())];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, v) = post(
        &gw,
        "/hooks/agent",
        &auth,
        &json!({"message": "x", "sessionKey": "hook:mine"}),
    );
    assert_eq!(status, 400, "request keys are off by default: {v}");
    drop(gw);

    let gw = start(
        &up,
        &enabled(
            r#","allowRequestSessionKey":true,"allowedSessionKeyPrefixes":["hook:"],"allowedAgentIds":["main"]"#,
        ),
    );
    let (status, _, v) = post(
        &gw,
        "/hooks/agent",
        &auth,
        &json!({"message": "x", "sessionKey": "hook:mine"}),
    );
    assert_eq!(status, 200, "{v}");
    let (status, _, v) = post(
        &gw,
        "/hooks/agent",
        &auth,
        &json!({"message": "x", "sessionKey": "other:k"}),
    );
    assert_eq!(status, 400, "{v}");
    let (status, _, v) = post(
        &gw,
        "/hooks/agent",
        &auth,
        &json!({"message": "x", "agentId": "ops"}),
    );
    assert_eq!(status, 400, "{v}");
    // The same key and fields: the same run.
    let body = json!({"message": "deploy", "idempotencyKey": "build-7", "waitForCompletion": true});
    let (s1, _, a) = post(&gw, "/hooks/agent", &auth, &body);
    let (s2, _, b) = post(&gw, "/hooks/agent", &auth, &body);
    assert_eq!((s1, s2), (200, 200), "{a} {b}");
    assert_eq!(a["runId"], b["runId"]);
    assert_eq!(b["text"], "Hook reply.", "the retry replays the end: {b}");
    let sent = up
        .requests()
        .iter()
        .filter(|r| r.to_string().contains("deploy"))
        .count();
    assert_eq!(sent, 1, "a retry never reaches the upstream again");
}

#[test]
fn wake_queues_for_the_next_run_or_starts_one_now() {
    watchdog();
    let up = fake();
    let gw = start(&up, &enabled(""));
    let auth = bearer();
    let h = [("Authorization", auth.as_str())];
    let ev = json!({"text": "door opened", "mode": "next-heartbeat"});
    let (status, _, v) = post(&gw, "/hooks/wake", &h, &ev);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["eventOutcome"], "queued");
    let (_, _, v) = post(&gw, "/hooks/wake", &h, &ev);
    assert_eq!(v["eventOutcome"], "coalesced");
    let (status, _, _) = post(&gw, "/hooks/wake", &h, &json!({"text": " "}));
    assert_eq!(status, 400);
    let (status, _, v) = post(
        &gw,
        "/hooks/wake",
        &h,
        &json!({"text": "alarm", "mode": "now"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["mode"], "now");
    let reqs = up.wait_requests(1, Duration::from_secs(10));
    let all = serde_json::to_string(&reqs).unwrap();
    assert!(all.contains("System event: alarm"), "{all}");
    assert!(
        all.contains("door opened"),
        "the queued event reaches the next run: {all}"
    );
}

#[test]
fn a_hook_token_that_is_the_gateways_secret_stops_the_start() {
    watchdog();
    let config = r#"{"gateway":{"mode":"local","auth":{"token":"same-secret-0123456789abcdef"}},
                     "hooks":{"enabled":true,"token":"same-secret-0123456789abcdef"}}"#;
    let err = Gateway::try_with(Opts {
        config: Some(config),
        ..Default::default()
    })
    .err()
    .expect("the gateway must refuse to start");
    assert!(err.contains("'hooks.token' must differ"), "{err}");
}

#[test]
fn a_retry_while_the_first_runs_waits_for_the_same_end() {
    watchdog();
    let up = FakeOpenAi::start(Behaviour::Reply {
        pieces: vec!["Slow".into(), " hook".into(), " reply.".into()],
        gap_ms: 300,
    });
    let gw = start(&up, &enabled(""));
    let body = json!({"message": "nightly", "idempotencyKey": "n-1", "waitForCompletion": true});
    let auth = bearer();
    let port = gw.port;
    let (a, b) = std::thread::scope(|s| {
        let first = s.spawn(|| post_to(port, "/hooks/agent", &[("Authorization", &auth)], &body));
        std::thread::sleep(Duration::from_millis(200));
        let second = post(&gw, "/hooks/agent", &[("Authorization", &auth)], &body);
        (first.join().unwrap(), second)
    });
    assert_eq!((a.0, b.0), (200, 200), "{} {}", a.2, b.2);
    assert_eq!(a.2["runId"], b.2["runId"]);
    assert_eq!(a.2["text"], "Slow hook reply.");
    assert_eq!(b.2["text"], "Slow hook reply.", "{}", b.2);
    assert_eq!(up.requests().len(), 1, "one run for both");
}

#[test]
fn waiting_wake_texts_are_bounded() {
    watchdog();
    let up = fake();
    let gw = start(&up, &enabled(""));
    let auth = bearer();
    let h = [("Authorization", auth.as_str())];
    for i in 0..8 {
        let ev = json!({"text": format!("event {i}"), "mode": "next-heartbeat"});
        let (status, _, v) = post(&gw, "/hooks/wake", &h, &ev);
        assert_eq!(status, 200, "{i}: {v}");
    }
    let ev = json!({"text": "one too many", "mode": "next-heartbeat"});
    let (status, headers, v) = post(&gw, "/hooks/wake", &h, &ev);
    assert_eq!(status, 503, "{v}");
    assert!(headers.contains_key("retry-after"));
    // A run in the session takes them, and the queue has room again.
    let (status, _, v) = post(
        &gw,
        "/hooks/wake",
        &h,
        &json!({"text": "now", "mode": "now"}),
    );
    assert_eq!(status, 200, "{v}");
    let reqs = up.wait_requests(1, Duration::from_secs(10));
    assert!(serde_json::to_string(&reqs).unwrap().contains("event 7"));
    let (status, _, v) = post(&gw, "/hooks/wake", &h, &ev);
    assert_eq!(status, 200, "{v}");
}
