//! What a reload may change, decided once per setting: every field of
//! `Settings` is named in [`classify`], which destructures it without `..`,
//! so a new field does not compile until it is marked here as applied in
//! place (hot), needing a restart, or fixed for the life of the process.

use super::{LogSettings, Settings};

/// The settings of a reload compared with the running ones, by config key.
#[derive(Debug)]
pub struct Changes {
    /// Keys that change in place.
    pub hot: Vec<&'static str>,
    /// Keys that need the listeners or the process set up again.
    pub restart: Vec<&'static str>,
    /// The new settings with every restart-only and process-fixed setting
    /// kept at its running value: what a reload applies in place. When
    /// `restart` is empty this is the new settings as read.
    pub in_place: Settings,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.hot.is_empty() && self.restart.is_empty()
    }
}

/// Records differences as it goes, one key at most once.
#[derive(Default)]
struct Diff {
    hot: Vec<&'static str>,
    restart: Vec<&'static str>,
}

impl Diff {
    /// A setting applied in place: the new value is taken as it is.
    fn hot<T: PartialEq>(&mut self, key: &'static str, old: &T, new: &T) {
        if old != new && !self.hot.contains(&key) {
            self.hot.push(key);
        }
    }

    /// A setting that needs a restart: the running value stays until then.
    fn restart<T: PartialEq + Clone>(&mut self, key: &'static str, old: &T, new: &mut T) {
        if old != new {
            if !self.restart.contains(&key) {
                self.restart.push(key);
            }
            new.clone_from(old);
        }
    }
}

/// A setting fixed for the life of the process (it comes from the command
/// line or the environment, which a reload does not change).
fn fixed<T: Clone>(old: &T, new: &mut T) {
    new.clone_from(old);
}

/// Compares `new` with the running `old`. `secret_changed` says whether the
/// secret in force differs, which the settings alone cannot tell when the
/// generated token file was edited.
pub fn classify(old: &Settings, mut new: Settings, secret_changed: bool) -> Changes {
    let mut d = Diff::default();
    if secret_changed {
        d.hot.push("gateway.auth");
    }
    let Settings {
        config_path,
        config_raw: _,
        config_json,
        state_dir,
        dev,
        reset,
        force,
        port,
        bind,
        bind_host,
        auth_mode,
        token,
        password,
        secret_source,
        tick_interval_ms,
        limits,
        allowed_origins,
        allowed_hosts,
        trusted_proxies,
        log: LogSettings { level, file, json },
        models,
        agents,
        http,
        default_agent_id,
        main_key,
        session_scope,
        reload_mode,
        reload_debounce_ms,
        restart_enabled,
    } = &mut new;
    fixed(&old.config_path, config_path);
    fixed(&old.state_dir, state_dir);
    fixed(&old.dev, dev);
    fixed(&old.reset, reset);
    fixed(&old.force, force);
    fixed(&old.log.json, json);
    d.restart("gateway.port", &old.port, port);
    d.restart("gateway.bind", &old.bind, bind);
    d.restart("gateway.bind", &old.bind_host, bind_host);
    d.restart("logging.file", &old.log.file, file);
    d.restart("agents.defaultId", &old.default_agent_id, default_agent_id);
    d.hot("gateway.auth", &old.auth_mode, auth_mode);
    d.hot("gateway.auth", &old.token, token);
    d.hot("gateway.auth", &old.password, password);
    d.hot("gateway.auth", &old.secret_source, secret_source);
    d.hot(
        "gateway.tickIntervalMs",
        &old.tick_interval_ms,
        tick_interval_ms,
    );
    d.hot("gateway.limits", &old.limits, limits);
    d.hot(
        "gateway.controlUi.allowedOrigins",
        &old.allowed_origins,
        allowed_origins,
    );
    d.hot("gateway.allowedHosts", &old.allowed_hosts, allowed_hosts);
    d.hot(
        "gateway.trustedProxies",
        &old.trusted_proxies,
        trusted_proxies,
    );
    d.hot("gateway.reload", &old.reload_mode, reload_mode);
    d.hot(
        "gateway.reload",
        &old.reload_debounce_ms,
        reload_debounce_ms,
    );
    d.hot("logging.level", &old.log.level, level);
    d.hot("models", &old.models, models);
    d.hot("agents", &old.agents, agents);
    d.hot("gateway.controlUi", &old.http.control_ui, &http.control_ui);
    d.hot(
        "gateway.http.endpoints",
        &old.http.endpoints,
        &http.endpoints,
    );
    d.hot("hooks", &old.http.hooks, &http.hooks);
    d.hot("session.mainKey", &old.main_key, main_key);
    d.hot("session.scope", &old.session_scope, session_scope);
    d.hot("commands.restart", &old.restart_enabled, restart_enabled);
    // Anything else in the file (unknown keys are refused) is shown by
    // `config.get` only; it must still be taken so that view is current.
    // The text (`config_raw`) goes with what it parses to: a change of
    // layout alone is no change.
    d.hot("the file only", &old.config_json, config_json);
    let mut hot = d.hot;
    if hot.len() > 1 {
        hot.retain(|k| *k != "the file only");
    }
    if let Some(k) = hot.iter_mut().find(|k| **k == "the file only") {
        *k = "the file only (no setting in force changed)";
    }
    Changes {
        hot,
        restart: d.restart,
        in_place: new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve_run, BindMode, RunArgs};

    fn settings(file: &str) -> Settings {
        let dir = std::env::temp_dir().join(format!(
            "clawgate-changes-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c.json");
        std::fs::write(&path, file).expect("write");
        let mut args = RunArgs::default();
        args.location.config = Some(path);
        args.location.state_dir = Some(dir.clone());
        let s = resolve_run(&args, &|_| None).expect("settings");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        s
    }

    const BASE: &str = r#"{"gateway":{"mode":"local","port":18789,"auth":{"token":"t0k3n-one"}}}"#;

    #[test]
    fn nothing_changed_is_empty() {
        let c = classify(&settings(BASE), settings(BASE), false);
        assert!(c.is_empty(), "{:?} {:?}", c.hot, c.restart);
    }

    #[test]
    fn hot_settings_apply_and_restart_settings_keep_their_running_value() {
        let old = settings(BASE);
        let new = settings(
            r#"{"gateway":{"mode":"local","port":18790,"bind":"lan","tickIntervalMs":500,
                "auth":{"token":"t0k3n-two"}},"logging":{"level":"debug"}}"#,
        );
        let c = classify(&old, new, true);
        assert_eq!(
            c.hot,
            ["gateway.auth", "gateway.tickIntervalMs", "logging.level"]
        );
        assert_eq!(c.restart, ["gateway.port", "gateway.bind"]);
        assert_eq!(c.in_place.tick_interval_ms, 500);
        assert_eq!(c.in_place.token.as_deref(), Some("t0k3n-two"));
        assert_eq!(c.in_place.port, 18789);
        assert_eq!(c.in_place.bind, BindMode::Loopback);
        assert_eq!(c.in_place.log.level, log::LevelFilter::Debug);
    }

    #[test]
    fn a_file_change_that_changes_no_setting_is_still_taken() {
        let old = settings(BASE);
        let spaced = BASE.replace(r#""port":18789,"#, r#""port": 18789,"#);
        assert!(classify(&old, settings(&spaced), false).is_empty());
        let new = settings(
            r#"{"gateway":{"mode":"local","port":18789,"auth":{"token":"t0k3n-one"}},"logging":{}}"#,
        );
        let c = classify(&old, new, false);
        assert_eq!(c.hot, ["the file only (no setting in force changed)"]);
        assert!(c.restart.is_empty());
        assert!(c.in_place.config_raw.unwrap().contains("logging"));
    }
}
