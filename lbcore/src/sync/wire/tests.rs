use super::*;
use proptest::prelude::*;

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn conn() -> Entry {
    Entry {
        protocol: 6,
        flags: flags::MASQ,
        state: 1,
        cport: 40000,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout: 900,
        caddr: v4("203.0.113.10"),
        vaddr: v4("203.0.113.100"),
        daddr: v4("198.51.100.11"),
        snat: None,
    }
}

/// A message as Linux's ip_vs_sync_conn() lays it out, written field by field from the
/// kernel's struct ip_vs_sync_mesg / ip_vs_sync_v4 (not by our encoder).
fn kernel_bytes() -> Vec<u8> {
    let mut m = vec![0, 51, 0, 44, 1, 1, 0, 0];
    m.extend_from_slice(&[0, 6, 0x00, 36]); // type v4, TCP, version 0 | size 36
    m.extend_from_slice(&0x0000_0103u32.to_be_bytes()); // DROUTE | INACTIVE
    m.extend_from_slice(&3u16.to_be_bytes()); // SYN_RECV
    m.extend_from_slice(&40000u16.to_be_bytes());
    m.extend_from_slice(&80u16.to_be_bytes());
    m.extend_from_slice(&80u16.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&60u32.to_be_bytes());
    m.extend_from_slice(&[192, 0, 2, 50, 192, 0, 2, 100, 192, 0, 2, 11]);
    m
}

#[test]
fn decodes_what_linux_sends() {
    let m = decode(&kernel_bytes()).unwrap();
    assert_eq!(m.syncid, 51);
    assert!(!m.resync);
    let e = m.entries[0].clone().unwrap();
    assert_eq!(e.flags & flags::FWD_MASK, flags::DROUTE);
    assert_eq!((e.state, e.timeout, e.cport, e.vport), (3, 60, 40000, 80));
    assert_eq!(e.caddr, v4("192.0.2.50"));
    assert_eq!(e.daddr, v4("192.0.2.11"));
}

#[test]
fn encodes_what_linux_sends() {
    let mut e = conn();
    e.flags = flags::DROUTE | flags::INACTIVE;
    e.state = 3;
    e.dport = 80;
    e.timeout = 60;
    e.caddr = v4("192.0.2.50");
    e.vaddr = v4("192.0.2.100");
    e.daddr = v4("192.0.2.11");
    let mut b = Builder::new(51, 1500);
    assert!(b.push(&e));
    let mut out = Vec::new();
    b.finish(&mut out);
    assert_eq!(out, kernel_bytes());
    assert!(b.is_empty(), "finish starts a new message");
}

#[test]
fn ipv6_entries_and_trailer_round_trip() {
    let mut e6 = conn();
    e6.caddr = "2001:db8:1::10".parse().unwrap();
    e6.vaddr = "2001:db8:1::100".parse().unwrap();
    e6.daddr = "2001:db8:2::11".parse().unwrap();
    e6.snat = Some(("2001:db8:2::1".parse().unwrap(), 61001));
    let mut e4 = conn();
    e4.snat = Some((v4("198.51.100.1"), 61000));
    let t = Entry {
        flags: flags::TEMPLATE | flags::MASQ,
        state: 0,
        cport: 0,
        timeout: 360,
        ..conn()
    };
    let mut b = Builder::new(7, 1500);
    for e in [&e4, &conn(), &e6, &t] {
        assert!(b.push(e));
    }
    b.request_resync();
    let mut out = Vec::new();
    b.finish(&mut out);
    assert_eq!(out.len(), 8 + 36 * 3 + 72 + 5 + 9 + 21 + 3);
    let m = decode(&out).unwrap();
    assert_eq!(m.syncid, 7);
    assert!(m.resync);
    let got: Vec<Entry> = m.entries.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, vec![e4, conn(), e6, t]);
}

#[test]
fn maxlen_and_count_bound_a_message() {
    let max = 8 + 36 * 3 + 5 + 9 - 1;
    let mut b = Builder::new(1, max);
    let mut e = conn();
    e.snat = Some((v4("198.51.100.1"), 61000));
    assert!(b.push(&conn()));
    assert!(b.push(&conn()));
    assert!(!b.push(&e), "its trailer record would not fit");
    assert!(b.push(&conn()));
    assert!(!b.push(&conn()));
    let mut out = Vec::new();
    b.finish(&mut out);
    assert!(out.len() <= max);
    assert_eq!(decode(&out).unwrap().entries.len(), 3);
    let mut b = Builder::new(1, u16::MAX as usize);
    let n = (0..300).take_while(|_| b.push(&conn())).count();
    assert_eq!(n, 255, "count is one byte");
}

#[test]
fn malformed_messages_are_refused_whole() {
    let good = kernel_bytes();
    assert_eq!(decode(&good[..7]), Err(Malformed::Short));
    let mut m = good.clone();
    m.push(0);
    assert!(matches!(decode(&m), Err(Malformed::Size { .. })));
    let mut m = good.clone();
    m[5] = 0;
    assert_eq!(
        decode(&m),
        Err(Malformed::Version),
        "version 0 is not spoken"
    );
    let mut m = good.clone();
    m[4] = 2; // a second entry that is not there
    assert_eq!(decode(&m), Err(Malformed::Truncated(1)));
    let mut m = good.clone();
    m[10] = 0x10; // entry version 1
    assert_eq!(decode(&m), Err(Malformed::EntryVersion(0)));
    let mut m = good.clone();
    m[11] = 200; // entry longer than the message
    assert_eq!(decode(&m), Err(Malformed::Truncated(0)));
    for size in [0, 35] {
        let mut m = good.clone();
        m[11] = size; // an entry shorter than its fixed part (found by the fuzzer)
        assert_eq!(decode(&m), Err(Malformed::Truncated(0)), "size {size}");
    }
    let mut m = good.clone();
    m[8] = 4;
    assert_eq!(decode(&m), Err(Malformed::EntryType(0)));
    // A zero-length option, and a sequence option of the wrong size.
    for opt in [&[0x41u8, 0, 0, 0][..], &[1, 4, 0, 0, 0, 0][..]] {
        let mut m = good.clone();
        m.extend_from_slice(opt);
        let size = (m.len() - 8) as u8;
        m[11] = size;
        m[3] = m.len() as u8;
        assert_eq!(decode(&m), Err(Malformed::Option(0)), "{opt:?}");
    }
    // A trailer record naming an entry that does not exist.
    let mut m = good;
    m.extend_from_slice(b"VRPD\x01\x05\x01\x06\xc6\x33\x64\x01\xee\x48");
    m[3] = m.len() as u8;
    assert_eq!(decode(&m), Err(Malformed::Trailer));
}

#[test]
fn options_are_handled_as_linux_does() {
    let with = |opt: &[u8]| {
        let mut m = kernel_bytes();
        m.extend_from_slice(opt);
        m[11] = (m.len() - 8) as u8;
        m[3] = m.len() as u8;
        decode(&m).unwrap().entries.remove(0)
    };
    let mut seq = vec![1, 24];
    seq.extend_from_slice(&[0; 24]);
    assert!(with(&seq).is_ok(), "sequence data is read, not used");
    assert!(with(&[0x45, 2, 0, 0]).is_ok(), "optional unknown option");
    assert_eq!(with(&[5, 2, 0, 0]), Err(Skipped::UnknownOption));
    assert_eq!(with(&[2, 2, 1, 2]), Err(Skipped::PersistenceEngine));
    // Foreign bytes after the entries (no magic) are ignored as Linux ignores them.
    let mut m = kernel_bytes();
    m.extend_from_slice(b"junk");
    m[3] = m.len() as u8;
    assert!(decode(&m).unwrap().entries[0].is_ok());
}

fn any_addr(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|a| IpAddr::from(Ipv6Addr::from(a)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|a| IpAddr::from(Ipv4Addr::from(a)))
            .boxed()
    }
}

fn any_entry() -> impl Strategy<Value = Entry> {
    any::<bool>().prop_flat_map(|v6| {
        (
            (any::<u8>(), any::<u32>(), any::<u16>(), any::<u16>()),
            (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()),
            (any_addr(v6), any_addr(v6), any_addr(v6)),
            proptest::option::of((any_addr(v6), any::<u16>())),
        )
            .prop_map(
                |((protocol, flags, state, cport), (vport, dport, fwmark, timeout), a, snat)| {
                    Entry {
                        protocol,
                        flags,
                        state,
                        cport,
                        vport,
                        dport,
                        fwmark,
                        timeout,
                        caddr: a.0,
                        vaddr: a.1,
                        daddr: a.2,
                        snat,
                    }
                },
            )
    })
}

proptest! {
    #[test]
    fn round_trip(entries in proptest::collection::vec(any_entry(), 0..40), maxlen in 100usize..3000) {
        let mut b = Builder::new(9, maxlen);
        let mut out = Vec::new();
        let mut got = Vec::new();
        for e in &entries {
            if !b.push(e) {
                b.finish(&mut out);
                prop_assert!(out.len() <= maxlen.max(MIN_MAXLEN));
                got.extend(decode(&out).unwrap().entries.into_iter().map(Result::unwrap));
                prop_assert!(b.push(e));
            }
        }
        b.finish(&mut out);
        got.extend(decode(&out).unwrap().entries.into_iter().map(Result::unwrap));
        prop_assert_eq!(got, entries);
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes);
        // With a consistent header too, so the entry parser is reached.
        let mut b = bytes.clone();
        if b.len() >= 8 {
            b[0] = 0;
            b[5] = 1;
            b[6] = 0;
            b[7] = 0;
            let n = b.len() as u16;
            b[2..4].copy_from_slice(&n.to_be_bytes());
            let _ = decode(&b);
        }
    }
}
