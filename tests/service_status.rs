//! The service section of `clawgate status`: what `systemctl show` and
//! `ubus` report, kept apart from the probe, and the gateway's last logged
//! complaint when the service runs but does not answer. Against a staged
//! root with fake tools, like tests/service.rs.

use serde_json::Value;

use crate::util::{free_port, json_stdout as json, ok_stdout as ok, text, ServiceHost};

fn system_unit(host: &ServiceHost) -> std::path::PathBuf {
    host.at("/etc/systemd/system/clawgate.service")
}

const SHOW_RUNNING: &str = "MainPID=4242\nNRestarts=2\nResult=success\nLoadState=loaded\n\
    ActiveState=active\nSubState=running\nUnitFileState=enabled\n";

#[test]
fn status_shows_the_service_as_systemctl_show_describes_it() {
    let host = ServiceHost::systemd();
    ok(&host.run(&["install", "--system"]));
    host.take_calls();
    host.canned("systemctl.show", SHOW_RUNNING, "", 0);
    let v = json(&host.run(&["status", "--no-probe", "--json"]));
    let s = &v["service"];
    assert_eq!(
        *s,
        serde_json::json!({
            "installed": true, "init": "systemd", "scope": "system",
            "file": system_unit(&host).display().to_string(),
            "enabled": true, "active": true, "loadState": "loaded",
            "unitFileState": "enabled", "activeState": "active", "subState": "running",
            "pid": 4242, "restarts": 2, "result": "success", "linger": null,
            "lastError": null, "error": null,
        })
    );
    // Every field status had before is still there.
    for key in ["url", "config", "stateDir", "auth", "instance", "probe"] {
        assert!(v.get(key).is_some(), "{key} missing from {v}");
    }
    assert_eq!(
        host.take_calls(),
        ["systemctl show clawgate --property=LoadState,UnitFileState,ActiveState,SubState,MainPID,NRestarts,Result"]
    );
    let out = host.run(&["status", "--no-probe"]);
    let want = format!(
        "Gateway status\n  service:   systemd system service, enabled, active (running), PID 4242, \
         restarted 2 times\n             {}\n",
        system_unit(&host).display()
    );
    assert!(ok(&out).starts_with(&want), "{}", text(&out.stdout));
}

#[test]
fn status_without_a_service_reports_none_installed() {
    let host = ServiceHost::new();
    let v = json(&host.run(&["status", "--no-probe", "--json"]));
    assert_eq!(v["service"]["installed"], false);
    assert_eq!(v["service"]["init"], Value::Null);
    assert!(host.take_calls().is_empty());
    // On a systemd host the manager is asked even without our file: a
    // package may have installed the unit.
    let host = ServiceHost::systemd();
    host.canned(
        "systemctl.show",
        "LoadState=not-found\nActiveState=inactive\n",
        "",
        0,
    );
    let v = json(&host.run(&["status", "--no-probe", "--json"]));
    assert_eq!(v["service"]["installed"], false);
    assert_eq!(v["service"]["loadState"], "not-found");
}

#[test]
fn status_shows_the_last_error_when_the_service_runs_but_the_port_is_closed() {
    let host = ServiceHost::systemd();
    let port = free_port().to_string();
    ok(&host.run(&["install", "--system", "--port", &port]));
    host.canned("systemctl.show", SHOW_RUNNING, "", 0);
    host.canned(
        "journalctl",
        "INFO listening\nWARN slow client dropped\nERROR accept failed: too many open files\nINFO tick\n",
        "",
        0,
    );
    host.take_calls();
    let out = host.run(&["status", "--json", "--timeout", "2000"]);
    assert_eq!(out.status.code(), Some(1), "the gateway does not answer");
    let v = json(&out);
    assert_eq!(v["probe"]["ok"], false);
    assert_eq!(v["url"], format!("ws://127.0.0.1:{port}"));
    assert_eq!(
        v["service"]["lastError"],
        serde_json::json!({
            "line": "ERROR accept failed: too many open files",
            "source": "journalctl -u clawgate -n 50 -o cat --no-pager",
        })
    );
    let out = host.run(&["status", "--timeout", "2000"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with(
            "  log:       ERROR accept failed: too many open files\n             \
             (its last warning or error, from 'journalctl -u clawgate -n 50 -o cat --no-pager')\n"
        ),
        "{stdout}"
    );

    // No journal to read: the gateway's own log file, when it has one.
    host.canned("journalctl", "", "No journal files were found.", 1);
    let logs = host.at("/var/lib/clawgate/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("clawgate.log"),
        "2026-01-01T00:00:00.000Z INFO up\n2026-01-01T00:00:01.000Z WARN disk almost full\n",
    )
    .unwrap();
    let v = json(&host.run(&["status", "--json", "--timeout", "2000"]));
    assert_eq!(
        v["service"]["lastError"]["line"],
        "2026-01-01T00:00:01.000Z WARN disk almost full"
    );
    assert_eq!(
        v["service"]["lastError"]["source"],
        logs.join("clawgate.log").display().to_string()
    );

    // A service stopped on purpose has nothing to explain.
    host.canned(
        "systemctl.show",
        "LoadState=loaded\nActiveState=inactive\nSubState=dead\n",
        "",
        0,
    );
    let v = json(&host.run(&["status", "--json", "--timeout", "2000"]));
    assert_eq!(v["service"]["lastError"], Value::Null);
}

#[test]
fn status_of_a_procd_service_comes_from_ubus() {
    let host = ServiceHost::openwrt();
    ok(&host.run(&["install"]));
    std::fs::create_dir_all(host.at("/etc/rc.d")).unwrap();
    std::os::unix::fs::symlink("../init.d/clawgate", host.at("/etc/rc.d/S95clawgate")).unwrap();
    host.canned(
        "ubus.call",
        r#"{"clawgate":{"instances":{"instance1":{"running":true,"pid":321}}}}"#,
        "",
        0,
    );
    host.take_calls();
    let v = json(&host.run(&["status", "--no-probe", "--json"]));
    let s = &v["service"];
    assert_eq!(
        (s["init"].as_str(), s["installed"].as_bool()),
        (Some("procd"), Some(true))
    );
    assert_eq!(
        (s["enabled"].as_bool(), s["active"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (s["activeState"].as_str(), s["pid"].as_u64()),
        (Some("active"), Some(321))
    );
    assert_eq!(
        host.take_calls(),
        [r#"ubus call service list {"name":"clawgate"}"#]
    );
}
