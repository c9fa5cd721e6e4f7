//! Rows 4 and 5: idle RSS, and RSS with idle handshaken clients. The same
//! functions measure the gateway under test (rows 4, 5a, 5b) and a second
//! gateway started from the static musl build (rows 4m, 5ma, 5mb).

use std::net::TcpStream;
use std::time::Duration;

use crate::load;
use crate::procs;
use crate::report::{kib, Met, Table};
use crate::wire::Target;

pub const NO_PID: &str = "n/a (no --pid)";
const IDLE_TARGET: &str = "≤ 1.5 MiB";
const PER_CLIENT: &str = "≤ 24 KiB/client";
const TARGET_B: &str = "≤ 32 MiB at 1,000; ≤ 24 KiB/client";

/// Which rows a gateway's memory figures go to, and how they are named.
pub struct Rows {
    pub idle: &'static str,
    pub a: &'static str,
    pub b: &'static str,
    /// The single row that reports a failure to open the clients.
    pub failed: &'static str,
    /// The measure's name for the idle row (None: the default wording).
    pub idle_what: Option<&'static str>,
    /// What follows "RSS with N idle " in rows a and b.
    pub clients: &'static str,
    /// Prefix of the note with the /proc figures at N clients.
    pub note: &'static str,
}

/// The gateway under test.
pub const MAIN: Rows = Rows {
    idle: "4",
    a: "5a",
    b: "5b",
    failed: "5",
    idle_what: None,
    clients: "handshaken clients (mode cli)",
    note: "",
};

/// The static musl build (`contrib/build-static.sh`).
pub const MUSL: Rows = Rows {
    idle: "4m",
    a: "5ma",
    b: "5mb",
    failed: "5m",
    idle_what: Some("idle RSS of the musl build (as row 4)"),
    clients: "clients on the musl build (as 5a/5b)",
    note: "musl build ",
};

/// Row 4m when there is no musl gateway.
pub fn musl_idle_na(t: &mut Table, why: &str) {
    t.na(
        MUSL.idle,
        MUSL.idle_what.unwrap_or_default(),
        IDLE_TARGET,
        why,
    );
}

/// Row 5m (for 5ma/5mb) when there is no musl gateway.
pub fn musl_clients_na(t: &mut Table, why: &str) {
    let what = format!("RSS with 100 / 1,000 idle {}", MUSL.clients);
    t.na(MUSL.failed, &what, TARGET_B, why);
}

fn anon(pid: u32) -> u64 {
    procs::status_field(pid, "RssAnon").unwrap_or(0)
}

/// Row 4: RSS 2 s after start, before any client. Returns it in KiB.
pub fn idle_rss(
    t: &mut Table,
    gw: Option<&procs::Gateway>,
    pid: Option<u32>,
    r: &Rows,
) -> Option<u64> {
    let what = match (r.idle_what, gw) {
        (Some(w), _) => w,
        (None, Some(_)) => "idle RSS (2 s after start, no client yet)",
        (None, None) => "idle RSS (before any bench client)",
    };
    let Some(p) = pid else {
        t.na(r.idle, what, IDLE_TARGET, NO_PID);
        return None;
    };
    if let Some(g) = gw {
        std::thread::sleep(Duration::from_secs(2).saturating_sub(g.started.elapsed()));
    }
    let Some(kb) = procs::status_field(p, "VmRSS") else {
        t.na(r.idle, what, IDLE_TARGET, "cannot read /proc/PID/status");
        return None;
    };
    let file = procs::status_field(p, "RssFile").unwrap_or(0);
    let res = format!("{} (anon {} KiB, file {file} KiB)", kib(kb), anon(p));
    t.add(r.idle, what, IDLE_TARGET, (res, Met::of(kb <= 1536)));
    Some(kb)
}

/// Rows 5a/5b: RSS with `clients` (first 100, then all) idle handshaken
/// clients, per client above `idle`. Returns the open clients (for the
/// fan-out row); on failure the caller reports it in row `r.failed`.
pub fn idle_clients(
    t: &mut Table,
    notes: &mut Vec<String>,
    target: &Target,
    pid: Option<u32>,
    idle: Option<u64>,
    n: usize,
    r: &Rows,
) -> Result<Vec<TcpStream>, String> {
    let rss = |p: u32| procs::status_field(p, "VmRSS");
    let threads_idle = pid.and_then(|p| procs::status_field(p, "Threads"));
    let first = n.min(100);
    let per_client = |k: usize| -> Option<(u64, f64)> {
        let (now, idle) = (pid.and_then(rss)?, idle?);
        Some((now, (now as f64 - idle as f64) / k as f64))
    };
    let mut clients = load::open_idle(target, first, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_millis(500));
    if first < n {
        let what_a = format!("RSS with {first} idle {}", r.clients);
        match per_client(first) {
            Some((kb, per)) => {
                let res = format!("{}, {per:.1} KiB/client", kib(kb));
                t.add(r.a, &what_a, PER_CLIENT, (res, Met::of(per <= 24.0)));
            }
            None => t.na(r.a, &what_a, PER_CLIENT, NO_PID),
        }
    }
    clients.extend(load::open_idle(target, n - first, Duration::from_secs(60))?);
    std::thread::sleep(Duration::from_millis(500));
    let what_b = format!("RSS with {n} idle {}", r.clients);
    match per_client(n) {
        Some((kb, per)) => {
            let total_ok = n < 1000 || kb as f64 <= 32.0 * 1024.0;
            let res = format!("{}, {per:.1} KiB/client", kib(kb));
            let met = Met::of(per <= 24.0 && total_ok);
            t.add(r.b, &what_b, TARGET_B, (res, met));
        }
        None => t.na(r.b, &what_b, TARGET_B, NO_PID),
    }
    if let Some(p) = pid {
        let f = |k| procs::status_field(p, k).unwrap_or(0);
        notes.push(format!(
            "{}with {n} clients: RssAnon {} KiB, RssFile {} KiB, VmSize {} KiB, \
             Threads {} (idle: {})",
            r.note,
            f("RssAnon"),
            f("RssFile"),
            f("VmSize"),
            f("Threads"),
            threads_idle.unwrap_or(0)
        ));
    }
    Ok(clients)
}

/// Rows 5a/5b (or 5ma/5mb) as `idle_clients`, with its failure reported in
/// row `r.failed`; the clients are closed on return.
pub fn clients_rows(
    t: &mut Table,
    notes: &mut Vec<String>,
    target: &Target,
    pid: Option<u32>,
    idle: Option<u64>,
    n: usize,
    r: &Rows,
) {
    if let Err(e) = idle_clients(t, notes, target, pid, idle, n, r) {
        let what = format!("RSS with idle {}", r.clients);
        t.add(r.failed, &what, PER_CLIENT, (e, Met::No));
    }
}
