//! 255 VRRP instances on one link (VRIDs 1..=255, one /32 VIP each, v3 every 100 ms), vrrpd on
//! both nodes: every instance elects, a crash moves all 255 within one Master_Down_Interval, a
//! SIGHUP with a harmless change keeps every Master (no advert gap beyond the interval, no
//! takeover), SIGTERM releases every address, route and rule before exit, and the daemon runs
//! under systemd's default soft limit of 1024 open files with descriptors independent of N.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lab::instbench::{render, render_with, vip, vips_held};
use lab::{require_root, AdvertSeen, AdvertWatch, Daemon, DaemonProc, Host, Lab};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const N: usize = 255;
const ADV: f64 = 0.1;
/// b's Master_Down_Interval at priority 100: 3 × 100 ms + (256 − 100) / 256 × 100 ms.
const MDI_B: Duration = Duration::from_micros(360_938);

fn ready() -> bool {
    lab::e2e::available(&[Daemon::Vrrpd])
}

/// a (priority 150) Master of every VRID, b (100) Backup of every VRID.
fn pair(lab: &Lab, extra_a: &str) -> (DaemonProc, DaemonProc) {
    let b = Daemon::Vrrpd
        .start(lab.host("b"), &render("many_b", N, 100, ADV, ""))
        .unwrap();
    let a = Daemon::Vrrpd
        .start(lab.host("a"), &render("many_a", N, 150, ADV, extra_a))
        .unwrap();
    (a, b)
}

fn wait_holder(a: &Host, b: &Host, on_a: usize, on_b: usize, timeout: Duration, logs: &str) {
    let ok = lab::wait_until(timeout, Duration::from_millis(50), || {
        vips_held(a) == on_a && vips_held(b) == on_b
    });
    assert!(
        ok,
        "expected a:{on_a} b:{on_b} VIPs, found a:{} b:{}\n{logs}",
        vips_held(a),
        vips_held(b)
    );
}

fn by_vrid(seen: &[AdvertSeen], from: std::net::IpAddr) -> BTreeMap<u8, Vec<AdvertSeen>> {
    let mut m: BTreeMap<u8, Vec<AdvertSeen>> = BTreeMap::new();
    for s in seen.iter().filter(|s| s.src == from) {
        m.entry(s.vrid).or_default().push(s.clone());
    }
    m
}

#[test]
fn all_255_elect_and_a_crash_moves_them_within_the_down_interval() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (ha, hb, client) = (lab.host("a"), lab.host("b"), lab.host("client"));
    let (mut a, b) = pair(&lab, "");
    wait_holder(ha, hb, N, 0, Duration::from_secs(20), &a.log_text());
    let watch = AdvertWatch::start(client).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Every VRID is a's, at 150; b says nothing.
    let seen = watch.snapshot();
    let from_a = by_vrid(&seen, ha.v4);
    assert_eq!(from_a.len(), N, "VRIDs heard from a");
    assert!(from_a.values().flatten().all(|s| s.priority == 150));
    assert!(
        by_vrid(&seen, hb.v4).is_empty(),
        "b advertised while Backup"
    );

    let crash = Instant::now();
    lab::e2e::crash(&mut a, ha).unwrap();
    wait_holder(ha, hb, N, N, Duration::from_secs(10), &b.log_text());
    std::thread::sleep(Duration::from_millis(200));
    let seen = watch.snapshot();
    let from_a = by_vrid(&seen, ha.v4);
    let from_b = by_vrid(&seen, hb.v4);
    let mut worst = Duration::ZERO;
    for v in 1..=N as u8 {
        let last = from_a[&v]
            .iter()
            .rfind(|s| s.at <= crash)
            .expect("a's last")
            .at;
        let first = from_b
            .get(&v)
            .and_then(|s| s.iter().find(|s| s.at > crash && s.priority == 100))
            .unwrap_or_else(|| panic!("b never advertised VRID {v}"))
            .at;
        worst = worst.max(first - last);
    }
    eprintln!(
        "slowest takeover {:.1} ms after a's last advert (down interval {:.1} ms)",
        worst.as_secs_f64() * 1e3,
        MDI_B.as_secs_f64() * 1e3
    );
    // One down interval, plus the scheduling of a loaded machine.
    assert!(
        worst <= MDI_B + Duration::from_millis(150),
        "a takeover took {worst:?}"
    );
    drop(b);
}

#[test]
fn reload_at_255_keeps_every_master_without_a_gap() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (ha, hb, client) = (lab.host("a"), lab.host("b"), lab.host("client"));
    let (a, b) = pair(&lab, "");
    wait_holder(ha, hb, N, 0, Duration::from_secs(20), &a.log_text());
    std::thread::sleep(Duration::from_millis(300));
    let watch = AdvertWatch::start(client).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // A harmless change for all (router_id) and a real one for VI_7 (its priority).
    let conf = render_with("many_a_reloaded", N, 150, ADV, "", |v| {
        if v == 7 {
            "    preempt_delay 2\n".into()
        } else {
            String::new()
        }
    });
    std::fs::write(ha.dir.join("vrrpd.conf"), conf).unwrap();
    let hup = Instant::now();
    kill(Pid::from_raw(a.pid() as i32), Signal::SIGHUP).unwrap();
    let end = hup + Duration::from_secs(2);
    while Instant::now() < end {
        assert_eq!(vips_held(ha), N, "a released VIPs during the reload");
        assert_eq!(vips_held(hb), 0, "b took VIPs during a's reload");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(a.log_text().contains("Reload complete"), "{}", a.log_text());
    let seen = watch.snapshot();
    assert!(
        !seen
            .iter()
            .any(|s| s.src == hb.v4 && s.at >= hup && s.priority > 0),
        "b advertised as Master during the reload"
    );
    let mut worst = Duration::ZERO;
    for (v, adverts) in by_vrid(&seen, ha.v4) {
        let times: Vec<Instant> = adverts.iter().map(|s| s.at).collect();
        for w in times.windows(2) {
            worst = worst.max(w[1] - w[0]);
        }
        assert!(
            times
                .last()
                .is_some_and(|t| *t + Duration::from_millis(300) > end),
            "VRID {v} stopped advertising"
        );
    }
    eprintln!(
        "longest gap between two adverts of one VRID around the reload: {:.1} ms",
        worst.as_secs_f64() * 1e3
    );
    // keepalived's reload leaves the normal interval; two intervals leave room for a loaded
    // machine, and none for a takeover (b's down interval is 361 ms).
    assert!(
        worst <= Duration::from_millis(200),
        "an advert gap of {worst:?}"
    );
    drop(b);
}

#[test]
fn sigterm_at_255_releases_every_address_route_and_rule() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (ha, hb) = (lab.host("a"), lab.host("b"));
    let b = Daemon::Vrrpd
        .start(hb, &render("many_b", N, 100, ADV, ""))
        .unwrap();
    // Every tenth instance also has a virtual route and a rule.
    let conf = render_with("many_a", N, 150, ADV, "", |v| {
        if v % 10 == 0 {
            format!(
                "    virtual_routes {{\n        203.0.113.{v}/32 dev eth0 table 100\n    }}\n    \
                 virtual_rules {{\n        from 203.0.113.{v}/32 table 100 priority {}\n    }}\n",
                1000 + v
            )
        } else {
            String::new()
        }
    });
    let mut a = Daemon::Vrrpd.start(ha, &conf).unwrap();
    wait_holder(ha, hb, N, 0, Duration::from_secs(20), &a.log_text());
    let routes = |h: &Host| {
        let o = h.exec("ip", &["route", "show", "table", "100"]).unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    let rules = |h: &Host| {
        let o = h.exec("ip", &["rule", "show"]).unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("lookup 100"))
            .count()
    };
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            routes(ha) == N / 10 && rules(ha) == N / 10
        }),
        "routes {} rules {}",
        routes(ha),
        rules(ha)
    );
    let t = Instant::now();
    let status = a.terminate_status(Duration::from_secs(10));
    let took = t.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        a.log_text()
    );
    eprintln!(
        "SIGTERM to exit with {N} instances: {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(vips_held(ha), 0, "VIPs left behind");
    assert_eq!(routes(ha), 0, "routes left behind");
    assert_eq!(rules(ha), 0, "rules left behind");
    assert!(
        !a.log_text().contains("did not release"),
        "{}",
        a.log_text()
    );
    // The priority-0 adverts hand everything over at once.
    wait_holder(ha, hb, 0, N, Duration::from_secs(5), &b.log_text());
    drop(b);
}

#[test]
fn runs_255_instances_under_1024_open_files() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (ha, hb) = (lab.host("a"), lab.host("b"));
    let one = Daemon::Vrrpd
        .start_nofile(ha, &render("one", 1, 150, ADV, ""), 1024)
        .unwrap();
    assert!(
        lab::wait_until(
            Duration::from_secs(10),
            Duration::from_millis(50),
            || vips_held(ha) == 1
        ),
        "{}",
        one.log_text()
    );
    let fds_one = lab::procstat::group_fds(one.pid());
    drop(one);
    let many = Daemon::Vrrpd
        .start_nofile(ha, &render("many", N, 150, ADV, ""), 1024)
        .unwrap();
    wait_holder(ha, hb, N, 0, Duration::from_secs(20), &many.log_text());
    let fds_many = lab::procstat::group_fds(many.pid());
    eprintln!("open descriptors: {fds_one} with 1 instance, {fds_many} with {N}");
    // Equal but for a transient one (a netlink dump, a script's pipe).
    assert!(
        fds_many <= fds_one + 2,
        "descriptors grow with the instances: {fds_one} -> {fds_many}"
    );
    // Each VIP is the one of its VRID.
    assert!(ha.has_addr(vip(N).parse().unwrap()));
}
