//! Large frames written past tungstenite's write buffer.
//!
//! tungstenite copies every frame into one buffer and keeps that buffer's
//! capacity for the life of the connection, so one presence list or large
//! reply would stay allocated on every idle connection that was sent one
//! (with 100 clients listed, 25 KiB each). A large frame is written
//! straight to the socket instead, when tungstenite has nothing buffered;
//! what the socket does not take at once is kept here, exactly that much,
//! and freed once written. Until then the socket's `Write` (the `Tap`)
//! refuses tungstenite's writes, so frames never interleave.

use std::io::{self, IoSlice, Write};

/// The unwritten rest of one frame, or nothing (and no allocation).
#[derive(Debug, Default)]
pub struct Direct {
    rest: Vec<u8>,
    at: usize,
}

/// The header of a final, unmasked text frame of `len` bytes (RFC 6455
/// §5.2: a server never masks).
pub fn text_frame_head(len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(10);
    h.push(0x81);
    match len {
        0..=125 => h.push(len as u8),
        126..=0xFFFF => {
            h.push(126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(127);
            h.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    h
}

impl Direct {
    /// Writes `head` then `payload` to `out`; returns whether all of it
    /// went. Only when nothing is left from the previous frame.
    pub fn send(&mut self, out: &mut impl Write, head: &[u8], payload: &[u8]) -> io::Result<bool> {
        debug_assert!(self.rest.is_empty());
        let total = head.len() + payload.len();
        let mut done = 0;
        while done < total {
            let parts = if done < head.len() {
                [IoSlice::new(&head[done..]), IoSlice::new(payload)]
            } else {
                [
                    IoSlice::new(&payload[done - head.len()..]),
                    IoSlice::new(&[]),
                ]
            };
            match out.write_vectored(&parts) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if done == total {
            return Ok(true);
        }
        let mut rest = Vec::with_capacity(total - done);
        if done < head.len() {
            rest.extend_from_slice(&head[done..]);
            rest.extend_from_slice(payload);
        } else {
            rest.extend_from_slice(&payload[done - head.len()..]);
        }
        self.rest = rest;
        self.at = 0;
        Ok(false)
    }

    /// Writes what is left; `WouldBlock` while some remains.
    pub fn drain(&mut self, out: &mut impl Write) -> io::Result<()> {
        while self.at < self.rest.len() {
            match out.write(&self.rest[self.at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.rest.is_empty() {
            *self = Direct::default();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `room` bytes, then would block until
    /// `room` is raised.
    struct Narrow {
        got: Vec<u8>,
        room: usize,
    }

    impl Write for Narrow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn frame_heads_use_the_shortest_length_form() {
        assert_eq!(text_frame_head(5), [0x81, 5]);
        assert_eq!(text_frame_head(126), [0x81, 126, 0, 126]);
        assert_eq!(
            text_frame_head(70_000),
            [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
    }

    #[test]
    fn what_the_socket_does_not_take_is_kept_then_freed_once_written() {
        let payload = vec![b'x'; 5000];
        let head = text_frame_head(payload.len());
        for room in [0, 1, 3, 4, 100, 5003, 6000] {
            let mut sock = Narrow {
                got: Vec::new(),
                room,
            };
            let mut d = Direct::default();
            let all = d.send(&mut sock, &head, &payload).unwrap();
            assert_eq!(all, room >= 5004, "room {room}");
            assert_eq!(d.rest.len() - d.at + sock.got.len(), 5004);
            while d.drain(&mut sock).is_err() {
                sock.room = 7;
            }
            assert_eq!(&sock.got[..4], &head[..], "room {room}");
            assert_eq!(&sock.got[4..], &payload[..], "room {room}");
            assert_eq!(d.rest.capacity(), 0, "freed once written");
        }
    }
}
