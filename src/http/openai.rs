//! The OpenAI-compatible endpoints: `/v1/models`, `/v1/chat/completions`
//! and `/v1/responses`, each routed only when enabled.

use std::net::TcpStream;
use std::sync::Arc;

use super::route::{Request, Routed};
use crate::state::{Live, Shared};

/// `None` when the path is not an enabled endpoint's.
pub(super) fn handle(
    _shared: &Arc<Shared>,
    _live: &Live,
    _req: &Request,
    _stream: &mut TcpStream,
) -> Option<Routed> {
    None
}
