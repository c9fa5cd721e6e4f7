//! Reading a request body: exactly the `Content-Length` bytes the head
//! declared (the limit was checked before a byte of it was read), some of
//! which may already sit in the head buffer, within one total deadline
//! (`bodyTimeoutMs`), so a slow sender cannot hold the thread.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    Read(Vec<u8>),
    /// The deadline passed first.
    Timeout,
    /// The peer closed or the socket failed first.
    Closed,
}

/// Reads `len` bytes: first from `buf` (what arrived with the head), then
/// from the socket. Bytes beyond the body (a pipelined request) stay in
/// `buf`.
pub fn read(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize, timeout: Duration) -> Body {
    let from_buf = len.min(buf.len());
    let mut body: Vec<u8> = buf.drain(..from_buf).collect();
    let deadline = Instant::now() + timeout;
    while body.len() < len {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Body::Timeout;
        }
        // Straight into the body's tail, 2 KiB at a time: no scratch
        // array on the connection thread's small stack.
        let filled = body.len();
        body.resize(filled + (len - filled).min(2048), 0);
        let got = stream.read(&mut body[filled..]);
        body.truncate(filled + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => return Body::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Body::Timeout
            }
            Err(_) => return Body::Closed,
        }
    }
    Body::Read(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        (client, server)
    }

    #[test]
    fn a_body_comes_from_the_head_buffer_then_the_socket() {
        let (mut client, mut server) = pair();
        client.write_all(b"lo wor").unwrap();
        let mut buf = b"hel".to_vec();
        let got = read(&mut server, &mut buf, 9, Duration::from_secs(5));
        assert_eq!(got, Body::Read(b"hello wor".to_vec()));
        let mut buf = b"abcGET /".to_vec();
        assert_eq!(
            read(&mut server, &mut buf, 3, Duration::from_secs(5)),
            Body::Read(b"abc".to_vec())
        );
        assert_eq!(buf, b"GET /", "the next request stays");
    }

    #[test]
    fn a_slow_or_vanished_sender_ends_the_read() {
        let (mut client, mut server) = pair();
        client.write_all(b"ab").unwrap();
        let started = Instant::now();
        let got = read(&mut server, &mut Vec::new(), 10, Duration::from_millis(200));
        assert_eq!(got, Body::Timeout);
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(client);
        assert_eq!(
            read(&mut server, &mut Vec::new(), 10, Duration::from_secs(5)),
            Body::Closed
        );
    }
}
