//! Many VRRP instances on one link (VRIDs 1..=N, one /32 VIP each, v3 every 100 ms), vrrpd on
//! both nodes, each under systemd's default soft limit of 1024 open files: every instance
//! elects; a SIGHUP with a harmless change keeps every Master (no advert gap beyond the
//! interval, no takeover); a crash moves all N within one Master_Down_Interval; SIGTERM
//! releases every address, route and rule before exit.
//!
//! CI runs N = 255 (one lab, one sequence). The same sequence at N = 16 and 64, and the
//! descriptor count at 1 against 255 instances, are ignored by default:
//!
//! ```text
//! cargo test -p vrrp-tests --test many_instances -- --ignored --test-threads=1
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lab::instbench::{render, render_with, vip, vips_held};
use lab::{require_root, AdvertSeen, AdvertWatch, Daemon, Host, Lab};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const ADV: f64 = 0.1;
/// b's Master_Down_Interval at priority 100: 3 × 100 ms + (256 − 100) / 256 × 100 ms.
const MDI_B: Duration = Duration::from_micros(360_938);
/// systemd's default soft open-files limit.
const NOFILE: u64 = 1024;

fn ready() -> bool {
    lab::e2e::available(&[Daemon::Vrrpd])
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

/// Routes in table 100 and the rules that look it up.
fn routes_and_rules(h: &Host) -> (usize, usize) {
    let count = |args: &[&str], pat: &str| {
        let o = h.exec("ip", args).unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains(pat))
            .count()
    };
    (
        count(&["route", "show", "table", "100"], "203.0.113."),
        count(&["rule", "show"], "lookup 100"),
    )
}

/// One test of this file at a time: each runs daemons of up to 255 instances, and the advert
/// gaps one measures must not be another's load on a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The whole sequence at `n` instances (see the module's description).
fn sequence(n: usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::builder().build().unwrap();
    let (ha, hb, client) = (lab.host("a"), lab.host("b"), lab.host("client"));
    // Every tenth instance of b also has a virtual route and a rule, for the stop.
    let cb = render_with("many_b", n, 100, ADV, "", |v| {
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
    let mut b = Daemon::Vrrpd.start_nofile(hb, &cb, NOFILE).unwrap();
    let mut a = Daemon::Vrrpd
        .start_nofile(ha, &render("many_a", n, 150, ADV, ""), NOFILE)
        .unwrap();

    // Every instance elects: a Master of every VRID at 150, b silent.
    wait_holder(ha, hb, n, 0, Duration::from_secs(30), &a.log_text());
    let watch = AdvertWatch::start(client).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let seen = watch.snapshot();
    let from_a = by_vrid(&seen, ha.v4);
    assert_eq!(from_a.len(), n, "VRIDs heard from a");
    assert!(from_a.values().flatten().all(|s| s.priority == 150));
    assert!(
        by_vrid(&seen, hb.v4).is_empty(),
        "b advertised while Backup"
    );
    let fds = lab::procstat::group_fds(a.pid());
    eprintln!("n={n}: a runs with {fds} open descriptors");
    // Per-instance sockets would need at least one each.
    assert!(fds < 64, "{fds} descriptors for {n} instances");

    // SIGHUP with a harmless change (router_id): no gap, no takeover.
    let conf = render("many_a_reloaded", n, 150, ADV, "");
    std::fs::write(ha.dir.join("vrrpd.conf"), conf).unwrap();
    let hup = Instant::now();
    kill(Pid::from_raw(a.pid() as i32), Signal::SIGHUP).unwrap();
    let end = hup + Duration::from_millis(1500);
    while Instant::now() < end {
        assert_eq!(vips_held(ha), n, "a released VIPs during the reload");
        assert_eq!(vips_held(hb), 0, "b took VIPs during a's reload");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(20), || a
            .log_text()
            .contains("Reload complete")),
        "{}",
        a.log_text()
    );
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
        "n={n}: longest gap between two adverts of one VRID around the reload: {:.1} ms",
        worst.as_secs_f64() * 1e3
    );
    // keepalived's reload leaves the normal interval; two and a half intervals leave room for
    // a loaded machine (201.7 ms once with another test running beside it; ~104 ms alone),
    // and none for a takeover (b's down interval is 361 ms).
    assert!(
        worst <= Duration::from_millis(250),
        "an advert gap of {worst:?}"
    );

    // a crashes: b takes every VRID over within its down interval after a's last advert.
    let crash = Instant::now();
    lab::e2e::crash(&mut a, ha).unwrap();
    wait_holder(ha, hb, n, n, Duration::from_secs(10), &b.log_text());
    std::thread::sleep(Duration::from_millis(200));
    let seen = watch.snapshot();
    drop(watch);
    let (from_a, from_b) = (by_vrid(&seen, ha.v4), by_vrid(&seen, hb.v4));
    let mut worst = Duration::ZERO;
    for v in 1..=n as u8 {
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
        "n={n}: slowest takeover {:.1} ms after a's last advert (down interval {:.1} ms)",
        worst.as_secs_f64() * 1e3,
        MDI_B.as_secs_f64() * 1e3
    );
    // One down interval, plus the scheduling of a loaded machine.
    assert!(
        worst <= MDI_B + Duration::from_millis(150),
        "a takeover took {worst:?}"
    );

    // SIGTERM to b, Master of everything: every address, route and rule goes before it exits.
    let with_routes = n / 10;
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            routes_and_rules(hb) == (with_routes, with_routes)
        }),
        "routes and rules: {:?}",
        routes_and_rules(hb)
    );
    let t = Instant::now();
    let status = b.terminate_status(Duration::from_secs(10));
    let took = t.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        b.log_text()
    );
    eprintln!("n={n}: SIGTERM to exit {:.1} ms", took.as_secs_f64() * 1e3);
    assert_eq!(vips_held(hb), 0, "VIPs left behind");
    assert_eq!(routes_and_rules(hb), (0, 0), "routes or rules left behind");
    assert!(
        !b.log_text().contains("did not release"),
        "{}",
        b.log_text()
    );
}

#[test]
fn at_255_elect_reload_crash_and_stop() {
    require_root!();
    if ready() {
        sequence(255);
    }
}

#[test]
#[ignore = "the CI runs 255; see the module's description"]
fn at_16_elect_reload_crash_and_stop() {
    require_root!();
    if ready() {
        sequence(16);
    }
}

#[test]
#[ignore = "the CI runs 255; see the module's description"]
fn at_64_elect_reload_crash_and_stop() {
    require_root!();
    if ready() {
        sequence(64);
    }
}

/// The descriptors a daemon holds do not grow with its instances.
#[test]
#[ignore = "the CI test bounds the count at 255; see the module's description"]
fn descriptors_at_1_and_255_instances_are_the_same() {
    require_root!();
    if !ready() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::builder().build().unwrap();
    let (ha, hb) = (lab.host("a"), lab.host("b"));
    let one = Daemon::Vrrpd
        .start_nofile(ha, &render("one", 1, 150, ADV, ""), NOFILE)
        .unwrap();
    wait_holder(ha, hb, 1, 0, Duration::from_secs(10), &one.log_text());
    let fds_one = lab::procstat::group_fds(one.pid());
    drop(one);
    let many = Daemon::Vrrpd
        .start_nofile(ha, &render("many", 255, 150, ADV, ""), NOFILE)
        .unwrap();
    wait_holder(ha, hb, 255, 0, Duration::from_secs(30), &many.log_text());
    let fds_many = lab::procstat::group_fds(many.pid());
    eprintln!("open descriptors: {fds_one} with 1 instance, {fds_many} with 255");
    // Equal but for a transient one (a netlink dump, a script's pipe).
    assert!(
        fds_many <= fds_one + 2,
        "descriptors grow with the instances: {fds_one} -> {fds_many}"
    );
    assert!(ha.has_addr(vip(255).parse().unwrap()));
}

/// The smallest soft open-files limit vrrpd runs `n` instances under (all VIPs held), scanning
/// up from 8; every limit it cannot run under must end it with a message that says descriptors
/// ran out (never a misleading one, as `interface eth0 not found` was).
fn smallest_limit(ha: &Host, hb: &Host, n: usize) -> u64 {
    let conf = render("limit", n, 150, ADV, "");
    for limit in 8..=64 {
        let mut d = Daemon::Vrrpd.start_nofile(ha, &conf, limit).unwrap();
        let mut exited = false;
        let held = lab::wait_until(Duration::from_secs(30), Duration::from_millis(20), || {
            exited = !d.is_running();
            exited || vips_held(ha) == n
        });
        assert!(
            held,
            "limit {limit}: neither ran nor exited\n{}",
            d.log_text()
        );
        if !exited {
            wait_holder(ha, hb, n, 0, Duration::from_secs(1), &d.log_text());
            assert!(d.terminate(Duration::from_secs(10)), "{}", d.log_text());
            assert_eq!(vips_held(ha), 0, "VIPs left behind");
            return limit;
        }
        let log = d.log_text();
        assert!(
            log.contains("Too many open files") || log.contains("out of file descriptors"),
            "limit {limit}: the exit does not say descriptors ran out\n{log}"
        );
        assert!(
            !log.contains("not found"),
            "limit {limit}: misleading\n{log}"
        );
    }
    panic!("{n} instances do not run under an open-files limit of 64");
}

/// A descriptor shortage is reported as one, and what vrrpd needs does not grow with its
/// instances: 255 start under the same smallest limit as 1.
#[test]
fn descriptor_shortage_is_reported_and_the_need_is_independent_of_n() {
    require_root!();
    if !ready() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::builder().build().unwrap();
    let (ha, hb) = (lab.host("a"), lab.host("b"));
    let one = smallest_limit(ha, hb, 1);
    let many = smallest_limit(ha, hb, 255);
    eprintln!("smallest soft open-files limit: {one} with 1 instance, {many} with 255");
    assert_eq!(one, many, "the descriptors needed grow with the instances");
}
