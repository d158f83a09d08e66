//! The reference for vrrpd's FAULT semantics, measured on keepalived 2.2.7: a Master whose
//! weight-0 `vrrp_script` fails enters FAULT, sends priority-0 adverts (so the Backup takes
//! over after its Skew_Time, not after Master_Down_Interval; 2.2.7 sends two, ~0.1 ms apart)
//! and drops the VIP; when the script recovers it goes BACKUP and preempts back. `vrrp::fsm`
//! does the same on `Input::Fault` / `Input::FaultCleared`; the same scenario runs on vrrpd and
//! must show the same adverts.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::wait::wait_until;
use lab::{require_root, Capture, Daemon, Lab};

#[test]
fn keepalived_master_fault_sends_priority_zero() {
    require_root!();
    if !e2e::available(&[Daemon::Keepalived]) {
        return;
    }
    let zeros = master_fault(Daemon::Keepalived);
    assert_eq!(zeros.len(), 2, "keepalived 2.2.7 sends two: {zeros:?}");
}

#[test]
fn vrrpd_master_fault_sends_priority_zero_like_keepalived() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let zeros = master_fault(Daemon::Vrrpd);
    assert_eq!(
        zeros.len(),
        2,
        "two priority-0 adverts, as keepalived: {zeros:?}"
    );
    assert!(zeros[1] - zeros[0] < 0.005, "back to back: {zeros:?}");
}

/// The scenario on daemon `d`; the times of a's priority-0 adverts.
fn master_fault(d: Daemon) -> Vec<f64> {
    let lab = Lab::builder().build().unwrap();
    let flag = lab.host("a").dir.join("healthy");
    std::fs::write(&flag, "").unwrap();
    let (ca, cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
    let script = format!(
        "vrrp_script chk {{\n    script \"/usr/bin/test -e {}\"\n    interval 1\n    fall 1\n    rise 1\n}}\n\n",
        flag.display()
    );
    let conf_a = ca
        .render()
        .replacen("vrrp_instance", &format!("{script}vrrp_instance"), 1)
        .replacen(
            "    virtual_ipaddress {",
            "    track_script {\n        chk\n    }\n    virtual_ipaddress {",
            1,
        );
    let mut cap = Capture::start(lab.host("client"), "fault", "ip proto 112").unwrap();
    let a = d.start(lab.host("a"), &conf_a).unwrap();
    let b = d.start(lab.host("b"), &cb.render()).unwrap();
    let mut pair = lab::scenario::Pair {
        a,
        b,
        vip: e2e::addr(VIP4),
        lab,
    };
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    std::fs::remove_file(&flag).unwrap();
    assert!(
        wait_until(Duration::from_secs(4), Duration::from_millis(10), || pair
            .a
            .log_text()
            .to_lowercase()
            .contains("entering fault state")),
        "keepalived never went FAULT:\n{}",
        pair.a.log_text()
    );
    pair.wait_master("b", Duration::from_secs(3)).unwrap();
    std::fs::write(&flag, "").unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let log = pair.a.log_text().to_lowercase();
    let fault = log.find("entering fault state").unwrap();
    assert!(
        log[fault..].contains("entering backup state"),
        "left FAULT for BACKUP:\n{log}"
    );
    std::thread::sleep(Duration::from_millis(300));
    cap.stop();
    let a_ip = pair.lab.host("a").v4;
    let adverts = cap.vrrp_adverts().unwrap();
    let zeros: Vec<_> = adverts
        .iter()
        .filter(|x| x.src == a_ip && x.priority == 0)
        .collect();
    assert!(!zeros.is_empty(), "no priority-0 advert on FAULT");
    eprintln!(
        "priority-0 adverts from a at {:?}",
        zeros.iter().map(|x| x.time).collect::<Vec<_>>()
    );
    eprintln!(
        "all from a around: {:?}",
        adverts
            .iter()
            .filter(|x| x.src == a_ip && (x.time - zeros[0].time).abs() < 0.5)
            .map(|x| (x.time - zeros[0].time, x.priority))
            .collect::<Vec<_>>()
    );
    zeros.iter().map(|x| x.time).collect()
}
