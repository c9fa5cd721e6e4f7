//! `clawgate run` start-up, black-box: the start-up gate, config errors,
//! refusing an exposed bind without a secret, port precedence, the
//! generated token, the single-instance lock, a busy port and `--force`,
//! signals, `--dev` and the `gateway` alias.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    clawgate, lines_of, run_with_timeout, spawn_listening, text, Closed, Gateway, TempDir, Ws,
};

const LIMIT: Duration = Duration::from_secs(10);
const LOCAL: &str = r#"{"gateway":{"mode":"local"}}"#;

// ---- refusing to start ------------------------------------------------------

#[test]
fn run_without_config_is_blocked_with_exit_78_until_allow_unconfigured() {
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    cmd.arg("run");
    let out = run_with_timeout(cmd, LIMIT);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("gateway.mode"), "{err}");
    assert!(err.contains("--allow-unconfigured"), "{err}");
    assert!(!home.path().join(".clawgate/gateway.lock").exists());

    let mut cmd = clawgate(home.path());
    cmd.args(["run", "--allow-unconfigured", "--port", "0"]);
    let gw = Running::start(cmd).expect("starts with --allow-unconfigured");
    assert!(gw.port != 0);
    assert!(home.path().join(".clawgate/gateway.token").exists());
}

#[test]
fn config_syntax_error_exits_78_with_path_line_and_column() {
    let home = TempDir::new();
    // The trailing comma is only an error at the `}` on line 4, column 3.
    let path = home.write(
        "clawgate.json",
        "{\n  \"gateway\": {\n    \"mode\": \"local\",\n  }\n}\n",
    );
    let out = run_config(&home, &path);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    let prefix = format!("clawgate: {}:4:3: ", path.display());
    assert!(err.starts_with(&prefix), "want {prefix:?} in {err}");
    assert!(err.contains("trailing comma"), "{err}");
}

#[test]
fn config_unknown_key_exits_78_naming_the_key_at_its_line_and_column() {
    let home = TempDir::new();
    let path = home.write(
        "clawgate.json",
        "{\n  \"gateway\": {\n    \"mode\": \"local\",\n    \"bogus\": 1\n  }\n}\n",
    );
    let out = run_config(&home, &path);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    let prefix = format!("clawgate: {}:4:", path.display());
    let rest = err
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("want {prefix:?} in {err}"));
    let (col, msg) = rest.split_once(": ").expect("col: message");
    // `    "bogus"` spans columns 5 to 11 of line 4.
    let col: u32 = col.parse().expect("numeric column");
    assert!(
        (5..=11).contains(&col),
        "column {col} is not on the key: {err}"
    );
    assert!(msg.contains("unknown field 'bogus'"), "{err}");
}

fn run_config(home: &TempDir, path: &Path) -> Output {
    let mut cmd = clawgate(home.path());
    cmd.args(["run", "--port", "0", "--state-dir"])
        .arg(home.path().join("state"))
        .arg("--config")
        .arg(path);
    run_with_timeout(cmd, LIMIT)
}

#[test]
fn lan_bind_without_a_secret_exits_78_and_binds_nothing() {
    for auth in [&["--auth", "none"][..], &["--auth", "token"], &[]] {
        let home = TempDir::new();
        // The port stays held by this test while clawgate runs: had it tried
        // to bind before refusing, it would fail with "already in use" (exit
        // 1), not 78. Holding it also keeps parallel tests from taking it.
        let held = TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let mut cmd = clawgate(home.path());
        cmd.args(["run", "--bind", "lan", "--allow-unconfigured", "--port"])
            .arg(port.to_string())
            .args(auth);
        let out = run_with_timeout(cmd, LIMIT);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{auth:?}: {err}");
        assert!(
            err.contains("Refusing to bind gateway to lan without auth."),
            "{auth:?}: {err}"
        );
        assert!(text(&out.stdout).is_empty(), "{auth:?}");
        assert!(!err.contains("in use"), "{auth:?}: {err}");
        drop(held);
        assert!(!home.path().join(".clawgate/gateway.token").exists());
    }
}

#[test]
fn reset_without_dev_is_a_usage_error() {
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    cmd.args(["run", "--reset", "--allow-unconfigured", "--port", "0"]);
    let out = run_with_timeout(cmd, LIMIT);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Use --reset with --dev."));
}

// ---- the port -----------------------------------------------------------------

#[test]
fn port_precedence_is_flag_then_clawgate_env_then_openclaw_env_then_config() {
    let [a, b, c, d] = distinct_ports();
    let home = TempDir::new();
    let cfg = home.write(
        "clawgate.json",
        &format!(r#"{{"gateway":{{"mode":"local","port":{c}}}}}"#),
    );
    // Which port `run` listens on with these extra flags and variables.
    let listens_on = |what: &str, args: &[&str], env: &[(&str, u16)]| {
        let mut cmd = clawgate(home.path());
        cmd.arg("run")
            .arg("--state-dir")
            .arg(home.path().join("state"))
            .arg("--config")
            .arg(&cfg)
            .args(args);
        for (k, v) in env {
            cmd.env(k, v.to_string());
        }
        let gw = Running::start(cmd).unwrap_or_else(|e| panic!("{what}: {e}"));
        // Dropping it stops it and frees the state dir for the next case.
        gw.port
    };
    let both = [("CLAWGATE_GATEWAY_PORT", b), ("OPENCLAW_GATEWAY_PORT", d)];
    assert_eq!(listens_on("flag", &["--port", &a.to_string()], &both), a);
    assert_eq!(listens_on("CLAWGATE_*", &[], &both), b);
    assert_eq!(listens_on("OPENCLAW_*", &[], &both[1..]), d);
    assert_eq!(listens_on("config", &[], &[]), c);
}

/// Four loopback ports that were free a moment ago and differ.
fn distinct_ports() -> [u16; 4] {
    let held: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    [ports[0], ports[1], ports[2], ports[3]]
}

// ---- the generated token and the instance lock --------------------------------

#[test]
fn loopback_start_generates_a_0600_token_and_reuses_it_on_restart() {
    let home = TempDir::new();
    let state = home.path().join("state");
    let cfg = home.write("clawgate.json", LOCAL);
    let start = || {
        let mut cmd = clawgate(home.path());
        cmd.args(["run", "--port", "0", "--config"])
            .arg(&cfg)
            .arg("--state-dir")
            .arg(&state);
        Running::start(cmd).expect("gateway starts")
    };
    let path = state.join("gateway.token");
    let gw = start();
    let meta = std::fs::metadata(&path).expect("token file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    let where_ = format!("'{}'", path.display());
    assert!(
        gw.stdout
            .iter()
            .any(|l| l.contains("generated") && l.contains(&where_)),
        "{:?}",
        gw.stdout
    );
    drop(gw);

    let gw = start();
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    assert!(
        gw.stdout
            .iter()
            .any(|l| l.contains("read from") && l.contains(&where_)),
        "{:?}",
        gw.stdout
    );
}

#[test]
fn second_instance_on_the_same_state_dir_exits_1_naming_the_first_pid() {
    let gw = Gateway::start();
    let mut cmd = clawgate(gw.home.path());
    cmd.args(["run", "--port", "0", "--state-dir"])
        .arg(&gw.state)
        .arg("--config")
        .arg(gw.home.path().join("clawgate.json"));
    let out = run_with_timeout(cmd, LIMIT);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("gateway already running (PID {})", gw.pid())),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("listening on"));
}

// ---- a busy port and --force ----------------------------------------------------

#[test]
fn port_held_by_another_process_exits_1_suggesting_force_and_port() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().unwrap().port();
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    cmd.args(["run", "--allow-unconfigured", "--port", &port.to_string()]);
    let out = run_with_timeout(cmd, LIMIT);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("port {port}")), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(err.contains("--port"), "{err}");
    // Our listener was left alone.
    assert_eq!(holder.local_addr().unwrap().port(), port);
}

#[test]
fn force_stops_a_python_listener_and_reports_pid_and_wait() {
    let script = "import socket,time\n\
                  s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
                  print(s.getsockname()[1], flush=True); time.sleep(60)";
    let child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn();
    let mut holder = match child {
        Ok(c) => Reaped(c),
        Err(e) => {
            println!("skipped: cannot run python3: {e}");
            return;
        }
    };
    let port: u16 = first_line(&mut holder.0)
        .trim()
        .parse()
        .expect("python3 printed its port");
    let pid = holder.0.id();
    let home = TempDir::new();
    let gw = force_start(&home, port);
    let said = format!("force: killed pid {pid} (python3) on port {port}");
    assert!(
        gw.stdout.contains(&said),
        "want {said:?} in {:?}",
        gw.stdout
    );
    let waited = gw
        .stdout
        .iter()
        .find(|l| l.starts_with("force: waited "))
        .unwrap_or_else(|| panic!("no wait line in {:?}", gw.stdout));
    let ms = waited
        .strip_prefix("force: waited ")
        .and_then(|r| r.strip_suffix(&format!("ms for port {port} to free")))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(ms.is_some(), "{waited}");
    let status = wait_child(&mut holder.0, LIMIT).expect("python3 was stopped");
    assert!(!status.success());
    gw.assert_serving();
}

#[test]
fn force_stops_another_clawgate_on_the_port_but_never_itself() {
    let first = Gateway::start();
    let home = TempDir::new();
    let gw = force_start(&home, first.port);
    let mut first = first;
    let status = first.wait_exit(LIMIT).expect("the first gateway stopped");
    // SIGTERM is a clean shutdown for a gateway.
    assert_eq!(status.code(), Some(0));
    let said = format!(
        "force: killed pid {} (clawgate) on port {}",
        first.pid(),
        gw.port
    );
    assert!(
        gw.stdout.contains(&said),
        "want {said:?} in {:?}",
        gw.stdout
    );
    gw.assert_serving();
}

/// `run --force --port <port>` in its own home and state dir.
fn force_start(home: &TempDir, port: u16) -> Running {
    let mut cmd = clawgate(home.path());
    cmd.args(["run", "--allow-unconfigured", "--force", "--port"])
        .arg(port.to_string());
    let gw = Running::start(cmd).expect("gateway starts with --force");
    assert_eq!(gw.port, port);
    gw
}

// ---- signals --------------------------------------------------------------------

#[test]
fn sigterm_and_sigint_send_shutdown_close_1012_and_exit_0_within_a_second() {
    for sig in ["TERM", "INT"] {
        let mut gw = Gateway::start();
        let (mut ws, _) = gw.client();
        gw.signal(sig);
        let signalled = Instant::now();
        let ev = ws.recv_event("shutdown");
        assert!(ev["payload"]["reason"].is_string(), "SIG{sig}: {ev}");
        match ws.expect_close() {
            Closed::Frame(code, _) => assert_eq!(code, 1012, "SIG{sig}"),
            other => panic!("SIG{sig}: no close frame: {other:?}"),
        }
        // Send our close reply, as a real client would.
        let _ = ws.ws.flush();
        let left = Duration::from_secs(1).saturating_sub(signalled.elapsed());
        let status = gw
            .wait_exit(left)
            .unwrap_or_else(|| panic!("SIG{sig}: still running 1 s after the signal"));
        assert_eq!(status.code(), Some(0), "SIG{sig}");
    }
}

// ---- --dev and the gateway alias ------------------------------------------------

#[test]
fn dev_uses_the_dev_state_dir_and_port_19001() {
    if let Err(e) = TcpListener::bind("127.0.0.1:19001") {
        println!("skipped: port 19001 is busy ({e})");
        return;
    }
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    cmd.arg("--dev");
    let gw = match Running::start(cmd) {
        Ok(gw) => gw,
        Err(e) if e.contains("already in use") => {
            println!("skipped: port 19001 was taken meanwhile: {e}");
            return;
        }
        Err(e) => panic!("--dev did not start: {e}"),
    };
    assert!(
        gw.stdout
            .iter()
            .any(|l| l.starts_with("listening on ws://127.0.0.1:19001")),
        "{:?}",
        gw.stdout
    );
    let state = home.path().join(".clawgate-dev");
    assert!(state.join("gateway.token").exists());
    assert!(state.join("gateway.lock").exists());
}

#[test]
fn gateway_run_and_bare_gateway_are_aliases_of_run() {
    for args in [&["gateway", "run"][..], &["gateway"]] {
        let home = TempDir::new();
        let mut cmd = clawgate(home.path());
        cmd.args(args).args(["--allow-unconfigured", "--port", "0"]);
        let gw = Running::start(cmd).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(gw.port != 0, "{args:?}");
    }
}

// ---- helpers --------------------------------------------------------------------

/// A gateway started from a command built here, for cases `Gateway`
/// cannot express (no `--port 0`, own environment). Killed on drop.
struct Running {
    child: Child,
    port: u16,
    stdout: Vec<String>,
}

impl Running {
    /// Spawns `cmd` and waits (bounded) for its `listening on` line; Err
    /// with the exit status and stderr when it does not start.
    fn start(mut cmd: Command) -> Result<Running, String> {
        let (child, port, stdout, _stderr) = spawn_listening(&mut cmd)?;
        Ok(Running {
            child,
            port,
            stdout,
        })
    }

    /// The gateway answers a client and has not exited.
    fn assert_serving(mut self) {
        assert!(
            self.child.try_wait().expect("try_wait").is_none(),
            "gateway exited"
        );
        let mut ws = Ws::connect(self.port, &[]);
        let ch = ws.recv();
        assert_eq!(ch["event"], "connect.challenge", "{ch}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills and reaps a child process if the test ends first.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first stdout line of `child`, within the limit.
fn first_line(child: &mut Child) -> String {
    let rx = lines_of(child.stdout.take().expect("piped stdout"));
    rx.recv_timeout(LIMIT).expect("a line within the limit")
}

/// Waits up to `limit` for `child` to exit, reaping it.
fn wait_child(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}
