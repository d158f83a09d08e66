use std::net::IpAddr;

use super::*;
use crate::spec::{RealServerSpec, SchedulerKind, SorryServerSpec};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn script(s: &str) -> Option<ScriptSpec> {
    Some(ScriptSpec {
        command: s.into(),
        user: None,
        group: None,
    })
}

fn rs(last: u8, weight: u32) -> RealServerSpec {
    RealServerSpec {
        addr: IpAddr::from([192, 0, 2, last]),
        port: Some(8080),
        weight,
        notify_up: script(&format!("up {last}")),
        notify_down: script(&format!("down {last}")),
        ..Default::default()
    }
}

fn vs(port: u16, servers: Vec<RealServerSpec>) -> ServiceSpec {
    ServiceSpec {
        key: ServiceKey::Addr {
            addr: ip("203.0.113.1"),
            port: Some(port),
        },
        scheduler: SchedulerKind::Rr,
        real_servers: servers,
        ..Default::default()
    }
}

fn flow(client: &str, sport: u16) -> FlowKey {
    FlowKey {
        proto: Protocol::Tcp,
        src: ip(client),
        sport,
        dst: ip("203.0.113.1"),
        dport: 80,
    }
}

fn weights(c: &Controller, svc: usize) -> Vec<(u8, u32)> {
    let t = c.table();
    t.services()[svc]
        .servers
        .iter()
        .map(|s| match s.id.addr {
            IpAddr::V4(a) => (a.octets()[3], s.weight),
            IpAddr::V6(_) => (0, s.weight),
        })
        .collect()
}

#[test]
fn lookup_by_addr_port_portless_fwmark_and_group() {
    let specs = vec![
        vs(80, vec![rs(10, 1)]),
        ServiceSpec {
            key: ServiceKey::Addr {
                addr: ip("203.0.113.2"),
                port: None,
            },
            persistence_timeout: Some(60),
            real_servers: vec![rs(11, 1)],
            ..Default::default()
        },
        ServiceSpec {
            key: ServiceKey::Fwmark {
                mark: 7,
                family: IpFamily::Inet,
            },
            ..Default::default()
        },
        ServiceSpec {
            key: ServiceKey::Group("g".into()),
            protocol: Protocol::Udp,
            ..Default::default()
        },
    ];
    let groups = vec![VirtualServerGroupSpec {
        name: "g".into(),
        entries: vec![
            GroupEntry::Range {
                first: ip("198.51.100.1"),
                last: ip("198.51.100.10"),
                port: Some(53),
            },
            GroupEntry::Fwmark {
                mark: 9,
                family: None,
            },
        ],
    }];
    let (c, _) = Controller::new(specs, groups).unwrap();
    let t = c.table();
    let idx = |p, a: &str, port, m| t.lookup(p, ip(a), port, m).map(|s| s.index);
    assert_eq!(idx(Protocol::Tcp, "203.0.113.1", 80, None), Some(0));
    assert_eq!(idx(Protocol::Tcp, "203.0.113.1", 81, None), None);
    assert_eq!(
        idx(Protocol::Udp, "203.0.113.1", 80, None),
        None,
        "protocol is part of the key"
    );
    assert_eq!(
        idx(Protocol::Tcp, "203.0.113.2", 4444, None),
        Some(1),
        "port-less persistent VIP"
    );
    assert_eq!(
        idx(Protocol::Tcp, "203.0.113.1", 80, Some(7)),
        Some(2),
        "fwmark wins"
    );
    assert_eq!(idx(Protocol::Udp, "198.51.100.10", 53, None), Some(3));
    assert_eq!(idx(Protocol::Udp, "198.51.100.11", 53, None), None);
    assert_eq!(idx(Protocol::Tcp, "192.0.2.99", 1, Some(9)), Some(3));
}

#[test]
fn config_errors() {
    let e = Controller::new(
        vec![ServiceSpec {
            key: ServiceKey::Group("nope".into()),
            ..Default::default()
        }],
        vec![],
    );
    assert_eq!(e.unwrap_err(), BuildError::UnknownGroup("nope".into()));
    let e = Controller::new(vec![vs(80, vec![]), vs(80, vec![])], vec![]);
    assert!(matches!(e.unwrap_err(), BuildError::Duplicate(_)));
    let g = VirtualServerGroupSpec {
        name: "big".into(),
        entries: vec![GroupEntry::Range {
            first: ip("10.0.0.0"),
            last: ip("10.255.255.255"),
            port: Some(1),
        }],
    };
    let e = Controller::new(
        vec![ServiceSpec {
            key: ServiceKey::Group("big".into()),
            ..Default::default()
        }],
        vec![g],
    );
    assert!(matches!(e.unwrap_err(), BuildError::BadRange(..)));
}

#[test]
fn failure_removes_or_inhibits_and_runs_notify() {
    let mut spec = vs(80, vec![rs(10, 1), rs(11, 2), rs(12, 3)]);
    spec.real_servers[1].inhibit_on_failure = Some(true);
    let (mut c, init) = Controller::new(vec![spec], vec![]).unwrap();
    assert!(init.is_empty());
    assert_eq!(weights(&c, 0), vec![(10, 1), (11, 2), (12, 3)]);
    let a = c.apply(HealthEvent::Down { svc: 0, rs: 0 });
    assert_eq!(
        a,
        vec![Action {
            event: Event::ServerDown { svc: 0, rs: 0 },
            script: script("down 10")
        }]
    );
    assert_eq!(weights(&c, 0), vec![(11, 2), (12, 3)], "removed");
    c.apply(HealthEvent::Down { svc: 0, rs: 1 });
    assert_eq!(
        weights(&c, 0),
        vec![(11, 0), (12, 3)],
        "inhibit_on_failure: weight 0"
    );
    // Repeated Down is not an event.
    assert!(c.apply(HealthEvent::Down { svc: 0, rs: 1 }).is_empty());
    let a = c.apply(HealthEvent::Up { svc: 0, rs: 1 });
    assert_eq!(a[0].script, script("up 11"));
    assert_eq!(weights(&c, 0), vec![(11, 2), (12, 3)]);
    c.apply(HealthEvent::Weight {
        svc: 0,
        rs: 2,
        weight: 7,
    });
    assert_eq!(weights(&c, 0), vec![(11, 2), (12, 7)]);
    // Out of range: ignored.
    assert!(c.apply(HealthEvent::Down { svc: 5, rs: 0 }).is_empty());
}

#[test]
fn quorum_with_hysteresis_and_sorry_server() {
    let mut spec = vs(80, (10..14).map(|i| rs(i, 1)).collect());
    spec.quorum = 3;
    spec.hysteresis = 1;
    spec.quorum_up = script("qup");
    spec.quorum_down = script("qdown");
    spec.sorry_server = Some(SorryServerSpec {
        addr: ip("192.0.2.99"),
        port: Some(80),
        inhibit: false,
        forwarding: None,
    });
    let (mut c, _) = Controller::new(vec![spec], vec![]).unwrap();
    c.apply(HealthEvent::Down { svc: 0, rs: 0 });
    // Sum 3 → 2 … not below quorum - hysteresis = 2: still up.
    let a = c.apply(HealthEvent::Down { svc: 0, rs: 1 });
    assert_eq!(a.len(), 1);
    assert!(c.table().services()[0].quorum_up);
    let a = c.apply(HealthEvent::Down { svc: 0, rs: 2 });
    assert_eq!(
        a[1],
        Action {
            event: Event::QuorumLost { svc: 0 },
            script: script("qdown")
        }
    );
    let t = c.table();
    let s = &t.services()[0];
    assert!(s.sorry_active && !s.quorum_up);
    assert_eq!(
        weights(&c, 0),
        vec![(99, 1)],
        "sorry server replaces the pool"
    );
    // Back to 3 live: not yet quorum + hysteresis = 4.
    c.apply(HealthEvent::Up { svc: 0, rs: 0 });
    let a = c.apply(HealthEvent::Up { svc: 0, rs: 1 });
    assert_eq!(a.len(), 1);
    assert_eq!(weights(&c, 0), vec![(99, 1)]);
    let a = c.apply(HealthEvent::Up { svc: 0, rs: 2 });
    assert_eq!(
        a[1],
        Action {
            event: Event::QuorumGained { svc: 0 },
            script: script("qup")
        }
    );
    assert_eq!(weights(&c, 0), vec![(10, 1), (11, 1), (12, 1), (13, 1)]);
}

#[test]
fn sorry_server_inhibit_keeps_it_at_weight_zero() {
    let mut spec = vs(80, vec![rs(10, 1)]);
    spec.sorry_server = Some(SorryServerSpec {
        addr: ip("192.0.2.99"),
        port: None,
        inhibit: true,
        forwarding: None,
    });
    let (c, _) = Controller::new(vec![spec], vec![]).unwrap();
    assert_eq!(weights(&c, 0), vec![(10, 1), (99, 0)]);
    let t = c.table();
    let p = PersistTable::new(16);
    for k in 0..4 {
        assert_eq!(
            t.services()[0]
                .schedule(&flow("198.51.100.7", k), 0, &p)
                .unwrap()
                .server
                .id
                .addr,
            ip("192.0.2.10")
        );
    }
}

#[test]
fn alpha_starts_down_and_loses_quorum() {
    let mut spec = vs(80, vec![rs(10, 1)]);
    spec.alpha = true;
    spec.quorum_down = script("qdown");
    let (mut c, init) = Controller::new(vec![spec], vec![]).unwrap();
    assert_eq!(
        init,
        vec![Action {
            event: Event::QuorumLost { svc: 0 },
            script: script("qdown")
        }]
    );
    assert!(weights(&c, 0).is_empty());
    let a = c.apply(HealthEvent::Up { svc: 0, rs: 0 });
    assert_eq!(a[1].event, Event::QuorumGained { svc: 0 });
}

#[test]
fn rr_through_snapshot_and_counters_survive_rebuilds() {
    let (mut c, _) =
        Controller::new(vec![vs(80, vec![rs(10, 1), rs(11, 1), rs(12, 1)])], vec![]).unwrap();
    let t = c.table();
    let s = &t.services()[0];
    let p = PersistTable::new(16);
    let got: Vec<u8> = (0..6)
        .map(|k| {
            match s
                .schedule(&flow("198.51.100.7", k), 0, &p)
                .unwrap()
                .server
                .id
                .addr
            {
                IpAddr::V4(a) => a.octets()[3],
                _ => 0,
            }
        })
        .collect();
    assert_eq!(got, vec![10, 11, 12, 10, 11, 12]);
    s.servers[2].stats.bind(true);
    c.apply(HealthEvent::Down { svc: 0, rs: 0 });
    let t2 = c.table();
    assert!(!Arc::ptr_eq(&t, &t2));
    let s2 = t2.services()[0]
        .server(&DestId {
            addr: ip("192.0.2.12"),
            port: Some(8080),
        })
        .unwrap();
    assert_eq!(s2.stats.active(), 1);
    assert!(Arc::ptr_eq(&s2.stats, &s.servers[2].stats));
    // RTT feeds the live counters without a new snapshot.
    c.apply(HealthEvent::Rtt {
        svc: 0,
        rs: 2,
        micros: 900,
    });
    assert!(Arc::ptr_eq(&t2, &c.table()));
    assert_eq!(s2.stats.rtt_us(), Some(900));
}

#[test]
fn persistence_holds_across_connections_and_granularity() {
    let mut spec = vs(80, vec![rs(10, 1), rs(11, 1), rs(12, 1)]);
    spec.persistence_timeout = Some(300);
    spec.persistence_granularity = Some(24);
    let (mut c, _) = Controller::new(vec![spec], vec![]).unwrap();
    let p = PersistTable::new(1024);
    let t = c.table();
    let s = &t.services()[0];
    let first = s.schedule(&flow("198.51.100.7", 1000), 0, &p).unwrap();
    assert!(first.persist.is_some());
    let sticky = first.server.id;
    for k in 1..10 {
        let host = format!("198.51.100.{}", 7 + k);
        assert_eq!(
            s.schedule(&flow(&host, 1000 + k), k as u64, &p)
                .unwrap()
                .server
                .id,
            sticky
        );
    }
    // Another /24 is scheduled afresh (rr moves on).
    assert_ne!(
        s.schedule(&flow("198.51.101.7", 1), 10, &p)
            .unwrap()
            .server
            .id,
        sticky
    );
    // The sticky server fails: the template is re-pointed.
    let rsi = c.rs_index(0, sticky).unwrap();
    c.apply(HealthEvent::Down { svc: 0, rs: rsi });
    let t = c.table();
    let moved = t.services()[0]
        .schedule(&flow("198.51.100.7", 2000), 20, &p)
        .unwrap()
        .server
        .id;
    assert_ne!(moved, sticky);
    assert_eq!(
        t.services()[0]
            .schedule(&flow("198.51.100.9", 2001), 21, &p)
            .unwrap()
            .server
            .id,
        moved
    );
}

#[test]
fn shared_table_swaps_snapshots() {
    let (mut c, _) = Controller::new(vec![vs(80, vec![rs(10, 1), rs(11, 1)])], vec![]).unwrap();
    let shared = SharedTable::new(c.table());
    let old = shared.load_full();
    c.apply(HealthEvent::Down { svc: 0, rs: 0 });
    shared.store(c.table());
    assert_eq!(
        old.services()[0].servers.len(),
        2,
        "readers keep their snapshot"
    );
    assert_eq!(shared.load().services()[0].servers.len(), 1);
}
