//! NIC offloads that would hand the rings frames larger than the MTU.
//!
//! Packet taps run after GRO, so with GRO (or LRO) on, a ring receives
//! merged super-frames the dataplane cannot forward as they are; the
//! dataplane turns GRO off on its interfaces. Senders on a veth with TSO/GSO
//! likewise pass unsegmented frames to their peer: the lab turns those off
//! on its hosts (a real wire segments for them).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Legacy ethtool commands (linux/ethtool.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Offload {
    /// ETHTOOL_STSO
    Tso = 0x1f,
    /// ETHTOOL_SGSO
    Gso = 0x24,
    /// ETHTOOL_SGRO
    Gro = 0x2c,
}

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Switches one offload of `ifname` (in the calling thread's namespace).
pub fn set(ifname: &str, what: Offload, on: bool) -> io::Result<()> {
    let mut v = EthtoolValue {
        cmd: what as u32,
        data: on as u32,
    };
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
    Ok(())
}
