//! Shared helpers for the integration tests: unique temp dirs, a running
//! gateway on a free loopback port, raw HTTP and WebSocket clients, and
//! fake peers (an event-collecting operator, a node host) in `fake`, a
//! fake OpenAI-compatible model server in `fake_openai`, and a headless
//! Chromium driven over the DevTools protocol in `cdp`.
//!
//! Every blocking read has a timeout and a process-wide watchdog ends the
//! test binary if anything still hangs, so no test can stall CI.

#![allow(dead_code)]

pub mod cdp;
mod device;
mod fake;
pub mod fake_openai;
mod service_host;

pub use device::Identity;
pub use fake::{Node, Operator};
pub use service_host::{json as json_stdout, ok as ok_stdout, ServiceHost};

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

pub const BIN: &str = env!("CARGO_BIN_EXE_clawgate");
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Ends the whole test binary if it runs far longer than it should.
pub fn watchdog() {
    static START: Once = Once::new();
    START.call_once(|| {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(300));
            eprintln!("watchdog: integration tests still running after 300 s; aborting");
            std::process::exit(101);
        });
    });
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("clawgate-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `clawgate` command with a clean environment: HOME in a temp dir and
/// none of the variables a developer's shell might set. CLAWGATE_ROOT
/// points at an empty place, so no test sees (or touches) a service
/// installed on the machine running the tests.
pub fn clawgate(home: &Path) -> Command {
    watchdog();
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("CLAWGATE_ROOT", home.join("no-root"))
        .stdin(Stdio::null());
    c
}

/// Runs a command to completion, with a deadline.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clawgate");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for clawgate"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("command did not finish within {limit:?}");
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a command's exit status, showing its output when it differs.
/// A command's stdout as JSON; the test fails, showing both streams,
/// when it is not.
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A command with HOME in a fresh temp dir and no gateway around.
pub fn lone(args: &[&str]) -> Output {
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    cmd.args(args);
    run_with_timeout(cmd, Duration::from_secs(20))
}

pub struct Gateway {
    pub child: Child,
    pub port: u16,
    pub home: TempDir,
    pub state: PathBuf,
    pub stdout: Vec<String>,
    stdout_rx: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// The environment it was started with, for a restart.
    env: Vec<(String, String)>,
}

/// What to start a gateway with.
pub struct Opts<'a> {
    pub config: Option<&'a str>,
    pub args: &'a [&'a str],
    pub env: &'a [(&'a str, &'a str)],
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Opts {
            config: Some(r#"{"gateway":{"mode":"local"}}"#),
            args: &[],
            env: &[],
        }
    }
}

impl Gateway {
    /// A gateway on a free loopback port with a generated token.
    pub fn start() -> Gateway {
        Gateway::with(Opts::default())
    }

    pub fn with_config(config: &str) -> Gateway {
        Gateway::with(Opts {
            config: Some(config),
            ..Opts::default()
        })
    }

    pub fn with(o: Opts) -> Gateway {
        Gateway::try_with(o).unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    pub fn try_with(o: Opts) -> Result<Gateway, String> {
        let home = TempDir::new();
        if let Some(cfg) = o.config {
            home.write("clawgate.json", cfg);
        }
        Gateway::launch(home, o.args, o.env)
    }

    /// `clawgate run` in `home` (state in `home/state`, the config
    /// `home/clawgate.json` when there is one) on a free port unless
    /// `args` name one.
    fn launch(home: TempDir, args: &[&str], env: &[(&str, &str)]) -> Result<Gateway, String> {
        let state = home.path().join("state");
        let mut cmd = clawgate(home.path());
        cmd.arg("run").arg("--state-dir").arg(&state);
        if !args.contains(&"--port") {
            cmd.args(["--port", "0"]);
        }
        let cfg = home.path().join("clawgate.json");
        if cfg.exists() {
            cmd.arg("--config").arg(cfg);
        }
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let ((child, port, stdout, stderr), stdout_rx) = spawn_listening_rx(&mut cmd)?;
        Ok(Gateway {
            child,
            port,
            home,
            state,
            stdout,
            stdout_rx,
            stderr,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// A gateway started by hand (its own command line), so it is still
    /// killed at the end of the test and its output can be read.
    pub fn adopt(
        child: Child,
        port: u16,
        home: TempDir,
        state: PathBuf,
        stdout_rx: mpsc::Receiver<String>,
        stderr: mpsc::Receiver<String>,
    ) -> Gateway {
        Gateway {
            child,
            port,
            home,
            state,
            stdout: Vec::new(),
            stdout_rx,
            stderr,
            env: Vec::new(),
        }
    }

    /// Kills the gateway with SIGKILL (no chance to flush or clean up)
    /// and starts a new one on the same home and state directory, with the
    /// same config file and environment. Returns the new gateway, or why it did
    /// not start.
    pub fn kill9_and_restart(mut self) -> Result<Gateway, String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let home = std::mem::replace(&mut self.home, TempDir(PathBuf::new()));
        let env = std::mem::take(&mut self.env);
        drop(self);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Gateway::launch(home, &[], &env)
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.state.join("gateway.token"))
            .expect("generated token file")
            .trim()
            .to_string()
    }

    /// The next stdout line within `limit` (a restarted gateway announces
    /// itself again).
    pub fn next_stdout(&self, limit: Duration) -> Option<String> {
        self.stdout_rx.recv_timeout(limit).ok()
    }

    /// Stderr lines so far (log output).
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
    }

    /// A client command aimed at this gateway (same HOME and state dir).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut c = clawgate(self.home.path());
        c.args(args);
        c.arg("--state-dir").arg(&self.state);
        c.args(["--port", &self.port.to_string()]);
        run_with_timeout(c, Duration::from_secs(20))
    }

    pub fn ws(&self) -> Ws {
        Ws::connect(self.port, &[])
    }

    /// A handshaken operator client speaking protocol 4 as the local CLI.
    pub fn client(&self) -> (Ws, Value) {
        let mut ws = self.ws();
        let hello = ws.handshake(connect_params(
            &self.token(),
            4,
            4,
            "cli",
            &["operator.admin"],
        ));
        (ws, hello)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `spawn_listening` hands back: the child, its port, its stdout so
/// far and a receiver for its stderr lines.
pub type Listening = (Child, u16, Vec<String>, mpsc::Receiver<String>);

/// Spawns a `clawgate run` command and waits (bounded) for its
/// `listening on ws://127.0.0.1:PORT` line. Err carries the exit status,
/// stdout and stderr when it does not start.
pub fn spawn_listening(cmd: &mut Command) -> Result<Listening, String> {
    spawn_listening_rx(cmd).map(|(l, _)| l)
}

/// `spawn_listening`, also handing back the rest of stdout.
pub fn spawn_listening_rx(
    cmd: &mut Command,
) -> Result<(Listening, mpsc::Receiver<String>), String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let out_rx = lines_of(child.stdout.take().expect("stdout"));
    let err_rx = lines_of(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match out_rx.recv_timeout(left) {
            Ok(line) => {
                let port = line
                    .strip_prefix("listening on ws://127.0.0.1:")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|p| p.parse::<u16>().ok());
                lines.push(line);
                if let Some(port) = port {
                    return Ok(((child, port, lines, err_rx), out_rx));
                }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                // The stderr reader ends at EOF, which the exit brings.
                let mut errs = Vec::new();
                while let Ok(l) = err_rx.recv_timeout(Duration::from_secs(2)) {
                    errs.push(l);
                }
                return Err(format!(
                    "exit {status:?}; stdout {lines:?}; stderr {errs:?}"
                ));
            }
        }
    }
}

/// Lines of a pipe, read on a thread so waits on them can be bounded. The
/// pipe is drained to its end even when nobody listens any more, so the
/// child never sees a closed stdout.
pub fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

pub fn connect_params(token: &str, min: u64, max: u64, mode: &str, scopes: &[&str]) -> Value {
    json!({
        "minProtocol": min, "maxProtocol": max,
        "client": {"id": "cli", "mode": mode, "version": "test", "platform": "linux",
                   "instanceId": format!("it-{}", rand_id())},
        "role": "operator", "scopes": scopes, "caps": [],
        "auth": {"token": token},
    })
}

pub fn rand_id() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Ws {
    pub ws: WebSocket<TcpStream>,
}

/// How a socket ended.
#[derive(Debug, PartialEq)]
pub enum Closed {
    Frame(u16, String),
    /// TCP closed without a close frame.
    NoFrame,
}

impl Ws {
    pub fn connect(port: u16, headers: &[(&str, &str)]) -> Ws {
        Ws::try_connect(port, headers).unwrap_or_else(|e| panic!("websocket connect: {e}"))
    }

    pub fn try_connect(port: u16, headers: &[(&str, &str)]) -> Result<Ws, String> {
        watchdog();
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://127.0.0.1:{port}/"
        ))
        .unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        match tungstenite::client::client(req, stream) {
            Ok((ws, _)) => Ok(Ws { ws }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                Err(format!("HTTP {}", r.status().as_u16()))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s.to_string())).expect("send");
    }

    pub fn send(&mut self, v: &Value) {
        self.send_text(&v.to_string());
    }

    /// The next JSON frame; panics on close or timeout.
    pub fn recv(&mut self) -> Value {
        loop {
            match self.ws.read().unwrap_or_else(|e| panic!("read frame: {e}")) {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json frame"),
                Message::Close(f) => panic!("unexpected close: {f:?}"),
                _ => {}
            }
        }
    }

    /// The next event named `name`, skipping others.
    pub fn recv_event(&mut self, name: &str) -> Value {
        loop {
            let f = self.recv();
            if f["type"] == "event" && f["event"] == name {
                return f;
            }
        }
    }

    /// The response with `id`, skipping events.
    pub fn recv_res(&mut self, id: &str) -> Value {
        loop {
            let f = self.recv();
            if f["type"] == "res" && f["id"] == id {
                return f;
            }
        }
    }

    /// Reads until the server closes; returns the close frame, if any.
    pub fn expect_close(&mut self) -> Closed {
        self.read_until_close(true)
    }

    /// Like `expect_close`, but any frame before the close fails the test.
    pub fn expect_close_without_reply(&mut self) -> Closed {
        self.read_until_close(false)
    }

    fn read_until_close(&mut self, skip_frames: bool) -> Closed {
        loop {
            match self.ws.read() {
                Ok(Message::Close(Some(f))) => {
                    return Closed::Frame(u16::from(f.code), f.reason.to_string())
                }
                Ok(Message::Close(None)) => return Closed::Frame(1005, String::new()),
                Ok(m) if !skip_frames => panic!("expected a close without a reply, got {m:?}"),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("timed out waiting for the server to close")
                }
                Err(_) => return Closed::NoFrame,
            }
        }
    }

    pub fn handshake(&mut self, params: Value) -> Value {
        let ch = self.recv();
        assert_eq!(ch["event"], "connect.challenge", "{ch}");
        let id = format!("c-{}", rand_id());
        self.send(&json!({"type": "req", "id": id, "method": "connect", "params": params}));
        let res = self.recv_res(&id);
        assert_eq!(res["ok"], true, "connect failed: {res}");
        res["payload"].clone()
    }

    pub fn call(&mut self, method: &str, params: Option<Value>) -> Value {
        let id = format!("r-{}", rand_id());
        let mut req = json!({"type": "req", "id": id, "method": method});
        if let Some(p) = params {
            req["params"] = p;
        }
        self.send(&req);
        self.recv_res(&id)
    }

    pub fn close(mut self) {
        let _ = self.ws.close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let _ = self.ws.flush();
    }
}

/// A raw HTTP/1.1 request; returns (status, headers, body).
pub fn http(port: u16, raw: &str) -> (u16, HashMap<String, String>, String) {
    watchdog();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.write_all(raw.as_bytes()).expect("write request");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&text(&buf))
}

pub fn get(port: u16, path: &str) -> (u16, HashMap<String, String>, String) {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
    )
}

pub fn parse_response(resp: &str) -> (u16, HashMap<String, String>, String) {
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((resp, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `systemd-analyze` can run here; prints why a check is skipped
/// when it cannot.
pub fn have_systemd_analyze() -> bool {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        eprintln!("skipped: systemd-analyze is not installed");
    }
    ok
}
