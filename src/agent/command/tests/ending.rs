//! Turns that end early: cancel, the turn timeout, the no-output
//! watchdog and oversized output, each leaving no process behind.

use super::*;
use child::GRACE;

/// Gone, or a zombie whose parent (init, for an orphan) has not reaped it
/// yet: either way nothing runs.
fn gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Waits up to 5 s for the script to write "<pid> <pid>" into `path`.
fn pids_in(path: &Path) -> Vec<u32> {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(text) = fs::read_to_string(path) {
            let pids: Vec<u32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if pids.len() == 2 {
                return pids;
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("the script never wrote its pids to {}", path.display());
}

/// Runs `script` (which writes "$$ <grandchild pid>" to `$PIDS`) on its
/// own thread, cancels it once the pids are known, and returns how long
/// after the cancel the turn ended and both processes were gone.
fn cancel_and_time(script: &str) -> Duration {
    let pids_file = scratch("pids");
    let mut b = sh(script);
    b.env.insert("PIDS".into(), pids_file.display().to_string());
    let cancel = Cancel::new();
    let runner = {
        let cancel = cancel.clone();
        thread::spawn(move || run(&b, &turn_without_extras("q"), &cancel))
    };
    let pids = pids_in(&pids_file);
    let _ = fs::remove_file(&pids_file);
    let start = Instant::now();
    cancel.cancel();
    let result = runner.join().expect("runner");
    assert!(matches!(result, Err(Failure::Cancelled)), "{result:?}");
    while !pids.iter().all(|&p| gone(p)) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{pids:?} still running"
        );
        thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

#[test]
fn a_cancel_ends_the_script_and_its_grandchild() {
    let took = cancel_and_time(r#"sleep 30 & echo "$$ $!" > "$PIDS"; wait"#);
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn a_group_that_ignores_sigterm_is_killed_a_second_later() {
    let took = cancel_and_time(r#"trap '' TERM; sleep 30 & echo "$$ $!" > "$PIDS"; wait"#);
    assert!(took >= GRACE, "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[test]
fn a_cancel_before_the_start_runs_nothing() {
    let marker = scratch("ran");
    let b = sh(&format!("touch '{}'", marker.display()));
    let cancel = Cancel::new();
    cancel.cancel();
    let result = run(&b, &turn_without_extras("q"), &cancel);
    assert!(matches!(result, Err(Failure::Cancelled)), "{result:?}");
    assert!(!marker.exists());
}

#[test]
fn the_turn_timeout_ends_the_turn() {
    let b = sh("sleep 30");
    let t = Turn {
        timeout: Some(Duration::from_millis(300)),
        ..turn_without_extras("q")
    };
    let start = Instant::now();
    let result = run(&b, &t, &Cancel::new());
    assert!(matches!(result, Err(Failure::TimedOut)), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_silent_cli_is_ended_by_the_watchdog_and_output_resets_it() {
    let mut b = sh("sleep 30");
    b.no_output_timeout_seconds = Some(1);
    let start = Instant::now();
    match run(&b, &turn_without_extras("q"), &Cancel::new()) {
        Err(Failure::Error(m)) => assert_eq!(m, "backend produced no output for 1 s"),
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );

    let mut b = sh("for i in 1 2 3; do echo tick >&2; sleep 0.6; done; echo done");
    b.no_output_timeout_seconds = Some(1);
    let reply = run(&b, &turn_without_extras("q"), &Cancel::new()).expect("reply");
    assert_eq!(reply.text, "done");
}

#[test]
fn output_past_one_mebibyte_ends_the_turn() {
    let b = sh("yes 'a line of output'");
    let start = Instant::now();
    match run(&b, &turn_without_extras("q"), &Cancel::new()) {
        Err(Failure::Error(m)) => assert_eq!(m, "backend output larger than 1 MiB"),
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}
