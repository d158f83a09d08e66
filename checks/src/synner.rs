//! Half-open TCP_CHECKs of every checker through one raw socket per address family, the way
//! [`crate::connector`] multiplexes full connects.
//!
//! Per probe the per-probe path ([`crate::probe::halfopen::HalfOpenProbe::run`]) creates a
//! bound socket to hold a source port, a raw socket, a UDP socket to find the source address,
//! registers the raw socket with the reactor and arms a timer: about ten system calls. Here a
//! probe is a queued SYN: the SYNs of a scheduler turn leave in one `sendmmsg`, answers are read
//! in batches with `recvmmsg`, a socket filter lets only SYN/ACKs and RSTs to our ports through,
//! timeouts are a FIFO per `connect_timeout`.
//!
//! Source ports: a small pool bound (never connected, never listening) for the engine's
//! lifetime, so that no other socket gets them and the kernel answers each SYN/ACK with the RST
//! that removes the server's half-open entry. Probes take them round-robin; one port carries
//! probes to many servers at once (the 4-tuples differ), never two to the same server.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};
use sysio::fd::Registered;
use sysio::mmsg::{self, OutMsg, RecvBatch};
use tokio::io::Interest;
use tokio::time::Instant;

use crate::connector::Finished;
use crate::flights::Flights;
use crate::probe::halfopen::{
    answer, parse_reply, reply_filter, syn_segment, Answer, FILTER_SNAPLEN, SYN_LEN,
};

/// Source ports reserved per address family: at most this many probes to one server at once.
const PORTS: usize = 16;
/// Datagrams per recvmmsg / sendmmsg.
const BATCH: usize = 64;
/// How long a looked-up source address is used before asking the kernel again (a probe that
/// times out forgets it at once).
const SOURCE_TTL: Duration = Duration::from_secs(60);

/// A probe waiting for its answer.
struct Flight {
    checker: usize,
    key: Key,
    seq: u32,
}

/// (server address, our port): unique among the probes in flight.
type Key = (SocketAddr, u16);

/// A multiplicative hash for the in-flight map, looked up for every probe and every answer:
/// keys are our own, so SipHash's protection against chosen keys buys nothing here.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A SYN not yet handed to the kernel.
struct Outgoing {
    slot: u32,
    generation: u32,
    to: SockAddr,
    segment: [u8; SYN_LEN],
}

/// The raw socket and reserved ports of one address family.
struct Family {
    v6: bool,
    raw: Registered<Socket>,
    ports: Vec<u16>,
    /// The sockets holding `ports`.
    _holders: Vec<Socket>,
    next_port: usize,
    /// A UDP socket connected towards a server to learn the source address the kernel picks.
    route: std::net::UdpSocket,
    outbox: Vec<Outgoing>,
}

impl Family {
    fn open(v6: bool) -> io::Result<Self> {
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let mut holders = Vec::with_capacity(PORTS);
        let mut ports = Vec::with_capacity(PORTS);
        for _ in 0..PORTS {
            let h = Socket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
            let any: SocketAddr = if v6 {
                h.set_only_v6(true)?;
                "[::]:0".parse().expect("address")
            } else {
                "0.0.0.0:0".parse().expect("address")
            };
            h.bind(&any.into())?;
            let port = h.local_addr()?.as_socket().map_or(0, |a| a.port());
            ports.push(port);
            holders.push(h);
        }
        let raw = Socket::new(
            domain,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        let prog: Vec<SockFilter> = reply_filter(v6, &ports)
            .into_iter()
            .map(|(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
            .collect();
        raw.attach_filter(&prog)?;
        // Room for bursts of answers between two reads (a batch of SYNs on loopback is answered
        // inside the sendmmsg that sends it).
        let _ = raw.set_recv_buffer_size(1 << 20);
        let _ = raw.set_send_buffer_size(1 << 20);
        // What arrived before the filter was attached is read and ignored like any stray.
        let raw = Registered::new(raw, Interest::READABLE | Interest::WRITABLE)?;
        let route = std::net::UdpSocket::bind(if v6 { "[::]:0" } else { "0.0.0.0:0" })?;
        Ok(Self {
            v6,
            raw,
            ports,
            _holders: holders,
            next_port: 0,
            route,
            outbox: Vec::new(),
        })
    }
}

/// Half-open probes in flight.
pub(crate) struct Synner {
    v4: Option<Family>,
    v6: Option<Family>,
    flights: Flights<Flight>,
    by_key: HashMap<Key, u32, BuildHasherDefault<KeyHasher>>,
    /// Answered (or failed to send) probes not yet handed to the scheduler:
    /// (slot, generation, result, earliest instant it can have finished).
    ready: Vec<(u32, u32, io::Result<Answer>, Instant)>,
    /// When the last read that emptied the sockets started.
    drained_at: Instant,
    /// Source address per checker, and when it was looked up.
    sources: Vec<Option<(IpAddr, Instant)>>,
    batch: RecvBatch,
}

impl Synner {
    /// Open the raw socket and reserve the ports of the families asked for.
    pub(crate) fn new(v4: bool, v6: bool) -> io::Result<Self> {
        Ok(Self {
            v4: v4.then(|| Family::open(false)).transpose()?,
            v6: v6.then(|| Family::open(true)).transpose()?,
            flights: Flights::new(),
            by_key: HashMap::default(),
            ready: Vec::new(),
            drained_at: Instant::now(),
            sources: Vec::new(),
            batch: RecvBatch::new(BATCH, FILTER_SNAPLEN as usize, 0),
        })
    }

    /// Queue a SYN to `dest` (sent by the next [`Synner::flush`]), from `bindto` or the address
    /// the kernel would pick. `now` must not go backwards between calls.
    pub(crate) fn start(
        &mut self,
        checker: usize,
        dest: SocketAddr,
        bindto: Option<IpAddr>,
        now: Instant,
        timeout: Duration,
    ) -> io::Result<()> {
        let src = match bindto {
            Some(ip) => ip,
            None => self.source_towards(checker, dest, now)?,
        };
        let fam = match (dest.is_ipv6(), &mut self.v4, &mut self.v6) {
            (false, Some(f), _) | (true, _, Some(f)) => f,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no raw socket for this address family",
                ))
            }
        };
        // A port with no probe to this server in flight, round-robin.
        let port = (0..fam.ports.len())
            .map(|i| fam.ports[(fam.next_port + i) % fam.ports.len()])
            .find(|p| !self.by_key.contains_key(&(dest, *p)))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "every reserved source port has a probe to this server in flight",
                )
            })?;
        fam.next_port = (fam.next_port + 1) % fam.ports.len();
        let seq: u32 = rand::random();
        let key = (dest, port);
        let by_key = &mut self.by_key;
        self.flights.insert(now, timeout, |slot, generation| {
            by_key.insert(key, slot);
            fam.outbox.push(Outgoing {
                slot,
                generation,
                to: SocketAddr::new(dest.ip(), 0).into(),
                segment: syn_segment(src, dest.ip(), port, dest.port(), seq),
            });
            Ok(Flight { checker, key, seq })
        })
    }

    fn source_towards(
        &mut self,
        checker: usize,
        dest: SocketAddr,
        now: Instant,
    ) -> io::Result<IpAddr> {
        if let Some(Some((src, at))) = self.sources.get(checker) {
            if now.saturating_duration_since(*at) < SOURCE_TTL {
                return Ok(*src);
            }
        }
        let route = match (dest.is_ipv6(), &self.v4, &self.v6) {
            (false, Some(f), _) | (true, _, Some(f)) => &f.route,
            _ => return crate::probe::halfopen::local_ip_towards(dest),
        };
        // Connecting a UDP socket only picks a route and a source; nothing is sent.
        route.connect(SocketAddr::new(dest.ip(), dest.port().max(1)))?;
        let src = route.local_addr()?.ip();
        if self.sources.len() <= checker {
            self.sources.resize(checker + 1, None);
        }
        self.sources[checker] = Some((src, now));
        Ok(src)
    }

    /// Hand the queued SYNs to the kernel, a batch per system call. A SYN the kernel refuses
    /// (no route, …) fails its probe; when the socket's buffer is full the rest wait for
    /// [`Synner::poll_flush`].
    pub(crate) fn flush(&mut self) {
        for fam in [self.v4.as_mut(), self.v6.as_mut()].into_iter().flatten() {
            flush_family(fam.raw.get_ref(), &mut fam.outbox, &mut self.ready);
        }
    }

    /// Send what [`Synner::flush`] could not, as the sockets become writable.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) {
        for fam in [self.v4.as_mut(), self.v6.as_mut()].into_iter().flatten() {
            while !fam.outbox.is_empty() {
                let Poll::Ready(Ok(mut guard)) = fam.raw.poll_write_ready(cx) else {
                    break;
                };
                if flush_family(fam.raw.get_ref(), &mut fam.outbox, &mut self.ready) {
                    guard.clear_ready();
                }
            }
        }
    }

    /// Whether SYNs wait to be sent.
    pub(crate) fn has_outgoing(&self) -> bool {
        [self.v4.as_ref(), self.v6.as_ref()]
            .into_iter()
            .flatten()
            .any(|f| !f.outbox.is_empty())
    }

    /// The earliest deadline still pending (possibly of a probe already answered).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.flights.next_deadline()
    }

    /// Read the answers the sockets hold. Ready when any probe was answered; otherwise the task
    /// is woken when a socket becomes readable.
    pub(crate) fn poll_collect(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let before = self.ready.len();
        let read_from = self.drained_at;
        let started = Instant::now();
        let mut batch = std::mem::take(&mut self.batch);
        let mut drained = true;
        for v6 in [false, true] {
            loop {
                let fam = if v6 {
                    self.v6.as_ref()
                } else {
                    self.v4.as_ref()
                };
                let Some(fam) = fam else { break };
                let Poll::Ready(Ok(mut guard)) = fam.raw.poll_read_ready(cx) else {
                    break;
                };
                let n = read_batch(fam.raw.get_ref(), &mut batch);
                if n < BATCH {
                    // Emptied: wait for the next edge (a newer one is not lost by clearing).
                    guard.clear_ready();
                }
                let v6 = fam.v6;
                for i in 0..n {
                    let (packet, from) = reply_of(&batch, i, v6);
                    self.match_reply(packet, from, read_from);
                }
                if n < BATCH {
                    break;
                }
                drained = false;
            }
        }
        self.batch = batch;
        if drained {
            self.drained_at = started;
        }
        if self.ready.len() > before {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Read what the sockets hold, whatever the reactor knows (between dispatches, so that
    /// answers are taken during a long burst).
    pub(crate) fn collect(&mut self) {
        let read_from = self.drained_at;
        let mut batch = std::mem::take(&mut self.batch);
        for v6 in [false, true] {
            let fam = if v6 {
                self.v6.as_ref()
            } else {
                self.v4.as_ref()
            };
            let Some(fam) = fam else { continue };
            let n = read_batch(fam.raw.get_ref(), &mut batch);
            let v6 = fam.v6;
            for i in 0..n {
                let (packet, from) = reply_of(&batch, i, v6);
                self.match_reply(packet, from, read_from);
            }
        }
        self.batch = batch;
    }

    fn match_reply(&mut self, packet: &[u8], from: Option<Ipv6Addr>, not_before: Instant) {
        let Some(reply) = parse_reply(packet, from) else {
            return;
        };
        let Some(&slot) = self.by_key.get(&(reply.src, reply.dport)) else {
            return;
        };
        let Some((f, generation)) = self.flights.current(slot) else {
            return;
        };
        if let Some(a) = answer(&reply, f.seq) {
            self.ready.push((slot, generation, Ok(a), not_before));
        }
    }

    /// Whether answers wait to be handed over.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Hand over up to `max` answered probes.
    pub(crate) fn finish_ready(&mut self, max: usize, out: &mut Vec<Finished<io::Result<Answer>>>) {
        let take = max.min(self.ready.len());
        let start = self.ready.len() - take;
        let mut ready = std::mem::take(&mut self.ready);
        for (slot, generation, result, not_before) in ready.drain(start..) {
            if self.flights.get(slot, generation).is_none() {
                continue; // a second answer to a probe already judged
            }
            let Some(f) = self.release(slot) else {
                continue;
            };
            out.push(Finished {
                checker: f.checker,
                result: Some(result),
                not_before,
            });
        }
        self.ready = ready;
    }

    /// Give up on probes whose deadline passed (and forget their server's source address:
    /// routes may have changed).
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<Finished<io::Result<Answer>>>) {
        let (v4, v6) = (&mut self.v4, &mut self.v6);
        let (by_key, sources) = (&mut self.by_key, &mut self.sources);
        self.flights.expire(now, |slot, f, at| {
            by_key.remove(&f.key);
            // Its SYN may still be queued (never sent): it must not leave later.
            for fam in [v4.as_mut(), v6.as_mut()].into_iter().flatten() {
                fam.outbox.retain(|o| o.slot != slot);
            }
            if let Some(s) = sources.get_mut(f.checker) {
                *s = None;
            }
            out.push(Finished {
                checker: f.checker,
                result: None,
                not_before: at,
            });
        });
    }

    fn release(&mut self, slot: u32) -> Option<Flight> {
        let f = self.flights.release(slot)?;
        self.by_key.remove(&f.key);
        Some(f)
    }
}

/// Hands `outbox` to the kernel (see [`mmsg::send_all`] for the error policy): a SYN the kernel
/// refuses fails its probe; true when the socket's buffer filled up with SYNs left over.
fn flush_family(
    raw: &Socket,
    outbox: &mut Vec<Outgoing>,
    ready: &mut Vec<(u32, u32, io::Result<Answer>, Instant)>,
) -> bool {
    let msgs: Vec<OutMsg> = outbox
        .iter()
        .map(|o| OutMsg::new(&o.segment).to(&o.to))
        .collect();
    let r = mmsg::send_all(raw.as_fd(), &msgs);
    let done = r.sent + r.failed.len();
    for (i, e) in r.failed {
        let o = &outbox[i];
        ready.push((o.slot, o.generation, Err(e), Instant::now()));
    }
    outbox.drain(..done);
    r.blocked
}

/// One recvmmsg into `batch`: how many datagrams (0 when none or on an error).
fn read_batch(raw: &Socket, batch: &mut RecvBatch) -> usize {
    batch.recv(raw.as_fd()).unwrap_or(0)
}

/// Datagram `i` of `batch`, with, for IPv6, the address it came from (raw IPv6 sockets do not
/// deliver the IP header).
fn reply_of(batch: &RecvBatch, i: usize, v6: bool) -> (&[u8], Option<Ipv6Addr>) {
    let m = batch.get(i);
    let from = v6.then(|| match m.from {
        Some(SocketAddr::V6(a)) => *a.ip(),
        _ => Ipv6Addr::UNSPECIFIED,
    });
    (m.data, from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> bool {
        let r = nix::unistd::geteuid().is_root();
        if !r {
            eprintln!("skipped: needs root (raw TCP socket)");
        }
        r
    }

    /// Read answers and deadlines until `n` probes finished or 3 s passed.
    async fn finish(s: &mut Synner, n: usize) -> Vec<Finished<io::Result<Answer>>> {
        let mut out = Vec::new();
        let end = Instant::now() + Duration::from_secs(3);
        while out.len() < n && Instant::now() < end {
            let _ = tokio::time::timeout(
                Duration::from_millis(50),
                std::future::poll_fn(|cx| s.poll_collect(cx)),
            )
            .await;
            s.finish_ready(usize::MAX, &mut out);
            s.expire(Instant::now(), &mut out);
        }
        out
    }

    #[tokio::test]
    async fn answers_open_and_closed_through_one_raw_socket_per_family() {
        if !root() {
            return;
        }
        let mut s = Synner::new(true, true).unwrap();
        for (i, any) in ["127.0.0.1:0", "[::1]:0"].into_iter().enumerate() {
            let listener = tokio::net::TcpListener::bind(any).await.unwrap();
            let open = listener.local_addr().unwrap();
            let closed = {
                let l = std::net::TcpListener::bind(any).unwrap();
                l.local_addr().unwrap()
            };
            let now = Instant::now();
            let t = Duration::from_secs(2);
            s.start(10 * i, open, None, now, t).unwrap();
            s.start(10 * i + 1, closed, None, now, t).unwrap();
            assert!(s.has_outgoing());
            s.flush();
            assert!(!s.has_outgoing());
            let mut got = finish(&mut s, 2).await;
            got.sort_by_key(|f| f.checker);
            assert_eq!(got.len(), 2, "{open}");
            assert_eq!(got[0].checker, 10 * i);
            assert_eq!(
                got[0].result.as_ref().unwrap().as_ref().unwrap(),
                &Answer::Open
            );
            assert_eq!(got[1].checker, 10 * i + 1);
            assert_eq!(
                got[1].result.as_ref().unwrap().as_ref().unwrap(),
                &Answer::Closed
            );
            // The kernel reset the SYN/ACK: the application never saw a connection.
            let accepted =
                tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
            assert!(accepted.is_err(), "half-open probe completed a handshake");
            assert!(s.by_key.is_empty());
            assert_eq!(
                s.next_deadline(),
                None,
                "answered probes leave no deadline behind"
            );
        }
    }

    #[tokio::test]
    async fn probes_to_one_server_take_distinct_ports_and_time_out_in_order() {
        if !root() {
            return;
        }
        let mut s = Synner::new(true, false).unwrap();
        let dest: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let now = Instant::now();
        for i in 0..PORTS {
            s.start(i, dest, None, now, Duration::from_secs(i as u64 + 1))
                .unwrap();
        }
        let ports: std::collections::HashSet<u16> = s.by_key.keys().map(|k| k.1).collect();
        assert_eq!(ports.len(), PORTS, "one port per probe to the same server");
        let err = s
            .start(99, dest, None, now, Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        // Another server still gets a port.
        s.start(
            100,
            "127.0.0.2:9".parse().unwrap(),
            None,
            now,
            Duration::ZERO,
        )
        .unwrap();
        // Never sent: the deadlines decide, earliest first, and the queued SYNs are dropped.
        let mut out = Vec::new();
        s.expire(now + Duration::from_millis(1500), &mut out);
        let who: Vec<usize> = out.iter().map(|f| f.checker).collect();
        assert_eq!(who, vec![0, 100]);
        assert!(out.iter().all(|f| f.result.is_none()));
        assert_eq!(s.by_key.len(), PORTS - 1);
        s.start(101, dest, None, now, Duration::ZERO).unwrap();
        s.expire(now + Duration::from_secs(60), &mut out);
        assert_eq!(out.len(), PORTS + 2);
        assert!(s.by_key.is_empty());
        assert!(!s.has_outgoing(), "expired probes' SYNs never leave");
    }
}
