//! A split brain heals cleanly in either order (issue 18, item 6): after a heal the client
//! reaches the single Master within two advert intervals, whichever side hears the other first.
//!
//! a (150) and b (100) stop hearing each other (each drops the other's VRRP on input, while
//! client traffic still flows, the classic way two Masters meet): b takes over and the client's
//! neighbour entry follows b's announcement. Then both directions heal at once, at a chosen
//! phase of the two advert cycles:
//! - loser first: b's next advert reaches a before a's reaches b. a hears a lower priority and
//!   re-announces (`garp_lower_prio_*`): keepalived and vrrpd both heal.
//! - winner first: a's advert reaches b first. b steps down; keepalived 2.2.7 does it silently
//!   and nobody announces, so the client stays on b's MAC until its entry expires. vrrpd's b
//!   answers with one advert at its own priority (keepalived's `higher_prio_send_advert`, on by
//!   default in vrrpd), a hears a lower priority and re-announces.
//!
//! The phases are set, not waited for: a crafted priority-0 advert from the client makes a
//! advert at once and restart its advert timer (RFC 5798 §6.4.3), half an interval away from
//! b's (b does not hear it), so each order has half an interval of margin.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lab::adverts::{AdvertSender, AdvertWatch};
use lab::e2e::{self, node, VIP4};
use lab::scenario::Pair;
use lab::wait::wait_until;
use lab::{require_root, Daemon, Host, Lab};
use vrrp_proto::packet::{Advert, Auth, Version};

/// Advert interval (s): long enough for the heal to land well inside a phase window.
const ADVERT_INT: f64 = 0.5;

/// nftables on `host`: drop VRRP from `from` on input.
fn block_vrrp(host: &Host, from: &[IpAddr]) {
    let srcs: Vec<String> = from.iter().map(IpAddr::to_string).collect();
    let set = format!("{{ {} }}", srcs.join(", "));
    let chain = "{ type filter hook input priority 0 ; }";
    for args in [
        vec!["add", "table", "inet", "split"],
        vec!["add", "chain", "inet", "split", "c", chain],
        vec![
            "add", "rule", "inet", "split", "c", "ip", "saddr", &set, "ip", "protocol", "vrrp",
            "drop",
        ],
    ] {
        let out = host.exec("nft", &args).unwrap();
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn unblock_vrrp(host: &Host) {
    let out = host
        .exec("nft", &["delete", "table", "inet", "split"])
        .unwrap();
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Order {
    /// b's advert reaches a first.
    LoserFirst,
    /// a's advert reaches b first.
    WinnerFirst,
}

/// The pair a (`da`, 150) / b (`db`, 100), a Master, the client's entry on a's MAC.
fn pair(da: Daemon, db: Daemon) -> Pair {
    let (mut ca, mut cb) = (
        node("a", 150, 3, ADVERT_INT, VIP4),
        node("b", 100, 3, ADVERT_INT, VIP4),
    );
    // Only the lower-priority burst may move the client: no second bursts after a takeover.
    for c in [&mut ca, &mut cb] {
        c.extra_global = Some("vrrp_garp_master_delay 0".into());
    }
    let mut pair = e2e::start_pair(Lab::builder().build().unwrap(), da, &ca, db, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(6)).unwrap();
    let client = pair.lab.host("client").clone();
    e2e::reach(&client, pair.vip, Duration::from_secs(3)).unwrap();
    let a_mac = pair.lab.host("a").mac().unwrap();
    e2e::wait_neigh(&client, pair.vip, &a_mac, Duration::from_secs(3)).unwrap();
    pair
}

/// Splits the pair, lets b take over and the client follow it, then heals both directions at
/// once in `order`; returns how long after the heal the client's entry was on a, the single
/// Master (None: not within `limit`), or, when the heal did not land in the phase window
/// (the other side adverted first: a loaded machine ran the two `nft` commands late), the
/// address of the side that adverted first.
fn split_and_heal(
    pair: &Pair,
    watch: &AdvertWatch,
    order: Order,
    limit: Duration,
) -> Result<Option<Duration>, IpAddr> {
    let (a, b, client) = (
        pair.lab.host("a").clone(),
        pair.lab.host("b").clone(),
        pair.lab.host("client").clone(),
    );
    let (a_mac, b_mac) = (a.mac().unwrap(), b.mac().unwrap());
    let int = Duration::from_secs_f64(ADVERT_INT);
    // b also ignores the client, whose priority-0 advert below is for a only.
    block_vrrp(&a, &[b.v4]);
    block_vrrp(&b, &[a.v4, client.v4]);
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(10), || b
            .has_addr(pair.vip)),
        "b never took over\n{}",
        pair.b.log_text()
    );
    e2e::wait_neigh(&client, pair.vip, &b_mac, Duration::from_secs(2)).unwrap();
    assert!(a.has_addr(pair.vip), "a must still believe it is Master");
    // Linux ignores a new MAC for an entry changed less than `locktime` (1 s) ago.
    std::thread::sleep(Duration::from_millis(1200));

    // Phases: a's adverts half an interval after b's.
    let from = |ip: IpAddr| move |x: &lab::AdvertSeen| x.src == ip && x.priority > 0;
    let t_b = watch
        .wait_for(Instant::now(), 3 * int, from(b.v4))
        .expect("b adverts")
        .at;
    let shift = t_b + int / 2;
    std::thread::sleep(shift.saturating_duration_since(Instant::now()));
    let zero = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 0,
        max_adver_int: (ADVERT_INT * 100.0) as u16,
        addrs: vec![pair.vip],
        auth: Auth::None,
    };
    AdvertSender::open(&client)
        .unwrap()
        .send_advert(&zero)
        .unwrap();
    let shifted = watch
        .wait_for(shift, int / 4, from(a.v4))
        .expect("a adverts at once on a priority-0 advert")
        .at;

    // Heal just after the advert of the side that must be heard second.
    let first_heard = match order {
        Order::LoserFirst => a.v4,
        Order::WinnerFirst => b.v4,
    };
    watch
        .wait_for(shifted, 3 * int, from(first_heard))
        .expect("adverts go on");
    unblock_vrrp(&a);
    unblock_vrrp(&b);
    let healed = Instant::now();
    let on_a = wait_until(limit, Duration::from_millis(5), || {
        client.neigh(pair.vip).as_deref() == Some(a_mac.as_str()) && pair.master() == Some("a")
    });
    let took = healed.elapsed();
    // The order was the one asked for: who adverted first after the heal.
    let first = watch
        .wait_for(healed, 2 * int, |x| x.src == a.v4 || x.src == b.v4)
        .expect("an advert after the heal");
    let want = match order {
        Order::LoserFirst => b.v4,
        Order::WinnerFirst => a.v4,
    };
    if first.src != want {
        return Err(first.src);
    }
    Ok(on_a.then_some(took))
}

/// Moves the client's entry back to a, the single Master, for the next round.
fn client_back_to_a(pair: &Pair) {
    let a_mac = pair.lab.host("a").mac().unwrap();
    let client = pair.lab.host("client");
    let _ = client.exec("ip", &["neigh", "flush", "dev", "eth0"]);
    e2e::reach(client, pair.vip, Duration::from_secs(3)).unwrap();
    e2e::wait_neigh(client, pair.vip, &a_mac, Duration::from_secs(3)).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
}

/// Both orders on one pair; returns the heal times.
fn both_orders(da: Daemon, db: Daemon, limit: Duration) -> [(Order, Option<Duration>); 2] {
    let pair = pair(da, db);
    let watch = AdvertWatch::start(pair.lab.host("client")).unwrap();
    [Order::LoserFirst, Order::WinnerFirst].map(|order| {
        // The order is the scenario's setup, not its outcome: a missed window is set up again.
        for attempt in 1..=3 {
            match split_and_heal(&pair, &watch, order, limit) {
                Ok(took) => {
                    eprintln!(
                        "a {da}, b {db}: {order:?}: client on the single Master after {took:?}"
                    );
                    if took.is_none() {
                        client_back_to_a(&pair);
                    }
                    return (order, took);
                }
                Err(first) => {
                    eprintln!("a {da}, b {db}: {order:?} attempt {attempt}: {first} adverted first after the heal; again");
                    client_back_to_a(&pair);
                }
            }
        }
        panic!("{order:?}: the heal never landed in its phase window in 3 attempts");
    })
}

/// Two advert intervals: the bound.
fn bound() -> Duration {
    Duration::from_secs_f64(2.0 * ADVERT_INT)
}

#[test]
fn vrrpd_heals_a_split_brain_in_either_order() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    for (order, took) in both_orders(Daemon::Vrrpd, Daemon::Vrrpd, Duration::from_secs(3)) {
        let took = took.unwrap_or_else(|| panic!("{order:?}: the client stayed on b"));
        assert!(took <= bound(), "{order:?}: {took:?}");
    }
}

/// keepalived 2.2.7 as the reference: loser first heals; winner first leaves the client on the
/// loser (reported, not asserted: it is the flaw vrrpd fixes).
#[test]
fn keepalived_heals_only_when_the_loser_is_heard_first() {
    require_root!();
    if !e2e::available(&[Daemon::Keepalived]) {
        return;
    }
    let [(_, loser_first), (_, winner_first)] = both_orders(
        Daemon::Keepalived,
        Daemon::Keepalived,
        Duration::from_secs(2),
    );
    let took = loser_first.expect("keepalived heals when the loser is heard first");
    assert!(took <= bound(), "{took:?}");
    eprintln!("keepalived, winner heard first: healed after {winner_first:?} (None: not in 2 s)");
}

/// keepalived as the winner, vrrpd as the loser: vrrpd's answer makes keepalived announce.
#[test]
fn a_keepalived_winner_heals_with_a_vrrpd_loser_in_either_order() {
    require_root!();
    if !e2e::available(&[Daemon::Keepalived, Daemon::Vrrpd]) {
        return;
    }
    for (order, took) in both_orders(Daemon::Keepalived, Daemon::Vrrpd, Duration::from_secs(3)) {
        let took = took.unwrap_or_else(|| panic!("{order:?}: the client stayed on b"));
        assert!(took <= bound(), "{order:?}: {took:?}");
    }
}
