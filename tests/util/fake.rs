//! Fake peers for tests that need more than one client at a time: an
//! operator that keeps every event it is sent (so a test can make calls
//! and still find the events that arrived meanwhile), and a node that
//! connects with role `node` the way `openclaw node run` does and answers
//! `node.invoke.request` events.
//!
//! Every wait is bounded; nothing here can hang a test.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{rand_id, Gateway, Identity, Ws};

/// A handshaken operator that collects the events it receives.
pub struct Operator {
    pub ws: Ws,
    pub hello: Value,
    events: Vec<Value>,
}

impl Operator {
    /// Connects as the local CLI in mode `mode` (`"ui"` is listed in
    /// presence, `"cli"` is not) with `scopes`.
    pub fn connect(gw: &Gateway, mode: &str, scopes: &[&str]) -> Operator {
        let mut ws = gw.ws();
        let hello = ws.handshake(super::connect_params(&gw.token(), 4, 4, mode, scopes));
        Operator {
            ws,
            hello,
            events: Vec::new(),
        }
    }

    /// One request; events that arrive before its answer are kept.
    pub fn call(&mut self, method: &str, params: Option<Value>) -> Value {
        let id = format!("op-{}", rand_id());
        let mut req = json!({"type": "req", "id": id, "method": method});
        if let Some(p) = params {
            req["params"] = p;
        }
        self.ws.send(&req);
        loop {
            let f = self.ws.recv();
            if f["type"] == "res" && f["id"] == id.as_str() {
                return f;
            }
            self.keep(f);
        }
    }

    /// The first event named `name` that satisfies `pred`, from those
    /// kept or those still to come within `within`; it is removed from the
    /// kept ones. Panics when none comes in time.
    pub fn wait_event(
        &mut self,
        name: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let matches = |f: &Value| f["event"] == name && pred(f);
        if let Some(i) = self.events.iter().position(matches) {
            return self.events.remove(i);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let f = self.ws.recv();
            if matches(&f) {
                return f;
            }
            self.keep(f);
        }
        panic!(
            "no '{name}' event as expected within {within:?}; kept: {:?}",
            self.events
        )
    }

    /// The events kept so far named `name`, oldest first.
    pub fn events(&self, name: &str) -> Vec<&Value> {
        self.events.iter().filter(|f| f["event"] == name).collect()
    }

    fn keep(&mut self, frame: Value) {
        if frame["type"] == "event" {
            self.events.push(frame);
        }
    }
}

/// A handshaken node host offering `commands`, with its own device key
/// (a loopback node with the shared token is paired silently).
pub struct Node {
    pub ws: Ws,
    pub hello: Value,
    pub instance_id: String,
    pub identity: Identity,
}

impl Node {
    /// The connect params of a node host offering `commands`.
    pub fn params(gw: &Gateway, display_name: &str, commands: &[&str], instance_id: &str) -> Value {
        json!({
            "minProtocol": 3, "maxProtocol": 4,
            "client": {"id": "node-host", "mode": "node", "version": "test",
                       "platform": "linux", "deviceFamily": "Linux",
                       "displayName": display_name, "instanceId": instance_id},
            "role": "node", "scopes": [], "caps": ["system"],
            "commands": commands, "permissions": {}, "pathEnv": "/usr/bin:/bin",
            "auth": {"token": gw.token()},
        })
    }

    pub fn connect(gw: &Gateway, display_name: &str, commands: &[&str]) -> Node {
        Node::connect_as(gw, Identity::new(), display_name, commands)
    }

    /// Connects with a given identity (to come back as the same node).
    pub fn connect_as(
        gw: &Gateway,
        identity: Identity,
        display_name: &str,
        commands: &[&str],
    ) -> Node {
        let instance_id = format!("node-{}", rand_id());
        let params = Node::params(gw, display_name, commands, &instance_id);
        let mut ws = gw.ws();
        let res = identity.connect(&mut ws, &params);
        assert_eq!(res["ok"], true, "node connect failed: {res}");
        Node {
            ws,
            hello: res["payload"].clone(),
            instance_id,
            identity,
        }
    }

    pub fn id(&self) -> &str {
        &self.identity.id
    }

    pub fn call(&mut self, method: &str, params: Option<Value>) -> Value {
        self.ws.call(method, params)
    }

    /// Waits for the next `node.invoke.request` and answers it with what
    /// `answer(command, params)` returns: a payload, or an error message.
    /// Returns the request.
    pub fn serve_invoke(
        &mut self,
        answer: impl Fn(&str, &Value) -> Result<Value, String>,
    ) -> Value {
        let req = self.ws.recv_event("node.invoke.request");
        let p = &req["payload"];
        let params = p["paramsJSON"]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        let mut result = json!({"id": p["id"], "nodeId": p["nodeId"]});
        match answer(p["command"].as_str().unwrap_or(""), &params) {
            Ok(payload) => {
                result["ok"] = json!(true);
                result["payloadJSON"] = json!(payload.to_string());
            }
            Err(message) => {
                result["ok"] = json!(false);
                result["error"] = json!({"code": "UNAVAILABLE", "message": message});
            }
        }
        let res = self.call("node.invoke.result", Some(result));
        assert_eq!(res["ok"], true, "node.invoke.result refused: {res}");
        req
    }
}
