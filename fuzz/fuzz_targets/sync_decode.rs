//! Feeds arbitrary bytes to the connection-sync receive path, as a Backup gets them from the
//! segment: the message decoder, the session (sync id filter, roles) and the install checks
//! against a configuration with two-arm NAT, one-arm NAT, DR and persistent services. Beyond
//! "no panic": whatever decodes re-encodes to the same entries, and nothing accepted names
//! a service, real server or one-arm port the configuration does not have.

#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use lbcore::service::{Controller, ServiceTable};
use lbcore::spec::{ForwardingMethod, Protocol, RealServerSpec, ServiceKey, ServiceSpec};
use lbcore::sync::install::{plan, Accept, Install};
use lbcore::sync::wire::{decode, Builder};
use lbcore::sync::{Role, Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal")
}

fn table() -> &'static Arc<ServiceTable> {
    static T: OnceLock<Arc<ServiceTable>> = OnceLock::new();
    T.get_or_init(|| {
        let svc = |port, proto, forwarding, persist| ServiceSpec {
            key: ServiceKey::Addr {
                addr: ip("203.0.113.100"),
                port: Some(port),
            },
            protocol: proto,
            forwarding,
            persistence_timeout: persist,
            real_servers: ["198.51.100.11", "198.51.100.12"]
                .iter()
                .map(|a| RealServerSpec {
                    addr: ip(a),
                    port: Some(8080),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let specs = vec![
            svc(80, Protocol::Tcp, ForwardingMethod::Nat, None),
            svc(81, Protocol::Tcp, ForwardingMethod::NatOneArm, None),
            svc(82, Protocol::Udp, ForwardingMethod::Dr, None),
            svc(443, Protocol::Tcp, ForwardingMethod::Nat, Some(300)),
        ];
        Controller::new(specs, vec![]).expect("valid specs").0.table()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data) {
        let ok: Vec<_> = m.entries.iter().filter_map(|e| e.as_ref().ok()).collect();
        let mut b = Builder::new(m.syncid, u16::MAX as usize);
        for e in &ok {
            assert!(b.push(e));
        }
        let mut out = Vec::new();
        b.finish(&mut out);
        let again = decode(&out).expect("what we encode decodes");
        let again: Vec<_> = again.entries.into_iter().map(|e| e.expect("no skip")).collect();
        assert_eq!(again.len(), ok.len());
        assert!(again.iter().zip(&ok).all(|(a, b)| a == *b));
    }
    let mut s = Session::new(
        SessionConfig {
            syncid: data.first().copied().unwrap_or(0) & 1,
            ..Default::default()
        },
        Arc::default(),
    );
    s.set_role(Role::Backup, 0);
    let lbcore::sync::session::Received::Entries(entries) = s.receive(data, 1000) else {
        return;
    };
    let ports = 61000..=65535;
    let addrs = [ip("198.51.100.1")];
    let t = table();
    let accept = Accept {
        table: t,
        snat_ports: &ports,
        snat_addrs: &addrs,
    };
    for e in &entries {
        match plan(e, &accept, 1000) {
            Ok(Install::Conn(c)) => {
                let svc = t
                    .services()
                    .iter()
                    .find(|s| s.id == c.svc)
                    .expect("a configured service");
                assert!(svc.spec.real_servers.iter().any(|r| r.addr == c.dest.addr));
                if let Some(n) = c.nat {
                    if let Some((a, p)) = n.snat {
                        assert!(addrs.contains(&a) && ports.contains(&p));
                        assert_eq!(svc.spec.forwarding, ForwardingMethod::NatOneArm);
                    }
                }
                assert!(c.expires > 1000);
            }
            Ok(Install::Template { expires, .. }) => assert!(expires > 1000),
            Err(_) => {}
        }
    }
});
