//! End-to-end: the in-process balancer (lbcore::dataplane) between a client
//! and nginx real servers, each in its own namespace. Every method (NAT,
//! one-arm NAT, DR, TUN), TCP and UDP; the split matches the scheduler;
//! persistence; a real server taken out by a health event gets nothing new.

use lab::lb::{service, tables, tally, LbLab, Plan};
use lab::require_root;
use lbcore::dataplane::{DataplaneConfig, DropReason};
use lbcore::service::HealthEvent;
use lbcore::spec::{ForwardingMethod, Protocol, SchedulerKind, ServiceSpec, TunOptions};

fn cfg(workers: usize) -> DataplaneConfig {
    DataplaneConfig {
        workers,
        ..Default::default()
    }
}

#[test]
fn lb_nat_rr_exact_with_port_mapping_and_health_removal() {
    require_root!();
    let lab = LbLab::new(Plan::Nat, 3, 0).expect("lab");
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Rr,
        forwarding: ForwardingMethod::Nat,
        ..service(&lab, Protocol::Tcp, 80)
    };
    let (mut c, table, persist) = tables(vec![spec]);
    let lb = lab.start(cfg(2), table, persist).expect("dataplane");
    let answers: Vec<String> = (0..30)
        .map(|_| lab.get(None).expect("GET via VIP"))
        .collect();
    let t = tally(&answers);
    assert_eq!(
        t,
        [("rs1", 10), ("rs2", 10), ("rs3", 10)]
            .map(|(k, v)| (k.to_string(), v))
            .into(),
        "rr is exact: {answers:?}"
    );
    // Two-arm NAT keeps the client's address (VIP:80 -> RIP:8080).
    let client = lab.client_addr().to_string();
    assert!(answers.iter().all(|a| a.ends_with(&client)), "{answers:?}");
    // rs2 fails its checks: no new connection goes to it.
    let ev = c.apply(HealthEvent::Down { svc: 0, rs: 1 });
    assert!(!ev.is_empty());
    lb.publish(&c);
    let after: Vec<String> = (0..20).map(|_| lab.get(None).expect("GET")).collect();
    let t = tally(&after);
    assert_eq!(t.get("rs2"), None, "{after:?}");
    assert_eq!(t.values().sum::<usize>(), 20);
    let n = lb.dp().counters();
    assert!(n.new_conns >= 50 && n.replies > 0, "{n:?}");
    assert_eq!(n.dropped(DropReason::NoNeigh), 0, "{n:?}");
}

#[test]
fn lb_one_arm_nat_wrr_by_weight_hides_the_client() {
    require_root!();
    let lab = LbLab::new(Plan::Nat, 2, 0).expect("lab");
    let mut spec = ServiceSpec {
        scheduler: SchedulerKind::Wrr,
        forwarding: ForwardingMethod::NatOneArm,
        ..service(&lab, Protocol::Tcp, 80)
    };
    spec.real_servers[1].weight = 3;
    let (_c, table, persist) = tables(vec![spec]);
    let lb = lab.start(cfg(2), table, persist).expect("dataplane");
    let answers: Vec<String> = (0..40)
        .map(|_| lab.get(None).expect("GET via VIP"))
        .collect();
    let t = tally(&answers);
    assert_eq!(t.get("rs1"), Some(&10), "{answers:?}");
    assert_eq!(t.get("rs2"), Some(&30), "{answers:?}");
    // Real servers see the balancer, not the client.
    let lb_addr = lab.lb_addr.to_string();
    assert!(answers.iter().all(|a| a.ends_with(&lb_addr)), "{answers:?}");
    assert_eq!(lb.dp().counters().dropped(DropReason::PortsExhausted), 0);
}

#[test]
fn lb_dr_sh_and_mh_sticky_per_client() {
    require_root!();
    let lab = LbLab::new(Plan::Dr, 3, 6).expect("lab");
    for sched in [SchedulerKind::Sh, SchedulerKind::Mh] {
        let spec = ServiceSpec {
            scheduler: sched,
            forwarding: ForwardingMethod::Dr,
            ..service(&lab, Protocol::Tcp, 80)
        };
        let (_c, table, persist) = tables(vec![spec]);
        let lb = lab.start(cfg(2), table, persist).expect("dataplane");
        let mut used = std::collections::BTreeSet::new();
        for &src in &lab.clients {
            let answers: Vec<String> = (0..5)
                .map(|_| lab.get(Some(src)).expect("GET via VIP"))
                .collect();
            let t = tally(&answers);
            assert_eq!(t.len(), 1, "{sched:?}: client {src} moved: {answers:?}");
            // DR: the real server sees the client itself.
            assert!(answers[0].ends_with(&src.to_string()), "{answers:?}");
            used.extend(t.into_keys());
        }
        assert!(used.len() >= 2, "{sched:?}: 6 clients all on {used:?}");
        let n = lb.dp().counters();
        assert!(n.new_conns >= 30, "{n:?}");
        assert_eq!(n.replies, 0, "DR replies bypass the balancer");
    }
}

#[test]
fn lb_tun_rr_with_persistence_across_connections() {
    require_root!();
    let lab = LbLab::new(Plan::Tun, 2, 1).expect("lab");
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Rr,
        forwarding: ForwardingMethod::Tun(TunOptions::default()),
        persistence_timeout: Some(60),
        ..service(&lab, Protocol::Tcp, 80)
    };
    let (_c, table, persist) = tables(vec![spec]);
    let lb = lab
        .start(cfg(2), table, persist.clone())
        .expect("dataplane");
    let a: Vec<String> = (0..8)
        .map(|_| lab.get(None).expect("GET via VIP"))
        .collect();
    assert_eq!(
        tally(&a).len(),
        1,
        "persistent: one server for the client: {a:?}"
    );
    // The other client address gets the next rr server, and keeps it.
    let b: Vec<String> = (0..8)
        .map(|_| lab.get(Some(lab.clients[0])).expect("GET"))
        .collect();
    assert_eq!(tally(&b).len(), 1, "{b:?}");
    assert_ne!(tally(&a).keys().next(), tally(&b).keys().next());
    assert_eq!(persist.len(), 2, "one template per client");
    assert!(lb.dp().counters().tx >= 16 * 3);
}

#[test]
fn lb_udp_round_robin_in_every_mode() {
    require_root!();
    for (plan, method) in [
        (Plan::Nat, ForwardingMethod::Nat),
        (Plan::Nat, ForwardingMethod::NatOneArm),
        (Plan::Dr, ForwardingMethod::Dr),
        (Plan::Tun, ForwardingMethod::Tun(TunOptions::default())),
    ] {
        let lab = LbLab::new(plan, 2, 0).expect("lab");
        let spec = ServiceSpec {
            scheduler: SchedulerKind::Rr,
            forwarding: method,
            ..service(&lab, Protocol::Udp, lab::lb::UDP_PORT)
        };
        let (_c, table, persist) = tables(vec![spec]);
        let lb = lab.start(cfg(1), table, persist).expect("dataplane");
        // Each source port is a new UDP flow; the answer comes from the VIP.
        let answers: Vec<String> = (0..10)
            .map(|i| lab.udp(40000 + i).expect("UDP via VIP"))
            .collect();
        let t = tally(&answers);
        assert_eq!(t.get("rs1"), Some(&5), "{method:?}: {answers:?}");
        assert_eq!(t.get("rs2"), Some(&5), "{method:?}: {answers:?}");
        // The same flow again: same server (tracked for the UDP timeout).
        let again = lab.udp(40000).expect("UDP");
        assert_eq!(again, answers[0]);
        // Who the real server saw: the client, or the balancer in one-arm mode.
        let seen = if method == ForwardingMethod::NatOneArm {
            lab.lb_addr.to_string()
        } else {
            lab.client_addr().to_string()
        };
        assert!(answers.iter().all(|a| a.ends_with(&seen)), "{answers:?}");
        let n = lb.dp().counters();
        if plan == Plan::Nat {
            assert!(n.replies >= 11, "{n:?}");
        }
    }
}

#[test]
fn lb_forwarding_switch_and_kernel_silence() {
    require_root!();
    let lab = LbLab::new(Plan::Dr, 1, 0).expect("lab");
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Rr,
        forwarding: ForwardingMethod::Dr,
        ..service(&lab, Protocol::Tcp, 80)
    };
    let (_c, table, persist) = tables(vec![spec]);
    let lb = lab.start(cfg(1), table, persist).expect("dataplane");
    assert!(lab.get(None).expect("GET").starts_with("rs1"));
    // Off (this node is Backup): no answer at all, in particular no RST
    // from the balancer's kernel (nftables hides the VIP's port from it).
    lb.dp().set_forwarding(false);
    let err = lab.get(None).expect_err("no service while off");
    let msg = err.to_string();
    assert!(!msg.contains("refused") && !msg.contains("reset"), "{msg}");
    assert!(lb.dp().counters().dropped(DropReason::Standby) >= 1);
    lb.dp().set_forwarding(true);
    assert!(lab.get(None).expect("GET").starts_with("rs1"));
}

#[test]
fn lb_tun_path_mtu_is_answered_with_frag_needed() {
    require_root!();
    let lab = LbLab::new(Plan::Tun, 1, 0).expect("lab");
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Rr,
        forwarding: ForwardingMethod::Tun(TunOptions::default()),
        ..service(&lab, Protocol::Tcp, 80)
    };
    let (_c, table, persist) = tables(vec![spec]);
    let lb = lab.start(cfg(1), table, persist).expect("dataplane");
    // Full-size segments do not fit the tunnel with DF set: the balancer
    // answers "fragmentation needed" (MTU 1480), the client's kernel lowers
    // its path MTU to the VIP and the upload goes through.
    let vip = std::net::SocketAddr::new(lab.vip.into(), 80);
    let body = lab::lb::in_netns(lab.client(), || lab::lb::http_post(vip, 200_000))
        .expect("netns")
        .expect("POST through the tunnel");
    assert!(body.starts_with("rs1"), "{body}");
    let n = lb.dp().counters();
    assert!(n.dropped(DropReason::TooBig) >= 1, "{n:?}");
    let route = lab
        .client()
        .exec("ip", &["route", "get", &lab.vip.to_string()])
        .expect("ip route get");
    let route = String::from_utf8_lossy(&route.stdout);
    assert!(route.contains("mtu 1480"), "client's PMTU: {route}");
}

/// With IPVS's `sloppy_tcp` on, a mid-stream segment starts a connection: a hash scheduler
/// then sends a flow taken over without connection sync to the server it had.
#[test]
fn lb_mh_failover_keeps_established_flows_on_their_server() {
    require_root!();
    let lab = LbLab::new_pair(Plan::Dr, 3).expect("lab");
    // mh-port: one client's connections spread over the servers by port.
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Mh,
        sched_flags: lbcore::spec::SchedFlags {
            mh_port: true,
            ..Default::default()
        },
        forwarding: ForwardingMethod::Dr,
        ..service(&lab, Protocol::Tcp, 80)
    };
    // Each node has its own controller and tables, as two daemons would.
    let (_ca, ta, pa) = tables(vec![spec.clone()]);
    let (_cb, tb, pb) = tables(vec![spec]);
    let a = lab.start(cfg(2), ta, pa).expect("dataplane a");
    let lb2 = lab.lab.host("lb2").clone();
    let b = lab
        .start_on(
            &lb2,
            DataplaneConfig {
                forwarding: false,
                sloppy_tcp: true,
                ..cfg(2)
            },
            tb,
            pb,
        )
        .expect("dataplane b");
    let vip = std::net::SocketAddr::new(lab.vip.into(), 80);
    // At least 6 connections and two real servers among them (mh hashes the random source
    // ports: 6 connections land on one server now and then), at most 40.
    let mut conns: Vec<lab::lb::KeepAlive> = Vec::new();
    let mut before: Vec<String> = Vec::new();
    while conns.len() < 40 && (conns.len() < 6 || tally(&before).len() < 2) {
        let mut c = lab::lb::in_netns(lab.client(), || lab::lb::KeepAlive::connect(vip))
            .expect("netns")
            .expect("connect");
        before.push(c.get().expect("GET"));
        conns.push(c);
    }
    // Failover: a stops, the VIP moves to lb2 (the client learns its MAC as
    // from vrrpd's gratuitous ARP), b starts forwarding.
    a.dp().set_forwarding(false);
    lab.lb()
        .addr_del(&format!("{}/32", lab.vip))
        .expect("del VIP");
    lb2.addr_add(&format!("{}/32", lab.vip)).expect("add VIP");
    b.dp().set_forwarding(true);
    let mac = lb2.mac().expect("mac");
    let out = lab
        .client()
        .exec(
            "ip",
            &[
                "neigh",
                "replace",
                &lab.vip.to_string(),
                "lladdr",
                &mac,
                "dev",
                "eth0",
            ],
        )
        .expect("ip neigh");
    assert!(out.status.success());
    let after: Vec<String> = conns
        .iter_mut()
        .map(|c| c.get().expect("GET on the same connection after failover"))
        .collect();
    assert_eq!(
        before, after,
        "mh sent every established flow to its server"
    );
    let nb = b.dp().counters();
    assert!(
        nb.new_conns >= conns.len() as u64,
        "b took the flows over mid-stream: {nb:?}"
    );
    // New connections work on the new node.
    assert!(lab.get(None).expect("GET").starts_with("rs"));
    assert!(tally(&before).len() >= 2, "{before:?}");
}

#[test]
fn lb_one_arm_nat_reuses_ports_of_closed_connections() {
    require_root!();
    let lab = LbLab::new(Plan::Nat, 1, 0).expect("lab");
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Rr,
        forwarding: ForwardingMethod::NatOneArm,
        ..service(&lab, Protocol::Tcp, 80)
    };
    let (_c, table, persist) = tables(vec![spec]);
    // Four source ports, two per worker: 40 sequential connections only fit
    // if the ports of closed ones are taken over (their TIME_WAIT is 120 s).
    let lb = lab
        .start(
            DataplaneConfig {
                snat_ports: 61000..=61003,
                ..cfg(2)
            },
            table,
            persist,
        )
        .expect("dataplane");
    for i in 0..40 {
        let a = lab
            .get(None)
            .unwrap_or_else(|e| panic!("connection {i}: {e} {:?}", lb.dp().counters()));
        assert!(a.starts_with("rs1"), "{a}");
    }
    let n = lb.dp().counters();
    assert_eq!(n.dropped(DropReason::PortsExhausted), 0, "{n:?}");
    assert!(lb.dp().nat_bindings() <= 4);
}
