//! Where the daemon logs, with keepalived's flags: `-g FILE` appends to a file, the console
//! only with `-l`, and the state changes in keepalived's words ("(VI_51) Entering MASTER
//! STATE") that operators grep for. (Syslog datagrams are checked in `vrrpd::log`'s tests.)

use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, wait_until, Daemon, Lab};
use nix::sys::signal::Signal;

#[test]
fn log_file_without_console_or_syslog() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    let conf = a.dir.join("vrrpd.conf");
    std::fs::write(&conf, node("a", 150, 3, 0.1, VIP4).render()).unwrap();
    let file = a.dir.join("vrrpd-file.log");
    let stderr = a.dir.join("vrrpd-stderr.log");
    let bin = Daemon::Vrrpd.binary().unwrap();
    let args = [
        "-n".to_string(),
        "-G".into(),
        format!("--log-file={}", file.display()),
        "-f".into(),
        conf.display().to_string(),
        "-p".into(),
        a.dir.join("vrrpd.pid").display().to_string(),
        "-r".into(),
        a.dir.join("vrrpd-vrrp.pid").display().to_string(),
    ];
    let mut child = a
        .spawn(&bin.to_string_lossy(), &args, Some(&stderr))
        .unwrap();
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || read(
            &file
        )
        .contains("(VI_51) Entering MASTER STATE (from BACKUP)")),
        "log file: {}\nstderr: {}",
        read(&file),
        read(&stderr)
    );
    child.signal(Signal::SIGTERM).unwrap();
    assert!(child.wait_timeout(Duration::from_secs(5)).is_some());
    let text = read(&file);
    assert!(
        text.contains("(VI_51) Entering INIT STATE (from MASTER)"),
        "the stop is logged too: {text}"
    );
    assert!(
        !text.contains("\u{1b}["),
        "no colour codes in a file: {text}"
    );
    assert_eq!(read(&stderr), "", "nothing on the console without -l");
}
