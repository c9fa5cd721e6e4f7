//! `clawgate install`: check everything, plan every file, write, then
//! enable and start through the service manager.
//!
//! Nothing is written until every check has passed and no file conflicts
//! (or `--force` was given); a second run with nothing different writes
//! nothing and only makes sure the service is enabled and started.

use super::files::{self, FileState, Planned};
use super::manage::{best_effort, must, with_log};
use super::report::Report;
use super::{need_root, procd, systemd, Host, Service};
use crate::cli::{Init, Scope, ServiceArgs};
use crate::error::Error;

/// The running binary's absolute path, as the unit or script will run it.
fn binary_path(host: &Host, svc: &Service) -> Result<String, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("finding the path of this clawgate binary", e))?;
    let path = exe.to_string_lossy().into_owned();
    match binary_problem(&path, svc.init, svc.scope)? {
        // Under CLAWGATE_ROOT the files are for another root, where this
        // host's directories mean nothing.
        Some(hidden) if !host.prefixed => Err(Error::runtime(hidden)),
        _ => Ok(path),
    }
}

/// `Err` for a path no unit can use; `Ok(Some(why))` for one the
/// service's sandbox would hide from it.
fn binary_problem(path: &str, init: Init, scope: Scope) -> Result<Option<String>, Error> {
    if path.ends_with(" (deleted)") {
        return Err(Error::runtime(format!(
            "this clawgate binary was deleted or replaced while running ('{path}'): run install from the binary the service should use"
        )));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+@".contains(c);
    if !path.starts_with('/') || !path.chars().all(plain) {
        return Err(Error::runtime(format!(
            "the path of this binary, '{path}', has characters a unit file or init script would need quoted: copy it to a plain path such as /usr/local/bin/clawgate and run install from there"
        )));
    }
    let hidden: &[&str] = match (init, scope) {
        (Init::Procd, _) => &[],
        // ProtectHome=yes and PrivateTmp=yes in the system unit.
        (_, Scope::System) => &["/home/", "/root/", "/run/user/", "/tmp/", "/var/tmp/"],
        (_, Scope::User) => &["/tmp/", "/var/tmp/"],
    };
    let Some(dir) = hidden.iter().find(|d| path.starts_with(*d)) else {
        return Ok(None);
    };
    let (setting, copy_to) = match scope {
        Scope::System => (
            "ProtectHome=yes and PrivateTmp=yes",
            "/usr/local/bin/clawgate",
        ),
        Scope::User => ("PrivateTmp=yes", "~/.local/bin/clawgate"),
    };
    Ok(Some(format!(
        "the service cannot run '{path}': the unit's {setting} hide {} from it; copy the binary to {copy_to} (install -m 0755 '{path}' {copy_to}) and run install from that copy",
        dir.trim_end_matches('/')
    )))
}

pub fn install(
    host: &Host,
    svc: &Service,
    args: &ServiceArgs,
    report: &mut Report,
) -> Result<(), Error> {
    let kind = report.kind();
    need_root(host, svc, "installing a system service")?;
    let binary = binary_path(host, svc)?;
    // The manager must be there before anything is written.
    match svc.init {
        Init::Systemd if !host.on_path("systemctl") => {
            return Err(Error::runtime(
                "'systemctl' not found on PATH: a systemd service needs systemd (on OpenWrt, use --init procd)",
            ))
        }
        Init::Procd if !host.path("/etc/rc.common").exists() => {
            return Err(Error::runtime(format!(
                "'{}' not found: procd init scripts need OpenWrt's rc.common (on other systems, use --init systemd)",
                host.path("/etc/rc.common").display()
            )))
        }
        _ => {}
    }
    let (text, mode) = match svc.init {
        Init::Systemd => (systemd::unit_text(svc.scope, &binary), 0o644),
        Init::Procd => (procd::script_text(&binary), 0o755),
    };
    let (config_mode, dir_mode) = svc.config_modes();
    let mut plans = Vec::new();
    let mut conflicts = Vec::new();
    let mut plan = |p| match p {
        Ok(p) => plans.push(p),
        Err(c) => conflicts.push(c),
    };
    plan(files::plan_config(
        svc.config.clone(),
        args.port,
        config_mode,
        dir_mode,
        args.force,
    )?);
    if let Some(token) = &args.token {
        plan(files::plan_env(
            svc.env_file.clone(),
            token,
            dir_mode,
            args.force,
        )?);
    } else if svc.env_file.exists() {
        // Left alone, but listed: the service still reads its token there.
        plan(Ok(Planned {
            path: svc.env_file.clone(),
            role: "token file",
            content: Vec::new(),
            mode: 0o600,
            dir_mode,
            state: FileState::Unchanged,
        }));
    }
    // Last, so the unit never points at a config that is not there yet.
    plan(files::plan_owned(
        svc.file.clone(),
        svc.role(),
        text,
        mode,
        args.force,
    )?);
    if !conflicts.is_empty() {
        let list: Vec<String> = conflicts
            .iter()
            .map(|c| format!("'{}': {}", c.path.display(), c.why))
            .collect();
        return Err(Error::runtime(format!(
            "not replacing what differs (nothing was changed; use --force to replace): {}",
            list.join("; ")
        )));
    }
    let mut unit_changed = false;
    for p in &plans {
        files::apply(p)?;
        if p.path == svc.file {
            unit_changed = changed(p);
        }
        report.file(&p.path, p.role, p.state);
    }
    let anything_changed = plans.iter().any(changed);
    let started = enable_and_start(host, svc, unit_changed, anything_changed, report);
    if svc.scope == Scope::User && !systemd::linger(host, &host.user) {
        report.warnings.push(systemd::linger_warning(&host.user));
    }
    let other = match svc.scope {
        Scope::System => Scope::User,
        Scope::User => Scope::System,
    };
    if let Some(o) = Service::systemd(host, other)
        .ok()
        .filter(|o| svc.init == Init::Systemd && o.installed())
    {
        report.warnings.push(format!(
            "clawgate is also installed as a systemd {} service ('{}'): two gateways need different ports ('clawgate uninstall --{}' removes it)",
            other.as_str(),
            o.file.display(),
            other.as_str()
        ));
    }
    if let Err(e) = started {
        report.summary = format!("Installed clawgate as a {kind}, but it did not start");
        return Err(e);
    }
    report.summary = if anything_changed {
        format!("Installed clawgate as a {kind} and started it")
    } else {
        format!("clawgate is already installed as a {kind}; nothing changed, and it is enabled and started")
    };
    report.hints.push(format!(
        "Check it with 'clawgate status'; its output: '{}'",
        svc.log_hint()
    ));
    Ok(())
}

/// The manager's part: reload a changed unit, enable, clear a failed
/// state, then restart when anything changed (a new unit, config or token
/// takes effect only then) or start, which is a no-op when it runs.
fn enable_and_start(
    host: &Host,
    svc: &Service,
    unit_changed: bool,
    anything_changed: bool,
    report: &mut Report,
) -> Result<(), Error> {
    if unit_changed {
        must(host, svc, &["daemon-reload"], report)?;
    }
    must(host, svc, &["enable"], report)?;
    best_effort(host, svc, &["reset-failed"], report);
    let verb = if anything_changed { "restart" } else { "start" };
    must(host, svc, &[verb], report).map_err(|e| with_log(svc, e))
}

fn changed(p: &Planned) -> bool {
    matches!(p.state, FileState::Created | FileState::Replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_the_sandbox_hides_are_named_with_the_fix() {
        let why = binary_problem("/home/al/clawgate", Init::Systemd, Scope::System)
            .unwrap()
            .unwrap();
        assert!(
            why.contains("ProtectHome=yes") && why.contains("hide /home"),
            "{why}"
        );
        assert!(why.contains("install -m 0755 '/home/al/clawgate' /usr/local/bin/clawgate"));
        assert_eq!(
            binary_problem("/home/al/clawgate", Init::Systemd, Scope::User).unwrap(),
            None
        );
        assert!(
            binary_problem("/tmp/x/clawgate", Init::Systemd, Scope::User)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            binary_problem("/tmp/clawgate", Init::Procd, Scope::System).unwrap(),
            None
        );
        assert_eq!(
            binary_problem("/usr/local/bin/clawgate", Init::Systemd, Scope::System).unwrap(),
            None
        );
    }

    #[test]
    fn binaries_no_unit_can_run_are_refused() {
        for path in [
            "/opt/my tools/clawgate",
            "/opt/$x/clawgate",
            "rel/clawgate",
            "/usr/bin/clawgate (deleted)",
        ] {
            assert!(
                binary_problem(path, Init::Procd, Scope::System).is_err(),
                "{path}"
            );
        }
    }
}
