//! VRRPv2 IPsec AH authentication as keepalived 2.2.7 does it (RFC 2402 header, HMAC-MD5-96
//! over the packet, the source address as SPI, an anti-replay sequence number): pure bytes in,
//! bytes out, checked against packets captured from keepalived (see the tests).
//!
//! ```text
//!  IPv4 header (protocol 51) | Next Hdr 112 | Len 4 | Reserved 0
//!                            | SPI = IPv4 source address
//!                            | Sequence Number
//!                            | ICV: HMAC-MD5(key, packet with mutable fields zeroed)[..12]
//!  VRRPv2 advert (auth type 2, 8 zero bytes of auth data)
//! ```
//!
//! The ICV covers the IPv4 header with TOS, fragment offset and header checksum zeroed (and
//! the TTL for unicast adverts, which routers may lower), the AH header with a zero ICV, and
//! the VRRP advert. The key is the password's first 8 bytes, zero padded.

use std::net::{IpAddr, Ipv4Addr};

use md5::{Digest, Md5};

use super::{Advert, DropReason, RxMeta, IPPROTO_VRRP};

/// IP protocol number of IPsec AH.
pub const IPPROTO_AH: u8 = 51;
/// AH header with its 96-bit ICV.
pub const AH_LEN: usize = 24;
/// AH's payload length field: its length in 32-bit words, minus 2 (RFC 2402 §2.2).
pub const AH_PAYLOAD_LEN: u8 = (AH_LEN / 4 - 2) as u8;
/// The truncated HMAC (HMAC-MD5-96, RFC 2403).
pub const ICV_LEN: usize = 12;
/// IPv4 header as keepalived sends it (no options).
const IP_LEN: usize = 20;
/// keepalived's TOS for adverts: internetwork control.
const TOS: u8 = 0xc0;

/// The AH fields of a verified packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhHeader {
    pub spi: u32,
    pub seq: u32,
}

/// HMAC-MD5 (RFC 2104) of `parts` concatenated.
pub fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..16].copy_from_slice(&Md5::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let mut inner = Md5::new();
    inner.update(pad(0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Md5::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The ICV of an AH-protected IPv4 packet (`packet` starts with the IPv4 header, the AH header
/// follows it). The ICV field itself is read as zeros.
fn icv(packet: &[u8], ihl: usize, key: &[u8; 8], unicast: bool) -> [u8; ICV_LEN] {
    let mut ip = [0u8; 60];
    let ip = &mut ip[..ihl];
    ip.copy_from_slice(&packet[..ihl]);
    ip[1] = 0; // TOS
    ip[6] = 0; // flags and fragment offset
    ip[7] = 0;
    ip[10] = 0; // header checksum
    ip[11] = 0;
    if unicast {
        ip[8] = 0; // TTL: a routed unicast advert arrives with a lower one
    }
    let mut ah = [0u8; AH_LEN];
    ah.copy_from_slice(&packet[ihl..ihl + AH_LEN]);
    ah[AH_LEN - ICV_LEN..].fill(0);
    let digest = hmac_md5(key, &[ip, &ah, &packet[ihl + AH_LEN..]]);
    let mut out = [0u8; ICV_LEN];
    out.copy_from_slice(&digest[..ICV_LEN]);
    out
}

/// Builds the whole IPv4 packet of an AH-authenticated VRRPv2 advert, as keepalived sends it
/// through its `IP_HDRINCL` socket: `id` must not be 0 (the kernel would replace it and break
/// the ICV); the header checksum is left 0 for the kernel to fill in.
#[allow(clippy::too_many_arguments)]
pub fn build_ipv4(
    advert: &Advert,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    id: u16,
    seq: u32,
    key: &[u8; 8],
    unicast: bool,
) -> Vec<u8> {
    let vrrp = advert.encode(IpAddr::V4(src), IpAddr::V4(dst));
    let total = IP_LEN + AH_LEN + vrrp.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, TOS]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0, 0, ttl, IPPROTO_AH, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[IPPROTO_VRRP, AH_PAYLOAD_LEN, 0, 0]);
    p.extend_from_slice(&src.octets()); // SPI: the sender's address, as keepalived
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0; ICV_LEN]);
    p.extend_from_slice(&vrrp);
    let icv = icv(&p, IP_LEN, key, unicast);
    p[IP_LEN + AH_LEN - ICV_LEN..IP_LEN + AH_LEN].copy_from_slice(&icv);
    p
}

/// The structure of a received IPv4 packet carrying an AH-wrapped VRRP advert, without the
/// key: what the IP header says, and the advert. This is enough to hand the packet to its
/// instance (by the VRID), which then checks it with [`open_ipv4`].
pub fn split_ipv4(packet: &[u8]) -> Result<(RxMeta, &[u8]), DropReason> {
    let h = packet.get(..IP_LEN).ok_or(DropReason::BadIpHeader)?;
    if h[0] >> 4 != 4 {
        return Err(DropReason::BadIpHeader);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if ihl < IP_LEN || total > packet.len() || total < ihl + AH_LEN {
        return Err(DropReason::BadIpHeader);
    }
    if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return Err(DropReason::BadIpHeader);
    }
    if h[9] != IPPROTO_AH {
        return Err(DropReason::NotVrrp);
    }
    let ah = &packet[ihl..ihl + AH_LEN];
    // An AH header for another protocol (or another AH layout) is not a VRRP advert.
    if ah[0] != IPPROTO_VRRP || ah[1] != AH_PAYLOAD_LEN {
        return Err(DropReason::NotVrrp);
    }
    let meta = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
        dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
        ttl: h[8],
    };
    Ok((meta, &packet[ihl + AH_LEN..total]))
}

/// Checks a received IPv4 packet carrying AH: its structure, the ICV with `key`, and the SPI
/// (the sender's address). Returns what the advert decoder needs, the AH fields (the sequence
/// number is for [`AhSequence::accept`]) and the VRRP payload.
pub fn open_ipv4<'p>(
    packet: &'p [u8],
    key: &[u8; 8],
    unicast: bool,
) -> Result<(RxMeta, AhHeader, &'p [u8]), DropReason> {
    let (meta, advert) = split_ipv4(packet)?;
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let packet = &packet[..ihl + AH_LEN + advert.len()];
    let ah = &packet[ihl..ihl + AH_LEN];
    let want = icv(packet, ihl, key, unicast);
    if !same(&want, &ah[AH_LEN - ICV_LEN..]) {
        return Err(DropReason::AuthFailure);
    }
    let spi = u32::from_be_bytes([ah[4], ah[5], ah[6], ah[7]]);
    if meta.src != IpAddr::V4(Ipv4Addr::from(spi)) {
        return Err(DropReason::AuthFailure);
    }
    let seq = u32::from_be_bytes([ah[8], ah[9], ah[10], ah[11]]);
    Ok((meta, AhHeader { spi, seq }, advert))
}

/// Compares without an early exit, so the time taken says nothing about the expected ICV.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// keepalived's anti-replay counter: one number per instance for both directions, so the
/// sequence stays increasing across a takeover (a Backup that heard N sends N+1 next when it
/// becomes Master, which the old Master accepts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AhSequence {
    seq: u32,
    /// The counter reached its end; a Master stops counting, and starts again from 0 when it
    /// next becomes Master (keepalived's `cycle`).
    cycle: bool,
}

impl AhSequence {
    /// The number of the next advert we send.
    pub fn next_to_send(&mut self) -> u32 {
        if self.seq > 0xFFFF_FFFD {
            self.cycle = true;
        } else {
            self.seq += 1;
        }
        self.seq
    }

    /// A verified advert with sequence number `seq`: newer than anything seen or sent is
    /// accepted (and remembered), anything else is a replay.
    pub fn accept(&mut self, seq: u32) -> Result<(), DropReason> {
        if seq > self.seq {
            self.seq = seq;
            Ok(())
        } else {
            Err(DropReason::AhReplay)
        }
    }

    /// A Master heard a lower-priority advert: it carries on from that sender's number, so
    /// its next adverts are newer for it.
    pub fn follow(&mut self, seq: u32) {
        self.seq = seq.wrapping_add(1);
        self.cycle = false;
    }

    /// Becoming Master after the counter ran out: start again (keepalived resets to 0).
    pub fn on_master(&mut self) {
        if self.cycle {
            self.cycle = false;
            self.seq = 0;
        }
    }

    /// The last number seen or sent.
    pub fn current(&self) -> u32 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{decode, Auth, Expect, Version};

    /// keepalived 2.2.7 as Master of VRID 77, `auth_type AH`, `auth_pass secret12`, VIP
    /// 192.0.2.77, from 192.0.2.1 to 224.0.0.18: sequence numbers 1..5, then its priority 0
    /// advert at shutdown (captured with tcpdump on the peer of its interface).
    const CAPTURED: [&str; 6] = [
        "45c0004000010000ff3318b6c0000201e000001270040000c0000201000000019d10699920eb2a5cd599de78214dc80102015262c000024d0000000000000000",
        "45c0004000020000ff3318b5c0000201e000001270040000c0000201000000022668bf07c1f7ac5dd2dc27cb214dc80102015262c000024d0000000000000000",
        "45c0004000030000ff3318b4c0000201e000001270040000c00002010000000379b8813bdfa011e670e50f69214dc80102015262c000024d0000000000000000",
        "45c0004000040000ff3318b3c0000201e000001270040000c000020100000004fa5e09852c652cafbb7f178f214dc80102015262c000024d0000000000000000",
        "45c0004000050000ff3318b2c0000201e000001270040000c00002010000000557f276748afb383659cae55e214dc80102015262c000024d0000000000000000",
        "45c0004000060000ff3318b1c0000201e000001270040000c000020100000006b8595a0c2f82d5a3b5e5482e214d000102011a63c000024d0000000000000000",
    ];
    const KEY: [u8; 8] = *b"secret12";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn advert(priority: u8) -> Advert {
        Advert {
            version: Version::V2,
            vrid: 77,
            priority,
            max_adver_int: 100,
            addrs: vec!["192.0.2.77".parse().unwrap()],
            auth: Auth::Ah(KEY),
        }
    }

    /// RFC 2202 §2 test cases 1 and 2 (HMAC-MD5).
    #[test]
    fn hmac_md5_rfc2202() {
        assert_eq!(
            hmac_md5(&[0x0b; 16], &[b"Hi There"]),
            hex("9294727a3638bb1c13f48ef8158bfc9d")[..]
        );
        assert_eq!(
            hmac_md5(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            hex("750c783e6ab0b503eaa86e310a5db738")[..]
        );
        // Keys longer than a block are hashed first (test case 6).
        assert_eq!(
            hmac_md5(
                &[0xaa; 80],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            ),
            hex("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd")[..]
        );
    }

    /// Our sender builds keepalived's packets byte for byte (its IP ids ran 1, 2, ...).
    #[test]
    fn builds_keepalived_packets() {
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(224, 0, 0, 18));
        for (i, want) in CAPTURED.iter().enumerate() {
            let prio = if i == 5 { 0 } else { 200 };
            let n = i as u32 + 1;
            let got = build_ipv4(&advert(prio), src, dst, 255, n as u16, n, &KEY, false);
            // keepalived's kernel filled in the header checksum; ours is left to the kernel.
            let mut want = hex(want);
            want[10..12].fill(0);
            assert_eq!(got, want, "packet {n}");
        }
    }

    /// keepalived's packets open with the key and decode as the adverts they are.
    #[test]
    fn opens_keepalived_packets() {
        let mut seq = AhSequence::default();
        for (i, p) in CAPTURED.iter().enumerate() {
            let p = hex(p);
            let (meta, ah, payload) = open_ipv4(&p, &KEY, false).expect("valid");
            assert_eq!(ah.spi, u32::from(Ipv4Addr::new(192, 0, 2, 1)));
            assert_eq!(ah.seq, i as u32 + 1);
            seq.accept(ah.seq).expect("newer");
            let expect = Expect {
                version: Version::V2,
                vrid: 77,
                auth: Auth::Ah(KEY),
                adver_int: 100,
                check_ttl: true,
            };
            let a = decode(payload, &meta, &expect).expect("advert");
            assert_eq!(a.priority, if i == 5 { 0 } else { 200 });
            assert_eq!(a.addrs, advert(0).addrs);
        }
        // Replayed: refused.
        let p = hex(CAPTURED[2]);
        let (_, ah, _) = open_ipv4(&p, &KEY, false).unwrap();
        assert_eq!(seq.accept(ah.seq), Err(DropReason::AhReplay));
    }

    #[test]
    fn tampering_and_wrong_keys_fail() {
        let good = hex(CAPTURED[0]);
        assert_eq!(
            open_ipv4(&good, b"secret13", false).unwrap_err(),
            DropReason::AuthFailure
        );
        // Any covered byte: priority, an address, the sequence number, the source.
        for at in [46, 52, 31, 15] {
            let mut p = good.clone();
            p[at] ^= 1;
            assert_eq!(
                open_ipv4(&p, &KEY, false).unwrap_err(),
                DropReason::AuthFailure,
                "byte {at}"
            );
        }
        // Mutable fields are not covered: TOS, TTL (unicast only), header checksum.
        let mut p = good.clone();
        p[1] = 0;
        p[10] ^= 0xff;
        assert!(open_ipv4(&p, &KEY, false).is_ok());
        let mut p = good.clone();
        p[8] = 64;
        assert_eq!(
            open_ipv4(&p, &KEY, false).unwrap_err(),
            DropReason::AuthFailure
        );
        // Not AH, or AH for something else.
        let mut p = good.clone();
        p[9] = IPPROTO_VRRP;
        assert_eq!(open_ipv4(&p, &KEY, false).unwrap_err(), DropReason::NotVrrp);
        let mut p = good.clone();
        p[20] = 6;
        assert_eq!(open_ipv4(&p, &KEY, false).unwrap_err(), DropReason::NotVrrp);
        assert_eq!(
            open_ipv4(&good[..40], &KEY, false).unwrap_err(),
            DropReason::BadIpHeader
        );
    }

    /// Unicast adverts leave the TTL out of the ICV: a routed hop does not break them.
    #[test]
    fn unicast_ttl_is_mutable() {
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
        let mut p = build_ipv4(&advert(100), src, dst, 255, 9, 9, &KEY, true);
        p[8] = 250;
        let (meta, ah, _) = open_ipv4(&p, &KEY, true).expect("valid");
        assert_eq!((meta.ttl, ah.seq), (250, 9));
        assert_eq!(
            open_ipv4(&p, &KEY, false).unwrap_err(),
            DropReason::AuthFailure
        );
    }

    /// The shared counter across a takeover, as keepalived keeps it.
    #[test]
    fn sequence_follows_keepalived() {
        let mut master = AhSequence::default();
        let mut backup = AhSequence::default();
        for _ in 0..3 {
            let n = master.next_to_send();
            backup.accept(n).unwrap();
        }
        // The Backup takes over: its numbers continue from the Master's.
        assert_eq!(backup.next_to_send(), 4);
        master.accept(4).unwrap();
        // A Master that hears a lower priority carries on from that sender's number.
        let mut m = AhSequence::default();
        m.follow(41);
        assert_eq!(m.next_to_send(), 43);
        // At the end of the range the counter stops, then restarts from 0 on becoming Master.
        let mut e = AhSequence::default();
        e.follow(0xFFFF_FFFC);
        assert_eq!(e.next_to_send(), 0xFFFF_FFFE);
        assert_eq!(e.next_to_send(), 0xFFFF_FFFE, "stops at the end");
        e.on_master();
        assert_eq!(e.next_to_send(), 1);
    }
}
