//! Answers kept under their idempotency key, so a retried request gets the
//! same answer without the work being done twice (a `node.invoke` whose
//! operator lost the first reply).
//!
//! Bounded three ways: an answer is kept for `ttl` (five minutes, as the
//! reference keeps its own), the table holds at most `max_entries`, and
//! their text at most `max_bytes`; an answer larger than `max_entry` is
//! not kept at all, so one large result cannot evict every other. The
//! oldest go first. Plain data under the state lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::ErrorShape;

/// A kept answer: the payload text of a success, or the error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok(Arc<str>),
    Err(ErrorShape),
}

impl Outcome {
    fn size(&self) -> usize {
        match self {
            Outcome::Ok(t) => t.len(),
            Outcome::Err(e) => {
                e.message.len() + e.details.as_ref().map_or(0, |d| d.to_string().len())
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub ttl: Duration,
    pub max_entries: usize,
    pub max_bytes: usize,
    pub max_entry: usize,
}

#[derive(Debug)]
struct Kept {
    at: Instant,
    outcome: Outcome,
    /// What it counts against `max_bytes`: key and answer.
    bytes: usize,
}

#[derive(Debug)]
pub struct IdemCache {
    bounds: Bounds,
    map: HashMap<Box<str>, Kept>,
    /// Keys oldest first, with the time each was kept: an entry replaced
    /// since leaves a stale one here, told apart by its time.
    order: VecDeque<(Instant, Box<str>)>,
    bytes: usize,
}

impl IdemCache {
    pub fn new(bounds: Bounds) -> IdemCache {
        IdemCache {
            bounds,
            map: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }

    /// The answer kept under `key`, if it is younger than `ttl`.
    pub fn get(&mut self, key: &str, now: Instant) -> Option<Outcome> {
        self.prune(now);
        self.map.get(key).map(|k| k.outcome.clone())
    }

    /// Keeps `outcome` under `key` (replacing what was), unless it is too
    /// large to keep; older answers make room.
    pub fn put(&mut self, key: &str, outcome: Outcome, now: Instant) {
        self.prune(now);
        let bytes = key.len() + outcome.size() + 64;
        if bytes > self.bounds.max_entry {
            return;
        }
        if let Some(old) = self.map.remove(key) {
            self.bytes -= old.bytes;
        }
        while !self.map.is_empty()
            && (self.map.len() >= self.bounds.max_entries
                || self.bytes + bytes > self.bounds.max_bytes)
        {
            self.evict_oldest();
        }
        self.bytes += bytes;
        self.map.insert(
            key.into(),
            Kept {
                at: now,
                outcome,
                bytes,
            },
        );
        self.order.push_back((now, key.into()));
    }

    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.bounds.ttl {
                break;
            }
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        let Some((at, key)) = self.order.pop_front() else {
            return;
        };
        if self.map.get(&key).is_some_and(|k| k.at == at) {
            if let Some(k) = self.map.remove(&key) {
                self.bytes -= k.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds {
        ttl: Duration::from_secs(300),
        max_entries: 3,
        max_bytes: 1000,
        max_entry: 400,
    };

    fn ok(n: usize) -> Outcome {
        Outcome::Ok("x".repeat(n).into())
    }

    #[test]
    fn an_answer_is_replayed_until_it_expires() {
        let mut c = IdemCache::new(B);
        let t0 = Instant::now();
        c.put("k", ok(5), t0);
        assert_eq!(c.get("k", t0 + Duration::from_secs(299)), Some(ok(5)));
        assert_eq!(c.get("k", t0 + Duration::from_secs(300)), None);
        assert_eq!((c.len(), c.bytes()), (0, 0));
    }

    #[test]
    fn the_oldest_answers_make_room_by_count_and_by_bytes() {
        let mut c = IdemCache::new(B);
        let t0 = Instant::now();
        for (i, k) in ["a", "b", "c", "d"].into_iter().enumerate() {
            c.put(k, ok(10), t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("a", t0), None);
        // Three of ~300 bytes do not fit in 1000 with the others.
        for (i, k) in ["e", "f", "g"].into_iter().enumerate() {
            c.put(k, ok(300), t0 + Duration::from_millis(10 + i as u64));
        }
        assert!(c.bytes() <= 1000, "{}", c.bytes());
        assert!(c.get("g", t0).is_some());
        assert!(c.get("e", t0).is_none());
    }

    #[test]
    fn an_answer_too_large_to_keep_is_not_kept_and_evicts_nothing() {
        let mut c = IdemCache::new(B);
        let t0 = Instant::now();
        c.put("a", ok(10), t0);
        c.put("b", ok(500), t0);
        assert_eq!(c.len(), 1);
        assert!(c.get("b", t0).is_none());
    }

    #[test]
    fn a_replaced_answer_is_counted_once() {
        let mut c = IdemCache::new(B);
        let t0 = Instant::now();
        c.put("a", ok(10), t0);
        c.put("a", ok(20), t0 + Duration::from_millis(1));
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes(), 1 + 20 + 64);
        assert_eq!(c.get("a", t0), Some(ok(20)));
        assert_eq!(c.get("a", t0 + Duration::from_secs(301)), None);
        assert_eq!(c.bytes(), 0);
    }
}
