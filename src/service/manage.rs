//! `uninstall`, `start`, `stop` and `restart`, and the steps every
//! service command takes through the manager (`systemctl`, or the procd
//! script's actions), each recorded in the report.

use std::path::Path;

use super::exec::{Ran, QUICK, SLOW};
use super::files::{self, FileState};
use super::report::Report;
use super::{need_root, procd, status, systemd, Host, Service};
use crate::cli::{Init, ServiceAction};
use crate::error::Error;

pub fn uninstall(host: &Host, svc: &Service, report: &mut Report) -> Result<(), Error> {
    let kind = report.kind();
    if !svc.installed() {
        report.file(&svc.file, svc.role(), FileState::Absent);
        report.summary = format!("clawgate is not installed as a {kind}; nothing to do");
        return Ok(());
    }
    need_root(host, svc, "removing the system service")?;
    // A stop that times out may leave the gateway running: keep the unit
    // so it can still be managed. Other failures (a unit systemd never
    // loaded, no systemd running) do not stand in the way of removing it.
    let stop = call(host, svc, &["stop"], SLOW, report)?;
    if let Some(ran) = stop.filter(|r| !r.ok()) {
        if ran.timed_out {
            report.summary = format!("The {kind} was not removed");
            return Err(Error::runtime(ran.failure()));
        }
        report.warnings.push(ran.failure());
    }
    if let Some(ran) = call(host, svc, &["disable"], SLOW, report)?.filter(|r| !r.ok()) {
        report.warnings.push(ran.failure());
    }
    files::remove(&svc.file)?;
    report.file(&svc.file, svc.role(), FileState::Removed);
    if let Some(ran) = call(host, svc, &["daemon-reload"], SLOW, report)?.filter(|r| !r.ok()) {
        report.warnings.push(ran.failure());
    }
    best_effort(host, svc, &["reset-failed"], report);
    let kept = [
        (&svc.config, "config"),
        (&svc.env_file, "token file"),
        (&svc.state_dir, "state directory"),
    ];
    let mut any_kept = false;
    for (path, role) in kept {
        // procd keeps its state in the config directory: list it once.
        if path.exists() && !report.files.iter().any(|f| Path::new(&f.path) == path) {
            report.file(path, role, FileState::Kept);
            any_kept = true;
        }
    }
    report.summary = if any_kept {
        format!("Removed the {kind}; its config and state were kept (remove them by hand to start over)")
    } else {
        format!("Removed the {kind}")
    };
    Ok(())
}

pub fn control(
    host: &Host,
    svc: &Service,
    action: ServiceAction,
    report: &mut Report,
) -> Result<(), Error> {
    let kind = report.kind();
    if !svc.installed() {
        return Err(Error::runtime(format!(
            "the {kind} is not installed ('{}' does not exist): run 'clawgate install' first",
            svc.file.display()
        )));
    }
    let (doing, done) = match action {
        ServiceAction::Start => ("starting", "Started"),
        ServiceAction::Stop => ("stopping", "Stopped"),
        _ => ("restarting", "Restarted"),
    };
    need_root(host, svc, &format!("{doing} the system service"))?;
    if action != ServiceAction::Stop {
        // After too many crashes systemd refuses to start the unit until
        // its failed state is cleared.
        best_effort(host, svc, &["reset-failed"], report);
    }
    let result = must(host, svc, &[action.as_str()], report);
    if let Err(e) = result {
        report.summary = format!("{doing} the {kind} failed");
        return Err(if action == ServiceAction::Stop {
            e
        } else {
            with_log(svc, e)
        });
    }
    report.summary = format!("{done} the {kind} ({})", svc.name());
    Ok(())
}

/// Runs one step of the service manager, recorded in the report. For
/// procd, steps it has no equivalent of (daemon-reload, reset-failed) are
/// skipped: `Ok(None)`.
pub(super) fn call(
    host: &Host,
    svc: &Service,
    step: &[&str],
    limit: std::time::Duration,
    report: &mut Report,
) -> Result<Option<Ran>, Error> {
    let verb = step[0];
    let ran = match svc.init {
        Init::Systemd => {
            let mut args = step.to_vec();
            if verb != "daemon-reload" {
                args.push(systemd::NAME);
            }
            systemd::run(svc.scope, &args, limit)?
        }
        Init::Procd if matches!(verb, "daemon-reload" | "reset-failed") => return Ok(None),
        Init::Procd => procd::run(host, verb, limit)?,
    };
    report.commands.push(ran.clone());
    Ok(Some(ran))
}

pub(super) fn must(
    host: &Host,
    svc: &Service,
    step: &[&str],
    report: &mut Report,
) -> Result<(), Error> {
    match call(host, svc, step, SLOW, report)? {
        Some(ran) if !ran.ok() => Err(match svc.init {
            Init::Systemd => systemd::failure(svc.scope, &ran),
            Init::Procd => Error::runtime(ran.failure()),
        }),
        _ => Ok(()),
    }
}

/// A step whose failure changes nothing (reset-failed on a unit that has
/// not failed); a missing tool still is an error, found by the next step.
pub(super) fn best_effort(host: &Host, svc: &Service, step: &[&str], report: &mut Report) {
    let _ = call(host, svc, step, QUICK, report);
}

/// A failed start names the gateway's own last complaint, which is what
/// the admin needs (a port in use, a config error), rather than only
/// systemd's "see journalctl".
pub(super) fn with_log(svc: &Service, e: Error) -> Error {
    match status::last_log_error(svc) {
        Some((line, source)) => {
            Error::runtime(format!("{e}; the gateway logged ({source}): {line}"))
        }
        None => e,
    }
}
