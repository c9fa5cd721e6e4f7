//! `clawgate devices`: the gateway's device pairings, through the
//! `device.pair.*` and `device.token.*` methods.
//!
//! Every action lists first (`device.pair.list`, scope
//! `operator.pairing`): that turns a typed prefix into the full id and
//! tells which scopes the change itself needs. The gateway requires of
//! whoever approves or changes a device the scopes that device gets, and
//! `operator.admin` for a role other than operator; the change is asked
//! for with exactly those, on the same connection when the listing's
//! scopes cover them. Nothing here prints; token values the gateway
//! never sends are never asked for.

use serde_json::{json, Value};

use super::link::Failure;
use super::pretty;
use super::rpc::Rpc;
use super::table::{age, choose, items, list, prefix, short_len, strings, table, text, yes_no};
use super::table::{SHORT_ID, SHORT_REQUEST};
use crate::cli::{DeviceAction, DevicesArgs};
use crate::error::Error;
use crate::output::Output;
use crate::protocol::{SCOPE_ADMIN, SCOPE_PAIRING};

pub fn devices(args: &DevicesArgs) -> Result<Output, Error> {
    super::with_rpc(&args.client, |rpc, json_out| {
        run(rpc, &args.action, json_out)
    })
}

fn run(rpc: &mut Rpc, action: &DeviceAction, json_out: bool) -> Result<String, Failure> {
    let now = crate::state::now_ms();
    let listed = rpc.call(&[SCOPE_PAIRING], "device.pair.list", Some(&json!({})))?;
    let pending = items(&listed, "pending");
    let paired = items(&listed, "paired");
    let request_id = |typed: &str| {
        choose(typed, ids(pending, "requestId"), "request id").map_err(Failure::Other)
    };
    let device_id =
        |typed: &str| choose(typed, ids(paired, "deviceId"), "device id").map_err(Failure::Other);
    let (method, params, scopes) = match action {
        DeviceAction::List => {
            return Ok(if json_out {
                pretty(&listed)
            } else {
                render_list(&listed, now)
            })
        }
        DeviceAction::Approve { request } => {
            let id = request_id(request)?;
            let req = find(pending, "requestId", &id);
            let scopes = req.map_or(vec![], |r| to_manage(&roles(r), &strings(r, "scopes")));
            ("device.pair.approve", json!({"requestId": id}), scopes)
        }
        DeviceAction::Reject { request } => {
            let id = request_id(request)?;
            ("device.pair.reject", json!({"requestId": id}), vec![])
        }
        DeviceAction::Remove { device } => {
            let id = device_id(device)?;
            let dev = find(paired, "deviceId", &id);
            let scopes = dev.map_or(vec![], |d| to_manage(&roles(d), &strings(d, "scopes")));
            ("device.pair.remove", json!({"deviceId": id}), scopes)
        }
        DeviceAction::Rotate {
            device,
            role,
            scopes,
        } => {
            let id = device_id(device)?;
            let dev = find(paired, "deviceId", &id);
            let mut params = json!({"deviceId": id, "role": role});
            let token_scopes: Vec<&str> = match scopes {
                Some(s) => {
                    params["scopes"] = json!(s);
                    s.iter().map(String::as_str).collect()
                }
                None => dev.map_or(vec![], |d| token_scopes(d, role)),
            };
            let scopes = to_manage(&[role], &token_scopes);
            ("device.token.rotate", params, scopes)
        }
        DeviceAction::Revoke { device, role } => {
            let id = device_id(device)?;
            let dev = find(paired, "deviceId", &id);
            let token_scopes = dev.map_or(vec![], |d| token_scopes(d, role));
            let scopes = to_manage(&[role], &token_scopes);
            (
                "device.token.revoke",
                json!({"deviceId": id, "role": role}),
                scopes,
            )
        }
    };
    let mut scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    scopes.push(SCOPE_PAIRING);
    let payload = rpc.call(&scopes, method, Some(&params))?;
    Ok(if json_out {
        pretty(&payload)
    } else {
        render_result(action, &params, &payload)
    })
}

/// The string field `key` of each item.
fn ids<'a>(items: &'a [Value], key: &str) -> Vec<&'a str> {
    items.iter().filter_map(|i| i[key].as_str()).collect()
}

fn find<'a>(items: &'a [Value], key: &str, id: &str) -> Option<&'a Value> {
    items.iter().find(|i| i[key] == id)
}

/// A request's or a device's roles: `role` and `roles` together.
fn roles(v: &Value) -> Vec<&str> {
    let mut r = strings(v, "roles");
    if let Some(role) = v["role"].as_str() {
        if !r.contains(&role) {
            r.insert(0, role);
        }
    }
    r
}

/// The scopes of a device's token for `role`: those its `tokens` entry
/// lists, or the device's when it lists none.
fn token_scopes<'a>(dev: &'a Value, role: &str) -> Vec<&'a str> {
    items(dev, "tokens")
        .iter()
        .find(|t| t["role"] == role)
        .map_or_else(|| strings(dev, "scopes"), |t| strings(t, "scopes"))
}

/// What the gateway asks of whoever grants or changes `roles` with
/// `scopes` (on top of `operator.pairing`): those scopes, and
/// `operator.admin` for any role but operator.
fn to_manage(roles: &[&str], scopes: &[&str]) -> Vec<String> {
    let mut need: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    if roles.iter().any(|r| *r != "operator") {
        need.push(SCOPE_ADMIN.to_owned());
    }
    need
}

/// A device's name: the one it gave, else its client id.
fn name(v: &Value) -> String {
    match text(v, "displayName").as_str() {
        "-" => text(v, "clientId"),
        n => n.to_owned(),
    }
}

fn render_list(listed: &Value, now: u64) -> String {
    let pending = items(listed, "pending");
    let paired = items(listed, "paired");
    let mut out = Vec::new();
    if pending.is_empty() {
        out.push("Pending requests: none".to_owned());
    } else {
        let req_len = short_len(ids(pending, "requestId"), SHORT_REQUEST);
        let dev_len = short_len(ids(pending, "deviceId"), SHORT_ID);
        let rows: Vec<Vec<String>> = pending
            .iter()
            .map(|r| {
                let mut role = roles(r).join(",");
                if role.is_empty() {
                    role = "-".into();
                }
                if r["isRepair"] == true {
                    role += " (repair)";
                }
                vec![
                    prefix(&text(r, "requestId"), req_len).to_owned(),
                    prefix(&text(r, "deviceId"), dev_len).to_owned(),
                    name(r),
                    text(r, "platform"),
                    role,
                    list(r, "scopes"),
                    text(r, "remoteIp"),
                    age(now, r["ts"].as_u64()),
                ]
            })
            .collect();
        out.push(format!("Pending requests ({})", pending.len()));
        let header = [
            "REQUEST", "DEVICE", "NAME", "PLATFORM", "ROLE", "SCOPES", "FROM", "AGE",
        ];
        out.push(table(&header, &rows));
        out.push("Approve one with 'clawgate devices approve REQUEST'.".to_owned());
    }
    out.push(String::new());
    if paired.is_empty() {
        out.push("Paired devices: none".to_owned());
    } else {
        let dev_len = short_len(ids(paired, "deviceId"), SHORT_ID);
        let rows: Vec<Vec<String>> = paired
            .iter()
            .map(|d| {
                let when = age(now, d["approvedAtMs"].as_u64());
                let approved = match d["approvedVia"].as_str() {
                    Some(via) if !via.is_empty() => format!("{via}, {when}"),
                    _ => when,
                };
                vec![
                    prefix(&text(d, "deviceId"), dev_len).to_owned(),
                    name(d),
                    text(d, "platform"),
                    match roles(d).join(",").as_str() {
                        "" => "-".to_owned(),
                        r => r.to_owned(),
                    },
                    list(d, "scopes"),
                    yes_no(d["connected"] == true),
                    approved,
                ]
            })
            .collect();
        out.push(format!("Paired devices ({})", paired.len()));
        let header = [
            "DEVICE",
            "NAME",
            "PLATFORM",
            "ROLES",
            "SCOPES",
            "CONNECTED",
            "APPROVED",
        ];
        out.push(table(&header, &rows));
    }
    out.join("\n")
}

/// One line on what changed, from the answer and what was sent.
fn render_result(action: &DeviceAction, sent: &Value, payload: &Value) -> String {
    let device = payload["deviceId"]
        .as_str()
        .or(payload["device"]["deviceId"].as_str())
        .or(sent["deviceId"].as_str())
        .unwrap_or("?");
    let request = payload["requestId"]
        .as_str()
        .or(sent["requestId"].as_str())
        .unwrap_or("?");
    match action {
        DeviceAction::List => String::new(),
        DeviceAction::Approve { .. } => {
            let d = &payload["device"];
            format!(
                "Approved request {request}: device {device} ({}) paired with roles {} and scopes {}",
                name(d),
                match roles(d).join(",").as_str() {
                    "" => "-".to_owned(),
                    r => r.to_owned(),
                },
                list(d, "scopes")
            )
        }
        DeviceAction::Reject { .. } => match payload["deviceId"].as_str() {
            Some(d) => format!("Rejected request {request} of device {d}"),
            None => format!("Rejected request {request}"),
        },
        DeviceAction::Remove { .. } => format!("Removed device {device}"),
        DeviceAction::Rotate { role, .. } => {
            let scopes = match payload["scopes"].as_array() {
                Some(_) => list(payload, "scopes"),
                None => "unchanged".to_owned(),
            };
            let mut t = format!("Rotated the {role} token of device {device} (scopes: {scopes})");
            match payload["token"].as_str() {
                Some(token) => t += &format!("\nNew token: {token}"),
                None => {
                    let how = text(payload, "tokenDelivery");
                    t += &format!("\nThe new token is not shown here ({how}).");
                }
            }
            t
        }
        DeviceAction::Revoke { role, .. } => {
            format!("Revoked the {role} token of device {device}")
        }
    }
}

#[cfg(test)]
mod tests;
