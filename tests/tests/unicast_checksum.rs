//! The unicast VRRPv3 checksum of keepalived before 1.3.6 (CentOS 7 ships 1.3.5): the
//! pseudo-header carries 224.0.0.18 where RFC 5798 has the packet's destination. A pair that
//! mixes versions during an upgrade must still elect. keepalived 2.2.7 configured with
//! `old_unicast_checksum` stands in for the old peer (it then sends and accepts only that
//! form). vrrpd, as keepalived since 1.3.6: follows the old form from the first advert that
//! carries it (logged in keepalived's words) and answers in it; `old_unicast_checksum` uses it
//! from the start, the supervisor's last-gasp adverts included; `old_unicast_checksum never`
//! keeps the RFC's.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, DaemonProc, Host, Lab};

const SWITCHED: &str = "(VI_51) Setting unicast VRRPv3 checksum to old version";
const OLD: Option<&str> = Some("old_unicast_checksum");
const SECS: fn(u64) -> Duration = Duration::from_secs;

/// `daemon` on `me`: VRID 51, v3 at 0.1 s, unicast to `peers`, `extra` in the instance.
fn start(daemon: Daemon, me: &Host, prio: u8, peers: &[&Host], extra: Option<&str>) -> DaemonProc {
    let mut c = node(&me.name, prio, 3, 0.1, VIP4);
    c.unicast_src = Some(me.v4.to_string());
    c.unicast_peers = peers.iter().map(|p| p.v4.to_string()).collect();
    c.extra_instance = extra.map(str::to_string);
    daemon.start(me, &c.render()).unwrap()
}

fn ready() -> bool {
    e2e::available(&[Daemon::Vrrpd, Daemon::Keepalived])
}

/// An old-checksum keepalived Master (a, 150): vrrpd (b, 100) follows it, switches to the old
/// form, takes over when it crashes, and a second old-checksum keepalived (c, 50) started then
/// accepts b's adverts and stays Backup.
#[test]
fn an_old_checksum_peer_is_followed_and_answered_in_its_form() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder()
        .host("a", "192.0.2.1/24", "2001:db8::1/64")
        .host("b", "192.0.2.2/24", "2001:db8::2/64")
        .host("c", "192.0.2.3/24", "2001:db8::3/64")
        .build()
        .unwrap();
    let (a, b, c) = (lab.host("a"), lab.host("b"), lab.host("c"));
    let vip = e2e::addr(VIP4);
    let mut ka = start(Daemon::Keepalived, a, 150, &[b], OLD);
    assert!(a.gets_addr(vip, SECS(5)), "{}", ka.log_text());
    let ours = start(Daemon::Vrrpd, b, 100, &[a, c], None);
    assert!(ours.wait_log(SWITCHED, SECS(3)), "{}", ours.log_text());
    assert!(
        b.never_holds(vip, SECS(1)),
        "vrrpd took the VIP from the old-checksum Master\n{}",
        ours.log_text()
    );

    ka.kill_hard();
    assert!(b.gets_addr(vip, SECS(3)), "{}", ours.log_text());
    let kc = start(Daemon::Keepalived, c, 50, &[b], OLD);
    assert!(
        kc.wait_log("Entering BACKUP STATE", SECS(5)),
        "{}",
        kc.log_text()
    );
    assert!(
        c.never_holds(vip, SECS(1)),
        "the old-checksum Backup did not accept vrrpd's adverts\n{}",
        kc.log_text()
    );
    assert!(
        !kc.log_text().contains("Invalid VRRPv3 checksum"),
        "{}",
        kc.log_text()
    );
}

/// vrrpd with `old_unicast_checksum` (b, 150) is Master from the start; an old-checksum
/// keepalived (a, 100) accepts its very first adverts and stays Backup. When vrrpd's VRRP
/// process is killed, its supervisor's priority-0 adverts carry the old checksum too.
#[test]
fn configured_old_checksum_is_sent_from_the_start() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (a, b) = (lab.host("a"), lab.host("b"));
    let vip = e2e::addr(VIP4);
    let ours = start(Daemon::Vrrpd, b, 150, &[a], OLD);
    assert!(b.gets_addr(vip, SECS(5)), "{}", ours.log_text());
    let ka = start(Daemon::Keepalived, a, 100, &[b], OLD);
    assert!(
        ka.wait_log("Entering BACKUP STATE", SECS(5)),
        "{}",
        ka.log_text()
    );
    assert!(
        a.never_holds(vip, SECS(2)),
        "keepalived did not accept vrrpd's old checksum\n{}",
        ka.log_text()
    );

    ours.kill_vrrp().unwrap();
    assert!(a.gets_addr(vip, SECS(3)), "{}", ka.log_text());
    // keepalived logs a priority-0 advert only with -D; its stats count it.
    let stats = e2e::signal_dump(&ka, nix::sys::signal::Signal::SIGUSR2).unwrap();
    assert!(
        e2e::parse_stats(&stats)["VI_51"]["Priority Zero/Received"] >= 1,
        "the last-gasp advert did not reach the old-checksum peer\n{stats}\n{}",
        ours.log_text()
    );
}

/// `old_unicast_checksum never`: vrrpd (b, 100) keeps the RFC's checksum and drops the old
/// peer's adverts as bad checksums, so both become Master (what the option asks for).
#[test]
fn never_keeps_the_rfc_checksum() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (a, b) = (lab.host("a"), lab.host("b"));
    let vip = e2e::addr(VIP4);
    let ka = start(Daemon::Keepalived, a, 150, &[b], OLD);
    assert!(a.gets_addr(vip, SECS(5)), "{}", ka.log_text());
    let ours = start(
        Daemon::Vrrpd,
        b,
        100,
        &[a],
        Some("old_unicast_checksum never"),
    );
    assert!(
        b.gets_addr(vip, SECS(3)),
        "vrrpd followed an advert it should have dropped\n{}",
        ours.log_text()
    );
    assert!(!ours.log_text().contains(SWITCHED), "{}", ours.log_text());
    let v = e2e::json_dump(&ours).unwrap();
    let n = v[0]["vrrpd"]["counters"]["drops"]["bad checksum"]
        .as_u64()
        .unwrap_or(0);
    assert!(n >= 3, "{v}");
}
