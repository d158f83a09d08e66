//! `vrrpd -t` exit codes against `keepalived -t`, and the commands that print the model.

use std::process::Command;

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

/// Files that are not UTF-8 (issue 18 item 7): one ISO-8859-1 byte in a comment, which
/// keepalived 2.2.7 runs.
const BYTE_CASES: &[(&str, &[u8])] = &[(
    "latin1_comment",
    b"# r\xe9seau du caf\xe9\nglobal_defs { router_id r1 }\nvrrp_instance A {\n state BACKUP\n interface eth0\n virtual_router_id 51\n advert_int 1\n virtual_ipaddress { 192.0.2.10/24 }\n}\n",
)];

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
    let cases = CASES
        .iter()
        .map(|(n, t)| (n, t.as_bytes()))
        .chain(BYTE_CASES.iter().map(|(n, t)| (n, *t)));
    for (name, text) in cases {
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
                | "latin1_comment"
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
        // dynamic_interfaces: the interface need not exist where the test runs.
        "global_defs {\n dynamic_interfaces\n}\nvrrp_instance A {\n interface vrrpd-none0\n virtual_router_id 7\n priority 42\n virtual_ipaddress { 192.0.2.7/24 }\n}\n",
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
    assert!(String::from_utf8_lossy(&table.stdout)
        .contains("| `virtual_router_id` | 1..255 | supported |"));
    let _ = std::fs::remove_dir_all(&dir);
}
