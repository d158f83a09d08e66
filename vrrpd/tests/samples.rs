//! `vrrpd -t` against `keepalived -t` on Debian's keepalived samples and on broken variants
//! generated from them, inside a namespace that has the interfaces the samples name
//! (eth0..eth3 as veths). Both must agree on pass/fail; every line keepalived names must be
//! flagged by vrrpd at the same line.

use std::path::{Path, PathBuf};
use std::process::Command;

const SAMPLES: &str = "/usr/share/doc/keepalived/samples";

/// A namespace with eth0..eth3, removed on drop.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Option<Self> {
        let name = format!("vs{}{tag}", std::process::id());
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ok(&["netns", "add", &name]) {
            return None;
        }
        let ns = Ns(name.clone());
        for i in 0..4 {
            let (e, p) = (format!("eth{i}"), format!("p{i}x{}", std::process::id()));
            let p = format!("{p}{tag}");
            if !ok(&[
                "-n", &name, "link", "add", &e, "type", "veth", "peer", "name", &p,
            ]) || !ok(&["-n", &name, "link", "set", &e, "up"])
            {
                return None;
            }
        }
        Some(ns)
    }

    /// Run a config test; (exit code, combined output).
    fn test(&self, prog: &str, file: &Path, tag: &str) -> (i32, String) {
        let dir = std::env::temp_dir();
        let pid = |s: &str| dir.join(format!("{}-{tag}-{s}.pid", self.0));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, prog, "-t", "-f"])
            .arg(file);
        if prog == "keepalived" {
            cmd.arg("-p").arg(pid("p")).arg("-r").arg(pid("r"));
            cmd.arg("-c").arg(pid("c")).arg("-b").arg(pid("b"));
        }
        let out = cmd.output().expect("run config test");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn root_and_keepalived() -> bool {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root (network namespace with eth0..eth3)");
        return false;
    }
    if Command::new("keepalived").arg("-v").output().is_err() {
        println!("skipped: keepalived is not installed");
        return false;
    }
    true
}

fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(SAMPLES)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("keepalived.conf."))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Lines keepalived names as `(FILE: Line N)`.
fn keepalived_lines(out: &str, file: &Path) -> Vec<u32> {
    let tag = format!("({}: Line ", file.display());
    out.lines()
        .filter_map(|l| l.split_once(&tag))
        .filter_map(|(_, r)| r.split(')').next()?.parse().ok())
        .collect()
}

#[test]
fn samples_agree_with_keepalived() {
    if !root_and_keepalived() {
        return;
    }
    let files = samples();
    assert!(files.len() >= 20, "samples missing: {files:?}");
    let ns = Ns::new("s").expect("namespace with eth0..eth3");
    let vrrpd = env!("CARGO_BIN_EXE_vrrpd");
    let mut failures = Vec::new();
    for f in &files {
        let (k, kout) = ns.test("keepalived", f, "s");
        let (v, vout) = ns.test(vrrpd, f, "s");
        if (k == 0) != (v == 0) || (k == 6) != (v == 6) {
            failures.push(format!(
                "{}: keepalived {k}, vrrpd {v}\n{kout}\n{vout}",
                f.display()
            ));
        }
        for line in keepalived_lines(&kout, f) {
            let at = format!("{}:{line}:", f.display());
            if !vout.lines().any(|l| l.starts_with(&at)) {
                failures.push(format!(
                    "{}: keepalived flags line {line}, vrrpd does not\n{vout}",
                    f.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

/// Variants where vrrpd is deliberately stricter than keepalived: (what, how
/// docs/COMPATIBILITY.md names it).
const DELIBERATE: &[(&str, &str)] = &[];

/// Broken variants of a sample: (what, text).
fn variants(text: &str) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    let sub = |from: &str, to: &str| text.contains(from).then(|| text.replacen(from, to, 1));
    let mut push = |what, t: Option<String>| {
        if let Some(t) = t {
            v.push((what, t));
        }
    };
    push(
        "vrid out of range",
        sub("virtual_router_id 51", "virtual_router_id 300"),
    );
    push("priority out of range", sub("priority 100", "priority 256"));
    push("bad priority value", sub("priority 100", "priority high"));
    push("bad state", sub("state MASTER", "state LEADER"));
    push(
        "unknown keyword in instance",
        sub(
            "virtual_router_id 51",
            "virtual_router_id 51\n    virtual_router_idx 5",
        ),
    );
    push(
        "unknown top-level keyword",
        Some(format!("{text}\nvrrp_instanse X {{\n}}\n")),
    );
    push("bad VIP", sub("192.168.200.16", "192.168.200.300"));
    push("unbalanced: extra close", Some(format!("{text}\n}}\n")));
    push(
        "unknown keyword in real_server",
        sub("weight 1", "weight 1\n        weigth 2"),
    );
    push("bad lb_algo", sub("lb_algo rr", "lb_algo rrr"));
    push("missing interface", sub("interface eth0\n", "\n"));
    push("bad advert_int", sub("advert_int 1", "advert_int fast"));
    push(
        "loopback interface",
        sub("interface eth0\n", "interface lo\n"),
    );
    push(
        "vrrp_strict",
        sub("global_defs {", "global_defs {\n   vrrp_strict"),
    );
    push(
        "missing include",
        Some(format!("include /nonexistent/vrrpd-*.conf\n{text}")),
    );
    push(
        "bad BOOL",
        sub("delay_loop 6", "delay_loop 6\n    alpha maybe"),
    );
    push("bad TIMER", sub("delay_loop 6", "delay_loop six"));
    push("bad lb_kind", sub("lb_kind NAT", "lb_kind NAAT"));
    push(
        "unknown checker key",
        sub(
            "connect_timeout 3",
            "connect_timeout 3\n      connect_timout 4",
        ),
    );
    v
}

#[test]
fn broken_variants_agree_with_keepalived() {
    if !root_and_keepalived() {
        return;
    }
    let ns = Ns::new("v").expect("namespace with eth0..eth3");
    let vrrpd = env!("CARGO_BIN_EXE_vrrpd");
    let dir = std::env::temp_dir().join(format!("vrrpd-variants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for f in samples() {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, (what, t)) in variants(&text).into_iter().enumerate() {
            let path = dir.join(format!("{}.{i}", f.file_name().unwrap().to_string_lossy()));
            std::fs::write(&path, t).unwrap();
            let (k, kout) = ns.test("keepalived", &path, "v");
            let (v, vout) = ns.test(vrrpd, &path, "v");
            checked += 1;
            if let Some((_, doc)) = DELIBERATE.iter().find(|d| d.0 == what) {
                let table = keepalived_conf::compat::table();
                assert!(
                    table.contains(doc),
                    "{what}: not listed in COMPATIBILITY.md"
                );
                if v == 0 {
                    failures.push(format!("{} ({what}): vrrpd must refuse it", path.display()));
                }
                continue;
            }
            if (k == 0) != (v == 0) {
                failures.push(format!(
                    "{} ({what}): keepalived {k}, vrrpd {v}\n{kout}\n{vout}",
                    path.display()
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked >= 50, "only {checked} variants");
    assert!(
        failures.is_empty(),
        "{} of {checked} disagree:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}

/// Route and rule lines in keepalived's ip-route / ip-rule syntax: `vrrpd -t` agrees with
/// `keepalived -t` on each (valid or not), and flags the line keepalived flags.
#[test]
fn route_and_rule_lines_agree_with_keepalived() {
    if !root_and_keepalived() {
        return;
    }
    const ROUTES: &[&str] = &[
        "203.0.113.0/24 via 192.0.2.254 dev eth0",
        "src 192.0.2.1 203.0.113.0/24 dev eth0",
        "to 203.0.113.0/24 dev eth0 table 100 metric 5 scope link onlink",
        "203.0.113.0/24 dev eth0 table main mtu 1400 advmss 1360 realms 5",
        "default via 192.0.2.254 dev eth0 table 200",
        "2001:db8:1::/48 via 2001:db8::1 dev eth0 pref high",
        "unreachable 203.0.113.0/24 dev eth0",
        "203.0.113.5 dev eth0 no_track tos 4 preference 5",
        "203.0.113.0/24 via 192.0.2.1 dev eth0 via 192.0.2.2",
        "203.0.113.0/24 dev eth0 metric 4294967295",
        "203.0.113.0/24 via 192.0.2.254",
        "blackhole 203.0.113.0/24",
        "203.0.113.0/24 nexthop via 192.0.2.1 dev eth0 weight 2 nexthop via 192.0.2.2 dev eth0",
        "203.0.113.0/33 dev eth0",
        "203.0.113.0/24 via 2001:db8::1",
        "203.0.113.0/24 dev eth0 metric abc",
        "203.0.113.0/24 dev eth0 metric 4294967296",
        "203.0.113.0/24 dev eth0 foo",
        "203.0.113.0/24 dev eth0 table nosuchtable",
        "203.0.113.0/24 dev eth0 scope bogus",
        "203.0.113.0/24 dev eth0 proto static",
        "203.0.113.0/24 dev eth0 prio 5",
        "203.0.113.0/24 dev eth0 from 198.51.100.0/24",
        "via 192.0.2.1",
        "203.0.113.0/24 via bogus",
        "203.0.113.0/24 dev nosuch0",
        "203.0.113.0/24 nexthop via 192.0.2.1 dev nosuch0",
    ];
    const RULES: &[&str] = &[
        "from 192.0.2.0/24 table 100 priority 100",
        "to 203.0.113.0/24 lookup 100 preference 50",
        "to 203.0.113.0/24 lookup 100 prio 50",
        "fwmark 5 table 100 priority 10",
        "iif eth0 table 100 priority 10",
        "oif eth0 table 100 priority 10",
        "from all table 100 priority 10",
        "from 2001:db8::/32 table 100 priority 10",
        "from 192.0.2.0/24 blackhole priority 10",
        "from 192.0.2.0/24 fwmark 0x10/0xff goto 200 priority 10",
        "from 192.0.2.0/24 not table 100 priority 10 tos 0x10",
        "from 192.0.2.0/24 no_track prohibit priority 10",
        "from 192.0.2.0/24 table 100",
        "to 203.0.113.0/24 lookup 100 pref 50",
        "from 192.0.2.0/24 to 2001:db8::/32 table 100 priority 10",
        "from bogus table 100 priority 10",
        "from 192.0.2.0/24 table 100 priority x",
        "from 192.0.2.0/24 table 100 priority 10 foo",
        "iif nosuch0 table 100 priority 10",
        "oif nosuch0 table 100 priority 10",
    ];
    let ns = Ns::new("r").expect("namespace with eth0..eth3");
    let vrrpd = env!("CARGO_BIN_EXE_vrrpd");
    let dir = std::env::temp_dir().join(format!("vrrpd-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let cases = ROUTES
        .iter()
        .map(|l| ("virtual_routes", l))
        .chain(RULES.iter().map(|l| ("virtual_rules", l)));
    for (i, (block, line)) in cases.enumerate() {
        let path = dir.join(format!("r{i}.conf"));
        std::fs::write(
            &path,
            format!(
                "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n  {block} {{\n    {line}\n  }}\n}}\n"
            ),
        )
        .unwrap();
        let (k, kout) = ns.test("keepalived", &path, "r");
        let (v, vout) = ns.test(vrrpd, &path, "r");
        let flagged = vout
            .lines()
            .any(|l| l.starts_with(&format!("{}:10:", path.display())));
        if (k == 0) != (v == 0) || (k != 0 && !flagged) {
            failures.push(format!(
                "{block} `{line}`: keepalived {k}, vrrpd {v}\n{kout}\n{vout}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

/// keepalived's `vrrp_strict` rules and `accept`/`no_accept`: `vrrpd -t` agrees with
/// `keepalived -t` on each case.
#[test]
fn strict_mode_rules_agree_with_keepalived() {
    if !root_and_keepalived() {
        return;
    }
    const V: &str = "  virtual_ipaddress {\n    192.0.2.100/24\n  }\n";
    const V6: &str = "  virtual_ipaddress {\n    2001:db8::100/64\n  }\n";
    const V6LL: &str = "  virtual_ipaddress {\n    fe80::100/64\n    2001:db8::100/64\n  }\n";
    let cases: Vec<(&str, String)> = [
        ("", format!("{V}  accept\n")),
        ("", format!("{V}  no_accept\n")),
        ("vrrp_strict", V.to_string()),
        ("vrrp_strict", format!("{V}  state MASTER\n")),
        (
            "vrrp_strict",
            format!("{V}  state MASTER\n  priority 255\n"),
        ),
        ("vrrp_strict", format!("{V}  priority 255\n")),
        ("vrrp_strict", String::new()),
        ("vrrp_strict", format!("{V}  accept\n")),
        ("vrrp_strict", format!("{V}  version 3\n  accept\n")),
        ("vrrp_strict", format!("{V}  version 3\n  no_accept\n")),
        (
            "vrrp_strict",
            format!("{V}  authentication {{\n    auth_type PASS\n    auth_pass x\n  }}\n"),
        ),
        (
            "vrrp_strict",
            format!("{V}  unicast_peer {{\n    192.0.2.2\n  }}\n"),
        ),
        ("vrrp_strict", format!("{V6}  version 2\n")),
        ("vrrp_strict", format!("{V6}  version 3\n")),
        ("vrrp_strict", format!("{V6LL}  version 3\n")),
        ("", format!("{V}  strict_mode on\n  accept\n")),
        ("vrrp_strict", format!("{V}  higher_prio_send_advert\n")),
        (
            "vrrp_higher_prio_send_advert",
            format!("{V}  higher_prio_send_advert off\n"),
        ),
        ("vrrp_down_timer_adverts 101", V.to_string()),
        (
            "vrrp_down_timer_adverts 100",
            format!("{V}  down_timer_adverts 0\n"),
        ),
        ("", format!("{V}  down_timer_adverts 1\n")),
        ("vrrp_startup_delay 0", V.to_string()),
        ("vrrp_startup_delay 3600", V.to_string()),
    ]
    .into();
    let ns = Ns::new("t").expect("namespace with eth0..eth3");
    let vrrpd = env!("CARGO_BIN_EXE_vrrpd");
    let dir = std::env::temp_dir().join(format!("vrrpd-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (i, (global, body)) in cases.iter().enumerate() {
        let path = dir.join(format!("s{i}.conf"));
        let text = format!(
            "global_defs {{\n  {global}\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n{body}}}\n"
        );
        std::fs::write(&path, &text).unwrap();
        let (k, kout) = ns.test("keepalived", &path, "t");
        let (v, vout) = ns.test(vrrpd, &path, "t");
        if (k == 0) != (v == 0) {
            failures.push(format!("{text}: keepalived {k}, vrrpd {v}\n{kout}\n{vout}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

/// keepalived's process keywords (`vrrp_priority`, `checker_rt_priority`, `*_cpu_affinity`,
/// `*_rlimit_rttime`, `*_no_swap`, `max_auto_priority`, `min_auto_priority_delay`, `umask`
/// and the BFD ones vrrpd skips): `vrrpd -t` agrees with `keepalived -t` on each line, valid
/// or not. CPU ids are checked against this host's online CPUs, as keepalived checks them.
#[test]
fn process_keywords_agree_with_keepalived() {
    if !root_and_keepalived() {
        return;
    }
    let ncpus = keepalived_conf::Host::online_cpus(&keepalived_conf::RealHost::checking())
        .expect("online CPU count");
    let (last, beyond) = (ncpus - 1, ncpus);
    let mut cases: Vec<String> = [
        "vrrp_priority -20",
        "vrrp_priority 19",
        "vrrp_priority 0",
        "vrrp_priority 05",
        "vrrp_priority +5",
        "vrrp_priority 5 6",
        "vrrp_priority -21",
        "vrrp_priority 20",
        "vrrp_priority",
        "vrrp_priority x",
        "vrrp_priority 5x",
        "vrrp_priority 0x5",
        "vrrp_priority 1.5",
        "checker_priority 10",
        "checker_priority -21",
        "vrrp_no_swap",
        "checker_no_swap",
        "vrrp_rt_priority 1",
        "vrrp_rt_priority 99",
        "vrrp_rt_priority 0",
        "vrrp_rt_priority 100",
        "vrrp_rt_priority -5",
        "vrrp_rt_priority",
        "vrrp_rt_priority x",
        "checker_rt_priority 50",
        "checker_rt_priority 100",
        "checker_rt_priority",
        "vrrp_cpu_affinity 0",
        "vrrp_cpu_affinity 0 0",
        "vrrp_cpu_affinity 01",
        "vrrp_cpu_affinity",
        "vrrp_cpu_affinity x",
        "vrrp_cpu_affinity 0 x",
        "vrrp_cpu_affinity -1",
        "vrrp_cpu_affinity 0x1",
        "checker_cpu_affinity",
        "vrrp_rlimit_rttime 1",
        "vrrp_rlimit_rttime 2",
        "vrrp_rlimit_rttime 10000000",
        "vrrp_rlimit_rttime 0",
        "vrrp_rlimit_rttime 4294967296",
        "vrrp_rlimit_rttime x",
        "vrrp_rlimit_rttime",
        "vrrp_rlimit_rtime 5000",
        "checker_rlimit_rttime 1",
        "checker_rlimit_rtime 5000",
        "max_auto_priority",
        "max_auto_priority -1",
        "max_auto_priority 0",
        "max_auto_priority 99",
        "max_auto_priority 100",
        "max_auto_priority -2",
        "max_auto_priority x",
        "min_auto_priority_delay 1",
        "min_auto_priority_delay 10000000",
        "min_auto_priority_delay 0",
        "min_auto_priority_delay 10000001",
        "min_auto_priority_delay",
        "min_auto_priority_delay x",
        "umask 022",
        "umask 0x12",
        "umask 18",
        "umask 0777",
        "umask 0x1ff",
        "umask IWGRP|IWOTH",
        "umask IWGRP | IWOTH",
        "umask IRUSR",
        "umask",
        "umask foo",
        "umask IRWXO",
        "umask 01000",
        "umask 512",
        "umask 08",
        "umask IWGRP|",
        "umask IWGRP IWOTH",
        "umask 022 1",
        "umask |IWGRP",
        "umask IWGRPIWOTH",
        "bfd_priority 1",
        "bfd_no_swap",
        "bfd_rt_priority 5",
        "bfd_cpu_affinity 0",
        "bfd_rlimit_rttime 100",
        "bfd_rlimit_rtime 100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cases.extend([
        format!("vrrp_cpu_affinity {last}"),
        format!("checker_cpu_affinity 0 {last}"),
        format!("vrrp_cpu_affinity {beyond}"),
        format!("checker_cpu_affinity 0 {beyond}"),
        "vrrp_rt_priority 50\nvrrp_priority -5\nvrrp_no_swap\nchecker_priority 5\nmax_auto_priority 10\nmin_auto_priority_delay 5000\numask 077".into(),
    ]);
    let ns = Ns::new("p").expect("namespace with eth0..eth3");
    let vrrpd = env!("CARGO_BIN_EXE_vrrpd");
    let dir = std::env::temp_dir().join(format!("vrrpd-process-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (i, global) in cases.iter().enumerate() {
        let path = dir.join(format!("p{i}.conf"));
        let text = format!(
            "global_defs {{\n  {global}\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n}}\n"
        );
        std::fs::write(&path, &text).unwrap();
        let (k, kout) = ns.test("keepalived", &path, "p");
        let (v, vout) = ns.test(vrrpd, &path, "p");
        if (k == 0) != (v == 0) {
            failures.push(format!(
                "`{global}`: keepalived {k}, vrrpd {v}\n{kout}\n{vout}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

/// Every registry row, placed in its block, is a keyword `keepalived -t` knows there (no
/// "Unknown keyword"); vrrpd's own extensions are the exceptions keepalived refuses.
#[test]
fn every_registry_row_is_known_to_keepalived_in_its_block() {
    if !root_and_keepalived() {
        return;
    }
    let ns = Ns::new("k").expect("namespace with eth0..eth3");
    let dir = std::env::temp_dir().join(format!("vrrpd-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // How each block is opened.
    let head = |block: &str| match block {
        "vrrp_instance" => "vrrp_instance VI_X".to_string(),
        "vrrp_script" | "vrrp_sync_group" | "vrrp_track_process" | "vrrp_track_file"
        | "track_file" | "bfd_instance" | "track_group" => format!("{block} N"),
        "virtual_server" => "virtual_server 192.0.2.10 80".into(),
        "real_server" => "real_server 192.0.2.11 80".into(),
        other => other.to_string(),
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    for ctx in keepalived_conf::build::contexts() {
        let blocks: Vec<&str> = ctx.path.split('/').filter(|b| !b.is_empty()).collect();
        for row in &ctx.rows {
            let extension = matches!(row.status, keepalived_conf::registry::Status::Extension(_));
            let mut text: String = blocks.iter().map(|b| format!("{} {{\n", head(b))).collect();
            text += &format!("  {}\n", row.name);
            text += &"}\n".repeat(blocks.len());
            let path = dir.join(format!("k{checked}.conf"));
            std::fs::write(&path, &text).unwrap();
            let (_, out) = ns.test("keepalived", &path, "k");
            let unknown = out.contains(&format!("Unknown keyword '{}'", row.name));
            if unknown != extension {
                failures.push(format!(
                    "{}: `{}` unknown to keepalived: {unknown}\n{out}",
                    ctx.path, row.name
                ));
            }
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked > 450, "only {checked} rows");
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}
