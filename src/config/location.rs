//! Where the files are: the state directory, the config file and the
//! generated token, from flags, environment and the home directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Env, CONFIG_FILE, TOKEN_FILE};
use crate::cli::Location;
use crate::error::{io_message, Error};

/// A variable's value; an empty variable counts as unset, as `VAR= cmd`
/// is the shell's way of unsetting for one command.
pub(super) fn var(env: Env, name: &str) -> Option<String> {
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
pub(super) fn config_path(
    loc: &Location,
    env: Env,
    state_dir: &Path,
) -> Result<(PathBuf, bool), Error> {
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

/// The token the gateway generated on first start; missing means none yet.
pub(super) fn read_token_file(state_dir: &Path) -> Result<Option<String>, Error> {
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
