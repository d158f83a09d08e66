//! The kernel's process events connector (`NETLINK_CONNECTOR`, group `CN_IDX_PROC`): the
//! messages (`linux/connector.h`, `linux/cn_proc.h`) as pure encode/decode functions, and the
//! socket that subscribes to them.
//!
//! Layout of one event datagram (native endianness, as the kernel writes it):
//!
//! ```text
//!  0 nlmsghdr  len u32, type u16, flags u16, seq u32, pid u32
//! 16 cn_msg    id.idx u32, id.val u32, seq u32, ack u32, len u16, flags u16
//! 36 proc_event  what u32, cpu u32, timestamp_ns u64, then event_data (union):
//! 52   fork  parent_pid, parent_tgid, child_pid, child_tgid   (i32 each)
//! 52   exec  process_pid, process_tgid
//! 52   comm  process_pid, process_tgid, comm[16]
//! 52   exit  process_pid, process_tgid, exit_code, exit_signal, parent_pid, parent_tgid
//! 52   ack   err u32                                          (what = NONE)
//! ```
//!
//! Only whole processes matter: a thread's fork, exec, rename or exit (pid ≠ tgid) is dropped
//! here, as keepalived drops it.

use std::io;

use netlink_sys::{protocols::NETLINK_CONNECTOR, Socket, SocketAddr};
use sysio::fd::Registered;
use tokio::io::Interest;

use super::Pid;

/// `CN_IDX_PROC` / `CN_VAL_PROC`: the process events connector's id (and multicast group).
pub const CN_IDX_PROC: u32 = 1;
pub const CN_VAL_PROC: u32 = 1;
/// `enum proc_cn_mcast_op`.
pub const PROC_CN_MCAST_LISTEN: u32 = 1;
pub const PROC_CN_MCAST_IGNORE: u32 = 2;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const CN_MSG_LEN: usize = 20;
/// Where `event_data` starts inside `proc_event`.
const EVENT_DATA: usize = 16;

/// `enum what` of `struct proc_event`.
const PROC_EVENT_NONE: u32 = 0;
const PROC_EVENT_FORK: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
const PROC_EVENT_COMM: u32 = 0x200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`): a burst of process
/// exits must not overflow it (keepalived's guide: 1400 exits need about 500 kB).
const RCVBUF: usize = 1 << 20;

/// A process event that matters for tracking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The reply to a listen request (`err` 0: events will come).
    Ack { err: u32 },
    /// `parent` forked a new process `child` (not a thread).
    Fork { parent: Pid, child: Pid },
    /// The process ran a new program.
    Exec(Pid),
    /// The process renamed itself.
    Comm { pid: Pid, comm: String },
    /// The process exited (it is a zombie until reaped, and no longer counts).
    Exit(Pid),
}

/// The request to start (or stop) sending process events to this socket's group: an
/// `nlmsghdr` + `cn_msg` + `proc_cn_mcast_op`, 40 bytes.
pub fn listen_message(port: u32, listen: bool) -> [u8; 40] {
    let mut m = [0u8; 40];
    m[0..4].copy_from_slice(&40u32.to_ne_bytes());
    m[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
    m[12..16].copy_from_slice(&port.to_ne_bytes());
    m[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m[20..24].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m[32..34].copy_from_slice(&4u16.to_ne_bytes());
    let op = if listen {
        PROC_CN_MCAST_LISTEN
    } else {
        PROC_CN_MCAST_IGNORE
    };
    m[36..40].copy_from_slice(&op.to_ne_bytes());
    m
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The process events in one datagram (several netlink messages may share it). Anything
/// malformed, foreign or about a thread is skipped, never a panic.
pub fn parse(buf: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= NLMSG_HDRLEN {
        let Some(len) = u32_at(rest, 0).map(|l| l as usize) else {
            break;
        };
        if len < NLMSG_HDRLEN || len > rest.len() {
            break;
        }
        let msg = &rest[..len];
        let kind = u16_at(msg, 4).unwrap_or(NLMSG_NOOP);
        if kind != NLMSG_NOOP && kind != NLMSG_ERROR {
            out.extend(parse_cn(&msg[NLMSG_HDRLEN..]));
        }
        // NLMSG_ALIGN: messages start on 4-byte boundaries.
        let next = (len + 3) & !3;
        rest = rest.get(next..).unwrap_or(&[]);
    }
    out
}

/// One `cn_msg` carrying a `proc_event`.
fn parse_cn(cn: &[u8]) -> Option<Event> {
    if u32_at(cn, 0)? != CN_IDX_PROC || u32_at(cn, 4)? != CN_VAL_PROC {
        return None;
    }
    let len = usize::from(u16_at(cn, 16)?);
    let ev = cn.get(CN_MSG_LEN..CN_MSG_LEN + len)?;
    let d = |off: usize| i32_at(ev, EVENT_DATA + off);
    // Only whole processes: pid (the task) must be the tgid (the process).
    let process = |pid: i32, tgid: i32| (pid == tgid && tgid > 0).then_some(tgid);
    match u32_at(ev, 0)? {
        PROC_EVENT_NONE => Some(Event::Ack {
            err: u32_at(ev, EVENT_DATA)?,
        }),
        PROC_EVENT_FORK => {
            let child = process(d(8)?, d(12)?)?;
            Some(Event::Fork {
                parent: d(4)?,
                child,
            })
        }
        PROC_EVENT_EXEC => Some(Event::Exec(process(d(0)?, d(4)?)?)),
        PROC_EVENT_COMM => {
            let pid = process(d(0)?, d(4)?)?;
            let raw = ev.get(EVENT_DATA + 8..EVENT_DATA + 24)?;
            let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            Some(Event::Comm {
                pid,
                comm: String::from_utf8_lossy(&raw[..end]).into_owned(),
            })
        }
        PROC_EVENT_EXIT => Some(Event::Exit(process(d(0)?, d(4)?)?)),
        _ => None,
    }
}

/// A socket subscribed to the process events.
pub struct Connector {
    fd: Registered<Socket>,
    buf: Vec<u8>,
    port: u32,
}

/// Why the connector could not be opened, with what it likely means.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("socket: {0} (kernel without CONFIG_PROC_EVENTS?)")]
    Socket(io::Error),
    #[error("bind to the process events group: {0} (needs root)")]
    Bind(io::Error),
    #[error("listen request: {0}{h}", h = hint(.0))]
    Listen(io::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn hint(e: &io::Error) -> &'static str {
    if e.raw_os_error() == Some(libc::ECONNREFUSED) {
        "; vrrpd runs in a network namespace of its own, and the kernel sends process events to the host's only"
    } else {
        ""
    }
}

impl Connector {
    /// Opens the socket, joins the group and asks for events. The kernel's acknowledgement
    /// comes later as an [`Event::Ack`] (no reply at all from outside the initial user and
    /// PID namespaces).
    pub fn open() -> Result<Self, OpenError> {
        let mut sock = Socket::new(NETLINK_CONNECTOR).map_err(OpenError::Socket)?;
        // Port 0: the kernel picks a free one (the process id may be rtnetlink's already).
        sock.bind(&SocketAddr::new(0, CN_IDX_PROC))
            .map_err(OpenError::Bind)?;
        let mut me = SocketAddr::new(0, 0);
        sock.get_address(&mut me)?;
        // Best effort: the default may be enough, and more needs privileges we may not have.
        let _ = sock.set_rx_buf_sz(RCVBUF);
        sock.set_non_blocking(true)?;
        let msg = listen_message(me.port_number(), true);
        sock.send_to(&msg, &SocketAddr::new(0, 0), 0)
            .map_err(OpenError::Listen)?;
        let fd = Registered::new(sock, Interest::READABLE)?;
        Ok(Self {
            fd,
            buf: Vec::with_capacity(8192),
            port: me.port_number(),
        })
    }

    /// The events of the next datagram from the kernel (other senders are ignored). An
    /// `ENOBUFS` error means events were lost: the caller must rescan.
    pub async fn recv(&mut self) -> io::Result<Vec<Event>> {
        loop {
            let mut guard = self.fd.readable().await?;
            self.buf.clear();
            let buf = &mut self.buf;
            match guard.try_io(|s| s.recv_from(buf, 0)) {
                Ok(Ok((_, from))) if from.port_number() == 0 => return Ok(parse(&self.buf)),
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

impl Drop for Connector {
    /// Tells the kernel this listener is gone (it counts listeners to know whether to build
    /// events at all), as keepalived does on exit.
    fn drop(&mut self) {
        let msg = listen_message(self.port, false);
        let _ = self.fd.get_ref().send_to(&msg, &SocketAddr::new(0, 0), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One event datagram as the kernel builds it: `what` and the `event_data` words.
    fn event(what: u32, data: &[u8]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend(what.to_ne_bytes());
        ev.extend(3u32.to_ne_bytes()); // cpu
        ev.extend(123_456_789u64.to_ne_bytes()); // timestamp_ns
        ev.extend(data);
        ev.resize(40, 0); // sizeof(struct proc_event)
        let mut m = Vec::new();
        m.extend((16 + 20 + ev.len() as u32).to_ne_bytes());
        m.extend(NLMSG_DONE.to_ne_bytes());
        m.extend(0u16.to_ne_bytes());
        m.extend(7u32.to_ne_bytes()); // seq
        m.extend(0u32.to_ne_bytes()); // from the kernel
        m.extend(CN_IDX_PROC.to_ne_bytes());
        m.extend(CN_VAL_PROC.to_ne_bytes());
        m.extend(7u32.to_ne_bytes()); // cn seq
        m.extend(0u32.to_ne_bytes()); // ack
        m.extend((ev.len() as u16).to_ne_bytes());
        m.extend(0u16.to_ne_bytes());
        m.extend(ev);
        m
    }

    fn words(w: &[i32]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    #[test]
    fn listen_message_layout() {
        let m = listen_message(0x1234, true);
        assert_eq!(u32_at(&m, 0), Some(40), "nlmsg_len");
        assert_eq!(u16_at(&m, 4), Some(NLMSG_DONE));
        assert_eq!(u32_at(&m, 12), Some(0x1234), "nlmsg_pid");
        assert_eq!((u32_at(&m, 16), u32_at(&m, 20)), (Some(1), Some(1)));
        assert_eq!(u16_at(&m, 32), Some(4), "cn_msg len");
        assert_eq!(u32_at(&m, 36), Some(PROC_CN_MCAST_LISTEN));
        assert_eq!(
            u32_at(&listen_message(1, false), 36),
            Some(PROC_CN_MCAST_IGNORE)
        );
    }

    #[test]
    fn parses_each_event_kind() {
        let fork = event(PROC_EVENT_FORK, &words(&[100, 100, 200, 200]));
        assert_eq!(
            parse(&fork),
            [Event::Fork {
                parent: 100,
                child: 200
            }]
        );
        assert_eq!(
            parse(&event(PROC_EVENT_EXEC, &words(&[200, 200]))),
            [Event::Exec(200)]
        );
        let mut comm = words(&[200, 200]);
        comm.extend(b"haproxy\0\0\0\0\0\0\0\0\0");
        assert_eq!(
            parse(&event(PROC_EVENT_COMM, &comm)),
            [Event::Comm {
                pid: 200,
                comm: "haproxy".into()
            }]
        );
        // A full 16-byte name without a NUL is taken whole, not overrun.
        let mut long = words(&[5, 5]);
        long.extend(b"abcdefghijklmnop");
        assert_eq!(
            parse(&event(PROC_EVENT_COMM, &long)),
            [Event::Comm {
                pid: 5,
                comm: "abcdefghijklmnop".into()
            }]
        );
        let exit = event(PROC_EVENT_EXIT, &words(&[200, 200, 9, 17, 100, 100]));
        assert_eq!(parse(&exit), [Event::Exit(200)]);
        assert_eq!(
            parse(&event(PROC_EVENT_NONE, &words(&[0]))),
            [Event::Ack { err: 0 }]
        );
        assert_eq!(
            parse(&event(PROC_EVENT_NONE, &words(&[1]))),
            [Event::Ack { err: 1 }]
        );
    }

    #[test]
    fn thread_events_and_others_are_dropped() {
        // A thread: child pid (task) != child tgid (process).
        assert!(parse(&event(PROC_EVENT_FORK, &words(&[100, 100, 201, 100]))).is_empty());
        assert!(parse(&event(PROC_EVENT_EXIT, &words(&[201, 100, 0, 0, 1, 1]))).is_empty());
        assert!(parse(&event(PROC_EVENT_COMM, &words(&[201, 100]))).is_empty());
        assert!(parse(&event(PROC_EVENT_EXEC, &words(&[201, 100]))).is_empty());
        // uid change, sid, ptrace, coredump: not ours.
        for what in [0x4, 0x40, 0x80, 0x100, 0x4000_0000] {
            assert!(
                parse(&event(what, &words(&[1, 1, 0, 0]))).is_empty(),
                "{what:#x}"
            );
        }
        // Another connector's message.
        let mut other = event(PROC_EVENT_EXEC, &words(&[5, 5]));
        other[16..20].copy_from_slice(&2u32.to_ne_bytes());
        assert!(parse(&other).is_empty());
    }

    #[test]
    fn several_messages_in_one_datagram() {
        let mut buf = event(PROC_EVENT_FORK, &words(&[1, 1, 2, 2]));
        buf.extend(event(PROC_EVENT_EXEC, &words(&[2, 2])));
        buf.extend(event(PROC_EVENT_EXIT, &words(&[2, 2])));
        assert_eq!(
            parse(&buf),
            [
                Event::Fork {
                    parent: 1,
                    child: 2
                },
                Event::Exec(2),
                Event::Exit(2)
            ]
        );
    }

    #[test]
    fn malformed_input_is_skipped_without_panic() {
        let good = event(PROC_EVENT_EXEC, &words(&[2, 2]));
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_empty(), "cut at {cut}");
        }
        // nlmsg_len shorter than a header, or longer than the datagram.
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(parse(&bad).is_empty());
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse(&bad).is_empty());
        // cn_msg len pointing past the end.
        let mut bad = good.clone();
        bad[32..34].copy_from_slice(&500u16.to_ne_bytes());
        assert!(parse(&bad).is_empty());
        // NOOP / ERROR messages are skipped, the next one still read.
        let mut buf = good.clone();
        buf[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        buf.extend(&good);
        assert_eq!(parse(&buf), [Event::Exec(2)]);
        // Arbitrary bytes.
        let mut x: u32 = 0x9e37_79b9;
        for n in 0..2000 {
            let bytes: Vec<u8> = (0..n % 200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse(&bytes);
        }
    }
}
