//! Trackers and notify end to end (vrrpd on both nodes): `vrrp_script` / `track_script`,
//! `track_interface` with weights, `track_file`, notify scripts and the notify FIFO,
//! `enable_script_security` and `script_user`. Each asserts who holds the VIP, the daemon's log
//! and the files the scripts write.

use std::time::Duration;

use lab::e2e::{self, addr, node, VIP4};
use lab::scenario::Pair;
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab, NodeConf, ScriptDir};

const D: Daemon = Daemon::Vrrpd;
const ADV: f64 = 0.1;
const VIP52: &str = "192.0.2.101/24";

fn ready() -> bool {
    e2e::available(&[D])
}

/// A second instance (VRID 52, 192.0.2.101) with `extra` inside.
fn vi52(prio: u8, extra: &str) -> String {
    format!(
        "vrrp_instance VI_52 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 52\n    \
         priority {prio}\n    advert_int {ADV}\n    version 3\n    {extra}\n    \
         virtual_ipaddress {{\n        {VIP52} dev eth0\n    }}\n}}"
    )
}

fn start(ca: &NodeConf, cb: &NodeConf) -> Pair {
    let lab = Lab::builder().build().unwrap();
    e2e::start_pair(lab, D, ca, D, cb).unwrap()
}

/// Wait until `node` is the only holder of `vip` (a or b), with both logs on failure.
fn wait_holder(pair: &Pair, node: &str, vip: &str, timeout: Duration) {
    let ip = addr(vip);
    let (a, b) = (pair.lab.host("a"), pair.lab.host("b"));
    let ok = wait_until(timeout, Duration::from_millis(10), || {
        let (ha, hb) = (a.has_addr(ip), b.has_addr(ip));
        match node {
            "a" => ha && !hb,
            _ => hb && !ha,
        }
    });
    assert!(
        ok,
        "{node} never became the only holder of {vip}; a log:\n{}\nb log:\n{}",
        pair.a.log_text(),
        pair.b.log_text()
    );
}

fn wait_log(pair: &Pair, node: &str, text: &str, timeout: Duration) {
    let p = if node == "a" { &pair.a } else { &pair.b };
    assert!(
        wait_until(timeout, Duration::from_millis(10), || p
            .log_text()
            .contains(text)),
        "{node}'s log never showed {text:?}:\n{}",
        p.log_text()
    );
}

/// One `vrrp_script` used by two instances (per-use weight −100 overriding the script's −10):
/// failing hands both VIPs to b, recovering brings both back; the script runs once per
/// interval, not once per instance.
#[test]
fn failing_script_hands_vips_to_peer_and_back() {
    require_root!();
    if !ready() {
        return;
    }
    let dir = ScriptDir::new().unwrap();
    let runs = dir.path("runs");
    let fail = dir.path("fail");
    let chk = dir
        .script(
            "chk.sh",
            &format!(
                "echo run >> {}\ntest ! -e {}",
                runs.display(),
                fail.display()
            ),
        )
        .unwrap();
    let script = format!(
        "vrrp_script chk {{\n    script \"{}\"\n    interval 0.2\n    weight -10\n    fall 1\n    rise 1\n}}",
        chk.display()
    );
    let track = "track_script {\n        chk weight -100\n    }";
    let mut ca = node("a", 150, 3, ADV, VIP4);
    ca.extra_global = Some("enable_script_security\n    script_user root".into());
    ca.extra_top = Some(format!("{script}\n{}", vi52(150, track)));
    ca.extra_instance = Some(track.into());
    let mut cb = node("b", 100, 3, ADV, VIP4);
    cb.extra_top = Some(vi52(100, ""));
    let pair = start(&ca, &cb);
    wait_holder(&pair, "a", VIP4, Duration::from_secs(5));
    wait_holder(&pair, "a", VIP52, Duration::from_secs(5));

    // One script, two users: about one run per 0.2 s interval.
    let before = dir.read("runs").lines().count();
    std::thread::sleep(Duration::from_secs(2));
    let n = dir.read("runs").lines().count() - before;
    assert!(
        (5..=14).contains(&n),
        "{n} runs in 2 s at interval 0.2 s (twice as many would mean one run per instance)"
    );

    std::fs::write(&fail, "").unwrap();
    wait_holder(&pair, "b", VIP4, Duration::from_secs(3));
    wait_holder(&pair, "b", VIP52, Duration::from_secs(3));
    wait_log(
        &pair,
        "a",
        "changing effective priority from 150 to 50",
        Duration::from_secs(1),
    );
    wait_log(
        &pair,
        "a",
        "VRRP_Script(chk) failed",
        Duration::from_secs(1),
    );

    std::fs::remove_file(&fail).unwrap();
    wait_holder(&pair, "a", VIP4, Duration::from_secs(3));
    wait_holder(&pair, "a", VIP52, Duration::from_secs(3));
    wait_log(
        &pair,
        "a",
        "VRRP_Script(chk) succeeded",
        Duration::from_secs(1),
    );
}

/// A hung check is killed at its timeout with its whole process group (a background child
/// included) and counts as a failure: the VIP moves to b.
#[test]
fn hung_script_is_killed_at_timeout() {
    require_root!();
    if !ready() {
        return;
    }
    let dir = ScriptDir::new().unwrap();
    // A sleep only this test starts, so counting them ignores everyone else's.
    let sleep = format!("sleep 29.{}", std::process::id());
    let chk = dir.script("hang.sh", &format!("{sleep} &\nwait")).unwrap();
    let mut ca = node("a", 150, 3, ADV, VIP4);
    ca.extra_global = Some("enable_script_security\n    script_user root".into());
    ca.extra_top = Some(format!(
        "vrrp_script hang {{\n    script \"{}\"\n    interval 0.2\n    timeout 0.3\n    weight -100\n}}",
        chk.display()
    ));
    ca.extra_instance = Some("track_script {\n        hang\n    }".into());
    let cb = node("b", 100, 3, ADV, VIP4);
    let mut pair = start(&ca, &cb);
    wait_holder(&pair, "b", VIP4, Duration::from_secs(5));
    wait_log(
        &pair,
        "a",
        "script timed out; killing its process group",
        Duration::from_secs(2),
    );
    wait_log(
        &pair,
        "a",
        "VRRP_Script(hang) failed",
        Duration::from_secs(2),
    );
    // Several runs later, only the current run's background sleep may be alive: each
    // timed-out run's whole group (the backgrounded sleep included) was killed.
    std::thread::sleep(Duration::from_millis(1500));
    let timeouts = pair.a.log_text().matches("script timed out").count();
    assert!(timeouts >= 3, "only {timeouts} timeouts");
    let alive = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", "-x", &sleep])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let n = alive();
    assert!(n <= 1, "{n} sleeps of hung runs survived their timeout");
    // Stopping the daemon kills the running check's group too.
    assert!(pair.a.terminate(Duration::from_secs(5)));
    assert!(
        wait_until(Duration::from_secs(2), Duration::from_millis(20), || alive(
        ) == 0),
        "a running check outlived the daemon"
    );
}

/// `track_interface` beyond the instance's own: weight −100 lowers the priority (VIP to b and
/// back), weight 0 (default) puts the instance in FAULT.
#[test]
fn track_interface_weights_and_fault() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    // veth pairs (no dummy module needed); an end is running while both are up.
    for d in ["trk0", "trk1"] {
        let peer = format!("{d}p");
        let out = a
            .exec(
                "ip",
                &["link", "add", d, "type", "veth", "peer", "name", &peer],
            )
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        a.exec("ip", &["link", "set", &peer, "up"]).unwrap();
        a.exec("ip", &["link", "set", d, "up"]).unwrap();
    }
    let mut ca = node("a", 150, 3, ADV, VIP4);
    ca.extra_instance =
        Some("track_interface {\n        trk0 weight -100\n        trk1\n    }".into());
    let cb = node("b", 100, 3, ADV, VIP4);
    let pair = e2e::start_pair(lab, D, &ca, D, &cb).unwrap();
    wait_holder(&pair, "a", VIP4, Duration::from_secs(5));

    a.exec("ip", &["link", "set", "trk0", "down"]).unwrap();
    wait_holder(&pair, "b", VIP4, Duration::from_secs(3));
    wait_log(
        &pair,
        "a",
        "changing effective priority from 150 to 50",
        Duration::from_secs(1),
    );
    assert!(!pair.a.log_text().contains("Entering FAULT"));
    a.exec("ip", &["link", "set", "trk0", "up"]).unwrap();
    wait_holder(&pair, "a", VIP4, Duration::from_secs(3));

    a.exec("ip", &["link", "set", "trk1", "down"]).unwrap();
    wait_holder(&pair, "b", VIP4, Duration::from_secs(3));
    wait_log(
        &pair,
        "a",
        "Entering FAULT STATE (from MASTER)",
        Duration::from_secs(1),
    );
    a.exec("ip", &["link", "set", "trk1", "up"]).unwrap();
    wait_holder(&pair, "a", VIP4, Duration::from_secs(3));
    wait_log(
        &pair,
        "a",
        "Entering BACKUP STATE (from FAULT)",
        Duration::from_secs(1),
    );
}

/// `track_file`: the value × the per-use weight moves the priority; `init_file` creates it.
#[test]
fn track_file_value_times_weight() {
    require_root!();
    if !ready() {
        return;
    }
    let dir = ScriptDir::new().unwrap();
    let f = dir.path("prio");
    let mut ca = node("a", 150, 3, ADV, VIP4);
    ca.extra_top = Some(format!(
        "vrrp_track_file tf {{\n    file {}\n    weight 1\n    init_file 0\n}}",
        f.display()
    ));
    ca.extra_instance = Some("track_file {\n        tf weight -10\n    }".into());
    let cb = node("b", 100, 3, ADV, VIP4);
    let pair = start(&ca, &cb);
    wait_holder(&pair, "a", VIP4, Duration::from_secs(5));
    assert_eq!(dir.read("prio").trim(), "0", "init_file did not create it");

    std::fs::write(&f, "6\n").unwrap();
    wait_holder(&pair, "b", VIP4, Duration::from_secs(3));
    wait_log(
        &pair,
        "a",
        "changing effective priority from 150 to 90",
        Duration::from_secs(1),
    );
    std::fs::write(&f, "-2\n").unwrap();
    wait_holder(&pair, "a", VIP4, Duration::from_secs(3));
    wait_log(
        &pair,
        "a",
        "changing effective priority from 90 to 170",
        Duration::from_secs(1),
    );
}

/// notify_* and `notify` run with keepalived's arguments, in transition order, as
/// `script_user`; the FIFO gets keepalived's lines; an insecure script is refused at start.
#[test]
fn notify_scripts_fifo_and_script_security() {
    notify_case(D);
}

/// The same with keepalived on a: the reference for the arguments, order and FIFO lines.
#[test]
fn notify_reference_keepalived() {
    notify_case(Daemon::Keepalived);
}

fn notify_case(da: Daemon) {
    require_root!();
    if !e2e::available(&[da, D]) {
        return;
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").ok().flatten() else {
        eprintln!("skipped: no user nobody");
        return;
    };
    let dir = ScriptDir::new().unwrap();
    let out = dir.path("out");
    std::fs::create_dir(&out).unwrap();
    nix::unistd::chown(&out, Some(nobody.uid), None).unwrap();
    let log = out.join("log");
    let note = dir
        .script(
            "note.sh",
            &format!("echo \"$(id -un) $*\" >> {}", log.display()),
        )
        .unwrap();
    // Run as root from a world-writable directory (no sticky bit): refused under
    // enable_script_security (a script run as another user is not checked).
    let lab = Lab::builder().build().unwrap();
    let open_dir = lab.dir.join("world-writable");
    std::fs::create_dir(&open_dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let bad = open_dir.join("bad.sh");
    std::fs::write(
        &bad,
        format!("#!/bin/sh\ntouch {}/bad-ran\n", out.display()),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let fifo = dir.path("fifo");
    let n = note.display();
    let mut ca = node("a", 150, 3, ADV, VIP4);
    ca.extra_global = Some(format!(
        "enable_script_security\n    script_user nobody\n    vrrp_notify_fifo {}",
        fifo.display()
    ));
    ca.extra_top = Some(format!(
        "vrrp_script bad {{\n    script \"{}\"\n    interval 1\n    weight -100\n    user root\n}}",
        bad.display()
    ));
    ca.extra_instance = Some(format!(
        "notify_master \"{n} master\"\n    notify_backup \"{n} backup\"\n    \
         notify_fault \"{n} fault\"\n    notify_stop \"{n} stop\"\n    notify {n}\n    \
         track_script {{\n        bad\n    }}"
    ));
    let cb = node("b", 100, 3, ADV, VIP4);
    let mut pair = e2e::start_pair(lab, da, &ca, D, &cb).unwrap();
    wait_holder(&pair, "a", VIP4, Duration::from_secs(5));
    wait_log(
        &pair,
        "a",
        &format!("Unsafe permissions found for script '{}'", bad.display()),
        Duration::from_secs(1),
    );
    wait_log(
        &pair,
        "a",
        "Disabling track script bad",
        Duration::from_secs(1),
    );
    // Read end opened while vrrpd holds the FIFO, so nothing is lost when it exits.
    let mut fifo_rx = open_fifo(&fifo);
    // keepalived forks a transition's scripts and does not wait for them, so the next
    // transition's may overtake them: each step waits for its lines (two per transition)
    // before the next is made.
    let called = |lines: usize| {
        let ok = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= lines)
        });
        assert!(
            ok,
            "{lines} notify calls never made:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    called(4);
    // Cut a's cable: FAULT; back: BACKUP then MASTER; then stop.
    let ha = pair.lab.host("a").clone();
    ha.link_down().unwrap();
    wait_log(&pair, "a", "Entering FAULT STATE", Duration::from_secs(2));
    called(6);
    ha.link_up().unwrap();
    wait_holder(&pair, "a", VIP4, Duration::from_secs(5));
    called(10);
    assert!(pair.a.terminate(Duration::from_secs(5)), "a did not stop");
    called(12);
    let want = [
        "nobody backup",
        "nobody INSTANCE VI_51 BACKUP 150",
        "nobody master",
        "nobody INSTANCE VI_51 MASTER 150",
        "nobody fault",
        "nobody INSTANCE VI_51 FAULT 150",
        "nobody backup",
        "nobody INSTANCE VI_51 BACKUP 150",
        "nobody master",
        "nobody INSTANCE VI_51 MASTER 150",
        "nobody stop",
        "nobody INSTANCE VI_51 STOP 150",
    ];
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // keepalived starts a transition's notify_* and notify scripts together, so their lines
    // may come either way round; vrrpd runs them one after the other. Transitions are in
    // order for both.
    let mut got: Vec<&str> = text.lines().collect();
    for pair in got.chunks_mut(2) {
        pair.sort_by_key(|l| l.contains("INSTANCE"));
    }
    assert_eq!(got, want, "notify calls; a log:\n{}", pair.a.log_text());
    assert!(!out.join("bad-ran").exists(), "the insecure script ran");
    let fifo_text = read_fifo(&mut fifo_rx);
    // b (vrrpd) answers a's preemption once at its own priority (the split-brain heal,
    // tests/tests/split_brain.rs), which a notes as MASTER_RX_LOWER_PRI: not this test's matter.
    let lines: Vec<_> = fifo_text
        .lines()
        .filter(|l| !l.contains("MASTER_RX_LOWER_PRI"))
        .collect();
    assert_eq!(
        lines,
        [
            "INSTANCE \"VI_51\" BACKUP 150",
            "INSTANCE \"VI_51\" MASTER 150",
            "INSTANCE \"VI_51\" FAULT 150",
            "INSTANCE \"VI_51\" BACKUP 150",
            "INSTANCE \"VI_51\" MASTER 150",
            "INSTANCE \"VI_51\" STOP 150",
        ]
    );
}

fn open_fifo(path: &std::path::Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap()
}

/// Everything buffered in a FIFO right now (non-blocking).
fn read_fifo(f: &mut std::fs::File) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = f.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A tracked interface already down at start: INIT → FAULT directly (as keepalived), never
/// BACKUP first; b takes the VIP; link up → a leaves FAULT and takes it back.
#[test]
fn starts_in_fault_when_a_tracked_interface_is_down() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    let out = a
        .exec(
            "ip",
            &[
                "link", "add", "trk1", "type", "veth", "peer", "name", "trk1p",
            ],
        )
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // trk1 up but its peer down: no carrier, so "down" for keepalived and vrrpd.
    a.exec("ip", &["link", "set", "trk1", "up"]).unwrap();
    let mut ca = node("a", 150, 3, ADV, VIP4);
    ca.extra_instance = Some("track_interface {\n        trk1\n    }".into());
    let cb = node("b", 100, 3, ADV, VIP4);
    let pair = e2e::start_pair(lab, D, &ca, D, &cb).unwrap();
    wait_holder(&pair, "b", VIP4, Duration::from_secs(5));
    wait_log(
        &pair,
        "a",
        "Entering FAULT STATE (from INIT)",
        Duration::from_secs(1),
    );
    assert!(
        !pair
            .a
            .log_text()
            .contains("Entering BACKUP STATE (from INIT)"),
        "{}",
        pair.a.log_text()
    );
    a.exec("ip", &["link", "set", "trk1p", "up"]).unwrap();
    wait_holder(&pair, "a", VIP4, Duration::from_secs(3));
    wait_log(
        &pair,
        "a",
        "Entering BACKUP STATE (from FAULT)",
        Duration::from_secs(1),
    );
}
