use super::*;

fn ok(args: &str) -> Command {
    parse(args.split_whitespace()).unwrap_or_else(|e| panic!("'{args}' failed: {e}"))
}

fn run(args: &str) -> RunArgs {
    match ok(args) {
        Command::Run(r) => r,
        other => panic!("'{args}' gave {other:?}"),
    }
}

fn call(args: &str) -> CallArgs {
    match ok(args) {
        Command::Call(c) => c,
        other => panic!("'{args}' gave {other:?}"),
    }
}

fn client(json: bool, dev: bool) -> ClientArgs {
    ClientArgs {
        location: Location {
            dev,
            ..Location::default()
        },
        url: None,
        token: None,
        password: None,
        timeout_ms: DEFAULT_TIMEOUT_MS,
        json,
    }
}

/// Command lines (split on spaces) and the exact usage error each gives.
const USAGE_ERRORS: &str = "
--reset                         => Use --reset with --dev.
run --reset --port 1            => Use --reset with --dev.
--dev --profile x               => '--dev' and '--profile' cannot be used together
call m --dev --profile x        => '--dev' and '--profile' cannot be used together
--port 70000                    => invalid value '70000' for '--port': expected a port number from 0 to 65535
--port x                        => invalid value 'x' for '--port': expected a port number from 0 to 65535
call m --port -1                => invalid value '-1' for '--port': a client needs a fixed port from 1 to 65535
status --port 0                 => invalid value '0' for '--port': a client needs a fixed port from 1 to 65535
logs --port 70000               => invalid value '70000' for '--port': a client needs a fixed port from 1 to 65535
--port                          => missing argument for option '--port'
--bind wan                      => invalid value 'wan' for '--bind': expected one of loopback, lan, tailnet, auto, custom
--auth key                      => invalid value 'key' for '--auth': expected one of token, password, none
--profile a/b                   => invalid value 'a/b' for '--profile': expected 1 to 64 letters, digits, '-' or '_'
--token=                        => invalid value '' for '--token': must not be empty
call m --password=              => invalid value '' for '--password': must not be empty
--dev=yes                       => option '--dev' takes no value (got 'yes')
--bind custom                   => '--bind custom' requires '--bind-host'
--bind lan --bind-host 10.0.0.5 => '--bind-host' requires '--bind custom' (got '--bind lan')
--bind-host example.com         => invalid value 'example.com' for '--bind-host': expected a numeric IPv4 or IPv6 address
call                            => missing method for 'clawgate call' (e.g. 'clawgate call health')
call --json                     => missing method for 'clawgate call' (e.g. 'clawgate call health')
call m n                        => unexpected argument 'n' for 'clawgate call'
call m --params {x              => invalid value '{x' for '--params': not valid JSON: key must be a string at line 1 column 2
call m --token t --password p   => '--token' and '--password' cannot be used together
call m --timeout 0              => invalid value '0' for '--timeout': expected a number of milliseconds greater than 0
call m --url http://h           => invalid value 'http://h' for '--url': expected a ws:// URL
status --url wss://h:1          => invalid value 'wss://h:1' for '--url': wss:// is not supported yet (it is planned, with TLS): use a ws:// URL on loopback or a private network
call m --url ws://              => invalid value 'ws://' for '--url': the URL names no host
probe --url ws://h:99999        => invalid value 'ws://h:99999' for '--url': the port must be a number from 1 to 65535
health --url ws://[::1          => invalid value 'ws://[::1' for '--url': the IPv6 address is missing its closing ']'
health --no-probe               => unknown option '--no-probe' for 'clawgate health'
call m --foo                    => unknown option '--foo' for 'clawgate call'
--url ws://h                    => unknown option '--url' for 'clawgate run'
run -x                          => unknown option '-x' for 'clawgate run'
health -v                       => unknown option '-v' for 'clawgate health'
run extra                       => unexpected argument 'extra' for 'clawgate run'
--dev call                      => unexpected argument 'call' for 'clawgate run' (options go after the command: 'clawgate call --dev')
gateway --dev call              => unexpected argument 'call' for 'clawgate run' (options go after the command: 'clawgate call --dev')
--dev --port 5 status           => unexpected argument 'status' for 'clawgate run' (options go after the command: 'clawgate status --dev --port 5')
foo                             => unknown command 'foo' (see 'clawgate --help')
help foo                        => unknown command 'foo' (see 'clawgate --help')
gateway gateway                 => unknown command 'gateway' (see 'clawgate --help')
help run call                   => unexpected argument 'call' for 'clawgate help'
install --system --user         => '--system' and '--user' cannot be used together
stop --user --system            => '--system' and '--user' cannot be used together
install --init upstart          => invalid value 'upstart' for '--init': expected systemd or procd
start --init                    => missing argument for option '--init'
install --init procd --user     => '--user' needs systemd: procd only runs system services
install --port 0                => invalid value '0' for '--port': a service needs a fixed port from 1 to 65535
install --port 70000            => invalid value '70000' for '--port': a service needs a fixed port from 1 to 65535
install --port x                => invalid value 'x' for '--port': a service needs a fixed port from 1 to 65535
install --token a\"b             => invalid value for '--token': a service token may hold only letters, digits and ._~+/=:@%,- (for example the output of 'openssl rand -hex 32')
install --token=                => invalid value '' for '--token': must not be empty
install --system=yes            => option '--system' takes no value (got 'yes')
install --state-dir /x          => unknown option '--state-dir' for 'clawgate install'
install --password p            => unknown option '--password' for 'clawgate install'
uninstall --force               => unknown option '--force' for 'clawgate uninstall'
start --port 1                  => unknown option '--port' for 'clawgate start'
restart --token t               => unknown option '--token' for 'clawgate restart'
stop now                        => unexpected argument 'now' for 'clawgate stop'
logs --limit 0                  => invalid value '0' for '--limit': expected a number of lines from 1 to 5000
logs --limit 5001               => invalid value '5001' for '--limit': expected a number of lines from 1 to 5000
logs --follow=1                 => option '--follow' takes no value (got '1')
logs --system                   => unknown option '--system' for 'clawgate logs'
status --follow                 => unknown option '--follow' for 'clawgate status'
devices                         => missing action for 'clawgate devices' (e.g. 'clawgate devices list'; see 'clawgate devices --help')
nodes --json                    => missing action for 'clawgate nodes' (e.g. 'clawgate nodes list'; see 'clawgate nodes --help')
nodes frob                      => unknown action 'frob' for 'clawgate nodes' (expected one of list, pending, approve, reject, remove, describe, invoke)
devices pending                 => unknown action 'pending' for 'clawgate devices' (expected one of list, approve, reject, remove, rotate, revoke)
help devices frob               => unknown action 'frob' for 'clawgate devices' (expected one of list, approve, reject, remove, rotate, revoke)
devices approve                 => missing request id for 'clawgate devices approve' (see 'clawgate devices list')
devices remove --json           => missing device id for 'clawgate devices remove' (see 'clawgate devices list')
nodes approve                   => missing request id for 'clawgate nodes approve' (see 'clawgate nodes pending')
nodes remove                    => missing node id for 'clawgate nodes remove' (see 'clawgate nodes list')
nodes describe                  => missing node id or name for 'clawgate nodes describe' (see 'clawgate nodes list')
devices list extra              => unexpected argument 'extra' for 'clawgate devices list'
devices approve a b             => unexpected argument 'b' for 'clawgate devices approve'
nodes invoke x --node n         => unexpected argument 'x' for 'clawgate nodes invoke'
devices list --role node        => unknown option '--role' for 'clawgate devices list'
devices revoke d --role n --scope s => unknown option '--scope' for 'clawgate devices revoke'
devices list --node n           => unknown option '--node' for 'clawgate devices list'
nodes pending --scope s         => unknown option '--scope' for 'clawgate nodes pending'
nodes list --node n             => unknown option '--node' for 'clawgate nodes list'
nodes describe n --params 1     => unknown option '--params' for 'clawgate nodes describe'
nodes -x                        => unknown option '-x' for 'clawgate nodes'
devices rotate d                => 'clawgate devices rotate' needs '--role'
devices revoke d --json         => 'clawgate devices revoke' needs '--role'
devices rotate d --role         => missing argument for option '--role'
devices rotate d --role=        => invalid value '' for '--role': expected one word without spaces
devices rotate d --role x --scope= => invalid value '' for '--scope': expected one word without spaces
nodes invoke --command c        => 'clawgate nodes invoke' needs '--node'
nodes invoke --node n           => 'clawgate nodes invoke' needs '--command'
nodes invoke --node= --command c => invalid value '' for '--node': must not be empty
nodes invoke --node n --command c --params {x => invalid value '{x' for '--params': not valid JSON: key must be a string at line 1 column 2
nodes invoke --node n --command c --params [1, => invalid value '[1,' for '--params': not valid JSON: EOF while parsing a value at line 1 column 3
nodes invoke --node n --command c --invoke-timeout 0 => invalid value '0' for '--invoke-timeout': expected a number of milliseconds greater than 0
nodes invoke --node n --command c --idempotency-key= => invalid value '' for '--idempotency-key': must not be empty
nodes list --token t --password p => '--token' and '--password' cannot be used together
devices list --dev --profile x  => '--dev' and '--profile' cannot be used together
--dev nodes list                => unexpected argument 'nodes' for 'clawgate run' (options go after the command: 'clawgate nodes --dev list')
";

#[test]
fn bad_command_lines_give_the_expected_usage_error() {
    check_usage_errors(USAGE_ERRORS);
    let long = format!("--profile {}", "p".repeat(65));
    assert!(parse(long.split_whitespace()).is_err());
    let empty = parse(["call", ""]).map_err(|e| e.to_string());
    assert_eq!(empty, Err("method name must not be empty".to_owned()));
}

/// Each row of `table` (`args => message`) fails with that usage error.
fn check_usage_errors(table: &str) {
    for line in table.lines().filter(|l| !l.is_empty()) {
        let (args, want) = line.split_once(" => ").expect("table row has ' => '");
        match parse(args.split_whitespace()) {
            Ok(cmd) => panic!("'{args}' parsed as {cmd:?}"),
            Err(e) => assert_eq!(
                (e.to_string(), e.exit_code()),
                (want.to_owned(), 2),
                "{args}"
            ),
        }
    }
}

#[test]
fn command_names_and_kinds_correspond() {
    assert_eq!(COMMANDS.len(), Sub::ALL.len());
    for (name, sub) in COMMANDS.iter().zip(Sub::ALL) {
        assert_eq!((Sub::from_name(name), sub.name()), (Some(sub), *name));
    }
}

#[test]
fn no_arguments_means_run_with_defaults() {
    assert_eq!(ok(""), Command::Run(RunArgs::default()));
    assert_eq!(ok("run"), Command::Run(RunArgs::default()));
}

#[test]
fn gateway_is_an_alias_prefix() {
    assert_eq!(ok("gateway"), Command::Run(RunArgs::default()));
    assert_eq!(run("gateway run --port 1").location.port, Some(1));
    assert_eq!(run("gateway --port 2").location.port, Some(2));
    assert_eq!(call("gateway call health").method, "health");
    assert_eq!(
        ok("gateway health --json"),
        Command::Health(client(true, false))
    );
}

#[test]
fn every_run_flag_is_parsed() {
    let r = run(
        "run --port 0 --bind custom --bind-host ::1 --auth password --token t \
         --password p --config /c.json --state-dir /s --allow-unconfigured --dev --reset \
         --force -v --json",
    );
    let location = Location {
        config: Some("/c.json".into()),
        state_dir: Some("/s".into()),
        dev: true,
        profile: None,
        port: Some(0),
    };
    let want = RunArgs {
        location,
        bind: Some(BindMode::Custom),
        bind_host: "::1".parse().ok(),
        auth: Some(AuthMode::Password),
        token: Some("t".into()),
        password: Some("p".into()),
        allow_unconfigured: true,
        reset: true,
        force: true,
        verbose: true,
        json_logs: true,
    };
    assert_eq!(r, want);
    assert_eq!(
        run("--profile work_1-a").location.profile.as_deref(),
        Some("work_1-a")
    );
    assert!(run("--verbose").verbose);
    for word in ["loopback", "lan", "tailnet", "auto"] {
        let bind = run(&format!("--bind {word}")).bind.map(|b| b.to_string());
        assert_eq!(bind.as_deref(), Some(word));
    }
    assert_eq!(run("--auth none").auth, Some(AuthMode::None));
    assert_eq!(run("--auth token").auth, Some(AuthMode::Token));
}

#[test]
fn values_may_follow_an_equals_sign_and_the_last_one_wins() {
    let r = run("--port=5 --bind=lan --token=a=b --port 6");
    assert_eq!((r.location.port, r.bind), (Some(6), Some(BindMode::Lan)));
    assert_eq!(r.token.as_deref(), Some("a=b"));
    assert_eq!(call("call m --timeout=5").client.timeout_ms, 5);
}

#[test]
fn bind_host_implies_custom() {
    let r = run("--bind-host 10.0.0.5");
    assert_eq!(
        (r.bind, r.bind_host),
        (Some(BindMode::Custom), "10.0.0.5".parse().ok())
    );
    let r = run("--bind custom --bind-host fe80::1");
    assert_eq!(
        (r.bind, r.bind_host),
        (Some(BindMode::Custom), "fe80::1".parse().ok())
    );
}

#[test]
fn call_takes_a_method_and_checked_options() {
    let c = call("call health");
    assert_eq!(
        (c.method.as_str(), &c.params, c.expect_final),
        ("health", &None, false)
    );
    assert_eq!(c.client, client(false, false));
    let c = call(
        "call agent --params {\"a\":[1,2]} --expect-final --json --dev \
         --url ws://h:1 --token t --timeout 5",
    );
    assert_eq!(c.params, Some(serde_json::json!({"a": [1, 2]})));
    assert!(c.expect_final && c.client.json && c.client.location.dev);
    assert_eq!(c.client.url.as_deref(), Some("ws://h:1"));
    assert_eq!(
        (c.client.token.as_deref(), c.client.timeout_ms),
        (Some("t"), 5)
    );
    assert_eq!(call("call m --params 3").params, Some(serde_json::json!(3)));
    assert_eq!(
        call("call m --password p").client.password.as_deref(),
        Some("p")
    );
}

#[test]
fn other_client_commands() {
    assert_eq!(ok("health --dev"), Command::Health(client(false, true)));
    assert_eq!(ok("probe --json"), Command::Probe(client(true, false)));
    let want = StatusArgs {
        client: client(false, false),
        no_probe: true,
    };
    assert_eq!(ok("status --no-probe"), Command::Status(want));
    let Command::Status(s) = ok("status --port 9") else {
        panic!("not status")
    };
    assert_eq!(s.client.location.port, Some(9));
}

fn service(args: &str) -> ServiceArgs {
    match ok(args) {
        Command::Service(s) => s,
        other => panic!("'{args}' gave {other:?}"),
    }
}

#[test]
fn service_commands_take_scope_init_and_install_options() {
    let s = service("install");
    let want = ServiceArgs {
        action: ServiceAction::Install,
        scope: None,
        init: None,
        port: None,
        token: None,
        force: false,
        json: false,
    };
    assert_eq!(s, want);
    let s = service(
        "gateway install --system --init systemd --port 8080 --token t0k/EN= --force --json",
    );
    let want = ServiceArgs {
        scope: Some(Scope::System),
        init: Some(Init::Systemd),
        port: Some(8080),
        token: Some("t0k/EN=".into()),
        force: true,
        json: true,
        ..want
    };
    assert_eq!(s, want);
    assert_eq!(service("install --init procd").init, Some(Init::Procd));
    assert_eq!(
        service("install --init procd --system").scope,
        Some(Scope::System)
    );
    for (word, action) in [
        ("uninstall", ServiceAction::Uninstall),
        ("start", ServiceAction::Start),
        ("stop", ServiceAction::Stop),
        ("restart", ServiceAction::Restart),
    ] {
        let s = service(&format!("{word} --user --json"));
        assert_eq!(
            (s.action, s.scope, s.json, s.action.as_str()),
            (action, Some(Scope::User), true, word)
        );
    }
}

#[test]
fn logs_takes_follow_limit_and_the_client_options() {
    let want = LogsArgs {
        client: client(false, false),
        follow: false,
        limit: DEFAULT_LOGS_LIMIT,
    };
    assert_eq!(ok("logs"), Command::Logs(want));
    let Command::Logs(l) = ok("gateway logs --follow --limit 5000 --json --dev --timeout 9") else {
        panic!("not logs")
    };
    assert!(l.follow && l.client.json && l.client.location.dev);
    assert_eq!((l.limit, l.client.timeout_ms), (5000, 9));
}

#[test]
fn help_and_version_win_anywhere() {
    assert_eq!(ok("--help"), Command::Help(help_text(None)));
    assert_eq!(ok("-h"), Command::Help(help_text(None)));
    assert_eq!(ok("--dev --help"), Command::Help(help_text(None)));
    assert_eq!(ok("gateway --help"), Command::Help(help_text(None)));
    assert_eq!(ok("help"), Command::Help(help_text(None)));
    for cmd in COMMANDS {
        let want = Command::Help(help_text(Some(cmd)));
        assert_eq!(ok(&format!("{cmd} --help")), want);
        assert_eq!(ok(&format!("gateway {cmd} -h --bogus")), want);
        assert_eq!(ok(&format!("help {cmd}")), want);
        assert!(help_text(Some(cmd)).starts_with(&format!("clawgate {cmd}: ")));
    }
    assert_eq!(ok("--version"), Command::Version);
    assert_eq!(ok("call -V"), Command::Version);
}

/// The `--flags` a help text mentions, without the dashes.
fn flags_in(text: &str) -> Vec<&str> {
    let mut found: Vec<&str> = text
        .match_indices("--")
        .map(|(i, _)| {
            let rest = &text[i + 2..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

#[test]
fn each_help_documents_exactly_the_flags_its_command_takes() {
    let all: Vec<&str> = [
        LOCATION_FLAGS,
        RUN_FLAGS,
        CLIENT_FLAGS,
        LOGS_FLAGS,
        DEVICES_FLAGS,
        NODES_FLAGS,
        super::agent::AGENT_FLAGS,
        super::agent::SESSIONS_FLAGS,
        SERVICE_FLAGS,
        INSTALL_FLAGS,
    ]
    .concat();
    let all = [all.as_slice(), &["params", "expect-final", "no-probe"]].concat();
    for cmd in COMMANDS {
        let sub = Sub::from_name(cmd).expect("COMMANDS are known");
        let help = help_text(Some(cmd));
        let shown = flags_in(&help);
        for flag in &all {
            assert_eq!(
                sub.accepts(flag),
                shown.contains(flag),
                "'--{flag}' in {cmd}"
            );
        }
        for flag in shown {
            assert!(
                sub.accepts(flag) || flag == "help",
                "{cmd} help shows '--{flag}'"
            );
        }
    }
    assert_eq!(flags_in(&help_text(None)), ["help", "version"]);
}

#[test]
fn every_flag_in_the_table_is_parsed() {
    let mut raw = Raw::default();
    let call_status = ["params", "expect-final", "no-probe"];
    let tables = [
        LOCATION_FLAGS,
        RUN_FLAGS,
        CLIENT_FLAGS,
        LOGS_FLAGS,
        DEVICES_FLAGS,
        NODES_FLAGS,
        super::agent::AGENT_FLAGS,
        super::agent::SESSIONS_FLAGS,
        SERVICE_FLAGS,
        INSTALL_FLAGS,
        &call_status,
    ];
    for flag in tables.concat() {
        let mut parser = lexopt::Parser::from_args(["1"]);
        let known = set_flag(&mut raw, Sub::Run, flag, &mut parser);
        assert!(!matches!(known, Ok(false)), "--{flag} is not parsed");
    }
}

/// Every action of `devices`, `nodes` and `sessions`.
fn verbs() -> Vec<Verb> {
    let devices = DeviceVerb::ALL.iter().map(|v| Verb::Device(*v));
    devices
        .chain(NodeVerb::ALL.iter().map(|v| Verb::Node(*v)))
        .chain(SessionVerb::ALL.iter().map(|v| Verb::Session(*v)))
        .collect()
}

#[test]
fn each_action_has_a_help_with_exactly_its_flags() {
    for verb in verbs() {
        let cmd = verb.command_line();
        let want = Command::Help(help::verb_help(verb));
        assert_eq!(ok(&format!("{cmd} --help")), want, "{cmd}");
        assert_eq!(ok(&format!("gateway {cmd} -h")), want, "{cmd}");
        assert_eq!(ok(&format!("help {cmd}")), want, "{cmd}");
        let text = help::verb_help(verb);
        assert!(text.starts_with(&format!("clawgate {cmd}: ")), "{cmd}");
        let mut want: Vec<&str> = [LOCATION_FLAGS, CLIENT_FLAGS, verb.flags(), &["help"]].concat();
        want.sort_unstable();
        want.dedup();
        assert_eq!(flags_in(&text), want, "{cmd}");
    }
    // Before the action, or with none, the command's own help.
    let nodes = Command::Help(help_text(Some("nodes")));
    assert_eq!(ok("nodes --help invoke"), nodes);
    assert_eq!(ok("help nodes"), nodes);
}

#[test]
fn help_texts_are_narrow_plain_ascii() {
    let verbs = verbs().into_iter().map(help::verb_help);
    let commands = [None].into_iter().chain(COMMANDS.iter().copied().map(Some));
    for (cmd, text) in commands
        .map(|c| (c, help_text(c)))
        .chain(verbs.map(|t| (None, t)))
    {
        assert!(text.ends_with('\n') && !text.ends_with("\n\n"), "{cmd:?}");
        for line in text.lines() {
            assert!(line.len() <= 79 && line.is_ascii(), "{cmd:?}: {line}");
            assert_eq!(line.trim_end(), line, "{cmd:?}: trailing space");
            // A flag at column 0 means a string continuation ate its indent.
            assert!(!line.starts_with('-'), "{cmd:?}: unindented: {line}");
        }
    }
}

mod agent;
mod pairing;
