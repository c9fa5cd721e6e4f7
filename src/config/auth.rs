//! Which secret the gateway runs with, and where it came from: flag,
//! `CLAWGATE_*`, `OPENCLAW_*` or the file. Blank and placeholder secrets
//! are refused, and so is a non-loopback bind without one.

use std::path::Path;

use super::file::{in_file, FileSettings};
use super::location::var;
use super::{bind_name, Env};
use super::{AuthMode, BindMode, RunArgs};
use crate::error::Error;

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

pub(super) struct Auth {
    pub(super) mode: AuthMode,
    pub(super) token: Option<String>,
    pub(super) password: Option<String>,
    pub(super) source: &'static str,
}

pub(super) fn resolve_auth(
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
