//! The WebSocket protocol against the real binary (PROTOCOL.md sections 2,
//! 3, 4 and 7): the handshake, version negotiation, authentication, what
//! happens to bad frames before and after `hello-ok`, scopes, presence,
//! ticks, the core methods, and the limits that guard it all (LIMITS.md).
//!
//! Helpers are at the bottom.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::Message;

use crate::util::{connect_params, rand_id, Closed, Gateway, Ws};

// ---- handshake ------------------------------------------------------------

#[test]
fn v4_handshake_sends_a_bare_challenge_and_a_complete_hello_ok() {
    let gw = Gateway::start();
    let mut ws = gw.ws();
    let ch = ws.recv();
    assert_eq!(keys(&ch), ["event", "payload", "type"], "{ch}");
    assert_eq!(ch["type"], "event");
    assert_eq!(ch["event"], "connect.challenge");
    assert_eq!(keys(&ch["payload"]), ["nonce", "ts"], "{ch}");
    assert!(!ch["payload"]["nonce"].as_str().unwrap().is_empty(), "{ch}");
    assert!(ch["payload"]["ts"].is_u64(), "ts must be an integer: {ch}");

    let params = connect_params(&gw.token(), 4, 4, "cli", &["operator.admin"]);
    ws.send(&json!({"type": "req", "id": "c1", "method": "connect", "params": params}));
    let res = ws.recv_res("c1");
    assert_eq!(keys(&res), ["id", "ok", "payload", "type"], "{res}");
    assert_eq!(res["ok"], true, "{res}");
    let h = &res["payload"];
    assert_eq!(h["type"], "hello-ok");
    assert_eq!(h["protocol"], 4);
    assert!(h["server"]["version"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));
    assert!(h["server"]["connId"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));
    for m in ["health", "status", "system-presence"] {
        assert!(list_has(&h["features"]["methods"], m), "method {m}: {h}");
    }
    for e in ["tick", "presence"] {
        assert!(list_has(&h["features"]["events"], e), "event {e}: {h}");
    }
    let snap = &h["snapshot"];
    let presence = snap["presence"]
        .as_array()
        .expect("snapshot.presence array");
    assert!(presence.iter().any(|p| p["mode"] == "gateway"), "{snap}");
    assert_eq!(snap["health"]["ok"], true, "{snap}");
    assert!(snap["stateVersion"]["presence"].is_u64(), "{snap}");
    assert!(snap["stateVersion"]["health"].is_u64(), "{snap}");
    assert!(snap["uptimeMs"].is_u64(), "{snap}");
    assert_eq!(
        snap["sessionDefaults"],
        json!({"defaultAgentId": "main", "mainKey": "main",
               "mainSessionKey": "agent:main:main", "scope": "per-sender"})
    );
    assert_eq!(h["auth"]["role"], "operator");
    assert_eq!(h["auth"]["scopes"], json!(["operator.admin"]));
    for k in ["maxPayload", "maxBufferedBytes", "tickIntervalMs"] {
        assert!(h["policy"][k].is_u64(), "policy.{k}: {h}");
    }
}

#[test]
fn versions_3_and_4_are_negotiated_and_no_overlap_is_a_protocol_mismatch() {
    let gw = Gateway::start();
    let token = gw.token();
    for ((min, max), want) in [((3, 3), 3), ((3, 4), 4), ((4, 4), 4)] {
        let (_ws, hello) = client_as(&gw, connect_params(&token, min, max, "cli", &[]));
        assert_eq!(hello["protocol"], want, "{min}..{max}");
    }
    let mut ws = gw.ws();
    let res = try_handshake(&mut ws, connect_params(&token, 5, 6, "cli", &[]));
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["message"], "protocol mismatch");
    assert_eq!(
        res["error"]["details"],
        json!({"code": "PROTOCOL_MISMATCH", "expectedProtocol": 4, "minimumProbeProtocol": 3,
               "clientMinProtocol": 5, "clientMaxProtocol": 6})
    );
    assert_eq!(
        ws.expect_close(),
        Closed::Frame(1002, "protocol mismatch".into())
    );
}

#[test]
fn a_wrong_or_missing_token_is_refused_with_reference_details_and_1008() {
    let gw = Gateway::start();
    let mut ws = gw.ws();
    let res = try_handshake(&mut ws, connect_params("wrong", 4, 4, "cli", &[]));
    let err = &res["error"];
    assert_eq!(res["ok"], false);
    assert_eq!(err["code"], "INVALID_REQUEST");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.starts_with("unauthorized: gateway token mismatch"),
        "{msg}"
    );
    assert_eq!(
        err["details"],
        json!({"code": "AUTH_TOKEN_MISMATCH", "authReason": "token_mismatch",
               "canRetryWithDeviceToken": false,
               "recommendedNextStep": "update_auth_credentials"})
    );
    let cut = &msg[..msg.len().min(120)];
    assert_eq!(ws.expect_close(), Closed::Frame(1008, cut.to_string()));

    let mut params = connect_params("", 4, 4, "cli", &[]);
    params["auth"] = json!({});
    let mut ws = gw.ws();
    let res = try_handshake(&mut ws, params);
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_TOKEN_MISSING",
        "{res}"
    );
    assert!(matches!(ws.expect_close(), Closed::Frame(1008, _)));
}

#[test]
fn password_mode_admits_the_right_password_and_refuses_a_wrong_one() {
    let gw = Gateway::with_config(
        r#"{"gateway":{"mode":"local","auth":{"mode":"password","password":"correct horse battery"}}}"#,
    );
    let with_password = |pw: &str| {
        let mut p = connect_params("", 4, 4, "cli", &["operator.read"]);
        p["auth"] = json!({ "password": pw });
        p
    };
    let (mut ws, hello) = client_as(&gw, with_password("correct horse battery"));
    assert_eq!(hello["type"], "hello-ok");
    assert_eq!(ws.call("health", None)["ok"], true);

    let mut ws = gw.ws();
    let res = try_handshake(&mut ws, with_password("wrong horse"));
    assert_eq!(res["error"]["code"], "INVALID_REQUEST", "{res}");
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_PASSWORD_MISMATCH",
        "{res}"
    );
    assert!(matches!(ws.expect_close(), Closed::Frame(1008, _)));
}

#[test]
fn a_first_frame_that_is_not_a_connect_request_ends_the_handshake() {
    let gw = Gateway::start();
    // Another request: an error reply, then 1008.
    let mut ws = gw.ws();
    challenge(&mut ws);
    ws.send(&json!({"type": "req", "id": "h1", "method": "health"}));
    let res = ws.recv_res("h1");
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert!(matches!(ws.expect_close(), Closed::Frame(1008, _)));

    // Not a request: 1008 without a reply.
    let mut ws = gw.ws();
    challenge(&mut ws);
    ws.send(&json!({"type": "event", "event": "x"}));
    assert!(matches!(
        ws.expect_close_without_reply(),
        Closed::Frame(1008, _)
    ));

    // Not JSON: 1000 without a reply.
    let mut ws = gw.ws();
    challenge(&mut ws);
    ws.send_text("{\"type\":\"req\",");
    assert!(matches!(
        ws.expect_close_without_reply(),
        Closed::Frame(1000, _)
    ));

    // Bad connect params: the reason, then 1008.
    let mut params = connect_params(&gw.token(), 4, 4, "cli", &[]);
    params["client"]["id"] = json!("evil");
    let mut ws = gw.ws();
    let res = try_handshake(&mut ws, params);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    let msg = res["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("invalid connect params: "), "{msg}");
    assert!(matches!(ws.expect_close(), Closed::Frame(1008, _)));
}

#[test]
fn frames_before_hello_are_capped_at_64_kib() {
    let gw = Gateway::start();
    let mut ws = gw.ws();
    challenge(&mut ws);
    ws.send_text(&"x".repeat(64 * 1024 + 1));
    assert!(matches!(
        ws.expect_close_without_reply(),
        Closed::Frame(1009, _)
    ));

    // Exactly 64 KiB is read and judged as JSON: unparsable, so 1000.
    let mut ws = gw.ws();
    challenge(&mut ws);
    ws.send_text(&"x".repeat(64 * 1024));
    assert!(matches!(
        ws.expect_close_without_reply(),
        Closed::Frame(1000, _)
    ));
}

#[test]
fn a_silent_client_is_closed_1000_at_the_handshake_deadline() {
    let gw =
        Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"handshakeTimeoutMs":500}}}"#);
    let start = Instant::now();
    let mut ws = gw.ws();
    challenge(&mut ws);
    assert_eq!(
        ws.expect_close_without_reply(),
        Closed::Frame(1000, String::new())
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took <= Duration::from_secs(2),
        "closed after {took:?}"
    );
}

// ---- after hello ----------------------------------------------------------

#[test]
fn after_hello_bad_frames_get_errors_and_the_socket_stays_usable() {
    let gw = Gateway::start();
    let (mut ws, _) = gw.client();
    let res = ws.call("nope.nope", None);
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["message"], "unknown method: nope.nope");
    assert_eq!(ws.call("health", None)["ok"], true);

    // A cancel gets no reply: the next frame answers the next request.
    ws.send(&json!({"type": "cancel", "id": "r-gone"}));
    ws.send(&json!({"type": "req", "id": "after-cancel", "method": "health"}));
    let next = ws.recv();
    assert_eq!(next["id"], "after-cancel", "{next}");
    assert_eq!(next["ok"], true);

    ws.send(&json!({"type": "event", "event": "x", "id": "ev-1"}));
    let res = ws.recv();
    assert_eq!(keys(&res), ["error", "id", "ok", "type"], "{res}");
    assert_eq!(res["type"], "res");
    assert_eq!(res["id"], "ev-1");
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");

    ws.send(&json!({"type": "event", "event": "x"}));
    let res = ws.recv();
    assert_eq!((&res["id"], &res["ok"]), (&json!("invalid"), &json!(false)));
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");

    ws.send_text("{not json");
    let res = ws.recv();
    assert_eq!((&res["id"], &res["ok"]), (&json!("invalid"), &json!(false)));
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");

    let again = ws.call(
        "connect",
        Some(connect_params(&gw.token(), 4, 4, "cli", &[])),
    );
    assert_eq!(again["ok"], false);
    assert_eq!(again["error"]["code"], "INVALID_REQUEST");
    assert_eq!(ws.call("health", None)["ok"], true);
}

#[test]
fn unknown_connect_fields_and_traceparent_are_tolerated() {
    let gw = Gateway::start();
    let mut params = connect_params(&gw.token(), 4, 4, "cli", &["operator.admin"]);
    params["someFutureField"] = json!({"nested": [1, 2]});
    params["client"]["someFutureClientField"] = json!("x");
    params["auth"]["agentRuntimeIdentityToken"] = json!("t");
    params["locale"] = json!("en-US");
    let (mut ws, hello) = client_as(&gw, params);
    assert_eq!(hello["type"], "hello-ok");
    ws.send(&json!({"type": "req", "id": "tp", "method": "health",
                    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}));
    assert_eq!(ws.recv_res("tp")["ok"], true);
}

#[test]
fn device_less_probes_get_no_scopes_and_missing_scope_errors_follow_the_version() {
    let gw = Gateway::start();
    let token = gw.token();
    let (mut ws, hello) = client_as(
        &gw,
        connect_params(&token, 4, 4, "probe", &["operator.read"]),
    );
    assert_eq!(hello["auth"]["scopes"], json!([]));
    assert_eq!(ws.call("health", None)["ok"], true);
    let res = ws.call("status", None);
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "FORBIDDEN");
    assert_eq!(res["error"]["message"], "missing scope: operator.read");
    assert_eq!(
        res["error"]["details"],
        json!({"code": "MISSING_SCOPE", "missingScope": "operator.read",
               "requiredScopes": ["operator.read"]})
    );

    let (mut v3, hello) = client_as(
        &gw,
        connect_params(&token, 3, 3, "probe", &["operator.read"]),
    );
    assert_eq!(hello["protocol"], 3);
    let res = v3.call("status", None);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST", "{res}");
    assert_eq!(res["error"]["message"], "missing scope: operator.read");

    let (mut cli, hello) = client_as(&gw, connect_params(&token, 4, 4, "cli", &["operator.read"]));
    assert_eq!(hello["auth"]["scopes"], json!(["operator.read"]));
    assert_eq!(cli.call("status", None)["ok"], true);
    let res = cli.call("system-event", Some(json!({"text": "hi"})));
    assert_eq!(res["error"]["code"], "FORBIDDEN", "{res}");
    assert_eq!(res["error"]["message"], "missing scope: operator.admin");
}

#[test]
fn eleven_denials_in_a_row_close_the_socket_1008() {
    let gw = Gateway::start();
    let (mut ws, _) = client_as(&gw, connect_params(&gw.token(), 4, 4, "probe", &[]));
    for i in 1..=10 {
        let res = ws.call("status", None);
        assert_eq!(res["error"]["code"], "FORBIDDEN", "denial {i}: {res}");
    }
    // Still open after ten; the eleventh is answered, then the socket closes.
    let res = ws.call("status", None);
    assert_eq!(res["error"]["code"], "FORBIDDEN", "{res}");
    assert!(matches!(ws.expect_close(), Closed::Frame(1008, _)));
}

// ---- presence, ticks, broadcasts ------------------------------------------

/// Params for a listed (non-cli) client with a known instanceId.
fn listed(token: &str, id: &str, mode: &str, instance: &str) -> Value {
    let mut p = params_as(token, id, mode, &[]);
    p["client"]["instanceId"] = json!(instance);
    p
}

fn has_entry(frame: &Value, instance: &str, reason: &str) -> bool {
    frame["event"] == "presence"
        && frame["payload"]["presence"].as_array().is_some_and(|l| {
            l.iter()
                .any(|e| e["instanceId"] == instance && e["reason"] == reason)
        })
}

/// Checks that a presence event's seq and stateVersion rise past `last`.
fn rising(last: &mut (u64, u64), f: &Value) {
    if f["event"] == "presence" {
        let s = f["seq"].as_u64().expect("presence seq");
        let v = f["stateVersion"]["presence"]
            .as_u64()
            .expect("stateVersion");
        assert!(s > last.0 && v > last.1, "not rising after {last:?}: {f}");
        *last = (s, v);
    }
}

#[test]
fn presence_events_announce_connects_and_disconnects_with_rising_versions() {
    let gw = Gateway::start();
    let token = gw.token();
    let a_id = format!("pres-a-{}", rand_id());
    let b_id = format!("pres-b-{}", rand_id());
    let (mut a, hello) = client_as(&gw, listed(&token, "test", "test", &a_id));
    let snapshot_version = hello["snapshot"]["stateVersion"]["presence"]
        .as_u64()
        .unwrap();
    let (b, _) = client_as(&gw, listed(&token, "openclaw-control-ui", "ui", &b_id));

    // Every presence event A sees carries a rising seq and version.
    let mut last = (0, 0);
    wait_frame(&mut a, "B's connect", |f| {
        rising(&mut last, f);
        has_entry(f, &b_id, "connect")
    });
    assert!(
        last.1 > snapshot_version,
        "{last:?} vs snapshot {snapshot_version}"
    );
    b.close();
    wait_frame(&mut a, "B's disconnect", |f| {
        rising(&mut last, f);
        has_entry(f, &b_id, "disconnect")
    });

    // A cli client is never listed; the gateway's own entry comes first.
    let cli_params = connect_params(&token, 4, 4, "cli", &["operator.read"]);
    let cli_id = cli_params["client"]["instanceId"].clone();
    let (mut cli, _) = client_as(&gw, cli_params);
    let res = cli.call("system-presence", None);
    let list = res["payload"].as_array().expect("a bare array");
    assert_eq!(list[0]["mode"], "gateway", "{res}");
    assert!(
        list.iter().any(|e| e["instanceId"] == a_id.as_str()),
        "{res}"
    );
    assert!(!list.iter().any(|e| e["instanceId"] == cli_id), "{res}");
}

#[test]
fn ticks_arrive_at_the_configured_interval_with_consecutive_seq() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local","tickIntervalMs":200}}"#);
    let (mut ws, hello) = gw.client();
    assert_eq!(hello["policy"]["tickIntervalMs"], 200);
    let mut last = None;
    for _ in 0..4 {
        let f = ws.recv();
        assert_eq!(f["event"], "tick", "{f}");
        assert_eq!(keys(&f["payload"]), ["ts"], "{f}");
        assert!(f["payload"]["ts"].is_u64(), "{f}");
        let seq = f["seq"].as_u64().expect("tick seq");
        if let Some(prev) = last {
            assert_eq!(seq, prev + 1, "{f}");
        }
        last = Some(seq);
    }
    // The counter is per connection: a newcomer starts low.
    let (mut other, _) = gw.client();
    let newcomer = wait_frame(&mut other, "a tick", |f| f["event"] == "tick");
    assert!(
        newcomer["seq"].as_u64().unwrap() < last.unwrap(),
        "{newcomer}"
    );
}

#[test]
fn system_event_updates_presence_for_everyone() {
    let gw = Gateway::start();
    let (mut watcher, _) = gw.client();
    let (mut admin, _) = gw.client();
    let res = admin.call(
        "system-event",
        Some(json!({"text": "hello world", "instanceId": "x1"})),
    );
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(res["payload"], json!({"ok": true}));
    wait_frame(&mut watcher, "the system event", |f| {
        f["event"] == "presence"
            && f["payload"]["presence"]
                .as_array()
                .is_some_and(|l| l.iter().any(|e| e["text"] == "hello world"))
    });
    let res = admin.call("system-event", Some(json!({"instanceId": "x1"})));
    assert_eq!(res["error"]["code"], "INVALID_REQUEST", "{res}");
}

// ---- methods --------------------------------------------------------------

#[test]
fn last_heartbeat_is_null_and_config_get_hides_the_secret() {
    let secret = "s3cret-token-value-123456";
    let gw = Gateway::with_config(&format!(
        r#"{{"gateway":{{"mode":"local","auth":{{"mode":"token","token":"{secret}"}}}}}}"#
    ));
    let (mut ws, _) = client_as(&gw, connect_params(secret, 4, 4, "cli", &["operator.read"]));
    let res = ws.call("last-heartbeat", None);
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(res["payload"], Value::Null);

    let res = ws.call("config.get", Some(json!({})));
    assert_eq!(res["ok"], true, "{res}");
    let p = &res["payload"];
    assert!(
        p["path"].as_str().is_some_and(|s| s.ends_with(".json")),
        "{p}"
    );
    assert_eq!(p["exists"], true);
    assert_eq!(p["valid"], true);
    assert!(!p.to_string().contains(secret), "secret leaked: {p}");
}

#[test]
fn models_list_reports_the_configured_models() {
    let gw = Gateway::with_config(
        r#"{"gateway":{"mode":"local"},"models":{"providers":{"acme":{"models":[
            {"id":"m1","name":"Model One","contextWindow":8192}]}}}}"#,
    );
    let (mut ws, _) = gw.client();
    let res = ws.call("models.list", Some(json!({})));
    assert_eq!(
        res["payload"]["models"],
        json!([{"id": "m1", "name": "Model One", "provider": "acme", "contextWindow": 8192}]),
        "{res}"
    );
}

#[test]
fn logs_tail_explains_when_file_logging_is_off_and_returns_lines_when_on() {
    let gw = Gateway::start();
    let (mut ws, _) = gw.client();
    let res = ws.call("logs.tail", Some(json!({})));
    assert_eq!(res["ok"], false, "{res}");
    let msg = res["error"]["message"].as_str().unwrap();
    assert!(msg.contains("logging.file"), "{msg}");

    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local"},"logging":{"file":true}}"#);
    let (mut ws, _) = gw.client();
    // The start-up line may reach the file just after stdout: poll briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = ws.call("logs.tail", Some(json!({})));
        assert_eq!(res["ok"], true, "{res}");
        let lines = res["payload"]["lines"].as_array().expect("lines array");
        if lines.iter().any(|l| l.to_string().contains("listening on")) {
            break;
        }
        assert!(Instant::now() < deadline, "no 'listening on' line: {res}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- limits and gates -----------------------------------------------------

const BROWSER: &str =
    r#"{"gateway":{"mode":"local","controlUi":{"allowedOrigins":["http://app.example"]}}}"#;

#[test]
fn failed_auth_from_a_browser_origin_on_loopback_is_locked_out() {
    let gw = Gateway::with_config(BROWSER);
    let origin = [("Origin", "http://app.example")];
    let connect = |token: &str| {
        let mut ws = Ws::connect(gw.port, &origin);
        let res = try_handshake(&mut ws, connect_params(token, 4, 4, "cli", &[]));
        assert!(matches!(ws.expect_close(), Closed::Frame(1008, _)), "{res}");
        res
    };
    for i in 1..=10 {
        let res = connect("wrong");
        assert_eq!(
            res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH",
            "try {i}: {res}"
        );
    }
    let res = connect(&gw.token());
    let err = &res["error"];
    assert_eq!(err["code"], "INVALID_REQUEST", "{res}");
    assert_eq!(err["details"]["code"], "AUTH_RATE_LIMITED", "{res}");
    assert_eq!(err["retryable"], true, "{res}");
    assert!(
        err["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0),
        "{res}"
    );
}

#[test]
fn the_origin_gate_refuses_foreign_and_null_origins_before_the_upgrade() {
    let gw = Gateway::with_config(BROWSER);
    for bad in ["http://evil.example", "null"] {
        let got = Ws::try_connect(gw.port, &[("Origin", bad)]).map(|_| ());
        assert_eq!(got, Err("HTTP 403".to_string()), "Origin: {bad}");
    }
    let mut ws = Ws::try_connect(gw.port, &[("Origin", "http://app.example")])
        .expect("allowed origin upgrades");
    challenge(&mut ws);
}

#[test]
fn deeply_nested_json_is_refused_without_harming_the_process() {
    let mut gw = Gateway::start();
    let (mut ws, _) = gw.client();
    let nested = |id: &str, depth: usize| {
        format!(
            r#"{{"type":"req","id":"{id}","method":"health","params":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // 50,000 levels fit in maxPayload; an error reply or a close is fine.
    ws.send_text(&nested("deep", 50_000));
    match ws.ws.read() {
        Ok(Message::Text(t)) => {
            let res: Value = serde_json::from_str(t.as_str()).unwrap();
            assert_eq!(res["ok"], false, "{res}");
        }
        Ok(Message::Close(_)) | Err(_) => {}
        Ok(other) => panic!("unexpected {other:?}"),
    }
    let (mut ws, _) = gw.client();
    assert_eq!(ws.call("health", None)["ok"], true);
    // The deepest frame serde_json accepts (128 levels, the frame object
    // included) is parsed on the 128 KiB connection stack.
    ws.send_text(&nested("at-limit", 126));
    assert_eq!(ws.recv_res("at-limit")["ok"], true);
    ws.send_text(&nested("over", 127));
    let res = ws.recv();
    assert_eq!(res["error"]["code"], "INVALID_REQUEST", "{res}");
    assert!(gw.child.try_wait().unwrap().is_none(), "gateway died");
    assert_eq!(ws.call("health", None)["ok"], true);
}

#[test]
fn frames_over_max_payload_after_hello_are_closed_1009() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"maxPayload":65536}}}"#);
    let (mut ws, hello) = gw.client();
    assert_eq!(hello["policy"]["maxPayload"], 65536);
    // Just under the limit is served.
    let pad = "p".repeat(60_000);
    let res = ws.call("health", Some(json!({ "pad": pad })));
    assert_eq!(res["ok"], true);
    ws.send_text(&"x".repeat(65_537));
    assert!(matches!(ws.expect_close(), Closed::Frame(1009, _)));
}

#[test]
fn unauthenticated_sockets_per_ip_are_capped() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"maxUnauthPerIp":2}}}"#);
    let mut first = gw.ws();
    let _second = gw.ws();
    let third = Ws::try_connect(gw.port, &[]).map(|_| ());
    assert_eq!(third, Err("HTTP 503".to_string()));
    // Completing connect frees the slot at once.
    first.handshake(connect_params(&gw.token(), 4, 4, "cli", &[]));
    let mut ws = Ws::try_connect(gw.port, &[]).expect("a slot is free again");
    challenge(&mut ws);
}

// ---- helpers ---------------------------------------------------------------

/// The sorted keys of a JSON object.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn list_has(list: &Value, item: &str) -> bool {
    list.as_array().is_some_and(|a| a.iter().any(|v| v == item))
}

/// Reads the `connect.challenge` that opens every socket.
fn challenge(ws: &mut Ws) -> Value {
    let ch = ws.recv();
    assert_eq!(ch["event"], "connect.challenge", "{ch}");
    ch
}

/// Connect params as `client.id` `id` in `mode`, with a fresh instanceId.
fn params_as(token: &str, id: &str, mode: &str, scopes: &[&str]) -> Value {
    let mut p = connect_params(token, 4, 4, mode, scopes);
    p["client"]["id"] = json!(id);
    p
}

/// Sends `connect` and returns the response frame, successful or not.
fn try_handshake(ws: &mut Ws, params: Value) -> Value {
    challenge(ws);
    let id = format!("c-{}", rand_id());
    ws.send(&json!({"type": "req", "id": id, "method": "connect", "params": params}));
    ws.recv_res(&id)
}

/// A handshaken client with these connect params.
fn client_as(gw: &Gateway, params: Value) -> (Ws, Value) {
    let mut ws = gw.ws();
    let hello = ws.handshake(params);
    (ws, hello)
}

/// The next frame for which `pred` holds, skipping others; fails after
/// 10 s even while other frames (ticks) keep arriving.
fn wait_frame(ws: &mut Ws, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let f = ws.recv();
        if pred(&f) {
            return f;
        }
        assert!(Instant::now() < deadline, "no {what} within 10 s; last {f}");
    }
}
