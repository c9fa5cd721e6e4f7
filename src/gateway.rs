//! `clawgate run`: start-up, the accept loop, the ticker and signals.
//!
//! Start-up does everything that can fail before the first connection is
//! accepted (configuration, single-instance lock, `--force`, binding,
//! state directory, secret), so a broken setup exits at once with the
//! right status; and it does everything that can fail without writing
//! before anything is written (see `startup`), so a start that fails
//! leaves the state directory as it found it. After that, one accept loop
//! per listener hands each socket to its own thread, with the connection
//! cap checked before the thread is spawned.

mod accept;
mod notify;
mod procnet;
mod reload;
mod signals;
mod startup;
mod ticker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, Thread};

use crate::config::{self, RunArgs, Settings};
use crate::error::Error;
use crate::logging;
use crate::state::Shared;
use crate::store::devices::DeviceStore;
use crate::store::identity::Identity;
use crate::store::sessions::SessionStore;
use crate::sys;
use accept::accept_loop;
use notify::Notifier;
use reload::Reloader;
use signals::HANDLED_SIGNALS;
use startup::{bind, reset_state, resolve_secret, Instance};
use ticker::{tick_loop, watchdog_loop};

/// Runs the gateway until a signal stops the process. `announce` prints
/// the start-up lines (where it listens, where the token is) for the user.
pub fn run(args: &RunArgs, announce: &mut dyn FnMut(&str)) -> Result<(), Error> {
    #[cfg(target_env = "gnu")]
    disable_thread_cache();
    sys::limit_malloc_arenas();
    // Before any thread exists, so every thread inherits the mask and only
    // the signal thread ever sees these signals.
    sys::block_signals(&HANDLED_SIGNALS).map_err(|e| Error::io("blocking signals", e))?;
    let env = |k: &str| std::env::var(k).ok();
    let mut settings = config::resolve_run(args, &env)?;
    let host = config::Host {
        mem_total: sys::mem_total(),
        nofile: sys::raise_nofile().ok(),
    };
    let sizing = config::fit_to_host(&mut settings.limits, &host);
    let notifier = Arc::new(Notifier::from_env(&env));
    let reloader = Arc::new(Reloader::new(args, &settings, host, notifier.clone()));
    let mut say = Announcer::new(announce);

    // Nothing is written until the lock is ours and the port is bound.
    let mut instance = Instance::take(&settings, &mut || force(&settings, &mut say))?;
    let (listeners, bind_warning) = bind(&settings)?;

    // From here on, writes: the lock (and the state directory) first.
    instance.claim(&settings)?;
    if settings.reset && reset_state(&settings) {
        say.line("dev state reset");
    }
    let log_file = settings
        .log
        .file
        .then(|| logging::log_file_path(&settings.state_dir));
    logging::init(logging::LogConfig {
        level: settings.log.level,
        json: settings.log.json,
        announce_on_stderr: say.via_log,
        file: log_file.clone(),
        max_file_bytes: 1024 * 1024,
        keep_files: 2,
    })?;
    say.logger_ready();
    for note in &sizing {
        log::info!("{note}");
    }
    if let Some(w) = bind_warning {
        log::warn!("{w}");
    }
    if settings.dev {
        say.line(&format!(
            "dev gateway: state in '{}'",
            settings.state_dir.display()
        ));
    }
    let secret = resolve_secret(&settings, &mut |line| say.line(line))?;
    let devices = DeviceStore::open(&settings.state_dir)?;
    let identity = Identity::load_or_create(&settings.state_dir)?;
    let sessions = SessionStore::open(&settings.state_dir, settings.agents.max_sessions)?;
    for (agent, key) in crate::runs::recover(&sessions) {
        log::warn!("session {key} of agent {agent}: its run was interrupted; recorded as failed");
    }
    let listen: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let watchdog = notifier.watchdog_interval();
    let shared = Arc::new(Shared::new(
        settings,
        secret,
        listen.clone(),
        log_file,
        (devices, identity, sessions),
    ));
    spawn_named("signals", {
        let (shared, reloader) = (shared.clone(), reloader.clone());
        move || signals::signal_loop(&shared, &reloader)
    })?;
    spawn_named("config-watch", {
        let shared = shared.clone();
        move || reloader.watch(&shared)
    })?;
    let ticker = spawn_named("ticker", {
        let (shared, notifier) = (shared.clone(), notifier.clone());
        move || tick_loop(&shared, &notifier)
    })?;
    shared.set_ticker(ticker);
    if let Some(every) = watchdog {
        spawn_named("watchdog", {
            let (shared, notifier) = (shared.clone(), notifier.clone());
            move || watchdog_loop(&shared, &notifier, every)
        })?;
    }
    let pid = std::process::id();
    log_ceiling(&shared.live().settings);
    if let Some(model) = &shared.live().settings.agents.primary {
        say.line(&format!("agent model: {model}"));
    }
    for addr in &listen {
        say.line(&format!("listening on ws://{addr} (PID {pid})"));
    }
    // The listeners are bound and will be accepted on below: from the
    // manager's point of view the service is up.
    notifier.send(&format!(
        "READY=1\nMAINPID={pid}\n{}",
        notify::status(&shared.summary())
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

/// `--force`: stops whatever listens on the port, and says so in the
/// words scripts match: one line per process, one for the wait.
fn force(s: &Settings, say: &mut Announcer) -> Result<(), Error> {
    let port = s.port;
    if port == 0 {
        return Ok(());
    }
    let report = procnet::free_port(port)?;
    for (pid, name) in &report.killed {
        say.line(&format!("force: killed pid {pid} ({name}) on port {port}"));
    }
    for pid in &report.sigkilled {
        say.line(&format!("force: pid {pid} outlived SIGTERM: sent SIGKILL"));
    }
    if !report.killed.is_empty() {
        say.line(&format!(
            "force: waited {}ms for port {port} to free",
            report.waited_ms
        ));
    }
    Ok(())
}

/// The start-up lines, each printed once where its reader is. The rule:
/// whoever started the gateway gets them on stdout, plain; they are not
/// logged on stderr as well, since a terminal (or a supervisor that keeps
/// both streams) would then show each twice. When stdout is the journal
/// (a systemd service) they are logged instead, at info, so the journal
/// has each once and with its priority. The log file always has them
/// (`clawgate logs`); lines said before the logger exists (the bind comes
/// first, and the log file is a write) reach it once it does.
struct Announcer<'a> {
    print: &'a mut dyn FnMut(&str),
    /// stdout is the journal: log instead of print.
    via_log: bool,
    logging: bool,
    early: Vec<String>,
}

impl<'a> Announcer<'a> {
    fn new(print: &'a mut dyn FnMut(&str)) -> Announcer<'a> {
        Announcer {
            print,
            via_log: logging::stdout_is_journal(),
            logging: false,
            early: Vec::new(),
        }
    }

    fn line(&mut self, line: &str) {
        // The log file first: whoever reads the printed line (a test, a
        // script) and stops the gateway at once finds the line logged.
        if self.logging {
            log::info!(target: logging::ANNOUNCE, "{line}");
        } else {
            self.early.push(line.to_string());
        }
        if !self.via_log {
            (self.print)(line);
        }
    }

    fn logger_ready(&mut self) {
        self.logging = true;
        for line in std::mem::take(&mut self.early) {
            log::info!(target: logging::ANNOUNCE, "{line}");
        }
    }
}

/// glibc keeps a cache of freed blocks in every thread (tcache). With a
/// thread per connection that is about 10 KiB per idle client that no other
/// thread can reuse: a third of a client's cost. Only a tunable read at
/// exec turns it off, so the gateway re-executes itself once with it set
/// (same PID), before any thread exists. That is one more exec and
/// dynamic load: 1 to 2 ms on a small VM, about half of exec-to-listen,
/// paid on every start, first or repeated. Setting
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

/// The most memory these limits let the gateway use (see
/// `config::ceiling`), so an operator sees it next to the host's.
fn log_ceiling(s: &Settings) {
    let (l, c) = (&s.limits, config::ceiling(&s.limits));
    let runs = config::runs_ceiling(&s.agents);
    log::info!(
        "memory ceiling {} ({} per connection x {} connections, {} shared, {} for {} agent runs)",
        config::human(c.total + runs),
        config::human(c.per_connection),
        l.max_connections,
        config::human(c.shared),
        config::human(runs),
        s.agents.max_concurrent
    );
}
