//! The stock OpenClaw CLI against a real clawgate: the compatibility promise.
//!
//! Runs only when CLAWGATE_TEST_OPENCLAW holds the command that starts the
//! stock CLI (".ci/openclaw.sh" installs it and prints that command; .ci/run
//! sets the variable). Without it the test says it was skipped.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::{run_with_timeout, text, Gateway, TempDir};

fn stock_cli() -> Option<Vec<String>> {
    let cmd = std::env::var("CLAWGATE_TEST_OPENCLAW").ok()?;
    let parts: Vec<String> = cmd.split_whitespace().map(String::from).collect();
    (!parts.is_empty()).then_some(parts)
}

fn openclaw(cli: &[String], home: &TempDir, args: &[&str]) -> Output {
    let mut c = Command::new(&cli[0]);
    c.args(&cli[1..])
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    run_with_timeout(c, Duration::from_secs(90))
}

#[test]
fn the_stock_openclaw_cli_works_unchanged() {
    let Some(cli) = stock_cli() else {
        eprintln!("skipped: CLAWGATE_TEST_OPENCLAW is not set (see .ci/openclaw.sh)");
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
