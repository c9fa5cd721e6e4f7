//! `control-ui-config.json`: what the stock UI reads once its WebSocket
//! is up (PROTOCOL-HTTP §7.1), at the three paths the reference answers.
//! It needs the gateway's secret or a paired device's operator token as a
//! bearer credential (none in no-auth mode) and tells the UI which of its
//! features this gateway lacks (terminal, CLI agents, community invite);
//! it never reveals a secret.

use serde_json::json;

use super::super::auth::{self, Accept};
use super::super::request::Request;
use super::super::response::Reply;
use crate::config::AuthMode;
use crate::methods::ui::{ASSISTANT_AVATAR, ASSISTANT_NAME};
use crate::protocol::VERSION;
use crate::state::{Live, Shared};

const NAME: &str = "/control-ui-config.json";

/// Whether `path` asks for the bootstrap config under mount `base`.
pub fn owns(path: &str, base: &str) -> bool {
    let Some(rest) = path.strip_prefix(base) else {
        return false;
    };
    rest == NAME
        || rest.strip_prefix("/__openclaw").is_some_and(|r| r == NAME)
        || (base.is_empty()
            && rest
                .strip_prefix("/__openclaw__")
                .is_some_and(|r| r == NAME))
}

pub fn handle(shared: &Shared, live: &Live, req: &Request) -> Reply {
    if !req.is_get() {
        return super::method_not_allowed();
    }
    if let Err(refused) = auth::check(shared, live, req.head, &req.client, Accept::SecretOrDevice) {
        return refused;
    }
    let s = &live.settings;
    let ui = &s.http.control_ui;
    let body = json!({
        "basePath": ui.base_path,
        "assistantName": ASSISTANT_NAME,
        "assistantAvatar": ASSISTANT_AVATAR,
        "assistantAvatarSource": null,
        "assistantAvatarStatus": null,
        "assistantAvatarReason": null,
        "assistantAgentId": s.default_agent_id,
        "serverVersion": VERSION,
        "embedSandbox": ui.embed_sandbox,
        "allowExternalEmbedUrls": ui.allow_external_embed_urls,
        "automaticallyFetchFavicons": ui.automatically_fetch_favicons,
        "communityInvite": false,
        "terminalEnabled": false,
        "cliAgentsEnabled": false,
        "pluginAssetsRequireAuth": live.secret.mode != AuthMode::None,
        "pluginFrameGrants": [],
    });
    Reply::json(200, body).with("Cache-Control", "no-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_answers_at_the_reference_paths() {
        for (path, base) in [
            ("/control-ui-config.json", ""),
            ("/__openclaw/control-ui-config.json", ""),
            ("/__openclaw__/control-ui-config.json", ""),
            ("/ui/control-ui-config.json", "/ui"),
            ("/ui/__openclaw/control-ui-config.json", "/ui"),
        ] {
            assert!(owns(path, base), "{path} under {base:?}");
        }
        for (path, base) in [
            ("/ui/__openclaw__/control-ui-config.json", "/ui"),
            ("/control-ui-config.json", "/ui"),
            ("/uix/control-ui-config.json", "/ui"),
            ("/control-ui-config.json/", ""),
            ("/assets/control-ui-config.json", ""),
        ] {
            assert!(!owns(path, base), "{path} under {base:?}");
        }
    }
}
