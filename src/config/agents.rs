//! What agent runs are configured with: the model providers
//! (`models.providers`), the CLI backends (`agents.defaults.cliBackends`),
//! the default model and the agents (`agents.defaults`, `agents.list`),
//! and the bounds on sessions. Resolving a `<provider>/<model>` reference
//! to the backend that serves it is a pure function of these settings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::backend::CliBackend;

/// The one-line persona sent as the system message when none is set.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant.";
/// A run's own limit when neither the call nor the config sets one. The
/// reference waits 48 hours; a small host wants a stalled upstream to
/// give its slot back sooner.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 600;
/// Sessions running at once: small, for small hosts.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_TRANSCRIPT_BYTES: u64 = 16 * 1024 * 1024;
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// An OpenAI-compatible request's limit when its provider sets none.
pub const DEFAULT_PROVIDER_TIMEOUT_SECONDS: u64 = 120;

/// One OpenAI-compatible model provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: String,
    pub base_url: String,
    /// Already `${ENV}`-expanded; never logged.
    pub api_key: Option<String>,
    /// `api`: runs need "openai-completions" (or none said); a provider of
    /// another kind is still listed by `models.list`.
    pub api: Option<String>,
    pub headers: Vec<(String, String)>,
    pub timeout_seconds: u64,
    /// Per model id: `maxTokens`, sent as `max_completion_tokens`.
    pub max_tokens: BTreeMap<String, u64>,
    /// Per model id: `contextWindow` (tokens), which bounds the history
    /// sent upstream.
    pub context_window: BTreeMap<String, u64>,
}

/// One entry of `agents.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDef {
    pub id: String,
    pub name: Option<String>,
    /// `<provider>/<model>`, over the default.
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// `agents.defaults.model.primary`.
    pub primary: Option<String>,
    /// `agents.defaults.timeoutSeconds`; 0 = none.
    pub timeout_seconds: u64,
    /// `agents.defaults.maxConcurrent`.
    pub max_concurrent: usize,
    pub system_prompt: String,
    /// The directory CLI backends run in.
    pub workspace: Option<PathBuf>,
    pub providers: Vec<Provider>,
    pub cli_backends: BTreeMap<String, CliBackend>,
    pub list: Vec<AgentDef>,
    /// `session.maxMessageBytes`: one user message.
    pub max_message_bytes: usize,
    /// `session.maxTranscriptBytes`: one session's transcript file.
    pub max_transcript_bytes: u64,
    /// `session.maxSessions`: sessions per agent.
    pub max_sessions: usize,
}

impl Default for AgentSettings {
    fn default() -> AgentSettings {
        AgentSettings {
            primary: None,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_string(),
            workspace: None,
            providers: Vec::new(),
            cli_backends: BTreeMap::new(),
            list: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_transcript_bytes: DEFAULT_MAX_TRANSCRIPT_BYTES,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// What serves a model reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backend<'a> {
    Cli(&'a str, &'a CliBackend),
    Http(&'a Provider),
}

/// A model reference resolved: its backend and the model id as the
/// backend knows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    pub backend: Backend<'a>,
}

impl AgentSettings {
    /// Whether `id` is an agent: the default agent or one in `agents.list`.
    pub fn knows_agent(&self, id: &str, default_id: &str) -> bool {
        id == default_id || self.list.iter().any(|a| a.id == id)
    }

    /// The model reference a run of `agent` uses, before a session's or a
    /// caller's override.
    pub fn model_of(&self, agent: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|a| a.id == agent)
            .and_then(|a| a.model.as_deref())
            .or(self.primary.as_deref())
    }

    /// Resolves `<provider>/<model>` (split at the first `/`; the model id
    /// may contain more) to its backend.
    pub fn resolve<'a>(&'a self, model_ref: &'a str) -> Result<Resolved<'a>, String> {
        let Some((provider, model)) = split_ref(model_ref) else {
            return Err(format!("model '{model_ref}' is not '<provider>/<model>'"));
        };
        if let Some((id, b)) = self.cli_backends.get_key_value(provider) {
            return Ok(Resolved {
                provider,
                model,
                backend: Backend::Cli(id, b),
            });
        }
        match self.providers.iter().find(|p| p.id == provider) {
            Some(p) if p.api.as_deref().is_some_and(|a| a != "openai-completions") => Err(format!(
                "provider '{provider}' speaks '{}': clawgate runs \"openai-completions\" providers only",
                p.api.as_deref().unwrap_or_default()
            )),
            Some(p) => Ok(Resolved {
                provider,
                model,
                backend: Backend::Http(p),
            }),
            None => Err(format!(
                "unknown model provider '{provider}': configure models.providers.{provider} or agents.defaults.cliBackends.{provider}"
            )),
        }
    }
}

/// `<provider>/<model>` split at the first `/`, both parts non-empty.
pub fn split_ref(model_ref: &str) -> Option<(&str, &str)> {
    let (p, m) = model_ref.split_once('/')?;
    (!p.trim().is_empty() && !m.trim().is_empty()).then_some((p, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AgentSettings {
        let mut s = AgentSettings {
            primary: Some("fake/fake-model".into()),
            ..AgentSettings::default()
        };
        s.providers.push(Provider {
            id: "fake".into(),
            base_url: "http://127.0.0.1:1/v1".into(),
            api_key: None,
            api: None,
            headers: Vec::new(),
            timeout_seconds: 5,
            max_tokens: BTreeMap::new(),
            context_window: BTreeMap::new(),
        });
        s.list.push(AgentDef {
            id: "ops".into(),
            name: None,
            model: Some("fake/other".into()),
        });
        s
    }

    #[test]
    fn a_model_reference_splits_at_the_first_slash() {
        let s = settings();
        let r = s.resolve("fake/org/model-7b").expect("resolves");
        assert_eq!((r.provider, r.model), ("fake", "org/model-7b"));
        assert!(matches!(r.backend, Backend::Http(p) if p.id == "fake"));
        assert!(s
            .resolve("nobody/x")
            .unwrap_err()
            .contains("unknown model provider 'nobody'"));
        assert!(s.resolve("no-slash").is_err());
        assert!(s.resolve("/x").is_err());
    }

    #[test]
    fn an_agent_in_the_list_has_its_own_model_and_others_the_default() {
        let s = settings();
        assert_eq!(s.model_of("ops"), Some("fake/other"));
        assert_eq!(s.model_of("main"), Some("fake/fake-model"));
        assert!(s.knows_agent("ops", "main") && s.knows_agent("main", "main"));
        assert!(!s.knows_agent("ghost", "main"));
    }
}
