//! The session index of the legacy layout: `<stateDir>/agents/<agentId>/
//! sessions/sessions.json`, a map from session key to [`SessionEntry`],
//! beside the `<sessionId>.jsonl` transcripts of `transcript`. Every index
//! is read whole at start and rewritten atomically (mode 0600, directories
//! 0700) on each change, before the change is answered; a failed write
//! puts the old entry back in memory. The store owns its lock and holds it
//! across its own writes, so the files change in the order memory does;
//! it is never taken with the gateway's state lock held. An index that
//! cannot be read or parsed stops the gateway (exit 78, naming the path)
//! rather than starting with every session forgotten. Keys the reference
//! writes and clawgate does not use are kept as they were.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use super::{sync_dir, transcript, write_atomic};
use crate::error::Error;

mod entry;
pub use entry::SessionEntry;

pub const INDEX: &str = "sessions.json";
/// The reference's default workspace, named as the `cwd` of new
/// transcripts.
const WORKSPACE: &str = "workspace";
/// A header is a few hundred bytes: the caller's transcript limit is for
/// the runs that follow it.
const HEADER_LIMIT: u64 = 64 << 10;

/// What `sessions.list` asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub agent: Option<String>,
    /// A case-insensitive substring of the key, label or display name.
    pub search: Option<String>,
    pub label: Option<String>,
    /// Only sessions updated within this many minutes of `now_ms`.
    pub active_minutes: Option<u64>,
    pub now_ms: u64,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// The error of `ensure` for a new key when the agent has its maximum.
#[derive(Debug)]
pub struct TooManySessions(pub usize);

impl fmt::Display for TooManySessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "too many sessions ({}); delete some with sessions.delete",
            self.0
        )
    }
}

impl std::error::Error for TooManySessions {}

/// One agent's index, by lowercased session key. Entries are shared so a
/// listing copies pointers, not entries; a change replaces one.
type Index = BTreeMap<String, Arc<SessionEntry>>;

/// An index as the file holds it.
struct IndexFile<'a>(&'a Index);

impl Serialize for IndexFile<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, e)| (k, e.as_ref())))
    }
}

/// The indexes of every agent. Memory: the entries of the files found at
/// start plus at most `max_sessions` per agent created since; agents are
/// the ones callers name (configured ones).
#[derive(Debug)]
pub struct SessionStore {
    state_dir: PathBuf,
    max_sessions: usize,
    agents: Mutex<BTreeMap<String, Index>>,
}

/// One listed session: agent, key, entry.
type Row = (String, String, Arc<SessionEntry>);

impl SessionStore {
    /// Loads every `<state_dir>/agents/*/sessions/sessions.json`; missing
    /// ones are empty. `max_sessions` caps the keys `ensure` creates per
    /// agent.
    pub fn open(state_dir: &Path, max_sessions: usize) -> Result<SessionStore, Error> {
        let root = state_dir.join("agents");
        let cannot = |e: io::Error| {
            Error::config(format!(
                "{}: cannot read the session indexes: {}",
                root.display(),
                crate::error::io_message(&e)
            ))
        };
        let mut agents = BTreeMap::new();
        let dir = match fs::read_dir(&root) {
            Ok(d) => Some(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(cannot(e)),
        };
        for item in dir.into_iter().flatten() {
            let name = item.map_err(cannot)?.file_name();
            // A directory named otherwise is not one clawgate can address.
            let Some(agent) = name
                .to_str()
                .filter(|n| agent_id(n).ok().as_deref() == Some(n))
            else {
                continue;
            };
            let path = root.join(agent).join("sessions").join(INDEX);
            if let Some(index) = load(&path)? {
                agents.insert(agent.to_string(), index);
            }
        }
        Ok(SessionStore {
            state_dir: state_dir.to_path_buf(),
            max_sessions,
            agents: Mutex::new(agents),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Index>> {
        // A poisoned lock cannot be seen with `panic = "abort"`; in tests
        // the data is still whole (a failed write puts the old entry back).
        self.agents.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sessions_dir(&self, agent: &str) -> PathBuf {
        self.state_dir.join("agents").join(agent).join("sessions")
    }

    /// `<stateDir>/agents/<agent>/sessions/sessions.json`.
    pub fn index_path(&self, agent: &str) -> io::Result<PathBuf> {
        Ok(self.sessions_dir(&agent_id(agent)?).join(INDEX))
    }

    /// `<stateDir>/agents/<agent>/sessions/<session_id>.jsonl`; refuses
    /// an id that would name a file elsewhere.
    pub fn transcript_path(&self, agent: &str, session_id: &str) -> io::Result<PathBuf> {
        if !usable_session_id(session_id) {
            return Err(invalid(format!("invalid session id '{session_id}'")));
        }
        Ok(self
            .sessions_dir(&agent_id(agent)?)
            .join(format!("{session_id}.jsonl")))
    }

    pub fn get(&self, agent: &str, key: &str) -> Option<SessionEntry> {
        let agent = agent_id(agent).ok()?;
        let agents = self.lock();
        let entry = agents.get(&agent)?.get(&key.to_lowercase())?;
        Some(SessionEntry::clone(entry))
    }

    /// The entry of `key`, created (with a new session id and its
    /// transcript's header lines) when missing; says whether it was. A new
    /// key past the agent's cap is refused with [`TooManySessions`].
    pub fn ensure(
        &self,
        agent: &str,
        key: &str,
        now_ms: u64,
        created_via: &str,
        provider: Option<&str>,
        model: Option<&str>,
    ) -> io::Result<(SessionEntry, bool)> {
        let agent = agent_id(agent)?;
        let key = session_key(key)?;
        let mut agents = self.lock();
        let index = agents.entry(agent.clone()).or_default();
        if let Some(entry) = index.get(&key) {
            return Ok((SessionEntry::clone(entry), false));
        }
        if index.len() >= self.max_sessions {
            return Err(io::Error::other(TooManySessions(self.max_sessions)));
        }
        let mut entry = SessionEntry::new(crate::sys::uuid_v4(), now_ms);
        entry.created_via = Some(created_via.to_string());
        entry.model_provider = provider.map(str::to_string);
        entry.model = model.map(str::to_string);
        self.start_transcript(&agent, &entry)?;
        self.put(index, &agent, &key, Some(Arc::new(entry.clone())))?;
        Ok((entry, true))
    }

    /// Applies `f` to the entry of `key` and writes the index when it
    /// changed; `None` when there is no such entry.
    pub fn update(
        &self,
        agent: &str,
        key: &str,
        f: impl FnOnce(&mut SessionEntry),
    ) -> io::Result<Option<SessionEntry>> {
        let agent = agent_id(agent)?;
        let key = key.to_lowercase();
        let mut agents = self.lock();
        let Some(index) = agents.get_mut(&agent) else {
            return Ok(None);
        };
        let Some(old) = index.get(&key) else {
            return Ok(None);
        };
        let mut entry = SessionEntry::clone(old);
        f(&mut entry);
        if entry == **old {
            return Ok(Some(entry));
        }
        if !usable_session_id(&entry.session_id) {
            return Err(invalid(format!(
                "invalid session id '{}'",
                entry.session_id
            )));
        }
        self.put(index, &agent, &key, Some(Arc::new(entry.clone())))?;
        Ok(Some(entry))
    }

    /// Starts a new conversation under `key`: a new session id and
    /// transcript, keeping the label, model, thinking level and the other
    /// preferences, dropping token counts and CLI session ids. The old
    /// transcript stays where it is.
    pub fn reset(&self, agent: &str, key: &str, now_ms: u64) -> io::Result<Option<SessionEntry>> {
        let agent = agent_id(agent)?;
        let key = key.to_lowercase();
        let mut agents = self.lock();
        let Some(index) = agents.get_mut(&agent) else {
            return Ok(None);
        };
        let Some(old) = index.get(&key) else {
            return Ok(None);
        };
        let entry = old.renewed(crate::sys::uuid_v4(), now_ms);
        self.start_transcript(&agent, &entry)?;
        self.put(index, &agent, &key, Some(Arc::new(entry.clone())))?;
        Ok(Some(entry))
    }

    /// Removes `key`; with `delete_transcript` its transcript is renamed
    /// to `<sessionId>.jsonl.deleted.<time>` as the reference archives,
    /// and that path returned. `None` when there is no such entry.
    pub fn delete(
        &self,
        agent: &str,
        key: &str,
        delete_transcript: bool,
    ) -> io::Result<Option<(SessionEntry, Vec<String>)>> {
        let agent = agent_id(agent)?;
        let key = key.to_lowercase();
        let mut agents = self.lock();
        let Some(index) = agents.get_mut(&agent) else {
            return Ok(None);
        };
        let Some(old) = self.put(index, &agent, &key, None)? else {
            return Ok(None);
        };
        let old = Arc::unwrap_or_clone(old);
        let mut archived = Vec::new();
        if delete_transcript {
            let path = self
                .sessions_dir(&agent)
                .join(format!("{}.jsonl", old.session_id));
            // The entry is gone either way: a transcript that cannot be
            // moved is left in place, not reported as a failed delete.
            match archive(&path) {
                Ok(Some(to)) => archived.push(to.display().to_string()),
                Ok(None) => {}
                Err(e) => log::warn!(
                    "'{}': cannot archive the deleted session's transcript: {}",
                    path.display(),
                    crate::error::io_message(&e)
                ),
            }
        }
        Ok(Some((old, archived)))
    }

    /// Sessions matching `q`, newest update first, as (agent, key, entry),
    /// the page of `offset` and `limit`, with the number that matched.
    pub fn list(&self, q: &ListQuery) -> (Vec<Row>, usize) {
        let agent = q.agent.as_deref().map(str::to_ascii_lowercase);
        let search = q
            .search
            .as_deref()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty());
        let label = q.label.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let since = q
            .active_minutes
            .map(|m| q.now_ms.saturating_sub(m.saturating_mul(60_000)));
        let contains = |text: Option<&str>, needle: &str| {
            text.is_some_and(|t| t.to_lowercase().contains(needle))
        };
        let agents = self.lock();
        let mut rows: Vec<(&String, &String, &Arc<SessionEntry>)> = agents
            .iter()
            .filter(|(a, _)| agent.as_ref().is_none_or(|want| want == *a))
            .flat_map(|(a, index)| index.iter().map(move |(k, e)| (a, k, e)))
            .filter(|(_, k, e)| {
                since.is_none_or(|t| e.updated_at >= t)
                    && label.is_none_or(|l| e.label.as_deref() == Some(l))
                    && search.as_deref().is_none_or(|s| {
                        k.contains(s)
                            || contains(e.label.as_deref(), s)
                            || contains(e.display_name(), s)
                    })
            })
            .collect();
        rows.sort_unstable_by(|a, b| (b.2.updated_at, a.0, a.1).cmp(&(a.2.updated_at, b.0, b.1)));
        let total = rows.len();
        let page = rows
            .into_iter()
            .skip(q.offset)
            .take(q.limit.unwrap_or(usize::MAX))
            .map(|(a, k, e)| (a.clone(), k.clone(), e.clone()))
            .collect();
        (page, total)
    }

    /// Writes the header lines of `entry`'s new transcript.
    fn start_transcript(&self, agent: &str, entry: &SessionEntry) -> io::Result<()> {
        let dir = self.sessions_dir(agent);
        make_dirs(&dir)?;
        let cwd = self.state_dir.join(WORKSPACE);
        let lines = transcript::header_lines(
            &entry.session_id,
            &cwd.to_string_lossy(),
            entry.model_provider.as_deref(),
            entry.model.as_deref(),
        );
        let path = dir.join(format!("{}.jsonl", entry.session_id));
        transcript::append(&path, &lines, HEADER_LIMIT)
    }

    /// Sets (or with `None` removes) `key` in `index` and writes the
    /// index; a failed write puts the old entry back. Returns the old one.
    fn put(
        &self,
        index: &mut Index,
        agent: &str,
        key: &str,
        entry: Option<Arc<SessionEntry>>,
    ) -> io::Result<Option<Arc<SessionEntry>>> {
        let old = match entry {
            Some(e) => index.insert(key.to_string(), e),
            None => match index.remove(key) {
                Some(old) => Some(old),
                None => return Ok(None),
            },
        };
        if let Err(e) = self.write(agent, index) {
            match old {
                Some(old) => index.insert(key.to_string(), old),
                None => index.remove(key),
            };
            return Err(e);
        }
        Ok(old)
    }

    fn write(&self, agent: &str, index: &Index) -> io::Result<()> {
        let dir = self.sessions_dir(agent);
        make_dirs(&dir)?;
        // Two-space indentation, as the reference writes it.
        let mut text = serde_json::to_vec_pretty(&IndexFile(index))?;
        text.push(b'\n');
        write_atomic(&dir.join(INDEX), &text, 0o600)
    }
}

/// Creates `dir` and its missing parents with mode 0700, making each new
/// name durable.
fn make_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.exists()) {
        missing.push(d.to_path_buf());
        at = d.parent();
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    for d in missing.iter().rev() {
        sync_dir(d)?;
    }
    Ok(())
}

/// Renames `path` to `<path>.deleted.<time, ':' as '-'>` (a free name);
/// `None` when there is no such file.
fn archive(path: &Path) -> io::Result<Option<PathBuf>> {
    if let Err(e) = fs::symlink_metadata(path) {
        return match e.kind() {
            io::ErrorKind::NotFound => Ok(None),
            _ => Err(e),
        };
    }
    let stamp = crate::logging::rfc3339(SystemTime::now()).replace(':', "-");
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let base = format!("{name}.deleted.{stamp}");
    let mut to = path.with_file_name(&base);
    let mut n = 2;
    while to.exists() {
        to = path.with_file_name(format!("{base}-{n}"));
        n += 1;
    }
    fs::rename(path, &to)?;
    sync_dir(&to)?;
    Ok(Some(to))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// An agent id as a directory name: lowercased, letters, digits, `-` and
/// `_`, at most 64, so no id can name a path outside `agents/`.
fn agent_id(agent: &str) -> io::Result<String> {
    let id = agent.to_ascii_lowercase();
    let ok = id.len() <= 64
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(invalid(format!("invalid agent id '{agent}'")))
    }
}

fn session_key(key: &str) -> io::Result<String> {
    match key.trim() {
        "" => Err(invalid("empty session key".into())),
        _ => Ok(key.to_lowercase()),
    }
}

/// A session id usable as a file name in the sessions directory.
fn usable_session_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 200 && !id.starts_with('.') && !id.contains(['/', '\0'])
}

/// One agent's index from `path`; `None` when there is no file.
fn load(path: &Path) -> Result<Option<Index>, Error> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::config(format!(
                "{}: cannot read the session index: {}",
                path.display(),
                crate::error::io_message(&e)
            )))
        }
    };
    let raw: BTreeMap<String, SessionEntry> = serde_json::from_slice(&text).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = full.strip_suffix(&suffix).unwrap_or(&full).replace('`', "'");
        Error::config(format!(
            "{}:{}:{}: {msg} (the session index: fix the file, or move it away to forget its sessions)",
            path.display(),
            e.line(),
            e.column().max(1),
        ))
    })?;
    let mut index = Index::new();
    for (key, entry) in raw {
        if !usable_session_id(&entry.session_id) {
            return Err(Error::config(format!(
                "{}: session '{key}' has an unusable sessionId '{}' (the session index: fix the file, or move it away to forget its sessions)",
                path.display(),
                entry.session_id
            )));
        }
        // Keys are compared lowercased; of two that differ only in case
        // the one updated last wins.
        let key = key.to_lowercase();
        if index
            .get(&key)
            .is_none_or(|e| e.updated_at <= entry.updated_at)
        {
            index.insert(key, Arc::new(entry));
        }
    }
    Ok(Some(index))
}

#[cfg(test)]
mod tests;
