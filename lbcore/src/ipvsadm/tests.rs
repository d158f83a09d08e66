//! Golden listings. The expected files were printed with ipvsadm 1.31's printf formats (the
//! same `%-33s`, `%-28s`, `%-7s %-6d %-10u %-10u`, print_largenum... applied by another
//! printf implementation), so a column that drifts by one fails here.

use std::collections::HashMap;
use std::net::IpAddr;

use super::*;
use crate::conntrack::ConnRow;
use crate::persist::PersistKey;
use crate::service::{Controller, HealthEvent};
use crate::spec::{
    ForwardingMethod, IpFamily, Protocol, RealServerSpec, SchedFlags, SchedulerKind, ServiceKey,
    ServiceSpec, TunOptions,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rs(addr: &str, port: Option<u16>, weight: u32) -> RealServerSpec {
    RealServerSpec {
        addr: ip(addr),
        port,
        weight,
        ..Default::default()
    }
}

/// NAT on :80 (the second server inhibited after a failure), persistent DR on :443, UDP over
/// IPv6, and a fwmark service with a scheduler flag; configured out of ipvsadm's order.
fn controller() -> Controller {
    let specs = vec![
        ServiceSpec {
            key: ServiceKey::Fwmark {
                mark: 7,
                family: IpFamily::Inet,
            },
            scheduler: SchedulerKind::Sh,
            sched_flags: SchedFlags {
                sh_port: true,
                ..Default::default()
            },
            forwarding: ForwardingMethod::Tun(TunOptions::default()),
            real_servers: vec![rs("192.0.2.12", None, 1)],
            ..Default::default()
        },
        ServiceSpec {
            key: ServiceKey::Addr {
                addr: ip("2001:db8::100"),
                port: Some(53),
            },
            protocol: Protocol::Udp,
            scheduler: SchedulerKind::Rr,
            real_servers: vec![rs("2001:db8::11", Some(53), 1)],
            ..Default::default()
        },
        ServiceSpec {
            key: ServiceKey::Addr {
                addr: ip("192.0.2.100"),
                port: Some(443),
            },
            forwarding: ForwardingMethod::Dr,
            persistence_timeout: Some(300),
            persistence_granularity: Some(24),
            real_servers: vec![rs("192.0.2.11", Some(443), 1)],
            ..Default::default()
        },
        ServiceSpec {
            key: ServiceKey::Addr {
                addr: ip("192.0.2.100"),
                port: Some(80),
            },
            scheduler: SchedulerKind::Rr,
            inhibit_on_failure: true,
            quorum: 1,
            real_servers: vec![
                rs("198.51.100.12", Some(80), 2),
                rs("198.51.100.11", Some(80), 1),
            ],
            ..Default::default()
        },
    ];
    let (mut c, _) = Controller::new(specs, vec![]).unwrap();
    c.apply(HealthEvent::Down { svc: 3, rs: 0 });
    c
}

fn golden(name: &str) -> String {
    let path = format!("{}/src/ipvsadm/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The listing after traffic: 3 connections (2 established, 1 not), packets both ways.
fn listing() -> Listing {
    let c = controller();
    let t = c.table();
    let web = &t.services()[3];
    let up = web.servers.iter().find(|s| s.weight == 1).unwrap();
    let w = |n| crate::stats::Writer::new(n, 3);
    for (n, active) in [(0, true), (1, true), (2, false)] {
        let w = w(n);
        up.stats.bind(active);
        up.stats.traffic.conn(w);
        up.service.conn(w);
    }
    for _ in 0..10 {
        up.stats.traffic.packet_in(w(0), 60);
        up.service.packet_in(w(0), 60);
    }
    for i in 0..8 {
        let b = if i == 0 { 123_456_782 } else { 1 };
        up.stats.traffic.packet_out(w(1), b);
        up.service.packet_out(w(1), b);
    }
    let mut persist = HashMap::new();
    let dr = &t.services()[2];
    persist.insert((dr.id, dr.servers[0].id), 4);
    Listing::of(&t, &persist, 4096)
}

#[test]
fn list_numeric_matches_ipvsadm() {
    assert_eq!(render(&listing(), Format::default()), golden("list.txt"));
}

#[test]
fn one_service_is_listed_alone_as_ipvsadm_does() {
    let l = listing();
    let f = Format::default();
    let all = golden("list.txt");
    let lines: Vec<&str> = all.lines().collect();
    let want = |from: usize, n: usize| {
        let mut s = lines[1..3].join("\n") + "\n";
        for l in &lines[from..from + n] {
            s += l;
            s += "\n";
        }
        s
    };
    let tcp80 = ServiceSel::Addr(Protocol::Tcp, "192.0.2.100:80".parse().unwrap());
    assert_eq!(render_service(&l, f, tcp80), Some(want(3, 3)));
    let udp53 = ServiceSel::Addr(Protocol::Udp, "[2001:db8::100]:53".parse().unwrap());
    assert_eq!(render_service(&l, f, udp53), Some(want(8, 2)));
    let mark = ServiceSel::Fwmark {
        mark: 7,
        ipv6: false,
    };
    assert_eq!(render_service(&l, f, mark), Some(want(10, 2)));
    // The protocol, the port and the family are part of the name.
    let udp80 = ServiceSel::Addr(Protocol::Udp, "192.0.2.100:80".parse().unwrap());
    assert_eq!(render_service(&l, f, udp80), None);
    let mark6 = ServiceSel::Fwmark {
        mark: 7,
        ipv6: true,
    };
    assert_eq!(render_service(&l, f, mark6), None);
}

#[test]
fn stats_match_ipvsadm_with_and_without_exact() {
    let l = listing();
    let f = Format {
        stats: true,
        ..Default::default()
    };
    assert_eq!(render(&l, f), golden("stats.txt"));
    let exact = Format { exact: true, ..f };
    assert_eq!(render(&l, exact), golden("stats_exact.txt"));
}

#[test]
fn persistent_conn_matches_ipvsadm() {
    let f = Format {
        persistent_conn: true,
        ..Default::default()
    };
    assert_eq!(render(&listing(), f), golden("persistent_conn.txt"));
}

#[test]
fn rates_follow_the_estimator() {
    let l0 = listing();
    assert!(l0.services.iter().all(|s| s.rates == Rates::default()));
    let c = controller();
    let t = c.table();
    let web = &t.services()[3];
    for _ in 0..60 {
        for _ in 0..2000 {
            web.traffic.packet_in(crate::stats::Writer::new(0, 1), 100);
        }
        web.traffic.estimate();
    }
    let l = Listing::of(&t, &HashMap::new(), 4096);
    let s = l.services.iter().find(|s| s.port == 80).unwrap();
    assert_eq!((s.rates.inpps, s.rates.inbps), (1000, 100_000));
    let text = render(
        &l,
        Format {
            rate: true,
            ..Default::default()
        },
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("TCP  192.0.2.100:80 "))
        .unwrap();
    assert_eq!(
        line,
        format!(
            "{:<33}{:>9}{:>9}{:>9}{:>9}{:>9}",
            "TCP  192.0.2.100:80", 0, 1000, 0, 100000, 0
        )
    );
    assert!(text.contains(
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
    ));
}

#[test]
fn connection_table_matches_ipvsadm() {
    let rows = vec![
        ConnRow {
            proto: "TCP",
            client: (ip("203.0.113.7"), 40000),
            virt: (ip("192.0.2.100"), 80),
            dest: (ip("198.51.100.11"), 80),
            state: "ESTABLISHED",
            expires_ms: 899_999,
        },
        ConnRow {
            proto: "UDP",
            client: (ip("2001:db8::7"), 5353),
            virt: (ip("2001:db8::100"), 53),
            dest: (ip("2001:db8::11"), 53),
            state: "UDP",
            expires_ms: 299_500,
        },
        ConnRow {
            proto: "IP",
            client: (ip("203.0.113.0"), 0),
            virt: (ip("192.0.2.100"), 443),
            dest: (ip("192.0.2.11"), 443),
            state: "NONE",
            expires_ms: 300_000,
        },
    ];
    assert_eq!(render_conns(&rows), golden("conns.txt"));
    // The key of a template is what persistence keeps: the masked client.
    let k = PersistKey::new(1, ip("203.0.113.77"), Some(24));
    assert_eq!(k.client, ip("203.0.113.0"));
}
