//! `clawgate agent` and `clawgate sessions` against a scripted gateway: a
//! loopback WebSocket server inside the test answers `connect`, then plays
//! the frames the agent protocol describes. The client's streaming, exit
//! statuses and renderings are checked end to end, with no model backend
//! and no gateway agent code involved.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use crate::util::{assert_exit, clawgate, run_with_timeout, text, TempDir};

const LIMIT: Duration = Duration::from_secs(20);

type Ws = WebSocket<TcpStream>;

fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string()))
        .expect("send to the client");
}

fn recv(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// A gateway for one client: after the handshake it hands each request's
/// frame to the test (`seen`: `connect` first) and the first request
/// after `connect` to `script`, which answers it as it likes.
fn fake_gateway(
    script: impl FnOnce(&mut Ws, &Value) + Send + 'static,
) -> (u16, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("port").port();
    let (seen, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let _ = stream.set_read_timeout(Some(LIMIT));
        let mut ws = tungstenite::accept(stream).expect("upgrade");
        let challenge = json!({"nonce": "n-1", "ts": 1});
        send(
            &mut ws,
            json!({"type": "event", "event": "connect.challenge", "payload": challenge}),
        );
        let Some(connect) = recv(&mut ws) else { return };
        let hello = json!({"type": "hello-ok", "protocol": 3, "server": {"version": "fake"}});
        send(
            &mut ws,
            json!({"type": "res", "id": connect["id"], "ok": true, "payload": hello}),
        );
        let _ = seen.send(connect);
        let Some(req) = recv(&mut ws) else { return };
        let _ = seen.send(req.clone());
        script(&mut ws, &req);
        while recv(&mut ws).is_some() {}
    });
    (port, rx)
}

fn res(req: &Value, ok: bool, payload: Value) -> Value {
    json!({"type": "res", "id": req["id"], "ok": ok, "payload": payload})
}

fn assistant(req: &Value, seq: u64, text: &str, delta: &str) -> Value {
    let run = &req["params"]["idempotencyKey"];
    json!({"type": "event", "event": "agent", "seq": seq, "payload": {
        "runId": run, "seq": seq, "stream": "assistant", "ts": 1,
        "data": {"text": text, "delta": delta}}})
}

fn accepted(req: &Value) -> Value {
    let run = &req["params"]["idempotencyKey"];
    res(
        req,
        true,
        json!({"runId": run, "sessionKey": "agent:main:main", "agentId": "main",
               "status": "accepted", "acceptedAt": 1}),
    )
}

fn final_ok(req: &Value, text: &str) -> Value {
    let run = &req["params"]["idempotencyKey"];
    res(
        req,
        true,
        json!({"runId": run, "status": "ok", "summary": "completed",
               "result": {"payloads": [{"text": text, "mediaUrl": null}], "meta": {}}}),
    )
}

/// `clawgate ARGS --url <fake> --token t`, run to its end.
fn cli(port: u16, args: &[&str]) -> std::process::Output {
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    let url = format!("ws://127.0.0.1:{port}");
    cmd.args(args).args(["--url", &url, "--token", "t"]);
    run_with_timeout(cmd, LIMIT)
}

#[test]
fn agent_streams_the_reply_as_it_arrives_and_ends_it_with_a_newline() {
    let (gate, wait_gate) = mpsc::channel::<()>();
    let (port, seen) = fake_gateway(move |ws, req| {
        send(ws, accepted(req));
        send(ws, assistant(req, 3, "Hello", "Hello"));
        // The rest only once the test has read the first piece.
        let _ = wait_gate.recv_timeout(LIMIT);
        send(ws, assistant(req, 8, "Hello, world", ", world"));
        let chat = json!({"runId": req["params"]["idempotencyKey"], "state": "delta",
                          "deltaText": ", world"});
        send(
            ws,
            json!({"type": "event", "event": "chat", "seq": 9, "payload": chat}),
        );
        send(ws, final_ok(req, "Hello, world!"));
    });
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    let url = format!("ws://127.0.0.1:{port}");
    cmd.args(["agent", "--message", "hi", "--url", &url, "--token", "t"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn clawgate");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, pieces) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            let _ = tx.send(buf[..n].to_vec());
        }
    });
    let mut got = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while !got.starts_with(b"Hello") {
        let left = deadline.saturating_duration_since(Instant::now());
        match pieces.recv_timeout(left) {
            Ok(piece) => got.extend(piece),
            Err(_) => {
                let _ = child.kill();
                panic!("the first piece was not printed before the run ended: {got:?}");
            }
        }
    }
    let _ = gate.send(());
    while let Ok(piece) = pieces.recv_timeout(LIMIT) {
        got.extend(piece);
    }
    let status = child.wait().expect("wait");
    assert_eq!(text(&got), "Hello, world!\n");
    assert_eq!(status.code(), Some(0));
    let connect = seen.recv_timeout(LIMIT).expect("connect");
    assert_eq!(connect["params"]["scopes"], json!(["operator.write"]));
    let req = seen.recv_timeout(LIMIT).expect("the agent request");
    assert_eq!(req["method"], "agent");
    let p = &req["params"];
    assert_eq!(
        (&p["message"], &p["timeout"], &p["deliver"]),
        (&json!("hi"), &json!(600), &json!(false))
    );
    assert!(
        p["idempotencyKey"].as_str().is_some_and(|k| k.len() == 36),
        "{p}"
    );
}

#[test]
fn a_failed_run_prints_the_gateway_message_and_exits_1() {
    let (port, _) = fake_gateway(|ws, req| {
        send(ws, accepted(req));
        let run = &req["params"]["idempotencyKey"];
        let msg = "No route-compatible authentication source is configured for openai.";
        send(
            ws,
            json!({"type": "res", "id": req["id"], "ok": false,
            "payload": {"runId": run, "status": "error", "summary": msg},
            "error": {"code": "UNAVAILABLE", "message": msg}}),
        );
    });
    let out = cli(port, &["agent", "--message", "hi"]);
    assert_exit(&out, 1);
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "clawgate: No route-compatible authentication source is configured for openai.\n"
    );
}

#[test]
fn an_aborted_run_ends_the_line_and_exits_1() {
    let (port, _) = fake_gateway(|ws, req| {
        send(ws, accepted(req));
        send(ws, assistant(req, 3, "Hel", "Hel"));
        let run = &req["params"]["idempotencyKey"];
        send(
            ws,
            res(
                req,
                true,
                json!({"runId": run, "status": "timeout", "summary": "aborted"}),
            ),
        );
    });
    let out = cli(
        port,
        &["agent", "--message", "hi", "--idempotency-key", "run-1"],
    );
    assert_exit(&out, 1);
    assert_eq!(text(&out.stdout), "Hel\n");
    assert_eq!(
        text(&out.stderr),
        "clawgate: run 'run-1' was aborted or timed out\n"
    );
}

#[test]
fn agent_json_prints_the_final_payload_only() {
    let (port, seen) = fake_gateway(|ws, req| {
        send(ws, accepted(req));
        send(ws, assistant(req, 3, "Hi", "Hi"));
        send(ws, final_ok(req, "Hi"));
    });
    let out = cli(
        port,
        &[
            "agent",
            "--message",
            "/new",
            "--json",
            "--agent",
            "ops",
            "--session",
            "s1",
        ],
    );
    assert_exit(&out, 0);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["result"]["payloads"][0]["text"], "Hi");
    let connect = seen.recv_timeout(LIMIT).expect("connect");
    assert_eq!(
        connect["params"]["scopes"],
        json!(["operator.admin", "operator.write"])
    );
    let p = &seen.recv_timeout(LIMIT).expect("the agent request")["params"];
    assert_eq!(
        (&p["agentId"], &p["sessionKey"]),
        (&json!("ops"), &json!("s1"))
    );
}

#[test]
fn sessions_list_and_history_render_the_gateway_answers() {
    let (port, seen) = fake_gateway(|ws, req| {
        let row = json!({"key": "agent:main:main", "agentId": "main", "sessionId": "s",
            "model": "m", "modelProvider": "p", "totalTokens": 48,
            "hasActiveRun": false});
        send(
            ws,
            res(
                req,
                true,
                json!({"count": 1, "totalCount": 1, "sessions": [row]}),
            ),
        );
    });
    let out = cli(
        port,
        &["sessions", "list", "--agent", "main", "--limit", "5"],
    );
    assert_exit(&out, 0);
    let shown = text(&out.stdout);
    assert!(
        shown.starts_with("KEY              AGENT  UPDATED  MODEL  TOKENS  LABEL\n"),
        "{shown}"
    );
    assert!(shown.contains("\nagent:main:main  main   "), "{shown}");
    let connect = seen.recv_timeout(LIMIT).expect("connect");
    assert_eq!(connect["params"]["scopes"], json!(["operator.read"]));
    let req = seen.recv_timeout(LIMIT).expect("sessions.list");
    assert_eq!(
        (&req["method"], &req["params"]),
        (
            &json!("sessions.list"),
            &json!({"agentId": "main", "limit": 5})
        )
    );

    let (port, _) = fake_gateway(|ws, req| {
        let messages = json!([{"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}]);
        send(
            ws,
            res(
                req,
                true,
                json!({"sessionKey": "agent:main:main", "sessionId": "s",
            "hasMore": false, "totalMessages": 2, "messages": messages}),
            ),
        );
    });
    let out = cli(port, &["sessions", "history", "agent:main:main"]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "user:\nhi\n\nassistant:\nHello\n");
}
