//! Sessions as operators and the clawgate CLI see them: listed,
//! patched, reset and deleted over the wire with `sessions.changed` for
//! subscribers; `clawgate agent` streaming a reply from the real gateway;
//! and CLI backends: their own session id kept and resumed, their failure
//! reported, and their child process gone after an abort.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::runs::{op, start};
use crate::util::fake_openai::{Behaviour, FakeOpenAi};
use crate::util::{json_of, rand_id, text, Gateway, Opts, TempDir};

fn reply(pieces: &[&str]) -> Behaviour {
    Behaviour::Reply {
        pieces: pieces.iter().map(|s| s.to_string()).collect(),
        gap_ms: 0,
    }
}

#[test]
fn sessions_are_listed_patched_reset_and_deleted_and_subscribers_hear_of_it() {
    let up = FakeOpenAi::start(reply(&["ok"]));
    let gw = start(&up, "");
    let mut op = op(&gw);
    assert_eq!(
        op.call("sessions.subscribe", None)["payload"]["subscribed"],
        true
    );
    let key = format!("s-{}", rand_id());
    op.call(
        "chat.send",
        Some(json!({"sessionKey": "agent:main:listed", "message": "hi", "idempotencyKey": key})),
    );
    op.wait_event("chat", Duration::from_secs(20), |e| {
        e["payload"]["runId"] == key.as_str() && e["payload"]["state"] == "final"
    });
    op.wait_event("sessions.changed", Duration::from_secs(5), |e| {
        e["payload"]["sessionKey"] == "agent:main:listed"
    });
    let l = op.call("sessions.list", Some(json!({"limit": 10})));
    let row = &l["payload"]["sessions"][0];
    assert_eq!(row["key"], "agent:main:listed", "{l}");
    assert_eq!(row["model"], "fake-model");
    assert_eq!(row["modelProvider"], "fake");
    assert_eq!(l["payload"]["totalCount"], 1);
    let p = op.call(
        "sessions.patch",
        Some(json!({"key": "agent:main:listed", "label": "Groceries"})),
    );
    assert_eq!(p["payload"]["entry"]["label"], "Groceries", "{p}");
    let bad = op.call(
        "sessions.patch",
        Some(json!({"key": "agent:main:listed", "model": "nobody/x"})),
    );
    assert_eq!(bad["ok"], false, "{bad}");
    let old_id = row["sessionId"].as_str().unwrap().to_string();
    let r = op.call("sessions.reset", Some(json!({"key": "agent:main:listed"})));
    assert_ne!(r["payload"]["entry"]["sessionId"], old_id.as_str(), "{r}");
    assert_eq!(r["payload"]["entry"]["label"], "Groceries");
    let h = op.call(
        "chat.history",
        Some(json!({"sessionKey": "agent:main:listed"})),
    );
    assert_eq!(
        h["payload"]["messages"],
        json!([]),
        "a reset session starts empty"
    );
    let d = op.call(
        "sessions.delete",
        Some(json!({"key": "agent:main:listed", "deleteTranscript": true})),
    );
    assert_eq!(d["payload"]["deleted"], true, "{d}");
    let l = op.call("sessions.list", None);
    assert_eq!(l["payload"]["totalCount"], 0, "{l}");
    let agents = op.call("agents.list", None);
    assert_eq!(agents["payload"]["defaultId"], "main");
    let models = op.call("models.list", None);
    assert_eq!(models["payload"]["models"][0]["id"], "fake-model");
}

/// A gateway whose CLI backends are the fake CLI in three moods.
fn cli_gateway(dir: &TempDir) -> Gateway {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/fake-cli.sh");
    let log = dir.path().join("argv.log");
    let pid = dir.path().join("cli.pid");
    let backend = |mode: &str| {
        format!(
            r#"{{"command":"{}","args":["-p","--output-format","json"],"input":"stdin","output":"json",
              "modelArg":"--model","sessionArgs":["--session-id","{{sessionId}}"],
              "resumeArgs":["-p","--output-format","json","--resume","{{sessionId}}"],
              "env":{{"FAKE_CLI_MODE":"{mode}","FAKE_CLI_ARGV_LOG":"{}","FAKE_CLI_PIDFILE":"{}"}}}}"#,
            script.display(),
            log.display(),
            pid.display()
        )
    };
    let config = format!(
        r#"{{"gateway":{{"mode":"local"}},"agents":{{"defaults":{{"model":{{"primary":"cli-ok/large"}},
           "cliBackends":{{"cli-ok":{},"cli-sleep":{},"cli-fail":{}}}}}}}}}"#,
        backend("reply"),
        backend("sleep"),
        backend("fail")
    );
    Gateway::with(Opts {
        config: Some(&config),
        ..Opts::default()
    })
}

fn final_of(op: &mut crate::util::Operator, key: &str) -> Value {
    op.wait_event("chat", Duration::from_secs(20), |e| {
        e["payload"]["runId"] == key
            && ["final", "error", "aborted"].contains(&e["payload"]["state"].as_str().unwrap_or(""))
    })
}

#[test]
fn a_cli_backend_keeps_its_own_session_id_and_resumes_it() {
    let dir = TempDir::new();
    let gw = cli_gateway(&dir);
    let mut op = op(&gw);
    for i in 0..2 {
        let key = format!("cli{i}-{}", rand_id());
        let ack = op.call(
            "chat.send",
            Some(json!({"sessionKey": "agent:main:cli", "message": format!("turn {i}"), "idempotencyKey": key})),
        );
        assert_eq!(ack["payload"]["status"], "started", "{ack}");
        let fin = final_of(&mut op, &key);
        assert_eq!(fin["payload"]["state"], "final", "{fin}");
        assert_eq!(
            fin["payload"]["message"]["content"][0]["text"],
            "Hello from the fake CLI."
        );
    }
    let argv = std::fs::read_to_string(dir.path().join("argv.log")).expect("argv log");
    let lines: Vec<&str> = argv.lines().collect();
    assert_eq!(lines.len(), 2, "{argv}");
    assert!(lines[0].contains("--model large"), "{}", lines[0]);
    let first_id = lines[0]
        .split("--session-id ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("a fresh session id on the first turn");
    assert!(
        lines[1].contains(&format!("--resume {first_id}")),
        "the second turn resumes the CLI's session: {}",
        lines[1]
    );
    assert!(!lines[1].contains("--session-id"), "{}", lines[1]);
}

#[test]
fn a_failing_cli_backend_is_the_runs_error_with_its_stderr() {
    let dir = TempDir::new();
    let gw = cli_gateway(&dir);
    let mut op = op(&gw);
    let key = format!("f-{}", rand_id());
    let id = op.request(
        "agent",
        Some(json!({"message": "hi", "model": "cli-fail/large", "idempotencyKey": key})),
    );
    assert_eq!(op.response(&id)["payload"]["status"], "accepted");
    let fin = op.response(&id);
    assert_eq!(fin["ok"], false, "{fin}");
    assert!(
        fin["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model exploded"),
        "{fin}"
    );
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie whose parent is not clawgate (an orphan under a PID 1
        // that does not reap) has exited all the same.
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

#[test]
fn an_aborted_cli_backend_leaves_no_process_behind() {
    let dir = TempDir::new();
    let gw = cli_gateway(&dir);
    let mut op = op(&gw);
    let key = format!("s-{}", rand_id());
    let id = op.request(
        "agent",
        Some(
            json!({"message": "hi", "model": "cli-sleep/large", "sessionKey": "agent:main:sleepy",
                    "idempotencyKey": key}),
        ),
    );
    assert_eq!(op.response(&id)["payload"]["status"], "accepted");
    let pidfile = dir.path().join("cli.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: u32 = loop {
        if let Some(p) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break p;
        }
        assert!(Instant::now() < deadline, "the fake CLI never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!gone(pid));
    let mut other = crate::runs::op(&gw);
    let ab = other.call(
        "chat.abort",
        Some(json!({"sessionKey": "agent:main:sleepy"})),
    );
    assert_eq!(ab["payload"]["aborted"], true, "{ab}");
    let fin = op.response(&id);
    assert_eq!(fin["payload"]["status"], "timeout", "{fin}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !gone(pid) {
        assert!(
            Instant::now() < deadline,
            "the CLI backend's process {pid} outlived its run"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn clawgate_agent_streams_the_reply_and_exits_by_the_outcome() {
    let up = FakeOpenAi::start(Behaviour::Reply {
        pieces: vec!["Hello".into(), " from".into(), " clawgate.".into()],
        gap_ms: 30,
    });
    let gw = start(&up, "");
    let out = gw.cli(&["agent", "--message", "hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Hello from clawgate.\n");
    let out = gw.cli(&["sessions", "list", "--json"]);
    let v = json_of(&out);
    assert_eq!(v["sessions"][0]["key"], "agent:main:main", "{v}");
    let out = gw.cli(&["sessions", "history", "main"]);
    let t = text(&out.stdout);
    assert!(
        t.contains("user:\nhi") && t.contains("assistant:\nHello from clawgate."),
        "{t}"
    );

    let bad = FakeOpenAi::start(Behaviour::Status(
        500,
        "{\"error\":{\"message\":\"no capacity\"}}".into(),
    ));
    let gw = start(&bad, "");
    let out = gw.cli(&["agent", "--message", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no capacity"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn send_answers_as_the_reference_does_for_a_channel_it_lacks() {
    let up = FakeOpenAi::start(reply(&["unused"]));
    let gw = start(&up, "");
    let mut op = op(&gw);
    let empty = op.call("send", Some(json!({"to": "x", "idempotencyKey": "s1"})));
    assert_eq!(
        empty["error"]["message"], "invalid send params: text or media is required",
        "{empty}"
    );
    let tg = op.call(
        "send",
        Some(json!({"to": "x", "message": "hi", "channel": "telegram", "idempotencyKey": "s2"})),
    );
    assert_eq!(tg["error"]["code"], "INVALID_REQUEST");
    assert_eq!(
        tg["error"]["message"], "unsupported channel: telegram",
        "{tg}"
    );
    assert!(up.requests().is_empty(), "nothing reached a model");
}
