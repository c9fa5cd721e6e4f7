//! The Control UI on the gateway's port: the stock build from
//! `gateway.controlUi.root` when one is configured, else the small page
//! compiled into the binary, both under `gateway.controlUi.basePath`.

mod builtin;
mod csp;

use super::response::Reply;
use super::route::Request;
use crate::state::{Live, Shared};

/// The UI's answer to a request under its base path; `None` when the
/// path is not the UI's (or the UI is off), so it ends as 404.
pub(super) fn handle(_shared: &Shared, live: &Live, req: &Request) -> Option<Reply> {
    let ui = &live.settings.http.control_ui;
    if !ui.enabled {
        return None;
    }
    let rest = req.head.path().strip_prefix(ui.base_path.as_str())?;
    if ui.root.is_none() {
        return builtin::handle(req, rest);
    }
    None
}
