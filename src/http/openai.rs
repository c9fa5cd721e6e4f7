//! The OpenAI-compatible endpoints: `/v1/models`, `/v1/chat/completions`
//! and `/v1/responses`, each routed only when its switch in
//! `gateway.http.endpoints` is on (a disabled one falls through to 404,
//! as in the reference). Each needs the gateway's secret as a bearer
//! token, and answers errors in OpenAI's shape so its clients can read
//! them. A turn is an ordinary agent run, followed from the request's own
//! thread (`run`); nothing here logs a header or a body.

mod chat;
mod models;
mod responses;
mod run;
mod sse;
mod wire;

#[cfg(test)]
mod tests;

use std::net::TcpStream;
use std::sync::Arc;

use serde_json::json;

use super::auth::{self, Accept};
use super::head::Head;
use super::request::{Request, Routed};
use super::response::Reply;
use crate::state::{Live, Shared};

/// `None` when the path is not an enabled endpoint's.
pub(super) fn handle(
    shared: &Arc<Shared>,
    live: &Live,
    req: &Request,
    stream: &mut TcpStream,
) -> Option<Routed> {
    let on = &live.settings.http.endpoints;
    let path = req.head.path();
    let models = path == "/v1/models" || path.starts_with("/v1/models/");
    if models && (on.chat_completions || on.responses) {
        let reply = match allowed(req, "GET").and_then(|()| authorized(shared, live, req)) {
            Ok(()) => models::answer(live, req),
            Err(r) => r,
        };
        return Some(reply.into());
    }
    let turn = match path {
        "/v1/chat/completions" if on.chat_completions => chat::answer,
        "/v1/responses" if on.responses => responses::answer,
        _ => return None,
    };
    Some(
        match allowed(req, "POST").and_then(|()| authorized(shared, live, req)) {
            Ok(()) => turn(shared, live, req, stream),
            Err(r) => r.into(),
        },
    )
}

/// The method check, before the bearer's (as the reference orders them).
fn allowed(req: &Request, allow: &'static str) -> Result<(), Reply> {
    let ok = match allow {
        "GET" => req.is_get(),
        m => req.head.method == m,
    };
    ok.then_some(()).ok_or_else(|| not_allowed(allow))
}

fn authorized(shared: &Shared, live: &Live, req: &Request) -> Result<(), Reply> {
    auth::check(shared, live, req.head, &req.client, Accept::Secret)
}

fn not_allowed(allow: &'static str) -> Reply {
    Reply::not_allowed(allow)
}

/// 400 in OpenAI's shape.
pub(super) fn invalid(message: &str) -> Reply {
    error(400, message, "invalid_request_error")
}

/// A failure of the gateway or the run, in OpenAI's shape.
pub(super) fn api_error(status: u16, message: &str) -> Reply {
    error(status, message, "api_error")
}

fn error(status: u16, message: &str, kind: &str) -> Reply {
    Reply::json(status, json!({"error": {"message": message, "type": kind}}))
}

/// The refusals made from the head alone (413, 408), in OpenAI's shape on
/// the `/v1/` paths, whose clients read that; `None` elsewhere.
pub(super) fn early_refusal(head: &Head, status: u16) -> Option<Reply> {
    if !head.path().starts_with("/v1/") {
        return None;
    }
    let message = match status {
        413 => "Payload too large",
        408 => "Request body timeout",
        _ => return None,
    };
    Some(Reply {
        close: true,
        ..error(status, message, "invalid_request_error")
    })
}

/// Unix seconds, for `created`.
fn unix_now() -> u64 {
    crate::state::now_ms() / 1000
}
