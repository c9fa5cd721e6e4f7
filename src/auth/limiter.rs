//! The failed-auth limiter: a plain table owned by the shared state. It
//! must never sleep or do I/O, because it is consulted with the state lock
//! held.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct LimiterConfig {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
    /// Entries kept at most; locked entries survive eviction.
    pub capacity: usize,
}

#[derive(Debug)]
struct Entry {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

/// Failed-auth counts per client IP: `max_failures` within `window`, then a
/// `lockout`. Exempt peers (loopback without a browser `Origin`) are never
/// locked out, because a local CLI with a stale token must not lock its
/// owner out of their own machine; past the limit they are slowed down.
#[derive(Debug)]
pub struct Limiter {
    cfg: LimiterConfig,
    entries: HashMap<IpAddr, Entry>,
}

impl Limiter {
    pub fn new(cfg: LimiterConfig) -> Limiter {
        Limiter {
            cfg,
            entries: HashMap::new(),
        }
    }

    /// New limits from a configuration reload; counts and lockouts in
    /// progress are kept, so a reload cannot be used to clear a lockout.
    pub fn reconfigure(&mut self, cfg: LimiterConfig) {
        self.cfg = cfg;
    }

    /// `Err(retry_after_ms)` while `ip` is locked out.
    pub fn check(&mut self, ip: IpAddr, exempt: bool, now: Instant) -> Result<(), u64> {
        if exempt {
            return Ok(());
        }
        let Some(e) = self.entries.get_mut(&ip) else {
            return Ok(());
        };
        match e.locked_until {
            Some(until) if until > now => Err((until - now).as_millis().max(1) as u64),
            Some(_) => {
                self.entries.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failure. Returns how long to wait before answering it:
    /// zero, except for exempt peers past the limit, who are slowed down
    /// (250 ms, doubling, at most 5 s) instead of being locked out.
    pub fn record_failure(&mut self, ip: IpAddr, exempt: bool, now: Instant) -> Duration {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.cfg.capacity {
            self.evict(now);
            if self.entries.len() >= self.cfg.capacity {
                // Every slot holds a locked-out peer: the new one goes
                // uncounted rather than freeing a lockout early.
                return Duration::ZERO;
            }
        }
        let cfg = self.cfg;
        let e = self.entries.entry(ip).or_insert(Entry {
            window_start: now,
            failures: 0,
            locked_until: None,
        });
        if now.duration_since(e.window_start) > cfg.window {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures += 1;
        if exempt {
            let over = e.failures.saturating_sub(cfg.max_failures);
            if over == 0 {
                return Duration::ZERO;
            }
            let delay = Duration::from_millis(250u64 << (over - 1).min(5));
            return delay.min(Duration::from_secs(5));
        }
        if e.failures >= cfg.max_failures {
            e.locked_until = Some(now + cfg.lockout);
        }
        Duration::ZERO
    }

    pub fn record_success(&mut self, ip: IpAddr) {
        if let Some(e) = self.entries.get(&ip) {
            if e.locked_until.is_none() {
                self.entries.remove(&ip);
            }
        }
    }

    fn evict(&mut self, now: Instant) {
        let window = self.cfg.window;
        self.entries.retain(|_, e| match e.locked_until {
            Some(until) => until > now,
            None => now.duration_since(e.window_start) <= window,
        });
        if self.entries.len() >= self.cfg.capacity {
            self.entries.retain(|_, e| e.locked_until.is_some());
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LimiterConfig {
        LimiterConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
            capacity: 4,
        }
    }

    #[test]
    fn limiter_locks_out_after_max_failures_and_releases_after_lockout() {
        let mut l = Limiter::new(cfg());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..2 {
            l.record_failure(ip, false, t0);
            assert!(l.check(ip, false, t0).is_ok());
        }
        l.record_failure(ip, false, t0);
        let wait = l.check(ip, false, t0).unwrap_err();
        assert_eq!(wait, 300_000);
        assert!(l.check(ip, false, t0 + Duration::from_secs(301)).is_ok());
    }

    #[test]
    fn limiter_window_resets_and_exempt_peers_are_delayed_not_locked() {
        let mut l = Limiter::new(cfg());
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        l.record_failure(ip, false, t0);
        l.record_failure(ip, false, t0);
        l.record_failure(ip, false, t0 + Duration::from_secs(61));
        assert!(l.check(ip, false, t0 + Duration::from_secs(61)).is_ok());
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let delays: Vec<u128> = (0..12)
            .map(|_| l.record_failure(lo, true, t0).as_millis())
            .collect();
        assert!(l.check(lo, true, t0).is_ok());
        // Exempt peers are slowed past the limit (3 here), never locked.
        assert_eq!(
            delays,
            [0, 0, 0, 250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]
        );
    }

    #[test]
    fn limiter_table_is_bounded_and_keeps_lockouts() {
        let mut l = Limiter::new(cfg());
        let t0 = Instant::now();
        let locked: IpAddr = "10.1.0.1".parse().unwrap();
        for _ in 0..3 {
            l.record_failure(locked, false, t0);
        }
        for i in 0..50u8 {
            l.record_failure(IpAddr::from([10, 2, 0, i]), false, t0);
        }
        assert!(l.len() <= 4);
        assert!(l.check(locked, false, t0).is_err());
    }
}
