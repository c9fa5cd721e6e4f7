//! The resolved settings and the types the rest of clawgate reads: what
//! `clawgate run` runs with, where a client command connects, every limit
//! with its default.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::words::words;

words! {
    /// Where the gateway listens (`--bind`, `gateway.bind`).
    pub enum BindMode {
        Loopback = "loopback",
        Lan = "lan",
        Tailnet = "tailnet",
        Auto = "auto",
        Custom = "custom",
    }
}

words! {
    /// What clients must present (`--auth`, `gateway.auth.mode`).
    pub enum AuthMode {
        Token = "token",
        Password = "password",
        None = "none",
    }
}

words! {
    /// How configuration changes are applied (`gateway.reload.mode`).
    #[derive(Default)]
    pub enum ReloadMode {
        /// The file is not watched; SIGHUP still reloads, as `Hybrid`.
        Off = "off",
        /// Apply what can change in place; log and skip what needs a restart.
        Hot = "hot",
        /// Restart in-process on every change.
        Restart = "restart",
        /// Apply in place when possible, restart in-process otherwise.
        #[default]
        Hybrid = "hybrid",
    }
}

/// Every limit of LIMITS.md, configurable under `gateway.limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    /// `maxConnections` was not set: the gateway sizes it to the host at
    /// start (see `ceiling::fit_to_host`).
    pub auto_connections: bool,
    pub max_unauth_per_ip: usize,
    /// Unauthenticated sockets in all; past it the oldest makes room.
    pub max_unauth_total: usize,
    /// How long a new socket may stay silent before its first byte.
    pub first_byte_timeout_ms: u64,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub head_timeout_ms: u64,
    pub max_body_bytes: usize,
    pub body_timeout_ms: u64,
    pub keep_alive_idle_ms: u64,
    pub handshake_timeout_ms: u64,
    pub max_pre_hello_frame_bytes: usize,
    pub max_pre_hello_frames: usize,
    pub max_payload: usize,
    pub max_buffered_bytes: usize,
    pub thread_stack_bytes: usize,
    pub auth_max_failures: u32,
    pub auth_window_ms: u64,
    pub auth_lockout_ms: u64,
    pub max_unauthorized_calls: u32,
}

impl Limits {
    /// What the large WebSocket frames being read at one moment may hold
    /// altogether (frames over 64 KiB reserve their length first): four
    /// `maxPayload`s, so four clients can send their largest frame at
    /// once and a hundred cannot make the gateway hold a hundred.
    pub fn large_frame_budget(&self) -> usize {
        self.max_payload.saturating_mul(4)
    }

    /// What a connection's outbox may hold: `maxBufferedBytes` less what
    /// tungstenite's write buffer may hold (one reply of up to
    /// `maxPayload`, and slack), so the two stay within `maxBufferedBytes`
    /// together; at least 64 KiB.
    pub fn outbox_bytes(&self) -> usize {
        self.max_buffered_bytes
            .saturating_sub(self.max_payload + 64 * 1024)
            .max(64 * 1024)
    }
}

impl Default for Limits {
    /// The defaults of LIMITS.md, sized for a 64 MB router.
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            auto_connections: true,
            max_unauth_per_ip: 32,
            max_unauth_total: 64,
            first_byte_timeout_ms: 2_000,
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            head_timeout_ms: 10_000,
            max_body_bytes: 1024 * 1024,
            body_timeout_ms: 30_000,
            keep_alive_idle_ms: 5_000,
            handshake_timeout_ms: 10_000,
            max_pre_hello_frame_bytes: 64 * 1024,
            max_pre_hello_frames: 16,
            max_payload: 4 * 1024 * 1024,
            max_buffered_bytes: 8 * 1024 * 1024,
            thread_stack_bytes: 128 * 1024,
            auth_max_failures: 10,
            auth_window_ms: 60_000,
            auth_lockout_ms: 300_000,
            max_unauthorized_calls: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub alias: Option<String>,
    pub context_window: Option<u64>,
    pub reasoning: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub level: log::LevelFilter,
    /// Also write `<state_dir>/logs/clawgate.log`.
    pub file: bool,
    pub json: bool,
}

/// Everything `clawgate run` needs, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    /// The file's text when it exists.
    pub config_raw: Option<String>,
    /// The file parsed as plain JSON, for `config.get` (redact before use).
    pub config_json: Option<serde_json::Value>,
    pub state_dir: PathBuf,
    pub dev: bool,
    pub reset: bool,
    pub force: bool,
    pub port: u16,
    pub bind: BindMode,
    /// Only for `BindMode::Custom`.
    pub bind_host: Option<IpAddr>,
    pub auth_mode: AuthMode,
    /// `None` with `AuthMode::Token` on a loopback bind: the server
    /// generates one and stores it in `<state_dir>/gateway.token`.
    /// Always `None` unless the mode is `Token`.
    pub token: Option<String>,
    /// Always `None` unless the mode is `Password`.
    pub password: Option<String>,
    /// Where the secret came from, for the start-up message.
    pub secret_source: &'static str,
    pub tick_interval_ms: u64,
    pub limits: Limits,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub trusted_proxies: Vec<IpAddr>,
    pub log: LogSettings,
    pub models: Vec<ModelEntry>,
    /// Providers, CLI backends, agents and session bounds for runs.
    pub agents: super::agents::AgentSettings,
    /// The Control UI, the OpenAI-compatible endpoints and hooks.
    pub http: super::http::HttpSettings,
    pub default_agent_id: String,
    pub main_key: String,
    /// "per-sender" or "global".
    pub session_scope: String,
    pub reload_mode: ReloadMode,
    pub reload_debounce_ms: u64,
    /// `commands.restart`: SIGUSR1 restarts the gateway in-process.
    pub restart_enabled: bool,
}

/// Where and how a client command connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTarget {
    pub url: String,
    pub token: Option<String>,
    pub password: Option<String>,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    /// Where the credential came from ("--token", "CLAWGATE_GATEWAY_TOKEN",
    /// "config", "token file", "none"), for `status`.
    pub secret_source: &'static str,
    /// Why the config file did not load, when the target was resolved
    /// without it (see `config::BrokenFile`).
    pub config_error: Option<String>,
}
