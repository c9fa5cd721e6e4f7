//! The stock OpenClaw Control UI, unchanged, served by clawgate from
//! `gateway.controlUi.root` and driven in headless Chromium: it connects
//! (paired silently on loopback), lists the connected clients and a node,
//! and streams a reply of the fake model into the chat page. The gateway
//! runs with `--verbose`, so its log records every method the UI called
//! and how each was answered; the test prints that list.
//!
//! Runs when CLAWGATE_TEST_OPENCLAW names the stock CLI (its package holds
//! the UI build, `dist/control-ui`) and chromium is installed; without
//! either it fails under CI=true and elsewhere says that it skipped.
//! `files` checks the static serving itself against a small build.

mod files;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::cdp::{chromium_or_skip, Page};
use crate::util::fake_openai::{Behaviour, FakeOpenAi};
use crate::util::{Gateway, Node, Operator, Opts};

const WAIT: Duration = Duration::from_secs(20);

/// Methods the pages under test cannot do without (PROTOCOL-HTTP §9,
/// marks E and R): none may answer "unknown method".
const NEEDED: &[&str] = &[
    "sessions.subscribe",
    "sessions.list",
    "agents.list",
    "chat.startup",
    "chat.send",
    "config.get",
    "models.list",
    "agent.identity.get",
    "sessions.messages.subscribe",
    "node.list",
    "device.pair.list",
    "system-presence",
];

/// The stock build, `<openclaw package>/dist/control-ui`, found from the
/// command in CLAWGATE_TEST_OPENCLAW, or None after saying why `test` is
/// skipped (which fails under CI=true).
fn stock_ui_or_skip(test: &str) -> Option<PathBuf> {
    let cli = crate::openclaw::stock_cli_or_skip(test)?;
    let package = cli
        .iter()
        .map(Path::new)
        .find(|p| p.file_name().is_some_and(|n| n == "openclaw.mjs"))
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("no openclaw.mjs in CLAWGATE_TEST_OPENCLAW: {cli:?}"));
    let ui = package.join("dist/control-ui");
    assert!(
        ui.join("index.html").is_file(),
        "'{}' has no index.html: the stock package lacks its Control UI",
        ui.display()
    );
    Some(ui)
}

/// The page's text, shadow roots included (the UI is made of Lit
/// components), with whitespace collapsed.
const DEEP_TEXT: &str = r#"(() => {
  let out = '';
  const walk = (n) => {
    if (n.nodeType === 3) { out += n.textContent + ' '; return; }
    if (n.nodeType === 1 && (n.tagName === 'STYLE' || n.tagName === 'SCRIPT')) return;
    if (n.nodeType === 1 && n.id === 'openclaw-mount-fallback') return;
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) walk(c);
  };
  walk(document);
  return out.replace(/\s+/g, ' ');
})()"#;

/// Waits until the page's deep text satisfies the JavaScript condition
/// `cond` over `t`; returns that text.
fn wait_text(page: &mut Page, cond: &str, what: &str) -> String {
    let js = format!("(() => {{ const t = {DEEP_TEXT}; return ({cond}) ? t : ''; }})()");
    match page.wait_for(&js, WAIT) {
        Ok(v) => v.as_str().unwrap_or_default().to_string(),
        Err(e) => {
            let text = page.eval(DEEP_TEXT).unwrap_or(Value::Null);
            panic!("{what}: {e}\npage text: {text}")
        }
    }
}

/// A node kept connected (and answering pings) on its own thread until
/// the returned flag is set.
fn background_node(gw: &Gateway, name: &str) -> (String, Arc<AtomicBool>) {
    let node = Node::connect(gw, name, &["system.which"]);
    let id = node.id().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut node = node;
        while !flag.load(Ordering::Relaxed) {
            match node.ws.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    });
    (id, stop)
}

/// Each method the gateway log shows answered, with how: "ok", "unknown
/// method", or the error code (`--verbose` logs `#<conn> <method>: …`).
fn methods_called(log: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in log {
        let Some(rest) = line.split_once(" DEBUG #").map(|(_, r)| r) else {
            continue;
        };
        let mut words = rest.split_whitespace().skip(1);
        let Some(method) = words.next().and_then(|m| m.strip_suffix(':')) else {
            continue;
        };
        let outcome = match words.next() {
            Some("unknown") => "unknown method".to_string(),
            Some("ok" | "accepted" | "answered" | "replayed") => "ok".to_string(),
            Some(code) => code.to_string(),
            None => continue,
        };
        // An error later does not hide that the method exists.
        let seen = out.entry(method.to_string()).or_insert(outcome.clone());
        if outcome == "ok" {
            *seen = outcome;
        }
    }
    out
}

#[test]
fn stock_control_ui_in_a_browser() {
    let Some(ui) = stock_ui_or_skip("control_ui::stock_control_ui_in_a_browser") else {
        return;
    };
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    // Pieces far enough apart that the page shows the reply growing.
    let up = FakeOpenAi::start(Behaviour::Reply {
        pieces: vec!["Hello".into(), " from".into(), " the fake model.".into()],
        gap_ms: 600,
    });
    let config = crate::runs::config(&up, "").replacen(
        r#""gateway":{"mode":"local"}"#,
        &format!(
            r#""gateway":{{"mode":"local","controlUi":{{"root":{}}}}}"#,
            json!(ui)
        ),
        1,
    );
    let gw = Gateway::with(Opts {
        config: Some(&config),
        env: &[("FAKE_KEY", "sk-test-secret")],
        args: &["--verbose"],
    });
    let (_node_id, stop_node) = background_node(&gw, "kitchen-pi");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/stock");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    println!("screenshots: {}", shots.display());
    let shot = |page: &mut Page, name: &str| {
        page.screenshot(&shots.join(name))
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    };
    let base = format!("http://127.0.0.1:{}", gw.port);
    let mut page = browser.page().expect("new page");

    // Connects with the token from the fragment, and the app starts.
    page.goto(&format!("{base}/#token={}", gw.token()))
        .expect("load the UI");
    let text = wait_text(
        &mut page,
        "/\\bConnected\\b/.test(t) && t.includes('Message Assistant')",
        "the chat page connects",
    );
    shot(&mut page, "1-chat-connected.png");
    for bad in [
        "pairing required",
        "NOT_PAIRED",
        "Disconnected",
        "unknown method",
    ] {
        assert!(!text.contains(bad), "'{bad}' on the chat page: {text}");
    }
    let fallback = page.eval("document.getElementById('openclaw-mount-fallback').hidden");
    assert_eq!(
        fallback,
        Ok(Value::Bool(true)),
        "the app bundle did not start"
    );
    assert!(!text.contains("No AI provider configured"), "{text}");
    let config = page
        .wait_for(
            "(() => {
               const s = performance.getEntriesByType('resource')
                 .filter((e) => e.name.includes('control-ui-config.json'))
                 .map((e) => e.responseStatus);
               return s.length > 0 && s.every((x) => x === 200) ? s : null;
             })()",
            WAIT,
        )
        .expect("the UI read its bootstrap config with its credential");
    println!("control-ui-config.json fetches: {config}");

    // A message typed on the chat page streams the fake model's reply in.
    page.focus("textarea").expect("the composer");
    page.insert_text("Say hello").expect("type");
    page.press_enter().expect("send");
    wait_text(
        &mut page,
        "t.includes('Say hello') && t.includes('Hello') && !t.includes('the fake model.')",
        "the reply streams in, a piece at a time",
    );
    shot(&mut page, "2-chat-streaming.png");
    wait_text(
        &mut page,
        "t.includes('Hello from the fake model.')",
        "the whole reply arrives",
    );
    shot(&mut page, "3-chat-reply.png");
    let sent = up.requests();
    assert_eq!(sent.len(), 1, "one upstream request: {sent:?}");
    assert!(sent[0].to_string().contains("Say hello"), "{}", sent[0]);

    // Presence and the node: the devices page lists this browser and the
    // node as connected.
    page.goto(&format!("{base}/nodes")).expect("load /nodes");
    let text = wait_text(
        &mut page,
        "t.includes('kitchen-pi') && t.includes('openclaw-control-ui') && /2 of 2 connected/.test(t)",
        "the nodes page lists the node and the connected clients",
    );
    shot(&mut page, "4-nodes.png");
    assert!(!text.contains("pairing required"), "{text}");

    // The sessions page lists the chat's session.
    page.goto(&format!("{base}/sessions"))
        .expect("load /sessions");
    wait_text(
        &mut page,
        "t.includes('agent:main:main') && /Connected/.test(t)",
        "the sessions page lists the chat's session",
    );
    shot(&mut page, "5-sessions.png");

    stop_node.store(true, Ordering::Relaxed);
    let console = page.console();
    let log = gw.stderr_lines();
    let called = methods_called(&log);
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut unknown = Vec::new();
    for (m, outcome) in &called {
        match outcome.as_str() {
            "ok" => ok.push(m.as_str()),
            "unknown method" => unknown.push(m.as_str()),
            code => failed.push(format!("{m} ({code})")),
        }
    }
    println!("methods the stock UI called, answered: {}", ok.join(", "));
    println!("answered with an error: {}", failed.join(", "));
    println!("answered \"unknown method\": {}", unknown.join(", "));
    println!("console: {console:#?}");
    for m in NEEDED {
        assert_eq!(
            called.get(*m).map(String::as_str),
            Some("ok"),
            "{m} was not called or not answered: {called:?}"
        );
    }
}

#[test]
fn stock_control_ui_under_a_base_path() {
    let Some(ui) = stock_ui_or_skip("control_ui::stock_control_ui_under_a_base_path") else {
        return;
    };
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let config = json!({"gateway": {"mode": "local",
                        "controlUi": {"root": ui, "basePath": "/openclaw"}}});
    let gw = Gateway::with_config(&config.to_string());
    let mut page = browser.page().expect("new page");
    let base = format!("http://127.0.0.1:{}/openclaw", gw.port);
    page.goto(&format!("{base}/#token={}", gw.token()))
        .expect("load the UI under its mount");
    wait_text(
        &mut page,
        "/\\bConnected\\b/.test(t) && t.includes('Message Assistant')",
        "the UI under /openclaw connects",
    );
    let path = page.eval("location.pathname").expect("location");
    assert!(
        path.as_str().is_some_and(|p| p.starts_with("/openclaw/")),
        "{path}"
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/stock");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    page.screenshot(&shots.join("6-base-path.png"))
        .expect("screenshot");
}

#[test]
fn the_ui_only_methods_answer_in_the_reference_shapes() {
    let gw = Gateway::start();
    let mut op = Operator::connect(&gw, "cli", &["operator.admin"]);
    let r = op.call(
        "chat.startup",
        Some(json!({"sessionKey": "main", "limit": 80, "maxBytes": 262144})),
    );
    let p = &r["payload"];
    assert_eq!(p["sessionKey"], "agent:main:main", "{r}");
    assert_eq!((&p["messages"], &p["hasMore"]), (&json!([]), &json!(false)));
    let r = op.call("chat.startup", Some(json!({"limit": 1})));
    assert_eq!(r["ok"], false, "{r}");

    let r = op.call("agent.identity.get", Some(json!({"agentId": "main"})));
    assert_eq!(
        r["payload"],
        json!({"agentId": "main", "name": "Assistant", "nameSource": "default", "avatar": "A"})
    );
    let r = op.call("agent.identity.get", None);
    assert_eq!(r["payload"]["agentId"], "main", "{r}");

    let r = op.call(
        "sessions.messages.subscribe",
        Some(json!({"key": "main", "includeApprovals": true})),
    );
    let p = &r["payload"];
    assert_eq!(
        (&p["subscribed"], &p["key"]),
        (&json!(true), &json!("agent:main:main"))
    );
    let replay = &p["approvalReplay"];
    assert_eq!(replay["sessionKey"], "agent:main:main");
    assert_eq!(
        (&replay["approvals"], &replay["truncated"]),
        (&json!([]), &json!(false))
    );
    let r = op.call("sessions.messages.subscribe", Some(json!({"key": "main"})));
    assert!(r["payload"].get("approvalReplay").is_none(), "{r}");
    let r = op.call(
        "sessions.messages.unsubscribe",
        Some(json!({"key": "main"})),
    );
    assert_eq!(
        r["payload"],
        json!({"subscribed": false, "key": "agent:main:main"})
    );
    let r = op.call("sessions.messages.subscribe", Some(json!({})));
    assert_eq!(r["ok"], false, "a key is required: {r}");

    let methods = &op.hello["features"]["methods"];
    for m in [
        "chat.startup",
        "agent.identity.get",
        "sessions.messages.subscribe",
    ] {
        assert!(
            methods.as_array().unwrap().contains(&json!(m)),
            "{m} advertised"
        );
    }
    let r = op.call("exec.approvals.get", None);
    assert_eq!(r["error"]["message"], "unknown method: exec.approvals.get");
}

#[test]
fn agents_list_names_each_agents_model() {
    let up = FakeOpenAi::start(Behaviour::Stall);
    let gw = crate::runs::start(&up, "");
    let mut op = Operator::connect(&gw, "cli", &["operator.read"]);
    let r = op.call("agents.list", None);
    assert_eq!(
        r["payload"]["agents"][0]["model"],
        json!({"primary": "fake/fake-model"}),
        "{r}"
    );
}
