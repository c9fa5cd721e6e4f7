//! `logs.tail`: reading the gateway's own log file back in pieces.
//!
//! Pure file reading with a cursor, for the `logs.tail` method and
//! `clawgate logs`. It never writes and never splits a line: a cursor
//! always lands just after a complete line, so a follower never sees half
//! of one.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// What `logs.tail` returns when the caller gives no limit.
pub const TAIL_DEFAULT_LIMIT: usize = 500;
/// What `logs.tail` reads at most when the caller gives no byte budget.
pub const TAIL_DEFAULT_MAX_BYTES: usize = 250_000;
/// Upper bounds that a remote caller cannot exceed (OpenClaw's values).
pub const TAIL_MAX_LIMIT: usize = 5000;
pub const TAIL_MAX_BYTES: usize = 1_000_000;

/// One `logs.tail` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    pub file: String,
    /// Where the next call should continue: just after the last complete
    /// line returned (or seen).
    pub cursor: u64,
    pub size: u64,
    pub lines: Vec<String>,
    /// Lines were left out because of `limit` or `max_bytes`.
    pub truncated: bool,
    /// The cursor was past the end (the file was rotated or truncated), so
    /// reading restarted at the beginning.
    pub reset: bool,
}

/// Reads complete lines of the log file for `logs.tail`.
///
/// Without a cursor: the last `limit` lines within the last `max_bytes`
/// bytes. With one: the lines from `cursor` on, at most `limit` of them
/// and `max_bytes` bytes. A final line without its `\n` is still being
/// written and is left for the next call. A missing file is empty. Both
/// bounds are clamped to 1..=[`TAIL_MAX_LIMIT`] / [`TAIL_MAX_BYTES`].
pub fn tail(path: &Path, cursor: Option<u64>, limit: usize, max_bytes: usize) -> io::Result<Tail> {
    let limit = limit.clamp(1, TAIL_MAX_LIMIT);
    let max_bytes = max_bytes.clamp(1, TAIL_MAX_BYTES) as u64;
    let mut out = Tail {
        file: path.display().to_string(),
        cursor: 0,
        size: 0,
        lines: Vec::new(),
        truncated: false,
        reset: false,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    out.size = size;
    match cursor {
        None => {
            let start = size.saturating_sub(max_bytes);
            // Read one byte before the window to learn whether it starts a
            // line; if not, the window's first (partial) line is dropped.
            let from = start.saturating_sub(1);
            let buf = read_range(&mut file, from, size)?;
            let (body_at, body) = if start == 0 {
                (0, &buf[..])
            } else {
                match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (from + i as u64 + 1, &buf[i + 1..]),
                    None => (start, &buf[..0]),
                }
            };
            let (mut lines, used) = split_lines(body, usize::MAX);
            out.truncated = start > 0 || lines.len() > limit;
            lines.drain(..lines.len().saturating_sub(limit));
            out.lines = lines;
            out.cursor = body_at + used;
        }
        Some(mut at) => {
            if at > size {
                out.reset = true;
                at = 0;
            }
            let end = size.min(at + max_bytes);
            let buf = read_range(&mut file, at, end)?;
            let (lines, used) = split_lines(&buf, limit);
            // split_lines stops early only at `limit`.
            let cut_by_limit = buf[used as usize..].contains(&b'\n');
            if lines.is_empty() && end < size && !buf.is_empty() {
                // One line longer than max_bytes: hand it out in pieces, or
                // the cursor could never move past it.
                let piece = utf8_prefix(&buf);
                out.lines = vec![String::from_utf8_lossy(piece).into_owned()];
                out.cursor = at + piece.len() as u64;
                out.truncated = true;
            } else {
                out.lines = lines;
                out.cursor = at + used;
                out.truncated = cut_by_limit || end < size;
            }
        }
    }
    Ok(out)
}

fn read_range(file: &mut File, from: u64, to: u64) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity(to.saturating_sub(from) as usize);
    file.take(to.saturating_sub(from)).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Up to `limit` complete lines of `buf` and the bytes they span.
fn split_lines(buf: &[u8], limit: usize) -> (Vec<String>, u64) {
    let mut lines = Vec::new();
    let mut used = 0;
    while lines.len() < limit {
        let Some(n) = buf[used..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let line = &buf[used..used + n];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        lines.push(String::from_utf8_lossy(line).into_owned());
        used += n + 1;
    }
    (lines, used as u64)
}

/// `buf` without a UTF-8 sequence cut off at its end, so a piece of an
/// overlong line does not end in a replacement character.
fn utf8_prefix(buf: &[u8]) -> &[u8] {
    let last_start = (buf.len().saturating_sub(3)..buf.len())
        .rev()
        .find(|&i| buf[i] & 0xc0 != 0x80);
    if let Some(i) = last_start.filter(|&i| i > 0) {
        if let Err(e) = std::str::from_utf8(&buf[i..]) {
            if e.error_len().is_none() {
                return &buf[..i];
            }
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("clawgate-{name}-{}", crate::sys::uuid_v4()));
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn tail_file(content: &str) -> (PathBuf, PathBuf) {
        let dir = temp_dir("tail");
        let path = dir.join("clawgate.log");
        fs::write(&path, content).expect("write");
        (dir, path)
    }

    #[test]
    fn tail_of_a_missing_file_is_empty() {
        let t = tail(Path::new("/nonexistent/clawgate.log"), None, 10, 100).expect("tail");
        assert_eq!((t.cursor, t.size, t.lines.len()), (0, 0, 0));
        assert!(!t.truncated && !t.reset);
    }

    #[test]
    fn tail_without_cursor_returns_the_last_complete_lines() {
        let (dir, path) = tail_file("line1\nline2\nline3\npart");
        let t = tail(&path, None, 10, 1000).expect("tail");
        assert_eq!(t.lines, ["line1", "line2", "line3"]);
        assert_eq!((t.cursor, t.size, t.truncated), (18, 22, false));
        let t = tail(&path, None, 2, 1000).expect("tail");
        assert_eq!(t.lines, ["line2", "line3"]);
        assert!(t.truncated);
        // A window starting mid-line drops that partial line.
        let t = tail(&path, None, 10, 12).expect("tail");
        assert_eq!(t.lines, ["line3"]);
        assert_eq!((t.cursor, t.truncated), (18, true));
        // A window starting exactly at a line keeps it.
        let t = tail(&path, None, 10, 16).expect("tail");
        assert_eq!(t.lines, ["line2", "line3"]);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn tail_with_cursor_continues_where_it_left_off() {
        let (dir, path) = tail_file("line1\nline2\nline3\n");
        let t = tail(&path, Some(0), 2, 1000).expect("tail");
        assert_eq!(t.lines, ["line1", "line2"]);
        assert_eq!((t.cursor, t.truncated), (12, true));
        let t = tail(&path, Some(t.cursor), 2, 1000).expect("tail");
        assert_eq!(t.lines, ["line3"]);
        assert_eq!((t.cursor, t.truncated), (18, false));
        let t = tail(&path, Some(0), 10, 10).expect("tail");
        assert_eq!(t.lines, ["line1"]);
        assert_eq!((t.cursor, t.truncated), (6, true));

        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"lin").expect("append");
        let t = tail(&path, Some(18), 10, 1000).expect("tail");
        assert!(t.lines.is_empty());
        assert_eq!((t.cursor, t.truncated, t.reset), (18, false, false));
        f.write_all(b"e4\n").expect("append");
        let t = tail(&path, Some(18), 10, 1000).expect("tail");
        assert_eq!(t.lines, ["line4"]);
        assert_eq!(t.cursor, 24);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn tail_resets_when_the_file_shrank() {
        let (dir, path) = tail_file("new1\nnew2\n");
        let t = tail(&path, Some(500), 10, 1000).expect("tail");
        assert!(t.reset);
        assert_eq!(t.lines, ["new1", "new2"]);
        assert_eq!(t.cursor, 10);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn tail_hands_out_an_overlong_line_in_pieces() {
        let (dir, path) = tail_file("h\u{e9}llo\n");
        let mut cursor = 0;
        let mut pieces = Vec::new();
        for _ in 0..10 {
            let t = tail(&path, Some(cursor), 10, 2).expect("tail");
            if t.lines.is_empty() {
                break;
            }
            pieces.extend(t.lines);
            cursor = t.cursor;
        }
        assert_eq!(pieces, ["h", "\u{e9}", "ll", "o"]);
        assert_eq!(cursor, 7);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
