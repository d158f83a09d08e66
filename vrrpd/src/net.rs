//! VRRP sockets: raw IP protocol 112 on one interface, multicast or unicast.
//!
//! Two sockets per instance, as keepalived does: a receive socket bound to the device (and
//! joined to the group in multicast mode) that sees every VRRP packet on the link, and a send
//! socket bound to the source address so the kernel fills the IP header with the right source,
//! TTL / hop limit 255 and multicast loop off. The receive path hands the codec the payload and
//! what it needs from the IP header ([`RxMeta`]).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{self as nixsock, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use vrrp_proto::packet::{self, Advert, DropReason, RxMeta, IPPROTO_VRRP};

/// IP precedence "internetwork control", as keepalived marks its adverts.
const TOS_INTERNETCONTROL: u32 = 0xc0;

/// Where and how an instance talks VRRP.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// The interface adverts are received on.
    pub ifname: String,
    pub ifindex: u32,
    /// The interface adverts leave by: the same, or the VMAC interface, so the frames carry
    /// the virtual MAC as keepalived's do.
    pub tx_ifname: String,
    pub tx_ifindex: u32,
    /// Source of our adverts (IPv4 primary / `unicast_src_ip`, or IPv6 link-local).
    pub src: IpAddr,
    /// `src` is on `tx_ifname` only while we send (an IPv6 VMAC): bind to it regardless.
    pub src_while_sending: bool,
    /// Multicast group, used when `peers` is empty.
    pub group: IpAddr,
    /// Unicast peers; unicast mode when non-empty.
    pub peers: Vec<IpAddr>,
    /// `check_unicast_src`: in unicast mode, take adverts from the peers only.
    pub check_unicast_src: bool,
    /// TTL / hop limit of unicast adverts (`unicast_ttl`); multicast always uses 255.
    pub unicast_ttl: u8,
}

/// A received packet: the IP-level facts and where the VRRP payload sits in the buffer.
#[derive(Debug, Clone)]
pub struct Received {
    pub meta: RxMeta,
    pub payload: std::ops::Range<usize>,
}

/// The pair of raw sockets of one instance.
pub struct VrrpSocket {
    rx: AsyncFd<Socket>,
    tx: Socket,
    cfg: SocketConfig,
}

impl VrrpSocket {
    /// Opens and configures both sockets. Needs CAP_NET_RAW.
    pub fn open(cfg: SocketConfig) -> io::Result<Self> {
        let (rx, tx) = match cfg.src {
            IpAddr::V4(src) => open_v4(&cfg, src)?,
            IpAddr::V6(src) => open_v6(&cfg, src)?,
        };
        // SAFETY: `Socket` owns its descriptor: it stays open and is the same descriptor until
        // the `AsyncFd` (which now owns the `Socket`) is dropped.
        let rx = unsafe { AsyncFd::register_with_interest(rx, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Self { rx, tx, cfg })
    }

    pub fn config(&self) -> &SocketConfig {
        &self.cfg
    }

    /// Encodes and sends an advert to the group or to every unicast peer.
    pub fn send(&self, advert: &Advert) -> io::Result<()> {
        let dsts: &[IpAddr] = if self.cfg.peers.is_empty() {
            std::slice::from_ref(&self.cfg.group)
        } else {
            &self.cfg.peers
        };
        let mut last_err = None;
        for &dst in dsts {
            let bytes = advert.encode(self.cfg.src, dst);
            let to: SocketAddr = match dst {
                IpAddr::V4(a) => (a, 0).into(),
                IpAddr::V6(a) => {
                    SocketAddrV6::new(a, 0, 0, scope_for(a, self.cfg.tx_ifindex)).into()
                }
            };
            // A full socket buffer or an unreachable peer must not stop the other peers.
            if let Err(e) = self.tx.send_to(&bytes, &to.into()) {
                last_err = Some(e);
            }
        }
        last_err.map_or(Ok(()), Err)
    }

    /// Waits for the next packet. Packets that are not VRRP at the IP level come back as
    /// `Ok(Err(reason))` so the caller can count them.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Result<Received, DropReason>> {
        loop {
            let mut guard = self.rx.readable().await?;
            let res = guard.try_io(|fd| match self.cfg.src {
                IpAddr::V4(_) => recv_v4(fd.get_ref(), buf),
                IpAddr::V6(_) => recv_v6(fd.get_ref(), buf),
            });
            match res {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Whether a received packet comes from somebody we listen to: anybody but ourselves, as
    /// keepalived (a peer may send from another address than the one we send to), or with
    /// `check_unicast_src` in unicast mode the configured peers only.
    pub fn accepts_from(&self, src: IpAddr) -> Result<(), DropReason> {
        if src == self.cfg.src {
            return Err(DropReason::Own);
        }
        let unicast = !self.cfg.peers.is_empty();
        if unicast && self.cfg.check_unicast_src && !self.cfg.peers.contains(&src) {
            return Err(DropReason::NotAPeer);
        }
        Ok(())
    }
}

fn scope_for(addr: Ipv6Addr, ifindex: u32) -> u32 {
    if addr.is_unicast_link_local() || addr.is_multicast() {
        ifindex
    } else {
        0
    }
}

fn raw_socket(domain: Domain, ifname: &str) -> io::Result<Socket> {
    let s = Socket::new(
        domain,
        Type::RAW,
        Some(Protocol::from(i32::from(IPPROTO_VRRP))),
    )?;
    s.bind_device(Some(ifname.as_bytes()))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn open_v4(cfg: &SocketConfig, src: Ipv4Addr) -> io::Result<(Socket, Socket)> {
    let rx = raw_socket(Domain::IPV4, &cfg.ifname)?;
    if cfg.peers.is_empty() {
        let IpAddr::V4(group) = cfg.group else {
            return Err(io::Error::other(
                "IPv4 instance with an IPv6 multicast group",
            ));
        };
        rx.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(cfg.ifindex))?;
    }
    let tx = raw_socket(Domain::IPV4, &cfg.tx_ifname)?;
    tx.bind(&SocketAddr::from((src, 0)).into())?;
    tx.set_multicast_ttl_v4(255)?;
    tx.set_multicast_loop_v4(false)?;
    tx.set_ttl_v4(u32::from(cfg.unicast_ttl))?;
    tx.set_tos_v4(TOS_INTERNETCONTROL)?;
    Ok((rx, tx))
}

fn open_v6(cfg: &SocketConfig, src: Ipv6Addr) -> io::Result<(Socket, Socket)> {
    let rx = raw_socket(Domain::IPV6, &cfg.ifname)?;
    if cfg.peers.is_empty() {
        let IpAddr::V6(group) = cfg.group else {
            return Err(io::Error::other(
                "IPv6 instance with an IPv4 multicast group",
            ));
        };
        rx.join_multicast_v6(&group, cfg.ifindex)?;
    }
    nixsock::setsockopt(&rx, sockopt::Ipv6RecvHopLimit, &true)?;
    nixsock::setsockopt(&rx, sockopt::Ipv6RecvPacketInfo, &true)?;
    let tx = raw_socket(Domain::IPV6, &cfg.tx_ifname)?;
    tx.set_freebind_v6(cfg.src_while_sending)?;
    tx.bind(&SocketAddrV6::new(src, 0, 0, scope_for(src, cfg.tx_ifindex)).into())?;
    tx.set_multicast_hops_v6(255)?;
    tx.set_unicast_hops_v6(u32::from(cfg.unicast_ttl))?;
    tx.set_multicast_loop_v6(false)?;
    tx.set_multicast_if_v6(cfg.tx_ifindex)?;
    Ok((rx, tx))
}

/// IPv4 raw sockets deliver the IP header: the codec splits it.
fn recv_v4(sock: &Socket, buf: &mut [u8]) -> io::Result<Result<Received, DropReason>> {
    let n = nixsock::recv(sock.as_raw_fd(), buf, MsgFlags::empty())?;
    Ok(packet::split_ipv4(&buf[..n]).map(|(meta, payload)| {
        let start = n - payload.len();
        Received {
            meta,
            payload: start..n,
        }
    }))
}

/// IPv6 raw sockets deliver the payload only: hop limit and destination come as cmsgs.
fn recv_v6(sock: &Socket, buf: &mut [u8]) -> io::Result<Result<Received, DropReason>> {
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = nixsock::recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )?;
    let n = msg.bytes;
    let src = msg
        .address
        .and_then(|a| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())));
    let mut dst = None;
    let mut ttl = None;
    for c in msg.cmsgs()? {
        match c {
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)))
            }
            ControlMessageOwned::Ipv6HopLimit(h) => ttl = u8::try_from(h).ok(),
            _ => {}
        }
    }
    Ok(match (src, dst, ttl) {
        (Some(src), Some(dst), Some(ttl)) => Ok(Received {
            meta: RxMeta { src, dst, ttl },
            payload: 0..n,
        }),
        _ => Err(DropReason::BadIpHeader),
    })
}
