//! `dynamic_interfaces`: an instance whose interface does not exist yet (a VLAN, bond or
//! container link made after the daemon starts) waits in FAULT and starts when the interface
//! appears, as keepalived 2.2.7's does, instead of the daemon refusing to start. keepalived
//! runs the same file beside vrrpd as the reference: both notify FAULT, keep running, and once
//! the interface is made go BACKUP then MASTER and hold the VIP.

use std::time::Duration;

use lab::daemon::Daemon;
use lab::wait::wait_until;
use lab::{require_root, Host, Lab};

fn config(notify_log: &str) -> String {
    format!(
        "\
global_defs {{
  dynamic_interfaces
  script_user root
  enable_script_security
}}
vrrp_instance LATE {{
  state BACKUP
  interface late0
  virtual_router_id 71
  priority 100
  advert_int 1
  virtual_ipaddress {{
    198.51.100.71/24
  }}
  notify \"/bin/sh -c 'echo $2 >> {notify_log}'\"
}}
"
    )
}

/// The states notified so far.
fn notified(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Makes `late0` (a veth whose peer stays in the namespace) with an address, up.
fn make_interface(host: &Host) {
    for args in [
        &[
            "link", "add", "late0", "type", "veth", "peer", "name", "late0p",
        ][..],
        &["link", "set", "late0p", "up"],
        &["addr", "add", "198.51.100.1/24", "dev", "late0"],
        &["link", "set", "late0", "up"],
    ] {
        let out = host.exec("ip", args).unwrap();
        assert!(out.status.success(), "ip {args:?}: {:?}", out);
    }
}

#[test]
fn instance_waits_for_its_interface_and_starts_when_it_appears() {
    require_root!();
    if !lab::e2e::available(&[Daemon::Vrrpd, Daemon::Keepalived]) {
        return;
    }
    let lab = Lab::builder()
        .host("k", "192.0.2.1/24", "2001:db8::1/64")
        .host("v", "192.0.2.2/24", "2001:db8::2/64")
        .build()
        .unwrap();
    let vip = "198.51.100.71".parse().unwrap();
    let mut runs = Vec::new();
    for (name, daemon) in [("k", Daemon::Keepalived), ("v", Daemon::Vrrpd)] {
        let host = lab.host(name);
        let log = host.dir.join("notify.log");
        let d = daemon.start(host, &config(&log.to_string_lossy())).unwrap();
        runs.push((host, daemon, d, log));
    }
    // Waiting in FAULT, running, holding nothing.
    for (host, daemon, d, log) in &runs {
        assert!(
            wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
                notified(log).first().map(String::as_str) == Some("FAULT")
            }),
            "{daemon}: no FAULT notified: {:?}\n{}",
            notified(log),
            d.log_text()
        );
        assert!(!host.has_addr(vip));
    }
    std::thread::sleep(Duration::from_millis(1500));
    for (_, daemon, d, _) in &mut runs {
        assert!(d.is_running(), "{daemon} exited:\n{}", d.log_text());
    }

    // The interface appears: Backup, then Master after Master_Down_Interval (~3 s), VIP added.
    for (host, ..) in &runs {
        make_interface(host);
    }
    for (host, daemon, d, log) in &runs {
        // The notify script runs after the address is added: wait for both.
        assert!(
            wait_until(Duration::from_secs(10), Duration::from_millis(50), || host
                .has_addr(vip)
                && notified(log).last().map(String::as_str) == Some("MASTER")),
            "{daemon} did not take the VIP and notify MASTER: {:?}\n{}",
            notified(log),
            d.log_text()
        );
        let states = notified(log);
        let at = |s: &str| states.iter().rposition(|x| x == s);
        assert!(
            at("FAULT") < at("BACKUP") && at("BACKUP") < at("MASTER"),
            "{daemon}: {states:?}"
        );
    }
    for (host, daemon, mut d, _) in runs {
        assert!(d.terminate(Duration::from_secs(5)), "{daemon} did not stop");
        assert!(!host.has_addr(vip));
    }
}
