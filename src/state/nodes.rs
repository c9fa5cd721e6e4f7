//! The connected nodes, by node id: what each declared at `connect`, the
//! command surface an operator approved (only that may be invoked), its
//! latest host stats, and the connection that reaches it.
//!
//! The pairing side decides the approved surface (`node_surface_approved`)
//! or marks a surface request pending; this table only applies it, so an
//! approval is live for the next `node.invoke` without a reconnect. Plain
//! data under the state lock: it answers where an invoke goes, or why it
//! may not, and builds the `node.list` entries.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::ConnId;

/// What a node told about itself at `connect`, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub node_id: Arc<str>,
    pub display_name: Option<String>,
    pub platform: String,
    pub version: String,
    pub client_id: String,
    pub client_mode: String,
    pub device_family: Option<String>,
    /// Declared capability groups and commands, and what it holds.
    pub caps: Vec<String>,
    pub commands: Vec<String>,
    pub permissions: Option<Value>,
    pub path_env: Option<String>,
    /// The peer's address, when it is not loopback.
    pub remote_ip: Option<String>,
    pub connected_at_ms: u64,
}

/// The caps and commands an operator approved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Surface {
    caps: Vec<String>,
    commands: Vec<String>,
    approved_at_ms: Option<u64>,
}

#[derive(Debug)]
struct Node {
    conn: ConnId,
    info: NodeInfo,
    approved: Surface,
    /// A surface request waiting for an operator.
    pending_request: Option<String>,
    host_stats: Option<Value>,
}

/// Usable: approved and still declared (an approval made for an earlier
/// connection does not cover what this one no longer offers).
fn effective(approved: &[String], declared: &[String]) -> Vec<String> {
    approved
        .iter()
        .filter(|c| declared.contains(c))
        .cloned()
        .collect()
}

impl Node {
    fn approved(&self) -> bool {
        self.pending_request.is_none() && self.approved.approved_at_ms.is_some()
    }

    fn entry(&self) -> Value {
        let i = &self.info;
        let mut m = Map::new();
        m.insert("nodeId".into(), json!(&*i.node_id));
        m.insert(
            "displayName".into(),
            json!(i.display_name.as_deref().unwrap_or(&i.node_id)),
        );
        m.insert("platform".into(), json!(i.platform));
        m.insert("version".into(), json!(i.version));
        m.insert("clientId".into(), json!(i.client_id));
        m.insert("clientMode".into(), json!(i.client_mode));
        if let Some(f) = &i.device_family {
            m.insert("deviceFamily".into(), json!(f));
        }
        if let Some(ip) = &i.remote_ip {
            m.insert("remoteIp".into(), json!(ip));
        }
        m.insert(
            "caps".into(),
            json!(effective(&self.approved.caps, &i.caps)),
        );
        m.insert(
            "commands".into(),
            json!(effective(&self.approved.commands, &i.commands)),
        );
        if let Some(p) = &i.permissions {
            m.insert("permissions".into(), p.clone());
        }
        if let Some(p) = &i.path_env {
            m.insert("pathEnv".into(), json!(p));
        }
        m.insert("sessionHost".into(), json!(false));
        m.insert("nodePluginTools".into(), json!([]));
        m.insert(
            "paired".into(),
            json!(self.approved.approved_at_ms.is_some()),
        );
        m.insert("connected".into(), json!(true));
        m.insert("connectedAtMs".into(), json!(i.connected_at_ms));
        if let Some(at) = self.approved.approved_at_ms {
            m.insert("approvedAtMs".into(), json!(at));
        }
        if self.approved() {
            m.insert("approvalState".into(), json!("approved"));
        } else {
            m.insert("approvalState".into(), json!("pending-approval"));
            if let Some(r) = &self.pending_request {
                m.insert("pendingRequestId".into(), json!(r));
            }
            m.insert("pendingDeclaredCaps".into(), json!(i.caps));
            m.insert("pendingDeclaredCommands".into(), json!(i.commands));
        }
        if let Some(s) = &self.host_stats {
            m.insert("hostStats".into(), s.clone());
        }
        Value::Object(m)
    }
}

/// Why a command may not be sent to a node: the reference's reason and
/// the message the operator reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAllowed {
    pub reason: &'static str,
    pub message: String,
}

/// Where a `node.invoke` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    To(ConnId),
    NotConnected,
    NotAllowed(NotAllowed),
}

#[derive(Debug, Default)]
pub struct Nodes {
    by_id: HashMap<Arc<str>, Node>,
    by_conn: HashMap<ConnId, Arc<str>>,
}

impl Nodes {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Registers the node on `conn`. A node id that was connected already
    /// is reached through the new connection from now on; the old one
    /// keeps only its own invokes, which end when it leaves. The approved
    /// surface starts empty until the pairing side sets it.
    pub fn connected(&mut self, conn: ConnId, info: NodeInfo) {
        let id = info.node_id.clone();
        if let Some(old) = self.by_id.remove(&id) {
            self.by_conn.remove(&old.conn);
        }
        self.by_conn.insert(conn, id.clone());
        self.by_id.insert(
            id,
            Node {
                conn,
                info,
                approved: Surface::default(),
                pending_request: None,
                host_stats: None,
            },
        );
    }

    /// Forgets the node on `conn`, if it is still the one registered.
    pub fn gone(&mut self, conn: ConnId) -> Option<Arc<str>> {
        let id = self.by_conn.remove(&conn)?;
        self.by_id.remove(&id);
        Some(id)
    }

    pub fn id_of(&self, conn: ConnId) -> Option<Arc<str>> {
        self.by_conn.get(&conn).cloned()
    }

    /// Makes `caps` and `commands` the approved surface; a pending surface
    /// request is settled by it. `false` when the node is not connected.
    pub fn approve(&mut self, id: &str, caps: Vec<String>, commands: Vec<String>, at: u64) -> bool {
        let Some(n) = self.by_id.get_mut(id) else {
            return false;
        };
        n.approved = Surface {
            caps,
            commands,
            approved_at_ms: Some(at),
        };
        n.pending_request = None;
        true
    }

    /// Marks a surface request waiting for an operator, or none.
    pub fn pending(&mut self, id: &str, request_id: Option<&str>) -> bool {
        let Some(n) = self.by_id.get_mut(id) else {
            return false;
        };
        n.pending_request = request_id.map(str::to_string);
        true
    }

    /// Keeps the node's host stats; returns its id.
    pub fn host_stats(&mut self, conn: ConnId, stats: Value) -> Option<Arc<str>> {
        let id = self.by_conn.get(&conn)?;
        let n = self.by_id.get_mut(id)?;
        n.host_stats = Some(stats);
        Some(id.clone())
    }

    /// Where `command` for node `id` goes, or why it may not.
    pub fn route(&self, id: &str, command: &str) -> Route {
        let Some(n) = self.by_id.get(id) else {
            return Route::NotConnected;
        };
        let declared = n.info.commands.iter().any(|c| c == command);
        let approved = n.approved.commands.iter().any(|c| c == command);
        if declared && approved {
            return Route::To(n.conn);
        }
        let platform = &n.info.platform;
        let refusal = if !declared {
            NotAllowed {
                reason: "command not declared by node",
                message: format!(
                    "node command not allowed: the node (platform: {platform}) does not support \"{command}\""
                ),
            }
        } else if !n.approved() {
            NotAllowed {
                reason: "node did not declare commands",
                message: "node command not allowed: the node's declared command surface is pending approval; run `openclaw nodes pending`, then `openclaw nodes approve <requestId>`".into(),
            }
        } else {
            NotAllowed {
                reason: "command not allowlisted",
                message: format!(
                    "node command not allowed: \"{command}\" is not in the allowlist for platform \"{platform}\""
                ),
            }
        };
        Route::NotAllowed(refusal)
    }

    /// The `node.list` entry of node `id`.
    pub fn entry(&self, id: &str) -> Option<Value> {
        self.by_id.get(id).map(Node::entry)
    }

    /// Every connected node's entry, by display name then id.
    pub fn entries(&self) -> Vec<Value> {
        let mut nodes: Vec<&Node> = self.by_id.values().collect();
        nodes.sort_by(|a, b| {
            let name = |n: &Node| n.info.display_name.clone().unwrap_or_default();
            name(a)
                .cmp(&name(b))
                .then_with(|| a.info.node_id.cmp(&b.info.node_id))
        });
        nodes.into_iter().map(Node::entry).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, commands: &[&str]) -> NodeInfo {
        NodeInfo {
            node_id: id.into(),
            display_name: Some(format!("{id}-name")),
            platform: "linux".into(),
            version: "1".into(),
            client_id: "node-host".into(),
            client_mode: "node".into(),
            device_family: None,
            caps: vec!["system".into()],
            commands: commands.iter().map(|c| c.to_string()).collect(),
            permissions: None,
            path_env: Some("/bin".into()),
            remote_ip: None,
            connected_at_ms: 5,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_approved_and_declared_commands_are_routed() {
        let mut n = Nodes::default();
        let c = ConnId::new(3);
        n.connected(c, info("a", &["x", "y"]));
        match n.route("a", "x") {
            Route::NotAllowed(r) => {
                assert_eq!(r.reason, "node did not declare commands");
                assert!(r.message.contains("pending approval"), "{}", r.message);
            }
            other => panic!("{other:?}"),
        }
        assert!(n.approve("a", strings(&["system"]), strings(&["x", "z"]), 9));
        assert_eq!(n.route("a", "x"), Route::To(c));
        match n.route("a", "y") {
            Route::NotAllowed(r) => assert_eq!(r.reason, "command not allowlisted"),
            other => panic!("{other:?}"),
        }
        match n.route("a", "z") {
            Route::NotAllowed(r) => assert_eq!(
                r.message,
                "node command not allowed: the node (platform: linux) does not support \"z\""
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(n.route("b", "x"), Route::NotConnected);
        let e = n.entry("a").unwrap();
        assert_eq!(e["commands"], json!(["x"]), "z is approved, not declared");
        assert_eq!(e["approvalState"], "approved");
        assert_eq!(e["approvedAtMs"], 9);
    }

    #[test]
    fn a_pending_surface_request_shows_in_the_entry() {
        let mut n = Nodes::default();
        n.connected(ConnId::new(1), info("a", &["x"]));
        assert!(n.pending("a", Some("req-1")));
        let e = n.entry("a").unwrap();
        assert_eq!(e["approvalState"], "pending-approval");
        assert_eq!(e["pendingRequestId"], "req-1");
        assert_eq!(e["pendingDeclaredCommands"], json!(["x"]));
        assert_eq!(e["commands"], json!([]));
        assert!(!n.pending("b", Some("req-2")));
        assert!(n.pending("a", None));
        assert_eq!(n.entry("a").unwrap()["approvalState"], "pending-approval");
    }

    #[test]
    fn a_reconnected_node_is_reached_through_its_new_connection() {
        let mut n = Nodes::default();
        let (old, new) = (ConnId::new(1), ConnId::new(2));
        n.connected(old, info("a", &["x"]));
        n.connected(new, info("a", &["x"]));
        assert_eq!(
            n.gone(old),
            None,
            "the old connection leaves nothing behind"
        );
        assert_eq!(n.id_of(new).as_deref(), Some("a"));
        assert!(n.host_stats(new, json!({"cpuCount": 2})).is_some());
        assert_eq!(n.entries()[0]["hostStats"]["cpuCount"], 2);
        assert_eq!(n.gone(new).as_deref(), Some("a"));
        assert_eq!(n.len(), 0);
    }
}
