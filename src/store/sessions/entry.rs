//! One entry of `sessions.json`, as the reference writes it: the keys
//! clawgate uses are typed, every other key is kept as it was, and a
//! number the reference wrote oddly (a float, a negative) never stops the
//! gateway.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Keys of the reference's entries that are preferences of the session key
/// rather than state of one conversation, so a reset keeps them (inferred
/// from what the reference's reset carries over).
const KEPT_ON_RESET: &[&str] = &[
    "displayName",
    "chatType",
    "channel",
    "origin",
    "lastChannel",
    "lastTo",
    "lastAccountId",
    "lastThreadId",
    "subject",
    "modelOverride",
    "providerOverride",
    "authProfileOverride",
    "verboseLevel",
    "reasoningLevel",
    "elevatedLevel",
    "fastMode",
    "sendPolicy",
    "queueMode",
    "responseUsage",
    "groupActivation",
    "spawnedBy",
];

/// One session key's entry in `sessions.json`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionEntry {
    pub session_id: String,
    #[serde(deserialize_with = "ms")]
    pub updated_at: u64,
    #[serde(deserialize_with = "num", skip_serializing_if = "Option::is_none")]
    pub session_started_at: Option<u64>,
    #[serde(deserialize_with = "num", skip_serializing_if = "Option::is_none")]
    pub last_interaction_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_via: Option<String>,
    #[serde(deserialize_with = "num", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<String>,
    #[serde(deserialize_with = "num", skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(deserialize_with = "num", skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(deserialize_with = "num", skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// The CLI backends' own session ids, by backend.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cli_session_ids: BTreeMap<String, String>,
    /// Keys the reference writes that clawgate does not use, kept as they
    /// were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SessionEntry {
    /// A fresh conversation started at `now_ms`.
    pub fn new(session_id: String, now_ms: u64) -> SessionEntry {
        SessionEntry {
            session_id,
            updated_at: now_ms,
            session_started_at: Some(now_ms),
            last_interaction_at: None,
            created_via: None,
            created_at: Some(now_ms),
            label: None,
            model: None,
            model_provider: None,
            thinking_level: None,
            input_tokens: None,
            output_tokens: None,
            total_tokens: None,
            cli_session_ids: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    /// The entry of a new conversation `session_id` under the same key,
    /// from `now_ms`: the label, model, thinking level, where the key came
    /// from and the other preferences stay; token counts, CLI session ids
    /// and the state of the old conversation go.
    pub fn renewed(&self, session_id: String, now_ms: u64) -> SessionEntry {
        SessionEntry {
            created_via: self.created_via.clone(),
            created_at: self.created_at.or(Some(now_ms)),
            label: self.label.clone(),
            model: self.model.clone(),
            model_provider: self.model_provider.clone(),
            thinking_level: self.thinking_level.clone(),
            extra: self
                .extra
                .iter()
                .filter(|(k, _)| KEPT_ON_RESET.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..SessionEntry::new(session_id, now_ms)
        }
    }

    pub fn display_name(&self) -> Option<&str> {
        self.extra.get("displayName").and_then(Value::as_str)
    }
}

/// A count or a time in ms, as any JSON number (the reference's are
/// JavaScript numbers): a float is truncated, a negative one dropped, so an
/// odd value never stops the gateway.
fn num<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<serde_json::Number>::deserialize(d)?.and_then(|n| {
        n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        })
    }))
}

fn ms<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(num(d)?.unwrap_or(0))
}
