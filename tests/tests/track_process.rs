//! `vrrp_track_process` end to end (vrrpd on both nodes): a process the test starts, under a
//! name unique to the run, is tracked on node a. Killing it (by its PID) hands the VIP to b;
//! starting it again brings the VIP back (preempt). With the default weight (0) a missing
//! process is FAULT, from the start.
//!
//! The daemons run in network namespaces, where the kernel does not deliver process events:
//! vrrpd falls back to rescanning /proc (its log says so, and the test prints which source it
//! used and how long the VIP took to move).

use std::path::Path;
use std::time::{Duration, Instant};

use lab::e2e::{self, addr, node, VIP4};
use lab::process::LabChild;
use lab::scenario::Pair;
use lab::wait::wait_until;
use lab::{require_root, Daemon, Host, Lab, ScriptDir};
use nix::sys::signal::Signal;

const D: Daemon = Daemon::Vrrpd;
const ADV: f64 = 0.1;

fn ready() -> bool {
    e2e::available(&[D])
}

/// Starts the tracked program on `host` (killed with its handle, also on panic).
fn run(host: &Host, prog: &Path) -> LabChild {
    host.spawn(prog.to_str().unwrap(), &["600"], None).unwrap()
}

/// The process's state letter in `/proc/PID/stat` (`Z`: a zombie, not yet reaped).
fn state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..].trim_start().chars().next()
}

fn start(lab: Lab, ca: &lab::NodeConf, cb: &lab::NodeConf) -> Pair {
    e2e::start_pair(lab, D, ca, D, cb).unwrap()
}

/// Wait until `node` is the only holder of the VIP, with both logs on failure.
fn wait_holder(pair: &Pair, node: &str, timeout: Duration) {
    let ip = addr(VIP4);
    let (a, b) = (pair.lab.host("a"), pair.lab.host("b"));
    let ok = wait_until(timeout, Duration::from_millis(5), || {
        let (ha, hb) = (a.has_addr(ip), b.has_addr(ip));
        if node == "a" {
            ha && !hb
        } else {
            hb && !ha
        }
    });
    assert!(
        ok,
        "{node} never became the only holder of {VIP4}; a log:\n{}\nb log:\n{}",
        pair.a.log_text(),
        pair.b.log_text()
    );
}

fn wait_log(pair: &Pair, text: &str, timeout: Duration) {
    assert!(
        wait_until(timeout, Duration::from_millis(10), || pair
            .a
            .log_text()
            .contains(text)),
        "a's log never showed {text:?}:\n{}",
        pair.a.log_text()
    );
}

/// Which process source a's vrrpd used, from its log.
fn source(pair: &Pair) -> &'static str {
    let log = pair.a.log_text();
    if log.contains("rescanning /proc every") {
        "/proc rescan fallback"
    } else if log.contains("following the kernel's process events") {
        "process events connector"
    } else {
        "unknown"
    }
}

/// `weight -100`: killing the process lowers a's priority (150 → 50) and b takes the VIP;
/// a zombie (killed, not yet reaped) does not count. Starting it again gives a back its
/// priority and the VIP.
#[test]
fn killed_process_hands_vip_to_peer_and_back() {
    require_root!();
    if !ready() {
        return;
    }
    let dir = ScriptDir::new().unwrap();
    let (prog, name) = dir.unique_sleep("w").unwrap();
    let lab = Lab::builder().build().unwrap();
    let ha = lab.host("a").clone();
    let mut p = run(&ha, &prog);
    let mut ca = node("a", 150, 3, ADV, VIP4);
    ca.extra_top = Some(format!(
        "vrrp_track_process chk_{name} {{\n    process {name}\n    weight -10\n}}"
    ));
    ca.extra_instance = Some(format!(
        "track_process {{\n        chk_{name} weight -100\n    }}"
    ));
    let cb = node("b", 100, 3, ADV, VIP4);
    let pair = start(lab, &ca, &cb);
    wait_holder(&pair, "a", Duration::from_secs(5));
    wait_log(
        &pair,
        &format!("Tracked process chk_{name}: 1 running, quorum achieved"),
        Duration::from_secs(1),
    );

    let pid = p.pid();
    let t0 = Instant::now();
    p.signal(Signal::SIGKILL).unwrap();
    wait_holder(&pair, "b", Duration::from_secs(5));
    let moved = t0.elapsed();
    // Not reaped yet: the VIP moved while the process was a zombie.
    assert_eq!(state(pid), Some('Z'), "expected a zombie");
    wait_log(
        &pair,
        &format!("Quorum lost for tracked process chk_{name} (0 running)"),
        Duration::from_secs(1),
    );
    wait_log(
        &pair,
        "changing effective priority from 150 to 50",
        Duration::from_secs(1),
    );
    assert!(!pair.a.log_text().contains("Entering FAULT"));
    assert!(
        p.wait_timeout(Duration::from_secs(2)).is_some(),
        "not reaped"
    );

    let t1 = Instant::now();
    let _p2 = run(&ha, &prog);
    wait_holder(&pair, "a", Duration::from_secs(5));
    let back = t1.elapsed();
    wait_log(
        &pair,
        &format!("Quorum gained for tracked process chk_{name} (1 running)"),
        Duration::from_secs(1),
    );
    eprintln!(
        "track_process ({}): VIP on b {} ms after the kill, back on a {} ms after the restart",
        source(&pair),
        moved.as_millis(),
        back.as_millis()
    );
}

/// Default weight (0, as keepalived 2.2.7): the process not running is FAULT, already at start
/// (INIT → FAULT, b holds the VIP); running, a takes the VIP back; killed, FAULT again.
#[test]
fn missing_process_with_weight_zero_is_fault() {
    require_root!();
    if !ready() {
        return;
    }
    let dir = ScriptDir::new().unwrap();
    let (prog, name) = dir.unique_sleep("z").unwrap();
    let lab = Lab::builder().build().unwrap();
    let ha = lab.host("a").clone();
    let mut ca = node("a", 150, 3, ADV, VIP4);
    ca.extra_top = Some(format!("vrrp_track_process chk {{\n    process {name}\n}}"));
    ca.extra_instance = Some("track_process {\n        chk\n    }".into());
    let cb = node("b", 100, 3, ADV, VIP4);
    let pair = start(lab, &ca, &cb);
    wait_holder(&pair, "b", Duration::from_secs(5));
    wait_log(&pair, "Entering FAULT STATE", Duration::from_secs(1));
    assert!(
        !pair.a.log_text().contains("Entering MASTER STATE"),
        "a was Master before its tracker said FAULT:\n{}",
        pair.a.log_text()
    );

    let p = run(&ha, &prog);
    wait_holder(&pair, "a", Duration::from_secs(5));
    wait_log(
        &pair,
        "Entering BACKUP STATE (from FAULT)",
        Duration::from_secs(1),
    );

    let t0 = Instant::now();
    p.signal(Signal::SIGKILL).unwrap();
    wait_holder(&pair, "b", Duration::from_secs(5));
    let moved = t0.elapsed();
    wait_log(
        &pair,
        "Entering FAULT STATE (from MASTER)",
        Duration::from_secs(1),
    );
    eprintln!(
        "track_process weight 0 ({}): VIP on b {} ms after the kill",
        source(&pair),
        moved.as_millis()
    );
}
