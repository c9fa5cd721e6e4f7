//! A real headless Chromium against a real clawgate, driven over the
//! DevTools protocol (`util::cdp`): these tests check the harness itself
//! (pages load, JavaScript runs, input reaches the page, screenshots are
//! PNGs) and that a page served by the gateway can open its WebSocket.
//!
//! Chromium comes from $CLAWGATE_TEST_CHROMIUM, /usr/bin/chromium or PATH
//! (.ci/run installs it). Without it these tests fail under CI=true, where
//! they must run, and elsewhere say on stderr that they skipped.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::cdp::chromium_or_skip;
use crate::util::{run_with_timeout, text, Gateway, TempDir};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_browser_page_loads_the_gateway_health_endpoint() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let gw = Gateway::start();
    let mut page = browser.page().expect("new page");
    page.goto(&format!("http://127.0.0.1:{}/health", gw.port))
        .expect("load /health");
    let body = page.eval("document.body.innerText").expect("page text");
    let body = body.as_str().unwrap_or_default();
    assert!(body.contains(r#""ok":true"#), "{body}");
    assert_eq!(page.eval("document.readyState").unwrap(), "complete");
}

#[test]
fn javascript_values_come_back_and_exceptions_become_errors() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let mut page = browser.page().expect("new page");
    assert_eq!(page.eval("1+1").unwrap(), 2);
    assert_eq!(
        page.eval("Promise.resolve({a: [1, 'x']})").unwrap(),
        json!({"a": [1, "x"]})
    );
    assert_eq!(page.eval("undefined").unwrap(), Value::Null);

    let err = page.eval("throw new Error('boom')").unwrap_err();
    assert!(err.contains("Error: boom"), "{err}");
    let err = page.eval("Promise.reject(new Error('later'))").unwrap_err();
    assert!(err.contains("later"), "{err}");

    page.eval("console.error('bad', 42); setTimeout(() => { window.done = 'yes'; }, 200)")
        .unwrap();
    assert_eq!(page.wait_for("window.done", WAIT).unwrap(), "yes");
    assert!(
        page.console().contains(&"error: bad 42".to_string()),
        "{:?}",
        page.console()
    );

    let err = page
        .wait_for("window.never", Duration::from_millis(300))
        .unwrap_err();
    for part in [
        "window.never",
        "last value: undefined",
        "about:blank",
        "error: bad 42",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
}

#[test]
fn clicks_typing_and_enter_reach_the_page() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let mut page = browser.page().expect("new page");
    page.eval(
        "document.body.innerHTML = '<input id=name><textarea id=note></textarea><div id=host></div>';
         window.seen = [];
         const field = document.getElementById('name');
         field.addEventListener('input', () => seen.push('input'));
         field.addEventListener('change', () => seen.push('change'));
         document.getElementById('note')
             .addEventListener('keydown', (e) => seen.push('key ' + e.key));
         const root = document.getElementById('host').attachShadow({mode: 'open'});
         root.innerHTML = '<button id=deep>go</button>';
         root.getElementById('deep').onclick = () => seen.push('click');",
    )
    .unwrap();

    page.type_into("#name", "ada").unwrap();
    assert_eq!(
        page.eval("document.getElementById('name').value").unwrap(),
        "ada"
    );
    page.click("#deep").unwrap();
    page.focus("#note").unwrap();
    page.insert_text("hello").unwrap();
    page.press_enter().unwrap();
    page.insert_text("world").unwrap();
    assert_eq!(
        page.eval("document.getElementById('note').value").unwrap(),
        "hello\nworld"
    );
    assert_eq!(
        page.eval("seen").unwrap(),
        json!(["input", "change", "click", "key Enter"])
    );

    let err = page.click("#missing").unwrap_err();
    assert!(err.contains("no element matches '#missing'"), "{err}");
}

#[test]
fn a_screenshot_is_a_png_file() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let gw = Gateway::start();
    let mut page = browser.page().expect("new page");
    page.goto(&format!("http://127.0.0.1:{}/health", gw.port))
        .unwrap();
    let dir = TempDir::new();
    let file = dir.path().join("health.png");
    page.screenshot(&file).expect("screenshot");
    let png = std::fs::read(&file).unwrap();
    assert!(png.len() > 100, "{} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn a_page_on_the_gateway_origin_reaches_its_websocket() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let gw = Gateway::start();
    let mut page = browser.page().expect("new page");
    page.goto(&format!("http://127.0.0.1:{}/health", gw.port))
        .unwrap();
    let first = page
        .eval(&format!(
            "new Promise((resolve, reject) => {{
               const ws = new WebSocket('ws://127.0.0.1:{}/');
               ws.onmessage = (e) => {{ resolve(e.data); ws.close(); }};
               ws.onclose = (e) => reject(new Error('closed: ' + e.code + ' ' + e.reason));
               setTimeout(() => reject(new Error('no frame within 10 s')), 10000);
             }})",
            gw.port
        ))
        .expect("first frame");
    let frame: Value = serde_json::from_str(first.as_str().unwrap_or_default()).unwrap();
    assert_eq!(frame["type"], "event", "{frame}");
    assert_eq!(frame["event"], "connect.challenge", "{frame}");
    assert!(frame["payload"]["nonce"].is_string(), "{frame}");
}

/// The rule in chromium_or_skip, checked on this very test binary: with no
/// chromium a browser test fails under CI=true and skips visibly elsewhere.
#[test]
fn without_chromium_the_browser_tests_fail_in_ci_and_skip_visibly_elsewhere() {
    const TEST: &str = "browser::javascript_values_come_back_and_exceptions_become_errors";
    let run = |ci: Option<&str>| {
        let mut c = Command::new(std::env::current_exe().expect("test binary"));
        c.args(["--exact", TEST, "--test-threads=1"])
            .env("CLAWGATE_TEST_CHROMIUM", "/nonexistent/chromium")
            .env_remove("CI")
            .stdin(Stdio::null());
        if let Some(v) = ci {
            c.env("CI", v);
        }
        run_with_timeout(c, Duration::from_secs(60))
    };
    let out = run(Some("true"));
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("the browser tests must run in CI"),
        "{}",
        text(&out.stdout)
    );
    for ci in [None, Some("false")] {
        let out = run(ci);
        assert!(out.status.success(), "{ci:?}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.contains("skipped: chromium not found") && err.contains(TEST),
            "{ci:?}: {err}"
        );
    }
}
