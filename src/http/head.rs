//! Reading one request head: bounded in bytes, header count and time, into
//! the connection's own buffer, then parsed once with httparse.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::config::Limits;

/// A parsed request head, owned so the read buffer can be reused.
#[derive(Debug, Default)]
pub(super) struct Head {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) minor: u8,
    pub(super) headers: Vec<(String, String)>,
    pub(super) len: usize,
}

impl Head {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The declared body length. Whatever two HTTP parsers could read
    /// differently is refused, so a proxy in front of the gateway and the
    /// gateway itself cannot disagree on where a request ends (request
    /// smuggling): a value that is not plain digits (`+5`, `5 5`, `0x10`),
    /// two different values, or a length beside a `Transfer-Encoding`.
    /// Repeats of one value count as one (RFC 9112 §6.3). A length too large
    /// for a `usize` is `usize::MAX`, which no body limit allows.
    pub(super) fn content_length(&self) -> Result<Option<usize>, &'static str> {
        let mut declared = None;
        for (k, v) in &self.headers {
            if !k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            let v = v.trim_matches([' ', '\t']);
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err("content-length must be plain digits");
            }
            let n = v.bytes().fold(0usize, |n, d| {
                n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
            });
            if declared.is_some_and(|d| d != n) {
                return Err("conflicting content-length headers");
            }
            declared = Some(n);
        }
        if declared.is_some() && self.header("transfer-encoding").is_some() {
            return Err("content-length and transfer-encoding together are refused");
        }
        Ok(declared)
    }

    /// Whether `name` appears more than once.
    pub(super) fn repeated(&self, name: &str) -> bool {
        let mut all = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        all.next().is_some() && all.next().is_some()
    }

    pub(super) fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    pub(super) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

pub(super) enum ReadHead {
    Head(Head),
    /// The peer closed (or went idle) before sending a byte.
    Idle,
    Timeout,
    TooLarge,
    Bad(String),
}

pub(super) fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    limits: &Limits,
    first_byte_wait: Duration,
) -> ReadHead {
    let max = limits.max_head_bytes;
    let started = Instant::now();
    let mut deadline = if buf.is_empty() {
        started + first_byte_wait
    } else {
        started + Duration::from_millis(limits.head_timeout_ms)
    };
    loop {
        if let Some(end) = find_head_end(buf) {
            return parse_head(&buf[..end], end, limits.max_headers);
        }
        if buf.len() >= max {
            return ReadHead::TooLarge;
        }
        let now = Instant::now();
        if now >= deadline {
            return if buf.is_empty() {
                ReadHead::Idle
            } else {
                ReadHead::Timeout
            };
        }
        if stream.set_read_timeout(Some(deadline - now)).is_err() {
            return ReadHead::Idle;
        }
        // Read straight into the buffer's tail: no scratch array on the
        // connection thread's small stack.
        let filled = buf.len();
        let room = (max - filled).min(2048);
        buf.resize(filled + room, 0);
        let got = stream.read(&mut buf[filled..]);
        buf.truncate(filled + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => return ReadHead::Idle,
            Ok(_) => {
                if filled == 0 {
                    // The head deadline runs from its first byte.
                    deadline = Instant::now() + Duration::from_millis(limits.head_timeout_ms);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return ReadHead::Idle,
        }
    }
}

/// Where the head ends: after its first empty line. A line may end in a
/// bare LF as well as in CRLF, as nginx and Node accept and httparse
/// parses; looking for CRLFCRLF alone would leave such a client waiting
/// for the head deadline instead of answering it.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find_map(|i| match &buf[i..] {
        [b'\n', b'\n', ..] => Some(i + 2),
        [b'\n', b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

fn parse_head(bytes: &[u8], len: usize, max_headers: usize) -> ReadHead {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return ReadHead::Bad("incomplete request head".into()),
        Err(httparse::Error::TooManyHeaders) => return ReadHead::TooLarge,
        Err(e) => return ReadHead::Bad(format!("malformed request: {e}")),
    }
    let owned = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    ReadHead::Head(Head {
        method: req.method.unwrap_or("").to_string(),
        target: req.path.unwrap_or("/").to_string(),
        minor: req.version.unwrap_or(1),
        headers: owned,
        len,
    })
}

pub(super) fn wants_close(h: &Head) -> bool {
    if h.minor == 0 {
        !h.has_token("connection", "keep-alive")
    } else {
        h.has_token("connection", "close")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_and_overflow() {
        let raw = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nrest";
        let end = find_head_end(raw).unwrap();
        let ReadHead::Head(h) = parse_head(&raw[..end], end, 100) else {
            panic!("expected a head")
        };
        assert_eq!(h.path(), "/health");
        assert!(wants_close(&h));
        assert_eq!(&raw[h.len..], b"rest");
        let many: String = (0..5).map(|i| format!("X-{i}: 1\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(
            parse_head(raw.as_bytes(), raw.len(), 3),
            ReadHead::TooLarge
        ));
    }

    fn head(raw: &str) -> Head {
        let end = find_head_end(raw.as_bytes()).expect("a complete head");
        match parse_head(&raw.as_bytes()[..end], end, 100) {
            ReadHead::Head(h) => h,
            _ => panic!("expected a head: {raw:?}"),
        }
    }

    #[test]
    fn content_lengths_that_parsers_could_read_differently_are_refused() {
        let cl =
            |headers: &str| head(&format!("POST / HTTP/1.1\r\n{headers}\r\n")).content_length();
        assert_eq!(cl("Host: x\r\n"), Ok(None));
        assert_eq!(cl("Content-Length: 5\r\n"), Ok(Some(5)));
        assert_eq!(
            cl("Content-Length: 5\r\ncontent-length: 005\r\n"),
            Ok(Some(5))
        );
        assert_eq!(
            cl("Content-Length: 99999999999999999999999999\r\n"),
            Ok(Some(usize::MAX))
        );
        for bad in ["+5", "5 5", "0x10", "-1", "", "5,5", "5;"] {
            assert_eq!(
                cl(&format!("Content-Length: {bad}\r\n")),
                Err("content-length must be plain digits"),
                "{bad:?}"
            );
        }
        assert_eq!(
            cl("Content-Length: 5\r\nContent-Length: 6\r\n"),
            Err("conflicting content-length headers")
        );
        assert_eq!(
            cl("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
            Err("content-length and transfer-encoding together are refused")
        );
    }

    #[test]
    fn heads_may_end_lines_in_bare_lf() {
        for raw in [
            "GET / HTTP/1.1\nHost: x\n\nrest",
            "GET / HTTP/1.1\r\nHost: x\r\n\r\nrest",
            "GET / HTTP/1.1\r\nHost: x\n\r\nrest",
            "GET / HTTP/1.1\nHost: x\r\n\nrest",
        ] {
            assert_eq!(find_head_end(raw.as_bytes()), raw.find("rest"), "{raw:?}");
            let h = head(raw);
            assert_eq!((h.path(), h.header("host")), ("/", Some("x")), "{raw:?}");
        }
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nHost: x\n"), None);
    }

    #[test]
    fn repeated_headers_are_seen_in_any_case() {
        let h = head("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhost: b\r\n\r\n");
        assert!(h.repeated("HOST"));
        assert!(!h.repeated("x"));
        assert!(!h.repeated("origin"));
    }
}
