//! Puts announcement frames on one interface through an AF_PACKET socket.
//!
//! The socket is opened with protocol 0, so the kernel queues nothing to it: it only sends.
//! Sends are a few dozen bytes on a socket with an empty queue; a blocking `send` returns at
//! once, so callers on an async runtime may call it directly.

use std::ffi::CString;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};

use crate::frame;

/// Why the sender could not be opened or a frame not sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("interface {0} not found")]
    NoSuchInterface(String),
    #[error("cannot read the MAC address of {ifname}: {source}")]
    Mac { ifname: String, source: io::Error },
    #[error("AF_PACKET socket on {ifname}: {source}")]
    Socket { ifname: String, source: io::Error },
    #[error("sending on {ifname}: {source}")]
    Send { ifname: String, source: io::Error },
}

/// A sender bound to one interface.
#[derive(Debug)]
pub struct Sender {
    sock: Socket,
    ifname: String,
    mac: [u8; 6],
}

impl Sender {
    /// Opens a sender on `ifname`, announcing with the interface's own MAC.
    pub fn open(ifname: &str) -> Result<Self, Error> {
        let mac = read_mac(ifname)?;
        Self::open_with_mac(ifname, mac)
    }

    /// Opens a sender that announces `mac` (a virtual MAC) instead of the interface's.
    pub fn open_with_mac(ifname: &str, mac: [u8; 6]) -> Result<Self, Error> {
        let index = ifindex(ifname)?;
        let sock_err = |source| Error::Socket {
            ifname: ifname.to_string(),
            source,
        };
        let sock = Socket::new(Domain::PACKET, Type::RAW, None).map_err(sock_err)?;
        sock.bind(&link_addr(index)).map_err(sock_err)?;
        Ok(Self {
            sock,
            ifname: ifname.to_string(),
            mac,
        })
    }

    /// The MAC the announcements carry.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Sends one gratuitous ARP for `ip`.
    pub fn send_garp(&self, ip: Ipv4Addr) -> Result<(), Error> {
        self.send(&frame::garp(self.mac, ip))
    }

    /// Sends one unsolicited neighbour advertisement for `target` from `src` (keepalived uses
    /// the target itself).
    pub fn send_na(&self, target: Ipv6Addr, src: Ipv6Addr) -> Result<(), Error> {
        self.send(&frame::unsolicited_na(self.mac, src, target))
    }

    fn send(&self, frame: &[u8]) -> Result<(), Error> {
        self.sock
            .send(frame)
            .map(drop)
            .map_err(|source| Error::Send {
                ifname: self.ifname.clone(),
                source,
            })
    }
}

fn ifindex(ifname: &str) -> Result<u32, Error> {
    let c = CString::new(ifname).map_err(|_| Error::NoSuchInterface(ifname.to_string()))?;
    nix::net::if_::if_nametoindex(c.as_c_str())
        .map_err(|_| Error::NoSuchInterface(ifname.to_string()))
}

/// The interface's MAC, from sysfs (the netns of the reading thread decides which sysfs
/// applies, so read it through /sys/class/net of our own namespace).
fn read_mac(ifname: &str) -> Result<[u8; 6], Error> {
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

/// `sockaddr_ll` naming the interface, for bind.
fn link_addr(ifindex: u32) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_ll` is a sockaddr type of this platform and fits in the storage
    // (`view_as` asserts the size); all-zero is a valid `sockaddr_ll` we then fill in.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_ifindex = ifindex as i32;
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the storage holds an initialised `sockaddr_ll` of exactly `len` bytes.
    unsafe { SockAddr::new(storage, len) }
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
        let e = Sender::open("nosuchif0xyz").unwrap_err();
        assert!(e.to_string().contains("nosuchif0xyz"), "{e}");
    }
}
