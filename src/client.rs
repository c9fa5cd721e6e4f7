//! The client commands: `call`, `health`, `status`, `probe` and `logs`.
//!
//! Each opens one WebSocket to a gateway, answers the challenge with
//! `connect`, makes its requests and closes, all under one deadline
//! (`--timeout`). Start-up does no more than resolve the target, so
//! `clawgate call health` costs a few milliseconds on loopback. Nothing here
//! prints: results come back as text for `main` to print (`logs --follow`
//! hands each batch of lines to a callback `main` gives it).

mod logs;
mod status;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::cli::{CallArgs, ClientArgs};
use crate::config::{self, ClientTarget};
use crate::error::Error;
use crate::protocol;
use crate::state::VERSION;
use crate::sys;

pub use logs::logs;
pub use status::status;

/// What a command prints on stdout, and its exit status.
pub struct Output {
    pub text: String,
    pub code: i32,
    /// Lines for stderr (warnings, or the error of a command that still
    /// has a report to show); `main` prints each as `clawgate: <note>`.
    pub notes: Vec<String>,
}

impl Output {
    fn new(text: String, code: i32) -> Output {
        Output {
            text,
            code,
            notes: Vec::new(),
        }
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Where a client command connects, and with what. On top of
/// `config::resolve_client`: someone with no gateway of their own (no
/// location flags or variables, no `~/.clawgate/clawgate.json`) on a host
/// with an installed system service reaches that service; and the token
/// an install put in `gateway.env` beside the config is used the way the
/// service uses it, ahead of the config's and the generated one.
fn resolve(args: &ClientArgs) -> Result<ClientTarget, Error> {
    let loc = &args.location;
    let located = args.url.is_some()
        || loc.config.is_some()
        || loc.state_dir.is_some()
        || loc.dev
        || loc.profile.is_some()
        || [
            "CLAWGATE_CONFIG_PATH",
            "OPENCLAW_CONFIG_PATH",
            "CLAWGATE_STATE_DIR",
            "OPENCLAW_STATE_DIR",
        ]
        .iter()
        .any(|k| env(k).is_some_and(|v| !v.is_empty()));
    let mut args = args.clone();
    if !located {
        let own = config::state_dir(loc, &env).map(|d| d.join(config::CONFIG_FILE));
        if own.is_ok_and(|p| !p.exists()) {
            if let Some((config, state)) = crate::service::client_location(&env) {
                args.location.config = Some(config);
                args.location.state_dir = Some(state);
            }
        }
    }
    let mut target = config::resolve_client(&args, &env)?;
    let chosen_by_user = !matches!(target.secret_source, "config" | "token file" | "none");
    if args.url.is_some() || chosen_by_user || target.password.is_some() {
        return Ok(target);
    }
    let env_file = target
        .config_path
        .parent()
        .map(|dir| dir.join("gateway.env"));
    let token = env_file
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| crate::service::token_in_env_file(&text));
    if let Some(token) = token {
        target.token = Some(token);
        target.secret_source = "gateway.env";
    }
    Ok(target)
}

/// An answer from the gateway that is not a success.
enum Failure {
    /// The gateway answered with an error object.
    Remote(Value),
    /// Anything else: unreachable, closed, timed out.
    Other(String),
}

impl Failure {
    fn message(&self) -> String {
        match self {
            Failure::Remote(e) => format!(
                "{} ({})",
                e["message"].as_str().unwrap_or("error"),
                e["code"].as_str().unwrap_or("UNKNOWN")
            ),
            Failure::Other(m) => m.clone(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Failure::Remote(e) => json!({"ok": false, "error": e}),
            Failure::Other(m) => {
                json!({"ok": false, "error": {"code": "CLIENT_ERROR", "message": m}})
            }
        }
    }
}

/// How the client introduces itself in `connect`.
struct Hello<'a> {
    mode: &'a str,
    scopes: Vec<String>,
}

struct Session {
    ws: WebSocket<TcpStream>,
    deadline: Instant,
    timeout_ms: u64,
    hello: Value,
}

pub fn call(args: &CallArgs) -> Result<Output, Error> {
    let target = resolve(&args.client)?;
    // Least privilege, like the stock CLI: the one scope the method needs.
    let scope = protocol::required_scope(&args.method).unwrap_or(protocol::SCOPE_READ);
    let hello = Hello {
        mode: "cli",
        scopes: vec![scope.to_string()],
    };
    let result = open(&target, &args.client, &hello).and_then(|mut s| {
        let r = s.request(&args.method, args.params.as_ref(), args.expect_final);
        s.close();
        r
    });
    Ok(match result {
        Ok(payload) if args.client.json => Output::new(pretty(&payload), 0),
        Ok(payload) => Output::new(
            format!(
                "Gateway call: {}\n{}",
                args.method,
                indent(&pretty(&payload))
            ),
            0,
        ),
        Err(f) => fail(&f, args.client.json)?,
    })
}

pub fn health(args: &ClientArgs) -> Result<Output, Error> {
    let target = resolve(args)?;
    let hello = Hello {
        mode: "cli",
        scopes: vec![protocol::SCOPE_READ.to_string()],
    };
    let result = open(&target, args, &hello).and_then(|mut s| {
        let r = s.request("health", None, false);
        s.close();
        r
    });
    Ok(match result {
        Ok(p) if args.json => Output::new(pretty(&p), 0),
        Ok(p) => {
            let ok = p["ok"].as_bool().unwrap_or(false);
            let mut text = format!(
                "Gateway Health\n{} ({}ms)\n",
                if ok { "OK" } else { "NOT OK" },
                p["durationMs"].as_u64().unwrap_or(0)
            );
            let channels = p["channelOrder"].as_array().map_or(0, Vec::len);
            if channels == 0 {
                text.push_str("Channels: none configured\n");
            }
            Output::new(text.trim_end().to_string(), if ok { 0 } else { 1 })
        }
        Err(f) => fail(&f, args.json)?,
    })
}

/// `--json` scripts get the error object on stdout as well as the exit
/// status; people get one line on stderr.
fn fail(f: &Failure, json_out: bool) -> Result<Output, Error> {
    if json_out {
        Ok(Output {
            text: pretty(&f.json()),
            code: 1,
            notes: vec![f.message()],
        })
    } else {
        Err(Error::runtime(f.message()))
    }
}

/// Calls what `gateway probe` calls and reports each.
pub fn probe(args: &ClientArgs) -> Result<Output, Error> {
    let target = resolve(args)?;
    let hello = Hello {
        mode: "cli",
        scopes: vec![protocol::SCOPE_READ.to_string()],
    };
    let started = Instant::now();
    let mut session = match open(&target, args, &hello) {
        Ok(s) => s,
        Err(f) => {
            let report = json!({"ok": false, "url": target.url, "error": f.json()["error"]});
            let text = if args.json {
                pretty(&report)
            } else {
                format!("Gateway probe: {} unreachable: {}", target.url, f.message())
            };
            return Ok(Output::new(text, 1));
        }
    };
    let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut calls = Vec::new();
    let mut all_ok = true;
    for m in ["health", "status", "system-presence", "config.get"] {
        let t = Instant::now();
        let r = session.request(m, None, false);
        let ms = (t.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
        all_ok &= r.is_ok();
        calls.push(match r {
            Ok(_) => json!({"method": m, "ok": true, "ms": ms}),
            Err(f) => json!({"method": m, "ok": false, "ms": ms, "error": f.json()["error"]}),
        });
    }
    let server = session.hello["server"].clone();
    let proto = session.hello["protocol"].clone();
    session.close();
    let report = json!({
        "ok": all_ok, "url": target.url, "connectMs": (connect_ms * 10.0).round() / 10.0,
        "protocol": proto, "server": server, "calls": calls,
    });
    let text = if args.json {
        pretty(&report)
    } else {
        let mut t = format!(
            "Gateway probe: {} (server {}, protocol {}, connect {} ms)\n",
            target.url,
            server["version"].as_str().unwrap_or("?"),
            proto,
            report["connectMs"]
        );
        for c in &calls {
            let state = if c["ok"] == true {
                "ok".to_string()
            } else {
                format!("error: {}", c["error"]["message"].as_str().unwrap_or("?"))
            };
            t += &format!(
                "  {:<16} {:>7} ms  {state}\n",
                c["method"].as_str().unwrap_or(""),
                c["ms"]
            );
        }
        t.trim_end().to_string()
    };
    Ok(Output::new(text, if all_ok { 0 } else { 1 }))
}

fn open(target: &ClientTarget, args: &ClientArgs, hello: &Hello) -> Result<Session, Failure> {
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
    s.hello = s.request("connect", Some(&params), false)?;
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

/// `ws://host:port/…` to a socket address. Numeric hosts and `localhost`
/// need no resolver; other names go through the system's.
fn socket_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = if let Some(r) = url.strip_prefix("ws://") {
        r
    } else if url.starts_with("wss://") {
        return Err(format!(
            "'{url}': wss:// is not supported yet; use ws:// on loopback or a private network"
        ));
    } else {
        return Err(format!("'{url}': the URL must start with ws://"));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) => (authority, 80),
        },
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve '{host}'"))
}

impl Session {
    /// The next JSON frame, honouring the deadline.
    fn next_frame(&mut self) -> Result<Value, Failure> {
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
    fn request(
        &mut self,
        method: &str,
        params: Option<&Value>,
        expect_final: bool,
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
            if f["type"] != "res" || f["id"] != id.as_str() {
                continue;
            }
            if f["ok"] == true {
                let payload = f.get("payload").cloned().unwrap_or(Value::Null);
                if expect_final && payload["status"] == "accepted" {
                    continue;
                }
                return Ok(payload);
            }
            return Err(Failure::Remote(f["error"].clone()));
        }
    }

    fn close(mut self) {
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

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_socket_addresses_without_a_resolver() {
        assert_eq!(
            socket_addr("ws://127.0.0.1:18789").unwrap(),
            "127.0.0.1:18789".parse().unwrap()
        );
        assert_eq!(
            socket_addr("ws://localhost:5/x").unwrap(),
            "127.0.0.1:5".parse().unwrap()
        );
        assert_eq!(
            socket_addr("ws://[::1]:7").unwrap(),
            "[::1]:7".parse().unwrap()
        );
        assert_eq!(
            socket_addr("ws://10.0.0.2").unwrap(),
            "10.0.0.2:80".parse().unwrap()
        );
        assert!(socket_addr("wss://x:1").unwrap_err().contains("wss://"));
        assert!(socket_addr("http://x:1").is_err());
    }
}
