//! The service files in contrib/: systemd units that systemd itself
//! accepts and that carry the supervision and hardening settings, and a
//! procd init script that parses.

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
