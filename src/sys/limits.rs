//! What the host allows the process: open descriptors and memory.

use std::io;

/// Raises the soft limit on open descriptors to the hard one, so the
/// gateway may use what the administrator allowed rather than the shell's
/// default (often 1024). Returns the limit now in force.
pub fn raise_nofile() -> io::Result<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if r.rlim_cur < r.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: r.rlim_max,
            rlim_max: r.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit that setrlimit only reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            r.rlim_cur = r.rlim_max;
        }
    }
    // rlim_t is 32 bits wide on some 32-bit targets.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(r.rlim_cur))
}

/// Caps glibc's malloc arenas at two. glibc gives threads arenas of their
/// own (up to eight per core); with a thread per connection, what one
/// connection frees (a pairing write, a large reply) stays in its arena,
/// unusable by the others: with 100 nodes paired that was 90 KiB per node
/// against 14 with two arenas, at no cost in throughput measured on two
/// cores. Called before any thread exists. musl has one heap anyway.
#[cfg(target_env = "gnu")]
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets a malloc parameter; M_ARENA_MAX with a
    // positive value is a documented use, and no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(target_env = "gnu"))]
pub fn limit_malloc_arenas() {}

/// The host's memory (`MemTotal` of /proc/meminfo), in bytes.
pub fn mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    mem_total_in(&text)
}

fn mem_total_in(meminfo: &str) -> Option<u64> {
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memtotal_is_read_in_bytes() {
        let text = "MemTotal:       24600000 kB\nMemFree:  1 kB\n";
        assert_eq!(mem_total_in(text), Some(24_600_000 * 1024));
        assert_eq!(mem_total_in("nothing"), None);
        assert!(mem_total().unwrap_or(1) > 0);
    }

    #[test]
    fn the_descriptor_limit_is_at_least_what_it_was() {
        assert!(raise_nofile().unwrap() >= 16);
    }
}
