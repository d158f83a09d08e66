//! AF_PACKET socket with a TPACKET_V2 receive ring, joined to a
//! PACKET_FANOUT_HASH group.
//!
//! Fixed 2 KiB frames, each with its own status word, handed over (and woken
//! up for) one by one: no added latency, one wake-up per burst. (TPACKET_V3's
//! per-block hand-over was measured and left out: a partly filled block waits
//! up to its retire timeout, at least 1 ms, which bounds a closed-loop
//! request/response load by that millisecond per hop.)

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Ring geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Block size in bytes (a multiple of the page size, holding whole frames).
    pub block_size: u32,
    pub block_nr: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            block_size: 1 << 16,
            block_nr: 16,
        }
    }
}

/// V2 frame size: a 1500-byte MTU frame plus headers fits.
const FRAME: u32 = 2048;

/// One ring socket bound to one interface.
#[derive(Debug)]
pub struct RingSocket {
    fd: OwnedFd,
    map: NonNull<u8>,
    map_len: usize,
    cfg: RingConfig,
    cur: u32,
    pub ifindex: i32,
    /// Frames larger than a ring slot (only a truncated copy was received):
    /// never forwarded.
    pub truncated: u64,
}

// SAFETY: the mapping is owned by this value and only accessed through
// `&mut self` (block iteration) or not at all (send); moving it to the worker
// thread that uses it is sound.
unsafe impl Send for RingSocket {}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live `T` of the size passed; the kernel copies it.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Every ethertype: such a socket is a tap, served before the ingress hooks.
pub const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;

impl RingSocket {
    /// Opens a socket receiving the `ethertype` frames (or all of them,
    /// [`ETH_P_ALL`]) of `ifindex` into a ring, in fanout group `group`
    /// (flow-hash demultiplexing across the group; a group holds one
    /// ethertype).
    pub fn open(ifindex: i32, group: u16, cfg: RingConfig, ethertype: u16) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked and owned below.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                ethertype.to_be() as libc::c_int,
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let v = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &v)?;
        let req = libc::tpacket_req {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_nr,
            tp_frame_size: FRAME,
            tp_frame_nr: cfg.block_size / FRAME * cfg.block_nr,
        };
        setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        let map_len = cfg.block_size as usize * cfg.block_nr as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket;
        // the length is exactly the ring's size. Checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        let s = Self {
            fd,
            map,
            map_len,
            cfg,
            cur: 0,
            ifindex,
            truncated: 0,
        };
        // Our own transmissions must not come back in; bypass the qdisc on send.
        let one: libc::c_int = 1;
        setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)?;
        setsockopt(raw, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one)?;
        bind_to_interface(raw, ifindex, ethertype)?;
        let fanout: libc::c_int =
            (group as libc::c_int) | ((libc::PACKET_FANOUT_HASH as libc::c_int) << 16);
        setsockopt(raw, libc::SOL_PACKET, libc::PACKET_FANOUT, &fanout)?;
        Ok(s)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Calls `f(frame, csum_not_ready)` for every frame the kernel has handed
    /// over, returning each to the kernel afterwards — also when `f` panics (the
    /// panic goes on once the frame is back: a frame that makes the
    /// worker panic is dropped, not handed to it again forever). Returns the
    /// number of frames seen.
    pub fn drain(&mut self, mut f: impl FnMut(&mut [u8], bool)) -> usize {
        let per_block = self.cfg.block_size / FRAME;
        let total = self.frames();
        let mut n = 0;
        for _ in 0..total {
            let i = self.cur;
            let at = (i / per_block) as usize * self.cfg.block_size as usize
                + (i % per_block) as usize * FRAME as usize;
            // SAFETY: `at` is the start of frame `i`, inside the mapping and
            // 16-byte aligned; tp_status is its first u32, shared with the
            // kernel, hence the atomic view.
            let status = unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(at).cast::<u32>()) };
            let st = status.load(Ordering::Acquire);
            if st & libc::TP_STATUS_USER == 0 {
                break;
            }
            let handled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: the frame is ours until we store TP_STATUS_KERNEL; its
                // header and the tp_snaplen bytes at tp_mac lie within the frame
                // (checked against FRAME before use).
                unsafe {
                    let ph = &*(self.map.as_ptr().add(at) as *const libc::tpacket2_hdr);
                    let (start, len) = (ph.tp_mac as usize, ph.tp_snaplen as usize);
                    if ph.tp_len as usize != len {
                        self.truncated += 1;
                    } else if start + len <= FRAME as usize {
                        let data =
                            std::slice::from_raw_parts_mut(self.map.as_ptr().add(at + start), len);
                        f(data, st & libc::TP_STATUS_CSUMNOTREADY != 0);
                        n += 1;
                    }
                }
            }));
            status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.cur = (self.cur + 1) % total;
            if let Err(p) = handled {
                std::panic::resume_unwind(p);
            }
        }
        n
    }

    fn frames(&self) -> u32 {
        self.cfg.block_size / FRAME * self.cfg.block_nr
    }

    /// Transmits one Ethernet frame on this socket's interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is a valid readable slice for its length.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Kernel drop count since the last call (PACKET_STATISTICS resets it).
    pub fn ring_drops(&self) -> u64 {
        // SAFETY: tpacket_stats_v3 is plain data; the kernel fills at most `len` bytes.
        unsafe {
            let mut st: libc::tpacket_stats_v3 = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
            let r = libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            );
            if r < 0 {
                0
            } else {
                st.tp_drops as u64
            }
        }
    }
}

impl Drop for RingSocket {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `open`; no references
        // into it outlive `&mut self` borrows.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes.
pub fn wait(fds: &[RawFd], timeout_ms: i32) {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is a valid array of `p.len()` pollfd structs.
    unsafe {
        libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms);
    }
}

/// A plain AF_PACKET socket on one interface: the workers' transmit
/// sockets (`ethertype` 0: receives nothing) and the resolver's ARP socket.
#[derive(Debug)]
pub struct PlainSocket {
    fd: OwnedFd,
}

impl PlainSocket {
    pub fn open(ifindex: i32, ethertype: u16) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked and owned below.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                ethertype.to_be() as libc::c_int,
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        bind_to_interface(raw, ifindex, ethertype)?;
        if ethertype == 0 {
            let one: libc::c_int = 1;
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one)?;
        }
        Ok(Self { fd })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is a valid readable slice for its length.
        let r = unsafe {
            libc::send(
                self.fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Sends several frames, [`sysio::mmsg::MAX_BATCH`] per `sendmmsg`; returns how many went
    /// out (the rest are the caller's drops).
    pub fn send_batch(&self, frames: &[&[u8]]) -> usize {
        let msgs: Vec<sysio::mmsg::OutMsg> =
            frames.iter().map(|f| sysio::mmsg::OutMsg::new(f)).collect();
        sysio::mmsg::send_all(std::os::fd::AsFd::as_fd(&self.fd), &msgs).sent
    }

    /// One pending frame, if any (non-blocking).
    pub fn recv<'a>(&self, buf: &'a mut [u8]) -> Option<&'a [u8]> {
        // SAFETY: `buf` is a valid writable slice for its length.
        let r = unsafe { libc::recv(self.fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        (r > 0).then(|| &buf[..r as usize])
    }
}

/// Binds an AF_PACKET socket to one interface and ethertype (0: receive nothing).
fn bind_to_interface(raw: libc::c_int, ifindex: libc::c_int, ethertype: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ethertype.to_be();
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a valid sockaddr_ll and its size is passed.
    cvt(unsafe {
        libc::bind(
            raw,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// A raw ICMPv6 socket receiving only Neighbour Advertisements: the
/// resolver's ears for its own solicitations (an AF_PACKET socket for IPv6
/// would copy every IPv6 frame to it).
#[derive(Debug)]
pub struct NaSocket {
    fd: OwnedFd,
}

impl NaSocket {
    pub fn open() -> io::Result<Self> {
        const SOL_ICMPV6: libc::c_int = 58;
        const ICMP6_FILTER: libc::c_int = 1;
        // SAFETY: plain socket(2) call; the result is checked and owned below.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_INET6,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::IPPROTO_ICMPV6,
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Linux's filter: a set bit blocks that type; let only 136 through.
        let mut filter = [u32::MAX; 8];
        filter[136 >> 5] &= !(1 << (136 & 31));
        setsockopt(raw, SOL_ICMPV6, ICMP6_FILTER, &filter)?;
        Ok(Self { fd })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// One pending ICMPv6 message (no IPv6 header), if any (non-blocking).
    pub fn recv<'a>(&self, buf: &'a mut [u8]) -> Option<&'a [u8]> {
        // SAFETY: `buf` is a valid writable slice for its length.
        let r = unsafe { libc::recv(self.fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        (r > 0).then(|| &buf[..r as usize])
    }
}
