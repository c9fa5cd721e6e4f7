//! Start-up steps that can fail before the first connection: the
//! single-instance lock, `--force`, the listeners, then the state
//! directory, `--reset` and the secret.
//!
//! They run in that order so that everything that can fail without
//! writing anything (the lock held by another gateway, a port in use)
//! fails before anything is written, deleted or replaced: a start that
//! fails leaves the state directory as it was. The writes that remain
//! after the bind (creating the directory and the lock file, `--reset`,
//! the PID, the log file, a first token) need the lock, and the lock
//! file lives in the directory.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};

use std::thread;
use std::time::{Duration, Instant};

use super::procnet;
use crate::auth::Secret;
use crate::config::{AuthMode, BindMode};
use crate::config::{Settings, TOKEN_FILE};
use crate::error::Error;
use crate::sys;

const LOCK_FILE: &str = "gateway.lock";
/// How often a held lock is tried again within its grace.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// The single-instance lock: an exclusive `flock` on `gateway.lock`, held
/// for the life of the process and released by the kernel even after
/// `kill -9`, so a stale file never blocks a restart. `None` until the
/// lock file exists: nobody can hold a lock on a file that is not there,
/// and creating it is a write, which waits for `claim`.
pub(super) struct Instance {
    file: Option<File>,
}

impl Instance {
    /// Takes the lock if the lock file exists, writing nothing. With
    /// `--force` and a gateway holding both the lock and our port, that
    /// gateway is stopped first (and `force` reports what was stopped);
    /// a lock held by a gateway elsewhere is never a reason to stop
    /// anything. Without `--force`, a short grace covers `clawgate
    /// status`, which takes the lock for a moment to see whether a
    /// gateway holds it.
    pub(super) fn take(
        s: &Settings,
        force: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Result<Instance, Error> {
        let path = s.state_dir.join(LOCK_FILE);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if s.force {
                    force()?;
                }
                return Ok(Instance { file: None });
            }
            Err(e) => return Err(Error::io(format!("opening '{}'", path.display()), e)),
        };
        if locked(&file, &path, Duration::ZERO)? {
            if s.force {
                force()?;
            }
            return Ok(Instance { file: Some(file) });
        }
        let holder = holder_pid(&file);
        let holds_port =
            s.port != 0 && holder.is_some_and(|pid| procnet::listening_pids(s.port).contains(&pid));
        let grace = if s.force && holds_port {
            force()?;
            // The stopped gateway may still be exiting.
            Duration::from_millis(2000)
        } else {
            Duration::from_millis(250)
        };
        if locked(&file, &path, grace)? {
            return Ok(Instance { file: Some(file) });
        }
        Err(already_running(holder_pid(&file).or(holder), &path))
    }

    /// Makes the lock durable once writing is allowed: creates the state
    /// directory and the lock file when they are missing, takes the lock
    /// (another gateway may have created it meanwhile), and writes our
    /// PID into it.
    pub(super) fn claim(&mut self, s: &Settings) -> Result<(), Error> {
        let path = s.state_dir.join(LOCK_FILE);
        let file = match self.file.take() {
            Some(f) => f,
            None => {
                create_state_dir(s)?;
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| Error::io(format!("opening '{}'", path.display()), e))?;
                if !locked(&f, &path, Duration::ZERO)? {
                    return Err(already_running(holder_pid(&f), &path));
                }
                f
            }
        };
        write_pid(&file).map_err(|e| Error::io(format!("writing '{}'", path.display()), e))?;
        self.file = Some(file);
        Ok(())
    }
}

/// Tries the lock until it is taken or `grace` is over.
fn locked(file: &File, path: &std::path::Path, grace: Duration) -> Result<bool, Error> {
    let deadline = Instant::now() + grace;
    loop {
        let got = sys::try_lock_exclusive(file)
            .map_err(|e| Error::io(format!("locking '{}'", path.display()), e))?;
        if got || Instant::now() >= deadline {
            return Ok(got);
        }
        thread::sleep(LOCK_RETRY);
    }
}

/// The PID the lock's holder wrote into it.
fn holder_pid(file: &File) -> Option<u32> {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

fn already_running(pid: Option<u32>, path: &std::path::Path) -> Error {
    match pid {
        Some(pid) => Error::runtime(format!("gateway already running (PID {pid})")),
        None => Error::runtime(format!(
            "gateway already running (lock '{}' is held)",
            path.display()
        )),
    }
}

/// Our PID, right-aligned in a fixed width and written over the old one
/// in place. Truncating first would be the obvious way, but on ext4 a
/// truncate of a file written moments ago (the previous gateway's PID)
/// waits on the journal: 0.3 ms typically, several under load, on every
/// restart. Readers trim the spaces.
fn write_pid(file: &File) -> io::Result<()> {
    let text = format!("{:>10}\n", std::process::id());
    file.write_all_at(text.as_bytes(), 0)?;
    if file.metadata()?.len() > text.len() as u64 {
        file.set_len(text.len() as u64)?;
    }
    Ok(())
}

fn create_state_dir(s: &Settings) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&s.state_dir)
        .map_err(|e| {
            Error::io(
                format!("creating the state directory '{}'", s.state_dir.display()),
                e,
            )
        })
}

/// `--reset`: deletes the dev state, under the lock. Only the files this
/// gateway writes (never a whole directory the user may have pointed
/// --state-dir at), and never the lock file itself: deleting a held lock
/// file would let the next gateway lock a new one beside us. Says
/// whether there was anything to delete.
pub(super) fn reset_state(s: &Settings) -> bool {
    let mut any = false;
    for name in [
        TOKEN_FILE,
        "clawgate.json",
        "devices.json",
        "gateway-identity.json",
    ] {
        any |= fs::remove_file(s.state_dir.join(name)).is_ok();
    }
    for dir in ["logs", "agents"] {
        any |= fs::remove_dir_all(s.state_dir.join(dir)).is_ok();
    }
    any
}

pub(super) fn resolve_secret(
    s: &Settings,
    announce: &mut dyn FnMut(&str),
) -> Result<Secret, Error> {
    let (secret, generated) = Secret::load(s)?;
    if let Some((path, created)) = generated {
        announce(&format!(
            "auth token {} '{}' (clients on this host use it automatically)",
            if created {
                "generated and stored in"
            } else {
                "read from"
            },
            path.display()
        ));
    } else if s.auth_mode != AuthMode::None {
        announce(&format!(
            "auth: {} from {}",
            s.auth_mode.as_str(),
            s.secret_source
        ));
    } else {
        announce("auth: none (loopback only)");
    }
    Ok(secret)
}

/// The addresses `--bind` asks for, and a warning when they are not
/// what was asked. Parsed as numeric `SocketAddr`s so no resolver is
/// linked into static builds.
fn addresses(s: &Settings) -> (Vec<IpAddr>, Option<&'static str>) {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match s.bind {
        BindMode::Loopback | BindMode::Auto => (vec![v4, IpAddr::V6(Ipv6Addr::LOCALHOST)], None),
        BindMode::Lan => (vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)], None),
        BindMode::Tailnet => match sys::tailnet_ipv4() {
            // Loopback too, so `clawgate call` on the same host still works.
            Some(ip) => (vec![IpAddr::V4(ip), v4], None),
            None => (
                vec![v4],
                Some("no tailnet (100.64.0.0/10) address found: listening on loopback only"),
            ),
        },
        BindMode::Custom => (vec![s.bind_host.unwrap_or(v4)], None),
    }
}

/// The listeners, and a warning for the log (which does not exist yet:
/// the bind comes before anything is written, the log file included).
pub(super) fn bind(s: &Settings) -> Result<(Vec<TcpListener>, Option<&'static str>), Error> {
    let mut port = s.port;
    let mut out = Vec::new();
    let (addrs, warning) = addresses(s);
    for (i, ip) in addrs.into_iter().enumerate() {
        let addr = SocketAddr::new(ip, port);
        match TcpListener::bind(addr) {
            Ok(l) => {
                if port == 0 {
                    port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                }
                out.push(l);
            }
            // The IPv6 loopback is a bonus: hosts without IPv6 still serve.
            Err(_) if i > 0 && ip.is_loopback() && ip.is_ipv6() => {}
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(port_in_use(addr)),
            Err(e) => return Err(Error::io(format!("cannot listen on {addr}"), e)),
        }
    }
    Ok((out, warning))
}

fn port_in_use(addr: SocketAddr) -> Error {
    let pids = procnet::listening_pids(addr.port());
    let who = match pids.first() {
        Some(pid) => format!(" by PID {pid} ({})", procnet::process_name(*pid)),
        None => String::new(),
    };
    Error::runtime(format!(
        "port {} is already in use{who}: stop that process, run with --force to stop it, or pick another port with --port",
        addr.port()
    ))
}
