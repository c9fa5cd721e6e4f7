//! Configuration: the JSON file, the environment and the flags, resolved
//! into one `Settings` (for `run`) or `ClientTarget` (for the client
//! commands) that the rest of clawgate reads and never re-derives.
//!
//! Precedence is always flag > `CLAWGATE_*` > `OPENCLAW_*` > file > default.
//! The file is strict: unknown keys, wrong types and out-of-range limits are
//! hard errors that name the file (and the line and column where it can),
//! because a gateway that starts with a silently ignored security setting
//! is worse than one that refuses to start. This module reads at most two small files and never
//! writes anything, opens sockets or touches the process environment (it is
//! given an `Env` so tests can inject one).

mod file;

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::cli::{AuthMode, BindMode, ClientArgs, Location, RunArgs};
use crate::error::{io_message, Error};
pub use file::ReloadMode;
use file::{in_file, FileSettings, GatewayMode, DEFAULT_DEBOUNCE_MS, MINIMAL_CONFIG};

pub use file::redact;

/// Read access to the environment, injectable so tests need not mutate the
/// process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Every limit of LIMITS.md, configurable under `gateway.limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_unauth_per_ip: usize,
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

impl Default for Limits {
    /// The defaults of LIMITS.md, sized for a 64 MB router.
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            max_unauth_per_ip: 32,
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
}

/// The name of the generated token file inside the state directory.
pub const TOKEN_FILE: &str = "gateway.token";
/// The name of the config file inside the state directory.
pub const CONFIG_FILE: &str = "clawgate.json";
pub const DEFAULT_PORT: u16 = 18789;
/// The `--dev` port, so a dev gateway can run beside the real one.
pub const DEV_PORT: u16 = 19001;
pub const DEFAULT_TICK_INTERVAL_MS: u64 = 30_000;

// ---- where the files are ------------------------------------------------

/// A variable's value; an empty variable counts as unset, as `VAR= cmd`
/// is the shell's way of unsetting for one command.
fn var(env: Env, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

fn home(env: Env) -> Result<PathBuf, Error> {
    var(env, "HOME").map(PathBuf::from).ok_or_else(|| {
        Error::config("cannot find the home directory: set HOME or pass --state-dir")
    })
}

/// A path from the environment, with a leading `~` expanded because
/// systemd's `Environment=` and Docker's `-e` do not expand it.
fn var_path(env: Env, name: &str) -> Result<Option<PathBuf>, Error> {
    let Some(v) = var(env, name) else {
        return Ok(None);
    };
    if v == "~" {
        return home(env).map(Some);
    }
    match v.strip_prefix("~/") {
        Some(rest) => Ok(Some(home(env)?.join(rest))),
        None => Ok(Some(PathBuf::from(v))),
    }
}

/// `--state-dir` > `--dev` > `--profile` > `CLAWGATE_STATE_DIR` >
/// `OPENCLAW_STATE_DIR` > `~/.clawgate`.
pub fn state_dir(loc: &Location, env: Env) -> Result<PathBuf, Error> {
    if let Some(dir) = &loc.state_dir {
        return Ok(dir.clone());
    }
    if loc.dev {
        return Ok(home(env)?.join(".clawgate-dev"));
    }
    if let Some(p) = &loc.profile {
        // The name becomes part of a path: no separators, no `..`.
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(Error::usage(format!(
                "invalid profile name '{p}': use letters, digits, '-' and '_'"
            )));
        }
        return Ok(home(env)?.join(format!(".clawgate-{p}")));
    }
    for name in ["CLAWGATE_STATE_DIR", "OPENCLAW_STATE_DIR"] {
        if let Some(dir) = var_path(env, name)? {
            return Ok(dir);
        }
    }
    Ok(home(env)?.join(".clawgate"))
}

/// The config path and whether the user named it explicitly.
fn config_path(loc: &Location, env: Env, state_dir: &Path) -> Result<(PathBuf, bool), Error> {
    if let Some(path) = &loc.config {
        return Ok((path.clone(), true));
    }
    for name in ["CLAWGATE_CONFIG_PATH", "OPENCLAW_CONFIG_PATH"] {
        if let Some(path) = var_path(env, name)? {
            return Ok((path, true));
        }
    }
    Ok((state_dir.join(CONFIG_FILE), false))
}

fn port(loc: &Location, env: Env, file: Option<u16>) -> Result<u16, Error> {
    if let Some(p) = loc.port {
        return Ok(p);
    }
    for name in ["CLAWGATE_GATEWAY_PORT", "OPENCLAW_GATEWAY_PORT"] {
        if let Some(v) = var(env, name) {
            return v
                .trim()
                .parse()
                .map_err(|_| Error::config(format!("{name}: invalid port '{v}'")));
        }
    }
    Ok(file.unwrap_or(if loc.dev { DEV_PORT } else { DEFAULT_PORT }))
}

/// `--verbose` (debug) > `CLAWGATE_LOG_LEVEL` > `OPENCLAW_LOG_LEVEL` >
/// `logging.level` > info.
fn log_level(
    verbose: bool,
    env: Env,
    file: Option<log::LevelFilter>,
) -> Result<log::LevelFilter, Error> {
    if verbose {
        return Ok(log::LevelFilter::Debug);
    }
    for name in ["CLAWGATE_LOG_LEVEL", "OPENCLAW_LOG_LEVEL"] {
        if let Some(v) = var(env, name) {
            return match v.trim().to_ascii_lowercase().as_str() {
                "error" => Ok(log::LevelFilter::Error),
                "warn" => Ok(log::LevelFilter::Warn),
                "info" => Ok(log::LevelFilter::Info),
                "debug" => Ok(log::LevelFilter::Debug),
                "trace" => Ok(log::LevelFilter::Trace),
                _ => Err(Error::config(format!(
                    "{name}: invalid level '{v}': expected one of error, warn, info, debug, trace"
                ))),
            };
        }
    }
    Ok(file.unwrap_or(log::LevelFilter::Info))
}

// ---- secrets ----------------------------------------------------------------

struct Secret {
    value: String,
    source: &'static str,
}

const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "your-token",
    "your_token",
    "<token>",
    "token",
    "password",
    "secret",
    "xxx",
    "your-password",
    "your_password",
    "<password>",
    "<secret>",
];

/// The first of flag, `CLAWGATE_*`, `OPENCLAW_*`, file that is set.
fn secret(
    flag: (&'static str, Option<&str>),
    vars: [&'static str; 2],
    file: Option<&str>,
    env: Env,
) -> Option<Secret> {
    let found = |value: String, source| Some(Secret { value, source });
    if let (source, Some(v)) = flag {
        return found(v.to_string(), source);
    }
    for name in vars {
        if let Some(v) = var(env, name) {
            return found(v, name);
        }
    }
    file.and_then(|v| found(v.to_string(), "config"))
}

/// Refuses blank and placeholder secrets: a gateway "protected" by
/// `changeme` is an open gateway with a false sense of safety.
fn check_secret(s: &Secret, key: &str, path: &Path) -> Result<(), Error> {
    let trimmed = s.value.trim();
    let problem = if trimmed.is_empty() {
        "is blank".to_string()
    } else if PLACEHOLDERS.iter().any(|p| p.eq_ignore_ascii_case(trimmed)) {
        format!("is a placeholder ('{trimmed}'), not a secret: use a long random value such as the output of 'openssl rand -hex 32'")
    } else {
        return Ok(());
    };
    Err(match s.source {
        "config" => in_file(path, format!("'gateway.auth.{key}' {problem}")),
        source => Error::config(format!("{source}: the {key} {problem}")),
    })
}

fn bind_name(b: BindMode) -> &'static str {
    match b {
        BindMode::Loopback => "loopback",
        BindMode::Lan => "lan",
        BindMode::Tailnet => "tailnet",
        BindMode::Auto => "auto",
        BindMode::Custom => "custom",
    }
}

/// Whether the bind can be reached from other hosts. `auto` prefers
/// loopback, so it is treated as loopback.
fn is_exposed(bind: BindMode, host: Option<IpAddr>) -> bool {
    match bind {
        BindMode::Lan | BindMode::Tailnet => true,
        BindMode::Custom => !host.is_some_and(|h| h.is_loopback()),
        BindMode::Loopback | BindMode::Auto => false,
    }
}

// ---- resolution -------------------------------------------------------------

/// The file, or `None` when there is none. A missing file is an error only
/// when the user named it (flag or environment): a typo in `--config` must
/// not quietly start an unconfigured gateway.
fn load(path: &Path, explicit: bool) -> Result<Option<FileSettings>, Error> {
    file::load(path, !explicit)
}

/// The start-up gate: a gateway starts only from a config that says it is a
/// local gateway, so that installing the binary does not open a port.
fn gate(args: &RunArgs, path: &Path, file: Option<&FileSettings>) -> Result<(), Error> {
    if args.allow_unconfigured || args.location.dev {
        return Ok(());
    }
    let path = path.display();
    let escape = "or pass --allow-unconfigured (or --dev for a throwaway dev gateway)";
    let msg = match file.map(|f| f.mode) {
        Some(Some(GatewayMode::Local)) => return Ok(()),
        None => format!(
            "no configuration at '{path}': create it with {MINIMAL_CONFIG} to set gateway.mode to \"local\", {escape}"
        ),
        Some(Some(GatewayMode::Remote)) => format!(
            "gateway.mode is \"remote\" in '{path}' and clawgate only runs local gateways: set it to \"local\", {escape}"
        ),
        Some(None) => format!("set gateway.mode to \"local\" in '{path}', {escape}"),
    };
    Err(Error::config(format!("gateway start blocked: {msg}")))
}

fn resolve_bind(
    args: &RunArgs,
    path: &Path,
    file: &FileSettings,
) -> Result<(BindMode, Option<IpAddr>), Error> {
    // `--bind-host` alone means "bind there", i.e. custom, whatever the
    // file says; with a different `--bind` it contradicts the command line.
    let bind = match (args.bind, args.bind_host) {
        (Some(b), Some(_)) if b != BindMode::Custom => {
            return Err(Error::usage(format!(
                "--bind-host only applies to --bind custom, not '{}'",
                bind_name(b)
            )));
        }
        (Some(b), _) => b,
        (None, Some(_)) => BindMode::Custom,
        (None, None) => file.bind.unwrap_or(BindMode::Loopback),
    };
    if bind != BindMode::Custom {
        return Ok((bind, None));
    }
    match args.bind_host.or(file.custom_bind_host) {
        Some(host) => Ok((bind, Some(host))),
        None if args.bind.is_none() => Err(in_file(
            path,
            "'gateway.bind' is \"custom\" but no host is set: set 'gateway.customBindHost' or pass --bind-host",
        )),
        None => Err(Error::config(format!(
            "bind mode 'custom' needs a host: pass --bind-host or set 'gateway.customBindHost' in '{}'",
            path.display()
        ))),
    }
}

struct Auth {
    mode: AuthMode,
    token: Option<String>,
    password: Option<String>,
    source: &'static str,
}

fn resolve_auth(
    args: &RunArgs,
    env: Env,
    path: &Path,
    file: &FileSettings,
    exposed: Option<BindMode>,
) -> Result<Auth, Error> {
    let token = secret(
        ("--token", args.token.as_deref()),
        ["CLAWGATE_GATEWAY_TOKEN", "OPENCLAW_GATEWAY_TOKEN"],
        file.token.as_deref(),
        env,
    );
    let password = secret(
        ("--password", args.password.as_deref()),
        ["CLAWGATE_GATEWAY_PASSWORD", "OPENCLAW_GATEWAY_PASSWORD"],
        file.password.as_deref(),
        env,
    );
    let inferred = if password.is_some() && token.is_none() {
        AuthMode::Password
    } else {
        AuthMode::Token
    };
    let mode = args.auth.or(file.auth_mode).unwrap_or(inferred);
    // Only the secret the mode uses is kept (and checked): the server must
    // not accept a credential the operator did not mean to enable.
    let (token, password) = match mode {
        AuthMode::Token => (token, None),
        AuthMode::Password => (None, password),
        AuthMode::None => (None, None),
    };
    if let Some(t) = &token {
        check_secret(t, "token", path)?;
    }
    if let Some(p) = &password {
        check_secret(p, "password", path)?;
    }
    if let (Some(bind), None, None) = (exposed, &token, &password) {
        let mut msg = format!(
            "Refusing to bind gateway to {} without auth. Set a secret with --token or --password, CLAWGATE_GATEWAY_TOKEN or CLAWGATE_GATEWAY_PASSWORD, or gateway.auth.token in '{}'.",
            bind_name(bind),
            path.display()
        );
        match mode {
            AuthMode::None => msg.push_str(" Auth mode 'none' is only allowed on a loopback bind."),
            AuthMode::Password => msg.push_str(" The auth mode is 'password', so set a password."),
            AuthMode::Token => {}
        }
        return Err(Error::config(msg));
    }
    let source = match (mode, &token, &password) {
        (AuthMode::Token, Some(t), _) => t.source,
        (AuthMode::Token, None, _) => "generated",
        (AuthMode::Password, _, Some(p)) => p.source,
        (AuthMode::Password, _, None) => {
            return Err(Error::config(format!(
                "auth mode 'password' needs a password: pass --password, set CLAWGATE_GATEWAY_PASSWORD, or set 'gateway.auth.password' in '{}'",
                path.display()
            )));
        }
        (AuthMode::None, _, _) => "none",
    };
    Ok(Auth {
        mode,
        token: token.map(|s| s.value),
        password: password.map(|s| s.value),
        source,
    })
}

/// Resolves flags, environment and config file into the settings of
/// `clawgate run`. Checks run in the order parse, start-up gate, bind/auth,
/// so the first error reported is the one to fix first.
pub fn resolve_run(args: &RunArgs, env: Env) -> Result<Settings, Error> {
    let loc = &args.location;
    let state_dir = state_dir(loc, env)?;
    let (config_path, explicit) = config_path(loc, env, &state_dir)?;
    let file = load(&config_path, explicit)?;
    gate(args, &config_path, file.as_ref())?;
    let file = file.unwrap_or_default();
    let port = port(loc, env, file.port)?;
    let (bind, bind_host) = resolve_bind(args, &config_path, &file)?;
    let exposed = is_exposed(bind, bind_host).then_some(bind);
    let auth = resolve_auth(args, env, &config_path, &file, exposed)?;
    let level = log_level(args.verbose, env, file.log_level)?;
    Ok(Settings {
        config_path,
        config_raw: file.raw,
        config_json: file.json,
        state_dir,
        dev: loc.dev,
        reset: args.reset,
        force: args.force,
        port,
        bind,
        bind_host,
        auth_mode: auth.mode,
        token: auth.token,
        password: auth.password,
        secret_source: auth.source,
        tick_interval_ms: file.tick_interval_ms.unwrap_or(DEFAULT_TICK_INTERVAL_MS),
        limits: file.limits,
        allowed_origins: file.allowed_origins,
        allowed_hosts: file.allowed_hosts,
        trusted_proxies: file.trusted_proxies,
        log: LogSettings {
            level,
            file: file.log_file,
            json: args.json_logs,
        },
        models: file.models,
        default_agent_id: file.default_agent_id.unwrap_or_else(|| "main".to_string()),
        main_key: file.main_key.unwrap_or_else(|| "main".to_string()),
        session_scope: file.session_scope.unwrap_or("per-sender").to_string(),
        reload_mode: file.reload_mode,
        reload_debounce_ms: file.reload_debounce_ms.unwrap_or(DEFAULT_DEBOUNCE_MS),
        restart_enabled: file.restart_enabled,
    })
}

/// Resolves where a client command connects and with which credential.
/// With `--url` only flags and environment apply: the user pointed at some
/// other gateway, which must not be sent this host's secret. Reads at most
/// the config file and the token file, as it runs on every `clawgate call`.
pub fn resolve_client(args: &ClientArgs, env: Env) -> Result<ClientTarget, Error> {
    let loc = &args.location;
    let state_dir = state_dir(loc, env)?;
    let (config_path, explicit) = config_path(loc, env, &state_dir)?;
    let mut target = ClientTarget {
        url: String::new(),
        token: None,
        password: None,
        config_path,
        state_dir,
        secret_source: "none",
    };
    let levels = [
        (
            "--token",
            "--password",
            args.token.clone(),
            args.password.clone(),
        ),
        client_env(env, "CLAWGATE_GATEWAY_TOKEN", "CLAWGATE_GATEWAY_PASSWORD"),
        client_env(env, "OPENCLAW_GATEWAY_TOKEN", "OPENCLAW_GATEWAY_PASSWORD"),
    ];
    let given = levels.into_iter().find(|l| l.2.is_some() || l.3.is_some());
    let given_by_user = given.is_some();
    if let Some((token_source, password_source, token, password)) = given {
        target.secret_source = if token.is_some() {
            token_source
        } else {
            password_source
        };
        target.token = token;
        target.password = password;
    }
    if let Some(url) = &args.url {
        target.url = url.clone();
        return Ok(target);
    }
    let file = load(&target.config_path, explicit)?.unwrap_or_default();
    let port = port(loc, env, file.port)?;
    target.url = format!("ws://{}", SocketAddr::new(client_host(&file), port));
    if given_by_user {
        return Ok(target);
    }
    let inferred = if file.password.is_some() && file.token.is_none() {
        AuthMode::Password
    } else {
        AuthMode::Token
    };
    match file.auth_mode.unwrap_or(inferred) {
        AuthMode::None => {}
        AuthMode::Password => {
            if let Some(p) = file.password {
                target.password = Some(p);
                target.secret_source = "config";
            }
        }
        AuthMode::Token => {
            if let Some(t) = file.token {
                target.token = Some(t);
                target.secret_source = "config";
            } else if let Some(t) = read_token_file(&target.state_dir)? {
                target.token = Some(t);
                target.secret_source = "token file";
            }
        }
    }
    Ok(target)
}

type Credential = (&'static str, &'static str, Option<String>, Option<String>);

fn client_env(env: Env, token: &'static str, password: &'static str) -> Credential {
    (token, password, var(env, token), var(env, password))
}

/// The address a local client reaches the configured gateway at. Loopback,
/// auto and lan (every address) all answer on 127.0.0.1. A tailnet gateway
/// listens only on its tailnet address, which finding would take the
/// interface list: reach it with `--url`.
fn client_host(file: &FileSettings) -> IpAddr {
    match (file.bind, file.custom_bind_host) {
        (Some(BindMode::Custom), Some(h)) if !h.is_unspecified() => h,
        (Some(BindMode::Custom), Some(IpAddr::V6(_))) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

/// The token the gateway generated on first start; missing means none yet.
fn read_token_file(state_dir: &Path) -> Result<Option<String>, Error> {
    let path = state_dir.join(TOKEN_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::config(format!(
            "'{}': {}",
            path.display(),
            io_message(&e)
        ))),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
