//! Configuration: the JSON file, the environment and the flags, resolved
//! into one `Settings` (for `run`) or `ClientTarget` (for the client
//! commands) that the rest of clawgate reads and never re-derives.
//!
//! Precedence is always flag > `CLAWGATE_*` > `OPENCLAW_*` > file > default.
//! The file is strict: unknown keys, wrong types and out-of-range limits are
//! hard errors that name the file (and the line and column where it can),
//! because a gateway that starts with a silently ignored security setting
//! is worse than one that refuses to start. This module reads at most two
//! small files (the config and the generated token) and never writes
//! anything, opens sockets or touches the process environment (it is given
//! an `Env` so tests can inject one). It also owns the types the rest of
//! clawgate configures itself with (`AuthMode`, `BindMode`, `Limits`, the
//! flags of `run`), where the installed services keep their files, and
//! which settings a reload may change in place (`classify`).

pub mod agents;
mod auth;
pub mod backend;
mod ceiling;
mod changes;
mod file;
mod flags;
pub mod http;
mod location;
mod types;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::error::Error;
pub use auth::check_stored_token;
use auth::resolve_auth;
pub use ceiling::{ceiling, fit_to_host, human, runs_ceiling, Host, IDEM_MAX_BYTES};
pub use changes::{classify, Changes};
pub use file::redact;
use file::{in_file, FileSettings, GatewayMode, Reader, DEFAULT_DEBOUNCE_MS, MINIMAL_CONFIG};
pub use flags::{ws_host_port, ClientArgs, Location, RunArgs};
use location::{config_path, read_token_file};
pub use location::{
    installed_system_service, is_openwrt, procd_service, state_dir, system_root,
    systemd_system_service, systemd_user_service, token_in_env_file, under, ServicePaths, ENV_FILE,
    PROCD_SCRIPT, TOKEN_VAR, UNIT,
};
pub use types::{
    AuthMode, BindMode, ClientTarget, Limits, LogSettings, ModelEntry, ReloadMode, Settings,
};

/// Read access to the environment, injectable so tests need not mutate the
/// process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A variable's value; an empty variable counts as unset, as `VAR= cmd`
/// is the shell's way of unsetting for one command.
fn var(env: Env, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

/// The name of the generated token file inside the state directory.
pub const TOKEN_FILE: &str = "gateway.token";
/// The name of the config file inside the state directory.
pub const CONFIG_FILE: &str = "clawgate.json";
pub const DEFAULT_PORT: u16 = 18789;
/// The `--dev` port, so a dev gateway can run beside the real one.
pub const DEV_PORT: u16 = 19001;
pub const DEFAULT_TICK_INTERVAL_MS: u64 = 30_000;

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
fn load(
    path: &Path,
    explicit: bool,
    env: Env,
    reader: Reader,
) -> Result<Option<FileSettings>, Error> {
    file::load(path, !explicit, env, reader)
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

/// Resolves flags, environment and config file into the settings of
/// `clawgate run`. Checks run in the order parse, start-up gate, bind/auth,
/// so the first error reported is the one to fix first.
pub fn resolve_run(args: &RunArgs, env: Env) -> Result<Settings, Error> {
    let loc = &args.location;
    let state_dir = state_dir(loc, env)?;
    let (config_path, explicit) = config_path(loc, env, &state_dir)?;
    let file = load(&config_path, explicit, env, Reader::Gateway)?;
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
        agents: file.agents,
        http: file.http,
        default_agent_id: file.default_agent_id.unwrap_or_else(|| "main".to_string()),
        main_key: file.main_key.unwrap_or_else(|| "main".to_string()),
        session_scope: file.session_scope.unwrap_or("per-sender").to_string(),
        reload_mode: file.reload_mode,
        reload_debounce_ms: file.reload_debounce_ms.unwrap_or(DEFAULT_DEBOUNCE_MS),
        restart_enabled: file.restart_enabled,
    })
}

/// What a config file that does not load means to a client command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenFile {
    /// An error (exit 78), unless the command line and the environment
    /// already say where to connect and with what: `--url`, or a port and
    /// a credential. A gateway keeps serving after a bad edit, and this is
    /// how to reach it then.
    Fails,
    /// Reported in `ClientTarget::config_error`; the rest is resolved
    /// without the file (`status`, which must still show what it can).
    Reported,
}

/// Resolves where a client command connects and with which credential.
/// With `--url` only flags and environment apply: the user pointed at some
/// other gateway, which must not be sent this host's secret. Reads at most
/// the config file and the token file, as it runs on every `clawgate call`.
pub fn resolve_client(
    args: &ClientArgs,
    env: Env,
    broken: BrokenFile,
) -> Result<ClientTarget, Error> {
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
        config_error: None,
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
    let file = match load(&target.config_path, explicit, env, Reader::Client) {
        Ok(file) => file.unwrap_or_default(),
        Err(e) => {
            let known_port = loc.port.is_some()
                || ["CLAWGATE_GATEWAY_PORT", "OPENCLAW_GATEWAY_PORT"]
                    .iter()
                    .any(|k| var(env, k).is_some());
            if broken == BrokenFile::Fails && !(known_port && given_by_user) {
                return Err(e);
            }
            target.config_error = Some(e.to_string());
            FileSettings::default()
        }
    };
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

#[cfg(test)]
mod tests;
