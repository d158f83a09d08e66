//! Property tests of the VRRP state machine, sync groups and reloads on the deterministic
//! simulator.
//!
//! Each property runs over many seeds; a failure names its seed, and `Sim` replays it exactly.
//! Scenario parameters (node count, priorities, intervals, delays, loss, events) are drawn
//! from a separate RNG seeded with the same seed.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vrrp_proto::fsm::{Config, State};
use vrrp_proto::instance;
use vrrp_proto::packet::{Auth, Version};
use vrrp_proto::sim::{self, LinkParams, Sim};
use vrrp_proto::track::{Contribution, TrackKey};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));

fn cs(v: u16) -> Duration {
    Duration::from_millis(u64::from(v) * 10)
}

fn cfg(i: usize, version: Version, priority: u8, advert_int: u16, preempt: bool) -> Config {
    Config {
        vrid: 51,
        version,
        priority,
        advert_int,
        preempt,
        preempt_delay: Duration::ZERO,
        start_master: false,
        primary_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i as u8)),
        vips: vec![VIP],
        auth: Auth::None,
        lower_prio_no_advert: false,
        answer_before_stepping_down: true,
        down_timer_adverts: 3,
        skip_check_adv_addr: false,
    }
}

/// Random configurations: 2..=max_nodes nodes, priorities from a small set (ties likely, 255
/// now and then), v2 or v3 (v3: per-node intervals). Also returns the largest advert interval.
fn random_cfgs(rng: &mut SmallRng, max_nodes: usize) -> (Vec<Config>, Duration) {
    let n = rng.random_range(2..=max_nodes);
    let v3 = rng.random_bool(0.7);
    let v2_int = [100u16, 200][rng.random_range(0..2)];
    let mut a_max = Duration::ZERO;
    let mut cfgs = Vec::new();
    for i in 0..n {
        let (version, int) = if v3 {
            (Version::V3, [10u16, 20, 50, 100][rng.random_range(0..4)])
        } else {
            (Version::V2, v2_int)
        };
        let prio = if rng.random_bool(0.05) {
            255
        } else {
            [50u8, 100, 100, 150, 200][rng.random_range(0..5)]
        };
        let preempt = rng.random_bool(0.8);
        cfgs.push(cfg(i, version, prio, int, preempt));
        a_max = a_max.max(cs(int));
    }
    (cfgs, a_max)
}

fn lan(seed: u64, link: LinkParams, cfgs: Vec<Config>) -> Sim {
    let mut sim = Sim::new(seed, link);
    for c in cfgs {
        sim.add_node(c);
    }
    sim
}

/// A random LAN (nodes added, not started) and its largest advert interval.
fn random_lan(
    seed: u64,
    rng: &mut SmallRng,
    max_nodes: usize,
    link: LinkParams,
) -> (Sim, Duration) {
    let (cfgs, a_max) = random_cfgs(rng, max_nodes);
    (lan(seed, link, cfgs), a_max)
}

/// Largest possible Master_Down_Interval in the LAN (priority 1, largest interval, v2 skew 1 s).
fn mdi_max(a_max: Duration) -> Duration {
    3 * a_max + a_max.max(Duration::from_secs(1))
}

fn start_all_randomly(sim: &mut Sim, rng: &mut SmallRng) {
    let mut order: Vec<(Duration, usize)> = (0..sim.len())
        .map(|i| (Duration::from_micros(rng.random_range(0..1_000_000)), i))
        .collect();
    order.sort();
    for (at, i) in order {
        sim.run_until(at);
        sim.start(i);
    }
}

/// Splits the LAN at random into 2 or 3 groups (some may be empty).
fn split_randomly(sim: &mut Sim, rng: &mut SmallRng) {
    let k = rng.random_range(2..=3);
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); k];
    for i in 0..sim.len() {
        groups[rng.random_range(0..k)].push(i);
    }
    let slices: Vec<&[usize]> = groups.iter().map(Vec::as_slice).collect();
    sim.partition(&slices);
}

fn key(sim: &Sim, i: usize) -> (u8, IpAddr) {
    let inst = sim.instance(i).expect("live");
    (inst.priority(), inst.config().primary_addr)
}

fn random_delay_link(rng: &mut SmallRng, loss: f64) -> LinkParams {
    let max = Duration::from_micros(rng.random_range(0..5_000));
    let min = Duration::from_micros(rng.random_range(0..=max.as_micros() as u64));
    LinkParams {
        delay_min: min,
        delay_max: max,
        loss,
    }
}

/// (1) After a heal, exactly one Master from `h + B` on, where
/// `B = A_max + d_max` (A_max: largest configured advert interval, d_max: largest link delay).
///
/// Why this bound: each partition has converged before the heal, so the best Master G (highest
/// priority, then address) outranks every other Master and every Backup that would preempt. G's
/// next periodic advert leaves by `h + A_G` and reaches everyone by `h + A_G + d_max`; every other
/// Master steps down on it (§6.4.3) and every Backup accepts it (§6.4.2), so no new Master can
/// appear. This is tighter than "2 advert intervals + skew".
///
/// With loss (a third of the seeds, 2 % per copy), the property is checked only on loss-free
/// windows: no drop in `[h - 2 MDI_max, h + B]`, and up to the first drop after that.
#[test]
fn heal_leaves_exactly_one_master() {
    let mut checked = 0;
    for seed in 0..2000u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0001);
        let loss = if rng.random_bool(0.33) { 0.02 } else { 0.0 };
        let link = random_delay_link(&mut rng, loss);
        let (mut sim, a_max) = random_lan(seed, &mut rng, 5, link);
        let mdi = mdi_max(a_max);
        start_all_randomly(&mut sim, &mut rng);
        sim.run_for(10 * mdi);
        split_randomly(&mut sim, &mut rng);
        sim.run_for(10 * mdi);
        let h = sim.now();
        sim.heal();
        let bound = a_max + link.delay_max;
        let end = h + 20 * a_max;
        sim.run_until(end);

        let drops = sim.drops();
        if drops
            .iter()
            .any(|d| d.at + 2 * mdi >= h && d.at <= h + bound)
        {
            continue;
        }
        let window_end = drops
            .iter()
            .map(|d| d.at)
            .find(|&t| t > h + bound)
            .unwrap_or(end);
        let mut instants = vec![h + bound];
        instants.extend(
            sim.trace()
                .iter()
                .map(|e| e.at)
                .filter(|&t| t >= h + bound && t < window_end),
        );
        for t in instants {
            let m = sim.masters_at(t);
            assert_eq!(
                m.len(),
                1,
                "seed {seed}: masters {m:?} at {t:?} (heal at {h:?}, bound {bound:?})"
            );
        }
        checked += 1;
    }
    assert!(checked >= 1500, "only {checked} heals were loss-free");
}

/// (8) After a heal, whichever side hears the other first, a client on the LAN reaches the
/// single Master by `h + A_max + 2 d_max`: its neighbour entry points at the node that
/// announced last, and the Master is that node from then on.
///
/// Why: if a losing Master hears the winner G first, it steps down and answers with one advert
/// at its own priority (sent by `h + A_G + d_max`); G hears a lower priority and announces
/// (`garp_lower_prio_*`) by `h + A_G + 2 d_max`. If G hears a loser first, it announces at
/// once. Without the loser's answer the first order leaves the client on the loser's MAC until
/// its entry expires (keepalived 2.2.7: 5.7-5.9 s at 1 s adverts). Loss-free.
#[test]
fn heal_moves_the_client_to_the_single_master_in_either_order() {
    let mut bad_order = 0;
    for seed in 0..2000u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0008);
        let link = random_delay_link(&mut rng, 0.0);
        let (mut sim, a_max) = random_lan(seed, &mut rng, 5, link);
        let mdi = mdi_max(a_max);
        start_all_randomly(&mut sim, &mut rng);
        sim.run_for(10 * mdi);
        split_randomly(&mut sim, &mut rng);
        sim.run_for(10 * mdi);
        // The heal lands anywhere in the advert cycles.
        sim.run_for(Duration::from_micros(
            rng.random_range(0..a_max.as_micros() as u64),
        ));
        let split_masters = sim.masters();
        let h = sim.now();
        sim.heal();
        let bound = a_max + 2 * link.delay_max;
        sim.run_until(h + bound);
        let m = sim.masters();
        assert_eq!(m.len(), 1, "seed {seed}: masters {m:?}");
        let entry = sim.client_entry_at(h + bound);
        assert_eq!(
            entry,
            Some(m[0]),
            "seed {seed}: client on {entry:?}, Master {m:?} (split Masters {split_masters:?})"
        );
        // The order this seed healed in: did the winner hear a loser before a loser stepped
        // down? (Both orders must be well represented.)
        let first_step_down = sim
            .trace()
            .iter()
            .find(|e| e.at >= h && e.from == State::Master)
            .map(|e| e.at);
        let winner_heard_first = sim
            .announcements()
            .iter()
            .any(|a| a.node == m[0] && a.at >= h && first_step_down.is_none_or(|t| a.at < t));
        if split_masters.len() > 1 && !winner_heard_first {
            bad_order += 1;
        }
        sim.run_for(20 * a_max);
        assert_eq!(sim.client_entry_at(sim.now()), Some(m[0]), "seed {seed}");
    }
    eprintln!("{bad_order} of 2000 heals: a loser heard the winner first");
    assert!(
        bad_order >= 300,
        "only {bad_order} heals where a loser heard the winner first"
    );
}

/// Equal-priority Masters meeting after a heal: the higher primary address wins (§6.4.3).
#[test]
fn heal_tie_goes_to_higher_address() {
    let mut sim = Sim::new(7, LinkParams::fixed(Duration::from_micros(300)));
    for i in 0..3 {
        sim.add_node(cfg(i, Version::V3, 100, 10, true));
    }
    sim.partition(&[&[0], &[1], &[2]]);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.masters(), vec![0, 1, 2]);
    let h = sim.now();
    sim.heal();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.masters(), vec![2]);
    assert_eq!(
        sim.masters_at(h + cs(10) + Duration::from_micros(300)),
        vec![2]
    );
}

/// (2) With preemption on everywhere, after chaos (crashes, restarts, graceful stops, priority
/// changes, partitions, loss, preempt delays) and a quiet, healed, loss-free period, the Master
/// is the node with the highest live priority. Ties: RFC 5798 §6.4.2 lets a Backup accept an
/// equal priority, so among equals whoever became Master first stays; we assert the Master has
/// the maximum priority and is unique, and is *the* maximum when that is unique.
#[test]
fn highest_priority_ends_master() {
    for seed in 0..2000u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0002);
        let loss = if rng.random_bool(0.5) { 0.05 } else { 0.0 };
        let link = random_delay_link(&mut rng, loss);
        let (mut cfgs, a_max) = random_cfgs(&mut rng, 5);
        let n = cfgs.len();
        let mut delay_max = Duration::ZERO;
        for c in &mut cfgs {
            c.preempt = true;
            if rng.random_bool(0.3) {
                c.preempt_delay = Duration::from_millis(rng.random_range(1..=3000));
                delay_max = delay_max.max(c.preempt_delay);
            }
        }
        let mut sim = lan(seed, link, cfgs);
        let mdi = mdi_max(a_max);
        start_all_randomly(&mut sim, &mut rng);
        let chaos_end = sim.now() + 20 * mdi;
        while sim.now() < chaos_end {
            sim.run_for(Duration::from_micros(
                rng.random_range(0..(2 * mdi.as_micros() as u64)),
            ));
            let i = rng.random_range(0..n);
            match rng.random_range(0..6) {
                0 => sim.crash(i),
                1 => sim.restart(i),
                2 => sim.shutdown(i),
                3 => {
                    let p = rng.random_range(1..=254);
                    sim.set_priority(i, p)
                }
                4 => {
                    let cut = rng.random_range(1..n);
                    let (a, b): (Vec<usize>, Vec<usize>) = (0..n).partition(|&j| j < cut);
                    sim.partition(&[&a, &b]);
                }
                _ => sim.heal(),
            }
        }
        sim.heal();
        sim.set_default_link(LinkParams { loss: 0.0, ..link });
        if (0..n).all(|i| sim.instance(i).is_none()) {
            sim.start(0);
        }
        sim.run_for(2 * delay_max + 20 * mdi);

        let live: Vec<usize> = (0..n).filter(|&i| sim.instance(i).is_some()).collect();
        let best = live.iter().map(|&i| key(&sim, i).0).max().unwrap();
        let masters = sim.masters();
        assert_eq!(masters.len(), 1, "seed {seed}: masters {masters:?}");
        assert_eq!(
            key(&sim, masters[0]).0,
            best,
            "seed {seed}: master {masters:?} is not the best"
        );
        let tops: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&i| key(&sim, i).0 == best)
            .collect();
        if tops.len() == 1 {
            assert_eq!(masters, tops, "seed {seed}");
        }
        assert!(
            sim.holds_vips(masters[0]),
            "seed {seed}: master without VIPs"
        );
        assert_eq!(
            live.iter().filter(|&&i| sim.holds_vips(i)).count(),
            1,
            "seed {seed}: VIPs held twice"
        );
    }
}

/// Converge a random loss-free LAN and return its single Master.
fn converged(seed: u64, rng: &mut SmallRng) -> (Sim, LinkParams, Duration, usize) {
    let link = random_delay_link(rng, 0.0);
    let (mut sim, a_max) = random_lan(seed, rng, 5, link);
    start_all_randomly(&mut sim, rng);
    sim.run_for(10 * mdi_max(a_max));
    let m = sim.masters();
    assert_eq!(m.len(), 1, "seed {seed}: not converged: {m:?}");
    (sim, link, a_max, m[0])
}

/// Lets the LAN run a random part of three intervals, then crashes Master `m`; returns when,
/// and when its last advert left.
fn crash_midway(
    sim: &mut Sim,
    rng: &mut SmallRng,
    m: usize,
    a_max: Duration,
) -> (Duration, Duration) {
    sim.run_for(Duration::from_micros(
        rng.random_range(0..3 * a_max.as_micros() as u64),
    ));
    let c = sim.now();
    let last = sim
        .sends()
        .iter()
        .rev()
        .find(|r| r.node == m && r.at <= c)
        .expect("the Master adverts")
        .at;
    sim.crash(m);
    (c, last)
}

fn first_master_after(sim: &Sim, t: Duration) -> Duration {
    sim.trace()
        .iter()
        .find(|e| e.at > t && e.to == State::Master)
        .map(|e| e.at)
        .expect("a takeover")
}

/// (3) When the Master crashes, a Backup takes over at `s + d + MDI_b` where `s` is the Master's
/// last advert, `d` the delay of its copy to Backup `b` and `MDI_b` b's Master_Down_Interval
/// (with b's priority and learned interval): exactly within
/// `[s + d_min + min_b MDI_b, s + d_max + min_b MDI_b]`. Loss-free.
#[test]
fn master_crash_takeover_within_master_down_interval() {
    for seed in 0..2000u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0003);
        let (mut sim, link, a_max, m) = converged(seed, &mut rng);
        let (c, s) = crash_midway(&mut sim, &mut rng, m, a_max);
        let min_mdi = (0..sim.len())
            .filter(|&i| i != m)
            .map(|i| sim.instance(i).unwrap().master_down_interval())
            .min()
            .unwrap();
        sim.run_for(2 * mdi_max(a_max));
        let t = first_master_after(&sim, c);
        assert!(
            t >= s + link.delay_min + min_mdi && t <= s + link.delay_max + min_mdi,
            "seed {seed}: takeover at {t:?}, last advert {s:?}, MDI {min_mdi:?}, link {link:?}"
        );
        assert_eq!(sim.masters().len(), 1, "seed {seed}");
    }
}

/// (5) When the Master shuts down gracefully (priority 0, §6.4.3), a Backup takes over after
/// its Skew_Time (§6.4.2): within `[r + d_min + min_b Skew_b, r + d_max + min_b Skew_b]`.
#[test]
fn priority_zero_release_takeover_within_skew() {
    for seed in 0..2000u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0005);
        let (mut sim, link, a_max, m) = converged(seed, &mut rng);
        sim.run_for(Duration::from_micros(
            rng.random_range(0..3 * a_max.as_micros() as u64),
        ));
        let r = sim.now();
        let min_skew = (0..sim.len())
            .filter(|&i| i != m)
            .map(|i| sim.instance(i).unwrap().skew_time())
            .min()
            .unwrap();
        sim.shutdown(m);
        assert_eq!(
            sim.sends().last().map(|s| (s.at, s.node, s.priority)),
            Some((r, m, 0))
        );
        sim.run_for(2 * mdi_max(a_max));
        let t = first_master_after(&sim, r);
        assert!(
            t >= r + link.delay_min + min_skew && t <= r + link.delay_max + min_skew,
            "seed {seed}: takeover at {t:?}, release {r:?}, skew {min_skew:?}, link {link:?}"
        );
        assert_eq!(sim.masters().len(), 1, "seed {seed}");
    }
}

/// (4) A converged, loss-free LAN (with delay jitter) makes no transition at all over 1000
/// advert intervals.
#[test]
fn stable_lan_has_no_transitions() {
    for seed in 0..100u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0004);
        let (mut sim, _link, a_max, m) = converged(seed, &mut rng);
        let before = sim.trace().len();
        let sends_before = sim.sends().len();
        sim.run_for(1000 * a_max);
        assert_eq!(
            sim.trace().len(),
            before,
            "seed {seed}: {:?}",
            &sim.trace()[before..]
        );
        assert_eq!(sim.masters(), vec![m]);
        // And the Master kept advertising: at least one advert per own interval.
        let own = cs(sim.instance(m).unwrap().config().advert_int);
        let sent = sim.sends()[sends_before..]
            .iter()
            .filter(|s| s.node == m)
            .count() as u128;
        assert!(
            sent + 1 >= (1000 * a_max).as_nanos() / own.as_nanos(),
            "seed {seed}: {sent} adverts"
        );
    }
}

/// (6) FAULT and priority changes: while nodes go in and out of FAULT (and change priority,
/// crash, restart, partition), a node in FAULT never holds the addresses; after a quiet healed
/// period the Master is the best node *not* in FAULT, and after every fault is cleared it is
/// the best node overall.
#[test]
fn fault_never_holds_vips_and_best_unfaulted_wins() {
    for seed in 0..1000u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0006);
        let link = random_delay_link(&mut rng, 0.0);
        let (mut cfgs, a_max) = random_cfgs(&mut rng, 5);
        let n = cfgs.len();
        for c in &mut cfgs {
            c.preempt = true;
        }
        let mut sim = lan(seed, link, cfgs);
        let mdi = mdi_max(a_max);
        start_all_randomly(&mut sim, &mut rng);
        let chaos_end = sim.now() + 20 * mdi;
        let check = |sim: &Sim| {
            for i in 0..n {
                if sim.state(i) == Some(State::Fault) {
                    assert!(
                        !sim.holds_vips(i),
                        "seed {seed}: node {i} in FAULT holds VIPs"
                    );
                }
            }
        };
        while sim.now() < chaos_end {
            let step = Duration::from_micros(rng.random_range(0..(2 * mdi.as_micros() as u64)));
            // Check at a few points inside the step too.
            for _ in 0..4 {
                sim.run_for(step / 4);
                check(&sim);
            }
            let i = rng.random_range(0..n);
            match rng.random_range(0..7) {
                0 | 1 => sim.fault(i),
                2 | 3 => sim.clear_fault(i),
                4 => {
                    let p = rng.random_range(1..=254);
                    sim.set_priority(i, p)
                }
                5 => {
                    sim.crash(i);
                    sim.restart(i);
                }
                _ => {
                    if rng.random_bool(0.5) {
                        let cut = rng.random_range(1..n);
                        let (a, b): (Vec<usize>, Vec<usize>) = (0..n).partition(|&j| j < cut);
                        sim.partition(&[&a, &b]);
                    } else {
                        sim.heal();
                    }
                }
            }
            check(&sim);
        }
        sim.heal();
        for phase in 0..2 {
            if phase == 1 {
                for i in 0..n {
                    sim.clear_fault(i);
                }
            }
            sim.run_for(20 * mdi);
            check(&sim);
            let up: Vec<usize> = (0..n)
                .filter(|&i| sim.state(i).is_some_and(|s| s != State::Fault))
                .collect();
            let masters = sim.masters();
            if up.is_empty() {
                assert!(masters.is_empty(), "seed {seed}");
                continue;
            }
            let best = up.iter().map(|&i| key(&sim, i).0).max().unwrap();
            assert_eq!(masters.len(), 1, "seed {seed} phase {phase}: {masters:?}");
            assert_eq!(key(&sim, masters[0]).0, best, "seed {seed} phase {phase}");
            assert_eq!(
                (0..n).filter(|&i| sim.holds_vips(i)).collect::<Vec<_>>(),
                masters,
                "seed {seed} phase {phase}: VIPs"
            );
        }
    }
}

/// Nodes each running `vrids` instances (VRIDs 1..=vrids, one VIP each) at one priority, all in
/// one sync group when `grouped`; v3, `advert_int` for all.
fn routers(
    seed: u64,
    link: LinkParams,
    prios: &[u8],
    vrids: u8,
    advert_int: u16,
    grouped: bool,
) -> Sim {
    let mut sim = Sim::new(seed, link);
    for (i, &p) in prios.iter().enumerate() {
        let cfgs: Vec<instance::Config> = (1..=vrids)
            .map(|v| {
                let mut c = cfg(i, Version::V3, p, advert_int, true);
                c.vrid = v;
                c.vips = vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, v))];
                sim::instance_config(c)
            })
            .collect();
        let groups = if grouped {
            vec![(0..usize::from(vrids)).collect()]
        } else {
            Vec::new()
        };
        sim.add_router(cfgs, groups);
    }
    sim
}

/// (7) Sync groups: while members fail one by one (a weight-0 tracker), nodes crash, restart and
/// get partitioned, a member in FAULT never holds its address, and after a quiet healed period
/// with every fault cleared the members of each node share one state and one node (the best)
/// is Master of every VRID.
#[test]
fn sync_group_members_move_together() {
    for seed in 0..300u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0007);
        let n = rng.random_range(2..=3);
        let vrids = rng.random_range(2..=3u8);
        let int = [10u16, 20, 50][rng.random_range(0..3)];
        let mut prios: Vec<u8> = (0..n).map(|_| rng.random_range(50..=200)).collect();
        prios.sort_unstable();
        prios.dedup();
        let n = prios.len();
        if n < 2 {
            continue;
        }
        let link = random_delay_link(&mut rng, 0.0);
        let mut sim = routers(seed, link, &prios, vrids, int, true);
        let mdi = mdi_max(cs(int));
        start_all_randomly(&mut sim, &mut rng);
        let chk = TrackKey::Script("chk".into());
        let check = |sim: &Sim| {
            for i in 0..n {
                let states: Vec<Option<State>> = (0..usize::from(vrids))
                    .map(|v| sim.instance_at(i, v).map(|x| x.state()))
                    .collect();
                assert!(
                    states.windows(2).all(|w| w[0] == w[1]),
                    "seed {seed}: node {i} at {:?}: {states:?}",
                    sim.now()
                );
                for v in 0..usize::from(vrids) {
                    if sim
                        .instance_at(i, v)
                        .is_some_and(|x| x.state() == State::Fault)
                    {
                        assert!(
                            !sim.holds(i, v),
                            "seed {seed}: node {i} member {v} in FAULT holds its VIP"
                        );
                    }
                }
            }
        };
        let chaos_end = sim.now() + 20 * mdi;
        while sim.now() < chaos_end {
            let step = Duration::from_micros(rng.random_range(0..(2 * mdi.as_micros() as u64)));
            for _ in 0..8 {
                sim.run_for(step / 8);
                check(&sim);
            }
            let i = rng.random_range(0..n);
            let v = rng.random_range(0..usize::from(vrids));
            match rng.random_range(0..6) {
                0 | 1 => sim.track(i, v, chk.clone(), Contribution::Fault),
                2 | 3 => sim.track(i, v, chk.clone(), Contribution::Delta(0)),
                4 => {
                    sim.crash(i);
                    sim.restart(i);
                }
                _ => {
                    if rng.random_bool(0.5) {
                        let cut = rng.random_range(1..n);
                        let (a, b): (Vec<usize>, Vec<usize>) = (0..n).partition(|&j| j < cut);
                        sim.partition(&[&a, &b]);
                    } else {
                        sim.heal();
                    }
                }
            }
            check(&sim);
        }
        sim.heal();
        for i in 0..n {
            for v in 0..usize::from(vrids) {
                sim.track(i, v, chk.clone(), Contribution::Delta(0));
            }
        }
        sim.run_for(20 * mdi);
        check(&sim);
        for i in 0..n {
            let states: Vec<Option<State>> = (0..usize::from(vrids))
                .map(|v| sim.instance_at(i, v).map(|x| x.state()))
                .collect();
            assert!(
                states.windows(2).all(|w| w[0] == w[1]),
                "seed {seed}: node {i}: {states:?}"
            );
        }
        let best = n - 1;
        for v in 1..=vrids {
            assert_eq!(
                sim.masters_of(v),
                vec![best],
                "seed {seed}: masters of VRID {v}"
            );
        }
    }
}

/// (8) Reload: a converged Master that reloads an unchanged configuration, or one changed in a
/// way that moves nobody (preempt delay, announcements), stays Master of every VRID: no node
/// makes any other transition, and its adverts never pause longer than one advert interval.
#[test]
fn reload_keeps_every_master() {
    for seed in 0..300u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0008);
        let vrids = rng.random_range(1..=4u8);
        let int = [10u16, 20, 100][rng.random_range(0..3)];
        let grouped = rng.random_bool(0.5);
        let link = random_delay_link(&mut rng, 0.0);
        let mut sim = routers(seed, link, &[100, 200], vrids, int, grouped);
        start_all_randomly(&mut sim, &mut rng);
        sim.run_for(10 * mdi_max(cs(int)));
        for v in 1..=vrids {
            assert_eq!(sim.masters_of(v), vec![1], "seed {seed}: not converged");
        }
        sim.run_for(Duration::from_micros(
            rng.random_range(0..cs(int).as_micros() as u64),
        ));
        let t = sim.now();
        let before = sim.trace().len();
        let mut cfgs: Vec<instance::Config> = (0..usize::from(vrids))
            .map(|v| sim.instance_config_of(1, v))
            .collect();
        for c in &mut cfgs {
            match rng.random_range(0..3) {
                0 => {}
                1 => c.vrrp.preempt_delay = Duration::from_millis(rng.random_range(1..1000)),
                _ => c.announce.master_repeat = rng.random_range(1..5),
            }
        }
        let groups = if grouped {
            vec![(0..usize::from(vrids)).collect()]
        } else {
            Vec::new()
        };
        sim.reload(1, cfgs, groups);
        sim.run_for(10 * cs(int));
        for e in &sim.trace()[before..] {
            assert!(
                e.node == 1 && e.from == State::Initialize && e.to == State::Master,
                "seed {seed}: {e:?} after a reload at {t:?}"
            );
        }
        for v in 1..=vrids {
            assert_eq!(sim.masters_of(v), vec![1], "seed {seed}");
            let at: Vec<Duration> = sim
                .sends()
                .iter()
                .filter(|s| s.node == 1 && s.vrid == v && s.at + 2 * cs(int) >= t)
                .map(|s| s.at)
                .collect();
            for w in at.windows(2) {
                assert!(
                    w[1] - w[0] <= cs(int),
                    "seed {seed}: VRID {v} gap {:?} at {:?}",
                    w[1] - w[0],
                    w[0]
                );
            }
        }
    }
}

/// (9) A stranger on our VRID, with another address list (another cluster misconfigured with
/// our VRID), changes nothing for us, at any priority (255 included), in any order of start:
/// ours elect their Master among themselves (one of the highest priority), the stranger is Master of its own list, and when
/// our Master crashes one of ours takes over exactly as without the stranger (property 3's
/// window). Loss-free, so the takeover time is exact.
#[test]
fn a_stranger_with_another_list_changes_nothing() {
    const STRANGER_VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 201));
    for seed in 0..1000u64 {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0007);
        let link = random_delay_link(&mut rng, 0.0);
        let (mut cfgs, a_max) = random_cfgs(&mut rng, 4);
        // With preemption the best of ours is the one Master among ours (property 2).
        for c in &mut cfgs {
            c.preempt = true;
        }
        let prio = [1u8, 99, 100, 120, 200, 254, 255][rng.random_range(0..7)];
        let mut stranger = cfg(cfgs.len(), cfgs[0].version, prio, cfgs[0].advert_int, true);
        stranger.vips = vec![STRANGER_VIP];
        cfgs.push(stranger);
        let s = cfgs.len() - 1;
        let mut sim = lan(seed, link, cfgs);
        start_all_randomly(&mut sim, &mut rng);
        sim.run_for(10 * mdi_max(a_max));
        let ours: Vec<usize> = (0..s).collect();
        // Among equal priorities whoever was Master first stays (property 2).
        let masters = sim.masters();
        let top = ours.iter().map(|&i| key(&sim, i).0).max().unwrap();
        assert_eq!(
            masters.len(),
            2,
            "seed {seed}: stranger at {prio}: {masters:?}"
        );
        let best = masters[0];
        assert_eq!(
            (key(&sim, best).0, masters[1]),
            (top, s),
            "seed {seed}: stranger at {prio}: {masters:?}"
        );
        // Our Master crashes: one of ours takes over within property 3's window.
        let (c, last) = crash_midway(&mut sim, &mut rng, best, a_max);
        let min_mdi = ours
            .iter()
            .filter(|&&i| i != best)
            .map(|&i| sim.instance(i).unwrap().master_down_interval())
            .min()
            .unwrap();
        sim.run_for(2 * mdi_max(a_max));
        let t = sim
            .trace()
            .iter()
            .find(|e| e.at > c && e.to == State::Master && e.node != s)
            .map(|e| e.at)
            .unwrap_or_else(|| panic!("seed {seed}: stranger at {prio}: no takeover"));
        assert!(
            t >= last + link.delay_min + min_mdi && t <= last + link.delay_max + min_mdi,
            "seed {seed}: stranger at {prio}: takeover at {t:?}, last advert {last:?}"
        );
        let masters = sim.masters();
        assert_eq!(masters.len(), 2, "seed {seed}: {masters:?}");
        assert!(
            masters.contains(&s),
            "seed {seed}: the stranger stepped down"
        );
    }
}
