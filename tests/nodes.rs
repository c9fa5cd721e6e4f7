//! The node runtime against the real binary: the `node.invoke` relay and
//! every way an invoke ends, the node registry as operators read it, node
//! events, who may call what, and the keepalive that closes a silent peer.
//! The peers are the fakes of `util::fake`; after each ending the test
//! checks that nothing is left waiting in the gateway.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{Gateway, Node, Operator, Opts};

fn admin(gw: &Gateway) -> Operator {
    Operator::connect(gw, "cli", &["operator.admin"])
}

/// The pending surface request of node `id`, as `node.pair.list` shows it.
fn surface_request(op: &mut Operator, id: &str) -> String {
    let list = op.call("node.pair.list", None);
    list["payload"]["pending"]
        .as_array()
        .and_then(|p| p.iter().find(|r| r["nodeId"] == id))
        .and_then(|r| r["requestId"].as_str())
        .unwrap_or_else(|| panic!("no surface request for {id}: {list}"))
        .to_string()
}

/// A node (paired silently on loopback) whose declared surface `op`, an
/// admin, approved as `openclaw nodes approve` does.
fn approved_node(gw: &Gateway, op: &mut Operator, name: &str, commands: &[&str]) -> Node {
    let mut node = Node::connect(gw, name, commands);
    let request = surface_request(op, node.id());
    let res = op.call("node.pair.approve", Some(json!({"requestId": request})));
    assert_eq!(res["ok"], true, "{res}");
    node.ws.recv_event("node.pair.resolved");
    node
}

fn invoke(node: &str, command: &str, params: Value, key: &str) -> Option<Value> {
    Some(json!({"nodeId": node, "command": command, "params": params,
                "idempotencyKey": key, "timeoutMs": 15000}))
}

/// Waits until the gateway has no request waiting for a later answer.
fn settled(op: &mut Operator) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = op.call("status", None);
        let c = &s["payload"]["gateway"]["connections"];
        if c["pendingReplies"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "still waiting: {c}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn error(res: &Value) -> &Value {
    assert_eq!(res["ok"], false, "{res}");
    &res["error"]
}

#[test]
fn an_invoke_round_trips_params_and_payload_through_the_node() {
    let gw = Gateway::start();
    let mut op = admin(&gw);
    let mut node = approved_node(&gw, &mut op, "kitchen-pi", &["system.which", "echo"]);
    let id = op.request(
        "node.invoke",
        invoke(node.id(), "echo", json!({"bins": ["uname", "sh"]}), "k1"),
    );
    let req = node.serve_invoke(|command, params| {
        assert_eq!(command, "echo");
        Ok(json!({"got": params}))
    });
    assert!(req.get("seq").is_none(), "directed, without seq: {req}");
    let p = &req["payload"];
    assert_eq!(p["nodeId"], node.id());
    assert_eq!(p["paramsJSON"], r#"{"bins":["uname","sh"]}"#);
    assert_eq!(p["idempotencyKey"], "k1");
    assert!(p["timeoutMs"].as_u64().is_some_and(|ms| ms <= 15000), "{p}");
    let res = op.response(&id);
    assert_eq!(res["ok"], true, "{res}");
    let r = &res["payload"];
    assert_eq!(r["ok"], true);
    assert_eq!(r["nodeId"], node.id());
    assert_eq!(r["command"], "echo");
    assert_eq!(r["payload"], json!({"got": {"bins": ["uname", "sh"]}}));
    assert_eq!(r["payloadJSON"], r#"{"got":{"bins":["uname","sh"]}}"#);

    // A node's failure is UNAVAILABLE with what it said.
    let id = op.request("node.invoke", invoke(node.id(), "echo", json!(null), "k2"));
    let req = node.next_invoke();
    assert_eq!(req["payload"]["paramsJSON"], Value::Null);
    assert_eq!(node.answer(&req, Err(("EPERM", "denied")))["ok"], true);
    let e = error(&op.response(&id)).clone();
    assert_eq!(e["code"], "UNAVAILABLE");
    assert_eq!(e["message"], "EPERM: denied");
    assert_eq!(e["details"]["nodeError"]["code"], "EPERM");
    assert_eq!(e["details"]["nodeCommandDispatched"], true);
    settled(&mut op);
}

#[test]
fn a_node_leaving_mid_invoke_fails_it_unavailable() {
    let gw = Gateway::start();
    let mut op = admin(&gw);
    let mut node = approved_node(&gw, &mut op, "pi", &["echo"]);
    let node_id = node.id().to_string();
    let id = op.request("node.invoke", invoke(&node_id, "echo", json!({}), "k"));
    node.next_invoke();
    node.ws.close();
    let e = error(&op.response(&id)).clone();
    assert_eq!(e["code"], "UNAVAILABLE");
    assert_eq!(e["message"], "DISCONNECTED: node disconnected (echo)");
    assert_eq!(e["details"]["nodeError"]["code"], "DISCONNECTED");
    assert_eq!(e["details"]["nodeCommandDispatched"], true);
    settled(&mut op);
    // Gone from the registry: the next invoke is not connected.
    let res = op.call("node.invoke", invoke(&node_id, "echo", json!({}), "k"));
    assert_eq!(error(&res)["details"]["code"], "NOT_CONNECTED");
}

#[test]
fn an_unanswered_invoke_times_out_and_its_late_result_is_ignored() {
    let gw = Gateway::start();
    let mut op = admin(&gw);
    let mut node = approved_node(&gw, &mut op, "pi", &["echo"]);
    let started = Instant::now();
    let res = op.call(
        "node.invoke",
        Some(
            json!({"nodeId": node.id(), "command": "echo", "idempotencyKey": "k",
                    "timeoutMs": 300}),
        ),
    );
    let took = started.elapsed();
    let e = error(&res);
    assert_eq!(e["code"], "UNAVAILABLE");
    assert_eq!(e["message"], "TIMEOUT: node invoke timed out");
    assert_eq!(e["details"]["nodeError"]["code"], "TIMEOUT");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );
    settled(&mut op);
    let req = node.next_invoke();
    assert_eq!(req["payload"]["timeoutMs"], 300);
    let late = node.answer(&req, Ok(json!({"late": true})));
    assert_eq!(
        late["payload"],
        json!({"ok": true, "ignored": true}),
        "{late}"
    );
    // An id the gateway never sent is ignored the same way.
    let unknown = node.call(
        "node.invoke.result",
        Some(json!({"id": "no-such-id", "nodeId": node.id(), "ok": true})),
    );
    assert_eq!(unknown["payload"], json!({"ok": true, "ignored": true}));
}

#[test]
fn commands_outside_the_surface_are_refused_at_once() {
    let gw = Gateway::start();
    let mut op = admin(&gw);
    let node = approved_node(&gw, &mut op, "pi", &["echo", "system.run"]);
    let res = op.call(
        "node.invoke",
        invoke(node.id(), "camera.snap", json!({}), "k"),
    );
    let e = error(&res);
    assert_eq!(e["code"], "INVALID_REQUEST");
    assert_eq!(
        e["message"],
        "node command not allowed: the node (platform: linux) does not support \"camera.snap\""
    );
    assert_eq!(e["details"]["reason"], "command not declared by node");
    let res = op.call("node.invoke", invoke(" ", "echo", json!({}), "k"));
    assert_eq!(error(&res)["message"], "nodeId and command required");
    let res = op.call("node.invoke", invoke("nobody", "echo", json!({}), "k"));
    let e = error(&res);
    assert_eq!(e["message"], "node not connected");
    assert_eq!(e["details"]["nodeCommandDispatched"], false);
    assert_eq!(e["details"]["nodeError"]["code"], "NOT_CONNECTED");

    // Running programs needs admin, whatever the surface says.
    let mut writer = Operator::connect(&gw, "cli", &["operator.write"]);
    let res = writer.call(
        "node.invoke",
        invoke(node.id(), "system.run", json!({}), "k"),
    );
    let e = error(&res);
    assert_eq!(e["code"], "FORBIDDEN");
    assert_eq!(e["message"], "missing scope: operator.admin");
    let mut reader = Operator::connect(&gw, "cli", &["operator.read"]);
    let res = reader.call("node.invoke", invoke(node.id(), "echo", json!({}), "k"));
    assert_eq!(error(&res)["message"], "missing scope: operator.write");
    settled(&mut op);
}

#[test]
fn a_surface_waiting_for_approval_refuses_invokes_until_approved_without_a_reconnect() {
    let gw = Gateway::start();
    let mut op = admin(&gw);
    let mut node = Node::connect(&gw, "pi", &["echo"]);
    let res = op.call("node.invoke", invoke(node.id(), "echo", json!({}), "k"));
    let e = error(&res);
    assert_eq!(e["code"], "INVALID_REQUEST");
    assert!(
        e["message"].as_str().unwrap().contains("pending approval"),
        "{e}"
    );
    let d = op.call("node.describe", Some(json!({"nodeId": node.id()})));
    assert_eq!(d["payload"]["approvalState"], "pending-approval", "{d}");
    let request = surface_request(&mut op, node.id());
    assert_eq!(d["payload"]["pendingRequestId"], request.as_str());
    assert_eq!(d["payload"]["commands"], json!([]));
    let approved = op.call("node.pair.approve", Some(json!({"requestId": request})));
    assert_eq!(approved["ok"], true, "{approved}");
    let id = op.request("node.invoke", invoke(node.id(), "echo", json!({}), "k"));
    node.serve_invoke(|_, _| Ok(json!("live")));
    assert_eq!(op.response(&id)["payload"]["payload"], "live");
    let d = op.call("node.describe", Some(json!({"nodeId": node.id()})));
    assert_eq!(d["payload"]["approvalState"], "approved", "{d}");
}

#[test]
fn an_idempotent_retry_gets_the_same_answer_without_a_second_invoke() {
    let gw = Gateway::start();
    let mut op = admin(&gw);
    let mut other = admin(&gw);
    let mut node = approved_node(&gw, &mut op, "pi", &["echo"]);
    // Two operators ask at once with one key: the node is asked once and
    // both get its answer.
    let a = op.request(
        "node.invoke",
        invoke(node.id(), "echo", json!({"n": 1}), "same"),
    );
    let req = node.next_invoke();
    let b = other.request(
        "node.invoke",
        invoke(node.id(), "echo", json!({"n": 1}), "same"),
    );
    settled_count(&mut Operator::connect(&gw, "cli", &["operator.read"]), 2);
    node.answer(&req, Ok(json!({"run": 1})));
    let first = op.response(&a);
    assert_eq!(first["payload"]["payload"], json!({"run": 1}), "{first}");
    assert_eq!(other.response(&b)["payload"], first["payload"]);
    // A retry after the answer is replayed.
    let again = op.call(
        "node.invoke",
        invoke(node.id(), "echo", json!({"n": 1}), "same"),
    );
    assert_eq!(again["payload"], first["payload"]);
    // The next request the node sees is the next key's: "same" was sent once.
    let c = op.request(
        "node.invoke",
        invoke(node.id(), "echo", json!({"n": 2}), "next"),
    );
    let req = node.next_invoke();
    assert_eq!(req["payload"]["idempotencyKey"], "next");
    node.answer(&req, Ok(json!({"run": 2})));
    assert_eq!(op.response(&c)["payload"]["payload"], json!({"run": 2}));
    settled(&mut op);
}

/// Waits until exactly `n` requests wait for a later answer.
fn settled_count(op: &mut Operator, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = op.call("status", None);
        let c = &s["payload"]["gateway"]["connections"];
        if c["pendingReplies"] == n {
            return;
        }
        assert!(Instant::now() < deadline, "expected {n} waiting: {c}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_operator_leaving_before_the_answer_leaves_nothing_behind() {
    let gw = Gateway::start();
    let mut watcher = admin(&gw);
    let mut node = approved_node(&gw, &mut watcher, "pi", &["echo"]);
    let mut op = admin(&gw);
    op.request("node.invoke", invoke(node.id(), "echo", json!({}), "k"));
    let req = node.next_invoke();
    settled_count(&mut watcher, 1);
    op.ws.close();
    settled(&mut watcher);
    let late = node.answer(&req, Ok(json!({})));
    assert_eq!(late["payload"], json!({"ok": true, "ignored": true}));
    // Nothing was kept for the key either: no answer was given.
    let mut again = admin(&gw);
    let id = again.request("node.invoke", invoke(node.id(), "echo", json!({}), "k"));
    let req = node.next_invoke();
    node.answer(&req, Ok(json!({"second": true})));
    assert_eq!(
        again.response(&id)["payload"]["payload"],
        json!({"second": true})
    );
}

#[test]
fn a_node_may_answer_only_its_own_invokes() {
    let gw = Gateway::start();
    let mut op = admin(&gw);
    let mut a = approved_node(&gw, &mut op, "a", &["echo"]);
    let mut b = approved_node(&gw, &mut op, "b", &["echo"]);
    let id = op.request("node.invoke", invoke(a.id(), "echo", json!({}), "k"));
    let req = a.next_invoke();
    let invoke_id = req["payload"]["id"].clone();
    // b claims to be a: refused.
    let forged = b.call(
        "node.invoke.result",
        Some(json!({"id": invoke_id, "nodeId": a.id(), "ok": true, "payloadJSON": "1"})),
    );
    assert_eq!(error(&forged)["message"], "nodeId mismatch");
    // b answers a's invoke as itself: not its invoke, ignored.
    let stray = b.call(
        "node.invoke.result",
        Some(json!({"id": invoke_id, "nodeId": b.id(), "ok": true, "payloadJSON": "1"})),
    );
    assert_eq!(stray["payload"]["ignored"], true, "{stray}");
    a.answer(&req, Ok(json!("from a")));
    assert_eq!(op.response(&id)["payload"]["payload"], "from a");
    settled(&mut op);
}

#[test]
fn node_methods_are_for_nodes_and_operator_methods_for_operators() {
    let gw = Gateway::start();
    let mut op = admin(&gw);
    let mut node = approved_node(&gw, &mut op, "pi", &["echo"]);
    let res = op.call(
        "node.invoke.result",
        Some(json!({"id": "x", "nodeId": "y", "ok": true})),
    );
    assert_eq!(error(&res)["message"], "unauthorized role: operator");
    let res = op.call("node.event", Some(json!({"event": "x"})));
    assert_eq!(error(&res)["message"], "unauthorized role: operator");
    for m in ["node.list", "node.describe", "node.invoke"] {
        let res = node.call(m, Some(json!({})));
        assert_eq!(error(&res)["message"], "unauthorized role: node", "{m}");
    }
    // The start-up publications settle the node host.
    let inv = node.call(
        "node.runnerInventory.update",
        Some(json!({"protocolFeatures": ["node-worker-supervisor-v6"], "workerHost": {"enabled": false}})),
    );
    assert_eq!(inv["payload"], json!({"nodeId": node.id()}));
    let skills = node.call("node.skills.update", Some(json!({"skills": []})));
    assert_eq!(
        skills["payload"],
        json!({"nodeId": node.id(), "skills": []})
    );
    let tools = node.call("node.pluginTools.update", Some(json!({"tools": []})));
    assert_eq!(tools["payload"], json!({"nodeId": node.id(), "tools": []}));
    let hello_events = &node.hello["features"]["events"];
    assert!(
        hello_events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "node.invoke.request"),
        "{hello_events}"
    );
}

#[test]
fn operators_list_and_describe_connected_nodes() {
    let gw = Gateway::start();
    let mut op = Operator::connect(&gw, "cli", &["operator.read"]);
    let node = approved_node(
        &gw,
        &mut admin(&gw),
        "kitchen-pi",
        &["echo", "system.which"],
    );
    let list = op.call("node.list", None);
    let nodes = list["payload"]["nodes"].as_array().expect("nodes").clone();
    assert!(list["payload"]["ts"].as_u64().is_some(), "{list}");
    let e = nodes
        .iter()
        .find(|e| e["nodeId"] == node.id())
        .expect("listed");
    assert_eq!(e["displayName"], "kitchen-pi");
    assert_eq!(e["clientId"], "node-host");
    assert_eq!(e["clientMode"], "node");
    assert_eq!(e["platform"], "linux");
    assert_eq!(e["connected"], true);
    assert_eq!(e["approvalState"], "approved");
    assert_eq!(e["commands"], json!(["echo", "system.which"]));
    assert_eq!(e["caps"], json!(["system"]));
    assert_eq!(e["pathEnv"], "/usr/bin:/bin");
    assert!(e["connectedAtMs"].as_u64().is_some());
    let d = op.call("node.describe", Some(json!({"nodeId": node.id()})));
    assert_eq!(d["payload"]["nodeId"], node.id());
    assert!(d["payload"]["ts"].as_u64().is_some());
    let unknown = op.call("node.describe", Some(json!({"nodeId": "nope"})));
    assert_eq!(error(&unknown)["message"], "unknown nodeId");
}

#[test]
fn host_stats_from_a_node_reach_operators_and_the_list() {
    let gw = Gateway::start();
    let mut op = Operator::connect(&gw, "cli", &["operator.read"]);
    let mut node = approved_node(&gw, &mut admin(&gw), "pi", &["echo"]);
    let stats = json!({"cpuCount": 4, "loadAverage": [0.5, 0.4, 0.3], "updatedAtMs": 1});
    let res = node.call(
        "node.event",
        Some(json!({"event": "node.host.stats", "payloadJSON": stats.to_string()})),
    );
    assert_eq!(
        res["payload"],
        json!({"ok": true, "event": "node.host.stats", "handled": true, "reason": "updated"})
    );
    let id = node.id().to_string();
    let ev = op.wait_event("node.hostStats", Duration::from_secs(5), |f| {
        f["payload"]["nodeId"] == id.as_str()
    });
    assert_eq!(ev["payload"]["hostStats"], stats);
    let d = op.call("node.describe", Some(json!({"nodeId": node.id()})));
    assert_eq!(d["payload"]["hostStats"], stats);
    let other = node.call(
        "node.event",
        Some(json!({"event": "chat.subscribe", "payload": {}})),
    );
    assert_eq!(
        other["payload"],
        json!({"ok": true, "event": "chat.subscribe", "handled": false})
    );
}

#[test]
fn a_peer_that_does_not_answer_pings_is_closed_and_leaves_the_registry() {
    let gw = Gateway::with(Opts {
        env: &[("CLAWGATE_TEST_PING_MS", "200")],
        ..Opts::default()
    });
    let mut op = admin(&gw);
    // The node reads nothing, so it never answers a ping.
    let mut silent = Node::connect(&gw, "silent", &["echo"]);
    let id = silent.id().to_string();
    let started = Instant::now();
    loop {
        // The operator reads (its client answers pings as it does).
        let list = op.call("node.list", None);
        // Once gone it is listed as a paired node that is offline.
        let online = list["payload"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["nodeId"] == id.as_str() && n["connected"] == true);
        if !online {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still listed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "closed after {took:?}");
    match silent.ws.expect_close() {
        crate::util::Closed::Frame(code, reason) => {
            assert_eq!((code, reason.as_str()), (4000, "pong timeout"))
        }
        crate::util::Closed::NoFrame => {}
    }
    // The operator that kept answering is still here, well past a window.
    assert_eq!(op.call("health", None)["ok"], true);
}
