//! Authentication of `connect`: the shared secret and the failed-auth
//! limiter.
//!
//! Secrets are compared in constant time and never logged. The limiter is a
//! plain table owned by the shared state; it must never sleep or do I/O,
//! because it is consulted with the state lock held.

mod limiter;
mod secret;

pub use limiter::{Limiter, LimiterConfig};
pub use secret::{check, rate_limited, Secret};
