//! `agent` and `sessions`: their flags, actions and usage errors.

use super::super::agent::{DEFAULT_RUN_TIMEOUT_S, MAX_SESSIONS_LIMIT};
use super::*;

fn agent(args: &str) -> AgentArgs {
    match ok(args) {
        Command::Agent(a) => a,
        other => panic!("'{args}' gave {other:?}"),
    }
}

fn sessions(args: &str) -> SessionsArgs {
    match ok(args) {
        Command::Sessions(s) => s,
        other => panic!("'{args}' gave {other:?}"),
    }
}

const AGENT_USAGE_ERRORS: &str = "
agent                           => 'clawgate agent' needs '--message' (e.g. 'clawgate agent --message hello')
agent --json --agent main       => 'clawgate agent' needs '--message' (e.g. 'clawgate agent --message hello')
agent --message=                => invalid value '' for '--message': must not be empty
agent --message                 => missing argument for option '--message'
agent hello                     => unexpected argument 'hello' for 'clawgate agent'
agent --message hi --agent=     => invalid value '' for '--agent': expected one word without spaces
agent --message hi --session=   => invalid value '' for '--session': must not be empty
agent --message hi --run-timeout -1 => invalid value '-1' for '--run-timeout': expected a number of seconds (0 for no limit)
agent --message hi --run-timeout 1.5 => invalid value '1.5' for '--run-timeout': expected a number of seconds (0 for no limit)
agent --message hi --timeout 0  => invalid value '0' for '--timeout': expected a number of milliseconds greater than 0
agent --message hi --limit 3    => unknown option '--limit' for 'clawgate agent'
agent --message hi --transcript => unknown option '--transcript' for 'clawgate agent'
agent --message hi --token t --password p => '--token' and '--password' cannot be used together
sessions                        => missing action for 'clawgate sessions' (e.g. 'clawgate sessions list'; see 'clawgate sessions --help')
sessions --json                 => missing action for 'clawgate sessions' (e.g. 'clawgate sessions list'; see 'clawgate sessions --help')
sessions show k                 => unknown action 'show' for 'clawgate sessions' (expected one of list, history, reset, delete)
help sessions frob              => unknown action 'frob' for 'clawgate sessions' (expected one of list, history, reset, delete)
sessions history                => missing session key for 'clawgate sessions history' (see 'clawgate sessions list')
sessions reset                  => missing session key for 'clawgate sessions reset' (see 'clawgate sessions list')
sessions delete --transcript    => missing session key for 'clawgate sessions delete' (see 'clawgate sessions list')
sessions list extra             => unexpected argument 'extra' for 'clawgate sessions list'
sessions reset a b              => unexpected argument 'b' for 'clawgate sessions reset'
sessions list --limit 0         => invalid value '0' for '--limit': expected a number from 1 to 1000
sessions history k --limit 1001 => invalid value '1001' for '--limit': expected a number from 1 to 1000
sessions list --limit ten       => invalid value 'ten' for '--limit': expected a number from 1 to 1000
sessions list --search=         => invalid value '' for '--search': must not be empty
sessions list --transcript      => unknown option '--transcript' for 'clawgate sessions list'
sessions history k --agent main => unknown option '--agent' for 'clawgate sessions history'
sessions history k --search s   => unknown option '--search' for 'clawgate sessions history'
sessions reset k --limit 2      => unknown option '--limit' for 'clawgate sessions reset'
sessions delete k --limit 2     => unknown option '--limit' for 'clawgate sessions delete'
sessions delete k --transcript=yes => option '--transcript' takes no value (got 'yes')
sessions list --message hi      => unknown option '--message' for 'clawgate sessions list'
sessions --run-timeout 5 list   => unknown option '--run-timeout' for 'clawgate sessions'
sessions -x                     => unknown option '-x' for 'clawgate sessions'
--dev agent --message hi        => unexpected argument 'agent' for 'clawgate run' (options go after the command: 'clawgate agent --dev --message hi')
";

#[test]
fn bad_agent_and_sessions_lines_give_the_expected_usage_error() {
    check_usage_errors(AGENT_USAGE_ERRORS);
}

#[test]
fn agent_takes_a_message_and_waits_as_long_as_the_run_may_take() {
    let want = AgentArgs {
        client: client(false, false),
        message: "hello".into(),
        agent: None,
        session: None,
        run_timeout_s: DEFAULT_RUN_TIMEOUT_S,
        wait: RunWait::Ms(600_000 + DEFAULT_TIMEOUT_MS),
        idempotency_key: None,
    };
    assert_eq!(agent("agent --message hello"), want);
    assert_eq!(agent("gateway agent --message=hello"), want);
    // Connecting still gives up after the short default.
    assert_eq!(want.client.timeout_ms, DEFAULT_TIMEOUT_MS);
    let a = agent(
        "agent --json --agent ops --session agent:ops:work --message hi --run-timeout 30 \
         --idempotency-key k1 --dev --url ws://h:1 --token t",
    );
    assert_eq!(
        (a.agent.as_deref(), a.session.as_deref(), a.message.as_str()),
        (Some("ops"), Some("agent:ops:work"), "hi")
    );
    assert_eq!((a.run_timeout_s, a.wait), (30, RunWait::Ms(40_000)));
    assert_eq!(a.idempotency_key.as_deref(), Some("k1"));
    assert!(a.client.json && a.client.location.dev);
    assert_eq!(
        (a.client.url.as_deref(), a.client.token.as_deref()),
        (Some("ws://h:1"), Some("t"))
    );
    // No run timeout: no client deadline for the answer either.
    let a = agent("agent --message hi --run-timeout 0");
    assert_eq!((a.run_timeout_s, a.wait), (0, RunWait::Unbounded));
    // An explicit --timeout is the user's deadline for the whole command.
    let a = agent("agent --message hi --timeout 5000 --run-timeout 0");
    assert_eq!((a.client.timeout_ms, a.wait), (5000, RunWait::Timeout));
    // A message is taken as typed, spaces and dashes included.
    let a = parse(["agent", "--message", "-- what is 2+2? --"]).expect("parses");
    let Command::Agent(a) = a else {
        panic!("not agent")
    };
    assert_eq!(a.message, "-- what is 2+2? --");
}

#[test]
fn sessions_takes_an_action_its_key_and_its_flags() {
    let s = sessions("sessions list");
    assert_eq!(s.client, client(false, false));
    let none = SessionAction::List {
        agent: None,
        search: None,
        limit: None,
    };
    assert_eq!(s.action, none);
    let s = sessions("gateway sessions --json list --agent main --search work --limit 5");
    let want = SessionAction::List {
        agent: Some("main".into()),
        search: Some("work".into()),
        limit: Some(5),
    };
    assert_eq!((s.action, s.client.json), (want, true));
    let key = "agent:main:main".to_owned();
    let want = SessionAction::History {
        key: key.clone(),
        limit: Some(MAX_SESSIONS_LIMIT),
    };
    assert_eq!(
        sessions("sessions history agent:main:main --limit 1000").action,
        want
    );
    let want = SessionAction::Reset { key: key.clone() };
    assert_eq!(sessions("sessions reset agent:main:main").action, want);
    let want = SessionAction::Delete {
        key: key.clone(),
        transcript: false,
    };
    assert_eq!(sessions("sessions delete agent:main:main").action, want);
    let want = SessionAction::Delete {
        key,
        transcript: true,
    };
    let s = sessions("sessions delete --transcript agent:main:main --dev");
    assert_eq!((s.action, s.client.location.dev), (want, true));
    // Logs keep their own limit and wording.
    let Command::Logs(l) = ok("logs --limit 5000") else {
        panic!("not logs")
    };
    assert_eq!(l.limit, 5000);
}

#[test]
fn agent_and_sessions_have_their_help() {
    for (line, cmd) in [
        ("agent --help", "agent"),
        ("agent --message hi -h", "agent"),
        ("sessions --help", "sessions"),
        ("help sessions", "sessions"),
    ] {
        assert_eq!(ok(line), Command::Help(help_text(Some(cmd))), "{line}");
    }
    let list = Command::Help(help::verb_help(Verb::Session(SessionVerb::List)));
    assert_eq!(ok("sessions list --help"), list);
    assert_eq!(ok("help sessions list"), list);
    assert!(help_text(None).contains("\n  agent      Send a message"));
    assert!(help_text(None).contains("\n  sessions   List agent sessions"));
}
