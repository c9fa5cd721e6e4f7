//! The stock OpenClaw CLI against a real clawgate: the compatibility promise.
//!
//! Runs when CLAWGATE_TEST_OPENCLAW holds the command that starts the
//! stock CLI (".ci/openclaw.sh" installs it and prints that command; .ci/run
//! sets the variable). Without it the test fails under CI=true, where the
//! promise must be checked, and elsewhere says on stderr that it skipped.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::{run_with_timeout, text, Gateway, TempDir};

const TEST: &str = "openclaw::the_stock_openclaw_cli_works_unchanged";

fn stock_cli() -> Option<Vec<String>> {
    let cmd = std::env::var("CLAWGATE_TEST_OPENCLAW").ok()?;
    let parts: Vec<String> = cmd.split_whitespace().map(String::from).collect();
    (!parts.is_empty()).then_some(parts)
}

/// The stock CLI, or None after saying why the test is skipped. Written to
/// the real stderr: the test harness hides `eprintln!` of a passing test,
/// and a skip nobody sees reads as a pass.
pub fn stock_cli_or_skip(test: &str) -> Option<Vec<String>> {
    if let Some(cli) = stock_cli() {
        return Some(cli);
    }
    let why = "CLAWGATE_TEST_OPENCLAW is not set (see .ci/openclaw.sh)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {why}: the compatibility test must run in CI");
    }
    let _ = writeln!(std::io::stderr(), "\nskipped {test}: {why}");
    None
}

pub fn openclaw(cli: &[String], home: &TempDir, args: &[&str]) -> Output {
    openclaw_env(cli, home, args, &[])
}

/// The stock CLI with a clean environment of its own plus `env`.
pub fn openclaw_env(cli: &[String], home: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(&cli[0]);
    c.args(&cli[1..])
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    run_with_timeout(c, Duration::from_secs(120))
}

#[test]
fn the_stock_openclaw_cli_works_unchanged() {
    let Some(cli) = stock_cli_or_skip(TEST) else {
        return;
    };
    let gw = Gateway::start();
    let home = TempDir::new();
    let url = gw.url();
    let token = gw.token();
    let call = |args: &[&str]| {
        let mut all = vec!["gateway"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &url, "--token", &token]);
        openclaw(&cli, &home, &all)
    };

    let out = call(&["call", "health", "--json"]);
    assert!(out.status.success(), "call health: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("health JSON");
    assert_eq!(v["ok"], true);

    let out = call(&["health"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "health: {}", text(&out.stderr));
    assert!(
        stdout.contains("Gateway Health") && stdout.contains("OK ("),
        "{stdout}"
    );

    let out = call(&["call", "status", "--json"]);
    assert!(out.status.success(), "call status: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert!(v["runtimeVersion"]
        .as_str()
        .unwrap()
        .starts_with("clawgate"));

    let out = call(&["call", "system-presence", "--json"]);
    assert!(
        out.status.success(),
        "call system-presence: {}",
        text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("presence JSON");
    assert_eq!(v[0]["mode"], "gateway");

    let out = call(&["status"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Connectivity probe: ok"),
        "{stdout}{}",
        text(&out.stderr)
    );

    let out = call(&["call", "nope.nope"]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!out.status.success());
    assert!(all.contains("unknown method: nope.nope"), "{all}");

    let mut wrong = vec![
        "gateway",
        "call",
        "health",
        "--url",
        &url,
        "--token",
        "wrong-token",
    ];
    wrong.push("--json");
    let out = openclaw(&cli, &home, &wrong);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!out.status.success());
    assert!(all.contains("gateway token mismatch"), "{all}");
}

/// The rule above, checked on this very test binary: without the stock CLI
/// the compatibility test fails under CI=true and skips visibly elsewhere.
#[test]
fn without_the_stock_cli_the_test_fails_in_ci_and_skips_visibly_elsewhere() {
    let run = |ci: Option<&str>| {
        let mut c = Command::new(std::env::current_exe().expect("test binary"));
        c.args(["--exact", TEST, "--test-threads=1"])
            .env_remove("CLAWGATE_TEST_OPENCLAW")
            .env_remove("CI")
            .stdin(Stdio::null());
        if let Some(v) = ci {
            c.env("CI", v);
        }
        run_with_timeout(c, Duration::from_secs(60))
    };
    let out = run(Some("true"));
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("the compatibility test must run in CI"),
        "{}",
        text(&out.stdout)
    );
    for ci in [None, Some("false")] {
        let out = run(ci);
        assert!(out.status.success(), "{ci:?}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!(
                "skipped {TEST}: CLAWGATE_TEST_OPENCLAW is not set"
            )),
            "{ci:?}: {err}"
        );
    }
}
