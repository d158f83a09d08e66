//! vrrpd on both nodes: the behaviours of issue #2 end to end, each asserted on the LAN (who
//! holds the VIP, what the client's neighbour table says, what the capture shows).

use std::net::IpAddr;
use std::time::Duration;

use lab::e2e::{self, addr, node, VIP4, VIP6};
use lab::wait::wait_until;
use lab::{require_root, Capture, Daemon, Host, Lab, NodeConf};

const D: Daemon = Daemon::Vrrpd;
const ADV: f64 = 0.1;

fn ready() -> bool {
    e2e::available(&[D])
}

/// Wait until `host` holds `vip` (its peer may still hold it too, e.g. with its cable cut).
fn wait_holds(host: &Host, vip: IpAddr, timeout: Duration) {
    assert!(
        wait_until(timeout, Duration::from_millis(10), || host.has_addr(vip)),
        "{} never took {vip}",
        host.name
    );
}

/// Crash of the Master moves the VIP and the client's neighbour entry to the Backup (GARP);
/// the restarted higher-priority node preempts and the entry moves back.
#[test]
fn crash_moves_client_neighbour_then_preempts_back() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (ca, cb) = (node("a", 150, 3, ADV, VIP4), node("b", 100, 3, ADV, VIP4));
    let mut pair = e2e::start_pair(lab, D, &ca, D, &cb).unwrap();
    let vip = pair.vip;
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let (a, b, client) = (
        pair.lab.host("a").clone(),
        pair.lab.host("b").clone(),
        pair.lab.host("client").clone(),
    );
    let (a_mac, b_mac) = (a.mac().unwrap(), b.mac().unwrap());
    e2e::reach(&client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip).as_deref(), Some(a_mac.as_str()));

    e2e::crash(&mut pair.a, &a).unwrap();
    wait_holds(&b, vip, Duration::from_secs(3));
    e2e::wait_neigh(&client, vip, &b_mac, Duration::from_secs(2)).unwrap();
    assert!(client.ping(vip), "VIP unreachable after failover");

    pair.a = e2e::restart(D, &a, &ca).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    e2e::wait_neigh(&client, vip, &a_mac, Duration::from_secs(2)).unwrap();
    assert!(client.ping(vip), "VIP unreachable after preemption");
    assert!(pair
        .b
        .log_text()
        .contains("Entering BACKUP STATE (from MASTER)"));
}

/// With `nopreempt` on both, a higher-priority node that starts late stays Backup; it takes
/// over only when the Master dies.
#[test]
fn nopreempt_keeps_the_running_master() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (mut ca, mut cb) = (node("a", 150, 3, ADV, VIP4), node("b", 100, 3, ADV, VIP4));
    ca.nopreempt = true;
    cb.nopreempt = true;
    let b = D.start(lab.host("b"), &cb.render()).unwrap();
    assert!(wait_until(
        Duration::from_secs(3),
        Duration::from_millis(10),
        || lab.host("b").has_addr(addr(VIP4))
    ));
    let a = D.start(lab.host("a"), &ca.render()).unwrap();
    let mut pair = lab::scenario::Pair {
        a,
        b,
        vip: addr(VIP4),
        lab,
    };
    // 15 advert intervals, well past a's Master_Down_Interval (0.34 s).
    e2e::holds_for(&pair, "b", Duration::from_secs_f64(15.0 * ADV)).unwrap();
    assert!(pair.a.is_running(), "a died: {}", pair.a.log_text());
    assert!(pair.a.log_text().contains("Entering BACKUP STATE"));
    assert!(!pair.a.log_text().contains("Entering MASTER STATE"));

    let bh = pair.lab.host("b").clone();
    e2e::crash(&mut pair.b, &bh).unwrap();
    wait_holds(pair.lab.host("a"), pair.vip, Duration::from_secs(3));
}

/// Unicast mode: election and crash failover work, and adverts go to the peer's address, never
/// to 224.0.0.18.
#[test]
fn unicast_election_failover_and_destinations() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let mut cap_b = Capture::start(lab.host("b"), "unicast", "ip proto 112").unwrap();
    let (a, b) = (lab.host("a").clone(), lab.host("b").clone());
    let mut ca = node("a", 150, 3, ADV, VIP4);
    let mut cb = node("b", 100, 3, ADV, VIP4);
    ca.unicast_src = Some(a.v4.to_string());
    ca.unicast_peers = vec![b.v4.to_string()];
    cb.unicast_src = Some(b.v4.to_string());
    cb.unicast_peers = vec![a.v4.to_string()];
    let mut pair = e2e::start_pair(lab, D, &ca, D, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let client = pair.lab.host("client").clone();
    e2e::reach(&client, pair.vip, Duration::from_secs(2)).unwrap();
    e2e::holds_for(&pair, "a", Duration::from_millis(500)).unwrap();

    e2e::crash(&mut pair.a, &a).unwrap();
    wait_holds(&b, pair.vip, Duration::from_secs(3));
    e2e::wait_neigh(&client, pair.vip, &b.mac().unwrap(), Duration::from_secs(2)).unwrap();
    std::thread::sleep(Duration::from_secs_f64(5.0 * ADV));

    let rows = cap_b.tshark_fields("vrrp", &["ip.src", "ip.dst"]).unwrap();
    let sent = |src: IpAddr, dst: IpAddr| {
        rows.iter()
            .filter(|r| r[0] == src.to_string() && r[1] == dst.to_string())
            .count()
    };
    assert!(sent(a.v4, b.v4) >= 4, "a→b adverts: {rows:?}");
    assert!(
        sent(b.v4, a.v4) >= 3,
        "b→a adverts after failover: {rows:?}"
    );
    assert!(
        rows.iter().all(|r| r[1] != "224.0.0.18"),
        "multicast advert in unicast mode: {rows:?}"
    );
    assert_eq!(cap_b.count_malformed().unwrap(), 0);
}

/// Native IPv6 instance (VRRPv3): adverts from the link-local address to ff02::12, election,
/// crash failover, and the unsolicited NA moves the client's neighbour entry.
#[test]
fn ipv6_election_failover_and_unsolicited_na() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let mut cap = Capture::start(lab.host("client"), "v6", "ip6 proto 112").unwrap();
    let (a, b, client) = (
        lab.host("a").clone(),
        lab.host("b").clone(),
        lab.host("client").clone(),
    );
    let (ca, cb) = (node("a", 150, 3, ADV, VIP6), node("b", 100, 3, ADV, VIP6));
    let mut pair = e2e::start_pair(lab, D, &ca, D, &cb).unwrap();
    let vip = pair.vip;
    assert!(vip.is_ipv6());
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    e2e::reach(&client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip), Some(a.mac().unwrap()));
    e2e::holds_for(&pair, "a", Duration::from_millis(300)).unwrap();

    e2e::crash(&mut pair.a, &a).unwrap();
    wait_holds(&b, vip, Duration::from_secs(3));
    e2e::wait_neigh(&client, vip, &b.mac().unwrap(), Duration::from_secs(2)).unwrap();
    assert!(client.ping(vip), "IPv6 VIP unreachable after failover");

    let rows = cap
        .tshark_fields(
            "vrrp",
            &["ipv6.src", "ipv6.dst", "vrrp.version", "vrrp.prio"],
        )
        .unwrap();
    // tcpdump may start late on a loaded machine: what matters is the format of what it saw.
    assert!(rows.len() >= 2, "{rows:?}");
    for r in &rows {
        let src: std::net::Ipv6Addr = r[0].parse().unwrap();
        assert!(src.is_unicast_link_local(), "advert from {src}");
        assert_eq!((r[1].as_str(), r[2].as_str()), ("ff02::12", "3"), "{r:?}");
    }
    assert!(rows.iter().any(|r| r[3] == "150") && rows.iter().any(|r| r[3] == "100"));
    assert_eq!(cap.count_malformed().unwrap(), 0);
}

/// VRRPv2 with a simple password: the pair agrees; a peer with the wrong password is ignored,
/// so both end up Master (the defined behaviour: its adverts are dropped).
#[test]
fn v2_password_auth_and_wrong_password_ignored() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let mut cap = Capture::start(lab.host("client"), "auth", "ip proto 112").unwrap();
    let mut ca = node("a", 150, 2, 1.0, VIP4);
    ca.auth_pass = Some("s3cret".into());
    let mut cb: NodeConf = node("b", 100, 2, 1.0, VIP4);
    cb.auth_pass = Some("s3cret".into());
    let mut pair = e2e::start_pair(lab, D, &ca, D, &cb).unwrap();
    // Both start as Backup: a's Master_Down_Interval is 3.41 s, b's 3.61 s.
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    // Had b ignored a's adverts, it would be Master 0.2 s after a.
    e2e::holds_for(&pair, "a", Duration::from_millis(2500)).unwrap();

    assert!(pair.b.terminate(Duration::from_secs(3)));
    cb.auth_pass = Some("wrong".into());
    pair.b = D.start(pair.lab.host("b"), &cb.render()).unwrap();
    assert!(
        wait_until(Duration::from_secs(6), Duration::from_millis(20), || pair
            .master()
            == Some("both")),
        "wrong password not ignored: {:?}\n{}",
        pair.master(),
        pair.b.log_text()
    );

    let rows = cap
        .tshark_fields(
            "vrrp",
            &[
                "ip.src",
                "vrrp.version",
                "vrrp.auth_type",
                "vrrp.auth_string",
            ],
        )
        .unwrap();
    let a_ip = pair.lab.host("a").v4.to_string();
    let from_a: Vec<_> = rows.iter().filter(|r| r[0] == a_ip).collect();
    assert!(from_a.len() >= 5, "{rows:?}");
    assert!(
        from_a
            .iter()
            .all(|r| r[1] == "2" && r[2] == "1" && r[3] == "s3cret"),
        "{from_a:?}"
    );
    assert_eq!(cap.count_malformed().unwrap(), 0);
}

/// A VIP left on a Backup's interface (by hand, as after a crash) is removed when vrrpd starts
/// there, while the other node stays Master; the log says so.
#[test]
fn leftover_vip_removed_on_start() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (ca, cb) = (node("a", 150, 3, ADV, VIP4), node("b", 100, 3, ADV, VIP4));
    let a = D.start(lab.host("a"), &ca.render()).unwrap();
    let vip = addr(VIP4);
    assert!(wait_until(
        Duration::from_secs(3),
        Duration::from_millis(10),
        || lab.host("a").has_addr(vip)
    ));
    let b_host = lab.host("b").clone();
    b_host.addr_add(VIP4).unwrap();
    assert!(b_host.has_addr(vip));
    let b = D.start(&b_host, &cb.render()).unwrap();
    let pair = lab::scenario::Pair { a, b, vip, lab };
    assert!(
        wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
            !b_host.has_addr(vip)
        }),
        "left-over VIP still on b:\n{}",
        pair.b.log_text()
    );
    e2e::holds_for(&pair, "a", Duration::from_millis(500)).unwrap();
    assert!(
        pair.b.log_text().contains("left behind"),
        "{}",
        pair.b.log_text()
    );
    let client = pair.lab.host("client");
    e2e::reach(client, vip, Duration::from_secs(2)).unwrap();
    assert_eq!(client.neigh(vip), Some(pair.lab.host("a").mac().unwrap()));
}

/// SIGTERM: exit status 0, the VIP is gone, a priority-0 advert is on the wire and the Backup
/// takes over.
#[test]
fn sigterm_exits_zero_and_sends_priority_zero() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let mut cap = Capture::start(lab.host("client"), "term", "ip proto 112").unwrap();
    let (ca, cb) = (node("a", 150, 3, ADV, VIP4), node("b", 100, 3, ADV, VIP4));
    let mut pair = e2e::start_pair(lab, D, &ca, D, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let status = pair
        .a
        .terminate_status(Duration::from_secs(5))
        .expect("vrrpd did not exit within 5 s of SIGTERM");
    assert!(
        status.success(),
        "exit status {status}: {}",
        pair.a.log_text()
    );
    assert!(!pair.lab.host("a").has_addr(pair.vip), "VIP left on a");
    pair.wait_master("b", Duration::from_secs(2)).unwrap();

    let a_ip = pair.lab.host("a").v4;
    let last_a = cap
        .vrrp_adverts()
        .unwrap()
        .into_iter()
        .rfind(|x| x.src == a_ip)
        .expect("adverts from a");
    assert_eq!(last_a.priority, 0, "a's last advert");
    assert_eq!(cap.count_malformed().unwrap(), 0);
}
