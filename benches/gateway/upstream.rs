//! A fake OpenAI-compatible upstream on loopback for the run rows: each
//! `POST …/chat/completions` is answered with an SSE stream of `pieces`
//! chunks `gap` apart, then a finish chunk and `[DONE]`. It notes when it
//! had read each request whole and when it wrote the first piece, so the
//! gateway's own share of the time to the first delta can be told from
//! the backend's. Bounded: a thread per connection, each answer finite,
//! every socket with timeouts.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When a request was read whole, and when the first piece was written.
pub type Marks = Arc<Mutex<Vec<(Instant, Instant)>>>;

pub struct Upstream {
    pub port: u16,
    pub marks: Marks,
}

impl Upstream {
    pub fn start(pieces: usize, gap: Duration) -> Result<Upstream, String> {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let marks: Marks = Arc::default();
        let m = marks.clone();
        std::thread::spawn(move || {
            for s in l.incoming().take(100_000) {
                let Ok(s) = s else { continue };
                let m = m.clone();
                std::thread::spawn(move || {
                    let _ = serve(s, pieces, gap, &m);
                });
            }
        });
        Ok(Upstream { port, marks })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

fn read_request(s: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = crate::wire::find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(());
            }
        }
        if buf.len() > 16 << 20 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

fn serve(mut s: TcpStream, pieces: usize, gap: Duration, marks: &Marks) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    read_request(&mut s)?;
    let got = Instant::now();
    let chunk = |text: &str| {
        format!(
            "data: {{\"id\":\"b\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
        )
    };
    let mut first = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
    );
    first.push_str(&chunk("w0 "));
    s.write_all(first.as_bytes())?;
    if let Ok(mut m) = marks.lock() {
        m.push((got, Instant::now()));
    }
    for i in 1..pieces {
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
        s.write_all(chunk(&format!("w{i} ")).as_bytes())?;
    }
    s.write_all(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    )?;
    s.write_all(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5,\"total_tokens\":10}}\n\ndata: [DONE]\n\n")?;
    Ok(())
}
