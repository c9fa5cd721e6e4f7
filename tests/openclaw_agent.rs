//! The stock `openclaw agent` and `openclaw gateway call chat.history`
//! against clawgate, with each kind of backend: a fake OpenAI-compatible
//! server on loopback, a failing one, and the fake CLI backend. The stock
//! CLI finds the gateway through OPENCLAW_GATEWAY_URL/_TOKEN (it has no
//! `--url` flag for `agent`). Skipped like `openclaw::` without the stock
//! CLI, and a failure under CI=true.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::openclaw::stock_cli_or_skip;
use crate::util::fake_openai::{Behaviour, FakeOpenAi};
use crate::util::{run_with_timeout, text, Gateway, Opts, TempDir};

fn openclaw(cli: &[String], home: &TempDir, gw: &Gateway, args: &[&str]) -> Output {
    let mut c = Command::new(&cli[0]);
    c.args(&cli[1..])
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("OPENCLAW_GATEWAY_URL", gw.url())
        .env("OPENCLAW_GATEWAY_TOKEN", gw.token())
        .stdin(Stdio::null());
    run_with_timeout(c, Duration::from_secs(120))
}

#[test]
fn the_stock_openclaw_agent_prints_the_reply_of_an_openai_compatible_backend() {
    let Some(cli) = stock_cli_or_skip(
        "openclaw_agent::the_stock_openclaw_agent_prints_the_reply_of_an_openai_compatible_backend",
    ) else {
        return;
    };
    let up = FakeOpenAi::start(Behaviour::Reply {
        pieces: vec!["Hello".into(), " from the".into(), " fake model.".into()],
        gap_ms: 20,
    });
    let gw = crate::runs::start(&up, "");
    let home = TempDir::new();
    let out = openclaw(
        &cli,
        &home,
        &gw,
        &["agent", "--message", "hi", "--agent", "main"],
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "openclaw agent: {}\n{stdout}",
        text(&out.stderr)
    );
    assert!(stdout.contains("Hello from the fake model."), "{stdout}");
    eprintln!("openclaw agent --message hi --agent main (openai-compatible):\n{stdout}");

    let out = openclaw(
        &cli,
        &home,
        &gw,
        &[
            "gateway",
            "call",
            "chat.history",
            "--json",
            "--url",
            &gw.url(),
            "--token",
            &gw.token(),
            "--params",
            r#"{"sessionKey":"agent:main:main"}"#,
        ],
    );
    assert!(out.status.success(), "chat.history: {}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    let msgs = v["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 2, "{v}");
    assert_eq!(msgs[0]["content"], "hi");
    assert_eq!(msgs[1]["content"][0]["text"], "Hello from the fake model.");
}

#[test]
fn the_stock_openclaw_agent_exits_1_with_the_backends_error() {
    let Some(cli) = stock_cli_or_skip(
        "openclaw_agent::the_stock_openclaw_agent_exits_1_with_the_backends_error",
    ) else {
        return;
    };
    let up = FakeOpenAi::start(Behaviour::Status(
        500,
        r#"{"error":{"message":"model exploded"}}"#.into(),
    ));
    let gw = crate::runs::start(&up, "");
    let home = TempDir::new();
    let out = openclaw(
        &cli,
        &home,
        &gw,
        &["agent", "--message", "hi", "--agent", "main"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("model exploded"), "{stderr}");
}

#[test]
fn the_stock_openclaw_agent_prints_the_reply_of_a_cli_backend() {
    let Some(cli) = stock_cli_or_skip(
        "openclaw_agent::the_stock_openclaw_agent_prints_the_reply_of_a_cli_backend",
    ) else {
        return;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/fake-cli.sh");
    let config = format!(
        r#"{{"gateway":{{"mode":"local"}},"agents":{{"defaults":{{"model":{{"primary":"fake-cli/fake-large"}},
  "cliBackends":{{"fake-cli":{{"command":"{}","args":["-p","--output-format","json"],"input":"stdin","output":"json",
  "modelArg":"--model","sessionArgs":["--session-id","{{sessionId}}"],"resumeArgs":["-p","--output-format","json","--resume","{{sessionId}}"],
  "sessionMode":"always"}}}}}}}}}}"#,
        script.display()
    );
    let gw = Gateway::with(Opts {
        config: Some(&config),
        ..Opts::default()
    });
    let home = TempDir::new();
    let out = openclaw(
        &cli,
        &home,
        &gw,
        &["agent", "--message", "hi", "--agent", "main"],
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "openclaw agent: {}\n{stdout}",
        text(&out.stderr)
    );
    assert!(stdout.contains("Hello from the fake CLI."), "{stdout}");
    eprintln!("openclaw agent --message hi --agent main (CLI backend):\n{stdout}");
}
