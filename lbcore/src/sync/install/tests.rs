use super::*;
use crate::service::Controller;
use crate::spec::{RealServerSpec, ServiceKey, ServiceSpec};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn specs() -> Vec<ServiceSpec> {
    let rs = |a: &str, port| RealServerSpec {
        addr: ip(a),
        port,
        ..Default::default()
    };
    vec![
        ServiceSpec {
            key: ServiceKey::Addr {
                addr: ip("203.0.113.100"),
                port: Some(80),
            },
            protocol: Protocol::Tcp,
            forwarding: ForwardingMethod::NatOneArm,
            real_servers: vec![
                rs("198.51.100.11", Some(8080)),
                rs("198.51.100.12", Some(8080)),
            ],
            ..Default::default()
        },
        ServiceSpec {
            key: ServiceKey::Addr {
                addr: ip("203.0.113.100"),
                port: Some(443),
            },
            protocol: Protocol::Tcp,
            forwarding: ForwardingMethod::Nat,
            persistence_timeout: Some(360),
            persistence_granularity: Some(24),
            real_servers: vec![rs("198.51.100.11", None)],
            ..Default::default()
        },
        ServiceSpec {
            key: ServiceKey::Addr {
                addr: ip("203.0.113.100"),
                port: Some(53),
            },
            protocol: Protocol::Udp,
            forwarding: ForwardingMethod::Dr,
            real_servers: vec![rs("203.0.113.11", None)],
            ..Default::default()
        },
    ]
}

fn entry(vport: u16, dport: u16, fwd: u32) -> Entry {
    Entry {
        protocol: 6,
        flags: fwd,
        state: 1,
        cport: 40000,
        vport,
        dport,
        fwmark: 0,
        timeout: 900,
        caddr: ip("203.0.113.10"),
        vaddr: ip("203.0.113.100"),
        daddr: ip("198.51.100.11"),
        snat: None,
    }
}

fn check(e: &Entry) -> Result<Install, SyncDrop> {
    let (c, _) = Controller::new(specs(), vec![]).unwrap();
    let t = c.table();
    let ports = 61000..=65535;
    let addrs = [ip("198.51.100.1")];
    plan(
        e,
        &Accept {
            table: &t,
            snat_ports: &ports,
            snat_addrs: &addrs,
        },
        1000,
    )
}

#[test]
fn one_arm_connections_keep_their_source_and_reply_key() {
    let mut e = entry(80, 8080, flags::MASQ);
    e.snat = Some((ip("198.51.100.1"), 61002));
    let Ok(Install::Conn(c)) = check(&e) else {
        panic!("{:?}", check(&e))
    };
    assert_eq!(c.state, ConnState::Tcp(TcpState::Established));
    assert_eq!(c.expires, 1000 + 900_000);
    assert_eq!(c.dest.port, Some(8080));
    let nat = c.nat.unwrap();
    assert_eq!(nat.snat, e.snat);
    assert_eq!(
        (
            nat.reply.src,
            nat.reply.sport,
            nat.reply.dst,
            nat.reply.dport
        ),
        (ip("198.51.100.11"), 8080, ip("198.51.100.1"), 61002)
    );
    assert_eq!(c.persist, None);
}

#[test]
fn forged_or_foreign_entries_install_nothing() {
    let one_arm = |snat| {
        let mut e = entry(80, 8080, flags::MASQ);
        e.snat = snat;
        check(&e)
    };
    assert_eq!(
        one_arm(None),
        Err(SyncDrop::BadSnat),
        "one-arm needs its source"
    );
    assert_eq!(
        one_arm(Some((ip("198.51.100.99"), 61000))),
        Err(SyncDrop::BadSnat),
        "not our address"
    );
    assert_eq!(
        one_arm(Some((ip("198.51.100.1"), 22))),
        Err(SyncDrop::BadSnat),
        "not a one-arm port"
    );
    assert_eq!(
        check(&entry(80, 8080, flags::DROUTE)),
        Err(SyncDrop::UnknownDest),
        "another method"
    );
    let mut e = entry(80, 8080, flags::MASQ);
    e.daddr = ip("198.51.100.99");
    assert_eq!(check(&e), Err(SyncDrop::UnknownDest));
    assert_eq!(check(&entry(81, 8080, 0)), Err(SyncDrop::UnknownService));
    let mut e = entry(443, 443, flags::MASQ);
    e.timeout = 0;
    assert_eq!(check(&e), Err(SyncDrop::TooOld));
    e.timeout = 5;
    e.state = 11;
    assert_eq!(check(&e), Err(SyncDrop::State));
    e.protocol = 132;
    assert_eq!(check(&e), Err(SyncDrop::Protocol));
    let mut e = entry(443, 443, flags::MASQ);
    e.snat = Some((ip("198.51.100.1"), 61000));
    assert_eq!(check(&e), Err(SyncDrop::BadSnat), "two-arm has no source");
}

#[test]
fn persistent_connections_and_templates_share_a_key() {
    let Ok(Install::Conn(c)) = check(&entry(443, 443, flags::MASQ)) else {
        panic!()
    };
    let nat = c.nat.unwrap();
    assert_eq!(
        (nat.reply.dst, nat.reply.dport),
        (ip("203.0.113.10"), 40000)
    );
    let mut t = entry(443, 443, flags::MASQ | flags::TEMPLATE);
    t.caddr = ip("203.0.113.0");
    t.cport = 0;
    t.state = 0;
    t.timeout = 360;
    let Ok(Install::Template { key, dest, expires }) = check(&t) else {
        panic!("{:?}", check(&t))
    };
    assert_eq!(Some(key), c.persist, "the connection's template");
    assert_eq!(
        (dest.addr, dest.port, expires),
        (ip("198.51.100.11"), None, 361_000)
    );
}

#[test]
fn udp_dr_entries_install_without_nat() {
    let mut e = entry(53, 53, flags::DROUTE);
    e.protocol = 17;
    e.state = 0;
    e.daddr = ip("203.0.113.11");
    let Ok(Install::Conn(c)) = check(&e) else {
        panic!("{:?}", check(&e))
    };
    assert_eq!(
        (c.state, c.nat, c.forwarding),
        (ConnState::Udp, None, ForwardingMethod::Dr)
    );
    e.state = 1;
    assert_eq!(check(&e), Err(SyncDrop::State));
}
