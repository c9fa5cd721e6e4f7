//! `clawgate nodes`: the gateway's nodes and their command surfaces,
//! through `node.list`, `node.describe`, `node.invoke` and `node.pair.*`.
//!
//! A node is named on the command line by its id, its display name or a
//! unique id prefix, looked up in `node.list` on the connection that then
//! makes the call (`resolve_node`, pure, so every way of naming one is
//! unit-tested). Approving a surface asks for the scopes the request says
//! it needs (`requiredApproveScopes`), or the ones its commands imply;
//! invoking asks for the scope the command takes (`protocol::invoke_scope`:
//! admin for `system.run` and a few others, write otherwise). Nothing here
//! prints.

use serde_json::{json, Map, Value};

use super::link::Failure;
use super::pretty;
use super::rpc::Rpc;
use super::table::{age, choose, items, prefix, short_len, strings, table, text, yes_no};
use super::table::{SHORT_ID, SHORT_REQUEST};
use crate::cli::{InvokeArgs, NodeAction, NodesArgs};
use crate::error::Error;
use crate::output::Output;
use crate::protocol::{SCOPE_PAIRING, SCOPE_READ};

pub fn nodes(args: &NodesArgs) -> Result<Output, Error> {
    super::with_rpc(&args.client, |rpc, json_out| {
        run(rpc, &args.action, json_out)
    })
}

fn run(rpc: &mut Rpc, action: &NodeAction, json_out: bool) -> Result<String, Failure> {
    let now = crate::state::now_ms();
    let empty = json!({});
    let shown = |payload: Value, human: &dyn Fn(&Value) -> String| {
        Ok(if json_out {
            pretty(&payload)
        } else {
            human(&payload)
        })
    };
    match action {
        NodeAction::List => {
            let scopes = [SCOPE_PAIRING, SCOPE_READ];
            let pairs = rpc.call(&scopes, "node.pair.list", Some(&empty))?;
            let listed = rpc.call(&scopes, "node.list", Some(&empty))?;
            let both = json!({
                "pending": pairs["pending"], "paired": pairs["paired"], "nodes": listed["nodes"],
            });
            shown(both, &|v| render_list(v, now))
        }
        NodeAction::Pending => {
            let pairs = rpc.call(&[SCOPE_PAIRING], "node.pair.list", Some(&empty))?;
            shown(pairs, &|v| render_pending(v, now))
        }
        NodeAction::Approve { request } | NodeAction::Reject { request } => {
            let pairs = rpc.call(&[SCOPE_PAIRING], "node.pair.list", Some(&empty))?;
            let pending = items(&pairs, "pending");
            let ids = pending.iter().filter_map(|r| r["requestId"].as_str());
            let id = choose(request, ids, "request id").map_err(Failure::Other)?;
            let params = json!({"requestId": id});
            if matches!(action, NodeAction::Reject { .. }) {
                let payload = rpc.call(&[SCOPE_PAIRING], "node.pair.reject", Some(&params))?;
                return shown(payload, &|p| render_rejected(p, &id));
            }
            let req = pending.iter().find(|r| r["requestId"] == id.as_str());
            let scopes = req.map_or_else(|| vec![SCOPE_PAIRING], approve_scopes);
            let payload = rpc.call(&scopes, "node.pair.approve", Some(&params))?;
            shown(payload, &|p| render_approved(p, &id))
        }
        NodeAction::Remove { node } => {
            let pairs = rpc.call(&[SCOPE_PAIRING], "node.pair.list", Some(&empty))?;
            let known = items(&pairs, "paired")
                .iter()
                .chain(items(&pairs, "pending"))
                .filter_map(|n| n["nodeId"].as_str());
            let id = choose(node, known, "node id").map_err(Failure::Other)?;
            let payload = rpc.call(
                &[SCOPE_PAIRING],
                "node.pair.remove",
                Some(&json!({"nodeId": id})),
            )?;
            shown(payload, &|p| {
                format!("Removed node {}", p["nodeId"].as_str().unwrap_or(&id))
            })
        }
        NodeAction::Describe { node } => {
            let listed = rpc.call(&[SCOPE_READ], "node.list", Some(&empty))?;
            let id = node_id(&listed, node)?;
            let payload = rpc.call(&[SCOPE_READ], "node.describe", Some(&json!({"nodeId": id})))?;
            shown(payload, &|p| render_describe(p, now))
        }
        NodeAction::Invoke(a) => {
            let scopes = invoke_scopes(&a.command);
            let listed = rpc.call(&scopes, "node.list", Some(&empty))?;
            let id = node_id(&listed, &a.node)?;
            let payload = rpc.call(&scopes, "node.invoke", Some(&invoke_params(a, &id)))?;
            // Without --json, what the node answered; with it, all of it.
            Ok(pretty(if json_out {
                &payload
            } else {
                &payload["payload"]
            }))
        }
    }
}

fn node_id(listed: &Value, query: &str) -> Result<String, Failure> {
    resolve_node(items(listed, "nodes"), query)
        .map(|n| n["nodeId"].as_str().unwrap_or_default().to_owned())
        .map_err(Failure::Other)
}

/// The node `query` names among `nodes` (node.list's entries): the one
/// with that id; else the one with that display name, exactly, then
/// ignoring case; else the one whose id starts with it. Several with the
/// same name or prefix, or none: an error that lists the candidates.
pub(super) fn resolve_node<'a>(nodes: &'a [Value], query: &str) -> Result<&'a Value, String> {
    if let Some(n) = nodes.iter().find(|n| n["nodeId"] == query) {
        return Ok(n);
    }
    let name = |n: &&Value| n["displayName"].as_str().unwrap_or_default().to_owned();
    let tries: [&dyn Fn(&&Value) -> bool; 3] = [
        &|n| name(n) == query,
        &|n| name(n).eq_ignore_ascii_case(query),
        &|n| !query.is_empty() && n["nodeId"].as_str().is_some_and(|id| id.starts_with(query)),
    ];
    let shown = |found: &[&Value]| {
        let len = short_len(nodes.iter().filter_map(|n| n["nodeId"].as_str()), SHORT_ID);
        found
            .iter()
            .map(|n| {
                let id = prefix(n["nodeId"].as_str().unwrap_or("?"), len).to_owned();
                match n["displayName"].as_str() {
                    Some(name) if !name.is_empty() => format!("{name} ({id})"),
                    _ => id,
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for matches in tries {
        let found: Vec<&Value> = nodes.iter().filter(|n| matches(n)).collect();
        match found.len() {
            0 => continue,
            1 => return Ok(found[0]),
            _ => {
                return Err(format!(
                    "node '{query}' is ambiguous: it matches {}; give a node id",
                    shown(&found)
                ))
            }
        }
    }
    if nodes.is_empty() {
        return Err(format!(
            "unknown node '{query}': the gateway lists no nodes"
        ));
    }
    let all: Vec<&Value> = nodes.iter().collect();
    Err(format!(
        "unknown node '{query}' (nodes: {}; see 'clawgate nodes list')",
        shown(&all)
    ))
}

/// What approving `req` needs: what the request says, or else
/// `operator.pairing`, plus `operator.write` for any command and
/// `operator.admin` for one that runs programs.
pub(super) fn approve_scopes(req: &Value) -> Vec<&str> {
    let required = strings(req, "requiredApproveScopes");
    if !required.is_empty() {
        let mut need = vec![SCOPE_PAIRING];
        need.extend(required.into_iter().filter(|s| *s != SCOPE_PAIRING));
        return need;
    }
    crate::protocol::approve_scopes(&strings(req, "commands"))
}

/// What `node.invoke` of `command` takes: read for the `node.list` that
/// names the node, and the command's own scope.
pub(super) fn invoke_scopes(command: &str) -> Vec<&'static str> {
    vec![SCOPE_READ, crate::protocol::invoke_scope(command)]
}

pub(super) fn invoke_params(a: &InvokeArgs, node_id: &str) -> Value {
    let mut p = Map::new();
    p.insert("nodeId".into(), json!(node_id));
    p.insert("command".into(), json!(a.command));
    if let Some(params) = &a.params {
        p.insert("params".into(), params.clone());
    }
    p.insert("timeoutMs".into(), json!(a.invoke_timeout_ms));
    let key = a
        .idempotency_key
        .clone()
        .unwrap_or_else(crate::sys::uuid_v4);
    p.insert("idempotencyKey".into(), json!(key));
    Value::Object(p)
}

/// "capnode (3b7e4f01a2c9…)" or the id alone.
fn named(node: &Value, id: &str) -> String {
    match node["displayName"].as_str() {
        Some(name) if !name.is_empty() => format!("{name} ({id})"),
        _ => id.to_owned(),
    }
}

fn render_approved(payload: &Value, request: &str) -> String {
    let node = &payload["node"];
    let id = node["nodeId"].as_str().unwrap_or("?");
    let commands = strings(node, "commands");
    let list = if commands.is_empty() {
        String::from("no commands")
    } else {
        format!("{} commands: {}", commands.len(), commands.join(", "))
    };
    format!(
        "Approved request {}: node {} may now be invoked with {list}",
        payload["requestId"].as_str().unwrap_or(request),
        named(node, id)
    )
}

fn render_rejected(payload: &Value, request: &str) -> String {
    let id = payload["requestId"].as_str().unwrap_or(request);
    match payload["nodeId"].as_str() {
        Some(node) => format!("Rejected request {id} of node {}", named(payload, node)),
        None => format!("Rejected request {id}"),
    }
}

/// One row per node: node.list's entries (connected first, as listed),
/// then nodes node.pair.list knows of that node.list does not show.
fn render_list(both: &Value, now: u64) -> String {
    let listed = items(both, "nodes");
    let pending = items(both, "pending");
    let paired = items(both, "paired");
    // A pending request standing in for a node lists the commands it
    // asks for, none of them approved.
    let mut rows_of: Vec<(&Value, bool)> = listed.iter().map(|n| (n, false)).collect();
    let extra = paired.iter().map(|n| (n, false));
    for (n, is_request) in extra.chain(pending.iter().map(|n| (n, true))) {
        let id = &n["nodeId"];
        if !id.is_null() && !rows_of.iter().any(|(r, _)| r["nodeId"] == *id) {
            rows_of.push((n, is_request));
        }
    }
    if rows_of.is_empty() {
        return "Nodes: none".into();
    }
    let id_len = short_len(
        rows_of.iter().filter_map(|(n, _)| n["nodeId"].as_str()),
        SHORT_ID,
    );
    let req_len = short_len(
        pending.iter().filter_map(|r| r["requestId"].as_str()),
        SHORT_REQUEST,
    );
    let mut any_pending = false;
    let rows: Vec<Vec<String>> = rows_of
        .iter()
        .map(|&(n, is_request)| {
            let id = n["nodeId"].as_str().unwrap_or("-");
            let request = pending.iter().find(|r| r["nodeId"] == id);
            let request_id = n["pendingRequestId"]
                .as_str()
                .or(request.and_then(|r| r["requestId"].as_str()));
            let approved = n["approvalState"] == "approved"
                || n["approvedAtMs"].is_u64()
                || paired.iter().any(|p| p["nodeId"] == id);
            let when = age(now, n["approvedAtMs"].as_u64());
            let approval = match (approved, request_id) {
                (true, None) if when == "-" => "approved".to_owned(),
                (true, None) => format!("approved {when}"),
                (true, Some(r)) => format!("approved; {} pending", prefix(r, req_len)),
                (false, Some(r)) => format!("pending ({})", prefix(r, req_len)),
                (false, None) => text(n, "approvalState"),
            };
            any_pending |= request_id.is_some();
            let commands = if is_request {
                0
            } else {
                strings(n, "commands").len()
            };
            let declared = match strings(n, "pendingDeclaredCommands") {
                d if !d.is_empty() => d.len(),
                _ => request.map_or(0, |r| strings(r, "commands").len()),
            };
            vec![
                prefix(id, id_len).to_owned(),
                text(n, "displayName"),
                text(n, "platform"),
                text(n, "version"),
                yes_no(n["connected"] == true),
                approval,
                if request_id.is_some() && declared > 0 {
                    format!("{commands} ({declared} asked)")
                } else {
                    commands.to_string()
                },
            ]
        })
        .collect();
    let header = [
        "NODE",
        "NAME",
        "PLATFORM",
        "VERSION",
        "CONNECTED",
        "APPROVAL",
        "COMMANDS",
    ];
    let mut t = table(&header, &rows);
    if any_pending {
        t += "\nApprove pending commands with 'clawgate nodes approve REQUEST'.";
    }
    t
}

fn render_pending(pairs: &Value, now: u64) -> String {
    let pending = items(pairs, "pending");
    if pending.is_empty() {
        return "Pending node requests: none".into();
    }
    let req_len = short_len(
        pending.iter().filter_map(|r| r["requestId"].as_str()),
        SHORT_REQUEST,
    );
    let id_len = short_len(
        pending.iter().filter_map(|r| r["nodeId"].as_str()),
        SHORT_ID,
    );
    let rows: Vec<Vec<String>> = pending
        .iter()
        .map(|r| {
            let needs: Vec<&str> = approve_scopes(r)
                .into_iter()
                .filter(|s| *s != SCOPE_PAIRING)
                .collect();
            vec![
                prefix(&text(r, "requestId"), req_len).to_owned(),
                prefix(&text(r, "nodeId"), id_len).to_owned(),
                text(r, "displayName"),
                text(r, "platform"),
                text(r, "version"),
                strings(r, "commands").len().to_string(),
                if needs.is_empty() {
                    "-".to_owned()
                } else {
                    needs.join(",")
                },
                age(now, r["ts"].as_u64()),
            ]
        })
        .collect();
    let header = [
        "REQUEST", "NODE", "NAME", "PLATFORM", "VERSION", "COMMANDS", "NEEDS", "AGE",
    ];
    let mut out = vec![
        format!("Pending node requests ({})", pending.len()),
        table(&header, &rows),
    ];
    for r in pending {
        let commands = strings(r, "commands");
        if !commands.is_empty() {
            let id = prefix(&text(r, "requestId"), req_len).to_owned();
            out.push(format!("{id} asks for: {}", commands.join(", ")));
        }
    }
    out.push("Approve one with 'clawgate nodes approve REQUEST'.".to_owned());
    out.join("\n")
}

fn render_describe(n: &Value, now: u64) -> String {
    let mut lines = vec![
        ("Node", text(n, "nodeId")),
        ("Name", text(n, "displayName")),
    ];
    let platform = match n["deviceFamily"].as_str() {
        Some(f) if !f.is_empty() => format!("{} ({f})", text(n, "platform")),
        _ => text(n, "platform"),
    };
    lines.push(("Platform", platform));
    lines.push(("Version", text(n, "version")));
    lines.push((
        "Client",
        format!("{} ({})", text(n, "clientId"), text(n, "clientMode")),
    ));
    let connected = match (n["connected"] == true, n["connectedAtMs"].as_u64()) {
        (true, Some(at)) => format!("yes, since {}", age(now, Some(at))),
        (c, _) => yes_no(c),
    };
    lines.push(("Connected", connected));
    if let Some(ip) = n["remoteIp"].as_str() {
        lines.push(("Address", ip.to_owned()));
    }
    let mut approval = text(n, "approvalState");
    if let Some(r) = n["pendingRequestId"].as_str() {
        approval += &format!(" (request {r})");
    } else if n["approvedAtMs"].is_u64() {
        approval += &format!(" ({})", age(now, n["approvedAtMs"].as_u64()));
    }
    lines.push(("Approval", approval));
    let joined = |key: &str| match strings(n, key) {
        v if v.is_empty() => "-".to_owned(),
        v => v.join(", "),
    };
    lines.push(("Caps", joined("caps")));
    lines.push(("Commands", joined("commands")));
    if !strings(n, "pendingDeclaredCommands").is_empty() {
        lines.push(("Asks for", joined("pendingDeclaredCommands")));
    }
    if let Some(path) = n["pathEnv"].as_str() {
        lines.push(("PATH", path.to_owned()));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    lines
        .iter()
        .map(|(k, v)| format!("{:<width$}{v}", format!("{k}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
