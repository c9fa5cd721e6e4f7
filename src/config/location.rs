//! Where the files are: the state directory, the config file and the
//! generated token, from flags, environment and the home directory; and
//! where the installed services keep theirs (`/etc/clawgate`,
//! `/var/lib/clawgate`, the user unit's `~/.clawgate`), the one list that
//! `install` writes to and the client commands look in.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::auth::check_stored_token;
use super::Location;
use super::{var, Env, CONFIG_FILE, TOKEN_FILE};
use crate::error::{io_message, Error};

fn home(env: Env) -> Result<PathBuf, Error> {
    var(env, "HOME").map(PathBuf::from).ok_or_else(|| {
        Error::config("cannot find the home directory: set HOME or pass --state-dir")
    })
}

/// A path from the environment, with a leading `~` expanded because
/// systemd's `Environment=` and Docker's `-e` do not expand it.
fn var_path(env: Env, name: &str) -> Result<Option<PathBuf>, Error> {
    let Some(v) = var(env, name) else {
        return Ok(None);
    };
    if v == "~" {
        return home(env).map(Some);
    }
    match v.strip_prefix("~/") {
        Some(rest) => Ok(Some(home(env)?.join(rest))),
        None => Ok(Some(PathBuf::from(v))),
    }
}

/// `--state-dir` > `--dev` > `--profile` > `CLAWGATE_STATE_DIR` >
/// `OPENCLAW_STATE_DIR` > `~/.clawgate`.
pub fn state_dir(loc: &Location, env: Env) -> Result<PathBuf, Error> {
    if let Some(dir) = &loc.state_dir {
        return Ok(dir.clone());
    }
    if loc.dev {
        return Ok(home(env)?.join(".clawgate-dev"));
    }
    if let Some(p) = &loc.profile {
        // The name becomes part of a path: no separators, no `..`.
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(Error::usage(format!(
                "invalid profile name '{p}': use letters, digits, '-' and '_'"
            )));
        }
        return Ok(home(env)?.join(format!(".clawgate-{p}")));
    }
    for name in ["CLAWGATE_STATE_DIR", "OPENCLAW_STATE_DIR"] {
        if let Some(dir) = var_path(env, name)? {
            return Ok(dir);
        }
    }
    Ok(home(env)?.join(".clawgate"))
}

/// The config path and whether the user named it explicitly.
pub(super) fn config_path(
    loc: &Location,
    env: Env,
    state_dir: &Path,
) -> Result<(PathBuf, bool), Error> {
    if let Some(path) = &loc.config {
        return Ok((path.clone(), true));
    }
    for name in ["CLAWGATE_CONFIG_PATH", "OPENCLAW_CONFIG_PATH"] {
        if let Some(path) = var_path(env, name)? {
            return Ok((path, true));
        }
    }
    Ok((state_dir.join(CONFIG_FILE), false))
}

/// The token the gateway generated on first start; missing or blank means
/// none yet (the gateway generates one), a weak one is refused as the
/// gateway refuses it.
pub(super) fn read_token_file(state_dir: &Path) -> Result<Option<String>, Error> {
    let path = state_dir.join(TOKEN_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => match text.trim() {
            "" => Ok(None),
            token => check_stored_token(&path, token).map(|()| Some(token.to_string())),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::config(format!(
            "'{}': {}",
            path.display(),
            io_message(&e)
        ))),
    }
}

// ---- where the installed services keep their files ---------------------

/// `gateway.env`, beside a service's config: the token the service runs
/// with, mode 0600, read by systemd's `EnvironmentFile=` and the procd
/// script.
pub const ENV_FILE: &str = "gateway.env";
/// The variable `gateway.env` sets; the gateway reads it like any other
/// `CLAWGATE_GATEWAY_TOKEN`.
pub const TOKEN_VAR: &str = "CLAWGATE_GATEWAY_TOKEN";
/// The systemd unit's name, system or user.
pub const UNIT: &str = "clawgate.service";
/// The OpenWrt init script.
pub const PROCD_SCRIPT: &str = "/etc/init.d/clawgate";
const SYSTEM_CONFIG_DIR: &str = "/etc/clawgate";
const SYSTEMD_STATE_DIR: &str = "/var/lib/clawgate";
const SYSTEMD_SYSTEM_UNITS: &str = "/etc/systemd/system";
const OPENWRT_RELEASE: &str = "/etc/openwrt_release";

/// The files of one installed service: the unit or script, the config,
/// `gateway.env` and the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePaths {
    pub file: PathBuf,
    pub config: PathBuf,
    pub env_file: PathBuf,
    pub state_dir: PathBuf,
}

/// The system paths' root: `CLAWGATE_ROOT` when set, for tests and for
/// staging an image, else `/`.
pub fn system_root(env: Env) -> PathBuf {
    var(env, "CLAWGATE_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// An absolute system path under `root`.
pub fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Whether `root` is an OpenWrt system (procd instead of systemd).
pub fn is_openwrt(root: &Path) -> bool {
    under(root, OPENWRT_RELEASE).exists()
}

/// The systemd system unit: config in `/etc/clawgate`, state in
/// `/var/lib/clawgate` (its dynamic user's `StateDirectory=`).
pub fn systemd_system_service(root: &Path) -> ServicePaths {
    let etc = under(root, SYSTEM_CONFIG_DIR);
    ServicePaths {
        file: under(root, SYSTEMD_SYSTEM_UNITS).join(UNIT),
        config: etc.join(CONFIG_FILE),
        env_file: etc.join(ENV_FILE),
        state_dir: under(root, SYSTEMD_STATE_DIR),
    }
}

/// A systemd user unit in `units`: it runs a plain `clawgate run`, so its
/// files are the default state directory's.
pub fn systemd_user_service(units: &Path, home: &Path) -> ServicePaths {
    let state = home.join(".clawgate");
    ServicePaths {
        file: units.join(UNIT),
        config: state.join(CONFIG_FILE),
        env_file: state.join(ENV_FILE),
        state_dir: state,
    }
}

/// The procd service: everything under `/etc/clawgate`, the one place an
/// OpenWrt image keeps across upgrades.
pub fn procd_service(root: &Path) -> ServicePaths {
    let etc = under(root, SYSTEM_CONFIG_DIR);
    ServicePaths {
        file: under(root, PROCD_SCRIPT),
        config: etc.join(CONFIG_FILE),
        env_file: etc.join(ENV_FILE),
        state_dir: etc,
    }
}

/// The config and state directory of the installed system service (procd
/// or systemd), when there is one with a config: the client commands use
/// them when the user has no gateway of their own, so that `sudo clawgate
/// status` on a server reaches the service on its port with its token.
pub fn installed_system_service(env: Env) -> Option<(PathBuf, PathBuf)> {
    let root = system_root(env);
    let svc = if is_openwrt(&root) || under(&root, PROCD_SCRIPT).exists() {
        procd_service(&root)
    } else {
        systemd_system_service(&root)
    };
    (svc.file.exists() && svc.config.exists()).then_some((svc.config, svc.state_dir))
}

/// The token in a `gateway.env`, for the client commands on this host.
pub fn token_in_env_file(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(TOKEN_VAR)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .rfind(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_file_token_is_its_last_non_empty_assignment() {
        assert_eq!(
            token_in_env_file("# x\nCLAWGATE_GATEWAY_TOKEN=abc\n"),
            Some("abc".into())
        );
        assert_eq!(
            token_in_env_file("CLAWGATE_GATEWAY_TOKEN=a\nCLAWGATE_GATEWAY_TOKEN=\"b\"\n"),
            Some("b".into())
        );
        assert_eq!(token_in_env_file("CLAWGATE_GATEWAY_TOKEN=\n"), None);
        assert_eq!(token_in_env_file("OTHER=1\n"), None);
    }

    #[test]
    fn the_client_reads_a_token_file_by_the_gateway_s_rule() {
        let dir = std::env::temp_dir().join(format!("clawgate-token-file-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        assert_eq!(read_token_file(&dir).expect("missing"), None);
        fs::write(dir.join(TOKEN_FILE), "\n").expect("write");
        assert_eq!(read_token_file(&dir).expect("blank"), None);
        let good = "0123456789abcdef0123";
        fs::write(dir.join(TOKEN_FILE), format!(" {good}\n")).expect("write");
        assert_eq!(read_token_file(&dir).expect("good"), Some(good.into()));
        fs::write(dir.join(TOKEN_FILE), "changeme\n").expect("write");
        let e = read_token_file(&dir).expect_err("placeholder");
        assert_eq!(e.exit_code(), 78);
        assert!(
            e.to_string().contains("the stored token is a placeholder"),
            "{e}"
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn an_installed_system_service_is_found_under_the_root() {
        let root = std::env::temp_dir().join(format!(
            "clawgate-location-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&root);
        let root_text = root.display().to_string();
        let env = |k: &str| (k == "CLAWGATE_ROOT").then(|| root_text.clone());
        assert_eq!(installed_system_service(&env), None);
        let svc = systemd_system_service(&root);
        for path in [&svc.file, &svc.config] {
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, "{}").expect("write");
        }
        assert_eq!(
            installed_system_service(&env),
            Some((
                root.join("etc/clawgate/clawgate.json"),
                root.join("var/lib/clawgate")
            ))
        );
        // On OpenWrt the procd script's files win, and need the script.
        fs::write(root.join("etc/openwrt_release"), "").expect("write");
        assert_eq!(installed_system_service(&env), None);
        let procd = procd_service(&root);
        fs::create_dir_all(procd.file.parent().expect("parent")).expect("mkdir");
        fs::write(&procd.file, "").expect("write");
        assert_eq!(
            installed_system_service(&env),
            Some((
                root.join("etc/clawgate/clawgate.json"),
                root.join("etc/clawgate")
            ))
        );
        fs::remove_dir_all(&root).expect("cleanup");
    }
}
