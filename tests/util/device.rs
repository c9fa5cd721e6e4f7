//! A device identity for tests: an Ed25519 key the test holds, and the
//! signed `device` block a client adds to `connect`, built the way the
//! stock clients build it (v3 payload, `signedAt` = the challenge `ts`).

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{rand_id, Ws};

pub struct Identity {
    key: SigningKey,
    pub id: String,
    pub public_key: String,
}

fn b64url(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

impl Identity {
    /// A fresh key, different for every call in this process.
    pub fn new() -> Identity {
        let seed: [u8; 32] = Sha256::digest(format!("clawgate-test-{}", rand_id())).into();
        Identity::from_seed(seed)
    }

    pub fn from_seed(seed: [u8; 32]) -> Identity {
        let key = SigningKey::from_bytes(&seed);
        let raw = key.verifying_key().to_bytes();
        let id = Sha256::digest(raw)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Identity {
            key,
            id,
            public_key: b64url(&raw),
        }
    }

    /// The `device` block for `params` answering `challenge` (the
    /// `connect.challenge` payload), signed over the v3 payload.
    pub fn block(&self, params: &Value, challenge: &Value) -> Value {
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        let auth = &params["auth"];
        let token = auth["token"]
            .as_str()
            .or(auth["deviceToken"].as_str())
            .or(auth["bootstrapToken"].as_str())
            .unwrap_or("");
        let scopes: Vec<String> = params["scopes"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        let c = &params["client"];
        let ts = challenge["ts"].as_u64().unwrap();
        let nonce = s(&challenge["nonce"]);
        let text = [
            "v3".to_string(),
            self.id.clone(),
            s(&c["id"]),
            s(&c["mode"]),
            s(&params["role"]),
            scopes.join(","),
            ts.to_string(),
            token.to_string(),
            nonce.clone(),
            s(&c["platform"]).trim().to_ascii_lowercase(),
            s(&c["deviceFamily"]).trim().to_ascii_lowercase(),
        ]
        .join("|");
        json!({
            "id": self.id,
            "publicKey": self.public_key,
            "signature": b64url(&self.key.sign(text.as_bytes()).to_bytes()),
            "signedAt": ts,
            "nonce": nonce,
        })
    }

    /// Sends `connect` with `params` plus this device's block and returns
    /// the whole response frame (`ok` or not).
    pub fn connect(&self, ws: &mut Ws, params: &Value) -> Value {
        self.connect_with(ws, params, |_| {})
    }

    /// As `connect`, letting the test spoil the signed block first.
    pub fn connect_with(
        &self,
        ws: &mut Ws,
        params: &Value,
        spoil: impl FnOnce(&mut Value),
    ) -> Value {
        let ch = ws.recv();
        assert_eq!(ch["event"], "connect.challenge", "{ch}");
        let mut p = params.clone();
        let mut block = self.block(&p, &ch["payload"]);
        spoil(&mut block);
        p["device"] = block;
        let id = format!("c-{}", rand_id());
        ws.send(&json!({"type": "req", "id": id, "method": "connect", "params": p}));
        ws.recv_res(&id)
    }
}
