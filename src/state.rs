//! The gateway's shared state: what every connection thread, the ticker and
//! the signal thread see.
//!
//! One `Mutex<State>` holds the domain tables (clients, presence and its
//! version, the failed-auth limiter, the per-IP count of sockets that have
//! not authenticated, the connected nodes, the requests waiting for a
//! later answer, the idempotent answers kept and the agent runs). The
//! tables are private plain data; `Shared` is the only way in, and each of its methods locks briefly, changes or reads a
//! table, and returns or carries out what is to be done after unlocking
//! (a [`Fanout`] to deliver, a delay to sleep). Nothing here does I/O with
//! the lock held. Frames reach a connection through its [`Outbox`], so a
//! slow reader costs only its own queue.
//!
//! Lock order (a thread holding one may take only those below it):
//! 1. `Reloader::busy` (one reload or restart at a time);
//! 2. `ordered`: serializes the events that carry a `stateVersion`, so
//!    every client sees the versions rise in order;
//! 3. `state`;
//! 4. an outbox's queue (in practice never taken with `state` held: a
//!    fan-out collects its targets under `state` and pushes after).
//!
//! A reply that comes later follows the same order: the thread that
//! removes a waiter from the pending table (under `state`) owns its answer
//! and pushes it into the waiter's outbox after unlocking, so a reply is
//! sent exactly once and no outbox lock is taken under `state`.
//!
//! `live` (the configuration snapshot) and the large-frame budget are each
//! taken alone, never while another lock is held. Durable stores (pairings, sessions) keep their own locks
//! and are never touched with `state` held.

mod budget;
mod clients;
mod hooks;
mod idem;
mod nodes;
mod outbox;
mod pending;
mod presence;
mod presence_shared;
mod relay;
mod run_relay;
mod runs;
mod slots;

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::auth::{Limiter, LimiterConfig, Secret};
use crate::config::{Limits, Settings};
use crate::protocol::StateVersion;
use crate::store::devices::DeviceStore;
use crate::store::identity::Identity;
use crate::store::sessions::SessionStore;
pub use budget::Budget;
use clients::Clients;
pub use clients::{Audience, ConnId, Member};
pub use hooks::WakeOutcome;
use idem::IdemCache;
pub use idem::Outcome;
pub use nodes::NodeInfo;
use nodes::Nodes;
pub use outbox::{Delivery, Next, Outbox, QueuedEvent, Reply};
use pending::Pending;
pub use pending::{Full, Waiter, Work};
use presence::Presence;
pub use presence::{PresenceKey, FIELDS as PRESENCE_FIELDS};
pub use relay::{node_error, Invoke, Invoked, Later};
pub use run_relay::{Admitted, Ending, LATER_PREFIX as RUN_LATER_PREFIX};
pub use runs::{Full as RunsFull, Job, Kind as RunKind, Run, RunCaps, Runs, WaitKind};
pub use slots::{addr_key, NoSlot, UnauthSlot};
use slots::{Claim, Slots};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The domain tables. Private: reached only through `Shared`'s methods.
#[derive(Debug)]
struct State {
    clients: Clients,
    presence: Presence,
    versions: StateVersion,
    limiter: Limiter,
    /// Sockets that have not completed `connect` yet.
    slots: Slots,
    nodes: Nodes,
    pending: Pending,
    idem: IdemCache,
    runs: Runs,
    hooks: hooks::HookTables,
}

/// What a configuration reload may change: swapped whole, so a connection
/// or request that took a snapshot sees one consistent configuration.
#[derive(Debug)]
pub struct Live {
    pub settings: Settings,
    pub secret: Secret,
}

/// How many are connected, for `status` and the manager's status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub clients: usize,
    pub presence: usize,
    /// Sockets that have not authenticated (plain HTTP included).
    pub unauthenticated: usize,
    /// Connected nodes.
    pub nodes: usize,
    /// Requests waiting for a later answer (invokes in flight).
    pub pending: usize,
    /// Sessions with an agent run executing, and runs in all (waiting
    /// ones included).
    pub runs: (usize, usize),
}

/// Everything connections share, created once by the gateway.
#[derive(Debug)]
pub struct Shared {
    live: Mutex<Arc<Live>>,
    state: Mutex<State>,
    ordered: Mutex<()>,
    started: Instant,
    listen: Vec<SocketAddr>,
    log_file: Option<PathBuf>,
    /// Where the default agent's sessions would live, as `health` and
    /// `status` report it; fixed for the life of the process.
    sessions_path: String,
    /// The ticker thread, woken when a reload may change its interval.
    ticker: OnceLock<Thread>,
    /// Accepted sockets still open, checked before a thread is spawned.
    open_sockets: AtomicUsize,
    /// What large frames being read may hold at once, all sockets together.
    frame_budget: Arc<Budget>,
    next_conn: AtomicUsize,
    /// Pairings and device tokens: their own lock and file, never taken
    /// with `state` held.
    devices: DeviceStore,
    identity: Identity,
    /// Sessions and their transcripts: their own lock and files, never
    /// taken with `state` held.
    sessions: SessionStore,
}

/// How many runs may execute and wait: `agents.defaults.maxConcurrent`
/// sessions at once, four waiting behind each, 256 in the table (each
/// holds at most one message of `session.maxMessageBytes`).
fn run_caps(s: &Settings) -> RunCaps {
    RunCaps {
        max_running: s.agents.max_concurrent,
        max_queued_per_session: 4,
        max_total: 256,
        max_waiters: 16,
    }
}

fn limiter_config(l: &Limits) -> LimiterConfig {
    LimiterConfig {
        max_failures: l.auth_max_failures,
        window: Duration::from_millis(l.auth_window_ms),
        lockout: Duration::from_millis(l.auth_lockout_ms),
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
        (devices, identity, sessions): (DeviceStore, Identity, SessionStore),
    ) -> Shared {
        let limiter = Limiter::new(limiter_config(&settings.limits));
        let frame_budget = Arc::new(Budget::new(settings.limits.large_frame_budget()));
        let sessions_path = settings
            .state_dir
            .join("agents")
            .join(&settings.default_agent_id)
            .join("sessions")
            .join("sessions.json")
            .display()
            .to_string();
        let presence = Presence::new(
            crate::sys::hostname(),
            crate::sys::lan_ipv4().map(|ip| ip.to_string()),
        );
        Shared {
            sessions_path,
            started: Instant::now(),
            listen,
            log_file,
            state: Mutex::new(State {
                clients: Clients::default(),
                presence,
                versions: StateVersion {
                    presence: 1,
                    health: 1,
                },
                limiter,
                slots: Slots::default(),
                nodes: Nodes::default(),
                pending: Pending::new(relay::PENDING_CAPS),
                idem: IdemCache::new(relay::IDEM_BOUNDS),
                runs: Runs::new(run_caps(&settings)),
                hooks: hooks::HookTables::default(),
            }),
            ordered: Mutex::new(()),
            ticker: OnceLock::new(),
            open_sockets: AtomicUsize::new(0),
            frame_budget,
            next_conn: AtomicUsize::new(1),
            live: Mutex::new(Arc::new(Live { settings, secret })),
            devices,
            identity,
            sessions,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    // ---- configuration and process facts ---------------------------------

    /// The current configuration. Callers hold the snapshot for as long as
    /// one request or handshake, never across a reload they must notice.
    pub fn live(&self) -> Arc<Live> {
        lock(&self.live).clone()
    }

    /// Installs a reloaded configuration for everything that reads it from
    /// now on, and retunes the auth limiter without forgetting its counts.
    pub fn set_live(&self, live: Live) {
        let cfg = limiter_config(&live.settings.limits);
        {
            let mut st = self.state();
            st.limiter.reconfigure(cfg);
            st.runs.set_max_running(live.settings.agents.max_concurrent);
        }
        self.frame_budget
            .set_capacity(live.settings.limits.large_frame_budget());
        *lock(&self.live) = Arc::new(live);
        if let Some(t) = self.ticker.get() {
            t.unpark();
        }
    }

    /// The ticker thread, unparked by a reload.
    pub fn set_ticker(&self, ticker: Thread) {
        let _ = self.ticker.set(ticker);
    }

    pub fn listen(&self) -> &[SocketAddr] {
        &self.listen
    }

    pub fn log_file(&self) -> Option<&Path> {
        self.log_file.as_deref()
    }

    pub fn devices(&self) -> &DeviceStore {
        &self.devices
    }

    /// The gateway's own device identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    pub fn sessions_path(&self) -> &str {
        &self.sessions_path
    }

    /// Every listener is on a loopback address: the Host check applies.
    pub fn loopback_only(&self) -> bool {
        !self.listen.is_empty() && self.listen.iter().all(|a| a.ip().is_loopback())
    }

    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// One line for `systemctl status`: where it listens and who is
    /// connected.
    pub fn summary(&self) -> String {
        let clients = self.counts().clients;
        let listen: Vec<String> = self.listen.iter().map(|a| format!("ws://{a}")).collect();
        format!("{clients} clients; listening on {}", listen.join(", "))
    }

    /// Takes and drops the state lock: the watchdog pings only while the
    /// gateway is not wedged.
    pub fn responsive(&self) {
        drop(self.state());
    }

    // ---- sockets ---------------------------------------------------------

    /// Counts an accepted socket; `false` (and not counted) past `max`.
    pub fn open_socket(&self, max: usize) -> bool {
        let open = self.open_sockets.fetch_add(1, Ordering::AcqRel) + 1;
        if open > max {
            self.open_sockets.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub fn close_socket(&self) {
        self.open_sockets.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn open_sockets(&self) -> usize {
        self.open_sockets.load(Ordering::Relaxed)
    }

    /// The large-frame budget every connection reads against.
    pub fn frame_budget(&self) -> Arc<Budget> {
        self.frame_budget.clone()
    }

    pub fn next_conn_id(&self) -> ConnId {
        ConnId::new(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    // ---- the failed-auth limiter ------------------------------------------

    /// `Err(retry_after_ms)` while `ip` (its address: an IPv6 /64 counts
    /// as one) is locked out.
    pub fn auth_lockout(&self, ip: IpAddr, exempt: bool, now: Instant) -> Result<(), u64> {
        self.state().limiter.check(addr_key(ip), exempt, now)
    }

    /// Counts a failed secret; returns how long to wait before answering
    /// (the caller sleeps, never with a lock held).
    pub fn auth_failure(&self, ip: IpAddr, exempt: bool, now: Instant) -> Duration {
        self.state()
            .limiter
            .record_failure(addr_key(ip), exempt, now)
    }

    // ---- clients -----------------------------------------------------------

    /// Admits a handshaken client: it receives broadcasts from now on, and
    /// its address's failed attempts are forgotten.
    pub fn register(&self, id: ConnId, ip: IpAddr, outbox: Arc<Outbox>, member: Member) {
        let mut st = self.state();
        st.limiter.record_success(addr_key(ip));
        st.clients.insert(id, outbox, member);
    }

    /// Takes a client off the list. Its requests waiting for a later
    /// answer are dropped (nobody is left to read it); if it was a node,
    /// it is unlisted and the invokes it had in hand fail UNAVAILABLE.
    pub fn unregister(&self, id: ConnId) {
        {
            let mut st = self.state();
            st.clients.remove(id);
            st.runs.drop_conn(id);
        }
        // An invoke routed to this node in between finds no outbox to
        // send to, and is failed here with the others.
        self.node_gone(id);
    }

    /// The devices connected now, each with a role it is connected in.
    pub fn connected_devices(&self) -> Vec<(Arc<str>, crate::protocol::Role)> {
        self.state().clients.devices()
    }

    pub fn counts(&self) -> Counts {
        let st = self.state();
        Counts {
            clients: st.clients.len(),
            presence: st.presence.len(),
            unauthenticated: st.slots.len(),
            nodes: st.nodes.len(),
            pending: st.pending.waiters(),
            runs: (st.runs.running(), st.runs.len()),
        }
    }

    /// Gives clients up to `within` to receive what was queued for them
    /// (`shutdown` and the close), returning early once all are gone.
    pub fn drain(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline && !self.state().clients.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends one event to every handshaken client.
    pub fn broadcast(&self, name: &'static str, payload: &Value, delivery: Delivery) {
        self.send(
            Audience::All,
            QueuedEvent::new(name, payload.to_string(), None),
            delivery,
        );
    }

    /// Sends one event to the clients `to` picks out; returns how many.
    pub fn send(&self, to: Audience, event: QueuedEvent, delivery: Delivery) -> usize {
        let fanout = self.state().clients.fanout(to, event, delivery);
        fanout.deliver().len()
    }

    /// Closes every handshaken client with `code` and `reason` once what is
    /// queued for it is written (a rotated secret: 4001).
    pub fn close_all(&self, code: u16, reason: &str) -> usize {
        self.close(Audience::All, code, reason)
    }

    /// Closes the clients `to` picks out (a revoked device: 4001) once what
    /// is queued for them is written; returns how many.
    pub fn close(&self, to: Audience, code: u16, reason: &str) -> usize {
        let targets = self.state().clients.outboxes(to);
        for t in &targets {
            t.close(code, reason);
        }
        targets.len()
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
        let event = QueuedEvent::new("shutdown", payload.to_string(), None);
        let fanout = self
            .state()
            .clients
            .fanout(Audience::All, event, Delivery::Required);
        let targets = fanout.deliver();
        for t in &targets {
            t.close(1012, "service restart");
        }
        targets.len()
    }

    // ---- unauthenticated sockets --------------------------------------------

    /// Claims a slot for an unauthenticated socket from `addr`; see
    /// `slots`. The caller shuts an evicted socket after this returns.
    fn claim_unauth(&self, addr: IpAddr, handle: TcpStream, limits: (usize, usize)) -> Claim {
        self.state()
            .slots
            .claim(addr, handle, limits, Instant::now())
    }

    fn release_unauth(&self, id: u64) {
        let handle = self.state().slots.release(id);
        // Closing the duplicate descriptor is I/O: after unlocking.
        drop(handle);
    }
}
