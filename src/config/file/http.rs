//! The file's schema for what HTTP serves: `gateway.controlUi`,
//! `gateway.http.endpoints` and `hooks`, checked into [`HttpSettings`].
//! A Control UI root must be a directory with an `index.html` (checked
//! here, so a reload naming a wrong one is refused and the old one kept).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Obj;
use crate::config::http::{mount_path, ControlUi, Endpoints, Hooks, HttpSettings};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ControlUiFile {
    pub(super) allowed_origins: Vec<String>,
    enabled: Option<bool>,
    base_path: Option<String>,
    root: Option<PathBuf>,
    embed_sandbox: Option<EmbedSandbox>,
    allow_external_embed_urls: Option<bool>,
    automatically_fetch_favicons: Option<bool>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum EmbedSandbox {
    Scripts,
    Strict,
    Trusted,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct HttpFile {
    endpoints: Obj<EndpointsFile>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct EndpointsFile {
    chat_completions: Obj<Switch>,
    responses: Obj<Switch>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Switch {
    enabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct HooksFile {
    enabled: Option<bool>,
    token: Option<String>,
    path: Option<String>,
    default_session_key: Option<String>,
    allow_request_session_key: Option<bool>,
    allowed_session_key_prefixes: Vec<String>,
    allowed_agent_ids: Option<Vec<String>>,
    max_body_bytes: Option<u64>,
}

/// The checked settings, relative paths taken from `dir` (the config
/// file's directory).
pub(super) fn http_settings(
    ui: &ControlUiFile,
    http: &HttpFile,
    hooks: &HooksFile,
    dir: &Path,
) -> Result<HttpSettings, String> {
    Ok(HttpSettings {
        control_ui: control_ui(ui, dir)?,
        endpoints: Endpoints {
            chat_completions: http.endpoints.0.chat_completions.0.enabled == Some(true),
            responses: http.endpoints.0.responses.0.enabled == Some(true),
        },
        hooks: hooks_settings(hooks)?,
    })
}

fn control_ui(f: &ControlUiFile, dir: &Path) -> Result<ControlUi, String> {
    let d = ControlUi::default();
    let base_path = match &f.base_path {
        Some(p) => mount_path("gateway.controlUi.basePath", p)?,
        None => d.base_path,
    };
    let root = match &f.root {
        None => None,
        Some(r) => {
            let joined = dir.join(r);
            let canon = joined.canonicalize().map_err(|e| {
                format!(
                    "'gateway.controlUi.root': '{}': {}",
                    joined.display(),
                    crate::error::io_message(&e)
                )
            })?;
            if !canon.join("index.html").is_file() {
                return Err(format!(
                    "'gateway.controlUi.root': '{}' has no index.html (point it at a Control UI build such as <openclaw package>/dist/control-ui)",
                    canon.display()
                ));
            }
            Some(canon)
        }
    };
    Ok(ControlUi {
        enabled: f.enabled.unwrap_or(d.enabled),
        base_path,
        root,
        embed_sandbox: match f.embed_sandbox {
            None => d.embed_sandbox,
            Some(EmbedSandbox::Scripts) => "scripts".into(),
            Some(EmbedSandbox::Strict) => "strict".into(),
            Some(EmbedSandbox::Trusted) => "trusted".into(),
        },
        allow_external_embed_urls: f
            .allow_external_embed_urls
            .unwrap_or(d.allow_external_embed_urls),
        automatically_fetch_favicons: f
            .automatically_fetch_favicons
            .unwrap_or(d.automatically_fetch_favicons),
    })
}

fn hooks_settings(f: &HooksFile) -> Result<Hooks, String> {
    let d = Hooks::default();
    let enabled = f.enabled == Some(true);
    let token = f.token.clone().filter(|t| !t.trim().is_empty());
    if enabled && token.is_none() {
        return Err(
            "'hooks.enabled' needs 'hooks.token' (a secret of its own, not the gateway's)".into(),
        );
    }
    let path = match &f.path {
        Some(p) => mount_path("hooks.path", p)?,
        None => d.path,
    };
    if path.is_empty() {
        return Err("'hooks.path' must not be '/': hooks need a path of their own".into());
    }
    let max_body_bytes = match f.max_body_bytes {
        None => d.max_body_bytes,
        Some(n) if (1024..=16 * 1024 * 1024).contains(&n) => n as usize,
        Some(n) => {
            return Err(format!(
                "'hooks.maxBodyBytes' must be between 1024 and 16777216, not {n}"
            ))
        }
    };
    if let Some(k) = &f.default_session_key {
        if k.trim().is_empty() {
            return Err("'hooks.defaultSessionKey' must not be blank".into());
        }
    }
    Ok(Hooks {
        enabled,
        token,
        path,
        default_session_key: f.default_session_key.clone(),
        allow_request_session_key: f.allow_request_session_key == Some(true),
        allowed_session_key_prefixes: f
            .allowed_session_key_prefixes
            .iter()
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .collect(),
        allowed_agent_ids: f
            .allowed_agent_ids
            .as_ref()
            .map(|ids| ids.iter().map(|i| i.trim().to_ascii_lowercase()).collect()),
        max_body_bytes,
    })
}
