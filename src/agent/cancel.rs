//! One run's cancel handle: a flag the backend polls between reads, and a
//! hook the backend registers that unblocks a read in progress (shutting
//! the upstream socket down, signalling the child's process group).
//! Cancelling runs the hook at most once, on the cancelling thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    hook: Mutex<Option<Hook>>,
}

/// Cloned into the run's thread and kept by whoever may abort the run.
#[derive(Clone, Default)]
pub struct Cancel(Arc<Inner>);

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cancel({})", self.is_cancelled())
    }
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Marks the run cancelled and runs the registered hook, if any.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
        let hook = lock(&self.0.hook).take();
        if let Some(h) = hook {
            h();
        }
    }

    /// Registers what unblocks the backend; replaces an earlier hook. When
    /// the run is already cancelled the hook runs at once, so a cancel that
    /// raced with the registration is not lost.
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) {
        let mut slot = lock(&self.0.hook);
        if self.is_cancelled() {
            drop(slot);
            hook();
            return;
        }
        *slot = Some(Box::new(hook));
    }

    /// Forgets the hook (the socket or child it would act on is gone).
    pub fn clear(&self) {
        lock(&self.0.hook).take();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn cancel_runs_the_hook_once_and_a_late_hook_at_once() {
        let c = Cancel::new();
        let n = Arc::new(AtomicUsize::new(0));
        let m = n.clone();
        c.on_cancel(move || {
            m.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!c.is_cancelled());
        c.cancel();
        c.cancel();
        assert!(c.is_cancelled());
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let m = n.clone();
        c.on_cancel(move || {
            m.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 11);
    }
}
