//! The Ed25519 device proof a `connect` may carry, checked as the
//! reference gateway checks it: the id is the SHA-256 of the key, the
//! signature is fresh and answers this connection's challenge nonce, and it
//! signs the v3 (or legacy v2) payload built from the connect params.
//!
//! Pure: the handshake passes the challenge it issued and how long ago it
//! issued it. Freshness is measured against that challenge's own `ts`
//! (plus the time since), not the wall clock alone, so a board without a
//! real-time clock still accepts clients that copy the challenge `ts`, as
//! current ones do. The crypto is `ed25519-dalek` and `sha2`; nothing here
//! is hand-written.

use data_encoding::{BASE64, BASE64_NOPAD};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{json, Value};

pub use crate::protocol::{b64url, device_id};
use crate::protocol::{ConnectParams, DeviceBlock, ErrorShape};

/// How far `signedAt` may be from the challenge's time, either way.
pub const MAX_SKEW_MS: u64 = 120_000;

/// Longest key or signature text looked at; the reference's bound.
const MAX_ENCODED: usize = 4096;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo: a PEM key is this
/// followed by the 32 raw bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The challenge this connection was sent.
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    pub nonce: &'a str,
    pub ts_ms: u64,
    /// Milliseconds since it was sent.
    pub elapsed_ms: u64,
}

/// Which signed payload matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadVersion {
    V3,
    V2,
}

/// A proof that checked out: the device's id and its key as canonical
/// unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub id: String,
    pub public_key: String,
    pub version: PayloadVersion,
}

/// Why a proof failed, in the reference's order of checks. (The
/// reference's last check, a key that does not parse, cannot fail once
/// the key has verified a signature, so it has no variant here.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    IdMismatch,
    Stale,
    NonceMissing,
    NonceMismatch,
    Signature,
}

impl ProofError {
    /// The reference's `details.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            ProofError::IdMismatch => "device-id-mismatch",
            ProofError::Stale => "device-signature-stale",
            ProofError::NonceMissing => "device-nonce-missing",
            ProofError::NonceMismatch => "device-nonce-mismatch",
            ProofError::Signature => "device-signature",
        }
    }

    /// The reference's `details.code`.
    pub fn code(self) -> &'static str {
        match self {
            ProofError::IdMismatch => "DEVICE_AUTH_DEVICE_ID_MISMATCH",
            ProofError::Stale => "DEVICE_AUTH_SIGNATURE_EXPIRED",
            ProofError::NonceMissing => "DEVICE_AUTH_NONCE_REQUIRED",
            ProofError::NonceMismatch => "DEVICE_AUTH_NONCE_MISMATCH",
            ProofError::Signature => "DEVICE_AUTH_SIGNATURE_INVALID",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ProofError::IdMismatch => "device identity mismatch",
            ProofError::Stale => "device signature expired",
            ProofError::NonceMissing => "device nonce required",
            ProofError::NonceMismatch => "device nonce mismatch",
            ProofError::Signature => "device signature invalid",
        }
    }

    /// `INVALID_REQUEST` with `details {code, reason}`; the handshake then
    /// closes 1008 with the message.
    pub fn to_error(self) -> ErrorShape {
        ErrorShape::invalid(self.message())
            .with_details(json!({"code": self.code(), "reason": self.reason()}))
    }
}

/// Decodes base64url or standard base64, padded or not, as the reference's
/// permissive decoder does (it maps `-_` to `+/` and pads).
fn decode_b64(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() > MAX_ENCODED {
        return None;
    }
    let std: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    BASE64_NOPAD
        .decode(std.as_bytes())
        .ok()
        .or_else(|| BASE64.decode(s.as_bytes()).ok())
}

/// The raw 32 bytes of a public key sent as base64url, base64 or PEM.
pub fn raw_public_key(text: &str) -> Option<[u8; 32]> {
    let bytes = if text.contains("BEGIN") {
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let der = decode_b64(body.trim())?;
        der.strip_prefix(&SPKI_PREFIX[..])?.to_vec()
    } else {
        decode_b64(text)?
    };
    bytes.try_into().ok()
}

/// Trimmed and ASCII-lowercased, as the v3 payload carries platform and
/// device family.
fn metadata(value: Option<&str>) -> String {
    value.unwrap_or("").trim().to_ascii_lowercase()
}

/// The token field of the signed payload: the shared token, else the
/// device token, else the bootstrap token, else empty.
pub fn signature_token(p: &ConnectParams) -> &str {
    let a = &p.auth;
    a.token
        .as_deref()
        .or(a.device_token.as_deref())
        .or(a.bootstrap_token.as_deref())
        .unwrap_or("")
}

/// The signed text, v2 or v3, for this connect.
pub fn payload(
    version: PayloadVersion,
    device_id: &str,
    p: &ConnectParams,
    signed_at: u64,
    nonce: &str,
) -> String {
    let c = &p.client;
    let mut parts = vec![
        match version {
            PayloadVersion::V3 => "v3".to_string(),
            PayloadVersion::V2 => "v2".to_string(),
        },
        device_id.to_string(),
        c.id.clone(),
        c.mode.clone(),
        p.role.as_str().to_string(),
        p.scopes.join(","),
        signed_at.to_string(),
        signature_token(p).to_string(),
        nonce.to_string(),
    ];
    if version == PayloadVersion::V3 {
        parts.push(metadata(Some(&c.platform)));
        parts.push(metadata(c.device_family.as_deref()));
    }
    parts.join("|")
}

/// `signedAt` as whole milliseconds, when it is a number.
fn signed_at_ms(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    // A float that is a whole number (JavaScript has no integers).
    let f = v.as_f64()?;
    (f >= 0.0 && f.fract() == 0.0 && f < 9.0e15).then_some(f as u64)
}

/// Checks `device` for this connect and challenge.
pub fn verify(
    device: &DeviceBlock,
    p: &ConnectParams,
    ch: Challenge,
) -> Result<Verified, ProofError> {
    let key_text = device.public_key.as_deref().unwrap_or("");
    let raw = raw_public_key(key_text);
    let id = device.id.as_deref().unwrap_or("");
    match &raw {
        Some(raw) if device_id(raw) == id => {}
        _ => return Err(ProofError::IdMismatch),
    }
    let now = ch.ts_ms.saturating_add(ch.elapsed_ms);
    let signed_at = match signed_at_ms(device.signed_at.as_ref()) {
        Some(t) if t.abs_diff(now) <= MAX_SKEW_MS => t,
        _ => return Err(ProofError::Stale),
    };
    let nonce = device.nonce.as_deref().unwrap_or("").trim();
    if nonce.is_empty() {
        return Err(ProofError::NonceMissing);
    }
    if nonce != ch.nonce {
        return Err(ProofError::NonceMismatch);
    }
    let raw = raw.ok_or(ProofError::IdMismatch)?;
    // A key that is not a curve point cannot have signed anything: the
    // reference reports that as a bad signature too, before the key check.
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| ProofError::Signature)?;
    let sig = device
        .signature
        .as_deref()
        .and_then(decode_b64)
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(ProofError::Signature)?;
    let version = [PayloadVersion::V3, PayloadVersion::V2]
        .into_iter()
        .find(|v| {
            let text = payload(*v, id, p, signed_at, nonce);
            key.verify_strict(text.as_bytes(), &sig).is_ok()
        })
        .ok_or(ProofError::Signature)?;
    Ok(Verified {
        id: id.to_string(),
        public_key: b64url(&raw),
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConnectAuth, Role};
    use ed25519_dalek::{Signer, SigningKey};

    const NONCE: &str = "6f1c1b8e-2b57-4c1e-9d8e-0d1f2a3b4c5d";
    const TS: u64 = 1_795_290_870_000;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn params(token: Option<&str>) -> ConnectParams {
        let mut p = ConnectParams {
            min_protocol: 3,
            max_protocol: 4,
            role: Role::Node,
            auth: ConnectAuth {
                token: token.map(String::from),
                ..ConnectAuth::default()
            },
            ..ConnectParams::default()
        };
        p.client.id = "node-host".into();
        p.client.mode = "node".into();
        p.client.platform = " Linux ".into();
        p.client.device_family = Some("Linux".into());
        p
    }

    fn signed(p: &ConnectParams, version: PayloadVersion, k: &SigningKey) -> DeviceBlock {
        let raw = k.verifying_key().to_bytes();
        let id = device_id(&raw);
        let text = payload(version, &id, p, TS, NONCE);
        DeviceBlock {
            id: Some(id),
            public_key: Some(b64url(&raw)),
            signature: Some(b64url(&k.sign(text.as_bytes()).to_bytes())),
            signed_at: Some(json!(TS)),
            nonce: Some(NONCE.into()),
        }
    }

    fn challenge(elapsed_ms: u64) -> Challenge<'static> {
        Challenge {
            nonce: NONCE,
            ts_ms: TS,
            elapsed_ms,
        }
    }

    #[test]
    fn payloads_are_the_references_pipe_joined_texts() {
        let mut p = params(Some("T"));
        p.scopes = vec!["operator.read".into(), "operator.write".into()];
        p.role = Role::Operator;
        assert_eq!(
            payload(PayloadVersion::V3, "abc", &p, 5, "n"),
            "v3|abc|node-host|node|operator|operator.read,operator.write|5|T|n|linux|linux"
        );
        assert_eq!(
            payload(PayloadVersion::V2, "abc", &p, 5, "n"),
            "v2|abc|node-host|node|operator|operator.read,operator.write|5|T|n"
        );
        // The device token signs when no shared token is sent.
        p.auth = ConnectAuth {
            device_token: Some("D".into()),
            bootstrap_token: Some("B".into()),
            ..ConnectAuth::default()
        };
        assert!(payload(PayloadVersion::V2, "abc", &p, 5, "n").ends_with("|5|D|n"));
        p.auth.device_token = None;
        assert!(payload(PayloadVersion::V2, "abc", &p, 5, "n").ends_with("|5|B|n"));
    }

    #[test]
    fn the_id_is_the_sha256_of_the_raw_key() {
        // RFC 8032 test 1's public key, and its SHA-256 computed elsewhere.
        let pk = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        assert_eq!(
            device_id(&pk),
            "21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9"
        );
        assert_eq!(b64url(&pk), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(
            raw_public_key("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            Some(pk)
        );
        assert_eq!(
            raw_public_key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="),
            Some(pk)
        );
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n";
        assert_eq!(raw_public_key(pem), Some(pk));
        assert_eq!(raw_public_key("short"), None);
        assert_eq!(raw_public_key(""), None);
    }

    #[test]
    fn v3_and_v2_proofs_verify() {
        let p = params(Some("T"));
        for v in [PayloadVersion::V3, PayloadVersion::V2] {
            let d = signed(&p, v, &key());
            let ok = verify(&d, &p, challenge(840)).unwrap();
            assert_eq!(ok.version, v);
            assert_eq!(Some(ok.id), d.id);
            assert_eq!(Some(ok.public_key), d.public_key);
        }
    }

    #[test]
    fn each_broken_part_fails_with_its_code() {
        let p = params(Some("T"));
        let good = signed(&p, PayloadVersion::V3, &key());
        let fails = |d: &DeviceBlock, p: &ConnectParams, ch| verify(d, p, ch).unwrap_err();

        let mut d = good.clone();
        d.id = Some("0".repeat(64));
        assert_eq!(fails(&d, &p, challenge(0)), ProofError::IdMismatch);
        let mut d = good.clone();
        d.public_key = Some("not a key".into());
        assert_eq!(fails(&d, &p, challenge(0)), ProofError::IdMismatch);

        assert_eq!(
            fails(&good, &p, challenge(MAX_SKEW_MS + 1)),
            ProofError::Stale
        );
        let mut d = good.clone();
        d.signed_at = Some(json!("soon"));
        assert_eq!(fails(&d, &p, challenge(0)), ProofError::Stale);

        let mut d = good.clone();
        d.nonce = Some("  ".into());
        assert_eq!(fails(&d, &p, challenge(0)), ProofError::NonceMissing);
        let mut d = good.clone();
        d.nonce = Some("other".into());
        assert_eq!(fails(&d, &p, challenge(0)), ProofError::NonceMismatch);

        // A flipped signature byte, a different role, another token.
        let mut d = good.clone();
        let mut sig = decode_b64(d.signature.as_deref().unwrap()).unwrap();
        sig[10] ^= 1;
        d.signature = Some(b64url(&sig));
        assert_eq!(fails(&d, &p, challenge(0)), ProofError::Signature);
        let mut other = p.clone();
        other.role = Role::Operator;
        assert_eq!(fails(&good, &other, challenge(0)), ProofError::Signature);
        assert_eq!(
            fails(&good, &params(Some("U")), challenge(0)),
            ProofError::Signature
        );
        let mut d = good.clone();
        d.signature = None;
        assert_eq!(fails(&d, &p, challenge(0)), ProofError::Signature);

        let e = ProofError::Signature.to_error();
        assert_eq!(e.code, "INVALID_REQUEST");
        assert_eq!(e.message, "device signature invalid");
        assert_eq!(
            e.to_json()["details"],
            json!({"code": "DEVICE_AUTH_SIGNATURE_INVALID", "reason": "device-signature"})
        );
    }

    #[test]
    fn whole_float_timestamps_count_as_numbers() {
        assert_eq!(signed_at_ms(Some(&json!(5.0))), Some(5));
        assert_eq!(signed_at_ms(Some(&json!(5.5))), None);
        assert_eq!(signed_at_ms(Some(&json!(-5))), None);
        assert_eq!(signed_at_ms(None), None);
    }
}
