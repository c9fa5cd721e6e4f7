//! A fake OpenAI-compatible model server for the agent-run tests: it
//! listens on a free loopback port, answers `POST …/chat/completions` with
//! one scripted behaviour (a streamed reply, a stall, a stream cut short,
//! an error status), and records what the gateway sent (each request's
//! JSON body and headers) and how many connections are open, so a test can
//! check the messages, the model, the key, and that an abort closed the
//! upstream connection.
//!
//! Every read has a timeout, every wait a cap, and dropping the server
//! stops it; nothing here can hang a test.

// used by the agent-run tests
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How the server answers every chat completions request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Streams each piece as a content delta, `gap_ms` apart, then the
    /// finish (`stop`), a usage chunk and `data: [DONE]`.
    Reply { pieces: Vec<String>, gap_ms: u64 },
    /// Sends the head and [`FIRST_PIECE`], then writes nothing more until
    /// the client goes away (or [`STALL_CAP`] passes).
    Stall,
    /// Sends [`FIRST_PIECE`], then closes without a finish or `[DONE]`.
    FailMidStream,
    /// Answers this status with this body (JSON when it starts with `{`).
    Status(u16, String),
}

/// The one piece `Stall` and `FailMidStream` send before they misbehave.
pub const FIRST_PIECE: &str = "thinking";
/// The `prompt_tokens` a `Reply` reports; `completion_tokens` is the
/// number of pieces.
pub const PROMPT_TOKENS: u64 = 12;
/// The longest a stalled answer holds its connection.
pub const STALL_CAP: Duration = Duration::from_secs(30);
/// How long reading one request may take.
const REQUEST_WAIT: Duration = Duration::from_secs(5);
/// The largest request read; a bigger one is answered 413.
const MAX_REQUEST: usize = 4 * 1024 * 1024;
const SLICE: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Seen {
    requests: Vec<Value>,
    headers: Vec<HashMap<String, String>>,
}

struct Shared {
    behaviour: Behaviour,
    seen: Mutex<Seen>,
    open: AtomicUsize,
    served: AtomicUsize,
    stop: AtomicBool,
}

impl Shared {
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps `d` in short steps; false when the server was stopped.
    fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stopped() {
                return false;
            }
            thread::sleep(SLICE.min(until - Instant::now()));
        }
        !self.stopped()
    }
}

pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeOpenAi {
    pub fn start(behaviour: Behaviour) -> FakeOpenAi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake model server");
        let addr = listener.local_addr().expect("its address");
        listener.set_nonblocking(true).expect("a polling listener");
        let shared = Arc::new(Shared {
            behaviour,
            seen: Mutex::default(),
            open: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        let acceptor = thread::Builder::new()
            .name("fake-openai".into())
            .spawn(move || accept(listener, sh))
            .expect("spawn the fake model server");
        FakeOpenAi {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// What a provider's `baseUrl` is set to.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The JSON body of each chat completions request, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.seen().requests.clone()
    }

    /// The headers of each request (names lowercased), in arrival order.
    pub fn headers(&self) -> Vec<HashMap<String, String>> {
        self.shared.seen().headers.clone()
    }

    /// Clients connected right now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Waits up to `within` for `n` requests; the ones seen by then.
    pub fn wait_requests(&self, n: usize, within: Duration) -> Vec<Value> {
        let until = Instant::now() + within;
        while self.shared.seen().requests.len() < n && Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
        }
        self.requests()
    }

    /// Waits up to `within` for every client to have gone; whether they did.
    pub fn wait_closed(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while self.open_connections() > 0 && Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
        }
        self.open_connections() == 0
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Counts a connection as open for as long as its thread holds this.
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    // Runs until the server is dropped (the test binary's watchdog caps
    // that); each pass waits 5 ms at most.
    while !shared.stopped() {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.open.fetch_add(1, Ordering::AcqRel);
                let open = Open(shared.clone());
                let _ = thread::Builder::new()
                    .name("fake-openai-conn".into())
                    .spawn(move || serve(stream, &open.0));
            }
            // Nobody waiting, or a client gone before it was taken.
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A request as read: method, path, headers (lowercased names), body.
type Request = (String, String, HashMap<String, String>, Vec<u8>);

/// Reads one request within [`REQUEST_WAIT`]; `None` if the client went
/// away, sent garbage or took too long.
fn read_request(s: &mut TcpStream, shared: &Shared) -> Option<Request> {
    let until = Instant::now() + REQUEST_WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < until && !shared.stopped() && got.len() <= MAX_REQUEST {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut slots);
        if let Ok(httparse::Status::Complete(len)) = req.parse(&got) {
            let headers: HashMap<String, String> = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).to_string(),
                    )
                })
                .collect();
            let want = headers
                .get("content-length")
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= len + want {
                let body = got[len..len + want].to_vec();
                let method = req.method.unwrap_or("").to_string();
                let path = req.path.unwrap_or("").to_string();
                return Some((method, path, headers, body));
            }
        }
        match s.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
    None
}

fn serve(mut s: TcpStream, shared: &Shared) {
    if s.set_nonblocking(false).is_err()
        || s.set_read_timeout(Some(SLICE)).is_err()
        || s.set_write_timeout(Some(Duration::from_secs(5))).is_err()
    {
        return;
    }
    let _ = s.set_nodelay(true);
    let Some((method, path, headers, body)) = read_request(&mut s, shared) else {
        return;
    };
    if method != "POST"
        || !path
            .split('?')
            .next()
            .unwrap_or("")
            .ends_with("/chat/completions")
    {
        let _ = s.write_all(&status_answer(404, r#"{"error":{"message":"not found"}}"#));
        return;
    }
    let body: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    let model = body["model"].as_str().unwrap_or("fake-model").to_string();
    {
        let mut seen = shared.seen();
        seen.requests.push(body);
        seen.headers.push(headers);
    }
    let n = shared.served.fetch_add(1, Ordering::AcqRel) + 1;
    let mut sse = Sse {
        s,
        id: format!("chatcmpl-fake-{n}"),
        model,
    };
    // A write that fails means the client went away: the answer just ends.
    match &shared.behaviour {
        Behaviour::Status(code, text) => {
            let _ = sse.s.write_all(&status_answer(*code, text));
        }
        Behaviour::Reply { pieces, gap_ms } => {
            let _ = reply(&mut sse, pieces, *gap_ms, shared);
        }
        Behaviour::Stall => {
            if sse.start().is_ok() && sse.delta(FIRST_PIECE).is_ok() {
                hold(&mut sse.s, shared);
            }
        }
        Behaviour::FailMidStream => {
            let _ = sse.start().and_then(|_| sse.delta(FIRST_PIECE));
        }
    }
}

fn reply(sse: &mut Sse, pieces: &[String], gap_ms: u64, shared: &Shared) -> std::io::Result<()> {
    sse.start()?;
    for piece in pieces {
        if !shared.pause(Duration::from_millis(gap_ms)) {
            return Ok(());
        }
        sse.delta(piece)?;
    }
    sse.event(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))?;
    let output = pieces.len() as u64;
    sse.event(json!({"choices": [], "usage": {
        "prompt_tokens": PROMPT_TOKENS, "completion_tokens": output, "total_tokens": PROMPT_TOKENS + output}}))?;
    sse.chunk("data: [DONE]\n\n")?;
    sse.chunk("")
}

/// Keeps the connection open, reading (and dropping) whatever comes,
/// until the client closes it, the server stops, or [`STALL_CAP`].
fn hold(s: &mut TcpStream, shared: &Shared) {
    let until = Instant::now() + STALL_CAP;
    let mut buf = [0u8; 1024];
    while Instant::now() < until && !shared.stopped() {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// One streamed answer: chunked SSE of `chat.completion.chunk` events.
struct Sse {
    s: TcpStream,
    id: String,
    model: String,
}

impl Sse {
    /// The head and the first chunk, which names the role as OpenAI's does.
    fn start(&mut self) -> std::io::Result<()> {
        self.s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )?;
        self.event(json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}))
    }

    fn delta(&mut self, text: &str) -> std::io::Result<()> {
        self.event(
            json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]}),
        )
    }

    /// One `chat.completion.chunk`, given its `choices` (and `usage`).
    fn event(&mut self, mut fields: Value) -> std::io::Result<()> {
        fields["id"] = json!(self.id);
        fields["object"] = json!("chat.completion.chunk");
        fields["created"] = json!(1_700_000_000);
        fields["model"] = json!(self.model);
        self.chunk(&format!("data: {fields}\n\n"))
    }

    fn chunk(&mut self, data: &str) -> std::io::Result<()> {
        write!(self.s, "{:x}\r\n{data}\r\n", data.len())?;
        self.s.flush()
    }
}

fn status_answer(code: u16, body: &str) -> Vec<u8> {
    let reason = match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let kind = match body.trim_start().starts_with('{') {
        true => "application/json",
        false => "text/plain",
    };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
