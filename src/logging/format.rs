//! How a record becomes one line: plain, journald (`<N>` priority) or
//! JSON, with control characters escaped so no input can forge a log line
//! or a terminal sequence.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use log::Level;

#[derive(Debug, Clone, Copy)]
pub(super) struct Format {
    pub(super) json: bool,
    pub(super) journal: bool,
    pub(super) color: bool,
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

pub(super) fn format_line(f: Format, level: Level, msg: &str, ts: &str) -> String {
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
