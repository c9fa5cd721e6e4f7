//! An incremental Server-Sent Events parser: bytes in, in whatever pieces
//! the socket hands them over, events out. It follows the WHATWG event
//! stream rules (`\n`, `\r\n` or `\r` line ends, `field: value` with one
//! optional space, `data` lines joined by `\n`, `:` comments, a blank line
//! dispatching) and does no I/O, so every split of a stream can be tested.
//!
//! Memory: one event's pending line, data and type together stay under
//! [`MAX_EVENT`] plus the bytes of one `feed`; past it the parser answers an
//! error and keeps nothing.

/// The largest event (its data, its type and the line being read) an
/// upstream may send. A chat chunk is well under a kilobyte; this is room
/// for a huge one, and stops a stream with no line ends from eating memory.
pub const MAX_EVENT: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, `message` when the stream gave none.
    pub kind: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "upstream sent an event larger than {} MiB",
            MAX_EVENT / (1024 * 1024)
        )
    }
}

#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    data: String,
    kind: String,
    /// Whether a `data` field came since the last dispatch (an event made of
    /// other fields only is dropped, as browsers do).
    has_data: bool,
    /// The last byte was a `\r`, so a `\n` right after it ends nothing.
    after_cr: bool,
    /// No line has ended yet, so a leading byte order mark is skipped.
    started: bool,
    failed: bool,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Parses `bytes` and appends the events they complete to `out`. After
    /// an error the parser stays failed: the stream cannot be resynchronised.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), TooLarge> {
        if self.failed {
            return Err(TooLarge);
        }
        let mut rest = bytes;
        // Bounded by the input: every pass consumes at least one byte.
        while let Some(&first) = rest.first() {
            if self.after_cr && first == b'\n' {
                self.after_cr = false;
                rest = &rest[1..];
                continue;
            }
            self.after_cr = false;
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.line.extend_from_slice(rest);
                    rest = &[];
                }
                Some(i) => {
                    self.line.extend_from_slice(&rest[..i]);
                    self.after_cr = rest[i] == b'\r';
                    rest = &rest[i + 1..];
                    self.end_line(out);
                }
            }
            if self.line.len() + self.data.len() + self.kind.len() > MAX_EVENT {
                self.failed = true;
                self.line = Vec::new();
                self.data = String::new();
                return Err(TooLarge);
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        let line = std::mem::take(&mut self.line);
        let mut line = String::from_utf8_lossy(&line).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_string();
            }
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.kind = value.to_string(),
            // `id` and `retry` matter to a reconnecting browser; one chat
            // turn never reconnects, so they are read and dropped.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let kind = std::mem::take(&mut self.kind);
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        let kind = if kind.is_empty() {
            "message".to_string()
        } else {
            kind
        };
        out.push(Event { kind, data });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, data: &str) -> Event {
        Event {
            kind: kind.into(),
            data: data.into(),
        }
    }

    fn parse_in(pieces: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for piece in pieces {
            p.feed(piece, &mut out).expect("small events");
        }
        out
    }

    /// Feeds `sample` split at every pair of points and checks each way
    /// of cutting it gives the same events as feeding it whole.
    fn same_at_every_split(sample: &[u8], want: &[Event]) {
        assert_eq!(parse_in(&[sample]), want);
        for i in 0..=sample.len() {
            for j in i..=sample.len() {
                let got = parse_in(&[&sample[..i], &sample[i..j], &sample[j..]]);
                assert_eq!(got, want, "split at {i} and {j}");
            }
        }
        let bytes: Vec<&[u8]> = sample.chunks(1).collect();
        assert_eq!(parse_in(&bytes), want, "byte by byte");
    }

    #[test]
    fn chat_chunks_parse_the_same_at_every_split_point() {
        let sample = b": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\ndata:{\"b\":2}\n\nevent: error\ndata: x\ndata:\ndata:  y\r\n\r\ndata: [DONE]\n\n";
        let want = [
            ev("message", "{\"a\":1}"),
            ev("message", "{\"b\":2}"),
            ev("error", "x\n\n y"),
            ev("message", "[DONE]"),
        ];
        same_at_every_split(sample, &want);
    }

    #[test]
    fn bare_cr_line_ends_and_a_byte_order_mark_are_understood() {
        let sample = "\u{feff}data: one\r\rdata: two\r\n\r\n".as_bytes();
        same_at_every_split(sample, &[ev("message", "one"), ev("message", "two")]);
    }

    #[test]
    fn events_without_data_and_unfinished_events_are_not_dispatched() {
        let got = parse_in(&[b"event: ping\nid: 4\nretry: 10\n\ndata: late"]);
        assert_eq!(got, []);
        // A field with no colon is a field with an empty value.
        let got = parse_in(&[b"data\n\n"]);
        assert_eq!(got, [ev("message", "")]);
        // The event type does not leak into the next event.
        let got = parse_in(&[b"event: a\ndata: 1\n\ndata: 2\n\n"]);
        assert_eq!(got, [ev("a", "1"), ev("message", "2")]);
    }

    #[test]
    fn an_event_past_the_bound_is_an_error_and_the_parser_stays_failed() {
        let mut p = Parser::new();
        let mut out = Vec::new();
        let chunk = vec![b'x'; 64 * 1024];
        p.feed(b"data: ", &mut out).unwrap();
        let mut failed = false;
        for _ in 0..20 {
            if p.feed(&chunk, &mut out).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
        assert_eq!(
            p.feed(b"\n\n", &mut out).unwrap_err().to_string(),
            "upstream sent an event larger than 1 MiB"
        );
        assert!(out.is_empty());
        // Many lines of one event count together.
        let mut p = Parser::new();
        let line = format!("data: {}\n", "y".repeat(1000));
        let mut res = Ok(());
        for _ in 0..2000 {
            res = p.feed(line.as_bytes(), &mut out);
            if res.is_err() {
                break;
            }
        }
        assert!(res.is_err());
    }
}
