//! Addresses, routes and rules someone else deleted, from rtnetlink events (no polling).
//!
//! keepalived tracks every virtual address, virtual route and virtual rule unless it says
//! `no_track`: when one goes away while the instance is Master, the instance leaves Master and
//! takes it back (fsm `Input::Lost`), which reinstates it. One monitor serves the daemon; each
//! instance keeps the [`Key`]s of its tracked objects and checks the kernel before acting, so
//! the late echo of its own deletions (leaving Master) is never taken for a loss.

use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::route::{RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::rule::{RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::{Handle, IpVersion, MulticastGroup};
use tokio::sync::broadcast;
use tracing::warn;

/// The metric the kernel gives an IPv6 route added without one (`IP6_RT_PRIO_USER`).
const IPV6_DEFAULT_METRIC: u32 = 1024;

/// What the kernel identifies a route by (`ip route del` finds it by these).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteKey {
    pub v6: bool,
    pub table: u32,
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub tos: u8,
    pub metric: u32,
}

/// What tells one policy rule from another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleKey {
    pub v6: bool,
    pub priority: u32,
    pub action: u8,
    pub table: u32,
    pub src: Option<(IpAddr, u8)>,
    pub dst: Option<(IpAddr, u8)>,
    pub tos: u8,
    pub invert: bool,
    pub fwmark: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
}

/// A deleted object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Address { index: u32, addr: IpAddr },
    Route(RouteKey),
    Rule(RuleKey),
}

pub fn route_key(m: &RouteMessage) -> RouteKey {
    let v6 = m.header.address_family == AddressFamily::Inet6;
    let mut k = RouteKey {
        v6,
        table: u32::from(m.header.table),
        dst: None,
        dst_len: m.header.destination_prefix_length,
        tos: m.header.tos,
        metric: if v6 { IPV6_DEFAULT_METRIC } else { 0 },
    };
    for a in &m.attributes {
        match a {
            // Tables above 255 only fit the attribute; the header then says RT_TABLE_UNSPEC.
            RouteAttribute::Table(t) => k.table = *t,
            RouteAttribute::Destination(d) => k.dst = route_addr(d),
            RouteAttribute::Priority(p) => k.metric = *p,
            _ => {}
        }
    }
    if k.table == u32::from(RouteHeader::RT_TABLE_UNSPEC) {
        k.table = u32::from(RouteHeader::RT_TABLE_MAIN);
    }
    k
}

fn route_addr(a: &netlink_packet_route::route::RouteAddress) -> Option<IpAddr> {
    use netlink_packet_route::route::RouteAddress;
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

pub fn rule_key(m: &RuleMessage) -> RuleKey {
    let h = &m.header;
    let mut k = RuleKey {
        v6: h.family == AddressFamily::Inet6,
        priority: 0,
        action: u8::from(h.action),
        table: u32::from(h.table),
        src: None,
        dst: None,
        tos: h.tos,
        invert: h.flags.contains(RuleFlags::Invert),
        fwmark: None,
        iif: None,
        oif: None,
    };
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => k.priority = *p,
            RuleAttribute::Table(t) => k.table = *t,
            RuleAttribute::Source(s) => k.src = Some((*s, h.src_len)),
            RuleAttribute::Destination(d) => k.dst = Some((*d, h.dst_len)),
            RuleAttribute::FwMark(v) => k.fwmark = Some(*v),
            RuleAttribute::Iifname(v) => k.iif = Some(v.clone()),
            RuleAttribute::Oifname(v) => k.oif = Some(v.clone()),
            _ => {}
        }
    }
    k
}

/// The object a deletion event names; `None` for anything else.
pub fn deleted(msg: &RouteNetlinkMessage) -> Option<Key> {
    match msg {
        RouteNetlinkMessage::DelAddress(m) => Some(Key::Address {
            index: m.header.index,
            addr: crate::netlink::local_address(m)?,
        }),
        RouteNetlinkMessage::DelRoute(m) => Some(Key::Route(route_key(m))),
        RouteNetlinkMessage::DelRule(m) => Some(Key::Rule(rule_key(m))),
        _ => None,
    }
}

/// Whether `key` is in the kernel now.
pub async fn present(handle: &Handle, key: &Key) -> Result<bool, rtnetlink::Error> {
    let version = |v6| if v6 { IpVersion::V6 } else { IpVersion::V4 };
    match key {
        Key::Address { index, addr } => {
            let mut s = handle
                .address()
                .get()
                .set_link_index_filter(*index)
                .execute();
            while let Some(m) = s.try_next().await? {
                if m.header.index == *index && crate::netlink::local_address(&m) == Some(*addr) {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Key::Route(k) => {
            let mut dump = RouteMessage::default();
            dump.header.address_family = if k.v6 {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            };
            let mut s = handle.route().get(dump).execute();
            while let Some(m) = s.try_next().await? {
                if route_key(&m) == *k {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Key::Rule(k) => {
            let mut s = handle.rule().get(version(k.v6)).execute();
            while let Some(m) = s.try_next().await? {
                if rule_key(&m) == *k {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the rtnetlink address/route/rule event socket: {0}")]
pub struct Error(#[from] std::io::Error);

/// A running monitor; cheap to clone.
#[derive(Clone)]
pub struct DeletionMonitor {
    tx: broadcast::Sender<Key>,
}

impl DeletionMonitor {
    /// Listens for address, route and rule deletions of both families from a background task
    /// on the current runtime.
    pub fn start() -> Result<Self, Error> {
        let (conn, handle, mut events) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv6Route,
            MulticastGroup::Ipv4Rule,
            MulticastGroup::Ipv6Rule,
        ])?;
        crate::components::spawn_vital("rtnetlink deletion events", conn);
        let (tx, _) = broadcast::channel(1024);
        let t = tx.clone();
        crate::components::spawn_vital("deletion monitor", async move {
            let _handle = handle;
            while let Some((msg, _)) = events.next().await {
                if let NetlinkPayload::InnerMessage(m) = msg.payload {
                    if let Some(k) = deleted(&m) {
                        // No subscriber is not an error: nobody is Master yet.
                        let _ = t.send(k);
                    }
                }
            }
            warn!("rtnetlink deletion-event stream ended; deleted VIPs/routes/rules go unnoticed");
        });
        Ok(Self { tx })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Key> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::routes::{route_message, rule_message};
    use keepalived_conf::iproute::{parse_route_text, parse_rule_text};

    /// The key of what we add equals the key of what the kernel reports: IPv6's default
    /// metric and tables above 255 included.
    #[test]
    fn keys_of_added_and_reported_objects_agree() {
        let r = parse_route_text("2001:db8:5::/64 via 2001:db8::1 table 1000").unwrap();
        let ours = route_key(&route_message(&r, Some(2), &[], false));
        assert_eq!(ours.metric, 1024);
        assert_eq!(ours.table, 1000);
        let mut kernel = route_message(&r, Some(2), &[], false);
        kernel.header.table = RouteHeader::RT_TABLE_UNSPEC;
        kernel.attributes.push(RouteAttribute::Priority(1024));
        assert_eq!(route_key(&kernel), ours);
        let other = parse_route_text("2001:db8:6::/64 via 2001:db8::1 table 1000").unwrap();
        assert_ne!(route_key(&route_message(&other, Some(2), &[], false)), ours);

        let r4 = parse_route_text("198.51.100.0/24 via 192.0.2.254").unwrap();
        let k4 = route_key(&route_message(&r4, Some(2), &[], false));
        assert_eq!((k4.table, k4.metric, k4.dst_len), (254, 0, 24));

        let rule = parse_rule_text("from 198.51.100.7 table 100").unwrap();
        let k = rule_key(&rule_message(&rule));
        assert_eq!(k.src, Some(("198.51.100.7".parse().unwrap(), 32)));
        assert_eq!(k.table, 100);
        let other = parse_rule_text("from 198.51.100.8 table 100").unwrap();
        assert_ne!(rule_key(&rule_message(&other)), k);
    }

    #[test]
    fn only_deletions_are_reported() {
        let r = parse_route_text("198.51.100.0/24 via 192.0.2.254").unwrap();
        let m = route_message(&r, Some(2), &[], false);
        assert_eq!(
            deleted(&RouteNetlinkMessage::DelRoute(m.clone())),
            Some(Key::Route(route_key(&m)))
        );
        assert_eq!(deleted(&RouteNetlinkMessage::NewRoute(m)), None);
    }
}
