//! Memory under hostile input, measured from outside: the gateway's peak
//! RSS (`VmHWM` in /proc) while a client does its worst stays within the
//! stated bounds.

use crate::util::Gateway;

/// The process's peak and current resident set, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
fn a_4_mib_params_bomb_costs_its_text_not_a_json_tree() {
    let gw = Gateway::start();
    let (mut ws, _) = gw.client();
    // 2 million zeros: as a JSON tree this was ~130 MB before its method
    // (which takes no params) was even looked at.
    let zeros = vec!["0"; (4 * 1024 * 1024 - 100) / 2].join(",");
    let frame = format!(r#"{{"type":"req","id":"bomb","method":"health","params":[{zeros}]}}"#);
    drop(zeros);
    ws.send_text(&frame);
    drop(frame);
    let res = ws.recv_res("bomb");
    assert_eq!(res["ok"], true, "{res}");
    let (peak, now) = rss_kib(gw.pid());
    assert!(peak < 24 * 1024, "peak RSS {peak} KiB (now {now} KiB)");
}

#[test]
fn a_flood_of_maximal_presence_entries_stays_small_and_locks_nobody_out() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local"},"logging":{"file":true}}"#);
    let (mut ws, _) = gw.client();
    // One huge field is refused before it is parsed.
    let huge = "x".repeat(3 * 1024 * 1024);
    let res = ws.call(
        "system-event",
        Some(serde_json::json!({"text": "hi", "deviceId": huge})),
    );
    assert_eq!(res["error"]["code"], "INVALID_REQUEST", "{res}");
    drop(huge);
    // Control characters are six bytes each as JSON: every string of these
    // entries is as large as an entry allows once escaped.
    let controls = "\u{1}".repeat(600);
    for i in 0..220 {
        let fields: serde_json::Value = serde_json::json!({
            "text": controls, "deviceId": format!("{i}{controls}"), "host": controls,
            "version": controls, "platform": controls, "deviceFamily": controls,
            "modelIdentifier": controls, "mode": controls, "reason": controls,
            "instanceId": controls, "ip": controls,
            "tags": [controls, controls, controls], "roles": [controls], "scopes": [controls],
        });
        let res = ws.call("system-event", Some(fields));
        assert_eq!(res["ok"], true, "{res}");
    }
    let list = ws.call("system-presence", None);
    let text = list["payload"].to_string();
    assert!(
        text.len() <= 256 * 1024,
        "presence list of {} bytes",
        text.len()
    );
    assert!(list["payload"].as_array().unwrap().len() > 10);
    // A new client still gets hello-ok (it carries the list), and the CLI
    // still answers.
    let (mut fresh, hello) = gw.client();
    assert!(hello["snapshot"]["presence"].is_array());
    assert_eq!(fresh.call("health", None)["ok"], true);
    let out = gw.cli(&["call", "health", "--token", &gw.token()]);
    assert!(out.status.success(), "{}", crate::util::text(&out.stderr));
    let (peak, now) = rss_kib(gw.pid());
    assert!(
        now < 32 * 1024,
        "RSS {now} KiB after the flood (peak {peak} KiB)"
    );
    // Log lines are cut: 221 events wrote well under a megabyte.
    let log = gw.state.join("logs").join("clawgate.log");
    let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    assert!(size < 1024 * 1024, "log file grew to {size} bytes");
}
