//! The stock node host and the stock `openclaw nodes …` / `devices …`
//! commands against a real clawgate: `openclaw node run` pairs (silently,
//! on loopback with the shared token), its command surface waits for
//! `openclaw nodes approve`, and `openclaw nodes invoke … system.which`
//! runs on the node through clawgate and prints the node's own answer.
//!
//! Runs when CLAWGATE_TEST_OPENCLAW is set, like `openclaw.rs`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::openclaw::{openclaw, stock_cli_or_skip};
use crate::util::{text, Gateway, Operator, TempDir};

const TEST: &str = "openclaw_nodes::the_stock_node_host_is_paired_approved_and_invoked";

/// The node host, killed when the test ends however it ends.
struct NodeHost {
    child: Child,
    log: std::path::PathBuf,
}

impl NodeHost {
    fn start(cli: &[String], home: &TempDir, port: u16, token: &str) -> NodeHost {
        let log = home.path().join("node-host.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&cli[0])
            .args(&cli[1..])
            .args(["node", "run", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(["--display-name", "capnode"])
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("OPENCLAW_GATEWAY_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the stock node host");
        NodeHost { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 200 ms until it returns something, for at most
/// `limit`.
fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(v) = check() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

#[test]
fn the_stock_node_host_is_paired_approved_and_invoked() {
    let Some(cli) = stock_cli_or_skip(TEST) else {
        return;
    };
    let gw = Gateway::start();
    let (node_home, cli_home) = (TempDir::new(), TempDir::new());
    let (url, token) = (gw.url(), gw.token());
    let host = NodeHost::start(&cli, &node_home, gw.port, &token);
    let stock = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--url", &url, "--token", &token]);
        let out = openclaw(&cli, &cli_home, &all);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "openclaw {args:?}: {stdout}{stderr}\nnode host: {}",
            host.output()
        );
        stdout
    };

    // The node host pairs silently and declares its surface, which waits.
    let mut op = Operator::connect(&gw, "cli", &["operator.admin"]);
    let request = wait_for(Duration::from_secs(60), || {
        let list = op.call("node.pair.list", None);
        list["payload"]["pending"].get(0).cloned()
    })
    .unwrap_or_else(|| panic!("no node surface request; node host: {}", host.output()));
    let node_id = request["nodeId"].as_str().unwrap().to_string();
    let request_id = request["requestId"].as_str().unwrap().to_string();
    assert_eq!(request["displayName"], "capnode");
    assert!(
        request["commands"]
            .as_array()
            .unwrap()
            .contains(&json!("system.which")),
        "{request}"
    );

    let devices = stock(&["devices", "list"]);
    assert!(
        devices.contains("capnode") && devices.contains("node"),
        "{devices}"
    );
    let devices: Value = serde_json::from_str(&stock(&["devices", "list", "--json"])).unwrap();
    let paired = &devices["paired"][0];
    assert_eq!(paired["deviceId"], node_id.as_str());
    assert_eq!(paired["approvedVia"], "silent");
    assert_eq!(paired["connected"], true);

    let pending = stock(&["nodes", "pending"]);
    assert!(
        pending.contains(&request_id) && pending.contains("capnode"),
        "{pending}"
    );

    // Invoking before approval is refused, never left hanging.
    let mut early = op.call(
        "node.invoke",
        Some(json!({"nodeId": node_id, "command": "system.which",
                    "params": {"bins": ["sh"]}, "idempotencyKey": "early"})),
    );
    assert_eq!(early["ok"], false, "{early}");
    let message = early["error"]["message"].take();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("node command not allowed"),
        "{message}"
    );

    let approved = stock(&["nodes", "approve", &request_id]);
    assert!(approved.contains(&node_id), "{approved}");

    let list = stock(&["nodes", "list"]);
    assert!(list.contains("capnode"), "{list}");

    let out = stock(&[
        "nodes",
        "invoke",
        "--node",
        "capnode",
        "--command",
        "system.which",
        "--params",
        r#"{"bins":["sh"]}"#,
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["nodeId"], node_id.as_str(), "{v}");
    assert_eq!(v["command"], "system.which", "{v}");
    // The node host's real answer: where `sh` is on its PATH.
    let sh = v["payload"]["bins"]["sh"].as_str().unwrap_or_default();
    assert!(sh.ends_with("/sh"), "{v}");
    // Printed for the record (the test output shows it with --nocapture).
    println!("openclaw nodes invoke --node capnode --command system.which:\n{out}");
}
