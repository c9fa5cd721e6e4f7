//! OpenWrt's procd: the init script from `contrib/openwrt/`, its actions
//! through `rc.common`, `ubus` for what procd sees and `logread` for the
//! gateway's output.
//!
//! The script is embedded as written in `contrib/` with only `PROG=`
//! replaced by the running binary's path. Its actions are run as
//! `/bin/sh /etc/rc.common /etc/init.d/clawgate ACTION`, which is exactly
//! what the script's `#!/bin/sh /etc/rc.common` line makes the kernel run,
//! spelled out so that under `CLAWGATE_ROOT` the prefixed `rc.common` is
//! the one used.

use std::path::Path;

use serde_json::Value;

use super::exec::{self, Ran};
use super::Host;
use crate::error::Error;

/// Where the script goes, under the root prefix.
use crate::config::PROCD_SCRIPT as SCRIPT;
const RC_COMMON: &str = "/etc/rc.common";
const TEMPLATE: &str = include_str!("../../contrib/openwrt/clawgate.init");
const CONTRIB_PROG: &str = "\nPROG=/usr/bin/clawgate\n";

/// The init script with `PROG=` set to `binary` (a path without anything
/// the shell would interpret; `service` checks that).
pub fn script_text(binary: &str) -> String {
    TEMPLATE.replacen(CONTRIB_PROG, &format!("\nPROG={binary}\n"), 1)
}

/// Runs one action of the installed script (`enable`, `start`, …).
pub fn run(host: &Host, action: &str, limit: std::time::Duration) -> Result<Ran, Error> {
    let rc_common = host.path(RC_COMMON);
    if !rc_common.exists() {
        return Err(Error::runtime(format!(
            "'{}' not found: procd init scripts need OpenWrt's rc.common (on other systems, use --init systemd)",
            rc_common.display()
        )));
    }
    let argv = vec![
        "/bin/sh".to_string(),
        rc_common.display().to_string(),
        host.path(SCRIPT).display().to_string(),
        action.to_string(),
    ];
    exec::run(&argv, limit).map_err(|e| Error::io("running '/bin/sh'", e))
}

/// Whether `enable` linked the script into `/etc/rc.d` (`S95clawgate`).
pub fn enabled(host: &Host) -> bool {
    let Ok(dir) = std::fs::read_dir(host.path("/etc/rc.d")) else {
        return false;
    };
    dir.filter_map(Result::ok).any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with('S') && name.ends_with("clawgate") && name.len() == "S95clawgate".len()
    })
}

/// One procd instance as `ubus call service list` describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Instance {
    pub running: bool,
    pub pid: Option<u64>,
    pub exit_code: Option<i64>,
}

/// What procd knows of the service: `Ok(None)` when it knows nothing
/// (never started, or stopped and forgotten).
pub fn instance() -> Result<Option<Instance>, String> {
    let argv: Vec<String> = ["ubus", "call", "service", "list", r#"{"name":"clawgate"}"#]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ran = exec::run(&argv, exec::QUICK)
        .map_err(|e| format!("cannot run 'ubus': {}", crate::error::io_message(&e)))?;
    if !ran.ok() {
        return Err(ran.failure());
    }
    parse_service_list(&ran.stdout)
}

pub fn parse_service_list(text: &str) -> Result<Option<Instance>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("ubus answered invalid JSON: {e}"))?;
    let Some(instances) = v["clawgate"]["instances"].as_object() else {
        return Ok(None);
    };
    // One instance is configured; should there be more, a running one
    // speaks for the service.
    let mut all: Vec<&Value> = instances.values().collect();
    all.sort_by_key(|i| i["running"] != true);
    Ok(all.first().map(|i| Instance {
        running: i["running"] == true,
        pid: i["pid"].as_u64(),
        exit_code: i["exit_code"].as_i64(),
    }))
}

/// The gateway's lines in the system log, without the syslog prefix, or
/// `None` when `logread` is not there.
pub fn logread_tail() -> Option<(String, String)> {
    let argv: Vec<String> = ["logread", "-e", "clawgate"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ran = exec::run(&argv, exec::QUICK).ok()?;
    if !ran.ok() {
        return None;
    }
    let lines: Vec<&str> = ran.stdout.lines().map(strip_syslog).collect();
    Some((lines.join("\n"), ran.command_line()))
}

/// `Thu Jan  1 00:00:00 2026 daemon.err clawgate[1234]: WARN x` → `WARN x`.
fn strip_syslog(line: &str) -> &str {
    match line.find("clawgate[") {
        Some(i) => line[i..].split_once("]: ").map_or(line, |(_, rest)| rest),
        None => line,
    }
}

/// Whether the installed script is one `install` wrote (for `status`).
pub fn installed(host: &Host) -> bool {
    Path::new(&host.path(SCRIPT)).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_gets_the_binary_path_and_nothing_else_changes() {
        assert_eq!(TEMPLATE.matches(CONTRIB_PROG).count(), 1);
        let s = script_text("/opt/cg/clawgate");
        assert!(s.contains("\nPROG=/opt/cg/clawgate\n"));
        let changed = TEMPLATE
            .lines()
            .zip(s.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, 1);
        assert!(s.starts_with("#!/bin/sh /etc/rc.common\n"));
    }

    #[test]
    fn ubus_service_list_is_read() {
        let text = r#"{"clawgate":{"instances":{"instance1":{"running":true,"pid":77,
            "command":["/usr/bin/clawgate","run"],"term_timeout":5}}}}"#;
        let want = Instance {
            running: true,
            pid: Some(77),
            exit_code: None,
        };
        assert_eq!(parse_service_list(text), Ok(Some(want)));
        let stopped =
            r#"{"clawgate":{"instances":{"instance1":{"running":false,"exit_code":78}}}}"#;
        let i = parse_service_list(stopped).unwrap().unwrap();
        assert_eq!((i.running, i.exit_code), (false, Some(78)));
        assert_eq!(parse_service_list("{}"), Ok(None));
        assert!(parse_service_list("nope").is_err());
    }

    #[test]
    fn syslog_prefixes_are_stripped() {
        assert_eq!(
            strip_syslog("Thu Jan  1 00:00:00 2026 daemon.err clawgate[12]: ERROR bind: in use"),
            "ERROR bind: in use"
        );
        assert_eq!(strip_syslog("plain"), "plain");
    }
}
