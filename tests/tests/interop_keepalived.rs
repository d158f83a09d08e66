//! Interop with keepalived as the other node: vrrpd and keepalived agree on the startup
//! election, on a crash failover and on preemption back, in VRRPv2 and VRRPv3, with vrrpd as
//! the higher and as the lower priority. The capture must show vrrpd's adverts decoding
//! cleanly in tshark (VRRP and IPv4 checksums verified).

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::wait::wait_until;
use lab::{require_root, Capture, Daemon, Lab};

/// a (priority 150) runs `high`, b (100) runs `low`; both start as Backup.
fn interop(version: u8, advert_int: f64, high: Daemon, low: Daemon) {
    let adv = Duration::from_secs_f64(advert_int);
    // Master_Down_Interval plus slack for process start and scheduling.
    let down = adv * 4 + Duration::from_secs(2);
    let lab = Lab::builder().build().unwrap();
    let mut cap = Capture::start(lab.host("client"), "interop", "ip proto 112").unwrap();
    let (a, b, client) = (
        lab.host("a").clone(),
        lab.host("b").clone(),
        lab.host("client").clone(),
    );
    let ca = node("a", 150, version, advert_int, VIP4);
    let cb = node("b", 100, version, advert_int, VIP4);
    let mut pair = e2e::start_pair(lab, high, &ca, low, &cb).unwrap();
    let vip = pair.vip;

    // Startup election: a wins, b stays Backup (b would be Master 0.2 intervals after a had
    // it not accepted a's adverts).
    pair.wait_master("a", down).unwrap();
    e2e::holds_for(&pair, "a", adv * 2 + Duration::from_millis(200)).unwrap();
    e2e::reach(&client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip), Some(a.mac().unwrap()));

    // Crash of the Master: b takes over and announces.
    e2e::crash(&mut pair.a, &a).unwrap();
    assert!(
        wait_until(down, Duration::from_millis(10), || b.has_addr(vip)),
        "b did not take over: {}",
        pair.b.log_text()
    );
    e2e::wait_neigh(&client, vip, &b.mac().unwrap(), Duration::from_secs(2)).unwrap();

    // Restart: a preempts back and announces.
    pair.a = e2e::restart(high, &a, &ca).unwrap();
    pair.wait_master("a", down).unwrap();
    e2e::wait_neigh(&client, vip, &a.mac().unwrap(), Duration::from_secs(2)).unwrap();
    assert!(client.ping(vip), "VIP unreachable after preemption");

    let vrrpd_ip = if high == Daemon::Vrrpd { a.v4 } else { b.v4 };
    let rows = cap
        .tshark_fields("vrrp", &["ip.src", "vrrp.version", "vrrp.checksum.status"])
        .unwrap();
    let ours: Vec<_> = rows
        .iter()
        .filter(|r| r[0] == vrrpd_ip.to_string())
        .collect();
    assert!(ours.len() >= 3, "vrrpd adverts seen: {rows:?}");
    // tshark's checksum status: 1 = good.
    assert!(
        ours.iter()
            .all(|r| r[1] == version.to_string() && r[2] == "1"),
        "{ours:?}"
    );
    assert_eq!(cap.count_malformed().unwrap(), 0, "malformed frames");
}

fn run(version: u8, advert_int: f64, high: Daemon, low: Daemon) {
    if e2e::available(&[Daemon::Vrrpd, Daemon::Keepalived]) {
        interop(version, advert_int, high, low);
    }
}

#[test]
fn v3_vrrpd_high_keepalived_low() {
    require_root!();
    run(3, 0.1, Daemon::Vrrpd, Daemon::Keepalived);
}

#[test]
fn v3_keepalived_high_vrrpd_low() {
    require_root!();
    run(3, 0.1, Daemon::Keepalived, Daemon::Vrrpd);
}

#[test]
fn v2_vrrpd_high_keepalived_low() {
    require_root!();
    run(2, 1.0, Daemon::Vrrpd, Daemon::Keepalived);
}

#[test]
fn v2_keepalived_high_vrrpd_low() {
    require_root!();
    run(2, 1.0, Daemon::Keepalived, Daemon::Vrrpd);
}
