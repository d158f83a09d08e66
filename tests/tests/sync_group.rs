//! `vrrp_sync_group` end to end (vrrpd on both nodes, two instances per node): members move
//! together — one member's fault takes the whole group to FAULT and the peer gets both VIPs;
//! one member pushed to BACKUP takes the other along even though it outranks the peer; the
//! group's notify script is called with `GROUP` arguments once per group state.

use std::time::Duration;

use lab::e2e::{self, addr, node, VIP4};
use lab::scenario::Pair;
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab, NodeConf, ScriptDir};

const D: Daemon = Daemon::Vrrpd;
const ADV: f64 = 0.1;
const VIP52: &str = "192.0.2.101/24";

fn vi52(prio: u8) -> String {
    format!(
        "vrrp_instance VI_52 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 52\n    \
         priority {prio}\n    advert_int {ADV}\n    version 3\n    \
         virtual_ipaddress {{\n        {VIP52} dev eth0\n    }}\n}}"
    )
}

fn group(extra: &str) -> String {
    format!(
        "vrrp_sync_group G {{\n    group {{\n        VI_51\n        VI_52\n    }}\n    {extra}\n}}"
    )
}

/// `node` is the only holder of both VIPs within `timeout`.
fn wait_both(pair: &Pair, node: &str, timeout: Duration) {
    let (a, b) = (pair.lab.host("a"), pair.lab.host("b"));
    let ok = wait_until(timeout, Duration::from_millis(10), || {
        [VIP4, VIP52].iter().all(|v| {
            let ip = addr(v);
            let (ha, hb) = (a.has_addr(ip), b.has_addr(ip));
            if node == "a" {
                ha && !hb
            } else {
                hb && !ha
            }
        })
    });
    assert!(
        ok,
        "{node} never held both VIPs alone; a log:\n{}\nb log:\n{}",
        pair.a.log_text(),
        pair.b.log_text()
    );
}

/// Both VIPs stay on `node` alone for `dur`.
fn stays_both(pair: &Pair, node: &str, dur: Duration) {
    let (a, b) = (pair.lab.host("a"), pair.lab.host("b"));
    let other = if node == "a" { b } else { a };
    let me = if node == "a" { a } else { b };
    let end = std::time::Instant::now() + dur;
    while std::time::Instant::now() < end {
        for v in [VIP4, VIP52] {
            let ip = addr(v);
            assert!(
                me.has_addr(ip) && !other.has_addr(ip),
                "{v} left {node}; a log:\n{}\nb log:\n{}",
                pair.a.log_text(),
                pair.b.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// a: both members at 150, VI_51 tracks trk0 (its weight ignored: sync group). trk0 down →
/// VI_51 FAULT → VI_52 FAULT too → b holds both; trk0 up → a takes both back. The group's
/// `notify` gets `GROUP G STATE 0` per group state.
#[test]
fn member_fault_takes_the_group_to_fault() {
    fault_case(D);
}

/// The same with keepalived on a: the reference for the group's behaviour and notify lines.
#[test]
fn member_fault_reference_keepalived() {
    fault_case(Daemon::Keepalived);
}

fn fault_case(da: Daemon) {
    require_root!();
    if !e2e::available(&[da, D]) {
        return;
    }
    let dir = ScriptDir::new().unwrap();
    let log = dir.path("group.log");
    let note = dir
        .script("note.sh", &format!("echo \"$*\" >> {}", log.display()))
        .unwrap();
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    a.exec(
        "ip",
        &[
            "link", "add", "trk0", "type", "veth", "peer", "name", "trk0p",
        ],
    )
    .unwrap();
    a.exec("ip", &["link", "set", "trk0p", "up"]).unwrap();
    a.exec("ip", &["link", "set", "trk0", "up"]).unwrap();
    let mut ca: NodeConf = node("a", 150, 3, ADV, VIP4);
    ca.extra_top = Some(format!(
        "{}\n{}",
        group(&format!("notify {}", note.display())),
        vi52(150)
    ));
    // keepalived 2.2.7 logs "ignoring trk0 tracked interface weight due to SYNC group" and
    // then applies the weight anyway (150 → 100, no FAULT); vrrpd does what the log says.
    // The keepalived reference therefore runs without a weight.
    let w = if da == D { " weight -50" } else { "" };
    ca.extra_instance = Some(format!("track_interface {{\n        trk0{w}\n    }}"));
    let mut cb = node("b", 100, 3, ADV, VIP4);
    cb.extra_top = Some(format!("{}\n{}", group(""), vi52(100)));
    let mut pair = e2e::start_pair(lab, da, &ca, D, &cb).unwrap();
    wait_both(&pair, "a", Duration::from_secs(5));
    if da == D {
        assert!(pair
            .a
            .log_text()
            .contains("(VI_51) ignoring trk0 tracked interface weight due to SYNC group"));
    }

    a.exec("ip", &["link", "set", "trk0", "down"]).unwrap();
    wait_both(&pair, "b", Duration::from_secs(3));
    let la = pair.a.log_text();
    for name in ["VI_51", "VI_52"] {
        assert!(
            da != D
                || la
                    .lines()
                    .any(|l| l.contains(name) && l.contains("Entering FAULT STATE (from MASTER)")),
            "{name} did not go FAULT:\n{la}"
        );
    }
    stays_both(&pair, "b", Duration::from_millis(500));

    a.exec("ip", &["link", "set", "trk0", "up"]).unwrap();
    wait_both(&pair, "a", Duration::from_secs(3));
    stays_both(&pair, "a", Duration::from_millis(300));
    assert!(pair.a.terminate(Duration::from_secs(5)), "a did not stop");
    let want = [
        "GROUP G BACKUP 0",
        "GROUP G MASTER 0",
        "GROUP G FAULT 0",
        "GROUP G BACKUP 0",
        "GROUP G MASTER 0",
        "GROUP G STOP 0",
    ];
    assert!(
        wait_until(Duration::from_secs(1), Duration::from_millis(10), || {
            dir.read("group.log").lines().count() >= want.len()
        }),
        "group notify lines: {:?}",
        dir.read("group.log")
    );
    assert_eq!(dir.read("group.log").lines().collect::<Vec<_>>(), want);
}

/// a runs the group (both at 150) and holds both VIPs; b then starts with VI_51 at 200
/// (preempts) and VI_52 at 100. a's VI_51 falls back to BACKUP and takes VI_52 along, so b
/// ends with both VIPs although a outranks it on VI_52.
#[test]
fn member_backup_takes_the_group_to_backup() {
    backup_case(D);
}

/// The same with keepalived on a (reference).
#[test]
fn member_backup_reference_keepalived() {
    backup_case(Daemon::Keepalived);
}

fn backup_case(da: Daemon) {
    require_root!();
    if !e2e::available(&[da, D]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let mut ca = node("a", 150, 3, ADV, VIP4);
    ca.extra_top = Some(format!("{}\n{}", group(""), vi52(150)));
    let mut cb = node("b", 200, 3, ADV, VIP4);
    cb.extra_top = Some(vi52(100));
    let pa = da.start(lab.host("a"), &ca.render()).unwrap();
    let ha = lab.host("a").clone();
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            ha.has_addr(addr(VIP4)) && ha.has_addr(addr(VIP52))
        }),
        "a alone never held both; log:\n{}",
        pa.log_text()
    );
    let db = D.start(lab.host("b"), &cb.render()).unwrap();
    let pair = Pair {
        a: pa,
        b: db,
        vip: addr(VIP4),
        lab,
    };
    wait_both(&pair, "b", Duration::from_secs(3));
    stays_both(&pair, "b", Duration::from_secs(1));
    let la = pair.a.log_text();
    assert!(
        da != D || la.contains("VRRP_Group(G) VI_51 is BACKUP: moving VI_52 along"),
        "a's log:\n{la}"
    );
}
