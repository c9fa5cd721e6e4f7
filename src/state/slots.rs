//! The sockets that have not authenticated yet: counted per address and in
//! all, so that peers who connect and then say nothing (or say it slowly)
//! cannot hold the threads and slots everyone else needs.
//!
//! An address is an IPv4 address or an IPv6 /64, the block one host
//! usually has. Past the per-address cap a new socket is refused; past the
//! total cap the oldest unauthenticated socket (if it has had a second to
//! speak) is shut to make room, so a flood that keeps its sockets open by
//! reconnecting loses them to newcomers such as a health check.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;

/// How long an unauthenticated socket is safe from eviction: enough to
/// send a request head or a `connect` on any network.
pub const EVICT_AFTER: Duration = Duration::from_secs(1);

/// The address a peer is counted under: IPv4 as it is, IPv6 by its /64.
pub fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The table of unauthenticated sockets, kept in the shared state.
#[derive(Debug, Default)]
pub(super) struct Slots {
    per_addr: HashMap<IpAddr, usize>,
    /// By age (claim order): the address and a handle that can shut the
    /// socket (a duplicate descriptor, so it never names a reused fd).
    open: BTreeMap<u64, (IpAddr, Instant, TcpStream)>,
    next: u64,
}

/// What a claim decided.
#[derive(Debug)]
pub(super) enum Claim {
    Granted(u64),
    /// Granted by evicting this socket, to be shut after unlocking.
    Evicting(u64, TcpStream),
    /// This address already holds its share.
    PerAddressFull,
    /// All slots are taken by sockets too young to evict.
    Full,
}

impl Slots {
    /// Claims a slot for a socket from `addr` (see [`addr_key`]).
    pub(super) fn claim(
        &mut self,
        addr: IpAddr,
        handle: TcpStream,
        (per_addr, total): (usize, usize),
        now: Instant,
    ) -> Claim {
        if self.per_addr.get(&addr).copied().unwrap_or(0) >= per_addr {
            return Claim::PerAddressFull;
        }
        let mut evicted = None;
        if self.open.len() >= total {
            let oldest = self
                .open
                .iter()
                .next()
                .map(|(id, (_, since, _))| (*id, *since));
            match oldest {
                Some((id, since)) if now.duration_since(since) >= EVICT_AFTER => {
                    evicted = self.release(id).map(|h| (id, h));
                }
                _ => return Claim::Full,
            }
        }
        self.next += 1;
        let id = self.next;
        *self.per_addr.entry(addr).or_insert(0) += 1;
        self.open.insert(id, (addr, now, handle));
        match evicted {
            Some((victim, h)) => {
                log::debug!("unauthenticated socket #{victim} shut to make room");
                Claim::Evicting(id, h)
            }
            None => Claim::Granted(id),
        }
    }

    /// Releases slot `id`; its handle, if it was still held.
    pub(super) fn release(&mut self, id: u64) -> Option<TcpStream> {
        let (addr, _, handle) = self.open.remove(&id)?;
        if let Some(n) = self.per_addr.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                self.per_addr.remove(&addr);
            }
        }
        Some(handle)
    }

    pub(super) fn len(&self) -> usize {
        self.open.len()
    }
}

/// A place among the sockets that have not completed `connect`, claimed
/// when the socket is accepted (before a thread is spawned) and released
/// when the handshake succeeds or the socket closes. Plain HTTP
/// connections hold one for their whole life: they never authenticate.
#[derive(Debug)]
pub struct UnauthSlot {
    shared: Arc<Shared>,
    id: Option<u64>,
}

/// Why a slot could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSlot {
    PerAddress,
    Total,
}

impl UnauthSlot {
    /// A slot for `stream` from `ip`, within `limits` = (per address,
    /// total). Evicting the oldest unauthenticated socket, when it comes to
    /// that, shuts that socket down here, after the state lock is released.
    pub fn claim(
        shared: &Arc<Shared>,
        ip: IpAddr,
        stream: &TcpStream,
        limits: (usize, usize),
    ) -> Result<UnauthSlot, NoSlot> {
        // Without a handle the socket could not be evicted: count it as
        // the total being full rather than hold it unevictably.
        let handle = stream.try_clone().map_err(|_| NoSlot::Total)?;
        let claim = shared.claim_unauth(addr_key(ip), handle, limits);
        let id = match claim {
            Claim::Granted(id) => id,
            Claim::Evicting(id, victim) => {
                let _ = victim.shutdown(std::net::Shutdown::Both);
                id
            }
            Claim::PerAddressFull => return Err(NoSlot::PerAddress),
            Claim::Full => return Err(NoSlot::Total),
        };
        Ok(UnauthSlot {
            shared: shared.clone(),
            id: Some(id),
        })
    }

    pub fn release(&mut self) {
        if let Some(id) = self.id.take() {
            self.shared.release_unauth(id);
        }
    }
}

impl Drop for UnauthSlot {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn handle(l: &TcpListener) -> TcpStream {
        TcpStream::connect(l.local_addr().unwrap()).unwrap()
    }

    #[test]
    fn ipv6_peers_count_by_their_64_block() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(addr_key(a), addr_key(b));
        assert_ne!(addr_key(a), addr_key(c));
        let v4: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(addr_key(v4), v4);
    }

    #[test]
    fn past_the_total_the_oldest_old_enough_socket_makes_room() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = Slots::default();
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        assert!(matches!(
            s.claim(ip(1), handle(&l), (2, 3), t0),
            Claim::Granted(1)
        ));
        assert!(matches!(
            s.claim(ip(1), handle(&l), (2, 3), t0),
            Claim::Granted(2)
        ));
        assert!(matches!(
            s.claim(ip(1), handle(&l), (2, 3), t0),
            Claim::PerAddressFull
        ));
        assert!(matches!(
            s.claim(ip(2), handle(&l), (2, 3), t0),
            Claim::Granted(3)
        ));
        // Full of young sockets: refused.
        assert!(matches!(
            s.claim(ip(3), handle(&l), (2, 3), t0),
            Claim::Full
        ));
        // A second later the oldest (#1) goes to make room.
        let later = t0 + EVICT_AFTER;
        assert!(matches!(
            s.claim(ip(3), handle(&l), (2, 3), later),
            Claim::Evicting(4, _)
        ));
        assert_eq!(s.len(), 3);
        assert!(s.release(1).is_none(), "already evicted");
        assert!(s.release(2).is_some());
        // ip 1 has room again.
        assert!(matches!(
            s.claim(ip(1), handle(&l), (2, 3), later),
            Claim::Granted(5)
        ));
    }
}
