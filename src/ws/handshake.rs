//! The handshake: from `connect.challenge` to `hello-ok`. It reads the
//! first frame, checks the client's parameters and secret, registers the
//! connection and its presence, and answers `hello-ok` or the error and
//! the close it implies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tungstenite::Message;

use super::connection::{disconnect, Session};
use super::transport::Conn;
use super::{close, End, Peer};
use crate::auth;
use crate::methods::{self, Caller};
use crate::protocol::VERSION;
use crate::protocol::{self, ErrorShape, Inbound};
use crate::state::{Client, Outbox, Shared, UnauthSlot};
use crate::sys;

pub(super) fn handshake(
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
