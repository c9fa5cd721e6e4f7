//! One turn through the backend a model reference resolves to: the
//! history and the new message go in, pieces of the reply come out through
//! the emitter, and every way a turn can end maps to one [`End`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::agent::{command, openai, Cancel};
use crate::config::agents::{AgentSettings, Backend};
use crate::runs::events::Emitter;

/// Tokens a turn used, as the upstream reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub total: u64,
}

/// How a turn ended.
#[derive(Debug)]
pub enum End {
    Ok {
        usage: Option<Usage>,
        stop: String,
        /// The CLI backend's own session id, kept for its next turn.
        cli_session: Option<String>,
        response_id: Option<String>,
    },
    Failed(String),
    Cancelled,
    TimedOut,
}

/// What one turn is given.
pub struct Input<'a> {
    pub settings: &'a AgentSettings,
    /// `<provider>/<model>`.
    pub model_ref: String,
    pub system_prompt: String,
    /// Earlier turns, oldest first: (`user` | `assistant`, text).
    pub history: Vec<(&'static str, String)>,
    pub message: &'a str,
    pub cli_session: Option<String>,
    pub deadline: Option<Instant>,
    pub workspace: PathBuf,
}

/// Runs the turn; pieces of the reply go to `em` as they arrive.
pub fn turn(input: &Input, cancel: &Cancel, em: &mut Emitter) -> End {
    let remaining = input
        .deadline
        .map(|d| d.saturating_duration_since(Instant::now()));
    if remaining.is_some_and(|r| r.is_zero()) {
        return End::TimedOut;
    }
    let resolved = match input.settings.resolve(&input.model_ref) {
        Ok(r) => r,
        Err(m) => return End::Failed(m),
    };
    match resolved.backend {
        Backend::Http(p) => {
            let own = Duration::from_secs(p.timeout_seconds);
            let provider = openai::Provider {
                base_url: p.base_url.clone(),
                api_key: p.api_key.clone(),
                headers: p.headers.clone(),
                timeout: remaining.map_or(own, |r| r.min(own)),
                trust: None,
            };
            let mut messages = Vec::with_capacity(input.history.len() + 2);
            messages.push(openai::Message {
                role: "system",
                text: input.system_prompt.clone(),
            });
            for (role, text) in &input.history {
                messages.push(openai::Message {
                    role,
                    text: text.clone(),
                });
            }
            messages.push(openai::Message {
                role: "user",
                text: input.message.to_string(),
            });
            let model = resolved.model;
            let max_tokens = p.max_tokens.get(model).copied();
            let (mut usage, mut stop, mut response_id) = (None, None, None);
            let r = openai::complete(
                &provider,
                model,
                &messages,
                max_tokens,
                cancel,
                &mut |piece| match piece {
                    openai::Piece::Text(t) => em.piece(&t),
                    openai::Piece::Usage {
                        input,
                        output,
                        total,
                    } => {
                        usage = Some(Usage {
                            input,
                            output,
                            total,
                        })
                    }
                    openai::Piece::Finish(f) => stop = Some(f),
                    openai::Piece::ResponseId(id) => response_id = Some(id),
                },
            );
            match r {
                Ok(()) => End::Ok {
                    usage,
                    stop: stop.unwrap_or_else(|| "stop".to_string()),
                    cli_session: None,
                    response_id,
                },
                Err(_) if cancel.is_cancelled() => End::Cancelled,
                Err(_) if input.deadline.is_some_and(|d| Instant::now() >= d) => End::TimedOut,
                Err(openai::Failure::Cancelled) => End::Cancelled,
                Err(openai::Failure::Error(m)) => End::Failed(m),
            }
        }
        Backend::Cli(id, b) => {
            // The reference's default workspace; made on first use.
            if let Err(e) = std::fs::create_dir_all(&input.workspace) {
                return End::Failed(format!(
                    "cannot create the workspace '{}': {e}",
                    input.workspace.display()
                ));
            }
            let turn = command::Turn {
                backend_id: id,
                model: resolved.model,
                prompt: input.message,
                system_prompt: &input.system_prompt,
                cli_session_id: input.cli_session.as_deref(),
                cwd: &input.workspace,
                timeout: remaining,
            };
            match command::run(b, &turn, cancel) {
                Ok(reply) => {
                    em.piece(&reply.text);
                    End::Ok {
                        usage: reply.usage.map(|(i, o)| Usage {
                            input: i,
                            output: o,
                            total: i + o,
                        }),
                        stop: "stop".to_string(),
                        cli_session: reply.session_id,
                        response_id: None,
                    }
                }
                Err(command::Failure::Cancelled) => End::Cancelled,
                Err(command::Failure::TimedOut) => End::TimedOut,
                Err(command::Failure::Error(m)) => End::Failed(m),
            }
        }
    }
}
