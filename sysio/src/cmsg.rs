//! Ancillary data: building the control messages a datagram is sent with, reading those it was
//! received with. Only the few this workspace uses are typed.

use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

/// Alignment of control messages (`CMSG_ALIGN`).
const ALIGN: usize = size_of::<usize>();
/// Bytes before a control message's data (`CMSG_LEN(0)`, aligned).
const HDR: usize = (size_of::<libc::cmsghdr>() + ALIGN - 1) & !(ALIGN - 1);

const fn align(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

/// Room for a control message of `data` bytes (`CMSG_SPACE`).
pub const fn space(data: usize) -> usize {
    HDR + align(data)
}

/// Control messages for one datagram to send, aligned as the kernel wants them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmsgBuf {
    /// `u64` words: the alignment of `cmsghdr`.
    words: Vec<u64>,
    len: usize,
}

impl CmsgBuf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded messages.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes (u64 has no padding and any
        // byte pattern is a valid u8); the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    fn bytes_mut(&mut self, at: usize, n: usize) -> &mut [u8] {
        let need = (at + n).div_ceil(8);
        if self.words.len() < need {
            self.words.resize(need, 0);
        }
        // SAFETY: `words` holds `need * 8 >= at + n` initialised bytes, every byte pattern is a
        // valid u64, and the slice mutably borrows `self`.
        let all = unsafe {
            std::slice::from_raw_parts_mut(
                self.words.as_mut_ptr().cast::<u8>(),
                self.words.len() * 8,
            )
        };
        &mut all[at..at + n]
    }

    /// Appends one message of `level`/`kind` carrying `data`.
    pub fn push(&mut self, level: i32, kind: i32, data: &[u8]) -> &mut Self {
        let at = self.len;
        // SAFETY: `cmsghdr` is plain data (integers and, on some libcs, private padding); all
        // zeroes is a valid value.
        let mut hdr: libc::cmsghdr = unsafe { std::mem::zeroed() };
        hdr.cmsg_len = (HDR + data.len()) as _;
        hdr.cmsg_level = level;
        hdr.cmsg_type = kind;
        // SAFETY: reads the `size_of::<cmsghdr>()` bytes of the local `hdr` (integers, zeroed
        // padding: all initialised).
        let hdr_bytes = unsafe {
            std::slice::from_raw_parts(
                (&hdr as *const libc::cmsghdr).cast::<u8>(),
                size_of::<libc::cmsghdr>(),
            )
        };
        self.bytes_mut(at, hdr_bytes.len())
            .copy_from_slice(hdr_bytes);
        self.bytes_mut(at + HDR, data.len()).copy_from_slice(data);
        self.len = at + space(data.len());
        // Zero the padding (a reused buffer may hold old bytes there).
        let pad = self.len - (at + HDR + data.len());
        self.bytes_mut(at + HDR + data.len(), pad).fill(0);
        self
    }

    /// `IP_PKTINFO`: leave by interface `ifindex` (0: routing decides) from source `src`.
    pub fn ip_pktinfo(&mut self, ifindex: u32, src: Ipv4Addr) -> &mut Self {
        let info = libc::in_pktinfo {
            ipi_ifindex: ifindex as i32,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from_ne_bytes(src.octets()),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        self.push(libc::IPPROTO_IP, libc::IP_PKTINFO, as_bytes(&info))
    }

    /// `IPV6_PKTINFO`: leave by interface `ifindex` from source `src`.
    pub fn ipv6_pktinfo(&mut self, ifindex: u32, src: Ipv6Addr) -> &mut Self {
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: src.octets(),
            },
            ipi6_ifindex: ifindex,
        };
        self.push(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, as_bytes(&info))
    }

    /// `IP_TTL` of this datagram (unicast; multicast uses the socket's multicast TTL).
    pub fn ip_ttl(&mut self, ttl: u8) -> &mut Self {
        let v = libc::c_int::from(ttl);
        self.push(libc::IPPROTO_IP, libc::IP_TTL, &v.to_ne_bytes())
    }

    /// `IPV6_HOPLIMIT` of this datagram.
    pub fn ipv6_hoplimit(&mut self, hops: u8) -> &mut Self {
        let v = libc::c_int::from(hops);
        self.push(libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, &v.to_ne_bytes())
    }
}

/// The bytes of a plain-data libc struct.
fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: only called with libc's `in_pktinfo` / `in6_pktinfo`, which have no padding
    // (4+4+4 and 16+4 bytes of integers), so every byte is initialised; the slice borrows `v`.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A received control message this workspace understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmsg {
    /// `IP_PKTINFO`: the interface it arrived on and its destination address.
    IpPktInfo { ifindex: u32, dst: Ipv4Addr },
    /// `IPV6_PKTINFO`.
    Ipv6PktInfo { ifindex: u32, dst: Ipv6Addr },
    /// `IP_TTL`.
    IpTtl(u8),
    /// `IPV6_HOPLIMIT`.
    Ipv6HopLimit(u8),
    /// `SCM_TIMESTAMPNS` (`SO_TIMESTAMPNS`): when the kernel received the datagram.
    Timestamp(SystemTime),
    /// Anything else.
    Other { level: i32, kind: i32 },
}

/// The control messages in `buf` (as `recvmsg` filled it), in order; a truncated tail ends the
/// iteration.
pub fn parse(buf: &[u8]) -> impl Iterator<Item = Cmsg> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let hdr_bytes = buf.get(at..at + size_of::<libc::cmsghdr>())?;
        // SAFETY: `hdr_bytes` holds `size_of::<cmsghdr>()` bytes; `read_unaligned` copes with
        // any alignment and `cmsghdr` is plain data, valid for any bytes.
        let hdr: libc::cmsghdr =
            unsafe { std::ptr::read_unaligned(hdr_bytes.as_ptr().cast::<libc::cmsghdr>()) };
        let len = hdr.cmsg_len as usize;
        let data = buf.get(at + HDR..at.checked_add(len)?)?;
        at += align(len).max(HDR);
        Some(decode(hdr.cmsg_level, hdr.cmsg_type, data))
    })
}

fn decode(level: i32, kind: i32, data: &[u8]) -> Cmsg {
    let int = || {
        data.get(..4)
            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
    };
    let other = Cmsg::Other { level, kind };
    match (level, kind) {
        (libc::IPPROTO_IP, libc::IP_PKTINFO) if data.len() >= 12 => Cmsg::IpPktInfo {
            ifindex: u32::from_ne_bytes(data[..4].try_into().expect("4 bytes")),
            dst: Ipv4Addr::new(data[8], data[9], data[10], data[11]),
        },
        (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if data.len() >= 20 => Cmsg::Ipv6PktInfo {
            dst: Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).expect("16 bytes")),
            ifindex: u32::from_ne_bytes(data[16..20].try_into().expect("4 bytes")),
        },
        (libc::IPPROTO_IP, libc::IP_TTL) => int().map_or(other, |v| Cmsg::IpTtl(v as u8)),
        (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
            int().map_or(other, |v| Cmsg::Ipv6HopLimit(v as u8))
        }
        (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => timestamp(data).map_or(other, Cmsg::Timestamp),
        _ => other,
    }
}

/// A `struct timespec` of `CLOCK_REALTIME`, as `SCM_TIMESTAMPNS` carries it.
fn timestamp(data: &[u8]) -> Option<SystemTime> {
    const HALF: usize = size_of::<libc::time_t>();
    let sec = libc::time_t::from_ne_bytes(data.get(..HALF)?.try_into().ok()?);
    let nsec = libc::c_long::from_ne_bytes(data.get(HALF..2 * HALF)?.try_into().ok()?);
    let since = Duration::new(u64::try_from(sec).ok()?, u32::try_from(nsec).ok()?);
    SystemTime::UNIX_EPOCH.checked_add(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_messages_parse_back() {
        let mut b = CmsgBuf::new();
        b.ipv6_pktinfo(7, "fe80::1".parse().unwrap())
            .ipv6_hoplimit(255);
        assert_eq!(b.as_bytes().len(), space(20) + space(4));
        let got: Vec<Cmsg> = parse(b.as_bytes()).collect();
        assert_eq!(
            got,
            [
                Cmsg::Ipv6PktInfo {
                    ifindex: 7,
                    dst: "fe80::1".parse().unwrap()
                },
                Cmsg::Ipv6HopLimit(255)
            ]
        );
        let mut b = CmsgBuf::new();
        b.ip_ttl(64).push(1, 2, &[9]);
        let got: Vec<Cmsg> = parse(b.as_bytes()).collect();
        assert_eq!(got, [Cmsg::IpTtl(64), Cmsg::Other { level: 1, kind: 2 }]);
        // A truncated buffer ends the iteration instead of reading past it.
        assert_eq!(parse(&b.as_bytes()[..space(4) + 4]).count(), 1);
        assert_eq!(parse(&[]).count(), 0);
        let mut b = CmsgBuf::new();
        let sec: libc::time_t = 1_700_000_000;
        let nsec: libc::c_long = 123_456_789;
        let bytes = [&sec.to_ne_bytes()[..], &nsec.to_ne_bytes()[..]].concat();
        b.push(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &bytes);
        let got: Vec<Cmsg> = parse(b.as_bytes()).collect();
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(got, [Cmsg::Timestamp(at)]);
    }
}
