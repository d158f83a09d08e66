//! Byte-level view of the frames the dataplane rewrites: Ethernet II, IPv4,
//! TCP/UDP ports and ICMP errors, with RFC 1624 incremental checksums.
//!
//! Pure functions over `&[u8]`/`&mut [u8]`; offsets are validated once by
//! [`parse`], so the rewriters index without re-checking lengths.

use std::net::Ipv4Addr;

use crate::conntrack::TcpFlags;

pub const ETH_HLEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// A MAC address.
pub type Mac = [u8; 6];

/// What [`parse`] found in an IPv4 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Frame {
    /// Offset of the IPv4 header (after Ethernet).
    pub ip: usize,
    /// Offset of the transport header.
    pub l4: usize,
    /// End of the IP datagram (total length; trailing Ethernet padding excluded).
    pub end: usize,
    pub proto: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub id: u16,
    /// Fragment offset in 8-byte units.
    pub frag_off: u16,
    pub more_frags: bool,
    pub dont_frag: bool,
    /// Source and destination ports; `None` for non-first fragments and non-TCP/UDP.
    pub ports: Option<(u16, u16)>,
    /// TCP flags when this is a TCP segment with its header.
    pub tcp: Option<TcpFlags>,
}

impl Ipv4Frame {
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_off != 0
    }
}

/// Why a frame is not handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not IPv4 (ARP, IPv6, VLAN-tagged...): left to the kernel.
    NotIpv4,
    /// Truncated or inconsistent headers.
    Malformed,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn ip4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Parses the IPv4 header at `ip` (shared by outer frames and ICMP-embedded headers).
/// `need_full` requires the datagram's total length to be present.
fn parse_ip(b: &[u8], ip: usize, need_full: bool) -> Result<Ipv4Frame, ParseError> {
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
    let (ports, tcp) = if frag_off == 0 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
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
        (Some(ports), tcp)
    } else {
        (None, None)
    };
    Ok(Ipv4Frame {
        ip,
        l4,
        end,
        proto,
        src: ip4(b, ip + 12),
        dst: ip4(b, ip + 16),
        id: be16(b, ip + 4),
        frag_off,
        more_frags: fl & 0x2000 != 0,
        dont_frag: fl & 0x4000 != 0,
        ports,
        tcp,
    })
}

/// Parses an Ethernet II frame carrying IPv4.
pub fn parse(frame: &[u8]) -> Result<Ipv4Frame, ParseError> {
    if frame.len() < ETH_HLEN {
        return Err(ParseError::Malformed);
    }
    if be16(frame, 12) != ETHERTYPE_IPV4 {
        return Err(ParseError::NotIpv4);
    }
    parse_ip(frame, ETH_HLEN, true)
}

/// An ICMP error (destination unreachable, time exceeded, parameter problem)
/// and the datagram header it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    pub kind: u8,
    pub code: u8,
    /// The quoted datagram (offsets into the same frame).
    pub inner: Ipv4Frame,
}

/// The ICMP error in an IPv4 frame, if it is one quoting a TCP/UDP header.
pub fn icmp_error(frame: &[u8], f: &Ipv4Frame) -> Option<IcmpError> {
    if f.proto != IPPROTO_ICMP || f.is_fragment() || f.end < f.l4 + 8 {
        return None;
    }
    let kind = frame[f.l4];
    if !matches!(kind, 3 | 11 | 12) {
        return None;
    }
    let inner = parse_ip(&frame[..f.end], f.l4 + 8, false).ok()?;
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

/// Where a transport checksum sits, if the packet carries one we must update.
fn l4_csum_at(b: &[u8], f: &Ipv4Frame) -> Option<usize> {
    if f.frag_off != 0 {
        return None; // only the first fragment carries the transport header
    }
    match f.proto {
        IPPROTO_TCP if f.end >= f.l4 + 18 => Some(f.l4 + 16),
        // UDP checksum 0 = none: must stay 0.
        IPPROTO_UDP if f.end >= f.l4 + 8 && be16(b, f.l4 + 6) != 0 => Some(f.l4 + 6),
        _ => None,
    }
}

/// Rewrites the source (`src = true`) or destination address of the IPv4
/// header at `f.ip`, fixing the IP and (pseudo-header) transport checksums.
pub fn set_addr(b: &mut [u8], f: &Ipv4Frame, src: bool, new: Ipv4Addr) {
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

/// Rewrites the source or destination port, fixing the transport checksum.
pub fn set_port(b: &mut [u8], f: &Ipv4Frame, src: bool, new: u16) {
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

/// A computed UDP checksum of 0 is sent as 0xffff (0 means "none").
#[inline]
fn udp_nonzero(proto: u8, v: u16) -> u16 {
    if proto == IPPROTO_UDP && v == 0 {
        0xffff
    } else {
        v
    }
}

/// Computes the transport checksum from scratch: for frames the kernel
/// handed over with the checksum left to offload (`TP_STATUS_CSUMNOTREADY`,
/// e.g. from a local veth peer), whose field holds only the pseudo-header sum.
pub fn fill_l4_csum(b: &mut [u8], f: &Ipv4Frame) {
    if f.is_fragment() {
        return; // offload never leaves fragments unfinished
    }
    let at = match f.proto {
        IPPROTO_TCP if f.end >= f.l4 + 20 => f.l4 + 16,
        IPPROTO_UDP if f.end >= f.l4 + 8 => f.l4 + 6,
        _ => return,
    };
    put16(b, at, 0);
    let mut acc = sum(&b[f.ip + 12..f.ip + 20], 0);
    acc += f.proto as u32 + (f.end - f.l4) as u32;
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

/// Recomputes an ICMP message's checksum (after rewriting what it quotes).
pub fn fix_icmp_csum(b: &mut [u8], f: &Ipv4Frame) {
    put16(b, f.l4 + 2, 0);
    let c = fold(sum(&b[f.l4..f.end], 0));
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
pub fn encap_ipip(b: &[u8], f: &Ipv4Frame, src: Ipv4Addr, dst: Ipv4Addr, out: &mut Vec<u8>) {
    let inner = &b[f.ip..f.end];
    out.clear();
    out.extend_from_slice(&b[..ETH_HLEN]);
    let total = (20 + inner.len()) as u16;
    let df = if f.dont_frag { 0x4000u16 } else { 0 };
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = b[f.ip + 1]; // keep the TOS/DSCP
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&f.id.to_be_bytes());
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
pub fn frag_needed(b: &[u8], f: &Ipv4Frame, from: Ipv4Addr, mtu: u16, out: &mut Vec<u8>) {
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
    h[16..20].copy_from_slice(&f.src.octets());
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
