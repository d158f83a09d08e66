//! Next hops for real servers: route lookup and MAC resolution.
//!
//! The kernel's tables are read from `/proc/thread-self/net/{route,ipv6_route,arp}`
//! (the namespace of the calling thread, which the dataplane threads inherit
//! from whoever started them). A next hop missing from the kernel's ARP table
//! is asked for with our own ARP request and learned from the reply, because
//! the kernel (arp_accept=0) ignores replies it did not ask for. IPv6 next
//! hops are always asked for with our own neighbour solicitation (the
//! kernel's neighbour table has no `/proc` file) and learned from the
//! advertisement, re-asked while in use as ARP entries are. The resolver
//! publishes an immutable map that workers read without locks.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::wire::Mac;

/// A lab-side interface the dataplane works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub index: i32,
    pub mac: Mac,
    /// Primary IPv4 address.
    pub addr: Option<Ipv4Addr>,
    /// Every IPv4 and IPv6 address with its prefix length.
    pub addrs: Vec<(IpAddr, u8)>,
    pub mtu: u16,
}

/// Whether `a` and `b` (same family) share their first `plen` bits.
pub fn same_subnet(a: IpAddr, b: IpAddr, plen: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let m = if plen == 0 {
                0
            } else {
                u32::MAX << (32 - plen.min(32) as u32)
            };
            u32::from(a) & m == u32::from(b) & m
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let m = if plen == 0 {
                0
            } else {
                u128::MAX << (128 - plen.min(128) as u32)
            };
            u128::from(a) & m == u128::from(b) & m
        }
        _ => false,
    }
}

fn link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
}

impl Iface {
    /// Our source address towards on-link `next`: the address of its subnet,
    /// else the first of its family (IPv6: not link-local unless `next` is) —
    /// source of one-arm NAT, TUN, ARP and neighbour solicitations.
    pub fn src_for(&self, next: IpAddr) -> Option<IpAddr> {
        let fam = |a: &IpAddr| a.is_ipv4() == next.is_ipv4();
        self.addrs
            .iter()
            .find(|(a, p)| same_subnet(*a, next, *p))
            .map(|(a, _)| *a)
            .or_else(|| {
                self.addrs
                    .iter()
                    .map(|(a, _)| *a)
                    .find(|a| fam(a) && link_local(*a) == link_local(next))
            })
            .or_else(|| self.addrs.iter().map(|(a, _)| *a).find(fam))
    }
}

/// How to reach one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub ifindex: i32,
    /// Next hop's MAC (the destination's, or its gateway's).
    pub mac: Mac,
    /// Our interface's MAC and address.
    pub src_mac: Mac,
    pub src_ip: IpAddr,
    pub mtu: u16,
}

/// One route from `/proc/net/route` or `/proc/net/ipv6_route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub iface: String,
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub metric: u32,
}

fn hex_addr(s: &str) -> Option<Ipv4Addr> {
    // The kernel prints the network-order word as a native integer.
    u32::from_str_radix(s, 16)
        .ok()
        .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
}

/// Parses `/proc/net/route`.
pub fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            if c.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(c[3], 16).ok()?;
            if flags & 0x1 == 0 {
                return None; // RTF_UP
            }
            let gw = hex_addr(c[2])?;
            Some(Route {
                iface: c[0].to_string(),
                dst: hex_addr(c[1])?.into(),
                gateway: (flags & 0x2 != 0 && !gw.is_unspecified()).then_some(gw.into()),
                metric: c[6].parse().ok()?,
                prefix: u32::from(hex_addr(c[7])?).count_ones() as u8,
            })
        })
        .collect()
}

/// Parses `/proc/net/ipv6_route` (every table): usable unicast routes, not
/// those through `lo` (local addresses, unreachable and prohibit routes).
pub fn parse_routes6(text: &str) -> Vec<Route> {
    let addr = |s: &str| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from);
    text.lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            if c.len() < 10 || c[9] == "lo" {
                return None;
            }
            let flags = u32::from_str_radix(c[8], 16).ok()?;
            // RTF_UP, not RTF_REJECT.
            if flags & 0x1 == 0 || flags & 0x200 != 0 {
                return None;
            }
            let gw = addr(c[4])?;
            Some(Route {
                iface: c[9].to_string(),
                dst: addr(c[0])?.into(),
                prefix: u8::from_str_radix(c[1], 16).ok()?,
                gateway: (flags & 0x2 != 0 && !gw.is_unspecified()).then_some(gw.into()),
                metric: u32::from_str_radix(c[5], 16).ok()?,
            })
        })
        .collect()
}

/// Longest-prefix match (lowest metric among equals): (interface, next hop).
pub fn lookup_route(routes: &[Route], dst: IpAddr) -> Option<(&str, IpAddr)> {
    routes
        .iter()
        .filter(|r| same_subnet(r.dst, dst, r.prefix))
        .max_by_key(|r| (r.prefix, std::cmp::Reverse(r.metric)))
        .map(|r| (r.iface.as_str(), r.gateway.unwrap_or(dst)))
}

/// Parses `/proc/net/arp`: complete entries only, keyed by (IP, device).
pub fn parse_arp(text: &str) -> HashMap<(IpAddr, String), Mac> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            if c.len() < 6 {
                return None;
            }
            let flags = u32::from_str_radix(c[2].trim_start_matches("0x"), 16).ok()?;
            if flags & 0x2 == 0 {
                return None; // ATF_COM
            }
            let ip: Ipv4Addr = c[0].parse().ok()?;
            Some(((ip.into(), c[5].to_string()), parse_mac(c[3])?))
        })
        .collect()
}

pub fn parse_mac(s: &str) -> Option<Mac> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    (v.len() == 6 && v != [0; 6]).then(|| v.try_into().expect("6"))
}

/// Published next hops, plus destinations workers found missing.
#[derive(Debug, Default)]
pub struct Neighbours {
    map: ArcSwap<HashMap<IpAddr, Hop>>,
    wanted: Mutex<HashSet<IpAddr>>,
}

impl Neighbours {
    /// The hop for `dst`, or `None` (and `dst` queued for resolution).
    #[inline]
    pub fn get(&self, dst: IpAddr) -> Option<Hop> {
        let h = self.map.load().get(&dst).copied();
        if h.is_none() {
            self.wanted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(dst);
        }
        h
    }

    pub fn take_wanted(&self) -> HashSet<IpAddr> {
        std::mem::take(&mut *self.wanted.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn publish(&self, m: HashMap<IpAddr, Hop>) {
        self.map.store(Arc::new(m));
    }

    pub fn snapshot(&self) -> Arc<HashMap<IpAddr, Hop>> {
        self.map.load_full()
    }
}

/// What one resolver round decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    pub hops: HashMap<IpAddr, Hop>,
    /// (interface index, next hop) pairs to send an ARP request or neighbour solicitation for.
    pub ask: Vec<(i32, IpAddr)>,
}

/// Pure resolver round: routes each target, finds its next hop's MAC in the
/// kernel table or among what we learned from ARP replies and neighbour
/// advertisements (the kernel's IPv6 neighbour table is not in `/proc`).
pub fn resolve(
    targets: &HashSet<IpAddr>,
    ifaces: &[Iface],
    routes: &[Route],
    kernel: &HashMap<(IpAddr, String), Mac>,
    learned: &HashMap<(IpAddr, i32), Mac>,
) -> Resolution {
    let mut r = Resolution::default();
    for &t in targets {
        let Some((ifname, next)) = lookup_route(routes, t) else {
            continue;
        };
        let Some(ifc) = ifaces.iter().find(|i| i.name == ifname) else {
            continue;
        };
        let Some(src_ip) = ifc.src_for(next) else {
            continue;
        };
        let mac = kernel
            .get(&(next, ifc.name.clone()))
            .or_else(|| learned.get(&(next, ifc.index)))
            .copied();
        match mac {
            Some(mac) => {
                r.hops.insert(
                    t,
                    Hop {
                        ifindex: ifc.index,
                        mac,
                        src_mac: ifc.mac,
                        src_ip,
                        mtu: ifc.mtu,
                    },
                );
            }
            None => r.ask.push((ifc.index, next)),
        }
    }
    r.ask.sort();
    r.ask.dedup();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0164A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    const ARP: &str =
        "IP address       HW type     Flags       HW address            Mask     Device\n\
198.51.100.11    0x1         0x2         02:00:00:00:00:0b     *        eth0\n\
198.51.100.12    0x1         0x0         00:00:00:00:00:00     *        eth0\n";

    fn ifaces() -> Vec<Iface> {
        vec![
            Iface {
                name: "eth0".into(),
                index: 2,
                mac: [2, 0, 0, 0, 0, 1],
                addr: Some(Ipv4Addr::new(203, 0, 113, 1)),
                addrs: vec![
                    (Ipv4Addr::new(203, 0, 113, 1).into(), 24),
                    (Ipv4Addr::new(198, 51, 100, 1).into(), 24),
                    ("fe80::1".parse().unwrap(), 64),
                    ("2001:db8:2::1".parse().unwrap(), 64),
                ],
                mtu: 1500,
            },
            Iface {
                name: "eth1".into(),
                index: 3,
                mac: [2, 0, 0, 0, 0, 2],
                addr: Some(Ipv4Addr::new(192, 0, 2, 1)),
                addrs: vec![(Ipv4Addr::new(192, 0, 2, 1).into(), 24)],
                mtu: 1400,
            },
        ]
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        Ipv4Addr::new(a, b, c, d).into()
    }

    fn v6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // On-link 2001:db8:2::/64, defaults via fe80::fe (metric 1024) and
    // fe80::ff (512), fe80::/64, a local address (lo) and a reject route.
    const ROUTE6: &str = "\
20010db8000200000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe8000000000000000000000000000fe 00000400 00000001 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe8000000000000000000000000000ff 00000200 00000001 00000000 00000003     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
20010db8000200000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
20010db8000900000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000201     eth0
";

    #[test]
    fn ipv6_routes_parse_and_resolve_through_learned_advertisements() {
        let r = parse_routes6(ROUTE6);
        assert_eq!(r.len(), 4, "lo and reject routes skipped: {r:?}");
        assert_eq!(
            (r[0].dst, r[0].prefix, r[0].metric, r[0].gateway),
            (v6("2001:db8:2::"), 64, 256, None)
        );
        assert_eq!(
            lookup_route(&r, v6("2001:db8:2::11")),
            Some(("eth0", v6("2001:db8:2::11")))
        );
        assert_eq!(
            lookup_route(&r, v6("2001:db8:9::1")),
            Some(("eth0", v6("fe80::ff"))),
            "the reject route is ignored; the default with the lower metric wins"
        );
        assert_eq!(lookup_route(&r, v4(198, 51, 100, 1)), None, "other family");
        let ifs = ifaces();
        assert_eq!(
            ifs[0].src_for(v6("2001:db8:2::11")),
            Some(v6("2001:db8:2::1"))
        );
        assert_eq!(ifs[0].src_for(v6("fe80::5")), Some(v6("fe80::1")));
        assert_eq!(
            ifs[0].src_for(v6("2001:db8:7::1")),
            Some(v6("2001:db8:2::1")),
            "off-subnet: a global address, not the link-local one"
        );
        assert_eq!(ifs[1].src_for(v6("2001:db8:2::11")), None);
        let mut learned = HashMap::new();
        learned.insert((v6("2001:db8:2::11"), 2), [2, 0, 0, 0, 0, 0x11]);
        let targets: HashSet<IpAddr> = [v6("2001:db8:2::11"), v6("2001:db8:2::12")].into();
        let res = resolve(&targets, &ifs, &r, &HashMap::new(), &learned);
        let h = res.hops[&v6("2001:db8:2::11")];
        assert_eq!(
            (h.ifindex, h.mac, h.src_ip),
            (2, [2, 0, 0, 0, 0, 0x11], v6("2001:db8:2::1"))
        );
        assert_eq!(res.ask, vec![(2, v6("2001:db8:2::12"))]);
    }

    #[test]
    fn routes_and_arp_parse() {
        // Only on little-endian hosts do these hex words read as written above.
        if cfg!(target_endian = "big") {
            return;
        }
        let r = parse_routes(ROUTE);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].gateway, Some(v4(192, 168, 100, 1)));
        assert_eq!((r[1].dst, r[1].prefix), (v4(198, 51, 100, 0), 24));
        assert_eq!(
            lookup_route(&r, v4(198, 51, 100, 11)),
            Some(("eth0", v4(198, 51, 100, 11)))
        );
        assert_eq!(
            lookup_route(&r, v4(8, 8, 8, 8)),
            Some(("eth0", v4(192, 168, 100, 1)))
        );
        let a = parse_arp(ARP);
        assert_eq!(a.len(), 1, "incomplete entries are skipped");
        let mut learned = HashMap::new();
        learned.insert((v4(192, 0, 2, 12), 3), [2, 0, 0, 0, 0, 0x0c]);
        let targets: HashSet<IpAddr> = [
            v4(198, 51, 100, 11),
            v4(198, 51, 100, 12),
            v4(192, 0, 2, 12),
        ]
        .into();
        let res = resolve(&targets, &ifaces(), &r, &a, &learned);
        assert_eq!(res.hops.len(), 2);
        let h = res.hops[&v4(198, 51, 100, 11)];
        assert_eq!(h.mac, [2, 0, 0, 0, 0, 0x0b]);
        assert_eq!(h.src_ip, v4(198, 51, 100, 1), "address of the RS's subnet");
        let h = res.hops[&v4(192, 0, 2, 12)];
        assert_eq!((h.ifindex, h.mtu, h.src_ip), (3, 1400, v4(192, 0, 2, 1)));
        assert_eq!(res.ask, vec![(2, v4(198, 51, 100, 12))]);
    }
}
