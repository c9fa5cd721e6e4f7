//! Rows 18a–18b: the Control UI over plain HTTP. 18a: requests per
//! second for one 100 KiB fingerprinted asset (`assets/x-<hash>.js` in a
//! temp UI root), over 16 kept-alive connections for a few seconds: the
//! file path, its cache headers and the `sendfile` copy per request. 18b:
//! the size of the built-in page, as `GET /` answers it without a root.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::procs::{self, Gateway, TempDir};
use crate::report::{thousands, Met, Table};

const ASSET: &str = "assets/x-AbCd1234.js";
const ASSET_BYTES: usize = 100 * 1024;
const CONNECTIONS: usize = 16;
const W18A: &str = "static asset: 100 KiB hashed .js, 16 keep-alive connections";
const W18B: &str = "built-in control page (GET / without a root)";

/// The compiled-in page, to say whether `GET /` served it.
const BUILTIN: &str = include_str!("../../src/http/ui/builtin.html");

pub fn rows(t: &mut Table, builtin_at: Option<SocketAddr>, quick: bool) {
    let secs = if quick { 2 } else { 5 };
    let r = asset_rate(Duration::from_secs(secs));
    t.add("18a", W18A, "—", r.unwrap_or_else(|e| (e, Met::No)));
    match builtin_at {
        None => t.na("18b", W18B, "—", crate::EXT),
        Some(addr) => {
            let r = get(addr, "/").map(|(status, body)| {
                let same = if body == BUILTIN.len() {
                    "= builtin.html as compiled"
                } else {
                    "DIFFERS from builtin.html as compiled"
                };
                let res = format!("{} B, HTTP {status} ({same})", thousands(body as u64));
                (res, Met::of(status == 200 && body == BUILTIN.len()))
            });
            t.add("18b", W18B, "—", r.unwrap_or_else(|e| (e, Met::No)));
        }
    }
}

/// A gateway serving a UI root with one 100 KiB asset, hammered by
/// `CONNECTIONS` clients for `run`.
fn asset_rate(run: Duration) -> Result<(String, Met), String> {
    let root = TempDir::new("ui")?;
    std::fs::create_dir_all(root.0.join("assets")).map_err(|e| e.to_string())?;
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(root.0.join(name), bytes).map_err(|e| format!("'{name}': {e}"))
    };
    write("index.html", b"<!doctype html><html><body></body></html>")?;
    write(ASSET, &vec![b'x'; ASSET_BYTES])?;
    let config = format!(
        r#"{{"gateway":{{"mode":"local","limits":{{"maxConnections":4096,"maxUnauthPerIp":4096}},
            "controlUi":{{"root":{}}}}}}}"#,
        serde_json::json!(root.0)
    );
    let gw = Gateway::start_with(Path::new(procs::BIN), &config)?;
    let addr = gw.addr();
    // One request first, so a broken setup says why.
    let (status, len) = get(addr, &format!("/{ASSET}"))?;
    if status != 200 || len != ASSET_BYTES {
        return Err(format!("GET /{ASSET}: HTTP {status}, {len} bytes"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = Conn::open(addr)?;
                while !stop.load(Ordering::Relaxed) {
                    let (status, len) = c.get(&format!("/{ASSET}"))?;
                    if status != 200 || len != ASSET_BYTES {
                        return Err(format!("HTTP {status}, {len} bytes"));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    let mut failed = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed.push(e),
            Err(_) => failed.push("a client thread panicked".into()),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let mib = n as f64 * ASSET_BYTES as f64 / (1024.0 * 1024.0) / secs;
    let mut res = format!(
        "{:.0} requests/s ({} in {secs:.1} s, {mib:.0} MiB/s)",
        n as f64 / secs,
        thousands(n)
    );
    if let Some(first) = failed.first() {
        res.push_str(&format!("; {} clients FAILED: {first}", failed.len()));
        return Ok((res, Met::No));
    }
    Ok((res, Met::Na))
}

/// One request on its own connection: (status, body length).
fn get(addr: SocketAddr, path: &str) -> Result<(u16, usize), String> {
    Conn::open(addr)?.get(path)
}

/// A kept-alive HTTP/1.1 connection that reads each answer whole.
struct Conn {
    r: BufReader<TcpStream>,
    addr: SocketAddr,
    body: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Result<Conn, String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Conn {
            r: BufReader::with_capacity(64 * 1024, s),
            addr,
            body: Vec::new(),
        })
    }

    fn get(&mut self, path: &str) -> Result<(u16, usize), String> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
        let io = |e: std::io::Error| format!("GET {path}: {e}");
        self.r.get_mut().write_all(req.as_bytes()).map_err(io)?;
        let mut line = String::new();
        self.r.read_line(&mut line).map_err(io)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("GET {path}: bad status line {line:?}"))?;
        let mut len = 0;
        loop {
            line.clear();
            if self.r.read_line(&mut line).map_err(io)? == 0 {
                return Err(format!("GET {path}: closed in the head"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().map_err(|_| format!("bad length {v:?}"))?;
                }
            }
        }
        self.body.resize(len, 0);
        self.r.read_exact(&mut self.body).map_err(io)?;
        Ok((status, len))
    }
}
