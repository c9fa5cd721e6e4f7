//! The client commands: `call`, `health`, `status`, `probe`, `logs`,
//! `agent`, `sessions`, `devices` and `nodes`.
//!
//! Each opens one WebSocket to a gateway, answers the challenge with
//! `connect`, makes its requests and closes, all under one deadline
//! (`--timeout`; an `agent` run waits as long as the run may take).
//! Start-up does no more than resolve the target, so `clawgate call health`
//! costs a few milliseconds on loopback. Nothing here prints: results come
//! back as text for `main` to print (`logs --follow` hands each batch of
//! lines to a callback `main` gives it, `agent` each piece of the reply).

mod agent;
mod devices;
mod link;
mod logs;
mod nodes;
mod rpc;
mod sessions;
mod status;
mod table;

use std::time::Instant;

use serde_json::{json, Value};

use crate::cli::CallArgs;
use crate::config::{self, BrokenFile, ClientArgs, ClientTarget};
use crate::error::Error;
use crate::output::Output;
use crate::protocol;
use link::{open, Failure, Hello, Session};
use rpc::Rpc;

pub use agent::agent;
pub use devices::devices;
pub use logs::logs;
pub use nodes::nodes;
pub use sessions::sessions;
pub use status::status;

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Where a client command connects, and with what. On top of
/// `config::resolve_client`: someone with no gateway of their own (no
/// location flags or variables, no `~/.clawgate/clawgate.json`) on a host
/// with an installed system service reaches that service; and the token
/// an install put in `gateway.env` beside the config is used the way the
/// service uses it, ahead of the config's and the generated one.
fn resolve(args: &ClientArgs) -> Result<ClientTarget, Error> {
    resolve_with(args, BrokenFile::Fails)
}

fn resolve_with(args: &ClientArgs, broken: BrokenFile) -> Result<ClientTarget, Error> {
    let loc = &args.location;
    let located = args.url.is_some()
        || loc.config.is_some()
        || loc.state_dir.is_some()
        || loc.dev
        || loc.profile.is_some()
        || [
            "CLAWGATE_CONFIG_PATH",
            "OPENCLAW_CONFIG_PATH",
            "CLAWGATE_STATE_DIR",
            "OPENCLAW_STATE_DIR",
        ]
        .iter()
        .any(|k| env(k).is_some_and(|v| !v.is_empty()));
    let mut args = args.clone();
    if !located {
        let own = config::state_dir(loc, &env).map(|d| d.join(config::CONFIG_FILE));
        if own.is_ok_and(|p| !p.exists()) {
            if let Some((config, state)) = config::installed_system_service(&env) {
                args.location.config = Some(config);
                args.location.state_dir = Some(state);
            }
        }
    }
    let mut target = config::resolve_client(&args, &env, broken)?;
    let chosen_by_user = !matches!(target.secret_source, "config" | "token file" | "none");
    if args.url.is_some() || chosen_by_user || target.password.is_some() {
        return Ok(target);
    }
    let env_file = target
        .config_path
        .parent()
        .map(|dir| dir.join(config::ENV_FILE));
    let token = env_file
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| config::token_in_env_file(&text));
    if let Some(token) = token {
        target.token = Some(token);
        target.secret_source = "gateway.env";
    }
    Ok(target)
}

pub fn call(args: &CallArgs) -> Result<Output, Error> {
    let target = resolve(&args.client)?;
    // Least privilege, like the stock CLI: the one scope the method needs.
    let scope = crate::methods::scope_for(&args.method);
    let result = Rpc::new(&target, &args.client).request(
        &[scope],
        &args.method,
        args.params.as_ref(),
        args.expect_final,
    );
    Ok(match result {
        Ok(payload) if args.client.json => Output::new(pretty(&payload), 0),
        Ok(payload) => Output::new(
            format!(
                "Gateway call: {}\n{}",
                args.method,
                indent(&pretty(&payload))
            ),
            0,
        ),
        Err(f) => fail(&f, args.client.json)?,
    })
}

pub fn health(args: &ClientArgs) -> Result<Output, Error> {
    let target = resolve(args)?;
    let hello = Hello {
        mode: "cli",
        scopes: vec![protocol::SCOPE_READ.to_string()],
    };
    let result = open(&target, args, &hello).and_then(|mut s| {
        let r = s.request("health", None, false);
        s.close();
        r
    });
    Ok(match result {
        Ok(p) if args.json => Output::new(pretty(&p), 0),
        Ok(p) => {
            let ok = p["ok"].as_bool().unwrap_or(false);
            let mut text = format!(
                "Gateway Health\n{} ({}ms)\n",
                if ok { "OK" } else { "NOT OK" },
                p["durationMs"].as_u64().unwrap_or(0)
            );
            let channels = p["channelOrder"].as_array().map_or(0, Vec::len);
            if channels == 0 {
                text.push_str("Channels: none configured\n");
            }
            Output::new(text.trim_end().to_string(), if ok { 0 } else { 1 })
        }
        Err(f) => fail(&f, args.json)?,
    })
}

/// Runs one command's calls over a shared `Rpc` (one connection while
/// the scopes suffice) and prints what `run` returns, or the failure.
fn with_rpc(
    args: &ClientArgs,
    run: impl FnOnce(&mut rpc::Rpc, bool) -> Result<String, Failure>,
) -> Result<Output, Error> {
    let target = resolve(args)?;
    let json_out = args.json;
    let result = {
        let mut rpc = rpc::Rpc::new(&target, args);
        run(&mut rpc, json_out)
    };
    match result {
        Ok(text) => Ok(Output::new(text, 0)),
        Err(f) => fail(&f, json_out),
    }
}

/// `--json` scripts get the error object on stdout as well as the exit
/// status; people get one line on stderr.
fn fail(f: &Failure, json_out: bool) -> Result<Output, Error> {
    if json_out {
        Ok(Output {
            text: pretty(&f.json()),
            code: 1,
            notes: vec![f.message()],
        })
    } else {
        Err(Error::runtime(f.message()))
    }
}

/// Calls what `gateway probe` calls and reports each.
pub fn probe(args: &ClientArgs) -> Result<Output, Error> {
    let target = resolve(args)?;
    let hello = Hello {
        mode: "cli",
        scopes: vec![protocol::SCOPE_READ.to_string()],
    };
    let started = Instant::now();
    let mut session = match open(&target, args, &hello) {
        Ok(s) => s,
        Err(f) => {
            let report = json!({
                "ok": false, "reachable": f.reachable(), "url": target.url,
                "error": f.json()["error"],
            });
            let text = if args.json {
                pretty(&report)
            } else {
                format!("Gateway probe: {} {}", target.url, f.describe())
            };
            return Ok(Output::new(text, 1));
        }
    };
    let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut calls = Vec::new();
    let mut all_ok = true;
    for m in ["health", "status", "system-presence", "config.get"] {
        let t = Instant::now();
        let r = session.request(m, None, false);
        let ms = (t.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
        all_ok &= r.is_ok();
        calls.push(match r {
            Ok(_) => json!({"method": m, "ok": true, "ms": ms}),
            Err(f) => json!({"method": m, "ok": false, "ms": ms, "error": f.json()["error"]}),
        });
    }
    let server = session.hello["server"].clone();
    let proto = session.hello["protocol"].clone();
    session.close();
    let report = json!({
        "ok": all_ok, "reachable": true, "url": target.url,
        "connectMs": (connect_ms * 10.0).round() / 10.0,
        "protocol": proto, "server": server, "calls": calls,
    });
    let text = if args.json {
        pretty(&report)
    } else {
        let mut t = format!(
            "Gateway probe: {} (server {}, protocol {}, connect {} ms)\n",
            target.url,
            server["version"].as_str().unwrap_or("?"),
            proto,
            report["connectMs"]
        );
        for c in &calls {
            let state = if c["ok"] == true {
                "ok".to_string()
            } else {
                format!("error: {}", c["error"]["message"].as_str().unwrap_or("?"))
            };
            t += &format!(
                "  {:<16} {:>7} ms  {state}\n",
                c["method"].as_str().unwrap_or(""),
                c["ms"]
            );
        }
        t.trim_end().to_string()
    };
    Ok(Output::new(text, if all_ok { 0 } else { 1 }))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
