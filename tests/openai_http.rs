//! The OpenAI-compatible endpoints against the real binary with a fake
//! OpenAI-compatible upstream: the switches and the bearer check, the
//! model list, the body limit and what is refused, here; turns of
//! `/v1/chat/completions` in `chat` and of `/v1/responses` in
//! `responses`.

mod chat;
mod responses;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::fake_openai::{Behaviour, FakeOpenAi};
use crate::util::{get, http, watchdog, Gateway, Opts};

/// A gateway whose default model is the fake upstream's, with these
/// `gateway.http.endpoints` and `agents` additions.
fn start(up: &FakeOpenAi, endpoints: Value, extra: Value) -> Gateway {
    watchdog();
    let mut cfg: Value = serde_json::from_str(&crate::runs::config(up, "")).unwrap();
    cfg["gateway"]["http"] = json!({ "endpoints": endpoints });
    if let Some(o) = extra.as_object() {
        for (k, v) in o {
            match k.as_str() {
                "limits" => cfg["gateway"]["limits"] = v.clone(),
                "list" => cfg["agents"]["list"] = v.clone(),
                _ => cfg["agents"]["defaults"][k] = v.clone(),
            }
        }
    }
    Gateway::with(Opts {
        config: Some(&cfg.to_string()),
        env: &[("FAKE_KEY", "sk-test-secret")],
        ..Opts::default()
    })
}

fn both() -> Value {
    json!({"chatCompletions": {"enabled": true}, "responses": {"enabled": true}})
}

fn reply(pieces: &[&str]) -> Behaviour {
    Behaviour::Reply {
        pieces: pieces.iter().map(|s| s.to_string()).collect(),
        gap_ms: 0,
    }
}

/// The raw request, with the gateway's token.
fn request(gw: &Gateway, method: &str, path: &str, body: &str, extra: &[(&str, &str)]) -> String {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n",
        body.len(),
        gw.token()
    );
    for (k, v) in extra {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

type Answer = (u16, HashMap<String, String>, String);

fn post(gw: &Gateway, path: &str, body: &Value, extra: &[(&str, &str)]) -> Answer {
    http(
        gw.port,
        &request(gw, "POST", path, &body.to_string(), extra),
    )
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The SSE events of a body: (event name, data), in order.
fn sse(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, data)
        })
        .collect()
}

fn chat_body(content: &str, extra: Value) -> Value {
    let mut b = json!({"model": "openclaw", "messages": [{"role": "user", "content": content}]});
    if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    b
}

#[test]
fn disabled_endpoints_are_not_routed() {
    let up = FakeOpenAi::start(reply(&["x"]));
    let gw = start(&up, json!({}), json!({}));
    for path in ["/v1/chat/completions", "/v1/responses"] {
        assert_eq!(
            post(&gw, path, &chat_body("hi", json!({})), &[]).0,
            404,
            "{path}"
        );
    }
    assert_eq!(get(gw.port, "/v1/models").0, 404);
    let gw = start(
        &up,
        json!({"chatCompletions": {"enabled": true}}),
        json!({}),
    );
    assert_eq!(
        post(&gw, "/v1/responses", &json!({"input": "hi"}), &[]).0,
        404
    );
    assert_eq!(
        post(&gw, "/v1/embeddings", &json!({"input": "hi"}), &[]).0,
        404
    );
    assert_eq!(up.requests().len(), 0);
}

#[test]
fn the_endpoints_need_the_gateway_secret() {
    let up = FakeOpenAi::start(reply(&["x"]));
    let gw = start(&up, both(), json!({}));
    let unauthorized = r#"{"error":{"message":"Unauthorized","type":"unauthorized"}}"#;
    for auth in ["", "Authorization: Bearer wrong-token\r\n"] {
        for (method, path) in [("GET", "/v1/models"), ("POST", "/v1/chat/completions")] {
            let raw = format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
            let (status, _, body) = http(gw.port, &raw);
            assert_eq!(
                (status, body.as_str()),
                (401, unauthorized),
                "{method} {path} {auth:?}"
            );
        }
    }
    let (status, _, _) = http(gw.port, &request(&gw, "GET", "/v1/models", "", &[]));
    assert_eq!(status, 200);
    assert_eq!(up.requests().len(), 0, "no run without the secret");
}

#[test]
fn models_list_the_agent_targets_and_answer_one_by_id() {
    let up = FakeOpenAi::start(reply(&["x"]));
    let gw = start(&up, both(), json!({"list": [{"id": "ops"}]}));
    let get_ = |path: &str| http(gw.port, &request(&gw, "GET", path, "", &[]));
    let (status, _, body) = get_("/v1/models");
    assert_eq!(status, 200, "{body}");
    let list = json_of(&body);
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "openclaw",
            "openclaw/default",
            "openclaw/main",
            "openclaw/ops"
        ]
    );
    assert_eq!(
        list["data"][0],
        json!({"id": "openclaw", "object": "model", "created": 0, "owned_by": "openclaw", "permission": []})
    );
    let (status, _, body) = get_("/v1/models/openclaw%2Fdefault");
    assert_eq!(
        (status, json_of(&body)["id"].clone()),
        (200, json!("openclaw/default"))
    );
    assert_eq!(get_("/v1/models/openclaw%2Fops").0, 200);
    let (status, _, body) = get_("/v1/models/openclaw%2Fnope");
    assert_eq!(status, 404);
    assert_eq!(
        json_of(&body),
        json!({"error": {"message": "Model 'openclaw/nope' not found.", "type": "invalid_request_error"}})
    );
    for bad in ["/v1/models/gpt-4o", "/v1/models/openclaw%zz", "/v1/models/"] {
        let (status, _, body) = get_(bad);
        assert_eq!(status, 400, "{bad}");
        assert_eq!(json_of(&body)["error"]["message"], "Invalid model id.");
    }
    let (status, headers, _) = post(&gw, "/v1/models", &json!({}), &[]);
    assert_eq!((status, headers["allow"].as_str()), (405, "GET"));
    let (status, headers, _) = http(
        gw.port,
        &request(&gw, "GET", "/v1/chat/completions", "", &[]),
    );
    assert_eq!((status, headers["allow"].as_str()), (405, "POST"));
}

#[test]
fn a_body_over_max_payload_is_refused_before_it_is_sent() {
    let up = FakeOpenAi::start(reply(&["x"]));
    let gw = start(&up, both(), json!({"limits": {"maxPayload": 65536}}));
    let started = Instant::now();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n",
        gw.token()
    );
    let (status, _, body) = http(gw.port, &head);
    assert_eq!(status, 413);
    assert_eq!(
        json_of(&body),
        json!({"error": {"message": "Payload too large", "type": "invalid_request_error"}})
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn tools_images_and_unknown_targets_are_refused_with_400() {
    let up = FakeOpenAi::start(reply(&["x"]));
    let gw = start(&up, both(), json!({}));
    let tool = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    let image = json!([{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]);
    let cases = [
        (
            "/v1/chat/completions",
            chat_body("x", json!({"tools": tool})),
            vec![],
            "tools",
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": image}]}),
            vec![],
            "image_url",
        ),
        (
            "/v1/chat/completions",
            chat_body("x", json!({"model": "gpt-4o"})),
            vec![],
            "model",
        ),
        (
            "/v1/chat/completions",
            chat_body("x", json!({"model": "openclaw/nobody"})),
            vec![],
            "nobody",
        ),
        (
            "/v1/chat/completions",
            chat_body("x", json!({})),
            vec![("x-openclaw-session-key", "cron:nightly")],
            "reserved",
        ),
        (
            "/v1/chat/completions",
            chat_body("x", json!({})),
            vec![("x-openclaw-model", "nope/model")],
            "x-openclaw-model",
        ),
        (
            "/v1/responses",
            json!({"input": "x", "previous_response_id": "resp_1"}),
            vec![],
            "previous_response_id",
        ),
        (
            "/v1/responses",
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}),
            vec![],
            "input_image",
        ),
        (
            "/v1/responses",
            json!({"input": [{"type": "function_call_output", "call_id": "c", "output": "o"}]}),
            vec![],
            "function_call_output",
        ),
    ];
    for (path, body, headers, want) in cases {
        let (status, _, text) = post(&gw, path, &body, &headers);
        assert_eq!(status, 400, "{body}: {text}");
        let e = json_of(&text);
        assert_eq!(e["error"]["type"], "invalid_request_error", "{text}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(want),
            "{want}: {text}"
        );
    }
    assert_eq!(up.requests().len(), 0);
    let (status, _, _) = http(
        gw.port,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        status, 401,
        "the method and the secret come before the body"
    );
}
