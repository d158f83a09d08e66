//! `vrrp_startup_delay`: a node's instances stay silent that long after the daemon starts,
//! then run as usual (here: the higher priority preempts the peer that took over meanwhile).
//! keepalived 2.2.7 is the reference for the silence; after it, keepalived is odd: its higher
//! priority instance keeps discarding the running Master's lower-priority adverts and took over
//! 9 s after a 1.5 s delay in one run, not at all within 14 s after a 3 s delay in another,
//! where without the delay it preempts one Master_Down_Interval after it starts. vrrpd
//! preempts as it does without the delay.

use std::time::{Duration, Instant};

use lab::adverts::AdvertWatch;
use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Lab};

const DELAY: Duration = Duration::from_millis(1500);

#[test]
fn startup_delay_keeps_instances_silent_then_they_run() {
    require_root!();
    for d in [Daemon::Keepalived, Daemon::Vrrpd] {
        if !e2e::available(&[d]) {
            continue;
        }
        let lab = Lab::builder().build().unwrap();
        let watch = AdvertWatch::start(lab.host("b")).unwrap();
        let (mut ca, cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
        ca.extra_global = Some(format!("vrrp_startup_delay {}", DELAY.as_secs_f64()));
        let t0 = Instant::now();
        let mut pair = e2e::start_pair(lab, d, &ca, d, &cb).unwrap();
        pair.wait_master("b", Duration::from_secs(3)).unwrap();
        // Silent for the delay (less 100 ms for the time start_pair took to start a).
        let quiet_until = t0 + DELAY - Duration::from_millis(100);
        std::thread::sleep(quiet_until.saturating_duration_since(Instant::now()));
        let early: Vec<_> = watch
            .snapshot()
            .into_iter()
            .filter(|a| a.priority == 150 && a.at < quiet_until)
            .collect();
        assert!(
            early.is_empty(),
            "{d}: a sent adverts during its startup delay: {early:?}\n{}",
            pair.a.log_text()
        );
        if d == Daemon::Vrrpd {
            let first = watch
                .wait_for(t0, Duration::from_secs(5), |a| a.priority == 150)
                .unwrap_or_else(|| panic!("{d}: a never sent an advert\n{}", pair.a.log_text()));
            eprintln!("{d}: a's first advert {:?} after start", first.at - t0);
            pair.wait_master("a", Duration::from_secs(3)).unwrap();
            assert!(pair.a.log_text().contains("delaying startup for 1.5s"));
        }
    }
}
