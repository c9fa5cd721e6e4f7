//! Configuration reload and in-process restart.
//!
//! A reload re-reads flags, environment and file exactly as start-up
//! does, so a file that would not start the gateway is reported and
//! ignored while the old configuration keeps serving. What can change in
//! place (secrets, limits, log level, tick interval, origins, models) is
//! swapped in at once; what cannot (bind address, port, log file) needs a
//! restart, which here is a re-exec of the same binary with the same
//! arguments, in the same PID, so supervisors see nothing but a reload.
//! `gateway.reload.mode` picks between the two. The config file is polled
//! (a `stat` a second, cheap even on a router) and reloaded after it stops
//! changing.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::notify::{self, Notifier};
use crate::auth::Secret;
use crate::config::{self, AuthMode, Changes, ReloadMode, RunArgs, Settings};
use crate::logging;
use crate::state::{lock, Live, Shared};
use crate::sys;

/// What `shutdown` tells clients before a restart: the old process drains
/// for at most 700 ms, and the new one listens a few ms after the exec.
const RESTART_EXPECTED_MS: u64 = 1500;
/// How long clients get to read `shutdown` and the close frame, at a
/// restart and at a stop.
pub(super) const DRAIN: Duration = Duration::from_millis(700);
/// How often the config file is checked for changes.
const POLL: Duration = Duration::from_secs(1);

/// Close code for clients whose shared secret was rotated under them.
const AUTH_CHANGED: (u16, &str) = (4001, "gateway auth changed");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Signal,
    File,
}

/// What a reload needs beyond the shared state: the run's own flags, which
/// win over the file, and how to start this program again.
pub struct Reloader {
    args: RunArgs,
    /// Resolved at start, before anyone could replace the file: re-executing
    /// this path after an upgrade starts the new binary.
    exe: Option<PathBuf>,
    argv0: OsString,
    argv: Vec<OsString>,
    /// One reload or restart at a time (signal and file watcher).
    busy: Mutex<()>,
    /// The config file as it was when start-up read it.
    first_stamp: Stamp,
    /// The service manager, told before and after a reload or restart.
    notifier: Arc<Notifier>,
    /// What the host allows, as read at start: a reload sizes the limits
    /// the same way.
    host: config::Host,
}

impl Reloader {
    /// `settings` are the ones start-up just resolved: the file is
    /// stamped now, so a change made while the gateway starts is not
    /// mistaken for the version it read.
    pub fn new(
        args: &RunArgs,
        settings: &Settings,
        host: config::Host,
        notifier: Arc<Notifier>,
    ) -> Reloader {
        let mut all = std::env::args_os();
        let argv0 = all.next().unwrap_or_else(|| "clawgate".into());
        Reloader {
            args: args.clone(),
            exe: std::env::current_exe().ok(),
            argv0,
            argv: restart_args(all),
            busy: Mutex::new(()),
            first_stamp: stamp(&settings.config_path),
            notifier,
            host,
        }
    }

    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Re-reads the configuration and applies it as `gateway.reload.mode`
    /// (of the new file) says. Never stops a working gateway: a broken
    /// file is logged and the running configuration stays.
    pub fn reload(&self, shared: &Shared, trigger: Trigger) {
        let _busy = lock(&self.busy);
        let what = match trigger {
            Trigger::Signal => "SIGHUP",
            Trigger::File => "config file changed",
        };
        let env = |k: &str| std::env::var(k).ok();
        let loaded = config::resolve_run(&self.args, &env)
            .and_then(|s| Secret::load(&s).map(|(secret, _)| (s, secret)));
        let (mut new, secret) = match loaded {
            Ok(x) => x,
            Err(e) => {
                log::error!(
                    "config reload ({what}) failed, keeping the running configuration: {e}"
                );
                return;
            }
        };
        for note in config::fit_to_host(&mut new.limits, &self.host) {
            log::debug!("config reload: {note}");
        }
        let old = shared.live();
        let changes = config::classify(&old.settings, new, old.secret != secret);
        if changes.is_empty() {
            log::info!("config reload ({what}): no changes");
            return;
        }
        let Changes {
            hot: mut changed,
            restart,
            in_place,
        } = changes;
        // The new file's mode decides, as in the reference.
        let mode = match (in_place.reload_mode, trigger) {
            (ReloadMode::Off, Trigger::Signal) => ReloadMode::Hybrid,
            (mode, _) => mode,
        };
        let all: Vec<&str> = changed.iter().chain(&restart).copied().collect();
        match mode {
            ReloadMode::Off => {
                log::info!(
                    "config file changed ({}); not applied: gateway.reload.mode is off (send SIGHUP to apply)",
                    all.join(", ")
                );
                return;
            }
            ReloadMode::Restart => return self.restart(shared, what),
            ReloadMode::Hybrid if !restart.is_empty() => return self.restart(shared, what),
            ReloadMode::Hot if !restart.is_empty() => {
                log::warn!(
                    "config reload: {} needs a restart, which gateway.reload.mode hot does not do; keeping the running value",
                    restart.join(", ")
                );
                if changed.is_empty() {
                    return;
                }
            }
            _ => {}
        }
        self.notifier.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            sys::monotonic_usec()
        ));
        let rotated = old.secret != secret && secret.mode != AuthMode::None;
        logging::set_level(in_place.log.level);
        shared.set_live(Live {
            settings: in_place,
            secret,
        });
        if rotated {
            let n = shared.close_all(AUTH_CHANGED.0, AUTH_CHANGED.1);
            log::info!("auth changed: {n} connected clients closed with 4001; they must reconnect with the new secret");
        }
        changed.sort_unstable();
        log::info!("configuration reloaded ({what}): {}", changed.join(", "));
        self.notifier
            .send(&format!("READY=1\n{}", notify::status(&shared.summary())));
    }

    /// Restarts in-process: `shutdown {reason, restartExpectedMs}` to every
    /// client, a short drain, then the same binary with the same arguments
    /// replaces this process (same PID, so the supervisor keeps tracking
    /// it). If the exec fails the old process keeps serving.
    pub fn restart(&self, shared: &Shared, why: &str) {
        let Some(exe) = &self.exe else {
            log::error!("restart ({why}) impossible: the path of the running binary is unknown");
            return;
        };
        log::info!("{why}: restarting in-process");
        self.notifier.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\n{}",
            sys::monotonic_usec(),
            notify::status("restarting")
        ));
        shared.runs_abort_all();
        shared.shutdown_all("gateway restarting", Some(RESTART_EXPECTED_MS));
        shared.drain(DRAIN);
        let err = std::process::Command::new(exe)
            .arg0(&self.argv0)
            .args(&self.argv)
            .exec();
        log::error!(
            "restart failed: cannot execute '{}': {err}; still running the old configuration",
            exe.display()
        );
        self.notifier.send("READY=1");
    }

    /// Watches the config file: a change is applied once the file has
    /// stayed the same for `gateway.reload.debounceMs`, so an editor's
    /// save in several writes is read once, whole.
    pub fn watch(&self, shared: &Shared) {
        let path = shared.live().settings.config_path.clone();
        let mut seen = self.first_stamp;
        loop {
            thread::sleep(POLL);
            let now = stamp(&path);
            if now == seen {
                continue;
            }
            let debounce = Duration::from_millis(shared.live().settings.reload_debounce_ms);
            let mut settled = now;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                thread::sleep(debounce.max(Duration::from_millis(20)));
                let again = stamp(&path);
                if again == settled || Instant::now() > deadline {
                    settled = again;
                    break;
                }
                settled = again;
            }
            seen = settled;
            self.reload(shared, Trigger::File);
        }
    }
}

/// What identifies a version of the file without reading it: a rename
/// (the atomic way editors and `install` save) changes the inode, an
/// in-place write the size or mtime. `None` while it does not exist.
type Stamp = Option<(u64, u64, u64, i64, i64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// The arguments for the restarted process: the same, minus the one-shot
/// flags. `--reset` would wipe the dev state (and its token) at every
/// restart, and `--force` would stop whatever took the port meanwhile.
fn restart_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    args.filter(|a| a != "--reset" && a != "--force").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_drops_only_the_one_shot_flags() {
        let args = ["--dev", "--reset", "--port", "19001", "--force", "-v"].map(OsString::from);
        let kept = restart_args(args.into_iter());
        assert_eq!(kept, ["--dev", "--port", "19001", "-v"].map(OsString::from));
    }
}
