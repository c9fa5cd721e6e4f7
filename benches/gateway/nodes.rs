//! Rows 12 and 13: the `node.invoke` relay's round trip (operator →
//! clawgate → a Rust fake node on a thread of its own → operator), and
//! what an idle connected node costs. Nodes connect as `openclaw node run`
//! does, without a device block (the gateway under test admits that for
//! now; a gateway that needs one, like the reference, is not measured).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::load;
use crate::procs;
use crate::report::{kib, Met, Table};
use crate::wire::{self, RawConn, Target};

const RTT_TARGET: &str = "p50 ≤ 100 µs";
const RSS_TARGET: &str = "≤ 24 KiB/node";

fn node_params(t: &Target, id: &str) -> Value {
    json!({
        "minProtocol": 3, "maxProtocol": 4,
        "client": {"id": "node-host", "mode": "node", "version": "bench", "platform": "linux",
                   "displayName": id, "instanceId": id},
        "role": "node", "scopes": [], "caps": ["system"], "commands": ["echo"],
        "permissions": {}, "pathEnv": "/usr/bin:/bin",
        "auth": {"token": t.token},
    })
}

/// A fake node on its own thread: answers each `node.invoke.request` at
/// once with its params, until `calls` are answered or the socket ends.
fn serve(t: &Target, id: &str, calls: usize) -> Result<std::thread::JoinHandle<()>, String> {
    let (ws, _) = wire::handshake_with(t, node_params(t, id))?;
    let mut c = RawConn::new(ws);
    Ok(std::thread::spawn(move || {
        let mut answered = 0;
        while answered < calls {
            let Ok(f) = c.next_json() else { return };
            if f["event"] != "node.invoke.request" {
                continue;
            }
            let p = &f["payload"];
            let result = json!({"id": p["id"], "nodeId": p["nodeId"], "ok": true,
                                "payloadJSON": p["paramsJSON"]});
            if c.send_req("node.invoke.result", Some(&result.to_string()))
                .is_err()
            {
                return;
            }
            answered += 1;
        }
    }))
}

/// Invoke round trips, in µs, sorted.
fn invoke_rtt(t: &Target, warmup: usize, n: usize) -> Result<Vec<f64>, String> {
    let id = format!("bench-node-{}", std::process::id());
    let node = serve(t, &id, warmup + n)?;
    let (ws, _) = wire::handshake(t, "cli", &["operator.write"])?;
    let mut op = RawConn::new(ws);
    let mut v = Vec::with_capacity(n);
    for i in 0..warmup + n {
        // A key of its own each time: a repeated one is answered from the
        // idempotency cache without reaching the node.
        let params = format!(
            r#"{{"nodeId":"{id}","command":"echo","params":{{"i":{i}}},"idempotencyKey":"b{i}","timeoutMs":5000}}"#
        );
        let t0 = Instant::now();
        op.call("node.invoke", Some(&params))?;
        if i >= warmup {
            v.push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(op);
    let _ = node.join();
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v)
}

pub fn rows(t: &mut Table, target: &Target, pid: Option<u32>, external: bool, calls: usize) {
    let what = format!("node.invoke round trip via a fake node: p50 ({calls} calls)");
    let what_b = "node.invoke round trip: p99";
    let what_rss = "RSS with 100 idle connected nodes";
    if external {
        let why = "n/a (external gateway: nodes need a device identity)";
        t.na("12a", &what, RTT_TARGET, why);
        t.na("13", what_rss, RSS_TARGET, why);
        return;
    }
    match invoke_rtt(target, 200, calls) {
        Ok(v) => {
            let (p50, p99) = (load::percentile(&v, 50.0), load::percentile(&v, 99.0));
            t.add(
                "12a",
                &what,
                RTT_TARGET,
                (format!("{p50:.0} µs"), Met::of(p50 <= 100.0)),
            );
            let res = format!("{p99:.0} µs (max {:.0} µs)", v[v.len() - 1]);
            t.add("12b", what_b, "—", (res, Met::Na));
        }
        Err(e) => t.add("12", &what, RTT_TARGET, (e, Met::No)),
    }
    let Some(p) = pid else {
        t.na("13", what_rss, RSS_TARGET, crate::NO_PID);
        return;
    };
    let rss = |p| procs::status_field(p, "VmRSS");
    std::thread::sleep(Duration::from_millis(300));
    let before = rss(p);
    let mut nodes = Vec::with_capacity(100);
    for i in 0..100 {
        let id = format!("bench-idle-{}-{i}", std::process::id());
        match wire::handshake_with(target, node_params(target, &id)) {
            Ok((ws, _)) => nodes.push(ws),
            Err(e) => {
                t.add(
                    "13",
                    what_rss,
                    RSS_TARGET,
                    (format!("node {i}: {e}"), Met::No),
                );
                return;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    match (before, rss(p)) {
        (Some(b), Some(a)) => {
            let per = (a as f64 - b as f64) / 100.0;
            let res = format!("{}, {per:.1} KiB/node", kib(a));
            t.add("13", what_rss, RSS_TARGET, (res, Met::of(per <= 24.0)));
        }
        _ => t.na("13", what_rss, RSS_TARGET, "cannot read /proc/PID/status"),
    }
    for ws in nodes {
        wire::close(ws);
    }
}
