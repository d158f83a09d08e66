//! Connection sync between two dataplanes (lbcore's sync daemon, no VRRP): `lb` forwards and
//! sends, `lb2` stands by and installs; the moving addresses go to `lb2` by hand (as VRRP
//! would move them), `lb` is stopped and cut off, and the client's long-lived TCP and UDP
//! flows must go on at the same real servers without a reset. Without sync, the same
//! takeover resets every TCP connection (IPVS's sloppy_tcp off).
//! The daemon-level version (vrrpd pairs, SIGKILL) is `lb_sync_pair.rs`.

use std::time::Duration;

use lab::flows::{FlowReport, Flows};
use lab::lb::{service, tables, LbLab, Plan, UDP_PORT};
use lab::require_root;
use lbcore::dataplane::{DataplaneConfig, SyncdConfig};
use lbcore::spec::{ForwardingMethod, Protocol, SchedulerKind, ServiceSpec};
use lbcore::sync::{Role, SyncSnapshot};

struct Case {
    plan: Plan,
    method: ForwardingMethod,
    sched: SchedulerKind,
    persist: Option<u32>,
    sync: bool,
    tcp: usize,
    udp: usize,
}

struct Outcome {
    flows: Vec<FlowReport>,
    backup: Option<SyncSnapshot>,
}

fn run(c: &Case) -> Outcome {
    let lab = LbLab::new_pair(c.plan, 2).expect("lab");
    let mk = |proto, port| ServiceSpec {
        scheduler: c.sched,
        forwarding: c.method,
        persistence_timeout: c.persist,
        ..service(&lab, proto, port)
    };
    let specs = vec![mk(Protocol::Tcp, 80), mk(Protocol::Udp, UDP_PORT)];
    let cfg = |forwarding| DataplaneConfig {
        workers: 2,
        forwarding,
        snat_sources: lab.snat_sources(),
        sync: c.sync.then(|| {
            let mut s = SyncdConfig::new("eth0");
            s.session.syncid = 51;
            s
        }),
        ..Default::default()
    };
    // Each node has its own controller and tables, as two daemons would.
    let (_ca, ta, pa) = tables(specs.clone());
    let (_cb, tb, pb) = tables(specs);
    let a = lab.start(cfg(true), ta, pa).expect("dataplane a");
    let lb2 = lab.lab.host("lb2").clone();
    let b = lab.start_on(&lb2, cfg(false), tb, pb).expect("dataplane b");
    a.dp().set_sync_role(Role::Master);
    b.dp().set_sync_role(Role::Backup);
    let flows = Flows::start(
        lab.client(),
        lab.vip.into(),
        UDP_PORT,
        c.tcp,
        c.udp,
        Duration::from_millis(100),
    )
    .expect("flows");
    if c.sync {
        let want = (c.tcp + c.udp) as u64;
        let installed = lab::wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            b.dp().sync_counters().is_some_and(|s| s.installed >= want)
        });
        assert!(installed, "lb2 installed: {:?}", b.dp().sync_counters());
    }
    assert!(flows.wait_rounds(3, Duration::from_secs(10)));
    // The Master goes: its cable is cut, its dataplane stops (in that order: a stopped
    // dataplane takes its firewall rules along, and lb's kernel would reset the flows), the
    // addresses move.
    lab.lb().link_down().expect("cut lb");
    drop(a);
    lab.move_addrs(lab.lb(), &lb2).expect("move addresses");
    b.dp().set_forwarding(true);
    b.dp().set_sync_role(Role::Master);
    assert!(flows.wait_rounds(15, Duration::from_secs(20)));
    let flows = flows.stop();
    Outcome {
        flows,
        backup: b.dp().sync_counters(),
    }
}

fn broken(o: &Outcome) -> Vec<&FlowReport> {
    o.flows.iter().filter(|f| f.broken.is_some()).collect()
}

#[test]
fn one_arm_nat_wlc_persistent_flows_survive_the_takeover() {
    require_root!();
    let o = run(&Case {
        plan: Plan::Nat,
        method: ForwardingMethod::NatOneArm,
        sched: SchedulerKind::Wlc,
        persist: None,
        sync: true,
        tcp: 50,
        udp: 4,
    });
    assert_eq!(broken(&o), Vec::<&FlowReport>::new(), "{:?}", o.backup);
    let s = o.backup.expect("sync counters");
    assert!(s.adopted >= 54, "lb2 took every flow over: {s:?}");
    assert!(o.flows.iter().all(|f| f.exchanges >= 15));
}

#[test]
fn tun_rr_flows_survive_the_takeover() {
    require_root!();
    let o = run(&Case {
        plan: Plan::Tun,
        method: ForwardingMethod::Tun(Default::default()),
        sched: SchedulerKind::Rr,
        persist: None,
        sync: true,
        tcp: 10,
        udp: 2,
    });
    assert_eq!(broken(&o), Vec::<&FlowReport>::new(), "{:?}", o.backup);
}

#[test]
fn dr_rr_flows_survive_and_without_sync_tcp_is_reset() {
    require_root!();
    let case = Case {
        plan: Plan::Dr,
        method: ForwardingMethod::Dr,
        sched: SchedulerKind::Rr,
        persist: None,
        sync: true,
        tcp: 50,
        udp: 4,
    };
    let o = run(&case);
    assert_eq!(broken(&o), Vec::<&FlowReport>::new(), "{:?}", o.backup);
    // The same takeover without sync: no node knows the connections, and a segment of a
    // connection nobody knows is answered with a reset (IPVS's default).
    let o = run(&Case {
        sync: false,
        tcp: 10,
        ..case
    });
    let tcp_broken = broken(&o).iter().filter(|f| f.kind == "tcp").count();
    eprintln!("without sync: {tcp_broken} of 10 TCP connections broken");
    assert_eq!(tcp_broken, 10, "{:?}", o.flows);
}

/// What goes on the wire is IPVS's sync protocol: tshark's `ipvs` dissector decodes every
/// captured message without complaint, and the entries it shows are the connections (and the
/// persistence template) the client made.
#[test]
fn sync_messages_decode_with_tshark_as_the_connections_made() {
    require_root!();
    use std::collections::BTreeSet;
    let lab = LbLab::new_pair(Plan::Nat, 2).expect("lab");
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Rr,
        forwarding: ForwardingMethod::Nat,
        persistence_timeout: Some(120),
        ..service(&lab, Protocol::Tcp, 80)
    };
    let cfg = DataplaneConfig {
        sync: Some(SyncdConfig::new("eth0")),
        ..Default::default()
    };
    let (_ca, ta, pa) = tables(vec![spec.clone()]);
    let (_cb, tb, pb) = tables(vec![spec]);
    let a = lab.start(cfg.clone(), ta, pa).expect("dataplane a");
    let lb2 = lab.lab.host("lb2").clone();
    let b = lab
        .start_on(
            &lb2,
            DataplaneConfig {
                forwarding: false,
                ..cfg
            },
            tb,
            pb,
        )
        .expect("dataplane b");
    let mut cap = lab::capture::Capture::start(&lb2, "sync", "udp port 8848").expect("tcpdump");
    a.dp().set_sync_role(Role::Master);
    b.dp().set_sync_role(Role::Backup);
    let vip = std::net::SocketAddr::new(lab.vip.into(), 80);
    let mut made = BTreeSet::new();
    let mut conns = Vec::new();
    for _ in 0..10 {
        let mut c = lab::lb::in_netns(lab.client(), || lab::lb::KeepAlive::connect(vip))
            .expect("netns")
            .expect("connect");
        let server = c.get().expect("GET");
        let rs = lab.rs[server[2..3].parse::<usize>().expect("rsN") - 1];
        made.insert((c.local_port().expect("port").to_string(), rs.to_string()));
        conns.push(c);
    }
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(10), || b
            .dp()
            .sync_counters()
            .is_some_and(|s| s.installed >= 11)),
        "lb2 {:?} lb {:?}",
        b.dp().sync_counters(),
        a.dp().sync_counters()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(cap.count_malformed().expect("tshark"), 0);
    let rows = cap
        .tshark_fields(
            "ipvs",
            &[
                "ipvs.syncid",
                "ipvs.caddr",
                "ipvs.cport",
                "ipvs.vaddr",
                "ipvs.vport",
                "ipvs.daddr",
                "ipvs.dport",
                "ipvs.flags.v1",
                "ipvs.state",
                "ipvs.timeout",
            ],
        )
        .expect("tshark fields");
    let mut seen = BTreeSet::new();
    let mut templates = 0;
    for r in &rows {
        let col = |i: usize| {
            r.get(i)
                .filter(|c| !c.is_empty())
                .map(|c| c.split(',').collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let (caddr, cport, vaddr, vport, daddr, dport, flags, state, timeout) = (
            col(1),
            col(2),
            col(3),
            col(4),
            col(5),
            col(6),
            col(7),
            col(8),
            col(9),
        );
        for i in 0..caddr.len() {
            assert_eq!((vaddr[i], vport[i]), (lab.vip.to_string().as_str(), "80"));
            assert_eq!(dport[i], "8080");
            let flags = u32::from_str_radix(flags[i].trim_start_matches("0x"), 16).expect("flags");
            let timeout: u32 = timeout[i].parse().expect("timeout");
            if flags & 0x1000 != 0 {
                templates += 1;
                assert_eq!(
                    (caddr[i], cport[i]),
                    (lab.client_addr().to_string().as_str(), "0")
                );
                assert!(
                    timeout >= 120,
                    "a controlled template lasts the persistence timeout"
                );
            } else {
                assert_eq!(caddr[i], lab.client_addr().to_string());
                assert_eq!(flags & 0x7, 0, "masquerading");
                assert_eq!(state[i], "0x0001", "established");
                assert!((890..=900).contains(&timeout), "{timeout}");
                seen.insert((cport[i].to_string(), daddr[i].to_string()));
            }
        }
    }
    assert!(templates >= 1, "{rows:?}");
    assert_eq!(
        seen, made,
        "every connection, with its real server, and nothing else"
    );
    drop(conns);
}
