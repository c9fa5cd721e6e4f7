//! The load generators: idle clients, fan-out, handshake rate, `health`
//! latency and throughput. Every loop is bounded in count and in time.

use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::wire::{self, RawConn, Target};

/// Opens `n` more handshaken `cli`-mode clients (not listed in presence, so
/// no broadcasts pile up in unread sockets), within `limit`.
pub fn open_idle(t: &Target, n: usize, limit: Duration) -> Result<Vec<TcpStream>, String> {
    let t0 = Instant::now();
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        if t0.elapsed() > limit {
            return Err(format!(
                "only {i} of {n} clients connected within {limit:?}"
            ));
        }
        let (ws, _) = wire::handshake(t, "cli", &["operator.read"])
            .map_err(|e| format!("client {i}: {e}"))?;
        v.push(ws.into_inner());
    }
    Ok(v)
}

/// Reads whatever is pending on a non-blocking socket (bounded).
fn drain(s: &mut TcpStream, scratch: &mut [u8], keep: Option<&mut Vec<u8>>) -> io::Result<()> {
    let mut keep = keep;
    for _ in 0..1024 {
        match s.read(scratch) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
            Ok(n) => {
                if let Some(k) = keep.as_deref_mut() {
                    k.extend_from_slice(&scratch[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One fan-out round per entry: time from sending `system-event` until
/// every client has received the presence event naming its unique text,
/// in ms.
pub fn fanout_ms(t: &Target, clients: &mut [TcpStream], rounds: usize) -> Result<Vec<f64>, String> {
    let (ws, _) = wire::handshake(t, "cli", &["operator.admin"])?;
    let mut admin = RawConn::new(ws);
    for c in clients.iter() {
        c.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    let mut scratch = vec![0u8; 64 * 1024];
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); clients.len()];
    let mut times = Vec::new();
    for round in 0..rounds {
        // Earlier presence and tick events must not count.
        for (i, c) in clients.iter_mut().enumerate() {
            drain(c, &mut scratch, None).map_err(|e| format!("client {i}: {e}"))?;
        }
        let text = format!(
            "bench-{}-{round}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        got.iter_mut().for_each(Vec::clear);
        let mut pending: Vec<usize> = (0..clients.len()).collect();
        let t0 = Instant::now();
        let id = admin.send_req("system-event", Some(&format!(r#"{{"text":"{text}"}}"#)))?;
        let mut last = t0;
        let deadline = t0 + Duration::from_secs(3);
        while !pending.is_empty() && Instant::now() < deadline {
            let mut fds: Vec<libc::pollfd> = pending
                .iter()
                .map(|&i| libc::pollfd {
                    fd: clients[i].as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: fds is a valid, exclusively borrowed pollfd array.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll: {e}"));
            }
            let mut still = Vec::with_capacity(pending.len());
            for (k, &i) in pending.iter().enumerate() {
                if fds[k].revents == 0 {
                    still.push(i);
                    continue;
                }
                drain(&mut clients[i], &mut scratch, Some(&mut got[i]))
                    .map_err(|e| format!("client {i}: {e}"))?;
                if wire::find(&got[i], text.as_bytes()).is_some() {
                    last = Instant::now();
                } else {
                    still.push(i);
                }
            }
            pending = still;
        }
        admin.wait_res(&id, "system-event")?;
        if !pending.is_empty() {
            return Err(format!(
                "round {round}: {} of {} clients got no presence event within 3 s",
                pending.len(),
                clients.len()
            ));
        }
        times.push((last - t0).as_secs_f64() * 1e3);
    }
    Ok(times)
}

pub struct Rate {
    pub ok: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub secs: f64,
}

/// `threads` threads each looping connect → upgrade → challenge → connect
/// → hello-ok → close, `total` handshakes in all or until `limit`.
pub fn handshake_rate(t: &Target, threads: usize, total: usize, limit: Duration) -> Rate {
    let t = t.clone();
    let attempt = move |_: usize| {
        wire::handshake(&t, "cli", &["operator.read"]).map(|(ws, _)| wire::close(ws))
    };
    rate(threads, total, limit, attempt)
}

/// `threads` threads each calling `attempt(thread)` until `total` calls
/// in all are made or `limit` passes; counts what succeeded and keeps the
/// first error.
pub fn rate(
    threads: usize,
    total: usize,
    limit: Duration,
    attempt: impl Fn(usize) -> Result<(), String> + Send + Sync + 'static,
) -> Rate {
    let attempt = Arc::new(attempt);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (attempt, next, failed, first_error, barrier) = (
                attempt.clone(),
                next.clone(),
                failed.clone(),
                first_error.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let t0 = Instant::now();
                let mut ok = 0usize;
                while next.fetch_add(1, Ordering::Relaxed) < total && t0.elapsed() < limit {
                    match attempt(i) {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                }
                ok
            })
        })
        .collect();
    barrier.wait();
    let t0 = Instant::now();
    let ok = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let secs = t0.elapsed().as_secs_f64();
    let first_error = first_error.lock().ok().and_then(|mut f| f.take());
    Rate {
        ok,
        failed: failed.load(Ordering::Relaxed),
        first_error,
        secs,
    }
}

/// A rate as a table cell: handshakes per second, how many in how long,
/// and the failures with the first one's reason; `Met::No` when any
/// failed, otherwise no target.
pub fn rate_cell(rate: Rate) -> (String, crate::report::Met) {
    let mut res = format!(
        "{:.0} handshakes/s ({} in {:.2} s",
        rate.ok as f64 / rate.secs.max(1e-9),
        rate.ok,
        rate.secs
    );
    if rate.failed > 0 {
        let first = rate.first_error.unwrap_or_default();
        res.push_str(&format!("; {} FAILED: {first}", rate.failed));
    }
    res.push(')');
    let met = match rate.failed {
        0 => crate::report::Met::Na,
        _ => crate::report::Met::No,
    };
    (res, met)
}

pub struct Rtt {
    /// Round-trip times in µs, sorted.
    pub us: Vec<f64>,
    /// Where the client and the gateway's connection thread last ran:
    /// a round trip across CPUs pays two wake-ups of an idle CPU.
    pub cpus: Option<(u32, u32)>,
}

/// Round-trip times of `health` on one connection.
pub fn health_rtt(t: &Target, warmup: usize, n: usize, pid: Option<u32>) -> Result<Rtt, String> {
    let (ws, _) = wire::handshake(t, "cli", &["operator.read"])?;
    let mut c = RawConn::new(ws);
    for _ in 0..warmup {
        c.call("health", None)?;
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        c.call("health", None)?;
        v.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let cpus = crate::procs::current_cpu().zip(pid.and_then(crate::procs::newest_thread_cpu));
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(Rtt { us: v, cpus })
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub struct Throughput {
    pub requests: u64,
    pub secs: f64,
    /// Gateway CPU seconds over the window, when its pid is known.
    pub gateway_cpu: Option<f64>,
    /// This benchmark's own CPU seconds over the window (the clients).
    pub client_cpu: Option<f64>,
}

/// `conns` connections on as many threads, each calling `health`
/// back-to-back for `window`.
pub fn throughput(
    t: &Target,
    conns: usize,
    window: Duration,
    pid: Option<u32>,
) -> Result<Throughput, String> {
    let mut raws = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (ws, _) = wire::handshake(t, "cli", &["operator.read"])?;
        raws.push(RawConn::new(ws));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(conns + 1));
    let handles: Vec<_> = raws
        .into_iter()
        .map(|mut c| {
            let (stop, barrier) = (stop.clone(), barrier.clone());
            std::thread::spawn(move || -> Result<u64, String> {
                barrier.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    c.call("health", None)?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let tck = crate::procs::clk_tck();
    let gw_ticks = |p: Option<u32>| p.and_then(|p| crate::procs::cpu_ticks(&p.to_string()));
    let (g0, c0) = (gw_ticks(pid), crate::procs::cpu_ticks("self"));
    barrier.wait();
    let t0 = Instant::now();
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let mut requests = 0;
    let mut err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(n)) => requests += n,
            Ok(Err(e)) => err = Some(e),
            Err(_) => err = Some("client thread panicked".into()),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let (g1, c1) = (gw_ticks(pid), crate::procs::cpu_ticks("self"));
    if let Some(e) = err {
        return Err(e);
    }
    let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / tck);
    Ok(Throughput {
        requests,
        secs,
        gateway_cpu: delta(g0, g1),
        client_cpu: delta(c0, c1),
    })
}
