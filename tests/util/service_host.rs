//! A fake host for the service commands: a root prefix, a HOME, and the
//! service manager's tools replaced by scripts that record their calls and
//! answer from canned files, so `install` and friends run for real without
//! touching the machine's /etc or its systemd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::{clawgate, run_with_timeout, TempDir};

/// The tools the service commands call, faked: each records its argv (as
/// one line, "name arg…") and answers from files in `canned/`:
/// `NAME.VERB.out`, `.err` and `.exit`, or `NAME.out`… for any verb, where
/// VERB is the first argument that is not an option.
const FAKE_TOOL: &str = r#"#!/bin/sh
name=${0##*/}
printf '%s\n' "$name $*" >> '@CALLS@'
verb=
for a in "$@"; do case $a in -*) ;; *) verb=$a; break ;; esac; done
c='@CANNED@'
for k in "$name.$verb" "$name"; do
  if [ -f "$c/$k.out" ] || [ -f "$c/$k.err" ] || [ -f "$c/$k.exit" ]; then
    if [ -f "$c/$k.out" ]; then cat "$c/$k.out"; fi
    if [ -f "$c/$k.err" ]; then cat "$c/$k.err" >&2; fi
    if [ -f "$c/$k.exit" ]; then exit "$(cat "$c/$k.exit")"; fi
    exit 0
  fi
done
exit 0
"#;

/// OpenWrt's rc.common, faked: records "rc.common SCRIPT ACTION".
const FAKE_RC_COMMON: &str = r#"#!/bin/sh
printf '%s\n' "rc.common $*" >> '@CALLS@'
"#;

/// A host for the service commands: a root prefix (CLAWGATE_ROOT), a
/// HOME, and fake `systemctl`, `loginctl`, `journalctl`, `ubus` and
/// `logread` first on PATH. Nothing real is touched.
pub struct ServiceHost {
    pub dir: TempDir,
}

impl ServiceHost {
    /// An empty host: neither systemd nor OpenWrt until asked.
    pub fn new() -> ServiceHost {
        let dir = TempDir::new();
        let host = ServiceHost { dir };
        for sub in ["root", "home", "bin", "canned"] {
            std::fs::create_dir_all(host.dir.path().join(sub)).expect("mkdir");
        }
        std::fs::write(host.calls_file(), "").expect("calls file");
        for tool in ["systemctl", "loginctl", "journalctl", "ubus", "logread"] {
            host.write_script(&host.dir.path().join("bin").join(tool), FAKE_TOOL);
        }
        host
    }

    /// A host booted with systemd.
    pub fn systemd() -> ServiceHost {
        let host = ServiceHost::new();
        std::fs::create_dir_all(host.root().join("run/systemd/system")).expect("mkdir");
        host
    }

    /// An OpenWrt host, with a fake rc.common.
    pub fn openwrt() -> ServiceHost {
        let host = ServiceHost::new();
        let etc = host.root().join("etc");
        std::fs::create_dir_all(&etc).expect("mkdir");
        std::fs::write(etc.join("openwrt_release"), "DISTRIB_ID='OpenWrt'\n").expect("write");
        host.write_script(&etc.join("rc.common"), FAKE_RC_COMMON);
        host
    }

    fn write_script(&self, path: &Path, template: &str) {
        use std::os::unix::fs::PermissionsExt;
        let text = template
            .replace("@CALLS@", &self.calls_file().display().to_string())
            .replace(
                "@CANNED@",
                &self.dir.path().join("canned").display().to_string(),
            );
        std::fs::write(path, text).expect("write fake tool");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn calls_file(&self) -> PathBuf {
        self.dir.path().join("calls")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A path under the root prefix: `host.at("/etc/x")`.
    pub fn at(&self, abs: &str) -> PathBuf {
        self.root().join(abs.trim_start_matches('/'))
    }

    /// What a fake tool prints (and how it exits) for `key`, "NAME.VERB"
    /// or "NAME".
    pub fn canned(&self, key: &str, stdout: &str, stderr: &str, exit: i32) {
        let dir = self.dir.path().join("canned");
        std::fs::write(dir.join(format!("{key}.out")), stdout).expect("write");
        std::fs::write(dir.join(format!("{key}.err")), stderr).expect("write");
        std::fs::write(dir.join(format!("{key}.exit")), exit.to_string()).expect("write");
    }

    /// The calls recorded since the last `take_calls`, with the root
    /// prefix shown as `$ROOT`.
    pub fn take_calls(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.calls_file()).expect("calls");
        std::fs::write(self.calls_file(), "").expect("clear calls");
        let root = self.root().display().to_string();
        text.lines().map(|l| l.replace(&root, "$ROOT")).collect()
    }

    /// `clawgate ARGS` on this host, as user "tester".
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = clawgate(&self.home());
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env("CLAWGATE_ROOT", self.root())
            .env("USER", "tester")
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.command(args), Duration::from_secs(60))
    }
}

/// A command's stdout, which must have exited 0.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        super::text(&out.stdout),
        super::text(&out.stderr)
    );
    super::text(&out.stdout)
}

/// A command's stdout as JSON.
#[track_caller]
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            super::text(&out.stdout),
            super::text(&out.stderr)
        )
    })
}
