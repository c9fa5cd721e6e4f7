//! Connection slots under a flood of sockets that connect and say (almost)
//! nothing, from several source addresses: health checks still get in.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::time::Duration;

use crate::util::{get, Gateway};

/// A TCP connection to `port` on 127.0.0.1 from the loopback address
/// `from` (all of 127.0.0.0/8 is this host's).
fn connect_from(from: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let sockaddr = |a: SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: socket takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nothing else owns; the stream closes it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let local = sockaddr(SocketAddrV4::new(from, 0));
    let remote = sockaddr(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    // SAFETY: the pointers and lengths describe the two live sockaddr_in
    // values above.
    let rc = unsafe {
        libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len)
            | libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stream)
}

#[test]
fn a_slot_flood_from_eight_addresses_does_not_keep_health_checks_out() {
    let gw = Gateway::start();
    // 8 addresses × 32 sockets: every per-address slot, and more than the
    // total. Each sends one byte (past the first-byte deadline) and then
    // nothing, holding its socket until the head deadline.
    let mut flood = Vec::new();
    for host in 2..10u8 {
        for _ in 0..32 {
            if let Ok(mut s) = connect_from(Ipv4Addr::new(127, 0, 0, host), gw.port) {
                let _ = s.write_all(b"G");
                flood.push(s);
            }
        }
    }
    assert!(
        flood.len() >= 200,
        "only {} flood sockets opened",
        flood.len()
    );
    // Past the grace second the oldest flood sockets may be shut.
    std::thread::sleep(Duration::from_millis(1200));
    let mut failures = Vec::new();
    for i in 0..20 {
        let (status, _, body) = get(gw.port, "/health");
        if status != 200 {
            failures.push(format!("#{i}: {status} {body}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(failures.is_empty(), "health checks refused: {failures:?}");
    // A flood socket that was made room for is closed, not answered.
    let shut = flood
        .iter_mut()
        .filter_map(|s| {
            let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
            matches!(s.read(&mut [0u8; 64]), Ok(0)).then_some(())
        })
        .count();
    assert!(shut >= 1, "no flood socket was evicted");
}

#[test]
fn a_socket_that_never_speaks_is_closed_at_the_first_byte_deadline() {
    let gw =
        Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"firstByteTimeoutMs":300}}}"#);
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = std::time::Instant::now();
    let n = s.read(&mut [0u8; 64]).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn out_of_descriptors_a_health_check_is_answered_at_once() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: prlimit (util-linux) is not installed");
        return;
    }
    let home = crate::util::TempDir::new();
    let mut cmd = crate::util::clawgate(home.path());
    let bin = cmd.get_program().to_owned();
    // The same command and environment, started under a 64-descriptor
    // limit (soft and hard, so the gateway cannot raise it).
    let mut wrapped = std::process::Command::new("prlimit");
    wrapped.arg("--nofile=64:64").arg(bin).env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    cmd = wrapped;
    cmd.args(["run", "--allow-unconfigured", "--port", "0", "--state-dir"])
        .arg(home.path().join("state"));
    let ((mut child, port, _, _), _) = crate::util::spawn_listening_rx(&mut cmd).expect("start");
    // Sockets that send one byte and wait: each holds descriptors until
    // its head deadline, far more than 64 allow.
    let mut flood = Vec::new();
    for _ in 0..60 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"G");
            flood.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (status, _, _) = get(port, "/health");
    let took = started.elapsed();
    assert!(status == 200 || status == 503, "status {status}");
    assert!(took < Duration::from_millis(800), "health took {took:?}");
    drop(flood);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn with_the_default_cap_a_thousand_ordinary_clients_are_all_admitted() {
    // The cap used to be 256 whatever the host; now it is sized to the
    // host's memory and descriptors: about 2,000 with 24 GiB, 1,400 with
    // 16 GiB, 700 with 8 GiB. A smaller machine is asked for fewer.
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
            kb.trim().trim_end_matches(" kB").parse::<u64>().ok()
        })
        .map_or(0, |kb| kb >> 20);
    let want = if mem_gib >= 15 { 1000 } else { 300 };
    if want < 1000 {
        eprintln!("note: {mem_gib} GiB of memory: asking for {want} clients, not 1,000");
    }
    let gw = Gateway::start();
    let mut clients = Vec::new();
    let mut refused = 0;
    for _ in 0..want {
        match crate::util::Ws::try_connect(gw.port, &[]) {
            Ok(mut ws) => {
                ws.handshake(crate::util::connect_params(&gw.token(), 4, 4, "cli", &[]));
                clients.push(ws);
            }
            Err(_) => refused += 1,
        }
    }
    assert_eq!(refused, 0, "{} admitted", clients.len());
    let status = clients[0].call("health", None);
    assert_eq!(status["ok"], true);
}
