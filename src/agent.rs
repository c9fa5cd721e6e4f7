//! Agent runs' model backends: what turns one user message (with the
//! session's history) into the assistant's reply, streamed as it comes.
//!
//! Two kinds: a configured command run once per turn (`command`), and an
//! OpenAI-compatible HTTP endpoint streaming Server-Sent Events (`openai`,
//! over the small HTTP/1.1 client in `http` and the SSE parser in `sse`).
//! Each backend blocks the run's own thread and checks its [`Cancel`]
//! handle, whose hook closes the upstream socket or signals the child's
//! process group, so an abort or timeout ends the turn within a second.

pub mod cancel;
pub mod command;
pub mod http;
pub mod openai;
pub mod sse;
pub mod tap;

pub use cancel::Cancel;
pub use tap::{tap, Tap, TapEnd, TapReader};
