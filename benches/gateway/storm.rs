//! A reconnect storm of paired devices: every client holds an Ed25519
//! key, is paired once (silently, on loopback with the shared token) and
//! then reconnects again and again with its device token alone, signing
//! each challenge, the way a node host or the Control UI comes back after
//! a gateway restart. Measures handshakes per second with the device
//! proof and the token check in the path.

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::Message;

use crate::load::Rate;
use crate::wire::{close, Target, Ws, IO_TIMEOUT};

struct Device {
    key: SigningKey,
    id: String,
    public_key: String,
}

fn b64url(b: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(b)
}

impl Device {
    fn new(n: usize) -> Device {
        let seed: [u8; 32] =
            Sha256::digest(format!("bench-device-{}-{n}", std::process::id())).into();
        let key = SigningKey::from_bytes(&seed);
        let raw = key.verifying_key().to_bytes();
        let id = Sha256::digest(raw)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Device {
            key,
            id,
            public_key: b64url(&raw),
        }
    }

    /// One handshake: `auth` is `{"token": …}` the first time and
    /// `{"deviceToken": …}` after. Returns the device token hello-ok gave.
    fn connect(&self, t: &Target, auth: Value) -> Result<(Ws, String), String> {
        let stream =
            TcpStream::connect_timeout(&t.addr, IO_TIMEOUT).map_err(|e| format!("tcp: {e}"))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|_| stream.set_nodelay(true))
            .map_err(|e| e.to_string())?;
        let cfg = WebSocketConfig::default().read_buffer_size(16 * 1024);
        let url = format!("ws://{}/", t.addr);
        let (mut ws, _) = tungstenite::client::client_with_config(url.as_str(), stream, Some(cfg))
            .map_err(|e| format!("upgrade: {e}"))?;
        let ch = read(&mut ws)?;
        let (nonce, ts) = (
            ch["payload"]["nonce"].as_str().unwrap_or("").to_string(),
            ch["payload"]["ts"].as_u64().unwrap_or(0),
        );
        let token = auth["token"]
            .as_str()
            .or(auth["deviceToken"].as_str())
            .unwrap_or("");
        let text = format!(
            "v3|{}|openclaw-tui|ui|operator|operator.read|{ts}|{token}|{nonce}|linux|",
            self.id
        );
        let sig = b64url(&self.key.sign(text.as_bytes()).to_bytes());
        let req = json!({"type": "req", "id": "c1", "method": "connect", "params": {
            "minProtocol": 3, "maxProtocol": 4,
            "client": {"id": "openclaw-tui", "mode": "ui", "version": "bench", "platform": "linux"},
            "role": "operator", "scopes": ["operator.read"], "caps": [], "auth": auth,
            "device": {"id": self.id, "publicKey": self.public_key, "signature": sig,
                       "signedAt": ts, "nonce": nonce}}});
        ws.send(Message::text(req.to_string()))
            .map_err(|e| format!("send: {e}"))?;
        loop {
            let v = read(&mut ws)?;
            if v["type"] == "res" && v["id"] == "c1" {
                if v["ok"] != true {
                    return Err(format!("connect refused: {}", v["error"]));
                }
                let token = v["payload"]["auth"]["deviceToken"]
                    .as_str()
                    .ok_or("hello-ok without deviceToken")?
                    .to_string();
                return Ok((ws, token));
            }
        }
    }
}

fn read(ws: &mut Ws) -> Result<Value, String> {
    for _ in 0..64 {
        match ws.read().map_err(|e| format!("read: {e}"))? {
            Message::Text(t) => return serde_json::from_str(t.as_str()).map_err(|e| e.to_string()),
            Message::Close(c) => return Err(format!("closed: {c:?}")),
            _ => {}
        }
    }
    Err("no text frame in 64 frames".into())
}

/// `threads` devices, each paired once, then `total` device-token
/// reconnects among them, or until `limit`.
pub fn device_token_rate(t: &Target, threads: usize, total: usize, limit: Duration) -> Rate {
    let mut tokens = Vec::new();
    for n in 0..threads {
        let d = Device::new(n);
        match d.connect(t, json!({"token": t.token})) {
            Ok((ws, token)) => {
                close(ws);
                tokens.push((d, token));
            }
            Err(e) => {
                return Rate {
                    ok: 0,
                    failed: 1,
                    first_error: Some(format!("pairing: {e}")),
                    secs: 0.0,
                }
            }
        }
    }
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = tokens
        .into_iter()
        .map(|(d, token)| {
            let (t, next, failed, first_error, barrier) = (
                t.clone(),
                next.clone(),
                failed.clone(),
                first_error.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let t0 = Instant::now();
                let mut ok = 0usize;
                while next.fetch_add(1, Ordering::Relaxed) < total && t0.elapsed() < limit {
                    match d.connect(&t, json!({"deviceToken": token})) {
                        Ok((ws, _)) => {
                            close(ws);
                            ok += 1;
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                }
                ok
            })
        })
        .collect();
    barrier.wait();
    let t0 = Instant::now();
    let ok = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let secs = t0.elapsed().as_secs_f64();
    let first_error = first_error.lock().ok().and_then(|mut f| f.take());
    Rate {
        ok,
        failed: failed.load(Ordering::Relaxed),
        first_error,
        secs,
    }
}

/// Row 14: the reconnect storm, 10 devices in flight.
pub fn row(t: &mut crate::report::Table, target: &Target, external: bool, total: usize) {
    use crate::report::Met;
    let what = format!("reconnect storm: {total} device-token reconnects, 10 devices in flight");
    if external {
        t.na("14", &what, "—", crate::EXT);
        return;
    }
    let rate = device_token_rate(target, 10, total, Duration::from_secs(30));
    let mut res = format!(
        "{:.0} handshakes/s ({} in {:.2} s",
        rate.ok as f64 / rate.secs.max(1e-9),
        rate.ok,
        rate.secs
    );
    if rate.failed > 0 {
        let first = rate.first_error.unwrap_or_default();
        res.push_str(&format!("; {} FAILED: {first}", rate.failed));
    }
    res.push(')');
    let met = if rate.failed > 0 { Met::No } else { Met::Na };
    t.add("14", &what, "—", (res, met));
}
