//! systemd: the unit files from `contrib/systemd/`, `systemctl` calls for
//! a system or a user unit, lingering, `systemctl show` and the journal.
//!
//! The units are embedded as written in `contrib/` (the one source of
//! truth, verified there by `systemd-analyze`); only the binary path in
//! `ExecStart=` is replaced. Port and token never go into a unit: the port
//! lives in the config and the token in `gateway.env`, which the units
//! read with `EnvironmentFile=-`.

use std::collections::BTreeMap;

use super::exec::{self, Ran};
use super::Host;
use crate::cli::Scope;
use crate::error::Error;

/// What `systemctl` calls it; `clawgate` and `clawgate.service` are the
/// same unit to systemd, and the short form is what people type.
pub const NAME: &str = "clawgate";

const SYSTEM_UNIT: &str = include_str!("../../contrib/systemd/clawgate.service");
const USER_UNIT: &str = include_str!("../../contrib/systemd/clawgate-user.service");
/// The path the contrib units are written with.
const CONTRIB_BINARY: &str = "/usr/local/bin/clawgate";

/// The properties `status` reads, in the order it shows them.
pub const SHOW_PROPERTIES: &str =
    "LoadState,UnitFileState,ActiveState,SubState,MainPID,NRestarts,Result";

/// The unit for `scope` with `ExecStart=` running `binary`.
pub fn unit_text(scope: Scope, binary: &str) -> String {
    let template = match scope {
        Scope::System => SYSTEM_UNIT,
        Scope::User => USER_UNIT,
    };
    let from = format!("ExecStart={CONTRIB_BINARY} ");
    let to = format!("ExecStart={binary} ");
    template.replacen(&from, &to, 1)
}

/// `systemctl [--user] ARGS…`.
pub fn systemctl(scope: Scope, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["systemctl".to_string()];
    if scope == Scope::User {
        argv.push("--user".to_string());
    }
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// Runs one `systemctl` call; a missing `systemctl` is an error that says
/// what it means.
pub fn run(scope: Scope, args: &[&str], limit: std::time::Duration) -> Result<Ran, Error> {
    let argv = systemctl(scope, args);
    exec::run(&argv, limit).map_err(|e| missing_tool("systemctl", e))
}

fn missing_tool(tool: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::runtime(format!(
            "'{tool}' not found on PATH: a systemd service needs systemd (on OpenWrt, use --init procd)"
        ))
    } else {
        Error::io(format!("running '{tool}'"), e)
    }
}

/// A failed `systemctl --user` call usually means there is no user
/// instance to talk to (sudo, su, a cron job); say how to get one.
pub fn failure(scope: Scope, ran: &Ran) -> Error {
    let mut msg = ran.failure();
    let no_bus =
        ran.stderr.contains("Failed to connect to bus") || ran.stderr.contains("XDG_RUNTIME_DIR");
    if scope == Scope::User && no_bus {
        msg.push_str(
            " (no systemd user instance is reachable: run this in a login session of the user, not through sudo or su)",
        );
    }
    Error::runtime(msg)
}

/// `Key=Value` lines of `systemctl show`; empty values are kept, as they
/// mean something (an empty UnitFileState is a unit without a file).
pub fn parse_show(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Whether lingering is on for `user`: `loginctl` knows; without it (or
/// when it cannot tell), the marker file logind keeps does.
pub fn linger(host: &Host, user: &str) -> bool {
    let argv: Vec<String> = ["loginctl", "show-user", user, "--property=Linger"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Ok(ran) = exec::run(&argv, exec::QUICK) {
        if ran.ok() {
            match parse_show(&ran.stdout).get("Linger").map(String::as_str) {
                Some("yes") => return true,
                Some("no") => return false,
                _ => {}
            }
        }
    }
    let marker = host.path("/var/lib/systemd/linger").join(user);
    marker.exists()
}

/// The warning for a user service without lingering, naming the command
/// that fixes it.
pub fn linger_warning(user: &str) -> String {
    format!(
        "lingering is off for user '{user}': the user service stops when {user}'s last session ends and does not start at boot; to keep it running, run 'loginctl enable-linger {user}'"
    )
}

/// The last 50 lines the unit wrote to the journal, or `None` when the
/// journal cannot be read (no journalctl, no permission).
pub fn journal_tail(scope: Scope) -> Option<(String, String)> {
    let mut argv = vec!["journalctl".to_string()];
    if scope == Scope::User {
        argv.push("--user".to_string());
    }
    for a in ["-u", NAME, "-n", "50", "-o", "cat", "--no-pager"] {
        argv.push(a.to_string());
    }
    let ran = exec::run(&argv, exec::QUICK).ok()?;
    ran.ok().then(|| (ran.stdout.clone(), ran.command_line()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_get_the_binary_path_and_nothing_else_changes() {
        for (scope, template) in [(Scope::System, SYSTEM_UNIT), (Scope::User, USER_UNIT)] {
            assert_eq!(
                template
                    .matches(&format!("ExecStart={CONTRIB_BINARY} "))
                    .count(),
                1
            );
            let unit = unit_text(scope, "/opt/cg/bin/clawgate");
            assert!(!unit.contains(CONTRIB_BINARY), "{unit}");
            let changed: Vec<(&str, &str)> = template
                .lines()
                .zip(unit.lines())
                .filter(|(a, b)| a != b)
                .collect();
            assert_eq!(changed.len(), 1, "{changed:?}");
            assert!(changed[0]
                .1
                .starts_with("ExecStart=/opt/cg/bin/clawgate run"));
            assert_eq!(template.lines().count(), unit.lines().count());
        }
        let system = unit_text(Scope::System, "/b");
        assert!(system.contains(
            "ExecStart=/b run --config /etc/clawgate/clawgate.json --state-dir /var/lib/clawgate\n"
        ));
        assert!(system.contains("\nEnvironmentFile=-/etc/clawgate/gateway.env\n"));
        let user = unit_text(Scope::User, "/b");
        assert!(user.contains("\nEnvironmentFile=-%h/.clawgate/gateway.env\n"));
    }

    #[test]
    fn systemctl_calls_for_user_units_carry_user() {
        assert_eq!(
            systemctl(Scope::User, &["start", NAME]),
            ["systemctl", "--user", "start", "clawgate"]
        );
        assert_eq!(
            systemctl(Scope::System, &["daemon-reload"]),
            ["systemctl", "daemon-reload"]
        );
    }

    #[test]
    fn show_output_is_parsed_into_properties() {
        let text = "LoadState=loaded\nUnitFileState=\nActiveState=active\n\
                    SubState=running\nMainPID=4242\nNRestarts=3\nResult=success\nnoise\n";
        let p = parse_show(text);
        assert_eq!(p["LoadState"], "loaded");
        assert_eq!(p["UnitFileState"], "");
        assert_eq!(p["MainPID"], "4242");
        assert_eq!(p["NRestarts"], "3");
        assert_eq!(p.len(), 7);
    }

    #[test]
    fn the_linger_warning_names_the_fix() {
        let w = linger_warning("pi");
        assert!(w.contains("'loginctl enable-linger pi'"), "{w}");
    }
}
