//! Keeping the kernel out of intercepted traffic.
//!
//! AF_PACKET taps see a frame before the `netdev` ingress hook does, so an
//! nftables `drop` there hides the packets the dataplane forwards from the
//! local stack while the rings still receive them. Without it the kernel
//! would answer a SYN to the VIP with a RST (DR, NAT) or a one-arm reply to
//! the balancer's own address with a RST. Dropping at ingress, before IP
//! input, also spares the kernel the IP layer's work on every intercepted
//! packet (a `prerouting` rule runs after `ip_rcv`), and it touches only the
//! dataplane's interfaces: one chain per interface.
//!
//! Rules, in table `netdev vrrpd_lb`, chain `in-IFNAME`:
//! - `ip daddr VIP <proto> dport PORT drop` for every virtual address and port,
//!   `virtual_server_group` entries included (the VIPs of one port in one
//!   set, ranges as ranges; the whole VIP for port-less persistent services).
//!   fwmark services and group entries get none: the dataplane never sees
//!   a packet's mark, so it does not forward them and the kernel keeps them;
//! - one-arm NAT: `ip daddr LB <proto> dport SNAT-RANGE drop` for the
//!   balancer's addresses;
//! - two-arm NAT replies (`ip saddr RIP <proto> sport RPORT`) not addressed
//!   to one of the host's own addresses: dropped so a kernel with forwarding
//!   on does not also route them untranslated (the balancer's own health
//!   checks to the real server still reach the kernel).
//!
//! Fragments and ICMP errors are not matched: the kernel ignores non-first
//! fragments it cannot reassemble for a closed port, and never answers ICMP
//! errors.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::RangeInclusive;

use crate::service::ServiceTable;
use crate::spec::{ForwardingMethod, Protocol};

pub const TABLE: &str = "vrrpd_lb";

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn fam(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

/// The addresses of one family as an nft value: one address alone, else an anonymous set
/// with consecutive addresses merged into ranges (a group's range stays one element).
fn elements(addrs: &BTreeSet<IpAddr>) -> String {
    let num = |a: &IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    };
    let mut runs: Vec<(IpAddr, IpAddr)> = Vec::new();
    for &a in addrs {
        match runs.last_mut() {
            Some((_, last)) if num(last) + 1 == num(&a) => *last = a,
            _ => runs.push((a, a)),
        }
    }
    match runs.as_slice() {
        [(a, b)] if a == b => a.to_string(),
        _ => {
            let e: Vec<String> = runs
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            format!("{{ {} }}", e.join(", "))
        }
    }
}

/// The rule set (`nft -f` input) for `table` on the interfaces `ifaces`; replaces an earlier
/// version atomically. `lb_addrs` are the balancer's addresses on them (one-arm NAT sources),
/// `local` every address of the host (replies to those are the kernel's own).
pub fn render(
    table: &ServiceTable,
    ifaces: &[String],
    lb_addrs: &[IpAddr],
    local: &[IpAddr],
    snat: &RangeInclusive<u16>,
) -> String {
    let mut rules = BTreeSet::new();
    // Virtual addresses by family, protocol and port: one rule each, plain services and
    // group entries alike.
    let mut vips: BTreeMap<(bool, Protocol, Option<u16>), BTreeSet<IpAddr>> = BTreeMap::new();
    for (p, addr, port) in table.listeners() {
        vips.entry((addr.is_ipv4(), p, port))
            .or_default()
            .insert(addr);
    }
    for ((v4, p, port), addrs) in vips {
        let (f, p, daddr) = (if v4 { "ip" } else { "ip6" }, proto(p), elements(&addrs));
        rules.insert(match port {
            Some(port) => format!("{f} daddr {daddr} {p} dport {port} drop"),
            None => format!("{f} daddr {daddr} meta l4proto {p} drop"),
        });
    }
    let mut one_arm = BTreeSet::new();
    for s in table.services() {
        let p = proto(s.spec.protocol);
        // Every configured server, live or not: the rules stay put while health changes.
        let sorry = s
            .spec
            .sorry_server
            .iter()
            .map(|x| (x.addr, x.port, x.forwarding.unwrap_or(s.spec.forwarding)));
        let servers = s
            .spec
            .real_servers
            .iter()
            .map(|r| (r.addr, r.port, s.spec.forwarding_of(r)))
            .chain(sorry);
        for (addr, port, method) in servers {
            match method {
                ForwardingMethod::Nat => {
                    let port = port.map(|x| format!(" {p} sport {x}")).unwrap_or_default();
                    let ours: Vec<String> = local
                        .iter()
                        .filter(|a| a.is_ipv4() == addr.is_ipv4())
                        .map(IpAddr::to_string)
                        .collect();
                    let not_ours = if ours.is_empty() {
                        String::new()
                    } else {
                        format!(" {} daddr != {{ {} }}", fam(addr), ours.join(", "))
                    };
                    rules.insert(format!("{} saddr {addr}{port}{not_ours} drop", fam(addr)));
                }
                ForwardingMethod::NatOneArm => {
                    one_arm.insert(p);
                }
                _ => {}
            }
        }
    }
    for p in one_arm {
        for a in lb_addrs {
            rules.insert(format!(
                "{} daddr {a} {p} dport {}-{} drop",
                fam(*a),
                snat.start(),
                snat.end()
            ));
        }
    }
    let mut s = format!("table netdev {TABLE} {{}}\ndelete table netdev {TABLE}\n");
    s.push_str(&format!("table netdev {TABLE} {{\n"));
    for dev in ifaces {
        s.push_str(&format!(
            "  chain in-{dev} {{\n    type filter hook ingress device \"{dev}\" priority -500; policy accept;\n"
        ));
        for r in &rules {
            s.push_str("    ");
            s.push_str(r);
            s.push('\n');
        }
        s.push_str("  }\n");
    }
    s.push_str("}\n");
    s
}

pub use sysio::nft::{apply, NftError};

/// Removes the table (absent is fine).
pub fn remove() -> Result<(), NftError> {
    apply(&format!(
        "table netdev {TABLE} {{}}\ndelete table netdev {TABLE}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Controller;
    use crate::spec::{
        GroupEntry, RealServerSpec, ServiceKey, ServiceSpec, VirtualServerGroupSpec,
    };

    #[test]
    fn ipv6_services_get_ip6_rules() {
        let rs = |a: &str, m| RealServerSpec {
            addr: a.parse().unwrap(),
            port: Some(8080),
            forwarding: Some(m),
            ..Default::default()
        };
        let spec = ServiceSpec {
            key: ServiceKey::Addr {
                addr: "2001:db8:1::100".parse().unwrap(),
                port: Some(80),
            },
            real_servers: vec![
                rs("2001:db8:2::11", ForwardingMethod::Nat),
                rs("2001:db8:2::12", ForwardingMethod::NatOneArm),
            ],
            ..Default::default()
        };
        let (c, _) = Controller::new(vec![spec], vec![]).unwrap();
        let lb: Vec<IpAddr> = vec![
            "198.51.100.1".parse().unwrap(),
            "2001:db8:2::1".parse().unwrap(),
        ];
        let ifaces = ["eth0".to_string(), "eth1".to_string()];
        let r = render(&c.table(), &ifaces, &lb, &lb, &(61000..=65535));
        assert!(r.contains("chain in-eth0 {\n    type filter hook ingress device \"eth0\""));
        assert!(r.contains("chain in-eth1 {"));
        for want in [
            "ip6 daddr 2001:db8:1::100 tcp dport 80 drop",
            "ip6 saddr 2001:db8:2::11 tcp sport 8080 ip6 daddr != { 2001:db8:2::1 } drop",
            "ip6 daddr 2001:db8:2::1 tcp dport 61000-65535 drop",
            "ip daddr 198.51.100.1 tcp dport 61000-65535 drop",
        ] {
            assert!(r.contains(want), "{want} missing in\n{r}");
        }
    }

    /// A group's addresses and ranges get the same drop rule as a plain virtual server's (one
    /// rule for a port), its fwmark entries none.
    #[test]
    fn group_entries_are_dropped_like_plain_services() {
        let a = |s: &str| -> IpAddr { s.parse().unwrap() };
        let rs = vec![RealServerSpec {
            addr: a("192.0.2.11"),
            port: Some(80),
            forwarding: Some(ForwardingMethod::Dr),
            ..Default::default()
        }];
        let group = ServiceSpec {
            key: ServiceKey::Group("web".into()),
            real_servers: rs.clone(),
            ..Default::default()
        };
        let plain = ServiceSpec {
            key: ServiceKey::Addr {
                addr: a("192.0.2.120"),
                port: Some(80),
            },
            real_servers: rs,
            ..Default::default()
        };
        let range = |first: &str, last: &str, port| GroupEntry::Range {
            first: a(first),
            last: a(last),
            port,
        };
        let groups = vec![VirtualServerGroupSpec {
            name: "web".into(),
            entries: vec![
                range("192.0.2.100", "192.0.2.100", Some(80)),
                range("192.0.2.110", "192.0.2.111", Some(80)),
                range("192.0.2.100", "192.0.2.100", Some(443)),
                range("2001:db8::100", "2001:db8::101", None),
                GroupEntry::Fwmark {
                    mark: 7,
                    family: None,
                },
            ],
        }];
        let (c, _) = Controller::new(vec![group, plain], groups).unwrap();
        let r = render(&c.table(), &["eth0".into()], &[], &[], &(61000..=65535));
        let rules: Vec<&str> = r
            .lines()
            .map(str::trim)
            .filter(|l| l.ends_with("drop"))
            .collect();
        assert_eq!(
            rules,
            [
                "ip daddr 192.0.2.100 tcp dport 443 drop",
                "ip daddr { 192.0.2.100, 192.0.2.110-192.0.2.111, 192.0.2.120 } tcp dport 80 drop",
                "ip6 daddr { 2001:db8::100-2001:db8::101 } meta l4proto tcp drop",
            ],
            "{r}"
        );
    }
}
