//! Feeds arbitrary frames to the balancer's engine: every forwarding method, IPv4 and IPv6
//! services, TCP and UDP. One input is a run of frames, so connection state, NAT bindings,
//! fragments and ICMP errors for tracked flows carry over from frame to frame. Beyond "no
//! panic", whatever the engine sends must stay within the frame or its own output buffer.
//!
//! Input: a method byte, then frames as `[flags, len, bytes...]`. Flags: bit 0 the checksum
//! was left to offload, bit 1 a relayed ICMP error, bit 2 the bytes are XORed into a valid
//! frame to a VIP (bit 3: the IPv6 one) from the offset in the next byte, so that most
//! mutated frames still parse.

#![no_main]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use lbcore::conntrack::Timeouts;
use lbcore::dataplane::{Engine, Hop, Iface, Out, Shared};
use lbcore::persist::PersistTable;
use lbcore::service::{Controller, SharedTable};
use lbcore::spec::{
    ForwardingMethod, Protocol, RealServerSpec, SchedulerKind, ServiceKey, ServiceSpec,
    TunOptions,
};
use libfuzzer_sys::fuzz_target;

const VIP4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
const LB4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const LB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

fn service(vip: IpAddr, rs: &[IpAddr], protocol: Protocol, method: ForwardingMethod) -> ServiceSpec {
    ServiceSpec {
        key: ServiceKey::Addr {
            addr: vip,
            port: Some(80),
        },
        protocol,
        scheduler: SchedulerKind::Rr,
        forwarding: method,
        persistence_timeout: Some(30),
        real_servers: rs
            .iter()
            .map(|a| RealServerSpec {
                addr: *a,
                port: Some(8080),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn engine(method: ForwardingMethod) -> Engine {
    let rs4: Vec<IpAddr> = (11..13).map(|i| Ipv4Addr::new(198, 51, 100, i).into()).collect();
    let rs6: Vec<IpAddr> = (0x11..0x13)
        .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i).into())
        .collect();
    let specs = vec![
        service(VIP4.into(), &rs4, Protocol::Tcp, method),
        service(VIP4.into(), &rs4, Protocol::Udp, method),
        service(VIP6.into(), &rs6, Protocol::Tcp, method),
        service(VIP6.into(), &rs6, Protocol::Udp, method),
    ];
    let (c, _) = Controller::new(specs, vec![]).expect("services");
    let sh = Arc::new(Shared::new(
        Arc::new(SharedTable::new(c.table())),
        Arc::new(PersistTable::new(64)),
        vec![Iface {
            name: "eth0".into(),
            index: 2,
            mac: [2, 0, 0, 0, 0, 1],
            addr: Some(LB4),
            addrs: vec![(LB4.into(), 24), (LB6.into(), 64)],
            mtu: 1500,
        }],
        61000..=61015,
        true,
    ));
    let hops: HashMap<IpAddr, Hop> = rs4
        .iter()
        .chain(&rs6)
        .map(|&ip| {
            let src_ip = if ip.is_ipv4() { LB4.into() } else { LB6.into() };
            let hop = Hop {
                ifindex: 2,
                mac: [2, 0, 0, 0, 1, 1],
                src_mac: [2, 0, 0, 0, 0, 1],
                src_ip,
                mtu: 1400,
            };
            (ip, hop)
        })
        .collect();
    sh.neigh.publish(hops);
    Engine::new(sh, 0, 2, 256, Timeouts::default())
}

/// Ethernet + IPv4 + TCP SYN from a client to VIP4:80.
fn template4() -> Vec<u8> {
    let mut b = vec![0u8; 54];
    b[12] = 0x08;
    b[14] = 0x45;
    b[16..18].copy_from_slice(&40u16.to_be_bytes());
    b[22] = 64;
    b[23] = 6;
    b[26..30].copy_from_slice(&[203, 0, 113, 10]);
    b[30..34].copy_from_slice(&VIP4.octets());
    b[34..36].copy_from_slice(&40000u16.to_be_bytes());
    b[36..38].copy_from_slice(&80u16.to_be_bytes());
    b[46] = 5 << 4;
    b[47] = 0x02;
    b
}

/// Ethernet + IPv6 + TCP SYN from a client to VIP6:80.
fn template6() -> Vec<u8> {
    let mut b = vec![0u8; 74];
    b[12] = 0x86;
    b[13] = 0xdd;
    b[14] = 0x60;
    b[18..20].copy_from_slice(&20u16.to_be_bytes());
    b[20] = 6;
    b[21] = 64;
    b[22..38].copy_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 10).octets());
    b[38..54].copy_from_slice(&VIP6.octets());
    b[54..56].copy_from_slice(&40000u16.to_be_bytes());
    b[56..58].copy_from_slice(&80u16.to_be_bytes());
    b[66] = 5 << 4;
    b[67] = 0x02;
    b
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, mut rest)) = data.split_first() else {
        return;
    };
    let method = match m % 4 {
        0 => ForwardingMethod::Dr,
        1 => ForwardingMethod::Nat,
        2 => ForwardingMethod::NatOneArm,
        _ => ForwardingMethod::Tun(TunOptions::default()),
    };
    let mut e = engine(method);
    let mut now = 0;
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        let mut frame = if flags & 4 != 0 {
            let mut f = if flags & 8 != 0 { template6() } else { template4() };
            if let Some((&at, xs)) = bytes.split_first() {
                let at = usize::from(at) % f.len();
                for (i, x) in xs.iter().enumerate() {
                    if let Some(b) = f.get_mut(at + i) {
                        *b ^= x;
                    }
                }
            }
            f
        } else {
            bytes.to_vec()
        };
        let len = frame.len();
        match e.process(&mut frame, 2, now, flags & 1 != 0, flags & 2 != 0) {
            Out::Send(_) => assert_eq!(frame.len(), len),
            Out::SendBuf(_) => assert!(!e.out.is_empty()),
            Out::SendSpans(_) => {
                for &(start, end) in &e.spans {
                    assert!(start < end && end <= e.out.len(), "{:?} of {}", e.spans, e.out.len());
                }
            }
            Out::Pass | Out::Drop(_) | Out::Foreign => {}
        }
        now += u64::from(*flags >> 4) * 1000;
    }
});
