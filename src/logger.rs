//! The log backend: formats `log` records for stderr (plain, journald or
//! JSON) and an optional rotating log file, and reads that file back for
//! `logs.tail`.
//!
//! Each record becomes one line written with one `write_all`, so lines
//! from concurrent threads never interleave. Control characters in messages
//! are escaped, so no input can forge a log line or a terminal sequence.
//! The logger must never panic and never log from inside itself: a broken
//! log file is reported once on stderr and then abandoned.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::error::Error;
use crate::sys;

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: LevelFilter,
    pub json: bool,
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

/// systemd sets JOURNAL_STREAM to the device and inode of the journal
/// stream it connected; a child whose stderr was redirected elsewhere
/// inherits the variable, so compare it with what fd 2 really is.
fn stderr_is_journal() -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let meta = io::stderr()
        .as_fd()
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

#[derive(Debug, Clone, Copy)]
struct Format {
    json: bool,
    journal: bool,
    color: bool,
}

struct Logger {
    stderr: Format,
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
        let msg = if is_ours(target) {
            record.args().to_string()
        } else {
            format!("{target}: {}", record.args())
        };
        let ts = rfc3339(SystemTime::now());
        let line = format_line(self.stderr, record.level(), &msg, &ts);
        // A closed or full stderr must not stop the gateway.
        let _ = io::stderr().lock().write_all(line.as_bytes());
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

/// Per level: syslog priority for journald, JSON name, ANSI colour.
fn level_style(level: Level) -> (u8, &'static str, &'static str) {
    match level {
        Level::Error => (3, "error", "31"),
        Level::Warn => (4, "warn", "33"),
        Level::Info => (6, "info", "32"),
        Level::Debug => (7, "debug", "36"),
        Level::Trace => (7, "trace", "2"),
    }
}

fn format_line(f: Format, level: Level, msg: &str, ts: &str) -> String {
    let (priority, name, color) = level_style(level);
    let mut out = String::with_capacity(msg.len() + 48);
    if f.journal {
        let _ = write!(out, "<{priority}>");
    }
    if f.json {
        let msg = json_string(msg);
        let _ = write!(out, r#"{{"ts":"{ts}","level":"{name}","msg":{msg}}}"#);
    } else {
        if !f.journal {
            out.push_str(ts);
            out.push(' ');
        }
        if f.color {
            let _ = write!(out, "\x1b[{color}m{level}\x1b[0m");
        } else {
            let _ = write!(out, "{level}");
        }
        out.push(' ');
        out.push_str(&escape_controls(msg));
    }
    out.push('\n');
    out
}

/// Makes every control character visible: `\n` and `\r` (and `\t`) in
/// their usual escaped form, the other C0 and C1 controls and DEL as
/// `\u{..}`. A message can then neither start a fake log line nor send an
/// escape sequence to the terminal reading the log.
pub fn escape_controls(msg: &str) -> Cow<'_, str> {
    if !msg.chars().any(char::is_control) {
        return Cow::Borrowed(msg);
    }
    let mut out = String::with_capacity(msg.len() + 8);
    for c in msg.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A JSON string literal. serde_json escapes `"`, `\` and C0 controls but
/// emits DEL and C1 controls raw; escape those too so the JSON form is as
/// safe on a terminal as the plain one.
fn json_string(msg: &str) -> String {
    let quoted = serde_json::Value::String(msg.to_owned()).to_string();
    if !quoted.chars().any(char::is_control) {
        return quoted;
    }
    let mut out = String::with_capacity(quoted.len() + 8);
    for c in quoted.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-21T19:57:03.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`), which saves a date crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The log file, appended to and rotated by size.
struct FileSink {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl FileSink {
    fn open(path: &Path, max_bytes: u64, keep: usize) -> Result<FileSink, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Logs can contain peer addresses and client names: owner only.
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io(format!("creating '{}'", dir.display()), e))?;
        }
        let file =
            open_append(path).map_err(|e| Error::io(format!("opening '{}'", path.display()), e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(format!("reading '{}'", path.display()), e))?
            .len();
        Ok(FileSink {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            keep,
        })
    }

    fn write(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if self.max_bytes > 0 && self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    /// clawgate.log -> .1 -> .2 ...; renaming onto the last kept name
    /// replaces (drops) the oldest file.
    fn rotate(&mut self) -> io::Result<()> {
        for i in (1..self.keep).rev() {
            ignore_not_found(fs::rename(self.numbered(i), self.numbered(i + 1)))?;
        }
        if self.keep > 0 {
            ignore_not_found(fs::rename(&self.path, self.numbered(1)))?;
        } else {
            ignore_not_found(fs::remove_file(&self.path))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }

    fn numbered(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn ignore_not_found(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("clawgate-{name}-{}", sys::uuid_v4()));
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    const PLAIN: Format = Format {
        json: false,
        journal: false,
        color: false,
    };
    const TS: &str = "2026-11-21T19:57:03.123Z";

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(escape_controls("plain é"), Cow::Borrowed(_)));
        let evil = "a\nb\rc\td\u{1b}[31m\u{7f}\u{9b}é";
        assert_eq!(
            escape_controls(evil),
            "a\\nb\\rc\\td\\u{1b}[31m\\u{7f}\\u{9b}é"
        );
        let line = format_line(
            PLAIN,
            Level::Info,
            "x\n2026-01-01T00:00:00.000Z ERROR forged",
            TS,
        );
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with("x\\n2026-01-01T00:00:00.000Z ERROR forged\n"));
    }

    #[test]
    fn plain_lines_have_timestamp_and_level() {
        let line = format_line(PLAIN, Level::Info, "listening", TS);
        assert_eq!(line, "2026-11-21T19:57:03.123Z INFO listening\n");
        let color = Format {
            color: true,
            ..PLAIN
        };
        let line = format_line(color, Level::Warn, "slow\u{1b}", TS);
        assert_eq!(line, format!("{TS} \x1b[33mWARN\x1b[0m slow\\u{{1b}}\n"));
    }

    #[test]
    fn journal_lines_carry_the_priority_and_no_timestamp() {
        let journal = Format {
            journal: true,
            ..PLAIN
        };
        let cases = [
            (Level::Error, "<3>ERROR m\n"),
            (Level::Warn, "<4>WARN m\n"),
            (Level::Info, "<6>INFO m\n"),
            (Level::Debug, "<7>DEBUG m\n"),
            (Level::Trace, "<7>TRACE m\n"),
        ];
        for (level, want) in cases {
            assert_eq!(format_line(journal, level, "m", TS), want);
        }
    }

    #[test]
    fn json_lines_escape_everything_and_round_trip() {
        let json = Format {
            json: true,
            ..PLAIN
        };
        let msg = "quote\" back\\ nl\n esc\u{1b} del\u{7f} csi\u{9b}";
        let line = format_line(json, Level::Warn, msg, TS);
        assert!(line.ends_with('\n'));
        let body = line.trim_end_matches('\n');
        assert!(!body.chars().any(char::is_control), "{body:?}");
        let v: serde_json::Value = serde_json::from_str(body).expect("valid json");
        assert_eq!(v["ts"], TS);
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], msg);
        let journal = Format {
            journal: true,
            ..json
        };
        assert!(format_line(journal, Level::Error, "m", TS).starts_with("<3>{"));
    }

    #[test]
    fn libraries_log_only_warnings_and_errors() {
        let debug = LevelFilter::Debug;
        assert!(allowed(debug, Level::Debug, "clawgate"));
        assert!(allowed(debug, Level::Debug, "clawgate::server"));
        assert!(!allowed(debug, Level::Trace, "clawgate::server"));
        assert!(!allowed(debug, Level::Info, "tungstenite::protocol"));
        assert!(allowed(debug, Level::Warn, "tiny_http"));
        assert!(!allowed(debug, Level::Debug, "clawgatex"));
        assert!(!allowed(LevelFilter::Error, Level::Warn, "tiny_http"));
        assert!(!allowed(LevelFilter::Off, Level::Error, "clawgate"));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |ms: u64| rfc3339(UNIX_EPOCH + std::time::Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_795_291_023_123), "2026-11-21T19:57:03.123Z");
        assert_eq!(at(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(951_868_800_000), "2000-03-01T00:00:00.000Z");
        assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn journal_stream_must_match_stderr() {
        assert!(journal_stream_matches("8:12345", 8, 12345));
        assert!(!journal_stream_matches("8:12345", 8, 1));
        assert!(!journal_stream_matches("garbage", 8, 12345));
    }

    #[test]
    fn file_rotates_and_keeps_two_old_files() {
        let dir = temp_dir("rotate");
        let path = log_file_path(&dir);
        let mut sink = FileSink::open(&path, 100, 2).expect("open");
        let mode = fs::metadata(path.parent().expect("dir"))
            .expect("stat")
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        for i in 0..5 {
            sink.write(format!("{i}{}\n", "x".repeat(58)).as_bytes())
                .expect("write");
        }
        let first = |p: &Path| fs::read_to_string(p).expect("read")[..1].to_string();
        assert_eq!(first(&path), "4");
        assert_eq!(first(&sink.numbered(1)), "3");
        assert_eq!(first(&sink.numbered(2)), "2");
        assert!(!sink.numbered(3).exists());
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn keep_zero_truncates_instead_of_rotating() {
        let dir = temp_dir("rotate0");
        let path = dir.join("x.log");
        let mut sink = FileSink::open(&path, 10, 0).expect("open");
        sink.write(b"0123456789\n").expect("write");
        sink.write(b"abc\n").expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "abc\n");
        assert!(!sink.numbered(1).exists());
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn init_installs_a_logger_that_fills_the_file() {
        let dir = temp_dir("init");
        let path = log_file_path(&dir);
        let cfg = LogConfig {
            level: LevelFilter::Debug,
            file: Some(path.clone()),
            ..LogConfig::default()
        };
        init(cfg.clone()).expect("init");
        assert!(init(cfg).is_err());
        log::info!("hello\nworld");
        log::debug!(target: "tungstenite::protocol", "library chatter");
        log::warn!(target: "tiny_http", "library warning");
        let text = fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("Z INFO hello\\nworld"), "{text}");
        assert!(
            lines[1].ends_with("Z WARN tiny_http: library warning"),
            "{text}"
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_failing_log_file_is_abandoned() {
        let Ok(sink) = FileSink::open(Path::new("/dev/full"), 0, 0) else {
            return;
        };
        // The logger filters by the global level, which the other tests
        // also set no lower than this.
        log::set_max_level(LevelFilter::Debug);
        let logger = Logger {
            stderr: PLAIN,
            file: Mutex::new(Some(sink)),
        };
        let record = |msg| {
            logger.log(
                &Record::builder()
                    .args(format_args!("{msg}"))
                    .level(Level::Info)
                    .target("clawgate")
                    .build(),
            )
        };
        record("disk full");
        assert!(logger.file.lock().expect("lock").is_none());
        record("still logging to stderr");
    }
}
