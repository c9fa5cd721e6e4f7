//! Row 11: the gateway's peak memory while peers do their worst, beside
//! the ceiling it computes from its limits (`status` →
//! `gateway.memoryCeiling`). A fresh gateway with the default limits (no
//! `maxConnections`, so it is sized to this host) is attacked in turn by:
//! eight clients sending a 4 MiB `params` bomb to `health` at once; 220
//! `system-event`s with every presence field full of control characters;
//! a client flooding pings without reading; sixteen clients each holding a
//! half-sent 1 MiB frame. Every loop is bounded and every socket has
//! timeouts.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs::{self, Gateway};
use crate::report::{kib, Met, Table};
use crate::wire::{self, RawConn, Target};

const MIB: u64 = 1024 * 1024;

pub const WHAT: &str = "worst-case RSS under attack (4 attacks, default limits)";
pub const TARGET: &str = "≤ ceiling, ≤ 64 MiB";

pub fn worst_case(t: &mut Table, bin: &Path) {
    let (what, target) = (WHAT, TARGET);
    match run(bin) {
        Ok((peak_kib, ceiling)) => {
            let res = format!(
                "peak {} (computed ceiling {:.0} MiB)",
                kib(peak_kib),
                ceiling as f64 / MIB as f64
            );
            let met = peak_kib * 1024 <= ceiling && peak_kib <= 64 * 1024;
            t.add("11", what, target, (res, Met::of(met)));
        }
        Err(e) => t.add("11", what, target, (e, Met::No)),
    }
}

fn run(bin: &Path) -> Result<(u64, u64), String> {
    let gw = Gateway::start_with(bin, r#"{"gateway":{"mode":"local"}}"#)?;
    let t = Target {
        addr: gw.addr(),
        token: gw.token.clone(),
    };
    let ceiling = ceiling_of(&t)?;
    bombs(&t)?;
    presence_flood(&t)?;
    ping_flood(&t)?;
    half_sent_frames(&t)?;
    let peak = procs::status_field(gw.pid, "VmHWM").ok_or("cannot read VmHWM")?;
    // The gateway still answers.
    let (ws, _) = wire::handshake(&t, "cli", &["operator.read"])?;
    RawConn::new(ws).call("health", None)?;
    Ok((peak, ceiling))
}

fn admin(t: &Target) -> Result<RawConn, String> {
    wire::handshake(t, "cli", &["operator.admin"]).map(|(ws, _)| RawConn::new(ws))
}

fn ceiling_of(t: &Target) -> Result<u64, String> {
    let (mut ws, _) = wire::handshake(t, "cli", &["operator.read"])?;
    ws.send(tungstenite::Message::text(
        r#"{"type":"req","id":"s","method":"status"}"#,
    ))
    .map_err(|e| e.to_string())?;
    for _ in 0..64 {
        if let Ok(tungstenite::Message::Text(text)) = ws.read() {
            let v: Value = serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
            if v["id"] == "s" {
                wire::close(ws);
                return v["payload"]["gateway"]["memoryCeiling"]["totalBytes"]
                    .as_u64()
                    .ok_or_else(|| "status has no gateway.memoryCeiling".to_string());
            }
        }
    }
    Err("no answer to status".into())
}

/// Eight 4 MiB `params: [0,0,…]` frames to `health`, at once.
fn bombs(t: &Target) -> Result<(), String> {
    let zeros = vec!["0"; (4 * MIB as usize - 100) / 2].join(",");
    let frame = format!(r#"{{"type":"req","id":"bomb","method":"health","params":[{zeros}]}}"#);
    let mut conns: Vec<RawConn> = (0..8).map(|_| admin(t)).collect::<Result<_, _>>()?;
    std::thread::scope(|s| {
        for c in &mut conns {
            let frame = &frame;
            s.spawn(move || {
                let _ = c.send_text(frame.as_bytes());
                let _ = c.wait_res("bomb", "health");
            });
        }
    });
    Ok(())
}

fn presence_flood(t: &Target) -> Result<(), String> {
    let mut c = admin(t)?;
    let controls = "\\u0001".repeat(600);
    for i in 0..220 {
        let f = |k: &str| format!(r#""{k}":"{controls}""#);
        let fields = [
            "text",
            "host",
            "version",
            "platform",
            "deviceFamily",
            "modelIdentifier",
            "mode",
            "reason",
            "instanceId",
            "ip",
        ]
        .map(f)
        .join(",");
        let params = format!(
            r#"{{{fields},"deviceId":"{i}{controls}","tags":["{controls}","{controls}"],"roles":["{controls}"]}}"#
        );
        c.call("system-event", Some(&params))?;
    }
    Ok(())
}

fn ping_flood(t: &Target) -> Result<(), String> {
    let (ws, _) = wire::handshake(t, "cli", &[])?;
    let mut s = ws.into_inner();
    s.set_write_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let ping = [0x89u8, 0x80 | 125, 1, 2, 3, 4]
        .into_iter()
        .chain(std::iter::repeat_n(7u8, 125))
        .collect::<Vec<u8>>();
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    for _ in 0..100 {
        if Instant::now() > deadline || s.write_all(&burst).is_err() {
            break;
        }
    }
    Ok(())
}

/// Sixteen clients each send all but the last byte of a 1 MiB frame,
/// hold it a moment, then finish.
fn half_sent_frames(t: &Target) -> Result<(), String> {
    let pad = "x".repeat(MIB as usize - 200);
    let mut conns: Vec<RawConn> = (0..16).map(|_| admin(t)).collect::<Result<_, _>>()?;
    std::thread::scope(|s| {
        for (i, c) in conns.iter_mut().enumerate() {
            let pad = &pad;
            s.spawn(move || {
                let text =
                    format!(r#"{{"type":"req","id":"big{i}","method":"health","pad":"{pad}"}}"#);
                let _ = c.s.set_write_timeout(Some(Duration::from_secs(10)));
                // The raw frame, its last byte held back for a moment.
                let mut frame = vec![0x81u8, 0x80 | 127];
                frame.extend_from_slice(&(text.len() as u64).to_be_bytes());
                frame.extend_from_slice(&[0, 0, 0, 0]);
                frame.extend_from_slice(text.as_bytes());
                let (most, last) = frame.split_at(frame.len() - 1);
                let _ = c.s.write_all(most);
                std::thread::sleep(Duration::from_millis(500));
                let _ = c.s.write_all(last);
                let _ = c.wait_res(&format!("big{i}"), "health");
            });
        }
    });
    Ok(())
}
