//! NIC offloads that would hand the rings frames larger than the MTU.
//!
//! Packet taps run after GRO, so with GRO (or LRO) on, a ring receives
//! merged super-frames the dataplane cannot forward as they are; the
//! dataplane turns GRO off on its interfaces and puts back what it found
//! when it stops. Senders on a veth with TSO/GSO likewise pass unsegmented
//! frames to their peer: the lab turns those off on its hosts (a real wire
//! segments for them).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An offload, by its legacy ethtool commands (linux/ethtool.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offload {
    Tso,
    Gso,
    Gro,
}

impl Offload {
    /// ETHTOOL_G* (get) and ETHTOOL_S* (set).
    fn commands(self) -> (u32, u32) {
        match self {
            Offload::Tso => (0x1e, 0x1f),
            Offload::Gso => (0x23, 0x24),
            Offload::Gro => (0x2b, 0x2c),
        }
    }

    /// ethtool's name for it (`ethtool -K IF gro off`).
    pub fn name(self) -> &'static str {
        match self {
            Offload::Tso => "tso",
            Offload::Gso => "gso",
            Offload::Gro => "gro",
        }
    }

    /// The offload named `name` (see [`Offload::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [Offload::Tso, Offload::Gso, Offload::Gro]
            .into_iter()
            .find(|o| o.name() == name)
    }
}

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// One legacy ethtool value command on `ifname` (in the calling thread's namespace).
fn ethtool(ifname: &str, cmd: u32, data: u32) -> io::Result<u32> {
    let mut v = EthtoolValue { cmd, data };
    // SAFETY: a datagram socket only for the ioctl, owned by OwnedFd. `req`
    // is plain data with a NUL-terminated name shorter than IFNAMSIZ, and
    // ifr_data points at `v`, which outlives the call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut req: libc::ifreq = std::mem::zeroed();
        let b = ifname.as_bytes();
        if b.len() >= req.ifr_name.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "name too long"));
        }
        for (d, s) in req.ifr_name.iter_mut().zip(b) {
            *d = *s as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (&mut v as *mut EthtoolValue).cast();
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCETHTOOL, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(v.data)
}

/// Whether `what` is on for `ifname`.
pub fn get(ifname: &str, what: Offload) -> io::Result<bool> {
    ethtool(ifname, what.commands().0, 0).map(|v| v != 0)
}

/// Switches one offload of `ifname` (in the calling thread's namespace).
pub fn set(ifname: &str, what: Offload, on: bool) -> io::Result<()> {
    ethtool(ifname, what.commands().1, u32::from(on)).map(drop)
}
