//! Next hops for real servers: route lookup and MAC resolution.
//!
//! The kernel's tables are read from `/proc/thread-self/net/{route,arp}`
//! (the namespace of the calling thread, which the dataplane threads inherit
//! from whoever started them). A next hop missing from the kernel's ARP table
//! is asked for with our own ARP request and learned from the reply, because
//! the kernel (arp_accept=0) ignores replies it did not ask for. The resolver
//! publishes an immutable map that workers read without locks.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
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
    /// Every IPv4 address with its prefix length.
    pub addrs: Vec<(Ipv4Addr, u8)>,
    pub mtu: u16,
}

impl Iface {
    /// Our source address towards on-link `next`: the address of its subnet,
    /// else the primary one (source of one-arm NAT, TUN and ARP).
    pub fn src_for(&self, next: Ipv4Addr) -> Option<Ipv4Addr> {
        self.addrs
            .iter()
            .find(|(a, p)| {
                let m = if *p == 0 {
                    0
                } else {
                    u32::MAX << (32 - *p as u32)
                };
                u32::from(*a) & m == u32::from(next) & m
            })
            .map(|(a, _)| *a)
            .or(self.addr)
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
    pub src_ip: Ipv4Addr,
    pub mtu: u16,
}

/// One IPv4 route from `/proc/net/route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub iface: String,
    pub dst: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
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
                dst: hex_addr(c[1])?,
                gateway: (flags & 0x2 != 0 && !gw.is_unspecified()).then_some(gw),
                metric: c[6].parse().ok()?,
                mask: hex_addr(c[7])?,
            })
        })
        .collect()
}

/// Longest-prefix match (lowest metric among equals): (interface, next hop).
pub fn lookup_route(routes: &[Route], dst: Ipv4Addr) -> Option<(&str, Ipv4Addr)> {
    routes
        .iter()
        .filter(|r| u32::from(dst) & u32::from(r.mask) == u32::from(r.dst))
        .max_by_key(|r| (u32::from(r.mask).count_ones(), std::cmp::Reverse(r.metric)))
        .map(|r| (r.iface.as_str(), r.gateway.unwrap_or(dst)))
}

/// Parses `/proc/net/arp`: complete entries only, keyed by (IP, device).
pub fn parse_arp(text: &str) -> HashMap<(Ipv4Addr, String), Mac> {
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
            Some(((c[0].parse().ok()?, c[5].to_string()), parse_mac(c[3])?))
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
    map: ArcSwap<HashMap<Ipv4Addr, Hop>>,
    wanted: Mutex<HashSet<Ipv4Addr>>,
}

impl Neighbours {
    /// The hop for `dst`, or `None` (and `dst` queued for resolution).
    #[inline]
    pub fn get(&self, dst: Ipv4Addr) -> Option<Hop> {
        let h = self.map.load().get(&dst).copied();
        if h.is_none() {
            self.wanted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(dst);
        }
        h
    }

    pub fn take_wanted(&self) -> HashSet<Ipv4Addr> {
        std::mem::take(&mut *self.wanted.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn publish(&self, m: HashMap<Ipv4Addr, Hop>) {
        self.map.store(Arc::new(m));
    }

    pub fn snapshot(&self) -> Arc<HashMap<Ipv4Addr, Hop>> {
        self.map.load_full()
    }
}

/// What one resolver round decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    pub hops: HashMap<Ipv4Addr, Hop>,
    /// (interface index, next hop) pairs to send an ARP request for.
    pub ask: Vec<(i32, Ipv4Addr)>,
}

/// Pure resolver round: routes each target, finds its next hop's MAC in the
/// kernel table or among what we learned from ARP replies.
pub fn resolve(
    targets: &HashSet<Ipv4Addr>,
    ifaces: &[Iface],
    routes: &[Route],
    kernel: &HashMap<(Ipv4Addr, String), Mac>,
    learned: &HashMap<(Ipv4Addr, i32), Mac>,
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
                    (Ipv4Addr::new(203, 0, 113, 1), 24),
                    (Ipv4Addr::new(198, 51, 100, 1), 24),
                ],
                mtu: 1500,
            },
            Iface {
                name: "eth1".into(),
                index: 3,
                mac: [2, 0, 0, 0, 0, 2],
                addr: Some(Ipv4Addr::new(192, 0, 2, 1)),
                addrs: vec![(Ipv4Addr::new(192, 0, 2, 1), 24)],
                mtu: 1400,
            },
        ]
    }

    #[test]
    fn routes_and_arp_parse() {
        // Only on little-endian hosts do these hex words read as written above.
        if cfg!(target_endian = "big") {
            return;
        }
        let r = parse_routes(ROUTE);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].gateway, Some(Ipv4Addr::new(192, 168, 100, 1)));
        assert_eq!(r[1].dst, Ipv4Addr::new(198, 51, 100, 0));
        assert_eq!(
            lookup_route(&r, Ipv4Addr::new(198, 51, 100, 11)),
            Some(("eth0", Ipv4Addr::new(198, 51, 100, 11)))
        );
        assert_eq!(
            lookup_route(&r, Ipv4Addr::new(8, 8, 8, 8)),
            Some(("eth0", Ipv4Addr::new(192, 168, 100, 1)))
        );
        let a = parse_arp(ARP);
        assert_eq!(a.len(), 1, "incomplete entries are skipped");
        let mut learned = HashMap::new();
        learned.insert((Ipv4Addr::new(192, 0, 2, 12), 3), [2, 0, 0, 0, 0, 0x0c]);
        let targets: HashSet<Ipv4Addr> = [
            Ipv4Addr::new(198, 51, 100, 11),
            Ipv4Addr::new(198, 51, 100, 12),
            Ipv4Addr::new(192, 0, 2, 12),
        ]
        .into();
        let res = resolve(&targets, &ifaces(), &r, &a, &learned);
        assert_eq!(res.hops.len(), 2);
        let h = res.hops[&Ipv4Addr::new(198, 51, 100, 11)];
        assert_eq!(h.mac, [2, 0, 0, 0, 0, 0x0b]);
        assert_eq!(
            h.src_ip,
            Ipv4Addr::new(198, 51, 100, 1),
            "address of the RS's subnet"
        );
        let h = res.hops[&Ipv4Addr::new(192, 0, 2, 12)];
        assert_eq!(
            (h.ifindex, h.mtu, h.src_ip),
            (3, 1400, Ipv4Addr::new(192, 0, 2, 1))
        );
        assert_eq!(res.ask, vec![(2, Ipv4Addr::new(198, 51, 100, 12))]);
    }
}
