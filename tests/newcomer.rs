//! What a new user trips on, black-box: malformed `--url` and `--port`
//! values, options before the command, a broken config while a gateway
//! keeps serving, `${VAR}` in the config, a `--reset` of a running dev
//! gateway, each start-up line printed once, the wording scripts match,
//! and `logs --follow` ending with its reader.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    assert_exit, clawgate, connect_params, lone, ok_stdout, run_with_timeout, spawn_listening,
    text, Gateway, Listening, Opts, ServiceHost, TempDir, Ws,
};

const LIMIT: Duration = Duration::from_secs(20);

// ---- --url and --port ---------------------------------------------------------

#[test]
fn wss_and_malformed_urls_are_usage_errors_and_help_promises_ws_only() {
    for (url, why) in [
        ("wss://127.0.0.1:1", "wss:// is not supported yet"),
        ("ws://", "the URL names no host"),
        ("ws://h:99999", "the port must be a number from 1 to 65535"),
        ("ws://[::1", "the IPv6 address is missing its closing ']'"),
        ("ws://host:1/with space", "a URL cannot contain spaces"),
    ] {
        for cmd in ["call health", "status", "probe", "health", "logs"] {
            let mut args: Vec<&str> = cmd.split(' ').collect();
            args.extend(["--url", url]);
            let out = lone(&args);
            assert_exit(&out, 2);
            let want = format!("clawgate: invalid value '{url}' for '--url': {why}");
            let err = text(&out.stderr);
            assert!(err.starts_with(&want), "{args:?}: {err}");
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
    for cmd in ["call", "status", "probe", "health", "logs"] {
        let help = text(&lone(&[cmd, "--help"]).stdout);
        assert!(!help.contains("ws:// or wss://"), "{cmd}: {help}");
        assert!(help.contains("wss:// is not"), "{cmd}: {help}");
    }
}

#[test]
fn a_client_port_of_0_is_a_usage_error_and_nothing_is_probed() {
    for args in [
        &["status", "--port", "0"][..],
        &["status", "--json", "--port", "0"],
        &["call", "health", "--port", "0"],
    ] {
        let out = lone(args);
        assert_exit(&out, 2);
        assert_eq!(
            text(&out.stderr),
            "clawgate: invalid value '0' for '--port': a client needs a fixed port from 1 to 65535\n",
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn install_gives_one_port_range() {
    for port in ["0", "70000", "x"] {
        let out = lone(&["install", "--port", port]);
        assert_exit(&out, 2);
        assert_eq!(
            text(&out.stderr),
            format!("clawgate: invalid value '{port}' for '--port': a service needs a fixed port from 1 to 65535\n")
        );
    }
}

#[test]
fn options_before_the_command_get_the_line_meant() {
    let out = lone(&["--dev", "status"]);
    assert_exit(&out, 2);
    assert_eq!(
        text(&out.stderr),
        "clawgate: unexpected argument 'status' for 'clawgate run' (options go after the command: 'clawgate status --dev')\n"
    );
}

// ---- the service commands ----------------------------------------------------

#[test]
fn without_user_the_linger_warning_names_the_login_not_the_uid() {
    let host = ServiceHost::systemd();
    host.canned("loginctl.show-user", "Linger=no\n", "", 0);
    let mut cmd = host.command(&["install", "--user"]);
    cmd.env_remove("USER").env_remove("LOGNAME");
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    ok_stdout(&out);
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    let name = text(&id.stdout).trim().to_string();
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("lingering is off for user '{name}'"))
            && err.contains(&format!("'loginctl enable-linger {name}'")),
        "{err}"
    );
    assert!(host
        .take_calls()
        .contains(&format!("loginctl show-user {name} --property=Linger")),);
}

#[test]
fn under_clawgate_root_messages_name_the_prefixed_paths() {
    let host = ServiceHost::new();
    let out = host.run(&["install"]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    for path in ["/run/systemd/system", "/etc/openwrt_release"] {
        let want = format!("'{}' is missing", host.at(path).display());
        assert!(err.contains(&want), "want {want:?} in {err}");
    }
}

// ---- ${NAME} in the config ----------------------------------------------------

const REF_TOKEN: &str = "3f9a1c7e5b2d4f6a8c0e2b4d6f8a0c2e";

#[test]
fn a_config_token_naming_a_variable_is_the_variables_value() {
    let config = r#"{"gateway":{"mode":"local","auth":{"token":"${GW_TOKEN}"}},
        "models":{"providers":{"p":{"baseUrl":"http://${GW_HOST}:1/v1","apiKey":"${GW_KEY}"}}}}"#;
    let gw = Gateway::with(Opts {
        config: Some(config),
        env: &[
            ("GW_TOKEN", REF_TOKEN),
            ("GW_HOST", "models.lan"),
            ("GW_KEY", "sk-secret-key"),
        ],
        ..Opts::default()
    });
    // The literal text is no credential; the value is.
    let url = gw.url();
    let out = lone(&["call", "health", "--url", &url, "--token", "${GW_TOKEN}"]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("token mismatch"),
        "{}",
        text(&out.stderr)
    );
    let out = lone(&[
        "call",
        "config.get",
        "--json",
        "--url",
        &url,
        "--token",
        REF_TOKEN,
    ]);
    assert_exit(&out, 0);
    // config.get shows the file as written, secrets redacted, no value.
    let shown = text(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(v["parsed"]["gateway"]["auth"]["token"], "__REDACTED__");
    assert_eq!(
        v["parsed"]["models"]["providers"]["p"]["baseUrl"],
        "http://${GW_HOST}:1/v1"
    );
    for secret in [REF_TOKEN, "sk-secret-key", "models.lan"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[test]
fn a_config_naming_an_unset_variable_does_not_start() {
    let home = TempDir::new();
    let path = home.write(
        "clawgate.json",
        r#"{"gateway":{"mode":"local","auth":{"token":"${OPENCLAW_GATEWAY_TOKEN}"}}}"#,
    );
    let mut cmd = clawgate(home.path());
    cmd.args(["run", "--port", "0", "--state-dir"])
        .arg(home.path().join("state"))
        .arg("--config")
        .arg(&path);
    let out = run_with_timeout(cmd, LIMIT);
    assert_exit(&out, 78);
    assert_eq!(
        text(&out.stderr),
        format!(
            "clawgate: {}: 'gateway.auth.token' uses ${{OPENCLAW_GATEWAY_TOKEN}}, which is not set\n",
            path.display()
        )
    );
    assert!(!home.path().join("state").exists());
}

#[test]
fn a_wrong_type_in_the_config_is_worded_for_its_key() {
    let home = TempDir::new();
    let path = home.write(
        "clawgate.json",
        "{\"gateway\": {\"mode\": \"local\",\n  \"port\": \"x\"}}",
    );
    let mut cmd = clawgate(home.path());
    cmd.args(["run", "--config"]).arg(&path);
    let out = run_with_timeout(cmd, LIMIT);
    assert_exit(&out, 78);
    assert_eq!(
        text(&out.stderr),
        format!(
            "clawgate: {}:2:13: 'gateway.port' must be a port number from 1 to 65535\n",
            path.display()
        )
    );
}

// ---- a broken config while the gateway keeps serving ----------------------------

#[test]
fn a_broken_config_does_not_block_call_with_port_and_token_nor_status() {
    let gw = Gateway::start();
    let config = gw.home.path().join("clawgate.json");
    std::fs::write(&config, "{\"gateway\": {\"mode\": \"local\",}}\n").expect("break it");
    let (port, token) = (gw.port.to_string(), gw.token());
    let client = |args: &[&str]| {
        let mut cmd = clawgate(gw.home.path());
        cmd.args(args)
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&gw.state);
        run_with_timeout(cmd, LIMIT)
    };
    let parse_error = format!("{}:1:30: trailing comma", config.display());

    let out = client(&["call", "health", "--port", &port, "--token", &token]);
    assert_exit(&out, 0);
    // Without a credential the file is needed, and says why it fails.
    let out = client(&["call", "health", "--port", &port]);
    assert_exit(&out, 78);
    assert!(
        text(&out.stderr).contains(&parse_error),
        "{}",
        text(&out.stderr)
    );

    let out = client(&["status", "--port", &port]);
    assert_exit(&out, 0);
    let report = text(&out.stdout);
    assert!(
        report.contains(&format!("does not load: {parse_error}")),
        "{report}"
    );
    assert!(report.contains(" ok in "), "{report}");
    let out = client(&["status", "--json", "--port", &port]);
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        v["config"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&parse_error)),
        "{v}"
    );
    assert_eq!(v["probe"]["ok"], true, "{v}");
}

#[test]
fn status_json_prints_json_even_when_nothing_resolves() {
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    cmd.env_remove("HOME")
        .args(["status", "--json", "--no-probe"]);
    let out = run_with_timeout(cmd, LIMIT);
    assert_exit(&out, 78);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HOME")),
        "{v}"
    );
    assert!(v["service"].is_object(), "{v}");
}

// ---- the words scripts match ----------------------------------------------------

#[test]
fn a_refused_credential_is_reachable_auth_refused_not_unreachable() {
    let gw = Gateway::start();
    let url = gw.url();
    let wrong = ["--url", url.as_str(), "--token", "wrong"];
    let refused = "reachable, auth refused: unauthorized: gateway token mismatch";

    let out = lone(&[&["status"][..], &wrong].concat());
    assert_exit(&out, 1);
    let report = text(&out.stdout);
    assert!(report.contains(&format!("{url} {refused}")), "{report}");
    let out = lone(&[&["status", "--json"][..], &wrong].concat());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (&v["probe"]["reachable"], &v["probe"]["ok"]),
        (&true.into(), &false.into()),
        "{v}"
    );

    let out = lone(&[&["probe"][..], &wrong].concat());
    assert_exit(&out, 1);
    let report = text(&out.stdout);
    assert!(
        report.starts_with(&format!("Gateway probe: {url} {refused}")),
        "{report}"
    );
    let out = lone(&[&["probe", "--json"][..], &wrong].concat());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (&v["reachable"], &v["ok"]),
        (&true.into(), &false.into()),
        "{v}"
    );

    // Nobody there: unreachable, and JSON says so.
    drop(gw);
    let out = lone(&[&["probe", "--json"][..], &wrong].concat());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (&v["reachable"], &v["ok"]),
        (&false.into(), &false.into()),
        "{v}"
    );
    let out = lone(&[&["status"][..], &wrong].concat());
    assert!(
        text(&out.stdout).contains(&format!("{url} unreachable: ")),
        "{}",
        text(&out.stdout)
    );
}

// ---- logs --follow | head -1 ----------------------------------------------------

#[test]
fn logs_follow_ends_when_its_reader_does() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local"},"logging":{"file":true}}"#);
    let mut cmd = clawgate(gw.home.path());
    cmd.args(["logs", "--follow", "--limit", "1", "--state-dir"])
        .arg(&gw.state)
        .args(["--port", &gw.port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Killed(cmd.spawn().expect("spawn logs --follow"));
    // `head -1`: read one line, then close the pipe.
    let mut stdout = BufReader::new(child.0.stdout.take().expect("stdout"));
    let mut first = String::new();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = stdout.read_line(&mut first);
        let _ = tx.send(first);
        // `stdout` is dropped here: the reader is gone.
    });
    let first = rx.recv_timeout(LIMIT).expect("a first line");
    assert!(!first.is_empty());
    let closed = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break Some(status);
        }
        if closed.elapsed() > Duration::from_secs(3) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = status.expect("logs --follow still running 3 s after its reader left");
    assert_eq!(status.code(), Some(0));
}

// ---- start-up: nothing written before the lock and the bind ---------------------

/// A gateway process, killed and reaped when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `clawgate --dev ARGS --port 0` in `home`, started and listening: the
/// process, its port and its stdout so far.
fn dev_gateway(home: &TempDir, args: &[&str]) -> Result<(Killed, u16, Vec<String>), String> {
    let mut cmd = clawgate(home.path());
    cmd.arg("--dev").args(args).args(["--port", "0"]);
    let (child, port, stdout, _): Listening = spawn_listening(&mut cmd)?;
    Ok((Killed(child), port, stdout))
}

#[test]
fn reset_of_a_running_dev_gateway_fails_and_deletes_nothing() {
    let home = TempDir::new();
    let state = home.path().join(".clawgate-dev");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("clawgate.json"),
        r#"{"gateway":{"mode":"local"}}"#,
    )
    .unwrap();
    let (first, port, _) = dev_gateway(&home, &[]).expect("dev gateway starts");
    let token = std::fs::read_to_string(state.join("gateway.token")).expect("token");
    let lock = std::fs::read_to_string(state.join("gateway.lock")).expect("lock");

    let mut cmd = clawgate(home.path());
    cmd.args(["--dev", "--reset", "--port", "0"]);
    let out = run_with_timeout(cmd, LIMIT);
    assert_exit(&out, 1);
    assert_eq!(
        text(&out.stderr),
        format!("clawgate: gateway already running (PID {})\n", first.0.id())
    );
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert_eq!(
        std::fs::read_to_string(state.join("gateway.token")).unwrap(),
        token
    );
    assert_eq!(
        std::fs::read_to_string(state.join("gateway.lock")).unwrap(),
        lock
    );
    assert!(state.join("clawgate.json").exists());
    // The first gateway still serves, with the token it had.
    let mut ws = Ws::connect(port, &[]);
    ws.handshake(connect_params(
        token.trim(),
        3,
        4,
        "cli",
        &["operator.read"],
    ));
    drop(first);

    // Stopped, the reset happens, and says so once.
    let (again, _, stdout) = dev_gateway(&home, &["--reset"]).expect("starts");
    drop(again);
    assert_eq!(
        stdout.iter().filter(|l| *l == "dev state reset").count(),
        1,
        "{stdout:?}"
    );
    let new = std::fs::read_to_string(state.join("gateway.token")).unwrap();
    assert_ne!(new, token);
    assert!(!state.join("clawgate.json").exists());
}

#[test]
fn a_start_that_fails_on_a_busy_port_writes_nothing() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().unwrap().port().to_string();
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    cmd.args(["run", "--allow-unconfigured", "--port", &port]);
    let out = run_with_timeout(cmd, LIMIT);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains(&format!("port {port} is already in use")));
    assert!(
        !home.path().join(".clawgate").exists(),
        "the state directory was created"
    );
    // A dev state that exists is left exactly as it was, --reset or not.
    let state = home.path().join(".clawgate-dev");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("gateway.token"), "keep\n").unwrap();
    let mut cmd = clawgate(home.path());
    cmd.args(["--dev", "--reset", "--port", &port]);
    let out = run_with_timeout(cmd, LIMIT);
    assert_exit(&out, 1);
    let left: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["gateway.token"]);
    assert_eq!(
        std::fs::read_to_string(state.join("gateway.token")).unwrap(),
        "keep\n"
    );
}

// ---- start-up lines, once each ------------------------------------------------------

#[test]
fn start_up_lines_go_to_stdout_and_are_not_logged_again_on_stderr() {
    let mut gw = Gateway::with_config(r#"{"gateway":{"mode":"local"},"logging":{"file":true}}"#);
    assert!(gw
        .stdout
        .iter()
        .any(|l| l.starts_with("listening on ws://127.0.0.1:")));
    // Everything the gateway wrote on stderr by the time it is stopped.
    gw.signal("TERM");
    gw.wait_exit(LIMIT).expect("stopped");
    // The reader thread delivers what the pipe held.
    std::thread::sleep(Duration::from_millis(200));
    let stderr = gw.stderr_lines();
    assert!(
        !stderr
            .iter()
            .any(|l| l.contains("listening on") || l.contains("auth token")),
        "{stderr:?}"
    );
    // The log file has them, for `clawgate logs`.
    let log = std::fs::read_to_string(gw.state.join("logs/clawgate.log")).expect("log file");
    assert!(log.contains("INFO listening on ws://127.0.0.1:"), "{log}");
}

#[test]
fn under_the_journal_each_start_up_line_appears_once_with_its_priority() {
    use std::os::unix::fs::MetadataExt;
    let home = TempDir::new();
    // stdout and stderr both to one file, which JOURNAL_STREAM names: what
    // systemd does with its journal stream.
    let out_path = home.path().join("journal");
    let out = std::fs::File::create(&out_path).unwrap();
    let meta = out.metadata().unwrap();
    let mut cmd = clawgate(home.path());
    cmd.args(["run", "--allow-unconfigured", "--port", "0"])
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let child = Killed(cmd.spawn().expect("spawn"));
    let deadline = Instant::now() + LIMIT;
    let text = loop {
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        if text.contains("listening on ws://127.0.0.1") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Give a duplicate time to show up before looking.
    std::thread::sleep(Duration::from_millis(200));
    let text = std::fs::read_to_string(&out_path).unwrap_or(text);
    drop(child);
    let listening: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("listening on"))
        .collect();
    // One per address (127.0.0.1 and ::1), each once, as a journal record.
    assert!(!listening.is_empty(), "{text}");
    assert!(
        listening
            .iter()
            .all(|l| l.starts_with("<6>INFO listening on ws://")),
        "{text}"
    );
    let v4: Vec<&&str> = listening
        .iter()
        .filter(|l| l.contains("127.0.0.1"))
        .collect();
    assert_eq!(v4.len(), 1, "{text}");
    assert_eq!(text.matches("auth token generated").count(), 1, "{text}");
}
