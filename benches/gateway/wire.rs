//! The client side of the wire: the real handshake through tungstenite
//! (upgrade, `connect.challenge`, `connect`, `hello-ok`), then a raw
//! connection that writes masked frames and parses the server's unmasked
//! ones by hand, so the measuring client costs as little CPU as possible.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the gateway is and how to get in.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub token: String,
}

pub type Ws = WebSocket<TcpStream>;

/// Connects and completes the handshake as client id "cli" in `mode`.
/// Returns the socket and `hello-ok`'s `server.version`.
pub fn handshake(t: &Target, mode: &str, scopes: &[&str]) -> Result<(Ws, String), String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let params = json!({
        "minProtocol": 3, "maxProtocol": 4,
        "client": {"id": "cli", "mode": mode, "version": "bench", "platform": "linux",
                   "instanceId": format!("bench-{}-{n}", std::process::id())},
        "role": "operator", "scopes": scopes, "caps": [],
        "auth": {"token": t.token},
    });
    let (ws, hello) = handshake_with(t, params, |_, _| None)?;
    let version = hello["server"]["version"].as_str().unwrap_or("?");
    Ok((ws, version.to_string()))
}

/// Connects and completes the handshake with these `connect` params (a
/// node's, say); `device` may add a `device` block signed over the
/// params and the challenge's payload. Returns the socket and `hello-ok`.
pub fn handshake_with(
    t: &Target,
    mut params: Value,
    device: impl FnOnce(&Value, &Value) -> Option<Value>,
) -> Result<(Ws, Value), String> {
    let stream =
        TcpStream::connect_timeout(&t.addr, IO_TIMEOUT).map_err(|e| format!("tcp: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|_| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|_| stream.set_nodelay(true))
        .map_err(|e| e.to_string())?;
    // 128 KiB of read buffer (the default) would be zero-filled per socket.
    let cfg = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let url = format!("ws://{}/", t.addr);
    let (mut ws, _) = tungstenite::client::client_with_config(url.as_str(), stream, Some(cfg))
        .map_err(|e| format!("upgrade: {e}"))?;
    let challenge = read_json(&mut ws)?;
    if challenge["event"] != "connect.challenge" {
        return Err(format!("expected connect.challenge, got {challenge}"));
    }
    if challenge["payload"]["nonce"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err("challenge without nonce".into());
    }
    if let Some(block) = device(&params, &challenge["payload"]) {
        params["device"] = block;
    }
    let connect = json!({"type": "req", "id": "c1", "method": "connect", "params": params});
    ws.send(Message::text(connect.to_string()))
        .map_err(|e| format!("send connect: {e}"))?;
    loop {
        let mut v = read_json(&mut ws)?;
        if v["type"] == "res" && v["id"] == "c1" {
            if v["ok"] != true {
                return Err(format!("connect refused: {}", v["error"]));
            }
            return Ok((ws, v["payload"].take()));
        }
    }
}

fn read_json(ws: &mut Ws) -> Result<Value, String> {
    for _ in 0..64 {
        match ws.read().map_err(|e| format!("read: {e}"))? {
            Message::Text(t) => {
                return serde_json::from_str(t.as_str()).map_err(|e| format!("bad json: {e}"))
            }
            Message::Close(c) => return Err(format!("closed by gateway: {c:?}")),
            _ => {}
        }
    }
    Err("no text frame in 64 frames".into())
}

/// Sends a close frame (no code, as the stock CLI does) and drops the socket.
pub fn close(mut ws: Ws) {
    let _ = ws.close(None);
    let _ = ws.flush();
}

/// A handshaken connection driven by hand. tungstenite has already read
/// everything up to `hello-ok`; a `cli`-mode client gets nothing else
/// unprompted but presence broadcasts and ticks, which the frame parser
/// skips, and a lost partial frame shows up as a parse error, not as a
/// wrong figure.
pub struct RawConn {
    pub s: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    n: u64,
}

impl RawConn {
    pub fn new(ws: Ws) -> RawConn {
        RawConn {
            s: ws.into_inner(),
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            out: Vec::with_capacity(256),
            n: 0,
        }
    }

    /// One masked text frame, written with one write(2).
    pub fn send_text(&mut self, text: &[u8]) -> io::Result<()> {
        self.n += 1;
        let mask = (self.n as u32).wrapping_mul(0x9E37_79B1).to_be_bytes();
        self.out.clear();
        self.out.push(0x81);
        let len = text.len();
        if len < 126 {
            self.out.push(0x80 | len as u8);
        } else if len < 65536 {
            self.out.push(0x80 | 126);
            self.out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.out.push(0x80 | 127);
            self.out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.out.extend_from_slice(&mask);
        self.out
            .extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        self.s.write_all(&self.out)
    }

    /// Sends `{"type":"req","id":"b<n>","method":m[,"params":p]}` and reads
    /// frames until the matching `res`; Err if it is not `ok:true`.
    pub fn call(&mut self, method: &str, params: Option<&str>) -> Result<(), String> {
        let id = self.send_req(method, params)?;
        self.wait_res(&id, method)
    }

    /// Sends a request without waiting; returns its id.
    pub fn send_req(&mut self, method: &str, params: Option<&str>) -> Result<String, String> {
        let id = format!("b{}", self.n + 1);
        let req = match params {
            Some(p) => format!(r#"{{"type":"req","id":"{id}","method":"{method}","params":{p}}}"#),
            None => format!(r#"{{"type":"req","id":"{id}","method":"{method}"}}"#),
        };
        self.send_text(req.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        Ok(id)
    }

    /// Reads frames until the `res` to `id`, skipping events.
    pub fn wait_res(&mut self, id: &str, method: &str) -> Result<(), String> {
        let pat = format!(r#""id":"{id}""#);
        for _ in 0..10_000 {
            let r = self.next_text()?;
            let frame = &self.buf[r];
            let Some(at) = find(frame, pat.as_bytes()) else {
                continue;
            };
            let after = &frame[at + pat.len()..];
            // `ok` follows `id` in both serde_json's sorted keys and the
            // reference gateway's insertion order; anything else is parsed.
            if after.starts_with(br#","ok":true"#) {
                return Ok(());
            }
            let v: Value = serde_json::from_slice(frame).map_err(|e| format!("bad json: {e}"))?;
            if v["type"] == "res" && v["id"] == id {
                return match v["ok"] == true {
                    true => Ok(()),
                    false => Err(format!("{method} failed: {}", v["error"])),
                };
            }
        }
        Err(format!("no response to {method} in 10,000 frames"))
    }

    /// The next text frame, as JSON.
    pub fn next_json(&mut self) -> Result<Value, String> {
        let r = self.next_text()?;
        serde_json::from_slice(&self.buf[r]).map_err(|e| format!("bad json: {e}"))
    }

    /// The payload range (in `self.buf`) of the next text frame.
    fn next_text(&mut self) -> Result<Range<usize>, String> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some((op, hdr, len)) = parse_header(avail)? {
                let total = hdr + len;
                if avail.len() >= total {
                    let r = self.start + hdr..self.start + total;
                    self.start += total;
                    match op {
                        1 => return Ok(r),
                        8 => return Err("closed by gateway".into()),
                        _ => continue,
                    }
                }
                if total > self.buf.len() {
                    self.buf.resize(total.next_power_of_two(), 0);
                }
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> Result<(), String> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() || self.start > self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        match self.s.read(&mut self.buf[self.end..]) {
            Ok(0) => Err("connection closed by gateway".into()),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }
}

/// (opcode, header length, payload length) of a server frame, None when
/// more bytes are needed.
fn parse_header(b: &[u8]) -> Result<Option<(u8, usize, usize)>, String> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] & 0x70 != 0 || b[1] & 0x80 != 0 {
        return Err(format!("bad frame header {:02x} {:02x}", b[0], b[1]));
    }
    if b[0] & 0x80 == 0 {
        return Err("fragmented frame (not expected from the gateway)".into());
    }
    let op = b[0] & 0x0f;
    Ok(match b[1] & 0x7f {
        126 if b.len() < 4 => None,
        126 => Some((op, 4, u16::from_be_bytes([b[2], b[3]]) as usize)),
        127 if b.len() < 10 => None,
        127 => {
            let len = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
            if len > 64 << 20 {
                return Err(format!("frame of {len} bytes"));
            }
            Some((op, 10, len as usize))
        }
        n => Some((op, 2, n as usize)),
    })
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let at = i + hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        if &hay[at..at + needle.len()] == needle {
            return Some(at);
        }
        i = at + 1;
    }
    None
}
