//! Requests answered later: the table of what is being waited for, by the
//! key the work was sent under (a `node.invoke.request` id), and who waits.
//!
//! A waiter is a request on some connection: its id, its deadline and the
//! largest reply its connection accepts. Whoever removes a waiter answers
//! it, exactly once: the worker's thread with the result (`take`), the
//! waiter's own thread at its deadline (`expire`), or the worker leaving
//! (`drop_conn` hands its entries back, to be answered UNAVAILABLE). A
//! waiter whose own connection leaves is dropped without an answer. An
//! entry with no waiter left is removed, so a result that comes after
//! every waiter gave up finds nothing and is ignored.
//!
//! Plain data under the state lock; it never answers anyone itself, it
//! returns who is to be answered after unlocking. Every count is bounded
//! ([`Caps`]), so a flood of requests is refused, never queued.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::ConnId;

/// One request waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    pub conn: ConnId,
    pub req_id: Box<str>,
    pub deadline: Instant,
    /// The largest reply its connection was promised (`maxPayload`).
    pub max_payload: usize,
}

/// What is being waited for; agent runs will add theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// A `node.invoke` sent to a node.
    Invoke {
        node_id: Arc<str>,
        command: Arc<str>,
    },
}

#[derive(Debug)]
pub struct Entry {
    pub waiters: Vec<Waiter>,
    /// The connection doing the work (the node): its leaving ends it.
    pub worker: ConnId,
    pub work: Work,
    /// Its idempotency key, when it has one: a second request with the
    /// same key joins this entry instead of sending the work twice.
    pub idem: Option<Box<str>>,
}

/// How much may wait at once.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Entries in all.
    pub total: usize,
    /// Entries one worker (node) has in hand.
    pub per_worker: usize,
    /// Requests one connection has waiting (each may become one reply in
    /// its outbox).
    pub per_conn: usize,
    /// Requests joined to one entry.
    pub per_entry: usize,
}

/// Why a request cannot wait now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Total,
    Worker,
    Conn,
    Entry,
}

#[derive(Debug)]
pub struct Pending {
    caps: Caps,
    entries: HashMap<Arc<str>, Entry>,
    by_idem: HashMap<Box<str>, Arc<str>>,
    per_worker: HashMap<ConnId, usize>,
    per_conn: HashMap<ConnId, usize>,
}

fn dec(counts: &mut HashMap<ConnId, usize>, c: ConnId) {
    if let Some(n) = counts.get_mut(&c) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&c);
        }
    }
}

impl Pending {
    pub fn new(caps: Caps) -> Pending {
        Pending {
            caps,
            entries: HashMap::new(),
            by_idem: HashMap::new(),
            per_worker: HashMap::new(),
            per_conn: HashMap::new(),
        }
    }

    /// Entries waiting, all kinds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Requests waiting, all entries.
    pub fn waiters(&self) -> usize {
        self.per_conn.values().sum()
    }

    /// Whether a new entry for `worker`, waited for by `conn`, fits.
    pub fn check(&self, conn: ConnId, worker: ConnId) -> Result<(), Full> {
        if self.entries.len() >= self.caps.total {
            return Err(Full::Total);
        }
        if self.per_worker.get(&worker).copied().unwrap_or(0) >= self.caps.per_worker {
            return Err(Full::Worker);
        }
        self.check_conn(conn)
    }

    fn check_conn(&self, conn: ConnId) -> Result<(), Full> {
        if self.per_conn.get(&conn).copied().unwrap_or(0) >= self.caps.per_conn {
            return Err(Full::Conn);
        }
        Ok(())
    }

    /// Adds an entry with its first waiter. The caller has checked that
    /// it fits and that its key and idempotency key are new.
    pub fn insert(&mut self, key: Arc<str>, entry: Entry) {
        *self.per_worker.entry(entry.worker).or_default() += 1;
        for w in &entry.waiters {
            *self.per_conn.entry(w.conn).or_default() += 1;
        }
        if let Some(idem) = &entry.idem {
            self.by_idem.insert(idem.clone(), key.clone());
        }
        self.entries.insert(key, entry);
    }

    /// The entry still waiting under idempotency key `idem`, if any.
    pub fn in_flight(&self, idem: &str) -> Option<Arc<str>> {
        self.by_idem.get(idem).cloned()
    }

    /// Adds `waiter` to the entry under `key`: it gets the same answer.
    pub fn join(&mut self, key: &str, waiter: Waiter) -> Result<(), Full> {
        self.check_conn(waiter.conn)?;
        let Some(e) = self.entries.get_mut(key) else {
            return Err(Full::Entry);
        };
        if e.waiters.len() >= self.caps.per_entry {
            return Err(Full::Entry);
        }
        *self.per_conn.entry(waiter.conn).or_default() += 1;
        e.waiters.push(waiter);
        Ok(())
    }

    /// The worker and work under `key`, leaving the entry in place.
    pub fn peek(&self, key: &str) -> Option<(ConnId, &Work)> {
        self.entries.get(key).map(|e| (e.worker, &e.work))
    }

    /// Removes the entry under `key`: the caller answers its waiters.
    pub fn take(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.forget(&entry);
        Some(entry)
    }

    fn forget(&mut self, entry: &Entry) {
        dec(&mut self.per_worker, entry.worker);
        for w in &entry.waiters {
            dec(&mut self.per_conn, w.conn);
        }
        if let Some(idem) = &entry.idem {
            self.by_idem.remove(idem);
        }
    }

    /// Removes the waiter `(conn, req_id)` of the entry under `key`, whose
    /// deadline passed: its own thread answers it. `None` when it was
    /// answered already. The entry goes with its last waiter.
    pub fn expire(&mut self, key: &str, conn: ConnId, req_id: &str) -> Option<(Waiter, Work)> {
        let e = self.entries.get_mut(key)?;
        let i = e
            .waiters
            .iter()
            .position(|w| w.conn == conn && &*w.req_id == req_id)?;
        let waiter = e.waiters.swap_remove(i);
        let work = e.work.clone();
        dec(&mut self.per_conn, conn);
        if e.waiters.is_empty() {
            self.take(key);
        }
        Some((waiter, work))
    }

    /// `conn` left: its waiters are dropped (nobody is left to answer),
    /// and the entries it was working on are removed and returned, for
    /// their waiters to be told.
    pub fn drop_conn(&mut self, conn: ConnId) -> Vec<Entry> {
        if self.per_conn.contains_key(&conn) {
            let mut emptied = Vec::new();
            for (k, e) in self.entries.iter_mut() {
                e.waiters.retain(|w| w.conn != conn);
                if e.waiters.is_empty() {
                    emptied.push(k.clone());
                }
            }
            self.per_conn.remove(&conn);
            for k in emptied {
                self.take(&k);
            }
        }
        if !self.per_worker.contains_key(&conn) {
            return Vec::new();
        }
        let keys: Vec<Arc<str>> = self
            .entries
            .iter()
            .filter(|(_, e)| e.worker == conn)
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| self.take(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CAPS: Caps = Caps {
        total: 4,
        per_worker: 2,
        per_conn: 3,
        per_entry: 2,
    };

    fn waiter(conn: usize, req: &str) -> Waiter {
        Waiter {
            conn: ConnId::new(conn),
            req_id: req.into(),
            deadline: Instant::now() + Duration::from_secs(1),
            max_payload: 1000,
        }
    }

    fn entry(worker: usize, waiter: Waiter, idem: Option<&str>) -> Entry {
        Entry {
            waiters: vec![waiter],
            worker: ConnId::new(worker),
            work: Work::Invoke {
                node_id: "n".into(),
                command: "c".into(),
            },
            idem: idem.map(Into::into),
        }
    }

    fn empty(p: &Pending) -> bool {
        p.entries.is_empty()
            && p.by_idem.is_empty()
            && p.per_conn.is_empty()
            && p.per_worker.is_empty()
    }

    #[test]
    fn whoever_takes_an_entry_first_answers_it_once() {
        let mut p = Pending::new(CAPS);
        p.insert("k".into(), entry(9, waiter(1, "a"), Some("i")));
        assert_eq!(p.in_flight("i").as_deref(), Some("k"));
        let e = p.take("k").expect("the result takes it");
        assert_eq!(e.waiters.len(), 1);
        assert_eq!(&*e.waiters[0].req_id, "a");
        assert!(p.take("k").is_none());
        assert!(p.expire("k", ConnId::new(1), "a").is_none());
        assert!(empty(&p));
    }

    #[test]
    fn a_timed_out_waiter_leaves_the_others_and_the_last_one_the_entry() {
        let mut p = Pending::new(CAPS);
        p.insert("k".into(), entry(9, waiter(1, "a"), Some("i")));
        p.join("k", waiter(2, "b")).unwrap();
        assert_eq!(p.join("k", waiter(3, "c")), Err(Full::Entry));
        let (w, _) = p.expire("k", ConnId::new(1), "a").expect("still waiting");
        assert_eq!(&*w.req_id, "a");
        assert!(p.expire("k", ConnId::new(1), "a").is_none());
        assert_eq!(p.len(), 1);
        assert!(p.expire("k", ConnId::new(2), "b").is_some());
        assert!(empty(&p), "{p:?}");
        // The node's late answer finds nothing.
        assert!(p.take("k").is_none());
    }

    #[test]
    fn a_leaving_worker_hands_back_its_entries_and_a_leaving_waiter_is_dropped() {
        let mut p = Pending::new(CAPS);
        p.insert("k1".into(), entry(9, waiter(1, "a"), None));
        p.insert("k2".into(), entry(8, waiter(1, "b"), None));
        p.join("k2", waiter(2, "c")).unwrap();
        let failed = p.drop_conn(ConnId::new(9));
        assert_eq!(failed.len(), 1);
        assert_eq!(&*failed[0].waiters[0].req_id, "a");
        assert!(p.drop_conn(ConnId::new(1)).is_empty());
        assert_eq!(p.len(), 1, "k2 still has a waiter");
        assert!(p.drop_conn(ConnId::new(2)).is_empty());
        assert!(empty(&p), "{p:?}");
    }

    #[test]
    fn the_caps_bound_entries_per_worker_per_connection_and_in_all() {
        let mut p = Pending::new(CAPS);
        let (a, b) = (ConnId::new(1), ConnId::new(2));
        p.insert("1".into(), entry(9, waiter(1, "a"), None));
        p.insert("2".into(), entry(9, waiter(1, "b"), None));
        assert_eq!(p.check(b, ConnId::new(9)), Err(Full::Worker));
        p.insert("3".into(), entry(8, waiter(1, "c"), None));
        assert_eq!(p.check(a, ConnId::new(7)), Err(Full::Conn));
        p.insert("4".into(), entry(7, waiter(2, "d"), None));
        assert_eq!(p.check(b, ConnId::new(6)), Err(Full::Total));
        assert_eq!(p.waiters(), 4);
        for k in ["1", "2", "3", "4"] {
            p.take(k);
        }
        assert!(empty(&p));
    }
}
