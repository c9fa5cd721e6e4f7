//! Processes: the gateway under test, its /proc figures, the startup and
//! `clawgate call` timings, and the watchdog that ends the benchmark (and
//! every child it registered) if anything overruns.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_clawgate");

/// The config that lets 1,000+ clients in: the defaults (256 connections,
/// 32 unauthenticated per IP) are sized for a router.
pub const CONFIG: &str =
    r#"{"gateway":{"mode":"local","limits":{"maxConnections":4096,"maxUnauthPerIp":4096}}}"#;

// ---------------------------------------------------------------- watchdog

/// Process ids (or negated process-group ids) to SIGKILL when the
/// watchdog fires.
static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Milliseconds after `STARTED` at which the watchdog fires.
static DEADLINE_MS: AtomicU64 = AtomicU64::new(0);

pub fn register(id: i32) {
    if let Ok(mut v) = CHILDREN.lock() {
        v.push(id);
    }
}

pub fn unregister(id: i32) {
    if let Ok(mut v) = CHILDREN.lock() {
        v.retain(|&x| x != id);
    }
}

/// Starts the watchdog: after `limit` (plus any `extend_deadline`), it
/// kills the registered children and exits with status 3.
pub fn watchdog(limit: Duration) {
    let started = Instant::now();
    DEADLINE_MS.store(limit.as_millis() as u64, Ordering::Relaxed);
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(250));
        if started.elapsed().as_millis() as u64 > DEADLINE_MS.load(Ordering::Relaxed) {
            eprintln!(
                "bench: watchdog: still running after {:?}; aborting",
                started.elapsed()
            );
            if let Ok(v) = CHILDREN.lock() {
                for &id in v.iter() {
                    // SAFETY: kill(2) with ids of children this process spawned.
                    unsafe { libc::kill(id, libc::SIGKILL) };
                }
            }
            std::process::exit(3);
        }
    });
}

pub fn extend_deadline(by: Duration) {
    DEADLINE_MS.fetch_add(by.as_millis() as u64, Ordering::Relaxed);
}

// ------------------------------------------------------------ small helpers

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Result<TempDir, String> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("clawgate-bench-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("creating '{}': {e}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; children inherit it.
pub fn raise_nofile() -> Result<u64, String> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
        }
        r.rlim_cur = r.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
            return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
        }
    }
    // rlim_t is u64 on x86_64 Linux but not on every target.
    #[allow(clippy::unnecessary_cast)]
    Ok(r.rlim_cur as u64)
}

pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn base_command(home: &Path) -> Command {
    command(Path::new(BIN), home)
}

/// `bin` with a clean environment: HOME in a temp dir and only PATH kept,
/// plus the allocator tunables, so their effect can be measured.
fn command(bin: &Path, home: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for var in ["GLIBC_TUNABLES", "MALLOC_ARENA_MAX"] {
        if let Ok(v) = std::env::var(var) {
            c.env(var, v);
        }
    }
    c
}

/// Line from /proc/PID/status, e.g. `VmRSS` → its number (kB for sizes).
pub fn status_field(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime of a process (fields 14 and 15 of /proc/PID/stat), in
/// clock ticks. `who` is a pid or "self".
pub fn cpu_ticks(who: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{who}/stat")).ok()?;
    // The command name may contain spaces: count fields after its ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is f[n - 3].
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Busy clock ticks of the whole machine (all CPUs), from /proc/stat:
/// user + nice + system + irq + softirq + steal.
pub fn machine_busy_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = text
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Some(f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?)
}

/// CPU used by processes other than the gateway and this benchmark.
pub struct Others {
    start: Instant,
    ticks: Option<u64>,
}

impl Others {
    pub fn start(gateway: Option<u32>) -> Others {
        Others {
            start: Instant::now(),
            ticks: Others::now(gateway),
        }
    }

    fn now(gateway: Option<u32>) -> Option<u64> {
        let ours = cpu_ticks("self")? + cpu_ticks(&gateway?.to_string())?;
        machine_busy_ticks()?.checked_sub(ours)
    }

    /// Cores' worth of other CPU use since `start`, e.g. 0.05; None when
    /// unknown (no pid for an external gateway).
    pub fn cores(&self, gateway: Option<u32>) -> Option<f64> {
        let (a, b) = (self.ticks?, Others::now(gateway)?);
        Some(b.saturating_sub(a) as f64 / clk_tck() / self.start.elapsed().as_secs_f64())
    }
}

/// The CPU the newest thread of `pid` last ran on (field 39 of its
/// /proc stat): right after a connection opens, that is its thread.
pub fn newest_thread_cpu(pid: u32) -> Option<u32> {
    let tid = std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(36)?.parse().ok()
}

/// The CPU this thread is running on.
pub fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu has no memory effects.
    let c = unsafe { libc::sched_getcpu() };
    u32::try_from(c).ok()
}

/// The 1-minute load average.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

// ------------------------------------------------------------- the gateway

pub struct Gateway {
    child: Child,
    pub pid: u32,
    pub port: u16,
    pub token: String,
    pub home: TempDir,
    pub state: PathBuf,
    pub started: Instant,
}

impl Gateway {
    /// `<bin> run --port 0` with a temp HOME, state dir and config; waits
    /// (bounded) for its `listening on ws://127.0.0.1:PORT` line, so no
    /// connection touches it before the idle-memory reading.
    pub fn start(bin: &Path) -> Result<Gateway, String> {
        Gateway::start_with(bin, CONFIG)
    }

    /// As `start`, with `config` as the config file's text.
    pub fn start_with(bin: &Path, config_text: &str) -> Result<Gateway, String> {
        Gateway::start_prepared(bin, config_text, |_| Ok(()))
    }

    /// As `start_with`, after `prepare` filled the state directory.
    pub fn start_prepared(
        bin: &Path,
        config_text: &str,
        prepare: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<Gateway, String> {
        let home = TempDir::new("gw")?;
        let state = home.0.join("state");
        prepare(&state)?;
        let config = home.0.join("clawgate.json");
        std::fs::write(&config, config_text).map_err(|e| format!("writing config: {e}"))?;
        let log = std::fs::File::create(home.0.join("gateway.log")).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let mut child = command(bin, &home.0)
            .arg("run")
            .args(["--port", "0", "--state-dir"])
            .arg(&state)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning '{}': {e}", bin.display()))?;
        let pid = child.id();
        register(pid as i32);
        let out = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut gw = Gateway {
            child,
            pid,
            port: 0,
            token: String::new(),
            home,
            state,
            started,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while gw.port == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| {
                let log = std::fs::read_to_string(gw.home.0.join("gateway.log"));
                format!("gateway did not start: {}", log.unwrap_or_default().trim())
            })?;
            if let Some(p) = line
                .strip_prefix("listening on ws://127.0.0.1:")
                .and_then(|r| r.split_whitespace().next())
            {
                gw.port = p
                    .parse()
                    .map_err(|_| format!("bad listening line: {line}"))?;
            }
        }
        let token_path = gw.state.join("gateway.token");
        gw.token = std::fs::read_to_string(&token_path)
            .map_err(|e| format!("reading '{}': {e}", token_path.display()))?
            .trim()
            .to_string();
        Ok(gw)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        unregister(self.pid as i32);
    }
}

// ------------------------------------------------------------------ startup

/// Which starts `startup_ms` times.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Starts {
    /// Row 3: each run a first start, in a state directory of its own on
    /// a fresh port (the directory, the lock file and the token are
    /// created), killed with SIGKILL after it answered.
    First,
    /// Row 3r: the 2nd..Nth start on one state directory and one port,
    /// each gateway stopped with SIGTERM and reaped before the next, as a
    /// restart does (its lock file and token are there already).
    Repeated,
}

/// One start: exec to the first accepted TCP connection, and to the
/// answer to `GET /health` on it (the listeners are bound before the
/// state is written, so the first can come before the gateway serves).
pub struct Start {
    pub connect_ms: f64,
    pub answer_ms: f64,
}

/// `runs` starts after one unmeasured one (a warm-up, or with
/// `Starts::Repeated` the first start itself); the connection is polled
/// every 50 µs from spawn.
pub fn startup_ms(runs: usize, starts: Starts) -> Result<Vec<Start>, String> {
    let home = TempDir::new("startup")?;
    let config = home.0.join("clawgate.json");
    std::fs::write(&config, CONFIG).map_err(|e| format!("writing config: {e}"))?;
    let same_port = free_port()?;
    let mut times = Vec::new();
    for run in 0..=runs {
        let (state, port) = match starts {
            Starts::First => (home.0.join(format!("state-{run}")), free_port()?),
            Starts::Repeated => (home.0.join("state"), same_port),
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut cmd = base_command(&home.0);
        cmd.arg("run")
            .args(["--port", &port.to_string(), "--state-dir"])
            .arg(&state)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t0 = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("spawning: {e}"))?;
        register(child.id() as i32);
        let result = first_answer(addr, t0, &mut child);
        match starts {
            Starts::First => {
                let _ = child.kill();
            }
            // SAFETY: kill(2) of the child this loop spawned, not reaped yet.
            Starts::Repeated => unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            },
        }
        let exited = child.wait();
        unregister(child.id() as i32);
        let start = result?;
        if starts == Starts::Repeated && !exited.as_ref().is_ok_and(|s| s.success()) {
            return Err(format!(
                "gateway did not stop cleanly on SIGTERM: {exited:?}"
            ));
        }
        if run > 0 {
            times.push(start);
        }
    }
    Ok(times)
}

/// Polls `addr` from `t0` until it accepts, then asks for /health on that
/// connection; both bounded to 5 s.
fn first_answer(addr: SocketAddr, t0: Instant, child: &mut Child) -> Result<Start, String> {
    use std::io::{Read, Write};
    let limit = t0 + Duration::from_secs(5);
    let mut stream = loop {
        if let Ok(s) = TcpStream::connect(addr) {
            break s;
        }
        if Instant::now() > limit {
            return Err("no connection within 5 s".to_string());
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("gateway exited early: {st}"));
        }
        std::thread::sleep(Duration::from_micros(50));
    };
    let connect_ms = t0.elapsed().as_secs_f64() * 1e3;
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .and_then(|_| stream.write_all(request.as_bytes()))
        .and_then(|_| stream.read_exact(&mut head))
        .map_err(|e| format!("GET /health: {e}"))?;
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "GET /health answered {:?}",
            String::from_utf8_lossy(&head)
        ));
    }
    let answer_ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(Start {
        connect_ms,
        answer_ms,
    })
}

// ------------------------------------------------------- whole-process call

/// Wall time in ms of `clawgate call health` against `gw`, `runs` times
/// after two unmeasured warm-ups. The client's own `--timeout` bounds it.
pub fn call_health_ms(gw: &Gateway, runs: usize) -> Result<Vec<f64>, String> {
    let mut times = Vec::new();
    for run in 0..runs + 2 {
        let mut cmd = base_command(&gw.home.0);
        cmd.args(["call", "health", "--timeout", "5000", "--port"])
            .arg(gw.port.to_string())
            .arg("--state-dir")
            .arg(&gw.state)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let t0 = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("spawning: {e}"))?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let took = t0.elapsed();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "call health failed ({}): {}",
                out.status,
                err.trim()
            ));
        }
        if run >= 2 {
            times.push(took.as_secs_f64() * 1e3);
        }
    }
    Ok(times)
}

/// Spawn + wait of `/bin/true`, in ms (median of `runs`): the floor under
/// every process-level figure.
pub fn true_ms(runs: usize) -> Option<f64> {
    let mut v = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let st = Command::new("/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        if !st.success() {
            return None;
        }
        v.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Some(median(&mut v))
}

/// `clawgate --version`, first line.
pub fn version() -> String {
    Command::new(BIN)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}
