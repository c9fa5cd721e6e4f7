//! The handshake: from `connect.challenge` to `hello-ok`. It reads the
//! first frame, parses the `connect` params, asks the admission decision
//! (`auth::admit`), and then registers the connection and its presence
//! and answers `hello-ok`, or answers the error and closes as the decision
//! says. The decision itself is pure; this is the I/O around it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tungstenite::Message;

use super::connection::{peer_closed, Bounds, Connection};
use super::pairing;
use super::transport::Conn;
use super::{close, End};
use crate::auth::device::Challenge;
use crate::auth::{self, Admission, Grant, Peer};
use crate::methods::{self, Caller};
use crate::protocol::{
    self, ConnectParams, DeviceBlock, ErrorShape, Inbound, Payload, Role, VERSION,
};
use crate::state::{
    now_ms, ConnId, Live, Member, NodeInfo, Outbox, PresenceKey, Shared, UnauthSlot,
};
use crate::sys;

/// The challenge this connection was sent, which a device proof answers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent<'a> {
    pub nonce: &'a str,
    pub ts_ms: u64,
    pub at: Instant,
}

/// Waits for the first frame within the handshake deadline and answers it.
pub(super) fn handshake(
    shared: &Arc<Shared>,
    live: &Live,
    conn: &mut Conn,
    peer: Peer,
    slot: &mut UnauthSlot,
    sent: Sent,
) -> Result<Connection, End> {
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
                Message::Text(t) => return connect(shared, conn, peer, slot, sent, t.as_str()),
                Message::Binary(_) => return Err(close(1008, "connect must be a text frame")),
                Message::Close(_) => return Err(peer_closed(conn)),
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
    sent: Sent,
    text: &str,
) -> Result<Connection, End> {
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
    let p: ConnectParams = match protocol::parse("connect", params) {
        Ok(p) => p,
        Err(e) => return Err(refuse(conn, &id, &e, 1008)),
    };
    // One snapshot for this connect: the secret checked and the policy
    // advertised belong to the same configuration.
    let live = shared.live();
    let exempt = peer.direct_local();
    let now = Instant::now();
    let decision = auth::admit(auth::Request {
        params: &p,
        peer: &peer,
        secret: &live.secret,
        locked_out: shared.auth_lockout(peer.ip, exempt, now).err(),
    });
    let grant = match decision {
        Admission::Admit(grant) => grant,
        Admission::Refuse(r) => {
            if r.counts() {
                // Slows a guesser on loopback; sleeping here holds only
                // this connection's thread, never a lock.
                std::thread::sleep(shared.auth_failure(peer.ip, exempt, now));
            }
            if r.failure.is_some() {
                log::warn!(
                    "refused connect from {}: {} (client {} {})",
                    peer.addr,
                    r.error.message,
                    p.client.id,
                    protocol::clip(&p.client.version, 64)
                );
            }
            return Err(refuse(conn, &id, &r.error, r.close));
        }
    };
    let paired = match &p.device {
        None => None,
        Some(block) => Some(device_step(
            shared, conn, &id, &p, block, &peer, &grant, sent,
        )?),
    };
    let limits = &live.settings.limits;
    let outbox = match Outbox::new(limits.outbox_bytes(), limits.max_payload) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            log::error!("cannot create an eventfd: {e}");
            let e = ErrorShape::unavailable("gateway out of resources");
            return Err(refuse(conn, &id, &e, 1013));
        }
    };
    let conn_id = sys::uuid_v4();
    let device_id = paired.as_ref().map(|d| d.id.as_str());
    let presence_key =
        PresenceKey::for_connect(device_id, p.client.instance_id.as_deref(), &conn_id);
    let device: Option<Arc<str>> = device_id.map(Arc::from);
    let id_here = shared.next_conn_id();
    let connection = Connection::new(
        id_here,
        Caller {
            conn: id_here,
            role: grant.role,
            scopes: grant.scopes.clone(),
            protocol: grant.protocol,
            presence_key: presence_key.clone(),
            device: device.clone(),
        },
        // CLI calls come and go in milliseconds: they are not listed.
        (p.client.mode != "cli").then_some(presence_key),
        outbox.clone(),
        Bounds::new(&live.settings.limits),
    );
    let member = Member {
        role: grant.role,
        scopes: grant.scopes.clone(),
        device,
    };
    shared.register(connection.id(), peer.ip, outbox, member);
    if grant.role == Role::Node {
        let surface = paired.as_ref().and_then(|d| d.surface.clone());
        register_node(shared, connection.id(), &p, &peer, surface);
    }
    if let Some(key) = connection.listed() {
        shared.presence_update(key, &presence_fields(&p, &peer, &grant));
    }
    let token = paired.as_ref().and_then(|d| d.token.clone());
    let hello = hello_ok(shared, &live, &conn_id, &grant, token);
    let max_payload = live.settings.limits.max_payload;
    conn.ws.set_config(|c| {
        c.max_message_size = Some(max_payload);
        c.max_frame_size = Some(max_payload);
    });
    log::info!(
        "client connected: {} {} {} as {} from {} (protocol {}, conn {conn_id} {})",
        p.client.id,
        p.client.mode,
        protocol::clip(&p.client.version, 64),
        grant.role.as_str(),
        peer.addr,
        grant.protocol,
        connection.id()
    );
    // Before `hello-ok` leaves: a client that has it may open another
    // socket at once and must find its slot free.
    slot.release();
    if let Err(end) = conn.send(protocol::res_ok(&id, &hello)) {
        connection.leave(shared);
        return Err(end);
    }
    Ok(connection)
}

/// The device proof and pairing for a connect that carries a device
/// block: the device admitted, or the refusal sent and the close to make.
/// Out of line, like `pairing::settle`, to keep the common handshake's
/// stack frame small.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn device_step(
    shared: &Shared,
    conn: &mut Conn,
    id: &str,
    p: &ConnectParams,
    block: &DeviceBlock,
    peer: &Peer,
    grant: &Grant,
    sent: Sent,
) -> Result<pairing::Paired, End> {
    let challenge = Challenge {
        nonce: sent.nonce,
        ts_ms: sent.ts_ms,
        elapsed_ms: sent.at.elapsed().as_millis() as u64,
    };
    let r = match pairing::settle(shared, p, block, peer, grant, challenge) {
        Ok(paired) => return Ok(paired),
        Err(r) => r,
    };
    if r.counts {
        let exempt = peer.direct_local();
        std::thread::sleep(shared.auth_failure(peer.ip, exempt, Instant::now()));
    }
    log::info!(
        "refused device connect from {}: {} (client {})",
        peer.addr,
        r.error.message,
        p.client.id
    );
    Err(match conn.send(protocol::res_err(id, &r.error)) {
        Ok(()) => close(1008, r.reason),
        Err(end) => end,
    })
}

/// Lists a node (role `node`) in the registry that `node.invoke` routes
/// by, with the surface its pairing allows. Its id is its device id (a
/// node without one is refused before this).
#[inline(never)]
fn register_node(
    shared: &Shared,
    conn: ConnId,
    p: &ConnectParams,
    peer: &Peer,
    surface: Option<pairing::Surface>,
) {
    let c = &p.client;
    let node_id: Arc<str> = p
        .device_id()
        .or(c.instance_id.as_deref())
        .unwrap_or(&c.id)
        .into();
    let info = NodeInfo {
        node_id,
        display_name: c.display_name.clone(),
        platform: c.platform.clone(),
        version: c.version.clone(),
        client_id: c.id.clone(),
        client_mode: c.mode.clone(),
        device_family: c.device_family.clone(),
        caps: p.caps.clone(),
        commands: p.commands.clone(),
        permissions: p.permissions.clone(),
        path_env: p.path_env.clone(),
        remote_ip: (!peer.ip.is_loopback()).then(|| peer.ip.to_string()),
        connected_at_ms: now_ms(),
    };
    let id = info.node_id.clone();
    shared.node_connected(conn, info);
    // The stored approval is live at once; what it declared beyond that
    // waits for `node.pair.approve`, which makes it live in turn.
    let Some(s) = surface else { return };
    if let Some(at) = s.approved_at_ms {
        shared.node_surface_approved(&id, s.caps, s.commands, at);
    }
    if let Some(request) = &s.pending_request {
        shared.node_surface_pending(&id, Some(request));
    }
}

fn refuse(conn: &mut Conn, id: &str, e: &ErrorShape, code: u16) -> End {
    match conn.send(protocol::res_err(id, e)) {
        Ok(()) => close(code, e.close_reason()),
        Err(end) => end,
    }
}

// Out of line, like `hello_ok`: see `pairing::settle`.
#[inline(never)]
fn presence_fields(p: &ConnectParams, peer: &Peer, grant: &Grant) -> Map<String, Value> {
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
    if let Some(d) = p.device_id() {
        m.insert("deviceId".into(), json!(d));
    }
    if let Some(i) = &c.instance_id {
        m.insert("instanceId".into(), json!(i));
    }
    m.insert("roles".into(), json!([grant.role.as_str()]));
    m.insert("scopes".into(), json!(grant.scopes));
    m
}

/// `hello-ok` as JSON text. The presence list is spliced in as the text
/// the table keeps (bounded in bytes), not rebuilt as a JSON tree.
#[inline(never)]
fn hello_ok(
    shared: &Shared,
    live: &Live,
    conn_id: &str,
    grant: &Grant,
    token: Option<(String, u64)>,
) -> Payload {
    let s = &live.settings;
    let (presence, sv) = shared.presence_snapshot(s.limits.max_payload);
    let main_session_key = if s.session_scope == "global" {
        "global".to_string()
    } else {
        format!("agent:{}:{}", s.default_agent_id, s.main_key)
    };
    let server = json!({"version": VERSION, "connId": conn_id});
    let features =
        json!({"methods": methods::names().collect::<Vec<_>>(), "events": methods::EVENTS});
    let session_defaults = json!({
        "defaultAgentId": s.default_agent_id,
        "mainKey": s.main_key,
        "mainSessionKey": main_session_key,
        "scope": s.session_scope,
    });
    let mut auth = json!({"role": grant.role.as_str(), "scopes": grant.scopes,
                          "method": grant.method.as_str()});
    if let Some((token, issued)) = token {
        auth["deviceToken"] = json!(token);
        auth["issuedAtMs"] = json!(issued);
    }
    let policy = json!({
        "maxPayload": s.limits.max_payload,
        "maxBufferedBytes": s.limits.max_buffered_bytes,
        "tickIntervalMs": s.tick_interval_ms,
    });
    Payload::Json(format!(
        r#"{{"type":"hello-ok","protocol":{},"server":{server},"features":{features},"snapshot":{{"presence":{presence},"health":{},"stateVersion":{},"uptimeMs":{},"sessionDefaults":{session_defaults}}},"auth":{auth},"policy":{policy}}}"#,
        grant.protocol,
        methods::health(shared, live),
        sv.to_json(),
        shared.uptime_ms(),
    ))
}
