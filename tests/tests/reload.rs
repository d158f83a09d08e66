//! SIGHUP reloads the configuration as keepalived does: the Master stays Master without
//! releasing its addresses (the peer never takes over), addresses added or removed in the file
//! and virtual routes follow, the VMAC interface survives, and a broken file is reported with its file:line:col
//! while the running configuration goes on.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Host, Lab, NodeConf};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const VIP2: &str = "192.0.2.101/24";
const ROUTE: &str = "198.51.100.0/24";

fn has_route(host: &Host) -> bool {
    host.exec("ip", &["route", "show", ROUTE])
        .is_ok_and(|o| !o.stdout.is_empty())
}

fn vmac_index(host: &Host) -> Option<String> {
    let out = host.exec("ip", &["-o", "link", "show", "vrrp.51"]).ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string()
    })
}

/// Rewrites a's file, sends SIGHUP and checks for `window` that a keeps `vip` and b never
/// holds it.
fn reload(pair: &lab::scenario::Pair, a: &Host, b: &Host, conf: &str, window: Duration) {
    std::fs::write(a.dir.join("vrrpd.conf"), conf).expect("write config");
    kill(Pid::from_raw(pair.a.pid() as i32), Signal::SIGHUP).expect("SIGHUP");
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(a.has_addr(pair.vip), "a released the VIP during the reload");
        assert!(!b.has_addr(pair.vip), "b took the VIP during a's reload");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sighup_reload_keeps_the_master_and_applies_the_new_file() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (a, b) = (lab.host("a").clone(), lab.host("b").clone());
    let mut ca: NodeConf = node("a", 150, 3, 0.1, VIP4);
    ca.extra_instance = Some("use_vmac".into());
    // a's reload adds an address b does not have: b follows a all the same only with
    // skip_check_adv_addr (it would rightly drop a's adverts otherwise: tests/tests/stranger.rs).
    let mut cb = node("b", 100, 3, 0.1, VIP4);
    cb.extra_instance = Some("skip_check_adv_addr".into());
    let mut pair = e2e::start_pair(lab, Daemon::Vrrpd, &ca, Daemon::Vrrpd, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let vmac = vmac_index(&a).expect("VMAC interface");
    let vip2: IpAddr = e2e::addr(VIP2);

    // A second address and a virtual route: added while a stays Master.
    let mut with_two = ca.clone();
    with_two.vips.push(VIP2.into());
    with_two.extra_instance = Some(format!(
        "use_vmac\n    virtual_routes {{\n        {ROUTE} dev eth0\n    }}"
    ));
    reload(
        &pair,
        &a,
        &b,
        &with_two.render(),
        Duration::from_millis(600),
    );
    assert!(
        lab::wait_until(Duration::from_secs(2), Duration::from_millis(10), || a
            .has_addr(vip2)),
        "the new address was not added: {}",
        pair.a.log_text()
    );
    assert!(
        lab::wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
            has_route(&a)
        }),
        "the new route was not added: {}",
        pair.a.log_text()
    );
    assert!(pair.a.log_text().contains("Reload complete"));
    assert_eq!(
        vmac_index(&a),
        Some(vmac.clone()),
        "the VMAC survives a reload"
    );

    // A broken file: named with its position, nothing changes.
    let broken = with_two
        .render()
        .replace("virtual_router_id 51", "virtual_router_id 51 {");
    reload(&pair, &a, &b, &broken, Duration::from_millis(400));
    assert!(
        lab::wait_until(Duration::from_secs(2), Duration::from_millis(10), || pair
            .a
            .log_text()
            .contains("reload failed, keeping the running configuration")),
        "{}",
        pair.a.log_text()
    );
    let log = pair.a.log_text();
    let conf = a.dir.join("vrrpd.conf");
    assert!(
        log.contains(&format!("{}:", conf.display())),
        "the error names the file and position: {log}"
    );
    assert!(
        pair.a.is_running(),
        "a broken file must not stop the daemon"
    );
    assert!(a.has_addr(vip2));

    // The second address and the route removed again; the first address stays.
    reload(&pair, &a, &b, &ca.render(), Duration::from_millis(600));
    assert!(
        lab::wait_until(Duration::from_secs(2), Duration::from_millis(10), || !a
            .has_addr(vip2)),
        "the removed address is still there"
    );
    assert!(
        lab::wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
            !has_route(&a)
        }),
        "the removed route is still there"
    );
    assert!(a.has_addr(pair.vip));
    assert_eq!(vmac_index(&a), Some(vmac), "the VMAC survives a reload");
    e2e::holds_for(&pair, "a", Duration::from_millis(300)).unwrap();

    // An unchanged file is a no-op.
    reload(&pair, &a, &b, &ca.render(), Duration::from_millis(200));
    assert!(
        lab::wait_until(Duration::from_secs(2), Duration::from_millis(10), || pair
            .a
            .log_text()
            .contains("reload: configuration unchanged")),
        "{}",
        pair.a.log_text()
    );
}
