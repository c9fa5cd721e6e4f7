//! Signals: one thread waits for the signals every other thread blocks.
//! SIGTERM and SIGINT stop the gateway, SIGHUP reloads the configuration
//! and SIGUSR1 restarts it in-process when `commands.restart` allows.

use std::thread;
use std::time::{Duration, Instant};

use super::notify;
use super::reload::{Reloader, Trigger};
use crate::state::Shared;
use crate::sys;

/// The signals the gateway handles; everything else keeps its default.
pub const HANDLED_SIGNALS: [i32; 4] = [sys::SIGTERM, sys::SIGINT, sys::SIGHUP, sys::SIGUSR1];

/// How long clients get to read `shutdown` and the close frame.
const DRAIN: Duration = Duration::from_millis(700);

/// Gives clients a moment to receive what was queued for them (`shutdown`
/// and the close), returning early once all are gone.
pub(super) fn drain(shared: &Shared) {
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline && !shared.state().clients.is_empty() {
        thread::sleep(Duration::from_millis(5));
    }
}

pub fn signal_loop(shared: &Shared, reloader: &Reloader) {
    loop {
        let sig = match sys::wait_signal(&HANDLED_SIGNALS) {
            Ok(s) => s,
            Err(e) => {
                log::error!("waiting for signals failed: {e}");
                return;
            }
        };
        match sig {
            sys::SIGTERM => shutdown(shared, "SIGTERM"),
            sys::SIGINT => shutdown(shared, "SIGINT"),
            sys::SIGHUP => reloader.reload(shared, Trigger::Signal),
            sys::SIGUSR1 if shared.live().settings.restart_enabled => {
                reloader.restart(shared, "SIGUSR1");
            }
            sys::SIGUSR1 => log::warn!(
                "SIGUSR1 ignored: in-process restart is off (set commands.restart to true in '{}')",
                shared.live().settings.config_path.display()
            ),
            _ => {}
        }
    }
}

/// Tells every client, gives them a moment to receive `shutdown` and the
/// 1012 close, and exits 0 well within a second.
fn shutdown(shared: &Shared, signal: &str) -> ! {
    log::info!("{signal}: shutting down");
    shared.notifier.send(&format!(
        "STOPPING=1\n{}",
        notify::status(&format!("stopping ({signal})"))
    ));
    let told = shared.shutdown_all("gateway stopping", None);
    drain(shared);
    log::info!("stopped ({told} clients notified)");
    std::process::exit(0);
}
