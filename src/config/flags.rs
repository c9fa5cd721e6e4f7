//! What the command line says about configuration: where the files are,
//! and the flags of `run` and of the client commands that win over the
//! environment and the file. Plain data, filled in by `cli`.

use std::net::IpAddr;
use std::path::PathBuf;

use super::{AuthMode, BindMode};

/// Where the gateway's files are: shared by `run` and the client commands,
/// so that `clawgate call` finds the same port and generated token as the
/// `clawgate run` it talks to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub dev: bool,
    pub profile: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunArgs {
    pub location: Location,
    pub bind: Option<BindMode>,
    pub bind_host: Option<IpAddr>,
    pub auth: Option<AuthMode>,
    pub token: Option<String>,
    pub password: Option<String>,
    pub allow_unconfigured: bool,
    pub reset: bool,
    pub force: bool,
    pub verbose: bool,
    pub json_logs: bool,
}

/// Options every client command takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientArgs {
    pub location: Location,
    pub url: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
    /// Milliseconds; default 10000.
    pub timeout_ms: u64,
    pub json: bool,
}

/// The host and port of a `--url`, checked the way the client will use
/// them, so a URL that cannot work is a usage error when it is typed
/// rather than a "cannot resolve" at connect time. Returns the host
/// without IPv6 brackets and the port (80, the ws:// default, when the
/// URL names none). The message is the reason only; the caller names the
/// flag and the value.
pub fn ws_host_port(url: &str) -> Result<(String, u16), String> {
    let Some(rest) = url.strip_prefix("ws://") else {
        return Err(if url.starts_with("wss://") {
            "wss:// is not supported yet (it is planned, with TLS): use a ws:// URL on loopback or a private network".to_string()
        } else {
            "expected a ws:// URL".to_string()
        });
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL cannot contain spaces or control characters".into());
    }
    if !url.is_ascii() {
        return Err("a URL is ASCII: percent-encode other characters".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "a user or password in the URL is not supported: use --token or --password".into(),
        );
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (ip, after) = inner
            .split_once(']')
            .ok_or("the IPv6 address is missing its closing ']'")?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("'[{ip}]' is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected ':PORT' after ']'")?),
        };
        (ip, port)
    } else {
        let (h, _) = authority.split_once(':').unwrap_or((authority, ""));
        let plain = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
        if !h.chars().all(plain) {
            return Err(format!("'{h}' is not a host name or IP address"));
        }
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err("the port must be a number from 1 to 65535".into()),
        },
    };
    // What the WebSocket handshake parses the URL with: anything it would
    // still refuse is refused here too.
    if let Err(e) = url.parse::<tungstenite::http::Uri>() {
        return Err(format!("not a valid URL: {e}"));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::ws_host_port;

    #[test]
    fn ws_urls_give_host_and_port() {
        for (url, host, port) in [
            ("ws://127.0.0.1:18789", "127.0.0.1", 18789),
            ("ws://localhost:5/x?y#z", "localhost", 5),
            ("ws://[::1]:7", "::1", 7),
            ("ws://[fe80::1]", "fe80::1", 80),
            ("ws://gw.lan", "gw.lan", 80),
        ] {
            assert_eq!(ws_host_port(url), Ok((host.to_string(), port)), "{url}");
        }
    }

    #[test]
    fn urls_that_cannot_work_are_refused_with_the_reason() {
        for (url, why) in [
            (
                "wss://h:1",
                "wss:// is not supported yet (it is planned, with TLS)",
            ),
            ("http://h", "expected a ws:// URL"),
            ("ws://", "the URL names no host"),
            ("ws://:80", "the URL names no host"),
            ("ws://h:99999", "the port must be a number from 1 to 65535"),
            ("ws://h:0", "the port must be a number from 1 to 65535"),
            ("ws://h:", "the port must be a number from 1 to 65535"),
            ("ws://h:x", "the port must be a number from 1 to 65535"),
            ("ws://[::1", "the IPv6 address is missing its closing ']'"),
            ("ws://[::1]x", "expected ':PORT' after ']'"),
            ("ws://[nope]:1", "'[nope]' is not an IPv6 address"),
            ("ws://host:1/with space", "a URL cannot contain spaces"),
            (
                "ws://u:p@h:1",
                "a user or password in the URL is not supported",
            ),
            ("ws://h%41:1", "'h%41' is not a host name or IP address"),
            ("ws://h:1/é", "a URL is ASCII"),
        ] {
            let got = ws_host_port(url).expect_err(url);
            assert!(got.starts_with(why), "{url}: {got}");
        }
    }
}
