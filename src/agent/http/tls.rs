//! `https://` upstreams: a rustls session (ring's primitives, TLS 1.2 and
//! 1.3) on the connected socket, checked against the system's CA bundle
//! (or a root store the caller gives), with the server name taken from the
//! URL's host, a DNS name or an IP address. The bundle is read once per
//! process and kept parsed. The handshake runs in the same 250 ms slices
//! as every other wait, so the run's cancel (which shuts the socket down)
//! and its deadline end it at once; after it the HTTP framing reads and
//! writes through the session exactly as through the bare socket. It never
//! downgrades to plain HTTP and never skips the certificate check.
//!
//! Memory per connection, from rustls's own bounds: the incoming records
//! (at most 64 KiB while the server's certificate chain arrives, one
//! record of about 18 KiB after), up to 16 KiB of decrypted data not yet
//! read, and at most 16 KiB of outgoing records (the limit set below). Per
//! process: the parsed root store, about 80 KiB for the 144 roots of
//! Debian's bundle (the 215 KiB file itself is streamed, never held), and
//! the session tickets that let the next request to a server resume
//! without a full handshake: at most 8 for each of 4 servers, each with
//! the server's certificate chain (a few KiB).

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::{slice_over, Bounds, Error, Io, Url};
use crate::error::io_message;

/// Where distributions keep their CA bundle, tried in this order after
/// `$SSL_CERT_FILE`: Debian, Ubuntu, Alpine and OpenWrt's ca-bundle;
/// Fedora and RHEL; macOS, the BSDs and Alpine; openSUSE.
const BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];
/// Bytes of a bundle read at most: distributions' are about 200 KiB.
const MAX_BUNDLE: u64 = 8 * 1024 * 1024;
/// The outgoing records rustls may hold, and so how much of a request
/// one write takes in.
const OUT_LIMIT: usize = 16 * 1024;
/// Session tickets kept: rustls keeps 8 a server, so 4 servers' worth,
/// more than the providers one gateway talks to (its default is 256).
const TICKETS: usize = 32;

/// Whose certificates an `https://` server must show: a root store made
/// into a client configuration once and shared by every request.
#[derive(Clone)]
pub struct Trust(Arc<ClientConfig>);

impl Trust {
    /// Trusts exactly `roots` (the system's bundle, or a test's CA).
    pub fn from_roots(roots: RootCertStore) -> Trust {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = Resumption::in_memory_sessions(TICKETS);
        Trust(Arc::new(config))
    }

    /// The system's CA bundle, read on first use. A failure is not kept:
    /// once ca-certificates is installed the next run finds it.
    fn system() -> Result<Trust, Error> {
        static SYSTEM: OnceLock<Trust> = OnceLock::new();
        if let Some(t) = SYSTEM.get() {
            return Ok(t.clone());
        }
        let roots = load(&candidates()).map_err(Error::Failed)?;
        Ok(SYSTEM.get_or_init(|| Trust::from_roots(roots)).clone())
    }
}

/// The bundles to try: `$SSL_CERT_FILE` when set, then [`BUNDLES`].
fn candidates() -> Vec<PathBuf> {
    let env = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    env.map(PathBuf::from)
        .into_iter()
        .chain(BUNDLES.iter().map(PathBuf::from))
        .collect()
}

/// The roots of the first candidate that holds any; the certificates of a
/// bundle that do not parse are skipped.
fn load(candidates: &[PathBuf]) -> Result<RootCertStore, String> {
    for path in candidates {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                log::debug!("ca bundle '{}': {}", path.display(), io_message(&e));
                continue;
            }
        };
        let (roots, skipped) = parse_bundle(file.take(MAX_BUNDLE));
        log::debug!(
            "ca bundle '{}': {} certificates, {skipped} skipped as unparseable",
            path.display(),
            roots.len()
        );
        if !roots.is_empty() {
            return Ok(roots);
        }
    }
    Err(no_bundle(candidates))
}

/// The roots in a PEM bundle, and how many of its certificates were
/// skipped (bad PEM or base64, or not an X.509 certificate webpki takes).
fn parse_bundle(pem: impl Read) -> (RootCertStore, usize) {
    let mut roots = RootCertStore::empty();
    let mut skipped = 0;
    // Bounded by the input: each item consumes at least one line of it.
    for item in CertificateDer::pem_reader_iter(pem) {
        match item.map(|der| roots.add(der)) {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => skipped += 1,
        }
    }
    (roots, skipped)
}

/// The run's error when no candidate has a certificate.
fn no_bundle(candidates: &[PathBuf]) -> String {
    let paths: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    format!(
        "https:// needs a CA certificate bundle: none at {} (install ca-certificates, or set SSL_CERT_FILE)",
        paths.join(", ")
    )
}

/// A session for `url`'s host, not yet connected.
pub(super) struct Session(ClientConnection);

/// The session for one request, made before connecting: the trust (the
/// system's bundle read now if needed) and the server name are settled.
pub(super) fn session(trust: Option<&Trust>, url: &Url) -> Result<Session, Error> {
    let trust = match trust {
        Some(t) => t.clone(),
        None => Trust::system()?,
    };
    let name = ServerName::try_from(url.host.clone()).map_err(|_| {
        Error::Failed(format!(
            "cannot check a tls certificate for '{}': not a dns name or an ip address",
            url.host
        ))
    })?;
    let mut conn = ClientConnection::new(trust.0, name)
        .map_err(|e| Error::Failed(format!("cannot start tls: {e}")))?;
    conn.set_buffer_limit(Some(OUT_LIMIT));
    Ok(Session(conn))
}

/// Completes the handshake on `tcp`, within the request's bounds, and
/// gives the stream the HTTP framing reads and writes.
pub(super) fn handshake(
    session: Session,
    mut tcp: TcpStream,
    url: &Url,
    bounds: &Bounds,
) -> Result<Box<dyn Io>, Error> {
    let mut conn = session.0;
    // Bounded by the deadline: every pass reads or writes, or waits one
    // slice; a closed socket is an error, not an empty pass.
    while conn.is_handshaking() {
        bounds.check()?;
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) if slice_over(&e) => {}
            Err(e) => {
                bounds.check()?;
                return Err(Error::Failed(format!(
                    "tls handshake with {} failed: {}",
                    url.authority(),
                    handshake_message(&e)
                )));
            }
        }
    }
    Ok(Box::new(Tls(StreamOwned::new(conn, tcp))))
}

/// rustls's own words for a protocol or certificate failure ("invalid
/// peer certificate: UnknownIssuer"); the socket's otherwise.
fn handshake_message(e: &io::Error) -> String {
    match e.kind() {
        ErrorKind::InvalidData => e.to_string(),
        ErrorKind::UnexpectedEof => "the server closed the connection".into(),
        _ => io_message(e),
    }
}

/// The session after its handshake.
struct Tls(StreamOwned<ClientConnection, TcpStream>);

impl Read for Tls {
    /// A close without TLS's close_notify reads as the socket's end, as
    /// over plain HTTP: the framing (a length, the last chunk) is what
    /// tells a whole body from a cut one, and many servers never send it.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
            r => r,
        }
    }
}

impl Write for Tls {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests;
