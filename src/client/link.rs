//! One client connection to a gateway: the upgrade, the challenge, the
//! `connect` request, then requests and their answers, all under one
//! deadline.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::config::{ClientArgs, ClientTarget};
use crate::protocol;
use crate::protocol::VERSION;
use crate::sys;

/// An answer from the gateway that is not a success.
pub(super) enum Failure {
    /// The gateway answered a request with an error object.
    Remote(Value),
    /// The gateway answered the WebSocket upgrade, then refused `connect`
    /// (usually the credential): it is there, unlike with `Other`.
    Refused(Value),
    /// Anything else: unreachable, closed, timed out.
    Other(String),
}

impl Failure {
    /// Whether the gateway was reached: it answered the upgrade.
    pub(super) fn reachable(&self) -> bool {
        !matches!(self, Failure::Other(_))
    }

    /// How `status` and `probe` describe a failed connection: "reachable,
    /// auth refused: <message>" when the gateway refused the credential,
    /// "unreachable: <message>" when it was not reached at all.
    pub(super) fn describe(&self) -> String {
        describe(self.reachable(), &self.json()["error"])
    }

    pub(super) fn message(&self) -> String {
        match self {
            Failure::Remote(e) | Failure::Refused(e) => format!(
                "{} ({})",
                e["message"].as_str().unwrap_or("error"),
                e["code"].as_str().unwrap_or("UNKNOWN")
            ),
            Failure::Other(m) => m.clone(),
        }
    }

    pub(super) fn json(&self) -> Value {
        match self {
            Failure::Remote(e) | Failure::Refused(e) => json!({"ok": false, "error": e}),
            Failure::Other(m) => {
                json!({"ok": false, "error": {"code": "CLIENT_ERROR", "message": m}})
            }
        }
    }
}

/// A failed connection in words, from the `error` object of its JSON
/// form and whether the gateway answered the upgrade (see
/// `Failure::describe`).
pub(super) fn describe(reachable: bool, error: &Value) -> String {
    let msg = error["message"].as_str().unwrap_or("error");
    if !reachable {
        return format!("unreachable: {msg}");
    }
    let what = match error["details"]["code"].as_str() {
        Some(code) if code.starts_with("AUTH_") => "auth",
        _ => "connect",
    };
    format!("reachable, {what} refused: {msg}")
}

/// How the client introduces itself in `connect`.
pub(super) struct Hello<'a> {
    pub(super) mode: &'a str,
    pub(super) scopes: Vec<String>,
}

pub(super) struct Session {
    pub(super) ws: WebSocket<TcpStream>,
    pub(super) deadline: Instant,
    pub(super) timeout_ms: u64,
    pub(super) hello: Value,
}

pub(super) fn open(
    target: &ClientTarget,
    args: &ClientArgs,
    hello: &Hello,
) -> Result<Session, Failure> {
    let timeout_ms = args.timeout_ms;
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let url = &target.url;
    let addr = socket_addr(url).map_err(Failure::Other)?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(timeout_ms))
        .map_err(|e| Failure::Other(unreachable(url, &e)))?;
    let _ = stream.set_nodelay(true);
    // The upgrade gets what the connect left of the deadline.
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let _ = stream.set_read_timeout(Some(left));
    let _ = stream.set_write_timeout(Some(left));
    let cfg = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let (ws, _) = tungstenite::client::client_with_config(url.as_str(), stream, Some(cfg))
        .map_err(|e| {
            Failure::Other(match e {
                tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r)) => {
                    let body = r
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    format!(
                        "gateway refused the connection: HTTP {} {}",
                        r.status().as_u16(),
                        body.trim()
                    )
                }
                // A blocking socket whose read timeout ran out: the peer
                // accepted but never answered the upgrade.
                tungstenite::HandshakeError::Interrupted(_) => timeout_message(timeout_ms),
                tungstenite::HandshakeError::Failure(tungstenite::Error::Io(e))
                    if is_timeout(&e) =>
                {
                    timeout_message(timeout_ms)
                }
                other => format!("websocket handshake with {url} failed: {other}"),
            })
        })?;
    let mut s = Session {
        ws,
        deadline,
        timeout_ms,
        hello: Value::Null,
    };
    let challenge = s.next_frame()?;
    if challenge["event"] != "connect.challenge" || challenge["payload"]["nonce"].as_str().is_none()
    {
        return Err(Failure::Other("gateway sent no connect.challenge".into()));
    }
    let mut auth = serde_json::Map::new();
    if let Some(t) = &target.token {
        auth.insert("token".into(), json!(t));
    }
    if let Some(p) = &target.password {
        auth.insert("password".into(), json!(p));
    }
    let params = json!({
        "minProtocol": 3,
        "maxProtocol": protocol::MAX_PROTOCOL,
        "client": {
            "id": "cli", "mode": hello.mode, "version": VERSION,
            "platform": std::env::consts::OS, "instanceId": sys::uuid_v4(),
        },
        "role": "operator",
        "scopes": hello.scopes,
        "caps": [],
        "auth": auth,
    });
    s.hello = s
        .request("connect", Some(&params), false)
        .map_err(|f| match f {
            Failure::Remote(e) => Failure::Refused(e),
            other => other,
        })?;
    Ok(s)
}

/// The one wording for every phase that runs out of time (upgrade,
/// challenge, response).
fn timeout_message(ms: u64) -> String {
    format!("gateway timeout after {ms}ms")
}

/// What a blocking socket's read or write timeout looks like.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn unreachable(url: &str, e: &io::Error) -> String {
    format!(
        "gateway not reachable at {url}: {}",
        crate::error::io_message(e)
    )
}

/// `ws://host:port/…` to a socket address. The URL was checked when it
/// was parsed (`config::ws_host_port`); numeric hosts and `localhost`
/// need no resolver, other names go through the system's.
fn socket_addr(url: &str) -> Result<SocketAddr, String> {
    let (host, port) = crate::config::ws_host_port(url).map_err(|why| format!("'{url}': {why}"))?;
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve '{host}'"))
}

impl Session {
    /// The next JSON frame, honouring the deadline.
    pub(super) fn next_frame(&mut self) -> Result<Value, Failure> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out());
            }
            let _ = self.ws.get_ref().set_read_timeout(Some(left));
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str())
                        .map_err(|e| Failure::Other(format!("gateway sent invalid JSON: {e}")))
                }
                Ok(Message::Close(frame)) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(Failure::Other(format!("gateway closed ({code}): {reason}")));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => return Err(self.timed_out()),
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Err(Failure::Other(
                        "gateway closed (1006): connection lost".into(),
                    ))
                }
                Err(e) => return Err(Failure::Other(format!("gateway connection failed: {e}"))),
            }
        }
    }

    fn timed_out(&self) -> Failure {
        Failure::Other(timeout_message(self.timeout_ms))
    }

    /// One request; events in between are skipped. With `expect_final`,
    /// an `accepted` interim answer is skipped too.
    pub(super) fn request(
        &mut self,
        method: &str,
        params: Option<&Value>,
        expect_final: bool,
    ) -> Result<Value, Failure> {
        let f = self.exchange(method, params, expect_final, &mut |_| {})?;
        if f["ok"] == true {
            return Ok(f.get("payload").cloned().unwrap_or(Value::Null));
        }
        Err(Failure::Remote(f["error"].clone()))
    }

    /// One request, and the `res` frame that answers it, whole: a failed
    /// `agent` run carries a payload beside its error. Events that arrive
    /// meanwhile go to `on_event`, in order, as they come.
    pub(super) fn exchange(
        &mut self,
        method: &str,
        params: Option<&Value>,
        expect_final: bool,
        on_event: &mut dyn FnMut(&Value),
    ) -> Result<Value, Failure> {
        let id = sys::uuid_v4();
        let mut frame = json!({"type": "req", "id": id, "method": method});
        if let Some(p) = params {
            frame["params"] = p.clone();
        }
        self.ws
            .send(Message::text(frame.to_string()))
            .map_err(|e| Failure::Other(format!("sending to the gateway failed: {e}")))?;
        loop {
            let f = self.next_frame()?;
            if f["type"] == "event" {
                on_event(&f);
                continue;
            }
            if f["type"] != "res" || f["id"] != id.as_str() {
                continue;
            }
            if expect_final && f["ok"] == true && f["payload"]["status"] == "accepted" {
                continue;
            }
            return Ok(f);
        }
    }

    pub(super) fn close(mut self) {
        let _ = self
            .ws
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)));
        let _ = self.ws.close(None);
        // Wait briefly for the gateway's close reply so neither side sees
        // a reset; errors here change nothing for the result.
        for _ in 0..4 {
            if self.ws.read().is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_socket_addresses_without_a_resolver() {
        for (url, addr) in [
            ("ws://127.0.0.1:18789", "127.0.0.1:18789"),
            ("ws://localhost:5/x", "127.0.0.1:5"),
            ("ws://[::1]:7", "[::1]:7"),
            ("ws://10.0.0.2", "10.0.0.2:80"),
        ] {
            assert_eq!(socket_addr(url), Ok(addr.parse().unwrap()), "{url}");
        }
        assert!(socket_addr("wss://x:1")
            .unwrap_err()
            .contains("wss:// is not supported"));
        assert!(socket_addr("http://x:1").is_err());
    }
}
