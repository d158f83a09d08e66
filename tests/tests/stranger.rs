//! A stranger on our VRID (issue 18, item 1): another cluster misconfigured with our VRID and
//! another address list on the same segment, or crafted adverts. RFC 3768 / RFC 5798 §7.1 say a
//! receiver MUST drop an advert whose address list is not its own (unless it comes from the
//! address owner); keepalived 2.2.7 drops every such advert, priority 255 and 0 included, and
//! counts it as an Address List error. vrrpd must keep its VIP exactly as keepalived does:
//! keepalived runs first as the reference, then vrrpd, with keepalived and vrrpd as the stranger.
//!
//! Lab: our pair a (.1, 150) and b (.2, 100) with VIP .100, the stranger s (.3) with VIP .200,
//! VRRPv3 at 0.1 s, VRID 51 everywhere.

use std::time::{Duration, Instant};

use lab::adverts::{AdvertSender, AdvertWatch};
use lab::e2e::{self, node, VIP4};
use lab::scenario::Pair;
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab, NodeConf};
use nix::sys::signal::Signal;
use vrrp_proto::packet::{Advert, Auth, Version};

const STRANGER_VIP: &str = "192.0.2.200/24";

fn lab() -> Lab {
    Lab::builder()
        .host("a", "192.0.2.1/24", "2001:db8::1/64")
        .host("b", "192.0.2.2/24", "2001:db8::2/64")
        .host("s", "192.0.2.3/24", "2001:db8::3/64")
        .host("client", "192.0.2.50/24", "2001:db8::50/64")
        .build()
        .unwrap()
}

/// Our pair of `d` with `version` and `advert_int`, a Master.
fn our_pair(d: Daemon, version: u8, advert_int: f64) -> Pair {
    our_pair_with(d, version, advert_int, None)
}

/// [`our_pair`] with `global` in both nodes' `global_defs`.
fn our_pair_with(d: Daemon, version: u8, advert_int: f64, global: Option<&str>) -> Pair {
    let (mut ca, mut cb) = (
        node("a", 150, version, advert_int, VIP4),
        node("b", 100, version, advert_int, VIP4),
    );
    ca.extra_global = global.map(String::from);
    cb.extra_global = global.map(String::from);
    let mut pair = e2e::start_pair(lab(), d, &ca, d, &cb).unwrap();
    let wait = Duration::from_secs_f64(advert_int * 4.0 + 3.0);
    pair.wait_master("a", wait).unwrap();
    // Settled: b may still become Master for a moment at start-up, when its down timer fires
    // before a's first advert reaches it (keepalived 2.2.7 does, a few hundred ms in), which
    // would also count in a's stats.
    let window = Duration::from_secs_f64((advert_int * 2.0).max(1.0));
    let settled = wait_until(Duration::from_secs(8), Duration::ZERO, || {
        e2e::longest_loss(&pair, "a", window, || false).0.is_zero()
    });
    assert!(settled, "{d}: a never stayed Master alone");
    pair
}

/// The stranger: `d` on s with our VRID, its own VIP and `prio`, Master of its own list.
fn start_stranger(pair: &Pair, d: Daemon, prio: u8) -> lab::DaemonProc {
    let conf: NodeConf = node("s", prio, 3, 0.1, STRANGER_VIP);
    let s = d.start(pair.lab.host("s"), &conf.render()).unwrap();
    let host = pair.lab.host("s").clone();
    assert!(
        wait_until(Duration::from_secs(4), Duration::from_millis(10), || {
            host.has_addr(e2e::addr(STRANGER_VIP))
        }),
        "stranger {d} never took its own VIP\n{}",
        s.log_text()
    );
    s
}

/// Stranger above our Master (200): our Master must keep the VIP all along.
fn stranger_above(ours: Daemon, theirs: Daemon) {
    let pair = our_pair(ours, 3, 0.1);
    let s = start_stranger(&pair, theirs, 200);
    let (lost, seen) = e2e::longest_loss(&pair, "a", Duration::from_secs(2), || false);
    eprintln!("{ours} pair, {theirs} stranger at 200: VIP not on a alone for {lost:?} {seen:?}");
    // keepalived's own pair, as the reference, is held to what the stranger could break: a
    // never without the VIP. On a loaded machine its Backup sometimes takes over for a moment
    // with the stranger present (its log: `Entering MASTER STATE`, then back to BACKUP on a's
    // next advert), so "both" is allowed there; vrrpd's pair must keep the VIP on a alone.
    if ours == Daemon::Keepalived && seen.iter().all(|m| *m == Some("both")) {
        return;
    }
    assert_eq!(
        lost,
        Duration::ZERO,
        "{ours} pair, {theirs} stranger at 200: holders {seen:?}\na log:\n{}\nb log:\n{}\n\
         stranger log:\n{}",
        pair.a.log_text(),
        pair.b.log_text(),
        s.log_text()
    );
}

/// Stranger between our nodes (120): when our Master dies, our Backup must take over.
fn stranger_between(ours: Daemon, theirs: Daemon) {
    let mut pair = our_pair(ours, 3, 0.1);
    let _s = start_stranger(&pair, theirs, 120);
    let a = pair.lab.host("a").clone();
    e2e::crash(&mut pair.a, &a).unwrap();
    let t0 = Instant::now();
    let b = pair.lab.host("b").clone();
    let took = wait_until(Duration::from_secs(3), Duration::from_millis(5), || {
        b.has_addr(pair.vip)
    });
    let after = t0.elapsed();
    eprintln!("{ours} pair, {theirs} stranger at 120: b holds the VIP {after:?} after a's crash");
    assert!(
        took,
        "{ours} pair, {theirs} stranger at 120: b never took over\nb log:\n{}",
        pair.b.log_text()
    );
}

/// (our pair, the stranger): keepalived's as the reference, then vrrpd with either stranger.
const PAIRINGS: [(Daemon, Daemon); 3] = [
    (Daemon::Keepalived, Daemon::Keepalived),
    (Daemon::Vrrpd, Daemon::Keepalived),
    (Daemon::Vrrpd, Daemon::Vrrpd),
];

#[test]
fn a_stranger_with_another_list_never_takes_our_vip() {
    require_root!();
    for (ours, theirs) in PAIRINGS {
        if !e2e::available(&[ours, theirs]) {
            continue;
        }
        stranger_above(ours, theirs);
    }
}

#[test]
fn a_stranger_between_our_priorities_does_not_stop_our_takeover() {
    require_root!();
    for (ours, theirs) in PAIRINGS {
        if !e2e::available(&[ours, theirs]) {
            continue;
        }
        stranger_between(ours, theirs);
    }
}

/// One crafted advert, sent repeatedly from s.
struct Crafted {
    name: &'static str,
    priority: u8,
    addrs: &'static [&'static str],
    /// keepalived counts a list of the right length as a received advert too.
    counts_as_received: bool,
}

const V3_CASES: [Crafted; 5] = [
    Crafted {
        name: "count 2",
        priority: 200,
        addrs: &["192.0.2.100", "192.0.2.200"],
        counts_as_received: false,
    },
    Crafted {
        name: "owner without address",
        priority: 255,
        addrs: &[],
        counts_as_received: false,
    },
    Crafted {
        name: "wrong list at 200",
        priority: 200,
        addrs: &["192.0.2.200"],
        counts_as_received: true,
    },
    Crafted {
        name: "wrong list at 255",
        priority: 255,
        addrs: &["192.0.2.200"],
        counts_as_received: true,
    },
    Crafted {
        name: "priority 0, wrong list",
        priority: 0,
        addrs: &["192.0.2.200"],
        counts_as_received: true,
    },
];

const V2_CASE: Crafted = Crafted {
    name: "v2, wrong list at 200",
    priority: 200,
    addrs: &["192.0.2.200"],
    counts_as_received: true,
};

/// How many copies of each crafted advert are sent, 20 ms apart.
const COPIES: u64 = 20;

/// a's stats, by "Section/Field".
fn stats(pair: &Pair) -> std::collections::BTreeMap<String, u64> {
    let text = e2e::signal_dump(&pair.a, Signal::SIGUSR2).unwrap();
    e2e::parse_stats(&text)
        .remove("VI_51")
        .unwrap_or_else(|| panic!("no VI_51 in\n{text}"))
}

/// What a flood of one crafted advert did, from a's stats and the wire.
#[derive(Debug)]
struct Outcome {
    /// Growth of a's Address List and Received counters.
    address_list: u64,
    received: u64,
    /// Adverts b sent meanwhile (it took over for a moment).
    from_b: u64,
}

/// Sends `COPIES` of `case` to `pair` (whose adverts are `version` at `interval_cs`), checks
/// that a kept the VIP all along, and says what else happened.
fn craft(pair: &Pair, version: Version, interval_cs: u16, case: &Crafted) -> Outcome {
    let d = pair.a.daemon;
    let sender = AdvertSender::open(pair.lab.host("s")).unwrap();
    let advert = Advert {
        version,
        vrid: 51,
        priority: case.priority,
        max_adver_int: interval_cs,
        addrs: case.addrs.iter().map(|a| a.parse().unwrap()).collect(),
        auth: Auth::None,
    };
    let watch = AdvertWatch::start(pair.lab.host("client")).unwrap();
    let from = Instant::now();
    let before = stats(pair);
    let mut sent = 0;
    let mut next = Instant::now();
    let (lost, seen) = e2e::longest_loss(pair, "a", Duration::from_secs(5), || {
        while sent < COPIES && Instant::now() >= next {
            sender.send_advert(&advert).unwrap();
            sent += 1;
            next += Duration::from_millis(20);
        }
        sent == COPIES
    });
    // What the last copies did, if anything, shows at once on a, within b's Skew_Time (a
    // priority-0 advert) on b.
    let down = Duration::from_millis(u64::from(interval_cs) * 10 + 100);
    let (after_lost, after_seen) = e2e::longest_loss(pair, "a", down, || false);
    let after = stats(pair);
    let until = Instant::now();
    let b = pair.lab.host("b").v4;
    let from_b = watch
        .snapshot()
        .iter()
        .filter(|x| x.src == b && x.at > from && x.at < until)
        .count() as u64;
    let grew = |k: &str| after[k] - before[k];
    let out = Outcome {
        address_list: grew("Packet Errors/Address List"),
        received: grew("Advertisements/Received"),
        from_b,
    };
    eprintln!(
        "{d}: {:<24} {out:?}, VIP not on a alone for {:?} {seen:?}",
        case.name,
        lost.max(after_lost)
    );
    // a never loses the VIP; b may add it for a moment only when it takes over (keepalived).
    let a_lost = seen.iter().chain(&after_seen).any(|h| *h != Some("both"));
    assert!(
        !a_lost && (from_b > 0 || lost.max(after_lost).is_zero()),
        "{d}: {}: holders {seen:?} {after_seen:?}\n{}",
        case.name,
        pair.a.log_text()
    );
    out
}

#[test]
fn crafted_adverts_with_another_list_are_dropped_and_counted_like_keepalived() {
    require_root!();
    for d in [Daemon::Keepalived, Daemon::Vrrpd] {
        if !e2e::available(&[d]) {
            continue;
        }
        let check = |case: &Crafted, out: &Outcome| {
            assert_eq!(out.address_list, COPIES, "{d}: {}: Address List", case.name);
            let want = if case.counts_as_received { COPIES } else { 0 };
            // keepalived 2.2.7's Backup sometimes takes over for a moment during such a flood
            // (measured: in 3 to 5 floods of 6, one advert each), and a counts b's adverts as
            // received too (those seen around the stats dumps: at most `from_b`); vrrpd's
            // Backup never does.
            let got = out.received;
            match d {
                Daemon::Vrrpd => {
                    assert_eq!(out.from_b, 0, "{d}: {}: b adverted", case.name);
                    assert_eq!(got, want, "{d}: {}: Received", case.name);
                }
                Daemon::Keepalived => assert!(
                    (want..=want + out.from_b).contains(&got),
                    "{d}: {}: Received {got}, want {want} + up to {} of b's",
                    case.name,
                    out.from_b
                ),
            }
        };
        let pair = our_pair(d, 3, 0.1);
        for case in &V3_CASES {
            check(case, &craft(&pair, Version::V3, 10, case));
        }
        drop(pair);
        let pair = our_pair(d, 2, 1.0);
        check(&V2_CASE, &craft(&pair, Version::V2, 100, &V2_CASE));
    }
}

/// What `node`'s IPv4 VRRP socket on eth0 received (`vrrpd status --json`).
fn socket_counters(pair: &Pair, node: &str) -> serde_json::Value {
    let ctl = pair.lab.host(node).dir.join("vrrpd.ctl");
    let status: serde_json::Value =
        serde_json::from_str(&e2e::ask(&ctl, &["status", "--json"])).expect("JSON");
    status["sockets"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["interface"] == "eth0" && s["family"] == "ipv4")
        })
        .unwrap_or_else(|| panic!("{node}: no eth0 ipv4 socket in {status}"))
        .clone()
}

/// Adverts for a VRID nobody here runs, and packets too short to name one, are dropped and
/// counted on the socket they came in on (keepalived only logs the first kind, with
/// `log_unknown_vrids`, as here), by the Master, which reads at once, and by the Backup, which
/// reads in gathered batches; neither moves.
#[test]
fn unknown_vrids_and_runts_are_counted_on_their_socket() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let pair = our_pair_with(Daemon::Vrrpd, 3, 0.1, Some("    log_unknown_vrids\n"));
    let sender = AdvertSender::open(pair.lab.host("s")).unwrap();
    let foreign = Advert {
        version: Version::V3,
        vrid: 77,
        priority: 200,
        max_adver_int: 10,
        addrs: vec!["192.0.2.77".parse().unwrap()],
        auth: Auth::None,
    };
    let before = [socket_counters(&pair, "a"), socket_counters(&pair, "b")];
    for _ in 0..COPIES {
        sender.send_advert(&foreign).unwrap();
        // A VRRP version/type byte and nothing else: no VRID to look up.
        sender.send(&[0x31]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let (lost, seen) = e2e::longest_loss(&pair, "a", Duration::from_millis(300), || false);
    assert!(lost.is_zero(), "a lost the VIP: {seen:?}");
    for (node, before) in ["a", "b"].into_iter().zip(before) {
        let after = socket_counters(&pair, node);
        let grew = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
        assert_eq!(grew("unknown_vrid"), COPIES, "{node}: {before} -> {after}");
        assert_eq!(grew("refused"), COPIES, "{node}: {before} -> {after}");
        assert!(grew("packets") >= 2 * COPIES, "{node}: {before} -> {after}");
        assert!(
            (1..=grew("packets")).contains(&grew("reads")),
            "{node}: {before} -> {after}"
        );
    }
    // keepalived's line for each, with `log_unknown_vrids`.
    let line = "Unknown VRID(77) received on interface(eth0). ignoring...";
    for d in [&pair.a, &pair.b] {
        let logged = d.log_text().matches(line).count() as u64;
        assert_eq!(logged, COPIES, "{}: {line}\n{}", d.host, d.log_text());
    }
}
