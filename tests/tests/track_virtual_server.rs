//! `track_virtual_server` (vrrpd extension): the Master whose virtual server loses its quorum
//! lowers its priority and the peer with healthy backends takes over; when the backends come
//! back, it takes the VIP back. Each node checks its own backend (a real HTTP server on its
//! loopback) with TCP_CHECK.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Host, Lab, LabChild, NodeConf};
use nix::sys::signal::Signal;

const BACKEND: &str = "127.0.0.1";
const PORT: &str = "8080";

fn with_tracked_backend(mut c: NodeConf) -> NodeConf {
    c.extra_instance = Some(format!(
        "    track_virtual_server {{\n        {BACKEND} {PORT} weight -100\n    }}"
    ));
    c.extra_blocks = Some(format!(
        "virtual_server {BACKEND} {PORT} {{\n    delay_loop 0.2\n    real_server {BACKEND} {PORT} {{\n        TCP_CHECK {{\n            connect_timeout 0.3\n            retry 1\n            delay_before_retry 0.1\n        }}\n    }}\n}}"
    ));
    c
}

/// A real HTTP server on the node's loopback.
fn backend(host: &Host) -> LabChild {
    host.spawn(
        "python3",
        &["-m", "http.server", "--bind", BACKEND, PORT],
        None,
    )
    .expect("python3 http.server")
}

fn serving(host: &Host) -> bool {
    host.exec(
        "bash",
        &["-c", &format!("exec 3<>/dev/tcp/{BACKEND}/{PORT}")],
    )
    .is_ok_and(|o| o.status.success())
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
    let ca = with_tracked_backend(node("a", 150, 3, 0.1, VIP4));
    let cb = with_tracked_backend(node("b", 100, 3, 0.1, VIP4));
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
    let data = e2e::signal_dump(pair.a.pid(), Signal::SIGUSR1, "/tmp/keepalived.data").unwrap();
    assert!(
        data.contains(" Checker = TCP_CHECK 127.0.0.1:8080\n   State = DOWN\n"),
        "{data}"
    );
    assert!(data.contains("   Last verdict = failure\n"), "{data}");
    assert!(data.contains("   Effective priority = 50\n"), "{data}");

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
