//! A small blocking client for the Chrome DevTools protocol, so browser
//! tests can drive a real headless Chromium against a real clawgate: load
//! its pages, run JavaScript in them, click and type, take screenshots and
//! read what the page logged.
//!
//! It speaks to 127.0.0.1 only, and every read has a deadline (on the
//! socket itself), so a browser that stops answering fails the test
//! instead of hanging it. Chromium runs in its own process group with a
//! throwaway profile; dropping the `Browser` kills the group and removes
//! the profile, and a test binary that dies takes chromium with it. This
//! file starts the browser and opens tabs; `page` drives a tab.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{watchdog, TempDir};

mod page;
pub use page::Page;

/// How long chromium may take to start, a page to load, a call to answer.
const LIMIT: Duration = Duration::from_secs(20);
/// Chromium's stderr lines kept to explain a failed start.
const STDERR_KEEP: usize = 30;

/// A headless Chromium with a DevTools port on 127.0.0.1.
pub struct Browser {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// Declared last: removed after `drop` has killed chromium.
    profile: TempDir,
}

impl Browser {
    /// Starts chromium headless with a fresh profile and waits (20 s at
    /// most) for its DevTools port. Chromium is killed if the thread that
    /// launched it ends, so a test binary that dies leaves none behind.
    pub fn launch() -> Result<Browser, String> {
        watchdog();
        let bin = Browser::binary()
            .ok_or("chromium not found (install it, or set CLAWGATE_TEST_CHROMIUM to its path)")?;
        let profile = TempDir::new();
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--headless=new",
            "--remote-debugging-port=0",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            // A container's /dev/shm is often too small for chromium.
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
        if is_root() {
            // Chromium refuses to start its sandbox as root.
            cmd.arg("--no-sandbox");
        }
        cmd.arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only
        // makes one system call, which allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("'{}': {e}", bin.display()))?;
        let stderr = tail_of(child.stderr.take().expect("stderr is piped"));
        // From here on, an early return drops `browser`, which kills chromium.
        let mut browser = Browser {
            child,
            port: 0,
            stderr,
            profile,
        };
        let file = browser.profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(port) = active_port(&file) {
                browser.port = port;
                return Ok(browser);
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                return Err(format!(
                    "chromium exited ({status}) before opening its DevTools port; stderr:\n{}",
                    browser.stderr_tail()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "chromium wrote no '{}' within {LIMIT:?}; stderr:\n{}",
                    file.display(),
                    browser.stderr_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// $CLAWGATE_TEST_CHROMIUM (a path, or a name looked up on PATH), else
    /// /usr/bin/chromium, else `chromium` on PATH.
    pub fn binary() -> Option<PathBuf> {
        if let Some(v) = std::env::var_os("CLAWGATE_TEST_CHROMIUM").filter(|v| !v.is_empty()) {
            return find(Path::new(&v));
        }
        find(Path::new("/usr/bin/chromium")).or_else(|| find(Path::new("chromium")))
    }

    /// The DevTools port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new tab, attached, with page, runtime and log events on.
    pub fn page(&self) -> Result<Page, String> {
        let body = devtools_http(self.port, "/json/new?about:blank")?;
        let target: Value =
            serde_json::from_str(&body).map_err(|e| format!("new target: {e}: {body}"))?;
        let (Some(id), Some(url)) = (
            target["id"].as_str(),
            target["webSocketDebuggerUrl"].as_str(),
        ) else {
            return Err(format!("new target without id or websocket url: {body}"));
        };
        let path = url
            .strip_prefix(&format!("ws://127.0.0.1:{}", self.port))
            .ok_or_else(|| format!("target websocket is not on 127.0.0.1: '{url}'"))?;
        Page::attach(self.port, id, path)
    }

    fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().expect("stderr tail lock");
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: the browser process and its renderers.
        if let Ok(pgid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) takes plain integers and touches no memory;
            // the group is the one chromium was started in, still unreaped.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What to do in a browser test: the browser, or None after saying the
/// test skipped. Without chromium the test fails under CI=true, where the
/// browser tests must run; elsewhere it says on the real stderr (the test
/// harness hides a passing test's `eprintln!`) that it skipped.
pub fn chromium_or_skip() -> Option<Browser> {
    if Browser::binary().is_none() {
        let why = "chromium not found (install it, or set CLAWGATE_TEST_CHROMIUM to its path)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and {why}: the browser tests must run in CI");
        }
        let test = std::thread::current().name().unwrap_or("?").to_string();
        let _ = writeln!(std::io::stderr(), "\nskipped: {why}: test {test}");
        return None;
    }
    match Browser::launch() {
        Ok(b) => Some(b),
        Err(e) => panic!("chromium did not start: {e}"),
    }
}

/// A request to the DevTools HTTP endpoint; the body of a 200 answer.
/// Chromium keeps the connection open, so the body is read by its length.
fn devtools_http(port: u16, path: &str) -> Result<String, String> {
    let what = |e: std::io::Error| format!("devtools '{path}': {e}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(what)?;
    s.set_read_timeout(Some(LIMIT)).map_err(what)?;
    s.set_write_timeout(Some(LIMIT)).map_err(what)?;
    // PUT: chromium refuses to open a tab for a GET.
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(what)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).map_err(what)?;
    let status = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut len = 0;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(what)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).map_err(what)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    if status != "200" {
        return Err(format!("devtools '{path}': HTTP {status}: {body}"));
    }
    Ok(body)
}

/// The port in a complete DevToolsActivePort file ("PORT\n/devtools/...").
fn active_port(file: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(file).ok()?;
    let (port, _) = text.split_once('\n')?;
    port.trim().parse().ok().filter(|&p| p != 0)
}

/// An executable file at `p`, or (for a bare name) on PATH.
fn find(p: &Path) -> Option<PathBuf> {
    let exe = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if p.components().count() > 1 {
        return exe(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| exe(c))
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// The last lines of chromium's stderr, drained on a thread so chromium
/// never blocks on a full pipe.
fn tail_of(r: impl Read + Send + 'static) -> Arc<Mutex<VecDeque<String>>> {
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let t = Arc::clone(&tail);
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let mut q = t.lock().expect("stderr tail lock");
            if q.len() >= STDERR_KEEP {
                q.pop_front();
            }
            q.push_back(line);
        }
    });
    tail
}
