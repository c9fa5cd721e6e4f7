//! Memory under hostile input, measured from outside: the gateway's peak
//! RSS (`VmHWM` in /proc) while a client does its worst stays within the
//! stated bounds.

use crate::util::Gateway;

/// The process's peak and current resident set, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
fn a_4_mib_params_bomb_costs_its_text_not_a_json_tree() {
    let gw = Gateway::start();
    let (mut ws, _) = gw.client();
    // 2 million zeros: as a JSON tree this was ~130 MB before its method
    // (which takes no params) was even looked at.
    let zeros = vec!["0"; (4 * 1024 * 1024 - 100) / 2].join(",");
    let frame = format!(r#"{{"type":"req","id":"bomb","method":"health","params":[{zeros}]}}"#);
    drop(zeros);
    ws.send_text(&frame);
    drop(frame);
    let res = ws.recv_res("bomb");
    assert_eq!(res["ok"], true, "{res}");
    let (peak, now) = rss_kib(gw.pid());
    assert!(peak < 24 * 1024, "peak RSS {peak} KiB (now {now} KiB)");
}

#[test]
fn a_flood_of_maximal_presence_entries_stays_small_and_locks_nobody_out() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local"},"logging":{"file":true}}"#);
    let (mut ws, _) = gw.client();
    // One huge field is refused before it is parsed.
    let huge = "x".repeat(3 * 1024 * 1024);
    let res = ws.call(
        "system-event",
        Some(serde_json::json!({"text": "hi", "deviceId": huge})),
    );
    assert_eq!(res["error"]["code"], "INVALID_REQUEST", "{res}");
    drop(huge);
    // Control characters are six bytes each as JSON: every string of these
    // entries is as large as an entry allows once escaped.
    let controls = "\u{1}".repeat(600);
    for i in 0..220 {
        let fields: serde_json::Value = serde_json::json!({
            "text": controls, "deviceId": format!("{i}{controls}"), "host": controls,
            "version": controls, "platform": controls, "deviceFamily": controls,
            "modelIdentifier": controls, "mode": controls, "reason": controls,
            "instanceId": controls, "ip": controls,
            "tags": [controls, controls, controls], "roles": [controls], "scopes": [controls],
        });
        let res = ws.call("system-event", Some(fields));
        assert_eq!(res["ok"], true, "{res}");
    }
    let list = ws.call("system-presence", None);
    let text = list["payload"].to_string();
    assert!(
        text.len() <= 256 * 1024,
        "presence list of {} bytes",
        text.len()
    );
    assert!(list["payload"].as_array().unwrap().len() > 10);
    // A new client still gets hello-ok (it carries the list), and the CLI
    // still answers.
    let (mut fresh, hello) = gw.client();
    assert!(hello["snapshot"]["presence"].is_array());
    assert_eq!(fresh.call("health", None)["ok"], true);
    let out = gw.cli(&["call", "health", "--token", &gw.token()]);
    assert!(out.status.success(), "{}", crate::util::text(&out.stderr));
    let (peak, now) = rss_kib(gw.pid());
    assert!(
        now < 32 * 1024,
        "RSS {now} KiB after the flood (peak {peak} KiB)"
    );
    // Log lines are cut: 221 events wrote well under a megabyte.
    let log = gw.state.join("logs").join("clawgate.log");
    let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    assert!(size < 1024 * 1024, "log file grew to {size} bytes");
}

#[test]
fn with_a_small_max_payload_the_presence_list_is_cut_to_fit_every_frame() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"maxPayload":65536}}}"#);
    let (mut ws, _) = gw.client();
    let (mut watcher, _) = gw.client();
    let controls = "\u{1}".repeat(600);
    for i in 0..60 {
        let fields = serde_json::json!({
            "text": controls, "deviceId": format!("{i}{controls}"), "host": controls,
            "version": controls, "platform": controls, "deviceFamily": controls,
            "modelIdentifier": controls, "instanceId": controls,
        });
        assert_eq!(ws.call("system-event", Some(fields))["ok"], true);
    }
    // Each frame a client gets stays under the maxPayload it was told.
    // Waiting presence events are replaced by newer ones, so the watcher
    // sees at most 60, the last one listing the newest entry first.
    let newest = |e: &serde_json::Value| {
        e["payload"]["presence"][1]["deviceId"]
            .as_str()
            .is_some_and(|d| d.starts_with("59"))
    };
    let mut seen = false;
    for _ in 0..60 {
        let event = watcher.recv_event("presence");
        let size = event.to_string().len();
        assert!(size <= 65536, "event of {size} bytes");
        if newest(&event) {
            seen = true;
            break;
        }
    }
    assert!(seen, "no presence event listed the newest entry first");
    let (_, hello) = gw.client();
    let frame = serde_json::json!({"type": "res", "id": "c", "ok": true, "payload": hello});
    let size = frame.to_string().len();
    assert!(size <= 65536, "hello-ok of {size} bytes");
    let listed = hello["snapshot"]["presence"].as_array().unwrap().len();
    assert!((2..61).contains(&listed), "{listed} entries in hello-ok");
    let list = ws.call("system-presence", None);
    assert_eq!(list["ok"], true, "{list}");
    assert!(list.to_string().len() <= 65536);
}

#[test]
fn status_and_config_get_report_the_ceiling_the_limits_give() {
    let ceiling_of = |connections: u32| {
        let gw = Gateway::with_config(&format!(
            r#"{{"gateway":{{"mode":"local","limits":{{"maxConnections":{connections}}}}}}}"#
        ));
        let (mut ws, _) = gw.client();
        let status = ws.call("status", None);
        let from_status = status["payload"]["gateway"]["memoryCeiling"].clone();
        let config = ws.call("config.get", None);
        assert_eq!(config["payload"]["memoryCeiling"], from_status, "{config}");
        from_status
    };
    let (small, large) = (ceiling_of(16), ceiling_of(32));
    let per = small["perConnectionBytes"]
        .as_u64()
        .expect("perConnectionBytes");
    let total = |v: &serde_json::Value| v["totalBytes"].as_u64().expect("totalBytes");
    // Each connection may hold its stack, buffers and maxBufferedBytes (8 MiB).
    assert!(per > 8 << 20, "{small}");
    assert_eq!(total(&large) - total(&small), 16 * per);
    assert_eq!(
        total(&small),
        16 * per + small["sharedBytes"].as_u64().unwrap()
    );
}

/// A masked client frame.
fn raw_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=65535 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x11, 0x22, 0x33, 0x44];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[test]
fn a_message_sent_in_fragments_must_be_completed_in_time() {
    let gw = Gateway::with_config(r#"{"gateway":{"mode":"local","limits":{"bodyTimeoutMs":300}}}"#);
    let (mut ws, _) = gw.client();
    let started = std::time::Instant::now();
    let first = raw_frame(false, 1, br#"{"type":"req","id":"f","method":"#);
    std::io::Write::write_all(ws.ws.get_mut(), &first).unwrap();
    match ws.expect_close() {
        crate::util::Closed::Frame(code, reason) => {
            assert_eq!(code, 1008, "{reason}");
            assert!(reason.contains("not completed in time"), "{reason}");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[test]
fn a_ping_flood_from_a_client_that_never_reads_costs_no_memory() {
    let gw = Gateway::start();
    let (mut ws, _) = gw.client();
    let before = rss_kib(gw.pid()).1;
    let sock = ws.ws.get_mut();
    sock.set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let ping = raw_frame(true, 9, &[7u8; 125]);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    // Up to 40 MB of pings, or until the gateway stops reading them.
    for _ in 0..300 {
        if std::io::Write::write_all(sock, &burst).is_err() {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after = rss_kib(gw.pid()).1;
    assert!(
        after < before + 2 * 1024,
        "RSS went from {before} KiB to {after} KiB"
    );
    // The gateway is fine for everyone else.
    let (mut other, _) = gw.client();
    assert_eq!(other.call("health", None)["ok"], true);
}

#[test]
fn large_frames_wait_for_the_shared_budget_and_all_are_answered() {
    // maxPayload 1 MiB: the large-frame budget is 4 MiB, so of 16 clients
    // each holding a 1 MiB frame half-sent, only about four are read into
    // memory; the others wait in the kernel's socket buffers.
    let gw = Gateway::with_config(
        r#"{"gateway":{"mode":"local","limits":{"maxPayload":1048576,"maxBufferedBytes":2097152}}}"#,
    );
    let clients: Vec<_> = (0..16).map(|_| gw.client().0).collect();
    let before = rss_kib(gw.pid()).1;
    let pad = "x".repeat(1024 * 1024 - 200);
    let (tx, rx) = std::sync::mpsc::channel();
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let text = format!(r#"{{"type":"req","id":"big{i}","method":"health","pad":"{pad}"}}"#);
            let frame = raw_frame(true, 1, text.as_bytes());
            let tx = tx.clone();
            std::thread::spawn(move || {
                let sock = ws.ws.get_mut();
                sock.set_write_timeout(Some(std::time::Duration::from_secs(20)))
                    .unwrap();
                let (most, last) = frame.split_at(frame.len() - 1);
                std::io::Write::write_all(sock, most).unwrap();
                tx.send(()).unwrap();
                // Held here until the main thread has measured.
                std::thread::sleep(std::time::Duration::from_millis(1500));
                std::io::Write::write_all(sock, last).unwrap();
                ws.recv_res(&format!("big{i}"))["ok"] == true
            })
        })
        .collect();
    // Every thread has written all but the last byte (or is blocked on it).
    for _ in 0..16 {
        let _ = rx.recv_timeout(std::time::Duration::from_millis(700));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let held = rss_kib(gw.pid()).1;
    for t in threads {
        assert!(
            t.join().unwrap(),
            "every large frame is answered in the end"
        );
    }
    assert!(
        held < before + 8 * 1024,
        "{held} KiB held against {before} KiB before 16 half-sent 1 MiB frames"
    );
}
