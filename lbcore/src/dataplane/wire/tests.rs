use super::*;

/// Builds an Ethernet+IPv4/IPv6+TCP/UDP frame with correct checksums (the
/// family follows the addresses).
pub(crate) fn build(
    proto: u8,
    src: (impl Into<IpAddr>, u16),
    dst: (impl Into<IpAddr>, u16),
    tcp_flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let (s, d) = (src.0.into(), dst.0.into());
    let l4len = if proto == IPPROTO_TCP { 20 } else { 8 } + payload.len();
    let hlen = if s.is_ipv6() { 40 } else { 20 };
    let mut b = vec![0u8; ETH_HLEN + hlen + l4len];
    b[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    b[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    let ip = ETH_HLEN;
    match (s, d) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            b[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            b[ip] = 0x45;
            b[ip + 2..ip + 4].copy_from_slice(&((20 + l4len) as u16).to_be_bytes());
            b[ip + 4..ip + 6].copy_from_slice(&0x1234u16.to_be_bytes());
            b[ip + 6] = 0x40; // DF
            b[ip + 8] = 64;
            b[ip + 9] = proto;
            b[ip + 12..ip + 16].copy_from_slice(&s.octets());
            b[ip + 16..ip + 20].copy_from_slice(&d.octets());
            fix_ip_csum(&mut b, ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            b[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            b[ip..ip + 4].copy_from_slice(&[0x60, 0x0a, 0xbc, 0xde]); // flow label 0xabcde
            b[ip + 4..ip + 6].copy_from_slice(&(l4len as u16).to_be_bytes());
            b[ip + 6] = proto;
            b[ip + 7] = 64;
            b[ip + 8..ip + 24].copy_from_slice(&s.octets());
            b[ip + 24..ip + 40].copy_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    let l4 = ip + hlen;
    b[l4..l4 + 2].copy_from_slice(&src.1.to_be_bytes());
    b[l4 + 2..l4 + 4].copy_from_slice(&dst.1.to_be_bytes());
    if proto == IPPROTO_TCP {
        b[l4 + 12] = 5 << 4;
        b[l4 + 13] = tcp_flags;
        b[l4 + 14..l4 + 16].copy_from_slice(&1024u16.to_be_bytes());
        b[l4 + 20..].copy_from_slice(payload);
    } else {
        b[l4 + 4..l4 + 6].copy_from_slice(&(l4len as u16).to_be_bytes());
        b[l4 + 8..].copy_from_slice(payload);
    }
    let c = l4_full_csum(&b, ip);
    let at = if proto == IPPROTO_TCP {
        l4 + 16
    } else {
        l4 + 6
    };
    b[at..at + 2].copy_from_slice(&c.to_be_bytes());
    b
}

/// Independent one's-complement sum (bytewise, u64, folded at the end).
fn ref_sum(parts: &[&[u8]]) -> u16 {
    let mut acc: u64 = 0;
    for p in parts {
        for (i, byte) in p.iter().enumerate() {
            acc += if i % 2 == 0 {
                (*byte as u64) << 8
            } else {
                *byte as u64
            };
        }
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The IP header's (src, dst, proto, transport offset, end), read without `parse`.
fn ref_header(b: &[u8], ip: usize) -> (Vec<u8>, u8, usize, usize) {
    if b[ip] >> 4 == 6 {
        let end = ip + 40 + u16::from_be_bytes([b[ip + 4], b[ip + 5]]) as usize;
        let (mut proto, mut l4) = (b[ip + 6], ip + 40);
        if proto == IPPROTO_FRAGMENT {
            proto = b[l4];
            l4 += 8;
        }
        (b[ip + 8..ip + 40].to_vec(), proto, l4, end)
    } else {
        let ihl = (b[ip] & 0x0f) as usize * 4;
        let end = ip + u16::from_be_bytes([b[ip + 2], b[ip + 3]]) as usize;
        (b[ip + 12..ip + 20].to_vec(), b[ip + 9], ip + ihl, end)
    }
}

/// Transport (or ICMPv6) checksum computed from scratch with the field
/// zeroed: pseudo-header (RFC 768/793 for IPv4, RFC 8200 §8.1 for IPv6) and segment.
pub(crate) fn l4_full_csum(b: &[u8], ip: usize) -> u16 {
    let (addrs, proto, l4, end) = ref_header(b, ip);
    let v6 = b[ip] >> 4 == 6;
    let mut seg = b[l4..end].to_vec();
    let at = match proto {
        IPPROTO_TCP => 16,
        IPPROTO_UDP => 6,
        _ => 2,
    };
    seg[at] = 0;
    seg[at + 1] = 0;
    let len = seg.len() as u32;
    let pseudo: Vec<u8> = if v6 {
        [&len.to_be_bytes()[..], &[0, 0, 0, proto]].concat()
    } else if proto == IPPROTO_ICMP {
        vec![]
    } else {
        vec![0, proto, (len >> 8) as u8, len as u8]
    };
    let addrs: &[u8] = if !v6 && proto == IPPROTO_ICMP {
        &[]
    } else {
        &addrs
    };
    let c = ref_sum(&[addrs, &pseudo, &seg]);
    if proto == IPPROTO_UDP && c == 0 {
        0xffff
    } else {
        c
    }
}

pub(crate) fn ip_csum_ok(b: &[u8], ip: usize) -> bool {
    b[ip] >> 4 == 6 || ref_sum(&[&b[ip..ip + 20]]) == 0
}

pub(crate) fn l4_csum_ok(b: &[u8], ip: usize) -> bool {
    let (_, proto, l4, _) = ref_header(b, ip);
    let at = l4
        + match proto {
            IPPROTO_TCP => 16,
            IPPROTO_UDP => 6,
            _ => 2,
        };
    u16::from_be_bytes([b[at], b[at + 1]]) == l4_full_csum(b, ip)
}

const A: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const V: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
const R: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);

#[test]
fn parse_reads_tcp_fields() {
    let b = build(IPPROTO_TCP, (A, 40000), (V, 80), 0x02, b"");
    let f = parse(&b).unwrap();
    assert_eq!(
        (f.src, f.dst, f.ports),
        (A.into(), V.into(), Some((40000, 80)))
    );
    assert_eq!(f.tcp, Some(TcpFlags::SYN));
    assert!(f.dont_frag && !f.is_fragment());
    assert_eq!(f.end, b.len());
    assert_eq!(parse(&b[..30]), Err(ParseError::Malformed));
    let mut arp = b.clone();
    arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    assert_eq!(parse(&arp), Err(ParseError::NotIp));
}

#[test]
fn incremental_updates_match_full_recompute() {
    for (proto, payload) in [
        (IPPROTO_TCP, &b"GET / HTTP/1.1\r\n\r\n"[..]),
        (IPPROTO_UDP, &b"odd"[..]),
    ] {
        let mut b = build(proto, (A, 40000), (V, 80), 0x18, payload);
        let f = parse(&b).unwrap();
        set_addr(&mut b, &f, false, R.into());
        set_port(&mut b, &f, false, 8080);
        set_addr(&mut b, &f, true, Ipv4Addr::new(198, 51, 100, 1).into());
        set_port(&mut b, &f, true, 61001);
        assert!(ip_csum_ok(&b, ETH_HLEN), "proto {proto}");
        assert!(l4_csum_ok(&b, ETH_HLEN), "proto {proto}");
        let g = parse(&b).unwrap();
        assert_eq!(g.dst, IpAddr::from(R));
        assert_eq!(g.ports, Some((61001, 8080)));
    }
}

#[test]
fn udp_without_checksum_stays_without() {
    let mut b = build(IPPROTO_UDP, (A, 5353), (V, 53), 0, b"q");
    let at = ETH_HLEN + 20 + 6;
    b[at] = 0;
    b[at + 1] = 0;
    let f = parse(&b).unwrap();
    set_addr(&mut b, &f, false, R.into());
    set_port(&mut b, &f, false, 5353);
    assert_eq!(&b[at..at + 2], &[0, 0]);
    assert!(ip_csum_ok(&b, ETH_HLEN));
}

#[test]
fn rfc1624_example() {
    // RFC 1624 section 4: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285 gives 0x0000.
    assert_eq!(csum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

#[test]
fn fragments_have_no_ports() {
    let mut b = build(IPPROTO_UDP, (A, 1), (V, 53), 0, &[0u8; 64]);
    // Second fragment at offset 8 (64 bytes).
    b[ETH_HLEN + 6..ETH_HLEN + 8].copy_from_slice(&8u16.to_be_bytes());
    fix_ip_csum(&mut b, ETH_HLEN);
    let f = parse(&b).unwrap();
    assert!(f.is_fragment());
    assert_eq!(f.ports, None);
    let before = b[ETH_HLEN + 20..].to_vec();
    set_addr(&mut b, &f, false, R.into());
    assert!(ip_csum_ok(&b, ETH_HLEN));
    assert_eq!(b[ETH_HLEN + 20..], before[..], "payload untouched");
}

#[test]
fn icmp_error_quotes_inner_flow_and_frag_needed_round_trips() {
    let b = build(IPPROTO_TCP, (V, 80), (A, 40000), 0x10, &[7u8; 100]);
    let f = parse(&b).unwrap();
    let mut out = Vec::new();
    frag_needed(&b, &f, Ipv4Addr::new(192, 0, 2, 254), 1400, &mut out);
    let g = parse(&out).unwrap();
    assert_eq!(
        (g.src, g.dst, g.proto),
        (Ipv4Addr::new(192, 0, 2, 254).into(), V.into(), 1)
    );
    assert!(ip_csum_ok(&out, ETH_HLEN));
    assert_eq!(fold(sum(&out[g.l4..g.end], 0)), 0, "ICMP checksum");
    let e = icmp_error(&out, &g).unwrap();
    assert_eq!((e.kind, e.code), (3, 4));
    assert_eq!(
        (e.inner.src, e.inner.dst, e.inner.ports),
        (V.into(), A.into(), Some((80, 40000)))
    );
    assert_eq!(u16::from_be_bytes([out[g.l4 + 6], out[g.l4 + 7]]), 1400);
}

#[test]
fn ipip_encapsulation() {
    let b = build(IPPROTO_TCP, (A, 40000), (V, 80), 0x02, b"");
    let f = parse(&b).unwrap();
    let mut out = Vec::new();
    let lb = Ipv4Addr::new(192, 0, 2, 1);
    encap_ipip(&b, &f, lb, R, &mut out);
    let o = parse(&out).unwrap();
    assert_eq!((o.src, o.dst, o.proto), (lb.into(), R.into(), IPPROTO_IPIP));
    assert!(o.dont_frag);
    assert!(ip_csum_ok(&out, ETH_HLEN));
    assert_eq!(&out[o.l4..], &b[ETH_HLEN..]);
}

#[test]
fn arp_request_parses_back() {
    let p = arp_request([2, 0, 0, 0, 0, 9], A, R);
    assert_eq!(arp_sender(&p), Some((A, [2, 0, 0, 0, 0, 9])));
    assert_eq!(&p[38..42], &R.octets());
}

#[test]
fn fragmentation_splits_on_8_byte_boundaries() {
    let b = build(IPPROTO_UDP, (A, 1), (V, 53), 0, &[9u8; 3000]);
    let mut b = b;
    b[ETH_HLEN + 6] = 0; // clear DF
    fix_ip_csum(&mut b, ETH_HLEN);
    let (mut out, mut spans) = (Vec::new(), Vec::new());
    fragment(&b, 1480, &mut out, &mut spans);
    assert_eq!(spans.len(), 3);
    let mut data = Vec::new();
    for (i, &(s, l)) in spans.iter().enumerate() {
        let fr = &out[s..s + l];
        assert!(ip_csum_ok(fr, ETH_HLEN));
        let f = parse(fr).unwrap();
        assert!(l - ETH_HLEN <= 1480);
        assert_eq!(f.more_frags, i < 2);
        assert_eq!(f.frag_off as usize * 8, data.len());
        data.extend_from_slice(&fr[f.l4..f.end]);
    }
    assert_eq!(data, b[ETH_HLEN + 20..]);
}

const A6: &str = "2001:db8:1::10";
const V6: &str = "2001:db8:1::100";
const R6: &str = "2001:db8:2::11";

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn ipv6_parse_reads_tcp_and_udp_fields() {
    let b = build(IPPROTO_TCP, (v6(A6), 40000), (v6(V6), 80), 0x02, b"");
    let f = parse(&b).unwrap();
    assert!(f.v6 && f.dont_frag && !f.is_fragment() && !f.unsupported_ext());
    assert_eq!(
        (f.src, f.dst, f.ports, f.tcp),
        (
            IpAddr::from(v6(A6)),
            IpAddr::from(v6(V6)),
            Some((40000, 80)),
            Some(TcpFlags::SYN)
        )
    );
    assert_eq!((f.l4, f.end), (ETH_HLEN + 40, b.len()));
    assert!(l4_csum_ok(&b, ETH_HLEN));
    assert_eq!(parse(&b[..ETH_HLEN + 50]), Err(ParseError::Malformed));
    let u = build(IPPROTO_UDP, (v6(A6), 5353), (v6(V6), 53), 0, b"q");
    let g = parse(&u).unwrap();
    assert_eq!((g.proto, g.ports), (IPPROTO_UDP, Some((5353, 53))));
    assert!(!g.udp6_zero_csum(&u));
    // Trailing Ethernet padding is not part of the datagram.
    let mut padded = u.clone();
    padded.extend_from_slice(&[0; 10]);
    assert_eq!(parse(&padded).unwrap().end, u.len());
}

#[test]
fn ipv6_incremental_updates_match_full_recompute() {
    for (proto, payload) in [
        (IPPROTO_TCP, &b"GET / HTTP/1.1\r\n\r\n"[..]),
        (IPPROTO_UDP, &b"odd"[..]),
        (IPPROTO_UDP, &[0xffu8; 64][..]),
    ] {
        let mut b = build(proto, (v6(A6), 40000), (v6(V6), 80), 0x18, payload);
        let f = parse(&b).unwrap();
        set_addr(&mut b, &f, false, v6(R6).into());
        set_port(&mut b, &f, false, 8080);
        set_addr(&mut b, &f, true, v6("2001:db8:2::1").into());
        set_port(&mut b, &f, true, 61001);
        assert!(l4_csum_ok(&b, ETH_HLEN), "proto {proto}");
        let g = parse(&b).unwrap();
        assert_eq!(g.dst, IpAddr::from(v6(R6)));
        assert_eq!(g.src, IpAddr::from(v6("2001:db8:2::1")));
        assert_eq!(g.ports, Some((61001, 8080)));
        // Back again: the original bytes.
        let orig = build(proto, (v6(A6), 40000), (v6(V6), 80), 0x18, payload);
        set_addr(&mut b, &g, false, v6(V6).into());
        set_port(&mut b, &g, false, 80);
        set_addr(&mut b, &g, true, v6(A6).into());
        set_port(&mut b, &g, true, 40000);
        if proto == IPPROTO_TCP {
            assert_eq!(b, orig);
        } else {
            assert!(l4_csum_ok(&b, ETH_HLEN));
            assert_eq!(b[ETH_HLEN + 40..], orig[ETH_HLEN + 40..]);
        }
    }
}

#[test]
fn ipv6_udp_checksum_never_becomes_zero() {
    // Find a datagram whose rewritten checksum computes to 0 and check it goes out as 0xffff.
    let mut found = false;
    for p in 0..=u16::MAX {
        let mut b = build(
            IPPROTO_UDP,
            (v6(A6), 5353),
            (v6(V6), 53),
            0,
            &p.to_be_bytes(),
        );
        let f = parse(&b).unwrap();
        set_addr(&mut b, &f, false, v6(R6).into());
        let at = ETH_HLEN + 40 + 6;
        assert_ne!(&b[at..at + 2], &[0, 0]);
        assert!(l4_csum_ok(&b, ETH_HLEN));
        if b[at..at + 2] == [0xff, 0xff] {
            found = true;
            break;
        }
    }
    assert!(found, "some payload makes the checksum 0xffff");
    let mut z = build(IPPROTO_UDP, (v6(A6), 5353), (v6(V6), 53), 0, b"q");
    z[ETH_HLEN + 46] = 0;
    z[ETH_HLEN + 47] = 0;
    assert!(parse(&z).unwrap().udp6_zero_csum(&z), "invalid in IPv6");
}

/// Inserts an 8-byte extension header of type `kind` after the IPv6 header.
fn with_ext(b: &[u8], kind: u8, body: [u8; 6]) -> Vec<u8> {
    let ip = ETH_HLEN;
    let mut out = b[..ip + 40].to_vec();
    out.push(b[ip + 6]);
    out.push(0);
    out.extend_from_slice(&body);
    out.extend_from_slice(&b[ip + 40..]);
    out[ip + 6] = kind;
    let plen = u16::from_be_bytes([b[ip + 4], b[ip + 5]]) + 8;
    out[ip + 4..ip + 6].copy_from_slice(&plen.to_be_bytes());
    out
}

#[test]
fn ipv6_fragment_header_and_other_extension_headers() {
    let b = build(IPPROTO_UDP, (v6(A6), 1), (v6(V6), 53), 0, &[5u8; 64]);
    // First fragment: offset 0, M set, id 0xdeadbeef.
    let first = with_ext(&b, IPPROTO_FRAGMENT, [0, 1, 0xde, 0xad, 0xbe, 0xef]);
    let f = parse(&first).unwrap();
    assert!(f.is_fragment() && f.more_frags && f.frag_off == 0);
    assert_eq!(
        (f.id, f.proto, f.l4),
        (0xdead_beef, IPPROTO_UDP, ETH_HLEN + 48)
    );
    assert_eq!(f.ports, Some((1, 53)), "the first fragment has the ports");
    assert!(!f.unsupported_ext());
    let mut first = first;
    set_addr(&mut first, &f, false, v6(R6).into());
    assert_eq!(parse(&first).unwrap().dst, IpAddr::from(v6(R6)));
    // Second fragment at offset 64 bytes (8 units): no ports, payload untouched.
    let mut second = with_ext(&b, IPPROTO_FRAGMENT, [0, 8 << 3, 0xde, 0xad, 0xbe, 0xef]);
    let g = parse(&second).unwrap();
    assert_eq!((g.frag_off, g.more_frags, g.ports), (8, false, None));
    let before = second[g.l4..].to_vec();
    set_addr(&mut second, &g, false, v6(R6).into());
    assert_eq!(second[g.l4..], before[..]);
    // Hop-by-hop, routing, destination options: reported, not walked.
    for kind in [0u8, 43, 60] {
        let e = with_ext(&b, kind, [1, 4, 0, 0, 0, 0]);
        let f = parse(&e).unwrap();
        assert!(f.unsupported_ext(), "{kind}");
        assert_eq!((f.proto, f.ports), (kind, None));
    }
}

#[test]
fn icmpv6_packet_too_big_quotes_the_flow_and_is_checksummed() {
    let b = build(
        IPPROTO_TCP,
        (v6(V6), 80),
        (v6(A6), 40000),
        0x10,
        &[7u8; 1400],
    );
    let f = parse(&b).unwrap();
    let mut out = Vec::new();
    let router = v6("2001:db8:1::fe");
    packet_too_big(&b, &f, router, 1400, &mut out);
    assert!(out.len() - ETH_HLEN <= IPV6_MIN_MTU, "fits the minimum MTU");
    let g = parse(&out).unwrap();
    assert_eq!(
        (g.src, g.dst, g.proto),
        (IpAddr::from(router), IpAddr::from(v6(V6)), IPPROTO_ICMPV6)
    );
    assert!(
        l4_csum_ok(&out, ETH_HLEN),
        "ICMPv6 checksum over the pseudo-header"
    );
    let e = icmp_error(&out, &g).unwrap();
    assert_eq!((e.kind, e.code), (2, 0));
    assert_eq!(
        (e.inner.src, e.inner.dst, e.inner.ports),
        (
            IpAddr::from(v6(V6)),
            IpAddr::from(v6(A6)),
            Some((80, 40000))
        )
    );
    assert_eq!(&out[g.l4 + 4..g.l4 + 8], &1400u32.to_be_bytes());
    // Rewriting the outer destination and the quoted source keeps the checksum
    // right once recomputed; the outer rewrite alone is incremental.
    let mut x = out.clone();
    set_addr(&mut x, &g, false, v6(R6).into());
    assert!(l4_csum_ok(&x, ETH_HLEN), "incremental ICMPv6 update");
    set_addr(&mut x, &e.inner, true, v6(R6).into());
    fix_icmp_csum(&mut x, &g);
    assert!(l4_csum_ok(&x, ETH_HLEN));
    // Informational ICMPv6 (echo request, neighbour discovery) is not an error.
    let mut echo = out.clone();
    echo[g.l4] = 128;
    assert_eq!(icmp_error(&echo, &g), None);
}

#[test]
fn ip6ip6_encapsulation() {
    let b = build(IPPROTO_TCP, (v6(A6), 40000), (v6(V6), 80), 0x02, b"");
    let f = parse(&b).unwrap();
    let mut out = Vec::new();
    let lb = v6("2001:db8::1");
    encap_ip6ip6(&b, &f, lb, v6(R6), &mut out);
    let o = parse(&out).unwrap();
    assert_eq!(
        (o.src, o.dst, o.proto),
        (IpAddr::from(lb), IpAddr::from(v6(R6)), IPPROTO_IPV6)
    );
    assert_eq!(&out[o.l4..], &b[ETH_HLEN..], "inner datagram unchanged");
    assert_eq!(
        &out[ETH_HLEN + 1..ETH_HLEN + 4],
        &[0x0a, 0xbc, 0xde],
        "flow label kept"
    );
}

#[test]
fn neighbour_solicitation_is_well_formed_and_advertisements_parse() {
    let mac = [2, 0, 0, 0, 0, 9];
    let ns = neighbour_solicitation(mac, v6("2001:db8:2::1"), v6(R6));
    assert_eq!(&ns[0..6], &[0x33, 0x33, 0xff, 0, 0, 0x11]);
    let f = parse(&ns).unwrap();
    assert_eq!(f.dst, IpAddr::from(v6("ff02::1:ff00:11")));
    assert_eq!(ns[ETH_HLEN + 7], 255, "hop limit");
    assert_eq!(ns[f.l4], 135);
    assert_eq!(&ns[f.l4 + 8..f.l4 + 24], &v6(R6).octets());
    assert_eq!(&ns[f.l4 + 24..f.l4 + 32], &[1, 1, 2, 0, 0, 0, 0, 9]);
    assert!(l4_csum_ok(&ns, ETH_HLEN));
    // An advertisement as a raw ICMPv6 socket hands it over.
    let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    na.extend_from_slice(&v6(R6).octets());
    na.extend_from_slice(&[2, 1, 2, 0, 0, 0, 1, 0x11]);
    assert_eq!(na_target(&na), Some((v6(R6), [2, 0, 0, 0, 1, 0x11])));
    assert_eq!(na_target(&na[..24]), None, "no target link-layer address");
    na[1] = 25;
    assert_eq!(na_target(&na), None, "code not 0");
    na[1] = 0;
    na[8..24].copy_from_slice(&v6("ff02::1").octets());
    assert_eq!(na_target(&na), None, "multicast target");
}

#[test]
fn tcp_reset_answers_as_a_stack_would() {
    let client: IpAddr = "203.0.113.10".parse().unwrap();
    let vip: IpAddr = "203.0.113.100".parse().unwrap();
    // An ACK with 5 bytes of data, seq 1000, ack 7777: the reset takes seq 7777.
    let mut b = build(IPPROTO_TCP, (client, 40000), (vip, 80), 0x18, b"hello");
    let l4 = ETH_HLEN + 20;
    b[l4 + 4..l4 + 8].copy_from_slice(&1000u32.to_be_bytes());
    b[l4 + 8..l4 + 12].copy_from_slice(&7777u32.to_be_bytes());
    let c = l4_full_csum(&b, ETH_HLEN);
    b[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    let f = parse(&b).unwrap();
    let mut out = Vec::new();
    tcp_reset(&b, &f, &mut out);
    assert!(ip_csum_ok(&out, ETH_HLEN) && l4_csum_ok(&out, ETH_HLEN));
    let r = parse(&out).unwrap();
    assert_eq!((r.src, r.dst, r.ports), (vip, client, Some((80, 40000))));
    assert_eq!(&out[0..6], &b[6..12], "back to the sender's MAC");
    assert_eq!(be32(&out, r.l4 + 4), 7777);
    assert_eq!(out[r.l4 + 13], 0x04, "RST alone");
    // A FIN without ACK (seq 1000, 5 bytes) is acknowledged: 1000 + 5 + 1.
    let mut b = build(
        IPPROTO_TCP,
        ("2001:db8::10".parse::<IpAddr>().unwrap(), 40000),
        ("2001:db8::100".parse::<IpAddr>().unwrap(), 80),
        0x01,
        b"hello",
    );
    let l4 = ETH_HLEN + 40;
    b[l4 + 4..l4 + 8].copy_from_slice(&1000u32.to_be_bytes());
    let c = l4_full_csum(&b, ETH_HLEN);
    b[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    let f = parse(&b).unwrap();
    tcp_reset(&b, &f, &mut out);
    assert!(l4_csum_ok(&out, ETH_HLEN));
    let r = parse(&out).unwrap();
    assert_eq!((be32(&out, r.l4 + 4), be32(&out, r.l4 + 8)), (0, 1006));
    assert_eq!(out[r.l4 + 13], 0x14, "RST+ACK");
}
