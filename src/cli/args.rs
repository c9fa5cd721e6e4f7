//! The typed result of command-line parsing: what `main` dispatches on.
//!
//! Plain data only. Every value here has already been checked by the
//! parser, so the commands never re-validate flags; defaults that depend on
//! the environment or a file are resolved later, by `config` and `service`.

use std::str::FromStr;

pub use crate::config::{AuthMode, BindMode, ClientArgs, Location, RunArgs};

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
