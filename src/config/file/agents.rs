//! The file's schema for models, agents and sessions, and what it means
//! for agent runs ([`AgentSettings`]): providers with their `${ENV}`-expanded
//! keys, CLI backends, the default model and the session bounds.
//!
//! Keys the reference writes that clawgate reads past (a model's `input`
//! and `cost`, `models.mode`, a model's `fallbacks`) are accepted and
//! ignored, so a reference config loads unchanged.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::checks::nonblank;
use super::{FileConfig, Obj};
use crate::config::agents::{
    split_ref, AgentDef, AgentSettings, Provider, DEFAULT_PROVIDER_TIMEOUT_SECONDS,
};
use crate::config::backend::CliBackend;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ModelsFile {
    pub(super) providers: BTreeMap<String, Obj<ProviderFile>>,
    mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ProviderFile {
    pub(super) base_url: Option<String>,
    pub(super) api_key: Option<String>,
    pub(super) api: Option<String>,
    pub(super) models: Vec<Obj<ModelFile>>,
    timeout_seconds: Option<u64>,
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ModelFile {
    pub(super) id: String,
    pub(super) name: Option<String>,
    pub(super) alias: Option<String>,
    pub(super) context_window: Option<u64>,
    pub(super) reasoning: Option<bool>,
    max_tokens: Option<u64>,
    // The reference's own keys, accepted so its configs load; unused.
    #[allow(dead_code)]
    input: Option<Value>,
    #[allow(dead_code)]
    cost: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct AgentsFile {
    pub(super) default_id: Option<String>,
    defaults: Obj<DefaultsFile>,
    list: Vec<Obj<AgentFile>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct DefaultsFile {
    model: Obj<ModelRefFile>,
    timeout_seconds: Option<u64>,
    max_concurrent: Option<u64>,
    system_prompt: Option<String>,
    workspace: Option<String>,
    cli_backends: BTreeMap<String, CliBackend>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct ModelRefFile {
    primary: Option<String>,
    fallbacks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AgentFile {
    id: String,
    name: Option<String>,
    #[serde(default)]
    model: Option<Obj<ModelRefFile>>,
    #[serde(default)]
    default: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SessionFile {
    pub(super) main_key: Option<String>,
    pub(super) scope: Option<ScopeFile>,
    max_message_bytes: Option<u64>,
    max_transcript_bytes: Option<u64>,
    max_sessions: Option<u64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
pub(super) enum ScopeFile {
    PerSender,
    Global,
}

fn model_ref(key: &str, v: Option<&str>) -> Result<Option<String>, String> {
    match v {
        None => Ok(None),
        Some(r) if split_ref(r).is_some() => Ok(Some(r.to_string())),
        Some(r) => Err(format!("'{key}' must be '<provider>/<model>', not '{r}'")),
    }
}

fn within(key: &str, v: Option<u64>, default: u64, min: u64, max: u64) -> Result<u64, String> {
    let n = v.unwrap_or(default);
    if !(min..=max).contains(&n) {
        return Err(format!("'{key}' must be between {min} and {max}, not {n}"));
    }
    Ok(n)
}

/// The agent settings the file describes, checked.
pub(super) fn agent_settings(f: &FileConfig) -> Result<AgentSettings, String> {
    let d = AgentSettings::default();
    let a = &f.agents.0;
    let defaults = &a.defaults.0;
    let session = &f.session.0;
    let mut providers = Vec::new();
    for (id, Obj(p)) in &f.models.0.providers {
        let at = format!("models.providers.{id}");
        let timeout = within(
            &format!("{at}.timeoutSeconds"),
            p.timeout_seconds,
            DEFAULT_PROVIDER_TIMEOUT_SECONDS,
            1,
            86_400,
        )?;
        let Some(base_url) = p.base_url.clone() else {
            // A provider without an address only lists models.
            continue;
        };
        providers.push(Provider {
            id: id.clone(),
            base_url,
            api_key: p.api_key.clone(),
            api: p.api.clone(),
            headers: p
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            timeout_seconds: timeout,
            max_tokens: p
                .models
                .iter()
                .filter_map(|Obj(m)| Some((m.id.clone(), m.max_tokens?)))
                .collect(),
            context_window: p
                .models
                .iter()
                .filter_map(|Obj(m)| Some((m.id.clone(), m.context_window?)))
                .collect(),
        });
    }
    for (id, b) in &defaults.cli_backends {
        let at = format!("agents.defaults.cliBackends.{id}");
        if id.trim().is_empty() || id.contains('/') {
            return Err(format!(
                "'{at}': a backend id must be a non-empty word without '/'"
            ));
        }
        if f.models.0.providers.contains_key(id) {
            return Err(format!(
                "'{at}' has the id of a provider in models.providers"
            ));
        }
        b.check().map_err(|m| format!("'{at}': {m}"))?;
    }
    nonblank(
        "agents.defaults.systemPrompt",
        defaults.system_prompt.as_deref(),
    )?;
    let mut list: Vec<AgentDef> = Vec::new();
    for (i, Obj(agent)) in a.list.iter().enumerate() {
        let at = format!("agents.list[{i}]");
        // Session keys carry agent ids in lower case, as the reference
        // normalises them; an id kept as written could never run.
        let id = agent.id.trim().to_ascii_lowercase();
        let id = id.as_str();
        if id.is_empty() || id.contains(|c: char| c == ':' || c == '/' || c.is_whitespace()) {
            return Err(format!(
                "'{at}.id' must be a word without ':', '/' or spaces"
            ));
        }
        if list.iter().any(|x| x.id == id) {
            return Err(format!("'agents.list' lists '{id}' twice"));
        }
        let _ = agent.default;
        let model = agent.model.as_ref().and_then(|Obj(m)| m.primary.as_deref());
        list.push(AgentDef {
            id: id.to_string(),
            name: agent.name.clone(),
            model: model_ref(&format!("{at}.model.primary"), model)?,
        });
    }
    let _ = (&defaults.model.0.fallbacks, &f.models.0.mode);
    Ok(AgentSettings {
        primary: model_ref(
            "agents.defaults.model.primary",
            defaults.model.0.primary.as_deref(),
        )?,
        timeout_seconds: within(
            "agents.defaults.timeoutSeconds",
            defaults.timeout_seconds,
            d.timeout_seconds,
            0,
            30 * 86_400,
        )?,
        max_concurrent: within(
            "agents.defaults.maxConcurrent",
            defaults.max_concurrent,
            d.max_concurrent as u64,
            1,
            256,
        )? as usize,
        system_prompt: defaults.system_prompt.clone().unwrap_or(d.system_prompt),
        workspace: defaults.workspace.as_ref().map(Into::into),
        providers,
        cli_backends: defaults.cli_backends.clone(),
        list,
        max_message_bytes: within(
            "session.maxMessageBytes",
            session.max_message_bytes,
            d.max_message_bytes as u64,
            1024,
            4 << 20,
        )? as usize,
        max_transcript_bytes: within(
            "session.maxTranscriptBytes",
            session.max_transcript_bytes,
            d.max_transcript_bytes,
            64 * 1024,
            1 << 30,
        )?,
        max_sessions: within(
            "session.maxSessions",
            session.max_sessions,
            d.max_sessions as u64,
            1,
            1_000_000,
        )? as usize,
    })
}
