//! Puts announcement frames on any interface through one AF_PACKET socket.
//!
//! The socket is opened with protocol 0 and bound to no interface, so the kernel queues nothing
//! to it: it only sends, each frame addressed to its interface (`sockaddr_ll`). One socket
//! serves every instance of the daemon: it is opened once and closed once (closing an AF_PACKET
//! socket waits for an RCU grace period, ~10 ms, which a socket per instance paid N times on
//! every stop and reload). Frames due together leave in one `sendmmsg`.

use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;

use socket2::{Domain, SockAddr, Socket, Type};
use sysio::mmsg::{self, OutMsg};

use crate::frame;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;

/// Why the sender could not be opened or a frame not sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("interface {0} not found")]
    NoSuchInterface(String),
    #[error("cannot read the MAC address of {ifname}: {source}")]
    Mac { ifname: String, source: io::Error },
    #[error("opening an AF_PACKET socket: {0}")]
    Socket(io::Error),
    #[error("sending on interface {ifindex}: {source}")]
    Send { ifindex: u32, source: io::Error },
}

/// Where announcements go and the MAC they announce (the interface's own, or a virtual MAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    pub ifindex: u32,
    pub mac: [u8; 6],
}

/// The daemon's announcement socket.
#[derive(Debug)]
pub struct Sender {
    sock: Socket,
}

/// What became of a burst of announcements.
#[derive(Debug, Default)]
pub struct Report {
    pub sent: usize,
    /// The first error, when some frames did not go out.
    pub error: Option<Error>,
}

impl Sender {
    /// Opens the socket (needs CAP_NET_RAW).
    pub fn open() -> Result<Self, Error> {
        let sock = Socket::new(Domain::PACKET, Type::RAW.cloexec(), None).map_err(Error::Socket)?;
        Ok(Self { sock })
    }

    /// Sends one gratuitous ARP for `ip` on `port`.
    pub fn send_garp(&self, port: Port, ip: Ipv4Addr) -> Result<(), Error> {
        self.send_frame(port, ETH_P_ARP, &frame::garp(port.mac, ip))
    }

    /// Sends one unsolicited neighbour advertisement for `target` from `src` (keepalived uses
    /// the target itself).
    pub fn send_na(&self, port: Port, target: Ipv6Addr, src: Ipv6Addr) -> Result<(), Error> {
        self.send_frame(
            port,
            ETH_P_IPV6,
            &frame::unsolicited_na(port.mac, src, target),
        )
    }

    /// `rounds` rounds of one announcement per address (GARP for IPv4, NA from the address
    /// itself for IPv6), in order, in as few system calls as the socket allows.
    pub fn announce(&self, port: Port, addrs: &[IpAddr], rounds: u32) -> Report {
        let to4 = sysio::link::link_addr(port.ifindex, ETH_P_ARP);
        let to6 = sysio::link::link_addr(port.ifindex, ETH_P_IPV6);
        let frames: Vec<(Vec<u8>, &SockAddr)> = addrs
            .iter()
            .map(|a| match a {
                IpAddr::V4(ip) => (frame::garp(port.mac, *ip).to_vec(), &to4),
                IpAddr::V6(ip) => (frame::unsolicited_na(port.mac, *ip, *ip).to_vec(), &to6),
            })
            .collect();
        let msgs: Vec<OutMsg> = (0..rounds)
            .flat_map(|_| frames.iter().map(|(f, to)| OutMsg::new(f).to(to)))
            .collect();
        let r = mmsg::send_all(self.sock.as_fd(), &msgs);
        let error = r
            .failed
            .into_iter()
            .map(|(_, e)| e)
            .next()
            .or_else(|| {
                r.blocked
                    .then(|| io::Error::from(io::ErrorKind::WouldBlock))
            })
            .map(|source| Error::Send {
                ifindex: port.ifindex,
                source,
            });
        Report {
            sent: r.sent,
            error,
        }
    }

    fn send_frame(&self, port: Port, protocol: u16, frame: &[u8]) -> Result<(), Error> {
        let to = sysio::link::link_addr(port.ifindex, protocol);
        self.sock
            .send_to(frame, &to)
            .map(drop)
            .map_err(|source| Error::Send {
                ifindex: port.ifindex,
                source,
            })
    }
}

/// The index of interface `ifname` in our network namespace.
pub fn ifindex(ifname: &str) -> Result<u32, Error> {
    let c = CString::new(ifname).map_err(|_| Error::NoSuchInterface(ifname.to_string()))?;
    nix::net::if_::if_nametoindex(c.as_c_str())
        .map_err(|_| Error::NoSuchInterface(ifname.to_string()))
}

/// The interface's MAC, from sysfs (the netns of the reading thread decides which sysfs
/// applies, so read it through /sys/class/net of our own namespace).
pub fn read_mac(ifname: &str) -> Result<[u8; 6], Error> {
    let mac_err = |source| Error::Mac {
        ifname: ifname.to_string(),
        source,
    };
    let text =
        std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).map_err(mac_err)?;
    parse_mac(text.trim()).ok_or_else(|| mac_err(io::Error::other(format!("bad MAC {text:?}"))))
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("02:00:5e:0a:0B:ff"),
            Some([2, 0, 0x5e, 0x0a, 0x0b, 0xff])
        );
        assert_eq!(parse_mac("02:00:5e:0a:0b"), None);
        assert_eq!(parse_mac("02:00:5e:0a:0b:ff:00"), None);
        assert_eq!(parse_mac("zz:00:5e:0a:0b:ff"), None);
    }

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let e = ifindex("nosuchif0xyz").unwrap_err();
        assert!(e.to_string().contains("nosuchif0xyz"), "{e}");
        let e = read_mac("nosuchif0xyz").unwrap_err();
        assert!(e.to_string().contains("nosuchif0xyz"), "{e}");
    }

    /// On loopback (root only): one burst of rounds × addresses leaves as frames, in order.
    #[test]
    fn a_burst_goes_out_on_loopback() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (AF_PACKET)");
            return;
        }
        let s = Sender::open().unwrap();
        let port = Port {
            ifindex: ifindex("lo").unwrap(),
            mac: [2, 0, 0, 0, 0, 1],
        };
        let addrs: [IpAddr; 2] = ["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap()];
        let r = s.announce(port, &addrs, 3);
        assert_eq!(r.sent, 6);
        assert!(r.error.is_none(), "{:?}", r.error);
        s.send_garp(port, "192.0.2.8".parse().unwrap()).unwrap();
    }
}
