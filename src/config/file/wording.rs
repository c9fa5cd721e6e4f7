//! A parse error in a user's words: placed in the file as written (not
//! in its substituted text) and, for a wrong value, worded for the key it
//! is about ("'gateway.port' must be a port number from 1 to 65535")
//! rather than in serde's terms ("expected u16").

use std::path::Path;

use super::text::{path_at, raw_offset, Edit, Span};
use crate::error::Error;

/// `PATH:LINE:COL: message`, the form editors jump to. serde_json appends
/// its own " at line X column Y" and quotes with backticks; both go. With
/// the file's values (`keys`), an error in the schema is placed in the
/// file as written and worded for the key it is about.
pub(super) fn json_error(
    path: &Path,
    e: &serde_json::Error,
    text: &str,
    keys: Option<(&[Span], &[Edit])>,
) -> Error {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let mut msg = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    let mut column = e.column();
    if let Some((spans, edits)) = keys {
        // serde_json counts the bytes it consumed on the line: the error
        // is about the value that starts at or before the next one.
        let line_start: usize = text
            .split_inclusive('\n')
            .take(e.line().saturating_sub(1))
            .map(str::len)
            .sum();
        let at = raw_offset(edits, line_start + column);
        let raw_start = raw_offset(edits, line_start);
        column = at.saturating_sub(raw_start);
        if let Some(key) = path_at(spans, at) {
            msg = for_key(key, &msg);
        }
    }
    // serde_json says column 0 when it failed before consuming the line's
    // first character; editors count from 1.
    let column = column.max(1);
    let msg = msg.replace('`', "'");
    Error::config(format!("{}:{}:{column}: {msg}", path.display(), e.line()))
}

/// serde's wording of a wrong value ("invalid type: string \"x\",
/// expected u16") in a user's: what the key must be. The value itself is
/// not repeated: it may have come from a `${NAME}` that holds a secret.
fn for_key(key: &str, msg: &str) -> String {
    let must = |what: &str| format!("'{key}' must be {what}");
    if msg.starts_with("unknown variant ") {
        return match variants(msg) {
            Some(words) => must(&words),
            None => format!("'{key}': {msg}"),
        };
    }
    // serde_json's word for a number or an object where a word belongs.
    if msg == "expected value" {
        if let Some((_, words)) = ENUMS.iter().find(|(k, _)| *k == key) {
            return must(words);
        }
    }
    if msg == "invalid IP address syntax" {
        return must("a numeric IPv4 or IPv6 address");
    }
    if !(msg.starts_with("invalid type: ") || msg.starts_with("invalid value: ")) {
        return msg.to_string();
    }
    let expected = msg.rsplit_once(", expected ").map_or("", |(_, x)| x);
    match expected {
        "u16" => must("a port number from 1 to 65535"),
        "u64" => must("a whole number, 0 or more"),
        "a boolean" => must("true or false"),
        "a string" => must("a string"),
        "a sequence" => must("an array"),
        "a JSON object" | "a map" => must("an object"),
        "IP address" => must("a numeric IPv4 or IPv6 address"),
        _ => format!("'{key}': {msg}"),
    }
}

/// `"a", "b" or "c"` from serde's "unknown variant `x`, expected one of
/// `a`, `b`, `c`".
fn variants(msg: &str) -> Option<String> {
    let expected = msg.split_once(", expected ")?.1;
    let words: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|w| format!("\"{w}\""))
        .collect();
    match words.split_last()? {
        (last, []) => Some(last.clone()),
        (last, rest) => Some(format!("{} or {last}", rest.join(", "))),
    }
}

/// The keys that take a word, with the words, for the error serde gives
/// a number or an object there (which does not list them). Written out
/// rather than asked of serde at run time, which would link a parser per
/// enum; a test holds them to the enums.
const ENUMS: [(&str, &str); 6] = [
    ("gateway.mode", r#""local" or "remote""#),
    (
        "gateway.bind",
        r#""loopback", "lan", "tailnet", "auto" or "custom""#,
    ),
    ("gateway.auth.mode", r#""token", "password" or "none""#),
    (
        "gateway.reload.mode",
        r#""off", "hot", "restart" or "hybrid""#,
    ),
    (
        "logging.level",
        r#""error", "warn", "info", "debug" or "trace""#,
    ),
    ("session.scope", r#""per-sender" or "global""#),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::{
        AuthModeFile, BindFile, LevelFile, ModeFile, ReloadModeFile, ScopeFile,
    };

    /// The words as serde lists them for a word it does not know.
    fn words<T: serde::de::DeserializeOwned>() -> String {
        let e = serde_json::from_str::<T>("\"\"").err().expect("not a word");
        variants(&e.to_string()).expect("a list")
    }

    #[test]
    fn the_words_are_the_enums_own() {
        let want = [
            words::<ModeFile>(),
            words::<BindFile>(),
            words::<AuthModeFile>(),
            words::<ReloadModeFile>(),
            words::<LevelFile>(),
            words::<ScopeFile>(),
        ];
        for ((key, listed), want) in ENUMS.iter().zip(want) {
            assert_eq!(*listed, want, "{key}");
        }
    }
}
