//! `track_virtual_server` (vrrpd extension): the Master whose virtual server loses its quorum
//! lowers its priority and the peer with healthy backends takes over; when the backends come
//! back, it takes the VIP back. Each node checks its own backend (a real HTTP server on its
//! loopback) with TCP_CHECK.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Host, Lab, LabChild, NodeConf, ScriptDir};
use nix::sys::signal::Signal;

const BACKEND: &str = "127.0.0.1";
const PORT: &str = "8080";
/// The virtual server: the pair's VIP.
const SERVICE: &str = "192.0.2.100 8080";

/// The node tracks its backend's virtual server; `events` (a script taking one word) is
/// called by keepalived's virtual-server scripts: quorum_up/down and notify_up/down.
fn with_tracked_backend(mut c: NodeConf, events: &str) -> NodeConf {
    c.extra_instance = Some(format!(
        "    track_virtual_server {{\n        {SERVICE} weight -100\n    }}"
    ));
    c.extra_blocks = Some(format!(
        "virtual_server {SERVICE} {{\n    delay_loop 0.2\n    quorum_up \"{events} quorum_up\"\n    quorum_down \"{events} quorum_down\"\n    real_server {BACKEND} {PORT} {{\n        notify_up \"{events} notify_up\"\n        notify_down \"{events} notify_down\"\n        TCP_CHECK {{\n            connect_timeout 0.3\n            retry 1\n            delay_before_retry 0.1\n        }}\n    }}\n}}"
    ));
    c
}

/// A real HTTP server on the node's loopback.
fn backend(host: &Host) -> LabChild {
    e2e::http_server(host, BACKEND, PORT.parse().expect("port")).expect("python3 http.server")
}

/// The script calls so far, sorted (the scripts run concurrently, as in keepalived).
fn seen(dir: &ScriptDir) -> Vec<String> {
    let mut v: Vec<String> = dir.read("events").lines().map(String::from).collect();
    v.sort();
    v
}

fn serving(host: &Host) -> bool {
    e2e::serving(host, BACKEND, PORT.parse().expect("port"))
}

#[test]
fn master_with_failed_backends_hands_over_and_takes_back() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (a, b) = (lab.host("a").clone(), lab.host("b").clone());
    let mut a_backend = backend(&a);
    let _b_backend = backend(&b);
    assert!(
        lab::wait_until(
            Duration::from_secs(5),
            Duration::from_millis(50),
            || serving(&a) && serving(&b)
        ),
        "backends did not start"
    );
    let dir = ScriptDir::new().unwrap();
    let events_file = dir.path("events");
    let events = dir
        .script(
            "events.sh",
            &format!("echo \"$1\" >> {}", events_file.display()),
        )
        .unwrap();
    let events = events.to_str().unwrap();
    let ca = with_tracked_backend(node("a", 150, 3, 0.1, VIP4), events);
    let cb = with_tracked_backend(node("b", 100, 3, 0.1, VIP4), "/bin/true");
    let mut pair = e2e::start_pair(lab, Daemon::Vrrpd, &ca, Daemon::Vrrpd, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    e2e::holds_for(&pair, "a", Duration::from_millis(500)).unwrap();

    // a's backend dies: quorum lost, priority 150 - 100 = 50 < 100, b takes over.
    a_backend.stop(Duration::from_millis(500));
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    let log = pair.a.log_text();
    assert!(log.contains("quorum lost"), "{log}");
    assert!(
        log.contains("changing effective priority from 150 to 50"),
        "{log}"
    );
    // The SIGUSR1 dump shows the failed checker and why.
    let data = e2e::signal_dump(&pair.a, Signal::SIGUSR1).unwrap();
    assert!(
        data.contains(" Checker = TCP_CHECK 127.0.0.1:8080\n   State = DOWN\n"),
        "{data}"
    );
    assert!(data.contains("   Last verdict = failure\n"), "{data}");
    assert!(data.contains("   Effective priority = 50\n"), "{data}");

    // keepalived's virtual-server scripts ran on a, in order.
    assert!(
        lab::wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
            seen(&dir) == ["notify_down", "quorum_down"]
        }),
        "events: {:?}",
        dir.read("events")
    );

    // The backend returns: a's priority is 150 again and it preempts.
    let _a_backend = backend(&a);
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let log = pair.a.log_text();
    assert!(log.contains("quorum gained"), "{log}");
    assert!(
        log.contains("changing effective priority from 50 to 150"),
        "{log}"
    );
}
