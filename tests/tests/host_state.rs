//! The host is left as found (issue 18, item 10): what vrrpd changes on a node beyond the
//! addresses it holds (GRO turned off by the balancer, `promote_secondaries`, a VMAC and its
//! parent's `arp_*` sysctls, the `no_accept` and balancer nftables tables) is put back when it
//! stops, and after a `kill -9` at its next start (the changes are written down beside the pid
//! file before they are made). The test snapshots the node's state before the start, after a
//! stop, and after kill -9 + restart + stop, and compares.

use std::collections::BTreeMap;
use std::time::Duration;

use lab::e2e::{self, node};
use lab::lb::in_netns;
use lab::wait::wait_until;
use lab::{require_root, Daemon, Host, Lab};
use lbcore::dataplane::offload::{self, Offload};

/// A node that changes everything it can: the VIP on a VMAC, promote_secondaries, no_accept
/// (vrrpd's nftables table) and a virtual server (the balancer: GRO off, its own table).
fn conf() -> String {
    let mut c = node("a", 150, 3, 0.1, "192.0.2.100/24");
    c.extra_instance = Some("use_vmac\n    promote_secondaries\n    no_accept".into());
    c.extra_blocks = Some(
        "virtual_server 192.0.2.100 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    real_server 192.0.2.50 80 {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n}"
            .into(),
    );
    c.render()
}

/// What the daemon may touch in `host`'s namespace: links (name and kind), addresses, every
/// interface sysctl, the nftables rule set, eth0's offloads.
fn snapshot(host: &Host) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    let run = |cmd: &str, args: &[&str]| {
        let o = host.exec(cmd, args).expect(cmd);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    for l in run("ip", &["-o", "-d", "link", "show"]).lines() {
        // "2: eth0@if5: <...> mtu ... \    link/ether ... macvlan mode private ..."
        let mut w = l.split_whitespace();
        let name = w
            .nth(1)
            .unwrap_or_default()
            .trim_end_matches(':')
            .to_string();
        let kind = ["macvlan", "veth", "loopback"]
            .into_iter()
            .find(|k| l.contains(k))
            .unwrap_or("other");
        s.insert(format!("link {name}"), kind.to_string());
    }
    for l in run("ip", &["-o", "addr", "show"]).lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() > 3 {
            s.insert(format!("addr {} {}", w[1], w[3]), String::new());
        }
    }
    let sysctls = run(
        "sh",
        &[
            "-c",
            "grep -r . /proc/sys/net/ipv4/conf /proc/sys/net/ipv6/conf 2>/dev/null",
        ],
    );
    for l in sysctls.lines() {
        if let Some((k, v)) = l.split_once(':') {
            s.insert(k.to_string(), v.to_string());
        }
    }
    s.insert("nft".into(), run("nft", &["list", "ruleset"]));
    for o in [Offload::Gro, Offload::Tso, Offload::Gso] {
        let on = in_netns(host, || offload::get("eth0", o)).unwrap();
        s.insert(format!("eth0 {}", o.name()), format!("{on:?}"));
    }
    s
}

/// For the log: the differences, a new interface's own sysctls left out.
fn summary(d: &[String]) -> String {
    let shown: Vec<&str> = d
        .iter()
        .filter(|l| !l.contains("/vrrp.51/"))
        .map(|l| l.split("\\n").next().unwrap_or(l))
        .collect();
    format!("{} differences:\n  {}", d.len(), shown.join("\n  "))
}

/// The entries that differ between two snapshots.
fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} -> {:?}", a.get(k), b.get(k)))
        .collect()
}

/// Starts vrrpd on `host` and waits until every change is made.
fn start(host: &Host) -> lab::DaemonProc {
    let d = Daemon::Vrrpd.start(host, &conf()).unwrap();
    let nft_tables = || {
        let o = host.exec("nft", &["list", "tables"]).unwrap();
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        t.contains("vrrpd_vrrp") && t.contains("vrrpd_lb")
    };
    let changed = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        host.has_addr(e2e::addr("192.0.2.100/24"))
            && nft_tables()
            && matches!(
                in_netns(host, || offload::get("eth0", Offload::Gro)),
                Ok(Ok(false))
            )
    });
    assert!(changed, "vrrpd never made its changes\n{}", d.log_text());
    d
}

#[test]
fn the_host_is_left_as_found_after_a_stop_and_after_kill_9() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    // What a NIC has: GRO on (a veth starts with it off).
    in_netns(&a, || offload::set("eth0", Offload::Gro, true))
        .unwrap()
        .unwrap();
    let found = snapshot(&a);
    let state_file = a.dir.join("vrrpd.host");

    // A clean stop puts everything back.
    let mut d = start(&a);
    let running = snapshot(&a);
    let changed = diff(&found, &running);
    eprintln!("changed while running: {}", summary(&changed));
    for what in [
        "eth0 gro",
        "link vrrp.51",
        "/proc/sys/net/ipv4/conf/eth0/promote_secondaries",
        "/proc/sys/net/ipv4/conf/eth0/arp_ignore",
        "nft",
    ] {
        assert!(
            changed.iter().any(|c| c.starts_with(what)),
            "{what} not changed: the test would prove nothing\n{changed:?}"
        );
    }
    assert!(state_file.exists(), "the changes are written down");
    assert!(d.terminate(Duration::from_secs(10)), "vrrpd did not stop");
    let after_stop = diff(&found, &snapshot(&a));
    assert!(after_stop.is_empty(), "after a stop:\n{after_stop:#?}");
    assert!(!state_file.exists(), "nothing left to put back");

    // kill -9 leaves it all; the next start puts it back before changing it again.
    let mut d = start(&a);
    d.kill_hard();
    let left = diff(&found, &snapshot(&a));
    eprintln!("left by kill -9: {}", summary(&left));
    assert!(left.iter().any(|c| c.starts_with("eth0 gro")), "{left:?}");
    let mut d = Daemon::Vrrpd.start(&a, &conf()).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || d
            .log_text()
            .contains("vrrpd started")),
        "{}",
        d.log_text()
    );
    let log = d.log_text();
    for what in [
        "gro",
        "vrrpd_lb",
        "vrrpd_vrrp",
        "vrrp.51",
        "promote_secondaries",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("put back what a previous run left") && l.contains(what)),
            "{what} not put back\n{log}"
        );
    }
    assert!(d.terminate(Duration::from_secs(10)), "vrrpd did not stop");
    let after_crash = diff(&found, &snapshot(&a));
    assert!(
        after_crash.is_empty(),
        "after kill -9, restart, stop:\n{after_crash:#?}"
    );
    assert!(!state_file.exists());
}
