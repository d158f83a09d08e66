//! An instance whose source address is not there waits in FAULT instead of stopping the
//! daemon, as keepalived 2.2.7 does: an interface without an IPv4 address ("no IPv4 address
//! for interface"), a `unicast_src_ip` that is not local ("src address not configured").
//! Once the address is added the instance leaves FAULT and takes over (keepalived does so
//! for the first; for the second it stays in FAULT, vrrpd goes on).

use std::time::Duration;

use lab::daemon::Daemon;
use lab::wait::wait_until;
use lab::{require_root, Lab};

const CONFIG: &str = "\
vrrp_instance NOADDR {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority 100
  advert_int 0.1
  virtual_ipaddress {
    192.0.2.61/24
  }
}
vrrp_instance NOSRC {
  state BACKUP
  interface eth0
  virtual_router_id 62
  priority 100
  advert_int 0.1
  unicast_src_ip 198.51.100.77
  unicast_peer {
    198.51.100.78
  }
  virtual_ipaddress {
    198.51.100.62/24
  }
}
";

#[test]
fn instance_waits_in_fault_for_its_source_address() {
    require_root!();
    if !lab::e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder()
        .host("a", "192.0.2.1/24", "2001:db8::1/64")
        .build()
        .unwrap();
    let a = lab.host("a");
    a.addr_del("192.0.2.1/24").unwrap();
    let mut d = Daemon::Vrrpd.start(a, CONFIG).unwrap();
    let logged = |d: &lab::daemon::DaemonProc, text: &str, secs: u64| {
        wait_until(Duration::from_secs(secs), Duration::from_millis(20), || {
            d.log_text().contains(text)
        })
    };
    for line in [
        "(NOADDR) entering FAULT state (no IPv4 address for interface)",
        "(NOSRC): entering FAULT state (src address not configured)",
        "(NOADDR) Entering FAULT STATE (from INIT)",
        "(NOSRC) Entering FAULT STATE (from INIT)",
    ] {
        assert!(
            logged(&d, line, 5),
            "missing {line:?}; log:\n{}",
            d.log_text()
        );
    }
    // Waiting, not gone, and holding nothing.
    std::thread::sleep(Duration::from_millis(800));
    assert!(d.is_running(), "daemon exited; log:\n{}", d.log_text());
    let vip1 = "192.0.2.61".parse().unwrap();
    let vip2 = "198.51.100.62".parse().unwrap();
    assert!(!a.has_addr(vip1) && !a.has_addr(vip2));

    // The interface gets its address: NOADDR leaves FAULT and, alone, becomes Master.
    a.addr_add("192.0.2.1/24").unwrap();
    assert!(
        logged(&d, "(NOADDR) Entering MASTER STATE (from BACKUP)", 5),
        "log:\n{}",
        d.log_text()
    );
    assert!(wait_until(
        Duration::from_secs(2),
        Duration::from_millis(20),
        || a.has_addr(vip1)
    ));
    assert!(!d.log_text().contains("(NOSRC) Entering BACKUP"));
    assert!(!a.has_addr(vip2));

    // The configured source appears: NOSRC follows.
    a.addr_add("198.51.100.77/24").unwrap();
    assert!(
        logged(&d, "(NOSRC) Entering MASTER STATE (from BACKUP)", 5),
        "log:\n{}",
        d.log_text()
    );
    assert!(wait_until(
        Duration::from_secs(2),
        Duration::from_millis(20),
        || a.has_addr(vip2)
    ));
    assert!(d.terminate(Duration::from_secs(5)));
    assert!(!a.has_addr(vip1) && !a.has_addr(vip2));
}
