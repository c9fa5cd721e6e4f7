//! Fake peers for tests that need more than one client at a time: an
//! operator that keeps every event it is sent (so a test can make calls
//! and still find the events that arrived meanwhile), and a node that
//! connects with role `node` the way `openclaw node run` does and answers
//! `node.invoke.request` events: at once, late, with `ok:false`, or not at
//! all (the test reads the request and answers when and how it likes, or
//! drops the socket).
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
        let id = self.request(method, params);
        self.response(&id)
    }

    /// Sends a request without waiting; returns its id.
    pub fn request(&mut self, method: &str, params: Option<Value>) -> String {
        let id = format!("op-{}", rand_id());
        let mut req = json!({"type": "req", "id": id, "method": method});
        if let Some(p) = params {
            req["params"] = p;
        }
        self.ws.send(&req);
        id
    }

    /// The response to request `id`; events that arrive first are kept
    /// (other responses are not expected and fail the test).
    pub fn response(&mut self, id: &str) -> Value {
        loop {
            let f = self.ws.recv();
            if f["type"] == "res" {
                assert_eq!(f["id"], id, "a response to another request: {f}");
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

    /// The next `node.invoke.request` event, whole; the test answers it
    /// (or does not).
    pub fn next_invoke(&mut self) -> Value {
        self.ws.recv_event("node.invoke.request")
    }

    /// Answers the invoke `req` (as `next_invoke` returned it): a payload
    /// sent as `payloadJSON`, or `ok:false` with the error `(code,
    /// message)`. Returns the gateway's response.
    pub fn answer(&mut self, req: &Value, outcome: Result<Value, (&str, &str)>) -> Value {
        let p = &req["payload"];
        let mut result = json!({"id": p["id"], "nodeId": p["nodeId"]});
        match outcome {
            Ok(payload) => {
                result["ok"] = json!(true);
                result["payloadJSON"] = json!(payload.to_string());
            }
            Err((code, message)) => {
                result["ok"] = json!(false);
                result["error"] = json!({"code": code, "message": message});
            }
        }
        self.call("node.invoke.result", Some(result))
    }

    /// Waits for the next `node.invoke.request` and answers it with what
    /// `answer(command, params)` returns: a payload, or an error message.
    /// Returns the request.
    pub fn serve_invoke(
        &mut self,
        answer: impl Fn(&str, &Value) -> Result<Value, String>,
    ) -> Value {
        let req = self.next_invoke();
        let p = &req["payload"];
        let params = p["paramsJSON"]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        let res = match answer(p["command"].as_str().unwrap_or(""), &params) {
            Ok(payload) => self.answer(&req, Ok(payload)),
            Err(message) => self.answer(&req, Err(("UNAVAILABLE", &message))),
        };
        assert_eq!(res["ok"], true, "node.invoke.result refused: {res}");
        req
    }
}
