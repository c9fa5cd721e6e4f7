//! The typed result of command-line parsing: what `main` dispatches on.
//!
//! Plain data only. Every value here has already been checked by the
//! parser, so the commands never re-validate flags; defaults that depend on
//! the environment or a file are resolved later, by `config` and `service`.

pub use crate::config::{AuthMode, BindMode, ClientArgs, Location, RunArgs};
use crate::words::words;

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

words! {
    /// The service manager that `install` and its siblings talk to.
    pub enum Init {
        Systemd = "systemd",
        Procd = "procd",
    }
}

words! {
    /// Whose service: the machine's (started at boot, needs root) or one
    /// user's (runs in that user's systemd instance).
    pub enum Scope {
        System = "system",
        User = "user",
    }
}

words! {
    pub enum ServiceAction {
        Install = "install",
        Uninstall = "uninstall",
        Start = "start",
        Stop = "stop",
        Restart = "restart",
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
    Devices(DevicesArgs),
    Nodes(NodesArgs),
    Agent(AgentArgs),
    Sessions(SessionsArgs),
    /// `install`, `uninstall`, `start`, `stop` and `restart`.
    Service(ServiceArgs),
    /// Help text to print on stdout (exit 0); it ends with a newline.
    Help(String),
    Version,
}

words! {
    /// What `clawgate devices` does, as typed after it.
    pub enum DeviceVerb {
        List = "list",
        Approve = "approve",
        Reject = "reject",
        Remove = "remove",
        Rotate = "rotate",
        Revoke = "revoke",
    }
}

words! {
    /// What `clawgate nodes` does, as typed after it.
    pub enum NodeVerb {
        List = "list",
        Pending = "pending",
        Approve = "approve",
        Reject = "reject",
        Remove = "remove",
        Describe = "describe",
        Invoke = "invoke",
    }
}

/// `clawgate devices ACTION`: the pairing store of a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceAction {
    List,
    Approve {
        request: String,
    },
    Reject {
        request: String,
    },
    Remove {
        device: String,
    },
    Rotate {
        device: String,
        role: String,
        /// `None`: the token keeps the scopes it has.
        scopes: Option<Vec<String>>,
    },
    Revoke {
        device: String,
        role: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicesArgs {
    pub client: ClientArgs,
    pub action: DeviceAction,
}

/// `clawgate nodes invoke`: one command on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeArgs {
    /// A node id, a display name or a unique id prefix.
    pub node: String,
    pub command: String,
    pub params: Option<serde_json::Value>,
    /// What the gateway is told to wait for the node (`timeoutMs`).
    pub invoke_timeout_ms: u64,
    /// `None`: a fresh one is made for this call.
    pub idempotency_key: Option<String>,
}

/// `clawgate nodes ACTION`: the nodes of a gateway and their command
/// surfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAction {
    List,
    Pending,
    Approve { request: String },
    Reject { request: String },
    Remove { node: String },
    Describe { node: String },
    Invoke(InvokeArgs),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodesArgs {
    pub client: ClientArgs,
    pub action: NodeAction,
}

/// How long `clawgate agent` waits for the run's final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunWait {
    /// `--timeout` was given: the whole command, connecting included,
    /// keeps within it.
    Timeout,
    /// From the request on, this many milliseconds: the run's own timeout
    /// and a margin for the gateway to answer after it.
    Ms(u64),
    /// The run has no timeout (`--run-timeout 0`): as long as it takes.
    Unbounded,
}

/// `clawgate agent`: one message to an agent, its reply streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentArgs {
    /// `timeout_ms` bounds connecting; see `wait` for the run.
    pub client: ClientArgs,
    pub message: String,
    /// `None`: the gateway's default agent.
    pub agent: Option<String>,
    /// `None`: the agent's main session.
    pub session: Option<String>,
    /// The run's own timeout in seconds, sent as `timeout`; 0 is none.
    pub run_timeout_s: u64,
    pub wait: RunWait,
    /// `None`: a fresh one is made for this call.
    pub idempotency_key: Option<String>,
}

words! {
    /// What `clawgate sessions` does, as typed after it.
    pub enum SessionVerb {
        List = "list",
        History = "history",
        Reset = "reset",
        Delete = "delete",
    }
}

/// `clawgate sessions ACTION`: the agent sessions a gateway keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAction {
    List {
        agent: Option<String>,
        search: Option<String>,
        /// `None`: as many as the gateway lists by default.
        limit: Option<usize>,
    },
    History {
        key: String,
        /// The last this many messages; `None`: the gateway's default.
        limit: Option<usize>,
    },
    Reset {
        key: String,
    },
    Delete {
        key: String,
        /// Also delete the transcript (`deleteTranscript`).
        transcript: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsArgs {
    pub client: ClientArgs,
    pub action: SessionAction,
}
