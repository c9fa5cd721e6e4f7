//! Server-sent events on the request's own socket: the head, then each
//! event written whole with one `write_all` as it is made, so nothing is
//! buffered here. A write that fails (or stalls past the 5 s the head set)
//! is the client gone; the caller then aborts the run. Each event is
//! small and the socket has `TCP_NODELAY`, so none waits for the next.

use std::io::{self, Write};
use std::net::TcpStream;

use serde_json::Value;

use super::super::response::stream_head;

pub(super) struct Sse<'a> {
    out: &'a TcpStream,
}

impl<'a> Sse<'a> {
    /// Writes the head of an event stream.
    pub(super) fn start(stream: &'a mut TcpStream, minor: u8) -> io::Result<Sse<'a>> {
        stream_head(
            stream,
            minor,
            "text/event-stream; charset=utf-8",
            &[("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")],
        )?;
        Ok(Sse { out: stream })
    }

    /// `data: <json>`.
    pub(super) fn data(&mut self, v: &Value) -> io::Result<()> {
        self.write(format!("data: {v}\n\n"))
    }

    /// `event: <type>` with `data: <json>`.
    pub(super) fn event(&mut self, kind: &str, v: &Value) -> io::Result<()> {
        self.write(format!("event: {kind}\ndata: {v}\n\n"))
    }

    /// `data: [DONE]`: the last event. The caller then ends the stream
    /// with `response::stream_end`, once this borrow of its socket is over.
    pub(super) fn done(mut self) {
        let _ = self.write("data: [DONE]\n\n".to_string());
    }

    fn write(&mut self, text: String) -> io::Result<()> {
        let mut s = self.out;
        s.write_all(text.as_bytes())
    }

    /// The socket, for the run's watch on the peer.
    pub(super) fn socket(&self) -> &'a TcpStream {
        self.out
    }
}
