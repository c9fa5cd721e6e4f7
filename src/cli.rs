//! Command-line parsing: raw arguments in, a typed `Command` out.
//!
//! Parsing runs in two phases, as in ripgrep and lexopt's cargo example:
//! `lexopt` first turns the arguments into `Raw`, plain data where each
//! value is checked on its own and a repeated flag's last value wins; then
//! `validate` checks how the flags combine and builds the `Command` that
//! `main` dispatches. Nothing here reads the environment, touches a file or
//! prints: defaults that depend on the environment or the config belong to
//! `config`, and only `main` writes to the terminal. The typed results
//! live in `args`; the help texts are hand-written in `help`, and the flag
//! tables here are checked against both (and against `man/clawgate.1` by
//! the integration tests).

mod agent;
mod args;
mod help;
mod pairing;
mod values;

use std::ffi::OsString;
use std::net::IpAddr;

use crate::error::Error;

pub use args::*;
use pairing::Verb;
use values::{
    ip_addr, limit, nonempty, params, port, profile, secret, switch, timeout, url, value, word,
    PortUse,
};

/// The subcommands, in the order the top-level help lists them.
pub const COMMANDS: &[&str] = &[
    "run",
    "call",
    "health",
    "status",
    "probe",
    "logs",
    "agent",
    "sessions",
    "devices",
    "nodes",
    "install",
    "uninstall",
    "start",
    "stop",
    "restart",
];

/// How long a client command waits for the gateway, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// The long flags (without `--`) each command accepts. The parser consults
/// these before looking at a flag, and the unit tests hold every help text
/// to them, so a flag cannot be accepted without being documented.
const LOCATION_FLAGS: &[&str] = &["config", "state-dir", "dev", "profile", "port"];
const RUN_FLAGS: &[&str] = &[
    "bind",
    "bind-host",
    "auth",
    "token",
    "password",
    "allow-unconfigured",
    "reset",
    "force",
    "verbose",
    "json",
];
const CLIENT_FLAGS: &[&str] = &["url", "token", "password", "timeout", "json"];
const LOGS_FLAGS: &[&str] = &["follow", "limit"];
/// `devices rotate` and `devices revoke`: which token, and its scopes.
const DEVICES_FLAGS: &[&str] = &["role", "scope"];
/// `nodes invoke`: which node, what to run and how long it may take.
const NODES_FLAGS: &[&str] = &[
    "node",
    "command",
    "params",
    "invoke-timeout",
    "idempotency-key",
];
/// `uninstall`, `start`, `stop` and `restart`: which service, and how to
/// report.
const SERVICE_FLAGS: &[&str] = &["system", "user", "init", "json"];
/// `install` also takes what to write: the port and token of the service.
const INSTALL_FLAGS: &[&str] = &["port", "token", "force"];

/// What the first `clawgate logs` read returns unless `--limit` says.
pub const DEFAULT_LOGS_LIMIT: usize = 200;
/// `logs.tail` never returns more lines than this (the gateway clamps too).
const MAX_LOGS_LIMIT: usize = crate::logging::tail::TAIL_MAX_LIMIT;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Run,
    Call,
    Health,
    Status,
    Probe,
    Logs,
    Agent,
    Sessions,
    Devices,
    Nodes,
    Install,
    Uninstall,
    Start,
    Stop,
    Restart,
}

impl Sub {
    /// In the order of `COMMANDS`, so that list stays the one source of names.
    const ALL: [Sub; 15] = [
        Sub::Run,
        Sub::Call,
        Sub::Health,
        Sub::Status,
        Sub::Probe,
        Sub::Logs,
        Sub::Agent,
        Sub::Sessions,
        Sub::Devices,
        Sub::Nodes,
        Sub::Install,
        Sub::Uninstall,
        Sub::Start,
        Sub::Stop,
        Sub::Restart,
    ];

    fn from_name(name: &str) -> Option<Sub> {
        let i = COMMANDS.iter().position(|c| *c == name)?;
        Sub::ALL.get(i).copied()
    }

    fn name(self) -> &'static str {
        COMMANDS[self as usize]
    }

    fn accepts(self, flag: &str) -> bool {
        let tables: &[&[&str]] = match self {
            Sub::Run => &[LOCATION_FLAGS, RUN_FLAGS],
            Sub::Call => &[LOCATION_FLAGS, CLIENT_FLAGS, &["params", "expect-final"]],
            Sub::Status => &[LOCATION_FLAGS, CLIENT_FLAGS, &["no-probe"]],
            Sub::Health | Sub::Probe => &[LOCATION_FLAGS, CLIENT_FLAGS],
            Sub::Logs => &[LOCATION_FLAGS, CLIENT_FLAGS, LOGS_FLAGS],
            Sub::Devices => &[LOCATION_FLAGS, CLIENT_FLAGS, DEVICES_FLAGS],
            Sub::Nodes => &[LOCATION_FLAGS, CLIENT_FLAGS, NODES_FLAGS],
            Sub::Agent => &[LOCATION_FLAGS, CLIENT_FLAGS, agent::AGENT_FLAGS],
            Sub::Sessions => &[LOCATION_FLAGS, CLIENT_FLAGS, agent::SESSIONS_FLAGS],
            // The service's files are at fixed places: no location flags.
            Sub::Install => &[SERVICE_FLAGS, INSTALL_FLAGS],
            Sub::Uninstall | Sub::Start | Sub::Stop | Sub::Restart => &[SERVICE_FLAGS],
        };
        tables.iter().any(|t| t.contains(&flag))
    }

    fn service_action(self) -> Option<ServiceAction> {
        Some(match self {
            Sub::Install => ServiceAction::Install,
            Sub::Uninstall => ServiceAction::Uninstall,
            Sub::Start => ServiceAction::Start,
            Sub::Stop => ServiceAction::Stop,
            Sub::Restart => ServiceAction::Restart,
            _ => return None,
        })
    }
}

/// Phase one's result: every flag any command takes, each value checked on
/// its own, nothing yet checked against the others.
#[derive(Debug, Default)]
struct Raw {
    location: Location,
    bind: Option<BindMode>,
    bind_host: Option<IpAddr>,
    auth: Option<AuthMode>,
    token: Option<String>,
    password: Option<String>,
    url: Option<String>,
    timeout_ms: Option<u64>,
    params: Option<serde_json::Value>,
    method: Option<String>,
    allow_unconfigured: bool,
    reset: bool,
    force: bool,
    verbose: bool,
    json: bool,
    expect_final: bool,
    no_probe: bool,
    follow: bool,
    limit: Option<usize>,
    system: bool,
    user: bool,
    init: Option<Init>,
    /// `devices`, `nodes`, `sessions`: the action and the id or name after it.
    verb: Option<Verb>,
    operand: Option<String>,
    role: Option<String>,
    /// `--scope` may be repeated: each adds one.
    scopes: Vec<String>,
    node: Option<String>,
    command: Option<String>,
    invoke_timeout_ms: Option<u64>,
    idempotency_key: Option<String>,
    agent: agent::RawAgent,
}

impl Raw {
    /// The command as messages name it: `nodes invoke` once the action
    /// is known, else the command alone.
    fn command(&self, sub: Sub) -> String {
        self.verb
            .map_or_else(|| sub.name().to_owned(), Verb::command_line)
    }
}

/// How phase one ended. `--help` and `--version` stop parsing and skip phase
/// two, so `clawgate --reset --help` explains `--reset` instead of failing.
enum Parsed {
    Flags(Box<Raw>),
    /// With the action of a command that takes one, when it came first.
    Help(Option<Verb>),
    Version,
}

/// Parse the arguments after argv[0].
pub fn parse<I>(args: I) -> Result<Command, Error>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut parser = lexopt::Parser::from_args(args.clone());
    let mut word = next_word(&mut parser)?;
    // `clawgate gateway ...` keeps scripts written for `openclaw gateway`.
    if word.as_deref() == Some("gateway") {
        word = next_word(&mut parser)?;
    }
    let sub = match word.as_deref() {
        None => None,
        Some("help") => return parse_help(parser),
        Some(name) => Some(Sub::from_name(name).ok_or_else(|| unknown_command(name))?),
    };
    let explicit = sub.map(Sub::name);
    let sub = sub.unwrap_or(Sub::Run);
    let parsed = parse_flags(&mut parser, sub).map_err(|e| match explicit {
        None => command_after_options(e, &args),
        Some(_) => e,
    })?;
    match parsed {
        Parsed::Help(None) => Ok(Command::Help(help_text(explicit))),
        Parsed::Help(Some(verb)) => Ok(Command::Help(help::verb_help(verb))),
        Parsed::Version => Ok(Command::Version),
        Parsed::Flags(raw) => validate(sub, *raw),
    }
}

/// The next argument if it is a word rather than an option: the command
/// name is optional, so an option in its place means `run`.
fn next_word(parser: &mut lexopt::Parser) -> Result<Option<String>, Error> {
    let word = parser
        .raw_args()?
        .next_if(|arg| !arg.as_encoded_bytes().starts_with(b"-"));
    word.map(|w| {
        w.into_string()
            .map_err(|w| unknown_command(&w.to_string_lossy()))
    })
    .transpose()
}

/// `clawgate --dev status` runs `run` (an option first means the default
/// command) and then meets `status` as a stray argument: say that the
/// command goes first, with the line to type instead.
fn command_after_options(e: Error, args: &[OsString]) -> Error {
    let is_command = |a: &OsString| a.to_str().is_some_and(|a| Sub::from_name(a).is_some());
    let Some(i) = args.iter().position(is_command) else {
        return e;
    };
    let stray = format!("unexpected argument '{}' ", args[i].to_string_lossy());
    if !e.to_string().starts_with(&stray) {
        return e;
    }
    let mut line = vec![args[i].to_string_lossy()];
    line.extend(
        args.iter()
            .enumerate()
            .filter(|&(j, a)| j != i && !(j == 0 && a == "gateway"))
            .map(|(_, a)| a.to_string_lossy()),
    );
    Error::usage(format!(
        "{e} (options go after the command: 'clawgate {}')",
        line.join(" ")
    ))
}

fn unknown_command(name: &str) -> Error {
    Error::usage(format!("unknown command '{name}' (see 'clawgate --help')"))
}

fn parse_help(mut parser: lexopt::Parser) -> Result<Command, Error> {
    use lexopt::Arg::{Long, Short, Value};
    let mut topic = None;
    let mut verb = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => {}
            Value(v) if topic.is_none() => topic = Some(v.to_string_lossy().into_owned()),
            Value(v)
                if verb.is_none()
                    && matches!(topic.as_deref(), Some("devices" | "nodes" | "sessions")) =>
            {
                let sub = Sub::from_name(topic.as_deref().unwrap_or_default());
                verb = Some(pairing::verb(sub.expect("a command with actions"), &v)?);
            }
            Value(v) => return Err(unexpected_argument(&v, "help")),
            Short(c) => return Err(unknown_option(&format!("-{c}"), "help")),
            Long(name) => return Err(unknown_option(&format!("--{name}"), "help")),
        }
    }
    if let Some(verb) = verb {
        return Ok(Command::Help(help::verb_help(verb)));
    }
    match topic.as_deref() {
        None | Some("help" | "gateway") => Ok(Command::Help(help_text(None))),
        Some(name) if Sub::from_name(name).is_some() => Ok(Command::Help(help_text(Some(name)))),
        Some(name) => Err(unknown_command(name)),
    }
}

fn unknown_option(flag: &str, cmd: &str) -> Error {
    Error::usage(format!("unknown option '{flag}' for 'clawgate {cmd}'"))
}

fn unexpected_argument(value: &OsString, cmd: &str) -> Error {
    let value = value.to_string_lossy();
    Error::usage(format!(
        "unexpected argument '{value}' for 'clawgate {cmd}'"
    ))
}

/// Phase one.
fn parse_flags(parser: &mut lexopt::Parser, sub: Sub) -> Result<Parsed, Error> {
    use lexopt::Arg::{Long, Short, Value};
    let mut raw = Raw::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help(raw.verb)),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Short('v') if sub == Sub::Run => raw.verbose = true,
            Long(name) if sub.accepts(name) => {
                // `name` borrows the parser, which reading the value needs.
                let name = name.to_owned();
                if !set_flag(&mut raw, sub, &name, parser)? {
                    return Err(unknown_option(&format!("--{name}"), &raw.command(sub)));
                }
            }
            Value(v) if sub == Sub::Call && raw.method.is_none() => {
                let method = v.into_string().map_err(|v| {
                    let v = v.to_string_lossy();
                    Error::usage(format!("invalid method name '{v}': not valid UTF-8"))
                })?;
                raw.method = Some(method);
            }
            Value(v)
                if matches!(sub, Sub::Devices | Sub::Nodes | Sub::Sessions)
                    && raw.verb.is_none() =>
            {
                raw.verb = Some(pairing::verb(sub, &v)?);
            }
            Value(v) if raw.verb.is_some() && raw.operand.is_none() => {
                let verb = raw.verb.expect("checked");
                let operand = v
                    .into_string()
                    .map_err(|v| unexpected_argument(&v, &verb.command_line()))?;
                raw.operand = Some(operand);
            }
            Value(v) => return Err(unexpected_argument(&v, &raw.command(sub))),
            Short(c) => return Err(unknown_option(&format!("-{c}"), &raw.command(sub))),
            Long(name) => return Err(unknown_option(&format!("--{name}"), &raw.command(sub))),
        }
    }
    Ok(Parsed::Flags(Box::new(raw)))
}

/// Store one long flag; `false` when `name` is not a flag this parser knows.
fn set_flag(
    raw: &mut Raw,
    sub: Sub,
    name: &str,
    parser: &mut lexopt::Parser,
) -> Result<bool, Error> {
    match name {
        "config" => raw.location.config = Some(parser.value()?.into()),
        "state-dir" => raw.location.state_dir = Some(parser.value()?.into()),
        "dev" => raw.location.dev = switch(parser, name)?,
        "profile" => raw.location.profile = Some(value(parser, name, profile)?),
        "port" => {
            let for_ = match sub {
                Sub::Run => PortUse::Listen,
                Sub::Install => PortUse::Service,
                _ => PortUse::Connect,
            };
            raw.location.port = Some(value(parser, name, |s| port(s, for_))?);
        }
        "bind" => raw.bind = Some(value(parser, name, str::parse)?),
        "bind-host" => raw.bind_host = Some(value(parser, name, ip_addr)?),
        "auth" => raw.auth = Some(value(parser, name, str::parse)?),
        "token" => raw.token = Some(value(parser, name, secret)?),
        "password" => raw.password = Some(value(parser, name, secret)?),
        "url" => raw.url = Some(value(parser, name, url)?),
        "timeout" => raw.timeout_ms = Some(value(parser, name, timeout)?),
        "params" => raw.params = Some(value(parser, name, params)?),
        "allow-unconfigured" => raw.allow_unconfigured = switch(parser, name)?,
        "reset" => raw.reset = switch(parser, name)?,
        "force" => raw.force = switch(parser, name)?,
        "verbose" => raw.verbose = switch(parser, name)?,
        "json" => raw.json = switch(parser, name)?,
        "expect-final" => raw.expect_final = switch(parser, name)?,
        "no-probe" => raw.no_probe = switch(parser, name)?,
        "follow" => raw.follow = switch(parser, name)?,
        "limit" if sub == Sub::Sessions => raw.limit = Some(value(parser, name, agent::count)?),
        "limit" => raw.limit = Some(value(parser, name, limit)?),
        "system" => raw.system = switch(parser, name)?,
        "user" => raw.user = switch(parser, name)?,
        "init" => raw.init = Some(value(parser, name, str::parse)?),
        "role" => raw.role = Some(value(parser, name, word)?),
        "scope" => raw.scopes.push(value(parser, name, word)?),
        "node" => raw.node = Some(value(parser, name, nonempty)?),
        "command" => raw.command = Some(value(parser, name, word)?),
        "invoke-timeout" => raw.invoke_timeout_ms = Some(value(parser, name, timeout)?),
        "idempotency-key" => raw.idempotency_key = Some(value(parser, name, nonempty)?),
        _ => return agent::set_flag(&mut raw.agent, name, parser),
    }
    Ok(true)
}

/// Phase two: how the flags combine.
fn validate(sub: Sub, mut raw: Raw) -> Result<Command, Error> {
    if raw.location.dev && raw.location.profile.is_some() {
        return Err(Error::usage(
            "'--dev' and '--profile' cannot be used together",
        ));
    }
    match sub {
        Sub::Run => run_args(raw).map(Command::Run),
        Sub::Call => {
            let client = client_args(&mut raw)?;
            let method = match raw.method {
                Some(m) if !m.is_empty() => m,
                Some(_) => return Err(Error::usage("method name must not be empty")),
                None => {
                    return Err(Error::usage(
                        "missing method for 'clawgate call' (e.g. 'clawgate call health')",
                    ))
                }
            };
            Ok(Command::Call(CallArgs {
                client,
                method,
                params: raw.params,
                expect_final: raw.expect_final,
            }))
        }
        Sub::Health => client_args(&mut raw).map(Command::Health),
        Sub::Status => Ok(Command::Status(StatusArgs {
            client: client_args(&mut raw)?,
            no_probe: raw.no_probe,
        })),
        Sub::Probe => client_args(&mut raw).map(Command::Probe),
        Sub::Logs => Ok(Command::Logs(LogsArgs {
            client: client_args(&mut raw)?,
            follow: raw.follow,
            limit: raw.limit.unwrap_or(DEFAULT_LOGS_LIMIT),
        })),
        Sub::Devices => pairing::devices(raw).map(Command::Devices),
        Sub::Nodes => pairing::nodes(raw).map(Command::Nodes),
        Sub::Agent => agent::agent(raw).map(Command::Agent),
        Sub::Sessions => agent::sessions(raw).map(Command::Sessions),
        Sub::Install | Sub::Uninstall | Sub::Start | Sub::Stop | Sub::Restart => {
            let action = sub.service_action().expect("a service command");
            service_args(action, raw).map(Command::Service)
        }
    }
}

fn service_args(action: ServiceAction, raw: Raw) -> Result<ServiceArgs, Error> {
    let scope = match (raw.system, raw.user) {
        (true, true) => {
            return Err(Error::usage(
                "'--system' and '--user' cannot be used together",
            ))
        }
        (true, false) => Some(Scope::System),
        (false, true) => Some(Scope::User),
        (false, false) => None,
    };
    if raw.init == Some(Init::Procd) && scope == Some(Scope::User) {
        return Err(Error::usage(
            "'--user' needs systemd: procd only runs system services",
        ));
    }
    if let Some(t) = &raw.token {
        service_token(t)?;
    }
    Ok(ServiceArgs {
        action,
        scope,
        init: raw.init,
        port: raw.location.port,
        token: raw.token,
        force: raw.force,
        json: raw.json,
    })
}

/// The token goes into `gateway.env`, which systemd's `EnvironmentFile=`
/// and the procd script's `env` parse with quoting rules of their own:
/// only characters that mean nothing to either get through, so the
/// gateway sees exactly the token that was typed.
fn service_token(t: &str) -> Result<(), Error> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._~+/=:@%,-".contains(c);
    if t.chars().all(safe) {
        Ok(())
    } else {
        Err(Error::usage(
            "invalid value for '--token': a service token may hold only letters, digits and ._~+/=:@%,- (for example the output of 'openssl rand -hex 32')",
        ))
    }
}

fn run_args(raw: Raw) -> Result<RunArgs, Error> {
    if raw.reset && !raw.location.dev {
        // The reference CLI's exact words, which scripts may match on.
        return Err(Error::usage("Use --reset with --dev."));
    }
    let bind = match (raw.bind, raw.bind_host) {
        (None, Some(_)) => Some(BindMode::Custom),
        (Some(BindMode::Custom), None) => {
            return Err(Error::usage("'--bind custom' requires '--bind-host'"));
        }
        (Some(mode), Some(_)) if mode != BindMode::Custom => {
            return Err(Error::usage(format!(
                "'--bind-host' requires '--bind custom' (got '--bind {mode}')"
            )));
        }
        (bind, _) => bind,
    };
    Ok(RunArgs {
        location: raw.location,
        bind,
        bind_host: raw.bind_host,
        auth: raw.auth,
        token: raw.token,
        password: raw.password,
        allow_unconfigured: raw.allow_unconfigured,
        reset: raw.reset,
        force: raw.force,
        verbose: raw.verbose,
        json_logs: raw.json,
    })
}

fn client_args(raw: &mut Raw) -> Result<ClientArgs, Error> {
    if raw.token.is_some() && raw.password.is_some() {
        return Err(Error::usage(
            "'--token' and '--password' cannot be used together",
        ));
    }
    Ok(ClientArgs {
        location: std::mem::take(&mut raw.location),
        url: raw.url.take(),
        token: raw.token.take(),
        password: raw.password.take(),
        timeout_ms: raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        json: raw.json,
    })
}

pub use help::help_text;

#[cfg(test)]
mod tests;
