//! The client commands (`call`, `health`, `status`, `probe`, `logs`) and
//! the top-level flags, black-box against a real gateway.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{
    assert_exit, clawgate, free_port, json_of, lines_of, lone, run_with_timeout, text, Gateway, BIN,
};

const LIMIT: Duration = Duration::from_secs(20);

// ---- call -------------------------------------------------------------------

#[test]
fn call_health_status_and_presence_print_text_and_json() {
    let gw = Gateway::start();
    let out = gw.cli(&["call", "health"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).starts_with("Gateway call: health"),
        "{}",
        text(&out.stdout)
    );

    let out = gw.cli(&["call", "health", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["ts"].is_u64(), "{v}");

    let out = gw.cli(&["call", "status", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert!(v.get("runtimeVersion").is_some(), "{v}");
    assert!(v.get("sessions").is_some(), "{v}");

    let out = gw.cli(&["call", "system-presence", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    let list = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    assert_eq!(list[0]["mode"], "gateway", "{v}");
}

#[test]
fn call_unknown_method_exits_1_with_the_gateway_error() {
    let gw = Gateway::start();
    let out = gw.cli(&["call", "nope.nope"]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(err.contains("unknown method: nope.nope"), "{err}");
    assert!(err.contains("INVALID_REQUEST"), "{err}");

    let out = gw.cli(&["call", "nope.nope", "--json"]);
    assert_exit(&out, 1);
    let v = json_of(&out);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], "INVALID_REQUEST", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope.nope")),
        "{v}"
    );
}

#[test]
fn call_usage_errors_exit_2() {
    for args in [
        &["call", "health", "--params", "{bad"][..],
        &["call"],
        &["call", "health", "--no-such-flag"],
        &["call", "health", "--timeout", "0"],
    ] {
        let out = lone(args);
        assert_exit(&out, 2);
        assert!(text(&out.stderr).starts_with("clawgate: "), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn unreachable_gateway_exits_1_naming_the_url() {
    let port = free_port().to_string();
    let url = format!("ws://127.0.0.1:{port}");
    for args in [
        &["call", "health", "--port", &port][..],
        &["call", "health", "--url", &url, "--token", "x"],
    ] {
        let out = lone(args);
        assert_exit(&out, 1);
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("gateway not reachable at {url}")),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn wrong_token_is_refused_and_the_right_one_or_the_token_file_works() {
    let gw = Gateway::start();
    let url = gw.url();
    let out = lone(&["call", "health", "--url", &url, "--token", "wrong"]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("unauthorized: gateway token mismatch"),
        "{err}"
    );

    let token = gw.token();
    let out = lone(&["call", "health", "--url", &url, "--token", &token]);
    assert_exit(&out, 0);

    // gw.cli passes only --state-dir and --port: the token comes from the
    // generated file.
    let out = gw.cli(&["call", "health"]);
    assert_exit(&out, 0);
    let out = gw.cli(&["status", "--json", "--no-probe"]);
    assert_eq!(json_of(&out)["auth"]["source"], "token file");
}

#[test]
fn silent_server_times_out_after_the_given_ms() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    // Accepts, reads nothing, answers nothing, until the test ends.
    let server = std::thread::spawn(move || {
        let conn = listener.accept();
        let _ = done_rx.recv_timeout(LIMIT);
        drop(conn);
    });
    let url = format!("ws://127.0.0.1:{port}");
    for json in [false, true] {
        let mut args = vec!["call", "health", "--url", &url, "--token", "x"];
        args.extend(["--timeout", "300"]);
        if json {
            args.push("--json");
        }
        let started = Instant::now();
        let out = lone(&args);
        let took = started.elapsed();
        assert_exit(&out, 1);
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let err = text(&out.stderr);
        assert!(err.contains("gateway timeout after 300ms"), "{err}");
        if json {
            let v = json_of(&out);
            assert_eq!(v["ok"], false, "{v}");
            assert_eq!(v["error"]["message"], "gateway timeout after 300ms", "{v}");
        }
    }
    let _ = done_tx.send(());
    server.join().expect("server thread");
}

// ---- health, status, probe ----------------------------------------------------

#[test]
fn health_prints_a_summary_or_the_payload() {
    let gw = Gateway::start();
    let out = gw.cli(&["health"]);
    assert_exit(&out, 0);
    let t = text(&out.stdout);
    assert!(t.contains("Gateway Health"), "{t}");
    assert!(t.contains("OK ("), "{t}");

    let out = gw.cli(&["health", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["ts"].is_u64(), "{v}");
}

#[test]
fn status_json_reports_config_state_auth_instance_and_probe() {
    let gw = Gateway::start();
    let out = gw.cli(&["status", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!(v["url"], gw.url(), "{v}");
    let cfg = gw.home.path().join("clawgate.json");
    // gw.cli does not pass --config: the default is in the state dir.
    assert_eq!(
        v["config"]["path"],
        gw.state.join("clawgate.json").display().to_string(),
        "{v}"
    );
    assert!(v["config"]["exists"].is_boolean(), "{v}");
    assert!(cfg.exists());
    assert_eq!(v["stateDir"], gw.state.display().to_string(), "{v}");
    assert_eq!(v["auth"]["source"], "token file", "{v}");
    assert_eq!(v["instance"]["running"], true, "{v}");
    assert_eq!(v["instance"]["pid"], gw.pid(), "{v}");
    let probe = &v["probe"];
    assert_eq!(probe["ok"], true, "{v}");
    assert_eq!(probe["protocol"], 4, "{v}");
    assert!(probe["server"]["version"].is_string(), "{v}");
    assert!(probe["server"]["connId"].is_string(), "{v}");
    // The gateway's memory ceiling and connections, from its status.
    let ceiling = &probe["memoryCeiling"];
    assert!(ceiling["totalBytes"].as_u64().unwrap_or(0) > 8 << 20, "{v}");
    assert!(ceiling["perConnectionBytes"].is_u64(), "{v}");
    // This one, and the probe's own if its close is not yet seen.
    let clients = probe["connections"]["clients"].as_u64();
    assert!(matches!(clients, Some(1..=2)), "{v}");
    let out = gw.cli(&["status"]);
    let t = text(&out.stdout);
    assert!(t.contains("  memory:    at most "), "{t}");

    let out = gw.cli(&["status", "--json", "--config", &cfg.display().to_string()]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!(v["config"]["path"], cfg.display().to_string(), "{v}");
    assert_eq!(v["config"]["exists"], true, "{v}");

    let out = gw.cli(&["status", "--no-probe", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert!(v["probe"].is_null(), "{v}");
    assert_eq!(v["instance"]["running"], true, "{v}");

    let out = gw.cli(&["status"]);
    assert_exit(&out, 0);
    assert!(text(&out.stdout).starts_with("Gateway status"));
}

#[test]
fn status_of_a_stopped_gateway_exits_1_with_probe_and_instance_false() {
    let mut gw = Gateway::start();
    gw.child.kill().expect("kill");
    gw.child.wait().expect("reap");
    let port = free_port().to_string();
    let mut cmd = clawgate(gw.home.path());
    cmd.args(["status", "--json", "--port", &port, "--state-dir"])
        .arg(&gw.state);
    let out = run_with_timeout(cmd, LIMIT);
    assert_exit(&out, 1);
    let v = json_of(&out);
    assert_eq!(v["probe"]["ok"], false, "{v}");
    assert_eq!(v["instance"]["running"], false, "{v}");
    assert!(
        v["probe"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("gateway not reachable")),
        "{v}"
    );
}

#[test]
fn probe_json_reports_each_call_ok() {
    let gw = Gateway::start();
    let out = gw.cli(&["probe", "--json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!(v["ok"], true, "{v}");
    let calls = v["calls"].as_array().expect("calls array");
    let methods: Vec<&str> = calls.iter().filter_map(|c| c["method"].as_str()).collect();
    assert_eq!(
        methods,
        ["health", "status", "system-presence", "config.get"],
        "{v}"
    );
    assert!(calls.iter().all(|c| c["ok"] == true), "{v}");

    let out = gw.cli(&["probe"]);
    assert_exit(&out, 0);
    assert!(text(&out.stdout).starts_with("Gateway probe: "));
}

#[test]
fn probe_of_nothing_exits_1() {
    let port = free_port().to_string();
    let out = lone(&["probe", "--json", "--port", &port]);
    assert_exit(&out, 1);
    assert_eq!(json_of(&out)["ok"], false);
}

// ---- top-level flags and aliases ------------------------------------------------

#[test]
fn version_help_and_the_gateway_alias() {
    let out = lone(&["--version"]);
    assert_exit(&out, 0);
    assert_eq!(
        text(&out.stdout).trim_end(),
        format!("clawgate {}", env!("CARGO_PKG_VERSION"))
    );

    let out = lone(&["--help"]);
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("call"));

    let gw = Gateway::start();
    let out = gw.cli(&["gateway", "call", "health"]);
    assert_exit(&out, 0);
    assert!(text(&out.stdout).starts_with("Gateway call: health"));
}

#[test]
fn a_closed_stdout_pipe_exits_0_without_a_panic() {
    // python3 makes the pipe and closes its read end before exec, so the
    // first write fails with EPIPE every time; SIGPIPE is reset to the
    // default as a shell would leave it.
    let script = "import os,signal,sys\n\
                  signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n\
                  r,w=os.pipe(); os.close(r); os.dup2(w,1); os.close(w)\n\
                  os.execv(sys.argv[1], sys.argv[1:])";
    for args in [&["--help"][..], &["--version"], &["help", "call"]] {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", script, BIN])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null());
        let probe = Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            println!("skipped: python3 is not available");
            return;
        }
        let out = run_with_timeout(cmd, LIMIT);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

// ---- logs ---------------------------------------------------------------------

const FILE_LOGGING: &str = r#"{"gateway":{"mode":"local"},"logging":{"file":true}}"#;

/// Waits (bounded) for `clawgate logs` to show the start-up line, which
/// reaches the file just after the gateway announces itself.
fn logs_with_startup_line(gw: &Gateway, args: &[&str]) -> Output {
    let deadline = Instant::now() + LIMIT;
    loop {
        let out = gw.cli(args);
        if text(&out.stdout).contains("listening on") {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "no start-up line: {}",
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logs_prints_the_last_lines_and_json_answers() {
    let gw = Gateway::with_config(FILE_LOGGING);
    let out = logs_with_startup_line(&gw, &["logs", "--limit", "3"]);
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.lines().count() <= 3, "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.contains(" INFO ") || l.contains(" WARN ")),
        "{stdout}"
    );
    let out = logs_with_startup_line(&gw, &["logs", "--json"]);
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1, "one answer, one line: {lines:?}");
    let v: Value = serde_json::from_str(lines[0]).expect("JSON");
    assert!(v["cursor"].as_u64().unwrap() > 0);
    assert!(v["file"].as_str().unwrap().ends_with("logs/clawgate.log"));
    assert!(v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.to_string().contains("listening on")));
}

#[test]
fn logs_follow_prints_new_lines_and_survives_rotation() {
    let gw = Gateway::with_config(FILE_LOGGING);
    logs_with_startup_line(&gw, &["logs"]);
    let log = gw.state.join("logs/clawgate.log");
    let mut cmd = clawgate(gw.home.path());
    cmd.args(["logs", "--follow", "--limit", "1", "--state-dir"])
        .arg(&gw.state)
        .args(["--port", &gw.port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn logs --follow");
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let expect = |rx: &mpsc::Receiver<String>, want: &str| {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(want) => return,
                Ok(_) => {}
                Err(_) => panic!("no line with {want:?}"),
            }
        }
    };
    // The first read prints the last line; appended lines follow.
    std::thread::sleep(Duration::from_millis(300));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(
        &mut f,
        b"2026-01-01T00:00:00.000Z WARN appended by the test\n",
    )
    .unwrap();
    expect(&out, "appended by the test");
    // A rotated (shorter) file is read again from its start.
    std::fs::write(&log, "fresh\n").unwrap();
    expect(&err, "the log file was rotated or truncated");
    expect(&out, "fresh");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn logs_without_a_log_file_says_how_to_get_one() {
    let gw = Gateway::start();
    let out = gw.cli(&["logs"]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(err.contains("set logging.file to true in"), "{err}");
    assert!(err.contains("'journalctl -u clawgate'"), "{err}");
    let out = gw.cli(&["logs", "--json"]);
    assert_exit(&out, 1);
    assert_eq!(json_of(&out)["error"]["code"], "UNAVAILABLE");
}
