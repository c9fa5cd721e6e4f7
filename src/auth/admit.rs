//! The admission decision for a `connect`, as a pure function: given who
//! the peer is, what it sent, the gateway's secret and whether its address
//! is locked out, admit it (with the version, role and scopes it gets) or
//! refuse it (with the error, the close code, and whether the failure
//! counts toward the limiter). The handshake does the I/O around it.
//!
//! Checks run in the reference gateway's order: version, lockout, secret,
//! then what is granted. Device proof and pairing slot in after the secret.

use std::net::{IpAddr, SocketAddr};

use super::pairing;
use super::secret::{check, rate_limited, Failure, Secret};
use crate::config::AuthMode;
use crate::protocol::{self, ConnectParams, ErrorShape, Role};

/// Who is on the other end, as far as the upgrade request told.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client's address: the socket's, or what a trusted proxy says.
    pub ip: IpAddr,
    /// A direct loopback connection (no proxy headers).
    pub local: bool,
    /// The upgrade carried a browser `Origin`.
    pub browser: bool,
    /// It carried proxy headers (`X-Forwarded-*`, `Forwarded`,
    /// `X-Real-IP`), trusted or not.
    pub forwarded: bool,
    /// Its `Origin` and `Host` both name a loopback address: the Control
    /// UI served by this gateway, opened on this host.
    pub origin_loopback: bool,
}

impl Peer {
    /// A local CLI, not a web page: exempt from the failed-auth lockout
    /// (slowed down instead) and allowed to keep its requested scopes
    /// without a device. A browser page must never enjoy this, since that
    /// is how a malicious site brute-forces a local gateway.
    pub fn direct_local(&self) -> bool {
        self.local && !self.browser
    }

    /// Local enough for a device to be paired without an operator: a
    /// loopback socket without proxy headers, and no browser page unless
    /// it is the Control UI on its own loopback origin.
    pub fn pairing_local(&self, p: &ConnectParams) -> bool {
        let ui = p.client.id == "openclaw-control-ui" && p.client.mode == "webchat";
        self.addr.ip().is_loopback()
            && !self.forwarded
            && (!self.browser || (ui && self.origin_loopback))
    }
}

/// How a connect authenticated, as `hello-ok.auth.method` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Token,
    Password,
    DeviceToken,
    None,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Token => "token",
            Method::Password => "password",
            Method::DeviceToken => "device-token",
            Method::None => "none",
        }
    }
}

/// What a connect asks, and what the gateway knows at that moment.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub params: &'a ConnectParams,
    pub peer: &'a Peer,
    pub secret: &'a Secret,
    /// `Some(retry_after_ms)` while the peer's address is locked out.
    pub locked_out: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Admit(Grant),
    Refuse(Refusal),
}

/// What an admitted client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub protocol: u64,
    pub role: Role,
    pub scopes: Vec<String>,
    /// `DeviceToken` leaves the token itself to the pairing decision,
    /// once the device proof has been checked.
    pub method: Method,
}

/// Why a connect is refused: the error to answer and the close code that
/// follows it. `failure` is the wrong secret, when there was one: a wrong
/// (not missing) one counts toward the limiter.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub error: ErrorShape,
    pub close: u16,
    pub failure: Option<Failure>,
}

impl Refusal {
    fn new(error: ErrorShape, close: u16) -> Refusal {
        Refusal {
            error,
            close,
            failure: None,
        }
    }

    /// Whether this refusal counts as a guess for the limiter.
    pub fn counts(&self) -> bool {
        self.failure.is_some_and(Failure::counts)
    }
}

pub fn admit(r: Request) -> Admission {
    let p = r.params;
    let Some(protocol) = protocol::negotiate(p.min_protocol, p.max_protocol) else {
        let e = protocol::protocol_mismatch(p.min_protocol, p.max_protocol);
        return Admission::Refuse(Refusal::new(e, 1002));
    };
    if let Some(retry_after_ms) = r.locked_out {
        return Admission::Refuse(Refusal::new(rate_limited(retry_after_ms), 1008));
    }
    let method = match r.secret.mode {
        AuthMode::None => Method::None,
        _ if device_token_only(r.secret.mode, p) => Method::DeviceToken,
        AuthMode::Token => Method::Token,
        AuthMode::Password => Method::Password,
    };
    if method != Method::DeviceToken {
        if let Err(failure) = check(r.secret, &p.auth) {
            return Admission::Refuse(Refusal {
                error: failure.to_error(),
                close: 1008,
                failure: Some(failure),
            });
        }
    }
    if p.role == Role::Node && p.device.is_none() {
        return Admission::Refuse(Refusal::new(pairing::identity_required(), 1008));
    }
    let scopes = if p.device.is_some() {
        // A device gets what it asked for; pairing decides whether that
        // is approved.
        let mut s = p.scopes.clone();
        s.sort();
        s.dedup();
        s
    } else {
        protocol::granted_scopes(p, r.peer.direct_local())
    };
    Admission::Admit(Grant {
        protocol,
        role: p.role,
        scopes,
        method,
    })
}

/// A paired device reconnecting with its device token instead of the
/// shared secret: it sent no secret of the mode's kind, a device token and
/// a device block (whose proof must then check out).
fn device_token_only(mode: AuthMode, p: &ConnectParams) -> bool {
    let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    let secret_given = match mode {
        AuthMode::Token => given(&p.auth.token),
        AuthMode::Password => given(&p.auth.password),
        AuthMode::None => true,
    };
    !secret_given && given(&p.auth.device_token) && p.device.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ConnectAuth;

    fn params(token: Option<&str>, min: u64, max: u64) -> ConnectParams {
        let mut p = ConnectParams {
            min_protocol: min,
            max_protocol: max,
            scopes: vec!["operator.admin".into(), "operator.read".into()],
            auth: ConnectAuth {
                token: token.map(String::from),
                ..ConnectAuth::default()
            },
            ..ConnectParams::default()
        };
        p.client.id = "cli".into();
        p.client.mode = "cli".into();
        p
    }

    fn peer(local: bool, browser: bool) -> Peer {
        let ip: IpAddr = if local { "127.0.0.1" } else { "10.0.0.9" }
            .parse()
            .unwrap();
        Peer {
            addr: SocketAddr::new(ip, 40000),
            ip,
            local,
            browser,
            forwarded: false,
            origin_loopback: false,
        }
    }

    fn secret() -> Secret {
        Secret {
            mode: AuthMode::Token,
            token: Some("right".into()),
            password: None,
        }
    }

    fn decide(p: &ConnectParams, peer: &Peer, locked_out: Option<u64>) -> Admission {
        admit(Request {
            params: p,
            peer,
            secret: &secret(),
            locked_out,
        })
    }

    /// The refusal of a remote peer that sends `token`, versions
    /// `min..=max`, while `locked_out`.
    fn refused(token: Option<&str>, (min, max): (u64, u64), locked_out: Option<u64>) -> Refusal {
        match decide(&params(token, min, max), &peer(false, false), locked_out) {
            Admission::Refuse(r) => r,
            Admission::Admit(g) => panic!("admitted: {g:?}"),
        }
    }

    #[test]
    fn the_local_cli_is_admitted_with_the_highest_version_and_its_scopes() {
        let a = decide(&params(Some("right"), 3, 4), &peer(true, false), None);
        assert_eq!(
            a,
            Admission::Admit(Grant {
                protocol: 4,
                role: Role::Operator,
                scopes: vec!["operator.admin".into(), "operator.read".into()],
                method: Method::Token,
            })
        );
    }

    #[test]
    fn remote_and_browser_peers_keep_no_device_less_scopes() {
        for p in [peer(false, false), peer(true, true)] {
            match decide(&params(Some("right"), 4, 4), &p, None) {
                Admission::Admit(g) => assert!(g.scopes.is_empty(), "{p:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_version_mismatch_closes_1002_before_anything_else() {
        let r = refused(Some("wrong"), (5, 6), Some(9));
        assert_eq!(r.close, 1002);
        assert_eq!(r.error.message, "protocol mismatch");
        assert!(!r.counts());
    }

    #[test]
    fn a_locked_out_address_is_refused_even_with_the_right_secret() {
        let r = refused(Some("right"), (4, 4), Some(1234));
        assert_eq!((r.close, r.error.retry_after_ms), (1008, Some(1234)));
        assert_eq!(
            r.error.details.as_ref().unwrap()["code"],
            "AUTH_RATE_LIMITED"
        );
        assert!(!r.counts());
    }

    #[test]
    fn a_wrong_secret_counts_and_a_missing_one_does_not() {
        let wrong = refused(Some("nope"), (4, 4), None);
        assert_eq!(wrong.close, 1008);
        assert_eq!(wrong.failure, Some(Failure::TokenMismatch));
        assert!(wrong.counts());
        let missing = refused(None, (4, 4), None);
        assert_eq!(missing.failure, Some(Failure::TokenMissing));
        assert!(!missing.counts());
    }

    #[test]
    fn a_device_token_stands_in_for_the_secret_only_with_a_device_block() {
        let mut p = params(None, 4, 4);
        p.auth.device_token = Some("dt".into());
        let missing = refused_params(&p);
        assert_eq!(missing.failure, Some(Failure::TokenMissing));
        p.device = Some(crate::protocol::DeviceBlock::default());
        match decide(&p, &peer(false, false), None) {
            Admission::Admit(g) => assert_eq!(g.method, Method::DeviceToken),
            other => panic!("{other:?}"),
        }
        // A wrong shared token is not rescued by a device token.
        p.auth.token = Some("nope".into());
        assert_eq!(refused_params(&p).failure, Some(Failure::TokenMismatch));
    }

    #[test]
    fn a_node_without_a_device_is_refused_as_identity_required() {
        let mut p = params(Some("right"), 4, 4);
        p.role = Role::Node;
        let r = refused_params(&p);
        assert_eq!((r.error.code, r.close), ("NOT_PAIRED", 1008));
        assert_eq!(
            r.error.details.as_ref().unwrap()["code"],
            "DEVICE_IDENTITY_REQUIRED"
        );
    }

    fn refused_params(p: &ConnectParams) -> Refusal {
        match decide(p, &peer(false, false), None) {
            Admission::Refuse(r) => r,
            Admission::Admit(g) => panic!("admitted: {g:?}"),
        }
    }

    #[test]
    fn only_direct_local_non_browser_peers_are_exempt() {
        assert!(peer(true, false).direct_local());
        assert!(!peer(true, true).direct_local());
        assert!(!peer(false, false).direct_local());
    }
}
