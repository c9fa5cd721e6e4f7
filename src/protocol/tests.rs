use super::scopes::SCOPE_WRITE;
use super::*;
use serde_json::json;

fn parse_connect(params: Option<&Value>) -> Result<ConnectParams, String> {
    let raw = params.map(|v| serde_json::value::RawValue::from_string(v.to_string()).unwrap());
    parse::<ConnectParams>("connect", raw.as_deref()).map_err(|e| e.message)
}

fn connect(overrides: Value) -> Value {
    let mut base = json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "cli", "mode": "cli", "version": "2026.9.6", "platform": "linux",
                   "instanceId": "abc"},
        "role": "operator",
        "scopes": ["operator.read"],
        "caps": [],
        "auth": {"token": "T"}
    });
    if let (Value::Object(b), Value::Object(o)) = (&mut base, overrides) {
        for (k, v) in o {
            b.insert(k, v);
        }
    }
    base
}

#[test]
fn requests_cancels_and_junk_are_told_apart() {
    assert!(matches!(
        parse_frame(r#"{"type":"req","id":"2:x","method":"health"}"#),
        Ok(Inbound::Req { ref id, ref method, params: None }) if id == "2:x" && method == "health"
    ));
    match parse_frame(r#"{"type":"req","id":"3","method":"m","params":{"a": [1, 2]}}"#) {
        Ok(Inbound::Req {
            params: Some(p), ..
        }) => assert_eq!(p.get(), r#"{"a": [1, 2]}"#),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_frame(r#"{"type":"cancel","id":"1"}"#),
        Ok(Inbound::Cancel)
    ));
    assert!(matches!(parse_frame("{nope"), Err(FrameError::NotJson(_))));
    assert!(matches!(parse_frame("[1]"), Err(FrameError::NotObject)));
    assert!(matches!(parse_frame("[1"), Err(FrameError::NotJson(_))));
    assert!(matches!(
        parse_frame(r#"{"type":"req","id":"","method":"x"}"#),
        Ok(Inbound::Invalid { id: None, .. })
    ));
    assert!(matches!(
        parse_frame(r#"{"type":"req","id":"7","method":""}"#),
        Ok(Inbound::Invalid { id: Some(ref i), .. }) if i == "7"
    ));
    assert!(matches!(
        parse_frame(r#"{"type":"event","id":"9"}"#),
        Ok(Inbound::Invalid { id: Some(ref i), .. }) if i == "9"
    ));
}

#[test]
fn frames_carry_only_documented_keys() {
    let ok: Value = serde_json::from_str(&res_ok("1", &json!({"a": 1}).into())).unwrap();
    let keys: Vec<&str> = ok.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys.len(), 4);
    for k in ["type", "id", "ok", "payload"] {
        assert!(keys.contains(&k));
    }
    let err: Value = serde_json::from_str(&res_err("1", &ErrorShape::invalid("bad"))).unwrap();
    assert_eq!(
        err["error"],
        json!({"code": "INVALID_REQUEST", "message": "bad"})
    );
    let ev: Value = serde_json::from_str(&event_frame(
        "tick",
        r#"{"ts":5}"#,
        Some(3),
        Some(StateVersion {
            presence: 2,
            health: 1,
        }),
    ))
    .unwrap();
    assert_eq!(
        ev,
        json!({"type":"event","event":"tick","payload":{"ts":5},"seq":3,
               "stateVersion":{"presence":2,"health":1}})
    );
    let ch: Value = serde_json::from_str(&challenge_frame("n-1", 42)).unwrap();
    assert_eq!(
        ch,
        json!({"type":"event","event":"connect.challenge","payload":{"nonce":"n-1","ts":42}})
    );
}

#[test]
fn stock_cli_connect_is_accepted_and_unknown_fields_ignored() {
    let mut v = connect(json!({"someFutureField": {"x": 1}}));
    v["client"]["futureClientField"] = json!(true);
    let p = parse_connect(Some(&v)).unwrap();
    assert_eq!(p.client.id, "cli");
    assert_eq!(p.client.mode, "cli");
    assert_eq!(p.role, Role::Operator);
    assert_eq!(p.scopes, vec!["operator.read".to_string()]);
    assert_eq!(p.auth.token.as_deref(), Some("T"));
    assert_eq!(p.client.instance_id.as_deref(), Some("abc"));
}

#[test]
fn connect_params_are_validated() {
    let cases = [
        (json!({"minProtocol": 0}), "minProtocol"),
        (json!({"maxProtocol": "4"}), "maxProtocol"),
        (json!({"client": "cli"}), "at /client: "),
        (json!({"role": null}), "never fails"),
        (json!({"role": "root"}), "role"),
        (json!({"scopes": [1]}), "scopes"),
        (json!({"auth": "T"}), "auth"),
    ];
    for (over, needle) in cases {
        if needle == "never fails" {
            let p = parse_connect(Some(&connect(over))).unwrap();
            assert_eq!(p.role, Role::Operator);
            continue;
        }
        let err = parse_connect(Some(&connect(over.clone()))).unwrap_err();
        assert!(err.starts_with("invalid connect params: "), "{err}");
        assert!(err.contains(needle), "{over} -> {err}");
    }
    let mut v = connect(json!({}));
    v["client"]["id"] = json!("evil-client");
    assert!(parse_connect(Some(&v))
        .unwrap_err()
        .contains("at /client/id: must be equal to one of the allowed values"));
    let mut v = connect(json!({}));
    v["client"]["version"] = json!("");
    assert!(parse_connect(Some(&v))
        .unwrap_err()
        .contains("at /client/version: "));
    assert!(parse_connect(None).is_err());
    // Client ids compare case-insensitively.
    let mut v = connect(json!({}));
    v["client"]["id"] = json!("OpenClaw-Control-UI");
    v["client"]["mode"] = json!("UI");
    assert_eq!(
        parse_connect(Some(&v)).unwrap().client.id,
        "openclaw-control-ui"
    );
}

#[test]
fn versions_negotiate_to_the_highest_shared() {
    assert_eq!(negotiate(3, 3), Some(3));
    assert_eq!(negotiate(4, 4), Some(4));
    assert_eq!(negotiate(3, 4), Some(4));
    assert_eq!(negotiate(1, 9), Some(4));
    assert_eq!(negotiate(5, 6), None);
    assert_eq!(negotiate(1, 2), None);
    let e = protocol_mismatch(5, 6).to_json();
    assert_eq!(e["message"], "protocol mismatch");
    assert_eq!(e["details"]["code"], "PROTOCOL_MISMATCH");
    assert_eq!(e["details"]["expectedProtocol"], 4);
    assert_eq!(e["details"]["minimumProbeProtocol"], 3);
    assert_eq!(e["details"]["clientMinProtocol"], 5);
    assert_eq!(e["details"]["clientMaxProtocol"], 6);
}

#[test]
fn device_less_scopes_are_kept_only_for_the_local_cli_and_its_backend_helper() {
    let p = parse_connect(Some(&connect(json!({
        "scopes": ["operator.admin", "operator.read", "operator.read"]
    }))))
    .unwrap();
    assert_eq!(
        granted_scopes(&p, true),
        vec!["operator.admin", "operator.read"]
    );
    assert!(granted_scopes(&p, false).is_empty());
    let mut v = connect(json!({}));
    v["client"]["mode"] = json!("probe");
    let probe = parse_connect(Some(&v)).unwrap();
    assert!(granted_scopes(&probe, true).is_empty());
    let node = parse_connect(Some(&connect(json!({"role": "node"})))).unwrap();
    assert!(granted_scopes(&node, true).is_empty());
    // The stock CLI's backend helper (`nodes approve`) keeps them too.
    let mut v = connect(json!({"scopes": ["operator.pairing"]}));
    v["client"]["id"] = json!("gateway-client");
    v["client"]["mode"] = json!("backend");
    let backend = parse_connect(Some(&v)).unwrap();
    assert_eq!(granted_scopes(&backend, true), vec!["operator.pairing"]);
    assert!(granted_scopes(&backend, false).is_empty());
    v["client"]["mode"] = json!("ui");
    assert!(granted_scopes(&parse_connect(Some(&v)).unwrap(), true).is_empty());
}

#[test]
fn scope_rules() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(has_scope(&s(&["operator.admin"]), SCOPE_READ));
    assert!(has_scope(&s(&["operator.write"]), SCOPE_READ));
    assert!(!has_scope(&s(&["operator.read"]), SCOPE_WRITE));
    assert!(!has_scope(&s(&["operator.read"]), SCOPE_ADMIN));
    assert!(!has_scope(&[], SCOPE_READ));
    let v4 = missing_scope(SCOPE_READ, 4).to_json();
    assert_eq!(v4["code"], "FORBIDDEN");
    assert_eq!(v4["message"], "missing scope: operator.read");
    assert_eq!(v4["details"]["missingScope"], "operator.read");
    assert_eq!(v4["details"]["requiredScopes"], json!(["operator.read"]));
    assert_eq!(
        missing_scope(SCOPE_READ, 3).to_json()["code"],
        "INVALID_REQUEST"
    );
}

#[test]
fn close_reasons_fit_a_close_frame() {
    let e = ErrorShape::invalid("é".repeat(100));
    let r = e.close_reason();
    assert!(r.len() <= 120);
    assert!(r.chars().all(|c| c == 'é'));
    assert_eq!(clip("abc", 10), "abc");
}

#[test]
fn nesting_is_bounded_by_serde_json_at_128_levels() {
    let frame = |n: usize| {
        format!(
            r#"{{"type":"req","id":"1","method":"health","params":{}{}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    // The frame object is one level: 126 arrays inside it are the deepest
    // frame served, 127 are refused, and 50,000 cost no more than that.
    assert!(matches!(parse_frame(&frame(126)), Ok(Inbound::Req { .. })));
    assert!(matches!(
        parse_frame(&frame(127)),
        Err(FrameError::NotJson(_))
    ));
    assert!(matches!(
        parse_frame(&frame(50_000)),
        Err(FrameError::NotJson(_))
    ));
}
