//! The typed result of command-line parsing: what `main` dispatches on.
//!
//! Plain data only. Every value here has already been checked by the
//! parser, so the commands never re-validate flags; defaults that depend on
//! the environment or a file are resolved later, by `config` and `service`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    Loopback,
    Lan,
    Tailnet,
    Auto,
    Custom,
}

impl BindMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BindMode::Loopback => "loopback",
            BindMode::Lan => "lan",
            BindMode::Tailnet => "tailnet",
            BindMode::Auto => "auto",
            BindMode::Custom => "custom",
        }
    }
}

/// The error is the reason only, so that both the flag parser and the config
/// loader can put their own subject in front of it.
impl FromStr for BindMode {
    type Err = String;

    fn from_str(s: &str) -> Result<BindMode, String> {
        match s {
            "loopback" => Ok(BindMode::Loopback),
            "lan" => Ok(BindMode::Lan),
            "tailnet" => Ok(BindMode::Tailnet),
            "auto" => Ok(BindMode::Auto),
            "custom" => Ok(BindMode::Custom),
            _ => Err("expected one of loopback, lan, tailnet, auto, custom".into()),
        }
    }
}

impl fmt::Display for BindMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Token,
    Password,
    None,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Token => "token",
            AuthMode::Password => "password",
            AuthMode::None => "none",
        }
    }
}

impl FromStr for AuthMode {
    type Err = String;

    fn from_str(s: &str) -> Result<AuthMode, String> {
        match s {
            "token" => Ok(AuthMode::Token),
            "password" => Ok(AuthMode::Password),
            "none" => Ok(AuthMode::None),
            _ => Err("expected one of token, password, none".into()),
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the gateway's files are: shared by `run` and the client commands,
/// so that `clawgate call` finds the same port and generated token as the
/// `clawgate run` it talks to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub dev: bool,
    pub profile: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunArgs {
    pub location: Location,
    pub bind: Option<BindMode>,
    pub bind_host: Option<IpAddr>,
    pub auth: Option<AuthMode>,
    pub token: Option<String>,
    pub password: Option<String>,
    pub allow_unconfigured: bool,
    pub reset: bool,
    pub force: bool,
    pub verbose: bool,
    pub json_logs: bool,
}

/// Options every client command takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientArgs {
    pub location: Location,
    pub url: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
    /// Milliseconds; default 10000.
    pub timeout_ms: u64,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallArgs {
    pub client: ClientArgs,
    pub method: String,
    /// The `--params` JSON text, parsed and validated as a JSON value.
    pub params: Option<serde_json::Value>,
    pub expect_final: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusArgs {
    pub client: ClientArgs,
    pub no_probe: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsArgs {
    pub client: ClientArgs,
    pub follow: bool,
    /// How many of the last lines the first read returns.
    pub limit: usize,
}

/// The service manager that `install` and its siblings talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Systemd,
    Procd,
}

impl Init {
    pub fn as_str(self) -> &'static str {
        match self {
            Init::Systemd => "systemd",
            Init::Procd => "procd",
        }
    }
}

impl FromStr for Init {
    type Err = String;

    fn from_str(s: &str) -> Result<Init, String> {
        match s {
            "systemd" => Ok(Init::Systemd),
            "procd" => Ok(Init::Procd),
            _ => Err("expected systemd or procd".into()),
        }
    }
}

/// Whose service: the machine's (started at boot, needs root) or one
/// user's (runs in that user's systemd instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    System,
    User,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::System => "system",
            Scope::User => "user",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    Install,
    Uninstall,
    Start,
    Stop,
    Restart,
}

impl ServiceAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceAction::Install => "install",
            ServiceAction::Uninstall => "uninstall",
            ServiceAction::Start => "start",
            ServiceAction::Stop => "stop",
            ServiceAction::Restart => "restart",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceArgs {
    pub action: ServiceAction,
    /// `None`: what the host suggests (see `service`).
    pub scope: Option<Scope>,
    pub init: Option<Init>,
    /// `install` only: the port, written to the service's config.
    pub port: Option<u16>,
    /// `install` only: kept in `gateway.env` (mode 0600), never in the
    /// unit file, the config or any output.
    pub token: Option<String>,
    /// `install` only: replace files that differ from what it would write.
    pub force: bool,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(RunArgs),
    Call(CallArgs),
    Health(ClientArgs),
    Status(StatusArgs),
    Probe(ClientArgs),
    Logs(LogsArgs),
    /// `install`, `uninstall`, `start`, `stop` and `restart`.
    Service(ServiceArgs),
    /// Help text to print on stdout (exit 0); it ends with a newline.
    Help(String),
    Version,
}
