//! End-to-end over IPv6: the in-process balancer (lbcore::dataplane) between a
//! client and nginx real servers on 2001:db8:: addresses, each in its own
//! namespace. DR, NAT, one-arm NAT and TUN (IPv6-in-IPv6), TCP (HTTP, rr split
//! exactly) and UDP (echo); the real servers' MACs come from our own
//! neighbour solicitations.

use std::collections::BTreeMap;

use lab::lb::{service6, tables, tally, LbLab, Plan};
use lab::require_root;
use lbcore::dataplane::{DataplaneConfig, DropReason};
use lbcore::spec::{ForwardingMethod, Protocol, SchedulerKind, ServiceSpec, TunOptions};

fn exact(n: usize) -> BTreeMap<String, usize> {
    [("rs1".to_string(), n), ("rs2".to_string(), n)].into()
}

#[test]
fn lb_ipv6_every_method_tcp_and_udp_round_robin() {
    require_root!();
    for (plan, method) in [
        (Plan::Dr, ForwardingMethod::Dr),
        (Plan::Nat, ForwardingMethod::Nat),
        (Plan::Nat, ForwardingMethod::NatOneArm),
        (Plan::Tun, ForwardingMethod::Tun(TunOptions::default())),
    ] {
        let lab = LbLab::new(plan, 2, 0).expect("lab");
        let tcp = ServiceSpec {
            scheduler: SchedulerKind::Rr,
            forwarding: method,
            ..service6(&lab, Protocol::Tcp, 80)
        };
        let udp = ServiceSpec {
            scheduler: SchedulerKind::Rr,
            forwarding: method,
            ..service6(&lab, Protocol::Udp, lab::lb::UDP_PORT)
        };
        let (_c, table, persist) = tables(vec![tcp, udp]);
        let cfg = DataplaneConfig {
            workers: 2,
            ..Default::default()
        };
        let lb = lab.start(cfg, table, persist).expect("dataplane");
        // Next hops of IPv6 real servers come from our own solicitations.
        for a in &lab.rs6 {
            let h = lb.dp().hops()[&(*a).into()];
            assert_eq!(h.src_ip, std::net::IpAddr::from(lab.lb_addr6), "{method:?}");
        }
        let answers: Vec<String> = (0..10)
            .map(|i| {
                lab.get6()
                    .unwrap_or_else(|e| panic!("{method:?}: GET {i} via [VIP6]: {e}"))
            })
            .collect();
        assert_eq!(
            tally(&answers),
            exact(5),
            "{method:?}: rr is exact: {answers:?}"
        );
        // Who the real server saw: the client, or the balancer in one-arm mode.
        let seen = if method == ForwardingMethod::NatOneArm {
            lab.lb_addr6.to_string()
        } else {
            lab.client6.to_string()
        };
        assert!(
            answers.iter().all(|a| a.ends_with(&seen)),
            "{method:?}: {answers:?}"
        );
        // UDP: each source port a new flow; answers come from the VIP (connected socket).
        let echoes: Vec<String> = (0..10)
            .map(|i| {
                lab.udp6(41000 + i)
                    .unwrap_or_else(|e| panic!("{method:?}: UDP {i}: {e}"))
            })
            .collect();
        assert_eq!(tally(&echoes), exact(5), "{method:?}: {echoes:?}");
        assert_eq!(
            lab.udp6(41000).expect("UDP again"),
            echoes[0],
            "same flow, same server"
        );
        assert!(
            echoes.iter().all(|a| a.ends_with(&seen)),
            "{method:?}: {echoes:?}"
        );
        let n = lb.dp().counters();
        assert!(n.new_conns >= 20, "{method:?}: {n:?}");
        assert_eq!(n.dropped(DropReason::NoNeigh), 0, "{method:?}: {n:?}");
        assert_eq!(n.dropped(DropReason::Unsupported), 0, "{method:?}: {n:?}");
        match method {
            ForwardingMethod::Nat | ForwardingMethod::NatOneArm => {
                assert!(n.replies >= 21, "{method:?}: replies through us: {n:?}")
            }
            _ => assert_eq!(n.replies, 0, "{method:?}: replies bypass the balancer"),
        }
        // IPv4 on the same lab still goes its own way (no IPv4 service: the kernel's,
        // silenced only for the v6 VIP).
        drop(lb);
    }
}

#[test]
fn lb_ipv6_forwarding_switch_and_kernel_silence() {
    require_root!();
    let lab = LbLab::new(Plan::Dr, 1, 0).expect("lab");
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Rr,
        forwarding: ForwardingMethod::Dr,
        ..service6(&lab, Protocol::Tcp, 80)
    };
    let (_c, table, persist) = tables(vec![spec]);
    let lb = lab
        .start(DataplaneConfig::default(), table, persist)
        .expect("dataplane");
    assert!(lab.get6().expect("GET").starts_with("rs1"));
    // Off: no answer at all, in particular no RST from the balancer's kernel
    // (nftables `ip6 daddr VIP6 tcp dport 80 drop` hides the port from it).
    lb.dp().set_forwarding(false);
    let err = lab.get6().expect_err("no service while off").to_string();
    assert!(!err.contains("refused") && !err.contains("reset"), "{err}");
    assert!(lb.dp().counters().dropped(DropReason::Standby) >= 1);
    lb.dp().set_forwarding(true);
    assert!(lab.get6().expect("GET").starts_with("rs1"));
}
