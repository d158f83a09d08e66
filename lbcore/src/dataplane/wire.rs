//! Byte-level view of the frames the dataplane rewrites: Ethernet II, IPv4
//! and IPv6 (with a Fragment header), TCP/UDP ports and ICMP/ICMPv6 errors,
//! with RFC 1624 incremental checksums (IPv6 has no header checksum; its
//! transport and ICMPv6 checksums cover the addresses through the pseudo-header).
//!
//! Pure functions over `&[u8]`/`&mut [u8]`; offsets are validated once by
//! [`parse`], so the rewriters index without re-checking lengths.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::flow::TcpFlags;

pub const ETH_HLEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_IPV6: u8 = 41;
pub const IPPROTO_FRAGMENT: u8 = 44;
pub const IPPROTO_ICMPV6: u8 = 58;

/// A MAC address.
pub type Mac = [u8; 6];

/// What [`parse`] found in an IPv4 or IPv6 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpFrame {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Offset of the IP header (after Ethernet).
    pub ip: usize,
    /// Offset of the transport header (IPv6: after a Fragment header).
    pub l4: usize,
    /// End of the IP datagram (total length; trailing Ethernet padding excluded).
    pub end: usize,
    /// Transport protocol; for IPv6 an extension header we do not walk
    /// (see [`IpFrame::unsupported_ext`]) shows up here.
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 identification or IPv6 Fragment header identification.
    pub id: u32,
    /// Fragment offset in 8-byte units.
    pub frag_off: u16,
    pub more_frags: bool,
    /// IPv4 DF; always set for IPv6 (routers never fragment it).
    pub dont_frag: bool,
    /// Source and destination ports; `None` for non-first fragments and non-TCP/UDP.
    pub ports: Option<(u16, u16)>,
    /// TCP flags when this is a TCP segment with its header.
    pub tcp: Option<TcpFlags>,
}

impl IpFrame {
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_off != 0
    }

    /// An IPv6 extension header other than Fragment (hop-by-hop, routing,
    /// destination options, AH, ESP, mobility...): not forwarded.
    pub fn unsupported_ext(&self) -> bool {
        self.v6
            && matches!(
                self.proto,
                0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
            )
    }

    /// The ICMP protocol number of this frame's family.
    pub fn icmp_proto(&self) -> u8 {
        if self.v6 {
            IPPROTO_ICMPV6
        } else {
            IPPROTO_ICMP
        }
    }

    /// IPv6 UDP with checksum 0: invalid (RFC 8200 §8.1), receivers drop it.
    pub fn udp6_zero_csum(&self, b: &[u8]) -> bool {
        self.v6
            && self.proto == IPPROTO_UDP
            && self.frag_off == 0
            && self.end >= self.l4 + 8
            && be16(b, self.l4 + 6) == 0
    }
}

/// Why a frame is not handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Neither IPv4 nor IPv6 (ARP, VLAN-tagged...): left to the kernel.
    NotIp,
    /// Truncated or inconsistent headers.
    Malformed,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn ip4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

fn ip6(b: &[u8], at: usize) -> Ipv6Addr {
    let a: [u8; 16] = b[at..at + 16].try_into().expect("16 bytes");
    Ipv6Addr::from(a)
}

/// Ports and TCP flags of the transport header at `l4` (ending at `end`).
#[allow(clippy::type_complexity)]
fn transport(
    b: &[u8],
    l4: usize,
    end: usize,
    proto: u8,
    first: bool,
    need_full: bool,
) -> Result<(Option<(u16, u16)>, Option<TcpFlags>), ParseError> {
    if !first || !(proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
        return Ok((None, None));
    }
    // ICMP-embedded headers carry at least 8 bytes of transport header: ports fit.
    if end < l4 + 4 {
        return Err(ParseError::Malformed);
    }
    let ports = (be16(b, l4), be16(b, l4 + 2));
    let tcp = if proto == IPPROTO_TCP && end >= l4 + 20 {
        let f = b[l4 + 13];
        Some(TcpFlags {
            fin: f & 0x01 != 0,
            syn: f & 0x02 != 0,
            rst: f & 0x04 != 0,
            ack: f & 0x10 != 0,
        })
    } else {
        None
    };
    if need_full && (proto == IPPROTO_TCP && tcp.is_none() || end < l4 + 8) {
        return Err(ParseError::Malformed);
    }
    Ok((Some(ports), tcp))
}

/// Parses the IPv4 header at `ip` (shared by outer frames and ICMP-embedded headers).
/// `need_full` requires the datagram's total length to be present.
fn parse_ip(b: &[u8], ip: usize, need_full: bool) -> Result<IpFrame, ParseError> {
    if b.len() < ip + 20 || b[ip] >> 4 != 4 {
        return Err(ParseError::Malformed);
    }
    let ihl = (b[ip] & 0x0f) as usize * 4;
    let total = be16(b, ip + 2) as usize;
    if ihl < 20 || total < ihl || b.len() < ip + ihl {
        return Err(ParseError::Malformed);
    }
    if need_full && b.len() < ip + total {
        return Err(ParseError::Malformed);
    }
    let end = (ip + total).min(b.len());
    let fl = be16(b, ip + 6);
    let frag_off = fl & 0x1fff;
    let proto = b[ip + 9];
    let l4 = ip + ihl;
    let (ports, tcp) = transport(b, l4, end, proto, frag_off == 0, need_full)?;
    Ok(IpFrame {
        v6: false,
        ip,
        l4,
        end,
        proto,
        src: ip4(b, ip + 12).into(),
        dst: ip4(b, ip + 16).into(),
        id: be16(b, ip + 4) as u32,
        frag_off,
        more_frags: fl & 0x2000 != 0,
        dont_frag: fl & 0x4000 != 0,
        ports,
        tcp,
    })
}

/// Parses the IPv6 header at `ip` and a Fragment header right after it; any
/// other extension header stops the walk (`proto` is then its number).
fn parse_ip6(b: &[u8], ip: usize, need_full: bool) -> Result<IpFrame, ParseError> {
    if b.len() < ip + 40 || b[ip] >> 4 != 6 {
        return Err(ParseError::Malformed);
    }
    let plen = be16(b, ip + 4) as usize;
    if plen == 0 {
        return Err(ParseError::Malformed); // jumbogram (hop-by-hop option): not ours
    }
    if need_full && b.len() < ip + 40 + plen {
        return Err(ParseError::Malformed);
    }
    let end = (ip + 40 + plen).min(b.len());
    let mut proto = b[ip + 6];
    let mut l4 = ip + 40;
    let (mut id, mut frag_off, mut more_frags) = (0, 0, false);
    if proto == IPPROTO_FRAGMENT {
        if end < l4 + 8 {
            return Err(ParseError::Malformed);
        }
        proto = b[l4];
        let fo = be16(b, l4 + 2);
        frag_off = fo >> 3;
        more_frags = fo & 1 != 0;
        id = be32(b, l4 + 4);
        l4 += 8;
    }
    let (ports, tcp) = transport(b, l4, end, proto, frag_off == 0, need_full)?;
    Ok(IpFrame {
        v6: true,
        ip,
        l4,
        end,
        proto,
        src: ip6(b, ip + 8).into(),
        dst: ip6(b, ip + 24).into(),
        id,
        frag_off,
        more_frags,
        dont_frag: true,
        ports,
        tcp,
    })
}

/// Parses an Ethernet II frame carrying IPv4 or IPv6.
pub fn parse(frame: &[u8]) -> Result<IpFrame, ParseError> {
    if frame.len() < ETH_HLEN {
        return Err(ParseError::Malformed);
    }
    match be16(frame, 12) {
        ETHERTYPE_IPV4 => parse_ip(frame, ETH_HLEN, true),
        ETHERTYPE_IPV6 => parse_ip6(frame, ETH_HLEN, true),
        _ => Err(ParseError::NotIp),
    }
}

/// An ICMP error (destination unreachable, time exceeded, parameter problem)
/// and the datagram header it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    pub kind: u8,
    pub code: u8,
    /// The quoted datagram (offsets into the same frame).
    pub inner: IpFrame,
}

/// The ICMP (ICMPv6) error in a frame, if it is one quoting a TCP/UDP header.
pub fn icmp_error(frame: &[u8], f: &IpFrame) -> Option<IcmpError> {
    if f.proto != f.icmp_proto() || f.is_fragment() || f.end < f.l4 + 8 {
        return None;
    }
    let kind = frame[f.l4];
    // v4: unreachable, time exceeded, parameter problem; v6: unreachable,
    // packet too big, time exceeded, parameter problem.
    let error = if f.v6 {
        matches!(kind, 1..=4)
    } else {
        matches!(kind, 3 | 11 | 12)
    };
    if !error {
        return None;
    }
    let inner = if f.v6 {
        parse_ip6(&frame[..f.end], f.l4 + 8, false)
    } else {
        parse_ip(&frame[..f.end], f.l4 + 8, false)
    }
    .ok()?;
    inner.ports?;
    Some(IcmpError {
        kind,
        code: frame[f.l4 + 1],
        inner,
    })
}

/// One's-complement sum of `data` (big-endian 16-bit words), not folded.
pub fn sum(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u16::from_be_bytes([c[0], c[1]]) as u32);
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add((*last as u32) << 8);
    }
    acc
}

/// Folds a 32-bit sum to the 16-bit one's-complement checksum.
pub fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// RFC 1624 eq. 3: `HC' = ~(~HC + ~m + m')` for one 16-bit word.
#[inline]
pub fn csum_update16(hc: u16, old: u16, new: u16) -> u16 {
    let acc = (!hc as u32) + (!old as u32) + new as u32;
    fold(acc)
}

/// RFC 1624 for a 32-bit field (an address).
#[inline]
pub fn csum_update32(hc: u16, old: u32, new: u32) -> u16 {
    let acc = (!hc as u32)
        + (!(old >> 16) as u16 as u32)
        + (!(old as u16) as u32)
        + (new >> 16)
        + (new & 0xffff);
    fold(acc)
}

/// RFC 1624 over a field of whole 16-bit words (an IPv6 address).
pub fn csum_update_words(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = !hc as u32;
    for c in old.chunks_exact(2) {
        acc += !u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    fold(sum(new, acc))
}

/// Where a checksum covering the pseudo-header sits, if the packet carries
/// one we must update when an address changes.
fn l4_csum_at(b: &[u8], f: &IpFrame) -> Option<usize> {
    if f.frag_off != 0 {
        return None; // only the first fragment carries the transport header
    }
    match f.proto {
        IPPROTO_TCP if f.end >= f.l4 + 18 => Some(f.l4 + 16),
        // IPv4 UDP checksum 0 = none: must stay 0 (IPv6 has no such thing).
        IPPROTO_UDP if f.end >= f.l4 + 8 && (f.v6 || be16(b, f.l4 + 6) != 0) => Some(f.l4 + 6),
        IPPROTO_ICMPV6 if f.v6 && f.end >= f.l4 + 4 => Some(f.l4 + 2),
        _ => None,
    }
}

/// Rewrites the source (`src = true`) or destination address of the IP
/// header at `f.ip`, fixing the IPv4 header checksum and the checksums
/// covering the pseudo-header (TCP, UDP, ICMPv6). An address of the other
/// family is ignored (callers never mix them).
pub fn set_addr(b: &mut [u8], f: &IpFrame, src: bool, new: IpAddr) {
    match (f.v6, new) {
        (false, IpAddr::V4(new)) => {
            let at = f.ip + if src { 12 } else { 16 };
            let old = u32::from(ip4(b, at));
            let new_u = u32::from(new);
            if old == new_u {
                return;
            }
            b[at..at + 4].copy_from_slice(&new.octets());
            let hc = be16(b, f.ip + 10);
            put16(b, f.ip + 10, csum_update32(hc, old, new_u));
            if let Some(c) = l4_csum_at(b, f) {
                let hc = be16(b, c);
                let v = csum_update32(hc, old, new_u);
                put16(b, c, udp_nonzero(f.proto, v));
            }
        }
        (true, IpAddr::V6(new)) => {
            let at = f.ip + if src { 8 } else { 24 };
            let old: [u8; 16] = b[at..at + 16].try_into().expect("16 bytes");
            let new = new.octets();
            if old == new {
                return;
            }
            b[at..at + 16].copy_from_slice(&new);
            if let Some(c) = l4_csum_at(b, f) {
                let hc = be16(b, c);
                let v = csum_update_words(hc, &old, &new);
                put16(b, c, udp_nonzero(f.proto, v));
            }
        }
        _ => debug_assert!(false, "address family mismatch"),
    }
}

/// Rewrites the source or destination port, fixing the transport checksum.
pub fn set_port(b: &mut [u8], f: &IpFrame, src: bool, new: u16) {
    if f.ports.is_none() {
        return;
    }
    let at = f.l4 + if src { 0 } else { 2 };
    let old = be16(b, at);
    if old == new {
        return;
    }
    put16(b, at, new);
    if let Some(c) = l4_csum_at(b, f) {
        let hc = be16(b, c);
        put16(b, c, udp_nonzero(f.proto, csum_update16(hc, old, new)));
    }
}

/// A computed UDP checksum of 0 is sent as 0xffff (0 means "none" in IPv4
/// and is invalid in IPv6).
#[inline]
fn udp_nonzero(proto: u8, v: u16) -> u16 {
    if proto == IPPROTO_UDP && v == 0 {
        0xffff
    } else {
        v
    }
}

/// Sum of the pseudo-header of `f` for `len` bytes of protocol `proto`.
fn pseudo_sum(b: &[u8], f: &IpFrame, proto: u8, len: usize) -> u32 {
    let addrs = if f.v6 {
        &b[f.ip + 8..f.ip + 40]
    } else {
        &b[f.ip + 12..f.ip + 20]
    };
    let len = len as u32;
    sum(addrs, 0) + (len >> 16) + (len & 0xffff) + proto as u32
}

/// Computes the transport checksum from scratch: for frames the kernel
/// handed over with the checksum left to offload (`TP_STATUS_CSUMNOTREADY`,
/// e.g. from a local veth peer), whose field holds only the pseudo-header sum.
pub fn fill_l4_csum(b: &mut [u8], f: &IpFrame) {
    if f.is_fragment() {
        return; // offload never leaves fragments unfinished
    }
    let at = match f.proto {
        IPPROTO_TCP if f.end >= f.l4 + 20 => f.l4 + 16,
        IPPROTO_UDP if f.end >= f.l4 + 8 => f.l4 + 6,
        _ => return,
    };
    put16(b, at, 0);
    let acc = pseudo_sum(b, f, f.proto, f.end - f.l4);
    let c = udp_nonzero(f.proto, fold(sum(&b[f.l4..f.end], acc)));
    put16(b, at, c);
}

/// Recomputes the IPv4 header checksum from scratch.
pub fn fix_ip_csum(b: &mut [u8], ip: usize) {
    let ihl = (b[ip] & 0x0f) as usize * 4;
    put16(b, ip + 10, 0);
    let c = fold(sum(&b[ip..ip + ihl], 0));
    put16(b, ip + 10, c);
}

/// Recomputes an ICMP (ICMPv6, with its pseudo-header) message's checksum
/// (after rewriting what it quotes).
pub fn fix_icmp_csum(b: &mut [u8], f: &IpFrame) {
    put16(b, f.l4 + 2, 0);
    let acc = if f.v6 {
        pseudo_sum(b, f, IPPROTO_ICMPV6, f.end - f.l4)
    } else {
        0
    };
    let c = fold(sum(&b[f.l4..f.end], acc));
    put16(b, f.l4 + 2, c);
}

/// Sets the Ethernet destination and source.
pub fn set_macs(b: &mut [u8], dst: Mac, src: Mac) {
    b[0..6].copy_from_slice(&dst);
    b[6..12].copy_from_slice(&src);
}

pub fn src_mac(b: &[u8]) -> Mac {
    b[6..12].try_into().expect("6 bytes")
}

/// Writes into `out` the frame `b` encapsulated in IP-in-IP (RFC 2003) from
/// `src` to `dst`: a new outer IPv4 header, the inner datagram unchanged (its
/// TTL included, as IPVS does). Returns the outer frame length.
pub fn encap_ipip(b: &[u8], f: &IpFrame, src: Ipv4Addr, dst: Ipv4Addr, out: &mut Vec<u8>) {
    let inner = &b[f.ip..f.end];
    out.clear();
    out.extend_from_slice(&b[..ETH_HLEN]);
    let total = (20 + inner.len()) as u16;
    let df = if f.dont_frag { 0x4000u16 } else { 0 };
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = b[f.ip + 1]; // keep the TOS/DSCP
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&(f.id as u16).to_be_bytes());
    h[6..8].copy_from_slice(&df.to_be_bytes());
    h[8] = 64;
    h[9] = IPPROTO_IPIP;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = fold(sum(&h, 0));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(inner);
}

/// Splits the unfragmented IPv4 datagram of frame `b` (Ethernet header
/// included, DF clear) into fragments of at most `mtu` bytes, appended to
/// `out` as whole frames; their (start, length) go to `spans`.
pub fn fragment(b: &[u8], mtu: u16, out: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>) {
    let ihl = (b[ETH_HLEN] & 0x0f) as usize * 4;
    let total = be16(b, ETH_HLEN + 2) as usize;
    let payload = &b[ETH_HLEN + ihl..ETH_HLEN + total.min(b.len() - ETH_HLEN)];
    let step = (mtu as usize).saturating_sub(ihl) & !7;
    if step == 0 {
        return;
    }
    for (i, chunk) in payload.chunks(step).enumerate() {
        let at = out.len();
        out.extend_from_slice(&b[..ETH_HLEN + ihl]);
        out.extend_from_slice(chunk);
        let ip = at + ETH_HLEN;
        put16(out, ip + 2, (ihl + chunk.len()) as u16);
        let more = (i + 1) * step < payload.len();
        let off = ((i * step) / 8) as u16 | if more { 0x2000 } else { 0 };
        put16(out, ip + 6, off);
        fix_ip_csum(out, ip);
        spans.push((at, out.len() - at));
    }
}

/// Builds an ICMP "fragmentation needed" (type 3 code 4) answering `b`
/// (RFC 1191): from `from` to the offending packet's source, quoting its IP
/// header and 8 bytes, advertising `mtu`. Ethernet addresses are swapped.
pub fn frag_needed(b: &[u8], f: &IpFrame, from: Ipv4Addr, mtu: u16, out: &mut Vec<u8>) {
    let quote_end = (f.l4 + 8).min(f.end);
    let quote = &b[f.ip..quote_end];
    out.clear();
    out.extend_from_slice(&b[6..12]);
    out.extend_from_slice(&b[0..6]);
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let total = (20 + 8 + quote.len()) as u16;
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[8] = 64;
    h[9] = IPPROTO_ICMP;
    h[12..16].copy_from_slice(&from.octets());
    let IpAddr::V4(to) = f.src else {
        return;
    };
    h[16..20].copy_from_slice(&to.octets());
    let c = fold(sum(&h, 0));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&h);
    let icmp_at = out.len();
    out.extend_from_slice(&[3, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&mtu.to_be_bytes());
    out.extend_from_slice(quote);
    let c = fold(sum(&out[icmp_at..], 0));
    out[icmp_at + 2..icmp_at + 4].copy_from_slice(&c.to_be_bytes());
}

/// Builds into `out` the TCP reset a host's stack sends for a segment `b` of no connection
/// (RFC 9293 §3.10.7.1): from its destination to its source, Ethernet addresses swapped;
/// with ACK set, the reset takes the segment's acknowledgment number as its sequence,
/// otherwise it acknowledges the segment.
pub fn tcp_reset(b: &[u8], f: &IpFrame, out: &mut Vec<u8>) {
    let Some(t) = f.tcp.filter(|_| f.end >= f.l4 + 20) else {
        return;
    };
    let (sport, dport) = (be16(b, f.l4), be16(b, f.l4 + 2));
    let (seq, ack) = (be32(b, f.l4 + 4), be32(b, f.l4 + 8));
    let doff = ((b[f.l4 + 12] >> 4) as usize * 4).max(20);
    let seg_len = (f.end.saturating_sub(f.l4 + doff)) as u32 + t.syn as u32 + t.fin as u32;
    let (rseq, rack, flags) = if t.ack {
        (ack, 0, 0x04)
    } else {
        (0, seq.wrapping_add(seg_len), 0x14)
    };
    out.clear();
    out.extend_from_slice(&b[6..12]);
    out.extend_from_slice(&b[0..6]);
    match (f.src, f.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&40u16.to_be_bytes());
            h[6] = 0x40; // DF
            h[8] = 64;
            h[9] = IPPROTO_TCP;
            h[12..16].copy_from_slice(&dst.octets());
            h[16..20].copy_from_slice(&src.octets());
            let c = fold(sum(&h, 0));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&h);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            out.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let mut h = [0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&20u16.to_be_bytes());
            h[6] = IPPROTO_TCP;
            h[7] = 64;
            h[8..24].copy_from_slice(&dst.octets());
            h[24..40].copy_from_slice(&src.octets());
            out.extend_from_slice(&h);
        }
        _ => {
            out.clear();
            return;
        }
    }
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&dport.to_be_bytes());
    tcp[2..4].copy_from_slice(&sport.to_be_bytes());
    tcp[4..8].copy_from_slice(&rseq.to_be_bytes());
    tcp[8..12].copy_from_slice(&rack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    out.extend_from_slice(&tcp);
    match parse(out) {
        Ok(g) => fill_l4_csum(out, &g),
        Err(_) => out.clear(),
    }
}

/// Writes into `out` the frame `b` encapsulated in IPv6 (RFC 2473, next
/// header 41) from `src` to `dst`, as IPVS tunnels IPv6 services: the inner
/// datagram unchanged, its traffic class and flow label copied outside.
pub fn encap_ip6ip6(b: &[u8], f: &IpFrame, src: Ipv6Addr, dst: Ipv6Addr, out: &mut Vec<u8>) {
    let inner = &b[f.ip..f.end];
    out.clear();
    out.extend_from_slice(&b[..ETH_HLEN]);
    put16(out, 12, ETHERTYPE_IPV6);
    let mut h = [0u8; 40];
    h[0..4].copy_from_slice(&b[f.ip..f.ip + 4]); // version, class, flow label
    h[4..6].copy_from_slice(&(inner.len() as u16).to_be_bytes());
    h[6] = IPPROTO_IPV6;
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    out.extend_from_slice(&h);
    out.extend_from_slice(inner);
}

/// IPv6 minimum MTU: an ICMPv6 error never exceeds it (RFC 4443 §2.4).
pub const IPV6_MIN_MTU: usize = 1280;

/// Builds an ICMPv6 Packet Too Big (type 2) answering `b` (RFC 8201): from
/// `from` to the offending packet's source, quoting as much of it as fits in
/// 1280 bytes, advertising `mtu`. Ethernet addresses are swapped.
pub fn packet_too_big(b: &[u8], f: &IpFrame, from: Ipv6Addr, mtu: u32, out: &mut Vec<u8>) {
    let IpAddr::V6(to) = f.src else {
        return;
    };
    let quote_end = f.end.min(f.ip + IPV6_MIN_MTU - 48);
    let quote = &b[f.ip..quote_end];
    out.clear();
    out.extend_from_slice(&b[6..12]);
    out.extend_from_slice(&b[0..6]);
    out.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&((8 + quote.len()) as u16).to_be_bytes());
    h[6] = IPPROTO_ICMPV6;
    h[7] = 255;
    h[8..24].copy_from_slice(&from.octets());
    h[24..40].copy_from_slice(&to.octets());
    out.extend_from_slice(&h);
    out.extend_from_slice(&[2, 0, 0, 0]);
    out.extend_from_slice(&mtu.to_be_bytes());
    out.extend_from_slice(quote);
    let g = IpFrame {
        v6: true,
        ip: ETH_HLEN,
        l4: ETH_HLEN + 40,
        end: out.len(),
        proto: IPPROTO_ICMPV6,
        src: from.into(),
        dst: to.into(),
        id: 0,
        frag_off: 0,
        more_frags: false,
        dont_frag: true,
        ports: None,
        tcp: None,
    };
    fix_icmp_csum(out, &g);
}

/// The solicited-node multicast address of `a` (RFC 4291 §2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// A Neighbour Solicitation (RFC 4861 §4.3) for `target` from `src`/`mac`,
/// to the target's solicited-node group, with our link-layer address.
pub fn neighbour_solicitation(mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    let g = group.octets();
    let mut p = Vec::with_capacity(ETH_HLEN + 40 + 32);
    p.extend_from_slice(&[0x33, 0x33, g[12], g[13], g[14], g[15]]);
    p.extend_from_slice(&mac);
    p.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&32u16.to_be_bytes());
    h[6] = IPPROTO_ICMPV6;
    h[7] = 255; // neighbour discovery requires hop limit 255
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&g);
    p.extend_from_slice(&h);
    p.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&target.octets());
    p.extend_from_slice(&[1, 1]); // source link-layer address option
    p.extend_from_slice(&mac);
    let f = parse(&p).expect("well-formed");
    fix_icmp_csum(&mut p, &f);
    p
}

/// Target and link-layer address of a Neighbour Advertisement, given the
/// ICMPv6 message (as a raw ICMPv6 socket receives it, checksum verified).
/// RFC 4861 §7.1.2: code 0, a unicast target, no zero-length option.
pub fn na_target(msg: &[u8]) -> Option<(Ipv6Addr, Mac)> {
    if msg.len() < 24 || msg[0] != 136 || msg[1] != 0 {
        return None;
    }
    let target = ip6(msg, 8);
    if target.is_multicast() {
        return None;
    }
    let mut at = 24;
    while at + 8 <= msg.len() {
        let (kind, len) = (msg[at], msg[at + 1] as usize * 8);
        if len == 0 || at + len > msg.len() {
            return None;
        }
        if kind == 2 {
            return Some((target, msg[at + 2..at + 8].try_into().ok()?));
        }
        at += len;
    }
    None
}

/// An ARP request "who has `target`, tell `sender`" from `mac`, broadcast.
pub fn arp_request(mac: Mac, sender: Ipv4Addr, target: Ipv4Addr) -> [u8; 42] {
    let mut p = [0u8; 42];
    p[0..6].copy_from_slice(&[0xff; 6]);
    p[6..12].copy_from_slice(&mac);
    p[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    p[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    p[22..28].copy_from_slice(&mac);
    p[28..32].copy_from_slice(&sender.octets());
    p[38..42].copy_from_slice(&target.octets());
    p
}

/// Sender of an ARP reply (or request) frame: (IP, MAC).
pub fn arp_sender(b: &[u8]) -> Option<(Ipv4Addr, Mac)> {
    if b.len() < 42 || be16(b, 12) != ETHERTYPE_ARP || b[14..20] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    Some((ip4(b, 28), b[22..28].try_into().ok()?))
}

#[cfg(test)]
pub(crate) mod tests;
