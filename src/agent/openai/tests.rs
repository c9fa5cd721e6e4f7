use super::*;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

const KEY: &str = "sk-test-secret-1234";

fn provider(base_url: &str, timeout: Duration) -> Provider {
    Provider {
        base_url: base_url.into(),
        api_key: Some(KEY.into()),
        headers: vec![("X-Org".into(), "lab".into())],
        timeout,
        trust: None,
    }
}

fn msgs() -> Vec<Message> {
    vec![
        Message {
            role: "system",
            text: "be brief".into(),
        },
        Message {
            role: "user",
            text: "hi".into(),
        },
    ]
}

/// Reads one request (head and `Content-Length` body) as text; bounded by
/// the socket's read timeout and 1 MiB.
fn read_request(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 1024 * 1024 {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(i) = text.find("\r\n\r\n") {
            let len = text[..i]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= i + 4 + len {
                return text;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).to_string()
}

/// A one-connection server on a loopback port: `script` gets the request
/// text and the socket. Accepting waits 5 s at most and every socket
/// read or write times out, so a failing test cannot hang.
fn serve(
    script: impl FnOnce(String, TcpStream) + Send + 'static,
) -> (String, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let h = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("no client came: {e}"),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let req = read_request(&mut s);
        script(req, s);
    });
    (format!("http://127.0.0.1:{port}/v1/"), h)
}

fn chunk(s: &mut TcpStream, data: &str) {
    let _ = write!(s, "{:x}\r\n{data}\r\n", data.len());
    let _ = s.flush();
}

const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

fn run(p: &Provider, cancel: &Cancel) -> (Vec<Piece>, Result<(), Failure>) {
    let mut got = Vec::new();
    let res = complete(p, "m1", &msgs(), Some(64), cancel, &mut |piece| {
        got.push(piece)
    });
    (got, res)
}

#[test]
fn a_streamed_reply_yields_its_pieces_in_order() {
    let (url, server) = serve(|req, mut s| {
        let _ = s.write_all(STREAM_HEAD.as_bytes());
        let first = r#"data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#;
        // SSE lines split across chunks, and chunks with several events.
        chunk(&mut s, &first[..30]);
        chunk(&mut s, &format!("{}\n\n: keep-alive\n\n", &first[30..]));
        chunk(&mut s, "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\ndata:{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n");
        chunk(
            &mut s,
            "\ndata: {\"id\":\"c1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        );
        chunk(&mut s, "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\ndata: [DONE]\n\n");
        chunk(&mut s, "");
        assert!(
            req.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(
            req.contains(&format!("\r\nAuthorization: Bearer {KEY}\r\n")),
            "{req}"
        );
        assert!(req.contains("\r\nAccept: text/event-stream\r\n"), "{req}");
        assert!(req.contains("\r\nX-Org: lab\r\n"), "{req}");
        let body: Value = serde_json::from_str(req.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["model"], "m1");
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "hi"})
        );
        assert_eq!(body["max_completion_tokens"], 64);
    });
    let (got, res) = run(&provider(&url, Duration::from_secs(5)), &Cancel::new());
    server.join().expect("server checks pass");
    assert_eq!(res, Ok(()));
    assert_eq!(
        got,
        [
            Piece::ResponseId("c1".into()),
            Piece::Text("Hel".into()),
            Piece::Text("lo".into()),
            Piece::Finish("stop".into()),
            Piece::Usage {
                input: 9,
                output: 2,
                total: 11
            },
        ]
    );
}

#[test]
fn cancel_during_a_stalled_stream_returns_cancelled_within_a_second() {
    let (closed_tx, closed_rx) = mpsc::channel();
    let (url, server) = serve(move |_, mut s| {
        let _ = s.write_all(STREAM_HEAD.as_bytes());
        chunk(
            &mut s,
            "data: {\"choices\":[{\"delta\":{\"content\":\"thinking\"}}]}\n\n",
        );
        // Stalls; the client going away ends the read (or 5 s do).
        let mut buf = [0u8; 64];
        let started = Instant::now();
        let _ = s.read(&mut buf);
        let _ = closed_tx.send(started.elapsed());
    });
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let (got, res) = run(&provider(&url, Duration::from_secs(30)), &cancel);
    let took = started.elapsed();
    canceller.join().unwrap();
    assert_eq!(res, Err(Failure::Cancelled));
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(got, [Piece::Text("thinking".into())]);
    let closed_after = closed_rx.recv_timeout(Duration::from_secs(6)).unwrap();
    assert!(
        closed_after < Duration::from_secs(2),
        "upstream not closed: {closed_after:?}"
    );
    server.join().unwrap();
    // A run cancelled before it starts does not connect at all.
    let (got, res) = run(
        &provider("http://192.0.2.1:9/v1", Duration::from_secs(30)),
        &cancel,
    );
    assert_eq!((got, res), (vec![], Err(Failure::Cancelled)));
}

#[test]
fn a_stalled_upstream_times_out_with_the_configured_time() {
    let (url, server) = serve(|_, mut s| {
        let _ = s.write_all(STREAM_HEAD.as_bytes());
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
    });
    let started = Instant::now();
    let (_, res) = run(&provider(&url, Duration::from_millis(400)), &Cancel::new());
    assert_eq!(
        res,
        Err(Failure::Error("upstream timed out after 0.4 s".into()))
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    server.join().unwrap();
}

#[test]
fn a_401_is_an_error_with_the_body_previewed_and_the_key_hidden() {
    let (url, server) = serve(|_, mut s| {
        let body = format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {KEY}","type":"invalid_request_error"}}}}"#
        );
        let _ = write!(s, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    });
    let (got, res) = run(&provider(&url, Duration::from_secs(5)), &Cancel::new());
    server.join().unwrap();
    assert!(got.is_empty());
    let want = r#"upstream answered 401 Unauthorized: {"error":{"message":"Incorrect API key provided: ***","type":"invalid_request_error"}}"#;
    assert_eq!(res, Err(Failure::Error(want.into())));
}

#[test]
fn streams_that_end_early_or_carry_an_error_fail_the_turn() {
    let cases: [(&str, Result<(), Failure>); 4] = [
        // Close-delimited, cut before the finish.
        ("HTTP/1.1 200 OK\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", Err(Failure::Error("upstream stream ended early".into()))),
        // Chunked, cut inside a chunk.
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\ndata: {}\n\n", Err(Failure::Error("upstream stream ended early".into()))),
        ("HTTP/1.1 200 OK\r\n\r\ndata: {\"error\":{\"message\":\"model\\noverloaded\"}}\n\n", Err(Failure::Error("model overloaded".into()))),
        // A finish and then the close, without `[DONE]`, is a whole reply.
        ("HTTP/1.1 200 OK\r\n\r\ndata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n", Ok(())),
    ];
    for (answer, want) in cases {
        let (url, server) = serve(move |_, mut s| {
            let _ = s.write_all(answer.as_bytes());
        });
        let (_, res) = run(&provider(&url, Duration::from_secs(5)), &Cancel::new());
        server.join().unwrap();
        assert_eq!(res, want, "{answer:?}");
    }
}

#[test]
fn a_whole_json_answer_is_taken_as_the_reply() {
    let (url, server) = serve(|_, mut s| {
        let body = r#"{"id":"x9","choices":[{"message":{"role":"assistant","content":"hey"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let (got, res) = run(&provider(&url, Duration::from_secs(5)), &Cancel::new());
    server.join().unwrap();
    assert_eq!(res, Ok(()));
    assert_eq!(
        got,
        [
            Piece::ResponseId("x9".into()),
            Piece::Text("hey".into()),
            Piece::Finish("stop".into()),
            Piece::Usage {
                input: 3,
                output: 1,
                total: 4
            },
        ]
    );
}

#[test]
fn an_unreachable_upstream_is_an_error_naming_it() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, res) = run(
        &provider(
            &format!("http://127.0.0.1:{port}/v1"),
            Duration::from_secs(5),
        ),
        &Cancel::new(),
    );
    assert_eq!(
        res,
        Err(Failure::Error(format!(
            "cannot reach 127.0.0.1:{port}: connection refused"
        )))
    );
}

#[cfg(not(feature = "tls"))]
#[test]
fn https_is_refused_by_a_build_without_tls() {
    let (_, res) = run(
        &provider("https://api.example/v1", Duration::from_secs(5)),
        &Cancel::new(),
    );
    assert_eq!(
        res,
        Err(Failure::Error(
            "https:// needs TLS, which this build of clawgate does not include".into()
        ))
    );
}

#[test]
fn the_request_body_sends_max_completion_tokens_only_when_set() {
    let body: Value = serde_json::from_slice(&request_body("m", &msgs(), None)).unwrap();
    assert_eq!(
        body,
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]})
    );
    let body: Value = serde_json::from_slice(&request_body("m", &[], Some(1024))).unwrap();
    assert_eq!(body["max_completion_tokens"], 1024);
    assert_eq!(body["messages"], json!([]));
}

#[test]
fn configured_headers_replace_clawgates_own() {
    let mut p = provider("http://h/v1", Duration::from_secs(1));
    p.headers = vec![
        ("authorization".into(), "Basic x".into()),
        ("X-A".into(), "1".into()),
    ];
    let names: Vec<String> = request_headers(&p)
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    assert_eq!(
        names,
        [
            "Content-Type: application/json",
            "Accept: text/event-stream",
            "authorization: Basic x",
            "X-A: 1"
        ]
    );
    p.api_key = None;
    p.headers.clear();
    assert_eq!(request_headers(&p).len(), 2);
    assert!(!format!("{p:?}").contains(KEY));
}

#[test]
fn chunks_map_to_pieces() {
    let mut t = Turn::default();
    let pieces = |data: &str, t: &mut Turn| chunk_pieces(data, t);
    assert_eq!(
        pieces(
            r#"{"id":"a","choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            &mut t
        ),
        Ok(vec![Piece::ResponseId("a".into())])
    );
    assert_eq!(
        pieces(
            r#"{"id":"a","choices":[{"delta":{"content":"x"}}]}"#,
            &mut t
        ),
        Ok(vec![Piece::Text("x".into())])
    );
    assert!(!t.finished);
    assert_eq!(
        pieces(r#"{"choices":[{"delta":{}}],"usage":null}"#, &mut t),
        Ok(vec![])
    );
    assert_eq!(
        pieces(
            r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#,
            &mut t
        ),
        Ok(vec![Piece::Finish("length".into())])
    );
    assert!(t.finished);
    assert_eq!(
        pieces(
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
            &mut t
        ),
        Ok(vec![Piece::Usage {
            input: 5,
            output: 7,
            total: 12
        }])
    );
    assert_eq!(
        pieces(r#"{"error":{"message":"rate limited"}}"#, &mut t),
        Err("rate limited".into())
    );
    assert_eq!(pieces(r#"{"error":"plain"}"#, &mut t), Err("plain".into()));
    assert_eq!(
        pieces(r#"{"error":{"code":500}}"#, &mut t),
        Err("upstream sent an error without a message".into())
    );
    assert_eq!(
        pieces("nope", &mut t),
        Err("upstream sent a data line that is not json: nope".into())
    );
    assert_eq!(pieces("[1,2]", &mut t), Ok(vec![]));
}

#[test]
fn previews_are_one_short_line() {
    assert_eq!(preview("  a\r\nb\tc\u{1b}[31m  "), "a  b c [31m");
    let long = "é".repeat(300);
    let p = preview(&long);
    assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
    assert!(p.ends_with('…'));
    assert_eq!(preview(""), "");
}

#[test]
fn the_key_is_hidden_even_where_a_preview_cut_it() {
    let hide = |m: &str| hide_key(m.to_string(), KEY);
    assert_eq!(hide(&format!("a {KEY} b {KEY}")), "a *** b ***");
    assert_eq!(hide("bad key: sk-test-sec…"), "bad key: ***…");
    assert_eq!(hide("ends in sk-…"), "ends in sk-…");
    assert_eq!(hide_key(format!("x {KEY}"), "k"), format!("x {KEY}"));
}
