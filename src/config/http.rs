//! What the HTTP side serves besides health: the Control UI (the stock
//! build from a directory, or the built-in page), the OpenAI-compatible
//! endpoints and the webhooks, each off or on as the file says. Defaults
//! follow the reference: the endpoints and hooks are off; the UI is on.

use std::path::PathBuf;

/// The default hooks body limit, as the reference's.
pub const DEFAULT_HOOKS_MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlUi {
    /// `gateway.controlUi.enabled`: serve a UI at all.
    pub enabled: bool,
    /// The mount prefix: empty, or `/name` without a trailing slash.
    pub base_path: String,
    /// A directory holding a stock Control UI build (`index.html`,
    /// `assets/`); without it the built-in page is served.
    pub root: Option<PathBuf>,
    /// Passed through to the stock UI's bootstrap config.
    pub embed_sandbox: String,
    pub allow_external_embed_urls: bool,
    pub automatically_fetch_favicons: bool,
}

impl Default for ControlUi {
    fn default() -> ControlUi {
        ControlUi {
            enabled: true,
            base_path: String::new(),
            root: None,
            embed_sandbox: "scripts".into(),
            allow_external_embed_urls: false,
            automatically_fetch_favicons: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoints {
    /// `/v1/chat/completions` and `/v1/models`.
    pub chat_completions: bool,
    /// `/v1/responses` (and `/v1/models`).
    pub responses: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// `hooks.enabled` with a token: the file refuses one without the other.
    pub enabled: bool,
    pub token: Option<String>,
    /// The base path, `/hooks` by default, without a trailing slash.
    pub path: String,
    pub default_session_key: Option<String>,
    pub allow_request_session_key: bool,
    /// Lowercased; empty allows any key once request keys are allowed.
    pub allowed_session_key_prefixes: Vec<String>,
    /// `None` allows every agent.
    pub allowed_agent_ids: Option<Vec<String>>,
    pub max_body_bytes: usize,
}

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            enabled: false,
            token: None,
            path: "/hooks".into(),
            default_session_key: None,
            allow_request_session_key: false,
            allowed_session_key_prefixes: Vec::new(),
            allowed_agent_ids: None,
            max_body_bytes: DEFAULT_HOOKS_MAX_BODY_BYTES,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpSettings {
    pub control_ui: ControlUi,
    pub endpoints: Endpoints,
    pub hooks: Hooks,
}

/// A mount path as written (`/openclaw/`, `openclaw`) in its one form
/// (`/openclaw`; the root is empty), or why it cannot be one.
pub fn mount_path(key: &str, p: &str) -> Result<String, String> {
    let trimmed = p.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let path = if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    };
    let bad = path.split('/').any(|seg| seg == "." || seg == "..")
        || path.contains("//")
        || path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "?#%\\".contains(c));
    if bad {
        return Err(format!(
            "'{key}': '{p}' is not a path like '/openclaw' (no '..', '?', '#', '%' or spaces)"
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_take_one_form() {
        assert_eq!(mount_path("k", "").unwrap(), "");
        assert_eq!(mount_path("k", "/").unwrap(), "");
        assert_eq!(mount_path("k", "openclaw/").unwrap(), "/openclaw");
        assert_eq!(mount_path("k", "/a/b").unwrap(), "/a/b");
        for bad in ["/a/../b", "/a?x", "/a b", "/a%2e", "//a", "/./a"] {
            assert!(mount_path("k", bad).is_err(), "{bad}");
        }
    }
}
