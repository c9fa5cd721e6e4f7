//! `devices` and `nodes`: each action with its operand and flags.

use super::*;

fn devices(args: &str) -> DevicesArgs {
    match ok(args) {
        Command::Devices(d) => d,
        other => panic!("'{args}' gave {other:?}"),
    }
}

fn nodes(args: &str) -> NodesArgs {
    match ok(args) {
        Command::Nodes(n) => n,
        other => panic!("'{args}' gave {other:?}"),
    }
}

#[test]
fn devices_takes_an_action_its_id_and_the_client_options() {
    let want = DevicesArgs {
        client: client(false, false),
        action: DeviceAction::List,
    };
    assert_eq!(devices("devices list"), want);
    assert_eq!(devices("gateway devices list"), want);
    let d = devices("devices --json approve 6f1c --dev");
    assert_eq!(d.client, client(true, true));
    let request = "6f1c".to_owned();
    assert_eq!(d.action, DeviceAction::Approve { request });
    let request = "r".to_owned();
    assert_eq!(
        devices("devices reject r").action,
        DeviceAction::Reject { request }
    );
    let device = "d".to_owned();
    assert_eq!(
        devices("devices remove d").action,
        DeviceAction::Remove { device }
    );
    let rotate = devices("devices rotate d --role operator --scope operator.read --scope a.b");
    let want = DeviceAction::Rotate {
        device: "d".into(),
        role: "operator".into(),
        scopes: Some(vec!["operator.read".into(), "a.b".into()]),
    };
    assert_eq!(rotate.action, want);
    let rotate = devices("devices rotate d --role=node");
    let want = DeviceAction::Rotate {
        device: "d".into(),
        role: "node".into(),
        scopes: None,
    };
    assert_eq!(rotate.action, want);
    let revoke = devices("devices revoke --role node d --url ws://h:1 --token t");
    let want = DeviceAction::Revoke {
        device: "d".into(),
        role: "node".into(),
    };
    assert_eq!(revoke.action, want);
    assert_eq!(revoke.client.url.as_deref(), Some("ws://h:1"));
    assert_eq!(revoke.client.token.as_deref(), Some("t"));
}

#[test]
fn nodes_takes_an_action_its_id_and_the_client_options() {
    assert_eq!(nodes("nodes list").action, NodeAction::List);
    assert_eq!(
        nodes("gateway nodes pending --json").action,
        NodeAction::Pending
    );
    assert_eq!(nodes("nodes list").client, client(false, false));
    let request = "9a".to_owned();
    assert_eq!(
        nodes("nodes approve 9a").action,
        NodeAction::Approve { request }
    );
    let request = "9a".to_owned();
    assert_eq!(
        nodes("nodes reject 9a").action,
        NodeAction::Reject { request }
    );
    let node = "n1".to_owned();
    assert_eq!(nodes("nodes remove n1").action, NodeAction::Remove { node });
    let node = "capnode".to_owned();
    assert_eq!(
        nodes("nodes describe capnode").action,
        NodeAction::Describe { node }
    );
}

#[test]
fn nodes_invoke_takes_its_flags_and_waits_as_long_as_the_node_may() {
    let n =
        nodes("nodes invoke --node capnode --command system.which --params {\"bins\":[\"sh\"]}");
    let want = InvokeArgs {
        node: "capnode".into(),
        command: "system.which".into(),
        params: Some(serde_json::json!({"bins": ["sh"]})),
        invoke_timeout_ms: super::super::pairing::DEFAULT_INVOKE_TIMEOUT_MS,
        idempotency_key: None,
    };
    assert_eq!(n.action, NodeAction::Invoke(want));
    // The client's deadline covers the gateway's wait for the node.
    assert_eq!(n.client.timeout_ms, DEFAULT_TIMEOUT_MS + 30_000);
    let n = nodes(
        "nodes invoke --node=a --command c --invoke-timeout 1000 --idempotency-key k --params null",
    );
    let NodeAction::Invoke(a) = n.action else {
        panic!("not invoke")
    };
    assert_eq!(
        (a.invoke_timeout_ms, a.idempotency_key.as_deref()),
        (1000, Some("k"))
    );
    assert_eq!(a.params, Some(serde_json::Value::Null));
    assert_eq!(n.client.timeout_ms, DEFAULT_TIMEOUT_MS + 1000);
    // An explicit --timeout is the user's to choose, even if shorter.
    let n = nodes("nodes invoke --node a --command c --timeout 5");
    assert_eq!(n.client.timeout_ms, 5);
}
