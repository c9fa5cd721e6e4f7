//! The `Transfer-Encoding: chunked` decoder: a state machine fed whatever
//! bytes have arrived, giving back the data bytes it could decode, so a
//! chunk header split across two reads costs nothing to handle. Pure; the
//! connection's `Read` drives it.
//!
//! Memory: a few counters. A size line and the trailer are bounded in
//! bytes, and a chunk size beyond 15 hex digits is refused.

/// A chunk-size line (size plus extensions) longer than this is refused.
const MAX_SIZE_LINE: usize = 4096;
/// The trailer fields after the last chunk, which are read and dropped.
const MAX_TRAILER: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The size line: `digits` hex digits read so far, then `ext` once a
    /// `;` extension (or white space before one) began.
    Size {
        value: u64,
        digits: u8,
        ext: bool,
        len: usize,
    },
    Data {
        left: u64,
    },
    /// The line end after a chunk's data.
    DataEnd {
        cr: bool,
    },
    Trailer {
        line: usize,
        total: usize,
    },
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunked(State);

const SIZE: State = State::Size {
    value: 0,
    digits: 0,
    ext: false,
    len: 0,
};

impl Default for Chunked {
    fn default() -> Chunked {
        Chunked(SIZE)
    }
}

impl Chunked {
    /// The last chunk and its trailer have been read.
    pub fn done(&self) -> bool {
        self.0 == State::Done
    }

    /// Decodes from `input` into `out`: (bytes of input consumed, bytes of
    /// data written). It stops early only when `out` is full or the body
    /// is done, so with room in `out` it always consumes something.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), String> {
        let (mut used, mut made) = (0, 0);
        // Bounded by the input: every pass consumes at least one byte,
        // or ends the loop.
        while used < input.len() {
            if let State::Data { left } = &mut self.0 {
                if made == out.len() {
                    break;
                }
                let room = (input.len() - used).min(out.len() - made);
                let n = room.min(usize::try_from(*left).unwrap_or(usize::MAX));
                out[made..made + n].copy_from_slice(&input[used..used + n]);
                (used, made) = (used + n, made + n);
                *left -= n as u64;
                if *left == 0 {
                    self.0 = State::DataEnd { cr: false };
                }
                continue;
            }
            if self.0 == State::Done {
                break;
            }
            self.step(input[used])?;
            used += 1;
        }
        Ok((used, made))
    }

    /// One byte of framing: a size line, a data line end, or the trailer.
    fn step(&mut self, b: u8) -> Result<(), String> {
        let bad = |what: &str| Err(format!("upstream sent a malformed chunked body ({what})"));
        self.0 = match self.0 {
            State::Size {
                value,
                digits,
                ext,
                len,
            } => {
                if len >= MAX_SIZE_LINE {
                    return bad("chunk size line too long");
                }
                let len = len + 1;
                match b {
                    b'\n' if digits == 0 => return bad("missing chunk size"),
                    b'\n' if value == 0 => State::Trailer { line: 0, total: 0 },
                    b'\n' => State::Data { left: value },
                    b'\r' => State::Size {
                        value,
                        digits,
                        ext,
                        len,
                    },
                    _ if ext => State::Size {
                        value,
                        digits,
                        ext,
                        len,
                    },
                    b';' | b' ' | b'\t' if digits > 0 => State::Size {
                        value,
                        digits,
                        ext: true,
                        len,
                    },
                    _ => {
                        let Some(d) = char::from(b).to_digit(16) else {
                            return bad("chunk size is not hexadecimal");
                        };
                        if digits >= 15 {
                            return bad("chunk size too large");
                        }
                        State::Size {
                            value: value * 16 + u64::from(d),
                            digits: digits + 1,
                            ext,
                            len,
                        }
                    }
                }
            }
            State::DataEnd { cr } => match b {
                b'\r' if !cr => State::DataEnd { cr: true },
                b'\n' => SIZE,
                _ => return bad("no line end after a chunk"),
            },
            State::Trailer { line, total } => {
                if total >= MAX_TRAILER {
                    return bad("trailer too long");
                }
                match b {
                    b'\n' if line == 0 => State::Done,
                    b'\n' => State::Trailer { line: 0, total },
                    b'\r' => State::Trailer { line, total },
                    _ => State::Trailer {
                        line: line + 1,
                        total: total + 1,
                    },
                }
            }
            State::Data { .. } | State::Done => self.0,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in the given pieces through an output buffer of
    /// `room` bytes at a time.
    fn decode_in(pieces: &[&[u8]], room: usize) -> Result<(Vec<u8>, bool), String> {
        let mut c = Chunked::default();
        let mut got = Vec::new();
        let mut out = vec![0; room];
        for piece in pieces {
            let mut rest = *piece;
            for _ in 0..10_000 {
                if rest.is_empty() || c.done() {
                    break;
                }
                let (used, made) = c.decode(rest, &mut out)?;
                assert!(used > 0 || made > 0, "no progress");
                got.extend_from_slice(&out[..made]);
                rest = &rest[used..];
            }
        }
        Ok((got, c.done()))
    }

    #[test]
    fn chunked_bodies_decode_the_same_at_every_split_point() {
        let body = b"5;name=\"x\"\r\nhello\r\n7\r\n, world\r\nA \r\n0123456789\r\n1\n!\n0\r\nx-trailer: 1\r\n\r\n";
        let want = b"hello, world0123456789!".to_vec();
        for room in [1, 3, 64] {
            assert_eq!(decode_in(&[body], room), Ok((want.clone(), true)));
            for i in 0..=body.len() {
                for j in i..=body.len() {
                    let got = decode_in(&[&body[..i], &body[i..j], &body[j..]], room);
                    assert_eq!(
                        got,
                        Ok((want.clone(), true)),
                        "split at {i} and {j}, room {room}"
                    );
                }
            }
        }
    }

    #[test]
    fn what_follows_the_last_chunk_is_not_consumed() {
        let mut c = Chunked::default();
        let mut out = [0; 16];
        assert_eq!(
            c.decode(b"2\r\nok\r\n0\r\n\r\nextra", &mut out),
            Ok((12, 2))
        );
        assert!(c.done());
        assert_eq!(&out[..2], b"ok");
    }

    #[test]
    fn a_body_cut_short_is_not_done() {
        assert_eq!(decode_in(&[b"5\r\nhel"], 8), Ok((b"hel".to_vec(), false)));
        assert_eq!(
            decode_in(&[b"5\r\nhello\r\n"], 8),
            Ok((b"hello".to_vec(), false))
        );
    }

    #[test]
    fn malformed_chunk_framing_is_refused() {
        for (body, why) in [
            (&b"zz\r\n"[..], "chunk size is not hexadecimal"),
            (b"\r\n", "missing chunk size"),
            (b"-1\r\n", "chunk size is not hexadecimal"),
            (b"1234567890abcdef0\r\n", "chunk size too large"),
            (b"2\r\nokX", "no line end after a chunk"),
        ] {
            let err = decode_in(&[body], 8).unwrap_err();
            assert_eq!(
                err,
                format!("upstream sent a malformed chunked body ({why})"),
                "{body:?}"
            );
        }
        let long = format!("1;{}\r\n", "x".repeat(MAX_SIZE_LINE));
        assert!(decode_in(&[long.as_bytes()], 8).is_err());
        let trailer = format!("0\r\n{}", "x".repeat(MAX_TRAILER + 1));
        assert!(decode_in(&[trailer.as_bytes()], 8).is_err());
    }
}
