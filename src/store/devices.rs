//! Paired devices, pending pairing requests and device tokens, kept in
//! `<stateDir>/devices.json` (mode 0600).
//!
//! The store owns its own lock and file and is never touched with the
//! state lock held. Every change that is acknowledged (an approval, a
//! minted token, a revocation) is made on a copy, written atomically and
//! only then installed, so a failed write changes nothing and `kill -9`
//! loses nothing that was answered. When a device was last seen is kept
//! in memory and written with the next change: a reconnect costs no disk
//! write. A file that cannot be read or parsed stops the gateway (exit
//! 78, naming the path) rather than starting with every pairing forgotten.
//!
//! Token values never reach the file: only their SHA-256, compared in
//! constant time.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::write_atomic;
use crate::error::Error;
use crate::protocol::Role;

pub const FILE: &str = "devices.json";
const VERSION: u32 = 1;

/// At most this many device requests wait for an operator; a new one past
/// it replaces the oldest, so a flood of fresh keys holds a bounded
/// amount of memory and disk.
pub const MAX_PENDING: usize = 64;
/// A device request nobody retried for this long is forgotten.
pub const PENDING_TTL_MS: u64 = 5 * 60 * 1000;

/// A device waiting for approval (or asking for more than it has).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    pub device_id: String,
    pub public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub platform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    pub client_id: String,
    pub client_mode: String,
    pub role: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    /// Why it waits: `not-paired`, `role-upgrade`, `scope-upgrade`,
    /// `metadata-upgrade`.
    pub reason: String,
    pub is_repair: bool,
    pub ts: u64,
    pub refreshed_at_ms: u64,
}

/// One device token, by role. Only the hash is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub token_sha256: String,
    pub scopes: Vec<String>,
    pub created_at_ms: u64,
    pub rotated_at_ms: Option<u64>,
    pub revoked_at_ms: Option<u64>,
}

/// The commands and capabilities an operator let a node use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSurface {
    pub caps: Vec<String>,
    pub commands: Vec<String>,
    pub display_name: Option<String>,
    pub version: Option<String>,
    pub created_at_ms: u64,
    pub approved_at_ms: u64,
}

/// What a node declared that differs from its approved surface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingSurface {
    pub request_id: String,
    pub caps: Vec<String>,
    pub commands: Vec<String>,
    pub display_name: Option<String>,
    pub platform: String,
    pub version: String,
    pub device_family: Option<String>,
    pub client_id: String,
    pub client_mode: String,
    #[serde(default)]
    pub remote_ip: Option<String>,
    pub ts: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDevice {
    pub public_key: String,
    pub display_name: Option<String>,
    pub platform: String,
    pub device_family: Option<String>,
    pub client_id: String,
    pub client_mode: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// `silent` or `operator`.
    pub approved_via: String,
    pub created_at_ms: u64,
    pub approved_at_ms: u64,
    #[serde(default)]
    pub last_seen_at_ms: Option<u64>,
    #[serde(default)]
    pub last_seen_reason: Option<String>,
    /// Where it last connected from.
    #[serde(default)]
    pub remote_ip: Option<String>,
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenRecord>,
    #[serde(default)]
    pub node_surface: Option<NodeSurface>,
    #[serde(default)]
    pub pending_node_surface: Option<PendingSurface>,
}

impl PairedDevice {
    /// An empty record for `public_key`, created now: the approval that
    /// creates it fills in the rest.
    pub fn new(public_key: String, now: u64) -> PairedDevice {
        PairedDevice {
            public_key,
            display_name: None,
            platform: String::new(),
            device_family: None,
            client_id: String::new(),
            client_mode: String::new(),
            roles: Vec::new(),
            scopes: Vec::new(),
            approved_via: String::new(),
            created_at_ms: now,
            approved_at_ms: now,
            last_seen_at_ms: None,
            last_seen_reason: None,
            remote_ip: None,
            tokens: BTreeMap::new(),
            node_surface: None,
            pending_node_surface: None,
        }
    }

    /// A new token for `role`: 32 random bytes, unpadded base64url, with
    /// the device's approved scopes (none for a node). Only its hash is
    /// kept; the value goes to the client once. Returns it and when it
    /// was issued, or the error of the system's random source (never a
    /// guessable token).
    pub fn mint_token(&mut self, role: Role, now: u64) -> io::Result<(String, u64)> {
        let mut raw = [0u8; 32];
        crate::sys::random_bytes(&mut raw)?;
        let token = crate::protocol::b64url(&raw);
        let scopes = match role {
            Role::Operator => self.scopes.clone(),
            Role::Node => Vec::new(),
        };
        let key = role.as_str().to_string();
        let created = self.tokens.get(&key).map_or(now, |t| t.created_at_ms);
        let existed = self.tokens.contains_key(&key);
        self.tokens.insert(
            key,
            TokenRecord {
                token_sha256: token_hash(&token),
                scopes,
                created_at_ms: created,
                rotated_at_ms: existed.then_some(now),
                revoked_at_ms: None,
            },
        );
        Ok((token, now))
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Devices {
    pub version: u32,
    /// By request id.
    pub pending: BTreeMap<String, PendingRequest>,
    /// By device id.
    pub paired: BTreeMap<String, PairedDevice>,
}

impl Devices {
    /// The pending request of `device_id`, if any.
    pub fn pending_of(&self, device_id: &str) -> Option<(&String, &PendingRequest)> {
        self.pending.iter().find(|(_, r)| r.device_id == device_id)
    }

    /// Drops requests nobody retried within the TTL; says whether any went.
    pub fn prune(&mut self, now: u64) -> bool {
        let before = self.pending.len();
        self.pending
            .retain(|_, r| now.saturating_sub(r.refreshed_at_ms) < PENDING_TTL_MS);
        before != self.pending.len()
    }

    /// Stores `req` under `id`, replacing the device's earlier request and,
    /// past [`MAX_PENDING`], the oldest one. Returns the request ids it
    /// superseded or pushed out.
    pub fn put_pending(&mut self, id: String, req: PendingRequest) -> Vec<String> {
        let mut gone: Vec<String> = self
            .pending
            .iter()
            .filter(|(k, r)| r.device_id == req.device_id && **k != id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.pending.remove(k);
        }
        while self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&id) {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, r)| r.refreshed_at_ms)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.pending.remove(&k);
                    gone.push(k);
                }
                None => break,
            }
        }
        self.pending.insert(id, req);
        gone
    }
}

/// SHA-256 of a token, hex: what the file keeps.
pub fn token_hash(token: &str) -> String {
    crate::protocol::hex(&Sha256::digest(token.as_bytes()))
}

/// The store: the file's contents behind their own lock.
#[derive(Debug)]
pub struct DeviceStore {
    path: PathBuf,
    data: Mutex<Devices>,
}

impl DeviceStore {
    /// Loads `<state_dir>/devices.json`; a missing file is an empty store.
    pub fn open(state_dir: &Path) -> Result<DeviceStore, Error> {
        let path = state_dir.join(FILE);
        let data = load(&path)?;
        Ok(DeviceStore {
            path,
            data: Mutex::new(data),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Devices> {
        // A poisoned lock cannot be seen with `panic = "abort"`; in tests
        // the data is still whole (no change is installed half-way).
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of everything, for listing.
    pub fn snapshot(&self) -> Devices {
        self.lock().clone()
    }

    /// Reads under the lock without changing anything.
    pub fn read<T>(&self, f: impl FnOnce(&Devices) -> T) -> T {
        f(&self.lock())
    }

    /// Changes the in-memory copy only: for what may be lost in a crash
    /// (when a device was last seen).
    pub fn touch(&self, f: impl FnOnce(&mut Devices)) {
        f(&mut self.lock());
    }

    /// Applies `f` to a copy and, if it returns `Ok` and changed
    /// anything, writes the copy durably before installing it. So what
    /// the caller answers afterwards is on disk, and a failed write (or an
    /// `Err` from `f`) leaves the store as it was.
    pub fn change<T, E>(
        &self,
        f: impl FnOnce(&mut Devices) -> Result<T, E>,
    ) -> Result<Result<T, E>, io::Error> {
        let mut data = self.lock();
        let mut copy = data.clone();
        let out = match f(&mut copy) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        if copy != *data {
            copy.version = VERSION;
            let mut text = serde_json::to_vec_pretty(&copy).map_err(io::Error::other)?;
            text.push(b'\n');
            write_atomic(&self.path, &text, 0o600)?;
            *data = copy;
        }
        Ok(Ok(out))
    }
}

fn load(path: &Path) -> Result<Devices, Error> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Devices {
                version: VERSION,
                ..Devices::default()
            })
        }
        Err(e) => {
            return Err(Error::config(format!(
                "{}: cannot read the device pairings: {}",
                path.display(),
                crate::error::io_message(&e)
            )))
        }
    };
    let data: Devices = serde_json::from_slice(&text).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = full.strip_suffix(&suffix).unwrap_or(&full).replace('`', "'");
        Error::config(format!(
            "{}:{}:{}: {msg} (the device pairings: fix the file, or move it away to forget every pairing)",
            path.display(),
            e.line(),
            e.column().max(1),
        ))
    })?;
    if data.version != VERSION {
        return Err(Error::config(format!(
            "{}: unsupported version {} (this clawgate reads version {VERSION})",
            path.display(),
            data.version
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("clawgate-devices-{}", crate::sys::uuid_v4()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn request(device: &str, at: u64) -> PendingRequest {
        PendingRequest {
            device_id: device.into(),
            public_key: "k".into(),
            display_name: None,
            platform: "linux".into(),
            device_family: None,
            client_id: "node-host".into(),
            client_mode: "node".into(),
            role: "node".into(),
            roles: vec!["node".into()],
            scopes: vec![],
            remote_ip: None,
            reason: "not-paired".into(),
            is_repair: false,
            ts: at,
            refreshed_at_ms: at,
        }
    }

    #[test]
    fn changes_round_trip_through_the_file() {
        let d = dir();
        let store = DeviceStore::open(&d).unwrap();
        assert!(!store.path().exists(), "nothing is written until a change");
        store
            .change(|s| {
                s.put_pending("r1".into(), request("dev1", 5));
                Ok::<_, ()>(())
            })
            .unwrap()
            .unwrap();
        let again = DeviceStore::open(&d).unwrap();
        assert_eq!(again.snapshot(), store.snapshot());
        assert_eq!(again.snapshot().pending["r1"].device_id, "dev1");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(store.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_refused_change_leaves_memory_and_file_as_they_were() {
        let d = dir();
        let store = DeviceStore::open(&d).unwrap();
        let out = store
            .change(|s| {
                s.put_pending("r1".into(), request("dev1", 5));
                Err::<(), _>("no")
            })
            .unwrap();
        assert_eq!(out, Err("no"));
        assert!(store.snapshot().pending.is_empty());
        assert!(!store.path().exists());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_corrupt_or_torn_file_is_a_config_error_naming_the_place() {
        let d = dir();
        fs::write(
            d.join(FILE),
            "{\"version\":1,\"pending\":{},\n\"paired\":{\"x\":",
        )
        .unwrap();
        let e = DeviceStore::open(&d).unwrap_err();
        assert_eq!(e.exit_code(), 78);
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{}:2:", d.join(FILE).display())),
            "{msg}"
        );
        fs::write(d.join(FILE), "{\"version\":9,\"pending\":{},\"paired\":{}}").unwrap();
        let e = DeviceStore::open(&d).unwrap_err();
        assert!(e.to_string().contains("unsupported version 9"), "{e}");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn pending_requests_are_bounded_expire_and_one_per_device() {
        let mut s = Devices::default();
        for i in 0..MAX_PENDING + 10 {
            s.put_pending(format!("r{i}"), request(&format!("d{i}"), i as u64));
        }
        assert_eq!(s.pending.len(), MAX_PENDING);
        assert!(!s.pending.contains_key("r0"), "the oldest went first");
        let gone = s.put_pending("new".into(), request("d20", 1000));
        assert_eq!(gone, ["r20"]);
        assert_eq!(s.pending_of("d20").map(|(k, _)| k.as_str()), Some("new"));
        assert!(s.prune(1000 + PENDING_TTL_MS - 1));
        assert_eq!(s.pending.len(), 1);
        assert!(s.prune(1000 + PENDING_TTL_MS));
        assert!(s.pending.is_empty());
    }

    #[test]
    fn token_hashes_are_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
