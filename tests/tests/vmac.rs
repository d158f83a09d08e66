//! `use_vmac`: the VIP lives on a macvlan with the VRRP virtual MAC, so the client's neighbour
//! entry for the VIP is 00:00:5e:00:01:VRID and stays the same across a failover; the VMAC
//! interface is removed when the daemon stops.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, wait_until, Daemon, Host, Lab};

/// VRID 51 = 0x33.
const VMAC: &str = "00:00:5e:00:01:33";

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
