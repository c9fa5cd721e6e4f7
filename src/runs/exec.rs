//! One run from start to end on its own thread: the session entry, the
//! user's message committed to the transcript, the turn through its
//! backend, the reply committed, and the events and final answer that
//! tell the watchers. Nothing here holds the state lock while it reads a
//! backend or writes a file; the session store keeps its own lock.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::backend::{self, End, Input, Usage};
use super::events::{message, Emitter};
use super::rows;
use crate::config::agents::{split_ref, Backend};
use crate::config::Settings;
use crate::protocol::ErrorShape;
use crate::state::{now_ms, Delivery, Ending, Run, Shared};
use crate::store::transcript;

/// Earlier messages read from the transcript for the upstream's context.
const HISTORY_MESSAGES: usize = 200;
/// The committing thread: a file append and an index write, shallow.
const COMMIT_STACK_BYTES: usize = 64 * 1024;
/// Their text at most, when the model has no context window configured
/// (about 4 bytes a token otherwise).
const HISTORY_BYTES: usize = 64 * 1024;

/// Executes `run` and returns how it ended, after every event was sent.
pub fn execute(shared: &Shared, run: &Run) -> Ending {
    let live = shared.live();
    let s = &live.settings;
    let started = now_ms();
    shared.run_started(&run.id, started);
    let mut em = Emitter::new(
        shared,
        run.id.clone(),
        run.session.clone(),
        run.agent.clone(),
    );
    em.set_tap(run.job.tap.clone());
    em.agent(
        "lifecycle",
        json!({"phase": "start", "startedAt": started}),
        Delivery::Required,
    );
    let mut facts = Facts::default();
    let prepared = prepare(shared, s, run, &mut em, &mut facts);
    let path = facts.transcript.clone().unwrap_or_default();
    let end = match prepared {
        // The user's message is committed (appended, fsynced, the index
        // marked) on a scoped thread while the backend starts: the disk's
        // sync is not added to the time to the first token. The reply is
        // committed only after it, so the transcript keeps its order.
        Ok((input, user)) => std::thread::scope(|sc| {
            let path = &path;
            let commit = move || commit_user(shared, s, run, path, user);
            let spawned = std::thread::Builder::new()
                .name("commit".into())
                .stack_size(COMMIT_STACK_BYTES)
                .spawn_scoped(sc, commit.clone());
            let end = backend::turn(&input, &run.cancel, &mut em);
            em.flush();
            let committed = match spawned {
                Ok(h) => h.join().unwrap_or_else(|_| Err("commit failed".into())),
                Err(_) => commit(),
            };
            match committed {
                Ok(()) => {
                    facts.user_committed = true;
                    end
                }
                Err(m) => End::Failed(format!("cannot save the message: {m}")),
            }
        }),
        Err(_) if run.cancel.is_cancelled() => End::Cancelled,
        Err(m) => End::Failed(m),
    };
    conclude(shared, s, run, &mut em, &facts, end, started)
}

/// What the run learned on the way, for its end.
#[derive(Default)]
struct Facts {
    session_id: String,
    provider: String,
    model: String,
    transcript: Option<PathBuf>,
    user_committed: bool,
}

fn prepare<'a>(
    shared: &Shared,
    s: &'a Settings,
    run: &'a Run,
    em: &mut Emitter,
    facts: &mut Facts,
) -> Result<(Input<'a>, Value), String> {
    let store = shared.sessions();
    let model_ref = run.job.model.clone();
    let (entry, _) = store
        .ensure(&run.agent, &run.session, now_ms(), "run", None, None)
        .map_err(|e| e.to_string())?;
    em.set_session_id(&entry.session_id);
    facts.session_id = entry.session_id.clone();
    let (provider, model) = match model_ref.as_deref().and_then(split_ref) {
        Some((p, m)) => (Some(p.to_string()), Some(m.to_string())),
        None => {
            let (p, m) = rows::effective_model(s, &run.agent, &entry);
            (p.map(str::to_string), m.map(str::to_string))
        }
    };
    let (Some(provider), Some(model)) = (provider, model) else {
        return Err(
            "no model is configured: set agents.defaults.model.primary to '<provider>/<model>'"
                .into(),
        );
    };
    facts.provider = provider.clone();
    facts.model = model.clone();
    let path = store
        .transcript_path(&run.agent, &entry.session_id)
        .map_err(|e| e.to_string())?;
    facts.transcript = Some(path.clone());
    let limit = history_bytes(s, &provider, &model);
    let history = transcript::history(&path, HISTORY_MESSAGES, limit.max(1024))
        .map(|h| h.messages.iter().filter_map(plain).collect())
        .unwrap_or_default();
    let user = json!({"role": "user", "content": run.job.message, "timestamp": now_ms(),
                      "idempotencyKey": format!("{}:user", run.id)});
    if run.cancel.is_cancelled() {
        return Err(String::new());
    }
    em.agent(
        "lifecycle",
        json!({"phase": "model", "provider": provider, "model": model}),
        Delivery::Required,
    );
    let model_ref = format!("{}/{}", facts.provider, facts.model);
    let resolved = s.agents.resolve(&model_ref)?;
    let cli_session = match resolved.backend {
        Backend::Cli(id, _) => entry.cli_session_ids.get(id).cloned(),
        Backend::Http(_) => None,
    };
    let timeout = run.job.timeout.or_else(|| {
        (s.agents.timeout_seconds > 0).then(|| Duration::from_secs(s.agents.timeout_seconds))
    });
    let mut system_prompt = s.agents.system_prompt.clone();
    if let Some(extra) = &run.job.extra_system_prompt {
        system_prompt.push_str("\n\n");
        system_prompt.push_str(extra);
    }
    // What webhooks asked this session to know at its next run.
    for text in shared.wake_take(&run.session) {
        system_prompt.push_str("\n\nSystem event: ");
        system_prompt.push_str(&text);
    }
    let input = Input {
        settings: &s.agents,
        model_ref,
        system_prompt,
        history,
        message: &run.job.message,
        cli_session,
        deadline: timeout.map(|t| Instant::now() + t),
        workspace: s
            .agents
            .workspace
            .clone()
            .unwrap_or_else(|| s.state_dir.join("workspace")),
    };
    Ok((input, user))
}

/// Commits the user's message: appended to the transcript (fsynced), the
/// session marked running with this run, subscribers told. A crash from
/// here on leaves the message in the history and the run recorded as
/// failed at the next start.
fn commit_user(
    shared: &Shared,
    s: &Settings,
    run: &Run,
    path: &Path,
    user: Value,
) -> Result<(), String> {
    let parent = transcript::last_id(path).ok().flatten();
    let (_, line) = transcript::message_line(parent.as_deref(), user);
    transcript::append(path, &[line], s.agents.max_transcript_bytes).map_err(|e| e.to_string())?;
    let run_id = run.id.to_string();
    let marked = shared.sessions().update(&run.agent, &run.session, |e| {
        e.updated_at = now_ms();
        e.last_interaction_at = Some(now_ms());
        e.extra.insert("status".into(), json!("running"));
        e.extra.insert("lastRunId".into(), json!(run_id));
        e.extra.remove("abortedLastRun");
    });
    if let Err(e) = marked {
        log::warn!("session {}: cannot mark its run: {e}", run.session);
    }
    rows::changed(shared, s, &run.agent, &run.session, "agent.run.started");
    Ok(())
}

/// How much earlier text fits the model's context: a quarter of its
/// window at about 4 bytes a token, else [`HISTORY_BYTES`].
fn history_bytes(s: &Settings, provider: &str, model: &str) -> usize {
    rows::context_tokens(s, Some(provider), Some(model)).map_or(HISTORY_BYTES, |t| {
        usize::try_from(t).unwrap_or(usize::MAX).min(1 << 20)
    })
}

/// A transcript message as plain (role, text), for the upstream.
fn plain(m: &Value) -> Option<(&'static str, String)> {
    let role = match m["role"].as_str()? {
        "user" => "user",
        "assistant" => "assistant",
        _ => return None,
    };
    let text = match &m["content"] {
        Value::String(t) => t.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => return None,
    };
    (!text.is_empty()).then_some((role, text))
}

/// Commits the reply (or records the failure), sends the last events and
/// builds the ending its waiters get.
fn conclude(
    shared: &Shared,
    s: &Settings,
    run: &Run,
    em: &mut Emitter,
    facts: &Facts,
    end: End,
    started: u64,
) -> Ending {
    let store = shared.sessions();
    // A reply that cannot be committed is not a reply: the run fails.
    let end = match end {
        End::Ok { .. } if facts.transcript.is_none() => End::Failed("no transcript".into()),
        End::Ok {
            usage,
            stop,
            cli_session,
            response_id,
        } => match commit_reply(s, run, em.text(), facts, usage, &stop, response_id) {
            Ok(()) => {
                // The reply is durable: an HTTP caller may have it now,
                // without waiting for the session index's write below.
                if let Some(t) = &run.job.tap {
                    if let Some(u) = usage {
                        t.usage((u.input, u.output, u.total));
                    }
                    t.end(crate::agent::TapEnd {
                        status: "ok",
                        stop_reason: stop.clone(),
                        error: None,
                    });
                }
                End::Ok {
                    usage,
                    stop,
                    cli_session,
                    response_id: None,
                }
            }
            Err(e) => End::Failed(format!("cannot save the reply: {e}")),
        },
        other => other,
    };
    let ended = now_ms();
    let status = match &end {
        End::Ok { .. } => "done",
        End::Failed(_) => "failed",
        End::Cancelled | End::TimedOut => "killed",
    };
    if facts.user_committed {
        let cli = match (
            &end,
            s.agents
                .resolve(&format!("{}/{}", facts.provider, facts.model)),
        ) {
            (
                End::Ok {
                    cli_session: Some(c),
                    ..
                },
                Ok(r),
            ) => Some((r.provider.to_string(), c.clone())),
            _ => None,
        };
        let usage = match &end {
            End::Ok { usage, .. } => *usage,
            _ => None,
        };
        let _ = store.update(&run.agent, &run.session, |e| {
            e.updated_at = ended;
            e.extra.insert("status".into(), json!(status));
            if let Some((backend, id)) = cli {
                e.cli_session_ids.insert(backend, id);
            }
            if let Some(u) = usage {
                e.input_tokens = Some(u.input);
                e.output_tokens = Some(u.output);
                e.total_tokens = Some(u.total);
            }
        });
    }
    let summary = json!({"runId": &*run.id, "startedAt": started, "endedAt": ended});
    let ending = match end {
        End::Ok { usage, stop, .. } => {
            if let Some(u) = usage {
                em.agent(
                    "usage",
                    json!({"inputTokens": u.input, "outputTokens": u.output, "totalTokens": u.total}),
                    Delivery::Required,
                );
            }
            let text = em.text().to_string();
            em.agent(
                "lifecycle",
                json!({"phase": "end", "startedAt": started, "endedAt": ended, "aborted": false,
                       "stopReason": stop, "executionSettled": true,
                       "terminalReply": {"disposition": "visible", "text": text}}),
                Delivery::Required,
            );
            let mut extra = json!({"stopReason": stop});
            if !text.is_empty() {
                extra["message"] = message(&text);
            }
            em.chat("final", extra, Delivery::Required);
            let meta = json!({"durationMs": ended.saturating_sub(started), "aborted": false,
                "agentMeta": {"sessionId": facts.session_id, "provider": facts.provider,
                              "model": facts.model, "usage": usage.map(usage_json)}});
            Ending {
                payload: json!({"runId": &*run.id, "status": "ok", "summary": "completed",
                    "result": {"payloads": [{"text": text, "mediaUrl": null}], "meta": meta}}),
                error: None,
                wait: with(summary, json!({"status": "ok", "stopReason": stop})),
            }
        }
        End::Cancelled => {
            em.chat("aborted", json!({"stopReason": "rpc"}), Delivery::Required);
            em.agent(
                "lifecycle",
                json!({"phase": "end", "status": "cancelled", "aborted": true, "stopReason": "rpc",
                       "startedAt": started, "endedAt": ended}),
                Delivery::Required,
            );
            Ending {
                payload: json!({"runId": &*run.id, "status": "timeout", "summary": "aborted",
                                "stopReason": "rpc"}),
                error: None,
                wait: with(summary, json!({"status": "timeout", "stopReason": "rpc"})),
            }
        }
        End::TimedOut => {
            let msg = "the run timed out";
            em.chat(
                "error",
                json!({"errorMessage": msg, "errorKind": "timeout"}),
                Delivery::Required,
            );
            em.agent(
                "lifecycle",
                json!({"phase": "end", "status": "timeout", "aborted": true, "stopReason": "timeout",
                       "startedAt": started, "endedAt": ended}),
                Delivery::Required,
            );
            Ending {
                payload: json!({"runId": &*run.id, "status": "timeout", "summary": "aborted",
                                "stopReason": "timeout", "timeoutPhase": "run"}),
                error: None,
                wait: with(
                    summary,
                    json!({"status": "timeout", "stopReason": "timeout"}),
                ),
            }
        }
        End::Failed(m) => {
            let m = if m.is_empty() {
                "run failed".to_string()
            } else {
                m
            };
            em.agent(
                "lifecycle",
                json!({"phase": "error", "startedAt": started, "endedAt": ended, "error": m,
                       "executionSettled": true}),
                Delivery::Required,
            );
            em.chat(
                "error",
                json!({"errorMessage": m, "errorKind": "unknown"}),
                Delivery::Required,
            );
            Ending {
                payload: json!({"runId": &*run.id, "status": "error", "summary": m}),
                error: Some(ErrorShape::unavailable(m.clone())),
                wait: with(summary, json!({"status": "error", "error": m})),
            }
        }
    };
    if facts.user_committed {
        rows::changed(shared, s, &run.agent, &run.session, "agent.run.ended");
    }
    ending
}

fn usage_json(u: Usage) -> Value {
    json!({"input": u.input, "output": u.output, "totalTokens": u.total, "cacheRead": 0, "cacheWrite": 0})
}

/// `a` with the keys of `b` added.
fn with(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// Appends the assistant's message to the transcript (fsynced).
fn commit_reply(
    s: &Settings,
    run: &Run,
    text: &str,
    facts: &Facts,
    usage: Option<Usage>,
    stop: &str,
    response_id: Option<String>,
) -> std::io::Result<()> {
    let Some(path) = &facts.transcript else {
        return Ok(());
    };
    let parent = transcript::last_id(path).ok().flatten();
    let mut m = json!({"role": "assistant", "content": [{"type": "text", "text": text}],
        "api": "openai-completions", "provider": facts.provider, "model": facts.model,
        "usage": usage.map_or_else(|| usage_json(Usage::default()), usage_json),
        "stopReason": stop, "timestamp": now_ms(), "__openclaw": {"runId": &*run.id}});
    if let Some(id) = response_id {
        m["responseId"] = json!(id);
    }
    let (_, line) = transcript::message_line(parent.as_deref(), m);
    transcript::append(path, &[line], s.agents.max_transcript_bytes)
}
