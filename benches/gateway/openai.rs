//! Row 17: `/v1/chat/completions` through a fake OpenAI-compatible
//! upstream on loopback.
//!
//! 17a: a non-streaming round trip on one kept-alive connection, minus
//! the upstream's own time from reading the request to writing its first
//! piece (it answers at once, so that is nearly all of it): what the
//! gateway adds to a turn (parsing, admission, the session, the upstream
//! call, waiting on the run's tap, the answer). 17b: SSE chunks per second
//! through `stream:true` while the upstream sends many small pieces; a
//! chunk may carry several pieces when they arrive faster than the socket
//! is written, so both counts are shown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::load;
use crate::procs::{self, Gateway};
use crate::report::{Met, Table};
use crate::upstream::Upstream;
use crate::wire::{find, IO_TIMEOUT};

fn config(up: &Upstream) -> String {
    format!(
        r#"{{"gateway":{{"mode":"local","http":{{"endpoints":{{"chatCompletions":{{"enabled":true}}}}}}}},
  "models":{{"providers":{{"fake":{{"baseUrl":"{}","api":"openai-completions","models":[{{"id":"m"}}]}}}}}},
  "agents":{{"defaults":{{"model":{{"primary":"fake/m"}},"maxConcurrent":64}}}}}}"#,
        up.base_url()
    )
}

pub fn rows(t: &mut Table, external: bool, quick: bool) {
    const W17A: &str = "/v1/chat/completions round trip, minus the upstream's first-byte time: p50";
    const W17B: &str = "SSE chunks/s through /v1/chat/completions stream:true";
    if external {
        t.na("17a", W17A, "—", crate::EXT);
        t.na("17b", W17B, "—", crate::EXT);
        return;
    }
    match round_trips(if quick { 60 } else { 300 }) {
        Ok(v) => {
            let (p50, p99) = (load::percentile(&v, 50.0), load::percentile(&v, 99.0));
            let res = format!("{p50:.2} ms (p99 {p99:.2} ms; {} turns)", v.len());
            t.add("17a", W17A, "—", (res, Met::Na));
        }
        Err(e) => t.add("17a", W17A, "—", (e, Met::No)),
    }
    match chunks(if quick { 5_000 } else { 20_000 }) {
        Ok(res) => t.add("17b", W17B, "—", (res, Met::Na)),
        Err(e) => t.add("17b", W17B, "—", (e, Met::No)),
    }
}

fn request(gw: &Gateway, body: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        gw.token,
        body.len()
    )
}

fn connect(gw: &Gateway) -> Result<TcpStream, String> {
    let s = TcpStream::connect(gw.addr()).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

/// Reads one response with a `Content-Length` from a kept-alive
/// connection; its status.
fn read_response(s: &mut TcpStream) -> Result<u16, String> {
    let mut got = Vec::with_capacity(4096);
    let mut buf = [0u8; 4096];
    let (end, len) = loop {
        if let Some(end) = find(&got, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("a response without a length")?;
            break (end + 4, len);
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed mid-response".into());
        }
        got.extend_from_slice(&buf[..n]);
    };
    while got.len() < end + len {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed mid-body".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    let status = String::from_utf8_lossy(&got[..12.min(got.len())])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    match status {
        200 => Ok(status),
        _ => Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&got[end..])
        )),
    }
}

/// Row 17a's samples, in ms, sorted.
fn round_trips(turns: usize) -> Result<Vec<f64>, String> {
    let up = Upstream::start(3, Duration::ZERO)?;
    let gw = Gateway::start_with(Path::new(procs::BIN), &config(&up))?;
    let mut s = connect(&gw)?;
    let mut v = Vec::with_capacity(turns);
    // Ten users in turn: an existing session, as most turns go.
    for i in 0..turns + 10 {
        let body = format!(
            r#"{{"model":"openclaw","user":"b{}","messages":[{{"role":"user","content":"hi"}}]}}"#,
            i % 10
        );
        let req = request(&gw, &body);
        let t0 = Instant::now();
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        read_response(&mut s)?;
        let took = t0.elapsed();
        let (got, wrote) = up
            .marks
            .lock()
            .map_err(|_| "marks".to_string())?
            .last()
            .copied()
            .ok_or("the upstream saw no request")?;
        if i >= 10 {
            let upstream = wrote.duration_since(got);
            v.push(took.saturating_sub(upstream).as_secs_f64() * 1e3);
        }
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v)
}

/// Row 17b: one streamed turn of `pieces` pieces, read to `[DONE]`.
fn chunks(pieces: usize) -> Result<String, String> {
    let up = Upstream::start(pieces, Duration::ZERO)?;
    let gw = Gateway::start_with(Path::new(procs::BIN), &config(&up))?;
    let mut s = connect(&gw)?;
    let body = r#"{"model":"openclaw","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let t0 = Instant::now();
    s.write_all(request(&gw, body).as_bytes())
        .map_err(|e| e.to_string())?;
    let mut all = Vec::with_capacity(pieces * 128);
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    let took = t0.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&all);
    if !text.contains("data: [DONE]") {
        return Err("the stream ended without [DONE]".into());
    }
    if !text.contains(&format!("w{} ", pieces - 1)) {
        return Err("the last piece did not arrive".into());
    }
    let content = text.matches(r#""delta":{"content":"#).count();
    Ok(format!(
        "{:.0} chunks/s ({content} content chunks carrying {pieces} pieces in {took:.2} s; {:.0} pieces/s)",
        content as f64 / took,
        pieces as f64 / took
    ))
}
