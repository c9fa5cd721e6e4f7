//! Rows 12 and 13: the `node.invoke` relay's round trip (operator →
//! clawgate → a Rust fake node on a thread of its own → operator), and
//! what an idle connected node costs. Nodes connect as `openclaw node run`
//! does, with an Ed25519 device key of their own (paired silently on
//! loopback); the invoked node's surface is approved first, as `openclaw
//! nodes approve` does.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::device::Device;
use crate::handoff;
use crate::load;
use crate::procs;
use crate::report::{kib, Met, Table};
use crate::wire::{self, RawConn, Target};

const RTT_TARGET: &str = "p50 ≤ 100 µs";
const RSS_TARGET: &str = "≤ 24 KiB/node";
const PINNED: &str = "node.invoke round trip, gateway and bench on one CPU: p50";

/// Connects a node with a fresh device identity; returns it and its id.
fn connect_node(t: &Target, name: &str) -> Result<(wire::Ws, String), String> {
    let d = Device::new();
    let (ws, _) = wire::handshake_with(t, node_params(t, name), |p, ch| d.block(p, ch))?;
    Ok((ws, d.id))
}

/// One request on `c` and its response's payload.
fn rpc(c: &mut RawConn, method: &str, params: &Value) -> Result<Value, String> {
    let id = c.send_req(method, Some(&params.to_string()))?;
    for _ in 0..10_000 {
        let f = c.next_json()?;
        if f["type"] == "res" && f["id"] == id.as_str() {
            return match f["ok"] == true {
                true => Ok(f["payload"].clone()),
                false => Err(format!("{method} failed: {}", f["error"])),
            };
        }
    }
    Err(format!("no response to {method}"))
}

/// Approves the surface node `id` declared, as `openclaw nodes approve`.
fn approve(t: &Target, id: &str) -> Result<(), String> {
    let (ws, _) = wire::handshake(t, "cli", &["operator.admin"])?;
    let mut c = RawConn::new(ws);
    let list = rpc(&mut c, "node.pair.list", &json!({}))?;
    let request = list["pending"]
        .as_array()
        .and_then(|p| p.iter().find(|r| r["nodeId"] == id))
        .map(|r| r["requestId"].clone())
        .ok_or_else(|| format!("no surface request for node {id}"))?;
    rpc(&mut c, "node.pair.approve", &json!({"requestId": request}))?;
    Ok(())
}

fn node_params(t: &Target, name: &str) -> Value {
    json!({
        "minProtocol": 3, "maxProtocol": 4,
        "client": {"id": "node-host", "mode": "node", "version": "bench", "platform": "linux",
                   "deviceFamily": "Linux", "displayName": name, "instanceId": name},
        "role": "node", "scopes": [], "caps": ["system"], "commands": ["echo"],
        "permissions": {}, "pathEnv": "/usr/bin:/bin",
        "auth": {"token": t.token},
    })
}

/// A fake node on its own thread: answers each `node.invoke.request` at
/// once with its params, until `calls` are answered or the socket ends.
/// Returns the thread and the node's id.
fn serve(t: &Target, calls: usize) -> Result<(std::thread::JoinHandle<()>, String), String> {
    let (ws, id) = connect_node(t, "bench-node")?;
    approve(t, &id)?;
    let mut c = RawConn::new(ws);
    let thread = std::thread::spawn(move || {
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
    });
    Ok((thread, id))
}

/// Invoke round trips, in µs, sorted.
fn invoke_rtt(t: &Target, warmup: usize, n: usize) -> Result<Vec<f64>, String> {
    let (node, id) = serve(t, warmup + n)?;
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
        t.na("12a", &what, RTT_TARGET, crate::EXT);
        t.na("12d", PINNED, RTT_TARGET, crate::EXT);
        t.na("13", what_rss, RSS_TARGET, crate::EXT);
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
    let floor = "the same six thread hand-offs doing no work (bench threads): p50";
    match handoff::floor_rtt(200, calls) {
        Ok(v) => {
            let (p50, p99) = (load::percentile(&v, 50.0), load::percentile(&v, 99.0));
            t.add(
                "12c",
                floor,
                "—",
                (format!("{p50:.0} µs (p99 {p99:.0} µs)"), Met::Na),
            );
        }
        Err(e) => t.add("12c", floor, "—", (e, Met::No)),
    }
    let Some(p) = pid else {
        t.na("12d", PINNED, RTT_TARGET, crate::NO_PID);
        t.na("13", what_rss, RSS_TARGET, crate::NO_PID);
        return;
    };
    let pinned = handoff::Pinned::here(p).and_then(|pin| {
        let v = invoke_rtt(target, 200, calls);
        drop(pin);
        v
    });
    match pinned {
        Ok(v) => {
            let (p50, p99) = (load::percentile(&v, 50.0), load::percentile(&v, 99.0));
            let res = format!("{p50:.0} µs (p99 {p99:.0} µs)");
            t.add("12d", PINNED, RTT_TARGET, (res, Met::of(p50 <= 100.0)));
        }
        Err(e) => t.add("12d", PINNED, RTT_TARGET, (e, Met::No)),
    }
    let rss = |p| procs::status_field(p, "VmRSS");
    std::thread::sleep(Duration::from_millis(300));
    let before = rss(p);
    let mut nodes = Vec::with_capacity(100);
    for i in 0..100 {
        match connect_node(target, &format!("bench-idle-{i}")) {
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
