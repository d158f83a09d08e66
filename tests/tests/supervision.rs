//! docs/SUPERVISION.md's contract, component by component: a panic injected into each one
//! (vrrpd's fault points, in the `fault-injection` build `cargo test` makes) and what must still
//! work after it. A component that is restarted is shown in the dumps; one that cannot be
//! makes the daemon hand over and its supervisor start it again.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use lab::e2e::{self, node, VIP4};
use lab::lb::{LbLab, Plan};
use lab::{require_root, wait_until, AdvertWatch, Daemon, DaemonProc, Host, Lab, NodeConf};

/// Waits for `text` in the daemon's log.
fn wait_log(d: &DaemonProc, text: &str, timeout: Duration) {
    assert!(
        d.wait_log(text, timeout),
        "no {text:?} in the log:\n{}",
        d.log_text()
    );
}

/// The supervision record of `component` in the daemon's `/tmp/vrrpd.json`.
fn record(d: &DaemonProc, component: &str) -> serde_json::Value {
    let (_, extra) = e2e::json_dumps(d).expect("JSON dump");
    extra["supervision"]["components"][component].clone()
}

/// a (150, nopreempt) Master, b (100) Backup; `a` is changed by `edit`.
fn pair(edit: impl FnOnce(&mut NodeConf)) -> lab::scenario::Pair {
    pair_in(Lab::builder().build().unwrap(), edit)
}

/// [`pair`] in `lab`, which may already run what a needs.
fn pair_in(lab: Lab, edit: impl FnOnce(&mut NodeConf)) -> lab::scenario::Pair {
    let mut ca = node("a", 150, 3, 0.1, VIP4);
    ca.nopreempt = true;
    edit(&mut ca);
    let cb = node("b", 100, 3, 0.1, VIP4);
    e2e::master_then_backup(lab, Daemon::Vrrpd, &ca, &cb).unwrap()
}

/// An instance's state dies with its panic: it cannot be restarted alone. The daemon releases
/// the others and exits 70; its supervisor releases the dead one (priority-0, address removed),
/// so the peer takes over at once, and starts the daemon again, as Backup.
#[test]
fn an_instance_panic_hands_over_and_the_daemon_is_restarted() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let mut pair = pair(|_| {});
    let watch = AdvertWatch::start(pair.lab.host("client")).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let a_ip = pair.lab.host("a").v4;
    let old = pair.a.vrrp_pid(None, Duration::from_secs(5)).unwrap();
    let armed = Instant::now();
    pair.a.arm("vrrp-loop", "panic").unwrap();
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    assert!(
        watch
            .first_after(armed, |x| x.src == a_ip && x.priority == 0)
            .is_some(),
        "no priority-0 advert from a"
    );
    wait_log(
        &pair.a,
        "exited with status 70: Respawning",
        Duration::from_secs(5),
    );
    let log = pair.a.log_text();
    assert!(log.contains("injected fault: panic at vrrp-loop"), "{log}");
    pair.a.vrrp_pid(Some(old), Duration::from_secs(5)).unwrap();
    wait_log(&pair.a, "starting as BACKUP", Duration::from_secs(5));
    e2e::holds_for(&pair, "b", Duration::from_millis(500)).unwrap();
}

/// A `vrrp_script` monitor that panics is started again with its verdict: the script failing
/// afterwards still lowers the priority, and the peer takes over.
#[test]
fn a_script_monitor_panic_is_restarted_and_a_failing_script_still_counts() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let dir = lab::ScriptDir::new().unwrap();
    let flag = dir.path("healthy");
    std::fs::write(&flag, "").unwrap();
    let mut pair = pair(|c| {
        c.nopreempt = false;
        c.state = lab::NodeState::Master;
        c.extra_top = Some(format!(
            "vrrp_script chk {{\n    script \"/usr/bin/test -e {}\"\n    interval 0.2\n    fall 1\n    rise 1\n    weight -60\n}}",
            flag.display()
        ));
        c.extra_instance = Some("track_script {\n        chk\n    }".into());
    });
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    pair.a.arm("script-monitor", "panic").unwrap();
    wait_log(&pair.a, "vrrp_script chk restarted", Duration::from_secs(5));
    let r = record(&pair.a, "vrrp_script chk");
    assert_eq!(r["restarts"], 1, "{r}");
    assert!(
        r["last_failure"]
            .as_str()
            .is_some_and(|w| w.contains("injected")),
        "{r}"
    );
    // The script fails: 150 - 60 = 90 < 100, b takes over.
    std::fs::remove_file(&flag).unwrap();
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    assert!(pair
        .a
        .log_text()
        .contains("changing effective priority from 150 to 90"));
}

/// A `track_file` watcher that panics on a change loses that change; started again, it reads
/// the file as it is: the value it lost (non-zero, weight 0: FAULT) still hands over.
#[test]
fn a_track_file_watcher_panic_is_restarted_and_reads_the_change_it_lost() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let dir = lab::ScriptDir::new().unwrap();
    let tf = dir.path("tf");
    std::fs::write(&tf, "0\n").unwrap();
    let mut pair = pair(|c| {
        c.extra_top = Some(format!(
            "vrrp_track_file tf {{\n    file {}\n    weight 0\n}}",
            tf.display()
        ));
        c.extra_instance = Some("track_file {\n        tf\n    }".into());
    });
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    pair.a.arm("track-file", "panic").unwrap();
    // The point fires on this very change, before the watcher reads it.
    std::fs::write(&tf, "1\n").unwrap();
    wait_log(&pair.a, "track_file tf restarted", Duration::from_secs(5));
    let r = record(&pair.a, "track_file tf");
    assert_eq!(r["restarts"], 1, "{r}");
    assert!(
        r["last_failure"]
            .as_str()
            .is_some_and(|w| w.contains("injected fault: panic at track-file")),
        "{r}"
    );
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    let log = pair.a.log_text();
    assert!(log.contains("track_file tf now 1"), "{log}");
    assert!(log.contains("Entering FAULT STATE"), "{log}");
}

/// The `vrrp_track_process` watcher that panics is started again and rescans `/proc`: the
/// tracked process dying afterwards still hands over (weight 0: FAULT).
#[test]
fn a_process_watcher_panic_is_restarted_and_a_process_gone_still_counts() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let dir = lab::ScriptDir::new().unwrap();
    let (prog, name) = dir.unique_sleep("s").unwrap();
    let lab = Lab::builder().build().unwrap();
    let tracked = lab
        .host("a")
        .spawn(prog.to_str().unwrap(), &["600"], None)
        .unwrap();
    let mut pair = pair_in(lab, |c| {
        c.extra_top = Some(format!(
            "vrrp_track_process p {{\n    process {name}\n    weight 0\n}}"
        ));
        c.extra_instance = Some("track_process {\n        p\n    }".into());
    });
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    pair.a.arm("process-watcher", "panic").unwrap();
    wait_log(
        &pair.a,
        "vrrp_track_process watcher restarted",
        Duration::from_secs(5),
    );
    let r = record(&pair.a, "vrrp_track_process watcher");
    assert_eq!(r["restarts"], 1, "{r}");
    pair.wait_master("a", Duration::from_secs(1)).unwrap();
    tracked.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    let log = pair.a.log_text();
    assert!(
        log.contains("Quorum lost for tracked process p (0 running)"),
        "{log}"
    );
}

/// The rtnetlink link-event stream cannot be restarted alone (what it knew of the links is
/// gone with it): its end makes the daemon release (priority 0, the VIP removed) and exit 70,
/// and its supervisor starts it again, as Backup.
#[test]
fn a_link_monitor_panic_releases_and_the_daemon_is_restarted() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let mut pair = pair(|_| {});
    let watch = AdvertWatch::start(pair.lab.host("client")).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let a = pair.lab.host("a").clone();
    let old = pair.a.vrrp_pid(None, Duration::from_secs(5)).unwrap();
    let armed = Instant::now();
    pair.a.arm("link-monitor", "panic").unwrap();
    // A link event in a's namespace (the pair goes with the namespace).
    let added = a
        .exec(
            "ip",
            &[
                "link", "add", "flt0", "type", "veth", "peer", "name", "flt1",
            ],
        )
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    assert!(
        watch
            .first_after(armed, |x| x.src == a.v4 && x.priority == 0)
            .is_some(),
        "no priority-0 advert from a"
    );
    wait_log(
        &pair.a,
        "exited with status 70: Respawning",
        Duration::from_secs(5),
    );
    let log = pair.a.log_text();
    assert!(
        log.contains("link monitor failed: panicked: injected fault: panic at link-monitor"),
        "{log}"
    );
    pair.a.vrrp_pid(Some(old), Duration::from_secs(5)).unwrap();
    wait_log(&pair.a, "starting as BACKUP", Duration::from_secs(5));
    assert!(!a.has_addr(pair.vip), "{}", pair.a.log_text());
    e2e::holds_for(&pair, "b", Duration::from_millis(500)).unwrap();
}

const BACKEND: &str = "127.0.0.1";
const PORT: u16 = 8080;

/// The checker scheduler that panics goes on (its checkers keep their verdicts): a real server
/// dying afterwards still leaves the pool, and the Master tracking it still hands over.
#[test]
fn a_checker_scheduler_panic_is_restarted_and_a_dead_server_still_leaves_the_pool() {
    checker_side_panic("checker-scheduler", "checker scheduler");
}

/// The same for the task that applies the checkers' verdicts to the service table and the
/// trackers: restarted with its table.
#[test]
fn a_health_events_panic_is_restarted_and_a_dead_server_still_leaves_the_pool() {
    checker_side_panic("health-events", "health events");
}

/// a tracks a virtual server whose one real server is [`BACKEND`]:[`PORT`] (TCP_CHECK every
/// 0.2 s; its death costs a 100).
fn track_backend(c: &mut NodeConf) {
    c.extra_instance =
        Some("track_virtual_server {\n        192.0.2.100 8080 weight -100\n    }".into());
    c.extra_blocks = Some(format!(
        "virtual_server 192.0.2.100 {PORT} {{\n    delay_loop 0.2\n    real_server {BACKEND} {PORT} {{\n        TCP_CHECK {{\n            connect_timeout 0.3\n            retry 0\n        }}\n    }}\n}}"
    ));
}

/// A panic at fault `point` of the checker side's `component`, then a real server dies.
fn checker_side_panic(point: &str, component: &str) {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let mut pair = pair(|c| {
        c.nopreempt = false;
        track_backend(c);
    });
    let a = pair.lab.host("a").clone();
    let mut backend = e2e::http_server(&a, BACKEND, PORT).unwrap();
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || e2e::serving(&a, BACKEND, PORT)
    ));
    wait_log(&pair.a, "quorum gained", Duration::from_secs(5));
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    pair.a.arm(point, "panic").unwrap();
    // The scheduler fails on its next turn; the verdicts' task on the next verdict, the
    // server's death itself, which the restarted task must still apply.
    let dies_first = point == "health-events";
    if dies_first {
        backend.stop(Duration::from_millis(500));
    }
    wait_log(
        &pair.a,
        &format!("{component} restarted"),
        Duration::from_secs(5),
    );
    let r = record(&pair.a, component);
    assert_eq!(r["restarts"], 1, "{r}");
    if !dies_first {
        backend.stop(Duration::from_millis(500));
    }
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    let log = pair.a.log_text();
    assert!(log.contains("quorum lost"), "{log}");
    let data = e2e::signal_dump(&pair.a, nix::sys::signal::Signal::SIGUSR1).unwrap();
    assert!(data.contains("   State = DOWN\n"), "{data}");
    assert!(
        data.contains(&format!(" Component = {component}\n")),
        "{data}"
    );
}

/// A balancer worker that panics goes on with its rings: HTTP through the VIP keeps working.
#[test]
fn a_dataplane_worker_panic_is_restarted_and_http_keeps_working() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    let lab = LbLab::new_vrrp_pair(Plan::Dr, 2).expect("lab");
    let lb = lab.lb().clone();
    let mut c = node("lb", 150, 3, 0.1, &format!("{VIP}/32"));
    let servers: String = lab
        .rs
        .iter()
        .map(|a| format!("    real_server {a} 80 {{\n    }}\n"))
        .collect();
    c.extra_blocks = Some(format!(
        "virtual_server {VIP} 80 {{\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n{servers}}}\n"
    ));
    let d = Daemon::Vrrpd.start(&lb, &c.render()).expect("vrrpd");
    let up = |h: &Host| h.has_addr(IpAddr::V4(VIP));
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || up(&lb)
    ));
    let get_all = |n: usize| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for _ in 0..n {
            let body = lab.get(None).expect("HTTP through the VIP");
            seen.insert(body.split(' ').next().unwrap_or_default().to_string());
        }
        seen
    };
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || lab
            .get(None)
            .is_ok()),
        "{}",
        d.log_text()
    );
    assert_eq!(get_all(10).len(), 2);
    d.arm("dataplane-worker", "panic").unwrap();
    wait_log(
        &d,
        "lb-worker-0 failed (injected fault",
        Duration::from_secs(5),
    );
    // Every request answered, by both real servers, after the panic.
    assert_eq!(get_all(10).len(), 2, "{}", d.log_text());
    let (_, extra) = e2e::json_dumps(&d).expect("JSON dump");
    let r = &extra["supervision"]["components"]["balancer workers"];
    assert_eq!(r["restarts"], 1, "{extra:#}");
}

/// A stalled checker side must not hold the daemon's signals: a SIGHUP (a reload, which starts
/// the new configuration's checks on the checker thread), then a SIGTERM a second later. The
/// daemon releases and exits long before the stall (30 s) ends.
#[test]
fn sigterm_after_sighup_takes_effect_with_a_stalled_checker() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    let _backend = e2e::http_server(&a, BACKEND, PORT).unwrap();
    let mut c = node("a", 150, 3, 0.1, VIP4);
    c.extra_blocks = Some(format!(
        "virtual_server 192.0.2.100 {PORT} {{\n    delay_loop 0.2\n    real_server {BACKEND} {PORT} {{\n        TCP_CHECK {{\n            connect_timeout 0.3\n        }}\n    }}\n}}"
    ));
    let mut d = Daemon::Vrrpd.start(&a, &c.render()).unwrap();
    let vip = e2e::addr(VIP4);
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || a.has_addr(vip)
    ));
    d.arm("checker-scheduler", "stall 30000").unwrap();
    wait_log(&d, "checker-scheduler stalls", Duration::from_secs(5));
    c.priority = 160;
    std::fs::write(a.dir.join("vrrpd.conf"), c.render()).unwrap();
    let pid = nix::unistd::Pid::from_raw(d.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    let status = d.terminate_status(Duration::from_secs(15));
    let took = t0.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?} after {took:?}:\n{}",
        d.log_text()
    );
    assert!(!a.has_addr(vip), "{}", d.log_text());
    eprintln!("SIGTERM 1 s after SIGHUP, checker stalled: exited after {took:?}");
}

/// A checker thread stalled for good (blocked, not panicking: nothing to restart in place):
/// after 30 s without a beat the daemon releases and exits 70, and its supervisor starts it
/// again; the peer holds the VIP meanwhile. (This test waits those 30 s.)
#[test]
fn a_checker_thread_stalled_30_s_makes_the_daemon_hand_over_and_restart() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    // The real server serves before a starts: a is Master at once (and nopreempt).
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    let _backend = e2e::http_server(&a, BACKEND, PORT).unwrap();
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || e2e::serving(&a, BACKEND, PORT)
    ));
    let mut pair = pair_in(lab, track_backend);
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let old = pair.a.vrrp_pid(None, Duration::from_secs(5)).unwrap();
    pair.a.arm("checker-scheduler", "stall 60000").unwrap();
    wait_log(&pair.a, "checker-scheduler stalls", Duration::from_secs(5));
    let t0 = Instant::now();
    pair.wait_master("b", Duration::from_secs(45)).unwrap();
    let took = t0.elapsed();
    wait_log(
        &pair.a,
        "exited with status 70: Respawning",
        Duration::from_secs(10),
    );
    let log = pair.a.log_text();
    assert!(log.contains("the checker thread has not run for"), "{log}");
    assert!(!a.has_addr(pair.vip), "{log}");
    pair.a.vrrp_pid(Some(old), Duration::from_secs(5)).unwrap();
    wait_log(&pair.a, "starting as BACKUP", Duration::from_secs(5));
    eprintln!("checker thread stalled: b Master {took:?} after the stall began");
}

/// The notify script runner and the `smtp_alert` mailer that panic on a transition are started
/// again: the failure is logged and counted in the dumps, and the next transition's script
/// runs and its mail goes out. (What was in hand when they panicked is lost.)
#[test]
fn notifier_and_mailer_panics_are_restarted_and_the_next_transition_still_notifies() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    const SINK: &str = "192.0.2.25";
    let lab = Lab::builder()
        .host("a", "192.0.2.1/24", "2001:db8::1/64")
        .host("mail", "192.0.2.25/24", "2001:db8::25/64")
        .build()
        .unwrap();
    let sink = lab::SmtpSink::start(lab.host("mail"), SINK.parse().unwrap(), 25).unwrap();
    let dir = lab::ScriptDir::new().unwrap();
    let notes = dir.path("notes");
    let note = dir
        .script("note.sh", &format!("echo \"$3\" >> {}", notes.display()))
        .unwrap();
    // A weight-0 tracked file: non-zero puts the instance in FAULT, zero brings it back.
    let tf = dir.path("tf");
    std::fs::write(&tf, "0\n").unwrap();
    let mut c = node("a", 150, 3, 0.1, VIP4);
    c.extra_global = Some(format!(
        "script_user root\n    notification_email {{\n        ops@example.com\n    }}\n    \
         notification_email_from vrrp@example.com\n    smtp_server {SINK} 25\n    \
         smtp_connect_timeout 5"
    ));
    c.extra_top = Some(format!(
        "vrrp_track_file tf {{\n    file {}\n    weight 0\n}}",
        tf.display()
    ));
    c.extra_instance = Some(format!(
        "smtp_alert\n    notify {}\n    track_file {{\n        tf\n    }}",
        note.display()
    ));
    let d = Daemon::Vrrpd.start(lab.host("a"), &c.render()).unwrap();
    let host = lab.host("a").clone();
    let vip = e2e::addr(VIP4);
    assert!(
        wait_until(Duration::from_secs(8), Duration::from_millis(20), || host
            .has_addr(vip)),
        "{}",
        d.log_text()
    );
    let noted = || std::fs::read_to_string(&notes).unwrap_or_default();
    let mailed = |what: &str| {
        sink.mails()
            .iter()
            .filter(|m| m.header("Subject").is_some_and(|s| s.contains(what)))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            noted().contains("MASTER") && mailed("MASTER") == 1
        }),
        "notes {:?}, mails {:?}\n{}",
        noted(),
        sink.mails(),
        d.log_text()
    );
    // Both panic on the FAULT transition.
    d.arm("notifier", "panic").unwrap();
    d.arm("mailer", "panic").unwrap();
    std::fs::write(&tf, "1\n").unwrap();
    wait_log(
        &d,
        "notify INSTANCE VI_51 restarted",
        Duration::from_secs(5),
    );
    wait_log(&d, "mailer restarted", Duration::from_secs(5));
    for component in ["notify INSTANCE VI_51", "mailer"] {
        let r = record(&d, component);
        assert_eq!(r["restarts"], 1, "{component}: {r}");
        assert!(
            r["last_failure"]
                .as_str()
                .is_some_and(|w| w.contains("injected")),
            "{component}: {r}"
        );
    }
    assert!(!noted().contains("FAULT"), "the panicked run did not note");
    // Back to MASTER: noted and mailed again.
    std::fs::write(&tf, "0\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            noted().matches("MASTER").count() == 2 && mailed("MASTER") == 2
        }),
        "notes {:?}, mails {:?}\n{}",
        noted(),
        sink.mails(),
        d.log_text()
    );
    let data = e2e::signal_dump(&d, nix::sys::signal::Signal::SIGUSR1).unwrap();
    assert!(data.contains(" Component = mailer\n"), "{data}");
}
