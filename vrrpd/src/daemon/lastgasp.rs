//! An instance's release recipe ([`crate::supervisor::wire`]): what its supervisor sends and
//! removes for it if the daemon dies while the instance is Master. The same adverts
//! the instance sends on a graceful stop, and the same removals, in the
//! same order, as the instance's own release.

use keepalived_conf::model::{Route, Rule, VirtualAddress};
use tracing::warn;

use crate::net::Destination;
use crate::netlink::{Link, Netlink, Removals};
use crate::supervisor::wire::{Advert, Recipe};

/// What an instance holds as Master, as its release sees it.
pub(super) struct Holdings<'a> {
    pub dest: &'a Destination,
    /// The priority-0 advert ([`vrrp_proto::fsm::Instance::release_advert`]).
    pub advert: &'a vrrp_proto::packet::Advert,
    pub vips: &'a [(VirtualAddress, Link)],
    pub routes: &'a [Route],
    pub rules: &'a [Rule],
    /// An IPv6 VMAC's source address, there while Master.
    pub vmac_source: Option<&'a (VirtualAddress, Link)>,
    /// Adverts with keepalived's old unicast checksum (`old_unicast_checksum`).
    pub old_checksum: bool,
}

/// The recipe's bytes.
pub(super) async fn recipe(nl: &Netlink, h: &Holdings<'_>) -> Vec<u8> {
    let mut r = Recipe::default();
    let d = h.dest;
    // An AH advert must carry the sequence number of its moment, which a recipe written in
    // advance cannot: the peer takes over after its Master_Down_Interval instead.
    let adverts = !matches!(h.advert.auth, vrrp_proto::packet::Auth::Ah(_));
    for (dst, _) in d.targets().filter(|_| adverts) {
        let payload = h
            .advert
            .encode(d.src, super::vrrp::checksum_dst(dst, h.old_checksum));
        r.advert(&Advert {
            ifindex: d.ifindex,
            ttl: d.ttl,
            src: d.src,
            dst,
            payload: &payload,
        });
    }
    let mut removals = Removals::new();
    for rule in h.rules {
        removals.rule(rule);
    }
    for route in h.routes {
        match nl.route_message(route, true).await {
            Ok(m) => removals.route(m),
            Err(e) => {
                warn!(route = %route, error = %e, "the supervisor cannot remove this route if the daemon dies")
            }
        }
    }
    for (vip, link) in h.vips.iter().chain(h.vmac_source) {
        removals.address(link.index, vip);
    }
    for req in removals.requests() {
        r.netlink(req);
    }
    r.into_bytes()
}
