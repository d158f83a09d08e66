//! VRRP sockets: one raw IP protocol 112 socket per interface and address family, shared by
//! every instance on that interface.
//!
//! The socket is bound to its interface and joined to the VRRP group there (when a multicast
//! instance uses it); it both receives and sends. Each received packet is split once (IPv4
//! header, or IPv6 control messages), its VRID read, and handed to the one instance the
//! [`Demux`] names: an advert is copied to one socket and decoded once, however many instances
//! share the link (a socket per instance made every advert N copies and N decodes). Adverts
//! leave with their source address and interface in `IP_PKTINFO` / `IPV6_PKTINFO`, several in
//! one `sendmmsg`.
//!
//! `auth_type AH` instances (VRRPv2, IPv4) have sockets of their own, for IP protocol 51: the
//! advert travels inside an AH header whose ICV covers the IPv4 header, so they are received
//! whole and sent whole (`IP_HDRINCL`), as keepalived does ([`Proto::Ah`]).
//!
//! With `use_vmac` the instance's socket is on the VMAC interface: multicast adverts from the
//! virtual MAC are delivered to the macvlan that owns that MAC, never to its parent.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsFd;
use std::task::{Context, Poll};
use std::time::SystemTime;

use nix::sys::socket::{self as nixsock, sockopt};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use sysio::cmsg::{self, Cmsg, CmsgBuf};
use sysio::fd::Registered;
use sysio::mmsg::{self, OutMsg, RecvBatch, SendReport};
use tokio::io::Interest;

use vrrp_proto::packet::{self, ah, DropReason, RxMeta, IPPROTO_VRRP};

/// IP precedence "internetwork control", as keepalived marks its adverts.
const TOS_INTERNETCONTROL: u32 = 0xc0;
/// Datagrams read per system call (a Master's adverts due together arrive together).
const RX_SLOTS: usize = 64;
/// Receive buffer: a Backup reads its adverts in batches a little late (see the VRRP loop),
/// so the socket holds every advert of 255 instances at once, twice over (about 1 KiB of
/// kernel memory each; the default, 208 KiB, holds about 200).
const RX_BUFFER: usize = 1 << 20;
/// Control room per datagram for its receive timestamp (`SO_TIMESTAMPNS`).
const RX_STAMP: usize = cmsg::space(std::mem::size_of::<libc::timespec>());
/// Largest IPv6 advert payload: header and 255 addresses (8 + 255 × 16); IPv4 packets carry
/// their header (up to 60 bytes) and v2 authentication too. Anything longer is malformed.
const RX_SLOT_V4: usize = 60 + 8 + 255 * 4 + 8;
const RX_SLOT_V6: usize = 8 + 255 * 16;

/// The address family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(a: IpAddr) -> Self {
        if a.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// What a socket carries: VRRP adverts (IP protocol 112), or VRRPv2 adverts inside IPsec AH
/// (IP protocol 51).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Vrrp,
    Ah,
}

/// A received packet: what the IP layer says and the VRRP payload (for [`Proto::Ah`], the
/// whole IPv4 packet: the instance checks its ICV, which covers the header).
#[derive(Debug, Clone, Copy)]
pub struct Rx<'a> {
    pub meta: RxMeta,
    pub payload: &'a [u8],
    /// The VRID the advert claims, to find its instance.
    pub vrid: u8,
    /// When the kernel received it (`SO_TIMESTAMPNS`, wall clock), if it says.
    pub stamp: Option<SystemTime>,
}

/// The VRRP socket of one interface and family.
pub struct LinkSocket {
    /// On tokio's reactor, or off it while its packets gather ([`Self::pause`]): exactly one
    /// of `watched` and `paused` holds the socket.
    watched: Option<Registered<Socket>>,
    paused: Option<Socket>,
    ifindex: u32,
    ifname: String,
    family: Family,
    proto: Proto,
    /// Groups joined on the interface.
    joined: Vec<IpAddr>,
    freebind: bool,
    batch: RecvBatch,
}

impl LinkSocket {
    /// Opens the socket on `ifname` (needs CAP_NET_RAW); it joins no group yet. AH is
    /// VRRPv2's, so IPv4 only.
    pub fn open(ifname: &str, ifindex: u32, family: Family, proto: Proto) -> io::Result<Self> {
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 if proto == Proto::Ah => return Err(io::ErrorKind::Unsupported.into()),
            Family::V6 => Domain::IPV6,
        };
        let number = match proto {
            Proto::Vrrp => IPPROTO_VRRP,
            Proto::Ah => ah::IPPROTO_AH,
        };
        let s = Socket::new(
            domain,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(i32::from(number))),
        )?;
        s.bind_device(Some(ifname.as_bytes()))?;
        // Adverts may wait in the socket a few milliseconds; their arrival times are kept.
        nixsock::setsockopt(&s, sockopt::ReceiveTimestampns, &true)?;
        if nixsock::setsockopt(&s, sockopt::RcvBufForce, &RX_BUFFER).is_err() {
            // Without CAP_NET_ADMIN: as much as `net.core.rmem_max` allows.
            s.set_recv_buffer_size(RX_BUFFER)?;
        }
        let batch = match family {
            Family::V4 => {
                // The ICV covers the IPv4 header: it is built here, not by the kernel.
                s.set_header_included_v4(proto == Proto::Ah)?;
                s.set_multicast_ttl_v4(255)?;
                s.set_multicast_loop_v4(false)?;
                s.set_tos_v4(TOS_INTERNETCONTROL)?;
                RecvBatch::new(RX_SLOTS, RX_SLOT_V4, RX_STAMP)
            }
            Family::V6 => {
                s.set_multicast_hops_v6(255)?;
                s.set_multicast_loop_v6(false)?;
                s.set_multicast_if_v6(ifindex)?;
                nixsock::setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?;
                nixsock::setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true)?;
                RecvBatch::new(
                    RX_SLOTS,
                    RX_SLOT_V6,
                    cmsg::space(std::mem::size_of::<libc::in6_pktinfo>())
                        + cmsg::space(std::mem::size_of::<libc::c_int>())
                        + RX_STAMP,
                )
            }
        };
        Ok(Self {
            watched: Some(Registered::new(s, Interest::READABLE)?),
            paused: None,
            ifindex,
            ifname: ifname.to_string(),
            family,
            proto,
            joined: Vec::new(),
            freebind: false,
            batch,
        })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn proto(&self) -> Proto {
        self.proto
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// Joins `group` on the interface (once).
    pub fn join(&mut self, group: IpAddr) -> io::Result<()> {
        if self.joined.contains(&group) {
            return Ok(());
        }
        let s = self.socket();
        match group {
            IpAddr::V4(g) => {
                s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(self.ifindex))?
            }
            IpAddr::V6(g) => s.join_multicast_v6(&g, self.ifindex)?,
        }
        self.joined.push(group);
        Ok(())
    }

    /// Lets adverts leave from an IPv6 source not (yet) on the interface: an IPv6 VMAC
    /// carries its source address only while it sends ([`crate::vmac::source_address`]).
    pub fn allow_foreign_source(&mut self) -> io::Result<()> {
        if !self.freebind && self.family == Family::V6 {
            self.socket().set_freebind_v6(true)?;
            self.freebind = true;
        }
        Ok(())
    }

    /// Sends `msgs` (see [`Destination::control`]) in as few system calls as the socket allows.
    pub fn send(&self, msgs: &[OutMsg<'_>]) -> SendReport {
        mmsg::send_all(self.socket().as_fd(), msgs)
    }

    /// Whether the socket may have something to read; the readiness is left as it is, for
    /// [`Self::poll_recv`] to find.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        match &self.watched {
            Some(fd) => fd.poll_read_ready(cx).map(|_| ()),
            None => Poll::Pending,
        }
    }

    fn socket(&self) -> &Socket {
        either(&self.watched, &self.paused)
    }

    /// Takes the socket off the reactor: packets arriving meanwhile wake nobody (on the
    /// reactor, every one would wake the thread, to learn what it knows). [`Self::recv_now`]
    /// reads them, [`Self::resume`] puts the socket back.
    pub fn pause(&mut self) {
        if let Some(fd) = self.watched.take() {
            self.paused = Some(fd.into_inner());
        }
    }

    /// Puts a paused socket back on the reactor; packets waiting in it make it readable.
    pub fn resume(&mut self) -> io::Result<()> {
        if let Some(s) = self.paused.take() {
            match Registered::try_new(s, Interest::READABLE) {
                Ok(fd) => self.watched = Some(fd),
                Err((s, e)) => {
                    self.paused = Some(s);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Reads one batch whatever the reactor knows and hands each packet to `f`: how many
    /// (0 once the socket is empty).
    pub fn recv_now(&mut self, mut f: impl FnMut(Result<Rx<'_>, DropReason>)) -> io::Result<usize> {
        loop {
            let fd = either(&self.watched, &self.paused).as_fd();
            return match self.batch.recv(fd) {
                Ok(n) => {
                    for i in 0..n {
                        f(split(self.family, self.proto, self.batch.get(i)));
                    }
                    Ok(n)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) => Err(e),
            };
        }
    }

    /// Reads what is waiting (one batch) and hands each packet to `f`; `Pending` once the socket
    /// is empty (the task is woken when more arrives). A receive error other than "nothing
    /// waiting" comes back as `Ready(Err)`.
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(Result<Rx<'_>, DropReason>),
    ) -> Poll<io::Result<usize>> {
        loop {
            let Some(fd) = &self.watched else {
                return Poll::Pending;
            };
            let mut guard = match fd.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            let batch = &mut self.batch;
            match guard.try_io(|s| batch.recv(s.as_fd())) {
                Ok(Ok(n)) => {
                    if n < RX_SLOTS {
                        // Emptied: the next wait is for the next packet, without a system
                        // call to learn there is none (one arriving meanwhile is a new edge).
                        guard.clear_ready();
                    }
                    for i in 0..n {
                        f(split(self.family, self.proto, batch.get(i)));
                    }
                    return Poll::Ready(Ok(n));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// The socket of a [`LinkSocket`], watched or paused (a free function: the receive batch is
/// borrowed beside it).
fn either<'a>(watched: &'a Option<Registered<Socket>>, paused: &'a Option<Socket>) -> &'a Socket {
    match (watched, paused) {
        (Some(fd), _) => fd.get_ref(),
        (None, Some(s)) => s,
        (None, None) => unreachable!("a socket is watched or paused"),
    }
}

/// The IP-level facts of a received datagram and its VRRP payload.
fn split(family: Family, proto: Proto, m: mmsg::RecvMsg<'_>) -> Result<Rx<'_>, DropReason> {
    if m.truncated {
        // Longer than any advert can be.
        return Err(DropReason::BadAddrCount);
    }
    let vrid = |advert: &[u8]| advert.get(1).copied().ok_or(DropReason::TooShort);
    let (mut stamp, mut dst, mut ttl) = (None, None, None);
    for c in m.cmsgs() {
        match c {
            Cmsg::Timestamp(at) => stamp = Some(at),
            Cmsg::Ipv6PktInfo { dst: d, .. } => dst = Some(IpAddr::V6(d)),
            Cmsg::Ipv6HopLimit(h) => ttl = Some(h),
            _ => {}
        }
    }
    match (family, proto) {
        // IPv4 raw sockets deliver the IP header: the codec splits it.
        (Family::V4, Proto::Vrrp) => {
            let (meta, payload) = packet::split_ipv4(m.data)?;
            Ok(Rx {
                meta,
                payload,
                vrid: vrid(payload)?,
                stamp,
            })
        }
        (Family::V4, Proto::Ah) => {
            let (meta, advert) = ah::split_ipv4(m.data)?;
            Ok(Rx {
                meta,
                payload: m.data,
                vrid: vrid(advert)?,
                stamp,
            })
        }
        // IPv6 raw sockets deliver the payload only: hop limit and destination come as cmsgs.
        (Family::V6, _) => {
            let src = m.from.map(|a| a.ip()).filter(IpAddr::is_ipv6);
            match (src, dst, ttl) {
                (Some(src), Some(dst), Some(ttl)) => Ok(Rx {
                    meta: RxMeta { src, dst, ttl },
                    payload: m.data,
                    vrid: vrid(m.data)?,
                    stamp,
                }),
                _ => Err(DropReason::BadIpHeader),
            }
        }
    }
}

/// Where one instance's adverts go: the group or its unicast peers, from its source address.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub src: IpAddr,
    /// The interface adverts leave by.
    pub ifindex: u32,
    /// TTL / hop limit: 255 to the group, `unicast_ttl` to peers.
    pub ttl: u8,
    /// `(address, socket address)` of the group or of every unicast peer.
    dsts: Vec<(IpAddr, SockAddr)>,
    /// Source and interface (`IP_PKTINFO` / `IPV6_PKTINFO`), and the unicast TTL.
    control: CmsgBuf,
}

impl Destination {
    /// To `group` when `peers` is empty, else to each peer with TTL / hop limit `unicast_ttl`;
    /// leaving by interface `ifindex` from `src`.
    pub fn new(
        src: IpAddr,
        ifindex: u32,
        group: IpAddr,
        peers: &[IpAddr],
        unicast_ttl: u8,
    ) -> Self {
        let mut control = CmsgBuf::new();
        match src {
            IpAddr::V4(s) => control.ip_pktinfo(ifindex, s),
            IpAddr::V6(s) => control.ipv6_pktinfo(ifindex, s),
        };
        if !peers.is_empty() {
            match src {
                IpAddr::V4(_) => control.ip_ttl(unicast_ttl),
                IpAddr::V6(_) => control.ipv6_hoplimit(unicast_ttl),
            };
        }
        let to = |a: IpAddr| -> SockAddr {
            match a {
                IpAddr::V4(v) => SocketAddr::from((v, 0)).into(),
                IpAddr::V6(v) => SocketAddrV6::new(v, 0, 0, scope_for(v, ifindex)).into(),
            }
        };
        let dsts = if peers.is_empty() {
            vec![(group, to(group))]
        } else {
            peers.iter().map(|&p| (p, to(p))).collect()
        };
        let ttl = if peers.is_empty() { 255 } else { unicast_ttl };
        Self {
            src,
            ifindex,
            ttl,
            dsts,
            control,
        }
    }

    /// The destinations, with their socket addresses.
    pub fn targets(&self) -> impl Iterator<Item = (IpAddr, &SockAddr)> {
        self.dsts.iter().map(|(a, s)| (*a, s))
    }

    pub fn control(&self) -> &CmsgBuf {
        &self.control
    }
}

fn scope_for(addr: Ipv6Addr, ifindex: u32) -> u32 {
    if addr.is_unicast_link_local() || addr.is_multicast() {
        ifindex
    } else {
        0
    }
}

/// Which instance a packet is for, by VRID and, when instances share a VRID on one link
/// (unicast to different peers), by its source.
#[derive(Debug)]
pub struct Demux<K> {
    by_vrid: Vec<Vec<Member<K>>>,
}

#[derive(Debug, Clone)]
struct Member<K> {
    key: K,
    multicast: bool,
    peers: Vec<IpAddr>,
}

impl<K: Copy + PartialEq> Default for Demux<K> {
    fn default() -> Self {
        Self {
            by_vrid: vec![Vec::new(); 256],
        }
    }
}

impl<K: Copy + PartialEq> Demux<K> {
    pub fn insert(&mut self, vrid: u8, key: K, peers: &[IpAddr]) {
        self.by_vrid[usize::from(vrid)].push(Member {
            key,
            multicast: peers.is_empty(),
            peers: peers.to_vec(),
        });
    }

    pub fn remove(&mut self, vrid: u8, key: K) {
        self.by_vrid[usize::from(vrid)].retain(|m| m.key != key);
    }

    pub fn is_empty(&self) -> bool {
        self.by_vrid.iter().all(Vec::is_empty)
    }

    /// The instance for an advert of `vrid` from `src` to `dst`: the one listing `src` as a
    /// peer, else one of the advert's mode (multicast or unicast), else any of that VRID.
    /// `None`: no instance has that VRID here.
    pub fn lookup(&self, vrid: u8, src: IpAddr, dst: IpAddr) -> Option<K> {
        let ms = &self.by_vrid[usize::from(vrid)];
        match ms.as_slice() {
            [] => None,
            [only] => Some(only.key),
            _ => {
                let multicast = dst.is_multicast();
                ms.iter()
                    .find(|m| m.peers.contains(&src))
                    .or_else(|| ms.iter().find(|m| m.multicast == multicast))
                    .or(ms.first())
                    .map(|m| m.key)
            }
        }
    }
}

/// Whether a packet comes from somebody an instance listens to: anybody but itself, as
/// keepalived (a peer may send from another address than the one we send to), or with
/// `check_unicast_src` in unicast mode the configured peers only.
pub fn accepts_from(
    src: IpAddr,
    own: IpAddr,
    peers: &[IpAddr],
    check_unicast_src: bool,
) -> Result<(), DropReason> {
    if src == own {
        return Err(DropReason::Own);
    }
    if !peers.is_empty() && check_unicast_src && !peers.contains(&src) {
        return Err(DropReason::NotAPeer);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn demux_by_vrid_then_peer_then_mode() {
        let mut d = Demux::default();
        let group = ip("224.0.0.18");
        let me = ip("192.0.2.1");
        d.insert(51, 1usize, &[]);
        d.insert(52, 2, &[ip("192.0.2.2")]);
        d.insert(52, 3, &[ip("192.0.2.3")]);
        d.insert(52, 4, &[]);
        assert_eq!(d.lookup(51, ip("192.0.2.9"), group), Some(1));
        assert_eq!(d.lookup(50, ip("192.0.2.9"), group), None);
        assert_eq!(d.lookup(52, ip("192.0.2.3"), me), Some(3));
        assert_eq!(d.lookup(52, ip("192.0.2.2"), me), Some(2));
        assert_eq!(
            d.lookup(52, ip("192.0.2.9"), group),
            Some(4),
            "multicast one"
        );
        assert_eq!(d.lookup(52, ip("192.0.2.9"), me), Some(2), "a unicast one");
        d.remove(52, 2);
        d.remove(52, 3);
        d.remove(52, 4);
        d.remove(51, 1);
        assert!(d.is_empty());
    }

    #[test]
    fn sources_accepted() {
        let (me, peer, other) = (ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"));
        assert_eq!(accepts_from(me, me, &[], false), Err(DropReason::Own));
        assert_eq!(accepts_from(other, me, &[], true), Ok(()));
        assert_eq!(accepts_from(other, me, &[peer], false), Ok(()));
        assert_eq!(
            accepts_from(other, me, &[peer], true),
            Err(DropReason::NotAPeer)
        );
        assert_eq!(accepts_from(peer, me, &[peer], true), Ok(()));
    }

    #[test]
    fn destinations_carry_source_and_ttl() {
        let d = Destination::new(ip("192.0.2.1"), 3, ip("224.0.0.18"), &[], 255);
        assert_eq!(
            d.targets().map(|t| t.0).collect::<Vec<_>>(),
            [ip("224.0.0.18")]
        );
        let c: Vec<Cmsg> = cmsg::parse(d.control().as_bytes()).collect();
        assert_eq!(c.len(), 1);
        let d = Destination::new(
            ip("fe80::1"),
            3,
            ip("ff02::12"),
            &[ip("fe80::2"), ip("2001:db8::2")],
            64,
        );
        let t: Vec<_> = d.targets().collect();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].1.as_socket_ipv6().unwrap().scope_id(), 3);
        assert_eq!(t[1].1.as_socket_ipv6().unwrap().scope_id(), 0);
        let c: Vec<Cmsg> = cmsg::parse(d.control().as_bytes()).collect();
        assert_eq!(c[1], Cmsg::Ipv6HopLimit(64));
    }
}
