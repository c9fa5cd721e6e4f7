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
