//! systemd service notifications (`sd_notify`) without a crate.
//!
//! When the service manager sets `NOTIFY_SOCKET`, the gateway sends
//! `READY=1` once it listens, `STOPPING=1` when it shuts down, `STATUS=`
//! summaries, and `WATCHDOG=1` keep-alives when `WATCHDOG_USEC` asks for
//! them. Each is one datagram on a Unix socket; a path starting with `@` is
//! in the abstract namespace. Without `NOTIFY_SOCKET` everything here is a
//! no-op, and a failed send is never an error: supervision must not be able
//! to take the gateway down.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use crate::config::Env;

#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env(env: Env) -> Notifier {
        let target = env("NOTIFY_SOCKET").and_then(|path| {
            let addr = match path.strip_prefix('@') {
                Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
                None => SocketAddr::from_pathname(&path).ok()?,
            };
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        // The watchdog is ours only if no other PID was named.
        let ours = env("WATCHDOG_PID")
            .map(|p| p.trim() == std::process::id().to_string())
            .unwrap_or(true);
        let watchdog = env("WATCHDOG_USEC")
            .filter(|_| ours)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|us| *us > 0)
            .map(Duration::from_micros);
        Notifier {
            watchdog: target.as_ref().and(watchdog),
            target,
        }
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send `WATCHDOG=1`: half the manager's timeout, as
    /// sd_watchdog_enabled(3) advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|t| t / 2)
    }

    /// Sends `KEY=value` lines as one datagram; best effort.
    pub fn send(&self, state: &str) {
        if let Some((sock, addr)) = &self.target {
            let _ = sock.send_to_addr(state.as_bytes(), addr);
        }
    }
}

/// A `STATUS=` value: one line, so a client-influenced string can never
/// add a second assignment to the datagram.
pub fn status(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("STATUS={line}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn notifier(vars: &[(&str, &str)]) -> Notifier {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Notifier::from_env(&move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn nothing_happens_without_notify_socket() {
        let n = notifier(&[("WATCHDOG_USEC", "1000000")]);
        assert!(!n.enabled());
        assert_eq!(n.watchdog_interval(), None);
        n.send("READY=1");
    }

    #[test]
    fn datagrams_reach_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("clawgate-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = notifier(&[("NOTIFY_SOCKET", path.to_str().unwrap())]);
        n.send("READY=1\nSTATUS=up");
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up");
        let _ = std::fs::remove_dir_all(&dir);

        let name = format!("clawgate-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = notifier(&[("NOTIFY_SOCKET", &format!("@{name}"))]);
        n.send("STOPPING=1");
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1");
    }

    #[test]
    fn the_watchdog_runs_at_half_the_timeout_and_only_for_this_pid() {
        let n = notifier(&[("NOTIFY_SOCKET", "@x"), ("WATCHDOG_USEC", "3000000")]);
        assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(1500)));
        let other = notifier(&[
            ("NOTIFY_SOCKET", "@x"),
            ("WATCHDOG_USEC", "3000000"),
            ("WATCHDOG_PID", "1"),
        ]);
        assert_eq!(other.watchdog_interval(), None);
    }

    #[test]
    fn status_lines_cannot_smuggle_assignments() {
        assert_eq!(status("a\nREADY=1"), "STATUS=a READY=1");
    }
}
