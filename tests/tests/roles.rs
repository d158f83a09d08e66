//! The Vagrant lab's provisioning, run in network namespaces: the five role scripts the
//! Vagrantfile gives its VMs (scripts/roles/: balancer a and b, real servers 1 and 2, client)
//! configure the namespace hosts, with documentation addresses instead of the VMs' and the
//! services started from the units they describe (vrrpd's own unit, sandboxed, for the
//! balancers). Then the README's scenario: the client's requests are answered by both real
//! servers through the VIP, balancer a halts, and they go on through b.
//!
//! Also: `vagrant validate` for both providers (Debian's vagrant and vagrant-libvirt).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lab::unit::Unit;
use lab::wait::wait_until;
use lab::{require_root, Daemon, Host, HostSpec, Lab, LabChild, LabSpec};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const VIP: &str = "192.0.2.100";

/// `vagrant validate` with each provider's configuration checked. VirtualBox is not in
/// Debian: a stand-in `VBoxManage` answers the version query vagrant's VirtualBox provider
/// makes before it checks the Vagrantfile's `virtualbox` settings. No network: the version
/// check is off and nothing is downloaded (validate needs no box).
#[test]
fn vagrant_validates_for_both_providers() {
    if lab::missing_tool(&["vagrant"]).is_some() {
        eprintln!("skipped: vagrant is not installed (scripts/test.sh installs it)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vrrpd-vagrant-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let vbox = bin.join("VBoxManage");
    std::fs::write(
        &vbox,
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 7.0.14r161095; exit 0; }\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&vbox, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for provider in ["libvirt", "virtualbox"] {
        let o = Command::new("vagrant")
            .arg("validate")
            .current_dir(REPO)
            .env("VAGRANT_DEFAULT_PROVIDER", provider)
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .env("VAGRANT_HOME", dir.join("home"))
            .env("PATH", &path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && text.contains("validated successfully"),
            "{provider}: {text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    // Addresses VirtualBox accepts for host-only networks by default: 192.168.56.0/21.
    let file = std::fs::read_to_string(Path::new(REPO).join("Vagrantfile")).unwrap();
    let addrs: Vec<std::net::Ipv4Addr> = file
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(addrs.len() >= 6, "{addrs:?}");
    for a in addrs
        .iter()
        .filter(|a| a.octets()[3] != 0 && a.octets()[0] != 255)
    {
        let [x, y, z, _] = a.octets();
        assert!(
            x == 192 && y == 168 && (56..64).contains(&z),
            "{a} outside 192.168.56.0/21"
        );
    }
}

/// One namespace host and the role it plays.
struct Role {
    host: &'static str,
    ip: &'static str,
    script: &'static str,
    arg: Option<&'static str>,
}

const ROLES: [Role; 5] = [
    Role {
        host: "a",
        ip: "192.0.2.1",
        script: "balancer",
        arg: Some("a"),
    },
    Role {
        host: "b",
        ip: "192.0.2.2",
        script: "balancer",
        arg: Some("b"),
    },
    Role {
        host: "rs1",
        ip: "192.0.2.11",
        script: "realserver",
        arg: Some("1"),
    },
    Role {
        host: "rs2",
        ip: "192.0.2.12",
        script: "realserver",
        arg: Some("2"),
    },
    Role {
        host: "client",
        ip: "192.0.2.50",
        script: "client",
        arg: None,
    },
];

fn ip_of(host: &str) -> &'static str {
    ROLES.iter().find(|r| r.host == host).unwrap().ip
}

/// Where a role script puts its files (its `/`).
fn root_of(host: &Host) -> PathBuf {
    host.dir.join("root")
}

/// Run a role script in its host, as the Vagrantfile runs it in a VM, but with the lab's
/// addresses, the host's own directory as `/` and nothing installed or started.
fn provision(host: &Host, role: &Role) {
    let mut args: Vec<String> = vec![
        format!("A_IP={}", ip_of("a")),
        format!("B_IP={}", ip_of("b")),
        format!("RS1_IP={}", ip_of("rs1")),
        format!("RS2_IP={}", ip_of("rs2")),
        format!("CLIENT_IP={}", ip_of("client")),
        format!("VIP={VIP}"),
        "LAB_PREFIX=24".into(),
        format!("ROLE_ROOT={}", root_of(host).display()),
        "ROLE_INSTALL=0".into(),
        "ROLE_SYSTEMD=0".into(),
        "bash".into(),
        format!("{REPO}/scripts/roles/{}.sh", role.script),
    ];
    args.extend(role.arg.map(String::from));
    let o = host.exec("env", &args).unwrap();
    assert!(
        o.status.success(),
        "{}.sh {:?} in {}: {}{}",
        role.script,
        role.arg,
        host.name,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The watch script's answers, one a line: `HH:MM:SS.mmm rs1` (or `FAILED`).
fn answers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect()
}

#[test]
fn roles_run_the_mission_in_namespaces() {
    require_root!();
    if let Some(tool) = lab::missing_tool(&["nginx", "curl", "setpriv", "nft"]) {
        eprintln!("skipped: {tool} is not installed (scripts/test.sh installs it)");
        return;
    }
    let Ok(bin) = Daemon::Vrrpd.binary() else {
        eprintln!("skipped: no vrrpd binary (cargo build -p vrrpd)");
        return;
    };
    let spec = LabSpec {
        hosts: ROLES
            .iter()
            .enumerate()
            .map(|(i, r)| {
                HostSpec::new(
                    r.host,
                    &format!("{}/24", r.ip),
                    &format!("2001:db8::{:x}/64", i + 1),
                )
            })
            .collect(),
    };
    let lab = Lab::new(spec).unwrap();
    for role in &ROLES {
        provision(lab.host(role.host), role);
    }

    // The real servers' nginx, from the unit the role wrote.
    let mut services: Vec<LabChild> = Vec::new();
    for rs in ["rs1", "rs2"] {
        let host = lab.host(rs);
        let unit =
            Unit::read(&root_of(host).join("etc/systemd/system/vrrpd-lab-nginx.service")).unwrap();
        let argv = unit.exec_start().unwrap();
        services.push(
            host.spawn(&argv[0], &argv[1..], Some(&host.dir.join("nginx.log")))
                .unwrap(),
        );
    }
    // The balancers: vrrpd's unit, sandboxed, on the file the role wrote.
    let unit = Unit::read(&Path::new(REPO).join("etc/vrrpd.service")).unwrap();
    let start = |name: &str| {
        let host = lab.host(name);
        let conf = root_of(host).join("etc/keepalived/keepalived.conf");
        unit.start_in(host, &conf, Some(&bin), &[]).unwrap()
    };
    let mut da = start("a");
    let db = start("b");

    let (a, b, client) = (lab.host("a"), lab.host("b"), lab.host("client"));
    let vip: IpAddr = VIP.parse().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || a
            .has_addr(vip)),
        "a never became Master:\n{}",
        da.log_text()
    );
    let watch = root_of(client).join("usr/local/bin/vrrpd-lab-watch");
    let watch = watch.to_string_lossy().into_owned();
    let ask = |n: &str| {
        let o = client.exec(&watch, &[n]).unwrap();
        answers(&String::from_utf8_lossy(&o.stdout))
    };
    // Health checks bring both real servers in within a few delay_loops.
    assert!(
        wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
            let got = ask("4");
            got.contains(&"rs1".into()) && got.contains(&"rs2".into())
        }),
        "the client never reached both real servers through {VIP}:\n{}",
        da.log_text()
    );
    let got = ask("6");
    assert!(!got.contains(&"FAILED".into()), "{got:?}");

    // `vagrant halt a`, while the client keeps asking.
    let log = client.dir.join("watch.log");
    let mut watching = client.spawn(&watch, &["40"], Some(&log)).unwrap();
    let lines = || answers(&std::fs::read_to_string(&log).unwrap_or_default());
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || lines().len() >= 5
    ));
    let halted_at = lines().len();
    da.child.kill_hard();
    a.link_down().unwrap();
    assert!(
        watching.wait_timeout(Duration::from_secs(60)).is_some(),
        "the watch never finished"
    );
    assert!(b.has_addr(vip), "b never took over:\n{}", db.log_text());
    let got = lines();
    assert_eq!(got.len(), 40, "{got:?}");
    let after = &got[halted_at..];
    let failed = after.iter().filter(|a| *a == "FAILED").count();
    let last = &got[got.len() - 10..];
    assert!(
        last.iter().all(|a| a == "rs1" || a == "rs2")
            && last.contains(&"rs1".into())
            && last.contains(&"rs2".into()),
        "after the failover: {got:?}"
    );
    // Master_Down_Interval at advert_int 0.5 is ~1.6 s: a few requests of 0.2 s fail.
    assert!(
        failed <= 12,
        "{failed} requests failed during the failover: {got:?}"
    );
    eprintln!(
        "failover seen by the client: {failed} failed requests of {}",
        after.len()
    );
    drop(services);
}
