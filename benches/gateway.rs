//! `cargo bench --bench gateway [-- OPTIONS]`: measures the release
//! clawgate against its targets (size, a first and a repeated startup,
//! memory per client, handshake rate, `health` latency and throughput,
//! fan-out, whole-process `clawgate call`, the `node.invoke` round trip,
//! memory per idle node, and the Control UI's static files) and prints one
//! table.
//!
//! It spawns the binary cargo built for the bench (release profile) with a
//! temp HOME, state dir and a config that admits 4,096 connections, or,
//! with `--url`, measures a gateway that is already running (for example
//! the reference one). Unless `--no-static`, it also builds a static glibc
//! binary (row 2) and, with `contrib/build-static.sh`, a static musl one
//! (row 2m), and measures their memory as well (rows 4s, 4m, 5ma/5mb). Loopback only; every loop is bounded in count and
//! time, every socket has timeouts, and a watchdog ends the run (and the
//! children it started) if anything still overruns.

#[path = "gateway/artifact.rs"]
mod artifact;
#[path = "gateway/attack.rs"]
mod attack;
#[path = "gateway/device.rs"]
mod device;
#[path = "gateway/handoff.rs"]
mod handoff;
#[path = "gateway/load.rs"]
mod load;
#[path = "gateway/memory.rs"]
mod memory;
#[path = "gateway/nodes.rs"]
mod nodes;
#[path = "gateway/openai.rs"]
mod openai;
#[path = "gateway/opts.rs"]
mod opts;
#[path = "gateway/procs.rs"]
mod procs;
#[path = "gateway/report.rs"]
mod report;
#[path = "gateway/runs.rs"]
mod runs;
#[path = "gateway/static_ui.rs"]
mod static_ui;
#[path = "gateway/storm.rs"]
mod storm;
#[path = "gateway/upstream.rs"]
mod upstream;
#[path = "gateway/wire.rs"]
mod wire;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opts::Opts;
use report::{kib, thousands, Met, Table};
use wire::Target;

const MIB: f64 = 1024.0 * 1024.0;
const EXT: &str = "n/a (external gateway)";
const NO_PID: &str = memory::NO_PID;

fn main() {
    let opts = match opts::parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    procs::watchdog(Duration::from_secs(170));
    if let Err(e) = run(&opts) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// Iterations: full, or `--quick` for a smoke run.
fn q(o: &Opts, full: usize, quick: usize) -> usize {
    if o.quick {
        quick
    } else {
        full
    }
}

fn run(o: &Opts) -> Result<(), String> {
    let t_all = Instant::now();
    let nofile = procs::raise_nofile()?;
    let need = o.clients as u64 * 2 + 200;
    if nofile < need {
        return Err(format!(
            "RLIMIT_NOFILE hard limit {nofile} < {need} needed for {} clients",
            o.clients
        ));
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/version")
        .ok()
        .and_then(|v| v.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("machine: {cores} cores (nproc); {kernel}");
    println!("clawgate: {} ({})", procs::version(), procs::BIN);
    let quick = if o.quick { "; --quick" } else { "" };
    println!("RLIMIT_NOFILE: {nofile}; clients: {}{quick}", o.clients);
    println!("load average (1 min) at start: {}", procs::loadavg());
    let mut t = Table(Vec::new());
    let mut notes = Vec::new();
    let external = o.url.is_some();

    let (static_bin, musl_bin) = binaries(o, &mut t);
    startup(o, &mut t);

    // The gateway under test and, for the idle figures, the static builds.
    let gw = match external {
        true => None,
        false => Some(procs::Gateway::start(Path::new(procs::BIN))?),
    };
    let static_gw = static_bin.and_then(|p| procs::Gateway::start(&p).ok());
    let musl_gw = musl_bin.as_ref().map(|p| procs::Gateway::start(p));
    let (target, pid) = match &gw {
        Some(g) => (
            Target {
                addr: g.addr(),
                token: g.token.clone(),
            },
            Some(g.pid),
        ),
        None => (
            Target {
                addr: o.url.expect("checked: external"),
                token: o.token.clone().expect("checked: --url needs --token"),
            },
            o.pid,
        ),
    };
    let idle = memory::idle_rss(&mut t, gw.as_ref(), pid, &memory::MAIN);
    if let Some(sg) = static_gw {
        match procs::status_field(sg.pid, "VmRSS") {
            Some(kb) => {
                let res = format!("{} (anon {} KiB)", kib(kb), anon(sg.pid));
                let what = "idle RSS of the static glibc build (as row 4)";
                t.add("4s", what, "≤ 1.5 MiB", (res, Met::of(kb <= 1536)));
            }
            None => notes.push("static build: cannot read its RSS".into()),
        }
    }
    // The musl gateway and its idle RSS, or why rows 4m and 5m are skipped.
    let musl_gw = match musl_gw {
        Some(Ok(g)) => {
            let idle = memory::idle_rss(&mut t, Some(&g), Some(g.pid), &memory::MUSL);
            Ok((g, idle))
        }
        Some(Err(e)) => Err(Some(format!("musl gateway: {e}"))),
        None if external || o.no_static => Err(None),
        None => Err(Some("skipped: no musl build (see row 2m)".to_string())),
    };
    if let Err(Some(why)) = &musl_gw {
        memory::musl_idle_na(&mut t, why);
    }
    let server_version = wire::handshake(&target, "cli", &["operator.read"])
        .map(|(ws, v)| {
            wire::close(ws);
            v
        })
        .map_err(|e| format!("cannot handshake with the gateway: {e}"))?;
    println!(
        "gateway under test: server.version {server_version} at ws://{}{}",
        target.addr,
        pid.map_or(String::new(), |p| format!(" (PID {p})"))
    );

    let fanout = clients(o, &mut t, &mut notes, &target, pid, idle).unwrap_or_else(|e| {
        let what = "RSS with idle handshaken clients (mode cli)";
        t.add("5", what, "≤ 24 KiB/client", (e.clone(), Met::No));
        (format!("not measured: {e}"), Met::No)
    });
    match musl_gw {
        Ok((g, idle)) => {
            let musl_target = Target {
                addr: g.addr(),
                token: g.token.clone(),
            };
            let (n, r) = (o.clients, &memory::MUSL);
            memory::clients_rows(&mut t, &mut notes, &musl_target, Some(g.pid), idle, n, r);
        }
        Err(Some(why)) => memory::musl_clients_na(&mut t, &why),
        Err(None) => {}
    }
    traffic(o, &mut t, &target, pid);
    let n = o.clients;
    let fan_what = format!("fan-out: system-event → presence at all {n} clients");
    t.add("9", &fan_what, "≤ 20 ms", fanout);

    let call_what = "`clawgate call health`, whole process";
    match &gw {
        None => t.na("10", call_what, "≤ 5 ms", EXT),
        Some(g) => {
            let runs = q(o, 30, 5);
            let r = procs::call_health_ms(g, runs).map(|mut v| {
                let m = procs::median(&mut v);
                let floor = procs::true_ms(runs).map_or("?".into(), |x| format!("{x:.2}"));
                let res = format!(
                    "median {m:.2} ms (min {:.2}, max {:.2}; /bin/true: {floor} ms)",
                    v[0],
                    v[v.len() - 1]
                );
                (res, Met::of(m <= 5.0))
            });
            t.add(
                "10",
                call_what,
                "≤ 5 ms",
                r.unwrap_or_else(|e| (e, Met::No)),
            );
        }
    }
    nodes::rows(&mut t, &target, pid, external, 2000);
    storm::row(&mut t, &target, external, 1000);
    runs::rows(&mut t, external, o.quick);
    runs::read_rows(&mut t, external);
    openai::rows(&mut t, external, o.quick);
    static_ui::rows(&mut t, gw.as_ref().map(|g| g.addr()), o.quick);
    if let Some(kb) = pid.and_then(|p| procs::status_field(p, "VmRSS")) {
        notes.push(format!("gateway RSS at the end: {}", kib(kb)));
    }
    drop(gw);
    match external {
        true => t.na("11", attack::WHAT, attack::TARGET, EXT),
        false => attack::worst_case(&mut t, Path::new(procs::BIN)),
    }

    println!();
    t.print();
    for n in notes {
        println!("note: {n}");
    }
    println!(
        "total time: {:.1} s; load average (1 min) at the end: {}",
        t_all.elapsed().as_secs_f64(),
        procs::loadavg()
    );
    Ok(())
}

fn anon(pid: u32) -> u64 {
    procs::status_field(pid, "RssAnon").unwrap_or(0)
}

/// Rows 1, 2 and 2m; returns the static glibc and musl binaries that
/// were built and run.
fn binaries(o: &Opts, t: &mut Table) -> (Option<PathBuf>, Option<PathBuf>) {
    let size_what = "stripped release binary (as cargo built it)";
    let static_what = "static glibc build (+crt-static), stripped";
    let musl_what = "static musl build (contrib/build-static.sh), stripped";
    let static_target = "≤ 1.0 MiB, static";
    if o.url.is_some() {
        t.na("1", size_what, "≤ 1.0 MiB", EXT);
        t.na("2", static_what, static_target, EXT);
        t.na("2m", musl_what, static_target, EXT);
        return (None, None);
    }
    let path = Path::new(procs::BIN);
    let r = artifact::size(path).map(|b| {
        let link = artifact::linkage(path).unwrap_or("?");
        let res = format!("{} B ({:.1} KiB), {link}", thousands(b), b as f64 / 1024.0);
        (res, Met::of(b as f64 <= MIB))
    });
    t.add(
        "1",
        size_what,
        "≤ 1.0 MiB",
        r.unwrap_or_else(|e| (e, Met::No)),
    );
    if o.no_static {
        t.na("2", static_what, static_target, "skipped (--no-static)");
        t.na("2m", musl_what, static_target, "skipped (--no-static)");
        return (None, None);
    }
    eprintln!("bench: building the static glibc binary (bounded to 240 s)...");
    let glibc = artifact::static_build(Duration::from_secs(240));
    let glibc = static_row(t, "2", static_what, glibc);
    eprintln!("bench: building the static musl binary (bounded to 300 s)...");
    let musl = artifact::musl_build(Duration::from_secs(300));
    let musl = static_row(t, "2m", musl_what, musl);
    (glibc, musl)
}

/// Row 2 or 2m from a static build: size, linkage, whether it runs.
/// Returns the binary when it runs.
fn static_row(
    t: &mut Table,
    id: &'static str,
    what: &str,
    build: Result<artifact::StaticBuild, String>,
) -> Option<PathBuf> {
    let target = "≤ 1.0 MiB, static";
    let r = build.and_then(|b| {
        procs::extend_deadline(b.took);
        let bytes = artifact::size(&b.path)?;
        let link = artifact::linkage(&b.path)?;
        let runs = artifact::runs(&b.path);
        let res = format!(
            "{} B ({:.1} KiB), {link}, {} (built in {:.0} s)",
            thousands(bytes),
            bytes as f64 / 1024.0,
            if runs { "runs" } else { "DOES NOT RUN" },
            b.took.as_secs_f64()
        );
        let ok = bytes as f64 <= MIB && link.starts_with("static") && runs;
        Ok((res, Met::of(ok), runs.then_some(b.path)))
    });
    match r {
        Ok((res, met, path)) => {
            t.add(id, what, target, (res, met));
            path
        }
        Err(e) => {
            t.na(id, what, target, &e);
            None
        }
    }
}

/// Rows 3 and 3r: exec → first accepted connection, for a first start
/// and for repeated starts on the same state directory and port.
fn startup(o: &Opts, t: &mut Table) {
    let rows = [
        (
            "3",
            "exec → first accepted TCP connection (first start)",
            procs::Starts::First,
        ),
        (
            "3r",
            "exec → first accepted TCP connection (2nd..Nth start, same state dir and port)",
            procs::Starts::Repeated,
        ),
    ];
    for (id, what, starts) in rows {
        if o.url.is_some() {
            t.na(id, what, "≤ 5 ms", EXT);
            continue;
        }
        let runs = q(o, 15, 5);
        let r = procs::startup_ms(runs, starts).map(|v| {
            let mut connect: Vec<f64> = v.iter().map(|s| s.connect_ms).collect();
            let mut answer: Vec<f64> = v.iter().map(|s| s.answer_ms).collect();
            let m = procs::median(&mut connect);
            let a = procs::median(&mut answer);
            let res = format!(
                "median {m:.2} ms (min {:.2}, max {:.2}; {runs} runs; GET /health answered: median {a:.2} ms)",
                connect[0],
                connect[connect.len() - 1]
            );
            (res, Met::of(m <= 5.0))
        });
        t.add(id, what, "≤ 5 ms", r.unwrap_or_else(|e| (e, Met::No)));
    }
}

/// Rows 5a/5b (memory with idle clients), then fan-out to those same
/// clients, whose row is returned so the table stays in order.
fn clients(
    o: &Opts,
    t: &mut Table,
    notes: &mut Vec<String>,
    target: &Target,
    pid: Option<u32>,
    idle: Option<u64>,
) -> Result<(String, Met), String> {
    let threads_idle = pid.and_then(|p| procs::status_field(p, "Threads"));
    let r = &memory::MAIN;
    let mut clients = memory::idle_clients(t, notes, target, pid, idle, o.clients, r)?;
    let fanout = load::fanout_ms(target, &mut clients, q(o, 5, 3)).map(|mut v| {
        let rounds: Vec<String> = v.iter().map(|x| format!("{x:.1}")).collect();
        let m = procs::median(&mut v);
        let res = format!("median {m:.1} ms (rounds: {})", rounds.join(", "));
        (res, Met::of(m <= 20.0))
    });
    drop(clients);
    // Let the gateway retire those threads before the next figures.
    if let (Some(p), Some(base)) = (pid, threads_idle) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5)
            && procs::status_field(p, "Threads").is_some_and(|n| n > base + 1)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(fanout.unwrap_or_else(|e| (e, Met::No)))
}

/// Rows 6 (handshake rate), 7 (health latency) and 8 (throughput).
fn traffic(o: &Opts, t: &mut Table, target: &Target, pid: Option<u32>) {
    let total = q(o, 2000, 300);
    let rate = load::handshake_rate(target, 10, total, Duration::from_secs(10));
    let what = "handshakes/s, 10 in flight (mode cli)";
    t.add("6", what, "—", load::rate_cell(rate));

    let (warm, calls) = (q(o, 200, 50), q(o, 2000, 500));
    let others = procs::Others::start(pid);
    let rtt = load::health_rtt(target, warm, calls, pid);
    let busy = others.cores(pid).map_or(String::new(), |c| {
        format!("; other processes used {c:.2} cores meanwhile")
    });
    match rtt {
        Ok(load::Rtt { us: v, cpus }) => {
            let (p50, p99) = (load::percentile(&v, 50.0), load::percentile(&v, 99.0));
            let what = format!("health round trip, 1 connection: p50 ({calls} calls)");
            let place = match cpus {
                Some((a, b)) if a == b => format!(" (client and gateway thread on CPU {a})"),
                Some((a, b)) => format!(" (client on CPU {a}, gateway thread on CPU {b})"),
                None => String::new(),
            };
            let res = format!("{p50:.0} µs{place}");
            t.add("7a", &what, "≤ 60 µs", (res, Met::of(p50 <= 60.0)));
            let what = "health round trip, 1 connection: p99";
            let res = format!("{p99:.0} µs (max {:.0} µs{busy})", v[v.len() - 1]);
            t.add("7b", what, "≤ 250 µs", (res, Met::of(p99 <= 250.0)));
        }
        Err(e) => {
            let what = "health round trip, 1 connection";
            t.add("7", what, "p50 ≤ 60 µs, p99 ≤ 250 µs", (e, Met::No));
        }
    }

    let window = Duration::from_secs(q(o, 10, 2) as u64);
    let what = "throughput, 16 connections × health";
    let others = procs::Others::start(pid);
    let th = load::throughput(target, 16, window, pid);
    let busy = others.cores(pid).map_or(String::new(), |c| {
        format!("; other processes: {c:.2} cores")
    });
    match th {
        Ok(th) => {
            let rps = th.requests as f64 / th.secs;
            let res = format!(
                "{} req/s ({} in {:.1} s)",
                thousands(rps as u64),
                thousands(th.requests),
                th.secs
            );
            t.add(
                "8a",
                what,
                "≥ 40,000 req/s",
                (res, Met::of(rps >= 40_000.0)),
            );
            let what = "gateway CPU during 8a";
            match th.gateway_cpu {
                Some(cpu) => {
                    let res = format!(
                        "{cpu:.2} s = {:.2} cores, {:.1} CPU-µs/req (bench clients: {:.2} s{busy})",
                        cpu / th.secs,
                        cpu * 1e6 / th.requests.max(1) as f64,
                        th.client_cpu.unwrap_or(f64::NAN)
                    );
                    t.add("8b", what, "—", (res, Met::Na));
                }
                None => t.na("8b", what, "—", NO_PID),
            }
        }
        Err(e) => t.add("8", what, "≥ 40,000 req/s", (e, Met::No)),
    }
}
