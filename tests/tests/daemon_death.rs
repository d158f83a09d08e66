//! The process running the VRRP instances is SIGKILLed alone (as the OOM killer does; the
//! host and the daemon's main process live on). vrrpd's supervisor hands over for it at once:
//! priority-0 adverts from the dead node, its address, route and rule removed, so the peer
//! takes over after its Skew_Time, then the daemon is started again as Backup. keepalived, the
//! reference, respawns its VRRP child without a word: the peer waits Master_Down_Interval.
//!
//! Timing is the bench's business (`vrrp-lab bench failover --scenarios kill-vrrp`); these
//! tests assert who holds what and what was said on the wire.

use std::time::{Duration, Instant};

use lab::e2e::{self, node, VIP4};
use lab::{require_root, wait_until, AdvertWatch, Daemon, HolderWatch, Host, Lab};

const ROUTE: &str = "virtual_routes {
        203.0.113.0/24 via 192.0.2.254 dev eth0
    }
    virtual_rules {
        from 198.51.100.0/24 table 100 priority 100
    }";

/// (virtual route, virtual rule) present on `host`.
fn route_and_rule(host: &Host) -> (bool, bool) {
    (
        host.ip_text(&["route", "show"])
            .lines()
            .any(|l| l.starts_with("203.0.113.0/24 via 192.0.2.254")),
        host.ip_text(&["rule", "show"])
            .lines()
            .any(|l| l.starts_with("100:\tfrom 198.51.100.0/24 lookup 100")),
    )
}

/// a (150, nopreempt: what b takes it keeps) Master with `extra` in its instance, b (100).
fn pair(d: Daemon, extra: Option<&str>) -> (lab::scenario::Pair, AdvertWatch) {
    let lab = Lab::builder().build().unwrap();
    let watch = AdvertWatch::start(lab.host("client")).unwrap();
    let mut ca = node("a", 150, 3, 0.1, VIP4);
    ca.nopreempt = true;
    ca.extra_instance = extra.map(str::to_string);
    let cb = node("b", 100, 3, 0.1, VIP4);
    let mut pair = e2e::master_then_backup(lab, d, &ca, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    (pair, watch)
}

#[test]
fn vrrpd_hands_over_for_its_killed_vrrp_process_then_restarts_it_as_backup() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let (mut pair, watch) = pair(Daemon::Vrrpd, Some(ROUTE));
    let (a, b) = (pair.lab.host("a").clone(), pair.lab.host("b").clone());
    assert_eq!(route_and_rule(&a), (true, true), "{}", pair.a.log_text());
    let holders = HolderWatch::start(&[&a, &b], pair.vip, Duration::from_millis(2)).unwrap();

    let killed_at = Instant::now();
    let old = pair.a.kill_vrrp().unwrap();
    pair.wait_master("b", Duration::from_secs(3)).unwrap();

    // The dead process said nothing; its supervisor did, for it.
    let zero = watch.first_after(killed_at, |x| x.src == a.v4 && x.priority == 0);
    assert!(zero.is_some(), "no priority-0 advert from a after the kill");
    // b took over on that advert: it was never Master alongside a.
    let b_first = watch
        .first_after(killed_at, |x| x.src == b.v4)
        .expect("b's adverts");
    assert!(zero.unwrap().at < b_first.at);
    let a_gone = holders
        .first("a", false, killed_at)
        .expect("a let the VIP go");
    assert!(a_gone <= b_first.at, "a held the VIP when b took over");
    assert_eq!(
        route_and_rule(&a),
        (false, false),
        "route and rule left on a"
    );

    // Started again, as Backup, counted; the main process never stopped.
    let new = pair.a.vrrp_pid(Some(old), Duration::from_secs(5)).unwrap();
    assert!(pair.a.is_running());
    let restarted = || {
        let log = pair.a.log_text();
        log.contains("starting as BACKUP")
            && log.rfind("Entering BACKUP STATE") > log.find("Respawning")
    };
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), restarted),
        "{}",
        pair.a.log_text()
    );
    let (dump, extra) = e2e::json_dumps(&pair.a).unwrap();
    assert_eq!(dump[0]["data"]["state"], 1, "keepalived's BACKUP: {dump:#}");
    let record = &extra["supervision"]["components"]["vrrp child process"];
    assert_eq!(record["restarts"], 1, "{extra:#}");
    assert!(
        record["last_failure"]
            .as_str()
            .is_some_and(|w| w.contains("SIGKILL")),
        "{extra:#}"
    );
    assert!(pair.a.log_text().contains(&format!(
        "VRRP child {old} is gone; released 1 instance(s) for it"
    )));

    // Killed again while Backup: nothing of its to release, b is left alone.
    let again = Instant::now();
    pair.a.kill_vrrp().unwrap();
    pair.a.vrrp_pid(Some(new), Duration::from_secs(5)).unwrap();
    e2e::holds_for(&pair, "b", Duration::from_millis(500)).unwrap();
    assert!(
        watch
            .first_after(again, |x| x.src == a.v4 && x.priority == 0)
            .is_none(),
        "a Backup's death is not a handover"
    );
}

/// The reference: keepalived 2.2.7's parent respawns the killed VRRP child (which removes the
/// VIP as it starts), but nobody tells the peer: no priority-0 advert, and the next Master (b,
/// or a's new child if its timer runs out first) comes only after a Master_Down_Interval.
#[test]
fn keepalived_respawns_its_killed_vrrp_child_without_a_handover() {
    require_root!();
    if !e2e::available(&[Daemon::Keepalived]) {
        return;
    }
    let (pair, watch) = pair(Daemon::Keepalived, None);
    let a = pair.lab.host("a").clone();
    let killed_at = Instant::now();
    let old = pair.a.kill_vrrp().unwrap();
    pair.a.vrrp_pid(Some(old), Duration::from_secs(5)).unwrap();
    let last = watch
        .last_before(killed_at, |x| x.src == a.v4)
        .expect("a's adverts before the kill");
    let next = watch
        .wait_for(killed_at, Duration::from_secs(3), |x| x.priority > 0)
        .expect("a Master again");
    assert!(
        watch
            .first_after(killed_at, |x| x.src == a.v4 && x.priority == 0)
            .is_none(),
        "keepalived sent a priority-0 advert"
    );
    // Three advert intervals at least: the down timer ran out, nobody handed over. (A lower
    // bound: load can only make it later.)
    let silence = next.at - last.at;
    assert!(silence >= Duration::from_millis(300), "{silence:?}");
    eprintln!(
        "keepalived: next Master {} after {silence:?} of silence",
        next.src
    );
}
