//! `vrrp_strict` without `accept`: the Master (not the address owner) holds the VIP and the
//! client's ARP entry points at it, but traffic to the VIP is dropped (nftables table
//! `inet vrrpd_vrrp`, removed on exit). With `accept` the VIP answers.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Host, Lab};

fn has_table(host: &Host) -> bool {
    host.exec("nft", &["list", "table", "inet", "vrrpd_vrrp"])
        .is_ok_and(|o| o.status.success())
}

/// Runs a strict pair with `extra` in both instances; returns (client pings answered of 3,
/// client's MAC for the VIP == a's MAC, table present on a while running, table left on a
/// after SIGTERM).
fn strict_pair(extra: Option<&str>) -> (usize, bool, bool, bool) {
    let lab = Lab::builder().build().unwrap();
    let (a, client) = (lab.host("a").clone(), lab.host("client").clone());
    let (mut ca, mut cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
    for c in [&mut ca, &mut cb] {
        c.extra_global = Some("vrrp_strict".into());
        c.extra_instance = extra.map(str::to_string);
    }
    let mut pair = e2e::start_pair(lab, Daemon::Vrrpd, &ca, Daemon::Vrrpd, &cb).unwrap();
    let vip = pair.vip;
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let answered = (0..3).filter(|_| client.ping(vip)).count();
    let mac_ok = client.neigh(vip) == Some(a.mac().unwrap());
    let running = has_table(&a);
    e2e::holds_for(&pair, "a", Duration::from_millis(200)).unwrap();
    assert!(pair.a.terminate(Duration::from_secs(5)));
    let left = has_table(&a);
    assert!(pair.b.terminate(Duration::from_secs(5)));
    (answered, mac_ok, running, left)
}

#[test]
fn strict_no_accept_drops_traffic_to_the_vip() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let (answered, mac_ok, running, left) = strict_pair(None);
    assert_eq!(
        answered, 0,
        "the VIP must not answer under vrrp_strict without accept"
    );
    assert!(
        mac_ok,
        "the client's ARP entry for the VIP is the Master's MAC"
    );
    assert!(running, "nftables table loaded while running");
    assert!(!left, "nftables table removed on SIGTERM");
}

#[test]
fn strict_with_accept_answers() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let (answered, mac_ok, running, _) = strict_pair(Some("accept"));
    assert_eq!(answered, 3, "the VIP answers with accept");
    assert!(mac_ok);
    assert!(!running, "no drop rules with accept");
}
