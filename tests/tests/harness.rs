//! The harness itself: topology, reachability, cleanup, and the prober's gap measurement.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lab::lab::namespaces_with_prefix;
use lab::{require_root, wait_until, Lab, Prober};

#[test]
fn lab_builds_fast_and_hosts_reach_each_other() {
    require_root!();
    let t0 = Instant::now();
    let lab = Lab::builder().build().expect("lab");
    let setup = t0.elapsed();
    assert!(setup < Duration::from_secs(1), "lab setup took {setup:?}");
    let (a, b, c) = (lab.host("a"), lab.host("b"), lab.host("client"));
    for (from, to) in [(a, b.v4), (b, c.v4), (c, a.v4), (a, b.v6), (c, b.v6)] {
        assert!(from.ping(to), "{} cannot ping {to}", from.name);
    }
    // After pinging, neighbour entries hold the peers' real MACs.
    assert_eq!(a.neigh(b.v4), Some(b.mac().unwrap()));
    assert!(a.has_addr(a.v4) && a.has_addr(a.v6));
    assert!(!a.has_addr(b.v4));
    // Cutting the cable isolates the node; plugging it back heals.
    b.link_down().unwrap();
    assert!(!a.ping(b.v4), "b reachable with its cable cut");
    b.link_up().unwrap();
    assert!(wait_until(
        Duration::from_secs(3),
        Duration::from_millis(50),
        || a.ping(b.v4)
    ));
}

#[test]
fn cleanup_leaves_no_namespace_with_our_prefix() {
    require_root!();
    let prefix;
    {
        let lab = Lab::builder()
            .host("x", "192.0.2.11/24", "2001:db8::11/64")
            .host("y", "192.0.2.12/24", "2001:db8::12/64")
            .build()
            .expect("lab");
        prefix = lab.prefix.clone();
        assert_eq!(namespaces_with_prefix(&prefix).len(), 3, "bridge + x + y");
        let _sleeper = lab.host("x").spawn("sleep", &["30"], None).unwrap();
    }
    assert!(namespaces_with_prefix(&prefix).is_empty());
    // Also on panic: Drop runs during unwinding.
    let r = std::panic::catch_unwind(|| {
        let lab = Lab::builder().build().expect("lab");
        let p = lab.prefix.clone();
        panic!("{p}");
    });
    let p = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(p.starts_with("vl"));
    assert!(namespaces_with_prefix(&p).is_empty(), "{p} left behind");
}

fn measure_manual_gap(vip: &str) -> f64 {
    let lab = Lab::builder().build().expect("lab");
    let (a, client) = (lab.host("a"), lab.host("client"));
    let addr: IpAddr = vip.split('/').next().unwrap().parse().unwrap();
    a.addr_add(vip).unwrap();
    let prober = Prober::start(client, addr, Duration::from_millis(1)).unwrap();
    assert!(wait_until(
        Duration::from_secs(3),
        Duration::from_millis(5),
        || prober.replies() > 100
    ));
    a.addr_del(vip).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    a.addr_add(vip).unwrap();
    let n = prober.replies();
    assert!(wait_until(
        Duration::from_secs(3),
        Duration::from_millis(5),
        || prober.replies() > n + 100
    ));
    let rep = prober.stop().unwrap();
    assert!(rep.sent >= rep.received && rep.received > 200, "{rep:?}");
    rep.longest_gap_ms
}

#[test]
fn prober_measures_a_200ms_gap_ipv4() {
    require_root!();
    let gap = measure_manual_gap("192.0.2.100/24");
    assert!((150.0..1000.0).contains(&gap), "gap {gap} ms");
}

#[test]
fn prober_measures_a_200ms_gap_ipv6() {
    require_root!();
    let gap = measure_manual_gap("2001:db8::100/64");
    assert!((150.0..1000.0).contains(&gap), "gap {gap} ms");
}

#[test]
fn capture_records_and_tshark_decodes() {
    require_root!();
    let lab = Lab::builder().build().expect("lab");
    let (a, client) = (lab.host("a"), lab.host("client"));
    let mut cap = lab::Capture::start(client, "icmp", "icmp").unwrap();
    assert!(a.ping(client.v4));

    let rows = cap
        .tshark_fields("icmp", &["ip.src", "ip.dst", "icmp.type"])
        .unwrap();
    let want = vec![a.v4.to_string(), client.v4.to_string(), "8".to_string()];
    assert!(rows.contains(&want), "{rows:?}");
    assert_eq!(cap.count_malformed().unwrap(), 0);
}
