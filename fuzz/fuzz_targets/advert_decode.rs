//! Feeds arbitrary bytes to the receive path: as a raw IPv4 packet (`split_ipv4` then both
//! decoders) and as a bare payload with IPv4 and IPv6 metadata, as the driver supplies for IPv6.
//! Beyond "no panic" it checks that whatever `decode_unchecked` accepts, `decode` accepts with
//! matching expectations, and that it re-encodes to something that decodes to the same advert.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vrrp_proto::packet::{
    decode, decode_unchecked, split_ipv4, DropReason, Expect, RxMeta, MCAST_V4, MCAST_V6,
};

fn check(payload: &[u8], meta: &RxMeta) {
    let Ok(advert) = decode_unchecked(payload, meta) else {
        return;
    };
    let expect = Expect {
        version: advert.version,
        vrid: advert.vrid,
        auth: advert.auth,
        adver_int: advert.max_adver_int,
        check_ttl: true,
    };
    let checked = decode(payload, meta, &expect);
    if meta.ttl == 255 {
        assert_eq!(checked.as_ref(), Ok(&advert));
    } else {
        assert_eq!(checked, Err(DropReason::BadTtl));
    }
    let bytes = advert.encode(meta.src, meta.dst);
    assert_eq!(bytes.len(), advert.wire_len());
    assert_eq!(decode_unchecked(&bytes, meta), Ok(advert));
}

fuzz_target!(|data: &[u8]| {
    if let Ok((meta, payload)) = split_ipv4(data) {
        assert!(payload.len() <= data.len());
        check(payload, &meta);
    }
    let v4 = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst: IpAddr::V4(MCAST_V4),
        ttl: 255,
    };
    check(data, &v4);
    let v6 = RxMeta {
        src: IpAddr::V6(Ipv6Addr::new(
            0xfe80, 0, 0, 0, 0x74b7, 0x7eff, 0xfed8, 0xaf7d,
        )),
        dst: IpAddr::V6(MCAST_V6),
        ttl: 255,
    };
    check(data, &v6);
});
