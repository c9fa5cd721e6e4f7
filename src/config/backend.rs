//! The descriptor of a CLI backend (`agents.defaults.cliBackends.<id>`):
//! which command runs one agent turn, how the prompt, model, system prompt
//! and the CLI's own session id reach it, and how its output is read.
//!
//! Pure data with serde, in the reference's shape and spelling, plus
//! [`CliBackend::check`] for the rules serde cannot express. It never runs
//! anything: `agent::command` runs a turn from it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The only placeholder clawgate fills in an argument.
pub const SESSION_ID: &str = "{sessionId}";

/// Where the CLI's session id is looked for when the descriptor names no
/// fields (the reference's list).
pub const DEFAULT_SESSION_ID_FIELDS: &[&str] = &[
    "session_id",
    "sessionId",
    "conversation_id",
    "conversationId",
];

/// How long a CLI may stay silent (no byte on stdout or stderr) before the
/// turn is ended, when the descriptor does not say.
pub const DEFAULT_NO_OUTPUT_TIMEOUT: Duration = Duration::from_secs(300);

/// How the CLI's stdout is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// All of stdout, trimmed, is the reply.
    Text,
    /// One JSON document (one record per line as a fallback).
    #[default]
    Json,
    /// One JSON record per line.
    Jsonl,
}

/// How the prompt reaches the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// As the last argument (stdin when longer than `maxPromptArgChars`).
    #[default]
    Arg,
    Stdin,
}

/// When the CLI is given a session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// A fresh id on the first turn, the CLI's own id after that.
    #[default]
    Always,
    /// Only the id the CLI reported on an earlier turn; none on the first.
    Existing,
    /// Never: every turn starts the CLI afresh.
    None,
}

/// On which turns the system prompt is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptWhen {
    /// Only when the CLI starts a session (it keeps it after that).
    #[default]
    First,
    Always,
    Never,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CliBackend {
    /// The executable; an absolute path keeps it independent of `PATH`.
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// The argv of a turn that resumes the CLI's session, instead of
    /// `args` + `sessionArgs`; `{sessionId}` is the CLI's id.
    pub resume_args: Option<Vec<String>>,
    #[serde(default)]
    pub output: OutputKind,
    /// How a resumed turn's stdout is read; `output` when unset.
    pub resume_output: Option<OutputKind>,
    #[serde(default)]
    pub input: InputKind,
    /// A prompt longer than this (in characters) goes on stdin, keeping
    /// the argv under the kernel's limit.
    pub max_prompt_arg_chars: Option<usize>,
    /// The flag that takes the model id, e.g. `--model`.
    pub model_arg: Option<String>,
    /// Model ids as clawgate names them, mapped to the CLI's names.
    #[serde(default)]
    pub model_aliases: BTreeMap<String, String>,
    /// Appended on a session's first turn, e.g. `["--session-id",
    /// "{sessionId}"]`.
    #[serde(default)]
    pub session_args: Vec<String>,
    #[serde(default)]
    pub session_mode: SessionMode,
    /// Keys of the output records holding the CLI's session id; the
    /// reference's four when unset.
    pub session_id_fields: Option<Vec<String>>,
    /// The flag that takes the system prompt's text.
    pub system_prompt_arg: Option<String>,
    /// The flag that takes a file holding the system prompt; preferred
    /// over `systemPromptArg` when both are set, as a file keeps a long
    /// prompt out of the argv.
    pub system_prompt_file_arg: Option<String>,
    #[serde(default)]
    pub system_prompt_when: PromptWhen,
    /// Variables set for the CLI, over the gateway's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables of the gateway's environment the CLI must not see.
    #[serde(default)]
    pub clear_env: Vec<String>,
    /// One run at a time on this backend.
    #[serde(default)]
    pub serialize: bool,
    /// Silence (no byte on stdout or stderr) that ends a turn; 0 turns the
    /// watchdog off, unset means [`DEFAULT_NO_OUTPUT_TIMEOUT`].
    pub no_output_timeout_seconds: Option<u64>,
}

impl CliBackend {
    /// The rules serde cannot express. The message names the key, in the
    /// descriptor's spelling, for the caller to prefix with the backend's
    /// path in the file.
    pub fn check(&self) -> Result<(), String> {
        if self.command.trim().is_empty() {
            return Err("command: must not be empty".into());
        }
        no_nul("command", &self.command)?;
        plain("args", &self.args)?;
        if let Some(resume) = &self.resume_args {
            with_session_id("resumeArgs", resume)?;
        }
        with_session_id("sessionArgs", &self.session_args)?;
        for (key, flag) in [
            ("modelArg", &self.model_arg),
            ("systemPromptArg", &self.system_prompt_arg),
            ("systemPromptFileArg", &self.system_prompt_file_arg),
        ] {
            if let Some(flag) = flag {
                if flag.is_empty() {
                    return Err(format!("{key}: must not be empty"));
                }
                no_nul(key, flag)?;
            }
        }
        for (from, to) in &self.model_aliases {
            if to.is_empty() {
                return Err(format!("modelAliases.{from}: must not be empty"));
            }
            no_nul("modelAliases", to)?;
        }
        if let Some(fields) = &self.session_id_fields {
            if fields.is_empty() || fields.iter().any(|f| f.is_empty()) {
                return Err("sessionIdFields: must list at least one key, none empty".into());
            }
        }
        for name in self.env.keys().chain(&self.clear_env) {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(format!(
                    "'{name}': not an environment variable name (env, clearEnv)"
                ));
            }
        }
        for (name, value) in &self.env {
            no_nul(&format!("env.{name}"), value)?;
        }
        if self.max_prompt_arg_chars == Some(0) {
            return Err("maxPromptArgChars: must be at least 1 (or set input to stdin)".into());
        }
        Ok(())
    }

    /// The CLI's name for `model`.
    pub fn model_name<'a>(&'a self, model: &'a str) -> &'a str {
        self.model_aliases.get(model).map_or(model, String::as_str)
    }

    /// Where the CLI's session id is looked for.
    pub fn id_fields(&self) -> Vec<&str> {
        match &self.session_id_fields {
            Some(fields) => fields.iter().map(String::as_str).collect(),
            None => DEFAULT_SESSION_ID_FIELDS.to_vec(),
        }
    }

    /// The no-output watchdog; None when turned off.
    pub fn no_output_timeout(&self) -> Option<Duration> {
        match self.no_output_timeout_seconds {
            None => Some(DEFAULT_NO_OUTPUT_TIMEOUT),
            Some(0) => None,
            Some(s) => Some(Duration::from_secs(s)),
        }
    }
}

/// A NUL cannot be passed to exec; better refused at load than at the
/// first turn.
fn no_nul(key: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("{key}: must not contain a NUL character"));
    }
    Ok(())
}

/// The `{name}` placeholders in `arg`: braces around a plain identifier,
/// so JSON in an argument (`{"a":1}`) is not mistaken for one, and not
/// after a `$`, which is the shell's (`sh -c '... ${HOME}'`).
fn placeholders(arg: &str) -> impl Iterator<Item = &str> {
    arg.match_indices('{').filter_map(move |(i, _)| {
        if arg[..i].ends_with('$') {
            return None;
        }
        let rest = &arg[i + 1..];
        let end = rest.find('}')?;
        let name = &rest[..end];
        let ident = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        ident.then(|| &arg[i..i + end + 2])
    })
}

/// Arguments passed as written: a placeholder here would reach the CLI
/// unfilled.
fn plain(key: &str, args: &[String]) -> Result<(), String> {
    for arg in args {
        no_nul(key, arg)?;
        if let Some(p) = placeholders(arg).next() {
            return Err(format!(
                "{key}: '{p}' is not filled in here; {SESSION_ID} belongs in sessionArgs or resumeArgs"
            ));
        }
    }
    Ok(())
}

/// Arguments where `{sessionId}`, and only it, is filled.
fn with_session_id(key: &str, args: &[String]) -> Result<(), String> {
    for arg in args {
        no_nul(key, arg)?;
        if let Some(p) = placeholders(arg).find(|p| *p != SESSION_ID) {
            return Err(format!(
                "{key}: unknown placeholder '{p}' (only {SESSION_ID} is filled)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<CliBackend, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_bare_command_takes_the_reference_defaults() {
        let b = parse(r#"{"command":"/usr/bin/claude"}"#).expect("parses");
        assert_eq!(b.command, "/usr/bin/claude");
        assert!(b.args.is_empty());
        assert_eq!(b.resume_args, None);
        assert_eq!(b.output, OutputKind::Json);
        assert_eq!(b.resume_output, None);
        assert_eq!(b.input, InputKind::Arg);
        assert_eq!(b.session_mode, SessionMode::Always);
        assert_eq!(b.system_prompt_when, PromptWhen::First);
        assert!(!b.serialize);
        assert_eq!(b.id_fields(), DEFAULT_SESSION_ID_FIELDS);
        assert_eq!(b.no_output_timeout(), Some(DEFAULT_NO_OUTPUT_TIMEOUT));
        assert_eq!(b.check(), Ok(()));
    }

    #[test]
    fn every_key_parses_in_the_reference_spelling() {
        let b = parse(
            r#"{
              "command": "claude",
              "args": ["-p", "--output-format", "json"],
              "resumeArgs": ["-p", "--resume", "{sessionId}"],
              "output": "jsonl",
              "resumeOutput": "text",
              "input": "stdin",
              "maxPromptArgChars": 4000,
              "modelArg": "--model",
              "modelAliases": {"opus": "claude-opus-4"},
              "sessionArgs": ["--session-id", "{sessionId}"],
              "sessionMode": "existing",
              "sessionIdFields": ["thread_id"],
              "systemPromptArg": "--append-system-prompt",
              "systemPromptFileArg": "--append-system-prompt-file",
              "systemPromptWhen": "always",
              "env": {"TERM": "xterm"},
              "clearEnv": ["ANTHROPIC_API_KEY"],
              "serialize": true,
              "noOutputTimeoutSeconds": 0
            }"#,
        )
        .expect("parses");
        assert_eq!(b.output, OutputKind::Jsonl);
        assert_eq!(b.resume_output, Some(OutputKind::Text));
        assert_eq!(b.input, InputKind::Stdin);
        assert_eq!(b.max_prompt_arg_chars, Some(4000));
        assert_eq!(b.model_name("opus"), "claude-opus-4");
        assert_eq!(b.model_name("sonnet"), "sonnet");
        assert_eq!(b.session_mode, SessionMode::Existing);
        assert_eq!(b.id_fields(), ["thread_id"]);
        assert_eq!(b.system_prompt_when, PromptWhen::Always);
        assert_eq!(b.env.get("TERM").map(String::as_str), Some("xterm"));
        assert_eq!(b.clear_env, ["ANTHROPIC_API_KEY"]);
        assert!(b.serialize);
        assert_eq!(b.no_output_timeout(), None);
        assert_eq!(b.check(), Ok(()));
    }

    #[test]
    fn unknown_keys_words_and_a_missing_command_are_refused() {
        let unknown = parse(r#"{"command":"x","sessionArg":"--id"}"#).unwrap_err();
        assert!(unknown.contains("unknown field `sessionArg`"), "{unknown}");
        let word = parse(r#"{"command":"x","output":"xml"}"#).unwrap_err();
        assert!(word.contains("unknown variant `xml`"), "{word}");
        let missing = parse(r#"{"args":[]}"#).unwrap_err();
        assert!(missing.contains("missing field `command`"), "{missing}");
        assert!(parse(r#"{"command":"x","sessionMode":"none"}"#).is_ok());
    }

    #[test]
    fn check_names_the_key_that_is_wrong() {
        let cases = [
            (r#"{"command":"  "}"#, "command: must not be empty"),
            (
                r#"{"command":"x","sessionArgs":["--id","{session}"]}"#,
                "sessionArgs: unknown placeholder '{session}' (only {sessionId} is filled)",
            ),
            (
                r#"{"command":"x","resumeArgs":["--resume","{sessionID}"]}"#,
                "resumeArgs: unknown placeholder '{sessionID}' (only {sessionId} is filled)",
            ),
            (
                r#"{"command":"x","args":["--id","{sessionId}"]}"#,
                "args: '{sessionId}' is not filled in here; {sessionId} belongs in sessionArgs or resumeArgs",
            ),
            (r#"{"command":"x","modelArg":""}"#, "modelArg: must not be empty"),
            (
                r#"{"command":"x","sessionIdFields":[]}"#,
                "sessionIdFields: must list at least one key, none empty",
            ),
            (
                r#"{"command":"x","env":{"A=B":"1"}}"#,
                "'A=B': not an environment variable name (env, clearEnv)",
            ),
            (
                r#"{"command":"x","clearEnv":[""]}"#,
                "'': not an environment variable name (env, clearEnv)",
            ),
            (
                r#"{"command":"x","maxPromptArgChars":0}"#,
                "maxPromptArgChars: must be at least 1 (or set input to stdin)",
            ),
            (
                r#"{"command":"x","args":["a\u0000b"]}"#,
                "args: must not contain a NUL character",
            ),
        ];
        for (json, want) in cases {
            let b = parse(json).expect(json);
            assert_eq!(b.check(), Err(want.to_string()), "{json}");
        }
    }

    #[test]
    fn json_in_an_argument_is_not_a_placeholder() {
        let b =
            parse(r#"{"command":"x","args":["--settings","{\"a\":{\"b\":1}}","{}","${HOME}"]}"#)
                .expect("parses");
        assert_eq!(b.check(), Ok(()));
        assert_eq!(
            placeholders("--x={sessionId}/{other}").collect::<Vec<_>>(),
            ["{sessionId}", "{other}"]
        );
    }
}
