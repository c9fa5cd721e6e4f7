//! The gateway-wide allowance for large WebSocket frames being read: a
//! frame over the small size every socket may send reserves its length
//! here before its payload is read (see `ws::tap`), and returns it when
//! its message is complete.

use std::sync::Mutex;

use super::lock;

/// The gateway-wide allowance for large frames being read.
#[derive(Debug)]
pub struct Budget {
    /// (bytes reserved, capacity)
    inner: Mutex<(usize, usize)>,
}

impl Budget {
    pub fn new(capacity: usize) -> Budget {
        Budget {
            inner: Mutex::new((0, capacity)),
        }
    }

    /// A new capacity (configuration reload); reservations stay.
    pub fn set_capacity(&self, capacity: usize) {
        lock(&self.inner).1 = capacity;
    }

    /// Takes `n` bytes if they fit. One frame larger than the whole budget
    /// may still go alone, when nothing else is reserved, so a large
    /// frame is never refused outright (`maxPayload` caps it anyway).
    pub fn try_reserve(&self, n: usize) -> bool {
        let mut b = lock(&self.inner);
        if b.0 + n <= b.1 || b.0 == 0 {
            b.0 += n;
            true
        } else {
            false
        }
    }

    pub fn release(&self, n: usize) {
        let mut b = lock(&self.inner);
        b.0 = b.0.saturating_sub(n);
    }

    #[cfg(test)]
    pub fn used(&self) -> usize {
        lock(&self.inner).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_admits_what_fits_and_one_oversized_frame_alone() {
        let b = Budget::new(100);
        assert!(b.try_reserve(60));
        assert!(!b.try_reserve(60));
        b.release(60);
        assert!(b.try_reserve(500), "alone, even past the capacity");
        assert!(!b.try_reserve(1));
        b.release(500);
        assert_eq!(b.used(), 0);
    }
}
