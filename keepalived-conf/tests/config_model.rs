//! The resolved model of representative keepalived samples, field by field; TOML both ways;
//! the preprocessor through `load`; the compatibility table kept in step with the registry.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use checks::spec::ProbeSpec;
use keepalived_conf::model::{Authentication, Config, InitialState, ParamMatch, Track};
use keepalived_conf::{self as config, load, LoadOptions};
use lbcore::spec::{ForwardingMethod, IpFamily, Protocol, SchedulerKind, ServiceKey};
use vrrp_proto::packet::Version;

const SAMPLES: &str = "/usr/share/doc/keepalived/samples";

fn sample(name: &str) -> Option<Config> {
    let p = Path::new(SAMPLES).join(name);
    if !p.exists() {
        println!("skipped: {} missing (install keepalived)", p.display());
        return None;
    }
    match load(&p, &LoadOptions::default()) {
        Ok((c, _)) => Some(c),
        Err(d) => panic!("{name}: {}", config::render(&d)),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn vrrp_sample_instances() {
    let Some(c) = sample("keepalived.conf.vrrp") else {
        return;
    };
    assert_eq!(c.global.router_id.as_deref(), Some("LVS_DEVEL"));
    let names: Vec<&str> = c.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["VI_1", "VI_2", "VI_3", "VI_4"]);
    let i = &c.instances[0];
    assert_eq!(i.state, InitialState::Master);
    assert_eq!(i.interface, "eth0");
    assert_eq!(i.virtual_router_id, 51);
    assert_eq!(i.priority, 100);
    assert_eq!(i.advert_int, 100);
    assert_eq!(i.version, Version::V2);
    assert!(!i.nopreempt);
    assert_eq!(i.authentication, Some(Authentication::Pass("1111".into())));
    let vips: Vec<(IpAddr, u8, Option<&str>)> = i
        .virtual_ipaddress
        .iter()
        .map(|v| (v.addr, v.prefix_len, v.dev.as_deref()))
        .collect();
    assert_eq!(
        vips,
        [
            (ip("192.168.200.16"), 32, None),
            (ip("192.168.200.17"), 32, None),
            (ip("192.168.200.18"), 32, None),
            (ip("192.168.200.18"), 32, None)
        ]
    );
    assert_eq!(i.virtual_ipaddress[3].label.as_deref(), Some("eth0:1"));
    assert_eq!(
        i.garp.master_delay,
        secs(10.0),
        "garp_master_delay 10 in the sample"
    );
    assert_eq!(i.unicast_ttl, 255);
}

#[test]
fn localcheck_sample_scripts_and_tracking() {
    let Some(c) = sample("keepalived.conf.vrrp.localcheck") else {
        return;
    };
    let s = &c.scripts[0];
    assert_eq!(s.name, "chk_sshd");
    assert_eq!(s.script, "killall -0 sshd");
    assert_eq!(s.interval, secs(2.0));
    assert_eq!(s.timeout, secs(2.0), "timeout defaults to the interval");
    assert_eq!((s.weight, s.rise, s.fall), (-4, 2, 2));
    let h = &c.scripts[1];
    assert_eq!(
        (h.name.as_str(), h.weight, h.rise, h.fall),
        ("chk_haproxy", 0, 1, 1)
    );
    assert_eq!(c.scripts.len(), 5);
    let i = &c.instances[0];
    assert_eq!(
        i.track_interfaces,
        [
            Track {
                name: "eth1".into(),
                weight: Some(2),
                reverse: false
            },
            Track {
                name: "eth2".into(),
                weight: Some(-2),
                reverse: false
            },
            Track {
                name: "eth3".into(),
                weight: None,
                reverse: false
            },
        ]
    );
    assert!(!i.track_scripts.is_empty());
}

#[test]
fn http_get_sample_virtual_server_and_checker_inheritance() {
    let Some(c) = sample("keepalived.conf.HTTP_GET.port") else {
        return;
    };
    let vs = &c.virtual_servers[0];
    let s = &vs.service;
    assert_eq!(
        s.key,
        ServiceKey::Addr {
            addr: ip("192.168.200.100"),
            port: Some(443)
        }
    );
    assert_eq!(s.scheduler, SchedulerKind::Rr);
    assert_eq!(s.forwarding, ForwardingMethod::Nat);
    assert_eq!(s.persistence_timeout, Some(50));
    assert_eq!(s.protocol, Protocol::Tcp);
    assert_eq!(s.delay_loop, 6);
    let rs = &s.real_servers[0];
    assert_eq!(
        (rs.addr, rs.port, rs.weight),
        (ip("192.168.201.100"), Some(443), 1)
    );
    let ProbeSpec::SslGet(h) = &vs.real_servers[0].checkers[0].probe else {
        panic!("SSL_GET expected: {:?}", vs.real_servers[0].checkers)
    };
    assert_eq!(h.connect.connect_port, Some(444));
    assert_eq!(h.urls[0].path, "/");
    assert_eq!(
        h.urls[0].digest.as_deref(),
        Some("ff20ad2481f97b1754ef3e12ecd3a9cc")
    );
    let r = &vs.resolved_checkers()[0];
    assert_eq!(
        r.timers.delay_loop,
        secs(6.0),
        "inherited from the virtual server"
    );
    assert_eq!(r.timers.connect_timeout, secs(3.0));
    assert_eq!(r.timers.retry, 3);
    assert_eq!(r.timers.delay_before_retry, secs(3.0));
    assert_eq!(r.timers.warmup, secs(6.0), "warmup defaults to delay_loop");
}

#[test]
fn ipv6_sample_group_and_smtp_check() {
    let Some(c) = sample("keepalived.conf.IPv6") else {
        return;
    };
    let g = &c.virtual_server_groups[0];
    assert_eq!(g.name, "IPv6_group");
    assert_eq!(
        g.entries,
        [
            lbcore::spec::GroupEntry::Range {
                first: ip("ae00::2"),
                last: ip("ae00::9"),
                port: Some(80)
            },
            lbcore::spec::GroupEntry::Range {
                first: ip("ae00::1"),
                last: ip("ae00::1"),
                port: Some(80)
            },
        ]
    );
    let vs = &c.virtual_servers[0];
    let ProbeSpec::SmtpCheck(smtp) = &vs.real_servers[0].checkers[0].probe else {
        panic!("SMTP_CHECK expected")
    };
    assert_eq!(smtp.helo_name.as_deref(), Some("foo.bar.com"));
    let r = &vs.resolved_checkers()[0];
    assert_eq!((r.timers.retry, r.timers.connect_timeout), (3, secs(3.0)));
    assert_eq!(r.target.port, 25);
}

#[test]
fn sync_and_misc_and_fwmark_samples() {
    if let Some(c) = sample("keepalived.conf.vrrp.sync") {
        assert_eq!(c.sync_groups[0].name, "G1");
        assert_eq!(
            c.sync_groups[0].group[..2],
            ["VI_1".to_string(), "VI_2".into()]
        );
        assert_eq!(c.sync_groups[1].group, ["VI_3".to_string(), "VI_4".into()]);
    }
    if let Some(c) = sample("keepalived.conf.misc_check_arg") {
        let ProbeSpec::MiscCheck(m) = &c.virtual_servers[0].real_servers[0].checkers[0].probe
        else {
            panic!("MISC_CHECK expected")
        };
        assert_eq!(m.misc_path, "/usr/local/bin/script.sh arg1 arg2");
        assert_eq!(c.virtual_servers[0].resolved_checkers()[0].timers.retry, 0);
    }
    if let Some(c) = sample("keepalived.conf.fwmark") {
        assert_eq!(
            c.virtual_servers[0].service.key,
            ServiceKey::Fwmark {
                mark: 1,
                family: IpFamily::Inet
            }
        );
    }
}

fn same(a: &Config, b: &Config) -> bool {
    // `source` positions are not part of the TOML; compare everything else.
    serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
}

#[test]
fn toml_round_trips_every_sample_both_ways() {
    let mut n = 0;
    for e in std::fs::read_dir(SAMPLES).into_iter().flatten().flatten() {
        let p = e.path();
        if !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("keepalived.conf.")
        {
            continue;
        }
        let Ok((from_conf, _)) = load(&p, &LoadOptions::default()) else {
            continue; // samples that are really broken have no model
        };
        let text = config::toml::to_string(&from_conf).unwrap();
        let from_toml = config::toml::from_str(&text, Path::new("x.toml"))
            .unwrap_or_else(|e| panic!("{}: {}\n{text}", p.display(), e.message));
        assert!(
            same(&from_conf, &from_toml),
            "{}: conf → toml → model differs",
            p.display()
        );
        // And back: the TOML model writes the same TOML.
        assert_eq!(
            config::toml::to_string(&from_toml).unwrap(),
            text,
            "{}",
            p.display()
        );
        n += 1;
    }
    if n == 0 {
        println!("skipped: no keepalived samples");
    }
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

#[test]
fn etc_vrrpd_toml_is_the_example_keepalived_conf() {
    let (conf, _) = load(&repo("etc/keepalived.conf"), &LoadOptions::default()).unwrap();
    let (toml, _) = load(&repo("etc/vrrpd.toml"), &LoadOptions::default())
        .unwrap_or_else(|d| panic!("{}", config::render(&d)));
    assert!(same(&conf, &toml));
}

#[test]
fn toml_errors_have_positions() {
    let e = config::toml::from_str("[global]\nrouter_idd = 1\n", Path::new("t.toml")).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("router_idd"), "{}", e.message);
}

#[test]
fn preprocessor_through_load() {
    let d = std::env::temp_dir().join(format!("vrrpd-pp-{}", std::process::id()));
    std::fs::create_dir_all(d.join("i")).unwrap();
    std::fs::write(d.join("main.conf"), "$VIP=192.0.2\ninclude i/{a,b}.conf\n").unwrap();
    std::fs::write(
        d.join("i/a.conf"),
        "$INST= \\\nvrrp_instance V${N} { \\\n interface e \\\n virtual_router_id ${N} \\\n@left priority 200 \\\n@^left priority 50 \\\n virtual_ipaddress { ${VIP}.${N} } \\\n}\n~SEQ(N,1,2) $INST\n",
    )
    .unwrap();
    std::fs::write(
        d.join("i/b.conf"),
        "global_defs { router_id ${_INSTANCE} }\n",
    )
    .unwrap();
    let opts = |id: &str| LoadOptions {
        config_id: Some(id.into()),
        ..Default::default()
    };
    let (c, _) = load(&d.join("main.conf"), &opts("left"))
        .unwrap_or_else(|e| panic!("{}", config::render(&e)));
    assert_eq!(c.global.router_id.as_deref(), Some("left"));
    let got: Vec<(String, u8, u8, IpAddr)> = c
        .instances
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.virtual_router_id,
                i.priority,
                i.virtual_ipaddress[0].addr,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("V1".into(), 1, 200, ip("192.0.2.1")),
            ("V2".into(), 2, 200, ip("192.0.2.2"))
        ]
    );
    let (c, _) = load(&d.join("main.conf"), &opts("right")).unwrap();
    assert_eq!(c.instances[0].priority, 50);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compat_table_is_current() {
    let path = repo("docs/COMPATIBILITY.md");
    let want = config::compat::table();
    if std::env::var_os("UPDATE_COMPAT").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/COMPATIBILITY.md is stale: run `UPDATE_COMPAT=1 cargo test -p vrrpd --test config_model compat` or `vrrpd --compat-table > docs/COMPATIBILITY.md`"
    );
    for kw in [
        "vrrp_instance",
        "virtual_server",
        "HTTP_GET",
        "track_script",
        "bfd_instance",
    ] {
        assert!(
            want.contains(&format!("`{kw}`")),
            "{kw} missing from the table"
        );
    }
}

/// The blocks beyond instances and virtual servers land in the model with their values, and
/// survive the TOML round trip.
#[test]
fn trackers_garp_groups_ssl_and_linkbeat_are_modelled() {
    let text = r#"
vrrp_track_file tf_1 {
    file /run/vrrp/weight
    weight -3 reverse
    init_file 7 overwrite
}
vrrp_track_process nginx {
    process "nginx: master"
    param_match partial
    quorum 2
    quorum_max 4
    weight 10
    delay 1.5
    full_command
}
garp_group {
    garp_interval 0.01
    interfaces {
        eth0
        eth1
    }
}
SSL {
    ca /etc/ssl/ca.pem
    certificate /etc/ssl/client.pem
    key /etc/ssl/client.key
}
linkbeat_interfaces {
    eth0
}
vrrp_sync_group SG {
    group {
        VI_1
    }
    track_file {
        tf_1 weight 2
    }
    notify_master "/bin/true master"
    global_tracking
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.0.2.100
    }
}
virtual_server 192.0.2.100 443 {
    real_server 192.0.2.11 443 {
        SSL_GET {
            url {
                path /
            }
        }
    }
}
"#;
    let (c, diags) = config::load_str(text, Path::new("t.conf"));
    assert!(
        !diags.iter().any(|d| d.is_error()),
        "{}",
        config::render(&diags)
    );

    let tf = &c.track_files[0];
    assert_eq!(
        (tf.name.as_str(), tf.weight, tf.reverse),
        ("tf_1", -3, true)
    );
    assert_eq!(tf.file, PathBuf::from("/run/vrrp/weight"));
    let init = tf.init_file.as_ref().unwrap();
    assert_eq!((init.value, init.overwrite), (7, true));

    let tp = &c.track_processes[0];
    assert_eq!(tp.process, "nginx: master");
    assert_eq!(tp.param_match, Some(ParamMatch::Partial));
    assert!(tp.params.is_empty());
    assert_eq!((tp.quorum, tp.quorum_max, tp.weight), (2, Some(4), 10));
    assert_eq!(tp.delay, Some(secs(1.5)));
    assert!(tp.full_command);

    let gg = &c.garp_groups[0];
    assert_eq!(gg.garp_interval, Some(secs(0.01)));
    assert_eq!(gg.interfaces, ["eth0", "eth1"]);
    assert_eq!(c.linkbeat_interfaces, ["eth0"]);

    let sg = &c.sync_groups[0];
    assert_eq!(sg.group, ["VI_1"]);
    assert_eq!(sg.track_files[0].name, "tf_1");
    assert_eq!(sg.track_files[0].weight, Some(2));
    assert_eq!(sg.notify.master.as_deref(), Some("/bin/true master"));
    assert!(sg.global_tracking);

    // The SSL block configures the SSL_GET checker.
    let ssl = c.ssl.as_ref().unwrap();
    assert_eq!(ssl.ca, Some(PathBuf::from("/etc/ssl/ca.pem")));
    match &c.virtual_servers[0].real_servers[0].checkers[0].probe {
        ProbeSpec::SslGet(h) => assert_eq!(h.tls.as_ref(), Some(ssl)),
        other => panic!("expected SSL_GET, got {other:?}"),
    }

    let toml = config::toml::to_string(&c).unwrap();
    let back = config::toml::from_str(&toml, Path::new("t.toml")).unwrap();
    assert!(same(&c, &back), "TOML round trip differs:\n{toml}");
}

/// `vrrp_track_process` as keepalived reads it: quoted words, parameters implying an exact
/// match and `full_command`, bare `param_match`, `quorum_max 0`, the delays; `track_process`
/// in instances and sync groups with per-use weights; the errors at their lines.
#[test]
fn track_process_rules() {
    let text = r#"
vrrp_track_process haproxy {
    process haproxy
    weight -50
}
vrrp_track_process args {
    process "/usr/bin/my app" -c "a b"
}
vrrp_track_process bare {
    process /usr/bin/app
    param_match
    terminate_delay 0.25
    delay 2
}
vrrp_track_process never {
    process telnetd
    quorum_max 0
    weight 0 reverse
}
vrrp_track_process long {
    process a-very-long-process-name
}
vrrp_track_process bad {
    process x
    quorum 3
    quorum_max 2
    param_match sometimes
}
vrrp_track_process empty {
    weight 1
}
vrrp_sync_group SG {
    group {
        VI_1
    }
    track_process {
        never
    }
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    track_process {
        haproxy weight -20 noreverse
        args weight 10 reverse
        nosuch
    }
    virtual_ipaddress {
        192.0.2.100
    }
}
"#;
    let (c, diags) = config::load_str(text, Path::new("t.conf"));
    let by = |n: &str| c.track_processes.iter().find(|p| p.name == n).unwrap();
    let h = by("haproxy");
    assert_eq!(
        (h.process.as_str(), h.weight, h.quorum),
        ("haproxy", -50, 1)
    );
    assert_eq!(
        (h.param_match, h.full_command, h.quorum_max),
        (None, false, None)
    );
    let a = by("args");
    assert_eq!(a.process, "/usr/bin/my app");
    assert_eq!(a.params, ["-c", "a b"]);
    assert_eq!(a.param_match, Some(ParamMatch::Exact));
    assert!(a.full_command);
    assert_eq!(a.weight, 0, "keepalived 2.2.7's default weight is 0");
    let b = by("bare");
    assert_eq!(
        (b.param_match, b.full_command),
        (Some(ParamMatch::Exact), true)
    );
    assert!(b.params.is_empty());
    assert_eq!(b.terminate_delay, Some(secs(0.25)));
    assert_eq!(b.delay, Some(secs(2.0)));
    let n = by("never");
    assert_eq!((n.quorum, n.quorum_max, n.reverse), (0, Some(0), true));
    let bad = by("bad");
    assert_eq!(
        (bad.quorum, bad.quorum_max, bad.param_match),
        (3, None, None)
    );
    assert!(c.track_processes.iter().all(|p| p.name != "empty"));

    let i = &c.instances[0];
    let t: Vec<_> = i
        .track_processes
        .iter()
        .map(|t| (t.name.as_str(), t.weight, t.reverse))
        .collect();
    // keepalived drops an entry naming no vrrp_track_process ("not found, ignoring").
    assert_eq!(t, [("haproxy", Some(-20), false), ("args", Some(10), true)]);
    assert_eq!(c.sync_groups[0].track_processes[0].name, "never");

    let text_of = |line: u32| {
        diags
            .iter()
            .filter(|d| d.line == line)
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    assert!(
        text_of(21).contains("longer than a process name can be"),
        "{}",
        config::render(&diags)
    );
    assert!(
        text_of(26).contains("quorum_max is less than quorum"),
        "{}",
        config::render(&diags)
    );
    assert!(
        text_of(27).contains("Invalid param_match type sometimes"),
        "{}",
        config::render(&diags)
    );
    assert!(
        text_of(29).contains("track process 'empty' process name not specified"),
        "{}",
        config::render(&diags)
    );
    assert!(
        text_of(46).contains("(VI_1) track process nosuch not found"),
        "{}",
        config::render(&diags)
    );
    // keepalived logs each of these and runs the file; so does vrrpd.
    assert!(
        !diags.iter().any(|d| d.is_error()),
        "{}",
        config::render(&diags)
    );

    let toml = config::toml::to_string(&c).unwrap();
    let back = config::toml::from_str(&toml, Path::new("t.toml")).unwrap();
    assert!(same(&c, &back), "TOML round trip differs:\n{toml}");
}

/// The commented examples at the end of etc/vrrpd.toml are valid: uncommented, the file still
/// loads, and each example section is there.
#[test]
fn etc_vrrpd_toml_examples_load() {
    let text = std::fs::read_to_string(repo("etc/vrrpd.toml")).unwrap();
    let (head, examples) = text.split_once("# ---- examples").unwrap();
    let uncommented: String = examples
        .lines()
        .skip(1)
        .map(|l| l.strip_prefix("# ").or(l.strip_prefix('#')).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    // The examples replace the empty lists the head declares.
    let head: String = head
        .lines()
        .filter(|l| {
            !matches!(
                *l,
                "scripts = []" | "sync_groups = []" | "virtual_servers = []"
            )
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let full = format!("{head}\n{uncommented}\n");
    let c = config::toml::from_str(&full, Path::new("vrrpd.toml"))
        .unwrap_or_else(|e| panic!("{}\n{full}", e.message));
    assert_eq!(c.scripts[0].name, "chk");
    assert_eq!(c.sync_groups[0].group, ["VI_1", "VI_6"]);
    assert_eq!(c.track_files[0].weight, -2);
    assert_eq!(c.track_processes[0].process, "nginx");
    assert_eq!(c.garp_groups[0].interfaces, ["eth0"]);
    assert!(c.ssl.is_some());
    assert_eq!(c.virtual_servers.len(), 1);
}

/// Our `track_virtual_server` extension: every way to name a virtual server, weights, and an
/// error at the line when the virtual server does not exist.
#[test]
fn track_virtual_server_extension() {
    use keepalived_conf::model::VsRef;
    let text = r#"
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.0.2.100
    }
    track_virtual_server {
        192.0.2.100 80 weight -50
        fwmark 7
        192.0.2.100 81
    }
}
virtual_server 192.0.2.100 80 {
    real_server 192.0.2.11 80 {
    }
}
virtual_server fwmark 7 {
    real_server 192.0.2.11 80 {
    }
}
"#;
    let (c, diags) = config::load_str(text, Path::new("t.conf"));
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{}", config::render(&diags));
    assert_eq!(errors[0].line, 11, "{}", config::render(&diags));
    assert!(errors[0]
        .message
        .contains("no virtual_server 192.0.2.100 81"));
    drop(c);

    let fixed = text.replace("        192.0.2.100 81\n", "");
    let (c, diags) = config::load_str(&fixed, Path::new("t.conf"));
    assert!(
        !diags.iter().any(|d| d.is_error()),
        "{}",
        config::render(&diags)
    );
    let t = &c.instances[0].track_virtual_servers;
    assert_eq!(t.len(), 2);
    assert_eq!(
        t[0].vs,
        VsRef::Addr {
            addr: ip("192.0.2.100"),
            port: Some(80)
        }
    );
    assert_eq!(t[0].weight, -50);
    assert_eq!((t[1].vs.clone(), t[1].weight), (VsRef::Fwmark(7), 0));
}

/// `use_vmac [NAME] [MAC]` and `vmac_xmit_base`.
#[test]
fn use_vmac_name_and_mac() {
    let text = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n use_vmac vrrp.x 02:00:5e:00:01:07\n vmac_xmit_base\n virtual_ipaddress {\n 192.0.2.100\n }\n}\nvrrp_instance VI_2 {\n interface eth0\n virtual_router_id 8\n use_vmac\n virtual_ipaddress {\n 192.0.2.101\n }\n}\n";
    let (c, diags) = config::load_str(text, Path::new("t.conf"));
    assert!(
        !diags.iter().any(|d| d.is_error()),
        "{}",
        config::render(&diags)
    );
    let v = c.instances[0].use_vmac.as_ref().unwrap();
    assert_eq!(v.name.as_deref(), Some("vrrp.x"));
    assert_eq!(v.mac, Some([0x02, 0x00, 0x5e, 0x00, 0x01, 0x07]));
    assert!(c.instances[0].vmac_xmit_base);
    let v = c.instances[1].use_vmac.as_ref().unwrap();
    assert_eq!((v.name.as_deref(), v.mac), (None, None));
    assert!(!c.instances[1].vmac_xmit_base);
}

/// Our TCP_CHECK extensions `half_open` and `reset_close`: flags (with an optional BOOL),
/// off by default, refused elsewhere (SMTP_CHECK's `host`).
#[test]
fn tcp_check_half_open_and_reset_close_extensions() {
    let text = "virtual_server 192.0.2.100 80 {\n real_server 192.0.2.11 80 {\n  TCP_CHECK {\n   half_open\n  }\n  TCP_CHECK {\n   reset_close on\n   half_open off\n  }\n  TCP_CHECK {\n  }\n }\n}\n";
    let (c, diags) = config::load_str(text, Path::new("t.conf"));
    assert!(
        !diags.iter().any(|d| d.is_error()),
        "{}",
        config::render(&diags)
    );
    let flags: Vec<(bool, bool)> = c.virtual_servers[0].real_servers[0]
        .checkers
        .iter()
        .map(|ch| match &ch.probe {
            ProbeSpec::TcpCheck(t) => (t.half_open, t.reset_close),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(flags, vec![(true, false), (false, true), (false, false)]);

    let smtp = "virtual_server 192.0.2.100 25 {\n real_server 192.0.2.11 25 {\n  SMTP_CHECK {\n   host {\n    half_open\n   }\n  }\n }\n}\n";
    let (_, diags) = config::load_str(smtp, Path::new("t.conf"));
    assert!(
        diags.iter().any(|d| d.keepalived_flags()
            && d.line == 5
            && d.message.contains("Unknown keyword 'half_open'")),
        "{}",
        config::render(&diags)
    );
}

/// FILE_CHECK names a track_file block defined before it (its file, and its weight unless the
/// checker has one); `flag-1` / `flag-2` are IPVS's fallback / port bits of sh and mh alike.
#[test]
fn file_check_names_a_track_file_and_scheduler_flags_map_like_ipvs() {
    let text = "track_file tf {\n file /run/weight\n weight 3 reverse\n}\n\
        virtual_server 192.0.2.100 80 {\n lb_algo mh\n flag-1\n flag-2\n\
        real_server 192.0.2.11 80 {\n  FILE_CHECK {\n   track_file tf\n  }\n  FILE_CHECK {\n   track_file tf\n   weight 2\n  }\n }\n}\n";
    let (c, diags) = config::load_str(text, Path::new("t.conf"));
    assert!(
        !diags.iter().any(|d| d.is_error()),
        "{}",
        config::render(&diags)
    );
    let files: Vec<_> = c.virtual_servers[0].real_servers[0]
        .checkers
        .iter()
        .map(|ch| match &ch.probe {
            ProbeSpec::FileCheck(f) => (f.file.clone(), f.weight, f.reverse),
            other => panic!("{other:?}"),
        })
        .collect();
    let run = PathBuf::from("/run/weight");
    assert_eq!(files, [(run.clone(), 3, true), (run, 2, false)]);
    let f = c.virtual_servers[0].service.sched_flags;
    assert!(f.mh_port && f.mh_fallback && f.sh_port && f.sh_fallback);

    let unknown = "virtual_server 192.0.2.100 80 {\n real_server 192.0.2.11 80 {\n  FILE_CHECK {\n   track_file nope\n  }\n }\n}\n";
    let (_, diags) = config::load_str(unknown, Path::new("t.conf"));
    assert!(
        diags
            .iter()
            .any(|d| d.keepalived_flags() && d.message.contains("track_file nope not found")),
        "{}",
        config::render(&diags)
    );
}

/// keepalived.conf(5)'s `virtualhost` precedence: a url's own, then the checker's, then the
/// real server's, then the virtual server's; asserted on the Host headers the HTTP_GET checkers
/// send to two local servers, and on the name an SSL_GET would present (SNI).
#[test]
fn virtualhost_precedence_url_checker_real_server_virtual_server() {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::sync::{Arc, Mutex};

    // path → Host header, from every request either server answers.
    let seen: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let mut ports = Vec::new();
    for _ in 0..2 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        ports.push(l.local_addr().unwrap().port());
        let seen = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut head = Vec::new();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                    head.push(std::mem::take(&mut line));
                }
                let path = head.first().and_then(|l| l.split(' ').nth(1));
                let host = head
                    .iter()
                    .find_map(|l| l.strip_prefix("host: ").or(l.strip_prefix("Host: ")));
                if let (Some(p), Some(h)) = (path, host) {
                    seen.lock().unwrap().insert(p.into(), h.trim().into());
                }
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
    }
    let check = |vhost: &str, path: &str, url_vhost: &str| {
        format!("  HTTP_GET {{\n   connect_timeout 1\n   {vhost}\n   url {{\n    path {path}\n    {url_vhost}\n   }}\n  }}\n")
    };
    let text = format!(
        "virtual_server 192.0.2.100 80 {{\n delay_loop 0.05\n virtualhost vs.example\n\
         real_server 127.0.0.1 {} {{\n{}  SSL_GET {{\n   enable_sni\n   url {{\n    path /\n   }}\n  }}\n }}\n\
         real_server 127.0.0.1 {} {{\n  virtualhost rs.example\n{}{}{}  SSL_GET {{\n   enable_sni\n   url {{\n    path /\n   }}\n  }}\n }}\n}}\n",
        ports[0],
        check("", "/vs", ""),
        ports[1],
        check("", "/rs", ""),
        check("virtualhost chk.example", "/chk", ""),
        check("virtualhost chk.example", "/url", "virtualhost url.example"),
    );
    let (c, diags) = config::load_str(&text, Path::new("t.conf"));
    // No error, and no "not supported" warning about `virtualhost` any more.
    assert!(
        !diags
            .iter()
            .any(|d| d.is_error() || d.message.contains("virtualhost")),
        "{}",
        config::render(&diags)
    );
    let resolved = c.virtual_servers[0].resolved_checkers();
    let names: Vec<Option<&str>> = resolved
        .iter()
        .filter_map(|r| match &r.probe {
            ProbeSpec::SslGet(h) => Some(h.virtualhost.as_deref()),
            _ => None,
        })
        .collect();
    assert_eq!(names, [Some("vs.example"), Some("rs.example")]);

    let http: Vec<_> = resolved
        .into_iter()
        .filter(|r| matches!(r.probe, ProbeSpec::HttpGet(_)))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (handle, _events) = checks::spawn(http).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen.lock().unwrap().len() < 4 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        handle.shutdown().await;
    });
    let want: BTreeMap<String, String> = [
        ("/vs", "vs.example"),
        ("/rs", "rs.example"),
        ("/chk", "chk.example"),
        ("/url", "url.example"),
    ]
    .into_iter()
    .map(|(p, h)| (p.into(), h.into()))
    .collect();
    assert_eq!(*seen.lock().unwrap(), want);
}

/// The mail keys of `global_defs` and `smtp_alert` everywhere, with keepalived's defaults:
/// instances and groups follow `smtp_alert_vrrp`, then `smtp_alert`, then off; virtual
/// servers `smtp_alert_checker`, then `smtp_alert`, then off; real servers the same but on
/// by default (and never the virtual server's own).
#[test]
fn smtp_alert_keys_and_defaults() {
    let text = "global_defs {\n notification_email {\n  ops@example.com\n  noc@example.org\n }\n \
        notification_email_from vrrp@example.com\n smtp_server 192.0.2.25 2525\n \
        smtp_helo_name lb1.example.com\n smtp_connect_timeout 7\n smtp_alert_checker off\n \
        no_email_faults\n no_checker_emails\n}\n\
        vrrp_sync_group G {\n group {\n  A\n }\n smtp_alert\n}\n\
        vrrp_instance A {\n interface eth0\n virtual_router_id 1\n smtp_alert no\n \
        virtual_ipaddress { 192.0.2.1 }\n}\n\
        vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress { 192.0.2.2 }\n}\n\
        virtual_server 192.0.2.100 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n smtp_alert\n real_server 198.51.100.1 80 {\n  smtp_alert on\n }\n \
        real_server 198.51.100.2 80 {\n }\n}\n";
    let (c, diags) = config::load_str(text, Path::new("t.conf"));
    assert!(
        diags
            .iter()
            .all(|d| d.message.contains("partly implemented")
                || d.message
                    .contains("Sync group G has only 1 virtual router(s)")),
        "{diags:?}"
    );
    let m = &c.global.mail;
    assert_eq!(m.notification_email, ["ops@example.com", "noc@example.org"]);
    assert_eq!(
        m.notification_email_from.as_deref(),
        Some("vrrp@example.com")
    );
    let server = m.smtp_server.as_ref().unwrap();
    assert_eq!((server.host.as_str(), server.port), ("192.0.2.25", 2525));
    assert_eq!(m.smtp_helo_name.as_deref(), Some("lb1.example.com"));
    assert_eq!(m.smtp_connect_timeout, secs(7.0));
    assert!(m.no_email_faults && m.no_checker_emails);
    assert_eq!(m.smtp_alert_checker, Some(false));
    assert_eq!(c.instances[0].smtp_alert, Some(false));
    assert_eq!(c.instances[1].smtp_alert, None);
    assert!(!m.vrrp_alert(c.instances[1].smtp_alert));
    assert_eq!(c.sync_groups[0].smtp_alert, Some(true));
    let vs = &c.virtual_servers[0];
    assert!(m.virtual_server_alert(vs.smtp_alert));
    assert_eq!(vs.real_servers[0].smtp_alert, Some(true));
    // smtp_alert_checker off is the real servers' default here.
    assert!(!m.real_server_alert(vs.real_servers[1].smtp_alert));

    let plain = keepalived_conf::model::MailDefs::default();
    assert_eq!(plain.smtp_connect_timeout, secs(30.0));
    assert!(!plain.vrrp_alert(None) && !plain.virtual_server_alert(None));
    assert!(plain.real_server_alert(None));
    let all = keepalived_conf::model::MailDefs {
        smtp_alert: Some(true),
        smtp_alert_vrrp: Some(false),
        ..plain
    };
    assert!(!all.vrrp_alert(None) && all.vrrp_alert(Some(true)));
    assert!(all.virtual_server_alert(None));

    // TOML round trip keeps them.
    let back: Config = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
    assert_eq!(back.global, c.global);
    assert_eq!(back.sync_groups, c.sync_groups);
    assert_eq!(back.virtual_servers, c.virtual_servers);
    assert_eq!(back.instances[0].smtp_alert, Some(false));
}
