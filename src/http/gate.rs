//! The checks at the door, shared by plain requests and upgrades: tokens
//! in URLs, the Host header on loopback binds (DNS rebinding), the browser
//! Origin and proxy headers; and the WebSocket upgrade answer, which builds
//! the `Peer` the connection is served as.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;

use serde_json::json;

use super::head::Head;
use super::response::{send, Reply};
use crate::auth::Peer;
use crate::state::{Live, Shared};

/// Checks shared by plain requests and upgrades: repeated Host or Origin
/// headers, tokens in URLs and the Host header on loopback binds (DNS
/// rebinding).
pub(super) fn common_checks(shared: &Shared, live: &Live, h: &Head) -> Option<Reply> {
    // The gates below read the first of each; a proxy in front may read
    // the last. Two of either has no meaning, so it is refused rather than
    // guessed at.
    for (name, why) in [
        ("host", "more than one host header"),
        ("origin", "more than one origin header"),
    ] {
        if h.repeated(name) {
            return Some(Reply::refusal(400, why));
        }
    }
    if url_has_token(&h.target) {
        return Some(Reply::refusal(
            400,
            "credentials in the URL are refused: send the token in the connect frame",
        ));
    }
    if shared.loopback_only()
        && !host_allowed(h.header("host"), &live.settings.allowed_hosts, h.minor)
    {
        return Some(Reply::refusal(421, "host not allowed"));
    }
    None
}

/// Whether the query names a credential. Keys are compared as a server
/// framework would read them (percent-decoded, `+` as a space, `;` as a
/// separator as well as `&`, any case), and more loosely still (spaces and
/// `+` around the name ignored), so that no spelling of `?token=` slips a
/// secret into URLs, where proxies and access logs keep it.
fn url_has_token(target: &str) -> bool {
    let Some((_, query)) = target.split_once('?') else {
        return false;
    };
    query.split(['&', ';']).any(|kv| {
        let key = decode_key(kv.split('=').next().unwrap_or(""));
        let key = String::from_utf8_lossy(&key);
        let key = key.trim_matches([' ', '+']);
        key.eq_ignore_ascii_case("token") || key.eq_ignore_ascii_case("password")
    })
}

/// A query key percent-decoded, with `+` read as a space. A `%` not
/// followed by two hex digits stays as it is.
fn decode_key(key: &str) -> Vec<u8> {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The host part of a Host header or an origin's authority, lowercased,
/// without the port and IPv6 brackets.
fn host_name(authority: &str) -> String {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        a.rsplit_once(':').map_or(a, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                a
            }
        })
    };
    host.to_ascii_lowercase()
}

fn host_allowed(host: Option<&str>, extra: &[String], minor: u8) -> bool {
    let Some(host) = host else {
        // HTTP/1.0 may omit Host; HTTP/1.1 must send it.
        return minor == 0;
    };
    is_loopback_name(host)
        || extra
            .iter()
            .any(|e| e.eq_ignore_ascii_case(&host_name(host)))
}

/// A `Host` (or an origin's authority) that names this host's loopback.
fn is_loopback_name(host: &str) -> bool {
    matches!(host_name(host).as_str(), "127.0.0.1" | "localhost" | "::1")
}

/// The Origin gate: absent (CLI, native apps) is fine; a browser page may
/// connect only from the gateway's own origin or a configured one.
fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    let origin = origin.trim();
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false; // "null", file:, extensions…
    };
    host.is_some_and(|h| h.trim().eq_ignore_ascii_case(authority))
}

fn has_proxy_headers(h: &Head) -> bool {
    h.headers.iter().any(|(k, _)| {
        let k = k.to_ascii_lowercase();
        k.starts_with("x-forwarded-") || k == "forwarded" || k == "x-real-ip"
    })
}

/// Checks an upgrade request and answers it with 101; the request itself is
/// dropped on return so it does not live as long as the connection.
pub(super) fn upgrade(
    shared: &Arc<Shared>,
    live: &Live,
    mut stream: TcpStream,
    peer: SocketAddr,
    head: Head,
) -> Option<(TcpStream, Peer)> {
    if let Some(refusal) = common_checks(shared, live, &head) {
        let _ = send(&mut stream, refusal);
        return None;
    }
    let origin = head.header("origin").map(str::to_string);
    if let Some(o) = &origin {
        if !origin_allowed(o, head.header("host"), &live.settings.allowed_origins) {
            log::warn!(
                "refused websocket from {peer}: origin {} not allowed",
                crate::protocol::clip(o, 256)
            );
            let body =
                json!({"error": "origin not allowed", "code": "CONTROL_UI_ORIGIN_NOT_ALLOWED"});
            let refusal = Reply {
                close: true,
                ..Reply::json(403, body)
            };
            let _ = send(&mut stream, refusal);
            return None;
        }
    }
    let request = match to_http_request(&head) {
        Some(r) => r,
        None => {
            let _ = send(
                &mut stream,
                Reply::refusal(400, "malformed upgrade request"),
            );
            return None;
        }
    };
    let response = match tungstenite::handshake::server::create_response(&request) {
        Ok(r) => r,
        Err(e) => {
            let why = format!("bad websocket upgrade: {e}");
            let _ = send(&mut stream, Reply::refusal(400, why));
            return None;
        }
    };
    let Client {
        ip,
        local,
        forwarded,
    } = client(live, &head, peer);
    let mut out = Vec::with_capacity(256);
    if tungstenite::handshake::server::write_response(&mut out, &response).is_err()
        || stream.write_all(&out).is_err()
    {
        return None;
    }
    let origin_loopback = origin.as_deref().is_some_and(|o| {
        let authority = o
            .trim()
            .strip_prefix("http://")
            .or_else(|| o.trim().strip_prefix("https://"))
            .unwrap_or("");
        is_loopback_name(authority) && head.header("host").is_some_and(is_loopback_name)
    });
    let peer = Peer {
        addr: peer,
        ip,
        local,
        browser: origin.is_some(),
        forwarded,
        origin_loopback,
    };
    Some((stream, peer))
}

/// Who sent a request, as the gate sees it.
pub struct Client {
    pub ip: IpAddr,
    /// A loopback peer without proxy headers (or behind a trusted proxy
    /// that says the client is local).
    pub local: bool,
    pub forwarded: bool,
}

/// The client of a request: behind a configured reverse proxy it is who
/// the proxy says it is; anyone else's forwarding headers only make the
/// peer non-local.
pub fn client(live: &Live, head: &Head, peer: SocketAddr) -> Client {
    let direct = canonical_ip(peer.ip());
    let forwarded = has_proxy_headers(head);
    let trusted = forwarded && live.settings.trusted_proxies.contains(&direct);
    let ip = if trusted {
        forwarded_client(head).unwrap_or(direct)
    } else {
        direct
    };
    Client {
        ip,
        local: ip.is_loopback() && (!forwarded || trusted),
        forwarded,
    }
}

/// The client address a trusted proxy reports: the last `X-Forwarded-For`
/// entry (the one the proxy itself appended), else `X-Real-IP`.
fn forwarded_client(h: &Head) -> Option<IpAddr> {
    let last = h
        .header("x-forwarded-for")
        .and_then(|v| v.rsplit(',').next())
        .or_else(|| h.header("x-real-ip"))?;
    last.trim().parse::<IpAddr>().ok().map(canonical_ip)
}

/// IPv4-mapped IPv6 peers count as their IPv4 address, so one client
/// cannot dodge per-IP limits by switching address families.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn to_http_request(h: &Head) -> Option<tungstenite::handshake::server::Request> {
    let mut b = tungstenite::http::Request::builder()
        .method(h.method.as_str())
        .uri(h.target.as_str())
        .version(if h.minor == 0 {
            tungstenite::http::Version::HTTP_10
        } else {
            tungstenite::http::Version::HTTP_11
        });
    for (k, v) in &h.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_normalized() {
        assert_eq!(host_name("127.0.0.1:18789"), "127.0.0.1");
        assert_eq!(host_name("LOCALHOST"), "localhost");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("evil.com:80"), "evil.com");
    }

    #[test]
    fn loopback_hosts_pass_and_rebinding_names_fail() {
        let extra = vec!["gw.lan".to_string()];
        for ok in ["127.0.0.1:1", "localhost", "[::1]:9", "GW.lan:80"] {
            assert!(host_allowed(Some(ok), &extra, 1), "{ok}");
        }
        for bad in ["evil.com", "127.0.0.1.evil.com", "10.0.0.1:18789", ""] {
            assert!(!host_allowed(Some(bad), &extra, 1), "{bad}");
        }
        assert!(!host_allowed(None, &extra, 1));
        assert!(host_allowed(None, &extra, 0));
    }

    #[test]
    fn origin_gate() {
        let allowed = vec!["https://ui.example".to_string()];
        assert!(origin_allowed("https://ui.example", None, &allowed));
        assert!(origin_allowed(
            "http://127.0.0.1:18789",
            Some("127.0.0.1:18789"),
            &[]
        ));
        assert!(!origin_allowed(
            "http://127.0.0.1:9999",
            Some("127.0.0.1:18789"),
            &[]
        ));
        assert!(!origin_allowed("null", Some("127.0.0.1:18789"), &[]));
        assert!(!origin_allowed(
            "https://evil.example",
            Some("127.0.0.1:1"),
            &allowed
        ));
    }

    #[test]
    fn tokens_in_urls_are_spotted() {
        assert!(url_has_token("/?token=abc"));
        assert!(url_has_token("/ws?x=1&Token=abc"));
        assert!(url_has_token("/?password"));
        assert!(!url_has_token("/?tokens=1"));
        assert!(!url_has_token("/health"));
    }

    #[test]
    fn encoded_and_disguised_token_keys_are_spotted() {
        for t in [
            "/?%74oken=x",
            "/?TOKEN=x",
            "/?to%6ben=x",
            "/?to%6Ben=x",
            "/?%54%4F%4B%45%4E=x",
            "/?%70assword=x",
            "/?a=1;token=x",
            "/?a=1;%74oken",
            "/?+token=x",
            "/?token+=x",
            "/?%2Btoken%2B=x",
            "/?%20token=x",
            "/ws?x=1&&PassWord=",
        ] {
            assert!(url_has_token(t), "{t}");
        }
        for t in [
            "/?tok%65ns=x",
            "/?x=token",
            "/?x=%74oken",
            "/?%zztoken=x",
            "/?%7",
            "/?%",
            "/?to+ken=x",
        ] {
            assert!(!url_has_token(t), "{t}");
        }
        assert_eq!(decode_key("%41+%zz%4"), b"A %zz%4");
    }

    #[test]
    fn mapped_ipv4_peers_are_canonical() {
        let ip: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(canonical_ip(ip), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
