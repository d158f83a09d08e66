//! keepalived(8) flags, and `vrrpd -t` exit codes against `keepalived -t`.

use std::path::PathBuf;
use std::process::Command;

use vrrpd::cli::{parse_args, CliError};

fn p(args: &[&str]) -> Result<vrrpd::cli::Cli, CliError> {
    parse_args(std::iter::once("vrrpd").chain(args.iter().copied()))
}

#[test]
fn defaults() {
    let c = p(&[]).unwrap();
    assert_eq!(c.use_file, PathBuf::from("/etc/keepalived/keepalived.conf"));
    assert!(c.config_test.is_none() && !c.dont_fork && !c.dump_config);
}

#[test]
fn every_accepted_keepalived_flag() {
    let c = p(&[
        "-f",
        "/x.conf",
        "-P",
        "-B",
        "--all",
        "-l",
        "-D",
        "-S",
        "local3",
        "-G",
        "-u",
        "022",
        "-X",
        "-V",
        "-I",
        "-R",
        "-n",
        "-d",
        "-p",
        "/run/a.pid",
        "-r",
        "/run/v.pid",
        "-c",
        "/run/c.pid",
        "-a",
        "-b",
        "/run/b.pid",
        "-m",
        "-M=core.%p",
        "-e",
        "-i",
        "node1",
        "-t",
        "--no-mem-check",
        "-g=/tmp/k.log",
        "--flush-log-file",
        "--dump-config",
    ])
    .unwrap();
    assert_eq!(c.use_file, PathBuf::from("/x.conf"));
    assert!(c.vrrp && c.no_bfd && c.all && c.log_console && c.log_detail && c.no_syslog);
    assert_eq!(c.log_facility.as_deref(), Some("local3"));
    assert_eq!(c.umask.as_deref(), Some("022"));
    assert!(c.release_vips && c.dont_release_vrrp && c.dont_release_ipvs && c.dont_respawn);
    assert!(c.dont_fork && c.dump_conf && c.address_monitoring && c.core_dump && c.all_config);
    assert_eq!(c.pid, Some(PathBuf::from("/run/a.pid")));
    assert_eq!(c.vrrp_pid, Some(PathBuf::from("/run/v.pid")));
    assert_eq!(c.checkers_pid, Some(PathBuf::from("/run/c.pid")));
    assert_eq!(c.bfd_pid, Some(PathBuf::from("/run/b.pid")));
    assert_eq!(c.core_dump_pattern.as_deref(), Some("core.%p"));
    assert_eq!(c.config_id.as_deref(), Some("node1"));
    assert_eq!(c.config_test_log(), Some(None));
    assert!(c.no_mem_check && c.flush_log_file && c.dump_config);
    assert_eq!(c.log_file, Some(PathBuf::from("/tmp/k.log")));

    let c = p(&[
        "--use-file=/y",
        "--vrrp",
        "--log-console",
        "--log-detail",
        "--no-syslog",
        "--dont-fork",
        "--dump-conf",
        "--pid=/a",
        "--vrrp_pid=/b",
        "--checkers_pid=/c",
        "--config-id=x",
        "--config-test=/tmp/t.log",
        "--log-facility=daemon",
        "--address-monitoring",
        "--dont-respawn",
        "--core-dump",
        "--core-dump-pattern",
        "--all-config",
        "--log-file",
        "--signum=RELOAD",
    ])
    .unwrap();
    assert_eq!(c.use_file, PathBuf::from("/y"));
    assert_eq!(c.config_test_log(), Some(Some(PathBuf::from("/tmp/t.log"))));
    assert_eq!(c.core_dump_pattern.as_deref(), Some("core"));
    assert_eq!(c.log_file, Some(PathBuf::from("/tmp/keepalived.log")));
    assert_eq!(c.signum.as_deref(), Some("RELOAD"));
    assert!(p(&["-v"]).unwrap().version && p(&["--version"]).unwrap().version);
    assert!(p(&["-h"]).unwrap().help && p(&["--help"]).unwrap().help);
    let both = p(&["-C", "-P"]).unwrap().subsystems();
    assert!(
        both.vrrp && both.checker,
        "-C with -P runs both, as keepalived"
    );
    let none = p(&[]).unwrap().subsystems();
    assert!(none.vrrp && none.checker);
    let vrrp = p(&["-P"]).unwrap().subsystems();
    assert!(vrrp.vrrp && !vrrp.checker, "-P: VRRP only");
    let check = p(&["--check"]).unwrap().subsystems();
    assert!(
        !check.vrrp && check.checker,
        "-C: checker and balancer only"
    );
}

#[test]
fn refused_flags_say_why() {
    for (args, flag) in [
        (&["-x"][..], "-x/--snmp"),
        (&["--snmp"][..], "-x/--snmp"),
        (&["-A", "/s"][..], "-x/--snmp"),
    ] {
        match p(args) {
            Err(CliError::Refused { flag: f, reason }) => {
                assert_eq!(f, flag);
                assert!(!reason.is_empty());
            }
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert_eq!(p(&["-s", "ns1"]).unwrap().namespace.as_deref(), Some("ns1"));
    assert_eq!(
        p(&["--namespace=ns1"]).unwrap().namespace.as_deref(),
        Some("ns1")
    );
    assert!(matches!(
        p(&["-S", "9"]),
        Err(CliError::Invalid {
            flag: "-S/--log-facility",
            ..
        })
    ));
    // keepalived reports a bad -u and goes on without it; so does vrrpd. Its value is read
    // as C's strtol reads it: `22` is decimal.
    let bad = p(&["-u", "9x"]).unwrap();
    assert_eq!(
        bad.umask_value(),
        Err("Invalid --umask option 9x".to_string())
    );
    assert_eq!(p(&["-u", "22"]).unwrap().umask_value(), Ok(Some(22)));
    assert_eq!(p(&["-u", "022"]).unwrap().umask_value(), Ok(Some(0o22)));
    assert_eq!(p(&["-u", "0x1ff"]).unwrap().umask_value(), Ok(Some(0o777)));
    assert!(p(&["-u", "01000"]).unwrap().umask_value().is_err());
    assert!(matches!(
        p(&["--signum=FOO"]),
        Err(CliError::Invalid { .. })
    ));
    assert!(matches!(p(&["--bogus"]), Err(CliError::Usage(_))));
}

/// `-T` switches to genhash wherever keepalived's getopt would meet it: values of the
/// options before it are skipped, `--` ends the search.
#[test]
fn genhash_is_found_as_keepalived_finds_it() {
    use vrrpd::cli::genhash_at;
    let at = |args: &[&str]| {
        genhash_at(
            &std::iter::once("vrrpd")
                .chain(args.iter().copied())
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(at(&["-T", "-s", "192.0.2.1"]), Some(1));
    assert_eq!(at(&["--genhash", "-h"]), Some(1));
    assert_eq!(at(&["-l", "-T", "-s", "192.0.2.1"]), Some(2));
    assert_eq!(at(&["-lT"]), Some(1), "bundled after a flag");
    assert_eq!(at(&["-f", "-T"]), None, "-T is the value of -f");
    assert_eq!(at(&["-fT"]), None, "-T is the value of -f");
    assert_eq!(at(&["--use-file", "-T"]), None);
    assert_eq!(at(&["--use-file=/x", "-T"]), Some(2));
    assert_eq!(at(&["-t", "-T"]), Some(2), "-t takes its value only with =");
    assert_eq!(at(&["-g", "-T"]), Some(2));
    assert_eq!(at(&["-S", "local0", "-p", "/p", "--genhash"]), Some(5));
    assert_eq!(at(&["--", "-T"]), None);
    assert_eq!(at(&["-n", "-l"]), None);
    assert!(p(&["-n"]).is_ok_and(|c| !c.genhash));
}

#[test]
fn signum_matches_keepalived() {
    assert_eq!(vrrpd::cli::signum("STOP"), Some(15));
    assert_eq!(vrrpd::cli::signum("RELOAD"), Some(1));
    assert_eq!(vrrpd::cli::signum("DATA"), Some(10));
    assert_eq!(vrrpd::cli::signum("STATS"), Some(12));
    assert_eq!(vrrpd::cli::signum("JSON"), Some(36));
    assert_eq!(vrrpd::cli::signum("STATS_CLEAR"), Some(63));
}

const CASES: &[(&str, &str)] = &[
    ("good", "global_defs { router_id r1 }\nvrrp_instance A {\n state BACKUP\n interface eth0\n virtual_router_id 51\n advert_int 1\n virtual_ipaddress { 192.0.2.10/24 }\n}\n"),
    ("bad_vrid", "vrrp_instance A {\n interface eth0\n virtual_router_id 300\n virtual_ipaddress { 192.0.2.10/24 }\n}\n"),
    ("unknown_kw", "vrrp_instance A {\n interface eth0\n virtual_router_id 30\n priorty 20\n}\n"),
    ("no_vrid", "vrrp_instance A {\n interface eth0\n}\n"),
    ("mixed", "vrrp_instance A {\n interface eth0\n virtual_router_id 30\n virtual_ipaddress { 192.0.2.10/24\n2001:db8::1 }\n}\n"),
    ("round", "vrrp_instance A {\n interface eth0\n virtual_router_id 30\n advert_int 1.5\n}\n"),
    ("nopreempt_master", "vrrp_instance A {\n state MASTER\n priority 100\n nopreempt\n interface eth0\n virtual_router_id 30\n}\n"),
    ("v3_auth", "vrrp_instance A {\n version 3\n interface eth0\n virtual_router_id 30\n authentication { auth_type PASS\n auth_pass x }\n}\n"),
    ("owner_backup", "vrrp_instance A {\n priority 255\n interface eth0\n virtual_router_id 30\n virtual_ipaddress { 192.0.2.1 }\n}\n"),
    ("no_vip", "vrrp_instance A {\n interface eth0\n virtual_router_id 30\n}\n"),
    ("v6_default_version", "vrrp_instance A {\n interface eth0\n virtual_router_id 30\n virtual_ipaddress { 2001:db8::1 }\n}\n"),
    ("not_implemented", "global_defs { vrrp_no_swap }\nvrrp_instance A {\n interface eth0\n virtual_router_id 30\n virtual_ipaddress { 192.0.2.1 }\n}\n"),
    ("unicast_without_peers", "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n unicast_src_ip 192.0.2.1\n virtual_ipaddress { 192.0.2.10/24 }\n}\n"),
    ("unicast_with_peers", "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n unicast_src_ip 192.0.2.1\n unicast_peer {\n 192.0.2.2\n }\n virtual_ipaddress { 192.0.2.10/24 }\n}\n"),
];

fn code(c: &mut Command) -> i32 {
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c.status().expect("run").code().unwrap_or(-1)
}

/// `vrrpd -t` and `keepalived -t` agree on the exit code. keepalived checks interfaces, so
/// both run in a fresh namespace that has `eth0`.
#[test]
fn config_test_exit_codes_match_keepalived() {
    let vrrpd = env!("CARGO_BIN_EXE_vrrpd");
    let dir = std::env::temp_dir().join(format!("vrrpd-t-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = nix::unistd::geteuid().is_root();
    let have_keepalived = Command::new("keepalived").arg("-v").output().is_ok();
    let ns = format!("vtc{}", std::process::id());
    // Removed on every exit, a failed assertion included.
    let _ns_guard = NetnsGuard(ns.clone());
    let ns_ok = root
        && have_keepalived
        && code(Command::new("ip").args(["netns", "add", &ns])) == 0
        && code(Command::new("ip").args([
            "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
        ])) == 0;
    if !ns_ok {
        println!(
            "skipped: needs root and keepalived (comparison with keepalived -t in a namespace)"
        );
    }
    let mut failures = Vec::new();
    for (name, text) in CASES {
        let f = dir.join(format!("{name}.conf"));
        std::fs::write(&f, text).unwrap();
        let ours = code(Command::new(vrrpd).arg("-t").arg("-f").arg(&f));
        let want_ok = matches!(
            *name,
            "good"
                | "owner_backup"
                | "v6_default_version"
                | "not_implemented"
                | "unicast_with_peers"
        );
        assert_eq!(ours, if want_ok { 0 } else { 5 }, "vrrpd -t on {name}");
        if ns_ok {
            let theirs = code(
                Command::new("ip")
                    .args(["netns", "exec", &ns, "keepalived", "-t", "-f"])
                    .arg(&f),
            );
            if theirs != ours {
                failures.push(format!("{name}: vrrpd {ours}, keepalived {theirs}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{failures:?}");
}

/// Deletes the named network namespace when dropped (if it exists).
struct NetnsGuard(String);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if std::path::Path::new("/var/run/netns")
            .join(&self.0)
            .exists()
        {
            code(Command::new("ip").args(["netns", "del", &self.0]));
        }
    }
}

#[test]
fn dump_config_prints_the_model() {
    let dir = std::env::temp_dir().join(format!("vrrpd-dump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("k.conf");
    std::fs::write(&f, CASES[0].1).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vrrpd"))
        .arg("--dump-config")
        .arg("-f")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["instances"][0]["virtual_router_id"], 51);
    assert_eq!(v["global"]["router_id"], "r1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn convert_dump_config_and_compat_table() {
    let dir = std::env::temp_dir().join(format!("vrrpd-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("k.conf");
    std::fs::write(
        &conf,
        "vrrp_instance A {\n interface lo\n virtual_router_id 7\n priority 42\n virtual_ipaddress { 192.0.2.7/24 }\n}\n",
    )
    .unwrap();
    let out = dir.join("k.toml");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_vrrpd"))
        .arg("convert")
        .arg(&conf)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let dump = |f: &std::path::Path| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_vrrpd"))
            .args(["--dump-config", "-f"])
            .arg(f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (a, b) = (dump(&conf), dump(&out));
    assert_eq!(a, b, "keepalived.conf and its TOML give the same model");
    assert_eq!(a["instances"][0]["priority"], 42);
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_vrrpd"))
        .arg("--compat-table")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("| `virtual_router_id` | supported |"));
    let _ = std::fs::remove_dir_all(&dir);
}
