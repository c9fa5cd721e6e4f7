//! The ticker (`tick` to every client, presence expiry, the manager's
//! status line) and the systemd watchdog.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::notify::{self, Notifier};
use crate::state::{now_ms, Delivery, Shared};

/// Ticks every `tickIntervalMs`. A reload unparks this thread, so a new
/// interval applies at once rather than after the old one runs out.
pub(super) fn tick_loop(shared: &Shared, notifier: &Notifier) {
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
        shared.broadcast("tick", &json!({ "ts": now_ms() }), Delivery::Droppable);
        shared.presence_expire();
        if notifier.enabled() {
            notifier.send(&notify::status(&shared.summary()));
        }
    }
}

/// Keeps the manager's watchdog fed while the gateway works: each ping
/// first takes the state lock, so a wedged gateway stops pinging and gets
/// restarted instead of looking alive.
pub(super) fn watchdog_loop(shared: &Shared, notifier: &Notifier, every: Duration) {
    loop {
        shared.responsive();
        notifier.send("WATCHDOG=1");
        thread::sleep(every);
    }
}
