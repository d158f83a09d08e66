//! TCP_CHECK `half_open`: SYN over a raw socket; a SYN/ACK means the port is open, an RST that
//! it is closed. The kernel answers the SYN/ACK with an RST (our source port is held by a bound,
//! unconnected socket, so no socket accepts the segment), which also removes the server's
//! half-open entry: the server's application never sees a connection.
//!
//! The scheduler sends these through one shared engine (`crate::synner`): one raw socket per
//! address family, reserved source ports, SYNs and answers in batches. [`HalfOpenProbe::run`]
//! is the per-probe path, for checkers the engine cannot serve (`bind_if`, `fwmark`,
//! `bind_port`) or when its raw socket cannot be opened. The segment building, parsing, matching
//! and the kernel filter here are pure.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use crate::health::Outcome;
use crate::spec::{Connect, Target, TcpCheck};

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Length of the SYN we send (20-byte header and an MSS option).
pub const SYN_LEN: usize = 24;

/// What the server answered to our SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// SYN/ACK acknowledging our sequence number: listening.
    Open,
    /// RST acknowledging our SYN: nothing listening.
    Closed,
}

/// One's-complement sum of 16-bit big-endian words (odd tail padded), not yet folded.
fn sum16(data: &[u8]) -> u32 {
    let mut sum = 0u32;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sum of the TCP pseudo-header for a segment of `len` bytes.
fn pseudo_sum(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    let v6 = |a: IpAddr| match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    };
    let len = len as u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum16(&s.octets()) + sum16(&d.octets()) + 6 + len,
        (s, d) => sum16(&v6(s)) + sum16(&v6(d)) + (len >> 16) + (len & 0xffff) + 6,
    }
}

/// A SYN segment (with an MSS option) and its checksum over the pseudo-header, without
/// allocating.
pub fn syn_segment(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32) -> [u8; SYN_LEN] {
    let mut seg = [0u8; SYN_LEN];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&seq.to_be_bytes());
    // ack 0; data offset 6 words; flags.
    seg[12] = 6 << 4;
    seg[13] = SYN;
    seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
    // checksum and urgent pointer 0; MSS 1460.
    seg[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
    let c = fold(pseudo_sum(src, dst, SYN_LEN) + sum16(&seg));
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    seg
}

/// [`syn_segment`] as a vector.
pub fn build_syn(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    syn_segment(src, dst, sport, dport, seq).to_vec()
}

/// The fields of a segment read from the raw TCP socket that the engine matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The sender: the server, for an answer to our SYN.
    pub src: SocketAddr,
    /// The destination port: one of our reserved ports, for an answer.
    pub dport: u16,
    /// TCP flags.
    pub flags: u8,
    /// Acknowledgment number.
    pub ack: u32,
}

/// Parse a packet read from a raw TCP socket. IPv4 ones carry the IP header (the source comes
/// from it, `v6_from` is `None`); IPv6 ones start at the TCP header and the source is the
/// address the datagram came from.
pub fn parse_reply(packet: &[u8], v6_from: Option<Ipv6Addr>) -> Option<Reply> {
    let (src, seg) = match v6_from {
        Some(a) => (IpAddr::V6(a), packet),
        None => {
            let ihl = usize::from(packet.first()? & 0x0f) * 4;
            let s: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            (IpAddr::from(s), packet.get(ihl..)?)
        }
    };
    if seg.len() < 20 {
        return None;
    }
    Some(Reply {
        src: SocketAddr::new(src, u16::from_be_bytes([seg[0], seg[1]])),
        dport: u16::from_be_bytes([seg[2], seg[3]]),
        flags: seg[13],
        ack: u32::from_be_bytes([seg[8], seg[9], seg[10], seg[11]]),
    })
}

/// Whether `reply` answers the SYN we sent with sequence number `seq` (the caller matched the
/// addresses and ports), and what it says. Both answers acknowledge `seq + 1`: anything else is a
/// stale or forged segment.
pub fn answer(reply: &Reply, seq: u32) -> Option<Answer> {
    if reply.flags & ACK == 0 || reply.ack != seq.wrapping_add(1) {
        return None;
    }
    if reply.flags & RST != 0 {
        Some(Answer::Closed)
    } else if reply.flags & SYN != 0 {
        Some(Answer::Open)
    } else {
        None
    }
}

/// Classify a packet read from the raw TCP socket (IPv4 ones carry the IP header; IPv6 ones
/// are taken to come from `server`). Only the server's answer to our SYN counts.
pub fn classify(
    v6: bool,
    packet: &[u8],
    server: SocketAddr,
    sport: u16,
    seq: u32,
) -> Option<Answer> {
    let from = match (v6, server.ip()) {
        (true, IpAddr::V6(a)) => Some(a),
        (true, IpAddr::V4(_)) => return None,
        (false, _) => None,
    };
    let r = parse_reply(packet, from)?;
    if r.src != server || r.dport != sport {
        return None;
    }
    answer(&r, seq)
}

/// A classic BPF instruction: (code, jt, jf, k), as `struct sock_filter`.
pub type BpfInsn = (u16, u8, u8, u32);

// Classic BPF opcodes (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_IMM: u16 = 0x00;
const BPF_IND: u16 = 0x40;
const BPF_MSH: u16 = 0xa0;
const BPF_AND: u16 = 0x50;
const BPF_JEQ: u16 = 0x10;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;

/// Bytes of an accepted packet the kernel queues: a maximal IPv4 header and a TCP header.
pub const FILTER_SNAPLEN: u32 = 96;

/// The socket filter of the engine's raw socket: pass only SYN/ACK and RST segments to one of
/// `ports` (at most 250), cut to [`FILTER_SNAPLEN`] bytes. A raw TCP socket gets a copy of every
/// TCP segment the host receives; the kernel drops the rest before queueing them (our own SYNs
/// looped back, the kernel's RSTs to the servers, other sockets' traffic).
pub fn reply_filter(v6: bool, ports: &[u16]) -> Vec<BpfInsn> {
    assert!(
        !ports.is_empty() && ports.len() <= 250,
        "reply_filter ports"
    );
    let n = ports.len() as u8;
    let mut p = vec![
        // X = offset of the TCP header: the IPv4 header length, 0 for IPv6.
        if v6 {
            (BPF_LDX | BPF_W | BPF_IMM, 0, 0, 0)
        } else {
            (BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0)
        },
        // A = flags.
        (BPF_LD | BPF_B | BPF_IND, 0, 0, 13),
        // RST: check the port (skip 2).
        (BPF_JMP | BPF_JSET | BPF_K, 2, 0, u32::from(RST)),
        (BPF_ALU | BPF_AND | BPF_K, 0, 0, u32::from(SYN | ACK)),
        // Not SYN/ACK: drop (skip the port load and the n port tests).
        (BPF_JMP | BPF_JEQ | BPF_K, 0, n + 1, u32::from(SYN | ACK)),
        // A = destination port.
        (BPF_LD | BPF_H | BPF_IND, 0, 0, 2),
    ];
    for (k, port) in ports.iter().enumerate() {
        // Match: jump over the remaining tests and the drop to the accept.
        p.push((BPF_JMP | BPF_JEQ | BPF_K, n - k as u8, 0, u32::from(*port)));
    }
    p.push((BPF_RET | BPF_K, 0, 0, 0));
    p.push((BPF_RET | BPF_K, 0, 0, FILTER_SNAPLEN));
    p
}

/// A prepared half-open TCP_CHECK.
pub struct HalfOpenProbe {
    connect: Connect,
    dest: SocketAddr,
    up_reason: String,
    down_reason: String,
}

impl HalfOpenProbe {
    /// Prepare.
    pub fn new(spec: &TcpCheck, target: &Target) -> Self {
        let dest = spec.connect.destination(target, 0);
        Self {
            connect: spec.connect.clone(),
            dest,
            up_reason: format!("SYN/ACK from {dest}"),
            down_reason: format!("RST from {dest}"),
        }
    }

    /// The server probed.
    pub fn destination(&self) -> SocketAddr {
        self.dest
    }

    /// The source address to send from, when `bindto` sets it.
    pub fn bindto(&self) -> Option<IpAddr> {
        self.connect.bindto
    }

    /// Whether the shared engine can send this probe: it has one raw socket per family and its
    /// own source ports, so per-probe `bind_if`, `fwmark` and `bind_port` need the per-probe
    /// path.
    pub fn shared_engine_can_send(&self) -> bool {
        self.connect.bind_if.is_none()
            && self.connect.fwmark.is_none()
            && self.connect.bind_port.is_none()
    }

    /// Judge an answer; `Err` is a failure to send (or to set up the probe).
    pub fn verdict(&self, answer: io::Result<Answer>) -> Outcome {
        match answer {
            Ok(Answer::Open) => Outcome::up(self.up_reason.clone()),
            Ok(Answer::Closed) => Outcome::down(self.down_reason.clone()),
            Err(e) => Outcome::down(format!("half-open {}: {e}", self.dest)),
        }
    }

    /// One SYN on sockets of its own; the caller bounds the wait.
    pub async fn run(&self) -> Outcome {
        self.verdict(self.syn().await)
    }

    async fn syn(&self) -> io::Result<Answer> {
        let v6 = self.dest.is_ipv6();
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        // Hold the source port with a bound, never connected socket so that no other socket
        // uses it and the kernel resets the server's SYN/ACK.
        let holder = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        if let Some(dev) = &self.connect.bind_if {
            holder.bind_device(Some(dev.as_bytes()))?;
        }
        let src_ip = match self.connect.bindto {
            Some(ip) => ip,
            None => local_ip_towards(self.dest)?,
        };
        holder.bind(&SocketAddr::new(src_ip, self.connect.bind_port.unwrap_or(0)).into())?;
        let sport = holder
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .unwrap_or(0);

        let raw = Socket::new(domain, Type::RAW, Some(Protocol::TCP))?;
        raw.set_nonblocking(true)?;
        if let Some(dev) = &self.connect.bind_if {
            raw.bind_device(Some(dev.as_bytes()))?;
        }
        if let Some(mark) = self.connect.fwmark {
            raw.set_mark(mark)?;
        }
        // tokio's UdpSocket only issues send/recv syscalls, which suit a raw socket too.
        let raw = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(raw))?;
        let seq: u32 = rand::random();
        raw.send_to(
            &syn_segment(src_ip, self.dest.ip(), sport, self.dest.port(), seq),
            SocketAddr::new(self.dest.ip(), 0),
        )
        .await?;
        let mut buf = [0u8; 1500];
        loop {
            let n = raw.recv(&mut buf).await?;
            if let Some(a) = classify(v6, &buf[..n], self.dest, sport, seq) {
                drop(holder);
                return Ok(a);
            }
        }
    }
}

/// The source address the kernel would pick towards `dest` (a connected UDP socket sends
/// nothing).
pub(crate) fn local_ip_towards(dest: SocketAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = if dest.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let s = std::net::UdpSocket::bind(any)?;
    s.connect(SocketAddr::new(dest.ip(), dest.port().max(1)))?;
    Ok(s.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ping::checksum;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The pseudo-header as bytes, to verify checksums with the plain RFC 1071 sum.
    fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
        let mut p = Vec::new();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&[0, 6]);
                p.extend_from_slice(&(len as u16).to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&(len as u32).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, 6]);
            }
            _ => unreachable!(),
        }
        p
    }

    #[test]
    fn syn_checksum_verifies() {
        for (s, d) in [
            (v4("192.0.2.1"), v4("192.0.2.2")),
            (v4("2001:db8::1"), v4("2001:db8::2")),
            (v4("203.0.113.255"), v4("198.51.100.254")),
        ] {
            for seq in [0, 7, u32::MAX, 0xdead_beef] {
                let seg = build_syn(s, d, 40000, 80, seq);
                assert_eq!(seg.len(), SYN_LEN);
                assert_eq!(seg[13], SYN);
                assert_eq!(u32::from_be_bytes(seg[4..8].try_into().unwrap()), seq);
                assert_eq!(
                    checksum(&[pseudo_header(s, d, seg.len()), seg.clone()].concat()),
                    0,
                    "{s} -> {d} seq {seq}"
                );
            }
        }
    }

    /// An IPv4 packet from 192.0.2.2:80 to 192.0.2.1:40000 with `flags` and `ack`.
    fn reply(flags: u8, ack: u32) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1,
        ];
        p.extend_from_slice(&80u16.to_be_bytes());
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&ack.to_be_bytes());
        p.extend_from_slice(&[5 << 4, flags, 0, 0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn classifies_answers_to_our_syn_only() {
        let server: SocketAddr = "192.0.2.2:80".parse().unwrap();
        assert_eq!(
            classify(false, &reply(SYN | ACK, 8), server, 40000, 7),
            Some(Answer::Open)
        );
        assert_eq!(
            classify(false, &reply(RST | ACK, 8), server, 40000, 7),
            Some(Answer::Closed)
        );
        assert_eq!(
            classify(false, &reply(SYN | ACK, 9), server, 40000, 7),
            None,
            "wrong ack"
        );
        assert_eq!(
            classify(false, &reply(RST | ACK, 9), server, 40000, 7),
            None,
            "RST for another SYN"
        );
        assert_eq!(
            classify(false, &reply(SYN, 8), server, 40000, 7),
            None,
            "a SYN is not an answer"
        );
        assert_eq!(
            classify(false, &reply(SYN | ACK, 8), server, 40001, 7),
            None,
            "other port"
        );
        let other: SocketAddr = "192.0.2.3:80".parse().unwrap();
        assert_eq!(
            classify(false, &reply(SYN | ACK, 8), other, 40000, 7),
            None,
            "other host"
        );
        assert_eq!(
            classify(
                true,
                &reply(SYN | ACK, 8)[20..],
                "[2001:db8::2]:80".parse().unwrap(),
                40000,
                7
            ),
            Some(Answer::Open)
        );
        assert_eq!(
            classify(false, &reply(SYN | ACK, 8)[..30], server, 40000, 7),
            None
        );
    }

    #[test]
    fn parses_ipv4_with_options_and_ipv6() {
        // IHL 6: one option word before the TCP header.
        let mut p = reply(SYN | ACK, 8);
        p[0] = 0x46;
        p.splice(20..20, [1, 1, 1, 1]);
        let r = parse_reply(&p, None).unwrap();
        assert_eq!(
            r,
            Reply {
                src: "192.0.2.2:80".parse().unwrap(),
                dport: 40000,
                flags: SYN | ACK,
                ack: 8
            }
        );
        let r6 = parse_reply(
            &reply(RST | ACK, 8)[20..],
            Some("2001:db8::2".parse().unwrap()),
        );
        assert_eq!(r6.unwrap().src, "[2001:db8::2]:80".parse().unwrap());
        assert_eq!(parse_reply(&[0x45, 0, 0], None), None);
    }

    /// A classic BPF interpreter for the instructions [`reply_filter`] uses.
    fn run_filter(prog: &[BpfInsn], pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let byte = |i: usize| pkt.get(i).map(|b| u32::from(*b));
        loop {
            let (code, jt, jf, k) = prog[pc];
            pc += 1;
            match code {
                c if c == BPF_LDX | BPF_B | BPF_MSH => match byte(k as usize) {
                    Some(b) => x = 4 * (b & 0xf),
                    None => return 0,
                },
                c if c == BPF_LDX | BPF_W | BPF_IMM => x = k,
                c if c == BPF_LD | BPF_B | BPF_IND => match byte((x + k) as usize) {
                    Some(b) => a = b,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_H | BPF_IND => {
                    let i = (x + k) as usize;
                    match (byte(i), byte(i + 1)) {
                        (Some(h), Some(l)) => a = h << 8 | l,
                        _ => return 0,
                    }
                }
                c if c == BPF_ALU | BPF_AND | BPF_K => a &= k,
                c if c == BPF_JMP | BPF_JSET | BPF_K => {
                    pc += usize::from(if a & k != 0 { jt } else { jf })
                }
                c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                    pc += usize::from(if a == k { jt } else { jf })
                }
                c if c == BPF_RET | BPF_K => return k,
                c => panic!("opcode {c:#x} not interpreted"),
            }
        }
    }

    #[test]
    fn filter_passes_answers_to_reserved_ports_only() {
        let ports = [39999, 40000, 40002];
        let prog = reply_filter(false, &ports);
        let pass = |p: &[u8]| run_filter(&prog, p) == FILTER_SNAPLEN;
        assert!(pass(&reply(SYN | ACK, 8)));
        assert!(pass(&reply(RST | ACK, 8)));
        assert!(pass(&reply(RST, 0)));
        assert!(!pass(&reply(SYN, 0)), "our own SYN looped back");
        assert!(!pass(&reply(ACK, 8)), "plain ACK");
        assert!(!pass(&reply(ACK | 0x01, 8)), "FIN");
        let mut other = reply(SYN | ACK, 8);
        other[22..24].copy_from_slice(&40001u16.to_be_bytes());
        assert!(!pass(&other), "port not reserved");
        for port in ports {
            let mut p = reply(SYN | ACK, 8);
            p[22..24].copy_from_slice(&port.to_be_bytes());
            assert!(pass(&p), "port {port}");
        }
        // IPv4 options move the TCP header.
        let mut opt = reply(SYN | ACK, 8);
        opt[0] = 0x46;
        opt.splice(20..20, [0xff, 0xff, 0xff, 0xff]);
        assert!(pass(&opt));
        assert!(!pass(&reply(SYN | ACK, 8)[..30]), "truncated");
        // IPv6: the packet starts at the TCP header.
        let prog6 = reply_filter(true, &ports);
        assert_eq!(
            run_filter(&prog6, &reply(SYN | ACK, 8)[20..]),
            FILTER_SNAPLEN
        );
        assert_eq!(run_filter(&prog6, &reply(SYN, 8)[20..]), 0);
    }

    #[test]
    fn verdicts_name_the_server() {
        let p = HalfOpenProbe::new(
            &TcpCheck::default(),
            &Target::new("192.0.2.7".parse().unwrap(), 8080),
        );
        let up = p.verdict(Ok(Answer::Open));
        assert!(
            up.ok && up.reason == "SYN/ACK from 192.0.2.7:8080",
            "{up:?}"
        );
        let down = p.verdict(Ok(Answer::Closed));
        assert!(
            !down.ok && down.reason == "RST from 192.0.2.7:8080",
            "{down:?}"
        );
        let err = p.verdict(Err(io::Error::from_raw_os_error(libc::ENETUNREACH)));
        assert!(!err.ok && err.reason.starts_with("half-open 192.0.2.7:8080: "));
        assert!(p.shared_engine_can_send());
    }
}
