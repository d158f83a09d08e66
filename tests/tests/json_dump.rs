//! The JSON dump (`--signum=JSON`) compared with keepalived 2.2.7's in the same scenario: one
//! node Master with a virtual and an excluded address, a tracked script and a notify script.
//! Both daemons write `$TMPDIR/keepalived.json`; the keys of each instance's `data` and
//! `stats` are the same, in the same order, with the same JSON types, and the values that do
//! not depend on timing are equal.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, wait_until, Daemon, Lab};

fn conf() -> String {
    let mut c = node("a", 150, 3, 0.1, VIP4);
    c.extra_top = Some(
        "vrrp_script chk {\n    script \"/bin/true\"\n    interval 1\n    weight -20\n}".into(),
    );
    c.extra_instance = Some(
        "virtual_ipaddress_excluded {\n        192.0.2.101/24\n    }\n    track_script {\n        chk\n    }\n    notify_master \"/bin/true master\""
            .into(),
    );
    c.render()
}

/// The dump of `daemon` (Master on `a`): parsed, and the keys of the first instance's `data`
/// and `stats` in the order of the file. Both daemons put their dumps in $TMPDIR, which the
/// lab sets to the host's own directory, not a shared /tmp.
fn dump(daemon: Daemon, lab: &Lab) -> (serde_json::Value, Vec<String>) {
    let a = lab.host("a");
    let mut d = daemon.start(a, &conf()).expect("daemon");
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || a
            .has_addr(e2e::addr(VIP4))),
        "{daemon} never Master:\n{}",
        d.log_text()
    );
    // Adverts and the script's first run settle.
    std::thread::sleep(Duration::from_millis(1500));
    // keepalived answers in its VRRP child.
    let pid = match daemon {
        Daemon::Keepalived => std::fs::read_to_string(a.dir.join("keepalived-vrrp.pid"))
            .expect("VRRP child's pid file")
            .trim()
            .parse()
            .expect("pid"),
        Daemon::Vrrpd => d.pid(),
    };
    let path = d.dump_path("keepalived.json");
    let v = e2e::json_file_dump(pid, &path).expect("JSON dump");
    let text = std::fs::read_to_string(&path).expect("dump");
    // Keys are the quoted words followed by a colon (values here never contain `":`).
    let order = text
        .match_indices("\":")
        .filter_map(|(end, _)| {
            let start = text[..end].rfind('"')? + 1;
            let k = &text[start..end];
            k.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
                .then(|| k.to_string())
        })
        .take_while(|k| k != "vrrpd")
        .collect();
    assert!(d.terminate(Duration::from_secs(5)));
    // The address is gone before the next daemon starts.
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || !a.has_addr(e2e::addr(VIP4))
    ));
    (v, order)
}

fn keys(v: &serde_json::Value) -> Vec<(String, &'static str)> {
    v.as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| {
            let t = match v {
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Array(_) => "array",
                _ => "other",
            };
            (k.clone(), t)
        })
        .collect()
}

#[test]
fn json_dump_matches_keepalived_key_for_key() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd, Daemon::Keepalived]) {
        return;
    }
    let lab = Lab::builder().build().expect("lab");
    let (ka, ka_order) = dump(Daemon::Keepalived, &lab);
    let (ours, our_order) = dump(Daemon::Vrrpd, &lab);
    assert_eq!(ka_order, our_order, "keys in keepalived's order");
    let (ka, ours) = (&ka[0], &ours[0]);
    eprintln!("keepalived: {ka}\nvrrpd:      {ours}");
    assert_eq!(
        keys(&ka["data"]),
        keys(&ours["data"]),
        "data keys\nkeepalived: {ka}\nvrrpd: {ours}"
    );
    assert_eq!(keys(&ka["stats"]), keys(&ours["stats"]), "stats keys");
    for k in [
        "iname",
        "dont_track_primary",
        "skip_check_adv_addr",
        "strict_mode",
        "vmac_ifname",
        "ifp_ifname",
        "garp_delay",
        "garp_refresh",
        "garp_rep",
        "garp_refresh_rep",
        "garp_lower_prio_delay",
        "garp_lower_prio_rep",
        "lower_prio_no_advert",
        "higher_prio_send_advert",
        "vrid",
        "base_priority",
        "effective_priority",
        "vipset",
        "promote_secondaries",
        "adver_int",
        "master_adver_int",
        "accept",
        "nopreempt",
        "preempt_delay",
        "state",
        "wantstate",
        "version",
        "smtp_alert",
        "notify_deleted",
        "script_master",
        "vips",
        "evips",
        "track_script",
        "auth_type",
    ] {
        assert_eq!(ka["data"][k], ours["data"][k], "data.{k}");
    }
    for k in [
        "become_master",
        "release_master",
        "advert_rcvd",
        "pri_zero_sent",
    ] {
        assert_eq!(ka["stats"][k], ours["stats"][k], "stats.{k}");
    }
    assert!(ours["stats"]["advert_sent"].as_u64().unwrap_or(0) > 5);
    // A Unix time with microseconds, within the last minute.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let t = ours["data"]["last_transition"].as_f64().unwrap();
    assert!(now - t < 60.0 && t <= now, "{t} vs {now}");
    // vrrpd's extras ride along under their own key.
    assert_eq!(ours["vrrpd"]["state"], "Master");
}
