//! Phase one's value checks: each flag's text to a typed value. The
//! converters give only the reason a text is not a value; `value` puts the
//! flag and the text in front, so every message has the same shape. Pure
//! functions: no I/O, no environment.

use std::net::IpAddr;

use super::MAX_LOGS_LIMIT;
use crate::error::Error;

/// A flag without a value; `--dev=yes` is refused rather than ignored.
pub fn switch(parser: &mut lexopt::Parser, name: &str) -> Result<bool, Error> {
    match parser.optional_value() {
        None => Ok(true),
        Some(v) => {
            let v = v.to_string_lossy();
            Err(Error::usage(format!(
                "option '--{name}' takes no value (got '{v}')"
            )))
        }
    }
}

/// Read a flag's value and convert it; `convert` gives only the reason, and
/// the message names the value and the flag.
pub fn value<T>(
    parser: &mut lexopt::Parser,
    name: &str,
    convert: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, Error> {
    let v = parser.value()?;
    let invalid =
        |v: &str, why: &str| Error::usage(format!("invalid value '{v}' for '--{name}': {why}"));
    let text = v
        .to_str()
        .ok_or_else(|| invalid(&v.to_string_lossy(), "not valid UTF-8"))?;
    convert(text).map_err(|why| invalid(text, &why))
}

/// What a `--port` is for: `run` may listen on 0 (any free port), but a
/// client must connect to a fixed port and a service must have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortUse {
    Listen,
    Connect,
    Service,
}

pub fn port(s: &str, for_: PortUse) -> Result<u16, String> {
    let (min, why) = match for_ {
        PortUse::Listen => (0, "expected a port number from 0 to 65535"),
        PortUse::Connect => (1, "a client needs a fixed port from 1 to 65535"),
        PortUse::Service => (1, "a service needs a fixed port from 1 to 65535"),
    };
    match s.parse::<u16>() {
        Ok(p) if p >= min => Ok(p),
        _ => Err(why.into()),
    }
}

pub fn ip_addr(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| "expected a numeric IPv4 or IPv6 address".into())
}

/// Profile names become part of a directory name (`~/.clawgate-NAME`), so
/// nothing that could climb out of the home directory gets through.
pub fn profile(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("expected 1 to 64 letters, digits, '-' or '_'".into())
    }
}

/// An empty secret would silently mean "no auth", so it is refused.
pub fn secret(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

/// A name or id typed by hand (`--node`, `--idempotency-key`): anything
/// but nothing.
pub fn nonempty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

/// A role, scope or command name: one word, as the protocol spells them.
pub fn word(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("expected one word without spaces".into())
    } else {
        Ok(s.to_owned())
    }
}

/// Checked whole here (`config::ws_host_port`), so a URL the client could
/// never connect to is a usage error, not a failure at connect time.
pub fn url(s: &str) -> Result<String, String> {
    crate::config::ws_host_port(s).map(|_| s.to_owned())
}

pub fn timeout(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(ms),
        _ => Err("expected a number of milliseconds greater than 0".into()),
    }
}

pub fn params(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))
}

pub fn limit(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_LOGS_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of lines from 1 to {MAX_LOGS_LIMIT}"
        )),
    }
}
