//! A split brain heals cleanly: when the link comes back, the higher-priority Master hears the
//! other side's lower-priority adverts, answers at once and re-announces the VIP
//! (`garp_lower_prio_*`), so the client's stale neighbour entry is corrected without waiting
//! for anything else to refresh it.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab};

#[test]
fn healed_split_brain_fixes_the_clients_neighbour_entry() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (mut ca, cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
    // Only a's lower-priority burst can fix the client: a's own second burst (the default
    // garp_master_delay of 5 s) is switched off.
    ca.extra_global = Some("vrrp_garp_master_delay 0".into());
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

    // Split: a keeps running and stays Master on its side; b takes over for the client.
    a.link_down().unwrap();
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

    // Heal: b steps down, a's answer moves the client back to a.
    a.link_up().unwrap();
    pair.wait_master("a", Duration::from_secs(2)).unwrap();
    e2e::wait_neigh(&client, vip, &a_mac, Duration::from_secs(1)).unwrap();
    assert!(client.ping(vip), "VIP unreachable after the heal");
}
