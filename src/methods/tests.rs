//! The method table's own checks: names, scopes, roles.

use super::*;

fn caller(role: Role, scopes: &[&str], protocol: u64) -> Caller {
    Caller {
        conn: ConnId::new(1),
        role,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        protocol,
        presence_key: PresenceKey::new("k"),
        device: None,
    }
}

#[test]
fn unknown_methods_are_not_denials() {
    let c = caller(Role::Operator, &["operator.admin"], 4);
    match authorize(&c, "cron.list") {
        Err(Refusal::Unknown(e)) => assert_eq!(e.message, "unknown method: cron.list"),
        other => panic!("expected unknown, got {other:?}"),
    }
}

#[test]
fn scopes_and_roles_gate_methods() {
    let none = caller(Role::Operator, &[], 4);
    assert!(authorize(&none, "health").is_ok());
    match authorize(&none, "status") {
        Err(Refusal::Denied(e)) => assert_eq!(e.code, "FORBIDDEN"),
        other => panic!("expected denial, got {other:?}"),
    }
    let read = caller(Role::Operator, &["operator.read"], 3);
    assert!(authorize(&read, "status").is_ok());
    match authorize(&read, "system-event") {
        Err(Refusal::Denied(e)) => {
            assert_eq!(e.code, "INVALID_REQUEST");
            assert_eq!(e.message, "missing scope: operator.admin");
        }
        other => panic!("expected denial, got {other:?}"),
    }
    let node = caller(Role::Node, &["operator.admin"], 4);
    assert!(authorize(&node, "health").is_ok());
    match authorize(&node, "status") {
        Err(Refusal::Denied(e)) => assert_eq!(e.message, "unauthorized role: node"),
        other => panic!("expected denial, got {other:?}"),
    }
}

#[test]
fn the_table_is_the_one_source_of_names_and_scopes() {
    let names: Vec<&str> = names().collect();
    assert_eq!(
        names,
        [
            "health",
            "status",
            "system-presence",
            "system-event",
            "last-heartbeat",
            "config.get",
            "logs.tail",
            "models.list",
            "gateway.identity.get",
            "device.pair.list",
            "device.pair.approve",
            "device.pair.reject",
            "device.pair.remove",
            "device.token.rotate",
            "device.token.revoke",
            "node.pair.list",
            "node.pair.approve",
            "node.pair.reject",
            "node.pair.remove",
            "node.list",
            "node.describe",
            "node.invoke",
            "node.invoke.result",
            "node.event",
            "node.runnerInventory.update",
            "node.skills.update",
            "node.pluginTools.update",
            "agent",
            "agent.wait",
            "chat.send",
            "chat.history",
            "chat.startup",
            "chat.abort",
            "send",
            "sessions.list",
            "sessions.describe",
            "sessions.preview",
            "sessions.subscribe",
            "sessions.unsubscribe",
            "sessions.messages.subscribe",
            "sessions.messages.unsubscribe",
            "sessions.patch",
            "sessions.reset",
            "sessions.delete",
            "agents.list",
            "agent.identity.get"
        ]
    );
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a method is declared twice");
    assert_eq!(find("health").and_then(|m| m.scope), None);
    assert_eq!(find("status").and_then(|m| m.scope), Some(SCOPE_READ));
    assert_eq!(
        find("system-event").and_then(|m| m.scope),
        Some(SCOPE_ADMIN)
    );
    assert_eq!(scope_for("health"), SCOPE_READ);
    assert_eq!(scope_for("logs.tail"), SCOPE_READ);
    assert_eq!(scope_for("cron.list"), SCOPE_ADMIN);
    assert_eq!(scope_for("agent"), SCOPE_WRITE);
    assert_eq!(scope_for("chat.history"), SCOPE_READ);
    assert_eq!(scope_for("sessions.delete"), SCOPE_ADMIN);
}
