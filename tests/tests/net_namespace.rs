//! `-s NAME` and `net_namespace NAME`: the daemon moves into the named network namespace at
//! start. Each daemon here is started in node b's namespace and told to run in node a's: the
//! VIP appears on a, never on b, and goes on SIGTERM. keepalived 2.2.7 (`-s`) first, as the
//! reference. A missing namespace is an error for both, and nothing is left anywhere.

use std::path::PathBuf;
use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::{require_root, wait_until, Daemon, Host, Lab, LabChild};

/// `d` started in `b`'s namespace with `conf` and `extra` arguments; its log path.
fn start_in(b: &Host, d: Daemon, conf: &str, extra: &[String]) -> (LabChild, PathBuf) {
    let file = b.dir.join("ns.conf");
    std::fs::write(&file, conf).unwrap();
    let log = b.dir.join("ns.log");
    let mut args: Vec<String> = Vec::new();
    if d == Daemon::Keepalived {
        args.push("-P".into());
    }
    for a in ["-n", "-l", "-f"] {
        args.push(a.into());
    }
    args.push(file.display().to_string());
    for (flag, name) in [("-p", "ns.pid"), ("-r", "ns-vrrp.pid")] {
        args.push(flag.into());
        args.push(b.dir.join(name).display().to_string());
    }
    args.extend(extra.iter().cloned());
    let bin = d.binary().unwrap().display().to_string();
    (b.spawn(&bin, &args, Some(&log)).unwrap(), log)
}

#[test]
fn namespace_flag_and_keyword_move_the_daemon() {
    require_root!();
    for (d, by_keyword) in [
        (Daemon::Keepalived, false),
        (Daemon::Keepalived, true),
        (Daemon::Vrrpd, false),
        (Daemon::Vrrpd, true),
    ] {
        if !e2e::available(&[d]) {
            continue;
        }
        let lab = Lab::builder().build().unwrap();
        let (a, b) = (lab.host("a").clone(), lab.host("b").clone());
        let mut conf = node("a", 150, 3, 0.1, VIP4);
        let mut extra = Vec::new();
        if by_keyword {
            conf.extra_top = Some(format!("net_namespace {}", a.netns));
        } else {
            extra = vec!["-s".to_string(), a.netns.clone()];
        }
        let (mut child, log) = start_in(&b, d, &conf.render(), &extra);
        let logs = || std::fs::read_to_string(&log).unwrap_or_default();
        let vip = e2e::addr(VIP4);
        assert!(
            wait_until(Duration::from_secs(5), Duration::from_millis(10), || a
                .has_addr(vip)),
            "{d} (keyword {by_keyword}): no VIP on a\n{}",
            logs()
        );
        assert!(!b.has_addr(vip), "{d}: the VIP is on b");
        child.stop(Duration::from_secs(5));
        assert!(
            wait_until(Duration::from_secs(3), Duration::from_millis(10), || !a
                .has_addr(vip)),
            "{d}: a kept the VIP after stop\n{}",
            logs()
        );
    }
}

#[test]
fn missing_namespace_is_an_error() {
    require_root!();
    for d in [Daemon::Keepalived, Daemon::Vrrpd] {
        if !e2e::available(&[d]) {
            continue;
        }
        let lab = Lab::builder().build().unwrap();
        let b = lab.host("b").clone();
        let missing = format!("{}-missing", b.netns);
        let conf = node("b", 150, 3, 0.1, VIP4).render();
        let (mut child, log) = start_in(&b, d, &conf, &["-s".to_string(), missing.clone()]);
        assert!(
            child.wait_timeout(Duration::from_secs(5)).is_some(),
            "{d} did not exit"
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains(&format!("Unable to set network namespace {missing}")),
            "{d}:\n{text}"
        );
        assert!(!b.has_addr(e2e::addr(VIP4)));
        assert!(!std::path::Path::new(&format!("/run/netns/{missing}")).exists());
    }
}
