//! The answer's head, parsed with httparse once it is complete, and the
//! body framing it implies. Pure; the connection reads the bytes.

use super::chunked::Chunked;

/// Headers parsed from one head; more is an error, not a truncation.
pub(super) const MAX_HEADERS: usize = 64;

/// A parsed head, owned so the buffer it came from can be reused.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) reason: String,
    pub(super) headers: Vec<(String, String)>,
    /// Its length in bytes, where the body starts.
    pub(super) len: usize,
}

/// A complete response head at the start of `buf`; `None` while it is
/// incomplete.
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut slots);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(format!(
                "upstream answered with more than {MAX_HEADERS} headers"
            ))
        }
        Err(e) => return Err(format!("upstream answered with a malformed head: {e}")),
    };
    let headers = r
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    Ok(Some(Head {
        status: r.code.unwrap_or(0),
        reason: r.reason.unwrap_or("").to_string(),
        headers,
        len,
    }))
}

/// How the body ends (RFC 9112 §6.3).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Framing {
    Length(u64),
    Chunked(Chunked),
    Close,
}

pub(super) fn framing(status: u16, headers: &[(String, String)]) -> Result<Framing, String> {
    if status < 200 || status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    let all = |name: &'static str| {
        headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if let Some(last) = all("transfer-encoding").flat_map(|v| v.split(',')).last() {
        // A transfer coding beside a length wins over it; an encoding that
        // does not end in chunked runs to the close.
        return Ok(match last.trim().eq_ignore_ascii_case("chunked") {
            true => Framing::Chunked(Chunked::default()),
            false => Framing::Close,
        });
    }
    let mut length = None;
    for v in all("content-length") {
        let n = Some(v)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or("upstream answered with a bad content-length")?;
        if length.is_some_and(|l| l != n) {
            return Err("upstream answered with conflicting content-lengths".into());
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}
