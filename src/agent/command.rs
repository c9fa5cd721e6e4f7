//! One agent turn on a CLI backend: the configured command is started with
//! the prompt, the model and the CLI's own session id, and its output is
//! read as the reply (PROTOCOL-AGENTS §10).
//!
//! The child leads its own process group so that ending a turn early
//! (cancel, the turn timeout, the no-output watchdog, oversized output)
//! reaches everything it spawned: SIGTERM to the group, SIGKILL a second
//! later if anything is left, and the child is always waited for (`child`).
//! It never sees the gateway's own secret unless the descriptor's `env`
//! sets it. Memory is bounded per turn: 1 MiB of stdout, the last 4 KiB of
//! stderr, one 8 KiB read buffer, and the prompt being written to stdin.
//! Building the argv and parsing the output (`output`) are pure; `run` is
//! the only I/O.

mod child;
mod output;

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::agent::Cancel;
use crate::config::backend::{CliBackend, InputKind, PromptWhen, SessionMode, SESSION_ID};
use crate::error::io_message;
use crate::sys::{self, EventFd};
use child::{stop, watch, Pipes};

pub use output::parse_output;

/// Where clawgate reads its own secret from: never handed to a backend.
const SECRETS: &[&str] = &[
    "CLAWGATE_GATEWAY_TOKEN",
    "CLAWGATE_GATEWAY_PASSWORD",
    "OPENCLAW_GATEWAY_TOKEN",
    "OPENCLAW_GATEWAY_PASSWORD",
];

/// One turn, as the run hands it to the backend.
pub struct Turn<'a> {
    pub backend_id: &'a str,
    /// The model id without the backend's prefix.
    pub model: &'a str,
    pub prompt: &'a str,
    pub system_prompt: &'a str,
    /// The id the CLI gave last turn, kept on the session.
    pub cli_session_id: Option<&'a str>,
    pub cwd: &'a Path,
    /// The turn's timeout; None = none.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    /// The CLI's session id to keep for the next turn: the one it reported,
    /// else the one it was given.
    pub session_id: Option<String>,
    /// Input and output tokens.
    pub usage: Option<(u64, u64)>,
}

#[derive(Debug)]
pub enum Failure {
    Cancelled,
    TimedOut,
    Error(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Cancelled => f.write_str("cancelled"),
            Failure::TimedOut => f.write_str("timed out"),
            Failure::Error(m) => f.write_str(m),
        }
    }
}

/// Whether the turn continues the CLI's own session.
fn resuming(b: &CliBackend, t: &Turn) -> bool {
    b.session_mode != SessionMode::None && t.cli_session_id.is_some()
}

/// Whether this turn passes the system prompt at all.
fn wants_system_prompt(b: &CliBackend, t: &Turn) -> bool {
    !t.system_prompt.is_empty()
        && match b.system_prompt_when {
            PromptWhen::First => !resuming(b, t),
            PromptWhen::Always => true,
            PromptWhen::Never => false,
        }
}

/// The argv of the turn, the command first, and whether the prompt goes on
/// stdin instead of last. `prompt_file` is where the system prompt was
/// written (used with `systemPromptFileArg`); `new_session_id` is the id a
/// first turn gives the CLI when `sessionMode` is `always`.
pub fn argv(
    b: &CliBackend,
    t: &Turn,
    prompt_file: Option<&Path>,
    new_session_id: Option<&str>,
) -> (Vec<String>, bool) {
    let fill = |args: &[String], id: &str| -> Vec<String> {
        args.iter().map(|a| a.replace(SESSION_ID, id)).collect()
    };
    let resume_id = t.cli_session_id.filter(|_| resuming(b, t));
    let mut argv = vec![b.command.clone()];
    match (resume_id, &b.resume_args) {
        (Some(id), Some(resume)) => argv.extend(fill(resume, id)),
        _ => argv.extend(b.args.iter().cloned()),
    }
    if let Some(flag) = &b.model_arg {
        if !t.model.is_empty() {
            argv.push(flag.clone());
            argv.push(b.model_name(t.model).to_owned());
        }
    }
    if wants_system_prompt(b, t) {
        match (&b.system_prompt_file_arg, prompt_file, &b.system_prompt_arg) {
            (Some(flag), Some(path), _) => {
                argv.push(flag.clone());
                argv.push(path.to_string_lossy().into_owned());
            }
            (_, _, Some(flag)) => {
                argv.push(flag.clone());
                argv.push(t.system_prompt.to_owned());
            }
            _ => {}
        }
    }
    // resumeArgs carry the id themselves; without them the id goes the
    // way a first turn's does.
    let session_id = match resume_id {
        Some(_) if b.resume_args.is_some() => None,
        Some(id) => Some(id),
        None => new_session_id.filter(|_| b.session_mode == SessionMode::Always),
    };
    if let Some(id) = session_id {
        argv.extend(fill(&b.session_args, id));
    }
    let on_stdin = b.input == InputKind::Stdin
        || b.max_prompt_arg_chars
            .is_some_and(|max| t.prompt.chars().count() > max);
    if !on_stdin {
        argv.push(t.prompt.to_owned());
    }
    (argv, on_stdin)
}

/// A private directory holding the system prompt file for one turn,
/// removed when dropped.
struct PromptDir {
    dir: PathBuf,
    file: PathBuf,
}

impl PromptDir {
    fn create(text: &str) -> io::Result<PromptDir> {
        let dir = std::env::temp_dir().join(format!("clawgate-cli-{}", sys::uuid_v4()));
        // `create`, not `create_all`: an existing path (or a planted
        // symlink) fails instead of being used.
        fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let made = PromptDir {
            file: dir.join("system-prompt.md"),
            dir,
        };
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&made.file)?
            .write_all(text.as_bytes())?;
        Ok(made)
    }
}

impl Drop for PromptDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs one turn: starts the command, feeds it the prompt, reads its
/// output until it exits or the turn ends early, and parses the reply.
pub fn run(b: &CliBackend, t: &Turn, cancel: &Cancel) -> Result<Reply, Failure> {
    if cancel.is_cancelled() {
        return Err(Failure::Cancelled);
    }
    let resume = resuming(b, t);
    let new_id = (!resume && b.session_mode == SessionMode::Always).then(sys::uuid_v4);
    let prompt_dir = if wants_system_prompt(b, t) && b.system_prompt_file_arg.is_some() {
        let dir = PromptDir::create(t.system_prompt).map_err(|e| {
            Failure::Error(format!(
                "writing the system prompt file: {}",
                io_message(&e)
            ))
        })?;
        Some(dir)
    } else {
        None
    };
    let file = prompt_dir.as_ref().map(|d| d.file.as_path());
    let (argv, on_stdin) = argv(b, t, file, new_id.as_deref());
    let wake = EventFd::new()
        .map(Arc::new)
        .map_err(|e| Failure::Error(format!("creating an eventfd: {}", io_message(&e))))?;

    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(t.cwd)
        .process_group(0)
        .stdin(if on_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in SECRETS
        .iter()
        .copied()
        .chain(b.clear_env.iter().map(String::as_str))
    {
        cmd.env_remove(name);
    }
    cmd.envs(&b.env).env("OPENCLAW_CLI", "1");
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::Error(format!("'{}': {}", b.command, io_message(&e))))?;
    let pgid = child.id();
    log::debug!("cli backend '{}': started pid {pgid}", t.backend_id);
    let hook_wake = wake.clone();
    cancel.on_cancel(move || {
        let _ = sys::kill_group(pgid, sys::SIGTERM);
        hook_wake.signal();
    });

    let prompt = if on_stdin { t.prompt.as_bytes() } else { &[] };
    let mut pipes = Pipes::new(&mut child, prompt);
    let deadline = t.timeout.map(|d| std::time::Instant::now() + d);
    let silence = b.no_output_timeout();
    let end = watch(&mut child, &mut pipes, deadline, silence, cancel, &wake).into_status();
    // The group is about to be reaped; a late cancel must not signal an
    // id the kernel may hand out again.
    cancel.clear();
    match &end {
        Ok(_) => pipes.drain(),
        Err(f) => log::debug!("cli backend '{}': ending early: {f}", t.backend_id),
    }
    stop(&mut child, pgid);
    drop(prompt_dir);
    let status = end?;
    log::debug!("cli backend '{}': {}", t.backend_id, describe(status));

    let kind = match (resume, b.resume_output) {
        (true, Some(k)) => k,
        _ => b.output,
    };
    let stdout = String::from_utf8_lossy(&pipes.stdout);
    let mut reply = parse_output(kind, &stdout, &b.id_fields()).map_err(Failure::Error)?;
    if reply.text.is_empty() && !status.success() {
        let stderr = String::from_utf8_lossy(&pipes.stderr);
        let last = stderr.lines().map(str::trim).rfind(|l| !l.is_empty());
        return Err(Failure::Error(match last {
            Some(line) => line.to_owned(),
            None => describe(status),
        }));
    }
    if b.session_mode != SessionMode::None {
        // Only an id the CLI was actually given is worth resuming with.
        let passed = b.session_args.iter().any(|a| a.contains(SESSION_ID));
        let given = new_id.filter(|_| passed);
        let known = given.or_else(|| t.cli_session_id.map(str::to_owned));
        reply.session_id = reply.session_id.or(known);
    }
    Ok(reply)
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("backend exited with status {code}"),
        (None, Some(sig)) => format!("backend was killed by signal {sig}"),
        (None, None) => format!("backend ended: {status}"),
    }
}

#[cfg(test)]
mod tests;
