//! Interop with keepalived 2.2.7 as the other node, the whole matrix: {v2, v3} × {IPv4, IPv6
//! (v3 only)} × {multicast, unicast} × {no auth, PASS, AH (v2 only)}, with vrrpd once as the higher
//! and once as the lower priority. Each case: the startup election agrees and stays put (one
//! Master), a crash of the Master hands over, the restarted higher priority preempts back, and
//! the client's neighbour entry follows; the capture on b shows vrrpd's adverts decoding cleanly
//! in tshark (VRRP and IPv4 checksums verified; with AH, inside an AH header whose sequence
//! numbers rise, which keepalived's replay check requires).

use std::net::IpAddr;
use std::time::Duration;

use lab::e2e::{self, node, VIP4, VIP6};
use lab::wait::wait_until;
use lab::{require_root, Capture, Daemon, Host, Lab};

/// One cell of the matrix.
#[derive(Clone, Copy)]
struct Case {
    version: u8,
    advert_int: f64,
    v6: bool,
    unicast: bool,
    pass: bool,
    /// `auth_type AH` (VRRPv2, IPv4).
    ah: bool,
}

const V2: Case = Case {
    version: 2,
    advert_int: 1.0,
    v6: false,
    unicast: false,
    pass: false,
    ah: false,
};
const V3: Case = Case {
    version: 3,
    advert_int: 0.1,
    v6: false,
    unicast: false,
    pass: false,
    ah: false,
};

/// The address a node's adverts come from: IPv4 primary, or the IPv6 link-local.
fn advert_source(host: &Host, v6: bool) -> IpAddr {
    if !v6 {
        return host.v4;
    }
    let out = host
        .exec(
            "ip",
            &["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"],
        )
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .unwrap();
    word.split('/').next().unwrap().parse().unwrap()
}
/// a (priority 150) runs `high`, b (100) runs `low`; both start as Backup.
fn interop(case: Case, high: Daemon, low: Daemon) {
    let Case {
        version,
        advert_int,
        v6,
        unicast,
        pass,
        ah,
    } = case;
    let adv = Duration::from_secs_f64(advert_int);
    // Master_Down_Interval plus slack for process start and scheduling.
    let down = adv * 4 + Duration::from_secs(2);
    let lab = Lab::builder().build().unwrap();
    // On b: it sees a's adverts whether they are multicast or sent to it, and its own.
    let mut cap = Capture::start(
        lab.host("b"),
        "interop",
        "ip proto 112 or ip6 proto 112 or ip proto 51",
    )
    .unwrap();
    let (a, b, client) = (
        lab.host("a").clone(),
        lab.host("b").clone(),
        lab.host("client").clone(),
    );
    let vip = if v6 { VIP6 } else { VIP4 };
    let (mut ca, mut cb) = (
        node("a", 150, version, advert_int, vip),
        node("b", 100, version, advert_int, vip),
    );
    for (c, me, peer) in [(&mut ca, &a, &b), (&mut cb, &b, &a)] {
        if unicast {
            let (src, dst) = if v6 {
                (me.v6, peer.v6)
            } else {
                (me.v4, peer.v4)
            };
            c.unicast_src = Some(src.to_string());
            c.unicast_peers = vec![dst.to_string()];
        }
        if pass || ah {
            c.auth_pass = Some("s3cret!!".into());
            c.auth_ah = ah;
        }
    }
    let mut pair = e2e::start_pair(lab, high, &ca, low, &cb).unwrap();
    let vip = pair.vip;

    // Startup election: a wins, b stays Backup (b would be Master 0.2 intervals after a had
    // it not accepted a's adverts).
    pair.wait_master("a", down).unwrap();
    e2e::holds_for(&pair, "a", adv * 2 + Duration::from_millis(200)).unwrap();
    e2e::reach(&client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip), Some(a.mac().unwrap()));

    // Crash of the Master: b takes over and announces.
    e2e::crash(&mut pair.a, &a).unwrap();
    assert!(
        wait_until(down, Duration::from_millis(10), || b.has_addr(vip)),
        "b did not take over: {}",
        pair.b.log_text()
    );
    e2e::wait_neigh(&client, vip, &b.mac().unwrap(), Duration::from_secs(2)).unwrap();

    // Restart: a preempts back and announces.
    pair.a = e2e::restart(high, &a, &ca).unwrap();
    pair.wait_master("a", down).unwrap();
    e2e::wait_neigh(&client, vip, &a.mac().unwrap(), Duration::from_secs(2)).unwrap();
    assert!(client.ping(vip), "VIP unreachable after preemption");

    let vrrpd_node = if high == Daemon::Vrrpd { &a } else { &b };
    let vrrpd_ip = if unicast {
        if v6 {
            vrrpd_node.v6
        } else {
            vrrpd_node.v4
        }
    } else {
        advert_source(vrrpd_node, v6)
    };
    let src_field = if v6 { "ipv6.src" } else { "ip.src" };
    let rows = cap
        .tshark_fields(
            "vrrp",
            &[
                src_field,
                "vrrp.version",
                "vrrp.checksum.status",
                "vrrp.auth_type",
                "ah.sequence",
            ],
        )
        .unwrap();
    let ours: Vec<_> = rows
        .iter()
        .filter(|r| r[0] == vrrpd_ip.to_string())
        .collect();
    assert!(ours.len() >= 3, "vrrpd adverts seen: {rows:?}");
    // tshark's checksum status: 1 = good.
    assert!(
        ours.iter()
            .all(|r| r[1] == version.to_string() && r[2] == "1"),
        "{ours:?}"
    );
    if pass {
        assert!(
            ours.iter().all(|r| r[3] == "1"),
            "simple-text auth expected: {ours:?}"
        );
    }
    if ah {
        // Auth type 2 in the advert, inside AH, each sequence number above the last.
        assert!(ours.iter().all(|r| r[3] == "2"), "AH expected: {ours:?}");
        let seqs: Vec<u64> = ours.iter().map(|r| r[4].parse().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "AH sequence numbers: {seqs:?}"
        );
        // keepalived accepted every one of them: no ICV failure, no replay.
        let kept = if high == Daemon::Keepalived {
            &pair.a
        } else {
            &pair.b
        };
        let log = kept.log_text();
        assert!(
            !log.contains("invalid IPSEC") && !log.contains("already processed"),
            "keepalived refused AH adverts:\n{log}"
        );
    }
    assert_eq!(cap.count_malformed().unwrap(), 0, "malformed frames");
}

fn run(case: Case, high: Daemon, low: Daemon) {
    if e2e::available(&[Daemon::Vrrpd, Daemon::Keepalived]) {
        interop(case, high, low);
    }
}

/// One test per cell and role: `vrrpd_high` runs vrrpd on the priority-150 node.
macro_rules! matrix {
    ($($name:ident: $case:expr;)*) => {
        mod vrrpd_high {
            use super::*;
            $(#[test] fn $name() { require_root!(); run($case, Daemon::Vrrpd, Daemon::Keepalived); })*
        }
        mod vrrpd_low {
            use super::*;
            $(#[test] fn $name() { require_root!(); run($case, Daemon::Keepalived, Daemon::Vrrpd); })*
        }
    };
}

matrix! {
    v2_multicast: V2;
    v2_multicast_pass: Case { pass: true, ..V2 };
    v2_unicast: Case { unicast: true, ..V2 };
    v2_unicast_pass: Case { unicast: true, pass: true, ..V2 };
    v2_multicast_ah: Case { ah: true, ..V2 };
    v2_unicast_ah: Case { unicast: true, ah: true, ..V2 };
    v3_multicast: V3;
    v3_unicast: Case { unicast: true, ..V3 };
    v3_ipv6_multicast: Case { v6: true, ..V3 };
    v3_ipv6_unicast: Case { v6: true, unicast: true, ..V3 };
}
