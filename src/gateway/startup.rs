//! Start-up steps that can fail before the first connection: the state
//! directory, the single-instance lock, the secret and the listeners.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use std::thread;
use std::time::{Duration, Instant};

use super::procnet;
use crate::auth::Secret;
use crate::config::{AuthMode, BindMode};
use crate::config::{Settings, TOKEN_FILE};
use crate::error::Error;
use crate::sys;

const LOCK_FILE: &str = "gateway.lock";

pub(super) fn prepare_state_dir(s: &Settings) -> Result<(), Error> {
    if s.reset {
        // Only the files this gateway writes; never a whole directory the
        // user may have pointed --state-dir at.
        for name in [TOKEN_FILE, "clawgate.json", LOCK_FILE] {
            let _ = fs::remove_file(s.state_dir.join(name));
        }
        let _ = fs::remove_dir_all(s.state_dir.join("logs"));
        let _ = fs::remove_dir_all(s.state_dir.join("agents"));
    }
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

/// One gateway per state directory: an exclusive `flock` on the lock file,
/// held for the life of the process and released by the kernel even after
/// `kill -9`, so a stale file never blocks a restart.
pub(super) fn lock_instance(s: &Settings) -> Result<File, Error> {
    let path = s.state_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("opening '{}'", path.display()), e))?;
    // With --force the previous owner may still be exiting. Without it, a
    // short grace still covers `clawgate status`, which takes the lock for
    // a moment to see whether a gateway holds it.
    let grace = Duration::from_millis(if s.force { 2000 } else { 250 });
    let deadline = Instant::now() + grace;
    loop {
        if sys::try_lock_exclusive(&file)
            .map_err(|e| Error::io(format!("locking '{}'", path.display()), e))?
        {
            break;
        }
        if Instant::now() >= deadline {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(match text.trim().parse::<u32>() {
                Ok(pid) => Error::runtime(format!("gateway already running (PID {pid})")),
                Err(_) => Error::runtime(format!(
                    "gateway already running (lock '{}' is held)",
                    path.display()
                )),
            });
        }
        thread::sleep(Duration::from_millis(25));
    }
    file.set_len(0)
        .and_then(|_| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(|e| Error::io(format!("writing '{}'", path.display()), e))?;
    Ok(file)
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

/// The addresses `--bind` asks for. Parsed as numeric `SocketAddr`s so no
/// resolver is linked into static builds.
fn addresses(s: &Settings) -> Vec<IpAddr> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match s.bind {
        BindMode::Loopback | BindMode::Auto => vec![v4, IpAddr::V6(Ipv6Addr::LOCALHOST)],
        BindMode::Lan => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        BindMode::Tailnet => match sys::tailnet_ipv4() {
            // Loopback too, so `clawgate call` on the same host still works.
            Some(ip) => vec![IpAddr::V4(ip), v4],
            None => {
                log::warn!("no tailnet (100.64.0.0/10) address found: listening on loopback only");
                vec![v4]
            }
        },
        BindMode::Custom => vec![s.bind_host.unwrap_or(v4)],
    }
}

pub(super) fn bind(s: &Settings) -> Result<Vec<TcpListener>, Error> {
    let mut port = s.port;
    let mut out = Vec::new();
    for (i, ip) in addresses(s).into_iter().enumerate() {
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
    Ok(out)
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
