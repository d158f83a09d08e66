//! An instance's release recipe ([`crate::supervisor::wire`]): what its supervisor sends and
//! removes for it if the daemon dies while the instance is Master. The same adverts
//! [`crate::net::VrrpSocket::send`] sends on a graceful stop, and the same removals, in the
//! same order, as the instance's own release.

use std::net::IpAddr;

use keepalived_conf::model::{Route, Rule, VirtualAddress};
use tracing::warn;

use crate::net::SocketConfig;
use crate::netlink::{Link, Netlink, Removals};
use crate::supervisor::wire::{Advert, Recipe};

/// What an instance holds as Master, as its release sees it.
pub struct Holdings<'a> {
    pub socket: &'a SocketConfig,
    /// The priority-0 advert ([`vrrp_proto::fsm::Instance::release_advert`]).
    pub advert: &'a vrrp_proto::packet::Advert,
    pub vips: &'a [(VirtualAddress, Link)],
    pub routes: &'a [Route],
    pub rules: &'a [Rule],
    /// An IPv6 VMAC's source address, there while Master.
    pub vmac_source: Option<&'a (VirtualAddress, Link)>,
}

/// The recipe's bytes.
pub async fn recipe(nl: &Netlink, h: &Holdings<'_>) -> Vec<u8> {
    let mut r = Recipe::default();
    let cfg = h.socket;
    let (dsts, ttl): (&[IpAddr], u8) = if cfg.peers.is_empty() {
        (std::slice::from_ref(&cfg.group), 255)
    } else {
        (&cfg.peers, cfg.unicast_ttl)
    };
    for &dst in dsts {
        let payload = h.advert.encode(cfg.src, dst);
        r.advert(&Advert {
            ifindex: cfg.tx_ifindex,
            ttl,
            src: cfg.src,
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
