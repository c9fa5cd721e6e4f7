//! What the `node.invoke` round trip (row 12a) costs before clawgate does
//! any work, and what it costs when no hand-off crosses CPUs.
//!
//! The round trip is six thread hand-offs: operator → its connection
//! thread (socket) → the node's connection thread (eventfd) → the node
//! (socket) and the same way back. Each connection's own thread writes its
//! socket, so the two hand-offs inside the gateway are part of the design.
//! Row 12c times the same six hand-offs between bench threads doing
//! nothing else (loopback TCP and eventfd, as the gateway uses): on a
//! machine whose idle CPUs are slow to wake (a VM halts them), that floor
//! alone can exceed the target. Row 12d repeats row 12a with the gateway's
//! threads and the bench's on one CPU, so the wake-ups stay local and what
//! remains is clawgate's own work.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// One eventfd, blocking: `signal` adds one, `wait` sleeps until non-zero.
struct Efd(OwnedFd);

impl Efd {
    fn new() -> Result<Efd, String> {
        // SAFETY: eventfd takes no pointers; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        match fd {
            // SAFETY: fd is a fresh descriptor that nothing else owns.
            0.. => Ok(Efd(unsafe { OwnedFd::from_raw_fd(fd) })),
            _ => Err(format!("eventfd: {}", std::io::Error::last_os_error())),
        }
    }

    fn signal(&self) -> bool {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer to an owned fd.
        unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), 8) == 8 }
    }

    fn wait(&self) -> bool {
        let mut v = [0u8; 8];
        // SAFETY: reads 8 bytes into a live local buffer from an owned fd.
        unsafe { libc::read(self.0.as_raw_fd(), v.as_mut_ptr().cast(), 8) == 8 }
    }
}

/// A connected loopback TCP pair with Nagle off, as the gateway's sockets.
fn tcp_pair() -> Result<(TcpStream, TcpStream), String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let a = TcpStream::connect(l.local_addr().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (b, _) = l.accept().map_err(|e| e.to_string())?;
    for s in [&a, &b] {
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
    }
    Ok((a, b))
}

fn hop(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    s.read_exact(&mut b).is_ok()
}

fn send(s: &mut TcpStream) -> bool {
    s.write_all(&[1]).is_ok()
}

/// `n` round trips through the six hand-offs, in µs, sorted (after a
/// warm-up of `warmup`).
pub fn floor_rtt(warmup: usize, n: usize) -> Result<Vec<f64>, String> {
    let total = warmup + n;
    let (mut a, mut b_sock) = tcp_pair()?;
    let (mut c_sock, mut d) = tcp_pair()?;
    let (to_c, to_b) = (Efd::new()?, Efd::new()?);
    let (to_c2, to_b2) = (
        Efd(to_c.0.try_clone().map_err(|e| e.to_string())?),
        Efd(to_b.0.try_clone().map_err(|e| e.to_string())?),
    );
    // B: the operator's connection thread; C: the node's; D: the node.
    let b = std::thread::spawn(move || {
        for _ in 0..total {
            if !(hop(&mut b_sock) && to_c.signal() && to_b.wait() && send(&mut b_sock)) {
                return;
            }
        }
    });
    let c = std::thread::spawn(move || {
        for _ in 0..total {
            if !(to_c2.wait() && send(&mut c_sock) && hop(&mut c_sock) && to_b2.signal()) {
                return;
            }
        }
    });
    let node = std::thread::spawn(move || {
        for _ in 0..total {
            if !(hop(&mut d) && send(&mut d)) {
                return;
            }
        }
    });
    let mut v = Vec::with_capacity(n);
    for i in 0..total {
        let t0 = Instant::now();
        if !(send(&mut a) && hop(&mut a)) {
            return Err(format!("hand-off chain broke at round {i}"));
        }
        if i >= warmup {
            v.push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    for t in [b, c, node] {
        let _ = t.join();
    }
    v.sort_by(|x, y| x.total_cmp(y));
    Ok(v)
}

/// CPU affinity set on the bench's calling thread and on every thread of
/// the gateway `pid`; dropping it gives them back every CPU the bench
/// had. Threads the gateway starts meanwhile inherit it from its accept
/// thread.
pub struct Pinned {
    pid: u32,
    all: libc::cpu_set_t,
}

fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> bool {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: set points to a live cpu_set_t of the given size.
    unsafe { libc::sched_setaffinity(tid, size, set) == 0 }
}

fn gateway_threads(pid: u32) -> Vec<libc::pid_t> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

impl Pinned {
    /// Pins this thread and the gateway's threads to the CPU this thread
    /// is on now.
    pub fn here(pid: u32) -> Result<Pinned, String> {
        // SAFETY: an all-zero cpu_set_t is a valid, empty set.
        let mut all: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: all is a live cpu_set_t of the given size.
        if unsafe { libc::sched_getaffinity(0, size, &mut all) } != 0 {
            return Err(format!(
                "sched_getaffinity: {}",
                std::io::Error::last_os_error()
            ));
        }
        let cpu = crate::procs::current_cpu().ok_or("sched_getcpu failed")? as usize;
        // SAFETY: an all-zero cpu_set_t is a valid, empty set.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: cpu is below CPU_SETSIZE: the kernel just ran us on it.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        let pinned = Pinned { pid, all };
        let tids = gateway_threads(pid);
        if tids.is_empty() || !tids.iter().chain([&0]).all(|&t| set_affinity(t, &one)) {
            return Err("cannot pin the gateway's threads".into());
        }
        Ok(pinned)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        for t in gateway_threads(self.pid).into_iter().chain([0]) {
            set_affinity(t, &self.all);
        }
    }
}
