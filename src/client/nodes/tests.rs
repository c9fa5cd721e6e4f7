use serde_json::json;

use super::*;

const NOW: u64 = 1_795_290_870_000;
const A: &str = "3b7e4f01a2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3";
const B: &str = "3b7e4f01a2c9ffff0000111122223333444455556666777788889999aaaabbbb";
const C: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

fn nodes() -> Vec<Value> {
    vec![
        json!({"nodeId": A, "displayName": "capnode", "connected": true}),
        json!({"nodeId": B, "displayName": "Kitchen", "connected": false}),
        json!({"nodeId": C, "displayName": "kitchen", "connected": true}),
    ]
}

fn id_of(r: Result<&Value, String>) -> Result<&str, String> {
    r.map(|n| n["nodeId"].as_str().unwrap_or_default())
}

#[test]
fn a_node_is_found_by_id_then_name_then_id_prefix() {
    let nodes = nodes();
    assert_eq!(id_of(resolve_node(&nodes, A)), Ok(A));
    assert_eq!(id_of(resolve_node(&nodes, "capnode")), Ok(A));
    // Case matters first: "Kitchen" is one node exactly.
    assert_eq!(id_of(resolve_node(&nodes, "Kitchen")), Ok(B));
    assert_eq!(id_of(resolve_node(&nodes, "CAPNODE")), Ok(A));
    assert_eq!(id_of(resolve_node(&nodes, "c0ff")), Ok(C));
    assert_eq!(id_of(resolve_node(&nodes, "3b7e4f01a2c9d")), Ok(A));
}

#[test]
fn an_ambiguous_or_unknown_node_is_an_error_naming_the_candidates() {
    let nodes = nodes();
    assert_eq!(
        resolve_node(&nodes, "KITCHEN"),
        Err(
            "node 'KITCHEN' is ambiguous: it matches Kitchen (3b7e4f01a2c9f), \
             kitchen (c0ffee00c0ffe); give a node id"
                .to_owned()
        )
    );
    assert_eq!(
        resolve_node(&nodes, "3b7e"),
        Err(
            "node '3b7e' is ambiguous: it matches capnode (3b7e4f01a2c9d), \
             Kitchen (3b7e4f01a2c9f); give a node id"
                .to_owned()
        )
    );
    assert_eq!(
        resolve_node(&nodes, "garage"),
        Err("unknown node 'garage' (nodes: capnode (3b7e4f01a2c9d), \
             Kitchen (3b7e4f01a2c9f), kitchen (c0ffee00c0ffe); see 'clawgate nodes list')"
            .to_owned())
    );
    assert_eq!(
        resolve_node(&[], "capnode"),
        Err("unknown node 'capnode': the gateway lists no nodes".to_owned())
    );
    // An empty query is nobody's prefix.
    assert!(resolve_node(&nodes, "").is_err());
}

#[test]
fn approving_asks_for_what_the_request_says_or_its_commands_imply() {
    let said = json!({"requiredApproveScopes": ["operator.pairing", "operator.admin"]});
    assert_eq!(
        approve_scopes(&said),
        ["operator.pairing", "operator.admin"]
    );
    assert_eq!(
        approve_scopes(&json!({"commands": []})),
        ["operator.pairing"]
    );
    assert_eq!(
        approve_scopes(&json!({"commands": ["camera.snap"]})),
        ["operator.pairing", "operator.write"]
    );
    assert_eq!(
        approve_scopes(&json!({"commands": ["camera.snap", "system.which"]})),
        ["operator.pairing", "operator.admin"]
    );
}

#[test]
fn invoking_asks_for_write_and_admin_for_commands_that_run_programs() {
    for c in ["camera.snap", "system.which"] {
        assert_eq!(invoke_scopes(c), ["operator.read", "operator.write"]);
    }
    for c in ["system.run", "system.run.prepare"] {
        assert_eq!(invoke_scopes(c), ["operator.read", "operator.admin"]);
    }
}

#[test]
fn invoke_params_carry_the_timeout_and_a_key() {
    let mut a = InvokeArgs {
        node: "capnode".into(),
        command: "system.which".into(),
        params: Some(json!({"bins": ["sh"]})),
        invoke_timeout_ms: 15_000,
        idempotency_key: Some("k1".into()),
    };
    assert_eq!(
        invoke_params(&a, A),
        json!({"nodeId": A, "command": "system.which", "params": {"bins": ["sh"]},
               "timeoutMs": 15_000, "idempotencyKey": "k1"})
    );
    a.params = None;
    a.idempotency_key = None;
    let p = invoke_params(&a, A);
    assert!(p.get("params").is_none(), "{p}");
    let key = p["idempotencyKey"].as_str().unwrap_or_default();
    assert_eq!(key.len(), 36, "{p}");
    assert_ne!(invoke_params(&a, A)["idempotencyKey"], p["idempotencyKey"]);
}

#[test]
fn list_merges_node_list_with_the_pairing_requests() {
    let both = json!({
        "nodes": [
            {"nodeId": A, "displayName": "capnode", "platform": "linux", "version": "2026.9.6",
             "connected": true, "approvalState": "pending-approval",
             "pendingRequestId": "9a4e7c1b-0000-4000-8000-000000000001",
             "commands": [], "pendingDeclaredCommands": ["system.run", "system.which"]},
            {"nodeId": C, "displayName": "pi", "platform": "linux", "version": "2026.9.6",
             "connected": false, "approvalState": "approved", "approvedAtMs": NOW - 3 * 3_600_000,
             "commands": ["system.which"]},
        ],
        "pending": [
            {"requestId": "9a4e7c1b-0000-4000-8000-000000000001", "nodeId": A,
             "commands": ["system.run", "system.which"]},
            {"requestId": "77777777-0000-4000-8000-000000000002", "nodeId": B,
             "displayName": "offline", "commands": ["camera.snap"]},
        ],
        "paired": [{"nodeId": C}],
    });
    let want = "\
NODE           NAME     PLATFORM  VERSION   CONNECTED  APPROVAL            COMMANDS
3b7e4f01a2c9d  capnode  linux     2026.9.6  yes        pending (9a4e7c1b)  0 (2 asked)
c0ffee00c0ffe  pi       linux     2026.9.6  no         approved 3h ago     1
3b7e4f01a2c9f  offline  -         -         no         pending (77777777)  0 (1 asked)
Approve pending commands with 'clawgate nodes approve REQUEST'.";
    assert_eq!(render_list(&both, NOW), want);
    let none = json!({"nodes": [], "pending": [], "paired": []});
    assert_eq!(render_list(&none, NOW), "Nodes: none");
}

#[test]
fn pending_shows_each_request_and_what_approving_it_needs() {
    let pairs = json!({"pending": [
        {"requestId": "9a4e7c1b-0000-4000-8000-000000000001", "nodeId": A,
         "displayName": "capnode", "platform": "linux", "version": "2026.9.6",
         "commands": ["system.run", "system.which"],
         "requiredApproveScopes": ["operator.pairing", "operator.admin"], "ts": NOW - 120_000},
    ], "paired": []});
    let want = "\
Pending node requests (1)
REQUEST   NODE          NAME     PLATFORM  VERSION   COMMANDS  NEEDS           AGE
9a4e7c1b  3b7e4f01a2c9  capnode  linux     2026.9.6  2         operator.admin  2m ago
9a4e7c1b asks for: system.run, system.which
Approve one with 'clawgate nodes approve REQUEST'.";
    assert_eq!(render_pending(&pairs, NOW), want);
    let none = json!({"pending": [], "paired": []});
    assert_eq!(render_pending(&none, NOW), "Pending node requests: none");
}

#[test]
fn results_say_what_changed() {
    let approved = json!({"requestId": "r1", "node": {"nodeId": A, "displayName": "capnode",
                          "commands": ["system.run", "system.which"]}});
    assert_eq!(
        render_approved(&approved, "r"),
        format!("Approved request r1: node capnode ({A}) may now be invoked with 2 commands: system.run, system.which")
    );
    let bare = json!({"requestId": "r1", "node": {"nodeId": A, "commands": []}});
    assert_eq!(
        render_approved(&bare, "r"),
        format!("Approved request r1: node {A} may now be invoked with no commands")
    );
    let rejected = json!({"requestId": "r1", "nodeId": A, "displayName": "capnode"});
    assert_eq!(
        render_rejected(&rejected, "r"),
        format!("Rejected request r1 of node capnode ({A})")
    );
    assert_eq!(render_rejected(&json!({}), "r2"), "Rejected request r2");
}

#[test]
fn describe_shows_one_field_a_line() {
    let n = json!({"ts": NOW, "nodeId": A, "displayName": "capnode", "platform": "linux",
                   "deviceFamily": "Linux", "version": "2026.9.6", "clientId": "node-host",
                   "clientMode": "node", "connected": true, "connectedAtMs": NOW - 5000,
                   "approvalState": "approved", "approvedAtMs": NOW - 60_000,
                   "caps": ["system"], "commands": ["system.run", "system.which"],
                   "pathEnv": "/usr/bin:/bin"});
    let want = format!(
        "\
Node:      {A}
Name:      capnode
Platform:  linux (Linux)
Version:   2026.9.6
Client:    node-host (node)
Connected: yes, since 5s ago
Approval:  approved (1m ago)
Caps:      system
Commands:  system.run, system.which
PATH:      /usr/bin:/bin"
    );
    assert_eq!(render_describe(&n, NOW), want);
}
