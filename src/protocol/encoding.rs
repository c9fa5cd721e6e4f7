//! The encodings of device identity on the wire: a device's id is the
//! lowercase hex SHA-256 of its raw Ed25519 key; keys, signatures and
//! tokens travel as unpadded base64url.

use data_encoding::BASE64URL_NOPAD;
use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of a raw public key: a device's id.
pub fn device_id(raw_key: &[u8; 32]) -> String {
    hex(&Sha256::digest(raw_key))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Unpadded base64url, the encoding of keys, signatures and tokens.
pub fn b64url(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}
