//! systemd's `Type=notify` protocol, as keepalived's unit uses it: with `$NOTIFY_SOCKET` set,
//! vrrpd sends `READY=1` once its instances run, `RELOADING=1` then `READY=1` around a SIGHUP
//! reload, and `STOPPING=1` on SIGTERM, to a socket the test binds (systemd's part).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Host, Lab, LabChild};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// vrrpd on `a` as systemd starts it: `NOTIFY_SOCKET` bound here, `env` (`KEY=VALUE`) too.
/// Returns the socket, the daemon, its log and its pid file.
fn start_notified(a: &Host, env: &[String]) -> (UnixDatagram, LabChild, PathBuf, PathBuf) {
    let path = a.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::PassCred, &true).unwrap();
    let file = a.dir.join("vrrpd.conf");
    if !file.exists() {
        std::fs::write(&file, node("a", 150, 3, 0.1, VIP4).render()).unwrap();
    }
    let bin = Daemon::Vrrpd.binary().unwrap();
    let log = a.dir.join("vrrpd.log");
    let pidfile = a.dir.join("vrrpd.pid");
    let args: Vec<String> = [format!("NOTIFY_SOCKET={}", path.display())]
        .into_iter()
        .chain(env.iter().cloned())
        .chain([
            bin.display().to_string(),
            "-n".into(),
            "-l".into(),
            "-f".into(),
            file.display().to_string(),
            "-p".into(),
            pidfile.display().to_string(),
        ])
        .collect();
    let child = a.spawn("env", &args, Some(&log)).unwrap();
    (sock, child, log, pidfile)
}

fn next(sock: &UnixDatagram) -> String {
    next_from(sock).0
}

/// The next notification and the pid that sent it (systemd's `NotifyAccess=main`, the
/// default for `Type=notify`, drops any not sent by the main process).
fn next_from(sock: &UnixDatagram) -> (String, i32) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let msg = recvmsg::<UnixAddr>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("a notification within the timeout");
    let pid = msg
        .cmsgs()
        .expect("control messages")
        .find_map(|c| match c {
            ControlMessageOwned::ScmCredentials(u) => Some(u.pid()),
            _ => None,
        })
        .expect("the sender's credentials");
    let n = msg.bytes;
    (String::from_utf8_lossy(&buf[..n]).into_owned(), pid)
}

#[test]
fn ready_reloading_and_stopping_reach_notify_socket() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    let mut conf = node("a", 150, 3, 0.1, VIP4);
    let file = a.dir.join("vrrpd.conf");
    std::fs::write(&file, conf.render()).unwrap();
    let (sock, mut child, log, pidfile) = start_notified(&a, &[]);
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let (ready, sender) = next_from(&sock);
    assert_eq!(ready, "READY=1", "{}", logs());
    assert!(
        logs().contains("vrrpd started"),
        "READY before start:\n{}",
        logs()
    );

    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // From the main process (the supervisor relays what its child says), as systemd wants.
    assert_eq!(sender, pid, "READY=1 not from the main process");
    conf.priority = 160;
    std::fs::write(&file, conf.render()).unwrap();
    kill(Pid::from_raw(pid), Signal::SIGHUP).unwrap();
    assert_eq!(next(&sock), "RELOADING=1", "{}", logs());
    assert_eq!(next(&sock), "READY=1", "{}", logs());
    assert!(logs().contains("Reload complete"));

    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert_eq!(next_from(&sock), ("STOPPING=1".into(), pid), "{}", logs());
    child.stop(Duration::from_secs(5));
}

/// systemd's watchdog (`WatchdogSec` in etc/vrrpd.service): with `WATCHDOG_USEC` set, the
/// VRRP thread pings every half interval, through the supervisor (the main process systemd
/// listens to). A stalled VRRP loop (an injected stall) stops the pings; systemd then sends
/// its WatchdogSignal, SIGABRT, to the main process: the supervisor releases for the stuck
/// child (the VIP goes), kills it and exits non-zero for systemd to restart the service.
#[test]
fn watchdog_pings_stop_with_a_stalled_vrrp_loop_and_sigabrt_releases() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    let faults = a.dir.join("faults");
    std::fs::create_dir_all(&faults).unwrap();
    let env = [
        "WATCHDOG_USEC=400000".to_string(),
        format!("VRRPD_FAULTS={}", faults.display()),
    ];
    let (sock, mut child, log, pidfile) = start_notified(&a, &env);
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let vip = e2e::addr(VIP4);
    assert!(
        lab::wait_until(Duration::from_secs(5), Duration::from_millis(10), || a
            .has_addr(vip)),
        "{}",
        logs()
    );
    assert!(
        logs().contains("fault points armed from"),
        "vrrpd built without fault-injection (cargo test builds it with):\n{}",
        logs()
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Pings every 200 ms, READY=1 among them, all from the main process.
    let t0 = std::time::Instant::now();
    let mut pings = 0;
    while t0.elapsed() < Duration::from_secs(1) {
        let (state, sender) = next_from(&sock);
        assert_eq!(sender, pid, "{state} not from the main process");
        if state == "WATCHDOG=1" {
            pings += 1;
        }
    }
    assert!(pings >= 3, "{pings} pings in a second:\n{}", logs());

    // The VRRP loop stalls (3 s): the pings stop.
    std::fs::write(faults.join("vrrp-loop"), "stall 3000").unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
            logs().contains("vrrp-loop stalls")
        }),
        "{}",
        logs()
    );
    // What was sent before the stall began, then silence.
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 64];
    while sock.recv(&mut buf).is_ok() {}
    sock.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let during = sock.recv(&mut buf);
    assert!(
        during.is_err(),
        "a ping during the stall: {:?}",
        during.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );

    // systemd's WatchdogSignal.
    kill(Pid::from_raw(pid), Signal::SIGABRT).unwrap();
    let status = child.wait_timeout(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| !s.success()),
        "{status:?}\n{}",
        logs()
    );
    assert!(!a.has_addr(vip), "the VIP stayed:\n{}", logs());
    assert!(logs().contains("SIGABRT (watchdog)"), "{}", logs());
    child.stop(Duration::from_secs(1));
}
