//! `smtp_alert` end to end: an SMTP sink on a lab host (192.0.2.25) receives the alerts.
//!
//! - VRRP: a pair with `smtp_alert` goes through start, a crash of the Master and its
//!   return. keepalived 2.2.7 runs the same scenario first as the reference; each node's
//!   messages (envelope, headers, subject, body), dates and host names masked, must be the
//!   same with vrrpd.
//! - Checkers: keepalived's checker needs kernel IPVS, so there is no reference run; the
//!   messages are asserted against keepalived 2.2.7's source and strings: a killed real
//!   server mails its TCP_CHECK failure and the virtual server's lost quorum, and both again
//!   when it comes back.

use std::net::IpAddr;
use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab, Mail, NodeConf, SmtpSink};

const SINK: &str = "192.0.2.25";

/// a, b and the mail host.
fn lab() -> Lab {
    Lab::builder()
        .host("a", "192.0.2.1/24", "2001:db8::1/64")
        .host("b", "192.0.2.2/24", "2001:db8::2/64")
        .host("mail", "192.0.2.25/24", "2001:db8::25/64")
        .build()
        .unwrap()
}

fn sink(lab: &Lab) -> SmtpSink {
    SmtpSink::start(lab.host("mail"), SINK.parse().unwrap(), 25).unwrap()
}

/// The mail settings of both nodes.
fn mail_global() -> String {
    format!(
        "notification_email {{\n        ops@example.com\n        noc@example.org\n    }}\n    \
         notification_email_from vrrp@example.com\n    smtp_server {SINK} 25\n    \
         smtp_connect_timeout 5"
    )
}

/// A message with what differs between runs masked: the date (checked for its shape) and
/// the machine's host name (HELO's default).
fn masked(m: &Mail) -> String {
    let date = m.header("Date").unwrap_or("");
    assert!(looks_like_date(date), "Date: {date:?}");
    let host = nix::unistd::gethostname()
        .unwrap()
        .into_string()
        .unwrap_or_default();
    let data = m.data.replace(date, "<DATE>");
    let text = format!(
        "{}\nMAIL FROM:<{}>\nRCPT TO:{:?}\n{}",
        m.helo, m.from, m.rcpt, data
    );
    // Where the defaults put the host name: HELO, USER@HOST, [ROUTER_ID].
    text.replace(&format!("HELO {host}\n"), "HELO <HOST>\n")
        .replace(&format!("@{host}>"), "@<HOST>>")
        .replace(&format!("@{host}\r\n"), "@<HOST>\r\n")
        .replace(&format!("[{host}] "), "[<HOST>] ")
}

/// `Wed, 02 Dec 2026 15:21:24 +0000`.
fn looks_like_date(d: &str) -> bool {
    let w: Vec<&str> = d.split(' ').collect();
    w.len() == 6
        && w[0].len() == 4
        && w[0].ends_with(',')
        && w[1].len() == 2
        && w[2].len() == 3
        && w[3].len() == 4
        && w[4].len() == 8
        && w[5].len() == 5
        && (w[5].starts_with('+') || w[5].starts_with('-'))
}

fn from(mails: &[Mail], peer: &str) -> Vec<Mail> {
    let peer: IpAddr = peer.parse().unwrap();
    mails.iter().filter(|m| m.peer == peer).cloned().collect()
}

fn subjects(mails: &[Mail]) -> Vec<String> {
    mails
        .iter()
        .map(|m| m.header("Subject").unwrap_or("").to_string())
        .collect()
}

/// Waits until the sink holds `n` messages; panics with what it has and the logs.
fn wait_mails(sink: &SmtpSink, n: usize, logs: &dyn Fn() -> String) -> Vec<Mail> {
    let ok = wait_until(Duration::from_secs(15), Duration::from_millis(20), || {
        sink.mails().len() >= n
    });
    let mails = sink.mails();
    assert!(
        ok,
        "{} of {n} mails: {:#?}\n{}",
        mails.len(),
        subjects(&mails),
        logs()
    );
    mails
}

/// Start, crash of the Master a (SIGKILL and cable cut), b takes over, a comes back and
/// preempts. Returns every message the sink got, in arrival order.
fn crash_failover(d: Daemon) -> Vec<Mail> {
    let lab = lab();
    let sink = sink(&lab);
    // Half-second adverts: a loaded 2-core box must not make either daemon flap (an extra
    // transition is an extra mail).
    let conf = |id: &str, prio: u8| -> NodeConf {
        let mut c = node(id, prio, 3, 0.5, VIP4);
        c.extra_global = Some(mail_global());
        c.extra_instance = Some("smtp_alert".into());
        c
    };
    let (ca, cb) = (conf("a", 150), conf("b", 100));
    let mut pair = e2e::start_pair(lab, d, &ca, d, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(10)).unwrap();
    // a: BACKUP (start), MASTER; b: BACKUP.
    wait_mails(&sink, 3, &|| {
        format!("a:\n{}\nb:\n{}", pair.a.log_text(), pair.b.log_text())
    });

    let a = pair.lab.host("a").clone();
    let b = pair.lab.host("b").clone();
    e2e::crash(&mut pair.a, &a).unwrap();
    assert!(wait_until(
        Duration::from_secs(8),
        Duration::from_millis(10),
        || b.has_addr(pair.vip)
    ));
    wait_mails(&sink, 4, &|| pair.b.log_text());

    pair.a = e2e::restart(d, &a, &ca).unwrap();
    pair.wait_master("a", Duration::from_secs(10)).unwrap();
    // a: BACKUP, MASTER again; b: BACKUP.
    let mails = wait_mails(&sink, 7, &|| {
        format!("a:\n{}\nb:\n{}", pair.a.log_text(), pair.b.log_text())
    });
    // Nothing more comes (bounded look).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sink.mails().len(),
        mails.len(),
        "{:#?}",
        subjects(&sink.mails())
    );
    mails
}

/// keepalived 2.2.7 and vrrpd mail the same messages, node by node, in the same order.
#[test]
fn vrrp_crash_failover_mails_as_keepalived() {
    require_root!();
    if !e2e::available(&[Daemon::Keepalived, Daemon::Vrrpd]) {
        return;
    }
    let reference = crash_failover(Daemon::Keepalived);
    for m in &reference {
        eprintln!("keepalived, from {}:\n{}", m.peer, masked(m));
    }
    eprintln!("keepalived: {:#?}", subjects(&reference));
    let ours = crash_failover(Daemon::Vrrpd);
    eprintln!("vrrpd: {:#?}", subjects(&ours));
    for peer in ["192.0.2.1", "192.0.2.2"] {
        let want: Vec<String> = from(&reference, peer).iter().map(masked).collect();
        let got: Vec<String> = from(&ours, peer).iter().map(masked).collect();
        assert_eq!(got, want, "messages from {peer}");
    }

    // What they are, in keepalived's words.
    let a = from(&ours, "192.0.2.1");
    assert_eq!(
        subjects(&a),
        [
            "[a] VRRP Instance VI_51 - Entering BACKUP state",
            "[a] VRRP Instance VI_51 - Entering MASTER state",
            "[a] VRRP Instance VI_51 - Entering BACKUP state",
            "[a] VRRP Instance VI_51 - Entering MASTER state",
        ]
    );
    assert_eq!(
        subjects(&from(&ours, "192.0.2.2")),
        [
            "[b] VRRP Instance VI_51 - Entering BACKUP state",
            "[b] VRRP Instance VI_51 - Entering MASTER state",
            "[b] VRRP Instance VI_51 - Entering BACKUP state",
        ]
    );
    let m = &a[1];
    assert_eq!(m.from, "vrrp@example.com");
    assert_eq!(m.rcpt, ["ops@example.com", "noc@example.org"]);
    assert!(m.helo.starts_with("HELO "), "{}", m.helo);
    assert_eq!(
        m.header_names(),
        ["Date", "From", "Subject", "X-Mailer", "To"]
    );
    assert_eq!(m.header("X-Mailer"), Some("Keepalived"));
    assert_eq!(m.header("To"), Some("ops@example.com, noc@example.org"));
    assert_eq!(
        m.body(),
        "=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n"
    );
    assert_eq!(
        a[0].body(),
        "=> VRRP Instance is no longer owning VRRP VIPs <=\r\n\r\n"
    );
}

/// vrrpd pair; a balances 192.0.2.100:80 over two real servers (quorum 2) with `smtp_alert`
/// on the virtual server and the real servers' default (on), and tracks the virtual server.
/// Killing one real server mails its TCP_CHECK failure and the lost quorum; a hands the VIP
/// to b (mailed as a VRRP transition, `smtp_alert_vrrp`); the server's return mails both
/// again. With `no_email_faults` none of this changes (no FAULT here).
#[test]
fn checker_mails_when_a_real_server_dies() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let lab = lab();
    let sink = sink(&lab);
    let a = lab.host("a").clone();
    let rs = ["198.51.100.1", "198.51.100.2"];
    let mut backends = e2e::loopback_http_servers(&a, &rs, 80).expect("real servers");
    let mut rs1 = backends.remove(0);
    let mut ca = node("a", 150, 3, 0.1, VIP4);
    ca.extra_global = Some(format!("{}\n    smtp_alert_vrrp", mail_global()));
    ca.extra_instance =
        Some("track_virtual_server {\n        192.0.2.100 80 weight -100\n    }".into());
    let servers: String = rs
        .iter()
        .map(|r| {
            format!(
                "    real_server {r} 80 {{\n        TCP_CHECK {{\n            connect_timeout 0.3\n            \
                 retry 1\n            delay_before_retry 0.1\n        }}\n    }}\n"
            )
        })
        .collect();
    ca.extra_blocks = Some(format!(
        "virtual_server 192.0.2.100 80 {{\n    delay_loop 0.2\n    quorum 2\n    smtp_alert\n{servers}}}"
    ));
    let cb = node("b", 100, 3, 0.1, VIP4);
    let mut pair = e2e::start_pair(lab, Daemon::Vrrpd, &ca, Daemon::Vrrpd, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let logs = || pair.a.log_text();
    // a: BACKUP, MASTER (b has no mail settings).
    wait_mails(&sink, 2, &logs);

    rs1.stop(Duration::from_millis(500));
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    let _rs1 = e2e::http_server(&a, rs[0], 80).expect("python3 http.server");
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    let mails = wait_mails(&sink, 8, &|| pair.a.log_text());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.mails().len(), 8, "{:#?}", subjects(&sink.mails()));

    let rs_subject = |s| {
        format!("[a] Realserver [198.51.100.1]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - {s}")
    };
    let vs_subject = |s| format!("[a] Virtualserver [192.0.2.100]:tcp:80 - {s}");
    let got: Vec<(String, String)> = mails
        .iter()
        .map(|m| {
            (
                m.header("Subject").unwrap_or("").to_string(),
                m.body().trim_end().to_string(),
            )
        })
        .collect();
    let vrrp = |s: &str, body: &str| {
        (
            format!("[a] VRRP Instance VI_51 - Entering {s} state"),
            body.to_string(),
        )
    };
    let want = [
        vrrp(
            "BACKUP",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        vrrp("MASTER", "=> VRRP Instance is now owning VRRP VIPs <="),
        // keepalived notifies the virtual server's quorum before the checker mails.
        (vs_subject("DOWN"), "=> Lost quorum 2+0=2 <= 1 <=".into()),
        (
            rs_subject("DOWN"),
            "=> TCP CHECK failed on service <=".into(),
        ),
        vrrp(
            "BACKUP",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        (vs_subject("UP"), "=> Gained quorum 2+0=2 <= 2 <=".into()),
        (
            rs_subject("UP"),
            "=> TCP CHECK succeed on service <=".into(),
        ),
        vrrp("MASTER", "=> VRRP Instance is now owning VRRP VIPs <="),
    ];
    // The VRRP transition and the checker's mails race (a different task each): compare
    // the checker's in order, and the whole as a set.
    let checker_only = |v: &[(String, String)]| -> Vec<(String, String)> {
        v.iter()
            .filter(|(s, _)| !s.contains("VRRP"))
            .cloned()
            .collect()
    };
    assert_eq!(checker_only(&got), checker_only(&want));
    let (mut g, mut w) = (got.clone(), want.to_vec());
    g.sort();
    w.sort();
    assert_eq!(g, w);
    assert!(mails
        .iter()
        .all(|m| m.peer == "192.0.2.1".parse::<IpAddr>().unwrap()));
    // The JSON dump counts them.
    let (_, dump) = e2e::json_dumps(&pair.a).unwrap();
    assert_eq!(
        dump["smtp"],
        serde_json::json!({"sent": 8, "failed": 0, "dropped": 0}),
        "{dump:#}"
    );
}

/// One node, keepalived's defaults (no `router_id`, sender or HELO name: the host name and
/// `USER@HOST`; port 25), `smtp_alert_vrrp` for every instance but one that says `off`, a
/// sync group, and a FAULT from a tracked file. keepalived 2.2.7 first, then vrrpd: the same
/// messages (keepalived sends each over its own connection at once, so their order is not
/// compared). A SIGTERM mails nothing (keepalived exits before its "Stopping" mail leaves).
#[test]
fn defaults_sync_group_and_fault_as_keepalived() {
    require_root!();
    if !e2e::available(&[Daemon::Keepalived, Daemon::Vrrpd]) {
        return;
    }
    let run = |d: Daemon| -> Vec<String> {
        let lab = lab();
        let sink = sink(&lab);
        let a = lab.host("a").clone();
        let tf = a.dir.join("tf");
        std::fs::write(&tf, "0\n").unwrap();
        let inst = |n: u8, extra: &str| {
            format!(
                "vrrp_instance VI_{n} {{\n    state MASTER\n    interface eth0\n    virtual_router_id {n}\n    \
                 priority 200\n    advert_int 1\n{extra}    virtual_ipaddress {{\n        192.0.2.10{n}/24 dev eth0\n    }}\n}}\n"
            )
        };
        let conf = format!(
            "global_defs {{\n    notification_email {{\n        ops@example.com\n    }}\n    \
             smtp_server {SINK}\n    smtp_alert_vrrp\n}}\n\
             track_file tf {{\n    file {}\n    weight 0\n}}\n\
             vrrp_sync_group G1 {{\n    group {{\n        VI_1\n        VI_2\n    }}\n}}\n{}{}{}",
            tf.display(),
            inst(1, ""),
            inst(2, "    smtp_alert off\n"),
            inst(3, "    track_file {\n        tf\n    }\n"),
        );
        let mut p = d.start(&a, &conf).unwrap();
        let logs = || p.log_text();
        // VI_1, G1, VI_3: BACKUP at start, then MASTER.
        wait_mails(&sink, 6, &logs);
        std::fs::write(&tf, "1\n").unwrap();
        wait_mails(&sink, 7, &logs);
        std::fs::write(&tf, "0\n").unwrap();
        // VI_3: BACKUP, then MASTER.
        wait_mails(&sink, 9, &logs);
        std::thread::sleep(Duration::from_millis(500));
        assert!(p.terminate(Duration::from_secs(5)), "{} did not stop", d);
        std::thread::sleep(Duration::from_millis(500));
        let mails = sink.mails();
        assert_eq!(mails.len(), 9, "{d}: {:#?}", subjects(&mails));
        let mut out: Vec<String> = mails.iter().map(masked).collect();
        out.sort();
        out
    };
    let reference = run(Daemon::Keepalived);
    let ours = run(Daemon::Vrrpd);
    assert_eq!(ours, reference);
    let subjects: Vec<&str> = ours
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("Subject: ")))
        .collect();
    for want in [
        "Subject: [<HOST>] VRRP Group G1 - Entering MASTER state",
        "Subject: [<HOST>] VRRP Instance VI_3 - Entering FAULT state",
    ] {
        assert!(subjects.contains(&want), "{want:?} in {subjects:#?}");
    }
    assert!(
        !subjects.iter().any(|s| s.contains("VI_2")),
        "{subjects:#?}"
    );
    assert!(ours.iter().all(|m| m.contains("MAIL FROM:<root@<HOST>>")));
}

/// A reload that drops an instance: keepalived 2.2.7 mails it as entering FAULT (measured);
/// the instance it keeps is not mailed again. keepalived first, then vrrpd, same messages.
#[test]
fn reload_dropping_an_instance_as_keepalived() {
    require_root!();
    if !e2e::available(&[Daemon::Keepalived, Daemon::Vrrpd]) {
        return;
    }
    let run = |d: Daemon| -> Vec<String> {
        let lab = lab();
        let sink = sink(&lab);
        let a = lab.host("a").clone();
        let inst = |n: u8| {
            format!(
                "vrrp_instance VI_{n} {{\n    state MASTER\n    interface eth0\n    virtual_router_id {n}\n    \
                 priority 200\n    advert_int 1\n    virtual_ipaddress {{\n        192.0.2.10{n}/24 dev eth0\n    }}\n}}\n"
            )
        };
        let global = format!(
            "global_defs {{\n    router_id R\n    notification_email {{\n        ops@example.com\n    }}\n    \
             smtp_server {SINK} 25\n    smtp_alert\n}}\n"
        );
        let mut p = d
            .start(&a, &format!("{global}{}{}", inst(1), inst(2)))
            .unwrap();
        let logs = || p.log_text();
        // Both: BACKUP, then MASTER.
        wait_mails(&sink, 4, &logs);
        std::fs::write(
            a.dir.join(format!("{d}.conf")),
            format!("{global}{}", inst(1)),
        )
        .unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p.pid() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
        let mails = wait_mails(&sink, 5, &logs);
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(sink.mails().len(), 5, "{d}: {:#?}", subjects(&sink.mails()));
        assert!(p.is_running(), "{d} stopped:\n{}", p.log_text());
        mails[4..].iter().map(masked).collect()
    };
    let reference = run(Daemon::Keepalived);
    let ours = run(Daemon::Vrrpd);
    assert_eq!(ours, reference);
    assert!(
        ours[0].contains("Subject: [R] VRRP Instance VI_2 - Entering FAULT state\r\n"),
        "{ours:#?}"
    );
}
