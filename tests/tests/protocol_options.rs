//! Protocol options that deviate from the RFCs on purpose, as keepalived offers them:
//! `down_timer_adverts` (Master_Down_Interval in advert intervals) and
//! `higher_prio_send_advert` (a Master hearing a better one adverts once more before it steps
//! down; vrrpd's default). keepalived 2.2.7 first, as the reference, then vrrpd.

use std::time::{Duration, Instant};

use lab::adverts::AdvertWatch;
use lab::e2e::{self, node, VIP4};
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab};

const BOTH: [Daemon; 2] = [Daemon::Keepalived, Daemon::Vrrpd];

/// With `down_timer_adverts 10` at 0.1 s adverts the Backup waits 10 intervals plus Skew_Time
/// (1.06 s at priority 100) after the Master's last advert, not 3 (0.36 s).
#[test]
fn down_timer_adverts_stretches_the_takeover() {
    require_root!();
    for d in BOTH {
        if !e2e::available(&[d]) {
            continue;
        }
        let lab = Lab::builder().build().unwrap();
        let watch = AdvertWatch::start(lab.host("b")).unwrap();
        let (mut ca, mut cb) = (node("a", 150, 3, 0.1, VIP4), node("b", 100, 3, 0.1, VIP4));
        for c in [&mut ca, &mut cb] {
            c.extra_instance = Some("down_timer_adverts 10".into());
        }
        let mut pair = e2e::start_pair(lab, d, &ca, d, &cb).unwrap();
        pair.wait_master("a", Duration::from_secs(5)).unwrap();
        let a = pair.lab.host("a").clone();
        e2e::crash(&mut pair.a, &a).unwrap();
        let cut = Instant::now();
        let took = watch
            .wait_for(cut, Duration::from_secs(5), |x| x.priority == 100)
            .unwrap_or_else(|| panic!("{d}: b never took over\n{}", pair.b.log_text()));
        let last_a = watch
            .last_before(took.at, |x| x.priority == 150)
            .expect("an advert from a");
        let gap = took.at - last_a.at;
        eprintln!("{d}: b's first advert {gap:?} after a's last");
        // 1.06 s by the book; 3 intervals would be 0.36 s.
        assert!(
            gap >= Duration::from_millis(950),
            "{d}: b took over after {gap:?}"
        );
        assert!(
            gap <= Duration::from_millis(1600),
            "{d}: b took over after {gap:?}"
        );
    }
}

/// b is Master alone, then a (higher priority) starts and takes over: with
/// `higher_prio_send_advert` b adverts once more after a's first advert; without it keepalived
/// never does, vrrpd still does (on by default, so that a split brain heals in either order;
/// off only under `strict_mode`).
#[test]
fn higher_prio_send_advert_answers_the_new_master_once() {
    require_root!();
    for d in BOTH {
        if !e2e::available(&[d]) {
            continue;
        }
        for on in [false, true] {
            let lab = Lab::builder().build().unwrap();
            let watch = AdvertWatch::start(lab.host("a")).unwrap();
            // 1 s adverts (v2): b's own timer stays out of the way of the answer.
            let (ca, mut cb) = (node("a", 150, 2, 1.0, VIP4), node("b", 100, 2, 1.0, VIP4));
            if on {
                cb.extra_instance = Some("higher_prio_send_advert".into());
            }
            let b_proc = d.start(lab.host("b"), &cb.render()).unwrap();
            let b_host = lab.host("b").clone();
            assert!(
                wait_until(Duration::from_secs(6), Duration::from_millis(20), || b_host
                    .has_addr(e2e::addr(VIP4))),
                "{d}: b alone never became Master\n{}",
                b_proc.log_text()
            );
            let a_proc = d.start(lab.host("a"), &ca.render()).unwrap();
            let first_a = watch
                .wait_for(Instant::now(), Duration::from_secs(8), |x| {
                    x.priority == 150
                })
                .unwrap_or_else(|| panic!("{d}: a never adverted\n{}", a_proc.log_text()));
            std::thread::sleep(Duration::from_millis(1500));
            let answers = watch
                .snapshot()
                .into_iter()
                .filter(|x| x.priority == 100 && x.at > first_a.at)
                .count();
            eprintln!(
                "{d}: higher_prio_send_advert {on}: {answers} adverts from b after a's first"
            );
            // vrrpd answers whatever the option says (tests/tests/split_brain.rs says why).
            let want = if d == Daemon::Vrrpd {
                1
            } else {
                usize::from(on)
            };
            assert_eq!(
                answers,
                want,
                "{d}, higher_prio_send_advert {on}\n{}",
                b_proc.log_text()
            );
            drop((a_proc, b_proc));
        }
    }
}

/// A unicast pair where b's adverts come from an address a does not list as a peer: keepalived
/// takes them anyway (a stays Backup); with `check_unicast_src` a drops them ("not a unicast
/// peer") and so is Master too.
#[test]
fn check_unicast_src_drops_adverts_from_unlisted_sources() {
    require_root!();
    for d in BOTH {
        if !e2e::available(&[d]) {
            continue;
        }
        for check in [false, true] {
            let lab = Lab::builder().build().unwrap();
            let (mut ca, mut cb) = (node("a", 100, 3, 0.1, VIP4), node("b", 150, 3, 0.1, VIP4));
            ca.unicast_peers = vec!["192.0.2.9".into()];
            cb.unicast_peers = vec!["192.0.2.1".into()];
            if check {
                ca.extra_instance = Some("check_unicast_src".into());
            }
            let pair = e2e::start_pair(lab, d, &ca, d, &cb).unwrap();
            let (a, b) = (pair.lab.host("a").clone(), pair.lab.host("b").clone());
            let vip = e2e::addr(VIP4);
            assert!(
                wait_until(Duration::from_secs(5), Duration::from_millis(10), || b
                    .has_addr(vip)),
                "{d}: b is not Master\n{}",
                pair.b.log_text()
            );
            // a has had more than a Master_Down_Interval to make up its mind.
            std::thread::sleep(Duration::from_millis(1000));
            assert_eq!(
                a.has_addr(vip),
                check,
                "{d}, check_unicast_src {check}: a's VIP\n{}",
                pair.a.log_text()
            );
            if d == Daemon::Vrrpd && check {
                let v = e2e::json_dump(&pair.a).unwrap();
                let n = &v[0]["vrrpd"]["counters"]["drops"]
                    ["unicast source address is not a unicast peer"];
                assert!(n.as_u64().unwrap_or(0) >= 5, "{v}");
            }
        }
    }
}

/// Adverts whose address list differs from ours: both daemons log keepalived's "ip address
/// associated with VRID 51 not present in MASTER advert: 192.0.2.100", drop them (RFC 3768
/// §7.1; see tests/tests/stranger.rs for the whole story) and so become Master of their own
/// list, and count them in the SIGUSR2 stats' "Address List" line.
#[test]
fn address_list_mismatch_is_logged_dropped_and_counted() {
    require_root!();
    for d in BOTH {
        if !e2e::available(&[d]) {
            continue;
        }
        let lab = Lab::builder().build().unwrap();
        let (ca, cb) = (
            node("a", 100, 3, 0.1, VIP4),
            node("b", 150, 3, 0.1, "192.0.2.101/24"),
        );
        let (a, b) = (lab.host("a").clone(), lab.host("b").clone());
        let b_proc = d.start(&b, &cb.render()).unwrap();
        assert!(
            wait_until(Duration::from_secs(5), Duration::from_millis(10), || b
                .has_addr(e2e::addr("192.0.2.101/24"))),
            "{d}: b is not Master\n{}",
            b_proc.log_text()
        );
        let a_proc = d.start(&a, &ca.render()).unwrap();
        assert!(
            wait_until(Duration::from_secs(3), Duration::from_millis(10), || a
                .has_addr(e2e::addr(VIP4))),
            "{d}: a followed b\n{}",
            a_proc.log_text()
        );
        // a drops each of b's adverts while Backup (so becomes Master after three) and after.
        // Not keepalived 2.2.7's Master: two of its Masters at the same interval each reset
        // their advert timer on the other's adverts and one falls silent (measured: b sent 4
        // adverts to a's 50 in 5 s), so a may hear only the three.
        let want = if d == Daemon::Keepalived { 3 } else { 8 };
        let mut stats = String::new();
        let counted = wait_until(Duration::from_secs(5), Duration::from_millis(200), || {
            stats = e2e::signal_dump(&a_proc, nix::sys::signal::Signal::SIGUSR2).unwrap();
            e2e::parse_stats(&stats)["VI_51"]["Packet Errors/Address List"] >= want
        });
        assert!(counted, "{d}: {stats}");
        assert!(
            a_proc.log_text().contains(
                "(VI_51) ip address associated with VRID 51 not present in MASTER advert: 192.0.2.100"
            ),
            "{d}\n{}",
            a_proc.log_text()
        );
        drop((a_proc, b_proc));
    }
}
