use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::vectors::{self, hex, Vector};
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pass(s: &[u8; 8]) -> Auth {
    Auth::Pass(*s)
}

/// The advert each captured vector must decode to exactly.
fn expected(v: &Vector) -> Advert {
    let prio0 = v.name.contains("priority 0");
    let (version, vrid, priority, max_adver_int, addrs, auth) = match v.payload.get(..4) {
        Some("2133") => (
            Version::V2,
            51,
            150,
            100,
            vec![ip("192.0.2.100"), ip("192.0.2.101")],
            pass(b"secret12"),
        ),
        Some("2107") => (
            Version::V2,
            7,
            100,
            200,
            vec![ip("192.0.2.110")],
            Auth::None,
        ),
        Some("3134") => (
            Version::V3,
            52,
            200,
            10,
            vec![ip("192.0.2.120"), ip("192.0.2.121"), ip("192.0.2.122")],
            Auth::None,
        ),
        Some("3135") => (
            Version::V3,
            53,
            120,
            100,
            vec![ip("fe80::53"), ip("2001:db8::100")],
            Auth::None,
        ),
        other => panic!("unknown vector {other:?}"),
    };
    Advert {
        version,
        vrid,
        priority: if prio0 { 0 } else { priority },
        max_adver_int,
        addrs,
        auth,
    }
}

/// What the receiving instance of a vector's VRID is configured with.
fn expect_for(a: &Advert) -> Expect {
    Expect {
        version: a.version,
        vrid: a.vrid,
        auth: a.auth,
        adver_int: a.max_adver_int,
        check_ttl: true,
    }
}

/// Recomputes the checksum after a test tampered with the payload.
fn fix_checksum(p: &mut [u8], meta: &RxMeta, v3: bool) {
    p[6] = 0;
    p[7] = 0;
    let acc = if v3 {
        wire::pseudo_header_sum(&meta.src, &meta.dst, p.len())
    } else {
        0
    };
    let sum = !wire::fold(wire::sum_words(acc, p));
    p[6..8].copy_from_slice(&sum.to_be_bytes());
}

// ---- captured vectors ----

#[test]
fn vectors_decode_to_exact_adverts() {
    for v in vectors::ALL {
        let want = expected(v);
        let got = decode(&v.payload(), &v.meta(), &expect_for(&want));
        assert_eq!(got, Ok(want.clone()), "{}", v.name);
        assert_eq!(
            decode_unchecked(&v.payload(), &v.meta()),
            Ok(want),
            "{}",
            v.name
        );
    }
}

#[test]
fn vectors_reencode_byte_for_byte() {
    for v in vectors::ALL {
        let m = v.meta();
        let bytes = expected(v).encode(m.src, m.dst);
        assert_eq!(bytes, v.payload(), "{}", v.name);
        assert_eq!(bytes.len(), expected(v).wire_len(), "{}", v.name);
    }
}

#[test]
fn vectors_split_ipv4_yields_meta_and_payload() {
    for v in vectors::ALL {
        let Some(pkt) = v.ip_packet else { continue };
        let pkt = hex(pkt);
        let (meta, payload) = split_ipv4(&pkt).expect(v.name);
        assert_eq!(meta, v.meta(), "{}", v.name);
        assert_eq!(payload, &v.payload()[..], "{}", v.name);
    }
}

#[test]
fn encode_into_reuses_buffer() {
    let a = expected(&vectors::V3_V4);
    let m = vectors::V3_V4.meta();
    let mut buf = vec![0xaa; 100];
    a.encode_into(m.src, m.dst, &mut buf);
    assert_eq!(buf, vectors::V3_V4.payload());
}

#[test]
fn encode_saturates_out_of_range_intervals() {
    let mut a = expected(&vectors::V3_V4);
    a.max_adver_int = 5000;
    let m = vectors::V3_V4.meta();
    let d = decode_unchecked(&a.encode(m.src, m.dst), &m).unwrap();
    assert_eq!(d.max_adver_int, 4095);
}

// ---- one test per DropReason ----

fn v2() -> (Vec<u8>, RxMeta, Expect) {
    let v = &vectors::V2_PASS;
    (v.payload(), v.meta(), expect_for(&expected(v)))
}

fn v3() -> (Vec<u8>, RxMeta, Expect) {
    let v = &vectors::V3_V4;
    (v.payload(), v.meta(), expect_for(&expected(v)))
}

fn v3v6() -> (Vec<u8>, RxMeta, Expect) {
    let v = &vectors::V3_V6;
    (v.payload(), v.meta(), expect_for(&expected(v)))
}

#[test]
fn drop_too_short() {
    let (p, m, e) = v2();
    for len in 0..8 {
        assert_eq!(decode(&p[..len], &m, &e), Err(DropReason::TooShort));
        assert_eq!(decode_unchecked(&p[..len], &m), Err(DropReason::TooShort));
    }
}

#[test]
fn drop_bad_ttl() {
    for (p, mut m, e) in [v2(), v3(), v3v6()] {
        m.ttl = 254;
        assert_eq!(decode(&p, &m, &e), Err(DropReason::BadTtl));
        // Structure-only decoding does not care.
        assert!(decode_unchecked(&p, &m).is_ok());
    }
}

#[test]
fn unicast_instances_accept_any_ttl() {
    for (p, mut m, mut e) in [v2(), v3(), v3v6()] {
        m.ttl = 64;
        e.check_ttl = false;
        assert!(decode(&p, &m, &e).is_ok());
    }
}

#[test]
fn drop_bad_version() {
    // A v3 advert at a v2 instance and vice versa.
    let (p, m, mut e) = v3();
    e.version = Version::V2;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadVersion));
    let (p, m, mut e) = v2();
    e.version = Version::V3;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadVersion));
    // Unknown version nibble.
    let (mut p, m, _) = v2();
    p[0] = 0x41;
    fix_checksum(&mut p, &m, false);
    assert_eq!(decode_unchecked(&p, &m), Err(DropReason::BadVersion));
}

#[test]
fn drop_bad_type() {
    let (mut p, m, e) = v3();
    p[0] = 0x32;
    fix_checksum(&mut p, &m, true);
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadType));
    assert_eq!(decode_unchecked(&p, &m), Err(DropReason::BadType));
}

#[test]
fn drop_bad_checksum() {
    let (mut p, m, e) = v2();
    p[2] ^= 1;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadChecksum));
    // v3 covers the pseudo-header: another source address breaks it.
    for (p, mut m, e) in [v3(), v3v6()] {
        m.src = match m.src {
            IpAddr::V4(_) => ip("192.0.2.9"),
            IpAddr::V6(_) => ip("fe80::9"),
        };
        assert_eq!(decode(&p, &m, &e), Err(DropReason::BadChecksum));
        assert_eq!(decode_unchecked(&p, &m), Err(DropReason::BadChecksum));
    }
}

#[test]
fn drop_vrid_mismatch() {
    let (p, m, mut e) = v3v6();
    e.vrid = 54;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::VridMismatch));
}

#[test]
fn drop_bad_addr_count() {
    // Count says 3 but only 2 addresses follow.
    let (mut p, m, e) = v2();
    p[3] = 3;
    fix_checksum(&mut p, &m, false);
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadAddrCount));
    // Truncated and padded payloads.
    let (p, m, e) = v3();
    assert_eq!(
        decode(&p[..p.len() - 1], &m, &e),
        Err(DropReason::BadAddrCount)
    );
    let mut long = p.clone();
    long.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(decode(&long, &m, &e), Err(DropReason::BadAddrCount));
}

#[test]
fn drop_bad_family() {
    // IPv6 VIP list (v3) carried in an IPv4 packet.
    let (p6, _, e) = v3v6();
    let (_, m4, _) = v3();
    assert_eq!(decode(&p6, &m4, &e), Err(DropReason::BadFamily));
    // v2 over IPv6.
    let (p, _, e) = v2();
    let (_, m6, _) = v3v6();
    assert_eq!(decode(&p, &m6, &e), Err(DropReason::BadFamily));
    // Source and destination of different families.
    let (p, mut m, e) = v3();
    m.dst = IpAddr::V6(MCAST_V6);
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadFamily));
}

#[test]
fn drop_auth_mismatch() {
    // Wrong password: keepalived compares all 8 bytes (its "Failure" counter).
    let (p, m, mut e) = v2();
    e.auth = pass(b"secret13");
    assert_eq!(decode(&p, &m, &e), Err(DropReason::AuthFailure));
    // Password sent, none expected; and the reverse ("Type Mismatch").
    e.auth = Auth::None;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::AuthTypeMismatch));
    let v = &vectors::V2_NONE;
    let mut e = expect_for(&expected(v));
    e.auth = pass(b"secret12");
    assert_eq!(
        decode(&v.payload(), &v.meta(), &e),
        Err(DropReason::AuthTypeMismatch)
    );
    // AH (type 2) when a password is expected: a mismatch. Unchecked, it reads as AH without
    // a key (the key is never on the wire).
    let (mut p, m, e) = v2();
    p[4] = 2;
    fix_checksum(&mut p, &m, false);
    assert_eq!(decode(&p, &m, &e), Err(DropReason::AuthTypeMismatch));
    assert_eq!(decode_unchecked(&p, &m).unwrap().auth, Auth::Ah([0; 8]));
    // Any other type is invalid ("Invalid Type").
    let (mut p, m, e) = v2();
    p[4] = 3;
    fix_checksum(&mut p, &m, false);
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadAuthType));
    assert_eq!(decode_unchecked(&p, &m), Err(DropReason::BadAuthType));
}

#[test]
fn auth_none_ignores_auth_data() {
    let v = &vectors::V2_NONE;
    let mut p = v.payload();
    let m = v.meta();
    let n = p.len();
    p[n - 8..].copy_from_slice(b"garbage!");
    fix_checksum(&mut p, &m, false);
    assert_eq!(decode(&p, &m, &expect_for(&expected(v))), Ok(expected(v)));
}

#[test]
fn drop_interval_mismatch() {
    let (p, m, mut e) = v2();
    e.adver_int = 200;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::IntervalMismatch));
    // v3 learns the master's interval instead of dropping (RFC 5798 §6.4.2).
    let (p, m, mut e) = v3();
    e.adver_int = 100;
    assert_eq!(decode(&p, &m, &e).map(|a| a.max_adver_int), Ok(10));
}

#[test]
fn drop_bad_ip_header() {
    let pkt = hex(vectors::V2_PASS.ip_packet.unwrap());
    assert_eq!(split_ipv4(&pkt[..19]), Err(DropReason::BadIpHeader));
    let mut bad = pkt.clone();
    bad[0] = 0x65; // version 6
    assert_eq!(split_ipv4(&bad), Err(DropReason::BadIpHeader));
    let mut bad = pkt.clone();
    bad[0] = 0x44; // IHL 4
    assert_eq!(split_ipv4(&bad), Err(DropReason::BadIpHeader));
    let mut bad = pkt.clone();
    bad[0] = 0x4f; // IHL 15 (60 bytes) beyond total length 44
    assert_eq!(split_ipv4(&bad), Err(DropReason::BadIpHeader));
    // Total length beyond the buffer.
    assert_eq!(
        split_ipv4(&pkt[..pkt.len() - 1]),
        Err(DropReason::BadIpHeader)
    );
    let mut bad = pkt.clone();
    bad[6] = 0x20; // more fragments
    assert_eq!(split_ipv4(&bad), Err(DropReason::BadIpHeader));
    let mut df = pkt.clone();
    df[6] = 0x40; // don't fragment is fine
    assert!(split_ipv4(&df).is_ok());
}

#[test]
fn split_ipv4_handles_options_and_padding() {
    let pkt = hex(vectors::V3_V4.ip_packet.unwrap());
    // Insert 4 bytes of options (IHL 6) and trailing link padding.
    let mut with_opts = pkt[..20].to_vec();
    with_opts[0] = 0x46;
    let total = (pkt.len() + 4) as u16;
    with_opts[2..4].copy_from_slice(&total.to_be_bytes());
    with_opts.extend_from_slice(&[1, 1, 1, 0]);
    with_opts.extend_from_slice(&pkt[20..]);
    with_opts.extend_from_slice(&[0; 6]);
    let (meta, payload) = split_ipv4(&with_opts).unwrap();
    assert_eq!(meta, vectors::V3_V4.meta());
    assert_eq!(payload, &vectors::V3_V4.payload()[..]);
}

#[test]
fn drop_not_vrrp() {
    let mut pkt = hex(vectors::V2_NONE.ip_packet.unwrap());
    pkt[9] = 17;
    assert_eq!(split_ipv4(&pkt), Err(DropReason::NotVrrp));
}

#[test]
fn check_order_matches_keepalived() {
    // Another VRID on the shared group is only a VRID mismatch, even when also corrupt, of
    // another version or with a bad TTL: keepalived's dispatcher demultiplexes by VRID first.
    let (mut p, mut m, mut e) = v3();
    p[7] ^= 0xff;
    e.vrid = 1;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::VridMismatch));
    m.ttl = 1;
    e.version = Version::V2;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::VridMismatch));
    // TTL is checked before version.
    let (p, mut m, mut e) = v2();
    m.ttl = 1;
    e.version = Version::V3;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadTtl));
    // Length first, by the packet's own version: a v2-sized packet claiming v3 is a length
    // error, not a version error; a genuine v3 packet to a v2 instance is a version error.
    let (mut p, m, e) = v2();
    p[0] = 0x31;
    fix_checksum(&mut p, &m, false);
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadAddrCount));
    let (p, m, v3_expect) = v3();
    let (_, _, e) = v2();
    let e = Expect {
        vrid: v3_expect.vrid,
        ..e
    };
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadVersion));
    // A corrupted v2 packet is a checksum error, not an auth failure.
    let (mut p, m, e) = v2();
    p[20] ^= 1;
    assert_eq!(decode(&p, &m, &e), Err(DropReason::BadChecksum));
}

// ---- properties ----

fn arb_v4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
}

fn arb_v6() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
}

prop_compose! {
    fn arb_v2_v4()(
        vrid in 1u8..=255, priority: u8, secs in 1u16..=255,
        addrs in prop::collection::vec(arb_v4(), 0..=20),
        pw in prop::option::of(any::<[u8; 8]>()), src in arb_v4(), dst in arb_v4(),
    ) -> (Advert, IpAddr, IpAddr) {
        let auth = pw.map_or(Auth::None, Auth::Pass);
        let a = Advert { version: Version::V2, vrid, priority, max_adver_int: secs * 100, addrs, auth };
        (a, src, dst)
    }
}

prop_compose! {
    fn arb_v3(v6: bool)(
        vrid in 1u8..=255, priority: u8, cs in 0u16..=4095,
        addrs in prop::collection::vec(if v6 { arb_v6().boxed() } else { arb_v4().boxed() }, 0..=20),
        src in if v6 { arb_v6().boxed() } else { arb_v4().boxed() },
        dst in if v6 { arb_v6().boxed() } else { arb_v4().boxed() },
    ) -> (Advert, IpAddr, IpAddr) {
        let a = Advert { version: Version::V3, vrid, priority, max_adver_int: cs, addrs, auth: Auth::None };
        (a, src, dst)
    }
}

fn round_trip(a: &Advert, src: IpAddr, dst: IpAddr) -> Result<(), TestCaseError> {
    let bytes = a.encode(src, dst);
    prop_assert_eq!(bytes.len(), a.wire_len());
    let meta = RxMeta { src, dst, ttl: 255 };
    prop_assert_eq!(decode(&bytes, &meta, &expect_for(a)), Ok(a.clone()));
    prop_assert_eq!(decode_unchecked(&bytes, &meta), Ok(a.clone()));
    Ok(())
}

proptest! {
    #[test]
    fn round_trip_v2_v4((a, src, dst) in arb_v2_v4()) {
        round_trip(&a, src, dst)?;
    }

    #[test]
    fn round_trip_v3_v4((a, src, dst) in arb_v3(false)) {
        round_trip(&a, src, dst)?;
    }

    #[test]
    fn round_trip_v3_v6((a, src, dst) in arb_v3(true)) {
        round_trip(&a, src, dst)?;
    }

    /// Any single flipped bit in a v3 advert is caught (checksum or an earlier check).
    #[test]
    fn single_bit_flip_is_dropped((a, src, dst) in arb_v3(false), bit in any::<prop::sample::Index>()) {
        let mut bytes = a.encode(src, dst);
        let i = bit.index(bytes.len() * 8);
        bytes[i / 8] ^= 1 << (i % 8);
        let meta = RxMeta { src, dst, ttl: 255 };
        prop_assert!(decode(&bytes, &meta, &expect_for(&a)).is_err());
    }

    #[test]
    fn decoders_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        v6: bool, ttl: u8, vrid: u8, v3: bool, adver_int: u16, pw in prop::option::of(any::<[u8; 8]>()),
    ) {
        let (src, dst) = if v6 { (ip("fe80::1"), IpAddr::V6(MCAST_V6)) } else { (ip("192.0.2.1"), IpAddr::V4(MCAST_V4)) };
        let meta = RxMeta { src, dst, ttl };
        let expect = Expect {
            version: if v3 { Version::V3 } else { Version::V2 },
            vrid,
            auth: pw.map_or(Auth::None, Auth::Pass),
            adver_int,
            check_ttl: true,
        };
        let _ = decode(&bytes, &meta, &expect);
        let _ = decode_unchecked(&bytes, &meta);
        if let Ok((m, p)) = split_ipv4(&bytes) {
            prop_assert!(p.len() <= bytes.len());
            let _ = decode_unchecked(p, &m);
        }
    }
}
