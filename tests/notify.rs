//! sd_notify against the real binary: a test-owned datagram socket plays
//! the service manager.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::util::{Gateway, Opts, TempDir};

/// Datagrams until one contains `want`; fails after 5 s.
fn wait_for(rx: &UnixDatagram, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 1024];
    loop {
        assert!(Instant::now() < deadline, "no notification with {want:?}");
        if let Ok(n) = rx.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains(want) {
                return msg;
            }
        }
    }
}

/// A test-owned notify socket: (its directory, the socket, its path).
fn manager() -> (TempDir, UnixDatagram, String) {
    let dir = TempDir::new();
    let path = dir.path().join("notify.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let socket = path.to_str().unwrap().to_string();
    (dir, rx, socket)
}

#[test]
fn the_service_manager_hears_ready_status_watchdog_and_stopping() {
    let (_dir, rx, socket) = manager();
    let mut gw = Gateway::with(Opts {
        config: Some(r#"{"gateway":{"mode":"local","tickIntervalMs":200}}"#),
        env: &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "400000")],
        ..Opts::default()
    });
    let ready = wait_for(&rx, "READY=1");
    assert!(ready.contains(&format!("MAINPID={}", gw.pid())), "{ready}");
    assert!(
        ready.contains(&format!(
            "STATUS=0 clients; listening on ws://127.0.0.1:{}",
            gw.port
        )),
        "{ready}"
    );
    wait_for(&rx, "WATCHDOG=1");
    wait_for(&rx, "WATCHDOG=1");
    let (_client, _) = gw.client();
    wait_for(&rx, "STATUS=1 clients");
    gw.signal("TERM");
    let stopping = wait_for(&rx, "STOPPING=1");
    assert!(stopping.contains("STATUS=stopping (SIGTERM)"), "{stopping}");
    assert_eq!(
        gw.wait_exit(Duration::from_secs(2)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn without_notify_socket_the_gateway_runs_as_usual() {
    // No NOTIFY_SOCKET (util clears the environment): nothing to send to,
    // and WATCHDOG_USEC alone must not start anything that fails.
    let gw = Gateway::with(Opts {
        env: &[("WATCHDOG_USEC", "100000")],
        ..Opts::default()
    });
    let (mut ws, _) = gw.client();
    assert_eq!(ws.call("health", None)["ok"], true);
}

#[test]
fn reload_and_restart_are_announced_as_reloading_then_ready() {
    let (_dir, rx, socket) = manager();
    let gw = Gateway::with(Opts {
        config: Some(r#"{"gateway":{"mode":"local"},"commands":{"restart":true}}"#),
        env: &[("NOTIFY_SOCKET", &socket)],
        ..Opts::default()
    });
    wait_for(&rx, "READY=1");
    let cfg = gw.home.path().join("clawgate.json");
    std::fs::write(
        &cfg,
        r#"{"gateway":{"mode":"local","tickIntervalMs":5000},"commands":{"restart":true}}"#,
    )
    .unwrap();
    gw.signal("HUP");
    let reloading = wait_for(&rx, "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    wait_for(&rx, "READY=1");
    // The restarted process is the same PID and says READY=1 again.
    gw.signal("USR1");
    let restarting = wait_for(&rx, "RELOADING=1");
    assert!(restarting.contains("STATUS=restarting"), "{restarting}");
    let ready = wait_for(&rx, "READY=1");
    assert!(ready.contains(&format!("MAINPID={}", gw.pid())), "{ready}");
}
