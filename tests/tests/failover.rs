//! Election and crash/graceful failover with the same daemon on both nodes. Every body takes
//! the [`Daemon`]; the keepalived runs prove the lab (and the expected figures) against the
//! reference, the vrrpd runs hold vrrpd to them.

use std::time::Duration;

use lab::scenario::{run_failover, FailoverSpec, Pair, Scenario, VIP};
use lab::{require_root, Capture, Daemon, Lab, NodeConf, NodeState};

fn skip_unless_available(d: Daemon) -> bool {
    if !d.available() {
        eprintln!("skipped: {d} binary not found");
        return true;
    }
    false
}

/// Both start as Backup: the higher priority wins the election, the client resolves the VIP to
/// the winner, the loser stays quiet, and every advert decodes cleanly.
fn election(daemon: Daemon) {
    let lab = Lab::builder().build().expect("lab");
    let mut cap = Capture::start(lab.host("client"), "vrrp", "ip proto 112").unwrap();
    let vip = VIP.split('/').next().unwrap().parse().unwrap();
    // b is started first and becomes Master alone; a (150) must then preempt.
    let conf_a = NodeConf::demo("lab_a", NodeState::Backup, 150).render();
    let conf_b = NodeConf::demo("lab_b", NodeState::Backup, 100).render();
    let mut pair = Pair::start(lab, daemon, &conf_a, &conf_b, vip).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let client = pair.lab.host("client");
    assert!(client.ping(vip), "client cannot reach the VIP");
    let a_mac = pair.lab.host("a").mac().unwrap();
    assert_eq!(client.neigh(vip), Some(a_mac));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pair.master(), Some("a"), "no flapping once elected");

    let adverts = cap.vrrp_adverts().unwrap();
    assert_eq!(
        cap.count_malformed().unwrap(),
        0,
        "malformed VRRP on the wire"
    );
    let (a_ip, b_ip) = (pair.lab.host("a").v4, pair.lab.host("b").v4);
    let from_a: Vec<_> = adverts.iter().filter(|x| x.src == a_ip).collect();
    assert!(from_a.len() >= 4, "a sent {} adverts", from_a.len());
    assert!(from_a.iter().all(|x| x.vrid == 51 && x.priority == 150));
    // Once a advertises, b never does again.
    let first_a = from_a[0].time;
    assert!(!adverts
        .iter()
        .any(|x| x.src == b_ip && x.time > first_a + 0.05));
}

/// The run, and b's takeover after a's last advert (ms).
fn crash_failover(daemon: Daemon, scenario: Scenario) -> (lab::scenario::FailoverRun, f64) {
    let spec = FailoverSpec::new(daemon, scenario, 3, 0.1);
    let run = run_failover(&spec, &mut |s| eprintln!("  {s}")).expect("failover");
    let takeover = run.takeover_after_last_advert_ms.expect("b took over");
    eprintln!(
        "{daemon} {scenario}: blackout {:.1} ms, takeover {takeover:.1} ms after last advert",
        run.blackout_ms
    );
    assert_eq!(run.new_master, "b");
    assert!(run.probe.received > 200, "{:?}", run.probe);
    (run, takeover)
}

fn crash_v3_100ms(daemon: Daemon) {
    let (run, takeover) = crash_failover(daemon, Scenario::Crash);
    // Master_Down_Interval = 3*0.1 + (256-100)/256*0.1 = 361 ms after the last advert.
    assert!(
        (300.0..600.0).contains(&takeover),
        "takeover {takeover:.1} ms"
    );
    assert!(
        (250.0..800.0).contains(&run.blackout_ms),
        "blackout {:.1} ms",
        run.blackout_ms
    );
}

fn sigterm_v3_100ms(daemon: Daemon) {
    let (run, takeover) = crash_failover(daemon, Scenario::Sigterm);
    // After the priority-0 advert the Backup waits only Skew_Time = 61 ms.
    assert!(takeover < 250.0, "takeover {takeover:.1} ms");
    assert!(
        run.blackout_ms < 300.0,
        "blackout {:.1} ms",
        run.blackout_ms
    );
}

/// One `#[test]` per daemon for a body taking the daemon.
macro_rules! per_daemon {
    ($body:ident: $($name:ident => $daemon:expr),+ $(,)?) => {$(
        #[test]
        fn $name() {
            require_root!();
            if !skip_unless_available($daemon) {
                $body($daemon);
            }
        }
    )+};
}

per_daemon!(election:
    keepalived_higher_priority_wins_election => Daemon::Keepalived,
    vrrpd_higher_priority_wins_election => Daemon::Vrrpd,
);
per_daemon!(crash_v3_100ms:
    keepalived_crash_failover_v3_100ms => Daemon::Keepalived,
    vrrpd_crash_failover_v3_100ms => Daemon::Vrrpd,
);
per_daemon!(sigterm_v3_100ms:
    keepalived_sigterm_handover_v3_100ms => Daemon::Keepalived,
    vrrpd_sigterm_handover_v3_100ms => Daemon::Vrrpd,
);
