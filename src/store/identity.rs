//! The gateway's own Ed25519 identity (`gateway.identity.get`): created
//! on first start in `<stateDir>/gateway-identity.json` (mode 0600,
//! written atomically) and the same on every start after. A file that
//! exists but cannot be used stops the gateway (exit 78): replacing it
//! would silently give the gateway a new identity.

use std::fs;
use std::io;
use std::path::Path;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use super::write_atomic;
use crate::error::Error;
use crate::protocol::{b64url, device_id};

pub const FILE: &str = "gateway-identity.json";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored {
    version: u32,
    device_id: String,
    public_key: String,
    /// The 32-byte secret seed, hex.
    private_key: String,
    created_at_ms: u64,
}

/// The public half, which is all the gateway ever shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub device_id: String,
    pub public_key: String,
}

impl Identity {
    /// Reads the identity in `state_dir`, creating it on first start.
    pub fn load_or_create(state_dir: &Path) -> Result<Identity, Error> {
        let path = state_dir.join(FILE);
        match fs::read(&path) {
            Ok(text) => parse(&path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => create(&path),
            Err(e) => Err(Error::config(format!(
                "{}: cannot read the gateway identity: {}",
                path.display(),
                crate::error::io_message(&e)
            ))),
        }
    }
}

fn create(path: &Path) -> Result<Identity, Error> {
    let mut seed = [0u8; 32];
    crate::sys::random_bytes(&mut seed)
        .map_err(|e| Error::io("creating the gateway identity", e))?;
    let key = SigningKey::from_bytes(&seed);
    let raw = key.verifying_key().to_bytes();
    let stored = Stored {
        version: 1,
        device_id: device_id(&raw),
        public_key: b64url(&raw),
        private_key: crate::protocol::hex(&seed),
        created_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    seed.fill(0);
    let mut text = serde_json::to_vec_pretty(&stored)
        .map_err(io::Error::other)
        .map_err(|e| Error::io("creating the gateway identity", e))?;
    text.push(b'\n');
    write_atomic(path, &text, 0o600)
        .map_err(|e| Error::io(format!("writing '{}'", path.display()), e))?;
    Ok(Identity {
        device_id: stored.device_id,
        public_key: stored.public_key,
    })
}

fn parse(path: &Path, text: &[u8]) -> Result<Identity, Error> {
    let bad = |why: String| {
        Error::config(format!(
            "{}: {why} (the gateway identity: fix the file, or move it away to create a new identity)",
            path.display()
        ))
    };
    let s: Stored =
        serde_json::from_slice(text).map_err(|e| bad(e.to_string().replace('`', "'")))?;
    let seed =
        unhex(&s.private_key).ok_or_else(|| bad("privateKey is not 32 bytes of hex".into()))?;
    let raw = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    if b64url(&raw) != s.public_key || device_id(&raw) != s.device_id {
        return Err(bad(
            "publicKey or deviceId does not belong to privateKey".into()
        ));
    }
    Ok(Identity {
        device_id: s.device_id,
        public_key: s.public_key,
    })
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_created_once_and_then_stable() {
        let d = std::env::temp_dir().join(format!("clawgate-id-{}", crate::sys::uuid_v4()));
        fs::create_dir_all(&d).unwrap();
        let first = Identity::load_or_create(&d).unwrap();
        assert_eq!(first.device_id.len(), 64);
        assert_eq!(first.public_key.len(), 43);
        assert_eq!(Identity::load_or_create(&d).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.join(FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A tampered file is refused, not replaced.
        let text = fs::read_to_string(d.join(FILE)).unwrap();
        fs::write(d.join(FILE), text.replace(&first.public_key, "AAAA")).unwrap();
        let e = Identity::load_or_create(&d).unwrap_err();
        assert_eq!(e.exit_code(), 78);
        fs::write(d.join(FILE), "{").unwrap();
        assert_eq!(Identity::load_or_create(&d).unwrap_err().exit_code(), 78);
        fs::remove_dir_all(d).unwrap();
    }
}
