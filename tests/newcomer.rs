//! What a new user trips on, black-box: malformed `--url` and `--port`
//! values, options before the command, a broken config while a gateway
//! keeps serving, `${VAR}` in the config, a `--reset` of a running dev
//! gateway, each start-up line printed once, the wording scripts match,
//! and `logs --follow` ending with its reader.

use std::process::Output;
use std::time::Duration;

use crate::util::{clawgate, ok_stdout, run_with_timeout, text, ServiceHost, TempDir};

const LIMIT: Duration = Duration::from_secs(20);

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A command with HOME in a fresh temp dir and no gateway around.
fn lone(args: &[&str]) -> Output {
    let home = TempDir::new();
    let mut cmd = clawgate(home.path());
    cmd.args(args);
    run_with_timeout(cmd, LIMIT)
}

// ---- --url and --port ---------------------------------------------------------

#[test]
fn wss_and_malformed_urls_are_usage_errors_and_help_promises_ws_only() {
    for (url, why) in [
        ("wss://127.0.0.1:1", "wss:// is not supported yet"),
        ("ws://", "the URL names no host"),
        ("ws://h:99999", "the port must be a number from 1 to 65535"),
        ("ws://[::1", "the IPv6 address is missing its closing ']'"),
        ("ws://host:1/with space", "a URL cannot contain spaces"),
    ] {
        for cmd in ["call health", "status", "probe", "health", "logs"] {
            let mut args: Vec<&str> = cmd.split(' ').collect();
            args.extend(["--url", url]);
            let out = lone(&args);
            assert_exit(&out, 2);
            let want = format!("clawgate: invalid value '{url}' for '--url': {why}");
            let err = text(&out.stderr);
            assert!(err.starts_with(&want), "{args:?}: {err}");
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
    for cmd in ["call", "status", "probe", "health", "logs"] {
        let help = text(&lone(&[cmd, "--help"]).stdout);
        assert!(!help.contains("ws:// or wss://"), "{cmd}: {help}");
        assert!(help.contains("wss:// is not"), "{cmd}: {help}");
    }
}

#[test]
fn a_client_port_of_0_is_a_usage_error_and_nothing_is_probed() {
    for args in [
        &["status", "--port", "0"][..],
        &["status", "--json", "--port", "0"],
        &["call", "health", "--port", "0"],
    ] {
        let out = lone(args);
        assert_exit(&out, 2);
        assert_eq!(
            text(&out.stderr),
            "clawgate: invalid value '0' for '--port': a client needs a fixed port from 1 to 65535\n",
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn install_gives_one_port_range() {
    for port in ["0", "70000", "x"] {
        let out = lone(&["install", "--port", port]);
        assert_exit(&out, 2);
        assert_eq!(
            text(&out.stderr),
            format!("clawgate: invalid value '{port}' for '--port': a service needs a fixed port from 1 to 65535\n")
        );
    }
}

#[test]
fn options_before_the_command_get_the_line_meant() {
    let out = lone(&["--dev", "status"]);
    assert_exit(&out, 2);
    assert_eq!(
        text(&out.stderr),
        "clawgate: unexpected argument 'status' for 'clawgate run' (options go after the command: 'clawgate status --dev')\n"
    );
}

// ---- the service commands ----------------------------------------------------

#[test]
fn without_user_the_linger_warning_names_the_login_not_the_uid() {
    let host = ServiceHost::systemd();
    host.canned("loginctl.show-user", "Linger=no\n", "", 0);
    let mut cmd = host.command(&["install", "--user"]);
    cmd.env_remove("USER").env_remove("LOGNAME");
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    ok_stdout(&out);
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    let name = text(&id.stdout).trim().to_string();
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("lingering is off for user '{name}'"))
            && err.contains(&format!("'loginctl enable-linger {name}'")),
        "{err}"
    );
    assert!(host
        .take_calls()
        .contains(&format!("loginctl show-user {name} --property=Linger")),);
}

#[test]
fn under_clawgate_root_messages_name_the_prefixed_paths() {
    let host = ServiceHost::new();
    let out = host.run(&["install"]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    for path in ["/run/systemd/system", "/etc/openwrt_release"] {
        let want = format!("'{}' is missing", host.at(path).display());
        assert!(err.contains(&want), "want {want:?} in {err}");
    }
}
