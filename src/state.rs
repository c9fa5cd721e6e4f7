//! The gateway's shared state and the per-connection outboxes.
//!
//! One `Mutex<State>` holds what connections share (clients, presence,
//! versions, the auth limiter). It is held only to read or change those
//! maps, never across I/O. Frames from other threads (ticks, presence,
//! shutdown) reach a connection through its `Outbox`: a byte-bounded queue
//! plus an eventfd that wakes the connection's poll, so a slow reader costs
//! only its own queue and never stalls the broadcaster or other clients.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::auth::{Limiter, LimiterConfig, Secret};
use crate::config::{Limits, Settings};
use crate::notify::Notifier;
use crate::presence::Presence;
use crate::protocol::StateVersion;
use crate::sys::EventFd;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A queued frame for one connection. Events keep their payload serialized
/// once for all receivers; the connection adds its own `seq` when writing.
#[derive(Debug, Clone)]
pub struct QueuedEvent {
    pub name: &'static str,
    pub payload: Arc<str>,
    pub state_version: Option<StateVersion>,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<QueuedEvent>,
    bytes: usize,
    close: Option<(u16, String)>,
    /// Set with the first close request and never cleared: a closing
    /// connection takes no more events.
    closing: bool,
}

/// What a connection takes from its outbox next.
#[derive(Debug)]
pub enum Next {
    Event(QueuedEvent),
    /// Close with this code and reason: comes after every queued event.
    Close(u16, String),
    Empty,
}

#[derive(Debug)]
pub struct Outbox {
    queue: Mutex<Queue>,
    wake: EventFd,
    max_bytes: usize,
}

impl Outbox {
    pub fn new(max_bytes: usize) -> std::io::Result<Outbox> {
        Ok(Outbox {
            queue: Mutex::new(Queue::default()),
            wake: EventFd::new()?,
            max_bytes,
        })
    }

    pub fn wake_fd(&self) -> &EventFd {
        &self.wake
    }

    /// Queues an event. Over `maxBufferedBytes`, a droppable event (tick,
    /// presence: the next one supersedes it) is dropped; anything else
    /// closes the connection 1008 "slow consumer".
    pub fn push(&self, ev: QueuedEvent, droppable: bool) {
        let mut q = lock(&self.queue);
        if q.closing {
            return;
        }
        let size = event_size(&ev);
        if q.bytes + size > self.max_bytes {
            if droppable {
                return;
            }
            q.events.clear();
            q.bytes = 0;
            q.close = Some((1008, "slow consumer".into()));
            q.closing = true;
        } else {
            q.bytes += size;
            q.events.push_back(ev);
        }
        let first = q.events.len() <= 1;
        drop(q);
        if first {
            self.wake.signal();
        }
    }

    /// Asks the connection to close after writing what is queued.
    pub fn close(&self, code: u16, reason: &str) {
        let mut q = lock(&self.queue);
        if !q.closing {
            q.close = Some((code, reason.to_string()));
            q.closing = true;
        }
        drop(q);
        self.wake.signal();
    }

    /// Whether a close was asked for, without taking any events: for a
    /// connection that cannot write. Clears the wake-up.
    pub fn close_requested(&self) -> bool {
        self.wake.drain();
        lock(&self.queue).close.is_some()
    }

    /// Clears the wake-up before the connection starts taking events, so
    /// a push that lands while it takes them wakes it again.
    pub fn begin(&self) {
        self.wake.drain();
    }

    /// The next event, one at a time, so a connection that cannot write
    /// leaves the rest here, where `maxBufferedBytes` bounds them.
    pub fn pop(&self) -> Next {
        let mut q = lock(&self.queue);
        match q.events.pop_front() {
            Some(ev) => {
                q.bytes = q.bytes.saturating_sub(event_size(&ev));
                Next::Event(ev)
            }
            None => match q.close.take() {
                Some((code, reason)) => Next::Close(code, reason),
                None => Next::Empty,
            },
        }
    }
}

/// A place in the per-IP count of sockets that have not completed
/// `connect`, claimed when the socket is accepted (before a thread is
/// spawned) and released when the handshake succeeds or the socket closes.
/// Plain HTTP connections hold one for their whole life: they never
/// authenticate.
#[derive(Debug)]
pub struct UnauthSlot {
    shared: Arc<Shared>,
    ip: Option<IpAddr>,
}

impl UnauthSlot {
    pub fn claim(shared: &Arc<Shared>, ip: IpAddr) -> Option<UnauthSlot> {
        let mut st = shared.state();
        let n = st.unauthenticated.entry(ip).or_insert(0);
        if *n >= shared.live().settings.limits.max_unauth_per_ip {
            return None;
        }
        *n += 1;
        Some(UnauthSlot {
            shared: shared.clone(),
            ip: Some(ip),
        })
    }

    pub fn release(&mut self) {
        if let Some(ip) = self.ip.take() {
            let mut st = self.shared.state();
            if let Some(n) = st.unauthenticated.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    st.unauthenticated.remove(&ip);
                }
            }
        }
    }
}

impl Drop for UnauthSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// What an event counts against `maxBufferedBytes`: its frame's size.
fn event_size(ev: &QueuedEvent) -> usize {
    ev.payload.len() + ev.name.len() + 64
}

/// A handshaken client as other threads see it.
#[derive(Debug)]
pub struct Client {
    pub outbox: Arc<Outbox>,
}

#[derive(Debug)]
pub struct State {
    pub clients: HashMap<u64, Client>,
    pub presence: Presence,
    pub presence_version: u64,
    pub health_version: u64,
    pub limiter: Limiter,
    /// Sockets per peer IP that have not completed `connect` yet.
    pub unauthenticated: HashMap<IpAddr, usize>,
}

/// What a configuration reload may change: swapped whole, so a connection
/// that took a snapshot at its start sees one consistent configuration.
#[derive(Debug)]
pub struct Live {
    pub settings: Settings,
    pub secret: Secret,
}

/// Everything connections share, created once by the server.
#[derive(Debug)]
pub struct Shared {
    live: Mutex<Arc<Live>>,
    pub started: Instant,
    pub hostname: String,
    pub lan_ip: Option<String>,
    pub listen: Vec<SocketAddr>,
    pub log_file: Option<PathBuf>,
    /// Where the default agent's sessions would live, as `health` and
    /// `status` report it; fixed for the life of the process.
    pub sessions_path: String,
    /// The service manager, when one is listening (sd_notify).
    pub notifier: Notifier,
    pub state: Mutex<State>,
    /// Serializes broadcasts so every client sees presence versions in order.
    broadcast_order: Mutex<()>,
    /// The ticker thread, woken when a reload may change its interval.
    pub ticker: OnceLock<Thread>,
    /// Accepted sockets still open, checked before a thread is spawned.
    pub open_sockets: AtomicUsize,
    next_conn: AtomicUsize,
}

fn limiter_config(l: &Limits) -> LimiterConfig {
    LimiterConfig {
        max_failures: l.auth_max_failures,
        window: std::time::Duration::from_millis(l.auth_window_ms),
        lockout: std::time::Duration::from_millis(l.auth_lockout_ms),
        capacity: 10_000,
    }
}

/// Locks a mutex, recovering from poisoning: with `panic = "abort"` a
/// poisoned lock cannot be observed, and in tests the data is still sound
/// because no critical section leaves it half-updated.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(
        settings: Settings,
        secret: Secret,
        listen: Vec<SocketAddr>,
        log_file: Option<PathBuf>,
        notifier: Notifier,
    ) -> Shared {
        let limiter = Limiter::new(limiter_config(&settings.limits));
        let sessions_path = settings
            .state_dir
            .join("agents")
            .join(&settings.default_agent_id)
            .join("sessions")
            .join("sessions.json")
            .display()
            .to_string();
        Shared {
            notifier,
            sessions_path,
            started: Instant::now(),
            hostname: crate::sys::hostname(),
            lan_ip: crate::sys::lan_ipv4().map(|ip| ip.to_string()),
            listen,
            log_file,
            state: Mutex::new(State {
                clients: HashMap::new(),
                presence: Presence::default(),
                presence_version: 1,
                health_version: 1,
                limiter,
                unauthenticated: HashMap::new(),
            }),
            broadcast_order: Mutex::new(()),
            ticker: OnceLock::new(),
            open_sockets: AtomicUsize::new(0),
            next_conn: AtomicUsize::new(1),
            live: Mutex::new(Arc::new(Live { settings, secret })),
        }
    }

    /// The current configuration. Callers hold the snapshot for as long as
    /// one request or handshake, never across a reload they must notice.
    pub fn live(&self) -> Arc<Live> {
        lock(&self.live).clone()
    }

    /// Installs a reloaded configuration for everything that reads it from
    /// now on, and retunes the auth limiter without forgetting its counts.
    pub fn set_live(&self, live: Live) {
        let l = &live.settings.limits;
        self.state().limiter.reconfigure(limiter_config(l));
        *lock(&self.live) = Arc::new(live);
        if let Some(t) = self.ticker.get() {
            t.unpark();
        }
    }

    /// Every listener is on a loopback address: the Host check applies.
    pub fn loopback_only(&self) -> bool {
        !self.listen.is_empty() && self.listen.iter().all(|a| a.ip().is_loopback())
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) as u64
    }

    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The gateway's own presence entry, with a fresh `ts` on every read.
    pub fn own_presence(&self, now: u64) -> Map<String, Value> {
        let ip = self.lan_ip.as_deref();
        let text = match ip {
            Some(ip) => format!(
                "Gateway: {} ({ip}) · app {VERSION} · mode gateway · reason self",
                self.hostname
            ),
            None => format!(
                "Gateway: {} · app {VERSION} · mode gateway · reason self",
                self.hostname
            ),
        };
        let mut m = Map::new();
        m.insert("host".into(), json!(self.hostname));
        if let Some(ip) = ip {
            m.insert("ip".into(), json!(ip));
        }
        m.insert("version".into(), json!(VERSION));
        m.insert("platform".into(), json!(std::env::consts::OS));
        m.insert("mode".into(), json!("gateway"));
        m.insert("reason".into(), json!("self"));
        m.insert("text".into(), json!(text));
        m.insert("ts".into(), json!(now));
        m
    }

    pub fn presence_list(&self, st: &State) -> Vec<Value> {
        let now = now_ms();
        st.presence.list(self.own_presence(now), now)
    }

    pub fn state_version(st: &State) -> StateVersion {
        StateVersion {
            presence: st.presence_version,
            health: st.health_version,
        }
    }

    /// Sends one event to every handshaken client.
    pub fn broadcast(&self, name: &'static str, payload: &Value, droppable: bool) {
        let _order = lock(&self.broadcast_order);
        let payload: Arc<str> = payload.to_string().into();
        let targets = self.targets();
        for t in targets {
            t.push(
                QueuedEvent {
                    name,
                    payload: payload.clone(),
                    state_version: None,
                },
                droppable,
            );
        }
    }

    /// Applies `change` to the presence table and, if it reports a change,
    /// bumps the version and sends the full list to everyone.
    pub fn update_presence(&self, change: impl FnOnce(&mut Presence, u64) -> bool) {
        let _order = lock(&self.broadcast_order);
        let (payload, sv, targets) = {
            let mut st = self.state();
            if !change(&mut st.presence, now_ms()) {
                return;
            }
            st.presence_version += 1;
            let list = self.presence_list(&st);
            let sv = Shared::state_version(&st);
            let targets: Vec<Arc<Outbox>> = st.clients.values().map(|c| c.outbox.clone()).collect();
            (json!({ "presence": list }).to_string(), sv, targets)
        };
        let payload: Arc<str> = payload.into();
        for t in targets {
            t.push(
                QueuedEvent {
                    name: "presence",
                    payload: payload.clone(),
                    state_version: Some(sv),
                },
                true,
            );
        }
    }

    /// Closes every handshaken client with `code` and `reason` once what is
    /// queued for it is written (a rotated secret: 4001).
    pub fn close_all(&self, code: u16, reason: &str) -> usize {
        let targets = self.targets();
        for t in &targets {
            t.close(code, reason);
        }
        targets.len()
    }

    fn targets(&self) -> Vec<Arc<Outbox>> {
        self.state()
            .clients
            .values()
            .map(|c| c.outbox.clone())
            .collect()
    }

    /// Sends `shutdown` to every handshaken client and asks each to close
    /// 1012 once it is written; `restart_expected_ms` tells clients that
    /// the gateway comes back and when to reconnect. Returns how many
    /// clients were told.
    pub fn shutdown_all(&self, reason: &str, restart_expected_ms: Option<u64>) -> usize {
        let mut payload = json!({ "reason": reason });
        if let Some(ms) = restart_expected_ms {
            payload["restartExpectedMs"] = json!(ms);
        }
        let payload: Arc<str> = payload.to_string().into();
        let targets = self.targets();
        for t in &targets {
            t.push(
                QueuedEvent {
                    name: "shutdown",
                    payload: payload.clone(),
                    state_version: None,
                },
                false,
            );
            t.close(1012, "service restart");
        }
        targets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: usize) -> QueuedEvent {
        QueuedEvent {
            name: "x",
            payload: "a".repeat(n).into(),
            state_version: None,
        }
    }

    fn drain(o: &Outbox) -> (usize, Option<(u16, String)>) {
        let mut n = 0;
        loop {
            match o.pop() {
                Next::Event(_) => n += 1,
                Next::Close(code, reason) => return (n, Some((code, reason))),
                Next::Empty => return (n, None),
            }
        }
    }

    #[test]
    fn outbox_drops_droppable_events_when_full() {
        let o = Outbox::new(1000).unwrap();
        o.push(ev(800), true);
        o.push(ev(800), true);
        assert_eq!(drain(&o), (1, None));
    }

    #[test]
    fn outbox_closes_slow_consumers_on_non_droppable_overflow() {
        let o = Outbox::new(1000).unwrap();
        o.push(ev(800), true);
        o.push(ev(800), false);
        assert_eq!(drain(&o), (0, Some((1008, "slow consumer".to_string()))));
        // Nothing more is queued once closing.
        o.push(ev(1), false);
        assert_eq!(drain(&o), (0, None));
    }

    #[test]
    fn popping_frees_the_budget_and_close_comes_last() {
        let o = Outbox::new(1000).unwrap();
        o.push(ev(800), false);
        assert!(matches!(o.pop(), Next::Event(_)));
        o.push(ev(800), false);
        o.close(1012, "service restart");
        assert_eq!(drain(&o), (1, Some((1012, "service restart".to_string()))));
    }
}
