//! What a service command did, for people and for scripts.
//!
//! Every command collects the files it wrote, kept or removed and every
//! call it made to the service manager, in order, and reports them whether
//! it succeeded or not: after a failure the admin sees exactly how far it
//! got. The JSON shape is stable; the text is for reading.

use serde_json::{json, Value};

use super::exec::Ran;
use super::files::FileState;
use crate::cli::{Init, Scope, ServiceAction};
use crate::error::Error;
use crate::output::Output;

pub struct FileEntry {
    pub path: String,
    pub role: &'static str,
    pub state: FileState,
}

pub struct Report {
    pub action: ServiceAction,
    pub init: Init,
    pub scope: Scope,
    /// The service's name for its manager: `clawgate.service` or
    /// `/etc/init.d/clawgate`.
    pub name: String,
    /// One line saying how it ended, set by the command.
    pub summary: String,
    /// Whether anything on the host changed (a file, or the service's
    /// state through a call that changes it).
    pub changed: bool,
    pub files: Vec<FileEntry>,
    pub commands: Vec<Ran>,
    pub warnings: Vec<String>,
    /// Extra lines after the list, such as what to run next.
    pub hints: Vec<String>,
}

impl Report {
    pub fn new(action: ServiceAction, init: Init, scope: Scope, name: String) -> Report {
        Report {
            action,
            init,
            scope,
            name,
            summary: String::new(),
            changed: false,
            files: Vec::new(),
            commands: Vec::new(),
            warnings: Vec::new(),
            hints: Vec::new(),
        }
    }

    pub fn file(&mut self, path: &std::path::Path, role: &'static str, state: FileState) {
        if matches!(
            state,
            FileState::Created | FileState::Replaced | FileState::Removed
        ) {
            self.changed = true;
        }
        self.files.push(FileEntry {
            path: path.display().to_string(),
            role,
            state,
        });
    }

    /// The kind of service, as the summary names it.
    pub fn kind(&self) -> String {
        match self.init {
            Init::Systemd => format!("systemd {} service", self.scope.as_str()),
            Init::Procd => "procd service".to_string(),
        }
    }

    fn to_json(&self, error: Option<&Error>) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| json!({"path": f.path, "role": f.role, "state": f.state.as_str()}))
            .collect();
        let commands: Vec<Value> = self
            .commands
            .iter()
            .map(|r| {
                let mut v = json!({
                    "argv": r.argv, "ok": r.ok(), "exitCode": r.code,
                    "timedOut": r.timed_out, "ms": r.ms,
                });
                if !r.ok() {
                    v["error"] = json!(r.failure());
                }
                v
            })
            .collect();
        json!({
            "ok": error.is_none(),
            "action": self.action.as_str(),
            "init": self.init.as_str(),
            "scope": self.scope.as_str(),
            "service": self.name,
            "summary": self.summary,
            "changed": self.changed,
            "files": files,
            "commands": commands,
            "warnings": self.warnings,
            "error": error.map(|e| json!({"message": e.to_string(), "exitCode": e.exit_code()})),
        })
    }

    fn to_text(&self) -> String {
        let mut t = self.summary.clone();
        for f in &self.files {
            t += &format!("\n  {:<10} {} ({})", f.state.as_str(), f.path, f.role);
        }
        for r in &self.commands {
            let how = if r.ok() {
                String::new()
            } else if r.timed_out {
                "  (timed out)".to_string()
            } else {
                match r.code {
                    Some(c) => format!("  (failed, exit status {c})"),
                    None => "  (failed)".to_string(),
                }
            };
            t += &format!("\n  {:<10} {}{how}", "ran", r.command_line());
        }
        for h in &self.hints {
            t += &format!("\n{h}");
        }
        t
    }

    /// The command's output: the report, with warnings (and a failure) on
    /// stderr. A failure before anything was done is a plain error, as for
    /// any other command; after that, the report still shows how far it
    /// got.
    pub fn finish(self, result: Result<(), Error>, json_out: bool) -> Result<Output, Error> {
        let mut notes: Vec<String> = self
            .warnings
            .iter()
            .map(|w| format!("warning: {w}"))
            .collect();
        match result {
            Ok(()) => Ok(Output {
                text: if json_out {
                    pretty(&self.to_json(None))
                } else {
                    self.to_text()
                },
                code: 0,
                notes,
            }),
            Err(e) if json_out => {
                notes.push(e.to_string());
                Ok(Output {
                    text: pretty(&self.to_json(Some(&e))),
                    code: e.exit_code(),
                    notes,
                })
            }
            Err(e) if self.files.is_empty() && self.commands.is_empty() => {
                if notes.is_empty() {
                    return Err(e);
                }
                notes.push(e.to_string());
                Ok(Output {
                    text: String::new(),
                    code: e.exit_code(),
                    notes,
                })
            }
            Err(e) => {
                notes.push(e.to_string());
                Ok(Output {
                    text: self.to_text(),
                    code: e.exit_code(),
                    notes,
                })
            }
        }
    }
}

/// A command that failed before it knew which service to act on (no
/// service manager, no HOME): with `--json`, the report's shape with
/// nothing in it, so scripts parse one shape either way.
pub fn early_failure(action: ServiceAction, e: Error, json_out: bool) -> Result<Output, Error> {
    if !json_out {
        return Err(e);
    }
    let v = json!({
        "ok": false, "action": action.as_str(), "init": null, "scope": null,
        "service": null, "summary": "", "changed": false, "files": [],
        "commands": [], "warnings": [],
        "error": {"message": e.to_string(), "exitCode": e.exit_code()},
    });
    Ok(Output {
        text: pretty(&v),
        code: e.exit_code(),
        notes: vec![e.to_string()],
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}
