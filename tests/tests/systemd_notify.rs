//! systemd's `Type=notify` protocol, as keepalived's unit uses it: with `$NOTIFY_SOCKET` set,
//! vrrpd sends `READY=1` once its instances run, `RELOADING=1` then `READY=1` around a SIGHUP
//! reload, and `STOPPING=1` on SIGTERM, to a socket the test binds (systemd's part).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, Daemon, Lab};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn next(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_reloading_and_stopping_reach_notify_socket() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    let path = a.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conf = node("a", 150, 3, 0.1, VIP4);
    let file = a.dir.join("vrrpd.conf");
    std::fs::write(&file, conf.render()).unwrap();
    let bin = Daemon::Vrrpd.binary().unwrap();
    let log = a.dir.join("vrrpd.log");
    let pidfile = a.dir.join("vrrpd.pid");
    let args = [
        format!("NOTIFY_SOCKET={}", path.display()),
        bin.display().to_string(),
        "-n".into(),
        "-l".into(),
        "-f".into(),
        file.display().to_string(),
        "-p".into(),
        pidfile.display().to_string(),
    ];
    let mut child = a.spawn("env", &args, Some(&log)).unwrap();
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(next(&sock), "READY=1", "{}", logs());
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
    conf.priority = 160;
    std::fs::write(&file, conf.render()).unwrap();
    kill(Pid::from_raw(pid), Signal::SIGHUP).unwrap();
    assert_eq!(next(&sock), "RELOADING=1", "{}", logs());
    assert_eq!(next(&sock), "READY=1", "{}", logs());
    assert!(logs().contains("Reload complete"));

    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert_eq!(next(&sock), "STOPPING=1", "{}", logs());
    child.stop(Duration::from_secs(5));
}
