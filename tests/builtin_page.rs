//! The built-in control page in a real headless Chromium against the real
//! gateway: opened with `#token=`, it signs in with its own device identity
//! (paired silently on loopback), lists the connected clients, approves a
//! waiting device with its button, streams a chat reply from a fake model,
//! and tails the log file. A screenshot of each pane is written to
//! `target/screenshots/builtin/`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::cdp::{chromium_or_skip, Page};
use crate::util::fake_openai::{Behaviour, FakeOpenAi};
use crate::util::{rand_id, Gateway, Identity, Operator, Ws};

const WAIT: Duration = Duration::from_secs(15);

/// `target/screenshots/builtin`, next to the test binary's profile dir.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<binary>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary lives under target/<profile>/deps");
    let dir = target.join("screenshots").join("builtin");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Shows a pane by its tab button.
fn show(page: &mut Page, tab: &str) {
    page.click(&format!("[data-tab={tab}]"))
        .expect("tab button");
    page.wait_for(
        &format!("!document.querySelector('[data-pane={tab}]').hidden"),
        WAIT,
    )
    .expect("pane shown");
}

fn text(page: &mut Page, js: &str) -> String {
    page.eval(js)
        .expect("page text")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A gateway whose agent answers from a fake OpenAI-compatible model and
/// which writes its log file.
fn gateway(upstream: &FakeOpenAi) -> Gateway {
    let mut config: Value =
        serde_json::from_str(&crate::runs::config(upstream, "")).expect("runs config");
    config["logging"] = json!({"file": true});
    Gateway::with(crate::util::Opts {
        config: Some(&config.to_string()),
        env: &[("FAKE_KEY", "sk-test-secret")],
        ..Default::default()
    })
}

/// A device asking to be paired from what looks like another host (its
/// upgrade came through a proxy): it is refused `NOT_PAIRED` and its
/// request waits. Returns the device and the request id.
fn waiting_device(gw: &Gateway) -> (Identity, String) {
    let me = Identity::new();
    let params = json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "openclaw-tui", "mode": "ui", "version": "test",
                   "platform": "linux", "instanceId": format!("tui-{}", rand_id())},
        "role": "operator", "scopes": ["operator.read"], "caps": [],
        "auth": {"token": gw.token()},
    });
    let mut ws = Ws::connect(gw.port, &[("X-Forwarded-For", "203.0.113.7")]);
    let res = me.connect(&mut ws, &params);
    assert_eq!(res["error"]["code"], "NOT_PAIRED", "{res}");
    let id = res["error"]["details"]["requestId"]
        .as_str()
        .expect("requestId")
        .to_string();
    (me, id)
}

#[test]
fn the_control_page_connects_shows_its_panes_approves_a_device_and_streams_a_chat_reply() {
    crate::util::watchdog();
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let upstream = FakeOpenAi::start(Behaviour::Reply {
        pieces: ["Hello", " from", " the", " fake", " model."]
            .map(String::from)
            .to_vec(),
        gap_ms: 150,
    });
    let gw = gateway(&upstream);
    let shots = screenshot_dir();
    println!("screenshots of the built-in page: {}", shots.display());
    let mut page = browser.page().expect("new page");

    // Opened the way users are told to open the Control UI.
    page.goto(&format!(
        "http://127.0.0.1:{}/#token={}",
        gw.port,
        gw.token()
    ))
    .expect("load the page");
    page.wait_for(
        "document.querySelector('#conn').textContent === 'connected'",
        WAIT,
    )
    .expect("connected");
    assert_eq!(
        page.eval("location.hash").unwrap(),
        "",
        "the token stays out of the address bar"
    );
    assert_eq!(
        page.eval("localStorage.getItem('clawgate.token')").unwrap(),
        Value::Null
    );
    let scopes = text(
        &mut page,
        "document.querySelector('#status-auth').textContent",
    );
    assert!(
        scopes.contains("operator.admin") && scopes.contains("operator.pairing"),
        "{scopes}"
    );

    // Status.
    show(&mut page, "status");
    page.wait_for(
        "document.querySelector('#status-counts [data-count=clients]')",
        WAIT,
    )
    .expect("counts");
    let version = text(
        &mut page,
        "document.querySelector('#status-version').textContent",
    );
    assert!(version.starts_with("clawgate "), "{version}");
    page.screenshot(&shots.join("status.png")).unwrap();

    // Presence: the page itself, as the Control UI in webchat mode.
    show(&mut page, "presence");
    page.wait_for(
        "[...document.querySelectorAll('#presence-list tr[data-mode=webchat]')]
            .some((r) => r.textContent.includes('(this page)'))",
        WAIT,
    )
    .expect("the page's own presence entry");
    page.screenshot(&shots.join("presence.png")).unwrap();

    // Nodes: a device asks while the pane is shown; it appears by the
    // `device.pair.requested` event, and its Approve button pairs it.
    show(&mut page, "nodes");
    let (device, request_id) = waiting_device(&gw);
    let row = format!("#nodes-pending [data-request-id='{request_id}']");
    page.wait_for(
        &format!("document.querySelector(\"{row} button.approve\")"),
        WAIT,
    )
    .expect("the waiting device's row");
    assert_eq!(
        page.eval(&format!("document.querySelector(\"{row}\").dataset.kind"))
            .unwrap(),
        "device"
    );
    page.screenshot(&shots.join("nodes.png")).unwrap();
    page.click(&format!("{row} button.approve")).unwrap();
    page.wait_for(
        &format!("!document.querySelector(\"{row}\") && document.querySelector(\"#devices-paired [data-device-id='{}']\")", device.id),
        WAIT,
    )
    .expect("the request gone and the device listed as paired");
    let mut op = Operator::connect(&gw, "cli", &["operator.pairing"]);
    let listed = op.call("device.pair.list", None);
    assert_eq!(listed["payload"]["pending"], json!([]), "{listed}");
    let paired = listed["payload"]["paired"].as_array().unwrap();
    let entry = paired
        .iter()
        .find(|d| d["deviceId"] == device.id.as_str())
        .unwrap_or_else(|| panic!("device not paired: {listed}"));
    assert_eq!(entry["approvedVia"], "operator", "{entry}");

    // Sessions and chat: the reply streams in and ends whole.
    show(&mut page, "sessions");
    page.eval(
        "window.seen = [];
         new MutationObserver(() => {
           const t = document.querySelector('#chat-log .turn[data-role=assistant]:last-child .text');
           if (t) seen.push(t.textContent);
         }).observe(document.querySelector('#chat-log'),
                    {subtree: true, childList: true, characterData: true});",
    )
    .unwrap();
    page.type_into("#chat-input", "hi").unwrap();
    page.press_enter().unwrap();
    let reply = page
        .wait_for(
            "document.querySelector('#chat-log .turn[data-role=assistant][data-state=done] .text')?.textContent",
            WAIT,
        )
        .expect("the reply, whole");
    assert_eq!(reply, "Hello from the fake model.");
    let turns = text(&mut page, "document.querySelector('#chat-log').innerText");
    assert!(turns.contains("hi"), "{turns}");
    let seen = page.eval("seen").unwrap();
    assert!(
        seen.as_array().unwrap().iter().any(|t| {
            let t = t.as_str().unwrap_or_default();
            !t.is_empty() && t.len() < reply.as_str().unwrap().len()
        }),
        "no partial text was shown while streaming: {seen}"
    );
    assert_eq!(
        text(
            &mut page,
            "document.querySelector('#chat-status').textContent"
        ),
        "idle"
    );
    page.wait_for(
        "(document.querySelector(\"#sessions-list [data-session-key='agent:main:main']\")
            ?.textContent || '').match(/fake-model · \\d+ tokens$/)",
        WAIT,
    )
    .expect("the session listed, its run over");
    page.screenshot(&shots.join("chat.png")).unwrap();

    // Logs: the tail of the gateway's own log file.
    show(&mut page, "logs");
    page.wait_for(
        "[...document.querySelectorAll('#log-lines div')].some((l) => l.textContent.includes('client connected'))",
        WAIT,
    )
    .expect("log lines");
    page.screenshot(&shots.join("logs.png")).unwrap();

    let problems: Vec<String> = page
        .console()
        .into_iter()
        .filter(|l| l.starts_with("error:") || l.starts_with("exception:"))
        .collect();
    assert!(problems.is_empty(), "console: {problems:?}");
}
