use super::*;
use crate::config::backend::OutputKind;
use serde_json::{json, Value};
use std::process::Stdio;
use std::thread;
use std::time::Instant;

mod ending;

const REFERENCE: &str = r#"{"type":"result","subtype":"success","is_error":false,"result":"Hello from the fake CLI.","session_id":"abc","usage":{"input_tokens":10,"output_tokens":5}}"#;

fn backend(v: Value) -> CliBackend {
    let b: CliBackend = serde_json::from_value(v).expect("descriptor");
    b.check().expect("descriptor passes check");
    b
}

/// The descriptor of §10.2.
fn reference() -> CliBackend {
    backend(json!({
        "command": "/usr/bin/fake-cli",
        "args": ["-p", "--output-format", "json"],
        "resumeArgs": ["-p", "--output-format", "json", "--resume", "{sessionId}"],
        "input": "stdin",
        "output": "json",
        "modelArg": "--model",
        "sessionArgs": ["--session-id", "{sessionId}"],
        "sessionMode": "always",
        "systemPromptFileArg": "--append-system-prompt-file",
        "systemPromptWhen": "first"
    }))
}

fn turn<'a>(prompt: &'a str) -> Turn<'a> {
    Turn {
        backend_id: "test",
        model: "fake-large",
        prompt,
        system_prompt: "You are a test.",
        cli_session_id: None,
        cwd: Path::new("/"),
        timeout: Some(Duration::from_secs(20)),
    }
}

fn turn_without_extras(prompt: &str) -> Turn<'_> {
    Turn {
        model: "",
        system_prompt: "",
        ..turn(prompt)
    }
}

fn argv_of(b: &CliBackend, t: &Turn) -> Vec<String> {
    argv(b, t, None, None).0
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- argv -------------------------------------------------------------------

#[test]
fn a_first_turn_passes_model_prompt_file_and_a_fresh_session_id() {
    let file = Path::new("/tmp/x/system-prompt.md");
    let (args, on_stdin) = argv(&reference(), &turn("hi"), Some(file), Some("u-1"));
    assert_eq!(
        args,
        strings(&[
            "/usr/bin/fake-cli",
            "-p",
            "--output-format",
            "json",
            "--model",
            "fake-large",
            "--append-system-prompt-file",
            "/tmp/x/system-prompt.md",
            "--session-id",
            "u-1",
        ])
    );
    assert!(on_stdin);
}

#[test]
fn a_later_turn_resumes_the_cli_session_without_the_prompt_file() {
    let t = Turn {
        cli_session_id: Some("abc"),
        ..turn("again")
    };
    let (args, on_stdin) = argv(&reference(), &t, None, None);
    assert_eq!(
        args,
        strings(&[
            "/usr/bin/fake-cli",
            "-p",
            "--output-format",
            "json",
            "--resume",
            "abc",
            "--model",
            "fake-large",
        ])
    );
    assert!(on_stdin);
}

#[test]
fn without_resume_args_a_later_turn_passes_the_known_id_in_session_args() {
    let mut b = reference();
    b.resume_args = None;
    b.system_prompt_when = PromptWhen::Always;
    b.system_prompt_file_arg = None;
    b.system_prompt_arg = Some("--system".into());
    let t = Turn {
        cli_session_id: Some("abc"),
        ..turn("again")
    };
    let (args, _) = argv(&b, &t, None, Some("ignored"));
    assert_eq!(
        args[4..],
        strings(&[
            "--model",
            "fake-large",
            "--system",
            "You are a test.",
            "--session-id",
            "abc"
        ])
    );
}

#[test]
fn the_prompt_is_the_last_argument_unless_stdin_or_too_long() {
    let mut b = backend(json!({"command": "cli", "args": ["run"], "maxPromptArgChars": 5}));
    let t = Turn {
        model: "",
        system_prompt: "",
        ..turn("héllo")
    };
    let (args, on_stdin) = argv(&b, &t, None, None);
    assert_eq!(args, strings(&["cli", "run", "héllo"]));
    assert!(!on_stdin);
    let long = Turn {
        prompt: "hello!",
        ..t
    };
    let (args, on_stdin) = argv(&b, &long, None, None);
    assert_eq!(args, strings(&["cli", "run"]));
    assert!(on_stdin);
    b.input = InputKind::Stdin;
    let (args, on_stdin) = argv(&b, &turn_without_extras("x"), None, None);
    assert_eq!(args, strings(&["cli", "run"]));
    assert!(on_stdin);
}

#[test]
fn model_aliases_map_the_model_id() {
    let b = backend(json!({
        "command": "cli", "modelArg": "-m", "modelAliases": {"fake-large": "large-2"}
    }));
    let (args, _) = argv(&b, &turn("q"), None, None);
    assert_eq!(args, strings(&["cli", "-m", "large-2", "q"]));
    let other = Turn {
        model: "small",
        ..turn("q")
    };
    assert_eq!(argv_of(&b, &other), strings(&["cli", "-m", "small", "q"]));
}

#[test]
fn session_modes_decide_when_an_id_is_passed() {
    let mut b = reference();
    b.input = InputKind::Arg;
    b.system_prompt_file_arg = None;
    b.session_mode = SessionMode::Existing;
    let first = argv(&b, &turn("q"), None, Some("fresh")).0;
    assert!(!first.iter().any(|a| a == "--session-id" || a == "fresh"));
    let later = Turn {
        cli_session_id: Some("abc"),
        ..turn("q")
    };
    assert!(argv_of(&b, &later).contains(&"--resume".to_string()));
    b.session_mode = SessionMode::None;
    let none = argv(&b, &later, None, Some("fresh")).0;
    assert_eq!(
        none,
        strings(&[
            "/usr/bin/fake-cli",
            "-p",
            "--output-format",
            "json",
            "--model",
            "fake-large",
            "q"
        ])
    );
}

#[test]
fn the_system_prompt_follows_system_prompt_when() {
    let mut b = reference();
    b.system_prompt_file_arg = None;
    b.system_prompt_arg = Some("--sys".into());
    let later = Turn {
        cli_session_id: Some("abc"),
        ..turn("q")
    };
    let has = |argv: Vec<String>| argv.contains(&"--sys".to_string());
    assert!(has(argv_of(&b, &turn("q"))));
    assert!(!has(argv_of(&b, &later)));
    b.system_prompt_when = PromptWhen::Always;
    assert!(has(argv_of(&b, &later)));
    b.system_prompt_when = PromptWhen::Never;
    assert!(!has(argv_of(&b, &turn("q"))));
    b.system_prompt_when = PromptWhen::First;
    let empty = Turn {
        system_prompt: "",
        ..turn("q")
    };
    assert!(!has(argv_of(&b, &empty)));
}

// ---- run, with real processes -----------------------------------------------

/// A backend running `script` with `/bin/sh -c`; the prompt is `$1`.
fn sh(script: &str) -> CliBackend {
    backend(json!({
        "command": "/bin/sh",
        "args": ["-c", script, "sh"],
        "output": "text",
        "sessionMode": "none"
    }))
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("clawgate-command-{name}-{}", sys::uuid_v4()))
}

#[test]
fn a_script_reply_is_parsed_as_json() {
    let mut b = sh(&format!("printf '%s\\n' '{REFERENCE}'"));
    b.output = OutputKind::Json;
    let reply = run(&b, &turn_without_extras("hi"), &Cancel::new()).expect("reply");
    assert_eq!(reply.text, "Hello from the fake CLI.");
    assert_eq!(reply.session_id.as_deref(), Some("abc"));
    assert_eq!(reply.usage, Some((10, 5)));
}

#[test]
fn the_prompt_arrives_as_the_last_argument_or_on_stdin() {
    let b = sh(r#"printf '%s' "$1""#);
    let reply = run(&b, &turn_without_extras("one arg"), &Cancel::new()).expect("reply");
    assert_eq!(reply.text, "one arg");

    // Larger than a pipe's buffer, echoed back while it is being written.
    let mut b = sh("cat");
    b.input = InputKind::Stdin;
    let prompt = "ab\n".repeat(100_000);
    let reply = run(&b, &turn_without_extras(&prompt), &Cancel::new()).expect("reply");
    assert_eq!(reply.text.len(), prompt.trim().len());
    let mut b = sh("wc -c");
    b.input = InputKind::Stdin;
    let reply = run(&b, &turn_without_extras("no newline"), &Cancel::new()).expect("reply");
    assert_eq!(reply.text, "10");
}

#[test]
fn a_fresh_session_id_is_passed_and_kept_when_the_cli_reports_none() {
    let mut b = sh(r#"printf '%s' "$2""#);
    b.session_mode = SessionMode::Always;
    b.session_args = strings(&["--session-id", "{sessionId}"]);
    let reply = run(&b, &turn_without_extras("q"), &Cancel::new()).expect("reply");
    assert_eq!(reply.text.len(), 36, "{}", reply.text);
    assert_eq!(reply.session_id.as_deref(), Some(reply.text.as_str()));
    // An id the CLI never saw is not kept; one it resumed with is.
    b.session_args.clear();
    let reply = run(&b, &turn_without_extras("q"), &Cancel::new()).expect("reply");
    assert_eq!(reply.session_id, None);
    let later = Turn {
        cli_session_id: Some("abc"),
        ..turn_without_extras("q")
    };
    let reply = run(&b, &later, &Cancel::new()).expect("reply");
    assert_eq!(reply.session_id.as_deref(), Some("abc"));
}

#[test]
fn the_system_prompt_file_is_private_and_removed_after_the_turn() {
    let mut b = sh(r#"printf '%s|' "$2"; cat "$2"; printf '|'; stat -c %a "${2%/*}""#);
    b.system_prompt_file_arg = Some("--sp".into());
    let t = Turn {
        model: "",
        system_prompt: "persona",
        ..turn("q")
    };
    let reply = run(&b, &t, &Cancel::new()).expect("reply");
    let parts: Vec<&str> = reply.text.split('|').collect();
    assert_eq!(parts[1..], ["persona", "700"], "{}", reply.text);
    assert!(parts[0].ends_with("/system-prompt.md"));
    assert!(!Path::new(parts[0]).exists());
    assert!(!Path::new(parts[0]).parent().expect("dir").exists());
}

#[test]
fn the_environment_marks_the_cli_and_follows_env_and_clear_env() {
    let mut b = sh(r#"printf '%s|%s|%s' "$OPENCLAW_CLI" "${HOME-unset}" "$EXTRA""#);
    b.clear_env = strings(&["HOME"]);
    b.env.insert("EXTRA".into(), "x".into());
    let reply = run(&b, &turn_without_extras("q"), &Cancel::new()).expect("reply");
    assert_eq!(reply.text, "1|unset|x");
}

#[test]
fn the_gateway_secret_is_not_passed_unless_env_sets_it() {
    // The variables must be in this process's environment, which tests
    // must not change while others run: check it in a child test process.
    if std::env::var_os("CLAWGATE_COMMAND_SECRET_CHILD").is_some() {
        let b = sh(
            r#"printf '%s|%s' "${OPENCLAW_GATEWAY_TOKEN-unset}" "${CLAWGATE_GATEWAY_PASSWORD-unset}""#,
        );
        let reply = run(&b, &turn_without_extras("q"), &Cancel::new()).expect("reply");
        let mut asked = b.clone();
        asked
            .env
            .insert("OPENCLAW_GATEWAY_TOKEN".into(), "given".into());
        let given = run(&asked, &turn_without_extras("q"), &Cancel::new()).expect("reply");
        let ok = reply.text == "unset|unset" && given.text == "given|unset";
        std::process::exit(if ok { 42 } else { 1 });
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "agent::command::tests::the_gateway_secret_is_not_passed_unless_env_sets_it",
            "--test-threads=1",
        ])
        .env("CLAWGATE_COMMAND_SECRET_CHILD", "1")
        .env("OPENCLAW_GATEWAY_TOKEN", "secret-token")
        .env("CLAWGATE_GATEWAY_PASSWORD", "secret-password")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child");
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child test hung");
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(42), "{status}");
}

#[test]
fn a_failed_cli_is_reported_with_the_last_line_of_stderr() {
    let b = sh("echo starting >&2; echo 'model exploded' >&2; echo >&2; exit 3");
    match run(&b, &turn_without_extras("q"), &Cancel::new()) {
        Err(Failure::Error(m)) => assert_eq!(m, "model exploded"),
        other => panic!("{other:?}"),
    }
    let b = sh("exit 4");
    match run(&b, &turn_without_extras("q"), &Cancel::new()) {
        Err(Failure::Error(m)) => assert_eq!(m, "backend exited with status 4"),
        other => panic!("{other:?}"),
    }
    // A reply is a reply, whatever the status.
    let b = sh("echo partial; exit 1");
    let reply = run(&b, &turn_without_extras("q"), &Cancel::new()).expect("reply");
    assert_eq!(reply.text, "partial");
    let b = backend(json!({"command": "/nonexistent/clawgate-cli"}));
    match run(&b, &turn_without_extras("q"), &Cancel::new()) {
        Err(Failure::Error(m)) => {
            assert_eq!(m, "'/nonexistent/clawgate-cli': no such file or directory")
        }
        other => panic!("{other:?}"),
    }
}

/// The fake CLI of the integration tests, described as §10.2's CLI.
fn fake_cli() -> CliBackend {
    let mut b = reference();
    b.command = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/util/fake-cli.sh").into();
    b
}

#[test]
fn the_fake_cli_answers_a_first_and_a_resumed_turn_like_the_reference() {
    let log = scratch("argv");
    let mut b = fake_cli();
    b.env
        .insert("FAKE_CLI_ARGV_LOG".into(), log.display().to_string());
    let first = run(&b, &turn("hello"), &Cancel::new()).expect("reply");
    assert_eq!(first.text, "Hello from the fake CLI.");
    assert_eq!(first.usage, Some((10, 5)));
    let id = first.session_id.expect("session id");
    assert_eq!(id.len(), 36, "{id}");

    b.env.insert("FAKE_CLI_MODE".into(), "echo".into());
    let later = Turn {
        cli_session_id: Some(&id),
        ..turn("say \"it\"\nback")
    };
    let reply = run(&b, &later, &Cancel::new()).expect("reply");
    assert_eq!(reply.text, "say \"it\"\nback");
    assert_eq!(reply.session_id.as_deref(), Some(id.as_str()));

    let logged = fs::read_to_string(&log).expect("argv log");
    let _ = fs::remove_file(&log);
    let lines: Vec<&str> = logged.lines().collect();
    let (head, file) = lines[0]
        .split_once(" --append-system-prompt-file ")
        .expect("prompt file");
    assert_eq!(head, "-p --output-format json --model fake-large");
    assert!(file.ends_with(&format!("/system-prompt.md --session-id {id}")));
    assert_eq!(
        lines[1..],
        [format!(
            "-p --output-format json --resume {id} --model fake-large"
        )]
    );

    b.env.remove("FAKE_CLI_ARGV_LOG");
    b.env.insert("FAKE_CLI_MODE".into(), "fail".into());
    match run(&b, &turn("q"), &Cancel::new()) {
        Err(Failure::Error(m)) => assert_eq!(m, "fake cli: model exploded"),
        other => panic!("{other:?}"),
    }
}
