//! The socket as tungstenite sees it: a `TcpStream` with two watchers.
//!
//! Reading, it follows the frame boundaries in the byte stream (a frame
//! header says how long its payload is before a byte of the payload is
//! read). A data frame larger than [`SMALL_FRAME`] must first reserve its
//! length from the gateway-wide [`Budget`]; until it can, its payload is
//! not read and the connection waits, so however many clients send large
//! frames at once, the bytes held for them stay within the budget. The
//! reservation is returned when the message is complete. It also notes
//! when a message began, so one that is sent in fragments, or trickled, can
//! be given a deadline.
//!
//! Writing, it notes whether the socket would block, including the writes
//! tungstenite makes on its own (pong and close replies while reading): a
//! peer that does not read stops being read, and its pongs cannot pile up.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use super::direct::Direct;
use crate::state::Budget;

/// Data frames up to this size are read without a reservation: the same
/// size every socket may send before `hello-ok`.
pub const SMALL_FRAME: usize = 64 * 1024;

/// Where the frame scanner is in the byte stream.
#[derive(Debug, Clone, Copy)]
enum Scan {
    /// Collecting a header: the bytes so far.
    Header { bytes: [u8; 14], have: usize },
    /// Inside a payload: bytes left.
    Payload(u64),
}

/// What a complete frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHead {
    len: u64,
    data: bool,
    fin: bool,
}

impl Scan {
    fn new() -> Scan {
        Scan::Header {
            bytes: [0; 14],
            have: 0,
        }
    }

    /// Consumes bytes from `input` up to and including the end of the next
    /// frame header, if one ends in it. Returns how many bytes were
    /// consumed and the header, when one was completed.
    fn step(&mut self, input: &[u8]) -> (usize, Option<FrameHead>) {
        let mut used = 0;
        while used < input.len() {
            match self {
                Scan::Payload(left) => {
                    let take = (*left).min((input.len() - used) as u64);
                    *left -= take;
                    used += take as usize;
                    if *left == 0 {
                        *self = Scan::new();
                    }
                }
                Scan::Header { bytes, have } => {
                    bytes[*have] = input[used];
                    *have += 1;
                    used += 1;
                    if let Some(head) = header_done(&bytes[..*have]) {
                        *self = if head.len == 0 {
                            Scan::new()
                        } else {
                            Scan::Payload(head.len)
                        };
                        return (used, Some(head));
                    }
                }
            }
        }
        (used, None)
    }
}

/// The header in `b`, once all of its bytes are there (RFC 6455 §5.2).
fn header_done(b: &[u8]) -> Option<FrameHead> {
    if b.len() < 2 {
        return None;
    }
    let masked = b[1] & 0x80 != 0;
    let (extra, short) = match b[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let need = 2 + extra + if masked { 4 } else { 0 };
    if b.len() < need {
        return None;
    }
    let len = short.unwrap_or_else(|| {
        b[2..2 + extra]
            .iter()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
    });
    let opcode = b[0] & 0x0f;
    Some(FrameHead {
        len,
        // Text, binary and continuation frames carry a message's data;
        // control frames are at most 125 bytes.
        data: opcode < 0x8,
        fin: b[0] & 0x80 != 0,
    })
}

/// A socket with the watchers above, handed to tungstenite.
#[derive(Debug)]
pub struct Tap {
    sock: TcpStream,
    budget: Arc<Budget>,
    scan: Scan,
    /// Bytes read from the socket (or left over from the upgrade request)
    /// that tungstenite has not been given; the first `ready` of them are
    /// scanned and may be handed out.
    pending: Vec<u8>,
    ready: usize,
    /// A large frame waiting for its reservation: its length.
    waiting: Option<u64>,
    /// Bytes reserved for the message being read.
    reserved: usize,
    /// When the message being read began, if it is large or fragmented.
    message_since: Option<Instant>,
    /// The last write to the socket would have blocked.
    write_blocked: bool,
    /// A frame written past tungstenite, until the socket has taken it.
    direct: Direct,
}

impl Tap {
    /// `leftover`: what the peer sent after its upgrade request.
    pub fn new(sock: TcpStream, leftover: Vec<u8>, budget: Arc<Budget>) -> Tap {
        Tap {
            sock,
            budget,
            scan: Scan::new(),
            pending: leftover,
            ready: 0,
            waiting: None,
            reserved: 0,
            message_since: None,
            write_blocked: false,
            direct: Direct::default(),
        }
    }

    /// Writes one whole frame past tungstenite: see `Direct`.
    pub fn send_direct(&mut self, head: &[u8], payload: &[u8]) -> io::Result<bool> {
        let all = self.direct.send(&mut self.sock, head, payload)?;
        self.write_blocked = !all;
        Ok(all)
    }

    fn drain_direct(&mut self) -> io::Result<()> {
        let r = self.direct.drain(&mut self.sock);
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.write_blocked = true;
        }
        r
    }

    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Whether a write has blocked since the last one that went through.
    pub fn write_blocked(&self) -> bool {
        self.write_blocked
    }

    /// Whether reading waits for the large-frame budget.
    pub fn waiting_for_budget(&self) -> bool {
        self.waiting.is_some()
    }

    /// When the message now being read began, when it is a large or
    /// fragmented one (which get a deadline).
    pub fn message_since(&self) -> Option<Instant> {
        self.message_since
    }

    /// The message being read is complete (tungstenite returned it):
    /// its reservation goes back to the budget.
    pub fn message_done(&mut self) {
        self.budget.release(self.reserved);
        self.reserved = 0;
        self.message_since = None;
    }

    /// Scans `pending[ready..]` as far as reservations allow.
    fn scan_pending(&mut self) {
        while self.ready < self.pending.len() {
            if let Some(len) = self.waiting {
                if !self.admit(len) {
                    return;
                }
            }
            let (used, head) = self.scan.step(&self.pending[self.ready..]);
            self.ready += used;
            if let Some(h) = head {
                self.on_header(h);
            }
        }
    }

    fn on_header(&mut self, h: FrameHead) {
        if !h.data {
            return;
        }
        if self.message_since.is_none() && (!h.fin || h.len as usize > SMALL_FRAME) {
            self.message_since = Some(Instant::now());
        }
        if h.len as usize > SMALL_FRAME {
            self.waiting = Some(h.len);
        }
    }

    /// Reserves `len` for the frame whose header was just read; `false`
    /// while it does not fit.
    fn admit(&mut self, len: u64) -> bool {
        let n = usize::try_from(len).unwrap_or(usize::MAX);
        if !self.budget.try_reserve(n) {
            return false;
        }
        self.reserved += n;
        self.waiting = None;
        true
    }
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(len) = self.waiting {
            if !self.admit(len) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        if self.ready == 0 {
            self.scan_pending();
        }
        if self.ready > 0 {
            let n = self.ready.min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            self.ready -= n;
            return Ok(n);
        }
        if self.waiting.is_some() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // Nothing pending: straight from the socket into tungstenite's
        // buffer, scanned in place; only what a blocked reservation holds
        // back is copied aside.
        let n = self.sock.read(buf)?;
        let mut at = 0;
        while at < n {
            if self.waiting.is_some() {
                self.pending.extend_from_slice(&buf[at..n]);
                break;
            }
            let (used, head) = self.scan.step(&buf[at..n]);
            at += used;
            if let Some(h) = head {
                self.on_header(h);
                if let Some(len) = self.waiting {
                    self.admit(len);
                }
            }
        }
        Ok(at)
    }
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A frame written past tungstenite goes out whole first.
        self.drain_direct()?;
        match self.sock.write(buf) {
            Ok(n) => {
                self.write_blocked = false;
                Ok(n)
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::WouldBlock {
                    self.write_blocked = true;
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain_direct()?;
        self.sock.flush()
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A masked client frame with `len` bytes of payload.
    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => f.push(0x80 | len as u8),
            126..=65535 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.resize(f.len() + len, b'x');
        f
    }

    #[test]
    fn the_scanner_finds_every_header_however_the_bytes_are_cut() {
        let mut stream = frame(true, 1, 5);
        stream.extend(frame(false, 1, 300));
        stream.extend(frame(true, 0, 70_000));
        stream.extend(frame(true, 9, 0));
        for cut in [1, 2, 3, 7, 100, 4096] {
            let mut scan = Scan::new();
            let mut heads = Vec::new();
            for chunk in stream.chunks(cut) {
                let mut at = 0;
                while at < chunk.len() {
                    let (used, head) = scan.step(&chunk[at..]);
                    at += used;
                    heads.extend(head);
                }
            }
            let got: Vec<(u64, bool, bool)> =
                heads.iter().map(|h| (h.len, h.data, h.fin)).collect();
            assert_eq!(
                got,
                [
                    (5, true, true),
                    (300, true, false),
                    (70_000, true, true),
                    (0, false, true)
                ],
                "cut {cut}"
            );
        }
    }

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        (client, server)
    }

    fn read_all(tap: &mut Tap, want: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1000];
        while out.len() < want {
            let n = tap.read(&mut buf)?;
            out.extend_from_slice(&buf[..n]);
        }
        Ok(out)
    }

    #[test]
    fn a_large_frame_waits_for_the_budget_and_returns_it_when_done() {
        let (mut client, server) = pair();
        let budget = Arc::new(Budget::new(100_000));
        let mut a = Tap::new(server, Vec::new(), budget.clone());
        // Someone else holds most of the budget.
        assert!(budget.try_reserve(90_000));
        let big = frame(true, 1, 70_000);
        client.write_all(&big).unwrap();
        // The header goes through; the payload does not, yet.
        let head = read_all(&mut a, 14).unwrap();
        assert_eq!(head, big[..14]);
        a.sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 1000];
        assert_eq!(
            a.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(a.waiting_for_budget());
        assert!(a.message_since().is_some());
        budget.release(90_000);
        a.sock.set_nonblocking(false).unwrap();
        let rest = read_all(&mut a, big.len() - 14).unwrap();
        assert_eq!(rest, big[14..]);
        assert_eq!(budget.used(), 70_000);
        a.message_done();
        assert_eq!(budget.used(), 0);
        assert!(a.message_since().is_none());
    }

    #[test]
    fn leftover_bytes_are_scanned_before_the_socket_is_read() {
        let (mut client, server) = pair();
        let budget = Arc::new(Budget::new(1_000_000));
        let first = frame(true, 1, 10);
        let second = frame(true, 2, 80_000);
        client.write_all(&second).unwrap();
        let mut a = Tap::new(server, first.clone(), budget.clone());
        let got = read_all(&mut a, first.len() + second.len()).unwrap();
        assert_eq!(got.len(), first.len() + second.len());
        assert_eq!(budget.used(), 80_000);
        drop(a);
        assert_eq!(
            budget.used(),
            0,
            "a dropped connection returns its reservation"
        );
    }
}
