//! keepalived.conf loading: model values, diagnostics positions, includes, never-panic.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keepalived_conf::model::{Authentication, InitialState, Scope};
use keepalived_conf::{load, load_str, Flag, LoadOptions, Severity};
use vrrp_proto::packet::Version;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vrrpd-cfg-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const TWO: &str = r#"! realistic pair
global_defs {
   router_id lb1
   vrrp_garp_master_delay 3
   vrrp_garp_master_repeat 2
   vrrp_garp_interval 0.001
   notification_email { ops@example.com }
}

vrrp_instance VI_4 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    nopreempt            # cleared by state MASTER, with a warning
    preempt_delay 2.5    # the same
    authentication {
        auth_type PASS
        auth_pass "s3cret"
    }
    virtual_ipaddress {
        192.0.2.10/24 brd 192.0.2.255 dev eth0 scope global label eth0:vip
        192.0.2.11
    }
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    garp_master_repeat 4
}
vrrp_instance VI_6
{
    interface eth1
    virtual_router_id 52
    version 3
    advert_int 0.25
    virtual_ipaddress { 2001:db8::10/64 scope link }
    garp_lower_prio_delay 7
    lower_prio_no_advert
}
"#;

#[test]
fn realistic_two_instance_config() {
    let (cfg, diags) = load_str(TWO, Path::new("ka.conf"));
    assert!(
        diags.iter().all(|d| d.severity == Severity::Warning),
        "{diags:?}"
    );
    let mut lines: Vec<u32> = diags.iter().map(|d| d.line).collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![16, 17, 38],
        "nopreempt and preempt_delay cleared, the IPv6 address's scope ignored"
    );
    assert_eq!(cfg.global.mail.notification_email, ["ops@example.com"]);

    assert_eq!(cfg.global.router_id.as_deref(), Some("lb1"));
    assert_eq!(cfg.global.garp.master_delay, Duration::from_secs(3));
    assert_eq!(cfg.global.garp.lower_prio_delay, Duration::from_secs(3));
    assert_eq!(cfg.instances.len(), 2);

    let a = &cfg.instances[0];
    assert_eq!(a.name, "VI_4");
    assert_eq!(a.state, InitialState::Master);
    assert_eq!(a.interface, "eth0");
    assert_eq!(a.virtual_router_id, 51);
    assert_eq!(a.priority, 150);
    assert_eq!(a.advert_int, 100);
    assert_eq!(a.version, Version::V2);
    assert!(!a.nopreempt);
    assert_eq!(a.preempt_delay, Duration::ZERO);
    assert_eq!(
        a.authentication,
        Some(Authentication::Pass("s3cret".into()))
    );
    assert_eq!(a.virtual_ipaddress.len(), 2);
    let v = &a.virtual_ipaddress[0];
    assert_eq!(v.addr, "192.0.2.10".parse::<IpAddr>().unwrap());
    assert_eq!(v.prefix_len, 24);
    assert_eq!(v.broadcast, Some("192.0.2.255".parse().unwrap()));
    assert_eq!(v.dev.as_deref(), Some("eth0"));
    assert_eq!(v.scope, Scope::Global);
    assert_eq!(v.label.as_deref(), Some("eth0:vip"));
    assert_eq!(a.virtual_ipaddress[1].prefix_len, 32);
    assert_eq!(a.src_ip, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(
        a.unicast_peers,
        vec!["192.0.2.2".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(a.unicast_ttl, 255);
    assert_eq!(
        a.garp.master_delay,
        Duration::from_secs(3),
        "inherited from global_defs"
    );
    assert_eq!(a.garp.master_repeat, 4);
    assert_eq!(
        a.garp.lower_prio_repeat, 4,
        "follows the instance's master repeat"
    );
    assert_eq!(a.garp.interval, Duration::from_millis(1));

    let b = &cfg.instances[1];
    assert_eq!(b.state, InitialState::Backup);
    assert_eq!(b.priority, 100);
    assert_eq!(b.version, Version::V3);
    assert_eq!(b.advert_int, 25);
    assert_eq!(b.virtual_ipaddress[0].prefix_len, 64);
    // keepalived ignores a scope on an IPv6 address (with its error).
    assert_eq!(b.virtual_ipaddress[0].scope, Scope::Global);
    assert_eq!(b.garp.lower_prio_delay, Duration::from_secs(7));
    assert!(b.garp.lower_prio_no_advert);
    assert_eq!(b.source.as_ref().map(|s| s.line), Some(32));
}

#[test]
fn master_without_priority_is_owner() {
    let (cfg, _) = load_str(
        "vrrp_instance A { state MASTER\ninterface e\nvirtual_router_id 1 }",
        Path::new("x"),
    );
    assert_eq!(cfg.instances[0].priority, 255);
}

#[test]
fn several_errors_with_positions_in_one_run() {
    let src = "vrrp_instance A {\n  interface eth0\n  virtual_router_id 256\n  priorty 20\n  virtual_ipaddress {\n    192.0.2.1/24\n    2001:db8::1\n  }\n}\nvrrp_instance B {\n  virtual_router_id 3\n  authentication {\n    auth_type AH\n  }\n}\nvrrp_scripts x { }\n";
    let (cfg, diags) = load_str(src, Path::new("bad.conf"));
    let got: Vec<(Severity, Flag, u32, u32)> = diags
        .iter()
        .map(|d| (d.severity, d.flag, d.line, d.col))
        .collect();
    use Severity::{Error, Warning};
    assert_eq!(
        got,
        vec![
            // keepalived logs these and goes on (-t fails), as vrrpd now does.
            (Warning, Flag::Config, 3, 21), // VRID out of range, at the value
            (Warning, Flag::Config, 4, 3),  // unknown keyword
            (Warning, Flag::Config, 7, 5),  // other family, at the address: skipped
            (Warning, Flag::Config, 16, 1), // unknown top-level block
            (Warning, Flag::Config, 16, 16), // its `{`, as keepalived reads it
            (Warning, Flag::Config, 16, 18), // its `}`: one more unknown keyword
            // keepalived's VRRP process stops on these.
            (Error, Flag::Config, 1, 1),  // A: no VRID after all
            (Error, Flag::Config, 10, 1), // B: no interface
            // B: keepalived ignores authentication without a password.
            (Warning, Flag::Config, 10, 1), // B: no VIP (keepalived warns too)
            (Warning, Flag::Config, 12, 3),
        ],
        "{diags:#?}"
    );
    assert_eq!(diags[1].help.as_deref(), Some("did you mean `priority`?"));
    assert_eq!(
        diags[3].help.as_deref(),
        Some("did you mean `vrrp_script`?")
    );
    assert!(diags[0].message.contains("VRID '256'"));
    assert!(diags[9].message.contains("no password given"));
    assert!(cfg.instances.is_empty());
}

#[test]
fn partly_implemented_blocks_are_modelled_with_a_warning() {
    // vrrp_script / track_script are implemented (no warning); virtual_server is partial.
    let src = "vrrp_script chk { script \"x\"\n interval 2 }\nvirtual_server 192.0.2.1 80 {\n protocol TCP\n lb_kind DR\n lvs_sched rr\n real_server 192.0.2.2 80 { weight 1 }\n}\nvrrp_instance A { interface e\nvirtual_router_id 9\ntrack_script { chk }\nvirtual_ipaddress { 192.0.2.1 } }";
    let (cfg, diags) = load_str(src, Path::new("x.conf"));
    let got: Vec<(Severity, u32)> = diags.iter().map(|d| (d.severity, d.line)).collect();
    // virtual_server, protocol, lb_kind and lvs_sched are partial.
    assert_eq!(
        got,
        vec![
            (Severity::Warning, 3),
            (Severity::Warning, 4),
            (Severity::Warning, 5),
            (Severity::Warning, 6)
        ]
    );
    assert!(diags
        .iter()
        .all(|d| d.message.contains("partly implemented") && !d.keepalived_flags()));
    assert_eq!(cfg.instances.len(), 1);
    // Modelled all the same.
    assert_eq!(cfg.scripts[0].name, "chk");
    assert_eq!(cfg.scripts[0].interval, std::time::Duration::from_secs(2));
    assert_eq!(cfg.virtual_servers[0].service.real_servers[0].weight, 1);
    assert_eq!(cfg.instances[0].track_scripts[0].name, "chk");
}

#[test]
fn include_with_glob_and_loop_detection() {
    let d = tmpdir("inc");
    std::fs::create_dir_all(d.join("conf.d")).unwrap();
    std::fs::write(
        d.join("main.conf"),
        "global_defs { router_id r }\ninclude conf.d/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        d.join("conf.d/a.conf"),
        "vrrp_instance A { interface e\nvirtual_router_id 1\nvirtual_ipaddress { 192.0.2.1 } }\n",
    )
    .unwrap();
    std::fs::write(d.join("conf.d/b.conf"), "vrrp_instance B {\n interface e\n virtual_router_id 2\n priorty 1\n virtual_ipaddress { 192.0.2.2 }\n}\n").unwrap();
    // An unknown keyword is logged and skipped, in the included file's own line and column.
    let (_, diags) = load(&d.join("main.conf"), &LoadOptions::default()).unwrap();
    assert_eq!(diags.len(), 1);
    assert_eq!(*diags[0].file, *d.join("conf.d/b.conf"));
    assert_eq!((diags[0].line, diags[0].col), (4, 2));
    assert!(
        diags.render().contains("4 |  priorty 1\n"),
        "{}",
        diags.render()
    );

    std::fs::write(d.join("conf.d/b.conf"), "vrrp_instance B { interface e\nvirtual_router_id 2\nvirtual_ipaddress { 192.0.2.2 } }\ninclude ../main.conf\n").unwrap();
    // keepalived reads the loop until it runs out of file descriptors and runs what it
    // read first: everything defined again is reported where it stands, and skipped.
    let (cfg, diags) = load(&d.join("main.conf"), &LoadOptions::default())
        .expect("an include loop is logged, not refused");
    let names: Vec<&str> = cfg.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, vec!["A", "B"]);
    let looped = diags
        .iter()
        .find(|d| d.message.contains("include loop"))
        .expect("loop reported");
    assert_eq!((looped.line, looped.col), (4, 9));
    assert!(!looped.keepalived_flags() && !looped.is_error());
    let again = diags
        .iter()
        .find(|d| d.message == "vrrp instance A already defined")
        .expect("{diags:?}");
    assert!(
        again.file.ends_with("conf.d/a.conf"),
        "{}",
        again.file.display()
    );
    assert!(again.keepalived_flags() && !again.is_error());

    std::fs::write(
        d.join("conf.d/b.conf"),
        "vrrp_instance B { interface e\nvirtual_router_id 2\nvirtual_ipaddress { 192.0.2.2 } }\n",
    )
    .unwrap();
    let (cfg, warns) = load(&d.join("main.conf"), &LoadOptions::default()).unwrap();
    assert!(warns.is_empty());
    let names: Vec<&str> = cfg.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, vec!["A", "B"], "glob matches in sorted order");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn huge_timers_are_reported_not_panics() {
    // Found by the config_parse fuzz target: a TIMER too big for a Duration.
    for v in ["1e300", "inf", "NaN", "-1", "18446744073709551616"] {
        let src = format!(
            "virtual_server 192.0.2.1 80 {{\n delay_loop {v}\n real_server 192.0.2.2 80 {{\n  warmup {v}\n  TCP_CHECK {{\n   connect_timeout {v}\n  }}\n }}\n}}\nvrrp_script s {{\n script x\n interval {v}\n}}\n"
        );
        let (_, diags) = load_str(&src, Path::new("t.conf"));
        let mut lines: Vec<u32> = diags
            .iter()
            .filter(|d| d.message.contains(v))
            .map(|d| d.line)
            .collect();
        // Each value is said twice, as keepalived says it: its number reader's words, then
        // the handler's.
        lines.dedup();
        assert_eq!(lines, [2, 4, 6, 12], "{v}: {diags:#?}");
    }
}

proptest::proptest! {
    #[test]
    fn never_panics(s in "[ -~\n\t{}\"#!\\\\]{0,400}") {
        let _ = load_str(&s, Path::new("p.conf"));
    }

    #[test]
    fn never_panics_on_keyword_soup(words in proptest::collection::vec(
        proptest::sample::select(vec!["vrrp_instance", "X", "{", "}", "\n", "interface", "virtual_router_id",
            "300", "1", "virtual_ipaddress", "192.0.2.1/33", "2001:db8::1", "advert_int", "0.001", "authentication",
            "auth_type", "AH", "PASS", "global_defs", "vrrp_version", "3", "include", "\\\n", "\"", "brd", "dev"]),
        0..80)) {
        let _ = load_str(&words.join(" "), Path::new("p.conf"));
    }

    #[test]
    fn never_panics_in_the_preprocessor(words in proptest::collection::vec(
        proptest::sample::select(vec!["$A=", "$A", "${A}", "$B=${A}${A}", "@x", "@^x", "~SEQ(A,1,3)",
            "~SEQx(A,0x10,-1,0x1)", "~LST({A,B},{1,2},{3,4})", "~LST(A", "~SEQ(A,0,0,5)", "${_RANDOM 9 1}",
            "${_ENV HOME}", "${_PWD}", "${_HASH}", "'q", "\"", "\\", "\n", "{", "}", "vrrp_instance", "V",
            "priority", "virtual_server", "real_server", "1.2.3.4", "80", "HTTP_GET", "url", "path", "include {a,b}"]),
        0..60)) {
        let _ = load_str(&words.join(" "), Path::new("/nonexistent/p.conf"));
        let _ = load_str(&words.join("\n"), Path::new("/nonexistent/p.conf"));
    }
}

#[test]
fn notify_fifos_and_script_user_with_group() {
    let src = "global_defs {\n notify_fifo /run/kf\n vrrp_notify_fifo /run/vf\n script_user nobody nogroup\n enable_script_security\n}\nvrrp_instance A { interface e\nvirtual_router_id 9\nnotify \"/bin/n x\"\nvirtual_ipaddress { 192.0.2.1 } }";
    let (cfg, diags) = load_str(src, Path::new("x.conf"));
    assert!(
        diags.iter().all(|d| d.severity != Severity::Error),
        "{diags:#?}"
    );
    let g = &cfg.global;
    let path = |f: &Option<keepalived_conf::model::NotifyFifo>| f.as_ref().map(|f| f.path.clone());
    assert_eq!(path(&g.notify_fifo), Some("/run/kf".into()));
    assert_eq!(path(&g.vrrp_notify_fifo), Some("/run/vf".into()));
    assert_eq!(g.script_user.as_deref(), Some("nobody nogroup"));
    assert!(g.script_security);
    assert_eq!(cfg.instances[0].notify.any.as_deref(), Some("/bin/n x"));
}

/// The FIFO keywords with their users and scripts (either order), the priority-change
/// default and its per-instance override, `notify_master_rx_lower_pri`; a script without
/// its FIFO is a warning. The model survives TOML.
#[test]
fn fifo_scripts_and_instance_events() {
    let src = "global_defs {\n lvs_notify_fifo_script \"/bin/r -v\" nobody nogroup\n \
        lvs_notify_fifo /run/lf nobody\n notify_fifo /run/kf\n notify_fifo_script /bin/r\n \
        vrrp_notify_fifo_script /bin/r\n vrrp_notify_priority_changes\n}\n\
        vrrp_instance A { interface e\nvirtual_router_id 9\nnotify_master_rx_lower_pri \"/bin/rx a b\"\n\
        virtual_ipaddress { 192.0.2.1 } }\n\
        vrrp_instance B { interface e\nvirtual_router_id 10\nnotify_priority_changes off\n\
        virtual_ipaddress { 192.0.2.2 } }";
    let (cfg, diags) = load_str(src, Path::new("x.conf"));
    assert!(
        diags.iter().all(|d| d.severity != Severity::Error),
        "{diags:#?}"
    );
    let warned: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    assert_eq!(
        warned,
        [(
            6,
            "`vrrp_notify_fifo_script` without `vrrp_notify_fifo`: ignored"
        )]
    );
    let g = &cfg.global;
    let lvs = g.lvs_notify_fifo.as_ref().unwrap();
    assert_eq!(lvs.path, Path::new("/run/lf"));
    assert_eq!(lvs.owner.as_deref(), Some("nobody"));
    assert_eq!(lvs.script.as_deref(), Some("/bin/r -v"));
    assert_eq!(lvs.script_user.as_deref(), Some("nobody nogroup"));
    let all = g.notify_fifo.as_ref().unwrap();
    assert_eq!(
        (all.owner.as_deref(), all.script.as_deref()),
        (None, Some("/bin/r"))
    );
    assert_eq!(g.vrrp_notify_fifo, None);
    assert!(g.vrrp_notify_priority_changes);
    let (a, b) = (&cfg.instances[0], &cfg.instances[1]);
    assert!(
        a.notify_priority_changes,
        "from vrrp_notify_priority_changes"
    );
    assert!(!b.notify_priority_changes, "instance override");
    assert_eq!(a.notify.master_rx_lower_pri.as_deref(), Some("/bin/rx a b"));
    let toml = keepalived_conf::toml::to_string(&cfg).unwrap();
    let back = keepalived_conf::toml::from_str(&toml, Path::new("x.toml")).unwrap();
    assert_eq!(back.global, cfg.global);
    assert_eq!(back.instances[0].notify, a.notify);
    assert!(
        back.instances[0].notify_priority_changes && !back.instances[1].notify_priority_changes
    );
}

/// `lvs_sync_daemon` as keepalived 2.2.7 reads it: options in any order, the sync id
/// defaulting to the instance's virtual_router_id, the old positional form, and a missing
/// instance clearing the setting (with keepalived's message).
#[test]
fn lvs_sync_daemon_options_defaults_and_errors() {
    let conf = |line: &str| {
        format!(
            "global_defs {{\n  {line}\n}}\nvrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n}}\n"
        )
    };
    let load = |line: &str| {
        let (cfg, diags) = load_str(&conf(line), Path::new("k.conf"));
        let msgs: Vec<String> = diags.iter().map(|d| d.message.clone()).collect();
        (cfg.global.lvs_sync_daemon, msgs)
    };
    let (s, msgs) = load("lvs_sync_daemon eth1 VI_1");
    let s = s.expect("set");
    assert!(msgs.is_empty(), "{msgs:?}");
    assert_eq!(
        (
            s.interface.as_str(),
            s.instance.as_str(),
            s.syncid,
            s.port,
            s.ttl
        ),
        ("eth1", "VI_1", 51, 8848, 1),
        "the sync id is the instance's VRID"
    );
    assert_eq!((s.maxlen, s.group), (None, None));
    let (s, msgs) =
        load("lvs_sync_daemon eth1 inst VI_1 id 7 maxlen 1400 port 9000 ttl 3 group 239.1.1.1");
    let s = s.expect("set");
    assert!(msgs.is_empty(), "{msgs:?}");
    assert_eq!(
        (s.syncid, s.maxlen, s.port, s.ttl, s.group),
        (
            7,
            Some(1400),
            9000,
            3,
            Some("239.1.1.1".parse::<IpAddr>().unwrap())
        )
    );
    let (s, msgs) = load("lvs_sync_daemon eth1 VI_1 9");
    assert_eq!(s.expect("set").syncid, 9);
    assert_eq!(
        msgs,
        ["Please use keyword \"id\" before lvs_sync_daemon SYNCID"]
    );
    let (s, msgs) = load("lvs_sync_daemon eth1 VI_1 group 192.0.2.1 ttl 0 bogus 1");
    assert_eq!(s.expect("set").group, None);
    assert_eq!(
        msgs,
        [
            "lvs_sync_daemon group address 192.0.2.1 is not multicast - ignoring",
            "Invalid lvs_sync_daemon ttl (0) - ignoring",
            "Unknown option bogus specified for lvs_sync_daemon",
            "Unknown option 1 specified for lvs_sync_daemon",
        ]
    );
    let (s, msgs) = load("lvs_sync_daemon eth1 VI_9");
    assert_eq!(s, None);
    assert_eq!(
        msgs,
        ["Unable to find vrrp instance VI_9 for lvs_syncd - clearing lvs_syncd config"]
    );
}

#[test]
fn duplicate_vrids_refused_as_keepalived_does() {
    use keepalived_conf::FakeHost;
    let inst = |name: &str, vrid: u8, extra: &str| {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n{extra} virtual_ipaddress {{\n  192.0.2.{vrid}\n }}\n}}\n"
        )
    };
    let unicast = |src: &str, peer: &str| format!("{src} unicast_peer {{\n  {peer}\n }}\n");
    let host = FakeHost::new().with_address("eth0", "192.0.2.1".parse().unwrap());
    let opts = on_host(host);
    let errors = |text: String| -> Vec<(u32, String)> {
        let (_, diags) = keepalived_conf::load_str_with(&text, Path::new("d.conf"), &opts);
        diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| (d.line, d.message.clone()))
            .collect()
    };
    // Multicast: same VRID, family and interface.
    let both = inst("A", 51, "") + &inst("B", 51, "");
    assert_eq!(
        errors(both),
        [(
            8,
            "A and B both use VRID 51 with IPv4 on interface eth0".to_string()
        )]
    );
    assert!(errors(inst("A", 51, "") + &inst("B", 52, "")).is_empty());
    // Unicast and multicast are separate VRID spaces.
    let mixed = inst("A", 51, "") + &inst("B", 51, &unicast("", "192.0.2.2"));
    assert!(errors(mixed).is_empty());
    // Unicast: a shared peer from the same source (the interface's when none is given).
    let shared = inst("A", 51, &unicast("", "192.0.2.2"))
        + &inst(
            "B",
            51,
            &unicast(" unicast_src_ip 192.0.2.1\n", "192.0.2.2"),
        );
    assert_eq!(
        errors(shared),
        [(1, "(A) duplicate VRID conflict with B VRID 51".to_string())]
    );
    let distinct_peers =
        inst("A", 51, &unicast("", "192.0.2.2")) + &inst("B", 51, &unicast("", "192.0.2.3"));
    assert!(errors(distinct_peers).is_empty());
    let other_source = inst("A", 51, &unicast("", "192.0.2.2"))
        + &inst(
            "B",
            51,
            &unicast(" unicast_src_ip 192.0.2.9\n", "192.0.2.2"),
        );
    assert!(errors(other_source).is_empty());
}

#[test]
fn ah_authentication_as_keepalived_reads_it() {
    let inst = |extra: &str, auth: &str| {
        format!(
            "vrrp_instance A {{\n interface eth0\n state MASTER\n priority 100\n virtual_router_id 7\n{extra} authentication {{\n  {auth}\n }}\n virtual_ipaddress {{\n  192.0.2.7\n }}\n}}\n"
        )
    };
    let load = |text: String| load_str(&text, Path::new("ah.conf"));
    // VRRPv2, IPv4: AH keyed with the password (its first 8 characters go on the wire), and
    // an initial MASTER starts as BACKUP (it needs the peer's sequence number first).
    let (cfg, diags) = load(inst("", "auth_type AH\n  auth_pass 0123456789"));
    let a = &cfg.instances[0];
    assert_eq!(
        a.authentication,
        Some(Authentication::Ah("0123456789".into()))
    );
    assert_eq!(a.authentication.as_ref().unwrap().key(), *b"01234567");
    assert_eq!(a.state, InitialState::Backup);
    let warnings: Vec<(u32, &str)> = diags.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        warnings,
        [
            (8, "Truncating auth_pass to 8 characters"),
            (
                6,
                "(A) Initial state master is incompatible with AH authentication - clearing"
            ),
        ]
    );
    assert!(diags.iter().all(|d| d.severity == Severity::Warning));
    // VRRPv3 ignores authentication, as keepalived does.
    let (cfg, _) = load(inst(" version 3\n", "auth_type AH\n  auth_pass pw"));
    assert_eq!(cfg.instances[0].authentication, None);
    assert_eq!(cfg.instances[0].state, InitialState::Master);
}

/// A block written without its name: keepalived 2.2.7 skips a nameless instance or sync
/// group and runs (`-t` exit 5), but stops reading at any other nameless block, as at any
/// missing parameter (`-t` exit 2, the daemon refuses the file).
#[test]
fn nameless_blocks_as_keepalived_reads_them() {
    let inst = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  192.0.2.51\n }\n}\n";
    for (block, refused) in [
        ("vrrp_instance", false),
        ("vrrp_sync_group", false),
        ("vrrp_script", true),
        ("vrrp_track_process", true),
        ("vrrp_track_file", true),
        ("track_file", true),
    ] {
        let text = format!("{block} {{\n interval 3\n}}\n{inst}");
        let (_, diags) = load_str(&text, Path::new("n.conf"));
        let at_block: Vec<_> = diags.iter().filter(|d| d.line == 1).collect();
        assert!(!at_block.is_empty(), "{block}: line 1 is flagged");
        let abort = at_block
            .iter()
            .any(|d| d.severity == Severity::Error && d.flag == Flag::Abort);
        assert_eq!(abort, refused, "{block}: {at_block:?}");
    }
}

#[test]
fn an_instance_name_of_several_words_is_skipped_as_keepalived_skips_it() {
    // An ERB or Jinja name left unrendered: keepalived wants exactly one word.
    for name in ["<%= spec.name %>", "VI_1 extra", "{{ name }}"] {
        let text = format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {{\n  192.0.2.51\n }}\n}}\n"
        );
        let (cfg, diags) = load_str(&text, Path::new("n.conf"));
        assert!(cfg.instances.is_empty(), "{name}: {:?}", cfg.instances);
        assert!(
            diags.iter().all(|d| d.severity == Severity::Warning),
            "{name}: the file still loads: {diags:?}"
        );
        assert!(
            flagged(&diags).contains(&(1, "vrrp_instance must have a name".into())),
            "{name}: {diags:?}"
        );
    }
}

#[test]
fn a_keyword_left_without_its_value_is_read_as_keepalived_reads_it() {
    let inst = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  192.0.2.51\n }\n}\n";
    // keepalived checks these lines, logs (`-t` exits 5) or says nothing, and goes on.
    for (line, said) in [
        ("router_id", Some("routerid name missing - ignoring")),
        (
            "notification_email_from",
            Some("emailfrom missing - ignoring"),
        ),
        ("script_user", Some("No script username specified")),
        (
            "vrrp_notify_fifo",
            Some("No vrrp_notify_fifo name specified"),
        ),
        (
            "default_interface",
            Some("default_interface requires interface name"),
        ),
        ("startup_script", Some("startup script missing")),
        ("smtp_helo_name", None),
    ] {
        let (_, diags) = load_str(
            &format!("global_defs {{\n {line}\n}}\n{inst}"),
            Path::new("m.conf"),
        );
        assert!(
            diags.iter().all(|d| d.severity == Severity::Warning),
            "{line}: the file loads: {diags:?}"
        );
        let at: Vec<_> = flagged(&diags)
            .into_iter()
            .filter(|(l, _)| *l == 2)
            .collect();
        match said {
            Some(m) => assert_eq!(at, [(2, m.to_string())], "{line}"),
            None => assert!(at.is_empty(), "{line}: {at:?}"),
        }
    }
    // One read unchecked stops keepalived reading the file: vrrpd refuses it.
    for line in ["vrrp_garp_master_delay", "smtp_connect_timeout"] {
        let (_, diags) = load_str(
            &format!("global_defs {{\n {line}\n}}\n{inst}"),
            Path::new("m.conf"),
        );
        assert!(
            diags
                .iter()
                .any(|d| d.line == 2 && d.flag == Flag::Abort && d.severity == Severity::Error),
            "{line}: {diags:?}"
        );
    }
}

#[test]
fn a_preempt_delay_that_cannot_apply_is_cleared_with_keepalived_warning() {
    let inst = |extra: &str| {
        format!("vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n priority 100\n preempt_delay 30\n{extra}\n virtual_ipaddress {{\n  192.0.2.51\n }}\n}}\n")
    };
    for (extra, said) in [
        (
            " state MASTER",
            Some(
                "(VI_1) Warning - preempt delay will not work with initial state MASTER - clearing",
            ),
        ),
        (
            " nopreempt",
            Some("(VI_1) preempt_delay is incompatible with nopreempt mode - resetting"),
        ),
        (
            " strict_mode",
            Some("(VI_1) preempt_delay is incompatible with strict mode - resetting"),
        ),
        (" state BACKUP", None),
    ] {
        let (cfg, diags) = load_str(&inst(extra), Path::new("p.conf"));
        let at: Vec<_> = flagged(&diags)
            .into_iter()
            .filter(|(l, _)| *l == 5)
            .collect();
        let delay = cfg.instances[0].preempt_delay;
        match said {
            Some(m) => {
                assert_eq!(at, [(5, m.to_string())], "{extra}");
                assert_eq!(delay, Duration::ZERO, "{extra}");
            }
            None => {
                assert!(at.is_empty(), "{extra}: {at:?}");
                assert_eq!(delay, Duration::from_secs(30));
            }
        }
    }
}

#[test]
fn smtp_server_by_name_must_resolve_and_addresses_drop_their_prefix() {
    use keepalived_conf::FakeHost;
    let mut host = FakeHost::new().with_interfaces(&["eth0"]);
    host.names.insert("relay.example.org".into());
    let opts = on_host(host);
    let text = "global_defs {\n smtp_server relay.example.org\n}\nglobal_defs {\n smtp_server nowhere.example.invalid 2525\n}\n\
        vrrp_instance A {\n interface eth0\n virtual_router_id 9\n unicast_src_ip 192.0.2.1/24\n unicast_peer {\n  192.0.2.2/24\n }\n virtual_ipaddress {\n  192.0.2.9/24\n }\n}\n";
    let (cfg, diags) = keepalived_conf::load_str_with(text, Path::new("m.conf"), &opts);
    let got: Vec<(u32, &str)> = diags.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        got,
        [(5, "Invalid smtp server nowhere.example.invalid 2525")]
    );
    // The first, resolvable, stays.
    assert_eq!(
        cfg.global
            .mail
            .smtp_server
            .as_ref()
            .map(|s| s.host.as_str()),
        Some("relay.example.org")
    );
    // keepalived reads a socket address without its prefix length.
    let a = &cfg.instances[0];
    assert_eq!(a.src_ip, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(a.unicast_peers, ["192.0.2.2".parse::<IpAddr>().unwrap()]);
}

/// A notify keyword written twice (a copied `notify_master` line meant as `notify_backup`):
/// keepalived 2.2.7 keeps the first script and reports the second on its line.
#[test]
fn repeated_notify_script_keeps_the_first() {
    let text = "vrrp_sync_group SG {\n group {\n  VI_1\n }\n notify_fault \"/bin/true f1\"\n notify_fault /bin/false\n}\n\
        vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n notify_master \"/bin/true master\"\n notify_master \"/bin/true backup\"\n notify_backup /bin/true\n virtual_ipaddress {\n  192.0.2.51\n }\n}\n";
    let (cfg, diags) = load_str(text, Path::new("n.conf"));
    let notes: Vec<(u32, &str)> = diags
        .iter()
        .filter(|d| d.message.contains("already specified"))
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    assert_eq!(
        notes,
        [
            (
                6,
                "vrrp group SG: notify_fault script already specified - ignoring /bin/false"
            ),
            (
                12,
                "(VI_1) notify_master script already specified - ignoring /bin/true backup"
            ),
        ]
    );
    assert!(diags
        .iter()
        .filter(|d| d.message.contains("already specified"))
        .all(|d| d.severity == Severity::Warning && d.flag == Flag::Config));
    let i = &cfg.instances[0];
    assert_eq!(i.notify.master.as_deref(), Some("/bin/true master"));
    assert_eq!(i.notify.backup.as_deref(), Some("/bin/true"));
    assert_eq!(
        cfg.sync_groups[0].notify.fault.as_deref(),
        Some("/bin/true f1")
    );
}

/// keepalived reports an empty `notification_email` block once it has read it: on its `}`.
#[test]
fn empty_notification_email_is_reported_on_its_closing_brace() {
    let text =
        "global_defs {\n notification_email {\n }\n}\nglobal_defs {\n notification_email { }\n}\n";
    let (_, diags) = load_str(text, Path::new("e.conf"));
    let lines: Vec<u32> = diags
        .iter()
        .filter(|d| d.message == "Warning - empty notification_email block")
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, [3, 6]);
}

/// Lines of the diagnostics keepalived's `-t` would count, with their messages.
fn flagged(d: &[keepalived_conf::Diagnostic]) -> Vec<(u32, String)> {
    d.iter()
        .filter(|d| d.keepalived_flags() && !d.message.contains("No VIP specified"))
        .map(|d| (d.line, d.message.clone()))
        .collect()
}

#[test]
fn unknown_block_in_an_instance_ends_the_instance_as_keepalived_reads_it() {
    // keepalived drops the `{` of the unknown keyword, reads `foo 1` in the instance, and its
    // `}` closes the instance: priority and the VIP block are then read at the top level.
    let text = "vrrp_instance V {\n interface e\n virtual_router_id 1\n extra {\n  foo 1\n }\n priority 150\n virtual_ipaddress {\n  192.0.2.1\n }\n}\nvrrp_instance W {\n interface e\n virtual_router_id 2\n priority 1 {\n }\n}\n";
    let (cfg, d) = load_str(text, Path::new("x"));
    let v = &cfg.instances[0];
    assert_eq!((v.name.as_str(), v.priority), ("V", 100));
    assert!(v.virtual_ipaddress.is_empty());
    let lines: Vec<u32> = flagged(&d).iter().map(|f| f.0).collect();
    // extra, its `{`, foo; priority, virtual_ipaddress, its `{`, the address, two `}`s; the
    // `{` after a keyword that takes no block, whose `}` then closes W, leaving W's own `}`
    // over (keepalived 2.2.7 reports exactly these).
    assert_eq!(
        lines,
        [4, 4, 5, 7, 8, 8, 9, 10, 11, 15, 17],
        "{:?}",
        flagged(&d)
    );
    let w = &cfg.instances[1];
    assert_eq!((w.name.as_str(), w.priority), ("W", 1));
    assert!(d.iter().all(|d| !d.is_error()), "{d:?}");
}

#[test]
fn duplicate_instance_is_skipped_as_keepalived_skips_it() {
    let text = "vrrp_instance V {\n interface e\n virtual_router_id 1\n}\nvrrp_instance V {\n interface e\n virtual_router_id 2\n}\n";
    let (cfg, d) = load_str(text, Path::new("x"));
    assert_eq!(cfg.instances.len(), 1);
    assert_eq!(cfg.instances[0].virtual_router_id, 1);
    assert_eq!(
        flagged(&d),
        [(5, "vrrp instance V already defined".to_string())]
    );
}

#[test]
fn lines_are_read_as_keepalived_reads_them() {
    // NUL ends a line; a line over 1023 bytes goes on as a new line at byte 1024 (here a
    // comment, so the rest is read as keywords); CRLF is a line end.
    let long = format!("# {}unknown_word 1\r\n", "x".repeat(1021));
    let text = format!(
        "vrrp_instance V {{\r\n interface e\r\n virtual_router_id 1\0 junk\r\n{long} priority 7\r\n}}"
    );
    let (cfg, d) = load_str(&text, Path::new("x"));
    assert_eq!(cfg.instances[0].virtual_router_id, 1);
    assert_eq!(cfg.instances[0].priority, 7);
    let unknown = d
        .iter()
        .find(|d| d.message.starts_with("Unknown keyword 'unknown_word'"))
        .expect("{d:?}");
    assert_eq!((unknown.line, unknown.col), (4, 1024));
    assert!(d.iter().all(|d| !d.is_error()), "{d:?}");
}

#[test]
fn a_command_is_its_first_word_as_keepalived_reads_it() {
    // keepalived runs `/bin/sh` alone for the unquoted script (measured: it succeeds where the
    // quoted one fails), and reads the word after an unquoted notify command as a user.
    let text = "vrrp_script a {\n script /bin/sh -c \"exit 1\"\n}\nvrrp_script b {\n script \"/bin/sh -c 'exit 1'\"\n}\nvrrp_instance V {\n interface e\n virtual_router_id 1\n notify_master /bin/touch /tmp/x\n notify_backup \"/bin/touch /tmp/y\"\n notify_fault \"/bin/touch /tmp/z\" root\n}\n";
    let host = keepalived_conf::host::FakeHost::new()
        .with_interfaces(&["e"])
        .with_programs(&["/bin/sh", "/bin/touch"]);
    let opts = on_host(host);
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("x"), &opts);
    let cmds: Vec<&str> = cfg.scripts.iter().map(|s| s.script.as_str()).collect();
    assert_eq!(cmds, ["/bin/sh", "/bin/sh -c 'exit 1'"]);
    let n = &cfg.instances[0].notify;
    assert_eq!(n.master, None, "dropped: no user `/tmp/x`");
    assert_eq!(n.backup.as_deref(), Some("/bin/touch /tmp/y"));
    assert_eq!(n.fault.as_deref(), Some("/bin/touch /tmp/z"));
    assert_eq!(
        (n.user("notify_fault"), n.user("notify_backup")),
        (Some("root"), None)
    );
    // Both said, neither counted by `-t` (keepalived only logs them).
    assert_eq!(said(&d, "ignor"), [(2, false), (10, false)], "{d:?}");
}

#[test]
fn a_script_that_cannot_be_found_is_disabled_tracked_or_not() {
    // keepalived checks every vrrp_script once the file has an instance (a router image's
    // file whose instance tracks none of them still gets -t's exit 5).
    let scripts = "vrrp_script wan {\n script /usr/sbin/wan_status\n}\nvrrp_script sh {\n script /bin/sh\n}\n";
    let inst = "vrrp_instance V {\n interface e\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n";
    let host = keepalived_conf::host::FakeHost::new()
        .with_interfaces(&["e"])
        .with_programs(&["/bin/sh"]);
    let opts = on_host(host);
    let (_, d) = keepalived_conf::load_str_with(&format!("{scripts}{inst}"), Path::new("x"), &opts);
    let disabled: Vec<_> = flagged(&d)
        .into_iter()
        .filter(|(_, m)| m.starts_with("Disabling"))
        .collect();
    assert_eq!(
        disabled,
        [(
            2,
            "Disabling track script wan since not found/accessible".into()
        )],
        "{d:?}"
    );
    let (_, d) = keepalived_conf::load_str_with(scripts, Path::new("x"), &opts);
    assert!(
        flagged(&d).iter().all(|(_, m)| !m.contains("Disabling")),
        "{d:?}"
    );
}

#[test]
fn include_takes_the_rest_of_the_line_as_one_pattern() {
    // keepalived globs the rest of the line as written: quotes and a second name are part
    // of the pattern, which then matches nothing (not counted by `-t`).
    let d = tmpdir("incpat");
    std::fs::write(
        d.join("a.inc"),
        "vrrp_instance A {\n interface e\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("main.conf"),
        "include \"a.inc\"\ninclude a.inc a.inc\ninclude   a.inc   \n",
    )
    .unwrap();
    let (cfg, diags) = load(&d.join("main.conf"), &LoadOptions::default()).unwrap();
    assert_eq!(cfg.instances.len(), 1, "only the third line includes a.inc");
    let missing: Vec<(u32, u32)> = diags
        .iter()
        .filter(|d| d.message.starts_with("no file matches include"))
        .map(|d| (d.line, d.col))
        .collect();
    assert_eq!(missing, [(1, 9), (2, 9)]);
    assert!(diags.iter().all(|d| !d.keepalived_flags()), "{diags:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A block still open at the end of the file runs, as keepalived runs it, reported for `-t`;
/// the report says so, for a reload to keep the running configuration instead.
#[test]
fn an_open_block_at_the_end_runs_and_is_marked_unbalanced() {
    let opts = on_host(keepalived_conf::FakeHost::new().with_interfaces(&["eth0"]));
    let read = |text: &str| {
        let (c, diagnostics) = keepalived_conf::load_str_with(
            text,
            Path::new("/etc/keepalived/keepalived.conf"),
            &opts,
        );
        let report = keepalived_conf::Report {
            diagnostics,
            sources: Default::default(),
        };
        (c, report)
    };
    let body = "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51 {\n  priority 100\n  virtual_ipaddress {\n    192.0.2.1\n  }\n}\n";
    let (c, report) = read(body);
    assert_eq!(c.instances.len(), 1, "{:?}", report.diagnostics);
    assert_eq!(
        c.instances[0].priority, 100,
        "the stray brace dropped, its lines read in the instance"
    );
    assert!(report.unbalanced(), "{:?}", report.diagnostics);
    assert_eq!(report.exit_code(), 5, "-t fails as keepalived's");

    let (_, report) = read(&body.replace("virtual_router_id 51 {", "virtual_router_id 51"));
    assert!(!report.unbalanced(), "{:?}", report.diagnostics);
}

/// Inputs a fuzz run found slow or crashing, loaded as the config_parse target loads them:
/// each now finishes with its diagnostics on lines of the input.
#[test]
fn fuzz_findings_load() {
    // 2026-12-06, 600 s run at b51d6f1: an `include` whose `{a,b}` groups multiply to
    // millions of globs ran past libFuzzer's 10 s timeout.
    let input = include_bytes!("fuzz-findings/timeout-include-braces");
    let host = std::sync::Arc::new(keepalived_conf::FakeHost::new());
    let opts = LoadOptions {
        config_id: Some("fuzz".into()),
        host,
        max_lines: 500,
        ..LoadOptions::default()
    };
    let (_, report) =
        keepalived_conf::load_bytes_report(input, Path::new("/fuzz/keepalived.conf"), &opts);
    let d = report
        .iter()
        .find(|d| {
            d.message
                .starts_with("include pattern expands to more than")
        })
        .expect("the include is refused");
    assert_eq!((d.line, d.col), (3, 9));
    assert!(d.is_error());
    let _ = report.render();
}

/// A fuzz input of 445 bytes whose four nested `~SEQ` made no line but a diagnostic per
/// innermost pass (millions of them): the 600 s run at 90b1a4c peaked at 1.5 GB. Passes now count
/// against `max_lines` as lines do.
#[test]
fn nested_repetitions_are_bounded() {
    let input = include_bytes!("fuzz-findings/nested-seq-diagnostics");
    let opts = LoadOptions {
        config_id: Some("fuzz".into()),
        host: std::sync::Arc::new(keepalived_conf::FakeHost::new()),
        max_lines: 500,
        ..LoadOptions::default()
    };
    let (_, report) =
        keepalived_conf::load_bytes_report(input, Path::new("/fuzz/keepalived.conf"), &opts);
    assert!(report.len() < 1_000, "{} diagnostics", report.len());
    assert!(report
        .iter()
        .any(|d| d.message == "repetition too large" && d.line == 4));
}

/// The same message at the same place (a `~SEQ` of a typo) is said once, with how many times;
/// a different message there is its own, and every repeated error still counts as one.
#[test]
fn repeated_messages_are_said_once() {
    let src = "~SEQ(i, 1, 50) bogus_keyword 1\n~SEQ(i, 1, 3) bogus_${i}\n";
    let opts = on_host(keepalived_conf::FakeHost::new());
    let (_, report) =
        keepalived_conf::load_bytes_report(src.as_bytes(), Path::new("/k.conf"), &opts);
    let at = |line: u32| report.iter().filter(move |d| d.line == line);
    let typo: Vec<_> = at(1).collect();
    assert_eq!(typo.len(), 1, "{typo:?}");
    assert_eq!(typo[0].times, 50);
    assert!(typo[0].message.contains("'bogus_keyword'"));
    let words: Vec<_> = at(2).map(|d| (d.message.as_str(), d.times)).collect();
    assert_eq!(words.len(), 3, "{words:?}");
    assert!(words.iter().all(|(_, n)| *n == 1));
    let rendered = report.render();
    assert_eq!(rendered.matches("'bogus_keyword'").count(), 1, "{rendered}");
    assert!(rendered.contains("= note: 50 times: the line is read once per `~SEQ` pass"));
    // keepalived's `-t` verdict is the same as if each had been listed.
    assert_eq!(report.exit_code(), 5);
}

/// A multi-line parameter whose lines name itself doubles at each substitution: it stops at
/// `max_lines` with one error, instead of growing to a mebibyte of text first (a 129-byte
/// fuzz input took 15 ms).
#[test]
fn self_referential_parameter_is_bounded_by_max_lines() {
    let src = "$M= \\\nx $M \\\ny $M\n$M\nrouter_id r1\n";
    let opts = LoadOptions {
        host: std::sync::Arc::new(keepalived_conf::FakeHost::new()),
        max_lines: 500,
        ..LoadOptions::default()
    };
    let (_, report) =
        keepalived_conf::load_bytes_report(src.as_bytes(), Path::new("/k.conf"), &opts);
    let errors: Vec<_> = report.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].message,
        "parameter expansion too deep or too large"
    );
    assert_eq!(errors[0].line, 4);
}

#[test]
fn every_script_without_a_user_follows_the_default_script_user() {
    use keepalived_conf::FakeHost;
    // Scripts of every kind without a user: a notify line, a vrrp_script, a FIFO and its
    // script, a real server's notify_up, a virtual server's quorum_up, a MISC_CHECK; the
    // `global_defs` that decides for them comes last (the whole file's settings apply).
    let text = |globals: &str| {
        format!(
            "vrrp_script chk {{\n script /bin/check\n}}\n\
             vrrp_instance V {{\n interface eth0\n virtual_router_id 1\n notify_master /bin/n\n \
             notify_backup /bin/n root\n track_script {{\n  chk\n }}\n virtual_ipaddress {{\n  192.0.2.1\n }}\n}}\n\
             virtual_server 192.0.2.1 80 {{\n protocol TCP\n quorum_up /bin/q\n \
             real_server 198.51.100.1 80 {{\n  notify_up /bin/u\n  MISC_CHECK {{\n   misc_path \"/bin/m x\"\n  }}\n }}\n \
             real_server 198.51.100.2 80 {{\n  MISC_CHECK {{\n   misc_path /bin/m\n   user root\n  }}\n }}\n}}\n\
             global_defs {{\n vrrp_notify_fifo /run/f\n vrrp_notify_fifo_script /bin/f\n{globals}}}\n"
        )
    };
    let load = |globals: &str, users: &[&str]| {
        let host = FakeHost::new()
            .with_interfaces(&["eth0"])
            .with_programs(&[
                "/bin/check",
                "/bin/n",
                "/bin/q",
                "/bin/u",
                "/bin/m",
                "/bin/f",
            ])
            .with_users(users);
        let opts = on_host(host);
        keepalived_conf::load_str_with(&text(globals), Path::new("u.conf"), &opts)
    };
    let misc_checks = |cfg: &keepalived_conf::Config| -> usize {
        cfg.virtual_servers[0]
            .real_servers
            .iter()
            .map(|r| r.checkers.len())
            .sum()
    };
    // Each of these has a default user: every script stays.
    for (globals, users) in [
        ("", &[][..]),
        (" enable_script_security\n", &["keepalived_script"][..]),
        (
            " enable_script_security\n script_user nobody\n",
            &["nobody"][..],
        ),
    ] {
        let (cfg, d) = load(globals, users);
        let n = &cfg.instances[0].notify;
        assert_eq!(n.master.as_deref(), Some("/bin/n"), "{globals}: {d:?}");
        assert_eq!(cfg.scripts.len(), 1, "{globals}");
        let vs = &cfg.virtual_servers[0];
        assert!(vs.service.quorum_up.is_some(), "{globals}");
        assert!(vs.service.real_servers[0].notify_up.is_some(), "{globals}");
        assert_eq!(misc_checks(&cfg), 2, "{globals}");
        let fifo = cfg
            .global
            .vrrp_notify_fifo
            .as_ref()
            .expect("the FIFO stays");
        assert_eq!(fifo.script.as_deref(), Some("/bin/f"));
        assert!(
            !d.iter().any(|d| d.message.contains("default user")),
            "{d:?}"
        );
    }
    // Script security without the keepalived_script user, or a script_user that does not
    // exist: none has one, and each script without a user of its own is dropped.
    for (globals, said) in [
        (
            " enable_script_security\n",
            (
                18,
                "Unable to set default user keepalived_script for script",
            ),
        ),
        (
            " script_user nobody\n",
            (35, "Error setting global script uid/gid"),
        ),
    ] {
        let (cfg, d) = load(globals, &[]);
        let n = &cfg.instances[0].notify;
        assert_eq!(n.master, None, "{globals}");
        assert_eq!(
            n.backup.as_deref(),
            Some("/bin/n"),
            "its own user: {globals}"
        );
        assert!(cfg.scripts.is_empty(), "{globals}");
        assert!(cfg.instances[0].track_scripts.is_empty(), "{globals}");
        let vs = &cfg.virtual_servers[0];
        assert!(vs.service.quorum_up.is_none(), "{globals}");
        assert!(vs.service.real_servers[0].notify_up.is_none(), "{globals}");
        assert_eq!(
            misc_checks(&cfg),
            1,
            "the checker with its own user: {globals}"
        );
        assert!(cfg.global.vrrp_notify_fifo.is_none(), "{globals}");
        // What keepalived's `-t` counts (measured on this file): its message (at the
        // checker's first script for the missing keepalived_script user), the vrrp_script
        // and the MISC_CHECK removed.
        let counted = flagged(&d);
        assert!(
            counted.contains(&(said.0, said.1.into())),
            "{globals}: {counted:?}"
        );
        assert!(counted.contains(&(
            3,
            "Unable to set default user for vrrp script chk - removing".into()
        )));
        assert!(counted.contains(&(
            23,
            "Unable to set default user for misc script '/bin/m' 'x' - removing".into()
        )));
        // The lines keepalived only logs.
        let ignored: Vec<u32> = d
            .iter()
            .filter(|d| d.message.starts_with("Failed to set default user"))
            .map(|d| d.line)
            .collect();
        assert_eq!(ignored, [7, 18, 20, 33, 34], "{globals}: {d:?}");
        // Without script security, only the scripts with their own user are left to run
        // (measured: keepalived names both kinds' violations then).
        let violations = violations(&d);
        let secure = globals.contains("enable_script_security");
        assert_eq!(violations, if secure { &[][..] } else { &[8, 27] }, "{d:?}");
    }
}

#[test]
fn a_block_written_without_its_brace_takes_what_follows_as_keepalived_reads_it() {
    use keepalived_conf::FakeHost;
    let host = FakeHost::new().with_interfaces(&["eth0", "eth1"]);
    let opts = on_host(host);
    let load = |text: &str| keepalived_conf::load_str_with(text, Path::new("b.conf"), &opts);
    let lines = |d: &[keepalived_conf::Diagnostic]| -> Vec<u32> {
        flagged(d).iter().map(|f| f.0).collect()
    };
    // A block of entries with its entry on the keyword's line: keepalived drops the word
    // and reads the next lines as entries, up to the first `}` (here track_script's).
    let (cfg, d) = load(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress 192.0.2.1/24\n \
         priority 150\n track_script {\n  chk\n }\n}\n",
    );
    let v = &cfg.instances[0];
    assert!(v.virtual_ipaddress.is_empty(), "{:?}", v.virtual_ipaddress);
    assert_eq!(v.priority, 100, "`priority 150` was read as an address");
    assert!(v.track_scripts.is_empty());
    // (keepalived 2.2.7 names lines 4 to 7: the parameters, then each line as an address.)
    assert_eq!(lines(&d), [4, 5, 6, 7], "{:?}", flagged(&d));
    // The next block's own lines become entries, and its `}` ends them: the
    // authentication block is lost, the addresses after it are read in the instance.
    let (cfg, d) = load(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n track_interface eth1\n \
         authentication {\n  auth_type PASS\n  auth_pass x\n }\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
    );
    let v = &cfg.instances[0];
    assert!(v.authentication.is_none());
    let tracked: Vec<&str> = v.track_interfaces.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tracked, ["authentication", "auth_type", "auth_pass"]);
    assert_eq!(v.virtual_ipaddress.len(), 1);
    // Interfaces that do not exist: keepalived's VRRP process stops, vrrpd refuses the file.
    assert_eq!(lines(&d), [4, 5, 6, 7, 0], "{:?}", flagged(&d));
    assert!(d.iter().any(|d| d.flag == Flag::Fatal), "{d:?}");
    // A block of keywords: keepalived looks for its `{` on the next line ("Missing '{'"),
    // then reads the statements after it as its own up to a `}`, here the stray block's,
    // which closes it: `priority` is read in the instance again.
    let (cfg, d) = load(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n authentication\n \
         auth_type PASS\n auth_pass x\n virtual_ipaddress {\n  192.0.2.1\n }\n priority 150\n}\n",
    );
    let v = &cfg.instances[0];
    assert!(v.authentication.is_some(), "read from the lines after it");
    assert!(
        v.virtual_ipaddress.is_empty(),
        "read as authentication's unknown keywords"
    );
    assert_eq!(v.priority, 150);
    assert_eq!(lines(&d), [5, 7, 7, 8], "{:?}", flagged(&d));
    // A named block at the top level, its `{` missing and its `}` there: keepalived's VRRP
    // process reads the instance from the statements after it ("Missing '{'" at the next
    // line), and its first pass, which skips such blocks by their braces, reads each of
    // those lines as an unknown top-level keyword: keepalived 2.2.7 names lines 2 to 11.
    let (cfg, d) = load(
        "vrrp_instance V
 interface eth0
 virtual_router_id 9
 priority 120
          virtual_ipaddress {
  192.0.2.9
 }
}
vrrp_instance W {
 interface eth0
          virtual_router_id 10
}
",
    );
    let names: Vec<(&str, u8, u8)> = cfg
        .instances
        .iter()
        .map(|i| (i.name.as_str(), i.virtual_router_id, i.priority))
        .collect();
    assert_eq!(names, [("V", 9, 120), ("W", 10, 100)]);
    assert_eq!(cfg.instances[0].virtual_ipaddress.len(), 1);
    let mut at = lines(&d);
    at.dedup();
    assert_eq!(at, [8, 2, 3, 4, 5, 6, 7, 8], "{:?}", flagged(&d));
    // `{` alone on the next line is the block's, as keepalived reads it.
    let (cfg, d) = load(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress\n {\n  192.0.2.1\n }\n}\n",
    );
    assert_eq!(cfg.instances[0].virtual_ipaddress.len(), 1);
    assert!(flagged(&d).is_empty(), "{d:?}");
}

#[test]
fn a_missing_interface_stops_the_vrrp_side_before_its_script_checks() {
    use keepalived_conf::FakeHost;
    let host = FakeHost::new()
        .with_interfaces(&["eth0"])
        .with_programs(&["/bin/true"]);
    let opts = on_host(host);
    // keepalived 2.2.7's -t names the tracked interface and stops the VRRP side there (exit
    // 5): the vrrp_script's security is never checked. The checker's scripts still are.
    let text = "vrrp_script chk {\n script /bin/true\n}\nvrrp_instance V {\n interface eth0\n \
                virtual_router_id 7\n track_interface {\n  nosuchif\n }\n}\n\
                virtual_server 192.0.2.7 80 {\n protocol TCP\n quorum_up /bin/true\n}\n";
    let (_, d) = keepalived_conf::load_str_with(text, Path::new("i.conf"), &opts);
    assert_eq!(violations(&d), [13], "{d:?}");
    assert!(d.iter().any(|d| d.flag == Flag::Fatal), "{d:?}");
}

#[test]
fn a_fractional_script_interval_is_taken_as_later_keepalived_takes_it() {
    let (cfg, d) = load_str(
        "vrrp_script s {\n script /bin/true\n interval .2\n timeout 1.5\n}\n",
        Path::new("f.conf"),
    );
    let s = &cfg.scripts[0];
    assert_eq!(s.interval, Duration::from_millis(200));
    assert_eq!(s.timeout, Duration::from_millis(1500));
    // Said at each value, not counted: keepalived 2.2.7's -t fails here, 2.3's does not.
    assert_eq!(
        said(&d, "taken as written"),
        [(3, false), (4, false)],
        "{d:?}"
    );
}

/// The lines of the diagnostics saying `text`, and whether keepalived's `-t` counts each.
fn said(d: &[keepalived_conf::Diagnostic], text: &str) -> Vec<(u32, bool)> {
    d.iter()
        .filter(|d| d.message.contains(text))
        .map(|d| (d.line, d.keepalived_flags()))
        .collect()
}

/// The lines of the script security violations, in order.
fn violations(d: &[keepalived_conf::Diagnostic]) -> Vec<u32> {
    let mut lines: Vec<u32> = d
        .iter()
        .filter(|d| d.flag == Flag::Security)
        .map(|d| d.line)
        .collect();
    lines.sort();
    lines
}

/// Load options reading this machine from `host`.
fn on_host(host: keepalived_conf::FakeHost) -> LoadOptions {
    LoadOptions {
        host: std::sync::Arc::new(host),
        ..LoadOptions::default()
    }
}

#[test]
fn a_misc_check_whose_user_does_not_exist_is_removed() {
    let host = keepalived_conf::FakeHost::new().with_programs(&["/bin/true"]);
    let text = "virtual_server 192.0.2.1 80 {\n protocol TCP\n real_server 198.51.100.1 80 {\n  \
                MISC_CHECK {\n   misc_path \"/bin/true x\"\n   user nosuchuser\n  }\n  \
                MISC_CHECK {\n   misc_path /bin/true\n   user root\n  }\n }\n}\n";
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("m.conf"), &on_host(host));
    assert_eq!(cfg.virtual_servers[0].real_servers[0].checkers.len(), 1);
    // As keepalived 2.2.7's -t says it, at the `user` line, counted.
    assert_eq!(
        flagged(&d)
            .into_iter()
            .filter(|(l, _)| *l == 6)
            .collect::<Vec<_>>(),
        [(
            6,
            "Failed to set uid/gid for misc checker script '/bin/true' 'x' - removing".into()
        )]
    );
}

#[test]
fn a_virtual_server_script_whose_user_does_not_exist_is_dropped() {
    let host = keepalived_conf::FakeHost::new().with_programs(&["/bin/true"]);
    let text = "virtual_server 192.0.2.1 80 {\n protocol TCP\n quorum_up \"/bin/true\" nosuch\n \
                real_server 198.51.100.1 80 {\n  notify_up \"/bin/true\" root\n }\n}\n";
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("s.conf"), &on_host(host));
    let vs = &cfg.virtual_servers[0].service;
    assert!(vs.quorum_up.is_none());
    assert!(vs.real_servers[0].notify_up.is_some());
    // keepalived logs it without counting it; the script left (root's) is the one whose
    // security is checked.
    assert_eq!(said(&d, "Invalid user/group"), [(3, false)]);
    assert_eq!(violations(&d), [5], "{d:?}");
}

#[test]
fn an_ipv6_address_drops_its_scope_and_label_as_keepalived_drops_them() {
    let text = "vrrp_instance V {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n  \
                2001:db8::9/64 scope link\n  2001:db8::10/64 label eth0:1\n  \
                2001:db8::11/64 scope global\n }\n}\n";
    let (cfg, d) = load_str(text, Path::new("v6.conf"));
    let vips = &cfg.instances[0].virtual_ipaddress;
    assert_eq!(vips.len(), 3);
    assert!(vips
        .iter()
        .all(|v| v.scope == keepalived_conf::model::Scope::Global && v.label.is_none()));
    // keepalived 2.2.7's -t names lines 5 and 6 (counted); `scope global` is no scope to drop.
    let lines: Vec<u32> = flagged(&d).iter().map(|f| f.0).collect();
    assert_eq!(lines, [5, 6], "{d:?}");
}

/// Every script line is split into words as keepalived splits it (quotes and escapes, `\"`
/// outside quotes a plain quote); one it cannot split leaves its script unset, with
/// keepalived's messages at its lines (measured with keepalived 2.2.7's `-t` on this file:
/// lines 2, 22 and 30 counted, the trailing `\` only logged, the quote at the very end of
/// line 27 an empty word).
#[test]
fn script_lines_are_split_as_keepalived_splits_them() {
    let text = "vrrp_script open {\n script \"/bin/chk 'abc\"\n}\n\
        vrrp_script esc {\n script \\\"/bin/chk\\\"\n}\n\
        vrrp_script trail {\n script \"/bin/chk x\\\\\"\n}\n\
        vrrp_script c {\n script \"/bin/chk '\\x41 b' \\\\\\\"q\\\\\\\"\"\n}\n\
        vrrp_instance V {\n interface eth0\n virtual_router_id 1\n\
        \x20track_script {\n  open\n  esc\n  trail\n  c\n }\n\
        \x20notify_master \"/bin/chk 'x\"\n notify_backup \"/bin/chk 'y z'\"\n}\n\
        virtual_server 192.0.2.1 80 {\n protocol TCP\n quorum_up \"/bin/chk \\\"\"\n\
        \x20real_server 198.51.100.1 80 {\n  MISC_CHECK {\n   misc_path \"/bin/chk 'abc\"\n  }\n }\n}\n";
    let host = keepalived_conf::FakeHost::new()
        .with_interfaces(&["eth0"])
        .with_programs(&["/bin/chk"]);
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("s.conf"), &on_host(host));
    let words = |s: &str| checks::script::words(s).unwrap();
    let scripts: Vec<(&str, Vec<String>)> = cfg
        .scripts
        .iter()
        .map(|s| (s.name.as_str(), words(&s.script)))
        .collect();
    assert_eq!(
        scripts,
        [
            ("esc", vec!["/bin/chk".to_string()]),
            ("c", vec!["/bin/chk".into(), "A b".into(), "\"q\"".into()])
        ],
        "{d:?}"
    );
    let n = &cfg.instances[0].notify;
    assert_eq!(n.master, None);
    assert_eq!(words(n.backup.as_deref().unwrap()), ["/bin/chk", "y z"]);
    let vs = &cfg.virtual_servers[0];
    let quorum = vs
        .service
        .quorum_up
        .as_ref()
        .expect("kept, as keepalived keeps it");
    assert_eq!(words(&quorum.command), ["/bin/chk", ""]);
    assert!(vs.real_servers[0].checkers.is_empty());
    assert_eq!(
        said(&d, "missing terminating"),
        [(2, true), (22, true), (30, true)]
    );
    assert_eq!(said(&d, "Missing escape char"), [(8, false)]);
    assert_eq!(
        said(&d, "No script set for vrrp_script"),
        [(3, true), (9, true)]
    );
    assert_eq!(said(&d, "No script path has been specified"), [(31, true)]);
}

/// The words between a block of entries' keyword and its `{` are dropped, and counted, as
/// keepalived's `alloc_value_block` drops them (measured with keepalived 2.2.7's `-t`: "Block
/// virtual_ipaddress has extra parameters 192.0.2.9 ...", exit 5); vrrpd used them as the
/// interfaces of `linkbeat_interfaces` and dropped the others silently.
#[test]
fn words_before_the_brace_of_a_block_of_entries_are_dropped_and_counted() {
    let text = "linkbeat_interfaces eth0 {\n eth1\n}\n\
        vrrp_instance A {\n interface eth0\n virtual_router_id 1\n\
        \x20virtual_ipaddress 192.0.2.9 {\n  192.0.2.1\n }\n\
        \x20unicast_peer { 192.0.2.7 }\n}\n";
    let host = keepalived_conf::FakeHost::new().with_interfaces(&["eth0", "eth1"]);
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("e.conf"), &on_host(host));
    assert_eq!(cfg.linkbeat_interfaces, ["eth1"]);
    let vips: Vec<String> = cfg.instances[0]
        .virtual_ipaddress
        .iter()
        .map(|v| v.addr.to_string())
        .collect();
    assert_eq!(vips, ["192.0.2.1"]);
    assert_eq!(
        cfg.instances[0].unicast_peers.len(),
        1,
        "a block on one line has no extra words"
    );
    assert_eq!(
        said(&d, "has extra parameters"),
        [(1, true), (7, true)],
        "{d:?}"
    );
}

/// Only a `"` quotes a value, as keepalived's `alloc_strvec` reads a line: `'…'` is kept in
/// other values (`interface 'eth0'` names no interface, `advert_int '1'` is no number), and
/// quotes only in a script line, split by its own rules (measured with keepalived 2.2.7's
/// `-t` on this file: lines 6, 8 and 10 counted, the interface missing; the script runs
/// `killall` with two arguments).
#[test]
fn single_quotes_quote_only_in_script_lines() {
    let text = "vrrp_script chk {\n script 'killall -0 haproxy'\n}\n\
        vrrp_instance VI_1 {\n state BACKUP\n interface 'eth0'\n virtual_router_id 51\n\
        \x20advert_int '1'\n authentication {\n  auth_type 'PASS'\n  auth_pass 'x y'\n }\n\
        \x20virtual_ipaddress {\n  203.0.113.10/24\n }\n track_script {\n  chk\n }\n}\n";
    let host = keepalived_conf::FakeHost::new()
        .with_interfaces(&["eth0"])
        .with_programs(&["/usr/bin/killall"]);
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("q.conf"), &on_host(host));
    let words = checks::script::words(&cfg.scripts[0].script).unwrap();
    assert_eq!(words, ["killall", "-0", "haproxy"]);
    let mut lines: Vec<u32> = flagged(&d).iter().map(|f| f.0).filter(|&l| l > 0).collect();
    lines.sort();
    assert_eq!(lines, [6, 8, 10], "{d:?}");
    assert!(said(&d, "interface 'eth0'").iter().all(|s| s.1), "{d:?}");
}

/// Checker, real and virtual server numbers (found by mutating real configs), as keepalived
/// 2.2.7 reads them (lib/parser.c `read_unsigned`, `read_timer`).
const NUMBERS: &str = "global_defs {
 smtp_connect_timeout 65536
}
virtual_server 192.0.2.1 80 {
 lb_algo rr
 lb_kind NAT 2
 protocol TCP
 retry 0
 delay_loop 99999999999
 weight 2147483648
 real_server 198.51.100.1 80 {
  weight 65536
  delay_loop +6
  TCP_CHECK {
   connect_port 0
   connect_timeout 0
   delay_before_retry 99999999999
   retry 0
  }
  TCP_CHECK {
   connect_port 80x
   connect_timeout 5000
   delay_loop 6s
   warmup 1.0000005
  }
  HTTP_GET {
   url {
    path /
    digest ff20ad2481f97b1754ef3e12ecd3a9cc;
   }
   url {
    path /b
    digest FF20AD2481F97B1754EF3E12ECD3A9CC
    digest ff20ad2481f97b1754ef3e12ecd3a9cc
   }
  }
 }
 real_server 198.51.100.2 80 {
  lvs_method TUN type gue
  uthreshold -1
  MISC_CHECK {
   misc_path /bin/true
   misc_timeout 1.5
  }
  MISC_CHECK {
   misc_path /bin/true
   misc_timeout 0
  }
 }
}
";

#[test]
fn checker_and_server_numbers_are_read_as_keepalived_reads_them() {
    let host = keepalived_conf::FakeHost::new().with_programs(&["/bin/true"]);
    let (cfg, d) = keepalived_conf::load_str_with(NUMBERS, Path::new("n.conf"), &on_host(host));
    // Measured: `keepalived -t -f` on this file (2.2.7) prints exactly these, with these line
    // numbers (exit 6 for the two unsecured MISC_CHECKs, 5 without them). Accepted there and
    // here: retry 0 and delay_before_retry 99999999999 in a checker, weight 65536 on a real
    // server, delay_loop 99999999999 and +6, misc_timeout 0.
    let counted: Vec<(u32, String)> = flagged(&d)
        .into_iter()
        .filter(|(_, m)| !m.starts_with("SECURITY VIOLATION"))
        .collect();
    let want: &[(u32, &str)] = &[
        (2, "number '65536' outside range [0, 4294]"),
        (2, "smtp_connect_timeout '65536' must be in [0, 4294] - ignoring"),
        (6, "Invalid tunnel option 2 for virtual server."),
        (8, "number '0' outside range [1, 4294967295]"),
        (8, "retry value invalid - 0"),
        (10, "number '2147483648' outside range [1, 2147483647]"),
        (10, "Virtual server weight 2147483648 is outside range 1-2147483647"),
        (15, "number '0' outside range [1, 65535]"),
        (15, "Invalid checker connect_port '0'"),
        (16, "number '0' outside range [0.000001, 4294.967295]"),
        (16, "connect_timeout 0 invalid - ignoring"),
        (21, "invalid number '80x'"),
        (21, "Invalid checker connect_port '80x'"),
        (22, "number '5000' outside range [0.000001, 4294.967295]"),
        (22, "connect_timeout 5000 invalid - ignoring"),
        (23, "invalid number '6s'"),
        (24, "number '1.0000005' has too many decimal places"),
        (29, "digest 'ff20ad2481f97b1754ef3e12ecd3a9cc;' character length should be 32 rather than 33"),
        (34, "Digest 'ff20ad2481f97b1754ef3e12ecd3a9cc' is a duplicate"),
        (39, "gue tunnels require port, otherwise cannot have port."),
        (40, "negative number '-1'"),
        (40, "Invalid real_server uthreshold '-1' - ignoring"),
        (43, "invalid number '1.5'"),
        (43, "Invalid misc_timeout value '1.5'"),
    ];
    let want: Vec<(u32, String)> = want.iter().map(|(l, m)| (*l, m.to_string())).collect();
    assert_eq!(counted, want, "{d:#?}");

    // What each value leaves in effect: keepalived's, read from its source (its daemon keeps
    // what `-t` refuses where the reader ignores errors and the leading digits are in range).
    assert_eq!(
        cfg.global.mail.smtp_connect_timeout,
        Duration::from_secs(30)
    );
    let vs = &cfg.virtual_servers[0];
    // `lb_kind NAT 2`: the method is set before the options are read.
    assert_eq!(vs.service.forwarding, lbcore::spec::ForwardingMethod::Nat);
    assert_eq!(vs.timers.retry, None);
    assert_eq!(
        vs.timers.delay_loop,
        Some(Duration::from_secs(99_999_999_999))
    );
    assert_eq!(vs.service.delay_loop, u32::MAX, "saturated, not wrapped");
    let rs = &vs.service.real_servers;
    assert_eq!((rs[0].weight, rs[1].weight), (65536, 1));
    // gue without a port: the method is set, the tunnel options are not.
    let tun = lbcore::spec::ForwardingMethod::Tun(Default::default());
    assert_eq!(rs[1].forwarding, Some(tun));
    assert_eq!(rs[1].uthreshold, 0);
    let checks = &vs.real_servers[0];
    assert_eq!(checks.timers.delay_loop, Some(Duration::from_secs(6)));
    let tcp = |i: usize| match &checks.checkers[i].probe {
        checks::spec::ProbeSpec::TcpCheck(t) => t.connect.connect_port,
        p => panic!("{p:?}"),
    };
    let t0 = &checks.checkers[0].timers;
    assert_eq!(
        (tcp(0), t0.connect_timeout, t0.retry),
        (None, None, Some(0))
    );
    assert_eq!(
        t0.delay_before_retry,
        Some(Duration::from_secs(99_999_999_999))
    );
    let t1 = &checks.checkers[1].timers;
    assert_eq!((tcp(1), t1.connect_timeout), (Some(80), None), "80x: 80");
    assert_eq!(t1.delay_loop, Some(Duration::from_micros(6)), "6s: 6 µs");
    assert_eq!(t1.warmup, Some(Duration::from_micros(1_000_001)), "rounded");
    let checks::spec::ProbeSpec::HttpGet(h) = &checks.checkers[2].probe else {
        panic!("{:?}", checks.checkers[2].probe)
    };
    let digests: Vec<Option<&str>> = h.urls.iter().map(|u| u.digest.as_deref()).collect();
    assert_eq!(digests, [None, Some("ff20ad2481f97b1754ef3e12ecd3a9cc")]);
    let misc: Vec<Option<Duration>> = vs.real_servers[1]
        .checkers
        .iter()
        .map(|c| match &c.probe {
            checks::spec::ProbeSpec::MiscCheck(m) => m.misc_timeout,
            p => panic!("{p:?}"),
        })
        .collect();
    // 1.5: its leading 1 (whole seconds); 0: none, so the script runs for delay_loop.
    assert_eq!(misc, [Some(Duration::from_secs(1)), None]);
}

#[test]
fn keepalived_readers_keep_what_keepalived_keeps() {
    use keepalived_conf::registry::{read_int, read_timer, read_unsigned_with, TIMER_MAX};
    let kept = |r: keepalived_conf::registry::Read| (r.kept, r.taken, r.said.len());
    // read_unsigned: strtoul's leading digits, kept by the daemon only when errors are
    // ignored and they are in range.
    assert_eq!(
        kept(read_unsigned_with("+6", 1, 10, true)),
        (Some(6), true, 0)
    );
    assert_eq!(
        kept(read_unsigned_with("80x", 1, 65535, true)),
        (Some(80), false, 1)
    );
    assert_eq!(
        kept(read_unsigned_with("80x", 1, 65535, false)),
        (None, false, 1)
    );
    assert_eq!(
        kept(read_unsigned_with("x", 0, 9, true)),
        (Some(0), false, 1)
    );
    assert_eq!(
        kept(read_unsigned_with("4294967296", 0, u64::MAX, true)),
        (None, false, 1)
    );
    assert_eq!(
        kept(read_unsigned_with("  5", 0, 9, true)),
        (Some(5), true, 0)
    );
    // read_timer: microseconds; junk after the digits is shifted with them.
    assert_eq!(kept(read_timer("1.5x", 0, TIMER_MAX)), (Some(15), true, 1));
    assert_eq!(
        kept(read_timer(".5", 1, TIMER_MAX)),
        (Some(500_000), true, 0)
    );
    assert_eq!(
        kept(read_timer("0.0000004", 1, TIMER_MAX)),
        (None, false, 2)
    );
    assert_eq!(
        kept(read_timer("18446744073709551616", 0, TIMER_MAX)),
        (None, false, 1)
    );
    assert_eq!(kept(read_timer("-0", 0, TIMER_MAX)), (None, false, 1));
    // read_int: strtol, signed.
    let int = |r: keepalived_conf::registry::Read<i64>| (r.kept, r.taken, r.said.len());
    assert_eq!(int(read_int("-7", -9, 9, true)), (Some(-7), true, 0));
    assert_eq!(
        int(read_int("-9223372036854775808", -9, 9, true)),
        (None, false, 1)
    );
    assert_eq!(
        int(read_int("-9223372036854775809", -9, 9, true)),
        (None, false, 1)
    );
    assert_eq!(int(read_int("-5x", -9, 9, true)), (Some(-5), false, 1));
    assert_eq!(int(read_int("-5x", -9, 9, false)), (None, false, 1));
}

#[test]
fn checker_addresses_are_read_as_keepalived_reads_them() {
    let text = "virtual_server 192.0.2.1 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n \
                real_server 198.51.100.1 80 {\n  TCP_CHECK {\n   connect_ip <ip>\n   \
                bindto 2001:db8::1\n   connect_ip 192.0.2.9\n   bindto 192.0.2.8/24\n   \
                connect_ip 2001:db8::2\n  }\n }\n}\n";
    let (cfg, d) = load_str(text, Path::new("b.conf"));
    // Measured with keepalived 2.2.7's -t (exit 5): a placeholder left in a template, then
    // addresses of the other family than the bindto in force.
    let want = [
        (7, "Invalid connect_ip address <ip> - ignoring"),
        (
            9,
            "connect_ip address 192.0.2.9 does not match address family of bindto - skipping",
        ),
        (
            11,
            "connect_ip address 2001:db8::2 does not match address family of bindto - skipping",
        ),
    ];
    let want: Vec<(u32, String)> = want.iter().map(|(l, m)| (*l, m.to_string())).collect();
    assert_eq!(flagged(&d), want, "{d:#?}");
    let c = &cfg.virtual_servers[0].real_servers[0].checkers[0];
    let checks::spec::ProbeSpec::TcpCheck(t) = &c.probe else {
        panic!("{:?}", c.probe)
    };
    // A mismatch unsets the address (keepalived: AF_UNSPEC), so the next bindto is taken.
    assert_eq!(t.connect.connect_ip, None);
    assert_eq!(t.connect.bindto, Some("192.0.2.8".parse().unwrap()));
}

#[test]
fn a_file_check_weight_is_read_as_keepalived_reads_it() {
    let text = "track_file tf {\n file /tmp/x\n}\nvirtual_server 192.0.2.1 80 {\n lb_algo rr\n \
                lb_kind NAT\n protocol TCP\n real_server 198.51.100.1 80 {\n  FILE_CHECK {\n   \
                track_file tf\n   weight\n   weight 300 reverse\n   weight 2147483648\n   \
                weight -2147483647 sideways\n   weight 5x\n   weight -7 noreverse\n   \
                weight 9999999999999999999999\n  }\n }\n}\n";
    let (cfg, d) = load_str(text, Path::new("c.conf"));
    // Measured with keepalived 2.2.7's -t (exit 5); a weight without its value is counted
    // there, not fatal, and the range is IPVS's (±INT32_MAX), not a VRRP priority's.
    let range = "weight for track file must be in [-2147483647..2147483647] inclusive. Ignoring...";
    let want = [
        (11, "track file weight missing"),
        (13, "number '2147483648' outside integer range"),
        (13, range),
        (14, "unknown track file weight option sideways - ignoring"),
        (15, "invalid number '5x'"),
        (15, range),
        (17, "number '9999999999999999999999' outside integer range"),
        (17, range),
    ];
    let want: Vec<(u32, String)> = want.iter().map(|(l, m)| (*l, m.to_string())).collect();
    assert_eq!(flagged(&d), want, "{d:#?}");
    let c = &cfg.virtual_servers[0].real_servers[0].checkers[0];
    let checks::spec::ProbeSpec::FileCheck(f) = &c.probe else {
        panic!("{:?}", c.probe)
    };
    assert_eq!((f.weight, f.reverse), (-7, false));
}

/// The flagged lines of `text` in order, with their messages, for a file that loads.
fn flagged_sorted(d: &[keepalived_conf::Diagnostic]) -> Vec<(u32, String)> {
    assert!(d.iter().all(|d| !d.is_error()), "the file loads: {d:?}");
    let mut f = flagged(d);
    f.sort_by_key(|(l, _)| *l);
    f
}

#[test]
fn counts_and_words_are_read_as_keepalived_reads_them() {
    // Lines and messages as keepalived 2.2.7's `keepalived -t` gives them for this file
    // (measured with realworld/both.sh): it reads counts with strtoul (any unsigned, a `+`,
    // nothing after a prefix's `/` is 0), a peer's words in pairs and use_vmac's first two.
    let text = "global_defs {\n vrrp_garp_lower_prio_repeat 65536\n vrrp_garp_master_repeat 0\n}\n\
                vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority 100\n\
                \x20advert_int +2\n garp_master_repeat 65536\n garp_master_refresh_repeat -1\n\
                \x20use_vmac \" vrrp.51 \"\n use_vmac vrrp.51 extra\n unicast_peer {\n  198.51.100.2 198.51.100.3\n\
                \x20 198.51.100.4 min_ttl 300\n }\n virtual_ipaddress {\n  203.0.113.10/\n  203.0.113.11/+24\n }\n}\n";
    let host = keepalived_conf::FakeHost::new().with_interfaces(&["eth0"]);
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("c.conf"), &on_host(host));
    let owned = |v: &[(u32, &str)]| -> Vec<(u32, String)> {
        v.iter().map(|(l, m)| (*l, m.to_string())).collect()
    };
    assert_eq!(
        flagged_sorted(&d),
        owned(&[
            (
                3,
                "vrrp_garp_master_repeat must be greater than 0, setting to 1"
            ),
            (12, "negative number '-1'"),
            (
                12,
                "(VI_1): garp_master_refresh_repeat '-1' invalid - ignoring"
            ),
            (
                13,
                "VMAC interface name ' vrrp.51 ' too long or invalid characters - ignoring"
            ),
            (14, "VMAC interface name already specified"),
            (16, "(VI_1) 198.51.100.3 is missing a value"),
            (17, "number '300' outside range [0, 255]"),
            (
                23,
                "(VI_1) unicast with use_vmac requires vmac_xmit_base - setting"
            ),
        ])
    );
    // What stays in effect is keepalived's value.
    assert_eq!(cfg.global.garp.master_repeat, 1);
    assert_eq!(cfg.global.garp.lower_prio_repeat, 65536);
    let i = &cfg.instances[0];
    assert_eq!(i.advert_int, 200);
    assert_eq!(i.garp.master_repeat, 65536);
    assert_eq!(i.garp.master_refresh_repeat, 1, "the default stays");
    assert_eq!(i.garp.lower_prio_repeat, 65536, "from global_defs");
    let vmac = i.use_vmac.as_ref().expect("use_vmac");
    assert_eq!(vmac.name.as_deref(), Some("vrrp.51"));
    assert!(i.vmac_xmit_base, "set for unicast, as keepalived sets it");
    let peers: Vec<IpAddr> = ["198.51.100.2", "198.51.100.4"]
        .map(|p| p.parse().unwrap())
        .into();
    assert_eq!(i.unicast_peers, peers, "a peer with a bad option is kept");
    let lens: Vec<u8> = i.virtual_ipaddress.iter().map(|v| v.prefix_len).collect();
    assert_eq!(lens, [0, 24], "`/` alone is /0 to keepalived");
}

#[test]
fn a_value_keepalived_checks_for_is_missed_with_a_counted_error() {
    // keepalived's handlers that look at the line's length first report a missing value
    // and go on (-t exits 5); lines and messages measured with keepalived 2.2.7 -t. Its
    // vmac_xmit_base complaint has no line: vrrpd gives the instance's `}`.
    let text = "global_defs {\n enable_script_security\n script_user root\n}\n\
                vrrp_script chk {\n script\n script /bin/true\n interval 65536\n timeout 0\n}\n\
                track_file tf {\n file\n weight\n file /tmp/tf /tmp/other\n}\n\
                vrrp_track_process tp {\n process sshd\n weight\n}\n\
                vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority 100\n\
                \x20vmac_xmit_base\n track_script {\n  chk\n }\n virtual_ipaddress {\n  203.0.113.10/24\n }\n}\n";
    let host = keepalived_conf::FakeHost::new()
        .with_interfaces(&["eth0"])
        .with_programs(&["/bin/true"])
        .with_users(&["root"]);
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("m.conf"), &on_host(host));
    let got = flagged_sorted(&d);
    let want: Vec<(u32, String)> = [
        (8, "number '65536' outside range [0, 4294]"),
        (
            8,
            "(chk): vrrp script interval '65536' must be between 1 and 4294 - ignoring",
        ),
        (
            9,
            "(chk): vrrp script timeout must be greater than 0, setting to 1",
        ),
        (12, "track file file name missing"),
        (13, "No weight specified for track file tf - ignoring"),
        (18, "No weight specified for track process tp - ignoring"),
        (32, "(VI_1) vmac_xmit_base is only valid with a vmac"),
    ]
    .iter()
    .map(|(l, m)| (*l, m.to_string()))
    .collect();
    assert_eq!(got, want);
    let s = &cfg.scripts[0];
    assert_eq!(s.script, "/bin/true");
    assert_eq!(
        (s.interval, s.timeout),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    let tf = &cfg.track_files[0];
    assert_eq!(
        (tf.file.to_str(), tf.weight),
        (Some("/tmp/tf"), 1),
        "the first word"
    );
    assert!(
        !cfg.instances[0].vmac_xmit_base,
        "cleared, as keepalived clears it"
    );
    // A block's `}` says what is missing, as keepalived's end handlers do.
    let (_, d) = load_str(
        "track_file tf {\n file\n}\nvrrp_script chk {\n script\n}\n",
        Path::new("m.conf"),
    );
    assert_eq!(
        said(&d, "No file set for track_file tf - ignoring"),
        [(3, true)]
    );
    assert_eq!(
        said(&d, "No script set for vrrp_script chk - removing"),
        [(6, true)]
    );
    assert!(d.iter().all(|d| d.flag != Flag::Abort), "{d:?}");
}

#[test]
fn a_value_keepalived_reads_unchecked_stops_the_file() {
    // keepalived -t exits 2 on each (its strvec_slot() on a word that is not there).
    for (block, line) in [
        ("global_defs", "umask"),
        ("vrrp_instance VI_1", "mcast_dst_ip"),
        ("vrrp_instance VI_1", "vrf"),
    ] {
        let (_, d) = load_str(&format!("{block} {{\n {line}\n}}\n"), Path::new("m.conf"));
        assert!(
            d.iter()
                .any(|d| d.line == 2 && d.flag == Flag::Abort && d.severity == Severity::Error),
            "{line}: {d:?}"
        );
    }
    // A route's or rule's value too, in keepalived 2.2.7 -t's words (measured), naming the
    // word before the missing one and its position.
    let inst = |block: &str, line: &str| {
        format!("vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {{\n  203.0.113.10/24\n }}\n {block} {{\n  {line}\n }}\n}}\n")
    };
    for (block, line, said) in [
        (
            "virtual_routes",
            "default via 203.0.113.1 dev",
            "starting `default` is missing a parameter after keyword `dev` at word position 5",
        ),
        (
            "virtual_routes",
            "default nexthop via 203.0.113.1 weight",
            "starting `default` is missing a parameter after keyword `weight` at word position 6",
        ),
        (
            "virtual_rules",
            "from 203.0.113.1 table",
            "starting `from` is missing a parameter after keyword `table` at word position 4",
        ),
    ] {
        let (_, d) = load_str(&inst(block, line), Path::new("m.conf"));
        let abort: Vec<_> = d.iter().filter(|d| d.flag == Flag::Abort).collect();
        assert_eq!(abort.len(), 1, "{line}: {d:?}");
        assert_eq!(abort[0].line, 8);
        assert!(
            abort[0].message.ends_with(said),
            "{line}: {}",
            abort[0].message
        );
    }
    // keepalived refuses `pref` on an IPv4 route before it reads the value: counted only.
    let (_, d) = load_str(
        &inst("virtual_routes", "203.0.113.0/24 dev eth0 pref"),
        Path::new("m.conf"),
    );
    assert_eq!(said(&d, "pref is only valid for IPv6"), [(8, true)]);
    assert!(d.iter().all(|d| d.flag != Flag::Abort), "{d:?}");
}

#[test]
fn unicast_peers_are_read_as_keepalived_reads_them() {
    // keepalived's inet_stosockaddr cuts at a `-` before a `/`, and the first peer sets the
    // family when no address did; lines and words measured with keepalived 2.2.7 -t.
    let text = "vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n\
                \x20unicast_peer {\n  198.51.100.2\n  198.51.100.3/-1\n  198.51.100.4-5\n  2001:db8::3\n }\n\
                \x20virtual_ipaddress {\n  203.0.113.10/24\n }\n}\n";
    let (cfg, d) = load_str(text, Path::new("m.conf"));
    assert_eq!(
        flagged_sorted(&d),
        [
            (7, "Configuration error: VRRP instance[VI_1] malformed unicast peer address[198.51.100.3/-1]. Skipping...".to_string()),
            (9, "Configuration error: VRRP instance[VI_1] and unicast peer address[2001:db8::3] MUST be of the same family !!! Skipping...".to_string()),
        ]
    );
    let peers: Vec<IpAddr> = ["198.51.100.2", "198.51.100.4"]
        .map(|p| p.parse().unwrap())
        .into();
    assert_eq!(cfg.instances[0].unicast_peers, peers);
}

/// `global_defs` keywords vrrpd does not act on are still checked as keepalived checks them,
/// and one that takes no block leaves a `{` after it stray (measured with keepalived 2.2.7's
/// `-t` on this file: lines 2, 3, 4, 5, 7, 9, 11, 13 and 14 counted; keepalived's `}` of
/// the stray block closes `global_defs`, so the lines after it are read at the top level).
#[test]
fn keywords_vrrpd_ignores_are_checked_as_keepalived_checks_them() {
    let text = "global_defs {\n checker_log_all_failures maybe\n dynamic_interfaces junk\n\
        \x20lvs_timeouts tcp 900 udp x tcpfin\n vrrp_netlink_cmd_rcv_bufs 31457280;\n\
        \x20vrrp_netlink_monitor_rcv_bufs 1048576\n lvs_netlink_cmd_rcv_bufs_force junk\n\
        \x20random_seed 12\n startup_script_timeout 1001\n enable_dbus\n {\n }\n router_id lb1\n}\n";
    let (cfg, d) = keepalived_conf::load_str_with(
        text,
        Path::new("g.conf"),
        &on_host(keepalived_conf::FakeHost::new()),
    );
    let lines: Vec<u32> = flagged(&d).iter().map(|f| f.0).collect();
    assert_eq!(lines, [2, 3, 4, 4, 5, 7, 9, 11, 13, 14], "{d:?}");
    assert_eq!(
        cfg.global.router_id, None,
        "read at the top level, as keepalived reads it"
    );
}

/// A script's group must exist as its user must (measured with keepalived 2.2.7's `-t`:
/// `script_user` line 2 and the MISC_CHECK's `user` line 9 counted, the checker removed; a
/// notify line's group only logged, the script dropped).
#[test]
fn a_scripts_group_must_exist_as_its_user_must() {
    let text = "global_defs {\n script_user nobody nosuchgroup\n}\n\
        virtual_server 192.0.2.10 80 {\n protocol TCP\n real_server 198.51.100.1 80 {\n\
        \x20 MISC_CHECK {\n   misc_path /bin/true\n   user nobody nosuchgroup\n  }\n }\n}\n\
        vrrp_instance A {\n interface eth0\n virtual_router_id 1\n\
        \x20notify_master \"/bin/true\" nobody nosuchgroup\n notify_backup \"/bin/true\" nobody nogroup\n}\n";
    let host = keepalived_conf::FakeHost::new()
        .with_interfaces(&["eth0"])
        .with_programs(&["/bin/true"])
        .with_users(&["nobody", "nogroup"]);
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("g.conf"), &on_host(host));
    assert!(
        cfg.virtual_servers[0].real_servers[0].checkers.is_empty(),
        "{d:?}"
    );
    let n = &cfg.instances[0].notify;
    assert_eq!(
        (n.master.as_deref(), n.backup.as_deref()),
        (None, Some("/bin/true"))
    );
    assert_eq!(said(&d, "Error setting global script uid/gid"), [(2, true)]);
    assert_eq!(
        said(&d, "Failed to set uid/gid for misc checker"),
        [(9, true)]
    );
    assert_eq!(
        said(&d, "Invalid user/group for notify script"),
        [(16, false)]
    );
}

/// A script line whose `"` is never closed: keepalived reports the quote and leaves the
/// script unset; the file still loads (measured with keepalived 2.2.7's `-t`: exit 5, line
/// 6 counted; its `-t` crashes on the `vrrp_script` one, where vrrpd removes the script).
#[test]
fn an_unterminated_quote_leaves_the_script_unset() {
    let text = "vrrp_script chk {\n script \"/bin/true\n}\n\
        vrrp_instance VI_1 {\n interface eth0\n notify_master \"/bin/true\n virtual_router_id 51\n\
        \x20virtual_ipaddress {\n  203.0.113.10/24\n }\n}\n";
    let host = keepalived_conf::FakeHost::new()
        .with_interfaces(&["eth0"])
        .with_programs(&["/bin/true"]);
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("u.conf"), &on_host(host));
    assert!(!d.iter().any(|d| d.is_error()), "nothing fatal: {d:?}");
    assert!(cfg.scripts.is_empty());
    assert_eq!(cfg.instances[0].notify.master, None);
    assert_eq!(
        cfg.instances[0].virtual_router_id, 51,
        "the lines after it are read"
    );
    assert_eq!(said(&d, "missing terminating"), [(2, true), (6, true)]);
}

#[test]
fn a_time_with_more_than_six_decimals_is_counted_and_rounded() {
    // keepalived's read_timer says so (counted; measured with keepalived 2.2.7 -t, lines 2,
    // 10 and 11) and takes the value rounded to the microsecond.
    let text = "global_defs {\n vrrp_garp_interval 0.0000015\n}\n\
                vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority 100\n\
                \x20nopreempt\n advert_int 1.0000001\n preempt_delay 1.0000001\n\
                \x20virtual_ipaddress {\n  203.0.113.10/24\n }\n}\n";
    let host = keepalived_conf::FakeHost::new().with_interfaces(&["eth0"]);
    let (cfg, d) = keepalived_conf::load_str_with(text, Path::new("t.conf"), &on_host(host));
    let lines: Vec<(u32, bool)> = said(&d, "has too many decimal places");
    assert_eq!(lines, [(2, true), (10, true), (11, true)]);
    assert_eq!(cfg.global.garp.interval, Duration::from_micros(2));
    assert_eq!(cfg.instances[0].advert_int, 100);
}

/// A keyword vrrpd does not act on, written without its value, is answered as keepalived's
/// handler answers it (measured one keyword a file with keepalived 2.2.7's `-t`): fatal where
/// the handler reads the word unchecked (exit 2), counted where it checks first (exit 5).
#[test]
fn a_bare_keyword_vrrpd_ignores_is_answered_as_keepalived_answers_it() {
    let load = |text: &str| {
        let host = keepalived_conf::FakeHost::new();
        keepalived_conf::load_str_with(text, Path::new("b.conf"), &on_host(host)).1
    };
    let fatal = |d: &[keepalived_conf::Diagnostic]| d.iter().any(|d| d.is_error());
    for k in [
        "process_name",
        "vmac_prefix",
        "nftables_priority",
        "config_save_dir",
        "vrrp_rlimit_rttime",
    ] {
        let d = load(&format!("global_defs {{\n {k}\n}}\n"));
        assert!(fatal(&d), "{k}: {d:?}");
    }
    for (k, said_) in [
        ("bfd_priority", "No bfd process priority specified"),
        ("reload_time_file", "reload_time_file invalid"),
        ("vrrp_rx_bufs_multiplier", "Invalid vrrp_rx_bufs_multiplier"),
    ] {
        let d = load(&format!("global_defs {{\n {k}\n}}\n"));
        assert!(!fatal(&d), "{k}: {d:?}");
        assert_eq!(said(&d, said_), [(2, true)], "{k}");
    }
    let d = load("child_wait_time\n");
    assert!(fatal(&d), "{d:?}");
    let d = load("bfd_instance b1 {\n neighbor_ip 192.0.2.9\n min_rx\n}\n");
    assert!(fatal(&d), "{d:?}");
    // keepalived drops a route at its unknown word and reads no further: the `src` left
    // without its value is never reached (exit 5, not 2).
    let d = load("static_routes {\n 192.0.2.96/24 dev eth1 link src\n}\n");
    assert!(!fatal(&d), "{d:?}");
    assert_eq!(said(&d, "unknown route keyword link"), [(2, true)]);
    for (k, said_) in [
        ("instance", "instance name missing"),
        ("track_group", "track_group must have a name"),
    ] {
        let d = load(&format!("{k}\n"));
        assert!(!fatal(&d), "{k}: {d:?}");
        assert_eq!(said(&d, said_), [(1, true)], "{k}");
    }
}

/// keepalived's VRRP side vets its scripts only when it has an instance to run: a
/// `vrrp_script` in a file without one (or whose only instance has no name) is no security
/// violation (measured with keepalived 2.2.7's `-t`: exit 0 and 5; 6 once an instance exists).
#[test]
fn vrrp_scripts_are_vetted_only_with_an_instance() {
    let script = "vrrp_script chk {\n script \"/usr/bin/killall -0 haproxy\"\n}\n";
    let load = |rest: &str| {
        let host = keepalived_conf::FakeHost::new()
            .with_interfaces(&["eth0"])
            .with_programs(&["/usr/bin/killall"]);
        let text = format!("{script}{rest}");
        keepalived_conf::load_str_with(&text, Path::new("v.conf"), &on_host(host)).1
    };
    assert_eq!(violations(&load("")), [0u32; 0]);
    assert_eq!(
        violations(&load(
            "vrrp_instance {\n interface eth0\n virtual_router_id 1\n}\n"
        )),
        [0u32; 0]
    );
    let named = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n}\n";
    assert_eq!(violations(&load(named)), [2]);
}

/// A DNS_CHECK `type` is one keepalived knows (any case), else reported and the default kept
/// (measured with keepalived 2.2.7's `-t`: line 5 counted).
#[test]
fn a_dns_check_type_is_one_keepalived_knows() {
    let text = "virtual_server 203.0.113.10 53 {\n protocol UDP\n real_server 203.0.113.20 53 {\n\
        \x20 DNS_CHECK {\n   type AAAA;\n  }\n  DNS_CHECK {\n   type dnskey\n  }\n }\n}\n";
    let (cfg, d) = keepalived_conf::load_str_with(
        text,
        Path::new("d.conf"),
        &on_host(keepalived_conf::FakeHost::new()),
    );
    let types: Vec<String> = cfg.virtual_servers[0]
        .resolved_checkers()
        .iter()
        .map(|r| match &r.probe {
            checks::spec::ProbeSpec::DnsCheck(c) => c.qtype.clone(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(types, ["SOA", "dnskey"]);
    assert_eq!(said(&d, "Unknown DNS check type"), [(5, true)]);
}

/// A virtual server over a group with an address and no port is made persistent, as
/// keepalived's check_data makes it (measured with keepalived 2.2.7's `-t`: counted, exit 5).
#[test]
fn a_group_address_without_a_port_makes_its_virtual_server_persistent() {
    let text = "virtual_server_group G {\n 198.51.100.1\n}\n\
        virtual_server group G {\n protocol TCP\n real_server 203.0.113.20 80 {\n }\n}\n";
    let (cfg, d) = keepalived_conf::load_str_with(
        text,
        Path::new("g.conf"),
        &on_host(keepalived_conf::FakeHost::new()),
    );
    assert_eq!(
        cfg.virtual_servers[0].service.persistence_timeout,
        Some(360)
    );
    assert_eq!(
        said(&d, "zero port only valid for persistent services"),
        [(4, true)]
    );
}
