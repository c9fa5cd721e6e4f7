//! A small blocking HTTP/1.1 client for model backends: one `POST` to an
//! `http://` or `https://` URL, the answer's head parsed with httparse and
//! its body decoded as it is read (chunked, by length, or to the close), so
//! a streamed reply is never held whole. It lives on the run's own thread:
//! every wait is cut into short slices that check the run's [`Cancel`] and
//! one deadline for the whole request, and cancelling shuts the socket down
//! so a read in progress returns at once. `https://` runs the same framing
//! over rustls (the `tls` feature, in [`tls`]); a build without it refuses
//! such URLs.
//!
//! Memory per request: one 16 KiB buffer (which also bounds the answer's
//! head), at most 64 parsed headers, the request the caller built, while
//! connecting a thread with a 256 KiB stack, and for `https://` the TLS
//! buffers that [`tls`] bounds.

mod chunked;
mod head;
// The rustls client with the "tls" feature; a refusal of https:// without.
#[cfg(feature = "tls")]
mod tls;
#[cfg(not(feature = "tls"))]
#[path = "http/notls.rs"]
mod tls;
mod url;

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::agent::Cancel;
use crate::error::io_message;
use head::{framing, parse_head, Framing, Head};
pub use tls::Trust;
use url::request_head;
pub use url::Url;

/// How long one blocking wait lasts before the cancel flag and the
/// deadline are checked again: the most an abort waits when no hook fires.
const SLICE: Duration = Duration::from_millis(250);
/// The read buffer, and so the largest response head accepted.
const BUF: usize = 16 * 1024;
/// `100 Continue` and friends skipped before the real answer.
const MAX_INFORMATIONAL: usize = 4;

/// Why a request did not give an answer, or its body stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The run's [`Cancel`] fired.
    Cancelled,
    /// Anything else, as the message the run reports.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled => f.write_str("cancelled"),
            Error::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Recovers the error a body read carried through `io::Error`;
    /// other I/O failures become a message about reading the answer.
    pub fn from_io(e: io::Error) -> Error {
        match e.get_ref().and_then(|r| r.downcast_ref::<Error>()) {
            Some(ours) => ours.clone(),
            None => Error::Failed(format!("reading from upstream: {}", io_message(&e))),
        }
    }

    fn into_io(self, kind: ErrorKind) -> io::Error {
        io::Error::new(kind, self)
    }
}

/// The answer: its status line and headers read, its body still on the
/// socket, decoded by [`Read`]. Dropping it closes the connection and
/// forgets the cancel hook.
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    framing: Framing,
    conn: Conn,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Response({} {})", self.status, self.reason)
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Brings the deadline forward to at most `within` from now, for a
    /// body worth only a short wait (an error answer's text).
    pub fn shorten(&mut self, within: Duration) {
        let soon = Instant::now() + within;
        if soon < self.conn.bounds.deadline {
            self.conn.bounds.deadline = soon;
        }
    }
}

/// Sends one `POST` and reads the answer's head. `timeout` bounds the
/// whole request, the body's reads included; `cancel` ends it early, with
/// [`Error::Cancelled`] from here or from a body read. An `https://` URL's
/// server must show a certificate that `trust` (by default the system's
/// CA bundle) vouches for.
pub fn post(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
    cancel: &Cancel,
    trust: Option<&Trust>,
) -> Result<Response, Error> {
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let bounds = Bounds {
        deadline: Instant::now() + timeout,
        timeout,
        cancel: cancel.clone(),
    };
    let url = Url::parse(url).map_err(Error::Failed)?;
    let head = request_head(&url, headers, body.len()).map_err(Error::Failed)?;
    // Before connecting: a missing CA bundle or a host that cannot be a
    // TLS server name fails without touching the network.
    let session = match url.tls {
        true => Some(tls::session(trust, &url)?),
        false => None,
    };
    let stream = connect(&url, &bounds)?;
    let setup = |e: io::Error| {
        Error::Failed(format!(
            "cannot set up the upstream socket: {}",
            io_message(&e)
        ))
    };
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(SLICE)).map_err(setup)?;
    stream.set_write_timeout(Some(SLICE)).map_err(setup)?;
    let unblock = stream.try_clone().map_err(setup)?;
    // Made before the hook, so that its Drop clears the hook on every way
    // out of here (a failed handshake too) and of the body reads.
    let unhook = Unhook(cancel.clone());
    cancel.on_cancel(move || {
        let _ = unblock.shutdown(Shutdown::Both);
    });
    let io: Box<dyn Io> = match session {
        Some(s) => tls::handshake(s, stream, &url, &bounds)?,
        None => Box::new(stream),
    };
    let mut conn = Conn {
        io,
        buf: vec![0; BUF].into_boxed_slice(),
        start: 0,
        end: 0,
        bounds,
        _unhook: unhook,
    };
    conn.send(head.as_bytes())?;
    conn.send(body)?;
    let Head {
        status,
        reason,
        headers,
        ..
    } = conn.read_head()?;
    let framing = framing(status, &headers).map_err(Error::Failed)?;
    Ok(Response {
        status,
        reason,
        headers,
        framing,
        conn,
    })
}

fn timed_out(timeout: Duration) -> Error {
    let secs = if timeout.subsec_millis() == 0 {
        format!("{}", timeout.as_secs())
    } else {
        format!("{:.1}", timeout.as_secs_f64())
    };
    Error::Failed(format!("upstream timed out after {secs} s"))
}

/// Resolves and connects on a short-lived thread, because neither the
/// name lookup nor `connect` can be interrupted: the run waits in slices
/// and leaves on cancel or at the deadline, and the thread ends on its own
/// by the same deadline (or when the resolver gives up), dropping a socket
/// nobody wants.
fn connect(url: &Url, bounds: &Bounds) -> Result<TcpStream, Error> {
    let (tx, rx) = mpsc::channel();
    let (host, port, deadline) = (url.host.clone(), url.port, bounds.deadline);
    std::thread::Builder::new()
        .name("upstream-connect".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _ = tx.send(dial(&host, port, deadline));
        })
        .map_err(|e| Error::Failed(format!("cannot start a connect thread: {}", io_message(&e))))?;
    // Bounded by the deadline: each pass waits one slice at most.
    loop {
        bounds.check()?;
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(SLICE.min(left)) {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) if e.kind() == ErrorKind::TimedOut => return Err(timed_out(bounds.timeout)),
            Ok(Err(e)) => {
                return Err(Error::Failed(format!(
                    "cannot reach {}: {}",
                    url.authority(),
                    io_message(&e)
                )))
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Error::Failed(format!(
                    "cannot reach {}: the connect thread ended",
                    url.authority()
                )))
            }
        }
    }
}

fn dial(host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
    let mut last = io::Error::new(ErrorKind::NotFound, "no address found for the name");
    // A name with many addresses is tried in order, a few of them at most.
    for addr in (host, port).to_socket_addrs()?.take(8) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A connection's byte stream: the socket itself, or a TLS session on it.
trait Io: Read + Write + Send {}

impl<T: Read + Write + Send> Io for T {}

/// What bounds every wait of one request: the run's cancel and a deadline.
struct Bounds {
    deadline: Instant,
    timeout: Duration,
    cancel: Cancel,
}

impl Bounds {
    fn check(&self) -> Result<(), Error> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if Instant::now() >= self.deadline {
            return Err(timed_out(self.timeout));
        }
        Ok(())
    }

    /// An I/O failure, or the cancel that caused it by shutting the socket.
    fn failure(&self, e: &io::Error, doing: &str) -> Error {
        match self.cancel.is_cancelled() {
            true => Error::Cancelled,
            false => Error::Failed(format!("{doing}: {}", io_message(e))),
        }
    }
}

/// Forgets the cancel hook when dropped: the socket it would shut down is
/// gone, and the hook holds a handle to it.
struct Unhook(Cancel);

impl Drop for Unhook {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// The stream, its read buffer (`buf[start..end]` not yet consumed), and
/// what bounds every wait on it.
struct Conn {
    io: Box<dyn Io>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    bounds: Bounds,
    _unhook: Unhook,
}

/// A read or write that ran out its slice; the loop checks and goes on.
fn slice_over(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

impl Conn {
    fn send(&mut self, mut data: &[u8]) -> Result<(), Error> {
        // Bounded by the deadline: every pass writes or waits one slice.
        while !data.is_empty() {
            self.bounds.check()?;
            match self.io.write(data) {
                Ok(0) => return Err(Error::Failed("upstream closed the connection early".into())),
                Ok(n) => data = &data[n..],
                Err(e) if slice_over(&e) => {}
                Err(e) => return Err(self.bounds.failure(&e, "sending to upstream")),
            }
        }
        Ok(())
    }

    /// Reads more into the buffer: the count, 0 at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.end == self.buf.len() {
            return Err(
                Error::Failed("upstream read buffer is full".into()).into_io(ErrorKind::Other)
            );
        }
        // Bounded by the deadline: every pass reads or waits one slice.
        loop {
            if let Err(e) = self.bounds.check() {
                let kind = match e {
                    Error::Cancelled => ErrorKind::Other,
                    Error::Failed(_) => ErrorKind::TimedOut,
                };
                return Err(e.into_io(kind));
            }
            match self.io.read(&mut self.buf[self.end..]) {
                Ok(0) if self.bounds.cancel.is_cancelled() => {
                    return Err(Error::Cancelled.into_io(ErrorKind::Other))
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if slice_over(&e) => {}
                Err(e) => {
                    let ours = self.bounds.failure(&e, "reading from upstream");
                    return Err(ours.into_io(e.kind()));
                }
            }
        }
    }

    fn read_head(&mut self) -> Result<Head, Error> {
        let mut informational = 0;
        // Bounded: each pass fills the bounded buffer, waiting at most
        // until the deadline, or skips one of a few informational heads.
        loop {
            match parse_head(&self.buf[self.start..self.end]).map_err(Error::Failed)? {
                Some(head) => {
                    self.start += head.len;
                    let skip = (100..200).contains(&head.status) && head.status != 101;
                    if skip && informational < MAX_INFORMATIONAL {
                        informational += 1;
                        continue;
                    }
                    return Ok(head);
                }
                None if self.end - self.start >= BUF => {
                    return Err(Error::Failed(format!(
                        "upstream answered with a head larger than {} KiB",
                        BUF / 1024
                    )))
                }
                None => {
                    if self.fill().map_err(Error::from_io)? == 0 {
                        return Err(Error::Failed(
                            "upstream closed the connection without answering".into(),
                        ));
                    }
                }
            }
        }
    }
}

fn early_end() -> io::Error {
    Error::Failed("upstream closed the connection before the body ended".into())
        .into_io(ErrorKind::UnexpectedEof)
}

impl Read for Response {
    /// The body's next bytes; a body cut short by the peer is an
    /// `UnexpectedEof` error, and the deadline and cancel are errors that
    /// [`Error::from_io`] recovers.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // Bounded: every pass consumes buffered bytes or reads the socket,
        // whose waits the deadline bounds.
        loop {
            let done = match &self.framing {
                Framing::Length(left) => *left == 0,
                Framing::Chunked(c) => c.done(),
                Framing::Close => false,
            };
            if done {
                return Ok(0);
            }
            if self.conn.start == self.conn.end {
                if self.conn.fill()? == 0 {
                    return match self.framing {
                        Framing::Close => Ok(0),
                        _ => Err(early_end()),
                    };
                }
                continue;
            }
            let have = &self.conn.buf[self.conn.start..self.conn.end];
            let (used, made) = match &mut self.framing {
                Framing::Length(left) => {
                    let n = have
                        .len()
                        .min(out.len())
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out[..n].copy_from_slice(&have[..n]);
                    *left -= n as u64;
                    (n, n)
                }
                Framing::Close => {
                    let n = have.len().min(out.len());
                    out[..n].copy_from_slice(&have[..n]);
                    (n, n)
                }
                Framing::Chunked(c) => c
                    .decode(have, out)
                    .map_err(|m| Error::Failed(m).into_io(ErrorKind::InvalidData))?,
            };
            self.conn.start += used;
            if made > 0 {
                return Ok(made);
            }
        }
    }
}

#[cfg(test)]
mod tests;
