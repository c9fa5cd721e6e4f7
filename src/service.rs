//! clawgate as a service: `install`, `uninstall`, `start`, `stop`,
//! `restart`, and the service section of `status`.
//!
//! Three kinds of service: a systemd system unit (root, started at boot,
//! its own dynamic user), a systemd user unit, and an OpenWrt procd init
//! script. The unit files and the script are the ones in `contrib/`,
//! embedded and written with the running binary's path. Install checks
//! everything (root, the tools, the binary's path, every file it would
//! replace) before it writes anything, writes atomically, and only then
//! talks to the service manager, with every call bounded in time. Secrets
//! never reach a report, an argument list or a unit file.
//!
//! `CLAWGATE_ROOT` puts a prefix in front of the system paths (`/etc`,
//! `/run/systemd`, `/var/lib`), for tests and staging; the tools are found
//! on PATH as usual. Nothing here prints: reports go back to `main`.

mod exec;
mod files;
mod install;
mod manage;
mod procd;
mod report;
mod status;
mod systemd;

use std::path::{Path, PathBuf};

use crate::cli::{Init, Scope, ServiceAction, ServiceArgs};
use crate::config::{self, Env, ServicePaths};
use crate::error::Error;
use crate::output::Output;
use crate::sys;
use report::Report;

pub use status::status_section;

/// What the service commands need to know about the machine, read once.
pub struct Host {
    root: PathBuf,
    /// `CLAWGATE_ROOT` is set: the paths are staged, not this host's, so
    /// being root is not required to write them.
    prefixed: bool,
    euid: u32,
    home: Option<PathBuf>,
    xdg_config: Option<PathBuf>,
    /// The login name for `loginctl` and the linger hint.
    user: String,
    search_path: Option<String>,
}

impl Host {
    pub fn from_env(env: Env) -> Host {
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        let root = config::system_root(env);
        let euid = sys::geteuid();
        Host {
            prefixed: root != Path::new("/"),
            root,
            euid,
            home: var("HOME").map(PathBuf::from),
            // The XDG spec says to ignore a relative value.
            xdg_config: var("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute()),
            // `loginctl` and the linger hint need a name: a uid would
            // send the user to the wrong fix.
            user: var("USER")
                .or_else(|| var("LOGNAME"))
                .or_else(|| sys::user_name(euid))
                .unwrap_or_else(|| euid.to_string()),
            search_path: var("PATH"),
        }
    }

    /// An absolute system path, under the root prefix.
    pub fn path(&self, abs: &str) -> PathBuf {
        config::under(&self.root, abs)
    }

    fn openwrt(&self) -> bool {
        config::is_openwrt(&self.root)
    }

    /// systemd's own test for "booted with systemd" (sd_booted).
    fn systemd(&self) -> bool {
        self.path("/run/systemd/system").is_dir()
    }

    fn on_path(&self, tool: &str) -> bool {
        let Some(path) = &self.search_path else {
            return false;
        };
        std::env::split_paths(path).any(|dir| dir.join(tool).is_file())
    }

    fn default_scope(&self) -> Scope {
        if self.euid == 0 {
            Scope::System
        } else {
            Scope::User
        }
    }
}

/// One service: its manager, whose it is, and where its files are.
pub struct Service {
    pub init: Init,
    pub scope: Scope,
    /// The unit file or the init script.
    pub file: PathBuf,
    pub config: PathBuf,
    /// `gateway.env`, beside the config: the token, mode 0600.
    pub env_file: PathBuf,
    pub state_dir: PathBuf,
}

impl Service {
    fn new(init: Init, scope: Scope, paths: ServicePaths) -> Service {
        let ServicePaths {
            file,
            config,
            env_file,
            state_dir,
        } = paths;
        Service {
            init,
            scope,
            file,
            config,
            env_file,
            state_dir,
        }
    }

    fn systemd(host: &Host, scope: Scope) -> Result<Service, Error> {
        if scope == Scope::System {
            let paths = config::systemd_system_service(&host.root);
            return Ok(Service::new(Init::Systemd, scope, paths));
        }
        let home = host.home.as_ref().ok_or_else(|| {
            Error::runtime("cannot find your home directory for a user service: HOME is not set")
        })?;
        let units = match &host.xdg_config {
            Some(dir) => dir.join("systemd/user"),
            None => home.join(".config/systemd/user"),
        };
        let paths = config::systemd_user_service(&units, home);
        Ok(Service::new(Init::Systemd, scope, paths))
    }

    fn procd(host: &Host) -> Service {
        let paths = config::procd_service(&host.root);
        Service::new(Init::Procd, Scope::System, paths)
    }

    fn installed(&self) -> bool {
        self.file.exists()
    }

    /// Its name for the manager, as reports show it.
    fn name(&self) -> String {
        match self.init {
            Init::Systemd => config::UNIT.to_string(),
            Init::Procd => config::PROCD_SCRIPT.to_string(),
        }
    }

    fn role(&self) -> &'static str {
        match self.init {
            Init::Systemd => "unit",
            Init::Procd => "init script",
        }
    }

    /// The system unit's dynamic user must read the config, so it is
    /// 0644 (which is why the token lives in `gateway.env` instead); the
    /// other services run as the file's owner.
    fn config_modes(&self) -> (u32, u32) {
        match (self.init, self.scope) {
            (Init::Systemd, Scope::System) => (0o644, 0o755),
            _ => (0o600, 0o700),
        }
    }

    /// Where to read the gateway's output, for hints.
    fn log_hint(&self) -> &'static str {
        match (self.init, self.scope) {
            (Init::Procd, _) => "logread -e clawgate",
            (_, Scope::System) => "journalctl -u clawgate",
            (_, Scope::User) => "journalctl --user -u clawgate",
        }
    }
}

/// The service a command acts on. Explicit flags win; otherwise procd on
/// OpenWrt, and for systemd the installed unit (install: the system unit
/// as root on a systemd host, the user unit otherwise).
fn pick(
    host: &Host,
    init: Option<Init>,
    scope: Option<Scope>,
    installing: bool,
) -> Result<Service, Error> {
    let init = match (init, scope) {
        (Some(i), _) => i,
        (None, Some(Scope::User)) => Init::Systemd,
        (None, _) if host.openwrt() => Init::Procd,
        (None, _) if installing && !host.systemd() => {
            // The paths looked at, so under CLAWGATE_ROOT the prefixed ones.
            return Err(Error::runtime(format!(
                "no service manager found: this host runs neither systemd ('{}' is missing) nor OpenWrt's procd ('{}' is missing); pass --init systemd or --init procd to install anyway",
                host.path("/run/systemd/system").display(),
                host.path("/etc/openwrt_release").display(),
            )));
        }
        (None, _) => Init::Systemd,
    };
    if init == Init::Procd {
        return Ok(Service::procd(host));
    }
    let scope = match scope {
        Some(s) => s,
        None if installing => host.default_scope(),
        None => installed_scope(host).unwrap_or_else(|| host.default_scope()),
    };
    Service::systemd(host, scope)
}

/// The scope of the one installed unit; `None` for none or both.
fn installed_scope(host: &Host) -> Option<Scope> {
    let installed = |scope| Service::systemd(host, scope).is_ok_and(|s| s.installed());
    match (installed(Scope::System), installed(Scope::User)) {
        (true, false) => Some(Scope::System),
        (false, true) => Some(Scope::User),
        _ => None,
    }
}

/// `install`, `uninstall`, `start`, `stop` and `restart`.
pub fn run(args: &ServiceArgs) -> Result<Output, Error> {
    let env = |k: &str| std::env::var(k).ok();
    let host = Host::from_env(&env);
    let installing = args.action == ServiceAction::Install;
    let svc = match pick(&host, args.init, args.scope, installing) {
        Ok(svc) => svc,
        Err(e) => return report::early_failure(args.action, e, args.json),
    };
    let mut report = Report::new(args.action, svc.init, svc.scope, svc.name());
    let result = match args.action {
        ServiceAction::Install => install::install(&host, &svc, args, &mut report),
        ServiceAction::Uninstall => manage::uninstall(&host, &svc, &mut report),
        action => manage::control(&host, &svc, action, &mut report),
    };
    report.finish(result, args.json)
}

fn need_root(host: &Host, svc: &Service, doing: &str) -> Result<(), Error> {
    if svc.scope == Scope::User || host.prefixed || host.euid == 0 {
        return Ok(());
    }
    let or_user = if svc.init == Init::Systemd && doing.starts_with("installing") {
        ", or use --user"
    } else {
        ""
    };
    Err(Error::runtime(format!(
        "{doing} needs root (run with sudo{or_user})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(root: &str, euid: u32) -> Host {
        Host {
            root: PathBuf::from(root),
            prefixed: root != "/",
            euid,
            home: Some(PathBuf::from("/home/al")),
            xdg_config: None,
            user: "al".into(),
            search_path: None,
        }
    }

    #[test]
    fn a_system_service_needs_root_unless_the_paths_are_staged() {
        let svc = Service::systemd(&host("/", 1000), Scope::System).unwrap();
        let e = need_root(&host("/", 1000), &svc, "installing a system service").unwrap_err();
        assert_eq!(
            e.to_string(),
            "installing a system service needs root (run with sudo, or use --user)"
        );
        let e = need_root(&host("/", 1000), &svc, "stopping the system service").unwrap_err();
        assert_eq!(
            e.to_string(),
            "stopping the system service needs root (run with sudo)"
        );
        assert!(need_root(&host("/", 0), &svc, "x").is_ok());
        assert!(need_root(&host("/tmp/img", 1000), &svc, "x").is_ok());
        let user = Service::systemd(&host("/", 1000), Scope::User).unwrap();
        assert!(need_root(&host("/", 1000), &user, "x").is_ok());
    }

    #[test]
    fn service_paths_follow_the_root_and_the_home() {
        let h = host("/stage", 0);
        let s = Service::systemd(&h, Scope::System).unwrap();
        assert_eq!(
            s.file,
            Path::new("/stage/etc/systemd/system/clawgate.service")
        );
        assert_eq!(s.env_file, Path::new("/stage/etc/clawgate/gateway.env"));
        let u = Service::systemd(&h, Scope::User).unwrap();
        assert_eq!(
            u.file,
            Path::new("/home/al/.config/systemd/user/clawgate.service")
        );
        assert_eq!(u.config, Path::new("/home/al/.clawgate/clawgate.json"));
        let h = Host {
            xdg_config: Some(PathBuf::from("/cfg")),
            ..h
        };
        let u = Service::systemd(&h, Scope::User).unwrap();
        assert_eq!(u.file, Path::new("/cfg/systemd/user/clawgate.service"));
        assert_eq!(
            Service::procd(&h).file,
            Path::new("/stage/etc/init.d/clawgate")
        );
    }
}
