//! `clawgate run`: start-up, the accept loop, the ticker and signals.
//!
//! Start-up does everything that can fail before the first connection is
//! accepted (configuration, state directory, single-instance lock, secret,
//! binding), so a broken setup exits at once with the right status. After
//! that, one accept loop per listener hands each socket to its own thread,
//! with the connection cap checked before the thread is spawned.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::auth::Secret;
use crate::cli::{AuthMode, BindMode, RunArgs};
use crate::config::{self, Settings, TOKEN_FILE};
use crate::error::Error;
use crate::lifecycle::{self, Reloader};
use crate::logger;
use crate::notify::{self, Notifier};
use crate::procnet;
use crate::state::{now_ms, Shared, UnauthSlot};
use crate::sys;

const LOCK_FILE: &str = "gateway.lock";

/// Runs the gateway until a signal stops the process. `announce` prints
/// the start-up lines (where it listens, where the token is) for the user.
pub fn run(args: &RunArgs, announce: &mut dyn FnMut(&str)) -> Result<(), Error> {
    #[cfg(target_env = "gnu")]
    disable_thread_cache();
    // Before any thread exists, so every thread inherits the mask and only
    // the signal thread ever sees these signals.
    sys::block_signals(&lifecycle::HANDLED_SIGNALS)
        .map_err(|e| Error::io("blocking signals", e))?;
    let env = |k: &str| std::env::var(k).ok();
    let settings = config::resolve_run(args, &env)?;
    let reloader = Arc::new(Reloader::new(args, &settings));
    prepare_state_dir(&settings)?;
    let log_file = settings
        .log
        .file
        .then(|| logger::log_file_path(&settings.state_dir));
    logger::init(logger::LogConfig {
        level: settings.log.level,
        json: settings.log.json,
        file: log_file.clone(),
        max_file_bytes: 1024 * 1024,
        keep_files: 2,
    })?;
    if settings.force && settings.port != 0 {
        let report = procnet::free_port(settings.port)?;
        for (pid, name) in &report.killed {
            let how = if report.escalated {
                "SIGKILL"
            } else {
                "SIGTERM"
            };
            announce(&format!(
                "force: stopped PID {pid} ({name}) listening on port {} ({how}, waited {} ms)",
                settings.port, report.waited_ms
            ));
        }
    }
    let _lock = lock_instance(&settings)?;
    if settings.dev {
        announce(&format!(
            "dev gateway: state in '{}'",
            settings.state_dir.display()
        ));
    }
    let secret = resolve_secret(&settings, announce)?;
    let listeners = bind(&settings)?;
    let listen: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let notifier = Notifier::from_env(&env);
    let watchdog = notifier.watchdog_interval();
    let shared = Arc::new(Shared::new(
        settings,
        secret,
        listen.clone(),
        log_file,
        notifier,
    ));
    spawn_named("signals", {
        let (shared, reloader) = (shared.clone(), reloader.clone());
        move || lifecycle::signal_loop(&shared, &reloader)
    })?;
    spawn_named("config-watch", {
        let shared = shared.clone();
        move || reloader.watch(&shared)
    })?;
    let ticker = spawn_named("ticker", {
        let shared = shared.clone();
        move || tick_loop(&shared)
    })?;
    let _ = shared.ticker.set(ticker);
    if let Some(every) = watchdog {
        spawn_named("watchdog", {
            let shared = shared.clone();
            move || watchdog_loop(&shared, every)
        })?;
    }
    let pid = std::process::id();
    for addr in &listen {
        announce(&format!("listening on ws://{addr} (PID {pid})"));
        log::info!("listening on ws://{addr} (PID {pid})");
    }
    // The listeners are bound and will be accepted on below: from the
    // manager's point of view the service is up.
    shared.notifier.send(&format!(
        "READY=1\nMAINPID={pid}\n{}",
        notify::status(&summary(&shared))
    ));
    let mut listeners = listeners.into_iter();
    let first = listeners
        .next()
        .ok_or_else(|| Error::runtime("no address to listen on"))?;
    for l in listeners {
        let shared = shared.clone();
        spawn_named("accept", move || accept_loop(&shared, &l))?;
    }
    accept_loop(&shared, &first);
    Ok(())
}

/// glibc keeps a cache of freed blocks in every thread (tcache). With a
/// thread per connection that is about 10 KiB per idle client that no other
/// thread can reuse: a third of a client's cost. Only a tunable read at
/// exec turns it off, so the gateway re-executes itself once with it set
/// (same PID, about a millisecond), before any thread exists. Setting
/// `glibc.malloc.tcache_count` yourself in GLIBC_TUNABLES wins; if the
/// re-exec fails, the gateway simply runs with the cache.
#[cfg(target_env = "gnu")]
fn disable_thread_cache() {
    use std::os::unix::process::CommandExt;
    const TUNABLE: &str = "glibc.malloc.tcache_count";
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.contains(TUNABLE) {
        return;
    }
    let value = if current.is_empty() {
        format!("{TUNABLE}=0")
    } else {
        format!("{current}:{TUNABLE}=0")
    };
    // The resolved path, not /proc/self/exe, which would rename the
    // process "exe" in ps and the journal.
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(argv0) = args.next() {
        cmd.arg0(argv0);
    }
    let _err = cmd.args(args).env("GLIBC_TUNABLES", value).exec();
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> Result<Thread, Error> {
    thread::Builder::new()
        .name(name.to_string())
        .stack_size(256 * 1024)
        .spawn(f)
        .map(|h| h.thread().clone())
        .map_err(|e| Error::io(format!("starting the {name} thread"), e))
}

fn prepare_state_dir(s: &Settings) -> Result<(), Error> {
    if s.reset {
        // Only the files this gateway writes; never a whole directory the
        // user may have pointed --state-dir at.
        for name in [TOKEN_FILE, "clawgate.json", LOCK_FILE] {
            let _ = fs::remove_file(s.state_dir.join(name));
        }
        let _ = fs::remove_dir_all(s.state_dir.join("logs"));
        let _ = fs::remove_dir_all(s.state_dir.join("agents"));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&s.state_dir)
        .map_err(|e| {
            Error::io(
                format!("creating the state directory '{}'", s.state_dir.display()),
                e,
            )
        })
}

/// One gateway per state directory: an exclusive `flock` on the lock file,
/// held for the life of the process and released by the kernel even after
/// `kill -9`, so a stale file never blocks a restart.
fn lock_instance(s: &Settings) -> Result<File, Error> {
    let path = s.state_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("opening '{}'", path.display()), e))?;
    // With --force the previous owner may still be exiting. Without it, a
    // short grace still covers `clawgate status`, which takes the lock for
    // a moment to see whether a gateway holds it.
    let grace = Duration::from_millis(if s.force { 2000 } else { 250 });
    let deadline = Instant::now() + grace;
    loop {
        if sys::try_lock_exclusive(&file)
            .map_err(|e| Error::io(format!("locking '{}'", path.display()), e))?
        {
            break;
        }
        if Instant::now() >= deadline {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(match text.trim().parse::<u32>() {
                Ok(pid) => Error::runtime(format!("gateway already running (PID {pid})")),
                Err(_) => Error::runtime(format!(
                    "gateway already running (lock '{}' is held)",
                    path.display()
                )),
            });
        }
        thread::sleep(Duration::from_millis(25));
    }
    file.set_len(0)
        .and_then(|_| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(|e| Error::io(format!("writing '{}'", path.display()), e))?;
    Ok(file)
}

/// The secret clients must present. A token mode without a configured
/// token uses the generated one in the state dir, created on first use;
/// the second value says where it is and whether it was just created.
pub fn load_secret(s: &Settings) -> Result<(Secret, Option<(PathBuf, bool)>), Error> {
    let mut token = s.token.clone();
    let mut generated = None;
    if s.auth_mode == AuthMode::Token && token.is_none() {
        let path = s.state_dir.join(TOKEN_FILE);
        let (t, created) = load_or_create_token(&path)?;
        token = Some(t);
        generated = Some((path, created));
    }
    let secret = Secret {
        mode: s.auth_mode,
        token,
        password: s.password.clone(),
    };
    Ok((secret, generated))
}

fn resolve_secret(s: &Settings, announce: &mut dyn FnMut(&str)) -> Result<Secret, Error> {
    let (secret, generated) = load_secret(s)?;
    if let Some((path, created)) = generated {
        announce(&format!(
            "auth token {} '{}' (clients on this host use it automatically)",
            if created {
                "generated and stored in"
            } else {
                "read from"
            },
            path.display()
        ));
    } else if s.auth_mode != AuthMode::None {
        announce(&format!(
            "auth: {} from {}",
            mode_name(s.auth_mode),
            s.secret_source
        ));
    } else {
        announce("auth: none (loopback only)");
    }
    Ok(secret)
}

fn mode_name(m: AuthMode) -> &'static str {
    match m {
        AuthMode::Token => "token",
        AuthMode::Password => "password",
        AuthMode::None => "none",
    }
}

/// Reads the generated token, or creates one: 32 random bytes as hex,
/// written to a temporary file (0600), synced, then renamed into place so a
/// crash never leaves a half-written token.
fn load_or_create_token(path: &Path) -> Result<(String, bool), Error> {
    match fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok((t.trim().to_string(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("reading '{}'", path.display()), e)),
    }
    let token = sys::random_hex(32).map_err(|e| Error::io("generating a token", e))?;
    crate::atomic::write_atomic(path, format!("{token}\n").as_bytes(), 0o600)
        .map_err(|e| Error::io(format!("writing '{}'", path.display()), e))?;
    Ok((token, true))
}

/// The addresses `--bind` asks for. Parsed as numeric `SocketAddr`s so no
/// resolver is linked into static builds.
fn addresses(s: &Settings) -> Vec<IpAddr> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match s.bind {
        BindMode::Loopback | BindMode::Auto => vec![v4, IpAddr::V6(Ipv6Addr::LOCALHOST)],
        BindMode::Lan => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        BindMode::Tailnet => match sys::tailnet_ipv4() {
            // Loopback too, so `clawgate call` on the same host still works.
            Some(ip) => vec![IpAddr::V4(ip), v4],
            None => {
                log::warn!("no tailnet (100.64.0.0/10) address found: listening on loopback only");
                vec![v4]
            }
        },
        BindMode::Custom => vec![s.bind_host.unwrap_or(v4)],
    }
}

fn bind(s: &Settings) -> Result<Vec<TcpListener>, Error> {
    let mut port = s.port;
    let mut out = Vec::new();
    for (i, ip) in addresses(s).into_iter().enumerate() {
        let addr = SocketAddr::new(ip, port);
        match TcpListener::bind(addr) {
            Ok(l) => {
                if port == 0 {
                    port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                }
                out.push(l);
            }
            // The IPv6 loopback is a bonus: hosts without IPv6 still serve.
            Err(_) if i > 0 && ip.is_loopback() && ip.is_ipv6() => {}
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(port_in_use(addr)),
            Err(e) => return Err(Error::io(format!("cannot listen on {addr}"), e)),
        }
    }
    Ok(out)
}

fn port_in_use(addr: SocketAddr) -> Error {
    let pids = procnet::listening_pids(addr.port());
    let who = match pids.first() {
        Some(pid) => format!(" by PID {pid} ({})", procnet::process_name(*pid)),
        None => String::new(),
    };
    Error::runtime(format!(
        "port {} is already in use{who}: stop that process, run with --force to stop it, or pick another port with --port",
        addr.port()
    ))
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or memory: back off
                // instead of spinning; connections finishing will free some.
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) {
                    log::warn!("accept failed: {e}; backing off");
                    thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
        };
        // Per connection: a reload may have changed the limits.
        let live = shared.live();
        let limits = &live.settings.limits;
        let open = shared.open_sockets.fetch_add(1, Ordering::AcqRel) + 1;
        if open > limits.max_connections {
            shared.open_sockets.fetch_sub(1, Ordering::AcqRel);
            reject_busy(stream, "too many connections");
            continue;
        }
        // One address may hold only so many sockets that have not
        // authenticated, so idle or slow sockets from one peer cannot use
        // up the threads everyone else needs.
        let Some(slot) = UnauthSlot::claim(shared, crate::http::canonical_ip(peer.ip())) else {
            shared.open_sockets.fetch_sub(1, Ordering::AcqRel);
            reject_busy(
                stream,
                "too many unauthenticated connections from this address",
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn_shared = shared.clone();
        let spawned = thread::Builder::new()
            .stack_size(limits.thread_stack_bytes)
            .spawn(move || {
                crate::http::serve(&conn_shared, stream, peer, slot);
                conn_shared.open_sockets.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            shared.open_sockets.fetch_sub(1, Ordering::AcqRel);
            log::warn!("cannot start a connection thread: {e}");
        }
    }
}

/// Over the connection cap: a short 503 written without blocking the
/// accept loop, so health checks still get an answer.
fn reject_busy(mut stream: TcpStream, why: &str) {
    let body = json!({ "error": why }).to_string();
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(resp.as_bytes());
}

/// Ticks every `tickIntervalMs`. A reload unparks this thread, so a new
/// interval applies at once rather than after the old one runs out.
fn tick_loop(shared: &Shared) {
    let mut last = Instant::now();
    loop {
        let every = Duration::from_millis(shared.live().settings.tick_interval_ms);
        let due = last + every;
        let now = Instant::now();
        if now < due {
            thread::park_timeout(due - now);
            continue;
        }
        last = now;
        shared.broadcast("tick", &json!({ "ts": now_ms() }), true);
        shared.update_presence(|p, now| p.prune(now));
        if shared.notifier.enabled() {
            shared.notifier.send(&notify::status(&summary(shared)));
        }
    }
}

/// One line for `systemctl status`: where it listens and who is connected.
pub fn summary(shared: &Shared) -> String {
    let clients = shared.state().clients.len();
    let listen: Vec<String> = shared.listen.iter().map(|a| format!("ws://{a}")).collect();
    format!("{clients} clients; listening on {}", listen.join(", "))
}

/// Keeps the manager's watchdog fed while the gateway works: each ping
/// first takes the state lock, so a wedged gateway stops pinging and gets
/// restarted instead of looking alive.
fn watchdog_loop(shared: &Shared, every: Duration) {
    loop {
        drop(shared.state());
        shared.notifier.send("WATCHDOG=1");
        thread::sleep(every);
    }
}
