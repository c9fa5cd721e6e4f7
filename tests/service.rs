//! `install`, `uninstall`, `start`, `stop` and `restart`, against a
//! staged root (CLAWGATE_ROOT) with fake `systemctl`, `loginctl`,
//! `journalctl` and `rc.common` that record every call: the exact calls,
//! the files and their modes, idempotency, `--force`, and what the reports
//! say. The service section of `status` is in tests/service_status.rs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{json_stdout as json, ok_stdout as ok, text, ServiceHost, TempDir, BIN};

const TOKEN: &str = "4f2a9c0d1e7b36a85f0c2d9e1b7a3c6f";

fn contrib(path: &str) -> String {
    std::fs::read_to_string(format!("{}/contrib/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("contrib/{path}: {e}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn system_unit(host: &ServiceHost) -> std::path::PathBuf {
    host.at("/etc/systemd/system/clawgate.service")
}

fn user_unit(host: &ServiceHost) -> std::path::PathBuf {
    host.home().join(".config/systemd/user/clawgate.service")
}

/// The system unit as install must write it.
fn expected_system_unit() -> String {
    contrib("systemd/clawgate.service").replace(
        "ExecStart=/usr/local/bin/clawgate run",
        &format!("ExecStart={BIN} run"),
    )
}

fn uid() -> String {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    text(&out.stdout).trim().to_string()
}

// ---- install ----------------------------------------------------------------

#[test]
fn install_system_writes_unit_and_config_then_enables_and_starts() {
    let host = ServiceHost::systemd();
    let stdout = ok(&host.run(&["gateway", "install", "--system"]));
    assert_eq!(read(&system_unit(&host)), expected_system_unit());
    assert_eq!(mode(&system_unit(&host)), 0o644);
    let config = host.at("/etc/clawgate/clawgate.json");
    let v: Value = serde_json::from_str(&read(&config)).expect("config JSON");
    assert_eq!(v, serde_json::json!({"gateway": {"mode": "local"}}));
    // The dynamic user of the unit has to read it.
    assert_eq!(mode(&config), 0o644);
    assert!(!host.at("/etc/clawgate/gateway.env").exists());
    assert_eq!(
        host.take_calls(),
        [
            "systemctl daemon-reload",
            "systemctl enable clawgate",
            "systemctl reset-failed clawgate",
            "systemctl restart clawgate",
        ]
    );
    let root = host.root().display().to_string();
    let want = format!(
        "Installed clawgate as a systemd system service and started it\n  \
         created    {root}/etc/clawgate/clawgate.json (config)\n  \
         created    {root}/etc/systemd/system/clawgate.service (unit)\n  \
         ran        systemctl daemon-reload\n  \
         ran        systemctl enable clawgate\n  \
         ran        systemctl reset-failed clawgate\n  \
         ran        systemctl restart clawgate\n\
         Check it with 'clawgate status'; its output: 'journalctl -u clawgate'\n"
    );
    assert_eq!(stdout, want);
}

#[test]
fn a_second_install_changes_nothing_writes_nothing_and_says_so() {
    let host = ServiceHost::systemd();
    ok(&host.run(&["install", "--system"]));
    host.take_calls();
    let unit = system_unit(&host);
    let config = host.at("/etc/clawgate/clawgate.json");
    let before = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let (unit_time, config_time) = (before(&unit), before(&config));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let v = json(&host.run(&["install", "--system", "--json"]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["changed"], false);
    assert_eq!(
        v["summary"],
        "clawgate is already installed as a systemd system service; nothing changed, and it is enabled and started"
    );
    let states: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["unchanged", "unchanged"]);
    let argv: Vec<Value> = v["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["argv"].clone())
        .collect();
    assert_eq!(
        serde_json::json!(argv),
        serde_json::json!([
            ["systemctl", "enable", "clawgate"],
            ["systemctl", "reset-failed", "clawgate"],
            ["systemctl", "start", "clawgate"],
        ])
    );
    assert_eq!(v["commands"][0]["exitCode"], 0);
    assert_eq!(
        (
            v["action"].as_str(),
            v["init"].as_str(),
            v["scope"].as_str()
        ),
        (Some("install"), Some("systemd"), Some("system"))
    );
    assert_eq!(v["service"], "clawgate.service");
    assert_eq!(v["error"], Value::Null);
    assert_eq!((before(&unit), before(&config)), (unit_time, config_time));
    assert_eq!(read(&unit), expected_system_unit());
}

#[test]
fn install_refuses_to_replace_a_changed_unit_without_force_and_replaces_it_with() {
    let host = ServiceHost::systemd();
    ok(&host.run(&["install", "--system"]));
    host.take_calls();
    let unit = system_unit(&host);
    let edited = read(&unit).replace("LimitNOFILE=8192", "LimitNOFILE=4096");
    std::fs::write(&unit, &edited).unwrap();
    let out = host.run(&["install", "--system"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "clawgate: not replacing what differs (nothing was changed; use --force to replace): '"
        ) && err.contains("clawgate.service': the unit differs from what install writes"),
        "{err}"
    );
    assert_eq!(text(&out.stdout), "");
    assert_eq!(read(&unit), edited);
    assert!(host.take_calls().is_empty());

    let v = json(&host.run(&["install", "--system", "--force", "--json"]));
    assert_eq!(v["changed"], true);
    assert_eq!(v["files"][1]["state"], "replaced");
    assert_eq!(read(&unit), expected_system_unit());
    assert_eq!(
        host.take_calls(),
        [
            "systemctl daemon-reload",
            "systemctl enable clawgate",
            "systemctl reset-failed clawgate",
            "systemctl restart clawgate",
        ]
    );
}

#[test]
fn install_keeps_the_token_in_a_private_file_and_never_prints_it() {
    let host = ServiceHost::systemd();
    let args = ["install", "--system", "--port", "18800", "--token", TOKEN];
    let out = host.run(&args);
    ok(&out);
    let env_file = host.at("/etc/clawgate/gateway.env");
    assert_eq!(read(&env_file), format!("CLAWGATE_GATEWAY_TOKEN={TOKEN}\n"));
    assert_eq!(mode(&env_file), 0o600);
    let config = read(&host.at("/etc/clawgate/clawgate.json"));
    let v: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"gateway": {"mode": "local", "port": 18800}})
    );
    let unit = read(&system_unit(&host));
    assert!(!unit.contains(TOKEN) && !config.contains(TOKEN));
    assert!(unit.contains("\nEnvironmentFile=-/etc/clawgate/gateway.env\n"));
    let json_out = host.run(&[&args[..], &["--json"]].concat());
    for out in [&out, &json_out] {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains(TOKEN), "{all}");
    }
    assert!(!host.take_calls().iter().any(|c| c.contains(TOKEN)));

    // A different port or token is the admin's to change: only --force.
    let out = host.run(&[
        "install",
        "--system",
        "--port",
        "18801",
        "--token",
        "other-token-1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("the config sets port 18800, not 18801: use --force"),
        "{err}"
    );
    assert!(err.contains("the token file holds another token"), "{err}");
    assert!(
        !err.contains(TOKEN) && !err.contains("other-token-1"),
        "{err}"
    );
    let out = host.run(&["install", "--system", "--port", "18801", "--force"]);
    ok(&out);
    assert!(read(&host.at("/etc/clawgate/clawgate.json")).contains("18801"));
    assert_eq!(read(&env_file), format!("CLAWGATE_GATEWAY_TOKEN={TOKEN}\n"));

    // The client commands on this host find the service, its port and
    // its token, without being told.
    let v = json(&host.run(&["status", "--no-probe", "--json"]));
    assert_eq!(v["url"], "ws://127.0.0.1:18801");
    assert_eq!(v["auth"]["source"], "gateway.env");
    assert_eq!(
        v["config"]["path"],
        host.at("/etc/clawgate/clawgate.json").display().to_string()
    );
    assert_eq!(
        v["stateDir"],
        host.at("/var/lib/clawgate").display().to_string()
    );
}

#[test]
fn install_defaults_to_a_system_unit_as_root_and_a_user_unit_otherwise() {
    let host = ServiceHost::systemd();
    let v = json(&host.run(&["install", "--json"]));
    let (scope, unit) = if uid() == "0" {
        ("system", system_unit(&host))
    } else {
        ("user", user_unit(&host))
    };
    assert_eq!(v["scope"], scope);
    assert!(unit.exists());
}

#[test]
fn a_user_install_warns_when_lingering_is_off_and_names_the_fix() {
    let host = ServiceHost::systemd();
    host.canned("loginctl.show-user", "Linger=no\n", "", 0);
    let out = host.run(&["install", "--user"]);
    ok(&out);
    assert_eq!(
        text(&out.stderr),
        "clawgate: warning: lingering is off for user 'tester': the user service stops when \
         tester's last session ends and does not start at boot; to keep it running, run \
         'loginctl enable-linger tester'\n"
    );
    let unit = read(&user_unit(&host));
    let want = contrib("systemd/clawgate-user.service").replace(
        "ExecStart=/usr/local/bin/clawgate run",
        &format!("ExecStart={BIN} run"),
    );
    assert_eq!(unit, want);
    let config = host.home().join(".clawgate/clawgate.json");
    assert_eq!(mode(&config), 0o600);
    assert_eq!(
        host.take_calls(),
        [
            "systemctl --user daemon-reload",
            "systemctl --user enable clawgate",
            "systemctl --user reset-failed clawgate",
            "systemctl --user restart clawgate",
            "loginctl show-user tester --property=Linger",
        ]
    );

    // With lingering on there is nothing to warn about; XDG_CONFIG_HOME
    // decides where user units go.
    let host = ServiceHost::systemd();
    host.canned("loginctl.show-user", "Linger=yes\n", "", 0);
    let xdg = host.home().join("xdg");
    let mut cmd = host.command(&["install", "--user"]);
    cmd.env("XDG_CONFIG_HOME", &xdg);
    let out = crate::util::run_with_timeout(cmd, std::time::Duration::from_secs(60));
    ok(&out);
    assert_eq!(text(&out.stderr), "");
    assert!(xdg.join("systemd/user/clawgate.service").exists());

    // Without loginctl's answer, logind's marker file decides.
    let host = ServiceHost::systemd();
    host.canned("loginctl", "", "Failed to get user: not logged in", 1);
    std::fs::create_dir_all(host.at("/var/lib/systemd/linger")).unwrap();
    std::fs::write(host.at("/var/lib/systemd/linger/tester"), "").unwrap();
    let out = host.run(&["install", "--user"]);
    ok(&out);
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn install_fails_before_writing_without_a_service_manager() {
    let host = ServiceHost::new();
    let out = host.run(&["install"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .starts_with("clawgate: no service manager found: this host runs neither systemd"),
        "{}",
        text(&out.stderr)
    );
    let v = json(&host.run(&["install", "--json"]));
    assert_eq!((v["ok"].as_bool(), v["init"].as_str()), (Some(false), None));
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("no service manager found"));
    let host = ServiceHost::systemd();
    let mut cmd = host.command(&["install", "--system"]);
    cmd.env("PATH", host.dir.path().join("empty"));
    let out = crate::util::run_with_timeout(cmd, std::time::Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "clawgate: 'systemctl' not found on PATH: a systemd service needs systemd (on OpenWrt, use --init procd)\n"
    );
    assert!(!host.at("/etc").exists(), "nothing may be written");
}

#[test]
fn bad_flag_combinations_are_usage_errors() {
    let host = ServiceHost::systemd();
    for (args, want) in [
        (
            &["install", "--system", "--user"][..],
            "'--system' and '--user' cannot be used together",
        ),
        (
            &["install", "--init", "sysv"],
            "invalid value 'sysv' for '--init': expected systemd or procd",
        ),
        (
            &["uninstall", "--init", "procd", "--user"],
            "'--user' needs systemd: procd only runs system services",
        ),
        (
            &["start", "--token", "x"],
            "unknown option '--token' for 'clawgate start'",
        ),
    ] {
        let out = host.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr), format!("clawgate: {want}\n"));
    }
    assert!(host.take_calls().is_empty());
}

#[test]
fn procd_install_writes_an_init_script_that_parses_and_enables_it() {
    let host = ServiceHost::openwrt();
    let v = json(&host.run(&["install", "--json"]));
    assert_eq!(
        (v["init"].as_str(), v["scope"].as_str()),
        (Some("procd"), Some("system"))
    );
    let script = host.at("/etc/init.d/clawgate");
    let want = contrib("openwrt/clawgate.init")
        .replace("\nPROG=/usr/bin/clawgate\n", &format!("\nPROG={BIN}\n"));
    assert_eq!(read(&script), want);
    assert_eq!(mode(&script), 0o755);
    let out = Command::new("sh").arg("-n").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&host.at("/etc/clawgate/clawgate.json")), 0o600);
    assert_eq!(
        host.take_calls(),
        [
            "rc.common $ROOT/etc/init.d/clawgate enable",
            "rc.common $ROOT/etc/init.d/clawgate restart",
        ]
    );
    assert_eq!(
        v["commands"][0]["argv"],
        serde_json::json!([
            "/bin/sh",
            host.at("/etc/rc.common").display().to_string(),
            script.display().to_string(),
            "enable"
        ])
    );
    let out = host.run(&["install", "--init", "procd"]);
    assert!(
        ok(&out).starts_with("clawgate is already installed as a procd service; nothing changed")
    );
    assert_eq!(
        host.take_calls(),
        [
            "rc.common $ROOT/etc/init.d/clawgate enable",
            "rc.common $ROOT/etc/init.d/clawgate start",
        ]
    );
}

#[test]
fn the_written_units_pass_systemd_analyze_verify() {
    if !crate::util::have_systemd_analyze() {
        return;
    }
    let host = ServiceHost::systemd();
    host.canned("loginctl.show-user", "Linger=yes\n", "", 0);
    ok(&host.run(&["install", "--system", "--token", TOKEN]));
    let out = host.run(&["install", "--user"]);
    ok(&out);
    // Two gateways on one host need two ports: say so.
    let err = text(&out.stderr);
    assert!(
        err.contains("clawgate is also installed as a systemd system service")
            && err.contains("'clawgate uninstall --system' removes it"),
        "{err}"
    );
    let runtime = TempDir::new();
    for (unit, user) in [(system_unit(&host), false), (user_unit(&host), true)] {
        let mut cmd = Command::new("systemd-analyze");
        if user {
            cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
        }
        let out = cmd
            .args(["verify", "--man=no"])
            .arg(&unit)
            .output()
            .unwrap();
        // verify exits 0 on unknown keys too, so any output is a failure.
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {:?}\n{}{}",
            unit.display(),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

// ---- uninstall, start, stop, restart ------------------------------------------

#[test]
fn uninstall_stops_disables_and_removes_the_unit_and_keeps_config_and_state() {
    let host = ServiceHost::systemd();
    ok(&host.run(&["install", "--system", "--token", TOKEN]));
    std::fs::create_dir_all(host.at("/var/lib/clawgate")).unwrap();
    host.take_calls();
    let stdout = ok(&host.run(&["uninstall"]));
    assert!(!system_unit(&host).exists());
    assert!(host.at("/etc/clawgate/clawgate.json").exists());
    assert!(host.at("/etc/clawgate/gateway.env").exists());
    assert_eq!(
        host.take_calls(),
        [
            "systemctl stop clawgate",
            "systemctl disable clawgate",
            "systemctl daemon-reload",
            "systemctl reset-failed clawgate",
        ]
    );
    let root = host.root().display().to_string();
    let want = format!(
        "Removed the systemd system service; its config and state were kept (remove them by hand to start over)\n  \
         removed    {root}/etc/systemd/system/clawgate.service (unit)\n  \
         kept       {root}/etc/clawgate/clawgate.json (config)\n  \
         kept       {root}/etc/clawgate/gateway.env (token file)\n  \
         kept       {root}/var/lib/clawgate (state directory)\n  \
         ran        systemctl stop clawgate\n  \
         ran        systemctl disable clawgate\n  \
         ran        systemctl daemon-reload\n  \
         ran        systemctl reset-failed clawgate\n"
    );
    assert_eq!(stdout, want);

    // Idempotent: nothing installed is not an error, and nothing is run.
    let v = json(&host.run(&["uninstall", "--json"]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["changed"], false);
    assert_eq!(v["files"][0]["state"], "absent");
    assert_eq!(
        v["summary"],
        "clawgate is not installed as a systemd system service; nothing to do"
    );
    assert!(host.take_calls().is_empty());
}

#[test]
fn a_failed_stop_during_uninstall_is_a_warning_and_the_unit_is_still_removed() {
    let host = ServiceHost::systemd();
    ok(&host.run(&["install", "--system"]));
    host.canned(
        "systemctl.stop",
        "",
        "Failed to stop clawgate.service: Unit clawgate.service not loaded.\n",
        5,
    );
    let out = host.run(&["uninstall", "--system"]);
    ok(&out);
    assert_eq!(
        text(&out.stderr),
        "clawgate: warning: 'systemctl stop clawgate' failed (exit status 5): Failed to stop clawgate.service: Unit clawgate.service not loaded.\n"
    );
    assert!(!system_unit(&host).exists());
}

#[test]
fn start_stop_and_restart_report_what_they_ran() {
    let host = ServiceHost::systemd();
    ok(&host.run(&["install", "--user"]));
    host.take_calls();
    let stdout = ok(&host.run(&["start"]));
    assert_eq!(
        host.take_calls(),
        [
            "systemctl --user reset-failed clawgate",
            "systemctl --user start clawgate"
        ]
    );
    assert_eq!(
        stdout,
        "Started the systemd user service (clawgate.service)\n  \
         ran        systemctl --user reset-failed clawgate\n  \
         ran        systemctl --user start clawgate\n"
    );
    let v = json(&host.run(&["stop", "--json"]));
    assert_eq!(host.take_calls(), ["systemctl --user stop clawgate"]);
    assert_eq!(
        (v["ok"].as_bool(), v["action"].as_str()),
        (Some(true), Some("stop"))
    );
    assert_eq!(
        v["summary"],
        "Stopped the systemd user service (clawgate.service)"
    );
    ok(&host.run(&["gateway", "restart", "--user"]));
    assert_eq!(
        host.take_calls(),
        [
            "systemctl --user reset-failed clawgate",
            "systemctl --user restart clawgate"
        ]
    );
}

#[test]
fn start_without_an_installed_service_points_at_install() {
    let host = ServiceHost::systemd();
    let out = host.run(&["start", "--system"]);
    assert_eq!(out.status.code(), Some(1));
    let want = format!(
        "clawgate: the systemd system service is not installed ('{}' does not exist): run 'clawgate install' first\n",
        system_unit(&host).display()
    );
    assert_eq!(text(&out.stderr), want);
    assert!(host.take_calls().is_empty());
}

#[test]
fn a_failed_start_names_the_gateways_last_complaint() {
    let host = ServiceHost::systemd();
    ok(&host.run(&["install", "--system"]));
    host.take_calls();
    host.canned(
        "systemctl.start",
        "",
        "Job for clawgate.service failed because the control process exited with error code.\n",
        1,
    );
    host.canned(
        "journalctl",
        "INFO starting\nERROR cannot listen on 127.0.0.1:18789: address in use\nINFO stopped\n",
        "",
        0,
    );
    let v = json(&host.run(&["start", "--json"]));
    assert_eq!(v["ok"], false);
    let msg = v["error"]["message"].as_str().unwrap();
    assert_eq!(
        msg,
        "'systemctl start clawgate' failed (exit status 1): Job for clawgate.service failed \
         because the control process exited with error code.; the gateway logged \
         (journalctl -u clawgate -n 50 -o cat --no-pager): ERROR cannot listen on \
         127.0.0.1:18789: address in use"
    );
    assert_eq!(v["commands"][1]["ok"], false);
    assert_eq!(v["commands"][1]["exitCode"], 1);
    assert_eq!(
        host.take_calls(),
        [
            "systemctl reset-failed clawgate",
            "systemctl start clawgate",
            "journalctl -u clawgate -n 50 -o cat --no-pager",
        ]
    );
    // Without --json: the report on stdout, the error on stderr, exit 1.
    let out = host.run(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("starting the systemd system service failed\n"));
    assert_eq!(text(&out.stderr), format!("clawgate: {msg}\n"));
}
