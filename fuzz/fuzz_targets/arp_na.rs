//! Layer-2 frames from the segment: gratuitous ARP and unsolicited neighbour advertisements as
//! the `garp` crate parses them (what a Master's announcements look like to a peer), and the
//! ARP replies and neighbour advertisements the balancer's next-hop resolver learns MACs from
//! (`lbcore::dataplane::wire`). Input: an Ethernet frame.
//!
//! Beyond "no panic": what `garp` parses, it rebuilds byte for byte into a frame that parses
//! back to the same announcement; a gratuitous ARP is also an ARP frame to the resolver, with
//! the same sender; an unsolicited NA is also an advertisement to the resolver, with the same
//! target and link-layer address.

#![no_main]

use garp::frame::{garp, parse_garp, parse_na, unsolicited_na};
use lbcore::dataplane::wire::{arp_sender, na_target};
use libfuzzer_sys::fuzz_target;

/// Ethernet + IPv6 header: where the ICMPv6 message starts.
const ICMP6_AT: usize = 14 + 40;

fuzz_target!(|frame: &[u8]| {
    if let Some(a) = parse_garp(frame) {
        let again = garp(a.mac, a.ip);
        assert_eq!(parse_garp(&again), Some(a));
        assert_eq!(arp_sender(frame), Some((a.ip, a.mac)));
    }
    if let Some(a) = parse_na(frame) {
        let src = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap());
        let again = unsolicited_na(a.mac, src, a.ip);
        assert_eq!(parse_na(&again), Some(a));
        let len = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
        let icmp = &frame[ICMP6_AT..ICMP6_AT + len];
        assert_eq!(na_target(icmp), Some((a.ip, a.mac)));
    }
    // The resolver reads ICMPv6 messages from a raw socket: feed it the bare bytes too.
    let _ = na_target(frame);
    let _ = arp_sender(frame);
});
