//! `virtual_routes` / `virtual_rules` live on the Master only and follow it through a crash
//! failover and back; `static_routes` / `static_rules` are on both nodes while the daemons
//! run. Everything is gone after SIGTERM.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, wait_until, Daemon, Host, Lab};

const VROUTES: &str = "virtual_routes {
        203.0.113.0/24 via 192.0.2.254 dev eth0 metric 7
        unreachable 2001:db8:99::/48
    }
    virtual_rules {
        from 198.51.100.0/24 table 100 priority 100
        from 2001:db8:5::/48 table 200 priority 200
    }";

const STATICS: &str = "static_routes {
    198.51.100.0/25 dev eth0 scope link
}
static_rules {
    to 198.51.100.128/25 table 300 priority 300
}";

/// (virtual route v4, virtual route v6, virtual rule v4, virtual rule v6) present on `host`.
fn virtuals(host: &Host) -> [bool; 4] {
    [
        host.ip_text(&["route", "show"]).lines().any(|l| {
            l.starts_with("203.0.113.0/24 via 192.0.2.254 dev eth0") && l.contains("metric 7")
        }),
        host.ip_text(&["-6", "route", "show"])
            .lines()
            .any(|l| l.starts_with("unreachable 2001:db8:99::/48")),
        host.ip_text(&["rule", "show"])
            .lines()
            .any(|l| l.starts_with("100:\tfrom 198.51.100.0/24 lookup 100")),
        host.ip_text(&["-6", "rule", "show"])
            .lines()
            .any(|l| l.starts_with("200:\tfrom 2001:db8:5::/48 lookup 200")),
    ]
}

fn statics(host: &Host) -> [bool; 2] {
    [
        host.ip_text(&["route", "show"])
            .lines()
            .any(|l| l.starts_with("198.51.100.0/25 dev eth0")),
        host.ip_text(&["rule", "show"])
            .lines()
            .any(|l| l.starts_with("300:\tfrom all to 198.51.100.128/25 lookup 300")),
    ]
}

fn wait_virtuals(host: &Host, want: bool) -> bool {
    wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        virtuals(host) == [want; 4]
    })
}

#[test]
fn virtual_routes_follow_the_master_statics_stay() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (a, b) = (lab.host("a").clone(), lab.host("b").clone());
    let (mut ca, mut cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
    for c in [&mut ca, &mut cb] {
        c.extra_instance = Some(VROUTES.into());
        c.extra_top = Some(STATICS.into());
    }
    let mut pair = e2e::start_pair(lab, Daemon::Vrrpd, &ca, Daemon::Vrrpd, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let logs = |p: &lab::scenario::Pair| format!("a:\n{}\nb:\n{}", p.a.log_text(), p.b.log_text());
    assert!(
        wait_virtuals(&a, true),
        "{:?}\n{}",
        virtuals(&a),
        logs(&pair)
    );
    assert_eq!(virtuals(&b), [false; 4], "the Backup has none");
    assert_eq!(statics(&a), [true; 2], "{}", logs(&pair));
    assert_eq!(statics(&b), [true; 2]);

    // Crash a: b takes the VIP and installs the routes and rules.
    e2e::crash(&mut pair.a, &a).unwrap();
    assert!(
        wait_virtuals(&b, true),
        "{:?}\n{}",
        virtuals(&b),
        logs(&pair)
    );

    // a comes back: what the crash left is removed, a preempts, b removes its copies.
    pair.a = e2e::restart(Daemon::Vrrpd, &a, &ca).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    assert!(
        wait_virtuals(&b, false),
        "{:?}\n{}",
        virtuals(&b),
        logs(&pair)
    );
    assert!(
        wait_virtuals(&a, true),
        "{:?}\n{}",
        virtuals(&a),
        logs(&pair)
    );

    // SIGTERM: nothing left behind, statics included.
    assert!(pair.a.terminate(Duration::from_secs(5)));
    assert!(pair.b.terminate(Duration::from_secs(5)));
    assert_eq!(virtuals(&a), [false; 4]);
    assert_eq!(statics(&a), [false; 2]);
    assert_eq!(statics(&b), [false; 2]);
}
