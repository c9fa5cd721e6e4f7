//! The service files in contrib/: systemd units that systemd itself
//! accepts and that carry the supervision and hardening settings, a
//! procd init script that parses, and an agents example whose model
//! references name backends it configures.

use std::process::Command;

use crate::util::{text, TempDir, BIN};

fn contrib(path: &str) -> String {
    std::fs::read_to_string(format!("{}/contrib/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("contrib/{path}: {e}"))
}

/// The unit as `install` will write it: ExecStart on a real binary.
fn installed_copy(dir: &TempDir, name: &str) -> std::path::PathBuf {
    let unit = contrib(&format!("systemd/{name}")).replace("/usr/local/bin/clawgate", BIN);
    dir.write(name, &unit)
}

#[test]
fn systemd_accepts_both_units_without_a_warning() {
    if !crate::util::have_systemd_analyze() {
        return;
    }
    let dir = TempDir::new();
    let runtime = dir.path().join("xdg");
    std::fs::create_dir_all(&runtime).unwrap();
    for (name, user) in [("clawgate.service", false), ("clawgate-user.service", true)] {
        let unit = installed_copy(&dir, name);
        let mut cmd = Command::new("systemd-analyze");
        if user {
            cmd.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
        }
        // The man page is not installed where the tests run.
        let out = cmd
            .args(["verify", "--man=no"])
            .arg(&unit)
            .output()
            .unwrap();
        // verify exits 0 on unknown keys too, so any output is a failure.
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{name}: {:?}\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn the_system_unit_supervises_without_restart_loops_and_is_hardened() {
    let unit = contrib("systemd/clawgate.service");
    for line in [
        "Type=notify",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "StartLimitIntervalSec=60",
        "StartLimitBurst=5",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Documentation=man:clawgate(1)",
        "StateDirectory=clawgate",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.lines().any(|l| l.trim() == line), "missing {line:?}");
    }
    let user = contrib("systemd/clawgate-user.service");
    for line in [
        "Type=notify",
        "RestartPreventExitStatus=78",
        "WantedBy=default.target",
    ] {
        assert!(
            user.lines().any(|l| l.trim() == line),
            "user unit: missing {line:?}"
        );
    }
}

#[test]
fn the_openwrt_init_script_parses() {
    let path = format!(
        "{}/contrib/openwrt/clawgate.init",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("sh").args(["-n", &path]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = contrib("openwrt/clawgate.init");
    assert!(script.starts_with("#!/bin/sh /etc/rc.common\n"));
    assert!(script.contains("USE_PROCD=1"));
}

#[test]
fn the_agents_example_names_only_backends_it_configures_and_no_secret() {
    let v: serde_json::Value = serde_json::from_str(&contrib("clawgate.agents.example.json"))
        .expect("the agents example is JSON");
    let providers = v["models"]["providers"].as_object().expect("a provider");
    let backends = v["agents"]["defaults"]["cliBackends"]
        .as_object()
        .expect("a CLI backend");
    let api = |p: &serde_json::Value| p["api"] == "openai-completions";
    assert!(providers.values().any(api) && !backends.is_empty());
    let agents = v["agents"]["list"].as_array().expect("agents.list");
    let refs = agents
        .iter()
        .map(|a| &a["model"]["primary"])
        .chain([&v["agents"]["defaults"]["model"]["primary"]])
        .filter_map(serde_json::Value::as_str);
    let mut seen = 0;
    for r in refs {
        let (backend, model) = r.split_once('/').expect("<backend>/<model>");
        assert!(!model.is_empty(), "{r}");
        assert!(
            providers.contains_key(backend) || backends.contains_key(backend),
            "'{r}' names no configured backend"
        );
        seen += 1;
    }
    assert!(seen >= 2, "the default and an agent's own model");
    // A copied example must not carry a key: at most a ${VARIABLE}.
    for p in providers.values() {
        if let Some(key) = p["apiKey"].as_str() {
            assert!(key.starts_with("${") && key.ends_with('}'), "{key}");
        }
    }
}
