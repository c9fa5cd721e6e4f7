//! Which operator scopes a node command takes, to invoke it and to approve
//! a node that declares it. One place, read by the gateway's checks and by
//! the `clawgate nodes` commands that ask for least privilege.
//!
//! The lists follow the stock package (2026.9.6): only an admin may invoke
//! the browser proxy, directory listing and terminal upload; `system.run`
//! and `system.run.prepare` are admin-only here too, since clawgate does
//! not copy the reference's exec approvals. `system.which` only finds
//! programs, and the stock `openclaw nodes invoke` asks for it with
//! `operator.write`. Approving any command that runs programs or changes
//! how they are approved takes admin.

use super::scopes::{SCOPE_ADMIN, SCOPE_PAIRING, SCOPE_WRITE};

/// Commands only an admin may invoke.
const ADMIN_INVOKE: &[&str] = &[
    "browser.proxy",
    "browser.proxy.upload.v1",
    "fs.listDir",
    "terminal.upload",
    "system.run",
    "system.run.prepare",
];

/// Commands whose approval takes admin besides those: they run programs
/// or change the node's own approvals.
const ADMIN_APPROVE: &[&str] = &[
    "system.which",
    "system.execApprovals.get",
    "system.execApprovals.set",
];

/// The scope `node.invoke` of `command` takes.
pub fn invoke_scope(command: &str) -> &'static str {
    if ADMIN_INVOKE.contains(&command) {
        SCOPE_ADMIN
    } else {
        SCOPE_WRITE
    }
}

/// The scopes approving a node that declares `commands` takes: pairing
/// alone for none, plus write for ordinary ones, or plus admin (instead
/// of write) when any takes admin.
pub fn approve_scopes<S: AsRef<str>>(commands: &[S]) -> Vec<&'static str> {
    let admin = commands.iter().any(|c| {
        let c = c.as_ref();
        ADMIN_INVOKE.contains(&c) || ADMIN_APPROVE.contains(&c)
    });
    match (admin, commands.is_empty()) {
        (true, _) => vec![SCOPE_PAIRING, SCOPE_ADMIN],
        (false, false) => vec![SCOPE_PAIRING, SCOPE_WRITE],
        (false, true) => vec![SCOPE_PAIRING],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoking_takes_write_or_admin_for_what_runs_programs_or_reaches_files() {
        assert_eq!(invoke_scope("system.which"), SCOPE_WRITE);
        assert_eq!(invoke_scope("camera.snap"), SCOPE_WRITE);
        for c in [
            "system.run",
            "system.run.prepare",
            "fs.listDir",
            "browser.proxy",
        ] {
            assert_eq!(invoke_scope(c), SCOPE_ADMIN, "{c}");
        }
    }

    #[test]
    fn approval_scopes_follow_the_declared_commands() {
        let none: [&str; 0] = [];
        assert_eq!(approve_scopes(&none), [SCOPE_PAIRING]);
        assert_eq!(
            approve_scopes(&["camera.snap"]),
            [SCOPE_PAIRING, SCOPE_WRITE]
        );
        for admin in ["system.which", "system.run", "fs.listDir", "browser.proxy"] {
            assert_eq!(
                approve_scopes(&["camera.snap", admin]),
                [SCOPE_PAIRING, SCOPE_ADMIN],
                "{admin}"
            );
        }
    }
}
