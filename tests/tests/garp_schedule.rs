//! The gratuitous ARPs a new Master sends, counted on the wire for 6 s: keepalived's default
//! schedule (5 at once, 5 more `vrrp_garp_master_delay` 5 s later) and `vrrp_min_garp` (one,
//! nothing later). keepalived 2.2.7 first, as the reference, then vrrpd.

use std::time::Duration;

use lab::capture::Capture;
use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Lab};

fn garps(d: Daemon, min_garp: bool) -> usize {
    let lab = Lab::builder().build().unwrap();
    let mut cap = Capture::start(lab.host("b"), "arp", "arp").unwrap();
    let mut ca = node("a", 150, 3, 0.1, VIP4);
    if min_garp {
        ca.extra_global = Some("vrrp_min_garp".into());
    }
    let a = d.start(lab.host("a"), &ca.render()).unwrap();
    let host = lab.host("a").clone();
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(10), || host
            .has_addr(e2e::addr(VIP4))),
        "{d}: a never became Master\n{}",
        a.log_text()
    );
    std::thread::sleep(Duration::from_secs(6));
    let rows = cap
        .tshark_fields(
            "arp.src.proto_ipv4 == 192.0.2.100 && arp.dst.proto_ipv4 == 192.0.2.100",
            &["frame.time_relative"],
        )
        .unwrap();
    drop(a);
    rows.len()
}

#[test]
fn garp_schedule_as_keepalived() {
    require_root!();
    for d in [Daemon::Keepalived, Daemon::Vrrpd] {
        if !e2e::available(&[d]) {
            continue;
        }
        let (default, min) = (garps(d, false), garps(d, true));
        eprintln!("{d}: {default} GARPs by default, {min} with vrrp_min_garp");
        assert_eq!(default, 10, "{d}: default schedule");
        assert_eq!(min, 1, "{d}: vrrp_min_garp");
    }
}
