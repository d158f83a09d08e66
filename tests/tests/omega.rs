//! `omega`: on SIGTERM the daemon reports the up real servers of an `omega` virtual server
//! down and runs their `notify_down` and the virtual server's `quorum_down` before it exits;
//! without `omega` it runs neither. The real server is an HTTP server on the node's loopback,
//! checked with TCP_CHECK.

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Host, Lab, LabChild, ScriptDir};

fn conf(events: &str, omega: bool) -> String {
    let mut c = node("a", 150, 3, 0.1, VIP4);
    let omega = if omega { "    omega\n" } else { "" };
    c.extra_blocks = Some(format!(
        "virtual_server 192.0.2.100 8080 {{\n    delay_loop 0.2\n{omega}    quorum_down \"{events} quorum_down\"\n\
         real_server 127.0.0.1 8080 {{\n        notify_down \"{events} notify_down\"\n\
         TCP_CHECK {{\n            connect_timeout 0.3\n        }}\n    }}\n}}"
    ));
    c.render()
}

fn backend(host: &Host) -> LabChild {
    e2e::http_server(host, "127.0.0.1", 8080).expect("python3 http.server")
}

/// Runs the daemon until its checker has seen the real server up, stops it with SIGTERM and
/// returns the script calls it made, sorted.
fn calls_until_exit(host: &Host, dir: &ScriptDir, events: &str, omega: bool) -> Vec<String> {
    let _ = std::fs::remove_file(dir.path("events"));
    let mut d = Daemon::Vrrpd
        .start(host, &conf(events, omega))
        .expect("vrrpd");
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(20), || d
            .log_text()
            .contains("connected to 127.0.0.1:8080")),
        "the checker never saw the real server: {}",
        d.log_text()
    );
    let status = d.terminate_status(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        d.log_text()
    );
    // Read at once: the daemon has exited, whatever it ran has run.
    let mut v: Vec<String> = dir.read("events").lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn omega_runs_notify_down_and_quorum_down_at_shutdown() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    let _backend = backend(&a);
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            a.exec("bash", &["-c", "exec 3<>/dev/tcp/127.0.0.1/8080"])
                .is_ok_and(|o| o.status.success())
        }),
        "backend did not start"
    );
    let dir = ScriptDir::new().unwrap();
    let events = dir
        .script(
            "events.sh",
            &format!("echo \"$1\" >> {}", dir.path("events").display()),
        )
        .unwrap();
    let events = events.to_str().unwrap();

    assert_eq!(
        calls_until_exit(&a, &dir, events, true),
        ["notify_down", "quorum_down"]
    );
    assert!(calls_until_exit(&a, &dir, events, false).is_empty());
}
