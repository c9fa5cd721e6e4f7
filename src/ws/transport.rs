//! The socket side of one WebSocket connection: non-blocking reads and
//! writes through tungstenite, `poll` on the socket and a wake-up fd, and
//! the closing handshake. It moves bytes and decides nothing.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use super::tap::Tap;
use super::{close, End};
use crate::sys::{self, PollFd, POLLIN, POLLOUT};

pub(super) type Ws = WebSocket<Tap>;

/// Frames this large are written past tungstenite's write buffer.
const DIRECT_MIN: usize = 2048;

/// How often a frame that waits for the large-frame budget tries again.
const BUDGET_RETRY: Duration = Duration::from_millis(20);

pub(super) struct Conn<'a> {
    pub(super) ws: &'a mut Ws,
    /// The last flush would have blocked: wait for POLLOUT before writing
    /// more, so queued events stay in the bounded outbox.
    pub(super) want_write: bool,
}

impl Conn<'_> {
    fn fd(&self) -> i32 {
        self.ws.get_ref().as_raw_fd()
    }

    /// Queues a frame. tungstenite keeps it even when the socket would
    /// block; that only means: write nothing more until it drains. A large
    /// frame goes past tungstenite's buffer when that is empty (see
    /// `Tap::send_direct`), so the buffer never grows to hold it.
    pub(super) fn write(&mut self, text: String) -> Result<(), End> {
        if text.len() >= DIRECT_MIN && self.ws.flush().is_ok() {
            let head = super::direct::text_frame_head(text.len());
            return match self.ws.get_mut().send_direct(&head, text.as_bytes()) {
                Ok(all) => {
                    self.want_write = !all;
                    Ok(())
                }
                Err(_) => Err(End::Gone),
            };
        }
        match self.ws.write(Message::text(text)) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(_) => Err(End::Gone),
        }
    }

    /// Queues a ping (empty: the peer's pong only has to arrive).
    pub(super) fn ping(&mut self) -> Result<(), End> {
        match self.ws.write(Message::Ping(Default::default())) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(_) => Err(End::Gone),
        }
    }

    pub(super) fn send(&mut self, text: String) -> Result<(), End> {
        self.write(text)?;
        self.flush()
    }

    pub(super) fn flush(&mut self) -> Result<(), End> {
        match self.ws.flush() {
            Ok(()) => {
                self.want_write = false;
                Ok(())
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(_) => Err(End::Gone),
        }
    }

    /// One message, `None` when the socket has nothing more for now (or
    /// a large frame waits for the budget).
    pub(super) fn read(&mut self) -> Result<Option<Message>, End> {
        let read = self.ws.read();
        // tungstenite answers pings while it reads: if that write blocked,
        // reading stops until the peer reads, so pongs cannot pile up.
        if self.ws.get_ref().write_blocked() {
            self.want_write = true;
        }
        match read {
            Ok(m) => {
                if matches!(m, Message::Text(_) | Message::Binary(_)) {
                    self.ws.get_mut().message_done();
                }
                Ok(Some(m))
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(tungstenite::Error::Capacity(_)) => Err(close(1009, "frame too large")),
            Err(tungstenite::Error::Utf8(_)) => Err(close(1007, "invalid utf-8")),
            Err(tungstenite::Error::Protocol(_)) => Err(close(1002, "protocol error")),
            Err(_) => Err(End::Gone),
        }
    }

    /// When the message being read began, if it is large or fragmented.
    pub(super) fn message_since(&self) -> Option<Instant> {
        self.ws.get_ref().message_since()
    }

    /// Sleeps until the socket or `wake` is ready, or `timeout` passes.
    /// While a large frame waits for the budget the socket's input is not
    /// watched (it may be ready and still not be read); the budget is
    /// tried again every few milliseconds instead.
    pub(super) fn wait(
        &self,
        wake: Option<&sys::EventFd>,
        timeout: Option<Duration>,
    ) -> Result<(), End> {
        let budget_wait = self.ws.get_ref().waiting_for_budget();
        let input = if budget_wait { 0 } else { POLLIN };
        let sock = PollFd::new(self.fd(), input | if self.want_write { POLLOUT } else { 0 });
        let timeout = match (budget_wait, timeout) {
            (true, t) => Some(t.map_or(BUDGET_RETRY, |t| t.min(BUDGET_RETRY))),
            (false, t) => t,
        };
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        let polled = match wake {
            Some(w) => sys::poll(&mut [sock, PollFd::new(w.as_raw_fd(), POLLIN)], ms),
            None => sys::poll(&mut [sock], ms),
        };
        polled.map(|_| ()).map_err(|_| End::Gone)
    }
}

/// Sends a close frame, waits briefly for it to leave and for the peer's
/// reply, then lets the socket drop.
pub(super) fn finish(ws: &mut Ws, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    };
    let _ = ws.close(Some(frame));
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        let pending = match ws.flush() {
            Ok(()) => false,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(_) => break,
        };
        if !pending {
            match ws.read() {
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let mut fds = [PollFd::new(
            ws.get_ref().as_raw_fd(),
            POLLIN | if pending { POLLOUT } else { 0 },
        )];
        let ms = (deadline - now).as_millis() as i32;
        if sys::poll(&mut fds, ms.max(1)).is_err() {
            break;
        }
    }
    let _ = ws.get_ref().socket().shutdown(std::net::Shutdown::Both);
}
