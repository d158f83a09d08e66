//! The client's view of a failover: ICMP echo to the VIP every millisecond from a thread
//! inside the client namespace; the blackout is the longest stretch without a reply.

use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::{LabError, Result};
use crate::lab::Host;

/// Gaps at least this long are listed in [`ProbeReport::gaps`].
pub const GAP_LIST_MIN: Duration = Duration::from_millis(10);

/// Summary of a probing session. Times are milliseconds since the prober started.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProbeReport {
    pub sent: u64,
    pub received: u64,
    /// Longest interval without a reply between the first and the last reply.
    pub longest_gap_ms: f64,
    /// Reply-less intervals of at least [`GAP_LIST_MIN`]: (last reply before, first reply after).
    pub gaps: Vec<(f64, f64)>,
    /// When the first / last reply arrived.
    pub first_reply_ms: Option<f64>,
    pub last_reply_ms: Option<f64>,
}

impl ProbeReport {
    /// Build a report from reply arrival times (ms since start, any order).
    pub fn from_replies(sent: u64, mut replies: Vec<f64>) -> Self {
        replies.sort_by(f64::total_cmp);
        let mut longest = 0.0f64;
        let mut gaps = Vec::new();
        for w in replies.windows(2) {
            let g = w[1] - w[0];
            longest = longest.max(g);
            if g >= GAP_LIST_MIN.as_secs_f64() * 1000.0 {
                gaps.push((w[0], w[1]));
            }
        }
        Self {
            sent,
            received: replies.len() as u64,
            longest_gap_ms: longest,
            gaps,
            first_reply_ms: replies.first().copied(),
            last_reply_ms: replies.last().copied(),
        }
    }
}

/// A running prober; [`Prober::stop`] ends it and returns the report.
pub struct Prober {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<ProbeReport>>>,
    started: Instant,
    replies_seen: Arc<std::sync::atomic::AtomicU64>,
}

impl Prober {
    /// Start probing `target` from `host` every `interval` (1 ms is the lab's standard).
    pub fn start(host: &Host, target: IpAddr, interval: Duration) -> Result<Self> {
        let ns = File::open(host.netns_path())?;
        let stop = Arc::new(AtomicBool::new(false));
        let replies_seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Instant>>();
        let (s2, r2) = (stop.clone(), replies_seen.clone());
        let handle = std::thread::Builder::new()
            .name("lab-prober".into())
            .spawn(move || {
                // setns affects only this thread: the socket below lives in the client netns.
                let sock = setns(&ns, CloneFlags::CLONE_NEWNET)
                    .map_err(LabError::from)
                    .and_then(|_| open_socket(target));
                let sock = match sock {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(LabError::Other(e.to_string())));
                        return Err(e);
                    }
                };
                let start = Instant::now();
                let _ = ready_tx.send(Ok(start));
                probe_loop(&sock, target, interval, start, &s2, &r2)
            })
            .map_err(LabError::Io)?;
        let started = ready_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| LabError::Other("prober thread did not start".into()))??;
        Ok(Self {
            stop,
            handle: Some(handle),
            started,
            replies_seen,
        })
    }

    /// When probing began (reference for report times).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Replies received so far.
    pub fn replies(&self) -> u64 {
        self.replies_seen.load(Ordering::Relaxed)
    }

    /// Stop and collect the report.
    pub fn stop(mut self) -> Result<ProbeReport> {
        self.stop.store(true, Ordering::Relaxed);
        let h = self.handle.take().expect("joined once");
        h.join()
            .map_err(|_| LabError::Other("prober thread panicked".into()))?
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn open_socket(target: IpAddr) -> Result<Socket> {
    let (domain, proto) = match target {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let s = Socket::new(domain, Type::RAW, Some(proto))?;
    s.connect(&SockAddr::from(SocketAddr::new(target, 0)))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(v6: bool, id: u16, seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"vrrp-lab");
    if !v6 {
        // The kernel fills in the ICMPv6 checksum (pseudo-header); ICMPv4 is ours.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Echo reply (id, seq) from a received datagram, skipping the IPv4 header raw sockets include.
fn parse_reply(v6: bool, buf: &[u8]) -> Option<(u16, u16)> {
    let icmp = if v6 {
        buf
    } else {
        let ihl = (*buf.first()? as usize & 0x0f) * 4;
        buf.get(ihl..)?
    };
    let reply_type = if v6 { 129 } else { 0 };
    if icmp.len() < 8 || icmp[0] != reply_type {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

fn probe_loop(
    sock: &Socket,
    target: IpAddr,
    interval: Duration,
    start: Instant,
    stop: &AtomicBool,
    seen: &std::sync::atomic::AtomicU64,
) -> Result<ProbeReport> {
    let v6 = target.is_ipv6();
    let id: u16 = rand::random();
    // Send time per sequence number; a reply counts once and only for a probe we sent.
    let mut pending: Vec<Option<Instant>> = vec![None; 1 << 16];
    let mut replies: Vec<f64> = Vec::new();
    let mut sent: u64 = 0;
    let mut next = start;
    let mut buf = [0u8; 1500];
    let mut reader: &Socket = sock;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next {
            let seq = sent as u16;
            // Errors (e.g. no route while the neighbour is unresolved) just mean no reply.
            let _ = sock.send(&echo_request(v6, id, seq));
            pending[seq as usize] = Some(now);
            sent += 1;
            next += interval;
            if next < now {
                next = now + interval;
            }
            continue;
        }
        // ppoll, not SO_RCVTIMEO: socket timeouts round up to a jiffy (up to 10 ms), which
        // would throttle the 1 ms probe rate whenever no reply is pending.
        let wait = (next - now).max(Duration::from_micros(20));
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
            Ok(n) if n > 0 => {}
            _ => continue, // timeout (time to send) or EINTR
        }
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(_) => continue, // spurious wake-up or transient error
        };
        let at = Instant::now();
        if let Some((rid, rseq)) = parse_reply(v6, &buf[..n]) {
            if rid == id && pending[rseq as usize].take().is_some() {
                replies.push((at - start).as_secs_f64() * 1000.0);
                seen.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(ProbeReport::from_replies(sent, replies))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_finds_longest_gap_between_replies() {
        let mut r: Vec<f64> = (0..100).map(|i| i as f64).collect();
        r.extend((400..500).map(|i| i as f64));
        let rep = ProbeReport::from_replies(500, r);
        assert_eq!(rep.received, 200);
        assert_eq!(rep.longest_gap_ms, 301.0);
        assert_eq!(rep.gaps, vec![(99.0, 400.0)]);
    }

    #[test]
    fn echo_request_checksum_verifies() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&p), 0);
        let mut ip = vec![0x45u8; 1];
        ip.extend_from_slice(&[0u8; 19]);
        let mut reply = p;
        reply[0] = 0;
        ip.extend_from_slice(&reply);
        assert_eq!(parse_reply(false, &ip), Some((0x1234, 7)));
    }
}
