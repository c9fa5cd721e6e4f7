//! Which secret the gateway runs with, and where it came from: flag,
//! `CLAWGATE_*`, `OPENCLAW_*` or the file. Blank and placeholder secrets
//! are refused, and so is a non-loopback bind without one; the same rule,
//! with a minimum length, refuses a weak generated-token file.

use std::fmt;
use std::path::Path;

use super::file::{in_file, FileSettings};
use super::{bind_name, var, Env};
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
    // A configured secret is the operator's choice, so it has no minimum
    // length here (the reference only warns); it must still be a secret.
    let Some(weak) = weakness(&s.value, 0) else {
        return Ok(());
    };
    let advice = match weak {
        Weak::Blank => "",
        _ => ": use a long random value such as the output of 'openssl rand -hex 32'",
    };
    Err(match s.source {
        "config" => in_file(path, format!("'gateway.auth.{key}' {weak}{advice}")),
        source => Error::config(format!("{source}: the {key} {weak}{advice}")),
    })
}

/// The shortest stored token accepted. The gateway writes 64 hex
/// characters; a shorter file was written by hand, and a token that short
/// falls to guessing.
const MIN_STORED_TOKEN_CHARS: usize = 16;

/// Refuses a weak token in the generated-token file (`token` is its
/// trimmed text), for the gateway and for the client commands alike, so
/// that neither runs with a token nobody generated.
pub fn check_stored_token(path: &Path, token: &str) -> Result<(), Error> {
    match weakness(token, MIN_STORED_TOKEN_CHARS) {
        None => Ok(()),
        Some(weak) => Err(Error::config(format!(
            "'{}': the stored token {weak}; delete the file to have a new one generated, or set gateway.auth.token",
            path.display()
        ))),
    }
}

/// What makes a secret unfit to protect a gateway.
enum Weak {
    Blank,
    Placeholder(String),
    Short(usize),
}

impl fmt::Display for Weak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Weak::Blank => f.write_str("is blank"),
            Weak::Placeholder(p) => write!(f, "is a placeholder ('{p}'), not a secret"),
            Weak::Short(1) => f.write_str("is too short (1 character)"),
            Weak::Short(n) => write!(f, "is too short ({n} characters)"),
        }
    }
}

/// The one rule for every secret, configured or stored: not blank, not a
/// placeholder, and at least `min_chars` characters long.
fn weakness(value: &str, min_chars: usize) -> Option<Weak> {
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if trimmed.is_empty() {
        Some(Weak::Blank)
    } else if PLACEHOLDERS.iter().any(|p| p.eq_ignore_ascii_case(trimmed)) {
        Some(Weak::Placeholder(trimmed.to_string()))
    } else if chars < min_chars {
        Some(Weak::Short(chars))
    } else {
        None
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_finds_blank_placeholder_and_short_secrets() {
        assert!(matches!(weakness("  ", 0), Some(Weak::Blank)));
        assert!(matches!(weakness(" ChangeMe ", 0), Some(Weak::Placeholder(p)) if p == "ChangeMe"));
        assert!(matches!(
            weakness("changeme", 16),
            Some(Weak::Placeholder(_))
        ));
        assert!(matches!(weakness("x", 16), Some(Weak::Short(1))));
        assert!(weakness("x", 0).is_none());
        // Characters, not bytes: sixteen of them pass.
        assert!(weakness(&"é".repeat(16), 16).is_none());
        assert!(matches!(
            weakness(&"é".repeat(15), 16),
            Some(Weak::Short(15))
        ));
    }

    #[test]
    fn a_weak_stored_token_names_the_file_and_the_way_out() {
        let path = Path::new("/s/gateway.token");
        let e = check_stored_token(path, "x").expect_err("too short");
        assert_eq!(e.exit_code(), 78);
        assert_eq!(
            e.to_string(),
            "'/s/gateway.token': the stored token is too short (1 character); delete the file to have a new one generated, or set gateway.auth.token"
        );
        let e = check_stored_token(path, "abcdefghijklmno").expect_err("15");
        assert!(e.to_string().contains("too short (15 characters)"), "{e}");
        let e = check_stored_token(path, "changeme").expect_err("placeholder");
        assert!(
            e.to_string()
                .starts_with("'/s/gateway.token': the stored token is a placeholder ('changeme'), not a secret; delete the file"),
            "{e}"
        );
        assert!(check_stored_token(path, "abcdefghijklmnop").is_ok());
    }
}
