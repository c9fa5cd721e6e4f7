//! The client against a rustls server on a loopback port, with the test
//! CA and certificates in `../testdata` (see its README): the trust is
//! given to each request, so nothing depends on the machine's bundle.
//! Every server accepts for 5 s at most and every socket times out, so a
//! failing test cannot hang.

use super::*;
use crate::agent::http::{self, Response};
use crate::agent::openai::{self, Failure, Message, Piece, Provider};
use crate::agent::Cancel;

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::PrivateKeyDer;
use rustls::{ServerConfig, ServerConnection, SupportedProtocolVersion};

const CA: &[u8] = include_bytes!("../testdata/ca.pem");
const SERVER: (&[u8], &[u8]) = (
    include_bytes!("../testdata/server.pem"),
    include_bytes!("../testdata/server.key"),
);
const UNTRUSTED: (&[u8], &[u8]) = (
    include_bytes!("../testdata/untrusted.pem"),
    include_bytes!("../testdata/untrusted.key"),
);
const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

type ServerStream = StreamOwned<ServerConnection, TcpStream>;

/// Trusts the test CA only.
fn test_trust() -> Trust {
    let (roots, skipped) = parse_bundle(CA);
    assert_eq!((roots.len(), skipped), (1, 0));
    Trust::from_roots(roots)
}

/// Accepts one connection on `bind` (port 0) within 5 s, with 5 s socket
/// timeouts, and hands it to `script`.
fn accept_one(
    bind: &str,
    script: impl FnOnce(TcpStream) + Send + 'static,
) -> (u16, thread::JoinHandle<()>) {
    let l = TcpListener::bind(bind).unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let h = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        let s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("no client came: {e}"),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        script(s);
    });
    (port, h)
}

/// A TLS server on `bind` showing `identity` (certificate, key), speaking
/// the given protocol versions; `script` gets the session, whose handshake
/// runs on its first read.
fn tls_serve(
    bind: &str,
    identity: (&[u8], &[u8]),
    versions: &[&'static SupportedProtocolVersion],
    script: impl FnOnce(ServerStream) + Send + 'static,
) -> (u16, thread::JoinHandle<()>) {
    let cert = CertificateDer::from_pem_slice(identity.0).unwrap();
    let key = PrivateKeyDer::from_pem_slice(identity.1).unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
    let config = Arc::new(config);
    accept_one(bind, move |tcp| {
        let conn = ServerConnection::new(config).unwrap();
        script(StreamOwned::new(conn, tcp));
    })
}

/// One request (head and `Content-Length` body) as text, or what came
/// before an error; bounded by 1 MiB and the socket's timeout.
fn read_request(s: &mut impl Read) -> String {
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
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).to_string()
}

fn chunk(s: &mut ServerStream, data: &str) {
    let _ = write!(s, "{:x}\r\n{data}\r\n", data.len());
    let _ = s.flush();
}

fn provider(base_url: String, timeout: Duration) -> Provider {
    Provider {
        base_url,
        api_key: Some("sk-tls-test".into()),
        headers: Vec::new(),
        timeout,
        trust: Some(test_trust()),
    }
}

fn complete(p: &Provider, cancel: &Cancel) -> (Vec<Piece>, Result<(), Failure>) {
    let mut got = Vec::new();
    let messages = [Message {
        role: "user",
        text: "hi".into(),
    }];
    let res = openai::complete(p, "m1", &messages, None, cancel, &mut |piece| {
        got.push(piece)
    });
    (got, res)
}

/// A `POST` of `{}` that trusts the test CA.
fn post(url: &str, timeout: Duration, cancel: &Cancel) -> Result<Response, Error> {
    http::post(url, &[], b"{}", timeout, cancel, Some(&test_trust()))
}

fn body_of(mut resp: Response) -> Result<String, Error> {
    let mut body = String::new();
    resp.read_to_string(&mut body).map_err(Error::from_io)?;
    Ok(body)
}

#[test]
fn a_streamed_reply_over_https_yields_its_pieces() {
    let (port, server) = tls_serve("127.0.0.1:0", SERVER, rustls::DEFAULT_VERSIONS, |mut s| {
        let req = read_request(&mut s);
        let _ = s.write_all(SSE_HEAD.as_bytes());
        chunk(
            &mut s,
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        );
        chunk(
            &mut s,
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"},",
        );
        chunk(&mut s, "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
        chunk(&mut s, "");
        s.conn.send_close_notify();
        let _ = s.flush();
        assert!(
            req.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
            "{req}"
        );
        let port = s.sock.local_addr().unwrap().port();
        assert!(
            req.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
            "{req}"
        );
        assert!(
            req.contains("\r\nAuthorization: Bearer sk-tls-test\r\n"),
            "{req}"
        );
    });
    let p = provider(
        format!("https://127.0.0.1:{port}/v1"),
        Duration::from_secs(10),
    );
    let (got, res) = complete(&p, &Cancel::new());
    server.join().expect("server checks pass");
    assert_eq!(res, Ok(()));
    assert_eq!(
        got,
        [
            Piece::ResponseId("c1".into()),
            Piece::Text("Hel".into()),
            Piece::Text("lo".into()),
            Piece::Finish("stop".into()),
        ]
    );
}

#[test]
fn a_dns_name_and_a_tls_1_2_only_server_are_reached_too() {
    let (port, server) = tls_serve(
        "127.0.0.1:0",
        SERVER,
        &[&rustls::version::TLS12],
        |mut s| {
            let req = read_request(&mut s);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            let _ = s.flush();
            let port = s.sock.local_addr().unwrap().port();
            assert!(
                req.contains(&format!("\r\nHost: localhost:{port}\r\n")),
                "{req}"
            );
            assert_eq!(
                s.conn.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_2)
            );
            assert!(req.ends_with("\r\n\r\n{}"), "{req}");
        },
    );
    let url = format!("https://localhost:{port}/v1/x");
    let resp = post(&url, Duration::from_secs(10), &Cancel::new()).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(body_of(resp), Ok("ok".into()));
    server.join().expect("server checks pass");
}

#[test]
fn a_close_delimited_body_ends_at_the_close_with_or_without_close_notify() {
    for notify in [true, false] {
        let (port, server) = tls_serve(
            "127.0.0.1:0",
            SERVER,
            rustls::DEFAULT_VERSIONS,
            move |mut s| {
                read_request(&mut s);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe whole body");
                if notify {
                    s.conn.send_close_notify();
                }
                let _ = s.flush();
            },
        );
        let resp = post(
            &format!("https://127.0.0.1:{port}/"),
            Duration::from_secs(10),
            &Cancel::new(),
        )
        .unwrap();
        assert_eq!(
            body_of(resp),
            Ok("the whole body".into()),
            "notify {notify}"
        );
        server.join().expect("server ends");
    }
}

#[test]
fn an_untrusted_certificate_fails_the_handshake_naming_the_host() {
    let (port, server) = tls_serve(
        "127.0.0.1:0",
        UNTRUSTED,
        rustls::DEFAULT_VERSIONS,
        |mut s| {
            read_request(&mut s);
        },
    );
    let res = post(
        &format!("https://127.0.0.1:{port}/v1"),
        Duration::from_secs(10),
        &Cancel::new(),
    );
    assert_eq!(
        res.unwrap_err(),
        Error::Failed(format!(
            "tls handshake with 127.0.0.1:{port} failed: invalid peer certificate: UnknownIssuer"
        ))
    );
    server.join().expect("server ends");
}

#[test]
fn a_certificate_for_another_address_fails_the_handshake() {
    let (port, server) = tls_serve("127.0.0.2:0", SERVER, rustls::DEFAULT_VERSIONS, |mut s| {
        read_request(&mut s);
    });
    let err = post(
        &format!("https://127.0.0.2:{port}/v1"),
        Duration::from_secs(10),
        &Cancel::new(),
    )
    .unwrap_err()
    .to_string();
    let want = format!(
        "tls handshake with 127.0.0.2:{port} failed: invalid peer certificate: certificate not valid for name \"127.0.0.2\""
    );
    assert!(err.starts_with(&want), "{err}");
    server.join().expect("server ends");
}

/// A server that takes the connection and then says nothing until the
/// client goes (or 5 s pass).
fn silent(s: TcpStream) {
    let _ = read_request(&mut &s);
}

#[test]
fn a_stalled_tls_server_is_cancelled_within_a_second() {
    let stall_in_handshake = accept_one("127.0.0.1:0", silent);
    let stall_in_body = tls_serve("127.0.0.1:0", SERVER, rustls::DEFAULT_VERSIONS, |mut s| {
        read_request(&mut s);
        let _ = s.write_all(SSE_HEAD.as_bytes());
        chunk(
            &mut s,
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        );
        // Then nothing, until the client shuts the socket down.
        let _ = s.sock.read(&mut [0u8; 64]);
    });
    for (port, server) in [stall_in_handshake, stall_in_body] {
        let cancel = Cancel::new();
        let canceller = cancel.clone();
        let fired = thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            canceller.cancel();
            Instant::now()
        });
        let p = provider(
            format!("https://127.0.0.1:{port}/v1"),
            Duration::from_secs(30),
        );
        let (_, res) = complete(&p, &cancel);
        let ended = Instant::now();
        let fired = fired.join().unwrap();
        assert_eq!(res, Err(Failure::Cancelled));
        assert!(ended.duration_since(fired) < Duration::from_secs(1));
        server.join().expect("server ends");
    }
}

#[test]
fn a_stalled_handshake_ends_at_the_deadline() {
    let (port, server) = accept_one("127.0.0.1:0", silent);
    let started = Instant::now();
    let res = post(
        &format!("https://127.0.0.1:{port}/"),
        Duration::from_millis(500),
        &Cancel::new(),
    );
    assert_eq!(
        res.unwrap_err(),
        Error::Failed("upstream timed out after 0.5 s".into())
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(server);
}

#[test]
fn a_server_that_closes_during_the_handshake_is_an_error_naming_it() {
    let (port, server) = accept_one("127.0.0.1:0", drop);
    let res = post(
        &format!("https://127.0.0.1:{port}/"),
        Duration::from_secs(10),
        &Cancel::new(),
    );
    let err = res.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("tls handshake with 127.0.0.1:{port} failed: ")),
        "{err}"
    );
    server.join().expect("server ends");
}

#[test]
fn a_bundle_is_read_past_what_does_not_parse() {
    let junk = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let key = String::from_utf8_lossy(SERVER.1);
    let ca = String::from_utf8_lossy(CA);
    let bundle = format!("# a comment\n{junk}{key}{bad_base64}{ca}");
    let (roots, skipped) = parse_bundle(bundle.as_bytes());
    assert_eq!((roots.len(), skipped), (1, 2));
    let (roots, skipped) = parse_bundle(&b""[..]);
    assert_eq!((roots.len(), skipped), (0, 0));
}

#[test]
fn the_first_bundle_with_a_certificate_is_used() {
    let ca = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/agent/http/testdata/ca.pem"
    ));
    let key = ca.with_file_name("server.key");
    let none = PathBuf::from("/nonexistent/ca-bundle.crt");
    let roots = load(&[none.clone(), key.clone(), ca]).unwrap();
    assert_eq!(roots.len(), 1);
    let neither = [none, key];
    assert_eq!(load(&neither).unwrap_err(), no_bundle(&neither));
}

#[test]
fn no_ca_bundle_is_an_error_that_says_where_it_looked() {
    let mut paths = vec![PathBuf::from("/tmp/my-ca.pem")];
    paths.extend(BUNDLES.iter().map(PathBuf::from));
    assert_eq!(
        no_bundle(&paths),
        "https:// needs a CA certificate bundle: none at /tmp/my-ca.pem, \
         /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt, \
         /etc/ssl/cert.pem, /etc/ssl/ca-bundle.pem (install ca-certificates, or set SSL_CERT_FILE)"
    );
}

#[test]
fn a_host_that_cannot_be_a_server_name_is_refused_before_connecting() {
    let res = post("https://bad%name/", Duration::from_secs(1), &Cancel::new());
    assert_eq!(
        res.unwrap_err(),
        Error::Failed(
            "cannot check a tls certificate for 'bad%name': not a dns name or an ip address".into()
        )
    );
}
