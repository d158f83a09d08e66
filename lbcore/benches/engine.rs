//! Per-packet cost of the dataplane's engine (no sockets): an established
//! flow's packet through DR and NAT, a NAT reply, a new connection.
//! Run: `cargo bench -p lbcore --bench engine`.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use lbcore::conntrack::Timeouts;
use lbcore::dataplane::{Engine, Hop, Iface, Out, Shared};
use lbcore::persist::PersistTable;
use lbcore::service::{Controller, SharedTable};
use lbcore::spec::{ForwardingMethod, RealServerSpec, SchedulerKind, ServiceKey, ServiceSpec};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const LB: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// Ethernet + IPv4 + TCP with the given flags (checksums need not be valid here).
fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8) -> Vec<u8> {
    let mut b = vec![0u8; 54];
    b[12] = 0x08;
    b[14] = 0x45;
    b[16..18].copy_from_slice(&40u16.to_be_bytes());
    b[22] = 64;
    b[23] = 6;
    b[26..30].copy_from_slice(&src.0.octets());
    b[30..34].copy_from_slice(&dst.0.octets());
    b[34..36].copy_from_slice(&src.1.to_be_bytes());
    b[36..38].copy_from_slice(&dst.1.to_be_bytes());
    b[46] = 5 << 4;
    b[47] = flags;
    b
}

fn engine(method: ForwardingMethod) -> Engine {
    let rs: Vec<Ipv4Addr> = (0..8)
        .map(|i| Ipv4Addr::new(198, 51, 100, 11 + i))
        .collect();
    let spec = ServiceSpec {
        key: ServiceKey::Addr {
            addr: VIP.into(),
            port: Some(80),
        },
        scheduler: SchedulerKind::Wlc,
        forwarding: method,
        real_servers: rs
            .iter()
            .map(|a| RealServerSpec {
                addr: (*a).into(),
                port: Some(8080),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let (c, _) = Controller::new(vec![spec], vec![]).unwrap();
    let sh = Arc::new(Shared::new(
        Arc::new(SharedTable::new(c.table())),
        Arc::new(PersistTable::new(1024)),
        vec![Iface {
            name: "eth0".into(),
            index: 2,
            mac: [2, 0, 0, 0, 0, 1],
            addr: Some(LB),
            addrs: vec![(LB.into(), 24)],
            mtu: 1500,
        }],
        61000..=65535,
        true,
    ));
    let hops: HashMap<std::net::IpAddr, Hop> = rs
        .iter()
        .map(|&ip| {
            let hop = Hop {
                ifindex: 2,
                mac: [2, 0, 0, 0, 1, ip.octets()[3]],
                src_mac: [2, 0, 0, 0, 0, 1],
                src_ip: LB.into(),
                mtu: 1500,
            };
            (ip.into(), hop)
        })
        .collect();
    sh.neigh.publish(hops);
    Engine::new(sh, 0, 1, 1 << 20, Timeouts::default())
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    for (name, m) in [("dr", ForwardingMethod::Dr), ("nat", ForwardingMethod::Nat)] {
        let mut e = engine(m);
        // 10k established flows, then one packet of one of them per iteration.
        for p in 0..10_000u16 {
            let mut syn = tcp((CLIENT, 1024 + p), (VIP, 80), 0x02);
            assert_eq!(e.process(&mut syn, 2, 0, false, false), Out::Send(2));
        }
        let ack = tcp((CLIENT, 5000), (VIP, 80), 0x10);
        let mut buf = ack.clone();
        g.bench_function(format!("{name}_established"), |b| {
            b.iter(|| {
                buf.copy_from_slice(&ack);
                black_box(e.process(&mut buf, 2, 1, false, false))
            })
        });
        if name == "nat" {
            let mut syn = tcp((CLIENT, 5000), (VIP, 80), 0x02);
            e.process(&mut syn, 2, 1, false, false);
            let rip = Ipv4Addr::new(syn[30], syn[31], syn[32], syn[33]);
            let reply = tcp((rip, 8080), (CLIENT, 5000), 0x10);
            g.bench_function("nat_reply", |b| {
                b.iter(|| {
                    buf.copy_from_slice(&reply);
                    black_box(e.process(&mut buf, 2, 1, false, false))
                })
            });
        }
        // Distinct clients (203.0.113.11-210, ports 20000-64999): every SYN is new.
        let mut i = 0u32;
        g.bench_function(format!("{name}_new_connection"), |b| {
            b.iter(|| {
                i = (i + 1) % (200 * 45_000);
                let src = Ipv4Addr::new(203, 0, 113, 11 + (i / 45_000) as u8);
                let mut syn = tcp((src, 20_000 + (i % 45_000) as u16), (VIP, 80), 0x02);
                black_box(e.process(&mut syn, 2, 2, false, false))
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
