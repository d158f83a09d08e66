//! Reference for raised-priority preemption, measured on keepalived 2.2.7: a Backup whose
//! effective priority rises above the Master's (here via `track_file`) discards the Master's
//! adverts and takes over one Master_Down_Interval (with the new priority's skew) after the
//! change — not at the next advert. `vrrp::fsm::Instance::set_priority` does the same.

use std::time::{Duration, Instant};

use lab::e2e::{self, node, VIP4};
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab};

const D: Daemon = Daemon::Keepalived;

#[test]
fn keepalived_backup_raised_above_master_preempts() {
    require_root!();
    if !e2e::available(&[D]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let file = lab.host("b").dir.join("prio");
    std::fs::write(&file, "0\n").unwrap();
    let (ca, cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
    let tf = format!(
        "track_file tf {{\n    file \"{}\"\n    weight 1\n}}\n\n",
        file.display()
    );
    let conf_b = cb
        .render()
        .replacen("vrrp_instance", &format!("{tf}vrrp_instance"), 1)
        .replacen(
            "    virtual_ipaddress {",
            "    track_file {\n        tf\n    }\n    virtual_ipaddress {",
            1,
        );
    let a = D.start(lab.host("a"), &ca.render()).unwrap();
    let b = D.start(lab.host("b"), &conf_b).unwrap();
    let mut pair = lab::scenario::Pair {
        a,
        b,
        vip: e2e::addr(VIP4),
        lab,
    };
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    std::fs::write(&file, "100\n").unwrap();
    let bh = pair.lab.host("b").clone();
    assert!(
        wait_until(Duration::from_secs(3), Duration::from_millis(2), || bh
            .has_addr(pair.vip)),
        "b never preempted:\n{}",
        pair.b.log_text()
    );
    let took = t.elapsed();
    eprintln!(
        "b (100 -> 200) took over {:.1} ms after the change",
        took.as_secs_f64() * 1e3
    );
    pair.wait_master("b", Duration::from_secs(2)).unwrap();
    // MDI at priority 200: 3 × 100 ms + 56/256 × 100 ms = 321.9 ms; measured 315–324 ms.
    // Taking over at the next advert would be ≤ ~110 ms.
    assert!(
        took >= Duration::from_millis(250) && took <= Duration::from_millis(700),
        "took {took:?}"
    );
    let log = pair.b.log_text();
    assert!(
        log.contains("Changing effective priority from 100 to 200"),
        "{log}"
    );
    assert!(
        log.contains("received lower priority (150) advert"),
        "{log}"
    );
}
