//! The parent's last gasp for a dead child: replay the release recipes it registered
//! ([`super::wire`]). Sockets are opened once, at start, so nothing here can fail for want of a
//! resource at the moment it matters, and nothing allocates.
//!
//! Adverts go first, for every instance, twice back to back (as a Master entering FAULT does:
//! one lost frame costs nothing), so that each peer starts its Skew_Time at once; the address,
//! route and rule removals follow.

use std::io::IoSlice;
use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn, SockaddrIn6};
use socket2::{Domain, Protocol, Socket, Type};

use super::wire::{Advert, Item, Items};
use vrrp_proto::packet::IPPROTO_VRRP;

/// keepalived marks its adverts "internetwork control"; so does [`crate::net`].
const TOS_INTERNETCONTROL: u32 = 0xc0;

/// What a release did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    pub instances: usize,
    pub adverts: usize,
    pub removals: usize,
    /// Sends or removals that failed (an address already gone is not a failure).
    pub failed: usize,
}

/// The sockets the parent replays recipes with.
pub(super) struct Releaser {
    v4: Option<Socket>,
    v6: Option<Socket>,
    nl: Option<netlink_sys::Socket>,
    /// Receives the netlink acknowledgements (errors only matter).
    ack: Vec<u8>,
}

impl Releaser {
    /// Opens a raw VRRP socket per family and an rtnetlink socket; one that cannot be opened
    /// is logged and its part of a release skipped.
    pub(super) fn open() -> Self {
        let raw = |d: Domain| -> std::io::Result<Socket> {
            let s = Socket::new(d, Type::RAW, Some(Protocol::from(i32::from(IPPROTO_VRRP))))?;
            s.set_nonblocking(true)?;
            s.set_cloexec(true)?;
            if d == Domain::IPV4 {
                s.set_multicast_loop_v4(false)?;
                s.set_tos_v4(TOS_INTERNETCONTROL)?;
            } else {
                s.set_multicast_loop_v6(false)?;
            }
            Ok(s)
        };
        let v4 = raw(Domain::IPV4)
            .inspect_err(|e| tracing::warn!(error = %e, "supervisor: no raw IPv4 VRRP socket; it cannot hand over IPv4 instances"))
            .ok();
        // A host without IPv6 has nothing to hand over there.
        let v6 = raw(Domain::IPV6).ok();
        let nl = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)
            .and_then(|mut s| {
                s.bind_auto()?;
                s.set_non_blocking(true)?;
                Ok(s)
            })
            .inspect_err(|e| tracing::warn!(error = %e, "supervisor: no rtnetlink socket; it cannot remove a dead child's addresses"))
            .ok();
        Self {
            v4,
            v6,
            nl,
            ack: vec![0; 16 * 1024],
        }
    }

    /// The descriptors a child must not keep.
    pub(super) fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        let raw = [&self.v4, &self.v6]
            .into_iter()
            .flatten()
            .map(|s| s.as_raw_fd());
        raw.chain(self.nl.iter().map(|s| s.as_raw_fd()))
    }

    /// Replays `recipes` (adverts of all first, then removals).
    pub(super) fn fire<'a>(&mut self, recipes: impl Iterator<Item = &'a [u8]> + Clone) -> Fired {
        let mut f = Fired {
            instances: recipes.clone().count(),
            ..Fired::default()
        };
        for _round in 0..2 {
            for item in recipes.clone().flat_map(Items).flatten() {
                if let Item::Advert(a) = item {
                    match self.send_advert(&a) {
                        Ok(()) => f.adverts += 1,
                        Err(e) => {
                            f.failed += 1;
                            tracing::warn!(error = %e, src = %a.src, dst = %a.dst, "supervisor: priority-0 advert not sent");
                        }
                    }
                }
            }
        }
        if let Some(nl) = &self.nl {
            for item in recipes.flat_map(Items).flatten() {
                if let Item::Netlink(req) = item {
                    match nl.send(req, 0) {
                        Ok(_) => f.removals += 1,
                        Err(e) => {
                            f.failed += 1;
                            tracing::warn!(error = %e, "supervisor: removal request not sent");
                        }
                    }
                }
            }
            // rtnetlink handles a request inside the send: the answers are all queued now.
            while let Ok(n) = nl.recv(&mut &mut self.ack[..], 0) {
                f.failed += refused(&self.ack[..n]);
            }
        }
        f
    }

    fn send_advert(&self, a: &Advert<'_>) -> std::io::Result<()> {
        let iov = [IoSlice::new(a.payload)];
        let ttl = libc::c_int::from(a.ttl);
        match (a.src, a.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let s = self.v4.as_ref().ok_or_else(no_socket)?;
                // The kernel builds the header: the source and the interface come with the
                // packet, so one socket serves every instance.
                let info = libc::in_pktinfo {
                    ipi_ifindex: a.ifindex as i32,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let cmsgs = [
                    ControlMessage::Ipv4PacketInfo(&info),
                    ControlMessage::Ipv4Ttl(&ttl),
                ];
                let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
                sendmsg(s.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), Some(&to))?;
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let s = self.v6.as_ref().ok_or_else(no_socket)?;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: a.ifindex,
                };
                let cmsgs = [
                    ControlMessage::Ipv6PacketInfo(&info),
                    ControlMessage::Ipv6HopLimit(&ttl),
                ];
                let scope = if dst.is_multicast() || dst.is_unicast_link_local() {
                    a.ifindex
                } else {
                    0
                };
                let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope));
                sendmsg(s.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), Some(&to))?;
            }
            _ => return Err(std::io::Error::other("mixed address families")),
        }
        Ok(())
    }
}

fn no_socket() -> std::io::Error {
    std::io::Error::other("no raw socket for this family")
}

/// Errors in a batch of rtnetlink answers, not counting "already gone" (ENOENT, ESRCH,
/// EADDRNOTAVAIL: the child had removed it, or never added it).
fn refused(mut buf: &[u8]) -> usize {
    const NLMSG_ERROR: u16 = 2;
    let mut n = 0;
    while buf.len() >= 20 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < 16 || len > buf.len() {
            break;
        }
        if kind == NLMSG_ERROR {
            let errno = -i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            if errno != 0 && ![libc::ENOENT, libc::ESRCH, libc::EADDRNOTAVAIL].contains(&errno) {
                tracing::warn!(
                    error = %std::io::Error::from_raw_os_error(errno),
                    "supervisor: a removal was refused"
                );
                n += 1;
            }
        }
        buf = &buf[(len + 3) & !3..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_refusals_count() {
        let msg = |errno: i32| {
            let mut m = Vec::new();
            m.extend_from_slice(&36u32.to_ne_bytes());
            m.extend_from_slice(&2u16.to_ne_bytes());
            m.extend_from_slice(&[0; 10]);
            m.extend_from_slice(&(-errno).to_ne_bytes());
            m.extend_from_slice(&[0; 16]);
            m
        };
        let mut batch = msg(0);
        batch.extend(msg(libc::EADDRNOTAVAIL));
        batch.extend(msg(libc::EPERM));
        batch.extend(msg(libc::ENOENT));
        assert_eq!(refused(&batch), 1);
        assert_eq!(refused(&batch[..30]), 0, "a cut answer is not read past");
    }
}
