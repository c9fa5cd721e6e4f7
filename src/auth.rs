//! Who may connect: the shared secret, the failed-auth limiter, and the
//! admission decision that combines them for one `connect`.
//!
//! Secrets are compared in constant time and never logged. The limiter is a
//! plain table owned by the shared state; it must never sleep or do I/O,
//! because it is consulted with the state lock held. The admission
//! decision is a pure function; the handshake does the I/O around it.

mod admit;
pub mod device;
mod limiter;
pub mod pairing;
mod secret;

pub use admit::{admit, Admission, Grant, Method, Peer, Request};
pub use limiter::{Limiter, LimiterConfig};
pub use secret::{ct_eq, Secret};
