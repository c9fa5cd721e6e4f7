//! One session transcript, `<sessionId>.jsonl` of the legacy layout: one
//! JSON object per line, in the shapes and key order the reference writes
//! (PROTOCOL-AGENTS.md §8). Pure file I/O on one file with no lock of its
//! own: the caller serialises the writers of a transcript (runs are
//! serialised per session key). A line is appended with one `write` and
//! synced, and a line torn by a crash is cut off before the next append,
//! so readers meet at most one partial line, the last, and ignore it.
//! Reading never holds more than a bounded window of the file, however
//! large it grows.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Map, Value};

mod read;
#[cfg(test)]
use read::History;
pub use read::{history, last_id, preview};

/// Readers skip a line longer than this instead of holding it: no message
/// the gateway writes comes near it, and it bounds a reader's memory.
pub const MAX_LINE: usize = 4 << 20;
/// Backward reads start with this many bytes and double while a line is
/// longer, so finding a line's start costs time linear in its length.
const CHUNK: usize = 64 << 10;
/// The reference's key order for the lines it writes. `type` first also
/// lets `history` classify a line without parsing it.
const KEY_ORDER: &[&str] = &[
    "type",
    "version",
    "customType",
    "provider",
    "modelId",
    "thinkingLevel",
    "id",
    "parentId",
    "timestamp",
    "cwd",
    "message",
];

/// The error of an append that would grow a transcript past its limit.
#[derive(Debug)]
pub struct TooLarge {
    pub limit: u64,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transcript would exceed its size limit ({} bytes)",
            self.limit
        )
    }
}

impl std::error::Error for TooLarge {}

fn now_iso() -> String {
    crate::logging::rfc3339(SystemTime::now())
}

/// The first lines of a new transcript: the `session` header and, when the
/// model is known, the `model_change` that roots the entry tree.
pub fn header_lines(
    session_id: &str,
    cwd: &str,
    provider: Option<&str>,
    model: Option<&str>,
) -> Vec<Value> {
    let ts = now_iso();
    let mut lines = vec![json!({
        "type": "session", "version": 4, "id": session_id, "timestamp": ts, "cwd": cwd,
    })];
    if let Some(model) = model {
        let mut change = Map::new();
        change.insert("type".into(), "model_change".into());
        if let Some(provider) = provider {
            change.insert("provider".into(), provider.into());
        }
        change.insert("modelId".into(), model.into());
        change.insert("id".into(), crate::sys::uuid_v4().into());
        change.insert("parentId".into(), Value::Null);
        change.insert("timestamp".into(), ts.into());
        lines.push(Value::Object(change));
    }
    lines
}

/// `message` as a transcript entry under `parent_id`; returns the new
/// entry's id, the parent of the next one.
pub fn message_line(parent_id: Option<&str>, message: Value) -> (String, Value) {
    let id = crate::sys::uuid_v4();
    let line = json!({
        "type": "message", "id": id, "parentId": parent_id, "timestamp": now_iso(),
        "message": message,
    });
    (id, line)
}

/// `line` as one line of the file, its top-level keys in the reference's
/// order (serde_json's own maps are sorted), ending in `\n`. Strings are
/// escaped, so the text holds no other newline.
fn encode(line: &Value) -> io::Result<Vec<u8>> {
    let Value::Object(map) = line else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a transcript line must be a json object",
        ));
    };
    let rank = |k: &str| KEY_ORDER.iter().position(|o| *o == k).unwrap_or(usize::MAX);
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, key)?;
        out.push(b':');
        serde_json::to_writer(&mut out, &map[key])?;
    }
    out.extend_from_slice(b"}\n");
    Ok(out)
}

/// An open transcript, its tail already repaired, for a run's appends.
#[derive(Debug)]
pub struct Appender {
    path: PathBuf,
    file: File,
    len: u64,
    max_bytes: u64,
    created: bool,
}

impl Appender {
    /// Opens `path` for appending (created with mode 0600). A last line
    /// without its `\n` is cut off when it is not whole JSON (a write torn
    /// by a crash) and completed when it is, so a new line never glues
    /// onto a partial one.
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<Appender> {
        let mut options = OpenOptions::new();
        options.read(true).append(true).mode(0o600);
        let (file, created) = match options.clone().create_new(true).open(path) {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => (options.open(path)?, false),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let len = repair_tail(&file, len, path)?;
        Ok(Appender {
            path: path.to_path_buf(),
            file,
            len,
            max_bytes,
            created,
        })
    }

    /// Appends `lines`, each with one `write`, then syncs the data. Refuses
    /// with [`TooLarge`] (and writes nothing) when the file would grow
    /// past its limit.
    pub fn append(&mut self, lines: &[Value]) -> io::Result<()> {
        let encoded = lines.iter().map(encode).collect::<io::Result<Vec<_>>>()?;
        let add: u64 = encoded.iter().map(|l| l.len() as u64).sum();
        if self.len.saturating_add(add) > self.max_bytes {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                TooLarge {
                    limit: self.max_bytes,
                },
            ));
        }
        for line in &encoded {
            if let Err(e) = (&self.file).write_all(line) {
                // A short write (a full disk) must not leave half a line
                // for the next one to glue onto.
                let _ = self.file.set_len(self.len);
                return Err(e);
            }
            self.len += line.len() as u64;
        }
        self.file.sync_data()?;
        if std::mem::take(&mut self.created) {
            super::sync_dir(&self.path)?;
        }
        Ok(())
    }
}

/// Opens `path`, appends `lines` and syncs: [`Appender`] for one batch.
pub fn append(path: &Path, lines: &[Value], max_bytes: u64) -> io::Result<()> {
    Appender::open(path, max_bytes)?.append(lines)
}

/// Makes the file end in `\n`; returns its new length.
fn repair_tail(file: &File, len: u64, path: &Path) -> io::Result<u64> {
    if len == 0 || last_byte(file, len)? == b'\n' {
        return Ok(len);
    }
    let start = line_start(file, len)?;
    let torn = len - start;
    if torn <= MAX_LINE as u64 {
        let mut tail = vec![0; torn as usize];
        file.read_exact_at(&mut tail, start)?;
        if serde_json::from_slice::<Map<String, Value>>(&tail).is_ok() {
            // A whole entry whose newline never came: keep it.
            (&*file).write_all(b"\n")?;
            return Ok(len + 1);
        }
    }
    log::warn!(
        "'{}': cut a torn last line of {torn} bytes (an append interrupted by a crash)",
        path.display()
    );
    file.set_len(start)?;
    Ok(start)
}

fn last_byte(file: &File, len: u64) -> io::Result<u8> {
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, len - 1)?;
    Ok(b[0])
}

/// Where the line ending at `end` starts: just after the `\n` before it,
/// or 0. Reads backwards a chunk at a time, holding one chunk.
fn line_start(file: &File, end: u64) -> io::Result<u64> {
    let mut pos = end;
    let mut chunk = vec![0u8; CHUNK];
    while pos > 0 {
        let n = pos.min(CHUNK as u64) as usize;
        pos -= n as u64;
        file.read_exact_at(&mut chunk[..n], pos)?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(pos + i as u64 + 1);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
