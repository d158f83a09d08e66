//! etc/vrrpd.service's sandbox against the features it could break. The daemon runs from the
//! unit's command line with the settings applicable without systemd (capability bounding set,
//! no_new_privs, read-only /usr, /etc, home directories and cgroups in a private mount
//! namespace: `lab::unit`), under strace; the settings systemd applies with seccomp
//! (SystemCallFilter, RestrictAddressFamilies, RestrictNamespaces) are checked against every
//! system call, socket family and namespace change the daemon, its scripts, nft and the
//! balancer made. Features exercised: vrrp_script as another user, notify scripts, a notify
//! FIFO and its script, the SIGUSR1 / JSON dumps in /tmp, a VMAC interface and its sysctls,
//! vrrp_strict's nftables table, the balancer's dataplane, a graceful stop (notify_stop done
//! before the daemon exits, as KillMode=mixed needs) and failover.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lab::unit::{SeccompCheck, Unit};
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab, ScriptDir};
use nix::sys::signal::Signal;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/vrrpd.service");
const VIP: &str = "192.0.2.100";

/// `systemd-analyze security` rates the unit 5.0 or better (keepalived's own unit: 9.6).
#[test]
fn exposure_is_at_most_5() {
    let Ok(o) = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", UNIT])
        .output()
    else {
        eprintln!("skipped: no systemd-analyze");
        return;
    };
    let out = String::from_utf8_lossy(&o.stdout);
    let level: f64 = out
        .lines()
        .find_map(|l| l.split("Overall exposure level for vrrpd.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{out}{}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
    assert!(level <= 5.0, "exposure {level}:\n{out}");
}

/// The capability names `capsh` decodes from a `Cap*:` line of /proc/PID/status.
fn caps_of(status: &str, field: &str) -> BTreeSet<String> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    let o = Command::new("capsh")
        .arg(format!("--decode={hex}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.trim()
        .split_once('=')
        .map(|(_, names)| names.split(',').map(String::from).collect())
        .unwrap_or_default()
}

/// Script security without a `keepalived_script` user refuses scripts that name no user, as
/// keepalived does: `script_user root` runs them as root.
fn conf_a(scripts: &ScriptDir, out: &Path) -> String {
    let o = out.display();
    format!(
        "global_defs {{\n    router_id sandbox_a\n    vrrp_strict\n    enable_script_security\n    \
         script_user root\n    notify_fifo {o}/fifo\n    notify_fifo_script {fifo}\n}}\n\
         vrrp_script chk {{\n    script \"{chk}\"\n    interval 1\n    user nobody\n}}\n\
         vrrp_instance VI_1 {{\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    \
         priority 150\n    advert_int 0.1\n    version 3\n    use_vmac\n    \
         virtual_ipaddress {{\n        {VIP}/24\n    }}\n    track_script {{\n        chk\n    }}\n    \
         notify_master \"{notify} MASTER\"\n    notify_stop \"{stop}\"\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    \
         real_server 192.0.2.50 80 {{\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n}}\n",
        fifo = scripts.path("fifo.sh").display(),
        chk = scripts.path("chk.sh").display(),
        notify = scripts.path("notify.sh").display(),
        stop = scripts.path("stop.sh").display(),
    )
}

const CONF_B: &str = "vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n    \
    virtual_router_id 51\n    priority 100\n    advert_int 0.1\n    version 3\n    \
    virtual_ipaddress {\n        192.0.2.100/24\n    }\n}\n";

#[test]
fn features_work_in_the_units_sandbox() {
    require_root!();
    if let Some(tool) = lab::missing_tool(&[
        "strace",
        "setpriv",
        "unshare",
        "capsh",
        "nft",
        "systemd-analyze",
    ]) {
        eprintln!("skipped: {tool} is not installed (scripts/test.sh installs it)");
        return;
    }
    let Ok(bin) = Daemon::Vrrpd.binary() else {
        eprintln!("skipped: no vrrpd binary (cargo build -p vrrpd)");
        return;
    };
    let unit = Unit::read(Path::new(UNIT)).unwrap();
    let lab = Lab::builder().build().unwrap();
    let (a, b) = (lab.host("a"), lab.host("b"));

    // Scripts' output, writable by the script user.
    let out = a.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let o = out.display();
    let scripts = ScriptDir::new().unwrap();
    scripts
        .script("chk.sh", &format!("id -u > {o}/chk-uid\nexit 0"))
        .unwrap();
    // A root script: what it may do, and what the sandbox stops.
    scripts
        .script(
            "notify.sh",
            &format!(
                "echo \"$1 $(id -u)\" >> {o}/notify\n\
                 grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status > {o}/notify-status\n\
                 for d in /etc /usr /root; do touch $d/vrrpd-sandbox-$$ 2>/dev/null && \
                 {{ echo \"$d writable\" >> {o}/notify; rm -f $d/vrrpd-sandbox-$$; }}; done\n\
                 touch /var/tmp/vrrpd-sandbox-$$ && rm /var/tmp/vrrpd-sandbox-$$ && \
                 echo '/var/tmp writable' >> {o}/notify\n\
                 echo end >> {o}/notify"
            ),
        )
        .unwrap();
    // Slow on purpose: the unit (KillMode=mixed) kills what is left once the daemon exits, so
    // the daemon must wait for its stop scripts.
    scripts
        .script("stop.sh", &format!("sleep 0.5\necho stopped > {o}/stop"))
        .unwrap();
    scripts
        .script(
            "fifo.sh",
            &format!("while read -r line; do echo \"$line\" >> {o}/fifo-lines; done < \"$1\""),
        )
        .unwrap();
    let conf = a.dir.join("sandbox.conf");
    std::fs::write(&conf, conf_a(&scripts, &out)).unwrap();
    let conf_b = b.dir.join("sandbox.conf");
    std::fs::write(&conf_b, CONF_B).unwrap();

    let trace = a.dir.join("strace.log");
    let strace: Vec<String> = ["strace", "-f", "-qq", "-o", &trace.to_string_lossy()]
        .map(String::from)
        .to_vec();
    let mut da = unit.start_in(a, &conf, Some(&bin), &strace).unwrap();
    let _db = unit.start_in(b, &conf_b, Some(&bin), &[]).unwrap();

    let vip: IpAddr = VIP.parse().unwrap();
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let log_a = da.log.clone();
    let within = |secs, what: &str, cond: &dyn Fn() -> bool| {
        assert!(
            wait_until(Duration::from_secs(secs), Duration::from_millis(20), cond),
            "{what}\ndaemon log:\n{}",
            std::fs::read_to_string(&log_a).unwrap_or_default()
        );
    };
    within(15, "a never held the VIP", &|| a.has_addr(vip));
    // VMAC: the VIP lives on vrrp.51, whose sysctls the daemon set.
    let links = a.exec("ip", &["-br", "addr", "show", "vrrp.51"]).unwrap();
    assert!(
        String::from_utf8_lossy(&links.stdout).contains(VIP),
        "VIP not on the VMAC: {links:?}"
    );
    // Scripts: the check as nobody (setuid/setgid), notify as root.
    within(5, "vrrp_script never ran as nobody", &|| {
        read("chk-uid").trim() == "65534"
    });
    within(5, "notify_master never ran", &|| {
        read("notify").contains("end")
    });
    assert!(
        read("notify").starts_with("MASTER 0\n"),
        "{}",
        read("notify")
    );
    let notes = read("notify");
    assert!(
        !notes.contains("/etc writable") && !notes.contains("/usr writable"),
        "ProtectSystem=full not in force: {notes}"
    );
    assert!(!notes.contains("/root writable"), "ProtectHome: {notes}");
    assert!(
        notes.contains("/var/tmp writable"),
        "scripts may write /var: {notes}"
    );
    let status = read("notify-status");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    // What the unit keeps of what this machine has (a container may lack some already).
    let own = caps_of(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        "CapBnd:",
    );
    let expected: BTreeSet<String> = unit
        .capabilities()
        .unwrap()
        .intersection(&own)
        .cloned()
        .collect();
    assert!(expected.contains("cap_net_admin") && expected.contains("cap_net_raw"));
    assert_eq!(
        caps_of(&status, "CapBnd:"),
        expected,
        "scripts' bounding set"
    );
    let daemon_status = std::fs::read_to_string(format!("/proc/{}/status", da.child.pid()));
    // The traced daemon is strace's child; the bounding set is the same for both.
    assert_eq!(caps_of(&daemon_status.unwrap(), "CapBnd:"), expected);
    // The FIFO and its script.
    within(5, "no state line through the FIFO", &|| {
        read("fifo-lines").contains("INSTANCE \"VI_1\" MASTER")
    });
    // nftables: vrrp_strict's table and the balancer's.
    for table in [["inet", "vrrpd_vrrp"], ["netdev", "vrrpd_lb"]] {
        within(5, &format!("no nft table {table:?}"), &|| {
            a.exec("nft", &["list", "table", table[0], table[1]])
                .is_ok_and(|o| o.status.success())
        });
    }
    // Dumps in /tmp, where the admin reads them (PrivateTmp is off).
    let pid = traced_daemon(&trace, &bin).expect("the daemon's pid in the strace log");
    let tmp = std::path::Path::new("/tmp");
    let data = lab::e2e::signal_dump_in(pid, Signal::SIGUSR1, tmp).unwrap();
    assert!(data.contains("VI_1"), "{data}");
    let json = lab::e2e::json_file_dump(pid, &tmp.join("keepalived.json")).unwrap();
    assert!(json.to_string().contains("VI_1"));

    // A graceful stop under the sandbox: VMAC and sysctls put back, exit 0, b takes over.
    // (To the daemon: strace, the process started, would detach on a signal of its own.)
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    let exit = da.child.wait_timeout(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}\n{}",
        da.log_text()
    );
    assert_eq!(
        read("stop"),
        "stopped\n",
        "notify_stop finished before the daemon exited"
    );
    within(5, "b never took over", &|| b.has_addr(vip));
    assert!(!a.has_addr(vip));

    let log = std::fs::read_to_string(&trace).unwrap();
    // The trace saw the daemon's threads and its children, not only the start.
    assert!(log.contains("AF_PACKET"), "the dataplane and GARP ran");
    assert!(log.contains("socket(AF_NETLINK"), "rtnetlink");
    for script in ["chk.sh", "notify.sh", "fifo.sh", "stop.sh"] {
        assert!(log.contains(script), "{script} not in the trace");
    }
    let violations = SeccompCheck::of(&unit).unwrap().violations(&log);
    assert!(
        violations.is_empty(),
        "the unit's seccomp settings would refuse:\n{}",
        violations.join("\n")
    );
}

/// The pid of the traced daemon: the process strace saw exec it.
fn traced_daemon(trace: &PathBuf, bin: &Path) -> Option<u32> {
    let log = std::fs::read_to_string(trace).ok()?;
    let exec = format!("execve(\"{}\"", bin.display());
    log.lines()
        .find(|l| l.contains(&exec))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
}
