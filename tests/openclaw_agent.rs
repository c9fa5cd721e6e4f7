//! The stock `openclaw agent` and `openclaw gateway call chat.history`
//! against clawgate, with each kind of backend: a fake OpenAI-compatible
//! server on loopback, a failing one, and the fake CLI backend. The stock
//! CLI finds the gateway through OPENCLAW_GATEWAY_URL/_TOKEN (it has no
//! `--url` flag for `agent`). Skipped like `openclaw::` without the stock
//! CLI, and a failure under CI=true.

use std::process::Output;

use serde_json::Value;

use crate::openclaw::{openclaw_env, stock_cli_or_skip};
use crate::util::fake_openai::{Behaviour, FakeOpenAi};
use crate::util::{text, Gateway, Opts, TempDir};

/// `openclaw agent --message hi --agent main` against `gw`: asserts it
/// succeeded with `reply` on stdout, and returns that stdout.
fn agent_says(cli: &[String], home: &TempDir, gw: &Gateway, reply: &str) -> String {
    let out = openclaw(
        cli,
        home,
        gw,
        &["agent", "--message", "hi", "--agent", "main"],
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "openclaw agent: {}\n{stdout}",
        text(&out.stderr)
    );
    assert!(stdout.contains(reply), "{stdout}");
    stdout
}

fn openclaw(cli: &[String], home: &TempDir, gw: &Gateway, args: &[&str]) -> Output {
    let (url, token) = (gw.url(), gw.token());
    let env = [
        ("OPENCLAW_GATEWAY_URL", url.as_str()),
        ("OPENCLAW_GATEWAY_TOKEN", token.as_str()),
    ];
    openclaw_env(cli, home, args, &env)
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
    let stdout = agent_says(&cli, &home, &gw, "Hello from the fake model.");
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

    let out = openclaw(
        &cli,
        &home,
        &gw,
        &[
            "gateway",
            "call",
            "sessions.list",
            "--json",
            "--url",
            &gw.url(),
            "--token",
            &gw.token(),
        ],
    );
    assert!(out.status.success(), "sessions.list: {}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("sessions JSON");
    assert_eq!(v["sessions"][0]["key"], "agent:main:main", "{v}");
    assert_eq!(v["sessions"][0]["modelProvider"], "fake");
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
    let stdout = agent_says(&cli, &home, &gw, "Hello from the fake CLI.");
    eprintln!("openclaw agent --message hi --agent main (CLI backend):\n{stdout}");
}
