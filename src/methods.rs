//! The RPC methods served after `hello-ok`, and who may call them.
//!
//! [`METHODS`] is the one place a method is declared: its name, the scope
//! it needs, the roles that may call it and its handler. `hello-ok`'s
//! `features.methods`, authorization, dispatch and the scope the client
//! commands ask for are all read from it. Handlers take one configuration
//! snapshot per request, read the shared state briefly and return a
//! payload or an error object, or register the request to be answered
//! later ([`Answer::Later`]: a `node.invoke` waits for its node); they
//! never block and never touch the caller's socket. Methods the gateway does not implement answer
//! "unknown method", never a fake success.

mod agent;
mod chat;
mod config;
pub mod devices;
mod ids;
mod logs;
mod models;
mod node_invoke;
pub mod node_pairing;
mod nodes;
mod sessions;
mod system;
pub mod ui;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::protocol::{
    self, ErrorShape, Payload, Role, SCOPE_ADMIN, SCOPE_PAIRING, SCOPE_READ, SCOPE_WRITE,
};
use std::sync::Arc;

use crate::state::{ConnId, Later, Live, PresenceKey, Shared};
pub use system::health;

/// Who is calling, as settled at `connect`.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The calling connection: where a reply that comes later is sent.
    pub conn: ConnId,
    pub role: Role,
    pub scopes: Vec<String>,
    pub protocol: u64,
    /// This connection's presence key (also for `mode: cli` clients, which
    /// are not listed but may still report a system event).
    pub presence_key: PresenceKey,
    /// The verified `device.id` (a node's id), when it sent a device block.
    pub device: Option<Arc<str>>,
}

/// What a handler is given: the shared state, this request's
/// configuration snapshot, the caller and the params as sent.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub live: &'a Live,
    pub caller: &'a Caller,
    /// The request's id: a request answered later is answered under it.
    pub req_id: &'a str,
    /// The largest reply this connection was promised (`maxPayload` at
    /// its `connect`).
    pub max_payload: usize,
    /// The params as sent, still text: a handler parses what it needs.
    pub params: Option<&'a RawValue>,
}

/// A handler's answer: now, or later from another thread (the request
/// is registered in the pending table and its connection keeps the
/// deadline, answering a timeout itself if nothing came first).
#[derive(Debug)]
pub enum Answer {
    Now(Payload),
    Later(Later),
    /// A first `res` now and another later under the same id (`agent`'s
    /// acceptance, then its final).
    NowAndLater(Payload, Later),
    /// A whole `res` frame built by the handler (a replayed final that is
    /// `ok:false` with a payload as well as an error).
    Frame(String),
}

impl From<Payload> for Answer {
    fn from(p: Payload) -> Answer {
        Answer::Now(p)
    }
}

impl From<Value> for Answer {
    fn from(v: Value) -> Answer {
        Answer::Now(Payload::Value(v))
    }
}

type Handler = fn(&Ctx) -> Result<Answer, ErrorShape>;

/// Which roles may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    Operator,
    /// Nodes only: what a node reports or answers.
    Node,
    /// Operators and nodes (`health`).
    Any,
}

impl Roles {
    fn allow(self, role: Role) -> bool {
        match self {
            Roles::Any => true,
            Roles::Operator => role == Role::Operator,
            Roles::Node => role == Role::Node,
        }
    }
}

/// A handler that always answers at once.
fn now(r: Result<Payload, ErrorShape>) -> Result<Answer, ErrorShape> {
    r.map(Answer::Now)
}

/// One method: the only place its name, scope, roles and handler are
/// written down.
pub struct Method {
    pub name: &'static str,
    /// The operator scope it needs; `None` for none (`health`).
    pub scope: Option<&'static str>,
    pub roles: Roles,
    handler: Handler,
}

/// Every method served, in the order `hello-ok` advertises them.
pub static METHODS: &[Method] = &[
    Method {
        name: "health",
        scope: None,
        roles: Roles::Any,
        handler: |c| Ok(system::health(c.shared, c.live).into()),
    },
    Method {
        name: "status",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(system::status(c)),
    },
    Method {
        name: "system-presence",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| {
            let max = c.live.settings.limits.max_payload;
            Ok(Payload::Json(c.shared.presence_list_json(max)).into())
        },
    },
    Method {
        name: "system-event",
        scope: Some(SCOPE_ADMIN),
        roles: Roles::Operator,
        handler: |c| now(system::system_event(c)),
    },
    Method {
        name: "last-heartbeat",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        // No heartbeat runs in this gateway, so there is never a last one.
        handler: |_| Ok(Value::Null.into()),
    },
    Method {
        name: "config.get",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(config::config_get(c)),
    },
    Method {
        name: "logs.tail",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(logs::logs_tail(c)),
    },
    Method {
        name: "models.list",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(models::models_list(c)),
    },
    Method {
        name: "gateway.identity.get",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(devices::identity(c)),
    },
    Method {
        name: "device.pair.list",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(devices::list(c)),
    },
    Method {
        name: "device.pair.approve",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(devices::approve(c)),
    },
    Method {
        name: "device.pair.reject",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(devices::reject(c)),
    },
    Method {
        name: "device.pair.remove",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(devices::remove(c)),
    },
    Method {
        name: "device.token.rotate",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(devices::rotate(c)),
    },
    Method {
        name: "device.token.revoke",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(devices::revoke(c)),
    },
    Method {
        name: "node.pair.list",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(node_pairing::list(c)),
    },
    Method {
        name: "node.pair.approve",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(node_pairing::approve(c)),
    },
    Method {
        name: "node.pair.reject",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(node_pairing::reject(c)),
    },
    Method {
        name: "node.pair.remove",
        scope: Some(SCOPE_PAIRING),
        roles: Roles::Operator,
        handler: |c| now(node_pairing::remove(c)),
    },
    Method {
        name: "node.list",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(nodes::node_list(c)),
    },
    Method {
        name: "node.describe",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(nodes::node_describe(c)),
    },
    Method {
        name: "node.invoke",
        // `system.run*` and a few others also need admin: the handler
        // checks that, as one scope here cannot say it.
        scope: Some(SCOPE_WRITE),
        roles: Roles::Operator,
        handler: node_invoke::node_invoke,
    },
    Method {
        name: "node.invoke.result",
        scope: None,
        roles: Roles::Node,
        handler: |c| now(node_invoke::node_invoke_result(c)),
    },
    Method {
        name: "node.event",
        scope: None,
        roles: Roles::Node,
        handler: |c| now(nodes::node_event(c)),
    },
    Method {
        name: "node.runnerInventory.update",
        scope: None,
        roles: Roles::Node,
        handler: |c| now(nodes::runner_inventory_update(c)),
    },
    Method {
        name: "node.skills.update",
        scope: None,
        roles: Roles::Node,
        handler: |c| now(nodes::skills_update(c)),
    },
    Method {
        name: "node.pluginTools.update",
        scope: None,
        roles: Roles::Node,
        handler: |c| now(nodes::plugin_tools_update(c)),
    },
    Method {
        name: "agent",
        scope: Some(SCOPE_WRITE),
        roles: Roles::Operator,
        handler: |c| agent::agent(c),
    },
    Method {
        name: "agent.wait",
        scope: Some(SCOPE_WRITE),
        roles: Roles::Operator,
        handler: |c| agent::agent_wait(c),
    },
    Method {
        name: "chat.send",
        scope: Some(SCOPE_WRITE),
        roles: Roles::Operator,
        handler: |c| chat::chat_send(c),
    },
    Method {
        name: "chat.history",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(chat::chat_history(c)),
    },
    Method {
        name: "chat.startup",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(ui::chat_startup(c)),
    },
    Method {
        name: "chat.abort",
        scope: Some(SCOPE_WRITE),
        roles: Roles::Operator,
        handler: |c| now(chat::chat_abort(c)),
    },
    Method {
        name: "send",
        scope: Some(SCOPE_WRITE),
        roles: Roles::Operator,
        handler: |c| now(chat::send(c)),
    },
    Method {
        name: "sessions.list",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(sessions::sessions_list(c)),
    },
    Method {
        name: "sessions.describe",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(sessions::sessions_describe(c)),
    },
    Method {
        name: "sessions.preview",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(sessions::sessions_preview(c)),
    },
    Method {
        name: "sessions.subscribe",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(sessions::sessions_subscribe(c, true)),
    },
    Method {
        name: "sessions.unsubscribe",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(sessions::sessions_subscribe(c, false)),
    },
    Method {
        name: "sessions.messages.subscribe",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(ui::sessions_messages(c, true)),
    },
    Method {
        name: "sessions.messages.unsubscribe",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(ui::sessions_messages(c, false)),
    },
    Method {
        name: "sessions.patch",
        scope: Some(SCOPE_WRITE),
        roles: Roles::Operator,
        handler: |c| now(sessions::sessions_patch(c)),
    },
    Method {
        name: "sessions.reset",
        scope: Some(SCOPE_ADMIN),
        roles: Roles::Operator,
        handler: |c| now(sessions::sessions_reset(c)),
    },
    Method {
        name: "sessions.delete",
        scope: Some(SCOPE_ADMIN),
        roles: Roles::Operator,
        handler: |c| now(sessions::sessions_delete(c)),
    },
    Method {
        name: "agents.list",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(sessions::agents_list(c)),
    },
    Method {
        name: "agent.identity.get",
        scope: Some(SCOPE_READ),
        roles: Roles::Operator,
        handler: |c| now(ui::agent_identity_get(c)),
    },
];

/// The events sent, advertised in `hello-ok.features.events`.
pub const EVENTS: &[&str] = &[
    "connect.challenge",
    "tick",
    "presence",
    "shutdown",
    "device.pair.requested",
    "device.pair.resolved",
    "node.pair.requested",
    "node.pair.resolved",
    "node.runnerInventory.changed",
    "node.invoke.request",
    "node.hostStats",
    "agent",
    "chat",
    "sessions.changed",
];

pub fn find(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// The names, for `hello-ok.features.methods`.
pub fn names() -> impl Iterator<Item = &'static str> {
    METHODS.iter().map(|m| m.name)
}

/// The scope a client asks for to call `name` with least privilege: the
/// one the table names, `operator.read` for none, and admin for a method
/// this gateway does not know (another gateway might).
pub fn scope_for(name: &str) -> &'static str {
    match find(name) {
        Some(m) => m.scope.unwrap_or(SCOPE_READ),
        None => SCOPE_ADMIN,
    }
}

/// Why a call was refused before it ran. A denial counts toward the
/// "too many unauthorized calls" close; an unknown method does not.
#[derive(Debug)]
pub enum Refusal {
    Unknown(ErrorShape),
    Denied(ErrorShape),
}

/// The method `name`, if `caller` may call it.
pub fn authorize(caller: &Caller, name: &str) -> Result<&'static Method, Refusal> {
    let Some(method) = find(name) else {
        return Err(Refusal::Unknown(protocol::unknown_method(name)));
    };
    if !method.roles.allow(caller.role) {
        let message = format!("unauthorized role: {}", caller.role.as_str());
        return Err(Refusal::Denied(ErrorShape::invalid(message)));
    }
    match method.scope {
        Some(scope) if !protocol::has_scope(&caller.scopes, scope) => Err(Refusal::Denied(
            protocol::missing_scope(scope, caller.protocol),
        )),
        _ => Ok(method),
    }
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Method")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Method {
    pub fn call(&self, ctx: &Ctx) -> Result<Answer, ErrorShape> {
        (self.handler)(ctx)
    }
}

#[cfg(test)]
mod tests;
