//! keepalived's process keywords on vrrpd's threads, read back from the kernel
//! (`/proc/PID/task/TID/{stat,status}`, `sched_getscheduler`, `sched_getaffinity`,
//! `/proc/PID/limits`):
//!
//! * `vrrp_*` reach the main thread (TID = PID, the VRRP instances): SCHED_RR at the given
//!   priority, reset on fork, on the given CPU; `checker_*` the `vrrpd-checker` thread: its
//!   nice value and CPU; the balancer's `lb-worker-*` / `lb-resolver` threads keep the
//!   process's original scheduling (SCHED_OTHER, nice, CPUs); no other thread runs SCHED_RR;
//! * `vrrp_no_swap` locks the process (VmLck > 0), `vrrp_rlimit_rttime` sets RLIMIT_RTTIME
//!   (soft at half), `umask` is the process umask and shapes the files the daemon makes
//!   (FIFO, track file; pid files stay 0644 as keepalived's);
//! * a reload applies changed settings (real-time off, another nice);
//! * without CAP_SYS_NICE / CAP_IPC_LOCK each refused setting is logged and the daemon runs
//!   on (becomes Master); `-u` wins over `umask`;
//! * `max_auto_priority`: a side whose timers fire late (the daemon stopped 0.5 s) goes
//!   SCHED_RR, capped.
//!
//! Not observed: what RLIMIT_RTTIME does when exceeded (SIGXCPU logged, SIGKILL at the hard
//! limit) — that takes a real-time thread spinning, which this box should not be made to do.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, wait_until, Daemon, DaemonProc, Host, Lab};
use nix::unistd::Pid;

/// One thread of a process, as the kernel shows it.
#[derive(Debug, Clone)]
struct Task {
    tid: i32,
    comm: String,
    nice: i32,
    rt_priority: i32,
    policy: i32,
    cpus: String,
}

/// Every thread of `pid` (`/proc/PID/task`).
fn tasks(pid: u32) -> Vec<Task> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            // Fields after `(comm)` start at field 3; nice is 19, rt_priority 40, policy 41.
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| f.get(n - 3)?.parse::<i32>().ok();
            Some(Task {
                tid,
                comm,
                nice: field(19)?,
                rt_priority: field(40)?,
                policy: field(41)?,
                cpus: status_field(&status, "Cpus_allowed_list")?,
            })
        })
        .collect()
}

fn status_field(status: &str, name: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

fn proc_status(pid: u32, name: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status_field(&s, name).unwrap_or_default()
}

/// `sched_getscheduler(2)` of a thread: (policy, reset-on-fork flag).
fn scheduler(tid: i32) -> (i32, bool) {
    // SAFETY: plain system call on an integer argument.
    let p = unsafe { libc::sched_getscheduler(tid) };
    assert!(p >= 0, "sched_getscheduler({tid}) failed");
    (
        p & !libc::SCHED_RESET_ON_FORK,
        p & libc::SCHED_RESET_ON_FORK != 0,
    )
}

/// `sched_getaffinity(2)` of a thread (0: the calling thread) as CPU ids.
fn affinity(tid: i32) -> Vec<usize> {
    let set = nix::sched::sched_getaffinity(Pid::from_raw(tid)).expect("sched_getaffinity");
    (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// `Max realtime timeout` (soft, hard) from `/proc/PID/limits`.
fn rttime(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max realtime timeout"))?;
    let mut w = line["Max realtime timeout".len()..].split_whitespace();
    Some((w.next()?.to_string(), w.next()?.to_string()))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The lab node's config: VIP 192.0.2.100 on eth0 with a virtual server on it (so the
/// checker side runs and the balancer starts its workers), a FIFO and a track file.
fn config(host: &Host, global: &str) -> String {
    let dir = host.dir.display();
    let mut c = node("a", 150, 3, 0.1, VIP4);
    c.extra_global = Some(format!("{global}\n    vrrp_notify_fifo {dir}/notify.fifo"));
    c.extra_top = Some(format!(
        "vrrp_track_file tf {{\n    file {dir}/track\n    init_file 0 overwrite\n}}"
    ));
    c.extra_instance = Some("track_file {\n        tf\n    }".into());
    c.extra_blocks = Some(
        "virtual_server 192.0.2.100 80 {\n    delay_loop 1\n    lb_kind DR\n    protocol TCP\n    \
         real_server 192.0.2.11 80 {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n}\n"
            .into(),
    );
    c.render()
}

fn vip() -> IpAddr {
    e2e::addr(VIP4)
}

/// Master (the VIP is up) and the balancer's workers running.
fn wait_started(d: &mut DaemonProc, host: &Host) {
    let up = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        host.has_addr(vip())
            && d.vrrp_pid(None, Duration::ZERO)
                .is_ok_and(|p| tasks(p).iter().any(|t| t.comm.starts_with("lb-worker")))
    });
    assert!(
        up && d.is_running(),
        "vrrpd did not become Master with its balancer running:\n{}",
        d.log_text()
    );
}

#[test]
fn process_settings_reach_their_threads() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder()
        .host("a", "192.0.2.1/24", "2001:db8::1/64")
        .build()
        .unwrap();
    let host = lab.host("a");
    let ncpus = online_cpus();
    let (vrrp_cpu, checker_cpu) = (ncpus - 1, 0);
    let global = format!(
        "vrrp_rt_priority 42\n    vrrp_cpu_affinity {vrrp_cpu}\n    vrrp_rlimit_rttime 400000\n    \
         vrrp_no_swap\n    checker_priority 7\n    checker_cpu_affinity {checker_cpu}\n    umask 027"
    );
    let mut d = Daemon::Vrrpd.start(host, &config(host, &global)).unwrap();
    wait_started(&mut d, host);
    // The daemon runs in its supervisor's child (the `-r` pid).
    let pid = d.vrrp_pid(None, Duration::from_secs(5)).unwrap();
    let all = tasks(pid);
    let log = d.log_text();
    eprintln!("threads: {all:#?}");
    // The VRRP side: the main thread.
    let main = all
        .iter()
        .find(|t| t.tid == pid as i32)
        .expect("main thread");
    assert_eq!(
        (main.policy, main.rt_priority),
        (libc::SCHED_RR, 42),
        "main thread: {main:?}\n{log}"
    );
    assert_eq!(scheduler(main.tid), (libc::SCHED_RR, true));
    assert_eq!(affinity(main.tid), vec![vrrp_cpu]);
    assert_eq!(main.cpus, vrrp_cpu.to_string());
    // The checker side: its own thread.
    let checker = all
        .iter()
        .find(|t| t.comm == "vrrpd-checker")
        .expect("vrrpd-checker thread");
    assert_eq!(
        (checker.policy, checker.nice),
        (libc::SCHED_OTHER, 7),
        "{checker:?}"
    );
    assert_eq!(scheduler(checker.tid).0, libc::SCHED_OTHER);
    assert_eq!(affinity(checker.tid), vec![checker_cpu]);
    // The dataplane: the scheduling vrrpd started with (the spawning test thread's).
    let own_nice = tasks(std::process::id())
        .into_iter()
        .find(|t| t.tid == nix::unistd::gettid().as_raw())
        .map_or(0, |t| t.nice);
    let own_cpus = affinity(0);
    let dataplane: Vec<&Task> = all
        .iter()
        .filter(|t| t.comm.starts_with("lb-") || t.comm == "vrrpd-spawner")
        .collect();
    assert!(
        dataplane
            .iter()
            .filter(|t| t.comm.starts_with("lb-worker"))
            .count()
            >= 1
            && dataplane.iter().any(|t| t.comm == "lb-resolver"),
        "{dataplane:?}"
    );
    for t in &dataplane {
        assert_eq!(
            (t.policy, t.rt_priority, t.nice),
            (libc::SCHED_OTHER, 0, own_nice),
            "{t:?}"
        );
        assert_eq!(scheduler(t.tid).0, libc::SCHED_OTHER, "{t:?}");
        assert_eq!(affinity(t.tid), own_cpus, "{t:?}");
    }
    // Nothing else is real-time (blocking pools, the checker's helpers).
    for t in all.iter().filter(|t| t.tid != main.tid) {
        assert_ne!(t.policy, libc::SCHED_RR, "{t:?} runs real-time");
    }
    // Process-wide: memory lock, RLIMIT_RTTIME, umask and the files made under it.
    let locked: u64 = proc_status(pid, "VmLck")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(locked > 0, "VmLck {locked} kB with vrrp_no_swap");
    assert_eq!(
        rttime(pid),
        Some(("200000".into(), "400000".into())),
        "RLIMIT_RTTIME"
    );
    assert_eq!(proc_status(pid, "Umask"), "0027");
    assert!(wait_until(
        Duration::from_secs(3),
        Duration::from_millis(20),
        || host.dir.join("track").exists()
    ));
    assert_eq!(
        mode(&host.dir.join("track")),
        0o640,
        "track file (0666 & ~027)"
    );
    assert_eq!(
        mode(&host.dir.join("notify.fifo")),
        0o640,
        "FIFO (0644 & ~027)"
    );
    assert_eq!(
        mode(&host.dir.join("vrrpd.pid")),
        0o644,
        "pid file (always 0644)"
    );
    assert_eq!(mode(&host.dir.join("vrrpd-vrrp.pid")), 0o644);
    eprintln!("VmLck {locked} kB; RLIMIT_RTTIME {:?}", rttime(pid));

    // A reload with other settings: real-time off (back to SCHED_OTHER, all CPUs), another
    // nice for the checker, no memory lock.
    let conf = host.dir.join("vrrpd.conf");
    std::fs::write(&conf, config(host, "checker_priority 3\n    umask 077")).unwrap();
    nix::sys::signal::kill(Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
    let reloaded = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        let all = tasks(pid);
        let main = all.iter().find(|t| t.tid == pid as i32);
        let checker = all.iter().find(|t| t.comm == "vrrpd-checker");
        main.is_some_and(|m| m.policy == libc::SCHED_OTHER)
            && checker.is_some_and(|c| c.nice == 3)
            && proc_status(pid, "Umask") == "0077"
    });
    assert!(
        reloaded,
        "reload not applied: {:#?}\n{}",
        tasks(pid),
        d.log_text()
    );
    assert_eq!(
        affinity(pid as i32),
        own_cpus,
        "main thread back on every CPU"
    );
    assert_eq!(proc_status(pid, "VmLck"), "0 kB", "unlocked");
    assert!(d.is_running() && host.has_addr(vip()), "{}", d.log_text());
    assert!(d.terminate(Duration::from_secs(5)));
}

#[test]
fn refused_settings_are_logged_and_the_daemon_runs_on() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    if std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: setpriv is not installed");
        return;
    }
    let lab = Lab::builder()
        .host("a", "192.0.2.1/24", "2001:db8::1/64")
        .build()
        .unwrap();
    let host = lab.host("a");
    let conf = host.dir.join("vrrpd.conf");
    std::fs::write(
        &conf,
        config(
            host,
            "vrrp_rt_priority 42\n    checker_priority -5\n    vrrp_no_swap\n    umask 027",
        ),
    )
    .unwrap();
    let (pidf, vpidf, log) = (
        host.dir.join("vrrpd.pid"),
        host.dir.join("vrrpd-vrrp.pid"),
        host.dir.join("vrrpd.log"),
    );
    let bin = Daemon::Vrrpd.binary().unwrap();
    let s = |p: &Path| p.to_string_lossy().into_owned();
    // Root without CAP_SYS_NICE (no SCHED_RR, no negative nice) nor CAP_IPC_LOCK (mlockall
    // beyond RLIMIT_MEMLOCK), and `-u` against the `umask` keyword.
    let args = [
        "--inh-caps=-sys_nice,-ipc_lock".to_string(),
        "--bounding-set=-sys_nice,-ipc_lock".into(),
        "--".into(),
        s(&bin),
        "-n".into(),
        "-l".into(),
        "-f".into(),
        s(&conf),
        "-p".into(),
        s(&pidf),
        "-r".into(),
        s(&vpidf),
        "-u".into(),
        "0077".into(),
    ];
    let child = host.spawn("setpriv", &args, Some(&log)).unwrap();
    // The daemon runs in its supervisor's child (the `-r` pid).
    let vrrp_pid = || {
        std::fs::read_to_string(&vpidf)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    };
    let up = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        host.has_addr(vip())
            && vrrp_pid().is_some_and(|p| tasks(p).iter().any(|t| t.comm.starts_with("lb-worker")))
    });
    let pid = vrrp_pid().unwrap_or(child.pid());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(up, "vrrpd did not become Master:\n{text}");
    for want in [
        "vrrp thread (TID",
        "cannot raise priority to SCHED_RR 42",
        "Unable to set process priority to -5",
        "Unable to lock process in memory",
        "needs CAP_SYS_NICE",
        "umask command line option specified, ignoring config option",
    ] {
        assert!(text.contains(want), "log lacks {want:?}:\n{text}");
    }
    let all = tasks(pid);
    let main = all.iter().find(|t| t.tid == pid as i32).unwrap();
    assert_eq!(main.policy, libc::SCHED_OTHER, "{main:?}");
    let checker = all.iter().find(|t| t.comm == "vrrpd-checker").unwrap();
    assert!(checker.nice >= 0, "{checker:?}");
    assert_eq!(proc_status(pid, "VmLck"), "0 kB");
    assert_eq!(proc_status(pid, "Umask"), "0077", "-u wins");
    assert_eq!(mode(&host.dir.join("notify.fifo")), 0o600);
    drop(child);
}

#[test]
fn max_auto_priority_makes_a_late_side_real_time() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder()
        .host("a", "192.0.2.1/24", "2001:db8::1/64")
        .build()
        .unwrap();
    let host = lab.host("a");
    // 100 ms late counts; a generous RLIMIT_RTTIME for a debug build gone real-time.
    let global = "max_auto_priority 2\n    min_auto_priority_delay 100000\n    \
                  vrrp_rlimit_rttime 1000000\n    checker_rlimit_rttime 600000";
    let mut d = Daemon::Vrrpd.start(host, &config(host, global)).unwrap();
    wait_started(&mut d, host);
    // The daemon runs in its supervisor's child (the `-r` pid).
    let pid = d.vrrp_pid(None, Duration::from_secs(5)).unwrap();
    // Stopped for half a second: every timer of both sides fires late.
    let p = Pid::from_raw(pid as i32);
    nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGCONT).unwrap();
    let rt = |comm_or_main: &dyn Fn(&Task) -> bool| {
        tasks(pid)
            .into_iter()
            .find(|t| comm_or_main(t))
            .is_some_and(|t| t.policy == libc::SCHED_RR && (1..=2).contains(&t.rt_priority))
    };
    let raised = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        rt(&|t| t.tid == pid as i32) && rt(&|t| t.comm == "vrrpd-checker")
    });
    let log = d.log_text();
    assert!(raised, "not raised: {:#?}\n{log}", tasks(pid));
    assert!(log.contains("A thread timer expired") && log.contains("Set realtime priority 1"));
    // The larger of the two sides' limits, soft at half.
    assert_eq!(
        rttime(pid),
        Some(("500000".into(), "1000000".into())),
        "{log}"
    );
    // The workers stay as they were.
    for t in tasks(pid).iter().filter(|t| t.comm.starts_with("lb-")) {
        assert_eq!(t.policy, libc::SCHED_OTHER, "{t:?}");
    }
    assert!(d.is_running() && host.has_addr(vip()), "{log}");
    assert!(d.terminate(Duration::from_secs(5)));
}
