//! Reading a transcript back: the newest messages for `chat.history` and
//! `sessions.preview`, and the last entry's id for chaining the next one.
//! The file is streamed forwards or read backwards in chunks, never held
//! whole.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{last_byte, CHUNK, MAX_LINE};

/// `preview` reads the newest messages within this many bytes.
const PREVIEW_MAX_BYTES: usize = 1 << 20;

/// One step of [`RevLines`].
enum Rev {
    Line(Vec<u8>),
    /// A line longer than [`MAX_LINE`], skipped.
    TooLong,
}

/// The complete lines of a file from the last to the first (a torn tail
/// left out). Holds at most about twice [`MAX_LINE`] plus one chunk: reads
/// double while a line's start is not found.
struct RevLines<'a> {
    file: &'a File,
    /// The file before `pos` is still unread.
    pos: u64,
    /// The file from `pos` up to just after the last `\n` not yet handed out.
    buf: Vec<u8>,
    /// Drop bytes up to the previous `\n` (a torn tail, or a long line).
    discard: bool,
    too_long: bool,
}

impl<'a> RevLines<'a> {
    fn new(file: &'a File, len: u64) -> io::Result<RevLines<'a>> {
        let discard = len > 0 && last_byte(file, len)? != b'\n';
        Ok(RevLines {
            file,
            pos: len,
            buf: Vec::new(),
            discard,
            too_long: false,
        })
    }

    fn fill(&mut self) -> io::Result<()> {
        let n = self.pos.min(CHUNK.max(self.buf.len()) as u64) as usize;
        self.pos -= n as u64;
        let mut chunk = vec![0u8; n];
        self.file.read_exact_at(&mut chunk, self.pos)?;
        chunk.extend_from_slice(&self.buf);
        self.buf = chunk;
        Ok(())
    }

    fn next(&mut self) -> io::Result<Option<Rev>> {
        loop {
            if self.discard {
                if let Some(i) = self.buf.iter().rposition(|&b| b == b'\n') {
                    self.buf.truncate(i + 1);
                    self.discard = false;
                } else {
                    self.buf.clear();
                    if self.pos > 0 {
                        self.fill()?;
                        continue;
                    }
                    self.discard = false;
                }
                if std::mem::take(&mut self.too_long) {
                    return Ok(Some(Rev::TooLong));
                }
                continue;
            }
            // Here `buf` is empty or ends with the `\n` of its last line.
            let Some((_, body)) = self.buf.split_last() else {
                if self.pos == 0 {
                    return Ok(None);
                }
                self.fill()?;
                continue;
            };
            let start = match body.iter().rposition(|&b| b == b'\n') {
                Some(i) => Some(i + 1),
                None => (self.pos == 0).then_some(0),
            };
            if let Some(start) = start {
                let step = match body.len() - start {
                    n if n > MAX_LINE => Rev::TooLong,
                    _ => Rev::Line(body[start..].to_vec()),
                };
                self.buf.truncate(start);
                return Ok(Some(step));
            }
            if self.buf.len() > MAX_LINE {
                self.buf.clear();
                self.discard = true;
                self.too_long = true;
                continue;
            }
            self.fill()?;
        }
    }
}

/// The `type` and `id` of an entry, the rest left unparsed.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<String>,
}

/// The id of the last complete entry (not the `session` header, which is
/// outside the entry tree): the `parentId` of the next line. Reads from
/// the end; a missing file has none.
pub fn last_id(path: &Path) -> io::Result<Option<String>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut lines = RevLines::new(&file, len)?;
    while let Some(step) = lines.next()? {
        let Rev::Line(line) = step else { continue };
        if let Ok(head) = serde_json::from_slice::<Head>(&line) {
            if head.kind.as_deref() != Some("session") && head.id.is_some() {
                return Ok(head.id);
            }
        }
    }
    Ok(None)
}

/// What `chat.history` serves of a transcript.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The newest messages, oldest first, each with `__openclaw:{id, seq}`.
    pub messages: Vec<Value>,
    /// Message lines in the whole file.
    pub total: usize,
    /// Older messages exist than the first one returned.
    pub has_more: bool,
}

#[derive(PartialEq)]
enum Kind {
    Message,
    Other,
    Bad,
}

/// What a line is, cheaply: the reference writes `type` first, so most
/// lines are told by their prefix without being parsed.
fn classify(line: &[u8]) -> Kind {
    const PREFIX: &[u8] = br#"{"type":""#;
    if let Some(rest) = line.strip_prefix(PREFIX) {
        if let Some(end) = rest.iter().position(|&b| b == b'"' || b == b'\\') {
            if rest[end] == b'"' && line.ends_with(b"}") {
                return match &rest[..end] {
                    b"message" => Kind::Message,
                    _ => Kind::Other,
                };
            }
        }
    }
    match serde_json::from_slice::<Head>(line) {
        Ok(head) if head.kind.as_deref() == Some("message") => Kind::Message,
        Ok(_) => Kind::Other,
        Err(_) => Kind::Bad,
    }
}

/// A message line kept for the answer.
struct Kept {
    seq: usize,
    line_no: u64,
    /// The last line of the file, without its `\n`: whole or torn.
    unterminated: bool,
    raw: Vec<u8>,
}

/// The last `limit` messages of the transcript at `path`, in file order,
/// within `max_bytes` of JSON (the oldest dropped first; the newest is
/// always kept). Streams the file: memory holds the kept raw lines, at
/// most about twice `max_bytes` plus one line of [`MAX_LINE`], whatever
/// the file's size. Lines of other types are skipped; a torn last line is
/// ignored; an unreadable line elsewhere is skipped with a warning. A
/// missing file is an empty history.
pub fn history(path: &Path, limit: usize, max_bytes: usize) -> io::Result<History> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(History::default()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::with_capacity(CHUNK, file);
    // Raw lines carry a wrapper at least as long as the `__openclaw` added
    // to a message, so twice the budget keeps every message that can fit.
    let ring_budget = max_bytes.saturating_mul(2);
    let mut ring: VecDeque<Kept> = VecDeque::new();
    let mut ring_bytes = 0usize;
    let mut total = 0usize;
    let mut line_no = 0u64;
    let mut bad = BadLines::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?
            == 0
        {
            break;
        }
        line_no += 1;
        let unterminated = buf.last() != Some(&b'\n');
        if unterminated && buf.len() > MAX_LINE {
            reader.skip_until(b'\n')?;
            bad.note(line_no);
            continue;
        }
        let body = buf.trim_ascii_end();
        if body.is_empty() {
            continue;
        }
        let kind = if unterminated {
            // Only a whole entry counts; a torn one is being written or
            // was cut short by a crash, and the next append removes it.
            match serde_json::from_slice::<Head>(body) {
                Ok(h) if h.kind.as_deref() == Some("message") => Kind::Message,
                _ => Kind::Other,
            }
        } else {
            classify(body)
        };
        match kind {
            Kind::Message => {}
            Kind::Other => continue,
            Kind::Bad => {
                bad.note(line_no);
                continue;
            }
        }
        total += 1;
        if limit == 0 {
            continue;
        }
        // The line moves into the ring and the buffer of the one it
        // pushes out is read into next: no allocation per line.
        let len = body.len();
        buf.truncate(len);
        ring_bytes += len;
        ring.push_back(Kept {
            seq: total,
            line_no,
            unterminated,
            raw: std::mem::take(&mut buf),
        });
        while ring.len() > limit || (ring.len() > 1 && ring_bytes > ring_budget) {
            if let Some(old) = ring.pop_front() {
                ring_bytes -= old.raw.len();
                buf = old.raw;
            }
        }
    }
    let mut messages = Vec::with_capacity(ring.len());
    let mut seqs = Vec::with_capacity(ring.len());
    for kept in ring {
        match served(&kept) {
            Some(m) => {
                messages.push(m);
                seqs.push(kept.seq);
            }
            None if kept.unterminated => {}
            None => bad.note(kept.line_no),
        }
    }
    if let Some(first) = bad.first {
        warn_once(path, first, bad.count);
    }
    let sizes: Vec<usize> = messages.iter().map(json_len).collect();
    let mut bytes = 2 + sizes.iter().sum::<usize>() + sizes.len().saturating_sub(1);
    let mut start = 0;
    while bytes > max_bytes && start + 1 < messages.len() {
        bytes -= sizes[start] + 1;
        start += 1;
    }
    messages.drain(..start);
    let has_more = seqs.get(start).map_or(total > 0, |&first| first > 1);
    Ok(History {
        messages,
        total,
        has_more,
    })
}

/// The `message` of a message line, with its entry id and position added
/// to `__openclaw` (merged into one the message already has).
fn served(kept: &Kept) -> Option<Value> {
    let mut line: Map<String, Value> = serde_json::from_slice(&kept.raw).ok()?;
    let id = line.remove("id");
    let Some(Value::Object(mut message)) = line.remove("message") else {
        return None;
    };
    let meta = message
        .entry("__openclaw")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        if let Some(id @ Value::String(_)) = id {
            meta.insert("id".into(), id);
        }
        meta.insert("seq".into(), kept.seq.into());
    }
    Some(Value::Object(message))
}

/// The length of `v` as compact JSON, without building the text.
pub(super) fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    let _ = serde_json::to_writer(&mut n, v);
    n.0
}

/// The unreadable lines met in one read: the first and how many.
#[derive(Default)]
struct BadLines {
    first: Option<u64>,
    count: usize,
}

impl BadLines {
    fn note(&mut self, line_no: u64) {
        self.first = Some(self.first.map_or(line_no, |f| f.min(line_no)));
        self.count += 1;
    }
}

/// Warns about unreadable lines once per file and first line: clients
/// re-read history after every run, and one broken line must not fill the
/// log. Remembers at most 64 places.
fn warn_once(path: &Path, first: u64, count: usize) {
    static WARNED: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());
    {
        let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
        if warned.iter().any(|(p, l)| p == path && *l == first) {
            return;
        }
        if warned.len() >= 64 {
            warned.clear();
        }
        warned.push((path.to_path_buf(), first));
    }
    let more = match count {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    log::warn!(
        "'{}': line {first} is not a readable transcript entry, skipped{more}",
        path.display()
    );
}

/// `sessions.preview`: the role and text of the last `limit` user and
/// assistant messages, whitespace collapsed and cut to `max_chars`.
pub fn preview(path: &Path, limit: usize, max_chars: usize) -> io::Result<Vec<(String, String)>> {
    let h = history(path, limit, PREVIEW_MAX_BYTES)?;
    Ok(h.messages
        .iter()
        .filter_map(|m| {
            let role = m.get("role")?.as_str()?;
            if role != "user" && role != "assistant" {
                return None;
            }
            let text = match m.get("content")? {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|p| p.get("text")?.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => return None,
            };
            let text = cut(&text, max_chars);
            (!text.is_empty()).then(|| (role.to_string(), text))
        })
        .collect())
}

/// `text` on one line, at most `max_chars` characters, an ellipsis
/// marking a cut.
fn cut(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        return flat;
    }
    let mut out: String = flat.chars().take(max_chars.saturating_sub(1)).collect();
    if max_chars > 0 {
        out.push('…');
    }
    out
}
