//! Files the gateway owns under its state directory (and the service
//! files `install` writes), written so that a crash or `kill -9` never
//! leaves a torn one.

pub mod devices;
mod durable;
pub mod identity;
pub mod sessions;
pub mod transcript;

pub use durable::{sync_dir, write_atomic};
