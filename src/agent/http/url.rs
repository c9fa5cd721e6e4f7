//! The URL form this client takes, `http[s]://host[:port][/path][?query]`,
//! and the request head it sends there. Pure, so the refusals (user info,
//! control characters that could forge a header) are unit-tested.

use std::net::Ipv6Addr;

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https://`: the connection is TLS, port 443 unless given.
    pub tls: bool,
    /// A name or address, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// The path and query sent on the request line.
    pub target: String,
}

impl Url {
    /// Errors never quote the URL: it may carry a secret in its query.
    pub fn parse(url: &str) -> Result<Url, String> {
        const SCHEME: &str = "the upstream url must start with http:// or https://";
        let (scheme, rest) = url.split_once("://").ok_or(SCHEME)?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(SCHEME.into()),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err("credentials in the upstream url are not supported; set the api key or headers instead".into());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(r) => {
                let (h, after) = r.split_once(']').ok_or("the upstream url has a bad host")?;
                if h.parse::<Ipv6Addr>().is_err() {
                    return Err("the upstream url has a bad host".into());
                }
                match after {
                    "" => (h, None),
                    _ => (h, Some(after.strip_prefix(':').unwrap_or("x"))),
                }
            }
            None => match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        let name_byte = |b: u8| b.is_ascii_alphanumeric() || b"-._~%:".contains(&b);
        if host.is_empty() || !host.bytes().all(name_byte) {
            return Err("the upstream url has a bad host".into());
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or("the upstream url has a bad port")?,
            Some(_) => return Err("the upstream url has a bad port".into()),
        };
        let tail = tail.split('#').next().unwrap_or("");
        let target = match tail.as_bytes().first() {
            None => "/".to_string(),
            Some(b'?') => format!("/{tail}"),
            Some(_) => tail.to_string(),
        };
        if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("the upstream url has a space or control character in its path".into());
        }
        Ok(Url {
            tls,
            host: host.to_string(),
            port,
            target,
        })
    }

    /// `host:port` as errors name it (and the `Host` header with the port).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Host` header: the port only when it is not the scheme's own.
    pub(super) fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        match (self.port == default, self.host.contains(':')) {
            (true, true) => format!("[{}]", self.host),
            (true, false) => self.host.clone(),
            (false, _) => self.authority(),
        }
    }
}

/// The request head: `Host`, the caller's headers (`Content-Type`,
/// `Accept` and `User-Agent` get defaults unless given), the length, and
/// `Connection: close`, since one request per connection is all a turn
/// needs. A header this client must own, or a value with a line break
/// (which would forge headers), is refused, naming the header only.
pub(super) fn request_head(
    url: &Url,
    headers: &[(String, String)],
    body_len: usize,
) -> Result<String, String> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\n",
        url.target,
        url.host_header()
    );
    let defaults = [
        ("Content-Type", "application/json"),
        ("Accept", "text/event-stream"),
        (
            "User-Agent",
            concat!("clawgate/", env!("CARGO_PKG_VERSION")),
        ),
    ];
    for (name, value) in defaults {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(token) {
            return Err(format!("header '{name}' is not a valid header name"));
        }
        let owned = ["host", "content-length", "connection", "transfer-encoding"];
        if owned.iter().any(|o| name.eq_ignore_ascii_case(o)) {
            return Err(format!("header '{name}' is set by clawgate itself"));
        }
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(format!(
                "header '{name}' has a control character in its value"
            ));
        }
        head.push_str(&format!("{name}: {}\r\n", value.trim()));
    }
    head.push_str(&format!(
        "Content-Length: {body_len}\r\nConnection: close\r\n\r\n"
    ));
    Ok(head)
}
