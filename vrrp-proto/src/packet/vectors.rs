//! Adverts captured from Debian's keepalived 2.2.7 (`keepalived -P -n -l`), used as test vectors.
//!
//! Captured with `vrrp-proto/testdata/capture-keepalived-adverts.sh`: keepalived runs in one network
//! namespace on a veth (192.0.2.1/24, 2001:db8::1/64, link-local fe80::74b7:7eff:fed8:af7d),
//! `tcpdump -w` runs in the peer namespace; `extract-adverts.py` prints the bytes below. Each
//! config also had `global_defs { enable_script_security }` and `interface <veth>`. For every
//! config the first advert after becoming MASTER and the priority-0 advert sent on shutdown
//! were kept.

/// One captured advert and the IP facts it arrived with.
pub(crate) struct Vector {
    pub name: &'static str,
    /// Full IPv4 packet (raw IPv4 sockets deliver this), `None` for IPv6.
    pub ip_packet: Option<&'static str>,
    /// VRRP payload, hex.
    pub payload: &'static str,
    pub src: &'static str,
    pub dst: &'static str,
    pub ttl: u8,
}

/// `vrrp_instance { state MASTER; virtual_router_id 51; priority 150; advert_int 1;
/// authentication { auth_type PASS; auth_pass secret12 }; virtual_ipaddress { 192.0.2.100/24;
/// 192.0.2.101/24 } }`
pub(crate) const V2_PASS: Vector = Vector {
    name: "v2 PASS, 2 VIPs",
    ip_packet: Some(
        "45c0002c00010000ff70188dc0000201e00000122133960201015580c0000264c00002657365637265743132",
    ),
    payload: "2133960201015580c0000264c00002657365637265743132",
    src: "192.0.2.1",
    dst: "224.0.0.18",
    ttl: 255,
};
/// [`V2_PASS`] on shutdown: priority 0.
pub(crate) const V2_PASS_PRIO0: Vector = Vector {
    name: "v2 PASS, priority 0",
    ip_packet: Some(
        "45c0002c00040000ff70188ac0000201e0000012213300020101eb80c0000264c00002657365637265743132",
    ),
    payload: "213300020101eb80c0000264c00002657365637265743132",
    src: "192.0.2.1",
    dst: "224.0.0.18",
    ttl: 255,
};

/// `vrrp_instance { state BACKUP; virtual_router_id 7; priority 100; advert_int 2;
/// virtual_ipaddress { 192.0.2.110/24 } }` (no authentication block: 8 zero auth bytes sent).
pub(crate) const V2_NONE: Vector = Vector {
    name: "v2 no auth",
    ip_packet: Some(
        "45c0002800010000ff701891c0000201e0000012210764010002b886c000026e0000000000000000",
    ),
    payload: "210764010002b886c000026e0000000000000000",
    src: "192.0.2.1",
    dst: "224.0.0.18",
    ttl: 255,
};
/// [`V2_NONE`] on shutdown: priority 0.
pub(crate) const V2_NONE_PRIO0: Vector = Vector {
    name: "v2 no auth, priority 0",
    ip_packet: Some(
        "45c0002800030000ff70188fc0000201e00000122107000100021c87c000026e0000000000000000",
    ),
    payload: "2107000100021c87c000026e0000000000000000",
    src: "192.0.2.1",
    dst: "224.0.0.18",
    ttl: 255,
};

/// `vrrp_instance { version 3; state MASTER; virtual_router_id 52; priority 200; advert_int 0.1;
/// virtual_ipaddress { 192.0.2.120/24; 192.0.2.121/24; 192.0.2.122/24 } }`
pub(crate) const V3_V4: Vector = Vector {
    name: "v3 IPv4, 10 cs",
    ip_packet: Some(
        "45c0002800010000ff701891c0000201e00000123134c803000a1cb8c0000278c0000279c000027a",
    ),
    payload: "3134c803000a1cb8c0000278c0000279c000027a",
    src: "192.0.2.1",
    dst: "224.0.0.18",
    ttl: 255,
};
/// [`V3_V4`] on shutdown: priority 0.
pub(crate) const V3_V4_PRIO0: Vector = Vector {
    name: "v3 IPv4, priority 0",
    ip_packet: Some(
        "45c00028001c0000ff701876c0000201e000001231340003000ae4b8c0000278c0000279c000027a",
    ),
    payload: "31340003000ae4b8c0000278c0000279c000027a",
    src: "192.0.2.1",
    dst: "224.0.0.18",
    ttl: 255,
};

/// `vrrp_instance { version 3; state MASTER; virtual_router_id 53; priority 120; advert_int 1;
/// virtual_ipaddress { fe80::53/64; 2001:db8::100/64 } }` — native IPv6 instance, link-local VIP
/// first as RFC 5798 §5.2.9 wants; sent from the interface's link-local address.
pub(crate) const V3_V6: Vector = Vector {
    name: "v3 IPv6",
    ip_packet: None,
    payload: "313578020064889bfe80000000000000000000000000005320010db8000000000000000000000100",
    src: "fe80::74b7:7eff:fed8:af7d",
    dst: "ff02::12",
    ttl: 255,
};
/// [`V3_V6`] on shutdown: priority 0.
pub(crate) const V3_V6_PRIO0: Vector = Vector {
    name: "v3 IPv6, priority 0",
    ip_packet: None,
    payload: "313500020064009cfe80000000000000000000000000005320010db8000000000000000000000100",
    src: "fe80::74b7:7eff:fed8:af7d",
    dst: "ff02::12",
    ttl: 255,
};

pub(crate) const ALL: [&Vector; 8] = [
    &V2_PASS,
    &V2_PASS_PRIO0,
    &V2_NONE,
    &V2_NONE_PRIO0,
    &V3_V4,
    &V3_V4_PRIO0,
    &V3_V6,
    &V3_V6_PRIO0,
];

/// Decodes a hex string (test helper; panics on bad input).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

impl Vector {
    pub(crate) fn payload(&self) -> Vec<u8> {
        hex(self.payload)
    }

    pub(crate) fn meta(&self) -> super::RxMeta {
        super::RxMeta {
            src: self.src.parse().expect("src"),
            dst: self.dst.parse().expect("dst"),
            ttl: self.ttl,
        }
    }
}
