//! `sessions.*` and `agents.list` (PROTOCOL-AGENTS §5): listing, reading
//! and changing the durable sessions, and subscribing to their changes.
//! Every change is written by the session store before it is answered and
//! announced to subscribers with `sessions.changed`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::chat::session_at;
use super::Ctx;
use crate::protocol::{self, ErrorShape, Invalid, Params, Payload};
use crate::runs::rows;
use crate::state::now_ms;
use crate::store::sessions::ListQuery;
use crate::store::transcript;

const LIST_DEFAULT: usize = 100;
const LIST_MAX: usize = 1000;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, expecting = "an object")]
struct ListParams {
    limit: Option<usize>,
    offset: Option<usize>,
    agent_id: Option<String>,
    search: Option<String>,
    label: Option<String>,
    active_minutes: Option<u64>,
}

impl Params for ListParams {}

pub(super) fn sessions_list(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: ListParams = match c.params {
        None => ListParams::default(),
        Some(_) => protocol::parse("sessions.list", c.params)?,
    };
    let s = &c.live.settings;
    let store = c.shared.sessions();
    let limit = p.limit.unwrap_or(LIST_DEFAULT).clamp(1, LIST_MAX);
    let offset = p.offset.unwrap_or(0);
    let q = ListQuery {
        agent: p.agent_id.map(|a| a.to_ascii_lowercase()),
        search: p.search,
        label: p.label,
        active_minutes: p.active_minutes,
        now_ms: now_ms(),
        limit: Some(limit),
        offset,
    };
    let (found, total) = store.list(&q);
    let sessions: Vec<Value> = found
        .iter()
        .map(|(agent, key, e)| {
            let active = c.shared.run_active_in(key);
            rows::row(s, agent, key, e, active.as_deref())
        })
        .collect();
    let count = sessions.len();
    let has_more = offset + count < total;
    let agent = q.agent.as_deref().unwrap_or(&s.default_agent_id);
    let path = store
        .index_path(agent)
        .map(|p| p.display().to_string())
        .ok();
    Ok(json!({
        "ts": now_ms(),
        "path": path,
        "count": count,
        "totalCount": total,
        "limitApplied": limit,
        "nextOffset": if has_more { json!(offset + count) } else { Value::Null },
        "hasMore": has_more,
        "defaults": rows::defaults(s, &s.default_agent_id),
        "sessions": sessions,
    })
    .into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct KeyParams {
    key: String,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    delete_transcript: Option<bool>,
}

impl Params for KeyParams {
    fn check(&self) -> Result<(), Invalid> {
        protocol::non_empty("/key", &self.key)
    }
}

fn not_found(key: &str) -> ErrorShape {
    ErrorShape::invalid(format!("session not found: {key}"))
}

fn io_error(e: std::io::Error) -> ErrorShape {
    ErrorShape::unavailable(format!("cannot save the session: {e}"))
}

pub(super) fn sessions_describe(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: KeyParams = protocol::parse("sessions.describe", c.params)?;
    let r = session_at(c, &p.key, p.agent_id.as_deref());
    let e = c
        .shared
        .sessions()
        .get(&r.agent, &r.key)
        .ok_or_else(|| not_found(&r.key))?;
    let active = c.shared.run_active_in(&r.key);
    Ok(
        json!({"session": rows::row(&c.live.settings, &r.agent, &r.key, &e, active.as_deref())})
            .into(),
    )
}

pub(super) fn sessions_reset(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: KeyParams = protocol::parse("sessions.reset", c.params)?;
    let r = session_at(c, &p.key, p.agent_id.as_deref());
    let e = c
        .shared
        .sessions()
        .reset(&r.agent, &r.key, now_ms())
        .map_err(io_error)?
        .ok_or_else(|| not_found(&r.key))?;
    rows::changed(c.shared, &c.live.settings, &r.agent, &r.key, "reset");
    Ok(json!({"ok": true, "key": r.key, "entry": e}).into())
}

pub(super) fn sessions_delete(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: KeyParams = protocol::parse("sessions.delete", c.params)?;
    let r = session_at(c, &p.key, p.agent_id.as_deref());
    if c.shared.run_active_in(&r.key).is_some() {
        return Err(ErrorShape::unavailable(format!(
            "session {} has a run in progress; abort it first",
            r.key
        )));
    }
    let deleted = c
        .shared
        .sessions()
        .delete(&r.agent, &r.key, p.delete_transcript.unwrap_or(false))
        .map_err(io_error)?;
    let (deleted, archived) = match deleted {
        Some((_, archived)) => (true, archived),
        None => (false, Vec::new()),
    };
    if deleted {
        rows::changed(c.shared, &c.live.settings, &r.agent, &r.key, "delete");
    }
    Ok(json!({"ok": true, "key": r.key, "deleted": deleted, "archived": archived}).into())
}

pub(super) fn sessions_patch(c: &Ctx) -> Result<Payload, ErrorShape> {
    let v = protocol::params_value("sessions.patch", c.params, 64 * 1024)?;
    let key = v["key"]
        .as_str()
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| {
            ErrorShape::invalid("invalid sessions.patch params: must have required property 'key'")
        })?;
    let r = session_at(c, key, v["agentId"].as_str());
    let s = &c.live.settings;
    // Each field: absent = unchanged, null = cleared, a string = set.
    let field = |name: &str| -> Result<Option<Option<String>>, ErrorShape> {
        match v.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(t)) if t.len() <= 512 => Ok(Some(Some(t.clone()))),
            Some(_) => Err(ErrorShape::invalid(format!(
                "invalid sessions.patch params: at /{name}: must be a string of at most 512 characters or null"
            ))),
        }
    };
    let (label, model, thinking) = (field("label")?, field("model")?, field("thinkingLevel")?);
    let model = match model {
        Some(Some(m)) => {
            s.agents.resolve(&m).map_err(ErrorShape::invalid)?;
            Some(Some(m))
        }
        other => other,
    };
    let store = c.shared.sessions();
    store
        .ensure(&r.agent, &r.key, now_ms(), "patch", None, None)
        .map_err(|e| ErrorShape::unavailable(e.to_string()))?;
    let e = store
        .update(&r.agent, &r.key, |e| {
            if let Some(l) = label {
                e.label = l;
            }
            if let Some(m) = model {
                let split = m.as_deref().and_then(crate::config::agents::split_ref);
                e.model_provider = split.map(|(p, _)| p.to_string());
                e.model = split.map(|(_, m)| m.to_string());
            }
            if let Some(t) = thinking {
                e.thinking_level = t;
            }
            e.updated_at = now_ms();
        })
        .map_err(io_error)?
        .ok_or_else(|| not_found(&r.key))?;
    rows::changed(c.shared, s, &r.agent, &r.key, "patch");
    let (provider, model) = rows::effective_model(s, &r.agent, &e);
    Ok(
        json!({"ok": true, "path": c.shared.sessions_path(), "key": r.key, "entry": e,
              "resolved": {"modelProvider": provider, "model": model}})
        .into(),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct PreviewParams {
    keys: Vec<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    max_chars: Option<usize>,
}

impl Params for PreviewParams {
    fn check(&self) -> Result<(), Invalid> {
        if self.keys.len() > 64 {
            return Err(Invalid::at("/keys", "must NOT have more than 64 items"));
        }
        Ok(())
    }
}

pub(super) fn sessions_preview(c: &Ctx) -> Result<Payload, ErrorShape> {
    let p: PreviewParams = protocol::parse("sessions.preview", c.params)?;
    let (limit, max_chars) = (
        p.limit.unwrap_or(12).min(64),
        p.max_chars.unwrap_or(240).min(4096),
    );
    let store = c.shared.sessions();
    let previews: Vec<Value> = p
        .keys
        .iter()
        .map(|k| {
            let r = session_at(c, k, None);
            let Some(e) = store.get(&r.agent, &r.key) else {
                return json!({"key": k, "status": "missing", "items": []});
            };
            let Ok(path) = store.transcript_path(&r.agent, &e.session_id) else {
                return json!({"key": k, "status": "missing", "items": []});
            };
            let items: Vec<Value> = transcript::preview(&path, limit, max_chars)
                .unwrap_or_default()
                .into_iter()
                .map(|(role, text)| json!({"role": role, "text": text}))
                .collect();
            let status = if items.is_empty() { "empty" } else { "ok" };
            json!({"key": k, "status": status, "items": items})
        })
        .collect();
    Ok(json!({"ts": now_ms(), "previews": previews}).into())
}

pub(super) fn sessions_subscribe(c: &Ctx, on: bool) -> Result<Payload, ErrorShape> {
    c.shared.sessions_subscribe(c.caller.conn, on);
    Ok(json!({"subscribed": on}).into())
}

pub(super) fn agents_list(c: &Ctx) -> Result<Payload, ErrorShape> {
    let s = &c.live.settings;
    // Each agent's model as `model.primary`: the Control UI asks the
    // user to set up a provider for an agent without one.
    let row = |id: &str| {
        let mut v = json!({"id": id});
        if let Some(m) = s.agents.model_of(id) {
            v["model"] = json!({"primary": m});
        }
        v
    };
    let mut agents = vec![row(&s.default_agent_id)];
    for a in &s.agents.list {
        if a.id == s.default_agent_id {
            if let Some(n) = &a.name {
                agents[0]["name"] = json!(n);
            }
            continue;
        }
        let mut v = row(&a.id);
        if let Some(n) = &a.name {
            v["name"] = json!(n);
        }
        agents.push(v);
    }
    Ok(
        json!({"defaultId": s.default_agent_id, "mainKey": s.main_key,
              "scope": s.session_scope, "agents": agents})
        .into(),
    )
}
