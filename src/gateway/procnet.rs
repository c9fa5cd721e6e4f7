//! Finds and stops the processes listening on a TCP port, for
//! `clawgate run --force`, using /proc alone (no lsof, no ss).
//!
//! The listening sockets' inodes come from /proc/net/tcp{,6}; their owners
//! from the `socket:[inode]` links in /proc/PID/fd. This module never
//! signals its own process, never signals a pid that has been reused by a
//! different process since it was found, and never prints: it returns a
//! [`ForceReport`] for `main` to show.

use std::collections::HashSet;
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::sys;

/// `st` of a listening socket in /proc/net/tcp (TCP_LISTEN).
const TCP_LISTEN: u8 = 0x0a;
const POLL_EVERY: Duration = Duration::from_millis(25);
/// How long SIGTERM gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(700);
/// How long the kernel gets to release the port after the kills.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// What `free_port` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ForceReport {
    /// The processes that were signalled, with their names.
    pub killed: Vec<(u32, String)>,
    /// Those that outlived SIGTERM's grace and got SIGKILL.
    pub sigkilled: Vec<u32>,
    /// From the first SIGTERM until the port was free.
    pub waited_ms: u64,
}

/// (local port, state, inode) of every socket in a /proc/net/tcp or
/// /proc/net/tcp6 text. Lines that do not parse are skipped.
pub fn parse_proc_net_tcp(text: &str) -> Vec<(u16, u8, u64)> {
    text.lines().skip(1).filter_map(parse_tcp_line).collect()
}

/// `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout
/// inode ...`, addresses as `HEXADDR:HEXPORT`.
fn parse_tcp_line(line: &str) -> Option<(u16, u8, u64)> {
    let mut fields = line.split_whitespace();
    let local = fields.nth(1)?;
    let state = fields.nth(1)?;
    let inode = fields.nth(5)?;
    let (_, port) = local.rsplit_once(':')?;
    Some((
        u16::from_str_radix(port, 16).ok()?,
        u8::from_str_radix(state, 16).ok()?,
        inode.parse().ok()?,
    ))
}

/// The inode in a `/proc/PID/fd/N` link target like `socket:[12345]`.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn listening_inodes(port: u16) -> HashSet<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .flat_map(|text| parse_proc_net_tcp(&text))
        .filter(|&(p, state, inode)| p == port && state == TCP_LISTEN && inode != 0)
        .map(|(_, _, inode)| inode)
        .collect()
}

/// The pids with an open descriptor on one of `inodes`. Processes we may
/// not inspect (other users', unless we are root) are silently skipped.
fn owners(inodes: &HashSet<u64>) -> Vec<u32> {
    let mut pids = Vec::new();
    if inodes.is_empty() {
        return pids;
    }
    let Ok(procs) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .ok()
                .and_then(|target| socket_inode(target.to_str()?))
                .is_some_and(|inode| inodes.contains(&inode))
        });
        if holds {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The processes listening on TCP `port` (IPv4 or IPv6), sorted.
pub fn listening_pids(port: u16) -> Vec<u32> {
    owners(&listening_inodes(port))
}

/// The command name of `pid`, or "?" if it is gone or hidden.
pub fn process_name(pid: u32) -> String {
    match fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(name) if !name.trim().is_empty() => name.trim().to_string(),
        _ => "?".to_string(),
    }
}

/// State letter and start time (clock ticks after boot) from the text of
/// /proc/PID/stat. The name in parentheses may itself contain spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // starttime is field 22 of the file; `state` was field 3.
    let start = fields.nth(22 - 3 - 1)?.parse().ok()?;
    Some((state, start))
}

fn stat_of(pid: u32) -> Option<(char, u64)> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// A process found holding the port, remembered by its start time so that
/// a pid recycled by an unrelated process is never signalled.
struct Target {
    pid: u32,
    name: String,
    start: Option<u64>,
}

impl Target {
    fn new(pid: u32) -> Target {
        Target {
            pid,
            name: process_name(pid),
            start: stat_of(pid).map(|(_, start)| start),
        }
    }

    /// Gone, a zombie (dead, its sockets closed, waiting to be reaped by
    /// its parent), or replaced by another process with the same pid.
    fn exited(&self) -> bool {
        if !sys::process_alive(self.pid) {
            return true;
        }
        match stat_of(self.pid) {
            Some((state, start)) => {
                matches!(state, 'Z' | 'X') || self.start.is_some_and(|s| s != start)
            }
            None => false,
        }
    }

    fn signal(&self, sig: i32, port: u16) -> Result<(), Error> {
        match sys::kill(self.pid, sig) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(Error::runtime(format!(
                "cannot stop process {} ('{}') holding port {port}: permission denied",
                self.pid, self.name
            ))),
            Err(e) => Err(Error::io(
                format!("signalling process {} ('{}')", self.pid, self.name),
                e,
            )),
        }
    }
}

/// Polls `done` every 25 ms for up to `limit`; returns whether it became
/// true and how long that took.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> (bool, Duration) {
    let start = Instant::now();
    loop {
        if done() {
            return (true, start.elapsed());
        }
        if start.elapsed() >= limit {
            return (false, start.elapsed());
        }
        thread::sleep(POLL_EVERY);
    }
}

fn describe(pids: &[(u32, String)]) -> String {
    let parts: Vec<String> = pids
        .iter()
        .map(|(pid, name)| format!("{pid} ('{name}')"))
        .collect();
    parts.join(", ")
}

/// Who else listens on TCP `port`: None when nobody but us does, else the
/// holders we can see (empty when the owner is hidden from us: another
/// user's process while we are not root, or another pid namespace).
fn other_holders(port: u16, me: u32) -> Option<Vec<u32>> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let pids = owners(&inodes);
    if pids == [me] {
        return None;
    }
    Some(pids.into_iter().filter(|&pid| pid != me).collect())
}

/// Stops whatever listens on TCP `port` so we can bind it: SIGTERM, up to
/// 700 ms to exit, SIGKILL for the rest, then up to 2 s for the port to be
/// released. Our own process is never signalled; a port only we hold
/// yields an empty report.
pub fn free_port(port: u16) -> Result<ForceReport, Error> {
    let me = std::process::id();
    let mut holders = other_holders(port, me);
    if holders.as_ref().is_some_and(Vec::is_empty) {
        // The owner may have closed the socket between the two /proc
        // reads; look again before blaming a hidden process.
        holders = other_holders(port, me);
    }
    let mut report = ForceReport::default();
    let targets: Vec<Target> = match holders {
        None => return Ok(report),
        Some(pids) if pids.is_empty() => {
            return Err(Error::runtime(format!(
                "port {port} is held by a process clawgate cannot see \
                 (another user's?); stop it yourself or run as root"
            )))
        }
        Some(pids) => pids.into_iter().map(Target::new).collect(),
    };
    report.killed = targets.iter().map(|t| (t.pid, t.name.clone())).collect();

    for t in &targets {
        t.signal(sys::SIGTERM, port)?;
    }
    let (all_gone, waited) = wait_until(TERM_GRACE, || targets.iter().all(Target::exited));
    let mut total = waited;
    if !all_gone {
        for t in targets.iter().filter(|t| !t.exited()) {
            report.sigkilled.push(t.pid);
            t.signal(sys::SIGKILL, port)?;
        }
    }

    let mut still = None;
    let (released, waited) = wait_until(RELEASE_WAIT, || {
        still = other_holders(port, me);
        still.is_none()
    });
    total += waited;
    report.waited_ms = u64::try_from(total.as_millis()).unwrap_or(u64::MAX);
    if !released {
        let by = match still {
            Some(pids) if !pids.is_empty() => {
                let named: Vec<(u32, String)> =
                    pids.into_iter().map(|p| (p, process_name(p))).collect();
                describe(&named)
            }
            _ => "a process clawgate cannot see".to_string(),
        };
        return Err(Error::runtime(format!(
            "port {port} is still in use by {by} after stopping {}",
            describe(&report.killed)
        )));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;

    const SAMPLE_TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 52311 1 0000000000000000 100 0 0 10 0
   1: 0100007F:4965 0100007F:D1C2 01 00000000:00000000 00:00000000 00000000  1000        0 52999 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:9C40 0100007F:4965 06 00000000:00000000 03:00000A1B 00000000     0        0 0 3 0000000000000000
   3: garbage
";
    const SAMPLE_TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn proc_net_tcp_lines_parse_into_port_state_inode() {
        assert_eq!(
            parse_proc_net_tcp(SAMPLE_TCP),
            [(18789, 0x0a, 52311), (18789, 0x01, 52999), (40000, 0x06, 0)]
        );
        assert_eq!(parse_proc_net_tcp(SAMPLE_TCP6), [(8080, 0x0a, 777)]);
        assert!(parse_proc_net_tcp("").is_empty());
    }

    #[test]
    fn socket_links_yield_their_inode() {
        assert_eq!(socket_inode("socket:[52311]"), Some(52311));
        assert_eq!(socket_inode("pipe:[52311]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn stat_state_survives_odd_process_names() {
        let stat =
            "4242 (a) b (c)) Z 1 4242 4242 0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_stat(stat), Some(('Z', 987654)));
        assert_eq!(parse_stat("garbage"), None);
        assert!(stat_of(std::process::id()).is_some_and(|(s, _)| s == 'R' || s == 'S'));
    }

    #[test]
    fn free_port_never_stops_its_own_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(listening_pids(port).contains(&std::process::id()));
        assert_eq!(free_port(port).expect("free"), ForceReport::default());
    }

    /// Kills and reaps the child if the test fails before doing so.
    struct Listener(Child);

    impl Drop for Listener {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A python3 process listening on a free loopback port, or None (with
    /// a message) where python3 is not installed.
    fn python_listener(ignore_term: bool) -> Option<(Listener, u16)> {
        let script = format!(
            "import signal,socket,time\n\
             if {}: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
             s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
             print(s.getsockname()[1], flush=True); time.sleep(30)",
            if ignore_term { "True" } else { "False" }
        );
        let child = Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => Listener(c),
            Err(e) => {
                println!("skipped: cannot run python3: {e}");
                return None;
            }
        };
        let stdout = child.0.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("python3 printed no port within 5 s");
        let port = line.trim().parse().expect("port number");
        Some((child, port))
    }

    #[test]
    fn free_port_stops_a_listener_with_sigterm() {
        let Some((mut child, port)) = python_listener(false) else {
            return;
        };
        let pid = child.0.id();
        assert_eq!(listening_pids(port), [pid]);
        let report = free_port(port).expect("free_port");
        assert_eq!(report.killed, [(pid, "python3".to_string())]);
        assert!(report.sigkilled.is_empty());
        assert!(report.waited_ms < 3000, "{report:?}");
        let status = child.0.wait().expect("reap");
        assert!(!status.success());
        assert!(listening_pids(port).is_empty());
    }

    #[test]
    fn free_port_escalates_to_sigkill() {
        let Some((mut child, port)) = python_listener(true) else {
            return;
        };
        let report = free_port(port).expect("free_port");
        assert_eq!(report.sigkilled, [child.0.id()]);
        assert!(report.waited_ms >= 700, "{report:?}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.0.wait().expect("reap").signal(), Some(sys::SIGKILL));
        assert!(listening_pids(port).is_empty());
    }
}
