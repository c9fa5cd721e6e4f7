//! The files `install` writes: what each should contain, how that compares
//! with what is there, and writing them so that no reader ever sees half a
//! file.
//!
//! Install first plans every file (create, unchanged, replace, or a
//! conflict that needs `--force`) and writes nothing until the whole plan
//! is accepted. Each write goes to a temporary file in the same directory,
//! is synced, gets its mode set explicitly (a umask must not make the
//! config unreadable to the service's user), and is renamed into place.
//! Secrets never appear in a plan's messages.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::config::TOKEN_VAR;
use crate::error::Error;
use crate::store::{sync_dir, write_atomic};

/// What happened, or will happen, to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    Created,
    Replaced,
    Unchanged,
    /// Left in place on purpose (uninstall keeps config and state).
    Kept,
    Removed,
    /// Not there, and nothing to do about it.
    Absent,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Created => "created",
            FileState::Replaced => "replaced",
            FileState::Unchanged => "unchanged",
            FileState::Kept => "kept",
            FileState::Removed => "removed",
            FileState::Absent => "absent",
        }
    }
}

/// One file install wants, with what it should hold.
#[derive(Debug)]
pub struct Planned {
    pub path: PathBuf,
    /// "unit", "init script", "config" or "token file".
    pub role: &'static str,
    pub content: Vec<u8>,
    pub mode: u32,
    /// For directories that have to be created first.
    pub dir_mode: u32,
    pub state: FileState,
}

/// A file that differs and would need `--force`; `why` is safe to print.
pub struct Conflict {
    pub path: PathBuf,
    pub why: String,
}

fn read_existing(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading '{}'", path.display()), e)),
    }
}

/// A file whose whole content install owns (the unit, the init script):
/// equal is unchanged, different is a conflict unless forced.
pub fn plan_owned(
    path: PathBuf,
    role: &'static str,
    content: String,
    mode: u32,
    force: bool,
) -> Result<Result<Planned, Conflict>, Error> {
    let state = match read_existing(&path)? {
        None => FileState::Created,
        Some(old) if old == content.as_bytes() => FileState::Unchanged,
        Some(_) if force => FileState::Replaced,
        Some(_) => {
            let why = format!("the {role} differs from what install writes (edited by hand, or another binary's path)");
            return Ok(Err(Conflict { path, why }));
        }
    };
    Ok(Ok(Planned {
        path,
        role,
        content: content.into_bytes(),
        mode,
        dir_mode: 0o755,
        state,
    }))
}

/// The config: created when missing with `gateway.mode` "local" (and the
/// port, if given). An existing one is the admin's: it is only touched to
/// set a `--port` it does not already have, and only with `--force`, which
/// changes that one key and keeps every other setting.
pub fn plan_config(
    path: PathBuf,
    port: Option<u16>,
    mode: u32,
    dir_mode: u32,
    force: bool,
) -> Result<Result<Planned, Conflict>, Error> {
    let planned = |content: Vec<u8>, state| Planned {
        path: path.clone(),
        role: "config",
        content,
        mode,
        dir_mode,
        state,
    };
    let Some(old) = read_existing(&path)? else {
        let mut gateway = json!({"mode": "local"});
        if let Some(p) = port {
            gateway["port"] = json!(p);
        }
        return Ok(Ok(planned(
            pretty(&json!({ "gateway": gateway })),
            FileState::Created,
        )));
    };
    let Some(port) = port else {
        return Ok(Ok(planned(old, FileState::Unchanged)));
    };
    let mut value: Value = serde_json::from_slice(&old).map_err(|e| {
        Error::config(format!(
            "'{}': not valid JSON ({e}): fix it, or move it away to have install write a new one",
            path.display()
        ))
    })?;
    let current = value["gateway"]["port"].as_u64();
    if current == Some(u64::from(port)) {
        return Ok(Ok(planned(old, FileState::Unchanged)));
    }
    if !force {
        let has = match current {
            Some(p) => format!("sets port {p}"),
            None => "sets no port (so 18789)".to_string(),
        };
        let why = format!("the config {has}, not {port}: use --force to set gateway.port in it (the rest of it is kept)");
        return Ok(Err(Conflict { path, why }));
    }
    if !value.is_object() || !(value["gateway"].is_object() || value["gateway"].is_null()) {
        return Err(Error::config(format!(
            "'{}': expected a JSON object with a \"gateway\" object: fix it before setting the port",
            path.display()
        )));
    }
    value["gateway"]["port"] = json!(port);
    Ok(Ok(planned(pretty(&value), FileState::Replaced)))
}

/// `gateway.env`: one `CLAWGATE_GATEWAY_TOKEN=` line, plus whatever other
/// lines the admin added, which are kept. A different token is replaced
/// only with `--force`.
pub fn plan_env(
    path: PathBuf,
    token: &str,
    dir_mode: u32,
    force: bool,
) -> Result<Result<Planned, Conflict>, Error> {
    let line = format!("{TOKEN_VAR}={token}");
    let planned = |content: String, state| Planned {
        path: path.clone(),
        role: "token file",
        content: content.into_bytes(),
        mode: 0o600,
        dir_mode,
        state,
    };
    let Some(old) = read_existing(&path)? else {
        return Ok(Ok(planned(format!("{line}\n"), FileState::Created)));
    };
    let old = String::from_utf8_lossy(&old).into_owned();
    let is_token = |l: &&str| l.trim_start().starts_with(&format!("{TOKEN_VAR}="));
    let current: Vec<&str> = old.lines().filter(is_token).collect();
    if current == [line.as_str()] {
        return Ok(Ok(planned(old, FileState::Unchanged)));
    }
    if !current.is_empty() && !force {
        let why = "the token file holds another token: use --force to replace it".to_string();
        return Ok(Err(Conflict { path, why }));
    }
    let mut content: String = old
        .lines()
        .filter(|l| !is_token(l))
        .map(|l| format!("{l}\n"))
        .collect();
    content.push_str(&line);
    content.push('\n');
    let state = if current.is_empty() {
        FileState::Created
    } else {
        FileState::Replaced
    };
    // Adding a token to a file that had none changes the file, but needs
    // no --force: nothing of the admin's is lost.
    Ok(Ok(planned(content, state)))
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(v).expect("a JSON value serializes");
    text.push('\n');
    text.into_bytes()
}

/// Writes a planned file if its state says so; `Unchanged` is not touched,
/// so its modification time stays.
pub fn apply(p: &Planned) -> Result<(), Error> {
    if !matches!(p.state, FileState::Created | FileState::Replaced) {
        return Ok(());
    }
    let path = &p.path;
    let ctx = || format!("writing '{}'", path.display());
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(p.dir_mode)
            .create(dir)
            .map_err(|e| Error::io(format!("creating '{}'", dir.display()), e))?;
    }
    write_atomic(path, &p.content, p.mode).map_err(|e| Error::io(ctx(), e))
}

/// Removes a file and makes the removal durable. Missing is not an error.
pub fn remove(path: &Path) -> Result<bool, Error> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(path).map_err(|e| Error::io(format!("removing '{}'", path.display()), e))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("removing '{}'", path.display()), e)),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("clawgate-files-{}", crate::sys::uuid_v4()));
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn ok(r: Result<Result<Planned, Conflict>, Error>) -> Planned {
        match r.expect("no error") {
            Ok(p) => p,
            Err(c) => panic!("conflict: {}", c.why),
        }
    }

    fn conflict(r: Result<Result<Planned, Conflict>, Error>) -> String {
        match r.expect("no error") {
            Ok(p) => panic!("planned {:?}", p.state),
            Err(c) => c.why,
        }
    }

    #[test]
    fn owned_files_are_created_kept_or_replaced_only_by_force() {
        let dir = temp_dir();
        let path = dir.join("sub").join("x.service");
        let p = ok(plan_owned(path.clone(), "unit", "a\n".into(), 0o644, false));
        assert_eq!(p.state, FileState::Created);
        apply(&p).expect("write");
        assert_eq!(fs::read_to_string(&path).unwrap(), "a\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let p = ok(plan_owned(path.clone(), "unit", "a\n".into(), 0o644, false));
        assert_eq!(p.state, FileState::Unchanged);
        let why = conflict(plan_owned(path.clone(), "unit", "b\n".into(), 0o644, false));
        assert!(why.contains("the unit differs"), "{why}");
        let p = ok(plan_owned(path.clone(), "unit", "b\n".into(), 0o644, true));
        assert_eq!(p.state, FileState::Replaced);
        // No temporary file is left behind.
        apply(&p).expect("write");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_config_changes_only_its_port_and_only_with_force() {
        let dir = temp_dir();
        let path = dir.join("clawgate.json");
        let p = ok(plan_config(path.clone(), Some(8080), 0o644, 0o755, false));
        let want = "{\n  \"gateway\": {\n    \"mode\": \"local\",\n    \"port\": 8080\n  }\n}\n";
        assert_eq!(
            (p.state, String::from_utf8(p.content).unwrap().as_str()),
            (FileState::Created, want)
        );
        let mine = r#"{"gateway":{"mode":"local","bind":"lan"},"logging":{"file":true}}"#;
        fs::write(&path, mine).unwrap();
        let p = ok(plan_config(path.clone(), None, 0o644, 0o755, false));
        assert_eq!(p.state, FileState::Unchanged);
        let why = conflict(plan_config(path.clone(), Some(8080), 0o644, 0o755, false));
        assert_eq!(why, "the config sets no port (so 18789), not 8080: use --force to set gateway.port in it (the rest of it is kept)");
        let p = ok(plan_config(path.clone(), Some(8080), 0o644, 0o755, true));
        let v: Value = serde_json::from_slice(&p.content).unwrap();
        assert_eq!(p.state, FileState::Replaced);
        assert_eq!(
            v,
            json!({"gateway":{"mode":"local","bind":"lan","port":8080},"logging":{"file":true}})
        );
        fs::write(&path, "{oops").unwrap();
        let e = plan_config(path.clone(), Some(1), 0o644, 0o755, true)
            .err()
            .expect("error");
        assert_eq!(e.exit_code(), 78);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_token_file_keeps_other_lines_and_never_names_the_token() {
        let dir = temp_dir();
        let path = dir.join("gateway.env");
        let p = ok(plan_env(path.clone(), "s3cret", 0o755, false));
        assert_eq!(p.content, b"CLAWGATE_GATEWAY_TOKEN=s3cret\n");
        assert_eq!((p.state, p.mode), (FileState::Created, 0o600));
        fs::write(&path, "CLAWGATE_GATEWAY_TOKEN=s3cret\n").unwrap();
        assert_eq!(
            ok(plan_env(path.clone(), "s3cret", 0o755, false)).state,
            FileState::Unchanged
        );
        fs::write(&path, "# mine\nOTHER=1\nCLAWGATE_GATEWAY_TOKEN=oldtok1\n").unwrap();
        let why = conflict(plan_env(path.clone(), "newtok2", 0o755, false));
        assert!(
            !why.contains("oldtok1") && !why.contains("newtok2"),
            "{why}"
        );
        let p = ok(plan_env(path.clone(), "newtok2", 0o755, true));
        assert_eq!(
            p.content,
            b"# mine\nOTHER=1\nCLAWGATE_GATEWAY_TOKEN=newtok2\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
