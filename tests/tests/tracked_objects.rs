//! `virtual_ipaddress_excluded`, and what keepalived does when someone deletes a Master's
//! virtual address, route or rule: the tracked ones (the default) make it leave MASTER and
//! take them back, a Skew_Time later with nothing better on the LAN; `no_track` ones stay
//! gone. The same scenario runs on keepalived 2.2.7 (the reference) and on vrrpd.

use std::net::IpAddr;
use std::time::Duration;

use lab::capture::Capture;
use lab::e2e::{self, node, VIP4};
use lab::scenario::Pair;
use lab::{require_root, wait_until, Daemon, Host, Lab};

const EVIP4: &str = "192.0.2.150";
const EVIP6: &str = "2001:db8::150";
const EVIP_NO_TRACK: &str = "192.0.2.151";

const EXTRA: &str = "virtual_ipaddress_excluded {
        192.0.2.150/24 dev eth0
        2001:db8::150/64 dev eth0
        192.0.2.151/24 dev eth0 no_track
    }
    virtual_routes {
        203.0.113.0/24 via 192.0.2.254 dev eth0
        198.51.100.0/24 via 192.0.2.254 dev eth0 no_track
    }
    virtual_rules {
        from 198.51.100.7 table 100 priority 100
    }";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn has_route(host: &Host, prefix: &str) -> bool {
    host.ip_text(&["route", "show"])
        .lines()
        .any(|l| l.starts_with(prefix))
}

fn has_rule(host: &Host) -> bool {
    host.ip_text(&["rule", "show"])
        .lines()
        .any(|l| l.starts_with("100:\tfrom 198.51.100.7 lookup 100"))
}

/// Everything the Master holds: the VIP, the three excluded addresses, both routes, the rule.
fn holdings(host: &Host) -> [bool; 7] {
    [
        host.has_addr(ip("192.0.2.100")),
        host.has_addr(ip(EVIP4)),
        host.has_addr(ip(EVIP6)),
        host.has_addr(ip(EVIP_NO_TRACK)),
        has_route(host, "203.0.113.0/24"),
        has_route(host, "198.51.100.0/24"),
        has_rule(host),
    ]
}

fn entered(log: &str, state: &str) -> usize {
    log.matches(&format!("Entering {state} STATE")).count()
}

fn logs(p: &Pair) -> String {
    format!("a:\n{}\nb:\n{}", p.a.log_text(), p.b.log_text())
}

fn scenario(daemon: Daemon) {
    let lab = Lab::builder().build().unwrap();
    let (a, b) = (lab.host("a").clone(), lab.host("b").clone());
    let (mut ca, mut cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
    for c in [&mut ca, &mut cb] {
        c.extra_instance = Some(EXTRA.into());
    }
    let mut cap = Capture::start(&b, "adverts", "ip proto 112").unwrap();
    let mut pair = e2e::start_pair(lab, daemon, &ca, daemon, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let settle = |h: &Host, want: [bool; 7]| {
        wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
            holdings(h) == want
        })
    };
    assert!(settle(&a, [true; 7]), "{:?}\n{}", holdings(&a), logs(&pair));
    assert_eq!(holdings(&b), [false; 7], "the Backup holds nothing");

    // The adverts carry the VIP only.
    let rows = cap
        .tshark_fields("vrrp.prio == 150", &["vrrp.addr_count", "vrrp.ip_addr"])
        .unwrap();
    assert!(!rows.is_empty(), "no advert from a captured");
    for r in &rows {
        assert_eq!(
            r[..2],
            ["1".to_string(), "192.0.2.100".to_string()],
            "{rows:?}"
        );
    }

    // Each tracked object deleted by hand comes back; a never gives way to b.
    let b_masters = entered(&pair.b.log_text(), "MASTER");
    let deletions: [(&[&str], usize); 3] = [
        (&["addr", "del", "192.0.2.150/24", "dev", "eth0"], 1),
        (&["route", "del", "203.0.113.0/24"], 4),
        (
            &[
                "rule",
                "del",
                "from",
                "198.51.100.7",
                "table",
                "100",
                "priority",
                "100",
            ],
            6,
        ),
    ];
    for (args, index) in deletions {
        let backups = entered(&pair.a.log_text(), "BACKUP");
        let t0 = std::time::Instant::now();
        a.exec("ip", args).unwrap();
        assert!(
            wait_until(Duration::from_secs(3), Duration::from_millis(5), || {
                entered(&pair.a.log_text(), "BACKUP") > backups
            }),
            "a did not leave MASTER after `ip {}`\n{}",
            args.join(" "),
            logs(&pair)
        );
        assert!(
            settle(&a, [true; 7]),
            "`ip {}`: item {index} not reinstated: {:?}\n{}",
            args.join(" "),
            holdings(&a),
            logs(&pair)
        );
        eprintln!(
            "{daemon}: `ip {}`: all back after {:?}",
            args.join(" "),
            t0.elapsed()
        );
    }
    assert_eq!(
        entered(&pair.b.log_text(), "MASTER"),
        b_masters,
        "b took over\n{}",
        logs(&pair)
    );

    // no_track: left alone, no transition.
    let backups = entered(&pair.a.log_text(), "BACKUP");
    a.exec("ip", &["route", "del", "198.51.100.0/24"]).unwrap();
    a.exec("ip", &["addr", "del", "192.0.2.151/24", "dev", "eth0"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let mut want = [true; 7];
    want[3] = false;
    want[5] = false;
    assert_eq!(holdings(&a), want, "{}", logs(&pair));
    assert_eq!(
        entered(&pair.a.log_text(), "BACKUP"),
        backups,
        "{}",
        logs(&pair)
    );

    // A crash failover moves the excluded addresses of both families too.
    e2e::crash(&mut pair.a, &a).unwrap();
    assert!(settle(&b, [true; 7]), "{:?}\n{}", holdings(&b), logs(&pair));
}

#[test]
fn keepalived_reinstates_tracked_objects_and_moves_excluded_addresses() {
    require_root!();
    if e2e::available(&[Daemon::Keepalived]) {
        scenario(Daemon::Keepalived);
    }
}

#[test]
fn vrrpd_reinstates_tracked_objects_and_moves_excluded_addresses() {
    require_root!();
    if e2e::available(&[Daemon::Vrrpd]) {
        scenario(Daemon::Vrrpd);
    }
}

/// `promote_secondaries`: set on the instance's interface while the daemon runs, so deleting
/// the first address of a subnet leaves the others (without it the kernel deletes them all);
/// the old value is back after SIGTERM. keepalived 2.2.7 first, then vrrpd.
#[test]
fn promote_secondaries_keeps_the_rest_of_a_subnet() {
    require_root!();
    for d in [Daemon::Keepalived, Daemon::Vrrpd] {
        if !e2e::available(&[d]) {
            continue;
        }
        let lab = Lab::builder().build().unwrap();
        let a = lab.host("a").clone();
        let mut ca = node("a", 150, 3, 0.1, "198.51.100.10/24 no_track");
        ca.vips.push("198.51.100.11/24 no_track".into());
        ca.extra_instance = Some("promote_secondaries".into());
        // Both with the same two addresses: keepalived as Master ignores adverts whose
        // address count differs from its own (both would be Master).
        let mut cb = node("b", 100, 3, 0.1, "198.51.100.10/24 no_track");
        cb.vips.push("198.51.100.11/24 no_track".into());
        let sysctl = || {
            let out = a
                .exec("cat", &["/proc/sys/net/ipv4/conf/eth0/promote_secondaries"])
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let before = sysctl();
        assert_eq!(
            before, "0",
            "the lab's interfaces start without promote_secondaries"
        );
        let mut pair = e2e::start_pair(lab, d, &ca, d, &cb).unwrap();
        pair.wait_master("a", Duration::from_secs(5)).unwrap();
        assert!(
            wait_until(Duration::from_secs(2), Duration::from_millis(10), || a
                .has_addr(ip("198.51.100.11"))),
            "{d}: a lacks its second VIP\n{}",
            pair.a.log_text()
        );
        assert_eq!(sysctl(), "1", "{d}");
        a.exec("ip", &["addr", "del", "198.51.100.10/24", "dev", "eth0"])
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(!a.has_addr(ip("198.51.100.10")), "{d}");
        assert!(
            a.has_addr(ip("198.51.100.11")),
            "{d}: the second address went with the first\n{}",
            pair.a.log_text()
        );
        assert!(pair.a.terminate(Duration::from_secs(5)), "{d}");
        assert_eq!(sysctl(), before, "{d}: promote_secondaries not restored");
    }
}
