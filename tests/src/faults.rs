//! The fault matrix (issue 18): the same faults on a vrrpd pair and a keepalived pair, in the
//! same lab, reporting who held the VIP every 10 ms and the longest stretch the client (pinging
//! every millisecond) got no answer. `vrrp-lab faults` runs all of it (docs/FAULTS.md); a
//! subset runs in CI (tests/tests/fault_matrix.rs).
//!
//! Every run: nodes a (priority 150, Master) and b (100), VRRPv3 every 100 ms, VIP
//! 192.0.2.100; the fault hits a (or comes from the client, for crafted adverts); the run
//! ends once exactly one node has held the VIP for a second (bounded).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::conf::NodeConf;
use crate::daemon::{Daemon, DaemonProc};
use crate::e2e::{self, node, VIP4};
use crate::error::{LabError, Result};
use crate::holders::HolderWatch;
use crate::lab::{Host, Lab};
use crate::prober::Prober;
use crate::scripts::ScriptDir;
use crate::wait::wait_until;

/// One fault of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL of the process running the VRRP instances alone (the `-r` pid).
    KillVrrp,
    /// SIGKILL of every process of the daemon (its process group).
    KillAll,
    /// The VRRP process stopped (SIGSTOP) for this many seconds, then SIGCONT.
    Sigstop(u8),
    /// VRRP (IP protocol 112) dropped in and out of a for this many seconds, then healed.
    VrrpCut(u8),
    /// a's interface set down for 3 s, then up.
    LinkDown,
    /// a's cable pulled (its bridge port down: carrier lost) for 3 s, then back.
    CarrierDown,
    /// A reload (SIGHUP) with a file that does not parse.
    ReloadBroken,
    /// A reload with a valid, changed file (another priority).
    ReloadValid,
    /// a's `vrrp_script` hangs (it is killed at its timeout, and fails).
    HangingScript,
    /// A third host sends adverts for our VRID with another address list at priority 200,
    /// for 3 s.
    CraftedAdverts,
    /// The daemon started with a file that does not parse.
    BadConfig,
    /// The daemon started with an instance on an interface that does not exist.
    MissingInterface,
}

impl Fault {
    /// Every fault, in the order the matrix runs them.
    pub fn all() -> Vec<Fault> {
        vec![
            Fault::KillVrrp,
            Fault::KillAll,
            Fault::Sigstop(2),
            Fault::Sigstop(5),
            Fault::VrrpCut(3),
            Fault::VrrpCut(5),
            Fault::LinkDown,
            Fault::CarrierDown,
            Fault::ReloadBroken,
            Fault::ReloadValid,
            Fault::HangingScript,
            Fault::CraftedAdverts,
            Fault::BadConfig,
            Fault::MissingInterface,
        ]
    }

    pub fn name(self) -> String {
        match self {
            Fault::KillVrrp => "kill-vrrp".into(),
            Fault::KillAll => "kill-all".into(),
            Fault::Sigstop(s) => format!("sigstop-{s}s"),
            Fault::VrrpCut(s) => format!("vrrp-cut-{s}s"),
            Fault::LinkDown => "link-down".into(),
            Fault::CarrierDown => "carrier-down".into(),
            Fault::ReloadBroken => "reload-broken".into(),
            Fault::ReloadValid => "reload-valid".into(),
            Fault::HangingScript => "hanging-script".into(),
            Fault::CraftedAdverts => "crafted-adverts".into(),
            Fault::BadConfig => "bad-config".into(),
            Fault::MissingInterface => "missing-interface".into(),
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Fault::all()
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<String> = Fault::all().into_iter().map(Fault::name).collect();
                format!("unknown fault {s:?} ({})", names.join("|"))
            })
    }
}

/// What one run of one fault showed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultRun {
    pub fault: String,
    pub daemon: Daemon,
    /// Longest stretch without an echo reply from the VIP (from the fault on).
    pub longest_gap_ms: f64,
    /// Time both nodes held the VIP, and nobody did (10 ms samples, from the fault on).
    pub both_held_ms: f64,
    pub none_held_ms: f64,
    /// Who held it at the end ("a", "b", "a+b" or "-").
    pub final_holder: String,
    /// Who held it every 10 ms from the fault on, run-length: `a 0.50s, a+b 0.31s, b 1.20s`.
    pub timeline: String,
    /// Whether a's daemon (its main process) still runs at the end.
    pub a_running: bool,
    /// What else the run saw (exit codes, log lines).
    pub notes: Vec<String>,
}

const SAMPLE: Duration = Duration::from_millis(10);
/// The end of a run: one holder for this long.
const SETTLED: Duration = Duration::from_secs(1);
/// Longest a run waits to settle after the fault.
const SETTLE_LIMIT: Duration = Duration::from_secs(8);

/// Runs `fault` on a `daemon` pair (or, for start-up faults, one node).
pub fn run(daemon: Daemon, fault: Fault) -> Result<FaultRun> {
    match fault {
        Fault::BadConfig | Fault::MissingInterface => startup(daemon, fault),
        _ => paired(daemon, fault),
    }
}

/// a's configuration for `fault`: the lab's instance, a `vrrp_script` for the hanging one.
fn conf_a(fault: Fault, scripts: &ScriptDir) -> Result<NodeConf> {
    let mut c = node("a", 150, 3, 0.1, VIP4);
    if fault == Fault::HangingScript {
        let hang = scripts.path("hang");
        let chk = scripts.script(
            "chk.sh",
            &format!("if [ -e {} ]; then sleep 1000; fi; exit 0", hang.display()),
        )?;
        c.extra_top = Some(format!(
            "vrrp_script chk {{\n    script \"{}\"\n    interval 0.2\n    timeout 1\n    fall 1\n    rise 1\n    weight -60\n}}",
            chk.display()
        ));
        c.extra_instance = Some("track_script {\n        chk\n    }".into());
    }
    Ok(c)
}

fn paired(daemon: Daemon, fault: Fault) -> Result<FaultRun> {
    let lab = Lab::builder().build()?;
    let scripts = ScriptDir::new()?;
    let mut ca = conf_a(fault, &scripts)?;
    let cb = node("b", 100, 3, 0.1, VIP4);
    let mut pair = e2e::master_then_backup(lab, daemon, &ca, &cb)?;
    let (a, b, client) = (
        pair.lab.host("a").clone(),
        pair.lab.host("b").clone(),
        pair.lab.host("client").clone(),
    );
    let vip = pair.vip;
    let holders = HolderWatch::start(&[&a, &b], vip, SAMPLE / 2)?;
    let prober = Prober::start(&client, vip, Duration::from_millis(1))?;
    if !wait_until(Duration::from_secs(3), Duration::from_millis(5), || {
        prober.replies() >= 100
    }) {
        return Err(LabError::Other(format!("no echo replies from {vip}")));
    }
    let mut notes = Vec::new();
    let at = Instant::now();
    match fault {
        Fault::KillVrrp => {
            let pid = pair.a.kill_vrrp()?;
            notes.push(format!("SIGKILL to the VRRP process {pid}"));
        }
        Fault::KillAll => {
            pair.a.kill_hard();
            notes.push("SIGKILL to every process of the daemon".into());
        }
        Fault::Sigstop(s) => {
            let pid = Pid::from_raw(pair.a.vrrp_pid(None, Duration::from_secs(5))? as i32);
            signal(pid, Signal::SIGSTOP)?;
            std::thread::sleep(Duration::from_secs(s.into()));
            signal(pid, Signal::SIGCONT)?;
        }
        Fault::VrrpCut(s) => {
            cut_vrrp(&a, true)?;
            std::thread::sleep(Duration::from_secs(s.into()));
            cut_vrrp(&a, false)?;
        }
        Fault::LinkDown => {
            a.exec("ip", &["link", "set", "eth0", "down"])?;
            std::thread::sleep(Duration::from_secs(3));
            a.exec("ip", &["link", "set", "eth0", "up"])?;
        }
        Fault::CarrierDown => {
            a.link_down()?;
            std::thread::sleep(Duration::from_secs(3));
            a.link_up()?;
        }
        Fault::ReloadBroken => {
            let file = a.dir.join(format!("{daemon}.conf"));
            let good = std::fs::read_to_string(&file)?;
            std::fs::write(&file, good.replacen("vrrp_instance", "vrrp_instance {{", 1))?;
            signal(Pid::from_raw(pair.a.pid() as i32), Signal::SIGHUP)?;
            std::thread::sleep(Duration::from_secs(2));
            std::fs::write(&file, good)?;
        }
        Fault::ReloadValid => {
            ca.priority = 160;
            std::fs::write(a.dir.join(format!("{daemon}.conf")), ca.render())?;
            signal(Pid::from_raw(pair.a.pid() as i32), Signal::SIGHUP)?;
            std::thread::sleep(Duration::from_secs(2));
        }
        Fault::HangingScript => {
            std::fs::write(scripts.path("hang"), "")?;
            std::thread::sleep(Duration::from_secs(3));
            std::fs::remove_file(scripts.path("hang"))?;
        }
        Fault::CraftedAdverts => {
            crafted_adverts(&client, Duration::from_secs(3))?;
        }
        Fault::BadConfig | Fault::MissingInterface => unreachable!("start-up faults"),
    }
    // Settled: one holder for SETTLED (or the limit).
    let end_by = Instant::now() + SETTLE_LIMIT;
    while Instant::now() < end_by {
        let stable_since = holders.changes().last().map_or(at, |c| c.at.max(at));
        let now = Instant::now();
        let one = holders.held_at("a", now) != holders.held_at("b", now);
        if one && now.duration_since(stable_since) >= SETTLED {
            break;
        }
        std::thread::sleep(SAMPLE);
    }
    let end = Instant::now();
    // The client's gaps from the fault on (the prober's times count from its start).
    let since = at.duration_since(prober.started()).as_secs_f64() * 1000.0;
    let probe = prober.stop()?;
    let longest_gap_ms = probe
        .gaps
        .iter()
        .filter(|(_, to)| *to >= since)
        .map(|(from, to)| to - from.max(since))
        .fold(0.0f64, f64::max);
    let samples = holders.timeline(at, end, SAMPLE);
    let ms = |n: usize| n as f64 * SAMPLE.as_secs_f64() * 1000.0;
    let a_running = pair.a.is_running();
    if daemon == Daemon::Vrrpd {
        if let Some(l) = pair.a.log_text().lines().find(|l| l.contains("released")) {
            notes.push(l.trim().to_string());
        }
    }
    Ok(FaultRun {
        fault: fault.name(),
        daemon,
        longest_gap_ms,
        both_held_ms: ms(samples.iter().filter(|s| s.contains('+')).count()),
        none_held_ms: ms(samples.iter().filter(|s| *s == "-").count()),
        final_holder: samples.last().cloned().unwrap_or_else(|| "-".into()),
        timeline: run_length(&samples),
        a_running,
        notes,
    })
}

fn signal(pid: Pid, sig: Signal) -> Result<()> {
    kill(pid, sig).map_err(|e| LabError::Other(format!("kill -{sig} {pid}: {e}")))
}

/// Drops (or lets through again) IP protocol 112 in and out of `host`.
fn cut_vrrp(host: &Host, cut: bool) -> Result<()> {
    let o = if cut {
        let path = host.dir.join("vrrp-cut.nft");
        std::fs::write(
            &path,
            "table inet lab_vrrp_cut {\n\
             \x20 chain in { type filter hook input priority -300; meta l4proto 112 drop; }\n\
             \x20 chain out { type filter hook output priority -300; meta l4proto 112 drop; }\n}\n",
        )?;
        host.exec("nft", &["-f", &path.to_string_lossy()])?
    } else {
        host.exec("nft", &["delete", "table", "inet", "lab_vrrp_cut"])?
    };
    if !o.status.success() {
        return Err(LabError::Other(format!("nft: {o:?}")));
    }
    Ok(())
}

/// Adverts for VRID 51 from `host` (not a member): VRRPv3, priority 200, address list
/// 198.51.100.99 (not ours), every 100 ms for `dur`.
fn crafted_adverts(host: &Host, dur: Duration) -> Result<()> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use vrrp_proto::packet::{Advert, Auth, Version};
    let src = host.v4;
    let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    let advert = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 200,
        max_adver_int: 10,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, 99))],
        auth: Auth::None,
    };
    let payload = advert.encode(src, dst);
    crate::lb::in_netns(host, || -> Result<()> {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))?;
        s.set_multicast_ttl_v4(255)?;
        let IpAddr::V4(own) = src else {
            return Err(LabError::Other("the client has no IPv4 address".into()));
        };
        s.set_multicast_if_v4(&own)?;
        let to = SockAddr::from(std::net::SocketAddr::new(dst, 0));
        let end = Instant::now() + dur;
        while Instant::now() < end {
            s.send_to(&payload, &to)?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    })?
}

/// Start-up faults: one node started with a bad input; what it says and what it leaves.
fn startup(daemon: Daemon, fault: Fault) -> Result<FaultRun> {
    let lab = Lab::builder().build()?;
    let a = lab.host("a").clone();
    let mut c = node("a", 150, 3, 0.1, VIP4);
    let text = match fault {
        Fault::BadConfig => {
            c.render()
                .replacen("virtual_router_id 51", "virtual_router_id 51 {{", 1)
        }
        _ => {
            c.interface = "eth9".into();
            c.render()
        }
    };
    let mut d = daemon.start(&a, &text)?;
    let status = wait_exit(&mut d, Duration::from_secs(5));
    let mut notes = vec![match status {
        Some(code) => format!("exited with status {code}"),
        None => "still running after 5 s".to_string(),
    }];
    let log = d.log_text();
    let said = |l: &&str| {
        [
            "ERROR",
            "error:",
            "Unexpected '{'",
            "not found",
            "permanent error",
            "Unable",
            "exiting",
        ]
        .iter()
        .any(|w| l.contains(w))
    };
    if let Some(l) = log.lines().find(said) {
        notes.push(l.trim().to_string());
    }
    let vip = e2e::addr(VIP4);
    let held = a.has_addr(vip);
    Ok(FaultRun {
        fault: fault.name(),
        daemon,
        longest_gap_ms: 0.0,
        both_held_ms: 0.0,
        none_held_ms: 0.0,
        final_holder: if held { "a".into() } else { "-".into() },
        timeline: String::new(),
        a_running: status.is_none(),
        notes,
    })
}

/// The daemon's exit code once it exits within `limit` (`-1` for a signal).
fn wait_exit(d: &mut DaemonProc, limit: Duration) -> Option<i32> {
    let mut code = None;
    wait_until(limit, Duration::from_millis(20), || {
        code = d.exit_status().map(|s| s.code().unwrap_or(-1));
        code.is_some()
    });
    code
}

/// `a a a a+b b b` → `a 0.04s, a+b 0.01s, b 0.02s`.
fn run_length(samples: &[String]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        let j = samples[i..]
            .iter()
            .position(|s| s != &samples[i])
            .map_or(samples.len(), |k| i + k);
        out.push(format!(
            "{} {:.2}s",
            samples[i],
            (j - i) as f64 * SAMPLE.as_secs_f64()
        ));
        i = j;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_are_run_length() {
        let s: Vec<String> = ["a", "a", "a+b", "b", "b", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(run_length(&s), "a 0.02s, a+b 0.01s, b 0.03s");
        assert_eq!(run_length(&[]), "");
    }

    #[test]
    fn names_round_trip() {
        for f in Fault::all() {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
        }
        assert!("nope".parse::<Fault>().is_err());
    }
}
