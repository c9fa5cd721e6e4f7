//! The per-IP count of sockets that have not authenticated yet.

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
    pub fn claim(shared: &Arc<Shared>, ip: IpAddr) -> Option<UnauthSlot> {
        let mut st = shared.state();
        let n = st.unauthenticated.entry(ip).or_insert(0);
        if *n >= shared.live().settings.limits.max_unauth_per_ip {
            return None;
        }
        *n += 1;
        Some(UnauthSlot {
            shared: shared.clone(),
            ip: Some(ip),
        })
    }

    pub fn release(&mut self) {
        if let Some(ip) = self.ip.take() {
            let mut st = self.shared.state();
            if let Some(n) = st.unauthenticated.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    st.unauthenticated.remove(&ip);
                }
            }
        }
    }
}

impl Drop for UnauthSlot {
    fn drop(&mut self) {
        self.release();
    }
}
