//! The host's network facts (interface addresses, host name) and TCP
//! keepalive, through libc.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};

use super::last_error;

/// Frees the getifaddrs list even if building the result unwinds.
struct IfAddrs(*mut libc::ifaddrs);

impl Drop for IfAddrs {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful getifaddrs and is
        // freed exactly once, here.
        unsafe { libc::freeifaddrs(self.0) }
    }
}

/// The IPv4 addresses of the interfaces that are up, with their names, in
/// the kernel's order.
pub fn ipv4_addrs() -> Vec<(String, Ipv4Addr)> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is owned
    // by the IfAddrs guard below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Vec::new();
    }
    let list = IfAddrs(head);
    let mut out = Vec::new();
    let mut cur = list.0;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list, which stays alive
        // until `list` is dropped at the end of this function.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let up = ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) != 0;
        if !up || ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to at least a sockaddr.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a sockaddr_in; read_unaligned
        // because the kernel only guarantees sockaddr alignment.
        let sin = unsafe { std::ptr::read_unaligned(ifa.ifa_addr.cast::<libc::sockaddr_in>()) };
        // SAFETY: ifa_name is a non-null, NUL-terminated string.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
        let addr = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        out.push((name.to_string_lossy().into_owned(), addr));
    }
    out
}

/// Whether `ip` is in 100.64.0.0/10, the shared address space that
/// Tailscale assigns its nodes from.
pub fn is_tailnet(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    a == 100 && (b & 0xc0) == 64
}

/// This host's first tailnet (Tailscale) address, if any.
pub fn tailnet_ipv4() -> Option<Ipv4Addr> {
    ipv4_addrs()
        .into_iter()
        .map(|(_, ip)| ip)
        .find(|ip| is_tailnet(*ip))
}

/// The address other machines on the local network most likely reach us
/// at: see [`pick_lan`].
pub fn lan_ipv4() -> Option<Ipv4Addr> {
    pick_lan(&ipv4_addrs())
}

/// The first private (RFC 1918) address; failing that the first other
/// routable one, with a tailnet address last because it is not the LAN.
/// Loopback, link-local and unspecified addresses never qualify.
pub fn pick_lan(addrs: &[(String, Ipv4Addr)]) -> Option<Ipv4Addr> {
    let rank = |ip: &Ipv4Addr| {
        if ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() {
            None
        } else if ip.is_private() {
            Some(0)
        } else if is_tailnet(*ip) {
            Some(2)
        } else {
            Some(1)
        }
    };
    addrs
        .iter()
        .filter_map(|(_, ip)| rank(ip).map(|r| (r, *ip)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, ip)| ip)
}

/// The host name, or "localhost" when it is unset or unreadable.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`; the last byte is kept
    // out of reach so the result is always NUL-terminated.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast::<libc::c_char>(), buf.len() - 1) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// Turns on TCP keepalive so a peer that vanished without a FIN is noticed:
/// first probe after `idle_secs` of silence, then every `idle_secs`, and
/// the connection fails after 3 unanswered probes.
pub fn set_tcp_keepalive(sock: &impl AsFd, idle_secs: u32) -> io::Result<()> {
    let fd = sock.as_fd().as_raw_fd();
    let secs = libc::c_int::try_from(idle_secs.max(1)).unwrap_or(libc::c_int::MAX);
    let options = [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3),
    ];
    for (level, name, value) in options {
        // SAFETY: the pointer and length describe `value`, a live c_int,
        // which is what these options take.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast::<libc::c_void>(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(last_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tailnet_is_100_64_slash_10() {
        assert!(is_tailnet(Ipv4Addr::new(100, 64, 0, 1)));
        assert!(is_tailnet(Ipv4Addr::new(100, 101, 2, 3)));
        assert!(is_tailnet(Ipv4Addr::new(100, 127, 255, 255)));
        assert!(!is_tailnet(Ipv4Addr::new(100, 63, 255, 255)));
        assert!(!is_tailnet(Ipv4Addr::new(100, 128, 0, 0)));
        assert!(!is_tailnet(Ipv4Addr::new(10, 64, 0, 1)));
    }

    #[test]
    fn lan_prefers_private_and_skips_loopback_and_link_local() {
        let a = |s: &str| (String::from("if"), s.parse::<Ipv4Addr>().expect("ip"));
        let addrs = [
            a("127.0.0.1"),
            a("169.254.1.2"),
            a("100.100.1.1"),
            a("203.0.113.5"),
            a("192.168.1.20"),
        ];
        assert_eq!(pick_lan(&addrs), Some(Ipv4Addr::new(192, 168, 1, 20)));
        assert_eq!(pick_lan(&addrs[..4]), Some(Ipv4Addr::new(203, 0, 113, 5)));
        assert_eq!(pick_lan(&addrs[..3]), Some(Ipv4Addr::new(100, 100, 1, 1)));
        assert_eq!(pick_lan(&addrs[..2]), None);
    }

    #[test]
    fn interfaces_include_loopback() {
        let addrs = ipv4_addrs();
        assert!(addrs.iter().any(|(_, ip)| ip.is_loopback()), "{addrs:?}");
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }

    #[test]
    fn keepalive_applies_to_a_tcp_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let stream =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        set_tcp_keepalive(&stream, 30).expect("keepalive");
    }
}
