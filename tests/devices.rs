//! Device identity, pairing and device tokens against the real binary,
//! with a test client that holds its own Ed25519 key: silent loopback
//! approval, `NOT_PAIRED` for a peer that is not local, operator approval,
//! device-token reconnects, revocation and removal closing live sockets,
//! and pairings that survive `kill -9`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{rand_id, Closed, Gateway, Identity, Node, Operator, Ws};

const WAIT: Duration = Duration::from_secs(5);

/// Operator connect params for a device-bearing client (as the TUI or
/// the Control UI send them), authenticated with `auth`.
fn params(auth: Value, scopes: &[&str]) -> Value {
    json!({
        "minProtocol": 3, "maxProtocol": 4,
        "client": {"id": "openclaw-tui", "mode": "ui", "version": "test",
                   "platform": "linux", "deviceFamily": "Linux",
                   "instanceId": format!("dev-{}", rand_id())},
        "role": "operator", "scopes": scopes, "caps": [],
        "auth": auth,
    })
}

/// A socket whose upgrade says it came through a proxy: not local, so
/// never paired silently.
fn remote_ws(gw: &Gateway) -> Ws {
    Ws::connect(gw.port, &[("X-Forwarded-For", "203.0.113.7")])
}

fn error_of(res: &Value) -> &Value {
    assert_eq!(res["ok"], false, "expected a refusal: {res}");
    &res["error"]
}

#[test]
fn a_loopback_device_with_the_token_is_paired_silently_and_gets_a_device_token() {
    let gw = Gateway::start();
    let mut watcher = Operator::connect(&gw, "cli", &["operator.pairing"]);
    let me = Identity::new();
    let mut ws = gw.ws();
    let res = me.connect(
        &mut ws,
        &params(json!({"token": gw.token()}), &["operator.read"]),
    );
    assert_eq!(res["ok"], true, "{res}");
    let auth = &res["payload"]["auth"];
    assert_eq!(auth["method"], "token");
    assert_eq!(auth["role"], "operator");
    assert_eq!(auth["scopes"], json!(["operator.read"]));
    let token = auth["deviceToken"].as_str().expect("deviceToken");
    assert_eq!(token.len(), 43, "32 bytes of unpadded base64url: {token}");
    assert!(auth["issuedAtMs"].as_u64().unwrap() > 0);

    let resolved = watcher.wait_event("device.pair.resolved", WAIT, |e| {
        e["payload"]["deviceId"] == me.id.as_str()
    });
    assert_eq!(resolved["payload"]["decision"], "approved");

    let list = watcher.call("device.pair.list", None);
    let paired = &list["payload"]["paired"];
    let rec = paired
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deviceId"] == me.id.as_str())
        .expect("listed");
    assert_eq!(rec["approvedVia"], "silent");
    assert_eq!(rec["connected"], true);
    assert_eq!(rec["publicKey"], me.public_key.as_str());
    assert_eq!(rec["roles"], json!(["operator"]));
    let text = list.to_string();
    assert!(!text.contains(token), "token values are never listed");

    // On disk only the hash, and the file is the owner's alone.
    let file = std::fs::read_to_string(gw.state.join("devices.json")).unwrap();
    assert!(!file.contains(token));
    assert!(file.contains("tokenSha256"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(gw.state.join("devices.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn the_device_token_alone_reconnects_with_exactly_the_approved_scopes() {
    let gw = Gateway::start();
    let me = Identity::new();
    let mut ws = gw.ws();
    let first = me.connect(
        &mut ws,
        &params(json!({"token": gw.token()}), &["operator.read"]),
    );
    let token = first["payload"]["auth"]["deviceToken"]
        .as_str()
        .unwrap()
        .to_string();
    ws.close();

    // From a socket that is not local: the token, not locality, admits it.
    // A reconnect costs no disk write.
    let before = std::fs::read_to_string(gw.state.join("devices.json")).unwrap();
    let mut ws = remote_ws(&gw);
    let again = me.connect(
        &mut ws,
        &params(json!({"deviceToken": token}), &["operator.read"]),
    );
    assert_eq!(again["ok"], true, "{again}");
    let auth = &again["payload"]["auth"];
    assert_eq!(auth["method"], "device-token");
    assert_eq!(auth["deviceToken"], token.as_str());
    assert_eq!(auth["scopes"], json!(["operator.read"]));
    assert_eq!(ws.call("status", None)["ok"], true);
    ws.close();
    let after = std::fs::read_to_string(gw.state.join("devices.json")).unwrap();
    assert_eq!(before, after);

    let mut ws = remote_ws(&gw);
    let wider = me.connect(
        &mut ws,
        &params(
            json!({"deviceToken": token}),
            &["operator.read", "operator.admin"],
        ),
    );
    assert_eq!(error_of(&wider)["details"]["code"], "AUTH_SCOPE_MISMATCH");
    assert!(matches!(ws.expect_close(), Closed::Frame(1008, _)));

    let mut ws = remote_ws(&gw);
    let wrong = me.connect(
        &mut ws,
        &params(json!({"deviceToken": "x".repeat(43)}), &["operator.read"]),
    );
    let e = error_of(&wrong);
    assert_eq!(e["code"], "INVALID_REQUEST");
    assert_eq!(e["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH");
    match ws.expect_close() {
        Closed::Frame(1008, reason) => {
            assert!(reason.contains("device token mismatch"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    // Someone else's key with this device's token: refused.
    let thief = Identity::new();
    let mut ws = gw.ws();
    let stolen = thief.connect(
        &mut ws,
        &params(json!({"deviceToken": token}), &["operator.read"]),
    );
    assert_eq!(
        error_of(&stolen)["details"]["code"],
        "AUTH_DEVICE_TOKEN_MISMATCH"
    );
}

#[test]
fn a_device_that_is_not_local_waits_for_an_operator_then_connects() {
    let gw = Gateway::start();
    let mut pairer = Operator::connect(&gw, "cli", &["operator.pairing"]);
    let mut reader = Operator::connect(&gw, "cli", &["operator.read"]);
    let me = Identity::new();
    let ask = params(json!({"token": gw.token()}), &["operator.read"]);

    let mut ws = remote_ws(&gw);
    let res = me.connect(&mut ws, &ask);
    let e = error_of(&res);
    assert_eq!(e["code"], "NOT_PAIRED");
    assert_eq!(e["message"], "pairing required: device is not approved yet");
    let d = &e["details"];
    assert_eq!(d["code"], "PAIRING_REQUIRED");
    assert_eq!(d["reason"], "not-paired");
    assert_eq!(d["deviceId"], me.id.as_str());
    assert_eq!(d["requestedRole"], "operator");
    assert_eq!(d["requestedScopes"], json!(["operator.read"]));
    assert_eq!(
        d["remediationHint"],
        "Approve this device from the pending pairing requests."
    );
    let request_id = d["requestId"].as_str().unwrap().to_string();
    match ws.expect_close() {
        Closed::Frame(1008, reason) => assert_eq!(
            reason,
            format!("pairing required: device is not approved yet (requestId: {request_id})")
        ),
        other => panic!("{other:?}"),
    }

    let requested = pairer.wait_event("device.pair.requested", WAIT, |e| {
        e["payload"]["deviceId"] == me.id.as_str()
    });
    assert_eq!(requested["payload"]["requestId"], request_id.as_str());
    assert_eq!(requested["payload"]["remoteIp"], "127.0.0.1");

    // Retrying keeps the same request.
    let mut ws = remote_ws(&gw);
    let again = me.connect(&mut ws, &ask);
    assert_eq!(
        error_of(&again)["details"]["requestId"],
        request_id.as_str()
    );

    let listed = pairer.call("device.pair.list", None);
    let pending = listed["payload"]["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{listed}");
    assert_eq!(pending[0]["requestId"], request_id.as_str());

    let approved = pairer.call(
        "device.pair.approve",
        Some(json!({"requestId": request_id})),
    );
    assert_eq!(approved["ok"], true, "{approved}");
    assert_eq!(approved["payload"]["device"]["deviceId"], me.id.as_str());
    assert_eq!(approved["payload"]["device"]["approvedVia"], "operator");
    pairer.wait_event("device.pair.resolved", WAIT, |e| {
        e["payload"]["requestId"] == request_id.as_str() && e["payload"]["decision"] == "approved"
    });

    let mut ws = remote_ws(&gw);
    let ok = me.connect(&mut ws, &ask);
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(
        ok["payload"]["auth"]["deviceToken"].as_str().unwrap().len(),
        43
    );

    // Pairing events go only to operators who may approve.
    assert!(reader.events("device.pair.requested").is_empty());
    let _ = reader.call("health", None);
    assert!(reader.events("device.pair.requested").is_empty());
    assert!(reader.events("device.pair.resolved").is_empty());

    let unknown = pairer.call("device.pair.approve", Some(json!({"requestId": "nope"})));
    assert_eq!(error_of(&unknown)["message"], "unknown requestId");
}

#[test]
fn revoking_or_removing_closes_the_devices_sockets_and_refuses_its_token() {
    let gw = Gateway::start();
    let mut admin = Operator::connect(&gw, "cli", &["operator.admin"]);
    let me = Identity::new();
    let mut live = gw.ws();
    let first = me.connect(
        &mut live,
        &params(json!({"token": gw.token()}), &["operator.read"]),
    );
    let token = first["payload"]["auth"]["deviceToken"]
        .as_str()
        .unwrap()
        .to_string();

    let revoked = admin.call(
        "device.token.revoke",
        Some(json!({"deviceId": me.id, "role": "operator"})),
    );
    assert_eq!(revoked["ok"], true, "{revoked}");
    assert!(revoked["payload"]["revokedAtMs"].as_u64().is_some());
    match live.expect_close() {
        Closed::Frame(4001, reason) => assert_eq!(reason, "device token revoked"),
        other => panic!("{other:?}"),
    }
    let mut ws = remote_ws(&gw);
    let refused = me.connect(
        &mut ws,
        &params(json!({"deviceToken": token}), &["operator.read"]),
    );
    assert_eq!(
        error_of(&refused)["details"]["code"],
        "AUTH_DEVICE_TOKEN_MISMATCH"
    );

    // With the shared secret again it gets a new token; removing it then
    // closes that socket too and forgets the device.
    let mut live = gw.ws();
    let back = me.connect(
        &mut live,
        &params(json!({"token": gw.token()}), &["operator.read"]),
    );
    assert_eq!(back["ok"], true, "{back}");
    let removed = admin.call("device.pair.remove", Some(json!({"deviceId": me.id})));
    assert_eq!(removed["ok"], true, "{removed}");
    assert!(matches!(live.expect_close(), Closed::Frame(4001, _)));
    let list = admin.call("device.pair.list", None);
    assert!(!list.to_string().contains(&me.id), "{list}");
    let gone = admin.call("device.pair.remove", Some(json!({"deviceId": me.id})));
    assert_eq!(error_of(&gone)["message"], "unknown deviceId");
}

#[test]
fn a_bad_proof_is_refused_with_its_code_and_creates_no_request() {
    let gw = Gateway::start();
    let me = Identity::new();
    let ask = params(json!({"token": gw.token()}), &["operator.read"]);
    type Spoil = fn(&mut Value);
    let cases: [(&str, Spoil); 4] = [
        ("DEVICE_AUTH_SIGNATURE_INVALID", |b| {
            let sig = b["signature"].as_str().unwrap();
            let flipped = if sig.starts_with('A') { "B" } else { "A" };
            b["signature"] = json!(format!("{flipped}{}", &sig[1..]));
        }),
        ("DEVICE_AUTH_NONCE_MISMATCH", |b| {
            b["nonce"] = json!("another")
        }),
        ("DEVICE_AUTH_DEVICE_ID_MISMATCH", |b| {
            b["id"] = json!("0".repeat(64))
        }),
        ("DEVICE_AUTH_SIGNATURE_EXPIRED", |b| {
            let at = b["signedAt"].as_u64().unwrap();
            b["signedAt"] = json!(at - 600_000);
        }),
    ];
    for (code, spoil) in cases {
        let mut ws = remote_ws(&gw);
        let res = me.connect_with(&mut ws, &ask, spoil);
        let e = error_of(&res);
        assert_eq!(e["code"], "INVALID_REQUEST", "{code}");
        assert_eq!(e["details"]["code"], code, "{res}");
        match ws.expect_close() {
            Closed::Frame(1008, reason) => assert_eq!(reason, e["message"].as_str().unwrap()),
            other => panic!("{code}: {other:?}"),
        }
    }
    let mut admin = Operator::connect(&gw, "cli", &["operator.admin"]);
    let list = admin.call("device.pair.list", None);
    assert_eq!(list["payload"], json!({"pending": [], "paired": []}));

    // A node must bring a device.
    let mut ws = gw.ws();
    let mut p = Node::params(&gw, "bare", &[], "bare-1");
    p["client"]["instanceId"] = json!("bare-1");
    let ch = ws.recv();
    assert_eq!(ch["event"], "connect.challenge");
    ws.send(&json!({"type": "req", "id": "n1", "method": "connect", "params": p}));
    let res = ws.recv_res("n1");
    assert_eq!(error_of(&res)["code"], "NOT_PAIRED");
    assert_eq!(
        error_of(&res)["details"]["code"],
        "DEVICE_IDENTITY_REQUIRED"
    );
}

#[test]
fn pairings_tokens_and_the_gateway_identity_survive_kill_9() {
    let gw = Gateway::start();
    let mut admin = Operator::connect(&gw, "cli", &["operator.admin"]);
    let identity = admin.call("gateway.identity.get", None)["payload"].clone();
    assert_eq!(identity["deviceId"].as_str().unwrap().len(), 64);
    let me = Identity::new();
    let mut ws = remote_ws(&gw);
    let ask = params(json!({"token": gw.token()}), &["operator.read"]);
    let res = me.connect(&mut ws, &ask);
    let request_id = res["error"]["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    let approved = admin.call(
        "device.pair.approve",
        Some(json!({"requestId": request_id})),
    );
    assert_eq!(approved["ok"], true);
    let mut ws = remote_ws(&gw);
    let ok = me.connect(&mut ws, &ask);
    let token = ok["payload"]["auth"]["deviceToken"]
        .as_str()
        .unwrap()
        .to_string();
    drop(admin);
    drop(ws);

    // SIGKILL right after the answers: what was answered is on disk.
    let gw = gw.kill9_and_restart().expect("restarted");
    let mut ws = remote_ws(&gw);
    let again = me.connect(
        &mut ws,
        &params(json!({"deviceToken": token}), &["operator.read"]),
    );
    assert_eq!(again["ok"], true, "{again}");
    let mut admin = Operator::connect(&gw, "cli", &["operator.admin"]);
    assert_eq!(
        admin.call("gateway.identity.get", None)["payload"],
        identity
    );
}

#[test]
fn a_corrupt_pairing_file_stops_the_gateway_with_exit_78_naming_it() {
    let home = crate::util::TempDir::new();
    let state = home.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("devices.json"), "{\"version\":1,\"pending\":{}").unwrap();
    let mut cmd = crate::util::clawgate(home.path());
    cmd.args(["run", "--allow-unconfigured", "--port", "0", "--state-dir"])
        .arg(&state);
    let out = crate::util::run_with_timeout(cmd, Duration::from_secs(10));
    let err = crate::util::text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&format!("{}:1:", state.join("devices.json").display())),
        "{err}"
    );
    // The file is left for the admin to fix.
    assert_eq!(
        std::fs::read_to_string(state.join("devices.json")).unwrap(),
        "{\"version\":1,\"pending\":{}"
    );
}

#[test]
fn a_node_surface_waits_for_approval_and_the_node_hears_of_it_directly() {
    let gw = Gateway::start();
    let mut pairer = Operator::connect(&gw, "cli", &["operator.pairing", "operator.admin"]);
    let mut node = Node::connect(&gw, "kitchen-pi", &["system.which", "camera.snap"]);
    assert_eq!(node.hello["auth"]["role"], "node");
    assert_eq!(
        node.hello["auth"]["deviceToken"].as_str().unwrap().len(),
        43
    );
    let requested = pairer.wait_event("node.pair.requested", WAIT, |e| {
        e["payload"]["nodeId"] == node.id()
    });
    let p = &requested["payload"];
    assert_eq!(p["commands"], json!(["system.which", "camera.snap"]));
    assert_eq!(
        p["requiredApproveScopes"],
        json!(["operator.pairing", "operator.admin"])
    );
    let request_id = p["requestId"].as_str().unwrap().to_string();

    let listed = pairer.call("node.pair.list", None);
    assert_eq!(
        listed["payload"]["pending"][0]["requestId"],
        request_id.as_str()
    );
    assert_eq!(listed["payload"]["paired"], json!([]));

    // Approving system.which needs admin: a pairing-only operator is refused.
    let mut weak = Operator::connect(&gw, "cli", &["operator.pairing"]);
    let refused = weak.call("node.pair.approve", Some(json!({"requestId": request_id})));
    assert_eq!(
        error_of(&refused)["message"],
        "missing scope: operator.admin"
    );

    let approved = pairer.call("node.pair.approve", Some(json!({"requestId": request_id})));
    assert_eq!(approved["ok"], true, "{approved}");
    let n = &approved["payload"]["node"];
    assert_eq!(n["nodeId"], node.id());
    assert_eq!(n["commands"], json!(["system.which", "camera.snap"]));
    let direct = node.ws.recv_event("node.pair.resolved");
    assert_eq!(direct["payload"]["decision"], "approved");
    assert!(
        direct.get("seq").is_none(),
        "directed events carry no seq: {direct}"
    );

    let listed = pairer.call("node.pair.list", None);
    assert_eq!(listed["payload"]["pending"], json!([]));
    assert_eq!(listed["payload"]["paired"][0]["nodeId"], node.id());
    assert_eq!(listed["payload"]["paired"][0]["connected"], true);

    // The same node coming back with the same surface asks for nothing.
    let id = node.identity;
    let id_text = id.id.clone();
    drop(node.ws);
    let again = Node::connect_as(&gw, id, "kitchen-pi", &["system.which", "camera.snap"]);
    let listed = pairer.call("node.pair.list", None);
    assert_eq!(listed["payload"]["pending"], json!([]), "{listed}");
    drop(again);
    // Offline, it is still listed as paired, with what it was approved for.
    let end = std::time::Instant::now() + WAIT;
    let entry = loop {
        let list = pairer.call("node.list", None);
        let nodes = list["payload"]["nodes"].as_array().unwrap().clone();
        let n = nodes.into_iter().find(|n| n["nodeId"] == id_text.as_str());
        if let Some(n) = n.filter(|n| n["connected"] == false) {
            break n;
        }
        assert!(std::time::Instant::now() < end, "{list}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(entry["paired"], true);
    assert_eq!(entry["approvalState"], "approved");
    assert_eq!(entry["commands"], json!(["system.which", "camera.snap"]));
    let described = pairer.call("node.describe", Some(json!({"nodeId": id_text})));
    assert_eq!(described["payload"]["connected"], false, "{described}");

    let removed = pairer.call("node.pair.remove", Some(json!({"nodeId": request_id})));
    assert_eq!(error_of(&removed)["message"], "unknown nodeId");
}
