//! The `node.invoke` relay (PROTOCOL-NODES §4.1): an operator's request
//! goes to one node as a directed `node.invoke.request` event and is
//! answered later, when that node calls `node.invoke.result`, when the
//! operator's own deadline passes, or when the node leaves. The state
//! side (`state::relay`) decides who answers; this is the wire shapes.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Answer, Ctx};
use crate::protocol::{self, ErrorShape, Invalid, Params, Payload};
use crate::state::{node_error, Full, Invoke, Invoked, Outcome, Waiter, Work};
use crate::sys;

/// What an invoke waits without a `timeoutMs`, as the reference does.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// The longest wait allowed: long enough for the slow commands a node
/// runs (a build, a download through `system.run`), short enough that an
/// invoke whose node never answers frees its slot among the invokes in
/// flight within minutes. A client asking for more waits this long.
const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct NodeInvoke {
    node_id: String,
    command: String,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    idempotency_key: String,
}

impl Params for NodeInvoke {
    /// The node's params are forwarded whole; `maxPayload` bounds the
    /// frame, and the node is sent at most this.
    const MAX_BYTES: usize = 1024 * 1024;

    fn check(&self) -> Result<(), Invalid> {
        protocol::non_empty("/idempotencyKey", &self.idempotency_key)
    }
}

pub(super) fn node_invoke(c: &Ctx) -> Result<Answer, ErrorShape> {
    let p: NodeInvoke = protocol::parse("node.invoke", c.params)?;
    let (node_id, command) = (p.node_id.trim(), p.command.trim());
    if node_id.is_empty() || command.is_empty() {
        return Err(ErrorShape::invalid("nodeId and command required"));
    }
    // The table asks for write; some commands take admin.
    let scope = protocol::invoke_scope(command);
    if !protocol::has_scope(&c.caller.scopes, scope) {
        return Err(protocol::missing_scope(scope, c.caller.protocol));
    }
    let timeout_ms = match p.timeout_ms {
        Some(ms) if ms > 0 => ms.min(MAX_TIMEOUT_MS),
        _ => DEFAULT_TIMEOUT_MS,
    };
    let key: std::sync::Arc<str> = sys::uuid_v4().into();
    let params_json = p.params.as_ref().map(Value::to_string);
    let request = json!({
        "id": &*key,
        "nodeId": node_id,
        "command": command,
        "paramsJSON": params_json,
        "timeoutMs": timeout_ms,
        "idempotencyKey": p.idempotency_key,
    })
    .to_string();
    let waiter = Waiter {
        conn: c.caller.conn,
        req_id: c.req_id.into(),
        deadline: std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms),
        max_payload: c.max_payload,
    };
    let invoked = c.shared.invoke(Invoke {
        waiter,
        node_id,
        command,
        idempotency_key: Some(&p.idempotency_key),
        key,
        request,
    });
    match invoked {
        Invoked::Later(later) => Ok(Answer::Later(later)),
        Invoked::Cached(Outcome::Ok(text)) => Ok(Answer::Now(Payload::Json(text.to_string()))),
        Invoked::Cached(Outcome::Err(e)) => Err(e),
        Invoked::NotConnected => {
            let e = json!({"code": "NOT_CONNECTED", "message": "node not connected"});
            Err(
                ErrorShape::unavailable("node not connected").with_details(json!({
                    "code": "NOT_CONNECTED",
                    "nodeError": e,
                    "nodeCommandDispatched": false,
                })),
            )
        }
        Invoked::NotAllowed(n) => Err(ErrorShape::invalid(n.message)
            .with_details(json!({"reason": n.reason, "command": command}))),
        Invoked::Busy(full) => Err(busy(full)),
    }
}

/// Too much in flight: a retryable refusal, never a queue.
fn busy(full: Full) -> ErrorShape {
    let what = match full {
        Full::Total => "too many node invokes in flight",
        Full::Worker => "too many invokes in flight for this node",
        Full::Conn => "too many requests waiting on this connection",
        Full::Entry => "too many requests waiting for this idempotencyKey",
    };
    let mut e = ErrorShape::unavailable(what).with_details(json!({"code": "BUSY"}));
    e.retryable = Some(true);
    e.retry_after_ms = Some(1000);
    e
}

/// `node.invoke.result`. `payloadJSON` may come as `null` or, from some
/// hosts, as a value instead of text (then it is the payload).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct NodeInvokeResult {
    id: String,
    node_id: String,
    ok: bool,
    #[serde(default, rename = "payloadJSON")]
    payload_json: Option<Value>,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

impl Params for NodeInvokeResult {
    /// A result is mostly one string (`payloadJSON`) and its frame is
    /// within `maxPayload` already (a large one read against the shared
    /// large-frame budget): its tree is about one more copy of it.
    const MAX_BYTES: usize = usize::MAX;

    fn check(&self) -> Result<(), Invalid> {
        protocol::non_empty("/id", &self.id)?;
        protocol::non_empty("/nodeId", &self.node_id)
    }
}

pub(super) fn node_invoke_result(c: &Ctx) -> Result<Payload, ErrorShape> {
    let mut p: NodeInvokeResult = protocol::parse("node.invoke.result", c.params)?;
    let mine = c.shared.node_id_of(c.caller.conn);
    if mine.as_deref() != Some(p.node_id.as_str()) {
        return Err(ErrorShape::invalid("nodeId mismatch"));
    }
    let id = std::mem::take(&mut p.id);
    if c.shared
        .invoke_result(c.caller.conn, &id, |work| outcome(work, p))
    {
        Ok(json!({"ok": true}).into())
    } else {
        log::debug!("late invoke result ignored: id {}", protocol::clip(&id, 64));
        Ok(json!({"ok": true, "ignored": true}).into())
    }
}

/// The operator's answer for a node's result: `{ok, nodeId, command,
/// payload, payloadJSON}`, the payload spliced in as the node's text when
/// it is JSON (not parsed into a tree and written again).
fn outcome(work: &Work, p: NodeInvokeResult) -> Outcome {
    if !p.ok {
        return Outcome::Err(node_error(&p.error.unwrap_or(Value::Null), true));
    }
    let Work::Invoke { node_id, command } = work;
    let (text, payload) = match p.payload_json {
        Some(Value::String(s)) => (Some(s), p.payload),
        Some(Value::Null) | None => (None, p.payload),
        Some(v) => (None, p.payload.or(Some(v))),
    };
    let mut out = format!(
        r#"{{"ok":true,"nodeId":{},"command":{}"#,
        Value::from(&**node_id),
        Value::from(&**command)
    );
    match &text {
        Some(t) if !t.trim().is_empty() => {
            out.push_str(r#","payload":"#);
            if serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok() {
                out.push_str(t.trim());
            } else {
                out.push_str(&json!({ "payloadJSON": t }).to_string());
            }
        }
        _ => {
            if let (None, Some(v)) = (&text, &payload) {
                out.push_str(r#","payload":"#);
                out.push_str(&v.to_string());
            }
        }
    }
    out.push_str(r#","payloadJSON":"#);
    out.push_str(&Value::from(text).to_string());
    out.push('}');
    Outcome::Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(v: Value) -> NodeInvokeResult {
        protocol::from_value("node.invoke.result", &v).unwrap()
    }

    fn work() -> Work {
        Work::Invoke {
            node_id: "n1".into(),
            command: "system.which".into(),
        }
    }

    fn ok_text(o: Outcome) -> Value {
        match o {
            Outcome::Ok(t) => serde_json::from_str(&t).expect("json"),
            Outcome::Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn the_payload_text_is_spliced_in_and_kept_as_text() {
        let o = outcome(
            &work(),
            result(json!({"id": "i", "nodeId": "n1", "ok": true, "payloadJSON": "{\"a\": [1]}"})),
        );
        let v = ok_text(o);
        assert_eq!(v["payload"], json!({"a": [1]}));
        assert_eq!(v["payloadJSON"], "{\"a\": [1]}");
        assert_eq!(v["command"], "system.which");
        assert_eq!(v["nodeId"], "n1");
    }

    #[test]
    fn a_payload_that_is_not_json_or_absent_reads_as_the_reference_has_it() {
        let bad = ok_text(outcome(
            &work(),
            result(json!({"id": "i", "nodeId": "n1", "ok": true, "payloadJSON": "{nope"})),
        ));
        assert_eq!(bad["payload"], json!({"payloadJSON": "{nope"}));
        let value = ok_text(outcome(
            &work(),
            result(json!({"id": "i", "nodeId": "n1", "ok": true, "payload": {"x": 1}})),
        ));
        assert_eq!(value["payload"], json!({"x": 1}));
        assert_eq!(value["payloadJSON"], Value::Null);
        let none = ok_text(outcome(
            &work(),
            result(json!({"id": "i", "nodeId": "n1", "ok": true, "payloadJSON": null})),
        ));
        assert!(none.get("payload").is_none(), "{none}");
    }

    #[test]
    fn a_node_failure_is_unavailable_with_what_the_node_said() {
        let o = outcome(
            &work(),
            result(json!({"id": "i", "nodeId": "n1", "ok": false,
                          "error": {"code": "EPERM", "message": "denied"}})),
        );
        let Outcome::Err(e) = o else { panic!() };
        assert_eq!(e.code, "UNAVAILABLE");
        assert_eq!(e.message, "EPERM: denied");
        assert_eq!(
            e.details,
            Some(json!({"nodeError": {"code": "EPERM", "message": "denied"},
                        "nodeCommandDispatched": true}))
        );
        let Outcome::Err(e) = outcome(
            &work(),
            result(json!({"id": "i", "nodeId": "n1", "ok": false})),
        ) else {
            panic!()
        };
        assert_eq!(e.message, "node invoke failed");
    }
}
