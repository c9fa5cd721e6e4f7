//! The config file format: its schema, strict parsing with `PATH:LINE:COL`
//! errors, the range checks serde cannot express, and redaction for showing
//! it back. It turns a file into `FileSettings` and knows nothing of flags
//! or the environment; a missing file is its caller's decision.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::path::Path;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

mod agents;
mod checks;
mod http;
mod text;
mod wording;

use agents::{agent_settings, AgentsFile, ModelsFile, ScopeFile, SessionFile};
use checks::{check, limits};
use http::{http_settings, ControlUiFile, HooksFile, HttpFile};
use text::{substitute, values};
use wording::json_error;

use super::agents::AgentSettings;
use super::http::HttpSettings;
use super::{AuthMode, BindMode, Env, Limits, ModelEntry, ReloadMode};
use crate::error::{io_message, Error};

/// A config file is a few KiB; refusing big ones keeps a mistake such as
/// `--config /dev/zero` from eating a router's memory.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// The smallest file that lets a gateway start, quoted in hints.
pub const MINIMAL_CONFIG: &str = r#"{"gateway":{"mode":"local"}}"#;

/// How long a changed file must stay unchanged before it is read, so an
/// editor's write-in-several-steps is read once, whole.
pub const DEFAULT_DEBOUNCE_MS: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    Local,
    Remote,
}

/// What the file says, checked. `Default` is "no file".
#[derive(Debug, Default)]
pub struct FileSettings {
    pub raw: Option<String>,
    pub json: Option<Value>,
    pub mode: Option<GatewayMode>,
    pub port: Option<u16>,
    pub bind: Option<BindMode>,
    pub custom_bind_host: Option<IpAddr>,
    pub auth_mode: Option<AuthMode>,
    pub token: Option<String>,
    pub password: Option<String>,
    pub tick_interval_ms: Option<u64>,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub trusted_proxies: Vec<IpAddr>,
    pub limits: Limits,
    pub log_level: Option<log::LevelFilter>,
    pub log_file: bool,
    pub models: Vec<ModelEntry>,
    pub agents: AgentSettings,
    pub http: HttpSettings,
    pub default_agent_id: Option<String>,
    pub main_key: Option<String>,
    pub session_scope: Option<&'static str>,
    pub reload_mode: ReloadMode,
    pub reload_debounce_ms: Option<u64>,
    pub restart_enabled: bool,
}

// ---- the schema -------------------------------------------------------------

/// A struct that must be written as a JSON object. serde's derive also
/// accepts the fields as an array in declaration order (`["local", 18789]`),
/// which would make the format looser than documented.
#[derive(Default)]
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectOnly(PhantomData)).map(Obj)
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct FileConfig {
    gateway: Obj<GatewayFile>,
    logging: Obj<LoggingFile>,
    models: Obj<ModelsFile>,
    agents: Obj<AgentsFile>,
    session: Obj<SessionFile>,
    commands: Obj<CommandsFile>,
    hooks: Obj<HooksFile>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct CommandsFile {
    restart: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct ReloadFile {
    mode: Option<ReloadModeFile>,
    debounce_ms: Option<u64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ReloadModeFile {
    Off,
    Hot,
    Restart,
    Hybrid,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct GatewayFile {
    mode: Option<ModeFile>,
    port: Option<u16>,
    bind: Option<BindFile>,
    custom_bind_host: Option<IpAddr>,
    auth: Obj<AuthFile>,
    tick_interval_ms: Option<u64>,
    control_ui: Obj<ControlUiFile>,
    allowed_hosts: Vec<String>,
    trusted_proxies: Vec<IpAddr>,
    limits: Obj<LimitsFile>,
    reload: Obj<ReloadFile>,
    http: Obj<HttpFile>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ModeFile {
    Local,
    Remote,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum BindFile {
    Loopback,
    Lan,
    Tailnet,
    Auto,
    Custom,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum AuthModeFile {
    Token,
    Password,
    None,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct AuthFile {
    mode: Option<AuthModeFile>,
    token: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct LimitsFile {
    max_connections: Option<u64>,
    max_unauth_per_ip: Option<u64>,
    max_unauth_total: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
    max_head_bytes: Option<u64>,
    max_headers: Option<u64>,
    head_timeout_ms: Option<u64>,
    max_body_bytes: Option<u64>,
    body_timeout_ms: Option<u64>,
    keep_alive_idle_ms: Option<u64>,
    handshake_timeout_ms: Option<u64>,
    max_pre_hello_frame_bytes: Option<u64>,
    max_pre_hello_frames: Option<u64>,
    max_payload: Option<u64>,
    max_buffered_bytes: Option<u64>,
    thread_stack_bytes: Option<u64>,
    auth_max_failures: Option<u64>,
    auth_window_ms: Option<u64>,
    auth_lockout_ms: Option<u64>,
    max_unauthorized_calls: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct LoggingFile {
    level: Option<LevelFile>,
    file: Option<bool>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum LevelFile {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

// ---- loading ----------------------------------------------------------------

/// Who reads the file, which decides what an unset `${NAME}` in a secret
/// means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The gateway: every name must be set, since a secret left as
    /// written would be used as one.
    Gateway,
    /// A client command, whose environment may lack the gateway's
    /// secrets: a secret naming an unset variable counts as not in the
    /// file (the credential then comes from the flags, the environment,
    /// `gateway.env` or the token file). Elsewhere it is still an error.
    Client,
}

/// Keys whose values are secrets, in any case and at any depth.
const SECRET_KEYS: [&str; 4] = ["token", "password", "apikey", "secret"];

/// Whether the value at a key path (`gateway.auth.token`) is a secret.
fn is_secret(path: &str) -> bool {
    let key = path.rsplit('.').next().unwrap_or(path);
    SECRET_KEYS.iter().any(|s| key.eq_ignore_ascii_case(s))
}

/// Reads and checks the file at `path`, with `${NAME}` in its strings
/// taken from `env`; `Ok(None)` when it does not exist and `missing_ok`.
pub fn load(
    path: &Path,
    missing_ok: bool,
    env: Env,
    reader: Reader,
) -> Result<Option<FileSettings>, Error> {
    let raw = match read_limited(path) {
        Ok(text) => text,
        Err(e) if missing_ok && e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            let msg = format!("'{}': {}", path.display(), io_message(&e));
            return Err(Error::config(msg));
        }
    };
    parse(path, raw, env, reader).map(Some)
}

fn read_limited(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(io::Error::other("larger than 1 MiB"));
    }
    Ok(text)
}

/// Parses and checks a file's text; `path` is only for messages.
///
/// In order: the JSON syntax; `${NAME}` in every string value, from `env`
/// (the reference gateway's form, so `"${OPENCLAW_GATEWAY_TOKEN}"` keeps
/// a secret out of the file); then the strict schema on the substituted
/// text. The plain parse is kept as written, references and all, for
/// `config.get`, so no substituted secret can show through a key that
/// `redact` does not know.
pub fn parse(path: &Path, raw: String, env: Env, reader: Reader) -> Result<FileSettings, Error> {
    if raw.trim().is_empty() {
        let msg = format!("empty file: a minimal configuration is {MINIMAL_CONFIG}");
        return Err(in_file(path, msg));
    }
    let json: Value = serde_json::from_str(&raw).map_err(|e| json_error(path, &e, &raw, None))?;
    let spans = values(&raw);
    let absent = |key: &str| reader == Reader::Client && is_secret(key);
    let (text, edits) = substitute(&raw, &spans, env, absent).map_err(|u| {
        in_file(
            path,
            format!("'{}' uses ${{{}}}, which is not set", u.path, u.name),
        )
    })?;
    let Obj(f): Obj<FileConfig> = serde_json::from_str(&text)
        .map_err(|e| json_error(path, &e, &text, Some((&spans, &edits))))?;
    let limits = limits(&f.gateway.0.limits.0).map_err(|m| in_file(path, m))?;
    let models = check(&f).map_err(|m| in_file(path, m))?;
    let agents = agent_settings(&f).map_err(|m| in_file(path, m))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let http = http_settings(
        &f.gateway.0.control_ui.0,
        &f.gateway.0.http.0,
        &f.hooks.0,
        dir,
    )
    .map_err(|m| in_file(path, m))?;
    let FileConfig {
        gateway: Obj(g),
        logging: Obj(logging),
        agents: agents_file,
        session,
        commands,
        ..
    } = f;
    let Obj(auth) = g.auth;
    let Obj(reload) = g.reload;
    let reload_debounce_ms = reload.debounce_ms;
    if reload_debounce_ms.is_some_and(|ms| ms > 60_000) {
        return Err(in_file(
            path,
            "'gateway.reload.debounceMs' must be at most 60000",
        ));
    }
    Ok(FileSettings {
        raw: Some(raw),
        json: Some(json),
        mode: g.mode.map(|m| match m {
            ModeFile::Local => GatewayMode::Local,
            ModeFile::Remote => GatewayMode::Remote,
        }),
        port: g.port,
        bind: g.bind.map(|b| match b {
            BindFile::Loopback => BindMode::Loopback,
            BindFile::Lan => BindMode::Lan,
            BindFile::Tailnet => BindMode::Tailnet,
            BindFile::Auto => BindMode::Auto,
            BindFile::Custom => BindMode::Custom,
        }),
        custom_bind_host: g.custom_bind_host,
        auth_mode: auth.mode.map(|m| match m {
            AuthModeFile::Token => AuthMode::Token,
            AuthModeFile::Password => AuthMode::Password,
            AuthModeFile::None => AuthMode::None,
        }),
        token: auth.token,
        password: auth.password,
        tick_interval_ms: g.tick_interval_ms,
        // Browsers serialise an origin's scheme and host in lower case.
        allowed_origins: g
            .control_ui
            .0
            .allowed_origins
            .iter()
            .map(|o| o.to_ascii_lowercase())
            .collect(),
        allowed_hosts: g
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        trusted_proxies: g.trusted_proxies,
        limits,
        log_level: logging.level.map(|l| match l {
            LevelFile::Error => log::LevelFilter::Error,
            LevelFile::Warn => log::LevelFilter::Warn,
            LevelFile::Info => log::LevelFilter::Info,
            LevelFile::Debug => log::LevelFilter::Debug,
            LevelFile::Trace => log::LevelFilter::Trace,
        }),
        log_file: logging.file.unwrap_or(false),
        models,
        agents,
        http,
        default_agent_id: agents_file.0.default_id,
        main_key: session.0.main_key,
        session_scope: session.0.scope.map(|s| match s {
            ScopeFile::PerSender => "per-sender",
            ScopeFile::Global => "global",
        }),
        reload_mode: match reload.mode {
            None | Some(ReloadModeFile::Hybrid) => ReloadMode::Hybrid,
            Some(ReloadModeFile::Off) => ReloadMode::Off,
            Some(ReloadModeFile::Hot) => ReloadMode::Hot,
            Some(ReloadModeFile::Restart) => ReloadMode::Restart,
        },
        reload_debounce_ms,
        restart_enabled: commands.0.restart.unwrap_or(false),
    })
}

/// A semantic error in the file: `PATH: message`.
pub fn in_file(path: &Path, msg: impl fmt::Display) -> Error {
    Error::config(format!("{}: {msg}", path.display()))
}

/// A copy of `value` with every string under a key named token, password,
/// apiKey or secret (any case, any depth) replaced, so `config.get` and
/// logs never carry a secret.
pub fn redact(value: &Value) -> Value {
    fn all(v: &Value) -> Value {
        match v {
            Value::String(_) => Value::String("__REDACTED__".to_string()),
            Value::Array(a) => Value::Array(a.iter().map(all).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), all(v))).collect()),
            other => other.clone(),
        }
    }
    match value {
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let secret = SECRET_KEYS.iter().any(|s| k.eq_ignore_ascii_case(s));
                    (k.clone(), if secret { all(v) } else { redact(v) })
                })
                .collect(),
        ),
        other => other.clone(),
    }
}
