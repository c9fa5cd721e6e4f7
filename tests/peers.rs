//! Several clients at once, through the fake peers of `util::fake`: an
//! operator that collects events while it makes calls, and a node host
//! connecting with role `node`.

use std::time::Duration;

use serde_json::Value;

use crate::util::{Gateway, Node, Operator};

fn entry<'a>(list: &'a Value, instance: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|e| e["instanceId"] == instance)
}

#[test]
fn a_node_is_listed_for_operators_and_may_call_only_health() {
    let gw = Gateway::start();
    let mut op = Operator::connect(&gw, "cli", &["operator.admin"]);
    let mut node = Node::connect(&gw, "kitchen-pi", &["system.which"]);
    assert_eq!(node.hello["auth"]["role"], "node");
    assert_eq!(node.hello["auth"]["scopes"], serde_json::json!([]));

    // The presence event announcing the node arrives while the operator
    // waits for this answer; it is kept, not lost.
    let list = op.call("system-presence", None);
    let listed = entry(&list["payload"], &node.instance_id).expect("node listed");
    assert_eq!(listed["host"], "kitchen-pi");
    assert_eq!(listed["mode"], "node");
    assert_eq!(listed["roles"], serde_json::json!(["node"]));
    let joined = op.wait_event("presence", Duration::from_secs(5), |f| {
        entry(&f["payload"]["presence"], &node.instance_id)
            .is_some_and(|e| e["reason"] == "connect")
    });
    let joined_seq = joined["seq"].as_u64().expect("broadcast events carry seq");

    assert_eq!(node.call("health", None)["ok"], true);
    let refused = node.call("status", None);
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"]["message"], "unauthorized role: node");

    let instance = node.instance_id.clone();
    node.ws.close();
    let left = op.wait_event("presence", Duration::from_secs(5), |f| {
        entry(&f["payload"]["presence"], &instance).is_some_and(|e| e["reason"] == "disconnect")
    });
    assert!(left["seq"].as_u64().unwrap() > joined_seq, "{left}");
    let (before, after) = (&joined["stateVersion"], &left["stateVersion"]);
    assert!(
        after["presence"].as_u64() > before["presence"].as_u64(),
        "{before} {after}"
    );
}

#[test]
fn verbose_logs_each_call_and_how_each_connection_ended() {
    let gw = crate::util::Gateway::with(crate::util::Opts {
        args: &["--verbose"],
        ..Default::default()
    });
    let (mut ws, _) = gw.client();
    assert_eq!(ws.call("health", None)["ok"], true);
    assert_eq!(ws.call("cron.list", None)["ok"], false);
    ws.close();
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        lines.extend(gw.stderr_lines());
        if lines.iter().any(|l| l.contains("closed by the client")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(
        has("client connected: cli cli test as operator"),
        "{lines:#?}"
    );
    assert!(has("health: ok in "), "{lines:#?}");
    assert!(has("cron.list: unknown method"), "{lines:#?}");
    assert!(has("closed by the client"), "{lines:#?}");
}
