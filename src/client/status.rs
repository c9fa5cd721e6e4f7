//! `clawgate status`: the service as its manager sees it, which gateway
//! the client commands reach from here, and whether it answers.
//!
//! Two views kept apart on purpose: the supervisor's (installed, enabled,
//! active, PID) and reachability (a real WebSocket handshake). A service
//! that runs while its port is closed is exactly what an admin needs to
//! see, so then the gateway's last logged complaint is shown as well.

use std::time::Instant;

use serde_json::{json, Value};

use super::link::describe;
use super::{env, open, pretty, resolve_with, Hello};
use crate::cli::StatusArgs;
use crate::config::{BrokenFile, ClientArgs, ClientTarget};
use crate::error::Error;
use crate::output::Output;
use crate::protocol;
use crate::sys;

/// The report. A config file that does not load is part of it
/// (`config.error`), not a reason to say nothing: the gateway may still be
/// serving its last good configuration, and this is where to see both.
/// With `--json` the answer is JSON even when nothing could be resolved.
pub fn status(args: &StatusArgs) -> Result<Output, Error> {
    let c = &args.client;
    let target = match resolve_with(c, BrokenFile::Reported) {
        Ok(t) => t,
        Err(e) if c.json => return Ok(unresolved(&e)),
        Err(e) => return Err(e),
    };
    let lock = lock_state(&target);
    let probe = (!args.no_probe).then(|| probe_hello(&target, c));
    let reachable = probe.as_ref().is_none_or(|p| p["ok"] == true);
    let service = crate::service::status_section(&env, !reachable);
    let report = json!({
        "url": target.url,
        "config": {
            "path": target.config_path.display().to_string(),
            "exists": target.config_path.exists(),
            "error": target.config_error,
        },
        "stateDir": target.state_dir.display().to_string(),
        "auth": {"source": target.secret_source},
        "instance": lock,
        "probe": probe,
        "service": service,
    });
    let code = if reachable { 0 } else { 1 };
    if c.json {
        return Ok(Output::new(pretty(&report), code));
    }
    let mut t = String::from("Gateway status\n");
    t += &service_lines(&service);
    let exists = if report["config"]["exists"] == true {
        ""
    } else {
        " (not found)"
    };
    t += &format!(
        "  config:    {}{exists}\n",
        report["config"]["path"].as_str().unwrap_or("")
    );
    if let Some(e) = &target.config_error {
        t += &format!("             does not load: {e}\n");
    }
    t += &format!(
        "  state dir: {}\n",
        report["stateDir"].as_str().unwrap_or("")
    );
    t += &format!("  auth:      {}\n", target.secret_source);
    t += &match lock["running"].as_bool() {
        Some(true) => format!("  instance:  running (PID {})\n", lock["pid"]),
        Some(false) => "  instance:  not running from this state dir\n".to_string(),
        None => "  instance:  unknown\n".to_string(),
    };
    t += &match &probe {
        None => "  probe:     skipped (--no-probe)".to_string(),
        Some(p) if p["ok"] == true => format!(
            "  probe:     {} ok in {} ms (server {}, protocol {}, up {})",
            target.url,
            p["connectMs"],
            p["server"]["version"].as_str().unwrap_or("?"),
            p["protocol"],
            human_duration(p["uptimeMs"].as_u64().unwrap_or(0))
        ),
        Some(p) => format!(
            "  probe:     {} {}",
            target.url,
            describe(p["reachable"] == true, &p["error"])
        ),
    };
    if let Some(p) = probe.as_ref().filter(|p| p["ok"] == true) {
        t += &memory_line(p);
    }
    if let Some(line) = service["lastError"]["line"].as_str() {
        t += &format!(
            "\n  log:       {line}\n             (its last warning or error, from '{}')",
            service["lastError"]["source"].as_str().unwrap_or("?")
        );
    }
    Ok(Output::new(t, code))
}

/// `status --json` when not even the target could be resolved (no HOME,
/// a bad port variable): the error in the report's shape, and the service
/// as its manager sees it, which needs none of that.
fn unresolved(e: &Error) -> Output {
    let report = json!({
        "url": null, "config": null, "stateDir": null, "auth": null,
        "instance": null, "probe": null,
        "service": crate::service::status_section(&env, true),
        "error": {"message": e.to_string()},
    });
    Output {
        text: pretty(&report),
        code: e.exit_code(),
        notes: vec![e.to_string()],
    }
}

/// The service as its manager sees it: kind, state, and its file.
fn service_lines(s: &Value) -> String {
    let text = |k: &str| s[k].as_str().unwrap_or("");
    let kind = match (text("init"), text("scope")) {
        ("", _) => return "  service:   none installed (see 'clawgate install')\n".to_string(),
        ("procd", _) => "procd service".to_string(),
        (_, scope) => format!("systemd {scope} service"),
    };
    if s["installed"] != true {
        return format!("  service:   no {kind} installed (see 'clawgate install')\n");
    }
    let mut parts = vec![kind];
    if let Some(e) = s["error"].as_str() {
        parts.push(format!("state unknown: {e}"));
    } else {
        match s["enabled"].as_bool() {
            Some(true) => parts.push("enabled".into()),
            Some(false) => parts.push("not enabled".into()),
            None => {}
        }
        let (active, sub) = (text("activeState"), text("subState"));
        match (active, sub) {
            ("", _) => {}
            (a, "") => parts.push(a.to_string()),
            (a, b) if a == b => parts.push(a.to_string()),
            (a, b) => parts.push(format!("{a} ({b})")),
        }
        if let Some(pid) = s["pid"].as_u64() {
            parts.push(format!("PID {pid}"));
        }
        match s["restarts"].as_u64() {
            Some(1) => parts.push("restarted once".into()),
            Some(n) if n > 1 => parts.push(format!("restarted {n} times")),
            _ => {}
        }
        if let Some(r) = s["result"].as_str().filter(|r| *r != "success") {
            parts.push(format!("last result: {r}"));
        }
        if s["linger"] == false {
            parts.push("lingering off, so it stops at logout".into());
        }
    }
    format!(
        "  service:   {}\n             {}\n",
        parts.join(", "),
        text("file")
    )
}

/// Whether a gateway holds this state directory's instance lock.
fn lock_state(target: &ClientTarget) -> Value {
    let path = target.state_dir.join("gateway.lock");
    let Ok(file) = std::fs::File::open(&path) else {
        return json!({"running": false, "pid": null, "lockFile": path.display().to_string()});
    };
    match sys::try_lock_exclusive(&file) {
        Ok(true) => json!({"running": false, "pid": null, "lockFile": path.display().to_string()}),
        Ok(false) => {
            let pid = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            json!({"running": true, "pid": pid, "lockFile": path.display().to_string()})
        }
        Err(_) => json!({"running": null, "pid": null, "lockFile": path.display().to_string()}),
    }
}

/// Connects as a probe and reports what `hello-ok` says, with the
/// gateway's connections and memory ceiling from its `status` (null when
/// the gateway does not report them or does not let this client ask).
fn probe_hello(target: &ClientTarget, args: &ClientArgs) -> Value {
    let started = Instant::now();
    let hello = Hello {
        mode: "probe",
        scopes: vec![protocol::SCOPE_READ.to_string()],
    };
    match open(target, args, &hello) {
        Ok(s) => {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let h = s.hello.clone();
            s.close();
            let gateway = gateway_status(target, args);
            json!({
                "ok": true,
                "reachable": true,
                "connectMs": (ms * 10.0).round() / 10.0,
                "protocol": h["protocol"],
                "server": h["server"],
                "uptimeMs": h["snapshot"]["uptimeMs"],
                "presence": h["snapshot"]["presence"].as_array().map_or(0, Vec::len),
                "auth": h["auth"],
                "connections": gateway["connections"],
                "memoryCeiling": gateway["memoryCeiling"],
            })
        }
        Err(f) => {
            let mut v = f.json();
            v["reachable"] = json!(f.reachable());
            v["url"] = json!(target.url);
            v
        }
    }
}

/// The `gateway` section of the gateway's `status`, or null. A probe
/// connection is granted no scopes (as the reference grants them only to
/// the local CLI), so this asks as the CLI, on a second connection.
fn gateway_status(target: &ClientTarget, args: &ClientArgs) -> Value {
    let hello = Hello {
        mode: "cli",
        scopes: vec![protocol::SCOPE_READ.to_string()],
    };
    let Ok(mut s) = open(target, args, &hello) else {
        return Value::Null;
    };
    let status = s.request("status", None, false);
    s.close();
    status.map_or(Value::Null, |st| st["gateway"].clone())
}

/// The probe's connections and memory ceiling, when the gateway reports
/// them: what an operator sizing a small host needs to see.
fn memory_line(probe: &Value) -> String {
    let Some(total) = probe["memoryCeiling"]["totalBytes"].as_u64() else {
        return String::new();
    };
    let per = probe["memoryCeiling"]["perConnectionBytes"]
        .as_u64()
        .unwrap_or(0);
    let now = match probe["connections"]["clients"].as_u64() {
        Some(1) => "; 1 client now".to_string(),
        Some(n) => format!("; {n} clients now"),
        None => String::new(),
    };
    format!(
        "\n  memory:    at most {} whatever clients send ({} per connection{now})",
        crate::config::human(total),
        crate::config::human(per)
    )
}

fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_line_shows_the_ceiling_when_there_is_one() {
        let probe = json!({
            "connections": {"clients": 3},
            "memoryCeiling": {"totalBytes": 3u64 << 30, "perConnectionBytes": 9u64 << 20},
        });
        assert_eq!(
            memory_line(&probe),
            "\n  memory:    at most 3.0 GiB whatever clients send (9.0 MiB per connection; 3 clients now)"
        );
        assert_eq!(memory_line(&json!({"memoryCeiling": null})), "");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(5_000), "5s");
        assert_eq!(human_duration(65_000), "1m 5s");
        assert_eq!(human_duration(7_260_000), "2h 1m");
    }

    #[test]
    fn the_service_line_says_what_the_manager_says() {
        let none = json!({"init": null});
        assert_eq!(
            service_lines(&none),
            "  service:   none installed (see 'clawgate install')\n"
        );
        let s = json!({
            "installed": true, "init": "systemd", "scope": "user",
            "file": "/h/.config/systemd/user/clawgate.service",
            "enabled": true, "activeState": "active", "subState": "running",
            "pid": 42, "restarts": 3, "result": "success", "linger": false, "error": null,
        });
        assert_eq!(
            service_lines(&s),
            "  service:   systemd user service, enabled, active (running), PID 42, \
             restarted 3 times, lingering off, so it stops at logout\n             \
             /h/.config/systemd/user/clawgate.service\n"
        );
    }
}
