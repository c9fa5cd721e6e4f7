//! Command-line parsing: raw arguments in, a typed `Command` out.
//!
//! Parsing runs in two phases, as in ripgrep and lexopt's cargo example:
//! `lexopt` first turns the arguments into `Raw`, plain data where each
//! value is checked on its own and a repeated flag's last value wins; then
//! `validate` checks how the flags combine and builds the `Command` that
//! `main` dispatches. Nothing here reads the environment, touches a file or
//! prints: defaults that depend on the environment or the config belong to
//! `config`, and only `main` writes to the terminal. The help texts are
//! hand-written and live here too, so the flag table, the parser and the
//! help can be checked against each other (and against `man/clawgate.1` by
//! the integration tests).

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::Error;

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
pub enum Command {
    Run(RunArgs),
    Call(CallArgs),
    Health(ClientArgs),
    Status(StatusArgs),
    Probe(ClientArgs),
    /// Help text to print on stdout (exit 0); it ends with a newline.
    Help(String),
    Version,
}

/// The subcommands, in the order the top-level help lists them.
pub const COMMANDS: &[&str] = &["run", "call", "health", "status", "probe"];

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Run,
    Call,
    Health,
    Status,
    Probe,
}

impl Sub {
    /// In the order of `COMMANDS`, so that list stays the one source of names.
    const ALL: [Sub; 5] = [Sub::Run, Sub::Call, Sub::Health, Sub::Status, Sub::Probe];

    fn from_name(name: &str) -> Option<Sub> {
        let i = COMMANDS.iter().position(|c| *c == name)?;
        Sub::ALL.get(i).copied()
    }

    fn name(self) -> &'static str {
        COMMANDS[self as usize]
    }

    fn accepts(self, flag: &str) -> bool {
        let own: &[&str] = match self {
            Sub::Run => RUN_FLAGS,
            Sub::Call => &["params", "expect-final"],
            Sub::Status => &["no-probe"],
            Sub::Health | Sub::Probe => &[],
        };
        LOCATION_FLAGS.contains(&flag)
            || own.contains(&flag)
            || (self != Sub::Run && CLIENT_FLAGS.contains(&flag))
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
}

/// How phase one ended. `--help` and `--version` stop parsing and skip phase
/// two, so `clawgate --reset --help` explains `--reset` instead of failing.
enum Parsed {
    Flags(Box<Raw>),
    Help,
    Version,
}

/// Parse the arguments after argv[0].
pub fn parse<I>(args: I) -> Result<Command, Error>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = lexopt::Parser::from_args(args);
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
    match parse_flags(&mut parser, sub)? {
        Parsed::Help => Ok(Command::Help(help_text(explicit))),
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

fn unknown_command(name: &str) -> Error {
    Error::usage(format!("unknown command '{name}' (see 'clawgate --help')"))
}

fn parse_help(mut parser: lexopt::Parser) -> Result<Command, Error> {
    use lexopt::Arg::{Long, Short, Value};
    let mut topic = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => {}
            Value(v) if topic.is_none() => topic = Some(v.to_string_lossy().into_owned()),
            Value(v) => return Err(unexpected_argument(&v, "help")),
            Short(c) => return Err(unknown_option(&format!("-{c}"), "help")),
            Long(name) => return Err(unknown_option(&format!("--{name}"), "help")),
        }
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
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Short('v') if sub == Sub::Run => raw.verbose = true,
            Long(name) if sub.accepts(name) => {
                // `name` borrows the parser, which reading the value needs.
                let name = name.to_owned();
                if !set_flag(&mut raw, &name, parser)? {
                    return Err(unknown_option(&format!("--{name}"), sub.name()));
                }
            }
            Value(v) if sub == Sub::Call && raw.method.is_none() => {
                let method = v.into_string().map_err(|v| {
                    let v = v.to_string_lossy();
                    Error::usage(format!("invalid method name '{v}': not valid UTF-8"))
                })?;
                raw.method = Some(method);
            }
            Value(v) => return Err(unexpected_argument(&v, sub.name())),
            Short(c) => return Err(unknown_option(&format!("-{c}"), sub.name())),
            Long(name) => return Err(unknown_option(&format!("--{name}"), sub.name())),
        }
    }
    Ok(Parsed::Flags(Box::new(raw)))
}

/// Store one long flag; `false` when `name` is not a flag this parser knows.
fn set_flag(raw: &mut Raw, name: &str, parser: &mut lexopt::Parser) -> Result<bool, Error> {
    match name {
        "config" => raw.location.config = Some(parser.value()?.into()),
        "state-dir" => raw.location.state_dir = Some(parser.value()?.into()),
        "dev" => raw.location.dev = switch(parser, name)?,
        "profile" => raw.location.profile = Some(value(parser, name, profile)?),
        "port" => raw.location.port = Some(value(parser, name, port)?),
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
        _ => return Ok(false),
    }
    Ok(true)
}

/// A flag without a value; `--dev=yes` is refused rather than ignored.
fn switch(parser: &mut lexopt::Parser, name: &str) -> Result<bool, Error> {
    match parser.optional_value() {
        None => Ok(true),
        Some(v) => {
            let v = v.to_string_lossy();
            Err(Error::usage(format!(
                "option '--{name}' takes no value (got '{v}')"
            )))
        }
    }
}

/// Read a flag's value and convert it; `convert` gives only the reason, and
/// the message names the value and the flag.
fn value<T>(
    parser: &mut lexopt::Parser,
    name: &str,
    convert: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, Error> {
    let v = parser.value()?;
    let invalid =
        |v: &str, why: &str| Error::usage(format!("invalid value '{v}' for '--{name}': {why}"));
    let text = v
        .to_str()
        .ok_or_else(|| invalid(&v.to_string_lossy(), "not valid UTF-8"))?;
    convert(text).map_err(|why| invalid(text, &why))
}

fn port(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| "expected a port number from 0 to 65535".into())
}

fn ip_addr(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| "expected a numeric IPv4 or IPv6 address".into())
}

/// Profile names become part of a directory name (`~/.clawgate-NAME`), so
/// nothing that could climb out of the home directory gets through.
fn profile(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("expected 1 to 64 letters, digits, '-' or '_'".into())
    }
}

/// An empty secret would silently mean "no auth", so it is refused.
fn secret(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

fn url(s: &str) -> Result<String, String> {
    if s.starts_with("ws://") || s.starts_with("wss://") {
        Ok(s.to_owned())
    } else {
        Err("expected a ws:// or wss:// URL".into())
    }
}

fn timeout(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(ms),
        _ => Err("expected a number of milliseconds greater than 0".into()),
    }
}

fn params(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))
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

pub use crate::help::help_text;

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
