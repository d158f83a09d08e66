//! A split brain heals cleanly: a Master that hears the other side's lower-priority adverts
//! re-announces the VIP at once (`garp_lower_prio_*`), so the client's neighbour entry, which
//! the other Master had pointed at itself, is corrected without waiting for anything else.
//!
//! The split is a VRRP-only partition (a firewall dropping protocol 112 on node a) while client
//! traffic still flows, the classic way two keepalived Masters meet. It heals in two steps so
//! the order is deterministic: a first hears b (and must announce), then b hears a.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::wait::wait_until;
use lab::{require_root, Daemon, Host, Lab};

/// nftables on `host`: drop VRRP in the given hook ("input" or "output").
fn block_vrrp(host: &Host, hook: &str) {
    let table = format!("split_{hook}");
    let chain = format!("{{ type filter hook {hook} priority 0 ; }}");
    for args in [
        vec!["add", "table", "inet", &table],
        vec!["add", "chain", "inet", &table, "c", &chain],
        vec![
            "add", "rule", "inet", &table, "c", "ip", "protocol", "vrrp", "drop",
        ],
    ] {
        let out = host.exec("nft", &args).unwrap();
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn unblock_vrrp(host: &Host, hook: &str) {
    let table = format!("split_{hook}");
    let out = host
        .exec("nft", &["delete", "table", "inet", &table])
        .unwrap();
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn healed_split_brain_fixes_the_clients_neighbour_entry() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (mut ca, mut cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
    // Only the lower-priority burst may move the client: no second bursts after takeover.
    for c in [&mut ca, &mut cb] {
        c.extra_global = Some("vrrp_garp_master_delay 0".into());
    }
    let mut pair = e2e::start_pair(lab, Daemon::Vrrpd, &ca, Daemon::Vrrpd, &cb).unwrap();
    let vip = pair.vip;
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let (a, b, client) = (
        pair.lab.host("a").clone(),
        pair.lab.host("b").clone(),
        pair.lab.host("client").clone(),
    );
    let (a_mac, b_mac) = (a.mac().unwrap(), b.mac().unwrap());
    e2e::reach(&client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip).as_deref(), Some(a_mac.as_str()));

    // Split: b stops hearing a and takes over; a stays Master on its side.
    block_vrrp(&a, "input");
    block_vrrp(&a, "output");
    assert!(wait_until(
        Duration::from_secs(3),
        Duration::from_millis(10),
        || b.has_addr(vip)
    ));
    e2e::wait_neigh(&client, vip, &b_mac, Duration::from_secs(2)).unwrap();
    assert!(a.has_addr(vip), "a must still believe it is Master");
    // Linux ignores a new MAC for an entry changed less than `locktime` (1 s) ago; a real split
    // brain lasts longer than that.
    std::thread::sleep(Duration::from_millis(1500));

    // a hears b's lower priority: it must re-announce, moving the client back.
    unblock_vrrp(&a, "input");
    e2e::wait_neigh(&client, vip, &a_mac, Duration::from_secs(1)).unwrap();
    // b hears a and steps down: one Master again.
    unblock_vrrp(&a, "output");
    pair.wait_master("a", Duration::from_secs(2)).unwrap();
    assert!(client.ping(vip), "VIP unreachable after the heal");
}
