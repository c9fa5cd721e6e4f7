use super::*;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("clawgate-config-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn run(args: &RunArgs, vars: &[(&str, &str)]) -> Result<Settings, Error> {
    resolve_run(args, &env_of(vars))
}

fn client(args: &ClientArgs, vars: &[(&str, &str)]) -> Result<ClientTarget, Error> {
    resolve_client(args, &env_of(vars), BrokenFile::Fails)
}

/// Run args reading `config` with the state dir in `dir`.
fn run_args(dir: &TempDir, config: Option<&Path>) -> RunArgs {
    RunArgs {
        location: Location {
            config: config.map(Path::to_path_buf),
            state_dir: Some(dir.path().to_path_buf()),
            ..Location::default()
        },
        ..RunArgs::default()
    }
}

fn client_args(dir: &TempDir) -> ClientArgs {
    ClientArgs {
        location: Location {
            state_dir: Some(dir.path().to_path_buf()),
            ..Location::default()
        },
        url: None,
        token: None,
        password: None,
        timeout_ms: 10_000,
        json: false,
    }
}

/// The message of a config error; anything else fails the test.
fn config_err<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(Error::Config(msg)) => msg,
        other => panic!("expected a config error, got {other:?}"),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

const TOKEN: &str = "9c2f4e6a8b0d1f3e5a7c9b1d3f5e7a9c";
const LOCAL: &str = r#"{"gateway":{"mode":"local"}}"#;
const REFUSING_LAN: &str = "Refusing to bind gateway to lan without auth. ";

// ---- the file ---------------------------------------------------------------

#[test]
fn every_fixture_loads_or_fails_as_its_name_says() {
    let dir = TempDir::new();
    let mut seen = 0;
    let entries = fs::read_dir(fixture("")).expect("tests/fixtures exists");
    for entry in entries {
        let path = entry.expect("fixture dir entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let mut args = run_args(&dir, Some(&path));
        args.allow_unconfigured = true;
        let result = run(&args, &[]);
        if name.starts_with("valid-") {
            if let Err(e) = result {
                panic!("{name} must load: {e}");
            }
        } else if name.starts_with("invalid-") {
            let msg = config_err(result);
            let prefix = format!("{}:", path.display());
            assert!(
                msg.starts_with(&prefix),
                "{name}: '{msg}' must start with the path"
            );
        } else {
            panic!("fixture '{name}' must start with 'valid-' or 'invalid-'");
        }
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} fixtures found");
}

#[test]
fn parse_errors_point_at_line_and_column() {
    let cases = [
        ("invalid-syntax.json", 4, 3, "trailing comma"),
        (
            "invalid-type.json",
            3,
            19,
            "'gateway.port' must be a port number from 1 to 65535",
        ),
        (
            "invalid-unknown-key.json",
            4,
            10,
            "unknown field 'prot', expected one of 'mode'",
        ),
        (
            "invalid-bind-mode.json",
            2,
            45,
            "'gateway.bind' must be \"loopback\", \"lan\", \"tailnet\", \"auto\" or \"custom\"",
        ),
        (
            "invalid-bind-host.json",
            2,
            76,
            "'gateway.customBindHost' must be a numeric IPv4 or IPv6 address",
        ),
        (
            "invalid-log-level.json",
            2,
            33,
            "'logging.level' must be \"error\", \"warn\", \"info\", \"debug\" or \"trace\"",
        ),
        (
            "invalid-not-object.json",
            1,
            1,
            "invalid type: sequence, expected a JSON object",
        ),
        (
            "invalid-section-array.json",
            2,
            13,
            "'gateway' must be an object",
        ),
        (
            "invalid-model-array.json",
            2,
            51,
            "'models.providers.local.models[0]' must be an object",
        ),
    ];
    for (name, line, column, text) in cases {
        let path = fixture(name);
        let msg = config_err(load(&path, true, &|_| None, Reader::Gateway));
        let prefix = format!("{}:{line}:{column}: {text}", path.display());
        assert!(
            msg.starts_with(&prefix),
            "{name}: got '{msg}', want '{prefix}'"
        );
        assert!(
            !msg.contains(" at line "),
            "{name}: serde_json's suffix left in '{msg}'"
        );
    }
}

#[test]
fn an_empty_file_is_an_error_that_shows_a_minimal_config() {
    let path = fixture("invalid-empty.json");
    let msg = config_err(load(&path, true, &|_| None, Reader::Gateway));
    assert_eq!(
        msg,
        format!(
            "{}: empty file: a minimal configuration is {MINIMAL_CONFIG}",
            path.display()
        )
    );
}

#[test]
fn semantic_errors_name_the_key() {
    let cases = [
        (
            "invalid-limits.json",
            "'gateway.limits.maxConnections' must be at least 1",
        ),
        (
            "invalid-thread-stack.json",
            "'gateway.limits.threadStackBytes' must be at least 65536",
        ),
        (
            "invalid-small-payload.json",
            "'gateway.limits.maxPayload' must be at least 65536",
        ),
        (
            "invalid-buffered-below-payload.json",
            "'gateway.limits.maxBufferedBytes' (65536)",
        ),
        (
            "invalid-tick-interval.json",
            "'gateway.tickIntervalMs' must be between 100 and",
        ),
        (
            "invalid-origin.json",
            "'gateway.controlUi.allowedOrigins': 'https://gw.lan:18789/'",
        ),
        (
            "invalid-duplicate-model.json",
            "'models.providers.local.models' lists 'llama3' twice",
        ),
    ];
    for (name, text) in cases {
        let path = fixture(name);
        let msg = config_err(load(&path, true, &|_| None, Reader::Gateway));
        let want = format!("{}: {text}", path.display());
        assert!(msg.starts_with(&want), "{name}: got '{msg}', want '{want}'");
    }
}

#[test]
fn the_full_fixture_sets_every_setting() {
    let dir = TempDir::new();
    let path = fixture("valid-full.json");
    let s = run(&run_args(&dir, Some(&path)), &[]).expect("valid-full loads");
    assert_eq!(s.port, 18790);
    assert_eq!(s.bind, BindMode::Custom);
    assert_eq!(s.bind_host, Some(IpAddr::from([192, 168, 1, 10])));
    assert_eq!(s.auth_mode, AuthMode::Token);
    assert_eq!(s.secret_source, "config");
    assert!(s.token.is_some());
    assert_eq!(
        s.password, None,
        "password mode is off: the password is dropped"
    );
    assert_eq!(s.tick_interval_ms, 15_000);
    assert_eq!(
        s.allowed_origins,
        ["https://gw.lan:18790", "http://192.168.1.10:18790"]
    );
    assert_eq!(s.allowed_hosts, ["gw.lan", "router.lan"]);
    assert_eq!(s.trusted_proxies.len(), 2);
    let l = &s.limits;
    assert_eq!((l.max_connections, l.max_unauth_per_ip), (64, 8));
    assert_eq!(
        (l.max_head_bytes, l.max_headers, l.head_timeout_ms),
        (8192, 50, 5000)
    );
    assert_eq!((l.max_body_bytes, l.body_timeout_ms), (262_144, 20_000));
    assert_eq!((l.keep_alive_idle_ms, l.handshake_timeout_ms), (2000, 5000));
    assert_eq!(
        (l.max_pre_hello_frame_bytes, l.max_pre_hello_frames),
        (32_768, 8)
    );
    assert_eq!(
        (l.max_payload, l.max_buffered_bytes),
        (1_048_576, 2_097_152)
    );
    assert_eq!(l.thread_stack_bytes, 131_072);
    assert_eq!((l.auth_max_failures, l.auth_window_ms), (5, 30_000));
    assert_eq!((l.auth_lockout_ms, l.max_unauthorized_calls), (600_000, 5));
    assert_eq!(s.log.level, log::LevelFilter::Debug);
    assert!(s.log.file);
    assert_eq!(s.default_agent_id, "ops");
    assert_eq!(s.main_key, "primary");
    assert_eq!(s.session_scope, "global");
    let ids: Vec<_> = s
        .models
        .iter()
        .map(|m| (m.provider.as_str(), m.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("anthropic", "claude-sonnet-4-5"),
            ("openai", "gpt-5"),
            ("openai", "gpt-5-mini")
        ]
    );
    assert_eq!(s.models[1].name, "GPT-5");
    assert_eq!(s.models[2].name, "gpt-5-mini", "name defaults to the id");
    assert_eq!(s.models[1].context_window, Some(400_000));
    assert_eq!(s.models[1].reasoning, Some(true));
    assert_eq!(s.models[0].alias.as_deref(), Some("sonnet"));
    assert!(s.config_raw.is_some());
    assert_eq!(
        s.config_json.as_ref().map(|j| j["gateway"]["port"].clone()),
        Some(json!(18790))
    );
}

#[test]
fn the_shipped_example_config_resolves_to_the_defaults() {
    let dir = TempDir::new();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/clawgate.example.json");
    let s = run(&run_args(&dir, Some(&path)), &[]).expect("the example config starts");
    assert_eq!(s.port, DEFAULT_PORT);
    assert_eq!(s.bind, BindMode::Loopback);
    assert_eq!((s.auth_mode, s.token.as_deref()), (AuthMode::Token, None));
    assert_eq!(s.secret_source, "generated");
    assert_eq!(s.tick_interval_ms, DEFAULT_TICK_INTERVAL_MS);
    assert_eq!(s.limits, Limits::default());
    assert_eq!((s.log.level, s.log.file), (log::LevelFilter::Info, false));
    assert_eq!(s.models.len(), 1);
    let json = s.config_json.expect("the example is JSON");
    assert_eq!(redact(&json), json, "the example must carry no secret");
}

#[test]
fn no_file_gives_the_documented_defaults() {
    let dir = TempDir::new();
    let mut args = run_args(&dir, None);
    args.allow_unconfigured = true;
    let s = run(&args, &[]).expect("defaults resolve");
    assert_eq!(s.config_path, dir.path().join("clawgate.json"));
    assert_eq!((s.config_raw, s.config_json), (None, None));
    assert_eq!(
        (s.port, s.bind, s.auth_mode),
        (18789, BindMode::Loopback, AuthMode::Token)
    );
    assert_eq!(s.secret_source, "generated");
    assert_eq!(s.limits, Limits::default());
    assert_eq!(s.limits.max_connections, 256);
    assert_eq!(s.limits.thread_stack_bytes, 128 * 1024);
    assert_eq!(s.tick_interval_ms, 30_000);
    assert_eq!(
        (s.default_agent_id.as_str(), s.main_key.as_str()),
        ("main", "main")
    );
    assert_eq!(s.session_scope, "per-sender");
    assert_eq!(
        s.log,
        LogSettings {
            level: log::LevelFilter::Info,
            file: false,
            json: false
        }
    );
}

#[test]
fn redact_hides_every_secret_at_any_depth() {
    let value = json!({
        "gateway": {"port": 1, "auth": {"mode": "token", "Token": "t", "password": "p"}},
        "models": {"providers": {"x": {"apiKey": "k", "APIKEY": ["a", {"b": "c"}], "api": "o"}}},
        "list": [{"secret": {"nested": "s", "n": 3}}, "plain"],
        "tokenizer": "kept"
    });
    let want = json!({
        "gateway": {"port": 1, "auth": {"mode": "token", "Token": "__REDACTED__", "password": "__REDACTED__"}},
        "models": {"providers": {"x": {"apiKey": "__REDACTED__", "APIKEY": ["__REDACTED__", {"b": "__REDACTED__"}], "api": "o"}}},
        "list": [{"secret": {"nested": "__REDACTED__", "n": 3}}, "plain"],
        "tokenizer": "kept"
    });
    assert_eq!(redact(&value), want);
}

// ---- where the files are ------------------------------------------------------

#[test]
fn state_dir_precedence() {
    let home = "/home/u";
    let env = [
        ("HOME", home),
        ("CLAWGATE_STATE_DIR", "/c"),
        ("OPENCLAW_STATE_DIR", "/o"),
    ];
    let dir = |loc: &Location, vars: &[(&str, &str)]| state_dir(loc, &env_of(vars));
    let explicit = Location {
        state_dir: Some("/flag".into()),
        dev: true,
        ..Location::default()
    };
    assert_eq!(dir(&explicit, &env).ok(), Some("/flag".into()));
    let dev = Location {
        dev: true,
        profile: Some("p".into()),
        ..Location::default()
    };
    assert_eq!(dir(&dev, &env).ok(), Some("/home/u/.clawgate-dev".into()));
    let profile = Location {
        profile: Some("work".into()),
        ..Location::default()
    };
    assert_eq!(
        dir(&profile, &env).ok(),
        Some("/home/u/.clawgate-work".into())
    );
    let plain = Location::default();
    assert_eq!(dir(&plain, &env).ok(), Some("/c".into()));
    assert_eq!(
        dir(&plain, &env[..1]).ok(),
        Some("/home/u/.clawgate".into())
    );
    let openclaw = [("HOME", home), ("OPENCLAW_STATE_DIR", "/o")];
    assert_eq!(dir(&plain, &openclaw).ok(), Some("/o".into()));
    let empty = [
        ("HOME", home),
        ("CLAWGATE_STATE_DIR", ""),
        ("OPENCLAW_STATE_DIR", "/o"),
    ];
    assert_eq!(
        dir(&plain, &empty).ok(),
        Some("/o".into()),
        "empty counts as unset"
    );
    let tilde = [("HOME", home), ("CLAWGATE_STATE_DIR", "~/gw")];
    assert_eq!(dir(&plain, &tilde).ok(), Some("/home/u/gw".into()));
    let bad = Location {
        profile: Some("../x".into()),
        ..Location::default()
    };
    assert!(matches!(dir(&bad, &env), Err(Error::Usage(_))));
}

#[test]
fn a_missing_home_is_a_config_error_unless_not_needed() {
    let msg = config_err(state_dir(&Location::default(), &env_of(&[])));
    assert_eq!(
        msg,
        "cannot find the home directory: set HOME or pass --state-dir"
    );
    let loc = Location {
        state_dir: Some("/s".into()),
        ..Location::default()
    };
    assert!(state_dir(&loc, &env_of(&[])).is_ok());
}

#[test]
fn config_path_precedence() {
    let state = Path::new("/state");
    let env = [
        ("CLAWGATE_CONFIG_PATH", "/c.json"),
        ("OPENCLAW_CONFIG_PATH", "/o.json"),
    ];
    let path = |loc: &Location, vars: &[(&str, &str)]| config_path(loc, &env_of(vars), state).ok();
    let flag = Location {
        config: Some("/f.json".into()),
        ..Location::default()
    };
    assert_eq!(path(&flag, &env), Some(("/f.json".into(), true)));
    let plain = Location::default();
    assert_eq!(path(&plain, &env), Some(("/c.json".into(), true)));
    assert_eq!(path(&plain, &env[1..]), Some(("/o.json".into(), true)));
    assert_eq!(
        path(&plain, &[]),
        Some(("/state/clawgate.json".into(), false))
    );
}

#[test]
fn an_explicit_config_path_must_exist() {
    let dir = TempDir::new();
    let missing = dir.path().join("nope.json");
    let mut args = run_args(&dir, Some(&missing));
    args.allow_unconfigured = true;
    let msg = config_err(run(&args, &[]));
    assert_eq!(
        msg,
        format!("'{}': no such file or directory", missing.display())
    );
    let via_env = missing.to_str().expect("utf-8 temp path");
    let args = RunArgs {
        allow_unconfigured: true,
        ..run_args(&dir, None)
    };
    let msg = config_err(run(&args, &[("OPENCLAW_CONFIG_PATH", via_env)]));
    assert!(msg.ends_with("no such file or directory"), "{msg}");
    let msg = config_err(client(
        &client_args(&dir),
        &[("CLAWGATE_CONFIG_PATH", via_env)],
    ));
    assert!(msg.ends_with("no such file or directory"), "{msg}");
}

#[test]
fn a_config_that_is_a_directory_is_a_config_error() {
    let dir = TempDir::new();
    let msg = config_err(load(dir.path(), false, &|_| None, Reader::Gateway));
    assert!(
        msg.starts_with(&format!("'{}': ", dir.path().display())),
        "{msg}"
    );
}

#[test]
fn port_precedence() {
    let dir = TempDir::new();
    let with_port = dir.write("port.json", r#"{"gateway":{"mode":"local","port":4444}}"#);
    let without = dir.write("local.json", LOCAL);
    let port = |config: &Path, flag: Option<u16>, dev: bool, vars: &[(&str, &str)]| {
        let mut args = run_args(&dir, Some(config));
        args.location.port = flag;
        args.location.dev = dev;
        run(&args, vars).map(|s| s.port).ok()
    };
    let both = [
        ("CLAWGATE_GATEWAY_PORT", "2222"),
        ("OPENCLAW_GATEWAY_PORT", "3333"),
    ];
    assert_eq!(port(&with_port, Some(1111), false, &both), Some(1111));
    assert_eq!(port(&with_port, None, false, &both), Some(2222));
    assert_eq!(port(&with_port, None, false, &both[1..]), Some(3333));
    assert_eq!(port(&with_port, None, false, &[]), Some(4444));
    assert_eq!(
        port(&with_port, None, true, &[]),
        Some(4444),
        "the file beats the dev default"
    );
    assert_eq!(port(&without, None, false, &[]), Some(18789));
    assert_eq!(port(&without, None, true, &[]), Some(19001));
}

#[test]
fn a_bad_port_variable_is_named() {
    let dir = TempDir::new();
    let args = RunArgs {
        allow_unconfigured: true,
        ..run_args(&dir, None)
    };
    let msg = config_err(run(&args, &[("CLAWGATE_GATEWAY_PORT", "abc")]));
    assert_eq!(msg, "CLAWGATE_GATEWAY_PORT: invalid port 'abc'");
    let msg = config_err(run(&args, &[("OPENCLAW_GATEWAY_PORT", "70000")]));
    assert_eq!(msg, "OPENCLAW_GATEWAY_PORT: invalid port '70000'");
}

// ---- the start-up gate ---------------------------------------------------------

#[test]
fn the_gate_blocks_without_local_mode() {
    let dir = TempDir::new();
    let args = run_args(&dir, None);
    let msg = config_err(run(&args, &[]));
    let default = dir.path().join("clawgate.json");
    assert_eq!(
        msg,
        format!(
            "gateway start blocked: no configuration at '{}': create it with {{\"gateway\":{{\"mode\":\"local\"}}}} to set gateway.mode to \"local\", or pass --allow-unconfigured (or --dev for a throwaway dev gateway)",
            default.display()
        )
    );
    let empty = dir.write("empty.json", "{}");
    let msg = config_err(run(&run_args(&dir, Some(&empty)), &[]));
    assert_eq!(
        msg,
        format!(
            "gateway start blocked: set gateway.mode to \"local\" in '{}', or pass --allow-unconfigured (or --dev for a throwaway dev gateway)",
            empty.display()
        )
    );
    let remote = fixture("valid-remote-mode.json");
    let msg = config_err(run(&run_args(&dir, Some(&remote)), &[]));
    assert!(
        msg.starts_with("gateway start blocked: gateway.mode is \"remote\""),
        "{msg}"
    );
    assert!(msg.contains("only runs local gateways"), "{msg}");
}

#[test]
fn the_gate_opens_for_local_mode_allow_unconfigured_and_dev() {
    let dir = TempDir::new();
    let local = dir.write("local.json", LOCAL);
    assert!(run(&run_args(&dir, Some(&local)), &[]).is_ok());
    let empty = dir.write("empty.json", "{}");
    let args = RunArgs {
        allow_unconfigured: true,
        ..run_args(&dir, Some(&empty))
    };
    assert!(run(&args, &[]).is_ok());
    let args = RunArgs {
        allow_unconfigured: true,
        ..run_args(&dir, None)
    };
    assert!(run(&args, &[]).is_ok(), "no file and --allow-unconfigured");
    let mut args = run_args(&dir, None);
    args.location.dev = true;
    let s = run(&args, &[]).expect("--dev starts without a config");
    assert!(s.dev);
    assert_eq!(s.port, DEV_PORT);
}

#[test]
fn checks_run_in_order_parse_then_gate_then_bind() {
    let dir = TempDir::new();
    let broken = dir.write("broken.json", "{\"gateway\": {\"bind\": \"lan\",}}");
    let msg = config_err(run(&run_args(&dir, Some(&broken)), &[]));
    assert!(
        msg.starts_with(&format!("{}:1:", broken.display())),
        "{msg}"
    );
    let lan = dir.write("lan.json", r#"{"gateway":{"bind":"lan"}}"#);
    let msg = config_err(run(&run_args(&dir, Some(&lan)), &[]));
    assert!(msg.starts_with("gateway start blocked"), "{msg}");
    let args = RunArgs {
        allow_unconfigured: true,
        ..run_args(&dir, Some(&lan))
    };
    assert!(config_err(run(&args, &[])).starts_with(REFUSING_LAN));
}

// ---- bind and auth ---------------------------------------------------------------

#[test]
fn exposed_binds_without_a_secret_are_refused() {
    let dir = TempDir::new();
    let cases = [
        ("lan", Some(BindMode::Lan), None, None),
        ("tailnet", Some(BindMode::Tailnet), None, None),
        (
            "custom",
            Some(BindMode::Custom),
            Some(IpAddr::from([0, 0, 0, 0])),
            None,
        ),
        ("custom", None, Some(IpAddr::from([192, 168, 1, 2])), None),
        ("lan", Some(BindMode::Lan), None, Some(AuthMode::None)),
        ("lan", Some(BindMode::Lan), None, Some(AuthMode::Password)),
    ];
    let config = dir.write("c.json", LOCAL);
    for (name, bind, host, auth) in cases {
        let args = RunArgs {
            bind,
            bind_host: host,
            auth,
            ..run_args(&dir, Some(&config))
        };
        let msg = config_err(run(&args, &[]));
        let want = format!(
            "Refusing to bind gateway to {name} without auth. Set a secret with --token or --password, CLAWGATE_GATEWAY_TOKEN or CLAWGATE_GATEWAY_PASSWORD, or gateway.auth.token in '{}'.",
            config.display()
        );
        assert!(msg.starts_with(&want), "got '{msg}', want '{want}'");
    }
}

#[test]
fn loopback_and_auto_binds_start_without_a_secret() {
    let dir = TempDir::new();
    let config = dir.write("c.json", LOCAL);
    let cases = [
        (Some(BindMode::Loopback), None),
        (Some(BindMode::Auto), None),
        (None, None),
        (Some(BindMode::Custom), Some(IpAddr::from([127, 0, 0, 2]))),
    ];
    for (bind, bind_host) in cases {
        let args = RunArgs {
            bind,
            bind_host,
            ..run_args(&dir, Some(&config))
        };
        let s = run(&args, &[]).expect("loopback needs no secret");
        assert_eq!((s.token, s.secret_source), (None, "generated"));
    }
    let args = RunArgs {
        auth: Some(AuthMode::None),
        ..run_args(&dir, Some(&config))
    };
    let s = run(&args, &[]).expect("auth none on loopback");
    assert_eq!((s.auth_mode, s.secret_source), (AuthMode::None, "none"));
}

#[test]
fn an_exposed_bind_with_a_secret_starts() {
    let dir = TempDir::new();
    let s = run(&run_args(&dir, Some(&fixture("valid-lan-token.json"))), &[]).expect("lan+token");
    assert_eq!((s.bind, s.secret_source), (BindMode::Lan, "config"));
    let s = run(
        &run_args(&dir, Some(&fixture("valid-lan-password.json"))),
        &[],
    )
    .expect("lan+pw");
    assert_eq!(
        (s.auth_mode, s.secret_source),
        (AuthMode::Password, "config")
    );
    assert_eq!(s.password.as_deref(), Some("correct-horse-battery-staple"));
    let config = dir.write("c.json", LOCAL);
    let args = RunArgs {
        bind: Some(BindMode::Tailnet),
        ..run_args(&dir, Some(&config))
    };
    let s = run(&args, &[("OPENCLAW_GATEWAY_TOKEN", TOKEN)]).expect("tailnet+env token");
    assert_eq!(s.secret_source, "OPENCLAW_GATEWAY_TOKEN");
}

#[test]
fn bind_host_selects_custom_and_custom_needs_a_host() {
    let dir = TempDir::new();
    let config = dir.write("c.json", LOCAL);
    let host = IpAddr::from([127, 0, 0, 3]);
    let args = RunArgs {
        bind_host: Some(host),
        ..run_args(&dir, Some(&config))
    };
    let s = run(&args, &[]).expect("--bind-host alone");
    assert_eq!((s.bind, s.bind_host), (BindMode::Custom, Some(host)));
    let args = RunArgs {
        bind: Some(BindMode::Lan),
        bind_host: Some(host),
        ..run_args(&dir, Some(&config))
    };
    assert!(matches!(run(&args, &[]), Err(Error::Usage(_))));
    let args = RunArgs {
        bind: Some(BindMode::Custom),
        ..run_args(&dir, Some(&config))
    };
    assert!(config_err(run(&args, &[])).starts_with("bind mode 'custom' needs a host"));
    let file = dir.write(
        "h.json",
        r#"{"gateway":{"mode":"local","bind":"lan","customBindHost":"::1"}}"#,
    );
    let args = RunArgs {
        bind: Some(BindMode::Custom),
        ..run_args(&dir, Some(&file))
    };
    let s = run(&args, &[]).expect("--bind custom with the file's host");
    assert_eq!(s.bind_host, Some("::1".parse().expect("ip")));
}

#[test]
fn token_precedence_and_sources() {
    let dir = TempDir::new();
    let config = dir.write(
        "c.json",
        &format!(r#"{{"gateway":{{"mode":"local","auth":{{"token":"{TOKEN}-file"}}}}}}"#),
    );
    let env = [
        ("CLAWGATE_GATEWAY_TOKEN", "clawgate-env-token-0123456789"),
        ("OPENCLAW_GATEWAY_TOKEN", "openclaw-env-token-0123456789"),
    ];
    let token = |flag: Option<&str>, vars: &[(&str, &str)]| {
        let args = RunArgs {
            token: flag.map(str::to_string),
            ..run_args(&dir, Some(&config))
        };
        run(&args, vars)
            .map(|s| (s.token.unwrap_or_default(), s.secret_source))
            .ok()
    };
    assert_eq!(
        token(Some("flag-token-0123456789"), &env),
        Some(("flag-token-0123456789".into(), "--token"))
    );
    assert_eq!(
        token(None, &env),
        Some((env[0].1.into(), "CLAWGATE_GATEWAY_TOKEN"))
    );
    assert_eq!(
        token(None, &env[1..]),
        Some((env[1].1.into(), "OPENCLAW_GATEWAY_TOKEN"))
    );
    assert_eq!(token(None, &[]), Some((format!("{TOKEN}-file"), "config")));
}

#[test]
fn password_precedence_and_mode_inference() {
    let dir = TempDir::new();
    let config = dir.write(
        "c.json",
        r#"{"gateway":{"mode":"local","auth":{"password":"file-password-123"}}}"#,
    );
    let env = [
        ("CLAWGATE_GATEWAY_PASSWORD", "clawgate-env-pw"),
        ("OPENCLAW_GATEWAY_PASSWORD", "openclaw-env-pw"),
    ];
    let pw = |flag: Option<&str>, vars: &[(&str, &str)]| {
        let args = RunArgs {
            password: flag.map(str::to_string),
            ..run_args(&dir, Some(&config))
        };
        run(&args, vars)
            .map(|s| (s.auth_mode, s.password.unwrap_or_default(), s.secret_source))
            .ok()
    };
    let p = AuthMode::Password;
    assert_eq!(
        pw(Some("flag-pw-1"), &env),
        Some((p, "flag-pw-1".into(), "--password"))
    );
    assert_eq!(
        pw(None, &env),
        Some((p, env[0].1.into(), "CLAWGATE_GATEWAY_PASSWORD"))
    );
    assert_eq!(
        pw(None, &env[1..]),
        Some((p, env[1].1.into(), "OPENCLAW_GATEWAY_PASSWORD"))
    );
    assert_eq!(
        pw(None, &[]),
        Some((p, "file-password-123".into(), "config"))
    );
    // A token anywhere keeps the default mode at token.
    let args = run_args(&dir, Some(&config));
    let s = run(&args, &[("CLAWGATE_GATEWAY_TOKEN", TOKEN)]).expect("token and password");
    assert_eq!(
        (s.auth_mode, s.password, s.secret_source),
        (AuthMode::Token, None, "CLAWGATE_GATEWAY_TOKEN")
    );
    // --auth beats the inference.
    let args = RunArgs {
        auth: Some(AuthMode::Token),
        ..run_args(&dir, Some(&config))
    };
    let s = run(&args, &[]).expect("--auth token");
    assert_eq!(
        (s.auth_mode, s.secret_source),
        (AuthMode::Token, "generated")
    );
}

#[test]
fn password_mode_without_a_password_says_how_to_set_one() {
    let dir = TempDir::new();
    let config = dir.write(
        "c.json",
        r#"{"gateway":{"mode":"local","auth":{"mode":"password"}}}"#,
    );
    let msg = config_err(run(&run_args(&dir, Some(&config)), &[]));
    assert!(
        msg.starts_with("auth mode 'password' needs a password: pass --password"),
        "{msg}"
    );
    assert!(msg.contains("CLAWGATE_GATEWAY_PASSWORD"), "{msg}");
}

#[test]
fn placeholder_and_blank_secrets_are_refused_naming_the_source() {
    let dir = TempDir::new();
    let config = dir.write("c.json", LOCAL);
    let args = RunArgs {
        token: Some("ChangeMe".into()),
        ..run_args(&dir, Some(&config))
    };
    let msg = config_err(run(&args, &[]));
    assert!(
        msg.starts_with("--token: the token is a placeholder ('ChangeMe')"),
        "{msg}"
    );
    for placeholder in [
        "changeme",
        "change-me",
        "your-token",
        "your_token",
        "<token>",
        "TOKEN",
        "password",
        "secret",
        "xxx",
    ] {
        let msg = config_err(run(
            &run_args(&dir, Some(&config)),
            &[("CLAWGATE_GATEWAY_TOKEN", placeholder)],
        ));
        assert!(
            msg.starts_with("CLAWGATE_GATEWAY_TOKEN: the token is a placeholder"),
            "{msg}"
        );
    }
    let msg = config_err(run(
        &run_args(&dir, Some(&config)),
        &[("OPENCLAW_GATEWAY_PASSWORD", "  ")],
    ));
    assert_eq!(msg, "OPENCLAW_GATEWAY_PASSWORD: the password is blank");
    let path = fixture("invalid-placeholder-token.json");
    let msg = config_err(run(&run_args(&dir, Some(&path)), &[]));
    assert!(
        msg.starts_with(&format!(
            "{}: 'gateway.auth.token' is a placeholder",
            path.display()
        )),
        "{msg}"
    );
    // A good flag wins over a bad file value, which is then never used.
    let args = RunArgs {
        token: Some(TOKEN.into()),
        ..run_args(&dir, Some(&path))
    };
    assert_eq!(
        run(&args, &[]).map(|s| s.secret_source).ok(),
        Some("--token")
    );
}

#[test]
fn logging_comes_from_flags_then_file() {
    let dir = TempDir::new();
    let config = dir.write(
        "c.json",
        r#"{"gateway":{"mode":"local"},"logging":{"level":"warn","file":true}}"#,
    );
    let s = run(&run_args(&dir, Some(&config)), &[]).expect("logging");
    assert_eq!(
        s.log,
        LogSettings {
            level: log::LevelFilter::Warn,
            file: true,
            json: false
        }
    );
    let args = RunArgs {
        verbose: true,
        json_logs: true,
        reset: true,
        force: true,
        ..run_args(&dir, Some(&config))
    };
    let s = run(&args, &[]).expect("verbose");
    assert_eq!(
        s.log,
        LogSettings {
            level: log::LevelFilter::Debug,
            file: true,
            json: true
        }
    );
    assert!(s.reset && s.force && !s.dev);
    let s = run(
        &run_args(&dir, Some(&config)),
        &[("CLAWGATE_LOG_LEVEL", "Trace")],
    );
    assert_eq!(s.expect("env level").log.level, log::LevelFilter::Trace);
    let s = run(
        &run_args(&dir, Some(&config)),
        &[("OPENCLAW_LOG_LEVEL", "error")],
    );
    assert_eq!(s.expect("env level").log.level, log::LevelFilter::Error);
    let msg = config_err(run(
        &run_args(&dir, Some(&config)),
        &[("CLAWGATE_LOG_LEVEL", "loud")],
    ));
    assert!(
        msg.starts_with("CLAWGATE_LOG_LEVEL: invalid level 'loud'"),
        "{msg}"
    );
}

// ---- clients ------------------------------------------------------------------------

#[test]
fn client_defaults_to_loopback_and_the_resolved_port() {
    let dir = TempDir::new();
    let t = client(&client_args(&dir), &[]).expect("no config is fine");
    assert_eq!(t.url, "ws://127.0.0.1:18789");
    assert_eq!((t.token, t.password, t.secret_source), (None, None, "none"));
    assert_eq!(t.config_path, dir.path().join("clawgate.json"));
    let t = client(&client_args(&dir), &[("OPENCLAW_GATEWAY_PORT", "4000")]).expect("env port");
    assert_eq!(t.url, "ws://127.0.0.1:4000");
    let mut args = client_args(&dir);
    args.location.dev = true;
    args.location.state_dir = None;
    let t = client(&args, &[("HOME", "/home/u")]).expect("dev");
    assert_eq!(t.url, "ws://127.0.0.1:19001");
    assert_eq!(t.state_dir, PathBuf::from("/home/u/.clawgate-dev"));
}

#[test]
fn client_follows_the_configured_bind() {
    let dir = TempDir::new();
    let cases = [
        (
            r#"{"gateway":{"port":5000,"bind":"custom","customBindHost":"192.168.1.10"}}"#,
            "ws://192.168.1.10:5000",
        ),
        (
            r#"{"gateway":{"bind":"custom","customBindHost":"fd00::2"}}"#,
            "ws://[fd00::2]:18789",
        ),
        (
            r#"{"gateway":{"bind":"custom","customBindHost":"0.0.0.0"}}"#,
            "ws://127.0.0.1:18789",
        ),
        (
            r#"{"gateway":{"bind":"custom","customBindHost":"::"}}"#,
            "ws://[::1]:18789",
        ),
        (
            r#"{"gateway":{"bind":"lan","customBindHost":"192.168.1.10"}}"#,
            "ws://127.0.0.1:18789",
        ),
        (r#"{"gateway":{"bind":"tailnet"}}"#, "ws://127.0.0.1:18789"),
    ];
    for (text, url) in cases {
        dir.write("clawgate.json", text);
        let t = client(&client_args(&dir), &[]).expect("client resolves");
        assert_eq!(t.url, url, "for {text}");
    }
}

#[test]
fn client_reads_the_token_file_when_nothing_else_is_set() {
    let dir = TempDir::new();
    dir.write(TOKEN_FILE, &format!("  {TOKEN}\n"));
    let t = client(&client_args(&dir), &[]).expect("token file");
    assert_eq!(
        (t.token.as_deref(), t.secret_source),
        (Some(TOKEN), "token file")
    );
    dir.write(
        "clawgate.json",
        r#"{"gateway":{"auth":{"token":"config-token-123"}}}"#,
    );
    let t = client(&client_args(&dir), &[]).expect("config token");
    assert_eq!(
        (t.token.as_deref(), t.secret_source),
        (Some("config-token-123"), "config")
    );
    let t = client(
        &client_args(&dir),
        &[("OPENCLAW_GATEWAY_TOKEN", "env-token")],
    )
    .expect("env");
    assert_eq!(
        (t.token.as_deref(), t.secret_source),
        (Some("env-token"), "OPENCLAW_GATEWAY_TOKEN")
    );
    let mut args = client_args(&dir);
    args.password = Some("flag-pw".into());
    let t = client(&args, &[("CLAWGATE_GATEWAY_TOKEN", "env-token")]).expect("flag");
    assert_eq!(
        (t.token, t.password.as_deref(), t.secret_source),
        (None, Some("flag-pw"), "--password")
    );
}

#[test]
fn client_uses_the_password_or_nothing_when_the_config_says_so() {
    let dir = TempDir::new();
    dir.write(TOKEN_FILE, TOKEN);
    dir.write(
        "clawgate.json",
        r#"{"gateway":{"auth":{"password":"file-pw-1"}}}"#,
    );
    let t = client(&client_args(&dir), &[]).expect("password");
    assert_eq!(
        (t.token, t.password.as_deref(), t.secret_source),
        (None, Some("file-pw-1"), "config")
    );
    dir.write("clawgate.json", r#"{"gateway":{"auth":{"mode":"none"}}}"#);
    let t = client(&client_args(&dir), &[]).expect("none");
    assert_eq!((t.token, t.password, t.secret_source), (None, None, "none"));
}

#[test]
fn client_with_url_ignores_the_config_and_token_file() {
    let dir = TempDir::new();
    dir.write(TOKEN_FILE, TOKEN);
    dir.write(
        "clawgate.json",
        r#"{"gateway":{"auth":{"token":"config-token-123"}},}"#,
    );
    let mut args = client_args(&dir);
    args.url = Some("wss://other.example:443".into());
    let t = client(&args, &[]).expect("--url needs neither file");
    assert_eq!(t.url, "wss://other.example:443");
    assert_eq!((t.token, t.password, t.secret_source), (None, None, "none"));
    let t = client(&args, &[("CLAWGATE_GATEWAY_TOKEN", "env-token")]).expect("env applies");
    assert_eq!(
        (t.token.as_deref(), t.secret_source),
        (Some("env-token"), "CLAWGATE_GATEWAY_TOKEN")
    );
}

#[test]
fn client_reports_an_unreadable_token_file_and_a_broken_config() {
    let dir = TempDir::new();
    fs::create_dir(dir.path().join(TOKEN_FILE)).expect("mkdir");
    let msg = config_err(client(&client_args(&dir), &[]));
    let want = format!("'{}': ", dir.path().join(TOKEN_FILE).display());
    assert!(msg.starts_with(&want), "{msg}");
    let path = dir.write("clawgate.json", "{\"gateway\": 1}");
    let msg = config_err(client(&client_args(&dir), &[]));
    assert!(msg.starts_with(&format!("{}:1:", path.display())), "{msg}");
}

#[test]
fn reload_and_restart_settings_default_and_parse() {
    let dir = TempDir::new();
    let minimal = dir.write("min.json", MINIMAL_CONFIG);
    let s = run(&run_args(&dir, Some(&minimal)), &[]).expect("minimal config");
    assert_eq!(s.reload_mode, ReloadMode::Hybrid);
    assert_eq!(s.reload_debounce_ms, DEFAULT_DEBOUNCE_MS);
    assert!(!s.restart_enabled);
    let text = r#"{"gateway":{"mode":"local","reload":{"mode":"off","debounceMs":0}},
                  "commands":{"restart":true}}"#;
    let path = dir.write("set.json", text);
    let s = run(&run_args(&dir, Some(&path)), &[]).expect("reload settings");
    assert_eq!((s.reload_mode, s.reload_debounce_ms), (ReloadMode::Off, 0));
    assert!(s.restart_enabled);
    let cases = [
        (
            r#"{"gateway":{"mode":"local","reload":{"mode":"soft"}}}"#,
            "'gateway.reload.mode' must be \"off\", \"hot\", \"restart\" or \"hybrid\"",
        ),
        (
            r#"{"gateway":{"mode":"local","reload":{"debounceMs":60001}}}"#,
            "'gateway.reload.debounceMs' must be at most 60000",
        ),
        (
            r#"{"gateway":{"mode":"local"},"commands":{"restart":"yes"}}"#,
            "'commands.restart' must be true or false",
        ),
    ];
    for (text, want) in cases {
        let path = dir.write("bad.json", text);
        let msg = config_err(run(&run_args(&dir, Some(&path)), &[]));
        assert!(msg.contains(want), "got '{msg}', want '{want}'");
    }
}

// ---- ${NAME} in the file ----------------------------------------------------

#[test]
fn env_references_in_the_file_are_substituted_before_use() {
    let dir = TempDir::new();
    let path = dir.write(
        "c.json",
        r#"{"gateway": {"mode": "local", "bind": "${BIND}",
              "auth": {"token": "${GW_TOKEN}"}},
            "models": {"providers": {"p": {"apiKey": "${KEY}",
              "baseUrl": "http://${HOST}:8080/v1", "models": [{"id": "m"}]}}}}"#,
    );
    let vars = [
        ("GW_TOKEN", TOKEN),
        ("BIND", "lan"),
        ("KEY", "sk-1"),
        ("HOST", "gw.lan"),
    ];
    let s = run(&run_args(&dir, Some(&path)), &vars).expect("resolves");
    assert_eq!(s.token.as_deref(), Some(TOKEN));
    assert_eq!(s.secret_source, "config");
    assert_eq!(s.bind, BindMode::Lan);
    // `config.get` shows the file as written: the references, redacted
    // where they are secrets, never the values.
    let json = s.config_json.expect("parsed");
    assert_eq!(
        json["models"]["providers"]["p"]["baseUrl"],
        "http://${HOST}:8080/v1"
    );
    let shown = redact(&json).to_string();
    for secret in [TOKEN, "sk-1"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(s.config_raw.unwrap().contains("${GW_TOKEN}"));
    // The client reads the same token.
    let mut args = client_args(&dir);
    args.location.config = Some(path.clone());
    let t = client(&args, &vars).expect("client resolves");
    assert_eq!(t.token.as_deref(), Some(TOKEN));
}

#[test]
fn an_unset_reference_is_a_config_error_naming_key_and_variable() {
    let dir = TempDir::new();
    for (text, key) in [
        (
            r#"{"gateway":{"mode":"local","auth":{"token":"${OPENCLAW_GATEWAY_TOKEN}"}}}"#,
            "gateway.auth.token",
        ),
        (
            r#"{"gateway":{"mode":"local","auth":{"mode":"password","password":"x${OPENCLAW_GATEWAY_TOKEN}"}}}"#,
            "gateway.auth.password",
        ),
        (
            r#"{"gateway":{"mode":"local","allowedHosts":["a","${OPENCLAW_GATEWAY_TOKEN}"]}}"#,
            "gateway.allowedHosts[1]",
        ),
    ] {
        let path = dir.write("c.json", text);
        for vars in [&[][..], &[("OPENCLAW_GATEWAY_TOKEN", "")]] {
            let msg = config_err(run(&run_args(&dir, Some(&path)), vars));
            assert_eq!(
                msg,
                format!(
                    "{}: '{key}' uses ${{OPENCLAW_GATEWAY_TOKEN}}, which is not set",
                    path.display()
                )
            );
        }
    }
    // Escaped, it is text; a key is never substituted.
    let path = dir.write(
        "c.json",
        r#"{"gateway":{"mode":"local","allowedHosts":["$${X}"]},
            "models":{"providers":{"${X}":{"models":[]}}}}"#,
    );
    let s = run(&run_args(&dir, Some(&path)), &[]).expect("resolves");
    assert_eq!(s.allowed_hosts, ["${x}"]);
}

#[test]
fn a_substituted_secret_is_checked_like_a_written_one_and_never_echoed() {
    let dir = TempDir::new();
    let path = dir.write(
        "c.json",
        r#"{"gateway":{"mode":"local","auth":{"token":"${T}"}}}"#,
    );
    let msg = config_err(run(&run_args(&dir, Some(&path)), &[("T", "changeme")]));
    assert!(
        msg.contains("'gateway.auth.token' is a placeholder"),
        "{msg}"
    );
    // A secret put where a word belongs is refused without being shown.
    let path = dir.write(
        "c.json",
        "{\"gateway\":{\"mode\":\"local\",\n\"bind\":\"${T}\",\"port\":\"${T}\"}}",
    );
    let msg = config_err(run(&run_args(&dir, Some(&path)), &[("T", TOKEN)]));
    assert!(!msg.contains(TOKEN), "{msg}");
    assert_eq!(
        msg,
        format!(
            "{}:2:13: 'gateway.bind' must be \"loopback\", \"lan\", \"tailnet\", \"auto\" or \"custom\"",
            path.display()
        )
    );
}

// ---- type errors in a user's words ---------------------------------------------

#[test]
fn wrong_types_name_the_key_and_what_it_takes() {
    let dir = TempDir::new();
    let cases = [
        (
            r#"{"gateway":{"port":"x"}}"#,
            "'gateway.port' must be a port number from 1 to 65535",
        ),
        (
            r#"{"gateway":{"port":70000}}"#,
            "'gateway.port' must be a port number from 1 to 65535",
        ),
        (
            r#"{"gateway":{"port":0}}"#,
            "'gateway.port' must be a port number from 1 to 65535",
        ),
        (
            r#"{"gateway":{"limits":{"maxConnections":"5"}}}"#,
            "'gateway.limits.maxConnections' must be a whole number, 0 or more",
        ),
        (
            r#"{"gateway":{"limits":{"authWindowMs":-1}}}"#,
            "'gateway.limits.authWindowMs' must be a whole number, 0 or more",
        ),
        (
            r#"{"logging":{"file":"yes"}}"#,
            "'logging.file' must be true or false",
        ),
        (
            r#"{"gateway":{"bind":5}}"#,
            "'gateway.bind' must be \"loopback\", \"lan\", \"tailnet\", \"auto\" or \"custom\"",
        ),
        (
            r#"{"gateway":{"mode":"lokal"}}"#,
            "'gateway.mode' must be \"local\" or \"remote\"",
        ),
        (
            r#"{"gateway":{"auth":{"mode":true}}}"#,
            "'gateway.auth.mode' must be \"token\", \"password\" or \"none\"",
        ),
        (
            r#"{"session":{"scope":"all"}}"#,
            "'session.scope' must be \"per-sender\" or \"global\"",
        ),
        (
            r#"{"gateway":{"allowedHosts":"a"}}"#,
            "'gateway.allowedHosts' must be an array",
        ),
        (
            r#"{"gateway":{"trustedProxies":["proxy"]}}"#,
            "'gateway.trustedProxies[0]' must be a numeric IPv4 or IPv6 address",
        ),
        (
            r#"{"agents":{"defaultId":5}}"#,
            "'agents.defaultId' must be a string",
        ),
    ];
    for (text, want) in cases {
        let path = dir.write("t.json", text);
        let msg = config_err(load(&path, true, &|_| None, Reader::Gateway));
        let (_, msg) = msg.split_once(": ").expect("PATH:LINE:COL: message");
        assert_eq!(msg, want, "{text}");
    }
}

#[test]
fn a_client_without_the_gateways_secret_variable_falls_back() {
    let dir = TempDir::new();
    dir.write(
        "clawgate.json",
        r#"{"gateway":{"mode":"local","port":18800,"auth":{"token":"${GW_TOKEN}"}}}"#,
    );
    dir.write(TOKEN_FILE, TOKEN);
    let t = client(&client_args(&dir), &[]).expect("client resolves");
    assert_eq!(t.url, "ws://127.0.0.1:18800");
    assert_eq!(
        (t.token.as_deref(), t.secret_source),
        (Some(TOKEN), "token file")
    );
    // With the variable, the file's token.
    let t = client(&client_args(&dir), &[("GW_TOKEN", "from-env-file-ref")]).unwrap();
    assert_eq!(t.token.as_deref(), Some("from-env-file-ref"));
    // Anything but a secret still needs its variable.
    dir.write(
        "clawgate.json",
        r#"{"gateway":{"mode":"local","allowedHosts":["${GW_HOST}"]}}"#,
    );
    let msg = config_err(client(&client_args(&dir), &[]));
    assert!(
        msg.ends_with(": 'gateway.allowedHosts[0]' uses ${GW_HOST}, which is not set"),
        "{msg}"
    );
}

#[test]
fn a_broken_file_stops_a_client_only_when_it_is_needed() {
    let dir = TempDir::new();
    dir.write("clawgate.json", "{\"gateway\": 1}");
    dir.write(TOKEN_FILE, TOKEN);
    let mut args = client_args(&dir);
    assert!(config_err(client(&args, &[])).contains(":1:"));
    args.location.port = Some(18800);
    assert!(config_err(client(&args, &[])).contains(":1:"));
    args.token = Some("t".into());
    let t = client(&args, &[]).expect("port and token suffice");
    assert_eq!(t.url, "ws://127.0.0.1:18800");
    assert!(t.config_error.is_some_and(|e| e.contains(":1:")));
    // `status` resolves what it can: the default port, the token file.
    let t = resolve_client(&client_args(&dir), &env_of(&[]), BrokenFile::Reported).unwrap();
    assert_eq!(
        (t.url.as_str(), t.token.as_deref(), t.secret_source),
        ("ws://127.0.0.1:18789", Some(TOKEN), "token file")
    );
    assert!(t.config_error.is_some());
}
