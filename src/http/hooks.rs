//! Webhooks: `POST <hooks.path>/wake` and `<hooks.path>/agent`.

use serde_json::json;

use super::response::Reply;
use super::route::Request;
use crate::state::{Live, Shared};

/// Whether `path` is under the hooks' base path.
pub(super) fn owns(base: &str, path: &str) -> bool {
    path == base || path.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
}

pub(super) fn handle(_shared: &Shared, _live: &Live, _req: &Request) -> Reply {
    Reply::json(404, json!({"ok": false, "error": "not found"}))
}
