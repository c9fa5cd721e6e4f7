//! One WebSocket connection, from `connect.challenge` to close.
//!
//! The thread owns the socket. It is non-blocking and the thread sleeps in
//! `poll` on two fds: the socket and the outbox's eventfd, which other
//! threads signal after queueing an event. So reads, replies and broadcasts
//! interleave without a second thread per connection and without timed
//! polling. This module never holds the state lock while writing.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::auth;
use crate::methods::{self, Caller, Refusal};
use crate::protocol::{self, ErrorShape, Inbound};
use crate::state::{now_ms, Client, Next, Outbox, Shared, UnauthSlot, VERSION};
use crate::sys::{self, PollFd, POLLIN, POLLOUT};

/// Who is on the other end, as far as the upgrade request told.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub ip: IpAddr,
    /// A direct loopback connection (no proxy headers).
    pub local: bool,
    /// The upgrade carried a browser `Origin`.
    pub browser: bool,
}

type Ws = WebSocket<TcpStream>;

/// How long a client may leave our writes blocked (not reading at all)
/// before it is dropped: twice the default tick interval, after which
/// OpenClaw clients give up on a silent gateway themselves.
const WRITE_STALL: Duration = Duration::from_secs(60);

/// How a connection ends, decided by the protocol layer.
enum End {
    /// Send a close frame with this code and reason, then linger.
    Close(u16, String),
    /// The peer is gone or closed cleanly; nothing more to send.
    Gone,
}

fn close(code: u16, reason: impl Into<String>) -> End {
    End::Close(code, reason.into())
}

pub fn serve(
    shared: &Arc<Shared>,
    stream: TcpStream,
    leftover: Vec<u8>,
    peer: Peer,
    mut slot: UnauthSlot,
) {
    let live = shared.live();
    let limits = &live.settings.limits;
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    // A peer that vanished without a FIN (unplugged, out of range) is found
    // by the kernel instead of holding its thread until the next write.
    let _ = sys::set_tcp_keepalive(&stream, 60);
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(limits.max_payload * 2 + 256 * 1024)
        .max_message_size(Some(limits.max_pre_hello_frame_bytes))
        .max_frame_size(Some(limits.max_pre_hello_frame_bytes));
    let mut ws = WebSocket::from_partially_read(stream, leftover, Role::Server, Some(cfg));
    let nonce = sys::uuid_v4();
    let mut conn = Conn {
        ws: &mut ws,
        want_write: false,
    };
    let end = match conn.send(protocol::challenge_frame(&nonce, now_ms())) {
        Err(end) => end,
        Ok(()) => match handshake(shared, &mut conn, peer, &mut slot) {
            Err(end) => end,
            Ok(session) => {
                let key = session.key;
                let end = session.run(shared, &mut conn);
                disconnect(shared, key, session.presence_key.as_deref());
                end
            }
        },
    };
    drop(slot);
    if let End::Close(code, reason) = end {
        finish(&mut ws, code, &reason);
    }
}

struct Conn<'a> {
    ws: &'a mut Ws,
    /// The last flush would have blocked: wait for POLLOUT before writing
    /// more, so queued events stay in the bounded outbox.
    want_write: bool,
}

impl Conn<'_> {
    fn fd(&self) -> i32 {
        self.ws.get_ref().as_raw_fd()
    }

    /// Queues a frame. tungstenite keeps it even when the socket would
    /// block; that only means: write nothing more until it drains.
    fn write(&mut self, text: String) -> Result<(), End> {
        match self.ws.write(Message::text(text)) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(_) => Err(End::Gone),
        }
    }

    fn send(&mut self, text: String) -> Result<(), End> {
        self.write(text)?;
        self.flush()
    }

    fn flush(&mut self) -> Result<(), End> {
        match self.ws.flush() {
            Ok(()) => {
                self.want_write = false;
                Ok(())
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(_) => Err(End::Gone),
        }
    }

    /// One message, `None` when the socket has nothing more for now.
    fn read(&mut self) -> Result<Option<Message>, End> {
        match self.ws.read() {
            Ok(m) => Ok(Some(m)),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(tungstenite::Error::Capacity(_)) => Err(close(1009, "frame too large")),
            Err(tungstenite::Error::Utf8(_)) => Err(close(1007, "invalid utf-8")),
            Err(tungstenite::Error::Protocol(_)) => Err(close(1002, "protocol error")),
            Err(_) => Err(End::Gone),
        }
    }

    /// Sleeps until the socket or `wake` is ready, or `timeout` passes.
    fn wait(&self, wake: Option<&sys::EventFd>, timeout: Option<Duration>) -> Result<(), End> {
        let sock = PollFd::new(
            self.fd(),
            POLLIN | if self.want_write { POLLOUT } else { 0 },
        );
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        let polled = match wake {
            Some(w) => sys::poll(&mut [sock, PollFd::new(w.as_raw_fd(), POLLIN)], ms),
            None => sys::poll(&mut [sock], ms),
        };
        polled.map(|_| ()).map_err(|_| End::Gone)
    }
}

/// An authenticated connection after `hello-ok`.
struct Session {
    key: u64,
    caller: Caller,
    presence_key: Option<String>,
    outbox: Arc<Outbox>,
}

fn handshake(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    peer: Peer,
    slot: &mut UnauthSlot,
) -> Result<Session, End> {
    let live = shared.live();
    let limits = &live.settings.limits;
    let deadline = Instant::now() + Duration::from_millis(limits.handshake_timeout_ms);
    let mut frames = 0usize;
    loop {
        while let Some(msg) = conn.read()? {
            frames += 1;
            if frames > limits.max_pre_hello_frames {
                return Err(close(1008, "too many frames before connect"));
            }
            match msg {
                Message::Text(t) => return connect(shared, conn, peer, slot, t.as_str()),
                Message::Binary(_) => return Err(close(1008, "connect must be a text frame")),
                Message::Close(_) => return Err(End::Gone),
                _ => {}
            }
        }
        conn.flush()?;
        let now = Instant::now();
        if now >= deadline {
            // The reference closes a silent client 1000 with no reason,
            // which clients treat once as a transient drop.
            return Err(close(1000, ""));
        }
        conn.wait(None, Some(deadline - now))?;
    }
}

/// Answers the first frame: `hello-ok`, or an error and the close it implies.
fn connect(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    peer: Peer,
    slot: &mut UnauthSlot,
    text: &str,
) -> Result<Session, End> {
    let (id, params) = match protocol::parse_frame(text) {
        Err(protocol::FrameError::NotJson(_)) => return Err(close(1000, "")),
        Err(protocol::FrameError::NotObject) => return Err(close(1008, "invalid handshake")),
        Ok(Inbound::Req { id, method, params }) if method == "connect" => (id, params),
        Ok(Inbound::Req { id, .. }) => {
            let e = ErrorShape::invalid("invalid handshake: first request must be connect");
            return Err(refuse(conn, &id, &e, 1008));
        }
        Ok(_) => {
            return Err(close(
                1008,
                "invalid handshake: first frame must be a connect request",
            ))
        }
    };
    let p = match protocol::parse_connect(params.as_ref()) {
        Ok(p) => p,
        Err(msg) => return Err(refuse(conn, &id, &ErrorShape::invalid(msg), 1008)),
    };
    let Some(version) = protocol::negotiate(p.min_protocol, p.max_protocol) else {
        let e = protocol::protocol_mismatch(p.min_protocol, p.max_protocol);
        return Err(refuse(conn, &id, &e, 1002));
    };
    // A browser page must never enjoy the loopback exemption: that is how a
    // malicious site brute-forces a local gateway.
    let exempt = peer.local && !peer.browser;
    let now = Instant::now();
    let locked = shared.state().limiter.check(peer.ip, exempt, now);
    if let Err(retry_after_ms) = locked {
        return Err(refuse(conn, &id, &auth::rate_limited(retry_after_ms), 1008));
    }
    if let Err(failure) = auth::check(&shared.live().secret, &p.auth) {
        if failure.counts() {
            let delay = shared.state().limiter.record_failure(peer.ip, exempt, now);
            // Slows a guesser on loopback; sleeping here holds only this
            // connection's thread, never the state lock.
            std::thread::sleep(delay);
        }
        log::warn!(
            "refused connect from {}: {} (client {} {})",
            peer.addr,
            failure.to_error().message,
            p.client.id,
            protocol::clip(&p.client.version, 64)
        );
        return Err(refuse(conn, &id, &failure.to_error(), 1008));
    }
    let scopes = protocol::granted_scopes(&p, peer.local && !peer.browser);
    let key = shared.next_conn_id();
    let conn_id = sys::uuid_v4();
    let presence_key = p
        .device_id
        .clone()
        .or_else(|| p.client.instance_id.clone())
        .unwrap_or_else(|| conn_id.clone())
        .to_lowercase();
    let listed = p.client.mode != "cli";
    let outbox = match Outbox::new(shared.live().settings.limits.max_buffered_bytes) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            log::error!("cannot create an eventfd: {e}");
            let e = ErrorShape::unavailable("gateway out of resources");
            return Err(refuse(conn, &id, &e, 1013));
        }
    };
    {
        let mut st = shared.state();
        st.limiter.record_success(peer.ip);
        st.clients.insert(
            key,
            Client {
                outbox: outbox.clone(),
            },
        );
    }
    if listed {
        let fields = presence_fields(&p, &peer, &scopes);
        shared.update_presence(|pr, now| {
            pr.upsert(&presence_key, &fields, now);
            true
        });
    }
    let hello = hello_ok(shared, version, &conn_id, &p.role, &scopes);
    conn.ws.set_config(|c| {
        c.max_message_size = Some(shared.live().settings.limits.max_payload);
        c.max_frame_size = Some(shared.live().settings.limits.max_payload);
    });
    log::info!(
        "client connected: {} {} {} from {} (protocol {version}, conn {conn_id})",
        p.client.id,
        p.client.mode,
        protocol::clip(&p.client.version, 64),
        peer.addr
    );
    let session = Session {
        key,
        caller: Caller {
            role: p.role.clone(),
            scopes,
            protocol: version,
            presence_key: presence_key.clone(),
        },
        presence_key: listed.then_some(presence_key),
        outbox,
    };
    // Before `hello-ok` leaves: a client that has it may open another
    // socket at once and must find its slot free.
    slot.release();
    if let Err(end) = conn.send(protocol::res_ok(&id, &hello)) {
        disconnect(shared, key, session.presence_key.as_deref());
        return Err(end);
    }
    Ok(session)
}

fn refuse(conn: &mut Conn, id: &str, e: &ErrorShape, code: u16) -> End {
    match conn.send(protocol::res_err(id, e)) {
        Ok(()) => close(code, e.close_reason()),
        Err(end) => end,
    }
}

fn presence_fields(
    p: &protocol::ConnectParams,
    peer: &Peer,
    scopes: &[String],
) -> Map<String, Value> {
    let c = &p.client;
    let mut m = Map::new();
    let host = c.display_name.clone().unwrap_or_else(|| c.id.clone());
    m.insert("host".into(), json!(host));
    if !peer.ip.is_loopback() {
        m.insert("ip".into(), json!(peer.ip.to_string()));
    }
    m.insert("version".into(), json!(c.version));
    m.insert("platform".into(), json!(c.platform));
    if let Some(f) = &c.device_family {
        m.insert("deviceFamily".into(), json!(f));
    }
    if let Some(mi) = &c.model_identifier {
        m.insert("modelIdentifier".into(), json!(mi));
    }
    m.insert("mode".into(), json!(c.mode));
    m.insert("reason".into(), json!("connect"));
    if let Some(d) = &p.device_id {
        m.insert("deviceId".into(), json!(d));
    }
    if let Some(i) = &c.instance_id {
        m.insert("instanceId".into(), json!(i));
    }
    m.insert("roles".into(), json!([p.role]));
    m.insert("scopes".into(), json!(scopes));
    m
}

fn hello_ok(shared: &Shared, protocol: u64, conn_id: &str, role: &str, scopes: &[String]) -> Value {
    let live = shared.live();
    let s = &live.settings;
    let (presence, sv) = {
        let st = shared.state();
        (shared.presence_list(&st), Shared::state_version(&st))
    };
    let main_session_key = if s.session_scope == "global" {
        "global".to_string()
    } else {
        format!("agent:{}:{}", s.default_agent_id, s.main_key)
    };
    json!({
        "type": "hello-ok",
        "protocol": protocol,
        "server": {"version": VERSION, "connId": conn_id},
        "features": {"methods": methods::METHODS, "events": methods::EVENTS},
        "snapshot": {
            "presence": presence,
            "health": methods::health(shared),
            "stateVersion": sv.to_json(),
            "uptimeMs": shared.uptime_ms(),
            "sessionDefaults": {
                "defaultAgentId": s.default_agent_id,
                "mainKey": s.main_key,
                "mainSessionKey": main_session_key,
                "scope": s.session_scope,
            },
        },
        "auth": {"role": role, "scopes": scopes},
        "policy": {
            "maxPayload": s.limits.max_payload,
            "maxBufferedBytes": s.limits.max_buffered_bytes,
            "tickIntervalMs": s.tick_interval_ms,
        },
    })
}

impl Session {
    fn run(&self, shared: &Arc<Shared>, conn: &mut Conn) -> End {
        let mut seq: u64 = 0;
        let mut denials: u32 = 0;
        let max_denials = shared.live().settings.limits.max_unauthorized_calls;
        let mut stalled: Option<Instant> = None;
        loop {
            let step = (|| -> Result<(), End> {
                // Requests are read only while replies can be written: a
                // peer that does not read its answers stops being read,
                // and TCP pushes back on it instead of our memory.
                while !conn.want_write {
                    let Some(msg) = conn.read()? else { break };
                    match msg {
                        Message::Text(t) => self.on_text(shared, conn, t.as_str(), &mut denials)?,
                        Message::Binary(_) => {
                            let e = ErrorShape::invalid(
                                "invalid frame: binary frames are not supported",
                            );
                            conn.send(protocol::res_err("invalid", &e))?;
                        }
                        _ => {}
                    }
                    if denials > max_denials {
                        return Err(close(1008, "too many unauthorized requests"));
                    }
                }
                if conn.want_write {
                    // Events wait in the bounded outbox. A close request
                    // (shutdown, slow consumer) cannot be written either,
                    // so it drops the socket.
                    if self.outbox.close_requested() {
                        return Err(End::Gone);
                    }
                } else {
                    self.write_events(conn, &mut seq)?;
                }
                conn.flush()?;
                let timeout = if conn.want_write {
                    let since = *stalled.get_or_insert_with(Instant::now);
                    let left = WRITE_STALL.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        log::info!("dropping a client that has not read for {WRITE_STALL:?}");
                        return Err(End::Gone);
                    }
                    Some(left)
                } else {
                    stalled = None;
                    None
                };
                conn.wait(Some(self.outbox.wake_fd()), timeout)
            })();
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Writes queued events until the outbox is empty or the socket would
    /// block; each event gets this connection's next `seq` as it is written,
    /// so dropped events leave no gaps.
    fn write_events(&self, conn: &mut Conn, seq: &mut u64) -> Result<(), End> {
        self.outbox.begin();
        while !conn.want_write {
            match self.outbox.pop() {
                Next::Empty => break,
                Next::Close(code, reason) => return Err(End::Close(code, reason)),
                Next::Event(ev) => {
                    *seq += 1;
                    let frame =
                        protocol::event_frame(ev.name, &ev.payload, Some(*seq), ev.state_version);
                    conn.write(frame)?;
                }
            }
        }
        Ok(())
    }

    fn on_text(
        &self,
        shared: &Arc<Shared>,
        conn: &mut Conn,
        text: &str,
        denials: &mut u32,
    ) -> Result<(), End> {
        let reply = match protocol::parse_frame(text) {
            Err(protocol::FrameError::NotJson(e)) => protocol::res_err(
                "invalid",
                &ErrorShape::invalid(format!("invalid frame: {e}")),
            ),
            Err(protocol::FrameError::NotObject) => protocol::res_err(
                "invalid",
                &ErrorShape::invalid("invalid frame: expected an object"),
            ),
            Ok(Inbound::Cancel) => return Ok(()),
            Ok(Inbound::Invalid { id, why }) => protocol::res_err(
                id.as_deref().unwrap_or("invalid"),
                &ErrorShape::invalid(why),
            ),
            Ok(Inbound::Req { id, method, params }) => {
                if method == "connect" {
                    protocol::res_err(&id, &ErrorShape::invalid("connect already completed"))
                } else {
                    match methods::authorize(&self.caller, &method) {
                        Err(Refusal::Unknown(e)) => protocol::res_err(&id, &e),
                        Err(Refusal::Denied(e)) => {
                            *denials += 1;
                            protocol::res_err(&id, &e)
                        }
                        Ok(()) => {
                            *denials = 0;
                            match methods::call(shared, &self.caller, &method, params.as_ref()) {
                                Ok(payload) => protocol::res_ok(&id, &payload),
                                Err(e) => protocol::res_err(&id, &e),
                            }
                        }
                    }
                }
            }
        };
        conn.send(reply)
    }
}

fn disconnect(shared: &Shared, key: u64, presence_key: Option<&str>) {
    shared.state().clients.remove(&key);
    if let Some(pk) = presence_key {
        shared.update_presence(|pr, now| pr.mark(pk, "disconnect", now));
    }
}

/// Sends a close frame, waits briefly for it to leave and for the peer's
/// reply, then lets the socket drop.
fn finish(ws: &mut Ws, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    };
    let _ = ws.close(Some(frame));
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        let pending = match ws.flush() {
            Ok(()) => false,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(_) => break,
        };
        if !pending {
            match ws.read() {
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let mut fds = [PollFd::new(
            ws.get_ref().as_raw_fd(),
            POLLIN | if pending { POLLOUT } else { 0 },
        )];
        let ms = (deadline - now).as_millis() as i32;
        if sys::poll(&mut fds, ms.max(1)).is_err() {
            break;
        }
    }
    let _ = ws.get_ref().shutdown(std::net::Shutdown::Both);
}
