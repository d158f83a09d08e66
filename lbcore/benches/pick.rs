//! Cost of one scheduling decision per scheduler, of a persistent schedule,
//! and of connection-table operations. Run: `cargo bench -p lbcore --bench pick`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use lbcore::conntrack::{ConnTable, DestRef, Dir, NewConn, Packet, Timeouts};
use lbcore::flow::FlowKey;
use lbcore::flow::TcpFlags;
use lbcore::persist::PersistTable;
use lbcore::pool::RealServer;
use lbcore::sched::{self, MAGLEV_TABLE_SIZE};
use lbcore::service::Controller;
use lbcore::spec::{Protocol, RealServerSpec, SchedFlags, SchedulerKind, ServiceKey, ServiceSpec};

const SERVERS: usize = 16;
const FLOWS: usize = 4096;

fn pool() -> Vec<RealServer> {
    (0..SERVERS)
        .map(|i| {
            let s = RealServer::new(
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + i as u8)),
                Some(80),
                1 + (i as u32 % 4),
            );
            (0..(i * 7 % 13)).for_each(|_| s.stats.bind(i % 2 == 0));
            s.stats.observe_rtt(500 + 100 * i as u32);
            s
        })
        .collect()
}

fn flows() -> Vec<FlowKey> {
    (0..FLOWS as u32)
        .map(|i| FlowKey {
            proto: Protocol::Tcp,
            src: IpAddr::V4(Ipv4Addr::from(0xc633_6400 + i * 7919)),
            sport: 1024 + (i % 50000) as u16,
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1 + (i % 8) as u8)),
            dport: 80,
        })
        .collect()
}

fn bench_pick(c: &mut Criterion) {
    let pool = pool();
    let flows = flows();
    let mut g = c.benchmark_group("pick");
    // lblcr is served by the lblc scheduler.
    for kind in SchedulerKind::ALL
        .into_iter()
        .filter(|k| *k != SchedulerKind::Lblcr)
    {
        let s = sched::build(
            kind,
            SchedFlags {
                sh_port: true,
                mh_port: true,
                ..Default::default()
            },
            &pool,
        );
        let mut i = 0usize;
        g.bench_function(kind.name(), |b| {
            b.iter(|| {
                i = (i + 1) % FLOWS;
                black_box(s.pick(black_box(&flows[i]), &pool))
            })
        });
    }
    g.finish();

    c.bench_function("maglev_build_16_servers_65537", |b| {
        b.iter(|| black_box(sched::Maglev::new(&pool, MAGLEV_TABLE_SIZE, false, false)))
    });

    let spec = ServiceSpec {
        key: ServiceKey::Addr {
            addr: "203.0.113.1".parse().unwrap(),
            port: Some(80),
        },
        scheduler: SchedulerKind::Wlc,
        persistence_timeout: Some(300),
        real_servers: (0..SERVERS as u8)
            .map(|i| RealServerSpec {
                addr: IpAddr::from([192, 0, 2, 10 + i]),
                port: Some(80),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let (ctl, _) = Controller::new(vec![spec], vec![]).unwrap();
    let table = ctl.table();
    let persist = PersistTable::new(1 << 16);
    let mut i = 0usize;
    c.bench_function("schedule_persistent_wlc", |b| {
        b.iter(|| {
            i = (i + 1) % FLOWS;
            let svc = table
                .lookup(Protocol::Tcp, flows[i].dst, 80, None)
                .unwrap_or(&table.services()[0]);
            black_box(svc.schedule(&flows[i], 1, &persist).map(|c| c.server.id))
        })
    });
}

fn bench_conntrack(c: &mut Criterion) {
    const N: usize = 100_000;
    let pool = pool();
    let mut t = ConnTable::new(N, Timeouts::default());
    let keys: Vec<FlowKey> = (0..N as u32)
        .map(|i| FlowKey {
            proto: Protocol::Tcp,
            src: IpAddr::V4(Ipv4Addr::from(0xc633_6400 + i / 60000)),
            sport: 1024 + (i % 60000) as u16,
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            dport: 80,
        })
        .collect();
    for (i, k) in keys.iter().enumerate() {
        let new = NewConn {
            dest: DestRef::from(&pool[i % SERVERS]),
            first: Packet::Tcp(TcpFlags::SYN),
            reply: None,
            persist: None,
        };
        t.insert(*k, new, 0, |_| {});
    }
    let mut i = 0usize;
    c.bench_function("conntrack_get_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(t.get(black_box(&keys[i]), 1).map(|c| c.dest.id))
        })
    });
    let mut now = 1;
    c.bench_function("conntrack_touch_ack_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            now += 1;
            black_box(
                t.touch(&keys[i], Dir::Input, Packet::Tcp(TcpFlags::ACK), now)
                    .map(|c| c.expires),
            )
        })
    });
    let mut full = ConnTable::new(N, Timeouts::default());
    for (i, k) in keys.iter().enumerate() {
        let new = NewConn {
            dest: DestRef::from(&pool[i % SERVERS]),
            first: Packet::Udp,
            reply: None,
            persist: None,
        };
        full.insert(*k, new, i as u64, |_| {});
    }
    let mut j = 0u32;
    c.bench_function("conntrack_insert_evicting_100k", |b| {
        b.iter(|| {
            j = j.wrapping_add(1);
            let k = FlowKey {
                sport: (j % 65536) as u16,
                src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + j)),
                ..keys[0]
            };
            let new = NewConn {
                dest: DestRef::from(&pool[0]),
                first: Packet::Udp,
                reply: None,
                persist: None,
            };
            let mut ev = 0;
            full.insert(k, new, N as u64 + j as u64, |_| ev += 1);
            black_box(ev)
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = bench_pick, bench_conntrack }
criterion_main!(benches);
