//! Virtual addresses carry every option of `virtual_ipaddress` (prefix, brd, scope, label) onto
//! the interface exactly as keepalived puts them there, and are gone again after SIGTERM.

use std::time::Duration;

use lab::{require_root, wait_until, Daemon, Lab, NodeConf, NodeState};

const VIPS: [&str; 3] = [
    "192.0.2.100/24 brd 192.0.2.255 scope global label eth0:vip",
    "192.0.2.101/32 scope link",
    "192.0.2.102",
];

/// `ip -o addr` lines for our VIPs on node a while `daemon` is Master, without the
/// per-run interface index and lifetimes.
fn vip_lines(daemon: Daemon) -> Vec<String> {
    let lab = Lab::builder().build().expect("lab");
    let a = lab.host("a");
    let mut conf = NodeConf::demo("opt_a", NodeState::Master, 255);
    conf.vips = VIPS.iter().map(|s| s.to_string()).collect();
    let mut proc = daemon.start(a, &conf.render()).expect("daemon starts");
    let has_all = || {
        ["192.0.2.100", "192.0.2.101", "192.0.2.102"]
            .iter()
            .all(|ip| a.has_addr(ip.parse().unwrap()))
    };
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(10), has_all),
        "{daemon} never added its addresses:\n{}",
        proc.log_text()
    );
    let out = a
        .exec("ip", &["-o", "-4", "addr", "show", "dev", "eth0"])
        .unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("192.0.2.10"))
        .map(|l| {
            // "2: eth0    inet 192.0.2.100/24 brd ... \       valid_lft forever ..."
            let l = l.split_once("inet").map_or(l, |(_, r)| r);
            l.split('\\')
                .next()
                .unwrap_or(l)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert!(
        proc.terminate(Duration::from_secs(5)),
        "{daemon} did not exit on SIGTERM"
    );
    for ip in ["192.0.2.100", "192.0.2.101", "192.0.2.102"] {
        assert!(
            !a.has_addr(ip.parse().unwrap()),
            "{daemon} left {ip} behind"
        );
    }
    lines
}

#[test]
fn vip_options_match_keepalived() {
    require_root!();
    let ours = vip_lines(Daemon::Vrrpd);
    assert_eq!(ours.len(), 3, "{ours:?}");
    assert!(
        ours.contains(
            &"192.0.2.100/24 brd 192.0.2.255 scope global secondary eth0:vip".to_string()
        ),
        "{ours:?}"
    );
    assert!(
        ours.contains(&"192.0.2.101/32 scope link eth0".to_string()),
        "{ours:?}"
    );
    if Daemon::Keepalived.available() {
        let mut theirs = vip_lines(Daemon::Keepalived);
        let mut ours = ours;
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "addresses differ from keepalived's");
    } else {
        eprintln!("keepalived not installed: compared with the expected lines only");
    }
}
