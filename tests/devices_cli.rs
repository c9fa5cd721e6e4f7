//! `clawgate devices` and `clawgate nodes`, black-box: usage errors, help,
//! and what a gateway's answers become on stdout, stderr and in the exit
//! status. The tests marked `needs device methods` drive a gateway that
//! serves device pairing and nodes; the others hold against any gateway,
//! including one that answers "unknown method" for all of them.

use serde_json::json;

use crate::util::{assert_exit, json_of, lone, text, Gateway, Node};

// ---- without a gateway ---------------------------------------------------------

#[test]
fn devices_and_nodes_usage_errors_exit_2_naming_the_problem() {
    let cases: &[(&[&str], &str)] = &[
        (&["devices"], "missing action for 'clawgate devices'"),
        (&["nodes", "frob"], "unknown action 'frob' for 'clawgate nodes'"),
        (
            &["devices", "approve"],
            "missing request id for 'clawgate devices approve'",
        ),
        (
            &["devices", "rotate", "3b7e"],
            "'clawgate devices rotate' needs '--role'",
        ),
        (
            &["devices", "list", "--role", "node"],
            "unknown option '--role' for 'clawgate devices list'",
        ),
        (
            &["nodes", "invoke", "--command", "system.which"],
            "'clawgate nodes invoke' needs '--node'",
        ),
        (
            &["nodes", "invoke", "--node", "n", "--command", "c", "--params", "{bins"],
            "invalid value '{bins' for '--params': not valid JSON: key must be a string at line 1 column 2",
        ),
        (
            &["gateway", "nodes", "describe"],
            "missing node id or name for 'clawgate nodes describe'",
        ),
    ];
    for (args, want) in cases {
        let out = lone(args);
        assert_exit(&out, 2);
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!("clawgate: {want}")),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn each_action_explains_itself_with_examples() {
    let out = lone(&["nodes", "--help"]);
    assert_exit(&out, 0);
    let t = text(&out.stdout);
    assert!(t.starts_with("clawgate nodes: "), "{t}");
    for action in [
        "list", "pending", "approve", "reject", "remove", "describe", "invoke",
    ] {
        assert!(t.contains(&format!("\n  {action} ")), "{action}: {t}");
    }
    assert!(t.contains("Examples:\n"), "{t}");
    let out = lone(&["gateway", "nodes", "invoke", "--help"]);
    assert_exit(&out, 0);
    let t = text(&out.stdout);
    assert!(t.starts_with("clawgate nodes invoke: "), "{t}");
    assert!(t.contains("--invoke-timeout MS"), "{t}");
    assert!(t.contains("--command system.which"), "{t}");
    let out = lone(&["help", "devices", "rotate"]);
    assert_exit(&out, 0);
    let t = text(&out.stdout);
    assert!(t.starts_with("clawgate devices rotate: "), "{t}");
    assert!(t.contains("--scope S"), "{t}");
    let top = text(&lone(&["--help"]).stdout);
    assert!(
        top.contains("\n  devices ") && top.contains("\n  nodes "),
        "{top}"
    );
}

// ---- against a gateway without the methods -----------------------------------------

#[test]
fn unknown_ids_are_the_gateways_error_with_its_code_and_exit_1() {
    let gw = Gateway::start();
    let cases: &[(&[&str], &str)] = &[
        (&["devices", "approve", "6f1c"], "unknown requestId"),
        (&["devices", "reject", "6f1c"], "unknown requestId"),
        (&["devices", "remove", "3b7e"], "unknown deviceId"),
        (
            &["devices", "revoke", "3b7e", "--role", "node"],
            "unknown deviceId",
        ),
        (&["nodes", "approve", "9a4e"], "unknown requestId"),
        (&["gateway", "nodes", "reject", "9a4e"], "unknown requestId"),
    ];
    for (args, message) in cases {
        let out = gw.cli(args);
        assert_exit(&out, 1);
        let err = text(&out.stderr);
        assert_eq!(
            err,
            format!("clawgate: {message} (INVALID_REQUEST)\n"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
    // --json: the error object on stdout as well.
    let out = gw.cli(&["devices", "remove", "3b7e", "--json"]);
    assert_exit(&out, 1);
    let v = json_of(&out);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], "INVALID_REQUEST", "{v}");
    assert_eq!(v["error"]["message"], "unknown deviceId", "{v}");
}

// ---- against a gateway that serves devices and nodes -----------------------------

/// The id of the one node `nodes list --json` shows.
fn only_node_id(gw: &Gateway) -> String {
    let out = gw.cli(&["nodes", "list", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    let nodes = v["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes: {v}"));
    assert_eq!(nodes.len(), 1, "{v}");
    nodes[0]["nodeId"].as_str().expect("nodeId").to_owned()
}

/// The request id of the one pending node surface.
fn only_pending_request(gw: &Gateway) -> String {
    let out = gw.cli(&["nodes", "pending", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    let pending = v["pending"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(pending.len(), 1, "{v}");
    pending[0]["requestId"]
        .as_str()
        .expect("requestId")
        .to_owned()
}

#[test]
fn a_node_is_approved_by_request_prefix_then_invoked_by_name() {
    let gw = Gateway::start();
    let node = Node::connect(&gw, "capnode", &["system.which"]);

    let out = gw.cli(&["nodes", "pending"]);
    assert_exit(&out, 0);
    let t = text(&out.stdout);
    assert!(t.starts_with("Pending node requests (1)\nREQUEST "), "{t}");
    assert!(
        t.contains("capnode") && t.contains("asks for: system.which"),
        "{t}"
    );
    let out = gw.cli(&["nodes", "list"]);
    assert_exit(&out, 0);
    let t = text(&out.stdout);
    assert!(t.contains("capnode") && t.contains("pending ("), "{t}");

    // Invoking before the approval is the gateway's refusal, exit 1.
    let args = [
        "nodes",
        "invoke",
        "--node",
        "capnode",
        "--command",
        "system.which",
    ];
    let out = gw.cli(&args);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("node command not allowed"),
        "{}",
        text(&out.stderr)
    );

    let request = only_pending_request(&gw);
    let out = gw.cli(&["nodes", "approve", &request[..8]]);
    assert_exit(&out, 0);
    let t = text(&out.stdout);
    assert!(
        t.starts_with(&format!("Approved request {request}: node capnode (")),
        "{t}"
    );
    assert!(t.contains("system.which"), "{t}");
    let out = gw.cli(&["nodes", "pending"]);
    assert_eq!(text(&out.stdout), "Pending node requests: none\n");

    let node_id = only_node_id(&gw);
    let serving = std::thread::spawn(move || {
        let mut node = node;
        node.serve_invoke(|command, params| {
            assert_eq!(command, "system.which");
            Ok(json!({"bins": {"sh": "/bin/sh"}, "asked": params}))
        })
    });
    let out = gw.cli(&[
        "nodes",
        "invoke",
        "--node",
        "capnode",
        "--command",
        "system.which",
        "--params",
        r#"{"bins":["sh"]}"#,
        "--idempotency-key",
        "k-1",
    ]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!(
        v,
        json!({"bins": {"sh": "/bin/sh"}, "asked": {"bins": ["sh"]}})
    );
    let req = serving.join().expect("node thread");
    let p = &req["payload"];
    assert_eq!(p["nodeId"], node_id.as_str(), "{req}");
    assert_eq!(p["idempotencyKey"], "k-1", "{req}");
    assert_eq!(p["paramsJSON"], r#"{"bins":["sh"]}"#, "{req}");

    let out = gw.cli(&["nodes", "describe", &node_id[..10]]);
    assert_exit(&out, 0);
    let t = text(&out.stdout);
    assert!(t.starts_with("Node:") && t.contains(&node_id), "{t}");
    assert!(t.contains("Commands:") && t.contains("system.which"), "{t}");
}

#[test]
fn invoking_an_unknown_node_names_the_known_ones() {
    let gw = Gateway::start();
    let _node = Node::connect(&gw, "capnode", &["system.which"]);
    let node_id = only_node_id(&gw);
    let out = gw.cli(&[
        "nodes",
        "invoke",
        "--node",
        "garage",
        "--command",
        "system.which",
    ]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    let want = format!(
        "clawgate: unknown node 'garage' (nodes: capnode ({}",
        &node_id[..12]
    );
    assert!(err.starts_with(&want), "{err}");
}

#[test]
fn a_local_node_is_paired_silently_and_can_be_removed() {
    let gw = Gateway::start();
    let node = Node::connect(&gw, "capnode", &["system.which"]);
    let out = gw.cli(&["devices", "list", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    let paired = v["paired"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(paired.len(), 1, "{v}");
    assert_eq!(paired[0]["approvedVia"], "silent", "{v}");
    assert_eq!(paired[0]["connected"], true, "{v}");
    let device = paired[0]["deviceId"].as_str().expect("deviceId").to_owned();
    let out = gw.cli(&["devices", "list"]);
    assert_exit(&out, 0);
    let t = text(&out.stdout);
    assert!(
        t.starts_with("Pending requests: none\n\nPaired devices (1)\n"),
        "{t}"
    );
    assert!(t.contains(&device[..12]) && t.contains("silent, "), "{t}");

    // A node token needs operator.admin, which the command asks for.
    let out = gw.cli(&["devices", "revoke", &device[..12], "--role", "node"]);
    assert_exit(&out, 0);
    assert_eq!(
        text(&out.stdout),
        format!("Revoked the node token of device {device}\n")
    );
    let out = gw.cli(&["devices", "rotate", &device, "--role", "node", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!(v["deviceId"], device.as_str(), "{v}");
    assert!(
        v.get("token").is_none(),
        "a token went to another client: {v}"
    );

    let out = gw.cli(&["devices", "remove", &device[..12]]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), format!("Removed device {device}\n"));
    let out = gw.cli(&["devices", "list"]);
    assert!(text(&out.stdout).ends_with("Paired devices: none\n"));
    drop(node);
    let out = gw.cli(&["devices", "remove", &device]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("unknown deviceId"),
        "{}",
        text(&out.stderr)
    );
}
