//! The balancer inside the daemon: two vrrpd nodes (`lb` priority 150, `lb2` 100) float the VIP
//! with VRRP and balance its virtual servers (DR, Maglev with `mh-port`, TCP to nginx and UDP to
//! an echo server on three real servers), all from one keepalived.conf each.
//!
//! Asserted: the Master balances and its health checks take a dead real server out; the Backup
//! forwards nothing even when traffic reaches it; on a crash of the Master the Backup takes
//! over, new connections work through it, and established TCP connections and UDP flows land
//! on the same real servers as before (`lvs_sync_daemon`: the Backup knows every flow).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use lab::e2e::{self, node};
use lab::lb::{in_netns, KeepAlive, LbLab, Plan, UDP_PORT};
use lab::{require_root, Daemon, DaemonProc, Host};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

/// keepalived.conf of one node: the VRRP instance and the two virtual servers.
fn conf(id: &str, prio: u8, rs: &[Ipv4Addr]) -> String {
    let mut c = node(id, prio, 3, 0.1, &format!("{VIP}/32"));
    c.extra_global = Some("lvs_sync_daemon eth0 VI_51".into());
    let servers = |port: u16, check: bool| -> String {
        rs.iter()
            .map(|a| {
                let check = if check {
                    "\n        TCP_CHECK {\n            connect_timeout 0.3\n            retry 0\n        }\n    "
                } else {
                    ""
                };
                format!("    real_server {a} {port} {{{check}}}\n")
            })
            .collect()
    };
    c.extra_blocks = Some(format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 0.2\n    lb_algo mh\n    mh-port\n    lb_kind DR\n    protocol TCP\n{}}}\n\
         virtual_server {VIP} {UDP_PORT} {{\n    lb_algo mh\n    mh-port\n    lb_kind DR\n    protocol UDP\n{}}}\n",
        servers(80, true),
        servers(UDP_PORT, false),
    ));
    c.render()
}

fn wait_vip(host: &Host, timeout: Duration) -> bool {
    lab::wait_until(timeout, Duration::from_millis(10), || {
        host.has_addr(IpAddr::V4(VIP))
    })
}

/// `n` keep-alive TCP connections from the client to the VIP's port 80.
fn keep_alive(lab: &LbLab, n: usize) -> Vec<KeepAlive> {
    let vip80 = SocketAddr::new(VIP.into(), 80);
    (0..n)
        .map(|_| {
            in_netns(lab.client(), || KeepAlive::connect(vip80))
                .expect("netns")
                .expect("connect")
        })
        .collect()
}

/// The balancer's counters from the daemon's JSON dump.
fn counters(d: &DaemonProc) -> serde_json::Value {
    e2e::json_dumps(d).expect("JSON dump").1["balancer"].clone()
}

#[test]
fn vrrp_pair_balances_and_fails_over_with_established_flows() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let mut lab = LbLab::new_vrrp_pair(Plan::Dr, 3).expect("lab");
    let (lb, lb2) = (lab.lb().clone(), lab.lab.host("lb2").clone());
    let mut a = Daemon::Vrrpd
        .start(&lb, &conf("lb", 150, &lab.rs))
        .expect("vrrpd on lb");
    let b = Daemon::Vrrpd
        .start(&lb2, &conf("lb2", 100, &lab.rs))
        .expect("vrrpd on lb2");
    assert!(
        wait_vip(&lb, Duration::from_secs(5)),
        "lb never became Master"
    );

    // The Master balances: every real server answers some of the client's connections.
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 3 && Instant::now() < deadline {
        match lab.get(None) {
            Ok(body) => {
                seen.insert(body.split(' ').next().unwrap_or_default().to_string());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    assert_eq!(seen.len(), 3, "mh-port spreads connections: {seen:?}");

    // The Backup forwards nothing, even when a frame for the VIP reaches it.
    let lb2_mac = lb2.mac().expect("mac");
    let lb_mac = lb.mac().expect("mac");
    let point = |mac: &str| {
        let out = lab
            .client()
            .exec(
                "ip",
                &[
                    "neigh",
                    "replace",
                    &VIP.to_string(),
                    "lladdr",
                    mac,
                    "dev",
                    "eth0",
                ],
            )
            .expect("ip neigh");
        assert!(out.status.success());
    };
    point(&lb2_mac);
    let err = lab
        .get(None)
        .expect_err("the Backup must not forward")
        .to_string();
    assert!(
        !err.contains("refused") && !err.contains("reset"),
        "the Backup's kernel stays silent: {err}"
    );
    let parked = counters(&b);
    assert!(
        parked["dropped"]["standby"].as_u64().unwrap_or(0) >= 1,
        "standby drops on the Backup: {parked}"
    );
    point(&lb_mac);

    // Established flows: six keep-alive TCP connections, six UDP flows by source port.
    let installed = || counters(&b)["sync"]["installed"].as_u64().unwrap_or(0);
    let before = installed();
    let mut conns = keep_alive(&lab, 6);
    let tcp_before: Vec<String> = conns.iter_mut().map(|c| c.get().expect("GET")).collect();
    let udp_before: Vec<String> = (40001..40007).map(|p| lab.udp(p).expect("UDP")).collect();
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
            installed() >= before + 12
        }),
        "lb2 knows the flows: {}",
        counters(&b)
    );

    // The Master crashes (SIGKILL, cable cut): lb2 takes over.
    let crashed = Instant::now();
    e2e::crash(&mut a, &lb).expect("crash");
    assert!(
        wait_vip(&lb2, Duration::from_secs(5)),
        "lb2 never took over"
    );
    // New connections through the new Master.
    let deadline = Instant::now() + Duration::from_secs(5);
    let first = loop {
        if let Ok(body) = lab.get(None) {
            break body;
        }
        assert!(Instant::now() < deadline, "no new connection through lb2");
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "first new connection through lb2 {:.0} ms after the crash: {first}",
        crashed.elapsed().as_secs_f64() * 1e3
    );
    let tcp_after: Vec<String> = conns
        .iter_mut()
        .map(|c| {
            c.get()
                .expect("GET on an established connection after the failover")
        })
        .collect();
    assert_eq!(tcp_before, tcp_after, "every TCP flow stayed on its server");
    let udp_after: Vec<String> = (40001..40007).map(|p| lab.udp(p).expect("UDP")).collect();
    assert_eq!(udp_before, udp_after, "and every UDP flow");
    let taken = counters(&b);
    assert!(
        taken["sync"]["adopted"].as_u64().unwrap_or(0) >= 12,
        "lb2 took the synchronised flows over: {taken}"
    );

    // A real server's application dies: the new Master's checks take it out of the pool.
    lab.stop_http(0);
    let rs1 = "rs1";
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(50), || b
            .log_text()
            .contains("real server down")),
        "lb2 never saw rs1 fail: {}",
        b.log_text()
    );
    for _ in 0..20 {
        let body = lab.get(None).expect("GET with rs1 down");
        assert!(
            !body.starts_with(rs1),
            "a new connection went to the dead {rs1}"
        );
    }
}

/// SIGHUP on the Master keeps its balancer running: established connections stay on their
/// real servers (with rr, a restarted dataplane would schedule their next packets afresh, and
/// taken in the reverse order they would land elsewhere), and the counters go on.
#[test]
fn reload_keeps_established_connections_on_their_real_servers() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = LbLab::new_vrrp_pair(Plan::Dr, 3).expect("lab");
    let lb = lab.lb().clone();
    let rr = conf("lb", 150, &lab.rs).replace("lb_algo mh\n    mh-port", "lb_algo rr");
    let a = Daemon::Vrrpd.start(&lb, &rr).expect("vrrpd on lb");
    assert!(
        wait_vip(&lb, Duration::from_secs(5)),
        "lb never became Master"
    );
    // The checks have brought every real server in.
    assert!(lab::wait_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            let seen: BTreeSet<String> = (0..6)
                .filter_map(|_| lab.get(None).ok())
                .map(|b| b.split(' ').next().unwrap_or_default().to_string())
                .collect();
            seen.len() == 3
        }
    ));
    let mut conns = keep_alive(&lab, 6);
    let server = |body: String| body.split(' ').next().unwrap_or_default().to_string();
    let before: Vec<String> = conns
        .iter_mut()
        .map(|c| server(c.get().expect("GET")))
        .collect();
    assert!(
        before.iter().collect::<BTreeSet<_>>().len() >= 2,
        "{before:?}"
    );
    let new_before = counters(&a)["new_conns"].as_u64().expect("new_conns");

    // A changed file (another delay_loop): the services are rebuilt, the dataplane stays.
    let changed = rr.replace("delay_loop 0.2", "delay_loop 0.3");
    assert_ne!(changed, rr);
    std::fs::write(lb.dir.join("vrrpd.conf"), &changed).expect("write config");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(20), || a
            .log_text()
            .contains("Reload complete")),
        "{}",
        a.log_text()
    );
    assert!(
        a.log_text().contains("balancer kept across the reload"),
        "{}",
        a.log_text()
    );
    let mut after: Vec<String> = conns
        .iter_mut()
        .rev()
        .map(|c| {
            server(
                c.get()
                    .expect("GET on a connection established before the reload"),
            )
        })
        .collect();
    after.reverse();
    assert_eq!(after, before, "connections moved to other real servers");
    let new_after = counters(&a)["new_conns"].as_u64().expect("new_conns");
    assert_eq!(
        new_after, new_before,
        "no connection was scheduled again, and the counters went on"
    );
    assert!(wait_vip(&lb, Duration::from_millis(10)), "a stayed Master");
}
