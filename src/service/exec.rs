//! Running the service manager's tools (`systemctl`, `journalctl`, an
//! init script…) with a deadline.
//!
//! A supervisor that is busy, or waiting on a job that never ends, must not
//! hang `clawgate stop` in a script: every call here is killed after its
//! time limit and reported as a timeout. Output is read on threads so a
//! chatty tool cannot block on a full pipe, and is capped in memory.
//! Plain `std::process`, no shell: arguments are passed as they are.

use std::io::{self, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// For calls that change state: enable, start, stop, daemon-reload. The
/// gateway stops within a second of SIGTERM and the units allow it five,
/// so this is far beyond any healthy answer.
pub const SLOW: Duration = Duration::from_secs(30);
/// For queries: `systemctl show`, `journalctl`, `loginctl`, `ubus`.
pub const QUICK: Duration = Duration::from_secs(10);

/// The most of each output stream that is kept; the rest is read and
/// dropped so the tool never blocks on a full pipe.
const MAX_OUTPUT: usize = 1 << 20;

/// One finished (or abandoned) call.
#[derive(Debug, Clone)]
pub struct Ran {
    pub argv: Vec<String>,
    /// `None` when it was killed at the deadline or died by a signal.
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub ms: u64,
    pub limit: Duration,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The command as a person would type it.
    pub fn command_line(&self) -> String {
        self.argv.join(" ")
    }

    /// Why it failed, in one line: the exit status and the tool's own last
    /// words, or the timeout.
    pub fn failure(&self) -> String {
        let cmd = self.command_line();
        if self.timed_out {
            return format!(
                "'{cmd}' did not finish within {} and was stopped; the service manager may still be working on it",
                human_limit(self.limit)
            );
        }
        let status = match self.code {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        match last_words(&self.stderr).or_else(|| last_words(&self.stdout)) {
            Some(words) => format!("'{cmd}' failed ({status}): {words}"),
            None => format!("'{cmd}' failed ({status})"),
        }
    }
}

fn human_limit(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The tool's message, joined onto one line and bounded, for an error.
fn last_words(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let joined = lines[lines.len().saturating_sub(3)..].join(" ");
    let mut cut: String = joined.chars().take(400).collect();
    if cut.len() < joined.len() {
        cut.push('…');
    }
    Some(cut)
}

/// Runs `argv` to completion or until `limit`. `Err` only when it could not
/// start at all (most often: not installed), which callers turn into a
/// message that names the tool.
pub fn run(argv: &[String], limit: Duration) -> io::Result<Ran> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = started + limit;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            timed_out = true;
            // Already gone is fine; either way it is reaped below.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    // A grandchild may still hold the pipes open; do not wait on it long.
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        let bytes = rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(Ran {
        argv: argv.to_vec(),
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: collect(stdout),
        stderr: collect(stderr),
        ms: started.elapsed().as_millis() as u64,
        limit,
    })
}

/// Reads a pipe to its end on a thread, keeping the first `MAX_OUTPUT`
/// bytes.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let room = MAX_OUTPUT.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(kept);
        });
    } else {
        let _ = tx.send(Vec::new());
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn output_and_exit_status_are_collected() {
        let r = run(
            &argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            QUICK,
        )
        .expect("sh runs");
        assert_eq!((r.code, r.timed_out, r.ok()), (Some(3), false, false));
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("out\n", "err\n"));
        assert_eq!(
            r.failure(),
            "'sh -c echo out; echo err >&2; exit 3' failed (exit status 3): err"
        );
    }

    #[test]
    fn a_call_that_hangs_is_stopped_at_its_deadline() {
        let started = Instant::now();
        let r = run(
            &argv(&["sh", "-c", "exec sleep 30"]),
            Duration::from_millis(200),
        )
        .expect("sh runs");
        assert!(r.timed_out && r.code.is_none() && !r.ok());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            r.failure().contains("did not finish within 200 ms"),
            "{}",
            r.failure()
        );
    }

    #[test]
    fn a_missing_tool_is_an_error_to_name() {
        let e = run(&argv(&["/nonexistent/systemctl"]), QUICK).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
