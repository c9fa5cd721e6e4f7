//! A place in the per-IP count of sockets that have not authenticated.

use std::net::IpAddr;
use std::sync::Arc;

use super::Shared;

/// A place in the per-IP count of sockets that have not completed
/// `connect`, claimed when the socket is accepted (before a thread is
/// spawned) and released when the handshake succeeds or the socket closes.
/// Plain HTTP connections hold one for their whole life: they never
/// authenticate.
#[derive(Debug)]
pub struct UnauthSlot {
    shared: Arc<Shared>,
    ip: Option<IpAddr>,
}

impl UnauthSlot {
    /// One of `ip`'s `max` places, or `None` when all are taken.
    pub fn claim(shared: &Arc<Shared>, ip: IpAddr, max: usize) -> Option<UnauthSlot> {
        shared.claim_unauth(ip, max).then(|| UnauthSlot {
            shared: shared.clone(),
            ip: Some(ip),
        })
    }

    pub fn release(&mut self) {
        if let Some(ip) = self.ip.take() {
            self.shared.release_unauth(ip);
        }
    }
}

impl Drop for UnauthSlot {
    fn drop(&mut self) {
        self.release();
    }
}
