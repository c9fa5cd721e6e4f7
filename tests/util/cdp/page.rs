//! One browser tab over its own DevTools websocket: navigation, JavaScript,
//! input, screenshots, and the console output and events that arrive while
//! the tests wait for answers. Every read is bounded by a deadline set on
//! the socket, so a renderer that stops answering fails the call instead
//! of hanging the test.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use super::{devtools_http, LIMIT};

/// Console lines and unclaimed events kept per page; older ones are dropped.
const KEEP: usize = 1000;

/// One tab, over its own DevTools websocket.
pub struct Page {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Events no wait has claimed yet, oldest first.
    events: VecDeque<Value>,
    console: VecDeque<String>,
    port: u16,
    target: String,
}

impl Page {
    pub(super) fn attach(port: u16, target: &str, path: &str) -> Result<Page, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(LIMIT))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(LIMIT))
            .map_err(|e| e.to_string())?;
        let (ws, _) = tungstenite::client::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .map_err(|e| format!("devtools websocket '{path}': {e}"))?;
        let mut page = Page {
            ws,
            next_id: 1,
            events: VecDeque::new(),
            console: VecDeque::new(),
            port,
            target: target.to_string(),
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.call(domain, json!({}))?;
        }
        page.call("Page.setLifecycleEventsEnabled", json!({"enabled": true}))?;
        Ok(page)
    }

    /// Navigates and waits (20 s at most) for that document's load event.
    pub fn goto(&mut self, url: &str) -> Result<(), String> {
        let deadline = Instant::now() + LIMIT;
        let nav = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = nav["errorText"].as_str() {
            return Err(format!("navigating to '{url}': {e}"));
        }
        // No loader for a same-document navigation (a fragment): no load.
        let Some(loader) = nav["loaderId"].as_str().map(str::to_string) else {
            return Ok(());
        };
        // The load of this navigation's document, not of the one before.
        self.wait_matching(&format!("the load of '{url}'"), deadline, |e| {
            e["method"] == "Page.lifecycleEvent"
                && e["params"]["name"] == "load"
                && e["params"]["loaderId"] == loader.as_str()
        })
        .map(drop)
    }

    /// The value of a JavaScript expression (a promise is awaited); a
    /// thrown exception is an Err with its text.
    pub fn eval(&mut self, js: &str) -> Result<Value, String> {
        self.evaluate(js, Instant::now() + LIMIT)
            .map(|r| value_of(&r))
    }

    /// Evaluates `js_condition` every 100 ms until it is truthy and returns
    /// that value. Exceptions count as not yet.
    pub fn wait_for(&mut self, js_condition: &str, limit: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + limit;
        let last = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let call_deadline = Instant::now() + (left + Duration::from_secs(1)).min(LIMIT);
            let last = match self.evaluate(js_condition, call_deadline) {
                Ok(r) if truthy(&r) => return Ok(value_of(&r)),
                Ok(r) if r["type"] == "undefined" => "undefined".to_string(),
                Ok(r) => value_of(&r).to_string(),
                Err(e) => e,
            };
            if left.is_zero() {
                break last;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        };
        let url = match self.evaluate("location.href", Instant::now() + Duration::from_secs(2)) {
            Ok(r) => value_of(&r).as_str().unwrap_or("?").to_string(),
            Err(e) => format!("(unknown: {e})"),
        };
        let errors: Vec<&String> = self
            .console
            .iter()
            .filter(|l| {
                ["error:", "assert:", "exception:"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        Err(format!(
            "`{js_condition}` not true within {limit:?}; last value: {last}; page: {url}; \
             console errors: {errors:?}"
        ))
    }

    /// Clicks the first element matching `css_selector` (looked up in the
    /// document, then inside open shadow roots).
    pub fn click(&mut self, css_selector: &str) -> Result<(), String> {
        self.on_element(css_selector, "el.click();")
    }

    /// Focuses the first element matching `css_selector`.
    pub fn focus(&mut self, css_selector: &str) -> Result<(), String> {
        self.on_element(css_selector, "el.focus();")
    }

    /// Sets an input's or textarea's value and fires `input` and `change`.
    /// The native setter is used so React sees the change too.
    pub fn type_into(&mut self, css_selector: &str, text: &str) -> Result<(), String> {
        let body = format!(
            "el.focus();
             const text = {text};
             const native = [HTMLInputElement, HTMLTextAreaElement, HTMLSelectElement]
                 .find((c) => el instanceof c);
             const set = native && Object.getOwnPropertyDescriptor(native.prototype, 'value').set;
             if (set) set.call(el, text); else el.value = text;
             el.dispatchEvent(new Event('input', {{bubbles: true, composed: true}}));
             el.dispatchEvent(new Event('change', {{bubbles: true}}));",
            text = json!(text)
        );
        self.on_element(css_selector, &body)
    }

    /// Types `text` into the focused element as the keyboard would
    /// (Input.insertText), for components that ignore a set value.
    pub fn insert_text(&mut self, text: &str) -> Result<(), String> {
        self.call("Input.insertText", json!({"text": text}))
            .map(drop)
    }

    /// Presses and releases Enter in the focused element.
    pub fn press_enter(&mut self) -> Result<(), String> {
        let key = |kind: &str| {
            let mut k = json!({
                "type": kind, "key": "Enter", "code": "Enter",
                "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
            });
            if kind == "keyDown" {
                k["text"] = "\r".into();
                k["unmodifiedText"] = "\r".into();
            }
            k
        };
        self.call("Input.dispatchKeyEvent", key("keyDown"))?;
        self.call("Input.dispatchKeyEvent", key("keyUp")).map(drop)
    }

    /// Writes a PNG of the viewport to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Result<(), String> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = r["data"].as_str().ok_or("screenshot without data")?;
        let png = data_encoding::BASE64
            .decode(data.as_bytes())
            .map_err(|e| format!("screenshot data: {e}"))?;
        std::fs::write(path, png).map_err(|e| format!("'{}': {e}", path.display()))
    }

    /// Console messages and uncaught exceptions so far, as "level: text".
    pub fn console(&self) -> Vec<String> {
        self.console.iter().cloned().collect()
    }

    /// The params of the first event named `method` not yet claimed, waiting
    /// up to `limit` for one.
    pub fn wait_event(&mut self, method: &str, limit: Duration) -> Result<Value, String> {
        self.wait_matching(method, Instant::now() + limit, |e| e["method"] == method)
    }

    /// Runs `body` with `el` bound to the element; Err when none matches.
    fn on_element(&mut self, css_selector: &str, body: &str) -> Result<(), String> {
        let js = format!(
            "(() => {{
               const sel = {sel};
               const find = (root) => {{
                 const hit = root.querySelector(sel);
                 if (hit) return hit;
                 for (const host of root.querySelectorAll('*')) {{
                   const inner = host.shadowRoot && find(host.shadowRoot);
                   if (inner) return inner;
                 }}
                 return null;
               }};
               const el = find(document);
               if (!el) return false;
               {body}
               return true;
             }})()",
            sel = json!(css_selector)
        );
        match self.eval(&js)? {
            Value::Bool(true) => Ok(()),
            _ => Err(format!("no element matches '{css_selector}'")),
        }
    }

    /// Runtime.evaluate; the RemoteObject of the result.
    fn evaluate(&mut self, js: &str, deadline: Instant) -> Result<Value, String> {
        let params = json!({"expression": js, "returnByValue": true, "awaitPromise": true});
        let mut r = self.call_until("Runtime.evaluate", params, deadline)?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(exception_text(ex));
        }
        Ok(r["result"].take())
    }

    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.call_until(method, params, Instant::now() + LIMIT)
    }

    /// Sends a command and reads until its answer, keeping the events that
    /// come first. Answers to earlier calls that timed out are dropped.
    fn call_until(
        &mut self,
        method: &str,
        params: Value,
        deadline: Instant,
    ) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let cmd = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(Message::text(cmd.to_string()))
            .map_err(|e| format!("{method}: {e}"))?;
        loop {
            let mut m = self.recv(deadline).map_err(|e| format!("{method}: {e}"))?;
            if m.get("method").is_some() {
                self.keep(m);
            } else if m["id"] == id {
                if let Some(e) = m.get("error") {
                    return Err(format!("{method}: {}", e["message"]));
                }
                return Ok(m["result"].take());
            }
        }
    }

    /// The first kept or arriving event that `pred` accepts, claimed; the
    /// others are kept.
    fn wait_matching(
        &mut self,
        what: &str,
        deadline: Instant,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        if let Some(i) = self.events.iter().position(&pred) {
            let mut e = self.events.remove(i).expect("position is in range");
            return Ok(e["params"].take());
        }
        loop {
            let mut m = self
                .recv(deadline)
                .map_err(|e| format!("waiting for {what}: {e}"))?;
            if pred(&m) {
                return Ok(m["params"].take());
            }
            if m.get("method").is_some() {
                self.keep(m);
            }
        }
    }

    /// The next message, or Err at the deadline or when the socket ends.
    fn recv(&mut self, deadline: Instant) -> Result<Value, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timed out".into());
            }
            self.ws
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str()).map_err(|e| format!("{e}: {t}"))
                }
                Ok(Message::Close(f)) => return Err(format!("devtools closed the page: {f:?}")),
                Ok(_) => {}
                // A timed-out read leaves tungstenite able to resume.
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Files an event: console output in `console`, the rest in `events`.
    fn keep(&mut self, mut event: Value) {
        let p = event["params"].take();
        let line = match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .map(|a| a.iter().map(remote_text).collect())
                    .unwrap_or_default();
                format!(
                    "{}: {}",
                    p["type"].as_str().unwrap_or("log"),
                    args.join(" ")
                )
            }
            Some("Runtime.exceptionThrown") => {
                format!("exception: {}", exception_text(&p["exceptionDetails"]))
            }
            Some("Log.entryAdded") => {
                let e = &p["entry"];
                let mut line = format!(
                    "{}: {}",
                    e["level"].as_str().unwrap_or("log"),
                    e["text"].as_str().unwrap_or("")
                );
                if let Some(url) = e["url"].as_str() {
                    line.push_str(&format!(" ({url})"));
                }
                line
            }
            _ => {
                event["params"] = p;
                push_bounded(&mut self.events, event);
                return;
            }
        };
        push_bounded(&mut self.console, line);
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = devtools_http(self.port, &format!("/json/close/{}", self.target));
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() >= KEEP {
        q.pop_front();
    }
    q.push_back(item);
}

/// The JSON value of a RemoteObject; NaN, Infinity, -0 and bigints as
/// strings, undefined and unserializable objects as null.
fn value_of(r: &Value) -> Value {
    match (r.get("value"), r["unserializableValue"].as_str()) {
        (Some(v), _) => v.clone(),
        (None, Some(u)) => Value::String(u.to_string()),
        (None, None) => Value::Null,
    }
}

/// JavaScript's truthiness of a RemoteObject.
fn truthy(r: &Value) -> bool {
    let unserializable = r["unserializableValue"].as_str();
    match r["type"].as_str() {
        Some("undefined") => false,
        Some("object") => r["subtype"] != "null",
        Some("boolean") => r["value"] == true,
        Some("string") => r["value"].as_str().is_some_and(|s| !s.is_empty()),
        Some("number") => match unserializable {
            Some(u) => u != "NaN" && u != "-0",
            None => r["value"].as_f64().is_some_and(|n| n != 0.0),
        },
        Some("bigint") => unserializable.is_some_and(|u| u != "0n"),
        _ => true,
    }
}

/// A console argument as console.log would show it.
fn remote_text(r: &Value) -> String {
    match (
        &r["value"],
        r["unserializableValue"].as_str(),
        r["description"].as_str(),
    ) {
        (Value::String(s), _, _) => s.clone(),
        (Value::Null, Some(u), _) => u.to_string(),
        (Value::Null, None, Some(d)) => d.to_string(),
        (Value::Null, None, None) if r["type"] == "undefined" => "undefined".into(),
        (v, _, _) => v.to_string(),
    }
}

/// An exception's message with its stack when it has one.
fn exception_text(details: &Value) -> String {
    let ex = &details["exception"];
    match ex["description"].as_str() {
        Some(d) => d.to_string(),
        None => format!(
            "{} {}",
            details["text"].as_str().unwrap_or("exception"),
            remote_text(ex)
        ),
    }
}
