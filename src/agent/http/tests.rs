use super::chunked::Chunked;
use super::head::{Head, MAX_HEADERS};
use super::*;

fn url(s: &str) -> Result<Url, String> {
    Url::parse(s)
}

fn ok(host: &str, port: u16, target: &str) -> Result<Url, String> {
    Ok(Url {
        tls: false,
        host: host.into(),
        port,
        target: target.into(),
    })
}

#[test]
fn http_urls_parse_into_host_port_and_target() {
    assert_eq!(
        url("http://127.0.0.1:8080/v1/chat/completions"),
        ok("127.0.0.1", 8080, "/v1/chat/completions")
    );
    assert_eq!(url("HTTP://Example.com"), ok("Example.com", 80, "/"));
    assert_eq!(url("http://h/v1?x=1#frag"), ok("h", 80, "/v1?x=1"));
    assert_eq!(url("http://h?x=1"), ok("h", 80, "/?x=1"));
    assert_eq!(url("http://[::1]:11434/v1"), ok("::1", 11434, "/v1"));
    assert_eq!(url("http://[fe80::1]"), ok("fe80::1", 80, "/"));
    assert_eq!(
        url("http://[::1]:11434/v1").unwrap().authority(),
        "[::1]:11434"
    );
    assert_eq!(url("http://[::1]/").unwrap().host_header(), "[::1]");
    assert_eq!(url("http://h:80/").unwrap().host_header(), "h");
    assert_eq!(url("http://h:81/").unwrap().host_header(), "h:81");
}

#[test]
fn https_urls_default_to_port_443_and_name_it_only_when_another() {
    let tls =
        |host: &str, port, target: &str| ok(host, port, target).map(|u| Url { tls: true, ..u });
    assert_eq!(
        url("https://api.openai.com/v1"),
        tls("api.openai.com", 443, "/v1")
    );
    assert_eq!(url("HTTPS://[::1]:8443"), tls("::1", 8443, "/"));
    assert_eq!(url("https://h/").unwrap().host_header(), "h");
    assert_eq!(url("https://h:80/").unwrap().host_header(), "h:80");
    assert_eq!(url("https://[::1]/").unwrap().host_header(), "[::1]");
    assert_eq!(url("http://h:443/").unwrap().host_header(), "h:443");
}

#[test]
fn urls_this_client_cannot_use_are_refused_without_quoting_them() {
    let scheme = "the upstream url must start with http:// or https://";
    for (bad, why) in [
        ("ftp://h/", scheme),
        ("localhost:8080", scheme),
        ("httpss://h/", scheme),
        (
            "http://user:secret@h/",
            "credentials in the upstream url are not supported; set the api key or headers instead",
        ),
        ("http:///v1", "the upstream url has a bad host"),
        ("https://:443/", "the upstream url has a bad host"),
        ("http://h:0/", "the upstream url has a bad port"),
        ("http://h:65536/", "the upstream url has a bad port"),
        ("http://h:/", "the upstream url has a bad port"),
        ("http://h:+1/", "the upstream url has a bad port"),
        ("http://[::1/", "the upstream url has a bad host"),
        ("http://[::1]x/", "the upstream url has a bad port"),
        ("http://[nope]/", "the upstream url has a bad host"),
        ("http://a b/", "the upstream url has a bad host"),
        (
            "http://h/a b",
            "the upstream url has a space or control character in its path",
        ),
        (
            "http://h/a\r\nX: y",
            "the upstream url has a space or control character in its path",
        ),
    ] {
        assert_eq!(url(bad), Err(why.to_string()), "{bad:?}");
    }
}

fn hdrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_request_head_carries_defaults_unless_given_and_refuses_forged_headers() {
    let u = url("http://h:9/v1/x").unwrap();
    let head = request_head(
        &u,
        &hdrs(&[
            ("Authorization", "Bearer k"),
            ("accept", "application/json"),
        ]),
        12,
    )
    .unwrap();
    let ua = concat!("User-Agent: clawgate/", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        head,
        format!(
            "POST /v1/x HTTP/1.1\r\nHost: h:9\r\nContent-Type: application/json\r\n{ua}\r\n\
             Authorization: Bearer k\r\naccept: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
        )
    );
    for (name, value, why) in [
        (
            "X-Key",
            "a\r\nHost: evil",
            "header 'X-Key' has a control character in its value",
        ),
        (
            "Content-Length",
            "1",
            "header 'Content-Length' is set by clawgate itself",
        ),
        ("host", "x", "header 'host' is set by clawgate itself"),
        (
            "Bad Name",
            "x",
            "header 'Bad Name' is not a valid header name",
        ),
        ("", "x", "header '' is not a valid header name"),
    ] {
        assert_eq!(
            request_head(&u, &hdrs(&[(name, value)]), 0),
            Err(why.into())
        );
    }
}

#[test]
fn response_heads_parse_once_complete() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-A:  b \r\n\r\ndata";
    for n in 0..raw.len() - 4 {
        assert_eq!(parse_head(&raw[..n]), Ok(None), "{n}");
    }
    assert_eq!(
        parse_head(raw),
        Ok(Some(Head {
            status: 200,
            reason: "OK".into(),
            headers: hdrs(&[("Content-Type", "text/event-stream"), ("X-A", "b")]),
            len: raw.len() - 4,
        }))
    );
    let head = parse_head(b"HTTP/1.0 401 \r\n\r\n").unwrap().unwrap();
    assert_eq!((head.status, head.reason.as_str()), (401, ""));
    assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")
        .unwrap_err()
        .starts_with("upstream answered with a malformed head: "));
    let many = format!(
        "HTTP/1.1 200 OK\r\n{}\r\n",
        "A: b\r\n".repeat(MAX_HEADERS + 1)
    );
    assert_eq!(
        parse_head(many.as_bytes()),
        Err("upstream answered with more than 64 headers".into())
    );
}

#[test]
fn the_body_framing_follows_the_head() {
    let f = |status, list: &[(&str, &str)]| framing(status, &hdrs(list));
    assert_eq!(
        f(200, &[("Transfer-Encoding", "chunked")]),
        Ok(Framing::Chunked(Chunked::default()))
    );
    assert_eq!(
        f(
            200,
            &[
                ("Transfer-Encoding", "gzip, Chunked"),
                ("Content-Length", "3")
            ]
        ),
        Ok(Framing::Chunked(Chunked::default()))
    );
    assert_eq!(f(200, &[("Transfer-Encoding", "gzip")]), Ok(Framing::Close));
    assert_eq!(
        f(200, &[("Content-Length", "42"), ("content-length", "42")]),
        Ok(Framing::Length(42))
    );
    assert_eq!(f(200, &[]), Ok(Framing::Close));
    assert_eq!(f(204, &[("Content-Length", "42")]), Ok(Framing::Length(0)));
    assert_eq!(
        f(200, &[("Content-Length", "4"), ("Content-Length", "5")]),
        Err("upstream answered with conflicting content-lengths".into())
    );
    assert_eq!(
        f(200, &[("Content-Length", "0x5")]),
        Err("upstream answered with a bad content-length".into())
    );
}

#[test]
fn errors_carried_through_io_come_back_unchanged() {
    let e = Error::Cancelled.into_io(ErrorKind::Other);
    assert_eq!(Error::from_io(e), Error::Cancelled);
    let e = timed_out(Duration::from_millis(300)).into_io(ErrorKind::TimedOut);
    assert_eq!(
        Error::from_io(e),
        Error::Failed("upstream timed out after 0.3 s".into())
    );
    assert_eq!(
        timed_out(Duration::from_secs(120)),
        Error::Failed("upstream timed out after 120 s".into())
    );
    let e = io::Error::from(ErrorKind::ConnectionReset);
    assert_eq!(
        Error::from_io(e),
        Error::Failed("reading from upstream: connection reset".into())
    );
}
