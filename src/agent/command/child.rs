//! The child of one turn, from spawn to reaping: its pipes read and
//! written in one poll loop (no extra threads), the end of the turn
//! decided (exit, cancel, timeout, silence, oversized output), and its
//! process group ended and reaped so nothing is left behind.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, ExitStatus};
use std::time::{Duration, Instant};

use super::Failure;
use crate::agent::Cancel;
use crate::error::io_message;
use crate::sys::{self, EventFd, PollFd};

/// The most stdout a turn keeps; a CLI printing more is ended.
pub const MAX_STDOUT: usize = 1 << 20;
/// How much of stderr's end is kept, for the error of a failed turn.
pub const STDERR_TAIL: usize = 4096;
/// Between SIGTERM and SIGKILL when a turn ends early.
pub(super) const GRACE: Duration = Duration::from_secs(1);
/// How often the child's exit is checked while its pipes stay open (a
/// grandchild may hold them after the child is gone).
const TICK: Duration = Duration::from_millis(100);
/// Pipe writes up to this size are atomic, so one never blocks once poll
/// has reported the pipe writable.
const PIPE_BUF: usize = 4096;
/// Reads of what is left in the pipes once the child has exited: enough
/// for a full 1 MiB of stdout, and finite if a grandchild keeps writing.
const MAX_DRAIN_READS: usize = 256;

/// Why the watch over the child stopped.
pub(super) enum End {
    Exited(ExitStatus),
    Cancelled,
    TimedOut,
    Silent(Duration),
    TooLarge,
    Failed(String),
}

impl End {
    pub(super) fn into_status(self) -> Result<ExitStatus, Failure> {
        Err(match self {
            End::Exited(status) => return Ok(status),
            End::Cancelled => Failure::Cancelled,
            End::TimedOut => Failure::TimedOut,
            End::Silent(d) => {
                Failure::Error(format!("backend produced no output for {} s", d.as_secs()))
            }
            End::TooLarge => Failure::Error("backend output larger than 1 MiB".into()),
            End::Failed(m) => Failure::Error(m),
        })
    }
}

/// The child's three pipes and what came through them.
pub(super) struct Pipes<'p> {
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    input: Option<ChildStdin>,
    prompt: &'p [u8],
    written: usize,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: Vec<u8>,
    last_output: Instant,
}

fn fd<T: AsRawFd>(pipe: &Option<T>) -> RawFd {
    pipe.as_ref().map_or(-1, AsRawFd::as_raw_fd)
}

impl<'p> Pipes<'p> {
    pub(super) fn new(child: &mut Child, prompt: &'p [u8]) -> Pipes<'p> {
        let mut input = child.stdin.take();
        if prompt.is_empty() {
            // Nothing to write: the child sees EOF at once.
            input = None;
        }
        Pipes {
            out: child.stdout.take(),
            err: child.stderr.take(),
            input,
            prompt,
            written: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            last_output: Instant::now(),
        }
    }

    fn open(&self) -> bool {
        self.out.is_some() || self.err.is_some()
    }

    /// One read from stdout; false when it went past [`MAX_STDOUT`].
    fn read_out(&mut self, buf: &mut [u8]) -> bool {
        let Some(out) = self.out.as_mut() else {
            return true;
        };
        match out.read(buf) {
            Ok(0) => self.out = None,
            Ok(n) => {
                self.last_output = Instant::now();
                if self.stdout.len() + n > MAX_STDOUT {
                    return false;
                }
                self.stdout.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.out = None,
        }
        true
    }

    /// One read from stderr, keeping only the last [`STDERR_TAIL`] bytes.
    fn read_err(&mut self, buf: &mut [u8]) {
        let Some(err) = self.err.as_mut() else {
            return;
        };
        match err.read(buf) {
            Ok(0) => self.err = None,
            Ok(n) => {
                self.last_output = Instant::now();
                self.stderr.extend_from_slice(&buf[..n]);
                let excess = self.stderr.len().saturating_sub(STDERR_TAIL);
                self.stderr.drain(..excess);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.err = None,
        }
    }

    /// One write of at most [`PIPE_BUF`] bytes; closes stdin when all of
    /// the prompt is written or the child stopped reading.
    fn write_in(&mut self) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        let end = self.prompt.len().min(self.written + PIPE_BUF);
        match input.write(&self.prompt[self.written..end]) {
            Ok(n) => self.written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.written = self.prompt.len(),
        }
        if self.written >= self.prompt.len() {
            self.input = None;
        }
    }

    /// Reads what the exited child left in the pipes, without waiting for
    /// a grandchild that may still hold them.
    pub(super) fn drain(&mut self) {
        self.input = None;
        let mut buf = [0u8; 8192];
        for _ in 0..MAX_DRAIN_READS {
            let mut fds = [
                PollFd::new(fd(&self.out), sys::POLLIN),
                PollFd::new(fd(&self.err), sys::POLLIN),
            ];
            if !matches!(sys::poll(&mut fds, 0), Ok(n) if n > 0) {
                return;
            }
            if fds[0].revents != 0 && !self.read_out(&mut buf) {
                // Past the cap: keep what fits, the reply is parsed from it.
                self.out = None;
            }
            if fds[1].revents != 0 {
                self.read_err(&mut buf);
            }
        }
    }
}

/// Watches the child until it exits or the turn must end. Bounded by the
/// turn timeout and the no-output watchdog (each when set) and by the
/// cancel handle; every wait is a poll with a timeout.
pub(super) fn watch(
    child: &mut Child,
    pipes: &mut Pipes,
    deadline: Option<Instant>,
    silence: Option<Duration>,
    cancel: &Cancel,
    wake: &EventFd,
) -> End {
    let mut buf = [0u8; 8192];
    // With both pipes closed only the exit is left to see; check soon,
    // then less often if the child lingers.
    let mut closed_tick = Duration::from_millis(5);
    loop {
        if cancel.is_cancelled() {
            return End::Cancelled;
        }
        match child.try_wait() {
            Ok(Some(status)) => return End::Exited(status),
            Ok(None) => {}
            Err(e) => return End::Failed(format!("waiting for the backend: {}", io_message(&e))),
        }
        let now = Instant::now();
        let mut wait = if pipes.open() {
            TICK
        } else {
            closed_tick = (closed_tick * 2).min(TICK);
            closed_tick
        };
        if let Some(d) = deadline {
            if now >= d {
                return End::TimedOut;
            }
            wait = wait.min(d - now);
        }
        if let Some(s) = silence {
            let quiet_until = pipes.last_output + s;
            if now >= quiet_until {
                return End::Silent(s);
            }
            wait = wait.min(quiet_until - now);
        }
        let mut fds = [
            PollFd::new(fd(&pipes.out), sys::POLLIN),
            PollFd::new(fd(&pipes.err), sys::POLLIN),
            PollFd::new(fd(&pipes.input), sys::POLLOUT),
            PollFd::new(wake.as_raw_fd(), sys::POLLIN),
        ];
        let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        if let Err(e) = sys::poll(&mut fds, ms) {
            return End::Failed(format!("waiting for the backend: {}", io_message(&e)));
        }
        if fds[3].revents != 0 {
            wake.drain();
        }
        if fds[0].revents != 0 && !pipes.read_out(&mut buf) {
            return End::TooLarge;
        }
        if fds[1].revents != 0 {
            pipes.read_err(&mut buf);
        }
        if fds[2].revents != 0 {
            pipes.write_in();
        }
    }
}

/// Whether any process is left in the group (a zombie counts until it is
/// reaped).
fn group_alive(pgid: u32) -> bool {
    match sys::kill_group(pgid, 0) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::PermissionDenied,
    }
}

/// Ends whatever is left of the child's group and reaps the child: SIGTERM
/// to the group, SIGKILL after [`GRACE`] if anything is still there. A
/// child that already exited with nothing left behind costs one kill(2).
pub(super) fn stop(child: &mut Child, pgid: u32) {
    let mut reaped = matches!(child.try_wait(), Ok(Some(_)));
    if reaped && !group_alive(pgid) {
        return;
    }
    let _ = sys::kill_group(pgid, sys::SIGTERM);
    let until = Instant::now() + GRACE;
    loop {
        if !reaped {
            reaped = matches!(child.try_wait(), Ok(Some(_)));
        }
        if reaped && !group_alive(pgid) {
            return;
        }
        if Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = sys::kill_group(pgid, sys::SIGKILL);
    if !reaped {
        // After SIGKILL the wait is short; it is never skipped, so no
        // zombie is left behind.
        let _ = child.wait();
    }
}
