//! Announcement frames, built and parsed with `pnet_packet`.
//!
//! Gratuitous ARP as keepalived sends it: an ARP request to the Ethernet broadcast address whose
//! sender and target IP are both the virtual address, target hardware address all ones. Every
//! Linux host on the link that has an entry for the address updates it to the sender's MAC.
//!
//! Unsolicited neighbour advertisement (RFC 4861 §7.2.6): to all-nodes ff02::1, hop limit 255,
//! Override set and Solicited clear, with the target link-layer address option, so neighbours
//! replace their cached MAC for the address.

use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_base::MacAddr;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNeighborAdvertPacket, NdpOptionTypes, NeighborAdvertFlags, NeighborAdvertPacket,
};
use pnet_packet::icmpv6::{self, Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};
use pnet_packet::Packet;

const ETH_LEN: usize = 14;
const ARP_LEN: usize = 28;
/// Length of a gratuitous ARP frame (without the FCS and padding the NIC adds).
pub const GARP_LEN: usize = ETH_LEN + ARP_LEN;
const IPV6_LEN: usize = 40;
/// ICMPv6 NA header (type, code, checksum, flags) + target + one 8-byte link-layer option.
const NA_LEN: usize = 4 + 4 + 16 + 8;
/// Length of an unsolicited neighbour advertisement frame.
pub const NA_FRAME_LEN: usize = ETH_LEN + IPV6_LEN + NA_LEN;

/// IPv6 all-nodes multicast group and its Ethernet mapping.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// What an announcement frame announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement<A> {
    pub ip: A,
    pub mac: [u8; 6],
}

fn mac(m: [u8; 6]) -> MacAddr {
    MacAddr::new(m[0], m[1], m[2], m[3], m[4], m[5])
}

fn octets(m: MacAddr) -> [u8; 6] {
    [m.0, m.1, m.2, m.3, m.4, m.5]
}

/// A gratuitous ARP frame announcing `ip` at `src_mac`.
pub fn garp(src_mac: [u8; 6], ip: Ipv4Addr) -> [u8; GARP_LEN] {
    let mut buf = [0u8; GARP_LEN];
    let mut arp_buf = [0u8; ARP_LEN];
    {
        let mut arp = MutableArpPacket::new(&mut arp_buf).expect("ARP buffer sized for the header");
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(ArpOperations::Request);
        arp.set_sender_hw_addr(mac(src_mac));
        arp.set_sender_proto_addr(ip);
        arp.set_target_hw_addr(MacAddr::broadcast());
        arp.set_target_proto_addr(ip);
    }
    let mut eth = MutableEthernetPacket::new(&mut buf).expect("frame sized for the header");
    eth.set_destination(MacAddr::broadcast());
    eth.set_source(mac(src_mac));
    eth.set_ethertype(EtherTypes::Arp);
    eth.set_payload(&arp_buf);
    buf
}

/// An unsolicited neighbour advertisement for `target` at `src_mac`, sent from `src_ip`.
/// keepalived sends it from the virtual address itself (an address of the interface, as
/// RFC 4861 §7.2.6 asks), so the announcement needs no link-local address.
pub fn unsolicited_na(src_mac: [u8; 6], src_ip: Ipv6Addr, target: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let mut icmp_buf = [0u8; NA_LEN];
    {
        let mut na = MutableNeighborAdvertPacket::new(&mut icmp_buf).expect("NA buffer sized");
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_icmpv6_code(Icmpv6Code(0));
        na.set_flags(NeighborAdvertFlags::Override);
        na.set_target_addr(target);
    }
    // Target link-layer address option (RFC 4861 §4.6.1): type 2, length 1 (× 8 bytes).
    icmp_buf[24] = NdpOptionTypes::TargetLLAddr.0;
    icmp_buf[25] = 1;
    icmp_buf[26..32].copy_from_slice(&src_mac);
    let sum = icmpv6::checksum(
        &Icmpv6Packet::new(&icmp_buf).expect("NA buffer sized"),
        &src_ip,
        &ALL_NODES,
    );
    icmp_buf[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut ip_buf = [0u8; IPV6_LEN + NA_LEN];
    {
        let mut ip = MutableIpv6Packet::new(&mut ip_buf).expect("IPv6 buffer sized");
        ip.set_version(6);
        ip.set_payload_length(NA_LEN as u16);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(255);
        ip.set_source(src_ip);
        ip.set_destination(ALL_NODES);
        ip.set_payload(&icmp_buf);
    }
    let mut buf = [0u8; NA_FRAME_LEN];
    let mut eth = MutableEthernetPacket::new(&mut buf).expect("frame sized for the header");
    eth.set_destination(mac(ALL_NODES_MAC));
    eth.set_source(mac(src_mac));
    eth.set_ethertype(EtherTypes::Ipv6);
    eth.set_payload(&ip_buf);
    buf
}

/// Parses a gratuitous ARP (request or reply whose sender and target IP agree).
pub fn parse_garp(frame: &[u8]) -> Option<Announcement<Ipv4Addr>> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Arp {
        return None;
    }
    let arp = ArpPacket::new(eth.payload())?;
    let well_formed = arp.get_hardware_type() == ArpHardwareTypes::Ethernet
        && arp.get_protocol_type() == EtherTypes::Ipv4
        && arp.get_hw_addr_len() == 6
        && arp.get_proto_addr_len() == 4;
    let gratuitous = arp.get_sender_proto_addr() == arp.get_target_proto_addr();
    (well_formed && gratuitous).then(|| Announcement {
        ip: arp.get_sender_proto_addr(),
        mac: octets(arp.get_sender_hw_addr()),
    })
}

/// Parses an unsolicited neighbour advertisement: RFC 4861 §7.1.2's validation (hop limit 255,
/// a correct checksum, code 0, a unicast target), Override set, Solicited clear, and a target
/// link-layer address option.
pub fn parse_na(frame: &[u8]) -> Option<Announcement<Ipv6Addr>> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new(eth.payload())?;
    if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 || ip.get_hop_limit() != 255 {
        return None;
    }
    let len = usize::from(ip.get_payload_length());
    let payload = ip.payload().get(..len)?;
    let icmp = Icmpv6Packet::new(payload)?;
    if icmp.get_icmpv6_type() != Icmpv6Types::NeighborAdvert
        || icmp.get_icmpv6_code().0 != 0
        || icmpv6::checksum(&icmp, &ip.get_source(), &ip.get_destination()) != icmp.get_checksum()
    {
        return None;
    }
    let na = NeighborAdvertPacket::new(payload)?;
    if na.get_target_addr().is_multicast() {
        return None;
    }
    let flags = na.get_flags();
    if flags & NeighborAdvertFlags::Override == 0 || flags & NeighborAdvertFlags::Solicited != 0 {
        return None;
    }
    // Options follow the 24-byte fixed part; each is (type, length in 8-byte units, data).
    let mut opts = payload.get(24..)?;
    while opts.len() >= 8 {
        let olen = usize::from(opts[1]) * 8;
        if olen == 0 || olen > opts.len() {
            return None;
        }
        if opts[0] == NdpOptionTypes::TargetLLAddr.0 && olen == 8 {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&opts[2..8]);
            return Some(Announcement {
                ip: na.get_target_addr(),
                mac,
            });
        }
        opts = &opts[olen..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    /// Captured from Debian's keepalived 2.2.7 (VIP 192.0.2.100 and 2001:db8::100 on an
    /// interface with MAC 62:9a:1c:4a:33:30; tcpdump on the peer).
    const KA_MAC: [u8; 6] = [0x62, 0x9a, 0x1c, 0x4a, 0x33, 0x30];
    const KA_GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x62, 0x9a, 0x1c, 0x4a, 0x33, 0x30, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x62, 0x9a, 0x1c, 0x4a, 0x33, 0x30, 0xc0, 0x00,
        0x02, 0x64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0, 0x00, 0x02, 0x64,
    ];
    /// keepalived sends the NA from the virtual address itself.
    const KA_NA: [u8; 86] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x62, 0x9a, 0x1c, 0x4a, 0x33, 0x30, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0x47, 0x19, 0x20, 0x00,
        0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x02, 0x01, 0x62, 0x9a, 0x1c, 0x4a, 0x33, 0x30,
    ];

    #[test]
    fn same_bytes_as_keepalived() {
        assert_eq!(garp(KA_MAC, Ipv4Addr::new(192, 0, 2, 100)), KA_GARP);
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        assert_eq!(unsolicited_na(KA_MAC, vip, vip), KA_NA);
        assert_eq!(
            parse_na(&KA_NA),
            Some(Announcement {
                ip: vip,
                mac: KA_MAC
            })
        );
        assert_eq!(
            parse_garp(&KA_GARP),
            Some(Announcement {
                ip: Ipv4Addr::new(192, 0, 2, 100),
                mac: KA_MAC
            })
        );
    }

    #[test]
    fn garp_bytes() {
        let f = garp(MAC, Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(&f[0..6], &[0xff; 6], "Ethernet broadcast");
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x08, 0x06], "ARP ethertype");
        assert_eq!(
            &f[14..22],
            &[0, 1, 0x08, 0, 6, 4, 0, 1],
            "Ethernet/IPv4, request"
        );
        assert_eq!(&f[22..28], &MAC, "sender hw");
        assert_eq!(&f[28..32], &[192, 0, 2, 100], "sender ip");
        assert_eq!(&f[32..38], &[0xff; 6], "target hw");
        assert_eq!(&f[38..42], &[192, 0, 2, 100], "target ip");
    }

    #[test]
    fn na_bytes_and_checksum() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let target: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let f = unsolicited_na(MAC, src, target);
        assert_eq!(&f[0..6], &ALL_NODES_MAC);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[14 + 6], 58, "next header ICMPv6");
        assert_eq!(f[14 + 7], 255, "hop limit");
        assert_eq!(&f[14 + 24..14 + 40], &ALL_NODES.octets());
        let icmp = &f[54..];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4], 0x20, "Override only");
        assert_eq!(&icmp[8..24], &target.octets());
        assert_eq!(&icmp[24..32], &[2, 1, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);
        // Independent RFC 1071 sum over pseudo-header + message must fold to zero.
        let mut sum = 0u32;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&src.octets());
        add(&ALL_NODES.octets());
        add(&(NA_LEN as u32).to_be_bytes());
        add(&[0, 0, 0, 58]);
        add(icmp);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn corrupted_na_rejected() {
        let mut f = unsolicited_na(
            MAC,
            "fe80::1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        );
        f[70] ^= 1;
        assert_eq!(parse_na(&f), None);
    }

    /// RFC 4861 §7.1.2: a code other than 0 is invalid, even with a correct checksum (found by
    /// the `arp_na` fuzz target: keepalived's NA with code and checksum bytes swapped, which
    /// keeps the one's complement sum, was accepted).
    #[test]
    fn na_with_a_nonzero_code_or_a_multicast_target_is_invalid() {
        let mut f = KA_NA;
        (f[55], f[56], f[57]) = (0x19, 0x47, 0x00);
        assert_eq!(parse_na(&f), None);
        assert_eq!(parse_na(&KA_NA).map(|a| a.mac), Some(KA_MAC));
        let group = unsolicited_na(MAC, "fe80::1".parse().unwrap(), "ff02::1".parse().unwrap());
        assert_eq!(parse_na(&group), None);
    }

    proptest! {
        #[test]
        fn garp_round_trip(ip: [u8; 4], m: [u8; 6]) {
            let ip = Ipv4Addr::from(ip);
            prop_assert_eq!(parse_garp(&garp(m, ip)), Some(Announcement { ip, mac: m }));
        }

        #[test]
        fn na_round_trip(src: [u8; 16], t: [u8; 16], m: [u8; 6]) {
            let target = Ipv6Addr::from(t);
            let f = unsolicited_na(m, Ipv6Addr::from(src), target);
            let want = (!target.is_multicast()).then_some(Announcement { ip: target, mac: m });
            prop_assert_eq!(parse_na(&f), want);
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_garp(&bytes);
            let _ = parse_na(&bytes);
        }
    }
}
