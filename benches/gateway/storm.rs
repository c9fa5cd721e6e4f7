//! Row 14, a reconnect storm of paired devices: every client holds an
//! Ed25519 key, is paired once (silently, on loopback with the shared
//! token) and then reconnects again and again with its device token
//! alone, signing each challenge, the way a node host or the Control UI
//! comes back after a gateway restart. Handshakes per second, with the
//! device proof and the token check in the path.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::device::Device;
use crate::load::{rate, rate_cell};
use crate::report::Table;
use crate::wire::{close, handshake_with, Target};

fn params(auth: Value) -> Value {
    json!({
        "minProtocol": 3, "maxProtocol": 4,
        "client": {"id": "openclaw-tui", "mode": "ui", "version": "bench", "platform": "linux"},
        "role": "operator", "scopes": ["operator.read"], "caps": [], "auth": auth,
    })
}

/// One handshake with `auth`; returns the device token hello-ok gave.
fn connect(t: &Target, d: &Device, auth: Value) -> Result<String, String> {
    let (ws, hello) = handshake_with(t, params(auth), |p, ch| d.block(p, ch))?;
    close(ws);
    hello["auth"]["deviceToken"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| "hello-ok without deviceToken".into())
}

pub fn row(t: &mut Table, target: &Target, external: bool, total: usize) {
    let what = format!("reconnect storm: {total} device-token reconnects, 10 devices in flight");
    if external {
        t.na("14", &what, "—", crate::EXT);
        return;
    }
    let mut devices = Vec::new();
    for _ in 0..10 {
        let d = Device::new();
        match connect(target, &d, json!({"token": target.token})) {
            Ok(token) => devices.push((d, token)),
            Err(e) => {
                return t.add(
                    "14",
                    &what,
                    "—",
                    (format!("pairing: {e}"), crate::report::Met::No),
                )
            }
        }
    }
    let (devices, target) = (Arc::new(devices), target.clone());
    let r = rate(10, total, Duration::from_secs(30), move |i| {
        let (d, token) = &devices[i];
        connect(&target, d, json!({"deviceToken": token})).map(|_| ())
    });
    t.add("14", &what, "—", rate_cell(r));
}
