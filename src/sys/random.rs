//! Randomness: the kernel's CSPRNG for secrets, and unique ids that still
//! work when it is unavailable.

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::last_error;

/// Fills `buf` from the kernel's CSPRNG. Uses the getrandom(2) system call
/// directly rather than the libc wrapper, which uClibc (common on routers)
/// lacks; kernels older than 3.17 get /dev/urandom instead.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe the unfilled, writable
        // tail of `buf`; flags 0 means block until the pool is seeded.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getrandom,
                rest.as_mut_ptr().cast::<libc::c_void>(),
                rest.len(),
                0 as libc::c_uint,
            )
        };
        if n >= 0 {
            filled += n as usize;
            continue;
        }
        let e = last_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOSYS) => return File::open("/dev/urandom")?.read_exact(rest),
            _ => return Err(e),
        }
    }
    Ok(())
}

/// `nbytes` random bytes as lowercase hex, for tokens and nonces.
pub fn random_hex(nbytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; nbytes];
    random_bytes(&mut buf)?;
    Ok(hex(&buf))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// A random RFC 4122 version 4 UUID, e.g. for connection and run ids.
///
/// random_bytes can only fail when both getrandom(2) and /dev/urandom are
/// unavailable (an old kernel in a sandbox without /dev). These ids must be
/// unique, not secret, so rather than fail a request we then derive the
/// bytes from the clock, the pid and a counter. Never use this for secrets:
/// use [`random_hex`], which reports the error.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    if random_bytes(&mut b).is_err() {
        b = fallback_unique_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn fallback_unique_bytes() -> [u8; 16] {
    // 32 bits: 32-bit MIPS has no 64-bit atomics, and wrapping is harmless
    // next to the clock and pid mixed in below.
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let count = u64::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    let seed = nanos ^ (u64::from(std::process::id()) << 32);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&splitmix64(seed).to_le_bytes());
    out[8..].copy_from_slice(&splitmix64(seed ^ count.rotate_left(17)).to_le_bytes());
    out
}

/// Spreads the bits of a counter-like value over the whole word.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ_between_calls() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        random_bytes(&mut a).expect("random");
        random_bytes(&mut b).expect("random");
        assert_ne!(a, b);
        let h = random_hex(16).expect("hex");
        assert_eq!(h.len(), 32);
        assert!(h
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    }

    fn assert_uuid_v4(u: &str) {
        let parts: Vec<&str> = u.split('-').collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(lens, [8, 4, 4, 4, 12], "{u}");
        assert!(u.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()), "{u}");
        assert!(!u.bytes().any(|c| c.is_ascii_uppercase()), "{u}");
        assert_eq!(&parts[2][..1], "4", "{u}");
        assert!("89ab".contains(&parts[3][..1]), "{u}");
    }

    #[test]
    fn uuid_v4_has_version_and_variant_bits() {
        let a = uuid_v4();
        assert_uuid_v4(&a);
        assert_ne!(a, uuid_v4());
    }

    #[test]
    fn fallback_bytes_are_unique_per_call() {
        assert_ne!(fallback_unique_bytes(), fallback_unique_bytes());
    }
}
