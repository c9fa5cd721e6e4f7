//! `https://` in a build without the `tls` feature: refused before any
//! connection, with the reason. The same names as the real module, so the
//! client is written once for both builds.

use std::net::TcpStream;

use super::{Bounds, Error, Io, Url};

/// No trust can be made without TLS, so a caller can only pass `None`.
#[derive(Clone)]
pub enum Trust {}

/// Never made: see [`session`].
pub(super) enum Session {}

pub(super) fn session(_: Option<&Trust>, _: &Url) -> Result<Session, Error> {
    Err(Error::Failed(
        "https:// needs TLS, which this build of clawgate does not include".into(),
    ))
}

pub(super) fn handshake(
    session: Session,
    _: TcpStream,
    _: &Url,
    _: &Bounds,
) -> Result<Box<dyn Io>, Error> {
    match session {}
}
