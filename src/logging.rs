//! The own logger: `log` records to stderr (plain, journald or JSON, see
//! `format`) and to an optional rotating log file (`file`); `tail` reads
//! that file back for `logs.tail` and `clawgate logs`.
//!
//! Each record becomes one line written with one `write_all`, so lines
//! from concurrent threads never interleave. Control characters in messages
//! are escaped, so no input can forge a log line or a terminal sequence.
//! The logger must never panic and never log from inside itself: a broken
//! log file is reported once on stderr and then abandoned.

mod file;
mod format;
pub mod tail;

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::error::Error;
use crate::sys;
use file::FileSink;
pub use format::{escape_controls, rfc3339};
use format::{format_line, Format};

/// The target of the gateway's start-up lines (where it listens, where the
/// token is, what `--force` stopped). `main` prints them on stdout for
/// whoever started the gateway; the log file always gets them, stderr
/// only with `LogConfig::announce_on_stderr`, so that each reaches a
/// reader once: a terminal shows the plain line and no INFO copy of it,
/// and under systemd, where stdout is the journal too, they come through
/// here, with their priority, instead of through stdout.
pub const ANNOUNCE: &str = "clawgate::announce";

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: LevelFilter,
    pub json: bool,
    /// Start-up lines ([`ANNOUNCE`]) go to stderr too: when stdout is the
    /// journal and they are not printed there.
    pub announce_on_stderr: bool,
    /// Also append to this file, e.g. [`log_file_path`].
    pub file: Option<PathBuf>,
    /// Rotate before the file would grow past this; 0 never rotates.
    pub max_file_bytes: u64,
    /// How many rotated files (`.1`, `.2`, ...) to keep.
    pub keep_files: usize,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            level: LevelFilter::Info,
            json: false,
            announce_on_stderr: false,
            file: None,
            max_file_bytes: 1024 * 1024,
            keep_files: 2,
        }
    }
}

/// `<state_dir>/logs/clawgate.log`.
pub fn log_file_path(state_dir: &Path) -> PathBuf {
    state_dir.join("logs").join("clawgate.log")
}

/// Installs the logger for the whole process; call once, early in `main`.
pub fn init(cfg: LogConfig) -> Result<(), Error> {
    let file = match &cfg.file {
        Some(path) => Some(FileSink::open(path, cfg.max_file_bytes, cfg.keep_files)?),
        None => None,
    };
    let journal = stderr_is_journal();
    let color = !cfg.json
        && !journal
        && sys::isatty(2)
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logger = Logger {
        stderr: Format {
            json: cfg.json,
            journal,
            color,
        },
        announce_on_stderr: cfg.announce_on_stderr,
        file: Mutex::new(file),
    };
    log::set_boxed_logger(Box::new(logger))
        .map_err(|_| Error::runtime("the logger is already initialized"))?;
    log::set_max_level(cfg.level);
    Ok(())
}

/// Changes the level of the running logger (configuration reload).
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

fn stderr_is_journal() -> bool {
    is_journal(io::stderr().as_fd())
}

/// Whether stdout is connected to the journal (a systemd service's
/// default): then the start-up lines go through the log instead.
pub fn stdout_is_journal() -> bool {
    is_journal(io::stdout().as_fd())
}

/// systemd sets JOURNAL_STREAM to the device and inode of the journal
/// stream it connected; a child whose output was redirected elsewhere
/// inherits the variable, so compare it with what `fd` really is.
fn is_journal(fd: std::os::fd::BorrowedFd) -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let meta = fd
        .try_clone_to_owned()
        .and_then(|fd| File::from(fd).metadata());
    match meta {
        Ok(m) => journal_stream_matches(&var.to_string_lossy(), m.dev(), m.ino()),
        Err(_) => true,
    }
}

fn journal_stream_matches(var: &str, dev: u64, ino: u64) -> bool {
    match var.split_once(':') {
        Some((d, i)) => d.parse() == Ok(dev) && i.parse() == Ok(ino),
        None => false,
    }
}

/// The longest message written: whatever a peer manages to get into a
/// log line, it costs at most this much disk and journal.
pub const MAX_MESSAGE: usize = 2048;

/// Cuts `msg` to [`MAX_MESSAGE`] bytes (on a character boundary) and says
/// how long it was.
fn clip_message(msg: &mut String) {
    if msg.len() > MAX_MESSAGE {
        let total = msg.len();
        let mut end = MAX_MESSAGE;
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        msg.truncate(end);
        msg.push_str(&format!("… ({total} bytes)"));
    }
}

/// clawgate's own records pass at the configured level; the libraries'
/// (tungstenite, tiny_http) only from warn up, since their debug output is
/// about internals the user cannot act on.
fn allowed(max: LevelFilter, level: Level, target: &str) -> bool {
    let cap = if is_ours(target) {
        max
    } else {
        max.min(LevelFilter::Warn)
    };
    level <= cap
}

fn is_ours(target: &str) -> bool {
    target == "clawgate" || target.starts_with("clawgate::")
}

struct Logger {
    stderr: Format,
    announce_on_stderr: bool,
    file: Mutex<Option<FileSink>>,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // The global maximum, not a copy: a reload changes the level with
        // `set_level` and this must follow.
        allowed(log::max_level(), metadata.level(), metadata.target())
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let target = record.target();
        let mut msg = if is_ours(target) {
            record.args().to_string()
        } else {
            format!("{target}: {}", record.args())
        };
        clip_message(&mut msg);
        let ts = rfc3339(SystemTime::now());
        if target != ANNOUNCE || self.announce_on_stderr {
            let line = format_line(self.stderr, record.level(), &msg, &ts);
            // A closed or full stderr must not stop the gateway.
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }
        self.write_file(record.level(), &msg, &ts);
    }

    fn flush(&self) {}
}

impl Logger {
    fn write_file(&self, level: Level, msg: &str, ts: &str) {
        // The file gets the plain or JSON form, always with a timestamp
        // and never with colour.
        let file_format = Format {
            json: self.stderr.json,
            journal: false,
            color: false,
        };
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = guard.as_mut() else {
            return;
        };
        let line = format_line(file_format, level, msg, ts);
        let Err(e) = sink.write(line.as_bytes()) else {
            return;
        };
        let path = sink.path.display().to_string();
        *guard = None;
        drop(guard);
        // Straight to stderr, not through `log`: logging from inside the
        // logger could recurse into the same failure.
        let warning = format!(
            "log file '{path}': {}; no longer writing to it",
            crate::error::io_message(&e)
        );
        let line = format_line(self.stderr, Level::Warn, &warning, ts);
        let _ = io::stderr().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests;
