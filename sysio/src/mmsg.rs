//! `sendmmsg` / `recvmmsg`: many datagrams per system call, with one error policy.
//!
//! Sending ([`send_all`]): `EINTR` is retried; `EAGAIN` / `ENOBUFS` stop the batch (the caller
//! waits for writability or counts the rest as dropped); any other error belongs to the first
//! datagram not sent, which is reported and skipped, and the batch goes on. Receiving
//! ([`RecvBatch`]): one non-blocking `recvmmsg` into fixed slots; a datagram larger than its
//! slot is flagged truncated, never passed off as whole.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

use socket2::SockAddr;

use crate::cmsg::{self, CmsgBuf};

/// Datagrams per system call (the kernel's own cap is `UIO_MAXIOV`, 1024).
pub const MAX_BATCH: usize = 64;

/// One datagram to send.
#[derive(Debug, Clone, Copy)]
pub struct OutMsg<'a> {
    pub data: &'a [u8],
    /// Destination; `None` on a connected or bound (AF_PACKET) socket.
    pub to: Option<&'a SockAddr>,
    /// Ancillary data (source address, interface, TTL).
    pub control: Option<&'a CmsgBuf>,
}

impl<'a> OutMsg<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            to: None,
            control: None,
        }
    }

    pub fn to(mut self, to: &'a SockAddr) -> Self {
        self.to = Some(to);
        self
    }

    pub fn control(mut self, control: &'a CmsgBuf) -> Self {
        self.control = (!control.is_empty()).then_some(control);
        self
    }
}

/// What became of a batch.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Datagrams the kernel took.
    pub sent: usize,
    /// Datagrams refused one by one (index in the batch, error); the others went on.
    pub failed: Vec<(usize, io::Error)>,
    /// The socket's buffer is full (`EAGAIN` / `ENOBUFS`): datagrams from `sent + failed.len()`
    /// on were not tried.
    pub blocked: bool,
}

impl SendReport {
    /// Datagrams neither sent nor refused: left over because the socket was full.
    pub fn unsent(&self, total: usize) -> usize {
        total - self.sent - self.failed.len()
    }
}

/// Sends every datagram of `msgs` on `fd` (non-blocking), [`MAX_BATCH`] per system call.
pub fn send_all(fd: BorrowedFd<'_>, msgs: &[OutMsg<'_>]) -> SendReport {
    let mut report = SendReport::default();
    let mut at = 0;
    while at < msgs.len() {
        let end = msgs.len().min(at + MAX_BATCH);
        match send_some(fd, &msgs[at..end]) {
            Ok(n) => {
                report.sent += n;
                at += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(libc::ENOBUFS) =>
            {
                report.blocked = true;
                break;
            }
            Err(e) => {
                report.failed.push((at, e));
                at += 1;
            }
        }
    }
    report
}

/// One `sendmmsg`: how many of `msgs` the kernel took (at least one, or an error for the first).
fn send_some(fd: BorrowedFd<'_>, msgs: &[OutMsg<'_>]) -> io::Result<usize> {
    let mut iov: Vec<libc::iovec> = msgs
        .iter()
        .map(|m| libc::iovec {
            iov_base: m.data.as_ptr() as *mut libc::c_void,
            iov_len: m.data.len(),
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = msgs
        .iter()
        .zip(iov.iter_mut())
        .map(|(m, iov)| {
            // SAFETY: `mmsghdr` is plain data; all zeroes is an empty header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            if let Some(to) = m.to {
                h.msg_hdr.msg_name = to.as_ptr() as *mut libc::c_void;
                h.msg_hdr.msg_namelen = to.len();
            }
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            if let Some(c) = m.control {
                let c = c.as_bytes();
                h.msg_hdr.msg_control = c.as_ptr() as *mut libc::c_void;
                h.msg_hdr.msg_controllen = c.len() as _;
            }
            h
        })
        .collect();
    // SAFETY: every header points at an address, one iovec over a live data slice and an
    // aligned control buffer that `msgs`, `iov` and `hdrs` keep alive across the call, each
    // with its true length; the kernel only reads them (and writes `msg_len`).
    let n = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            hdrs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Fixed receive slots for `recvmmsg`, reused from call to call.
#[derive(Debug)]
pub struct RecvBatch {
    slot: usize,
    data: Vec<u8>,
    control_slot: usize,
    /// `u64` words: control messages must be aligned.
    control: Vec<u64>,
    names: Vec<libc::sockaddr_storage>,
    /// Per datagram received: length, `msg_flags`, name length, control length.
    got: Vec<(usize, i32, u32, usize)>,
}

/// One datagram of a [`RecvBatch`].
#[derive(Debug, Clone, Copy)]
pub struct RecvMsg<'a> {
    pub data: &'a [u8],
    /// The datagram was larger than the slot: `data` is its beginning only.
    pub truncated: bool,
    /// Control messages did not all fit.
    pub control_truncated: bool,
    /// The sender, when the socket reports one (IPv4 / IPv6).
    pub from: Option<SocketAddr>,
    control: &'a [u8],
}

impl RecvMsg<'_> {
    /// The control messages it came with.
    pub fn cmsgs(&self) -> impl Iterator<Item = cmsg::Cmsg> + '_ {
        cmsg::parse(self.control)
    }
}

impl Default for RecvBatch {
    /// No slots (a placeholder while the real one is borrowed out).
    fn default() -> Self {
        Self::new(0, 0, 0)
    }
}

impl RecvBatch {
    /// `slots` datagrams of up to `slot` bytes, each with `control` bytes of ancillary data
    /// (use [`cmsg::space`] to size it).
    pub fn new(slots: usize, slot: usize, control: usize) -> Self {
        let control_slot = control.div_ceil(8);
        Self {
            slot,
            data: vec![0; slots * slot],
            control_slot,
            control: vec![0; slots * control_slot],
            // SAFETY: `sockaddr_storage` is plain data; all zeroes is a valid (AF_UNSPEC) value.
            names: vec![unsafe { std::mem::zeroed() }; slots],
            got: Vec::with_capacity(slots),
        }
    }

    /// One non-blocking `recvmmsg`: how many datagrams arrived (`WouldBlock` when none).
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.got.clear();
        let slots = self.names.len();
        let slot = self.slot;
        let cslot = self.control_slot;
        let data = self.data.as_mut_ptr();
        let control = self.control.as_mut_ptr();
        let mut iov: Vec<libc::iovec> = (0..slots)
            .map(|i| libc::iovec {
                // SAFETY: `i * slot` is within `data` (`slots * slot` bytes long).
                iov_base: unsafe { data.add(i * slot) }.cast(),
                iov_len: slot,
            })
            .collect();
        let names = self.names.as_mut_ptr();
        let mut hdrs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .enumerate()
            .map(|(i, iov)| {
                // SAFETY: `mmsghdr` is plain data; all zeroes is an empty header.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                // SAFETY: `i < slots`, the length of `names` and of the control words in slots.
                h.msg_hdr.msg_name = unsafe { names.add(i) }.cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                if cslot > 0 {
                    // SAFETY: as above, `i * cslot` words are within `control`.
                    h.msg_hdr.msg_control = unsafe { control.add(i * cslot) }.cast();
                    h.msg_hdr.msg_controllen = (cslot * 8) as _;
                }
                h
            })
            .collect();
        // SAFETY: each header points at its own slot of `data`, its own `sockaddr_storage` and
        // its own aligned control words, with their true lengths; all live across the call
        // (`self` is borrowed mutably, nothing else aliases them). Non-blocking, no timeout.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        // `msg_controllen` is `size_t` in glibc, `socklen_t` in musl.
        #[allow(clippy::unnecessary_cast)]
        self.got.extend(hdrs[..n].iter().map(|h| {
            (
                h.msg_len as usize,
                h.msg_hdr.msg_flags,
                h.msg_hdr.msg_namelen,
                h.msg_hdr.msg_controllen as usize,
            )
        }));
        Ok(n)
    }

    /// Datagrams of the last [`Self::recv`].
    pub fn len(&self) -> usize {
        self.got.len()
    }

    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }

    /// Datagram `i` of the last [`Self::recv`].
    pub fn get(&self, i: usize) -> RecvMsg<'_> {
        let (len, flags, namelen, clen) = self.got[i];
        let start = i * self.slot;
        let data = &self.data[start..start + len.min(self.slot)];
        // SAFETY: the control words are initialised `u64`s, so their bytes are initialised u8s;
        // the slice borrows `self`.
        let words = unsafe {
            std::slice::from_raw_parts(self.control.as_ptr().cast::<u8>(), self.control.len() * 8)
        };
        let cstart = i * self.control_slot * 8;
        let clen = clen.min(self.control_slot * 8);
        RecvMsg {
            data,
            truncated: flags & libc::MSG_TRUNC != 0 || len > self.slot,
            control_truncated: flags & libc::MSG_CTRUNC != 0,
            from: socket_addr(&self.names[i], namelen),
            control: &words[cstart..cstart + clen],
        }
    }
}

/// An IPv4 / IPv6 address from a `sockaddr_storage` the kernel filled with `len` bytes.
fn socket_addr(s: &libc::sockaddr_storage, len: u32) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(s.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a `sockaddr_in` (family AF_INET, length checked) into the
            // storage, which is large and aligned enough for any sockaddr.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a `sockaddr_in6`.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(
                SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )
                .into(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_one_call_each() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = SockAddr::from(rx.local_addr().unwrap());
        let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let msgs: Vec<OutMsg> = payloads.iter().map(|p| OutMsg::new(p).to(&to)).collect();
        let r = send_all(tx.as_fd(), &msgs);
        assert_eq!((r.sent, r.failed.len(), r.blocked), (5, 0, false));
        let mut batch = RecvBatch::new(8, 12, 0);
        let n = batch.recv(rx.as_fd()).unwrap();
        assert_eq!(n, 5);
        for (i, p) in payloads.iter().enumerate() {
            let m = batch.get(i);
            assert_eq!(m.from, Some(tx.local_addr().unwrap()));
            // Slots are 12 bytes: the last three datagrams did not fit and say so.
            assert_eq!(m.truncated, i >= 3, "{i}");
            assert_eq!(m.data, &p[..m.data.len()]);
        }
        let e = batch.recv(rx.as_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_refused_datagram_is_reported_and_the_batch_goes_on() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = SockAddr::from(rx.local_addr().unwrap());
        // An IPv6 destination on an IPv4 socket is refused (EAFNOSUPPORT / EINVAL).
        let bad = SockAddr::from("[::1]:9".parse::<SocketAddr>().unwrap());
        let msgs = [
            OutMsg::new(b"a").to(&to),
            OutMsg::new(b"b").to(&bad),
            OutMsg::new(b"c").to(&to),
        ];
        let r = send_all(tx.as_fd(), &msgs);
        assert_eq!(r.sent, 2);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.failed[0].0, 1);
        assert_eq!(r.unsent(3), 0);
        let mut batch = RecvBatch::new(4, 4, 0);
        assert_eq!(batch.recv(rx.as_fd()).unwrap(), 2);
        assert_eq!(
            (batch.get(0).data, batch.get(1).data),
            (&b"a"[..], &b"c"[..])
        );
    }

    #[test]
    fn control_messages_come_with_each_datagram() {
        let rx = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).unwrap();
        if rx
            .bind(&SockAddr::from("[::1]:0".parse::<SocketAddr>().unwrap()))
            .is_err()
        {
            eprintln!("skipped: no IPv6 loopback");
            return;
        }
        nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::Ipv6RecvHopLimit, &true)
            .unwrap();
        let tx = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let mut c = CmsgBuf::new();
        c.ipv6_hoplimit(7);
        let to = rx.local_addr().unwrap();
        let msgs = [
            OutMsg::new(b"x").to(&to).control(&c),
            OutMsg::new(b"y").to(&to),
        ];
        assert_eq!(send_all(tx.as_fd(), &msgs).sent, 2);
        let mut batch = RecvBatch::new(4, 16, cmsg::space(4));
        assert_eq!(batch.recv(rx.as_fd()).unwrap(), 2);
        let hops = |i| batch.get(i).cmsgs().collect::<Vec<_>>();
        assert_eq!(hops(0), [cmsg::Cmsg::Ipv6HopLimit(7)]);
        assert_eq!(hops(1), [cmsg::Cmsg::Ipv6HopLimit(64)]);
    }

    #[test]
    fn receive_timestamps_tell_when_the_kernel_took_each_datagram() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
            .unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // The kernel switches its receive timestamps on asynchronously after the first
        // socket asks: give it a moment, so the datagram is stamped when it arrives.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = std::time::SystemTime::now();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut batch = RecvBatch::new(4, 16, cmsg::space(16));
        assert_eq!(batch.recv(rx.as_fd()).unwrap(), 1);
        let stamps: Vec<_> = batch.get(0).cmsgs().collect();
        let [cmsg::Cmsg::Timestamp(at)] = stamps[..] else {
            panic!("expected one timestamp, got {stamps:?}");
        };
        // Taken when the datagram arrived, not when it was read 20 ms later.
        assert!(at >= before, "{at:?} before {before:?}");
        let read_at = std::time::SystemTime::now();
        assert!(
            read_at.duration_since(at).unwrap() >= std::time::Duration::from_millis(20),
            "stamped when read"
        );
    }
}
