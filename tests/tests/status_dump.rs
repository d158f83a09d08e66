//! keepalived's signal dumps: SIGUSR1 → /tmp/keepalived.data, SIGUSR2 → /tmp/keepalived.stats,
//! the JSON signal → /tmp/keepalived.json, written by the running daemon with its live state.

use std::time::Duration;

use lab::e2e;
use lab::scenario::{Pair, VIP};
use lab::{require_root, Daemon, Lab, NodeConf, NodeState};
use nix::sys::signal::Signal;

#[test]
fn signal_dumps_show_live_state() {
    require_root!();
    let lab = Lab::builder().build().expect("lab");
    let vip = VIP.split('/').next().unwrap().parse().unwrap();
    let conf_a = NodeConf::demo("dump_a", NodeState::Master, 150).render();
    let conf_b = NodeConf::demo("dump_b", NodeState::Backup, 100).render();
    let mut pair = Pair::start(lab, Daemon::Vrrpd, &conf_a, &conf_b, vip).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let stats = e2e::signal_dump(&pair.a, Signal::SIGUSR2).unwrap();
    assert!(stats.contains("VRRP Instance: VI_51\n"), "{stats}");
    assert!(stats.contains("  Became master: 1\n"), "{stats}");
    let sent: u64 = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("Sent: "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(sent >= 3, "a sent {sent} adverts in 300+ ms at 100 ms");

    let data = e2e::signal_dump(&pair.b, Signal::SIGUSR1).unwrap();
    assert!(data.contains("   State = BACKUP\n"), "{data}");
    assert!(data.contains("   Master router = 192.0.2.1\n"), "{data}");
    assert!(data.contains("     192.0.2.100/24 dev eth0\n"), "{data}");

    let (v, extra) = e2e::json_dumps(&pair.a).unwrap();
    assert_eq!(v[0]["data"]["state"], 2, "keepalived's MASTER");
    assert_eq!(v[0]["data"]["effective_priority"], 150);
    assert_eq!(v[0]["stats"]["become_master"], 1);
    assert_eq!(
        extra["checkers"],
        serde_json::json!([]),
        "no virtual servers, no checkers"
    );
}

/// The dumps show each tracked object and what it does to the instance now: a failing
/// `vrrp_script` with weight -20 and the instance's own interface (weight 0, up).
#[test]
fn dumps_show_trackers_and_their_effect() {
    require_root!();
    let lab = Lab::builder().build().expect("lab");
    let mut conf = NodeConf::demo("dump_t", NodeState::Backup, 150);
    conf.extra_top = Some(
        "vrrp_script chk_fail {\n    script \"/bin/false\"\n    interval 1\n    weight -20\n}"
            .into(),
    );
    conf.extra_instance = Some("track_script {\n        chk_fail\n    }".into());
    let a = Daemon::Vrrpd
        .start(lab.host("a"), &conf.render())
        .expect("vrrpd");
    // Signals before the daemon runs would reach `ip netns exec` instead.
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(20), || a
            .log_text()
            .contains("vrrpd started")),
        "{}",
        a.log_text()
    );
    let mut data = String::new();
    let shown = lab::wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        data = e2e::signal_dump(&a, Signal::SIGUSR1).unwrap_or_default();
        data.contains("chk_fail effect -20")
    });
    assert!(shown, "{data}\n{}", a.log_text());
    assert!(data.contains("   Effective priority = 130\n"), "{data}");
    assert!(
        data.contains("   Tracked interfaces :\n     eth0 effect +0\n"),
        "{data}"
    );
    let v = e2e::json_dump(&a).unwrap();
    let trackers = &v[0]["vrrpd"]["trackers"];
    assert!(
        trackers.as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["name"] == "chk_fail" && t["delta"] == -20)),
        "{v}"
    );
}
