//! The ticker (`tick` to every client, presence expiry, the manager's
//! status line) and the systemd watchdog.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::notify;
use crate::state::{now_ms, Shared};

/// Ticks every `tickIntervalMs`. A reload unparks this thread, so a new
/// interval applies at once rather than after the old one runs out.
pub(super) fn tick_loop(shared: &Shared) {
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
pub(super) fn watchdog_loop(shared: &Shared, every: Duration) {
    loop {
        drop(shared.state());
        shared.notifier.send("WATCHDOG=1");
        thread::sleep(every);
    }
}
