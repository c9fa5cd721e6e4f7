//! The gateway's shared state and the per-connection outboxes.
//!
//! One `Mutex<State>` holds what connections share (clients, presence,
//! versions, the auth limiter). It is held only to read or change those
//! maps, never across I/O. Frames from other threads (ticks, presence,
//! shutdown) reach a connection through its `Outbox`: a byte-bounded queue
//! plus an eventfd that wakes the connection's poll, so a slow reader costs
//! only its own queue and never stalls the broadcaster or other clients.

mod outbox;
pub mod presence;
mod slots;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::auth::{Limiter, LimiterConfig, Secret};
use crate::config::{Limits, Settings};
use crate::protocol::StateVersion;
use crate::protocol::VERSION;
pub use outbox::{Next, Outbox, QueuedEvent};
use presence::Presence;
pub use slots::UnauthSlot;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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

    /// One line for `systemctl status`: where it listens and who is
    /// connected.
    pub fn summary(&self) -> String {
        let clients = self.state().clients.len();
        let listen: Vec<String> = self.listen.iter().map(|a| format!("ws://{a}")).collect();
        format!("{clients} clients; listening on {}", listen.join(", "))
    }

    /// Gives clients up to `within` to receive what was queued for them
    /// (`shutdown` and the close), returning early once all are gone.
    pub fn drain(&self, within: std::time::Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline && !self.state().clients.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
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
