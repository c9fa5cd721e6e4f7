//! Which handler answers a plain request, in the order the reference
//! routes them: health and readiness, hooks (when enabled), the
//! OpenAI-compatible endpoints (each when enabled), `/tools/invoke`, then
//! the Control UI; a disabled endpoint is not routed and ends as 404.
//! Also the body limit each route allows, decided from the head alone so
//! an oversized body is refused before a byte of it is read.

use std::net::TcpStream;
use std::sync::Arc;

use serde_json::json;

use super::gate::common_checks;
use super::head::Head;
use super::request::{Request, Routed};
use super::response::Reply;
use super::{hooks, openai, ui};
use crate::state::{Live, Shared};

/// The largest body a request to this path may declare.
pub(super) fn body_limit(live: &Live, h: &Head) -> usize {
    let s = &live.settings;
    let path = h.path();
    if s.http.hooks.enabled && hooks::owns(&s.http.hooks.path, path) {
        s.http.hooks.max_body_bytes
    } else if path.starts_with("/v1/") {
        s.limits.max_payload
    } else {
        s.limits.max_body_bytes
    }
}

pub(super) fn route(
    shared: &Arc<Shared>,
    live: &Live,
    req: &Request,
    stream: &mut TcpStream,
) -> Routed {
    if let Some(refusal) = common_checks(shared, live, req.head) {
        return refusal.into();
    }
    let path = req.head.path();
    match path {
        "/health" | "/healthz" if req.is_get() => {
            return Reply::json(200, json!({"ok": true, "status": "live"})).into()
        }
        "/ready" | "/readyz" if req.is_get() => {
            return Reply::json(200, json!({"ready": true})).into()
        }
        "/health" | "/healthz" | "/ready" | "/readyz" => {
            return Reply::json(
                405,
                json!({"error": "method not allowed", "allow": "GET, HEAD"}),
            )
            .into()
        }
        _ => {}
    }
    let hooks = &live.settings.http.hooks;
    if hooks.enabled && hooks::owns(&hooks.path, path) {
        return hooks::handle(shared, live, req).into();
    }
    if let Some(routed) = openai::handle(shared, live, req, stream) {
        return routed;
    }
    if path == "/tools/invoke" {
        return tools_invoke(shared, live, req).into();
    }
    if let Some(reply) = ui::handle(shared, live, req) {
        return reply.into();
    }
    Reply::json(404, json!({"error": "not found"})).into()
}

/// clawgate runs no agent tools, so every tool is unavailable: the
/// reference's answer for a tool outside policy, after its auth.
fn tools_invoke(shared: &Shared, live: &Live, req: &Request) -> Reply {
    if req.head.method != "POST" {
        return Reply::not_allowed("POST");
    }
    if let Err(r) = super::auth::check(
        shared,
        live,
        req.head,
        &req.client,
        super::auth::Accept::Secret,
    ) {
        return r;
    }
    let body: serde_json::Value = match serde_json::from_slice(req.body) {
        Ok(v) => v,
        Err(_) => {
            return Reply::json(
                400,
                json!({"ok": false, "error": {"type": "invalid_request", "message": "body must be a JSON object"}}),
            )
        }
    };
    let tool = body
        .get("name")
        .or_else(|| body.get("tool"))
        .and_then(|t| t.as_str())
        .unwrap_or("");
    if tool.trim().is_empty() {
        return Reply::json(
            400,
            json!({"ok": false, "error": {"type": "invalid_request", "message": "tool is required"}}),
        );
    }
    let tool = crate::protocol::clip(tool, 256);
    Reply::json(
        404,
        json!({"ok": false, "error": {"type": "not_found", "message": format!("Tool not available: {tool}")}}),
    )
}
