use std::collections::HashMap;

use super::*;
use crate::dataplane::neigh::Hop;
use crate::dataplane::wire::tests::{build, ip_csum_ok, l4_csum_ok};
use crate::dataplane::wire::{ETH_HLEN, IPPROTO_IPIP};
use crate::service::Controller;
use crate::spec::{RealServerSpec, SchedulerKind, ServiceSpec, TunOptions};

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const CLIENT: IpAddr = v4(203, 0, 113, 10);
const VIP: IpAddr = v4(203, 0, 113, 100);
const LB: IpAddr = v4(198, 51, 100, 1);
const RS1: IpAddr = v4(198, 51, 100, 11);
const RS2: IpAddr = v4(198, 51, 100, 12);
const LB_MAC: Mac = [2, 0, 0, 0, 0, 0xaa];
const CLIENT_MAC: Mac = [2, 0, 0, 0, 0, 2];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn mac_of(ip: IpAddr) -> Mac {
    let last = match ip {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    };
    [2, 0, 0, 0, 1, last]
}

fn setup(method: ForwardingMethod, persist: Option<u32>) -> (Engine, Arc<Shared>) {
    setup_for(VIP, [RS1, RS2], LB, method, persist)
}

/// An engine forwarding `vip`:80 to `rs`:8080 (rr, TCP and UDP), its interface holding
/// `lb`/24 (or /64).
fn setup_for(
    vip: IpAddr,
    rs: [IpAddr; 2],
    lb: IpAddr,
    method: ForwardingMethod,
    persist: Option<u32>,
) -> (Engine, Arc<Shared>) {
    let spec = ServiceSpec {
        key: ServiceKey::Addr {
            addr: vip,
            port: Some(80),
        },
        scheduler: SchedulerKind::Rr,
        forwarding: method,
        persistence_timeout: persist,
        real_servers: rs
            .iter()
            .map(|a| RealServerSpec {
                addr: *a,
                port: Some(8080),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let udp = ServiceSpec {
        protocol: Protocol::Udp,
        ..spec.clone()
    };
    let (c, _) = Controller::new(vec![spec, udp], vec![]).unwrap();
    let sh = Arc::new(Shared::new(
        Arc::new(SharedTable::new(c.table())),
        Arc::new(PersistTable::new(1024)),
        vec![Iface {
            name: "eth0".into(),
            index: 2,
            mac: LB_MAC,
            addr: Some(Ipv4Addr::new(198, 51, 100, 1)),
            addrs: vec![(lb, if lb.is_ipv4() { 24 } else { 64 })],
            mtu: 1500,
        }],
        61000..=61003,
        true,
    ));
    let hops: HashMap<IpAddr, Hop> = rs
        .iter()
        .map(|&ip| {
            (
                ip,
                Hop {
                    ifindex: 2,
                    mac: mac_of(ip),
                    src_mac: LB_MAC,
                    src_ip: lb,
                    mtu: 1500,
                },
            )
        })
        .collect();
    sh.neigh.publish(hops);
    (Engine::new(sh.clone(), 0, 1, 1024, Timeouts::default()), sh)
}

fn from_client(sport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = build(IPPROTO_TCP, (CLIENT, sport), (VIP, 80), flags, payload);
    wire::set_macs(&mut b, LB_MAC, CLIENT_MAC);
    b
}

fn valid(b: &[u8]) -> IpFrame {
    assert!(ip_csum_ok(b, ETH_HLEN));
    let f = wire::parse(b).unwrap();
    if f.proto == IPPROTO_TCP || f.proto == IPPROTO_UDP {
        assert!(l4_csum_ok(b, ETH_HLEN));
    }
    f
}

#[test]
fn dr_rewrites_only_the_mac_and_round_robins() {
    let (mut e, _) = setup(ForwardingMethod::Dr, None);
    let mut seen = vec![];
    for sport in [1000, 1001, 1002] {
        let mut b = from_client(sport, SYN, b"");
        let orig = b.clone();
        assert_eq!(e.process(&mut b, 2, 0, false, false), Out::Send(2));
        assert_eq!(&b[12..], &orig[12..], "IP packet untouched");
        assert_eq!(wire::src_mac(&b), LB_MAC);
        seen.push(b[5]);
    }
    assert_eq!(seen, vec![11, 12, 11]);
    // The same flow sticks to its server.
    let mut b = from_client(1001, ACK, b"x");
    assert_eq!(e.process(&mut b, 2, 1, false, false), Out::Send(2));
    assert_eq!(b[0..6], mac_of(RS2));
    assert_eq!(e.counters.new_conns.load(Relaxed), 3);
}

#[test]
fn nat_translates_both_ways_and_unrelated_traffic_passes() {
    let (mut e, sh) = setup(ForwardingMethod::Nat, None);
    let mut b = from_client(1000, SYN, b"");
    assert_eq!(e.process(&mut b, 2, 0, false, false), Out::Send(2));
    let f = valid(&b);
    assert_eq!((f.src, f.dst, f.ports), (CLIENT, RS1, Some((1000, 8080))));
    assert_eq!(b[0..6], mac_of(RS1));
    // The reply, routed back through us.
    let mut r = build(IPPROTO_TCP, (RS1, 8080), (CLIENT, 1000), 0x12, b"");
    assert_eq!(e.process(&mut r, 2, 1, false, false), Out::Send(2));
    let f = valid(&r);
    assert_eq!((f.src, f.dst, f.ports), (VIP, CLIENT, Some((80, 1000))));
    assert_eq!(r[0..6], CLIENT_MAC);
    assert_eq!(e.counters.replies.load(Relaxed), 1);
    // Another worker (sharing the NAT map) handles replies too.
    let mut other = Engine::new(sh.clone(), 1, 2, 16, Timeouts::default());
    let mut r = build(IPPROTO_TCP, (RS1, 8080), (CLIENT, 1000), ACK, b"hello");
    assert_eq!(other.process(&mut r, 2, 2, false, false), Out::Send(2));
    assert_eq!(valid(&r).src, VIP);
    // Not ours.
    let mut x = build(IPPROTO_TCP, (CLIENT, 5), (LB, 22), SYN, b"");
    assert_eq!(e.process(&mut x, 2, 2, false, false), Out::Pass);
    // The VIP parked (its instance is Backup): the flow and its replies stand by, other
    // addresses' services would go on.
    sh.parked.store(Arc::new([VIP].into()));
    let mut b = from_client(1000, ACK, b"");
    assert_eq!(
        e.process(&mut b, 2, 3, false, false),
        Out::Drop(DropReason::Standby)
    );
    let mut r = build(IPPROTO_TCP, (RS1, 8080), (CLIENT, 1000), ACK, b"late");
    assert_eq!(
        e.process(&mut r, 2, 3, false, false),
        Out::Drop(DropReason::Standby)
    );
    sh.parked.store(Arc::new([LB].into()));
    let mut b = from_client(1000, ACK, b"");
    assert_eq!(e.process(&mut b, 2, 3, false, false), Out::Send(2));
    // Switched off: dropped and counted as standby.
    sh.forwarding.store(false, Relaxed);
    let mut b = from_client(1000, ACK, b"");
    assert_eq!(
        e.process(&mut b, 2, 3, false, false),
        Out::Drop(DropReason::Standby)
    );
}

#[test]
fn one_arm_nat_hides_the_client_and_expiry_frees_everything() {
    let (mut e, sh) = setup(ForwardingMethod::NatOneArm, Some(60));
    let mut b = from_client(1000, SYN, b"");
    assert_eq!(e.process(&mut b, 2, 0, false, false), Out::Send(2));
    let f = valid(&b);
    let (lport, rport) = f.ports.unwrap();
    assert_eq!((f.src, f.dst, rport), (LB, RS1, 8080));
    assert!((61000..=61003).contains(&lport));
    let mut r = build(IPPROTO_TCP, (RS1, 8080), (LB, lport), 0x12, b"");
    assert_eq!(e.process(&mut r, 2, 1, false, false), Out::Send(2));
    let f = valid(&r);
    assert_eq!((f.src, f.dst, f.ports), (VIP, CLIENT, Some((80, 1000))));
    // Persistence: a second connection of the client goes to the same server.
    let mut b = from_client(1001, SYN, b"");
    e.process(&mut b, 2, 2, false, false);
    assert_eq!(valid(&b).dst, RS1);
    assert_eq!(sh.nat.len(), 2);
    // Unanswered SYNs expire after 60 s (SYN_RECV): bindings and template
    // control go away; the template outlives them by the persistence timeout.
    assert_eq!(e.expire(61_000), 2);
    assert!(sh.nat.is_empty());
    assert_eq!(e.conns(), 0);
    let table = sh.table.load();
    let id = table.services()[0].id;
    let key = crate::persist::PersistKey::new(id, CLIENT, None);
    assert!(sh.persist.get(&key, 61_000 + 59_000).is_some());
    assert!(sh.persist.get(&key, 62_000 + 60_000).is_none());
}

#[test]
fn one_arm_ports_run_out_and_are_counted() {
    let (mut e, _) = setup(ForwardingMethod::NatOneArm, None);
    // Four ports towards each of the two servers: 8 connections fit.
    for sport in 0..8 {
        let mut b = from_client(2000 + sport, SYN, b"");
        assert_eq!(
            e.process(&mut b, 2, 0, false, false),
            Out::Send(2),
            "{sport}"
        );
    }
    let mut b = from_client(3000, SYN, b"");
    assert_eq!(
        e.process(&mut b, 2, 0, false, false),
        Out::Drop(DropReason::PortsExhausted)
    );
}

#[test]
fn tun_encapsulates_and_answers_too_big_with_frag_needed() {
    let (mut e, _) = setup(ForwardingMethod::Tun(TunOptions::default()), None);
    let mut b = from_client(1000, SYN, b"");
    assert_eq!(e.process(&mut b, 2, 0, false, false), Out::SendBuf(2));
    let o = valid(&e.out.clone());
    assert_eq!((o.src, o.dst, o.proto), (LB, RS1, IPPROTO_IPIP));
    assert_eq!(&e.out[o.l4..], &b[ETH_HLEN..]);
    // 1490-byte datagram + 20 > 1500 with DF: ICMP frag needed, MTU 1480.
    let mut big = from_client(1000, ACK, &vec![0u8; 1450]);
    assert_eq!(e.process(&mut big, 2, 1, false, false), Out::SendBuf(2));
    let i = valid(&e.out.clone());
    assert_eq!((i.src, i.dst, i.proto), (VIP, CLIENT, wire::IPPROTO_ICMP));
    assert_eq!(e.out[i.l4..i.l4 + 2], [3, 4]);
    assert_eq!(u16::from_be_bytes([e.out[i.l4 + 6], e.out[i.l4 + 7]]), 1480);
    assert_eq!(e.out[0..6], CLIENT_MAC);
    // Without DF the outer datagram is fragmented instead.
    let mut big = from_client(1000, ACK, &vec![0u8; 1450]);
    big[ETH_HLEN + 6] = 0;
    wire::fix_ip_csum(&mut big, ETH_HLEN);
    assert_eq!(e.process(&mut big, 2, 2, false, false), Out::SendSpans(2));
    assert_eq!(e.spans.len(), 2);
    let (s0, l0) = e.spans[0];
    let first = &e.out[s0..s0 + l0];
    let o = wire::parse(first).unwrap();
    assert!(l0 - ETH_HLEN <= 1500 && o.more_frags && o.proto == IPPROTO_IPIP);
    assert_eq!(first[0..6], mac_of(RS1));
}

#[test]
fn non_first_fragments_follow_their_flow() {
    let (mut e, _) = setup(ForwardingMethod::Nat, None);
    // First fragment: MF set, offset 0.
    let mut first = from_client(1000, SYN, &[1u8; 16]);
    first[ETH_HLEN + 6] = 0x20;
    wire::fix_ip_csum(&mut first, ETH_HLEN);
    assert_eq!(e.process(&mut first, 2, 0, false, false), Out::Send(2));
    assert_eq!(wire::parse(&first).unwrap().dst, RS1);
    // Second fragment: offset 8 (64 bytes), same id.
    let mut second = from_client(1000, 0, &[2u8; 16]);
    second[ETH_HLEN + 6..ETH_HLEN + 8].copy_from_slice(&8u16.to_be_bytes());
    wire::fix_ip_csum(&mut second, ETH_HLEN);
    assert_eq!(e.process(&mut second, 2, 1, false, false), Out::Send(2));
    assert!(ip_csum_ok(&second, ETH_HLEN));
    assert_eq!(wire::parse(&second).unwrap().dst, RS1);
    assert_eq!(e.counters.frags.load(Relaxed), 1);
    // An unknown datagram's fragment to the VIP is dropped and counted.
    let mut third = from_client(1000, 0, &[2u8; 16]);
    third[ETH_HLEN + 4] ^= 0xff;
    third[ETH_HLEN + 6..ETH_HLEN + 8].copy_from_slice(&8u16.to_be_bytes());
    wire::fix_ip_csum(&mut third, ETH_HLEN);
    assert_eq!(
        e.process(&mut third, 2, 2, false, false),
        Out::Drop(DropReason::FragUnknown)
    );
}

#[test]
fn icmp_errors_of_nat_flows_are_translated_both_ways() {
    let (mut e, _) = setup(ForwardingMethod::Nat, None);
    let mut b = from_client(1000, SYN, b"");
    e.process(&mut b, 2, 0, false, false);
    // A router on the client side says our reply (VIP:80 -> client) was too big.
    let reply = build(IPPROTO_TCP, (VIP, 80), (CLIENT, 1000), ACK, &[0u8; 64]);
    let rf = wire::parse(&reply).unwrap();
    let router = Ipv4Addr::new(203, 0, 113, 1);
    let router_ip = IpAddr::from(router);
    let mut icmp = Vec::new();
    wire::frag_needed(&reply, &rf, router, 1400, &mut icmp);
    // frag_needed addresses it to the quoted packet's source: the VIP.
    assert_eq!(e.process(&mut icmp, 2, 1, false, false), Out::Send(2));
    let o = valid(&icmp);
    assert_eq!((o.src, o.dst), (router_ip, RS1));
    assert_eq!(wire::fold(wire::sum(&icmp[o.l4..o.end], 0)), 0);
    let inner = wire::icmp_error(&icmp, &o).unwrap().inner;
    assert_eq!(
        (inner.src, inner.dst, inner.ports),
        (RS1, CLIENT, Some((8080, 1000)))
    );
    assert_eq!(icmp[0..6], mac_of(RS1));
    // The real server says the client's packet could not be delivered
    // (quoting client -> RS1:8080): it goes back as from the VIP.
    let fwd = build(IPPROTO_TCP, (CLIENT, 1000), (RS1, 8080), ACK, &[0u8; 8]);
    let ff = wire::parse(&fwd).unwrap();
    let mut icmp = Vec::new();
    wire::frag_needed(&fwd, &ff, Ipv4Addr::new(198, 51, 100, 11), 1400, &mut icmp);
    assert_eq!(e.process(&mut icmp, 2, 2, false, false), Out::Send(2));
    let o = valid(&icmp);
    assert_eq!((o.src, o.dst), (VIP, CLIENT));
    let inner = wire::icmp_error(&icmp, &o).unwrap().inner;
    assert_eq!(
        (inner.src, inner.dst, inner.ports),
        (CLIENT, VIP, Some((1000, 80)))
    );
    assert_eq!(e.counters.icmp.load(Relaxed), 2);
}

#[test]
fn rst_does_not_create_a_connection() {
    let (mut e, _) = setup(ForwardingMethod::Dr, None);
    let mut b = from_client(1000, 0x04, b"");
    assert_eq!(
        e.process(&mut b, 2, 0, false, false),
        Out::Drop(DropReason::NoConn)
    );
    assert_eq!(e.conns(), 0);
}

#[test]
fn icmp_error_for_a_flow_of_another_worker_is_relayed_to_it() {
    let (mut owner, sh) = setup(ForwardingMethod::Dr, None);
    let mut other = Engine::new(sh.clone(), 1, 2, 16, Timeouts::default());
    let mut b = from_client(1000, SYN, b"");
    assert_eq!(owner.process(&mut b, 2, 0, false, false), Out::Send(2));
    // A router tells the VIP that the real server's reply (sent from the VIP)
    // was too big; it lands on the worker that does not own the flow.
    let reply = build(IPPROTO_TCP, (VIP, 80), (CLIENT, 1000), ACK, &[0u8; 64]);
    let rf = wire::parse(&reply).unwrap();
    let mut icmp = Vec::new();
    wire::frag_needed(&reply, &rf, Ipv4Addr::new(203, 0, 113, 1), 1400, &mut icmp);
    let mut copy = icmp.clone();
    assert_eq!(other.process(&mut icmp, 2, 1, false, false), Out::Foreign);
    // Relayed, the owner sends it on to the flow's real server unchanged (DR).
    assert_eq!(owner.process(&mut copy, 2, 1, false, true), Out::Send(2));
    assert_eq!(copy[0..6], mac_of(RS1));
    assert_eq!(copy[12..], icmp[12..]);
    // A relayed error nobody owns is not relayed again.
    let mut again = icmp.clone();
    assert_eq!(other.process(&mut again, 2, 1, false, true), Out::Pass);
}

#[test]
fn offloaded_checksum_is_completed_before_rewriting() {
    let (mut e, _) = setup(ForwardingMethod::Nat, None);
    let mut b = from_client(1000, SYN, b"payload");
    // What a veth peer hands over with checksum offload: only the pseudo-header sum.
    let at = ETH_HLEN + 20 + 16;
    b[at] = 0x12;
    b[at + 1] = 0x34;
    assert_eq!(e.process(&mut b, 2, 0, true, false), Out::Send(2));
    valid(&b);
}

#[test]
fn one_arm_ports_of_finished_connections_are_reused() {
    let (mut e, sh) = setup(ForwardingMethod::NatOneArm, None);
    let mut ports = vec![];
    for sport in 0..8u16 {
        let mut b = from_client(2000 + sport, SYN, b"");
        assert_eq!(e.process(&mut b, 2, 0, false, false), Out::Send(2));
        ports.push(valid(&b).ports.unwrap().0);
    }
    // Connection 2000 (to RS1) closes: FIN from the client, FIN from the
    // server (through us), last ACK: TIME_WAIT for 120 s.
    let lport = ports[0];
    let mut f = from_client(2000, 0x11, b"");
    e.process(&mut f, 2, 1, false, false);
    let mut r = build(IPPROTO_TCP, (RS1, 8080), (LB, lport), 0x11, b"");
    assert_eq!(e.process(&mut r, 2, 2, false, false), Out::Send(2));
    let mut a = from_client(2000, ACK, b"");
    e.process(&mut a, 2, 3, false, false);
    assert_eq!(sh.nat.len(), 8);
    // A new connection to RS1 (rr: the 9th goes to RS1) takes that port over.
    let mut b = from_client(3000, SYN, b"");
    assert_eq!(e.process(&mut b, 2, 4, false, false), Out::Send(2));
    let f = valid(&b);
    assert_eq!((f.dst, f.ports.unwrap().0), (RS1, lport));
    assert_eq!(sh.nat.len(), 8);
    assert_eq!(e.conns(), 8);
}

fn v6(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The v6 plan: client 2001:db8:1::10, VIP 2001:db8:1::100, balancer
/// 2001:db8:2::1, real servers 2001:db8:2::11 and ::12.
fn setup6(method: ForwardingMethod) -> (Engine, Arc<Shared>) {
    setup_for(
        v6("2001:db8:1::100"),
        [v6("2001:db8:2::11"), v6("2001:db8:2::12")],
        v6("2001:db8:2::1"),
        method,
        None,
    )
}

fn from_client6(proto: u8, sport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (c, v) = (v6("2001:db8:1::10"), v6("2001:db8:1::100"));
    let mut b = build(proto, (c, sport), (v, 80), flags, payload);
    wire::set_macs(&mut b, LB_MAC, CLIENT_MAC);
    b
}

#[test]
fn ipv6_dr_rewrites_only_the_mac_and_round_robins() {
    let (mut e, _) = setup6(ForwardingMethod::Dr);
    let mut seen = vec![];
    for (i, proto) in [IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP]
        .into_iter()
        .enumerate()
    {
        let mut b = from_client6(proto, 1000 + i as u16, SYN, b"x");
        let orig = b.clone();
        assert_eq!(e.process(&mut b, 2, 0, false, false), Out::Send(2));
        assert_eq!(
            &b[12..],
            &orig[12..],
            "IPv6 packet untouched, hop limit included"
        );
        assert_eq!(wire::src_mac(&b), LB_MAC);
        seen.push(b[5]);
    }
    assert_eq!(seen, vec![0x11, 0x12, 0x11]);
    let mut b = from_client6(IPPROTO_TCP, 1001 + 10, SYN, b"");
    e.process(&mut b, 2, 1, false, false);
    let mut again = from_client6(IPPROTO_TCP, 1011, ACK, b"data");
    assert_eq!(e.process(&mut again, 2, 2, false, false), Out::Send(2));
    assert_eq!(again[0..6], b[0..6], "the flow sticks to its server");
    assert_eq!(e.counters.new_conns.load(Relaxed), 4);
}

#[test]
fn ipv6_nat_translates_both_ways() {
    let (mut e, sh) = setup6(ForwardingMethod::Nat);
    let (client, vip, rs1) = (
        v6("2001:db8:1::10"),
        v6("2001:db8:1::100"),
        v6("2001:db8:2::11"),
    );
    for proto in [IPPROTO_TCP, IPPROTO_UDP] {
        let mut b = from_client6(proto, 1000, SYN, b"hello");
        assert_eq!(e.process(&mut b, 2, 0, false, false), Out::Send(2));
        let f = valid(&b);
        assert_eq!((f.src, f.dst, f.ports), (client, rs1, Some((1000, 8080))));
        assert_eq!(b[0..6], mac_of(rs1));
        // The reply, routed back through us, handled by another worker too.
        let mut other = Engine::new(sh.clone(), 1, 2, 16, Timeouts::default());
        let mut r = build(proto, (rs1, 8080), (client, 1000), 0x12, b"world");
        assert_eq!(other.process(&mut r, 2, 1, false, false), Out::Send(2));
        let f = valid(&r);
        assert_eq!((f.src, f.dst, f.ports), (vip, client, Some((80, 1000))));
        assert_eq!(r[0..6], CLIENT_MAC);
        // The next client flow goes to the other server (rr), so use a new
        // engine state per protocol by moving rr on.
        let mut skip = from_client6(proto, 2000, SYN, b"");
        e.process(&mut skip, 2, 2, false, false);
    }
    assert_eq!(sh.nat.len(), 4);
}

#[test]
fn ipv6_one_arm_nat_hides_the_client_behind_the_balancers_v6_address() {
    let (mut e, _) = setup6(ForwardingMethod::NatOneArm);
    let (lb, rs1) = (v6("2001:db8:2::1"), v6("2001:db8:2::11"));
    let mut b = from_client6(IPPROTO_TCP, 1000, SYN, b"");
    assert_eq!(e.process(&mut b, 2, 0, false, false), Out::Send(2));
    let f = valid(&b);
    let (lport, rport) = f.ports.unwrap();
    assert_eq!((f.src, f.dst, rport), (lb, rs1, 8080));
    assert!((61000..=61003).contains(&lport));
    let mut r = build(IPPROTO_TCP, (rs1, 8080), (lb, lport), 0x12, b"");
    assert_eq!(e.process(&mut r, 2, 1, false, false), Out::Send(2));
    let f = valid(&r);
    assert_eq!(
        (f.src, f.dst, f.ports),
        (
            v6("2001:db8:1::100"),
            v6("2001:db8:1::10"),
            Some((80, 1000))
        )
    );
}

#[test]
fn ipv6_tun_encapsulates_in_ipv6_and_answers_packet_too_big() {
    let (mut e, _) = setup6(ForwardingMethod::Tun(TunOptions::default()));
    let mut b = from_client6(IPPROTO_TCP, 1000, SYN, b"");
    assert_eq!(e.process(&mut b, 2, 0, false, false), Out::SendBuf(2));
    let o = wire::parse(&e.out).unwrap();
    assert_eq!(
        (o.src, o.dst, o.proto),
        (
            v6("2001:db8:2::1"),
            v6("2001:db8:2::11"),
            wire::IPPROTO_IPV6
        )
    );
    assert_eq!(&e.out[o.l4..], &b[ETH_HLEN..]);
    assert_eq!(e.out[0..6], mac_of(v6("2001:db8:2::11")));
    // 1480-byte datagram + 40 > 1500: Packet Too Big, MTU 1460, to the client.
    let mut big = from_client6(IPPROTO_TCP, 1000, ACK, &vec![0u8; 1420]);
    assert_eq!(e.process(&mut big, 2, 1, false, false), Out::SendBuf(2));
    let i = valid(&e.out.clone());
    assert_eq!(
        (i.src, i.dst, i.proto),
        (
            v6("2001:db8:1::100"),
            v6("2001:db8:1::10"),
            wire::IPPROTO_ICMPV6
        )
    );
    assert_eq!(e.out[i.l4..i.l4 + 2], [2, 0]);
    assert_eq!(&e.out[i.l4 + 4..i.l4 + 8], &1460u32.to_be_bytes());
    assert_eq!(e.out[0..6], CLIENT_MAC);
    assert_eq!(e.counters.dropped(DropReason::TooBig), 1);
}

#[test]
fn ipv6_extension_headers_to_a_vip_are_dropped_and_counted_others_pass() {
    let (mut e, _) = setup6(ForwardingMethod::Dr);
    let b = from_client6(IPPROTO_TCP, 1000, SYN, b"");
    // Destination options header (60) in front of TCP.
    let ip = ETH_HLEN;
    let mut x = b[..ip + 40].to_vec();
    x.extend_from_slice(&[IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0]);
    x.extend_from_slice(&b[ip + 40..]);
    x[ip + 6] = 60;
    let plen = u16::from_be_bytes([x[ip + 4], x[ip + 5]]) + 8;
    x[ip + 4..ip + 6].copy_from_slice(&plen.to_be_bytes());
    let mut y = x.clone();
    assert_eq!(
        e.process(&mut x, 2, 0, false, false),
        Out::Drop(DropReason::Ipv6ExtHeader)
    );
    // The same to another address (an MLD report, say): the kernel's.
    y[ip + 24..ip + 40].copy_from_slice(&"ff02::16".parse::<Ipv6Addr>().unwrap().octets());
    assert_eq!(e.process(&mut y, 2, 0, false, false), Out::Pass);
    // UDP with checksum 0 is invalid in IPv6.
    let mut z = from_client6(IPPROTO_UDP, 1000, 0, b"q");
    z[ip + 46] = 0;
    z[ip + 47] = 0;
    assert_eq!(
        e.process(&mut z, 2, 0, false, false),
        Out::Drop(DropReason::Malformed)
    );
    assert_eq!(e.conns(), 0);
}

#[test]
fn ipv6_fragments_follow_their_first_fragment() {
    let (mut e, _) = setup6(ForwardingMethod::Nat);
    let rs1 = v6("2001:db8:2::11");
    let frag = |b: &[u8], off_flags: u16| {
        let ip = ETH_HLEN;
        let mut x = b[..ip + 40].to_vec();
        x.extend_from_slice(&[b[ip + 6], 0]);
        x.extend_from_slice(&off_flags.to_be_bytes());
        x.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        x.extend_from_slice(&b[ip + 40..]);
        x[ip + 6] = wire::IPPROTO_FRAGMENT;
        let plen = u16::from_be_bytes([x[ip + 4], x[ip + 5]]) + 8;
        x[ip + 4..ip + 6].copy_from_slice(&plen.to_be_bytes());
        x
    };
    let b = from_client6(IPPROTO_UDP, 1000, 0, &[1u8; 16]);
    let mut first = frag(&b, 1); // offset 0, M
    assert_eq!(e.process(&mut first, 2, 0, false, false), Out::Send(2));
    assert_eq!(wire::parse(&first).unwrap().dst, rs1);
    let mut second = frag(&b, 3 << 3); // offset 24 bytes, last
    assert_eq!(e.process(&mut second, 2, 1, false, false), Out::Send(2));
    let g = wire::parse(&second).unwrap();
    assert_eq!((g.dst, g.ports), (rs1, None));
    assert_eq!(second[0..6], mac_of(rs1));
    assert_eq!(e.counters.frags.load(Relaxed), 1);
    // Another datagram's non-first fragment: unknown, dropped and counted.
    let mut third = frag(&b, 3 << 3);
    third[ETH_HLEN + 44] ^= 0xff;
    assert_eq!(
        e.process(&mut third, 2, 2, false, false),
        Out::Drop(DropReason::FragUnknown)
    );
}

#[test]
fn icmpv6_packet_too_big_of_nat_flows_is_translated_both_ways() {
    let (mut e, _) = setup6(ForwardingMethod::Nat);
    let (client, vip, rs1) = (
        v6("2001:db8:1::10"),
        v6("2001:db8:1::100"),
        v6("2001:db8:2::11"),
    );
    let mut b = from_client6(IPPROTO_TCP, 1000, SYN, b"");
    e.process(&mut b, 2, 0, false, false);
    // A router on the client side says our reply (VIP:80 -> client) was too big.
    let reply = build(IPPROTO_TCP, (vip, 80), (client, 1000), ACK, &[0u8; 64]);
    let rf = wire::parse(&reply).unwrap();
    let router = "2001:db8:1::fe".parse::<Ipv6Addr>().unwrap();
    let mut icmp = Vec::new();
    wire::packet_too_big(&reply, &rf, router, 1400, &mut icmp);
    assert_eq!(e.process(&mut icmp, 2, 1, false, false), Out::Send(2));
    let o = valid(&icmp);
    assert_eq!((o.src, o.dst), (IpAddr::from(router), rs1));
    let inner = wire::icmp_error(&icmp, &o).unwrap().inner;
    assert_eq!(
        (inner.src, inner.dst, inner.ports),
        (rs1, client, Some((8080, 1000)))
    );
    assert_eq!(icmp[0..6], mac_of(rs1));
    // The real server's error about a packet to it goes back as from the VIP.
    let fwd = build(IPPROTO_TCP, (client, 1000), (rs1, 8080), ACK, &[0u8; 8]);
    let ff = wire::parse(&fwd).unwrap();
    let IpAddr::V6(rs1_6) = rs1 else {
        unreachable!()
    };
    let mut icmp = Vec::new();
    wire::packet_too_big(&fwd, &ff, rs1_6, 1400, &mut icmp);
    assert_eq!(e.process(&mut icmp, 2, 2, false, false), Out::Send(2));
    let o = valid(&icmp);
    assert_eq!((o.src, o.dst), (vip, client));
    let inner = wire::icmp_error(&icmp, &o).unwrap().inner;
    assert_eq!(
        (inner.src, inner.dst, inner.ports),
        (client, vip, Some((1000, 80)))
    );
    assert_eq!(e.counters.icmp.load(Relaxed), 2);
}

#[test]
fn a_real_server_of_the_other_family_is_refused() {
    let (mut e, _) = setup_for(
        v6("2001:db8:1::100"),
        [RS1, RS2],
        LB,
        ForwardingMethod::Dr,
        None,
    );
    let mut b = from_client6(IPPROTO_TCP, 1000, SYN, b"");
    assert_eq!(
        e.process(&mut b, 2, 0, false, false),
        Out::Drop(DropReason::Unsupported)
    );
}

/// IPVS's conn_reuse_mode 1: a client reusing the port of a connection that is over gets a
/// new connection, scheduled afresh; a SYN on a live one keeps its server.
#[test]
fn syn_on_a_closed_connection_is_scheduled_again() {
    const RST: u8 = 0x04;
    let (mut e, _) = setup(ForwardingMethod::Dr, None);
    let mut b = from_client(1000, SYN, b"");
    assert_eq!(e.process(&mut b, 2, 0, false, false), Out::Send(2));
    assert_eq!(b[0..6], mac_of(RS1));
    // A retransmitted SYN while the connection lives: same server, no new connection.
    let mut b = from_client(1000, SYN, b"");
    assert_eq!(e.process(&mut b, 2, 1, false, false), Out::Send(2));
    assert_eq!(b[0..6], mac_of(RS1));
    assert_eq!(e.counters.new_conns.load(Relaxed), 1);
    for flags in [ACK, RST | ACK] {
        let mut b = from_client(1000, flags, b"");
        assert_eq!(e.process(&mut b, 2, 2, false, false), Out::Send(2));
    }
    // The port again, 1 ms later: rr moves on to the next server.
    let mut b = from_client(1000, SYN, b"");
    assert_eq!(e.process(&mut b, 2, 3, false, false), Out::Send(2));
    assert_eq!(b[0..6], mac_of(RS2));
    assert_eq!(e.counters.new_conns.load(Relaxed), 2);
}

/// The ipvsadm counters: a connection, packets and IP bytes each way, on the real server
/// and on its service; a packet that is dropped (standby) counts nowhere; the listing shows
/// the connection in its IPVS state with the real server's port.
#[test]
fn nat_counts_traffic_per_server_and_service_and_lists_its_connection() {
    let (mut e, sh) = setup(ForwardingMethod::Nat, None);
    let mut b = from_client(1000, SYN, b"");
    let syn_len = (b.len() - ETH_HLEN) as u64;
    assert_eq!(e.process(&mut b, 2, 0, false, false), Out::Send(2));
    let mut r = build(IPPROTO_TCP, (RS1, 8080), (CLIENT, 1000), 0x12, b"hello");
    let reply_len = (r.len() - ETH_HLEN) as u64;
    // A reply handled by another worker counts too.
    let mut other = Engine::new(sh.clone(), 1, 2, 16, Timeouts::default());
    assert_eq!(other.process(&mut r, 2, 1, false, false), Out::Send(2));
    let mut b = from_client(1000, ACK, b"abc");
    let ack_len = (b.len() - ETH_HLEN) as u64;
    assert_eq!(e.process(&mut b, 2, 2, false, false), Out::Send(2));
    sh.forwarding.store(false, Relaxed);
    let mut b = from_client(1000, ACK, b"dropped");
    assert!(matches!(
        e.process(&mut b, 2, 3, false, false),
        Out::Drop(_)
    ));
    let table = sh.table.load();
    let svc = &table.services()[0];
    let rs1 = svc.servers.iter().find(|s| s.id.addr == RS1).unwrap();
    let want = crate::stats::Totals {
        conns: 1,
        inpkts: 2,
        outpkts: 1,
        inbytes: syn_len + ack_len,
        outbytes: reply_len,
    };
    assert_eq!(rs1.stats.traffic.totals(), want);
    assert_eq!(svc.traffic.totals(), want);
    let rs2 = svc.servers.iter().find(|s| s.id.addr == RS2).unwrap();
    assert_eq!(rs2.stats.traffic.totals(), crate::stats::Totals::default());
    let mut rows = Vec::new();
    assert_eq!(e.page(None, 16, 3, &mut rows), None);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.proto, row.state, row.client, row.virt, row.dest),
        ("TCP", "ESTABLISHED", (CLIENT, 1000), (VIP, 80), (RS1, 8080))
    );
}

/// Connection sync between two engines of two nodes, through the wire format: what the
/// Master's worker emits, batched and decoded by the Backup, installed, then forwarded by
/// the Backup's worker after the takeover.
mod sync {
    use std::sync::mpsc;

    use super::*;
    use crate::dataplane::syncd;
    use crate::sync::session::{Received, Role, Session, SessionConfig};

    struct Pair {
        a: Engine,
        a_sh: Arc<Shared>,
        a_rx: mpsc::Receiver<Entry>,
        b: Engine,
        b_sh: Arc<Shared>,
    }

    fn pair(method: ForwardingMethod, persist: Option<u32>) -> Pair {
        let (mut a, a_sh) = setup(method, persist);
        let (b, b_sh) = setup(method, persist);
        let (tx, a_rx) = mpsc::sync_channel(1024);
        a.set_sync_sender(tx);
        a_sh.sync.master.store(true, Relaxed);
        // The Backup stands by: its services are parked until the takeover.
        b_sh.forwarding.store(false, Relaxed);
        // The Backup reaches the client by route and neighbour.
        let mut hops = (*b_sh.neigh.snapshot()).clone();
        hops.insert(
            CLIENT,
            Hop {
                ifindex: 2,
                mac: CLIENT_MAC,
                src_mac: LB_MAC,
                src_ip: LB,
                mtu: 1500,
            },
        );
        b_sh.neigh.publish(hops);
        Pair {
            a,
            a_sh,
            a_rx,
            b,
            b_sh,
        }
    }

    impl Pair {
        /// Moves what the Master emitted through the wire to the Backup's tables.
        fn sync(&mut self, now: Millis) -> usize {
            let mut tx = Session::new(SessionConfig::default(), Arc::default());
            let mut rx = Session::new(SessionConfig::default(), Arc::default());
            tx.set_role(Role::Master, now);
            rx.set_role(Role::Backup, now);
            let _ = rx.poll_transmit(now); // its full-table request
            let mut n = 0;
            while let Ok(e) = self.a_rx.try_recv() {
                tx.queue(&e, now);
                n += 1;
            }
            while let Some(d) = tx.poll_transmit(now + 1000) {
                if let Received::Entries(es) = rx.receive(&d, now) {
                    syncd::install(&self.b_sh, &es, now);
                }
            }
            n
        }

        fn take_over(&mut self) {
            self.b_sh.forwarding.store(true, Relaxed);
        }
    }

    fn established(e: &mut Engine, sport: u16, now: Millis) -> Vec<u8> {
        let mut syn = from_client(sport, SYN, b"");
        e.process(&mut syn, 2, now, false, false);
        let mut ack = from_client(sport, ACK, b"");
        e.process(&mut ack, 2, now + 1, false, false);
        ack
    }

    #[test]
    fn one_arm_connections_continue_on_the_backup_with_their_port() {
        let mut p = pair(ForwardingMethod::NatOneArm, None);
        let before: Vec<(IpAddr, u16)> = (0..3)
            .map(|i| {
                let f = valid(&established(&mut p.a, 1000 + i, 0));
                (f.dst, f.ports.unwrap().0)
            })
            .collect();
        assert_eq!(p.sync(10), 3, "one entry per established connection");
        assert_eq!(p.b_sh.sync.synced.len(), 3);
        assert_eq!(p.b_sh.nat.len(), 3, "the Backup reserves the one-arm ports");
        // Standing by, the Backup forwards nothing of them.
        let mut d = from_client(1000, ACK, b"data");
        assert_eq!(
            p.b.process(&mut d, 2, 20, false, false),
            Out::Drop(DropReason::Standby)
        );
        p.take_over();
        for (i, &(rs, port)) in before.iter().enumerate() {
            let mut d = from_client(1000 + i as u16, ACK, b"data");
            assert_eq!(p.b.process(&mut d, 2, 30, false, false), Out::Send(2));
            let f = valid(&d);
            assert_eq!(
                (f.src, f.dst, f.ports.unwrap().0),
                (LB, rs, port),
                "same real server and one-arm source port"
            );
            // And the real server's answer goes back to the client.
            let mut r = build(IPPROTO_TCP, (f.dst, 8080), (LB, port), ACK, b"ok");
            assert_eq!(p.b.process(&mut r, 2, 31, false, false), Out::Send(2));
            let g = valid(&r);
            assert_eq!(
                (g.src, g.dst, g.ports),
                (VIP, CLIENT, Some((80, 1000 + i as u16)))
            );
            assert_eq!(r[0..6], CLIENT_MAC);
        }
        assert_eq!(p.b_sh.sync.counters.snapshot().adopted, 3);
        assert!(p.b_sh.sync.synced.is_empty());
        // A new connection never takes a port the Master gave out.
        for s in 0..4 {
            let mut syn = from_client(2000 + s, SYN, b"");
            if p.b.process(&mut syn, 2, 40, false, false) == Out::Send(2) {
                let f = valid(&syn);
                assert!(!before.contains(&(f.dst, f.ports.unwrap().0)));
            }
        }
    }

    #[test]
    fn unknown_mid_stream_segments_are_reset_and_persistence_holds() {
        let mut p = pair(ForwardingMethod::Nat, Some(300));
        let b = established(&mut p.a, 1000, 0);
        let rs = valid(&b).dst;
        // Template and connection travel together.
        assert_eq!(p.sync(10), 2);
        p.take_over();
        // A segment of a connection the Master never established is reset, as IPVS's
        // director would (sloppy_tcp off).
        let mut stray = from_client(4000, ACK, b"x");
        assert_eq!(
            p.b.process(&mut stray, 2, 20, false, false),
            Out::SendBuf(2)
        );
        let r = valid(&p.b.out.clone());
        assert_eq!(
            (r.src, r.dst, r.tcp.map(|t| t.rst)),
            (VIP, CLIENT, Some(true))
        );
        // A new connection of the persistent client lands on its template's server.
        for sport in [5000, 5001, 5002] {
            let mut syn = from_client(sport, SYN, b"");
            p.b.process(&mut syn, 2, 30, false, false);
            assert_eq!(valid(&syn).dst, rs);
        }
        let c = p.b_sh.sync.counters.snapshot();
        assert_eq!(c.installed, 2);
        let _ = &p.a_sh;
    }

    #[test]
    fn half_open_connections_are_not_sent_and_udp_is() {
        let mut p = pair(ForwardingMethod::Dr, None);
        let mut syn = from_client(1000, SYN, b"");
        p.a.process(&mut syn, 2, 0, false, false);
        let mut u = build(IPPROTO_UDP, (CLIENT, 7000), (VIP, 80), 0, b"q");
        wire::set_macs(&mut u, LB_MAC, CLIENT_MAC);
        p.a.process(&mut u, 2, 0, false, false);
        assert_eq!(p.sync(1), 1, "only the UDP flow");
        p.take_over();
        let mut u = build(IPPROTO_UDP, (CLIENT, 7000), (VIP, 80), 0, b"q");
        wire::set_macs(&mut u, LB_MAC, CLIENT_MAC);
        assert_eq!(p.b.process(&mut u, 2, 5, false, false), Out::Send(2));
        assert_eq!(u[0..6], mac_of(RS1), "the same real server");
        assert_eq!(p.b_sh.sync.counters.snapshot().adopted, 1);
    }

    #[test]
    fn a_syn_on_a_synchronised_connection_that_is_over_starts_a_new_one() {
        let mut p = pair(ForwardingMethod::Dr, None);
        established(&mut p.a, 1000, 0);
        // The client closes, then resets: CLOSE, sent as a state change.
        for (f, t) in [(ACK | 0x01, 5), (0x04, 6)] {
            let mut b = from_client(1000, f, b"");
            p.a.process(&mut b, 2, t, false, false);
        }
        assert_eq!(p.sync(10), 3, "established, fin-wait, close");
        p.take_over();
        let mut syn = from_client(1000, SYN, b"");
        assert_eq!(p.b.process(&mut syn, 2, 20, false, false), Out::Send(2));
        assert_eq!(p.b.counters.new_conns.load(Relaxed), 1, "scheduled afresh");
        assert_eq!(p.b_sh.sync.counters.snapshot().adopted, 0);
    }
}
