//! Default interface tracking (keepalived tracks an instance's own interface): the Master's
//! cable is cut → it goes FAULT and drops the VIP, the Backup takes over within
//! Master_Down_Interval; cable back → the old Master goes BACKUP, then preempts back.

use std::time::{Duration, Instant};

use lab::e2e::{self, node, VIP4};
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab};

const D: Daemon = Daemon::Vrrpd;
const ADV: f64 = 0.1;

#[test]
fn master_link_down_goes_fault_and_backup_takes_over() {
    require_root!();
    if !e2e::available(&[D]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (ca, cb) = (node("a", 150, 3, ADV, VIP4), node("b", 100, 3, ADV, VIP4));
    let mut pair = e2e::start_pair(lab, D, &ca, D, &cb).unwrap();
    let vip = pair.vip;
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let (a, b) = (pair.lab.host("a").clone(), pair.lab.host("b").clone());

    // The bridge-side port goes down: a's veth loses its carrier (IFF_RUNNING off).
    let cut = Instant::now();
    a.link_down().unwrap();
    assert!(
        wait_until(Duration::from_secs(2), Duration::from_millis(5), || pair
            .a
            .log_text()
            .contains("Entering FAULT STATE (from MASTER)")),
        "a never went FAULT; log:\n{}",
        pair.a.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(1), Duration::from_millis(5), || !a
            .has_addr(vip)),
        "a kept the VIP in FAULT"
    );
    assert!(
        wait_until(Duration::from_secs(3), Duration::from_millis(5), || b
            .has_addr(vip)),
        "b never took over"
    );
    let takeover = cut.elapsed();
    // b's Master_Down_Interval: 3 × 100 ms + (256 − 100)/256 × 100 ms = 360.9 ms, counted from
    // a's last advert (before the cut); 150 ms of slack for polling and scheduling.
    let mdi = Duration::from_micros(360_938);
    eprintln!(
        "takeover {:.1} ms after the cut",
        takeover.as_secs_f64() * 1e3
    );
    assert!(
        takeover <= mdi + Duration::from_millis(150),
        "takeover took {takeover:?}"
    );
    // a stays quiet and VIP-less while its link is down.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!a.has_addr(vip));
    assert_eq!(pair.master(), Some("b"));

    a.link_up().unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let log = pair.a.log_text();
    let back = log
        .find("Entering BACKUP STATE (from FAULT)")
        .unwrap_or_else(|| panic!("a did not return to BACKUP; log:\n{log}"));
    assert!(
        log[back..].contains("Entering MASTER STATE (from BACKUP)"),
        "a did not preempt from BACKUP; log:\n{log}"
    );
    assert!(pair
        .b
        .log_text()
        .contains("Entering BACKUP STATE (from MASTER)"));
}

/// `dont_track_primary`: the Master's own link going down is no fault. It keeps the VIP (the
/// Backup, hearing nothing, takes it too: both hold it while the cable is out); with the cable
/// back the higher priority wins and the pair has one Master again. keepalived 2.2.7 first, as
/// the reference, then vrrpd.
#[test]
fn dont_track_primary_keeps_a_cut_master_out_of_fault() {
    require_root!();
    for d in [Daemon::Keepalived, Daemon::Vrrpd] {
        if !e2e::available(&[d]) {
            continue;
        }
        let lab = Lab::builder().build().unwrap();
        let (mut ca, cb) = (node("a", 150, 3, ADV, VIP4), node("b", 100, 3, ADV, VIP4));
        ca.extra_instance = Some("dont_track_primary".into());
        let mut pair = e2e::start_pair(lab, d, &ca, d, &cb).unwrap();
        let vip = pair.vip;
        pair.wait_master("a", Duration::from_secs(5)).unwrap();
        let (a, b) = (pair.lab.host("a").clone(), pair.lab.host("b").clone());

        a.link_down().unwrap();
        assert!(
            wait_until(Duration::from_secs(3), Duration::from_millis(5), || b
                .has_addr(vip)),
            "{d}: b never took over"
        );
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            a.has_addr(vip),
            "{d}: a dropped the VIP\n{}",
            pair.a.log_text()
        );
        assert!(
            !pair.a.log_text().contains("FAULT"),
            "{d}: a went FAULT\n{}",
            pair.a.log_text()
        );

        a.link_up().unwrap();
        pair.wait_master("a", Duration::from_secs(5)).unwrap();
        assert!(!pair.a.log_text().contains("FAULT"), "{d}");
    }
}
