//! [`Route`] / [`Rule`] → rtnetlink messages, as `ip route` / `ip rule` build them. Pure, so
//! the mapping is unit-tested without a kernel.

use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric, RouteNextHop,
    RouteNextHopFlags, RoutePreference, RouteProtocol, RouteRealm, RouteScope,
    RouteType as NlRouteType,
};
use netlink_packet_route::rule::{
    RuleAction as NlRuleAction, RuleAttribute, RuleFlags, RuleMessage, RulePortRange, RuleUidRange,
};
use netlink_packet_route::{AddressFamily, IpProtocol};

use keepalived_conf::iproute::{Nexthop, RouteType, RuleAction, RTPROT_KEEPALIVED};
use keepalived_conf::model::{Route, Rule};

/// `RT_TABLE_COMPAT`: the header's table when the real one needs 32 bits.
const TABLE_COMPAT: u8 = 252;

fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

fn addr(a: std::net::IpAddr) -> RouteAddress {
    match a {
        std::net::IpAddr::V4(a) => RouteAddress::Inet(a),
        std::net::IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn header_table(t: u32) -> u8 {
    u8::try_from(t).unwrap_or(TABLE_COMPAT)
}

fn realm(n: u32) -> RouteRealm {
    RouteRealm {
        source: (n >> 16) as u16,
        destination: (n & 0xffff) as u16,
    }
}

/// The message for `r`; `oif` and each nexthop's interface index resolved by the caller.
/// `delete`: scope "nowhere" matches any scope, as `ip route del` does.
pub(crate) fn route_message(
    r: &Route,
    oif: Option<u32>,
    nexthops: &[(&Nexthop, Option<u32>)],
    delete: bool,
) -> RouteMessage {
    let mut m = RouteMessage::default();
    let h = &mut m.header;
    h.address_family = family(r.is_ipv6());
    h.destination_prefix_length = r.dst.len;
    let table = r.table.unwrap_or(u32::from(RouteHeader::RT_TABLE_MAIN));
    h.table = header_table(table);
    h.protocol = RouteProtocol::from(r.protocol.unwrap_or(RTPROT_KEEPALIVED));
    h.kind = NlRouteType::from(r.kind.as_u8());
    h.tos = r.tos.unwrap_or(0);
    let multipath = !nexthops.is_empty();
    let gateway = r.via.is_some() || multipath;
    h.scope = match (delete, r.scope) {
        (true, _) => RouteScope::NoWhere,
        (false, Some(s)) => RouteScope::from(s.as_u8()),
        // iproute2's defaults.
        (false, None) => match r.kind {
            RouteType::Local | RouteType::Nat => RouteScope::Host,
            RouteType::Broadcast | RouteType::Multicast | RouteType::Anycast => RouteScope::Link,
            RouteType::Unicast if !gateway => RouteScope::Link,
            _ => RouteScope::Universe,
        },
    };
    if r.onlink && !multipath {
        h.flags |= RouteFlags::Onlink;
    }
    let a = &mut m.attributes;
    a.push(RouteAttribute::Table(table));
    if r.dst.len > 0 {
        a.push(RouteAttribute::Destination(addr(r.dst.addr)));
    }
    if let Some(f) = r.from {
        m.header.source_prefix_length = f.len;
        a.push(RouteAttribute::Source(addr(f.addr)));
    }
    if let Some(s) = r.src {
        a.push(RouteAttribute::PrefSource(addr(s)));
    }
    if let Some(p) = r.metric {
        a.push(RouteAttribute::Priority(p));
    }
    if let Some(n) = r.realms {
        a.push(RouteAttribute::Realm(realm(n)));
    }
    if let Some(p) = r.pref {
        a.push(RouteAttribute::Preference(RoutePreference::from(p)));
    }
    let mut metrics = Vec::new();
    if let Some(v) = r.mtu {
        metrics.push(RouteMetric::Mtu(v));
    }
    if let Some(v) = r.advmss {
        metrics.push(RouteMetric::Advmss(v));
    }
    if !metrics.is_empty() {
        a.push(RouteAttribute::Metrics(metrics));
    }
    if multipath {
        // `via A [dev X] or B` / `nexthop …`: the line's own gateway is the first path.
        let mut paths = Vec::new();
        if r.via.is_some() || oif.is_some() {
            paths.push(hop(r.via, oif, None, r.onlink));
        }
        for (nh, idx) in nexthops {
            paths.push(hop(nh.via, idx.or(oif), nh.weight, nh.onlink));
        }
        a.push(RouteAttribute::MultiPath(paths));
    } else {
        if let Some(v) = r.via {
            a.push(RouteAttribute::Gateway(addr(v)));
        }
        if let Some(i) = oif {
            a.push(RouteAttribute::Oif(i));
        }
    }
    m
}

fn hop(
    via: Option<std::net::IpAddr>,
    oif: Option<u32>,
    weight: Option<u16>,
    onlink: bool,
) -> RouteNextHop {
    let mut nh = RouteNextHop::default();
    nh.hops = weight.map_or(0, |w| (w.clamp(1, 256) - 1) as u8);
    nh.interface_index = oif.unwrap_or(0);
    if onlink {
        nh.flags |= RouteNextHopFlags::Onlink;
    }
    if let Some(v) = via {
        nh.attributes.push(RouteAttribute::Gateway(addr(v)));
    }
    nh
}

/// The message for `r` (the same one adds and deletes it).
pub(crate) fn rule_message(r: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    let h = &mut m.header;
    h.family = family(r.ipv6);
    h.tos = r.tos.unwrap_or(0);
    if r.not {
        h.flags |= RuleFlags::Invert;
    }
    h.action = match r.action {
        RuleAction::Table(_) => NlRuleAction::ToTable,
        RuleAction::Goto(_) => NlRuleAction::Goto,
        RuleAction::Nop => NlRuleAction::Nop,
        RuleAction::Blackhole => NlRuleAction::Blackhole,
        RuleAction::Unreachable => NlRuleAction::Unreachable,
        RuleAction::Prohibit => NlRuleAction::Prohibit,
    };
    let a = &mut m.attributes;
    match r.action {
        RuleAction::Table(t) => {
            m.header.table = header_table(t);
            a.push(RuleAttribute::Table(t));
        }
        RuleAction::Goto(g) => a.push(RuleAttribute::Goto(g)),
        _ => {}
    }
    if let Some(p) = r.from {
        m.header.src_len = p.len;
        a.push(RuleAttribute::Source(p.addr));
    }
    if let Some(p) = r.to {
        m.header.dst_len = p.len;
        a.push(RuleAttribute::Destination(p.addr));
    }
    a.push(RuleAttribute::Priority(r.priority));
    a.push(RuleAttribute::Protocol(RouteProtocol::from(
        RTPROT_KEEPALIVED,
    )));
    if let Some(v) = r.fwmark {
        a.push(RuleAttribute::FwMark(v));
    }
    if let Some(v) = r.fwmask {
        a.push(RuleAttribute::FwMask(v));
    }
    if let Some(v) = &r.iif {
        a.push(RuleAttribute::Iifname(v.clone()));
    }
    if let Some(v) = &r.oif {
        a.push(RuleAttribute::Oifname(v.clone()));
    }
    if let Some(n) = r.realms {
        a.push(RuleAttribute::Realm(realm(n)));
    }
    if let Some(v) = r.suppress_prefixlength {
        a.push(RuleAttribute::SuppressPrefixLen(v));
    }
    if let Some(v) = r.suppress_ifgroup {
        a.push(RuleAttribute::SuppressIfGroup(v));
    }
    if let Some((start, end)) = r.uidrange {
        a.push(RuleAttribute::UidRange(RuleUidRange { start, end }));
    }
    if let Some(p) = r.ipproto {
        a.push(RuleAttribute::IpProtocol(IpProtocol::from(p)));
    }
    if let Some((start, end)) = r.sport {
        a.push(RuleAttribute::SourcePortRange(RulePortRange { start, end }));
    }
    if let Some((start, end)) = r.dport {
        a.push(RuleAttribute::DestinationPortRange(RulePortRange {
            start,
            end,
        }));
    }
    if r.l3mdev {
        a.push(RuleAttribute::L3MDev(true));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use keepalived_conf::iproute::Prefix;

    fn route(via: bool) -> Route {
        Route {
            kind: RouteType::Unicast,
            dst: Prefix {
                addr: "203.0.113.0".parse().unwrap(),
                len: 24,
            },
            src: None,
            from: None,
            via: via.then(|| "192.0.2.254".parse().unwrap()),
            dev: Some("eth0".into()),
            onlink: false,
            nexthops: vec![],
            scope: None,
            table: Some(1000),
            metric: Some(7),
            protocol: None,
            tos: None,
            mtu: Some(1400),
            advmss: None,
            realms: None,
            pref: None,
            no_track: false,
            ignored: vec![],
        }
    }

    #[test]
    fn route_like_ip_route() {
        let m = route_message(&route(true), Some(3), &[], false);
        assert_eq!(m.header.destination_prefix_length, 24);
        assert_eq!(m.header.table, TABLE_COMPAT);
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert_eq!(m.header.protocol, RouteProtocol::from(18));
        assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(m.attributes.contains(&RouteAttribute::Oif(3)));
        assert!(m.attributes.contains(&RouteAttribute::Priority(7)));
        assert!(m
            .attributes
            .contains(&RouteAttribute::Gateway(RouteAddress::Inet(
                "192.0.2.254".parse().unwrap()
            ))));
        // A device route is link-scoped; deleting matches any scope.
        let m = route_message(&route(false), Some(3), &[], false);
        assert_eq!(m.header.scope, RouteScope::Link);
        let m = route_message(&route(false), Some(3), &[], true);
        assert_eq!(m.header.scope, RouteScope::NoWhere);
    }

    #[test]
    fn multipath_puts_gateways_in_nexthops() {
        let r = route(true);
        let nh = Nexthop {
            via: Some("192.0.2.253".parse().unwrap()),
            dev: None,
            weight: Some(3),
            onlink: false,
        };
        let m = route_message(&r, Some(3), &[(&nh, None)], false);
        assert!(!m
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Gateway(_))));
        let Some(RouteAttribute::MultiPath(p)) = m
            .attributes
            .iter()
            .find(|a| matches!(a, RouteAttribute::MultiPath(_)))
        else {
            panic!("no multipath")
        };
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].hops, p[1].interface_index), (2, 3));
    }

    #[test]
    fn rule_like_ip_rule() {
        let r = Rule {
            from: Some(Prefix {
                addr: "192.0.2.0".parse().unwrap(),
                len: 24,
            }),
            not: true,
            action: RuleAction::Table(100),
            fwmark: Some(5),
            ..Rule::default()
        };
        let m = rule_message(&r);
        assert_eq!((m.header.src_len, m.header.table), (24, 100));
        assert_eq!(m.header.action, NlRuleAction::ToTable);
        assert!(m.header.flags.contains(RuleFlags::Invert));
        assert!(m.attributes.contains(&RuleAttribute::Priority(16384)));
        assert!(m.attributes.contains(&RuleAttribute::FwMark(5)));
    }
}
