//! What an operator sees of a running daemon (issue 14), as the shipped unit runs it: a NAT
//! virtual server with two real servers behind a VRRP instance, three client connections
//! open, then one real server's application stopped.
//!
//! Asserted: `vrrpd ipvsadm -L -n` / `--stats` / `-c` list what the test did (connections
//! per real server, packets and bytes both ways, the connection table) in ipvsadm's layout;
//! the checker's verdict reaches the listing (inhibited: weight 0); the metrics endpoint
//! passes `promtool check metrics`, and a real Prometheus scraping it answers queries for the
//! VRRP state, a real server's active connections and the checker's verdict; the log stream,
//! captured as systemd's journal captures stderr, has a `<N>` priority on every line and no
//! escape codes, and a reload that adds an instance logs `Reloading`, what was added and
//! `Reload complete`, never a state entry for the instance that stayed Master.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use lab::e2e::{self, ask, node};
use lab::lb::{in_netns, KeepAlive, LbLab, Plan, NAT_RS_PORT};
use lab::{require_root, wait_until, Daemon, Host};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
const RS1: &str = "198.51.100.11";
const RS2: &str = "198.51.100.12";
const METRICS: &str = "127.0.0.1:9464";
const PROMETHEUS: &str = "127.0.0.1:9465";

fn conf(extra_instance: bool) -> String {
    let mut c = node("lb", 150, 3, 0.1, &format!("{VIP}/24"));
    c.extra_global = Some(format!("    vrrpd_metrics_listen {METRICS}\n"));
    let rs = |a: &str, w: u32| {
        format!(
            "    real_server {a} {NAT_RS_PORT} {{\n        weight {w}\n        TCP_CHECK {{\n            connect_timeout 0.3\n            retry 0\n        }}\n    }}\n"
        )
    };
    let mut blocks = format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 0.2\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    inhibit_on_failure\n{}{}}}\n",
        rs(RS1, 1),
        rs(RS2, 2)
    );
    if extra_instance {
        blocks.push_str(
            "vrrp_instance VI_52 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 52\n    priority 100\n    advert_int 0.1\n    virtual_ipaddress {\n        203.0.113.101/24\n    }\n}\n",
        );
    }
    c.extra_blocks = Some(blocks);
    c.render()
}

/// The whitespace-separated fields of the listing line starting with `prefix`.
fn fields(listing: &str, prefix: &str) -> Vec<String> {
    listing
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in\n{listing}"))
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn num(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a whole number"))
}

/// A GET of `path` on `addr` from `host`'s namespace: (status line, body).
fn get(host: &Host, addr: &str, path: &str) -> Option<(String, String)> {
    let addr: SocketAddr = addr.parse().unwrap();
    in_netns(host, || {
        let mut t = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        t.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        t.write_all(format!("GET {path} HTTP/1.0\r\nHost: lab\r\n\r\n").as_bytes())
            .ok()?;
        let mut resp = String::new();
        t.read_to_string(&mut resp).ok()?;
        let (head, body) = resp.split_once("\r\n\r\n")?;
        Some((head.lines().next()?.to_string(), body.to_string()))
    })
    .ok()
    .flatten()
}

/// One instant query to the lab's Prometheus: the values of the result, as text.
fn query(host: &Host, q: &str) -> Vec<String> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let Some((_, body)) = get(host, PROMETHEUS, &format!("/api/v1/query?query={enc}")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|s| s["value"][1].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ipvsadm_listing_metrics_and_journal_logs() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd]) {
        return;
    }
    let mut lab = LbLab::new(Plan::Nat, 2, 0).expect("lab");
    let lb = lab.lb().clone();
    // The VRRP instance holds the VIP (the lab put it there for dataplane-only tests).
    lb.addr_del(&format!("{VIP}/32")).expect("VIP off");
    // stderr as systemd hands it to a unit with StandardError=journal: JOURNAL_STREAM names it.
    let log = lb.dir.join("vrrpd.log");
    std::fs::write(&log, "").unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    std::env::set_var("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    let daemon = Daemon::Vrrpd.start(&lb, &conf(false)).expect("vrrpd");
    std::env::remove_var("JOURNAL_STREAM");
    let socket = lb.dir.join("vrrpd.ctl");
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            lb.has_addr(IpAddr::V4(VIP)) && socket.exists()
        }),
        "never Master with a control socket:\n{}",
        daemon.log_text()
    );

    // Three connections, one request each, kept open (ESTABLISHED).
    let vip80 = SocketAddr::new(VIP.into(), 80);
    let mut conns = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            in_netns(lab.client(), || KeepAlive::connect(vip80))
                .ok()
                .and_then(|c| c.ok())
                .map(|mut c| {
                    let ok = c.get().is_ok();
                    if ok {
                        conns.push(c);
                    }
                    conns.len() == 3
                })
                .unwrap_or(false)
        }),
        "no connections through the VIP:\n{}",
        daemon.log_text()
    );

    // -L -n: ipvsadm's header, titles, the service and both real servers (rr: 2 + 1).
    let list = ask(&socket, &["ipvsadm", "-L", "-n"]);
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("IP Virtual Server version 1.2.1 (size="),
        "{list}"
    );
    assert_eq!(lines[1], "Prot LocalAddress:Port Scheduler Flags");
    assert_eq!(
        lines[2],
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
    );
    assert_eq!(lines[3], format!("TCP  {VIP}:80 rr"));
    let r1 = fields(&list, &format!("  -> {RS1}:"));
    let r2 = fields(&list, &format!("  -> {RS2}:"));
    assert_eq!((r1[2].as_str(), r1[3].as_str()), ("Masq", "1"), "{list}");
    assert_eq!((r2[2].as_str(), r2[3].as_str()), ("Masq", "2"), "{list}");
    let active = [num(&r1[4]), num(&r2[4])];
    assert_eq!(active.iter().sum::<u64>(), 3, "{list}");
    assert!(active.contains(&2) && active.contains(&1), "{list}");
    // The dest column starts where ipvsadm's %-28s puts it.
    let l1 = lines.iter().find(|l| l.contains(RS1)).unwrap();
    assert_eq!(&l1[33..39], " Masq ", "{list}");

    // -t VIP:80: the same service alone, without the version line (ipvsadm's list_service);
    // a service that does not exist is ipvsadm's error and exit status.
    let one = ask(
        &socket,
        &["ipvsadm", "-L", "-n", "-t", &format!("{VIP}:80")],
    );
    assert_eq!(one, lines[1..].join("\n") + "\n", "{list}");
    let bin = Daemon::Vrrpd.binary().expect("vrrpd binary");
    let none = Command::new(bin)
        .args(["ipvsadm", "-Ln", "-u", &format!("{VIP}:80"), "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No such service"),
        "{none:?}"
    );

    // --stats: 3 connections; SYN, ACK and the request in, the answers out, bytes both ways.
    let stats = ask(&socket, &["ipvsadm", "-L", "-n", "--stats"]);
    let svc = fields(&stats, &format!("TCP  {VIP}:80"));
    let (c, inp, outp, inb, outb) = (
        num(&svc[2]),
        num(&svc[3]),
        num(&svc[4]),
        num(&svc[5]),
        num(&svc[6]),
    );
    assert_eq!(c, 3, "{stats}");
    assert!(inp >= 9 && outp >= 6, "{stats}");
    assert!(inb >= inp * 40 && outb > outp * 40, "{stats}");
    let d1 = fields(&stats, &format!("  -> {RS1}:"));
    let d2 = fields(&stats, &format!("  -> {RS2}:"));
    assert_eq!(num(&d1[2]) + num(&d2[2]), 3, "{stats}");
    assert_eq!(num(&d1[3]) + num(&d2[3]), inp, "{stats}");

    // -c: the three connections, ESTABLISHED, from the client to the VIP, on the servers.
    let table = ask(&socket, &["ipvsadm", "-L", "-n", "-c"]);
    let tl: Vec<&str> = table.lines().collect();
    assert_eq!(tl[0], "IPVS connection entries");
    assert_eq!(
        tl[1],
        "pro expire state       source             virtual            destination"
    );
    let rows: Vec<Vec<&str>> = tl[2..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    for r in &rows {
        assert_eq!((r[0], r[2]), ("TCP", "ESTABLISHED"), "{table}");
        assert!(r[3].starts_with("203.0.113.10:"), "{table}");
        assert_eq!(r[4], format!("{VIP}:80"));
        assert!(
            r[5] == format!("{RS1}:{NAT_RS_PORT}") || r[5] == format!("{RS2}:{NAT_RS_PORT}"),
            "{table}"
        );
        // 15 minutes of ESTABLISHED timeout, counting down.
        assert!(r[1].starts_with("14:") || r[1] == "15:00", "{table}");
    }

    // RS2's application stops: its checker fails, inhibit_on_failure keeps it at weight 0.
    lab.stop_http(1);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            let l = ask(&socket, &["ipvsadm", "-Ln"]);
            fields(&l, &format!("  -> {RS2}:"))[3] == "0"
        }),
        "RS2 never inhibited:\n{}",
        ask(&socket, &["ipvsadm", "-Ln"])
    );

    // The status: the transition and why, the checker's verdict with its reason and latency.
    let st = ask(&socket, &["status"]);
    assert!(
        st.contains(" VI_51: Backup -> Master at ") && st.contains("(master down timer expired)"),
        "{st}"
    );
    let rs2_block = &st[st
        .find(&format!("TCP_CHECK {RS2}:"))
        .expect("RS2's checker")..];
    assert!(rs2_block.contains("   State = DOWN\n"), "{st}");
    assert!(rs2_block.contains("Connection refused"), "{st}");
    assert!(rs2_block.contains("   Last latency = "), "{st}");
    let js: serde_json::Value =
        serde_json::from_str(&ask(&socket, &["status", "--json"])).expect("status JSON");
    assert_eq!(js["instances"][0]["effective_priority"], 150);
    assert_eq!(
        js["instances"][0]["last_transition_reason"],
        "master down timer expired"
    );
    assert_eq!(js["listing"]["services"][0]["dests"][1]["weight"], 0);

    // The metrics endpoint: promtool accepts the exposition; the values are the test's.
    let (status, body) = get(&lb, METRICS, "/metrics").expect("scrape");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (ok, out) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(&body);
    assert!(ok, "promtool check metrics: {out}\n{body}");
    assert!(
        body.contains(&format!(
            "keepalived_vrrp_state{{iname=\"VI_51\",intf=\"eth0\",vrid=\"51\",ip_address=\"{VIP}\"}} 2\n"
        )),
        "{body}"
    );
    assert!(
        body.contains(
            "keepalived_become_master_total{iname=\"VI_51\",intf=\"eth0\",vrid=\"51\"} 1\n"
        ),
        "{body}"
    );
    assert!(body.contains(&format!(
        "node_ipvs_backend_weight{{local_address=\"{VIP}\",local_port=\"80\",remote_address=\"{RS2}\",remote_port=\"{NAT_RS_PORT}\",proto=\"TCP\",local_mark=\"\"}} 0\n"
    )), "{body}");
    assert!(body.contains("node_ipvs_connections_total 3\n"), "{body}");
    assert!(
        body.contains(&format!(
            "vrrpd_checker_up{{kind=\"TCP_CHECK\",address=\"{RS2}\",port=\"{NAT_RS_PORT}\"}} 0\n"
        )),
        "{body}"
    );

    // A real Prometheus in the balancer's namespace scrapes it.
    let prom_dir = lb.dir.join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom_conf = prom_dir.join("prometheus.yml");
    std::fs::write(
        &prom_conf,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: vrrpd\n    static_configs:\n      - targets: ['{METRICS}']\n"
        ),
    )
    .unwrap();
    let prom_args = [
        format!("--config.file={}", prom_conf.display()),
        format!("--storage.tsdb.path={}", prom_dir.join("data").display()),
        format!("--web.listen-address={PROMETHEUS}"),
    ];
    let _prom = lb
        .spawn(
            "prometheus",
            &prom_args,
            Some(&prom_dir.join("prometheus.log")),
        )
        .expect("prometheus");
    let rs1_active = format!("node_ipvs_backend_connections_active{{remote_address=\"{RS1}\"}}");
    let want_rs1 = active[0].to_string();
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
            query(&lb, "keepalived_vrrp_state") == ["2"]
                && query(&lb, &rs1_active) == [want_rs1.clone()]
                && query(&lb, &format!("vrrpd_checker_up{{address=\"{RS2}\"}}")) == ["0"]
                && query(&lb, &format!("vrrpd_checker_up{{address=\"{RS1}\"}}")) == ["1"]
        }),
        "Prometheus never answered the test's values: state {:?}, rs1 active {:?} (want {want_rs1}), checker {:?}\n{}",
        query(&lb, "keepalived_vrrp_state"),
        query(&lb, &rs1_active),
        query(&lb, "vrrpd_checker_up"),
        std::fs::read_to_string(prom_dir.join("prometheus.log")).unwrap_or_default()
    );

    // A reload adding an instance: keepalived's words, and VI_51 (still Master) enters nothing.
    std::fs::write(lb.dir.join("vrrpd.conf"), conf(true)).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            daemon.log_text().contains("<6>Reload complete")
        }),
        "no reload:\n{}",
        daemon.log_text()
    );
    let text = daemon.log_text();
    let after = &text[text.find("<6>Reloading").expect("Reloading")..];
    assert!(
        after.contains("<6>Reload: VRRP instance VI_52 added"),
        "{after}"
    );
    assert!(!after.contains("(VI_51) Entering"), "{after}");
    // The journal's view: a priority on every line, the banner, no escape codes.
    assert!(!text.contains('\x1b'), "escape codes in the journal stream");
    for line in text.lines() {
        let p = line.as_bytes();
        assert!(
            p.len() >= 3 && p[0] == b'<' && p[1].is_ascii_digit() && p[2] == b'>',
            "line without priority: {line:?}"
        );
    }
    assert!(text.contains("<6>Starting vrrpd v"), "{text}");
    assert!(text.contains("<6>Command line: '"), "{text}");
    assert!(
        text.contains("(VI_51) Entering MASTER STATE (from BACKUP)"),
        "{text}"
    );
    drop(conns);
}

/// Feeds `input` to a command's stdin: (success, stdout and stderr).
trait OutputWithStdin {
    fn output_with_stdin(&mut self, input: &str) -> (bool, String);
}

impl OutputWithStdin for Command {
    fn output_with_stdin(&mut self, input: &str) -> (bool, String) {
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }
}
