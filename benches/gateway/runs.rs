//! Rows 15–16: agent runs through a fake OpenAI-compatible upstream on
//! loopback, and reading large sessions.
//!
//! 15a: from `chat.send` to the first `chat` delta at the client, minus the
//! upstream's own time from reading the request to writing its first
//! piece: what the gateway adds to the time to the first token (its
//! session bookkeeping, the upstream connection, parsing and fan-out).
//! 15b: pieces per second through one run (deltas go out paced at 75 ms,
//! so this is the pipeline's rate, not the events'). 15c: RSS with 50 runs
//! streaming at once. 16a/16b: `chat.history` of a 10,000-message session
//! and `sessions.list` over 10,000 sessions, both written into the state
//! directory before the gateway starts, in the layout it keeps.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::load;
use crate::procs::{self, Gateway};
use crate::report::{kib, Met, Table};
use crate::upstream::Upstream;
use crate::wire::{self, RawConn, Target};

fn config(up: &Upstream) -> String {
    format!(
        r#"{{"gateway":{{"mode":"local","limits":{{"maxConnections":4096,"maxUnauthPerIp":4096}}}},
  "models":{{"providers":{{"fake":{{"baseUrl":"{}","api":"openai-completions","models":[{{"id":"m"}}]}}}}}},
  "agents":{{"defaults":{{"model":{{"primary":"fake/m"}},"maxConcurrent":64}}}}}}"#,
        up.base_url()
    )
}

fn target(gw: &Gateway) -> Target {
    Target {
        addr: gw.addr(),
        token: gw.token.clone(),
    }
}

fn op(t: &Target) -> Result<RawConn, String> {
    let (ws, _) = wire::handshake(t, "cli", &["operator.admin"])?;
    Ok(RawConn::new(ws))
}

/// Sends `chat.send` and reads until the run's first delta (`first`) or
/// its final; returns when each came, from the send.
fn turn(c: &mut RawConn, session: &str, key: &str) -> Result<(Duration, Duration, usize), String> {
    let params = format!(r#"{{"sessionKey":"{session}","message":"hi","idempotencyKey":"{key}"}}"#);
    let t0 = Instant::now();
    c.send_req("chat.send", Some(&params))?;
    let (mut first, mut deltas) = (None, 0);
    for _ in 0..1_000_000 {
        let f = c.next_json()?;
        if f["event"] != "chat" || f["payload"]["runId"] != key {
            continue;
        }
        match f["payload"]["state"].as_str() {
            Some("delta") => {
                deltas += 1;
                first.get_or_insert_with(|| t0.elapsed());
            }
            Some("final") => {
                let end = t0.elapsed();
                return Ok((first.unwrap_or(end), end, deltas));
            }
            Some(other) => return Err(format!("run {key} ended {other}: {f}")),
            None => {}
        }
    }
    Err(format!("run {key} did not end"))
}

pub fn rows(t: &mut Table, external: bool, quick: bool) {
    const W15A: &str = "chat.send → first chat delta, minus the upstream's first-byte time: p50";
    const W15B: &str = "pieces/s through one run (deltas paced at 75 ms)";
    const W15C: &str = "RSS with 50 runs streaming at once";
    if external {
        for (row, what) in [("15a", W15A), ("15b", W15B), ("15c", W15C)] {
            t.na(row, what, "—", crate::EXT);
        }
        return;
    }
    match first_delta(if quick { 60 } else { 300 }) {
        Ok(v) => {
            let (p50, p99) = (load::percentile(&v, 50.0), load::percentile(&v, 99.0));
            let res = format!("{p50:.2} ms (p99 {p99:.2} ms; {} runs)", v.len());
            t.add("15a", W15A, "≤ 1 ms", (res, Met::of(p50 <= 1.0)));
        }
        Err(e) => t.add("15a", W15A, "≤ 1 ms", (e, Met::No)),
    }
    match throughput(if quick { 5_000 } else { 20_000 }) {
        Ok(res) => t.add("15b", W15B, "—", (res, Met::Na)),
        Err(e) => t.add("15b", W15B, "—", (e, Met::No)),
    }
    match concurrent(50) {
        Ok(res) => t.add("15c", W15C, "—", (res, Met::Na)),
        Err(e) => t.add("15c", W15C, "—", (e, Met::No)),
    }
}

/// Row 15a's samples, in ms, sorted.
fn first_delta(runs: usize) -> Result<Vec<f64>, String> {
    let up = Upstream::start(3, Duration::ZERO)?;
    let gw = Gateway::start_with(Path::new(procs::BIN), &config(&up))?;
    let t = target(&gw);
    let mut c = op(&t)?;
    let mut v = Vec::with_capacity(runs);
    // Ten sessions in turn: an existing session, as most messages go.
    for i in 0..runs + 10 {
        let (first, _, _) = turn(
            &mut c,
            &format!("agent:main:b{}", i % 10),
            &format!("fd{i}"),
        )?;
        let (got, wrote) = up
            .marks
            .lock()
            .map_err(|_| "marks".to_string())?
            .last()
            .copied()
            .ok_or("the upstream saw no request")?;
        if i >= 10 {
            let upstream = wrote.duration_since(got);
            v.push(first.saturating_sub(upstream).as_secs_f64() * 1e3);
        }
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v)
}

fn throughput(pieces: usize) -> Result<String, String> {
    let up = Upstream::start(pieces, Duration::ZERO)?;
    let gw = Gateway::start_with(Path::new(procs::BIN), &config(&up))?;
    let mut c = op(&target(&gw))?;
    let (_, end, deltas) = turn(&mut c, "agent:main:tp", "tp1")?;
    let rate = pieces as f64 / end.as_secs_f64();
    Ok(format!(
        "{rate:.0} pieces/s ({pieces} in {:.2} s, {deltas} chat deltas)",
        end.as_secs_f64()
    ))
}

fn concurrent(n: usize) -> Result<String, String> {
    // 40 pieces 100 ms apart: each run streams for 4 s.
    let up = Upstream::start(40, Duration::from_millis(100))?;
    let gw = Gateway::start_with(Path::new(procs::BIN), &config(&up))?;
    let t = target(&gw);
    let mut conns = (0..n).map(|_| op(&t)).collect::<Result<Vec<_>, _>>()?;
    std::thread::sleep(Duration::from_millis(300));
    let before = procs::status_field(gw.pid, "VmRSS").ok_or("no VmRSS")?;
    for (i, c) in conns.iter_mut().enumerate() {
        let p = format!(
            r#"{{"sessionKey":"agent:main:c{i}","message":"hi","idempotencyKey":"cc{i}"}}"#
        );
        c.call("chat.send", Some(&p))?;
    }
    std::thread::sleep(Duration::from_millis(1500));
    let during = procs::status_field(gw.pid, "VmRSS").ok_or("no VmRSS")?;
    let running = up.marks.lock().map_or(0, |m| m.len());
    let per = (during as f64 - before as f64) / n as f64;
    Ok(format!(
        "{} (+{per:.0} KiB/run; {running} upstream streams open)",
        kib(during)
    ))
}

pub fn read_rows(t: &mut Table, external: bool) {
    const W16A: &str = "chat.history of a 10,000-message session (limit 200): p50";
    const W16B: &str = "sessions.list over 10,000 sessions (limit 100): p50";
    if external {
        t.na("16a", W16A, "≤ 20 ms", crate::EXT);
        t.na("16b", W16B, "≤ 20 ms", crate::EXT);
        return;
    }
    let r = Gateway::start_prepared(Path::new(procs::BIN), procs::CONFIG, |state| {
        big_state(state, 10_000, 10_000)
    })
    .and_then(|gw| {
        let t = target(&gw);
        let mut c = op(&t)?;
        let h = timed(
            &mut c,
            "chat.history",
            r#"{"sessionKey":"agent:main:big","limit":200}"#,
        )?;
        let l = timed(&mut c, "sessions.list", r#"{"limit":100}"#)?;
        Ok((h, l))
    });
    match r {
        Ok((h, l)) => {
            let cell = |v: &[f64]| {
                let p50 = load::percentile(v, 50.0);
                (
                    format!("{p50:.2} ms (max {:.2})", v[v.len() - 1]),
                    Met::of(p50 <= 20.0),
                )
            };
            t.add("16a", W16A, "≤ 20 ms", cell(&h));
            t.add("16b", W16B, "≤ 20 ms", cell(&l));
        }
        Err(e) => {
            t.add("16a", W16A, "≤ 20 ms", (e.clone(), Met::No));
            t.add("16b", W16B, "≤ 20 ms", (e, Met::No));
        }
    }
}

/// 20 calls of `method`, in ms, sorted (after one warm-up).
fn timed(c: &mut RawConn, method: &str, params: &str) -> Result<Vec<f64>, String> {
    let mut v = Vec::new();
    for i in 0..21 {
        let t0 = Instant::now();
        c.call(method, Some(params))?;
        if i > 0 {
            v.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v)
}

/// `sessions` sessions for agent `main`, one of them (`agent:main:big`)
/// with a transcript of `messages` messages, in clawgate's layout.
fn big_state(state: &Path, sessions: usize, messages: usize) -> Result<(), String> {
    let dir = state.join("agents/main/sessions");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut index = serde_json::Map::new();
    for i in 0..sessions {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        let key = if i == 0 {
            "agent:main:big".to_string()
        } else {
            format!("agent:main:s{i}")
        };
        index.insert(
            key,
            json!({"sessionId": id, "updatedAt": 1_790_000_000_000u64 + i as u64,
                                 "createdVia": "run", "label": format!("session {i}")}),
        );
    }
    let text = Value::Object(index).to_string();
    std::fs::write(dir.join("sessions.json"), text).map_err(|e| e.to_string())?;
    let f = std::fs::File::create(dir.join("00000000-0000-4000-8000-000000000000.jsonl"))
        .map_err(|e| e.to_string())?;
    let mut w = std::io::BufWriter::new(f);
    let mut line = |v: Value| writeln!(w, "{v}").map_err(|e| e.to_string());
    line(
        json!({"type":"session","version":4,"id":"00000000-0000-4000-8000-000000000000",
                "timestamp":"2026-12-02T05:52:53.872Z","cwd":"/tmp"}),
    )?;
    for i in 0..messages {
        let msg = match i % 2 {
            0 => {
                json!({"role":"user","content":format!("question number {i}, asked plainly"),"timestamp":1_790_000_000_000u64 + i as u64})
            }
            _ => {
                json!({"role":"assistant","content":[{"type":"text","text":format!("answer number {i}: a reply of a few dozen characters to read back")}],
                        "api":"openai-completions","provider":"fake","model":"m","stopReason":"stop","timestamp":1_790_000_000_000u64 + i as u64})
            }
        };
        line(
            json!({"type":"message","id":format!("m{i}"),"parentId":null,"timestamp":"2026-12-02T05:52:53.872Z","message":msg}),
        )?;
    }
    w.flush().map_err(|e| e.to_string())
}
