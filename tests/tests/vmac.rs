//! `use_vmac`: the VIP lives on a macvlan with the VRRP virtual MAC, so the client's neighbour
//! entry for the VIP is 00:00:5e:00:01:VRID (IPv6: 00:00:5e:00:02:VRID) and stays the same
//! across a failover; the VMAC interface is removed when the daemon stops.

use std::time::Duration;

use lab::e2e::{self, node, VIP4, VIP6};
use lab::{require_root, wait_until, Capture, Daemon, Host, Lab};

/// VRID 51 = 0x33.
const VMAC: &str = "00:00:5e:00:01:33";
const VMAC6: &str = "00:00:5e:00:02:33";
/// keepalived's name for it (the same as an IPv4 VMAC's when that one is not there).
const VMAC6_IF: &str = "vrrp.51";

fn has_link(host: &Host, name: &str) -> bool {
    host.exec("ip", &["link", "show", "dev", name])
        .is_ok_and(|o| o.status.success())
}

#[test]
fn client_sees_the_virtual_mac_before_and_after_failover() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (a, b, client) = (
        lab.host("a").clone(),
        lab.host("b").clone(),
        lab.host("client").clone(),
    );
    let (mut ca, mut cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
    for c in [&mut ca, &mut cb] {
        c.extra_instance = Some("use_vmac".into());
    }
    let mut pair = e2e::start_pair(lab, Daemon::Vrrpd, &ca, Daemon::Vrrpd, &cb).unwrap();
    let vip = pair.vip;
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    // b hears a's adverts from the virtual MAC its own VMAC also has: it stays Backup.
    e2e::holds_for(&pair, "a", Duration::from_secs(1)).unwrap();
    assert!(has_link(&a, "vrrp.51") && has_link(&b, "vrrp.51"));
    e2e::reach(&client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip).as_deref(), Some(VMAC));

    e2e::crash(&mut pair.a, &a).unwrap();
    assert!(wait_until(
        Duration::from_secs(3),
        Duration::from_millis(10),
        || b.has_addr(vip)
    ));
    // Same MAC: nothing for the client to relearn; the VIP answers from b.
    e2e::reach(&client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip).as_deref(), Some(VMAC));

    assert!(
        pair.b.terminate(Duration::from_secs(5)),
        "b did not stop on SIGTERM"
    );
    assert!(!has_link(&b, "vrrp.51"), "VMAC interface left behind on b");
}

/// IPv6 addresses on `dev` as `ip -6 -o addr` prints them (address/prefix).
fn addrs6(host: &Host, dev: &str) -> Vec<String> {
    let out = host
        .exec("ip", &["-6", "-o", "addr", "show", "dev", dev])
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            it.find(|w| *w == "inet6")?;
            it.next().map(str::to_string)
        })
        .collect()
}

/// The host's link-local address on its lab interface: the VRRP source of an IPv6 instance.
fn link_local(host: &Host) -> String {
    addrs6(host, &host.ifname)
        .into_iter()
        .find(|a| a.starts_with("fe80:"))
        .and_then(|a| a.split('/').next().map(str::to_string))
        .expect("a link-local address on the lab interface")
}

/// An IPv6 VMAC (RFC 5798 §7.3): the Master sends its adverts and NAs from 00:00:5e:00:02:VRID
/// with its own link-local source, which it puts on the VMAC while Master; a Backup's VMAC
/// holds no address (it makes none from the shared MAC) and sends nothing.
#[test]
fn ipv6_adverts_leave_the_vmac_and_the_client_keeps_its_entry_across_failover() {
    require_root!();
    if e2e::available(&[Daemon::Vrrpd]) {
        ipv6_vmac_pair(Daemon::Vrrpd, false);
    }
}

/// Unicast adverts between the nodes' global addresses go by the parent both ways (sent from
/// the VMAC, the peer's own VMAC would take the neighbour solicitations for its address: both
/// went Master); the VIP still lives on the VMAC.
#[test]
fn ipv6_vmac_unicast() {
    require_root!();
    if e2e::available(&[Daemon::Vrrpd]) {
        ipv6_vmac_pair(Daemon::Vrrpd, true);
    }
}

/// The same with keepalived 2.2.7 as the Backup: each hears the other's adverts from the
/// shared virtual MAC (one Master), and the VIP fails over to keepalived's VMAC.
#[test]
fn ipv6_vmac_with_keepalived_as_the_peer() {
    require_root!();
    if e2e::available(&[Daemon::Vrrpd, Daemon::Keepalived]) {
        ipv6_vmac_pair(Daemon::Keepalived, false);
    }
}

fn ipv6_vmac_pair(peer: Daemon, unicast: bool) {
    let lab = Lab::builder().build().unwrap();
    let (a, b, client) = (
        lab.host("a").clone(),
        lab.host("b").clone(),
        lab.host("client").clone(),
    );
    let (ll_a, ll_b) = if unicast {
        (a.v6.to_string(), b.v6.to_string())
    } else {
        (link_local(&a), link_local(&b))
    };
    assert_ne!(ll_a, ll_b);
    let mut cap = Capture::start(&client, "vmac6", "ip6 proto 112 or icmp6").unwrap();
    let (mut ca, mut cb) = (node("a", 150, 3, 0.1, VIP6), node("b", 100, 3, 0.1, VIP6));
    for (c, me, other) in [(&mut ca, &a, &b), (&mut cb, &b, &a)] {
        c.extra_instance = Some("use_vmac".into());
        if unicast {
            c.unicast_src = Some(me.v6.to_string());
            c.unicast_peers = vec![other.v6.to_string()];
        }
    }
    let mut pair = e2e::start_pair(lab, Daemon::Vrrpd, &ca, peer, &cb).unwrap();
    let vip = pair.vip;
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    e2e::holds_for(&pair, "a", Duration::from_secs(1)).unwrap();
    assert!(has_link(&a, VMAC6_IF) && has_link(&b, VMAC6_IF));
    e2e::reach(&client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip).as_deref(), Some(VMAC6));
    // The VIP, and (multicast) the source the adverts leave the VMAC with; nothing else.
    let on_a = addrs6(&a, VMAC6_IF);
    let mut want = vec![VIP6.to_string()];
    if !unicast {
        want.push(format!("{ll_a}/64"));
    }
    let mut have = on_a.clone();
    have.sort();
    want.sort();
    assert_eq!(have, want, "a's VMAC");
    if peer == Daemon::Vrrpd {
        // (keepalived puts its link-local on the VMAC at once, Backup or not.)
        assert_eq!(addrs6(&b, VMAC6_IF), Vec::<String>::new(), "b's VMAC");
    }

    e2e::crash(&mut pair.a, &a).unwrap();
    assert!(wait_until(
        Duration::from_secs(3),
        Duration::from_millis(10),
        || b.has_addr(vip)
    ));
    e2e::reach(&client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip).as_deref(), Some(VMAC6));
    let on_b = addrs6(&b, VMAC6_IF);
    if !unicast {
        assert!(on_b.contains(&format!("{ll_b}/64")), "b's VMAC: {on_b:?}");
    }
    std::thread::sleep(Duration::from_millis(600));
    // The client saw adverts from both nodes, every one from the virtual MAC; nothing else
    // of theirs came from it.
    let rows = cap
        .tshark_fields("", &["eth.src", "ipv6.src", "vrrp.prio"])
        .unwrap();
    let adverts = |src: &str| {
        rows.iter()
            .filter(|r| r.get(1).map(String::as_str) == Some(src) && !r[2].is_empty())
            .collect::<Vec<_>>()
    };
    let (from_a, from_b) = (adverts(&ll_a), adverts(&ll_b));
    // (Unicast adverts are addressed to the peer: the bridge does not show them the client.)
    let least = if unicast { 0 } else { 3 };
    assert!(from_a.len() >= least, "adverts from a: {}", from_a.len());
    assert!(
        from_b.len() >= least,
        "adverts from b: {}; b's log:\n{}",
        from_b.len(),
        pair.b.log_text()
    );
    if !unicast {
        for r in from_a.iter().chain(&from_b) {
            assert_eq!(r[0], VMAC6, "advert not from the virtual MAC: {r:?}");
        }
    }
    // (MLD reports may come from "::" before the link-local is usable, RFC 3590.)
    let vip_s = vip.to_string();
    for r in rows.iter().filter(|r| r[0] == VMAC6) {
        assert!(
            [ll_a.as_str(), ll_b.as_str(), vip_s.as_str(), "::"].contains(&r[1].as_str()),
            "unexpected source from the virtual MAC: {r:?}"
        );
    }

    assert!(
        pair.b.terminate(Duration::from_secs(5)),
        "b did not stop on SIGTERM"
    );
    assert!(!has_link(&b, VMAC6_IF), "VMAC interface left behind on b");
}
