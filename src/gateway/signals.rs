//! Signals: one thread waits for the signals every other thread blocks.
//! SIGTERM and SIGINT stop the gateway, SIGHUP reloads the configuration
//! and SIGUSR1 restarts it in-process when `commands.restart` allows.

use super::notify::{self, Notifier};
use super::reload::{Reloader, Trigger, DRAIN};
use crate::state::Shared;
use crate::sys;

/// The signals the gateway handles; everything else keeps its default.
pub const HANDLED_SIGNALS: [i32; 4] = [sys::SIGTERM, sys::SIGINT, sys::SIGHUP, sys::SIGUSR1];

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
            sys::SIGTERM => shutdown(shared, reloader.notifier(), "SIGTERM"),
            sys::SIGINT => shutdown(shared, reloader.notifier(), "SIGINT"),
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
fn shutdown(shared: &Shared, notifier: &Notifier, signal: &str) -> ! {
    log::info!("{signal}: shutting down");
    notifier.send(&format!(
        "STOPPING=1\n{}",
        notify::status(&format!("stopping ({signal})"))
    ));
    shared.runs_abort_all();
    let told = shared.shutdown_all("gateway stopping", None);
    shared.drain(DRAIN);
    log::info!("stopped ({told} clients notified)");
    std::process::exit(0);
}
