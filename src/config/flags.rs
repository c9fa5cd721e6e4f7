//! What the command line says about configuration: where the files are,
//! and the flags of `run` and of the client commands that win over the
//! environment and the file. Plain data, filled in by `cli`.

use std::net::IpAddr;
use std::path::PathBuf;

use super::{AuthMode, BindMode};

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
