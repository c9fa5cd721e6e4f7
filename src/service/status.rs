//! The service as its manager sees it, for `clawgate status`, and the
//! last complaint in the gateway's log. (Where an installed service keeps
//! its files is `config`'s to say.)
//!
//! Read-only: this never changes the service, and a manager that cannot
//! be asked is reported in the section's `error` field, not as a failure
//! of `status`.

use serde_json::{json, Value};

use super::{procd, systemd, Host, Service};
use crate::cli::{Init, Scope};
use crate::config::Env;

/// The service `status` describes: the one installed (procd on OpenWrt;
/// for systemd the system unit, the user unit, or as root the system one
/// when both are), else the unit systemd would run for this user, which
/// may come from a package.
fn detect(host: &Host) -> Option<Service> {
    if host.openwrt() || procd::installed(host) {
        return Some(Service::procd(host));
    }
    let installed = |scope| Service::systemd(host, scope).is_ok_and(|s| s.installed());
    let scope = match (installed(Scope::System), installed(Scope::User)) {
        (true, false) => Scope::System,
        (false, true) => Scope::User,
        (true, true) => host.default_scope(),
        (false, false) if host.systemd() => host.default_scope(),
        (false, false) => return None,
    };
    Service::systemd(host, scope).ok()
}

/// The `service` object of `clawgate status --json`. Its keys are always
/// all there (null when unknown), so scripts can rely on the shape. With
/// `probe_failed`, a service that is not cleanly stopped also gets the
/// last warning or error of its log.
pub fn status_section(env: Env, probe_failed: bool) -> Value {
    let host = Host::from_env(env);
    let mut v = json!({
        "installed": false, "init": null, "scope": null, "file": null,
        "enabled": null, "active": null, "loadState": null, "unitFileState": null,
        "activeState": null, "subState": null, "pid": null, "restarts": null,
        "result": null, "linger": null, "lastError": null, "error": null,
    });
    let Some(svc) = detect(&host) else {
        return v;
    };
    v["init"] = json!(svc.init.as_str());
    v["scope"] = json!(svc.scope.as_str());
    v["file"] = json!(svc.file.display().to_string());
    v["installed"] = json!(svc.installed());
    match svc.init {
        Init::Systemd => systemd_state(&host, &svc, &mut v),
        Init::Procd => procd_state(&host, &mut v),
    }
    let state = v["activeState"].as_str().unwrap_or("inactive");
    if probe_failed && v["installed"] == true && state != "inactive" {
        if let Some((line, source)) = last_log_error(&svc) {
            v["lastError"] = json!({"line": line, "source": source});
        }
    }
    v
}

fn systemd_state(host: &Host, svc: &Service, v: &mut Value) {
    let property = format!("--property={}", systemd::SHOW_PROPERTIES);
    let ran = match systemd::run(
        svc.scope,
        &["show", systemd::NAME, &property],
        super::exec::QUICK,
    ) {
        Ok(ran) if ran.ok() => ran,
        Ok(ran) => {
            v["error"] = json!(systemd::failure(svc.scope, &ran).to_string());
            return;
        }
        Err(e) => {
            v["error"] = json!(e.to_string());
            return;
        }
    };
    let p = systemd::parse_show(&ran.stdout);
    let get = |k: &str| p.get(k).map(String::as_str);
    let text = |k: &str| get(k).filter(|s| !s.is_empty()).map(str::to_string);
    let load = text("LoadState");
    // A unit from a package counts as installed too; a file systemd has
    // not loaded yet (no daemon-reload) still is one.
    if load.as_deref() == Some("loaded") {
        v["installed"] = json!(true);
    }
    let file_state = text("UnitFileState");
    let active = text("ActiveState");
    v["loadState"] = json!(load);
    v["unitFileState"] = json!(file_state);
    v["activeState"] = json!(active);
    v["subState"] = json!(text("SubState"));
    v["result"] = json!(text("Result"));
    v["enabled"] = json!(file_state.map(|s| s.starts_with("enabled")));
    v["active"] = json!(active.map(|s| s == "active" || s == "reloading"));
    v["pid"] = json!(get("MainPID")
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|&p| p > 0));
    v["restarts"] = json!(get("NRestarts").and_then(|s| s.parse::<u64>().ok()));
    if svc.scope == Scope::User {
        v["linger"] = json!(systemd::linger(host, &host.user));
    }
}

fn procd_state(host: &Host, v: &mut Value) {
    v["enabled"] = json!(procd::enabled(host));
    match procd::instance() {
        Ok(Some(i)) => {
            let failed = i.exit_code.is_some_and(|c| c != 0);
            let (active, sub) = match (i.running, failed) {
                (true, _) => ("active", "running"),
                (false, true) => ("failed", "dead"),
                (false, false) => ("inactive", "dead"),
            };
            v["active"] = json!(i.running);
            v["activeState"] = json!(active);
            v["subState"] = json!(sub);
            v["pid"] = json!(i.pid.filter(|_| i.running));
            v["result"] = json!(i
                .exit_code
                .map(|c| if c == 0 { "success" } else { "exit-code" }));
        }
        Ok(None) => {
            v["active"] = json!(false);
            v["activeState"] = json!("inactive");
            v["subState"] = json!("dead");
        }
        Err(e) => v["error"] = json!(e),
    }
}

/// The last warning or error the gateway logged, and where it was read:
/// the journal (systemd) or the system log (procd) first, then the
/// gateway's own log file when it writes one.
pub fn last_log_error(svc: &Service) -> Option<(String, String)> {
    let from_manager = match svc.init {
        Init::Systemd => systemd::journal_tail(svc.scope),
        Init::Procd => procd::logread_tail(),
    };
    if let Some((text, source)) = from_manager {
        if let Some(line) = last_problem(&text) {
            return Some((line, source));
        }
    }
    let file = crate::logging::log_file_path(&svc.state_dir);
    let tail = crate::logging::tail::tail(&file, None, 200, 64 * 1024).ok()?;
    let line = last_problem(&tail.lines.join("\n"))?;
    Some((line, file.display().to_string()))
}

/// The last line at warn or error level, in any of the forms the gateway
/// writes (plain, with or without timestamp or `<N>` priority, JSON), or
/// the `clawgate: …` line `main` prints when it exits with an error.
/// Control characters are made visible: the line goes to a terminal.
pub fn last_problem(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .find(|l| matches!(level_of(l), Some("error" | "warn")))
        .map(|l| crate::logging::escape_controls(l.trim()).into_owned())
}

fn level_of(line: &str) -> Option<&'static str> {
    let line = line.trim();
    if line.starts_with("clawgate: ") {
        return Some("error");
    }
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).ok()?;
        return level_word(v["level"].as_str()?);
    }
    let mut words = line.split_whitespace();
    let mut word = words.next()?;
    // journald's priority prefix, when a tool shows it.
    if let Some(rest) = word.strip_prefix('<') {
        word = rest.split_once('>').map_or(word, |(_, w)| w);
    }
    // An RFC 3339 timestamp (the log file's form) comes first.
    if word.starts_with(|c: char| c.is_ascii_digit()) && word.contains('T') {
        word = words.next()?;
    }
    level_word(word)
}

fn level_word(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().as_str() {
        "error" => Some("error"),
        "warn" => Some("warn"),
        "info" => Some("info"),
        "debug" => Some("debug"),
        "trace" => Some("trace"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_warning_or_error_is_found_in_every_log_form() {
        let journal = "INFO listening on ws://127.0.0.1:18789 (PID 1)\n\
                       WARN slow client dropped\n\
                       ERROR listen on 127.0.0.1:18789: address in use\n\
                       INFO shutting down\n";
        assert_eq!(
            last_problem(journal).as_deref(),
            Some("ERROR listen on 127.0.0.1:18789: address in use")
        );
        let file = "2026-01-01T00:00:00.000Z WARN a\n2026-01-01T00:00:01.000Z INFO b\n";
        assert_eq!(
            last_problem(file).as_deref(),
            Some("2026-01-01T00:00:00.000Z WARN a")
        );
        let json = "{\"ts\":\"t\",\"level\":\"error\",\"msg\":\"m\"}\n{\"level\":\"info\"}";
        assert_eq!(
            last_problem(json).as_deref(),
            Some("{\"ts\":\"t\",\"level\":\"error\",\"msg\":\"m\"}")
        );
        let exit = "INFO x\nclawgate: gateway start blocked: no configuration\n";
        assert_eq!(
            last_problem(exit).as_deref(),
            Some("clawgate: gateway start blocked: no configuration")
        );
        assert_eq!(
            last_problem("<3>ERROR bad\x1b[31m").as_deref(),
            Some("<3>ERROR bad\\u{1b}[31m")
        );
        assert_eq!(last_problem("INFO fine\nwarning is not a level here"), None);
    }
}
