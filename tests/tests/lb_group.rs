//! `virtual_server group NAME` in the daemon: a `virtual_server_group` with an address, a range
//! and an fwmark entry, balanced DR (rr) to three nginx real servers by a vrrpd Master holding
//! the three addresses.
//!
//! Asserted: every request from the client to each group address succeeds (the balancer's
//! kernel, which holds the addresses, never answers a SYN with a RST: the nftables ingress
//! rules cover group entries as they cover plain virtual servers) and each address's requests
//! are spread over every real server; the fwmark entry gets no rule.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use lab::e2e::{self, node};
use lab::lb::{http_get, in_netns, LbLab, Plan};
use lab::{require_root, Daemon, Host};

/// The group's addresses: 192.0.2.100 alone and the range 192.0.2.101-102.
const VIPS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 100),
    Ipv4Addr::new(192, 0, 2, 101),
    Ipv4Addr::new(192, 0, 2, 102),
];

fn conf(rs: &[Ipv4Addr]) -> String {
    let mut c = node("lb", 150, 3, 0.1, &format!("{}/32", VIPS[0]));
    c.vips = VIPS.iter().map(|v| format!("{v}/32")).collect();
    let servers: String = rs
        .iter()
        .map(|a| {
            format!(
                "    real_server {a} 80 {{\n        TCP_CHECK {{\n            connect_timeout 0.3\n            retry 0\n        }}\n    }}\n"
            )
        })
        .collect();
    c.extra_blocks = Some(format!(
        "virtual_server_group web {{\n    192.0.2.100 80\n    192.0.2.101-102 80\n    fwmark 7\n}}\n\
         virtual_server group web {{\n    delay_loop 0.2\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n{servers}}}\n"
    ));
    c.render()
}

/// Request `n` pages from `vip`:80 on new connections; every one must succeed.
fn spread(lab: &LbLab, vip: Ipv4Addr, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|i| {
            let body = in_netns(lab.client(), || {
                http_get(SocketAddr::new(vip.into(), 80), None)
            })
            .expect("netns")
            .unwrap_or_else(|e| panic!("request {i} to {vip}: {e}"));
            body.split(' ').next().unwrap_or_default().to_string()
        })
        .collect()
}

fn sh(host: &Host, cmd: &str) -> String {
    let out = host.exec("sh", &["-c", cmd]).expect("exec");
    assert!(
        out.status.success(),
        "{}: {cmd}: {}",
        host.name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn group_addresses_and_ranges_are_balanced_without_kernel_resets() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = LbLab::new_vrrp_pair(Plan::Dr, 3).expect("lab");
    // DR: every real server holds every group address on `lo` (the lab adds the first).
    for i in 0..lab.rs.len() {
        let h = lab.lab.host(&format!("rs{}", i + 1));
        sh(
            h,
            "ip addr add 192.0.2.101/32 dev lo && ip addr add 192.0.2.102/32 dev lo",
        );
    }
    let lb = lab.lb().clone();
    let d = Daemon::Vrrpd.start(&lb, &conf(&lab.rs)).expect("vrrpd");
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(20), || VIPS
            .iter()
            .all(|v| lb.has_addr((*v).into()))),
        "lb never became Master: {}",
        d.log_text()
    );
    // The balancer forwards once the Master's gate opens.
    let vip80 = SocketAddr::new(VIPS[0].into(), 80);
    let mut last = None;
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            last = in_netns(lab.client(), || http_get(vip80, None).err()).expect("netns");
            last.is_none()
        }),
        "no answer through the balancer ({last:?}): {}",
        d.log_text()
    );

    // From now on every request succeeds: the balancer's kernel stays silent, and rr spreads
    // each address's requests over the three real servers.
    for vip in VIPS {
        let seen = spread(&lab, vip, 6);
        assert_eq!(seen.len(), 3, "{vip}: {seen:?}");
    }

    // The group's addresses have their ingress drop rule, the fwmark entry none.
    let rules = sh(&lb, "nft list table netdev vrrpd_lb");
    assert!(rules.contains("tcp dport 80 drop"), "{rules}");
    assert!(!rules.contains("mark"), "{rules}");
}
