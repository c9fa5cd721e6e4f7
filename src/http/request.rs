//! One plain request as its handler sees it (head, body, who sent it) and
//! how a handler answered it. Kept apart from `route`, which imports every
//! handler, so the handlers need not import their router.

use super::gate::Client;
use super::head::Head;
use super::response::Reply;

/// One plain request, read whole.
pub(super) struct Request<'a> {
    pub head: &'a Head,
    pub body: &'a [u8],
    pub client: Client,
}

impl Request<'_> {
    pub fn is_get(&self) -> bool {
        self.head.method == "GET" || self.head.method == "HEAD"
    }
}

/// How a request was answered.
pub(super) enum Routed {
    /// A reply for the connection's writer.
    Reply(Reply),
    /// The handler wrote a streamed answer itself and closed the stream.
    Streamed,
}

impl From<Reply> for Routed {
    fn from(r: Reply) -> Routed {
        Routed::Reply(r)
    }
}
