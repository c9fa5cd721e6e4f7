//! `Shared`'s side of webhooks: their own failed-auth limiter (20 failures
//! per minute per client, then a minute's lockout; loopback is not exempt,
//! since a hook token is a machine's credential and a browser page on the
//! same host could guess it), and the wake texts waiting for a session's
//! next run. Plain data under the state lock; every table is bounded.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::Shared;
use crate::auth::{Limiter, LimiterConfig};

/// Wake texts kept per session, and sessions with any: with the cut
/// below, the table holds at most 16 × 8 × 2 KiB = 256 KiB of text.
const WAKE_PER_SESSION: usize = 8;
const WAKE_SESSIONS: usize = 16;
/// One wake text at most (longer ones are cut), so the table stays small.
const WAKE_TEXT_BYTES: usize = 2048;

const HOOK_LIMITER: LimiterConfig = LimiterConfig {
    max_failures: 20,
    window: Duration::from_secs(60),
    lockout: Duration::from_secs(60),
    capacity: 10_000,
};

#[derive(Debug)]
pub struct HookTables {
    limiter: Limiter,
    /// By session key: texts for its next run, oldest first.
    wake: HashMap<String, VecDeque<String>>,
}

impl Default for HookTables {
    fn default() -> HookTables {
        HookTables {
            limiter: Limiter::new(HOOK_LIMITER),
            wake: HashMap::new(),
        }
    }
}

/// How a wake text was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeOutcome {
    Queued,
    /// The same text already waits for that session.
    Coalesced,
    /// The tables are full.
    Full,
}

impl Shared {
    /// `Err(retry_after_ms)` while `ip` is locked out of hooks.
    pub fn hook_lockout(&self, ip: IpAddr) -> Result<(), u64> {
        self.state().hooks.limiter.check(ip, false, Instant::now())
    }

    pub fn hook_failure(&self, ip: IpAddr) {
        let now = Instant::now();
        self.state().hooks.limiter.record_failure(ip, false, now);
    }

    /// Keeps `text` for `session`'s next run.
    pub fn wake_queue(&self, session: &str, text: &str) -> WakeOutcome {
        let text = crate::protocol::clip(text, WAKE_TEXT_BYTES).to_string();
        let mut st = self.state();
        let wake = &mut st.hooks.wake;
        if !wake.contains_key(session) && wake.len() >= WAKE_SESSIONS {
            return WakeOutcome::Full;
        }
        let q = wake.entry(session.to_string()).or_default();
        if q.contains(&text) {
            return WakeOutcome::Coalesced;
        }
        if q.len() >= WAKE_PER_SESSION {
            return WakeOutcome::Full;
        }
        q.push_back(text);
        WakeOutcome::Queued
    }

    /// The wake texts waiting for `session`, taken.
    pub fn wake_take(&self, session: &str) -> Vec<String> {
        self.state()
            .hooks
            .wake
            .remove(session)
            .map(Vec::from)
            .unwrap_or_default()
    }
}
