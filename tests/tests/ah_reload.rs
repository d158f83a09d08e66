//! `auth_type AH` across a reload: keepalived keeps an instance's AH sequence number when it
//! reloads, and so must vrrpd, or its peer drops every advert after the reload as a replay
//! ("sequence number already processed") and takes over. vrrpd is the Master, keepalived 2.2.7
//! the Backup; vrrpd reloads a file that changes the instance (so it starts again in place).

use std::time::{Duration, Instant};

use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Lab};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn ah_sequence_survives_a_reload() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd, Daemon::Keepalived]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (a, b) = (lab.host("a").clone(), lab.host("b").clone());
    let (mut ca, mut cb) = (node("a", 150, 2, 1.0, VIP4), node("b", 100, 2, 1.0, VIP4));
    for c in [&mut ca, &mut cb] {
        c.auth_pass = Some("s3cret!!".into());
        c.auth_ah = true;
    }
    let mut pair = e2e::start_pair(lab, Daemon::Vrrpd, &ca, Daemon::Keepalived, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(10)).unwrap();
    // Some adverts counted on both sides before the reload.
    e2e::holds_for(&pair, "a", Duration::from_secs(3)).unwrap();

    // The instance changes (a GARP refresh): it starts again, in place, as Master.
    let mut changed = ca.clone();
    changed.extra_instance = Some("garp_master_refresh 30".into());
    std::fs::write(a.dir.join("vrrpd.conf"), changed.render()).unwrap();
    kill(Pid::from_raw(pair.a.pid() as i32), Signal::SIGHUP).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(20), || pair
            .a
            .log_text()
            .contains("Reload complete")),
        "{}",
        pair.a.log_text()
    );
    // Master_Down_Interval is ~3.6 s: b must keep hearing a well past it.
    let end = Instant::now() + Duration::from_secs(6);
    while Instant::now() < end {
        assert!(
            !b.has_addr(pair.vip),
            "keepalived took over after vrrpd's reload:\n{}",
            pair.b.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(a.has_addr(pair.vip));
    let log = pair.b.log_text();
    assert!(
        !log.contains("already processed") && !log.contains("invalid IPSEC"),
        "keepalived dropped vrrpd's adverts:\n{log}"
    );
}
