//! The thin, safe wrappers around libc that the rest of clawgate needs.
//!
//! Every `unsafe` block of the crate lives in this module, each with a
//! `// SAFETY:` comment saying why the call cannot break memory safety; the
//! rest of the crate is free of `unsafe`. Functions here translate C error
//! conventions into `io::Result` and nothing more: they never log, never
//! print and hold no policy beyond what a caller cannot get wrong (such as
//! refusing to `kill` pid 0, which would signal our whole process group).

#![allow(unsafe_code)]

mod limits;
mod net;
mod random;

use std::fs::File;
use std::io::{self, Read, Write};
use std::mem::{offset_of, size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

pub use limits::{limit_malloc_arenas, mem_total, raise_nofile};
pub use net::{hostname, lan_ipv4, set_tcp_keepalive, tailnet_ipv4};
pub use random::{random_bytes, random_hex, uuid_v4};

pub const SIGTERM: i32 = libc::SIGTERM;
pub const SIGINT: i32 = libc::SIGINT;
pub const SIGHUP: i32 = libc::SIGHUP;
pub const SIGUSR1: i32 = libc::SIGUSR1;
pub const SIGKILL: i32 = libc::SIGKILL;

pub const POLLIN: i16 = libc::POLLIN;
pub const POLLOUT: i16 = libc::POLLOUT;

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn is_eintr(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINTR)
}

/// A Linux eventfd used to wake a thread blocked in [`poll`]: another
/// thread calls [`EventFd::signal`] after queueing work for it.
///
/// The descriptor is owned, so it is closed exactly once, when the last
/// `Arc<EventFd>` goes away; a raw fd closed early by one thread could be
/// reused by the kernel and then written to by another. It is held as a
/// `File` only so that reads and writes need no `unsafe`.
#[derive(Debug)]
pub struct EventFd {
    file: File,
}

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(last_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd {
            file: File::from(fd),
        })
    }

    /// Makes the eventfd readable. A full counter (EAGAIN) already means
    /// "readable", and nothing else can fail on a valid eventfd with an
    /// 8-byte buffer, so there is no error to return.
    pub fn signal(&self) {
        // write_all retries EINTR; an eventfd write is all or nothing.
        let _ = (&self.file).write_all(&1u64.to_ne_bytes());
    }

    /// Resets the counter so the next [`poll`] blocks again. One read
    /// zeroes an eventfd; a signal racing with it leaves the fd readable,
    /// which only costs the waiter one more wakeup.
    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        loop {
            match (&self.file).read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                _ => return,
            }
        }
    }
}

// Connection threads and the ticker share one through an Arc.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<EventFd>();
};

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// One entry of a [`poll`] set, laid out exactly like `struct pollfd` so a
/// slice of them can be handed to the kernel as is.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollFd {
    pub fd: RawFd,
    pub events: i16,
    pub revents: i16,
}

const _: () = {
    assert!(size_of::<PollFd>() == size_of::<libc::pollfd>());
    assert!(std::mem::align_of::<PollFd>() == std::mem::align_of::<libc::pollfd>());
    assert!(offset_of!(PollFd, fd) == offset_of!(libc::pollfd, fd));
    assert!(offset_of!(PollFd, events) == offset_of!(libc::pollfd, events));
    assert!(offset_of!(PollFd, revents) == offset_of!(libc::pollfd, revents));
};

impl PollFd {
    pub fn new(fd: RawFd, events: i16) -> PollFd {
        PollFd {
            fd,
            events,
            revents: 0,
        }
    }
}

/// Waits until one of `fds` is ready or `timeout_ms` elapses (negative:
/// forever) and returns how many entries have a non-zero `revents`.
/// An interrupted wait resumes with the time that is left, so a signal
/// can neither end the wait early nor extend it.
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    let deadline = (timeout_ms >= 0)
        .then(|| Instant::now() + std::time::Duration::from_millis(timeout_ms as u64));
    let mut timeout = timeout_ms;
    loop {
        // SAFETY: PollFd has the layout of libc::pollfd (checked at compile
        // time above), and the pointer and length come from a live slice
        // that the kernel may write `revents` into.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr().cast::<libc::pollfd>(),
                fds.len() as libc::nfds_t,
                timeout,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = last_error();
        if !is_eintr(&e) {
            return Err(e);
        }
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            // Round up so a sub-millisecond remainder still waits.
            timeout = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        }
    }
}

fn sigset(sigs: &[i32]) -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the whole set it is given.
    if unsafe { libc::sigemptyset(set.as_mut_ptr()) } != 0 {
        return Err(last_error());
    }
    // SAFETY: sigemptyset succeeded, so the set is initialized.
    let mut set = unsafe { set.assume_init() };
    for &sig in sigs {
        // SAFETY: `set` is an initialized sigset_t; a bad number is
        // reported as EINVAL, not undefined behaviour.
        if unsafe { libc::sigaddset(&mut set, sig) } != 0 {
            return Err(last_error());
        }
    }
    Ok(set)
}

/// Blocks `sigs` in the calling thread. Called by `main` before any thread
/// is spawned, so every thread inherits the mask and the signals stay
/// pending until one thread collects them with [`wait_signal`]. Programs
/// started with `std::process::Command` do not inherit it: std clears the
/// mask in the child before exec.
pub fn block_signals(sigs: &[i32]) -> io::Result<()> {
    let set = sigset(sigs)?;
    // SAFETY: `set` is initialized; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    // pthread functions return the error number instead of setting errno.
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits for one of `sigs`, which must be blocked (see [`block_signals`]),
/// and returns its number.
pub fn wait_signal(sigs: &[i32]) -> io::Result<i32> {
    let set = sigset(sigs)?;
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: both pointers refer to live, initialized locals.
        let rc = unsafe { libc::sigwait(&set, &mut sig) };
        match rc {
            0 => return Ok(sig),
            libc::EINTR => continue,
            _ => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock sd_notify's `MONOTONIC_USEC`
/// is read against (std's `Instant` does not expose its raw value).
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1000
}

/// Converts a pid for kill(2), refusing the values with a special meaning:
/// 0 (our process group) and anything that becomes negative (-1 is every
/// process we may signal).
fn to_pid(pid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid process id {pid}"),
        )),
    }
}

/// Sends `sig` to the single process `pid`.
pub fn kill(pid: u32, sig: i32) -> io::Result<()> {
    let pid = to_pid(pid)?;
    // SAFETY: kill takes no pointers; `pid` is a positive process id.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Sends `sig` to every process in the group `pgid`: a child started as
/// its own group leader, with whatever it spawned. Refuses 0 (our own
/// group), 1 (init's) and anything that becomes negative.
pub fn kill_group(pgid: u32, sig: i32) -> io::Result<()> {
    let pgid = to_pid(pgid)?;
    if pgid == 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid process group 1",
        ));
    }
    // SAFETY: killpg takes no pointers; `pgid` is a group id above 1.
    if unsafe { libc::killpg(pgid, sig) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Whether `pid` exists. A zombie (exited, not yet reaped) still counts;
/// callers that wait for an exit must check for that themselves.
pub fn process_alive(pid: u32) -> bool {
    match kill(pid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}

/// Takes an exclusive flock(2) on `file` without waiting: Ok(false) when
/// another open file description holds it. The lock goes away when every
/// descriptor of this open file is closed, so a crashed holder never leaves
/// a stale lock behind.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: flock takes no pointers; `file` keeps the fd open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = last_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// The effective user id: `install` refuses a system service to anyone
/// but root before it writes anything.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// Waits up to `timeout_ms` for whoever reads `fd` (a pipe or socket this
/// process writes to) to go away, and says whether it did. Polling for no
/// events sees only what the kernel always reports: POLLERR on the write
/// end of a pipe whose reader closed it, POLLHUP on a socket, POLLNVAL on
/// a descriptor that is not open. A terminal or a file never wakes it, so
/// for them this is a plain sleep.
pub fn wait_reader_gone(fd: RawFd, timeout_ms: i32) -> bool {
    let mut fds = [PollFd::new(fd, 0)];
    match poll(&mut fds, timeout_ms) {
        Ok(n) if n > 0 => fds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0,
        _ => false,
    }
}

/// The login name of `uid` from the user database (getpwuid_r: /etc/passwd,
/// or whatever NSS adds), for messages that name a user when `$USER` is
/// unset; None when the uid has no entry.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        let mut pwd = MaybeUninit::<libc::passwd>::uninit();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to a live local: `pwd` is written by
        // the call, `buf` (with its true length) holds the strings it
        // points into, and `found` is set to `pwd` or left null.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                pwd.as_mut_ptr(),
                buf.as_mut_ptr().cast::<libc::c_char>(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() {
            return None;
        }
        // SAFETY: on success `found` points at `pwd`, whose `pw_name` is a
        // NUL-terminated string inside `buf`, alive until this returns.
        let name = unsafe { std::ffi::CStr::from_ptr((*found).pw_name) };
        return name
            .to_str()
            .ok()
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
    }
}

/// Whether `fd` is a terminal (decides colour in log output).
pub fn isatty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor; an invalid one yields 0.
    unsafe { libc::isatty(fd) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_signal_wakes_poll_and_drain_clears_it() {
        let efd = EventFd::new().expect("eventfd");
        let mut fds = [PollFd::new(efd.as_raw_fd(), POLLIN)];
        assert_eq!(poll(&mut fds, 0).expect("poll"), 0);

        efd.signal();
        efd.signal();
        assert_eq!(poll(&mut fds, 1000).expect("poll"), 1);
        assert_ne!(fds[0].revents & POLLIN, 0);

        efd.drain();
        fds[0].revents = 0;
        assert_eq!(poll(&mut fds, 0).expect("poll"), 0);
    }

    #[test]
    fn eventfd_wakes_a_poll_in_another_thread() {
        let efd = std::sync::Arc::new(EventFd::new().expect("eventfd"));
        let waiter = {
            let efd = efd.clone();
            std::thread::spawn(move || {
                let mut fds = [PollFd::new(efd.as_raw_fd(), POLLIN)];
                poll(&mut fds, 5000).expect("poll")
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        efd.signal();
        assert_eq!(waiter.join().expect("waiter"), 1);
    }

    #[test]
    fn poll_ignores_negative_descriptors() {
        // The kernel skips entries with a negative fd, so this times out.
        let mut fds = [PollFd::new(-1, POLLIN)];
        assert_eq!(poll(&mut fds, 10).expect("poll"), 0);
    }

    #[test]
    fn second_open_file_description_cannot_take_the_lock() {
        let path = std::env::temp_dir().join(format!("clawgate-sys-lock-{}", uuid_v4()));
        let first = File::create(&path).expect("create");
        assert!(try_lock_exclusive(&first).expect("lock"));
        let second = File::open(&path).expect("open");
        assert!(!try_lock_exclusive(&second).expect("lock"));
        drop(first);
        assert!(try_lock_exclusive(&second).expect("lock after release"));
        std::fs::remove_file(&path).expect("cleanup");
    }

    #[test]
    fn a_pipe_whose_reader_closed_is_seen_at_once() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both are fresh descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        assert!(!wait_reader_gone(write.as_raw_fd(), 10));
        drop(read);
        let t = Instant::now();
        assert!(wait_reader_gone(write.as_raw_fd(), 5000));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn uid_0_is_named_root() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn kill_group_refuses_special_groups() {
        assert!(kill_group(0, 0).is_err());
        assert!(kill_group(1, 0).is_err());
        assert!(kill_group(u32::MAX, 0).is_err());
    }

    #[test]
    fn kill_refuses_special_pids() {
        assert!(kill(0, 0).is_err());
        assert!(kill(u32::MAX, 0).is_err());
        assert!(!process_alive(0));
        assert!(process_alive(std::process::id()));
    }

    #[test]
    fn wait_signal_returns_a_blocked_signal_in_a_child_process() {
        // sigwait needs the signal blocked in every thread, which the
        // multi-threaded test harness cannot guarantee; run it in a child.
        if std::env::var_os("CLAWGATE_SYS_SIGNAL_CHILD").is_some() {
            block_signals(&[SIGUSR1]).expect("block");
            // Direct the signal at this thread: the harness's other threads
            // do not block it, and a process-wide SIGUSR1 delivered to one
            // of them would kill the child.
            // SAFETY: pthread_self is always a valid thread of this process.
            let rc = unsafe { libc::pthread_kill(libc::pthread_self(), SIGUSR1) };
            assert_eq!(rc, 0);
            let sig = wait_signal(&[SIGUSR1]).expect("sigwait");
            // A distinctive status proves the child really ran this test.
            std::process::exit(if sig == SIGUSR1 { 42 } else { 1 });
        }
        let exe = std::env::current_exe().expect("current exe");
        let status = std::process::Command::new(exe)
            .args([
                "--exact",
                "sys::tests::wait_signal_returns_a_blocked_signal_in_a_child_process",
                "--test-threads=1",
            ])
            .env("CLAWGATE_SYS_SIGNAL_CHILD", "1")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("spawn child");
        assert_eq!(status.code(), Some(42), "{status}");
    }
}
