//! Reusable scenarios: a VRRP pair on nodes a and b, and a measured failover. Tests and the
//! vrrp-lab binary share them, parameterised over the [`Daemon`] under test.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::adverts::{AdvertSeen, AdvertWatch};
use crate::conf::{NodeConf, NodeState};
use crate::daemon::{Daemon, DaemonProc};
use crate::error::{LabError, Result};
use crate::holders::HolderWatch;
use crate::lab::{Host, Lab};
use crate::prober::{ProbeReport, Prober};
use crate::wait::wait_until;

/// The lab VIP (see `etc/keepalived-*.conf`).
pub const VIP: &str = "192.0.2.100/24";

/// How the Master goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// SIGKILL of the daemon (all its processes), VIP removed by hand, cable cut.
    Crash,
    /// SIGTERM: the daemon hands over (priority-0 advert) and exits.
    Sigterm,
    /// SIGKILL of the process running the VRRP instances alone (the `-r` pid: vrrpd's
    /// supervised child, keepalived's VRRP child), as the OOM killer does: the host and the
    /// daemon's main process live on. a runs `nopreempt`, so b keeps what it takes.
    KillVrrp,
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scenario::Crash => "crash",
            Scenario::Sigterm => "sigterm",
            Scenario::KillVrrp => "kill-vrrp",
        })
    }
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "crash" => Ok(Scenario::Crash),
            "sigterm" => Ok(Scenario::Sigterm),
            "kill-vrrp" => Ok(Scenario::KillVrrp),
            _ => Err(format!("unknown scenario {s:?} (crash|sigterm|kill-vrrp)")),
        }
    }
}

/// A daemon pair on nodes `a` (Master, 150) and `b` (Backup) of a default lab.
/// Field order matters: daemons are killed before the lab is torn down.
pub struct Pair {
    pub a: DaemonProc,
    pub b: DaemonProc,
    pub vip: IpAddr,
    pub lab: Lab,
}

impl Pair {
    /// Start `daemon` on a and b with the given config texts.
    pub fn start(
        lab: Lab,
        daemon: Daemon,
        conf_a: &str,
        conf_b: &str,
        vip: IpAddr,
    ) -> Result<Self> {
        let a = daemon.start(lab.host("a"), conf_a)?;
        let b = daemon.start(lab.host("b"), conf_b)?;
        Ok(Self { a, b, vip, lab })
    }

    /// Which node holds the VIP ("a", "b", "both" or none).
    pub fn master(&self) -> Option<&'static str> {
        match (
            self.lab.host("a").has_addr(self.vip),
            self.lab.host("b").has_addr(self.vip),
        ) {
            (true, false) => Some("a"),
            (false, true) => Some("b"),
            (true, true) => Some("both"),
            (false, false) => None,
        }
    }

    /// Wait until exactly `node` holds the VIP.
    pub fn wait_master(&mut self, node: &str, timeout: Duration) -> Result<()> {
        if wait_until(timeout, Duration::from_millis(10), || {
            self.master() == Some(node)
        }) {
            return Ok(());
        }
        Err(LabError::Timeout(
            timeout,
            format!(
                "{node} to be the only VIP holder (now {:?}); a log:\n{}\nb log:\n{}",
                self.master(),
                self.a.log_text(),
                self.b.log_text()
            ),
        ))
    }
}

/// Parameters of one measured failover.
#[derive(Debug, Clone)]
pub struct FailoverSpec {
    pub daemon: Daemon,
    pub scenario: Scenario,
    pub version: u8,
    pub advert_int: f64,
    pub backup_priority: u8,
    /// Act this long after one of the Master's adverts (same phase for every daemon).
    pub phase_after_advert: Duration,
    /// Config texts for a and b; None renders them from the fields above.
    pub configs: Option<(String, String)>,
}

impl FailoverSpec {
    pub fn new(daemon: Daemon, scenario: Scenario, version: u8, advert_int: f64) -> Self {
        Self {
            daemon,
            scenario,
            version,
            advert_int,
            backup_priority: 100,
            phase_after_advert: Duration::from_millis(10),
            configs: None,
        }
    }

    pub fn confs(&self) -> (String, String) {
        if let Some(c) = &self.configs {
            return c.clone();
        }
        let (a, b) = self.node_confs();
        (a.render(), b.render())
    }

    /// The nodes' configurations the fields describe.
    pub fn node_confs(&self) -> (NodeConf, NodeConf) {
        let kill = self.scenario == Scenario::KillVrrp;
        let mk = |id: &str, st, prio, nopreempt| {
            let mut c = NodeConf::demo(id, st, prio);
            c.version = self.version;
            c.advert_int = self.advert_int;
            c.nopreempt = nopreempt;
            c
        };
        (
            // nopreempt needs state BACKUP; a is still elected first (higher priority).
            mk(
                "lab_a",
                if kill {
                    NodeState::Backup
                } else {
                    NodeState::Master
                },
                150,
                kill,
            ),
            mk("lab_b", NodeState::Backup, self.backup_priority, false),
        )
    }
}

/// What one failover measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailoverRun {
    /// Longest interval the client got no echo reply from the VIP.
    pub blackout_ms: f64,
    /// New Master's first advert minus the old Master's last advert (`None`: b never took
    /// over; after a kill-vrrp, a's restarted daemon got back first).
    pub takeover_after_last_advert_ms: Option<f64>,
    /// The event to b's first advert.
    pub event_to_peer_advert_ms: Option<f64>,
    /// The event to a priority-0 advert from a (a graceful stop, or vrrpd's supervisor).
    pub event_to_release_advert_ms: Option<f64>,
    /// Time from the old Master's last advert before the event to the event.
    pub event_after_advert_ms: f64,
    pub new_master: String,
    pub lab_setup_ms: f64,
    pub probe: ProbeReport,
    /// The event to the client's first echo reply from b's MAC.
    pub reply_via_peer_ms: Option<f64>,
    /// a still held the VIP when b first answered.
    pub vip_left_on_dead_node: bool,
    /// The event to a no longer holding the VIP (`None`: it still did at the end of the run).
    pub dead_node_released_ms: Option<f64>,
}

fn is_from(h: &Host) -> impl Fn(&AdvertSeen) -> bool + '_ {
    move |a| a.src == h.v4 || a.src == h.v6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Build a lab, start the pair, probe the VIP from the client, take the Master (a) away as
/// `spec.scenario` says, and measure until b serves the VIP. `progress` gets readable steps.
pub fn run_failover(spec: &FailoverSpec, progress: &mut dyn FnMut(&str)) -> Result<FailoverRun> {
    let adv = Duration::from_secs_f64(spec.advert_int);
    let t0 = Instant::now();
    let lab = Lab::builder().build()?;
    let lab_setup_ms = ms(t0.elapsed());
    progress(&format!(
        "lab {} up in {lab_setup_ms:.0} ms (a=192.0.2.1, b=192.0.2.2, client=192.0.2.50)",
        lab.prefix
    ));
    let watch = AdvertWatch::start(lab.host("client"))?;
    let (ca, cb) = spec.confs();
    let vip: IpAddr = VIP
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .expect("VIP");
    let mut pair = match (spec.scenario, &spec.configs) {
        // With nopreempt on a, a must be Master before b starts, or a slow start hands b
        // the election for good.
        (Scenario::KillVrrp, None) => {
            let (na, nb) = spec.node_confs();
            crate::e2e::master_then_backup(lab, spec.daemon, &na, &nb)?
        }
        _ => Pair::start(lab, spec.daemon, &ca, &cb, vip)?,
    };
    progress(&format!(
        "{} started on a (pid {}) and b (pid {})",
        spec.daemon,
        pair.a.pid(),
        pair.b.pid()
    ));
    pair.wait_master("a", adv * 10 + Duration::from_secs(5))?;
    progress(&format!("Master: a holds {vip}; b is Backup"));

    let client = pair.lab.host("client").clone();
    let (a, b) = (pair.lab.host("a").clone(), pair.lab.host("b").clone());
    let holders = HolderWatch::start(&[&a, &b], vip, Duration::from_millis(1))?;
    let b_mac = b.mac()?;
    let prober = Prober::start(&client, vip, Duration::from_millis(1))?;
    if !wait_until(Duration::from_secs(3), Duration::from_millis(5), || {
        prober.replies() >= 100
    }) {
        return Err(LabError::Timeout(
            Duration::from_secs(3),
            format!("echo replies from {vip} (got {})", prober.replies()),
        ));
    }
    progress(&format!("prober: client pings {vip} every 1 ms"));

    // Phase-lock the event to the Master's advert so every daemon is hit at the same point.
    let last = watch
        .wait_for(
            Instant::now(),
            adv * 3 + Duration::from_secs(1),
            is_from(&a),
        )
        .ok_or_else(|| LabError::Timeout(adv * 3, "an advert from a".into()))?;
    std::thread::sleep(spec.phase_after_advert.saturating_sub(last.at.elapsed()));
    let event_at = Instant::now();
    match spec.scenario {
        Scenario::Crash => {
            pair.a.kill_hard();
            let _ = a.addr_del(VIP);
            a.link_down()?;
            progress("Master a crashed: SIGKILL, VIP removed, link cut");
        }
        Scenario::Sigterm => {
            let done = pair.a.terminate(Duration::from_secs(5));
            progress(&format!(
                "Master a sent SIGTERM ({})",
                if done { "exited" } else { "killed after 5 s" }
            ));
        }
        Scenario::KillVrrp => {
            let pid = pair.a.kill_vrrp()?;
            progress(&format!(
                "Master a's VRRP process ({pid}) SIGKILLed; its main process and the host live on"
            ));
        }
    }
    let event_after_advert_ms = ms(event_at - last.at);

    let limit = adv * 10 + Duration::from_secs(3);
    let kill = spec.scenario == Scenario::KillVrrp;
    // After a kill-vrrp, a's restarted daemon may get back to Master before b takes over
    // (keepalived's does at v2 1 s): a valid outcome, measured rather than refused.
    let moved = wait_until(limit, Duration::from_millis(5), || {
        watch.first_after(event_at, is_from(&b)).is_some()
            || (kill && !holders.held_at("a", Instant::now()))
    });
    let first_b = watch.first_after(event_at, is_from(&b));
    if !moved || (first_b.is_none() && !kill) {
        return Err(LabError::Timeout(limit, "an advert from b".into()));
    }
    if first_b.is_some() && !kill {
        pair.wait_master("b", Duration::from_secs(3))?;
    }
    // Served again, steadily: 100 replies within 150 ms.
    let steady = || {
        let n = prober.replies();
        std::thread::sleep(Duration::from_millis(150));
        prober.replies() >= n + 100
    };
    if !wait_until(limit, Duration::from_millis(5), steady) {
        return Err(LabError::Timeout(
            limit,
            format!("echo replies from {vip} again"),
        ));
    }
    if kill {
        // Time for a's daemon to let go by itself, if it ever does.
        let gone = || !holders.held_at("a", Instant::now());
        wait_until(
            adv * 5 + Duration::from_secs(1),
            Duration::from_millis(5),
            gone,
        );
    }
    let probe = prober.stop()?;
    let first_b = watch.first_after(event_at, is_from(&b));
    let reply_b = watch.first_reply(event_at, |r| r.src == vip && r.src_mac == b_mac);
    let released = holders.first("a", false, event_at);
    let new_master = pair.master().unwrap_or("none").to_string();
    progress(&format!(
        "new Master: {new_master}; client blackout {:.1} ms",
        probe.longest_gap_ms
    ));
    Ok(FailoverRun {
        blackout_ms: probe.longest_gap_ms,
        takeover_after_last_advert_ms: first_b.as_ref().map(|b| {
            let a_last = watch.last_before(b.at, is_from(&a)).unwrap_or(last.clone());
            ms(b.at - a_last.at)
        }),
        event_to_peer_advert_ms: first_b.as_ref().map(|b| ms(b.at - event_at)),
        event_to_release_advert_ms: watch
            .first_after(event_at, |x| is_from(&a)(x) && x.priority == 0)
            .map(|x| ms(x.at - event_at)),
        event_after_advert_ms,
        new_master,
        lab_setup_ms,
        probe,
        reply_via_peer_ms: reply_b.as_ref().map(|r| ms(r.at - event_at)),
        vip_left_on_dead_node: reply_b.is_some_and(|r| holders.held_at("a", r.at)),
        dead_node_released_ms: released.map(|t| ms(t - event_at)),
    })
}

/// Median of a non-empty sample (mean of the middle two for even sizes).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
