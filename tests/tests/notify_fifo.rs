//! Notify FIFOs end to end: the instance events keepalived writes besides the states
//! (`MASTER_RX_LOWER_PRI`, `MASTER_PRIORITY` / `BACKUP_PRIORITY` with
//! `notify_priority_changes`), `notify_master_rx_lower_pri`, the `*_fifo_script` reading a
//! FIFO (started with the FIFO as last argument as `script_user`, stopped with the daemon),
//! and the checker lines (`VS …` / `RS …`) on `lvs_notify_fifo` and `notify_fifo`; a reload
//! restarts the script and writes no state again.
//!
//! The VRRP and reload cases run with keepalived 2.2.7 on node a as the reference, then with
//! vrrpd, and assert the same lines in the same order for both. keepalived's checker needs kernel IPVS,
//! so the checker lines are asserted against keepalived.conf(5)'s format.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::e2e::{self, node, VIP4};
use lab::scenario::Pair;
use lab::wait::wait_until;
use lab::{require_root, Daemon, Host, Lab, ScriptDir};

const D: Daemon = Daemon::Vrrpd;

/// A directory the scripts (as `nobody`) write their findings to, and the FIFO reader: it
/// records who runs it with which arguments and its pid, copies the FIFO (its last argument)
/// to `<fifo name>.lines`, and notes the SIGTERM it gets.
struct Out {
    dir: ScriptDir,
    out: PathBuf,
    reader: PathBuf,
}

impl Out {
    fn new() -> Option<Self> {
        let Some(nobody) = nix::unistd::User::from_name("nobody").ok().flatten() else {
            eprintln!("skipped: no user nobody");
            return None;
        };
        let dir = ScriptDir::new().unwrap();
        let out = dir.path("out");
        std::fs::create_dir(&out).unwrap();
        nix::unistd::chown(&out, Some(nobody.uid), None).unwrap();
        let o = out.display();
        let reader = dir
            .script(
                "reader.sh",
                &format!(
                    "for f; do :; done\nn=$(basename \"$f\")\n\
                     echo \"$(id -un) $*\" >> {o}/$n.args\necho $$ > {o}/$n.pid\n\
                     trap 'echo TERM >> {o}/$n.term; exit 0' TERM\n\
                     cat \"$f\" >> {o}/$n.lines &\nwait"
                ),
            )
            .unwrap();
        Some(Self { dir, out, reader })
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_default()
    }

    fn lines(&self, name: &str) -> Vec<String> {
        self.read(name).lines().map(String::from).collect()
    }

    /// Waits until `name` has at least `n` lines.
    fn wait_lines(&self, name: &str, n: usize, pair: &Pair) {
        assert!(
            wait_until(Duration::from_secs(5), Duration::from_millis(10), || self
                .lines(name)
                .len()
                >= n),
            "{name}: {:?}\na log:\n{}",
            self.read(name),
            pair.a.log_text()
        );
    }

    /// The reader of FIFO `name` got SIGTERM and is gone, and so is the FIFO (we made it).
    fn assert_reader_stopped(&self, name: &str, fifo: &Path) {
        let pid = self.read(&format!("{name}.pid")).trim().to_string();
        assert!(!pid.is_empty(), "{name}: the reader never ran");
        let gone = wait_until(Duration::from_secs(3), Duration::from_millis(20), || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty() || stat.contains(") Z")
        });
        assert!(gone, "{name}: reader {pid} outlived the daemon");
        assert_eq!(self.read(&format!("{name}.term")), "TERM\n");
        assert!(!fifo.exists(), "{} left behind", fifo.display());
    }
}

/// Drops VRRP in and out on `host` (a VRRP-only partition, client traffic untouched).
fn block_vrrp(host: &Host) {
    for args in [
        vec!["add", "table", "inet", "blk"],
        vec![
            "add",
            "chain",
            "inet",
            "blk",
            "in",
            "{ type filter hook input priority 0 ; }",
        ],
        vec![
            "add",
            "chain",
            "inet",
            "blk",
            "out",
            "{ type filter hook output priority 0 ; }",
        ],
        vec![
            "add", "rule", "inet", "blk", "in", "ip", "protocol", "vrrp", "drop",
        ],
        vec![
            "add", "rule", "inet", "blk", "out", "ip", "protocol", "vrrp", "drop",
        ],
    ] {
        nft(host, &args);
    }
}

fn nft(host: &Host, args: &[&str]) {
    let out = host.exec("nft", args).unwrap();
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Consecutive repeats of `word`'s line kept once: a Master hears the other side's lower
/// priority once per advert until it steps down, and how many arrive first is timing.
fn squeeze(lines: Vec<String>, word: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        if l.contains(word) && out.last() == Some(&l) {
            continue;
        }
        out.push(l);
    }
    out
}

#[test]
fn vrrp_events_and_fifo_script() {
    vrrp_case(D);
}

/// The same with keepalived 2.2.7 on a: the reference for the lines, their order, the
/// script's arguments and user, and how the FIFO and its script are handled.
#[test]
fn vrrp_events_and_fifo_script_reference_keepalived() {
    vrrp_case(Daemon::Keepalived);
}

/// a (150, a track_file at 2 × -10 = 130, a vrrp_script weight -100) against b (vrrpd, 100,
/// advert every second). Script fails: 30, b takes over; back: 130, a preempts. Then a
/// VRRP-only split: b goes Master; a hears b's lower priority first when the split heals.
fn vrrp_case(da: Daemon) {
    require_root!();
    if !e2e::available(&[da, D]) {
        return;
    }
    let Some(out) = Out::new() else { return };
    let o = out.out.display();
    let note = out
        .dir
        .script("note.sh", &format!("echo \"$(id -un) $*\" >> {o}/notes"))
        .unwrap();
    let fail = out.dir.path("fail");
    let chk = out
        .dir
        .script("chk.sh", &format!("test ! -e {}", fail.display()))
        .unwrap();
    let fifo = out.dir.path("vfifo");
    let tf = out.dir.path("tf");
    let mut ca = node("a", 150, 3, 0.1, VIP4);
    ca.extra_global = Some(format!(
        "enable_script_security\n    script_user nobody\n    vrrp_notify_fifo {}\n    \
         vrrp_notify_fifo_script {}",
        fifo.display(),
        out.reader.display()
    ));
    // keepalived takes whole seconds for a vrrp_script interval.
    ca.extra_top = Some(format!(
        "vrrp_track_file tf {{\n    file {}\n    weight -10\n    init_file 2\n}}\n\
         vrrp_script chk {{\n    script \"{}\"\n    interval 1\n    weight -100\n    fall 1\n    rise 1\n}}",
        tf.display(),
        chk.display()
    ));
    let n = note.display();
    ca.extra_instance = Some(format!(
        "notify_master_rx_lower_pri \"{n} rxlower\"\n    notify_priority_changes\n    notify {n}\n    \
         track_script {{\n        chk\n    }}\n    track_file {{\n        tf\n    }}"
    ));
    let cb = node("b", 100, 3, 1.0, VIP4);
    let lab = Lab::builder().build().unwrap();
    let mut pair = e2e::start_pair(lab, da, &ca, D, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(8)).unwrap();
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = std::fs::metadata(&fifo).unwrap();
        assert!(m.file_type().is_fifo());
        assert_eq!(m.mode() & 0o777, 0o600, "FIFO mode");
        assert_eq!(
            m.uid(),
            nix::unistd::User::from_name("nobody")
                .unwrap()
                .unwrap()
                .uid
                .as_raw(),
            "a FIFO the daemon creates goes to the script user"
        );
    }
    out.wait_lines("vfifo.args", 1, &pair);
    assert_eq!(
        out.lines("vfifo.args"),
        [format!("nobody {}", fifo.display())],
        "the reader runs as script_user with the FIFO as its last argument"
    );

    // The script fails: 130 - 100 = 30 while Master, b takes over; back to 130, a preempts.
    std::fs::write(&fail, "").unwrap();
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    std::fs::remove_file(&fail).unwrap();
    pair.wait_master("a", Duration::from_secs(8)).unwrap();

    // A VRRP-only split: b goes Master. Healing in two steps keeps the order deterministic:
    // a hears b's lower priority first, then b hears a and steps down.
    let (a, b) = (pair.lab.host("a").clone(), pair.lab.host("b").clone());
    block_vrrp(&a);
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || b.has_addr(pair.vip)
    ));
    nft(&a, &["flush", "chain", "inet", "blk", "in"]);
    assert!(
        wait_until(Duration::from_secs(3), Duration::from_millis(5), || out
            .read("vfifo.lines")
            .contains("MASTER_RX_LOWER_PRI")),
        "no MASTER_RX_LOWER_PRI line: {:?}\na log:\n{}",
        out.read("vfifo.lines"),
        pair.a.log_text()
    );
    nft(&a, &["delete", "table", "inet", "blk"]);
    pair.wait_master("a", Duration::from_secs(5)).unwrap();

    let want = [
        "INSTANCE \"VI_51\" BACKUP_PRIORITY 130",
        "INSTANCE \"VI_51\" BACKUP 130",
        "INSTANCE \"VI_51\" MASTER 130",
        "INSTANCE \"VI_51\" MASTER_PRIORITY 30",
        "INSTANCE \"VI_51\" BACKUP 30",
        "INSTANCE \"VI_51\" BACKUP_PRIORITY 130",
        "INSTANCE \"VI_51\" MASTER 130",
        "INSTANCE \"VI_51\" MASTER_RX_LOWER_PRI 130",
    ];
    out.wait_lines("vfifo.lines", want.len(), &pair);
    assert!(pair.a.terminate(Duration::from_secs(5)), "a did not stop");
    // The reader gets SIGTERM before the STOP line is written: it may or may not see it.
    let lines = squeeze(out.lines("vfifo.lines"), "MASTER_RX_LOWER_PRI");
    let (seen, rest) = lines.split_at(want.len().min(lines.len()));
    assert_eq!(seen, want, "FIFO lines; a log:\n{}", pair.a.log_text());
    assert!(
        rest.iter().all(|l| l == "INSTANCE \"VI_51\" STOP 130"),
        "after the last event: {rest:?}"
    );
    out.assert_reader_stopped("vfifo", &fifo);

    // notify_master_rx_lower_pri: as configured, no arguments added, as script_user; the
    // generic `notify` is not called for it.
    // Each call is its own process, so a `rxlower` (after a's preemption, where b answers once,
    // and after the heal) may land before the `MASTER` line written for the same moment.
    let notes = [
        "nobody INSTANCE VI_51 BACKUP 130",
        "nobody INSTANCE VI_51 MASTER 130",
        "nobody INSTANCE VI_51 BACKUP 30",
        "nobody INSTANCE VI_51 MASTER 130",
        "nobody INSTANCE VI_51 STOP 130",
    ];
    out.wait_lines("notes", notes.len() + 1, &pair);
    let (lower, states): (Vec<String>, Vec<String>) = out
        .lines("notes")
        .into_iter()
        .partition(|l| l == "nobody rxlower");
    assert_eq!(states, notes);
    assert!(
        (1..=2).contains(&lower.len()),
        "notify_master_rx_lower_pri calls: {}",
        lower.len()
    );
}

/// vrrpd pair; a balances 192.0.2.100:80 over two real servers with quorum 2 and tracks the
/// virtual server (weight -100). One real server dies: `RS … DOWN`, then `VS … DOWN` (quorum
/// lost), a hands the VIP to b; it comes back: `RS … UP`, `VS … UP`, a takes the VIP back.
/// `lvs_notify_fifo` gets the checker lines only, `notify_fifo` those and the VRRP lines, in
/// the order they happened; each FIFO has its script.
#[test]
fn checker_lines_on_lvs_and_notify_fifos() {
    require_root!();
    if !e2e::available(&[D]) {
        return;
    }
    let Some(out) = Out::new() else { return };
    let lab = Lab::builder().build().unwrap();
    let a = lab.host("a").clone();
    let rs = ["198.51.100.1", "198.51.100.2"];
    let mut backends = e2e::loopback_http_servers(&a, &rs, 80).expect("real servers");
    let mut rs1 = backends.remove(0);
    let (nfifo, lfifo) = (out.dir.path("nfifo"), out.dir.path("lfifo"));
    let r = out.reader.display();
    let mut ca = node("a", 150, 3, 0.1, VIP4);
    ca.extra_global = Some(format!(
        "enable_script_security\n    script_user nobody\n    notify_fifo {}\n    notify_fifo_script {r}\n    \
         lvs_notify_fifo {}\n    lvs_notify_fifo_script {r}",
        nfifo.display(),
        lfifo.display()
    ));
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
        "virtual_server 192.0.2.100 80 {{\n    delay_loop 0.2\n    quorum 2\n{servers}}}"
    ));
    let cb = node("b", 100, 3, 0.1, VIP4);
    let mut pair = e2e::start_pair(lab, D, &ca, D, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    for n in ["nfifo", "lfifo"] {
        out.wait_lines(&format!("{n}.args"), 1, &pair);
    }
    assert_eq!(
        out.lines("lfifo.args"),
        [format!("nobody {}", lfifo.display())]
    );

    rs1.stop(Duration::from_millis(500));
    pair.wait_master("b", Duration::from_secs(5)).unwrap();
    let _rs1 = e2e::http_server(&a, rs[0], 80).expect("python3 http.server");
    pair.wait_master("a", Duration::from_secs(5)).unwrap();

    let rs_down = "RS [198.51.100.1]:tcp:80 [192.0.2.100]:tcp:80 DOWN";
    let vs_down = "VS [192.0.2.100]:tcp:80 DOWN";
    let rs_up = "RS [198.51.100.1]:tcp:80 [192.0.2.100]:tcp:80 UP";
    let vs_up = "VS [192.0.2.100]:tcp:80 UP";
    let lvs = [rs_down, vs_down, rs_up, vs_up];
    let all = [
        "INSTANCE \"VI_51\" BACKUP 150",
        "INSTANCE \"VI_51\" MASTER 150",
        rs_down,
        vs_down,
        "INSTANCE \"VI_51\" BACKUP 50",
        rs_up,
        vs_up,
        "INSTANCE \"VI_51\" MASTER 150",
    ];
    out.wait_lines("lfifo.lines", lvs.len(), &pair);
    out.wait_lines("nfifo.lines", all.len(), &pair);
    assert!(pair.a.terminate(Duration::from_secs(5)), "a did not stop");
    assert_eq!(out.lines("lfifo.lines"), lvs);
    // b answers a's preemption with one advert at its own priority (the split-brain heal, see
    // tests/tests/split_brain.rs), which a notes as MASTER_RX_LOWER_PRI, as keepalived does
    // with higher_prio_send_advert: not what this test is about.
    let lines: Vec<String> = out
        .lines("nfifo.lines")
        .into_iter()
        .filter(|l| !l.contains("MASTER_RX_LOWER_PRI"))
        .collect();
    assert_eq!(lines[..all.len()], all, "a log:\n{}", pair.a.log_text());
    assert!(
        lines[all.len()..]
            .iter()
            .all(|l| l == "INSTANCE \"VI_51\" STOP 150"),
        "{lines:?}"
    );
    out.assert_reader_stopped("nfifo", &nfifo);
    out.assert_reader_stopped("lfifo", &lfifo);
}

#[test]
fn fifo_script_restarts_on_reload() {
    reload_case(D, false);
}

/// The same with keepalived 2.2.7 on a (reference).
#[test]
fn fifo_script_restarts_on_reload_reference_keepalived() {
    reload_case(Daemon::Keepalived, false);
}

/// `fifo_write_vrrp_states_on_reload`: the reload writes the state line again (no script),
/// as keepalived.conf(5) describes it.
#[test]
fn states_written_on_reload() {
    reload_case(D, true);
}

/// keepalived 2.2.7 itself writes nothing on a reload with the option (here, and by hand with
/// `notify_fifo` and with `vrrp_notify_fifo` read across the reload); vrrpd follows the man
/// page. This pins the reference's behaviour.
#[test]
fn states_written_on_reload_reference_keepalived() {
    reload_case(Daemon::Keepalived, true);
}

/// A reload (SIGHUP with a changed file) stops the FIFO script (SIGTERM), makes the FIFO again
/// and starts the script again; the Master's state is not written again, nor its notify
/// scripts run.
fn reload_case(da: Daemon, states_on_reload: bool) {
    require_root!();
    if !e2e::available(&[da, D]) {
        return;
    }
    let Some(out) = Out::new() else { return };
    let o = out.out.display();
    let note = out
        .dir
        .script("note.sh", &format!("echo \"$*\" >> {o}/notes"))
        .unwrap();
    let fifo = out.dir.path("vfifo");
    let mut ca = node("a", 150, 3, 0.1, VIP4);
    ca.extra_global = Some(format!(
        "enable_script_security\n    script_user nobody\n    vrrp_notify_fifo {}\n    \
         vrrp_notify_fifo_script {}{}",
        fifo.display(),
        out.reader.display(),
        if states_on_reload {
            "\n    fifo_write_vrrp_states_on_reload"
        } else {
            ""
        }
    ));
    ca.extra_instance = Some(format!("notify {}", note.display()));
    let cb = node("b", 100, 3, 0.1, VIP4);
    let lab = Lab::builder().build().unwrap();
    let mut pair = e2e::start_pair(lab, da, &ca, D, &cb).unwrap();
    pair.wait_master("a", Duration::from_secs(5)).unwrap();
    out.wait_lines("vfifo.lines", 2, &pair);
    let first = out.read("vfifo.pid");

    ca.priority = 160;
    let a = pair.lab.host("a").clone();
    std::fs::write(a.dir.join(format!("{da}.conf")), ca.render()).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pair.a.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    out.wait_lines("vfifo.args", 2, &pair);
    assert!(
        wait_until(Duration::from_secs(3), Duration::from_millis(10), || out
            .read("vfifo.pid")
            != first),
        "no new reader"
    );
    // The old reader writes its line when the signal comes; the new one may start first.
    assert!(
        wait_until(Duration::from_secs(3), Duration::from_millis(10), || out
            .read("vfifo.term")
            == "TERM\n"),
        "the first reader got no SIGTERM: {:?}",
        out.read("vfifo.term")
    );
    assert!(fifo.exists(), "the FIFO was not made again");
    // Long enough for a state line or script the reload would cause.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(pair.lab.host("a").has_addr(pair.vip));
    let mut want = vec![
        "INSTANCE \"VI_51\" BACKUP 150",
        "INSTANCE \"VI_51\" MASTER 150",
    ];
    if states_on_reload && da == D {
        want.push("INSTANCE \"VI_51\" MASTER 160");
    }
    // b may be Master for a moment at start and a hear it (MASTER_RX_LOWER_PRI): not what
    // this test is about.
    let lines: Vec<String> = out
        .lines("vfifo.lines")
        .into_iter()
        .filter(|l| !l.contains("MASTER_RX_LOWER_PRI"))
        .collect();
    assert_eq!(lines, want, "a log:\n{}", pair.a.log_text());
    assert_eq!(
        out.lines("notes"),
        ["INSTANCE VI_51 BACKUP 150", "INSTANCE VI_51 MASTER 150"]
    );
    assert!(pair.a.terminate(Duration::from_secs(5)));
}
