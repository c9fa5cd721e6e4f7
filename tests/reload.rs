//! Configuration reload (SIGHUP and the polled file) and in-process restart
//! (SIGUSR1, or a change of port), observed the way clients see them: over
//! WebSocket connections to the real binary.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{
    clawgate, connect_params, free_port, spawn_listening_rx, Closed, Gateway, Opts, TempDir, Ws,
};

fn config(token: &str, extra: &str) -> String {
    format!(
        r#"{{"gateway":{{"mode":"local","auth":{{"mode":"token","token":"{token}"}}{extra}}}}}"#
    )
}

fn config_path(gw: &Gateway) -> PathBuf {
    gw.home.path().join("clawgate.json")
}

/// Rewrites the config file and makes sure its mtime moves even on file
/// systems with coarse timestamps (the size alone may not change).
fn rewrite(path: &PathBuf, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, path).expect("replace config");
}

/// Tries a full handshake with `token`: the hello payload, or the error.
fn try_connect(port: u16, token: &str) -> Result<Value, Value> {
    let mut ws = Ws::connect(port, &[]);
    let ch = ws.recv();
    assert_eq!(ch["event"], "connect.challenge", "{ch}");
    let params = connect_params(token, 4, 4, "cli", &["operator.admin"]);
    ws.send(&json!({"type": "req", "id": "c1", "method": "connect", "params": params}));
    let res = ws.recv_res("c1");
    if res["ok"] == true {
        ws.close();
        Ok(res["payload"].clone())
    } else {
        Err(res["error"].clone())
    }
}

fn client(port: u16, token: &str) -> Ws {
    let mut ws = Ws::connect(port, &[]);
    ws.handshake(connect_params(token, 4, 4, "cli", &["operator.admin"]));
    ws
}

/// Collects stderr until a line contains `needle`; panics after `limit`.
fn wait_stderr(gw: &Gateway, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        for line in gw.stderr_lines() {
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no stderr line with {needle:?} within {limit:?}; saw {seen:?}");
}

/// Polls until `f` holds, for at most `limit`.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The next `listening on ws://127.0.0.1:PORT (PID N)` line: (port, pid).
fn next_listening(gw: &Gateway, limit: Duration) -> (u16, u32) {
    let deadline = Instant::now() + limit;
    while let Some(line) = gw.next_stdout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(rest) = line.strip_prefix("listening on ws://127.0.0.1:") {
            let port = rest.split_whitespace().next().unwrap().parse().unwrap();
            let pid = rest
                .split("(PID ")
                .nth(1)
                .and_then(|p| p.trim_end_matches(')').parse().ok())
                .unwrap();
            return (port, pid);
        }
    }
    panic!("the gateway did not announce a new listener within {limit:?}");
}

/// The `shutdown` event a restart sends, then its 1012 close.
fn expect_restart_notice(ws: &mut Ws) {
    let ev = ws.recv_event("shutdown");
    assert_eq!(ev["payload"]["reason"], "gateway restarting", "{ev}");
    let expected = ev["payload"]["restartExpectedMs"].as_u64();
    assert!(expected.is_some_and(|ms| ms > 0), "{ev}");
    assert!(matches!(ws.expect_close(), Closed::Frame(1012, _)));
}

#[test]
fn sighup_rotates_the_token_and_closes_clients_of_the_old_one() {
    let gw = Gateway::with_config(&config("alpha-token", ""));
    let mut old = client(gw.port, "alpha-token");
    rewrite(&config_path(&gw), &config("beta-token", ""));
    gw.signal("HUP");
    assert_eq!(
        old.expect_close(),
        Closed::Frame(4001, "gateway auth changed".into())
    );
    wait_stderr(
        &gw,
        "configuration reloaded (SIGHUP): gateway.auth",
        Duration::from_secs(5),
    );
    let err = try_connect(gw.port, "alpha-token").expect_err("old token must be refused");
    assert_eq!(err["details"]["code"], "AUTH_TOKEN_MISMATCH", "{err}");
    try_connect(gw.port, "beta-token").expect("new token works");
}

#[test]
fn a_changed_file_is_applied_without_a_signal() {
    let gw = Gateway::with_config(&config("alpha-token", r#","tickIntervalMs":60000"#));
    let mut ws = client(gw.port, "alpha-token");
    let extra =
        r#","tickIntervalMs":200,"limits":{"maxUnauthorizedCalls":3}},"logging":{"level":"debug""#;
    rewrite(&config_path(&gw), &config("alpha-token", extra));
    // Polled once a second plus the debounce: the new interval is in force
    // within a few seconds, without waiting out the old 60 s.
    let started = Instant::now();
    ws.recv_event("tick");
    assert!(started.elapsed() < Duration::from_secs(5));
    let line = wait_stderr(
        &gw,
        "configuration reloaded (config file changed)",
        Duration::from_secs(2),
    );
    for key in ["gateway.tickIntervalMs", "gateway.limits", "logging.level"] {
        assert!(line.contains(key), "{line}");
    }
    let cfg = ws.call("config.get", None);
    let c = &cfg["payload"]["config"];
    assert_eq!(c["gateway"]["tickIntervalMs"], 200, "{cfg}");
    assert_eq!(c["gateway"]["limits"]["maxUnauthorizedCalls"], 3, "{cfg}");
    assert_eq!(c["logging"]["level"], "debug", "{cfg}");
    // The secret did not change, so the client stays connected.
    assert_eq!(ws.call("health", None)["ok"], true);
}

#[test]
fn a_broken_config_is_reported_and_the_gateway_keeps_serving() {
    let gw = Gateway::with_config(&config("alpha-token", ""));
    let mut ws = client(gw.port, "alpha-token");
    rewrite(
        &config_path(&gw),
        "{\"gateway\": {\"mode\": \"local\",\n  \"port\": }",
    );
    gw.signal("HUP");
    let line = wait_stderr(&gw, "config reload (SIGHUP) failed", Duration::from_secs(5));
    assert!(line.contains("clawgate.json:2:11:"), "{line}");
    assert!(line.contains("keeping the running configuration"), "{line}");
    // An unknown key is refused the same way.
    rewrite(&config_path(&gw), &config("beta-token", r#","prot":1"#));
    gw.signal("HUP");
    let line = wait_stderr(&gw, "config reload (SIGHUP) failed", Duration::from_secs(5));
    assert!(line.contains("unknown field 'prot'"), "{line}");
    assert_eq!(ws.call("health", None)["ok"], true);
    try_connect(gw.port, "alpha-token").expect("the running token still works");
    try_connect(gw.port, "beta-token").expect_err("nothing of the broken file applies");
}

#[test]
fn reload_mode_off_waits_for_sighup() {
    let off = r#","reload":{"mode":"off"}"#;
    let gw = Gateway::with_config(&config("alpha-token", off));
    rewrite(&config_path(&gw), &config("beta-token", off));
    wait_stderr(&gw, "gateway.reload.mode is off", Duration::from_secs(5));
    try_connect(gw.port, "alpha-token").expect("file changes are not applied");
    gw.signal("HUP");
    assert!(eventually(Duration::from_secs(5), || try_connect(
        gw.port,
        "beta-token"
    )
    .is_ok()));
    try_connect(gw.port, "alpha-token").expect_err("SIGHUP applied the rotation");
}

#[test]
fn a_port_change_restarts_in_process_with_notice() {
    let home = TempDir::new();
    let state = home.path().join("state");
    let (p1, p2) = (free_port(), free_port());
    let text = |port: u16| config("alpha-token", &format!(r#","port":{port}"#));
    let path = home.write("clawgate.json", &text(p1));
    let mut cmd = clawgate(home.path());
    cmd.arg("run")
        .arg("--state-dir")
        .arg(&state)
        .arg("--config")
        .arg(&path);
    let ((child, port, _, stderr), stdout) = spawn_listening_rx(&mut cmd).expect("start");
    assert_eq!(port, p1);
    let pid = child.id();
    let gw = Gateway::adopt(child, port, home, state, stdout, stderr);
    let mut ws = client(p1, "alpha-token");
    rewrite(&path, &text(p2));
    expect_restart_notice(&mut ws);
    let (new_port, new_pid) = next_listening(&gw, Duration::from_secs(10));
    assert_eq!((new_port, new_pid), (p2, pid), "same process, new port");
    let hello = try_connect(p2, "alpha-token").expect("serving on the new port");
    assert!(hello["snapshot"]["uptimeMs"].as_u64().unwrap() < 10_000);
    assert!(std::net::TcpStream::connect(("127.0.0.1", p1)).is_err());
}

#[test]
fn hot_mode_keeps_the_port_and_says_so() {
    let hot = r#","reload":{"mode":"hot"}"#;
    let gw = Gateway::with_config(&config("alpha-token", hot));
    let mut ws = client(gw.port, "alpha-token");
    // The log file is opened at start-up: turning it on needs a restart.
    let with_file = format!(r#"{hot}}},"logging":{{"file":true"#);
    rewrite(&config_path(&gw), &config("alpha-token", &with_file));
    gw.signal("HUP");
    let line = wait_stderr(&gw, "needs a restart", Duration::from_secs(5));
    assert!(line.contains("logging.file"), "{line}");
    assert!(!gw.state.join("logs").exists());
    assert_eq!(
        ws.call("health", None)["ok"],
        true,
        "still the same connection"
    );
}

#[test]
fn sigusr1_restarts_in_process_when_enabled() {
    let gw = Gateway::with(Opts {
        config: Some(r#"{"gateway":{"mode":"local"},"commands":{"restart":true}}"#),
        ..Opts::default()
    });
    let (mut ws, _) = gw.client();
    gw.signal("USR1");
    expect_restart_notice(&mut ws);
    // `--port 0` picks a new port at every start; the PID stays.
    let (port, pid) = next_listening(&gw, Duration::from_secs(10));
    assert_eq!(pid, gw.pid());
    let hello = try_connect(port, &gw.token()).expect("restarted gateway answers");
    assert!(hello["snapshot"]["uptimeMs"].as_u64().unwrap() < 10_000);
}

#[test]
fn sigusr1_is_refused_unless_enabled() {
    let gw = Gateway::start();
    let (mut ws, _) = gw.client();
    gw.signal("USR1");
    let line = wait_stderr(&gw, "SIGUSR1 ignored", Duration::from_secs(5));
    assert!(line.contains("commands.restart"), "{line}");
    assert_eq!(ws.call("health", None)["ok"], true);
}

#[test]
fn an_edited_generated_token_applies_on_sighup() {
    let gw = Gateway::start();
    let old = gw.token();
    std::fs::write(gw.state.join("gateway.token"), "freshly-rotated-token\n").unwrap();
    gw.signal("HUP");
    wait_stderr(
        &gw,
        "configuration reloaded (SIGHUP): gateway.auth",
        Duration::from_secs(5),
    );
    try_connect(gw.port, &old).expect_err("the old generated token is refused");
    try_connect(gw.port, "freshly-rotated-token").expect("the edited token works");
}
