//! A device identity for the bench's clients: an Ed25519 key of its own
//! and the `device` block signed over the v3 payload, as the stock node
//! host and Control UI sign it.

use std::sync::atomic::{AtomicUsize, Ordering};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub struct Device {
    key: SigningKey,
    pub id: String,
    public_key: String,
}

fn b64url(b: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(b)
}

impl Device {
    /// A new key, different for every call in this process.
    pub fn new() -> Device {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let seed: [u8; 32] =
            Sha256::digest(format!("clawgate-bench-{}-{n}", std::process::id())).into();
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

    /// The `device` block for `params` answering `challenge`. The signed
    /// token is the shared token, else the device token.
    pub fn block(&self, params: &Value, challenge: &Value) -> Option<Value> {
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        let c = &params["client"];
        let auth = &params["auth"];
        let ts = challenge["ts"].as_u64()?;
        let nonce = s(&challenge["nonce"]);
        let scopes: Vec<String> = params["scopes"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        let token = auth["token"].as_str().or(auth["deviceToken"].as_str());
        let text = [
            "v3".to_string(),
            self.id.clone(),
            s(&c["id"]),
            s(&c["mode"]),
            s(&params["role"]),
            scopes.join(","),
            ts.to_string(),
            token.unwrap_or("").to_string(),
            nonce.clone(),
            s(&c["platform"]).to_ascii_lowercase(),
            s(&c["deviceFamily"]).to_ascii_lowercase(),
        ]
        .join("|");
        Some(
            json!({"id": self.id, "publicKey": self.public_key, "signedAt": ts, "nonce": nonce,
                    "signature": b64url(&self.key.sign(text.as_bytes()).to_bytes())}),
        )
    }
}
