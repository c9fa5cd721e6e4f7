//! The RPC methods served after `hello-ok`, and who may call them.
//!
//! Handlers read the shared state briefly and return a payload or an error
//! object; they never block and never touch the caller's socket. Methods the
//! gateway does not implement answer "unknown method", never a fake success.

mod config;
mod logs;
mod models;
mod system;

use serde_json::Value;

use crate::protocol::{self, ErrorShape};
use crate::state::Shared;
use config::config_get;
use logs::logs_tail;
use models::models_list;
pub use system::health;
use system::{status, system_event};

/// Methods served, advertised in `hello-ok.features.methods`.
pub const METHODS: &[&str] = &[
    "health",
    "status",
    "system-presence",
    "system-event",
    "last-heartbeat",
    "config.get",
    "logs.tail",
    "models.list",
];

pub const EVENTS: &[&str] = &["connect.challenge", "tick", "presence", "shutdown"];

/// Who is calling, as settled at `connect`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: String,
    pub scopes: Vec<String>,
    pub protocol: u64,
    /// This connection's presence key (also for `mode: cli` clients, which
    /// are not listed but may still report a system event).
    pub presence_key: String,
}

/// Why a call was refused before it ran. A denial counts toward the
/// "too many unauthorized calls" close; an unknown method does not.
pub enum Refusal {
    Unknown(ErrorShape),
    Denied(ErrorShape),
}

pub fn authorize(caller: &Caller, method: &str) -> Result<(), Refusal> {
    if !METHODS.contains(&method) {
        return Err(Refusal::Unknown(protocol::unknown_method(method)));
    }
    if caller.role == "node" {
        // Nodes may call only node methods (none yet) and health.
        if method == "health" {
            return Ok(());
        }
        return Err(Refusal::Denied(ErrorShape::invalid(
            "unauthorized role: node",
        )));
    }
    match protocol::required_scope(method) {
        Some(scope) if !protocol::has_scope(&caller.scopes, scope) => Err(Refusal::Denied(
            protocol::missing_scope(scope, caller.protocol),
        )),
        _ => Ok(()),
    }
}

pub fn call(
    shared: &Shared,
    caller: &Caller,
    method: &str,
    params: Option<&Value>,
) -> Result<Value, ErrorShape> {
    match method {
        "health" => Ok(health(shared)),
        "status" => Ok(status(shared)),
        "system-presence" => {
            let st = shared.state();
            Ok(Value::Array(shared.presence_list(&st)))
        }
        "system-event" => system_event(shared, caller, params),
        // No heartbeat runs in this gateway, so there is never a last one.
        "last-heartbeat" => Ok(Value::Null),
        "config.get" => Ok(config_get(shared)),
        "logs.tail" => logs_tail(shared, params),
        "models.list" => Ok(models_list(shared)),
        _ => Err(protocol::unknown_method(method)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: &str, scopes: &[&str], protocol: u64) -> Caller {
        Caller {
            role: role.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            protocol,
            presence_key: "k".into(),
        }
    }

    #[test]
    fn unknown_methods_are_not_denials() {
        let c = caller("operator", &["operator.admin"], 4);
        match authorize(&c, "cron.list") {
            Err(Refusal::Unknown(e)) => assert_eq!(e.message, "unknown method: cron.list"),
            _ => panic!("expected unknown"),
        }
    }

    #[test]
    fn scopes_and_roles_gate_methods() {
        let none = caller("operator", &[], 4);
        assert!(authorize(&none, "health").is_ok());
        match authorize(&none, "status") {
            Err(Refusal::Denied(e)) => assert_eq!(e.code, "FORBIDDEN"),
            _ => panic!("expected denial"),
        }
        let read = caller("operator", &["operator.read"], 3);
        assert!(authorize(&read, "status").is_ok());
        match authorize(&read, "system-event") {
            Err(Refusal::Denied(e)) => {
                assert_eq!(e.code, "INVALID_REQUEST");
                assert_eq!(e.message, "missing scope: operator.admin");
            }
            _ => panic!("expected denial"),
        }
        let node = caller("node", &["operator.admin"], 4);
        assert!(authorize(&node, "health").is_ok());
        match authorize(&node, "status") {
            Err(Refusal::Denied(e)) => assert_eq!(e.message, "unauthorized role: node"),
            _ => panic!("expected denial"),
        }
    }
}
