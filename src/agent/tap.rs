//! A tap on one run for a watcher that is not a WebSocket connection: an
//! HTTP request (`/v1/chat/completions`, `/hooks/agent`) that started the
//! run and streams or awaits its reply on its own thread.
//!
//! Events to connections are lossy for a slow reader; a tap is not,
//! because an OpenAI client must receive the whole reply. It keeps the
//! cumulative text (the run's emitter holds the same text, so this at most
//! doubles a reply that is already bounded by its backend) and the ending;
//! the reader takes what is new past its own offset. The run's side holds
//! [`Tap`]s (the run table's copy of a job and the run thread's); when the
//! last one goes without an ending (a run dropped before it started, or a
//! thread that could not be created) the reader is told the run is gone,
//! so no reader waits for an end that cannot come.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How a tapped run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapEnd {
    /// `ok`, `error`, `timeout` (the run's limit) or `aborted`.
    pub status: &'static str,
    /// The upstream's stop reason for `ok` (`stop`, `length`, ...).
    pub stop_reason: String,
    pub error: Option<String>,
}

/// Tokens as the upstream reported them: input, output, total.
pub type TapUsage = (u64, u64, u64);

#[derive(Default)]
struct State {
    text: String,
    usage: Option<TapUsage>,
    end: Option<TapEnd>,
    gone: bool,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    news: Condvar,
    writers: AtomicUsize,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The run's side.
pub struct Tap(Arc<Inner>);

/// The watcher's side.
pub struct TapReader(Arc<Inner>);

/// A new tap: its writer goes with the run's job, its reader stays.
pub fn tap() -> (Tap, TapReader) {
    let inner = Arc::new(Inner::default());
    inner.writers.store(1, Ordering::SeqCst);
    (Tap(inner.clone()), TapReader(inner))
}

impl Clone for Tap {
    fn clone(&self) -> Tap {
        self.0.writers.fetch_add(1, Ordering::SeqCst);
        Tap(self.0.clone())
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if self.0.writers.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.lock().gone = true;
            self.0.news.notify_all();
        }
    }
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

impl Tap {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.0.lock());
        self.0.news.notify_all();
    }

    /// A piece of the reply, as it arrives (not paced).
    pub fn piece(&self, text: &str) {
        self.update(|s| s.text.push_str(text));
    }

    pub fn usage(&self, u: TapUsage) {
        self.update(|s| s.usage = Some(u));
    }

    /// The run ended; the first ending counts.
    pub fn end(&self, end: TapEnd) {
        self.update(|s| {
            s.end.get_or_insert(end);
        });
    }
}

/// What a reader sees past its offset.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The text past the offset (empty when nothing new).
    pub text: String,
    pub usage: Option<TapUsage>,
    /// Set once the run ended; the text is then complete.
    pub end: Option<TapEnd>,
    /// Every writer is gone without an ending.
    pub gone: bool,
}

impl TapReader {
    /// Waits at most `wait` for text past `offset` or the end, and returns
    /// what there is (possibly nothing, at the deadline).
    pub fn next(&self, offset: usize, wait: Duration) -> Seen {
        let ready = |s: &State| s.text.len() > offset || s.end.is_some() || s.gone;
        let guard = self.0.lock();
        let (s, _) = self
            .0
            .news
            .wait_timeout_while(guard, wait, |s| !ready(s))
            .unwrap_or_else(|e| e.into_inner());
        Seen {
            text: s.text.get(offset..).unwrap_or("").to_string(),
            usage: s.usage,
            end: s.end.clone(),
            gone: s.gone && s.end.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_pieces_past_its_offset_then_the_end() {
        let (w, r) = tap();
        w.piece("Hel");
        w.piece("lo");
        let s = r.next(0, Duration::ZERO);
        assert_eq!(s.text, "Hello");
        assert!(s.end.is_none());
        assert_eq!(r.next(5, Duration::from_millis(10)), Seen::default());
        let w2 = w.clone();
        std::thread::spawn(move || {
            w2.usage((3, 2, 5));
            w2.end(TapEnd {
                status: "ok",
                stop_reason: "stop".into(),
                error: None,
            });
        });
        let s = r.next(5, Duration::from_secs(5));
        assert_eq!(s.end.map(|e| e.status), Some("ok"));
        assert_eq!(s.usage, Some((3, 2, 5)));
        assert!(!s.gone);
    }

    #[test]
    fn writers_that_all_go_without_an_ending_wake_the_reader() {
        let (w, r) = tap();
        let w2 = w.clone();
        drop(w);
        assert!(!r.next(0, Duration::ZERO).gone, "one writer is left");
        std::thread::spawn(move || drop(w2));
        assert!(r.next(0, Duration::from_secs(5)).gone);
    }
}
