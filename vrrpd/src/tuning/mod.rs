//! keepalived's process settings on vrrpd's threads.
//!
//! keepalived runs VRRP and the health checks in two child processes and gives each its own
//! scheduling (`*_priority` nice, `*_rt_priority` SCHED_RR, `*_cpu_affinity`,
//! `*_rlimit_rttime`, `max_auto_priority`) and memory locking (`*_no_swap`). vrrpd is one
//! process, so the settings go to threads (Linux schedules threads: nice, policy and
//! affinity are per thread):
//!
//! | thread | runs | gets |
//! |---|---|---|
//! | main (`vrrpd`, TID = PID) | VRRP instances, trackers, netlink, signals, reloads, notify FIFOs, the balancer's Master gate | `vrrp_*` |
//! | `vrrpd-checker` | health checkers, virtual-server scripts, quorum | `checker_*` |
//! | `main-blocking`, `checker-blocking` | tokio blocking pools (file and procfs reads, config parsing on reload) | their side's CPUs and positive nice, never SCHED_RR nor a negative nice (`SCHED_RESET_ON_FORK`) |
//! | `vrrpd-spawner`, `lb-worker-N`, `lb-resolver` | the balancer's dataplane | the process's original scheduling: they are started from a thread made before any setting, so a busy worker never runs real-time |
//!
//! Scripts are forked by their side's thread: they inherit its CPUs and a positive nice, not
//! SCHED_RR nor a negative nice. Two settings only exist per process: `mlockall(2)` (either
//! `*_no_swap` locks the whole daemon) and RLIMIT_RTTIME (set once a side is real-time, to
//! the larger limit of the sides that are or may go real-time; soft at half, where SIGXCPU is
//! logged, hard kills the daemon).
//!
//! A side's settings apply when it runs (keepalived starts a child only for instances /
//! virtual servers): `vrrp_*` with VRRP instances, `checker_*` with virtual servers. This
//! module is the pure part (what to set); [`os`] makes the calls and [`apply`] drives them.

pub mod apply;
pub mod os;
pub mod threads;

use std::time::Duration;

use keepalived_conf::model::{ProcessSettings, SideSettings};

pub use apply::Tuner;
pub use threads::{CheckerThread, Spawner};

/// keepalived's RLIMIT_RTTIME (µs) for a real-time side without `*_rlimit_rttime`.
pub const RT_RLIMIT_DEFAULT: u32 = 10_000;

/// keepalived's umask when neither `-u` nor `umask` is given (2.2.7 applies 0177 whatever
/// the inherited umask; its man page says 022).
pub const DEFAULT_UMASK: u32 = 0o177;

/// The umask the daemon runs with: `-u` wins over the `umask` keyword, as keepalived.
pub fn umask_of(cli: Option<u32>, keyword: Option<u32>) -> u32 {
    cli.or(keyword).unwrap_or(DEFAULT_UMASK)
}

/// keepalived's two children; here two threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Vrrp,
    Checker,
}

impl Side {
    pub const ALL: [Side; 2] = [Side::Vrrp, Side::Checker];

    pub fn name(self) -> &'static str {
        match self {
            Side::Vrrp => "vrrp",
            Side::Checker => "checker",
        }
    }
}

/// What one thread is set to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadPlan {
    /// SCHED_RR at this priority; `None` is SCHED_OTHER.
    pub rt: Option<u8>,
    /// The nice value when not real-time (keepalived ignores it with `*_rt_priority`);
    /// `None` is the process's original one.
    pub nice: Option<i8>,
    /// CPUs to run on; empty is the process's original set.
    pub cpus: Vec<u16>,
    /// RLIMIT_RTTIME hard limit (µs) wanted while this thread runs real-time.
    pub rttime_us: u32,
}

impl ThreadPlan {
    fn of(s: &SideSettings) -> Self {
        Self {
            rt: s.rt_priority,
            nice: s.nice,
            cpus: s.cpu_affinity.clone(),
            rttime_us: s.rlimit_rttime_us.unwrap_or(RT_RLIMIT_DEFAULT),
        }
    }

    /// Nothing to change on the thread.
    pub fn is_plain(&self) -> bool {
        self.rt.is_none() && self.nice.is_none() && self.cpus.is_empty()
    }
}

/// `max_auto_priority` / `min_auto_priority_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auto {
    pub max: u8,
    pub min_delay: Duration,
}

/// Everything to set for one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Per side: `None` when the side does not run (its thread is left as it is).
    pub vrrp: Option<ThreadPlan>,
    pub checker: Option<ThreadPlan>,
    /// `mlockall`: a running side has `*_no_swap`.
    pub mlock: bool,
    pub auto: Option<Auto>,
}

impl Plan {
    pub fn new(p: &ProcessSettings, vrrp_runs: bool, checker_runs: bool) -> Self {
        let auto = (p.max_auto_priority > 0).then(|| Auto {
            max: p.max_auto_priority as u8,
            min_delay: Duration::from_micros(p.min_auto_priority_delay_us.into()),
        });
        Self {
            vrrp: vrrp_runs.then(|| ThreadPlan::of(&p.vrrp)),
            checker: checker_runs.then(|| ThreadPlan::of(&p.checker)),
            mlock: (vrrp_runs && p.vrrp.no_swap) || (checker_runs && p.checker.no_swap),
            auto,
        }
    }

    pub fn side(&self, s: Side) -> Option<&ThreadPlan> {
        match s {
            Side::Vrrp => self.vrrp.as_ref(),
            Side::Checker => self.checker.as_ref(),
        }
    }
}

/// RLIMIT_RTTIME (soft, hard) in µs for the process, from the real-time threads' wanted
/// limits: the largest, so that no side is killed below its own limit; the soft limit is
/// half, as keepalived sets it (SIGXCPU then, as a warning). `None`: no thread is real-time.
pub fn rttime_limit(rt_limits: impl IntoIterator<Item = u32>) -> Option<(u64, u64)> {
    rt_limits
        .into_iter()
        .max()
        .map(|hard| (u64::from(hard / 2), u64::from(hard)))
}

/// How late a tokio timer may fire on its own: its wheel has 1 ms slots.
pub const TIMER_SLACK: Duration = Duration::from_millis(1);

/// keepalived's automatic priority increase: a side whose timers fire more than
/// `min_delay` late goes SCHED_RR at the lowest priority, then one step higher each time it
/// is late again, up to `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalator {
    /// Current SCHED_RR priority, 0 when not real-time.
    cur: u8,
    auto: Auto,
}

impl Escalator {
    pub fn new(rt: Option<u8>, auto: Auto) -> Self {
        Self {
            cur: rt.unwrap_or(0),
            auto,
        }
    }

    /// A timer fired `late` after it was due: the SCHED_RR priority to switch to, if any.
    pub fn late(&mut self, late: Duration) -> Option<u8> {
        if late <= self.auto.min_delay + TIMER_SLACK || self.cur >= self.auto.max {
            return None;
        }
        self.cur = if self.cur == 0 { 1 } else { self.cur + 1 };
        Some(self.cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ProcessSettings {
        let mut p = ProcessSettings::default();
        p.vrrp.rt_priority = Some(50);
        p.vrrp.cpu_affinity = vec![1];
        p.checker.nice = Some(5);
        p.checker.no_swap = true;
        p
    }

    #[test]
    fn a_side_gets_its_settings_only_when_it_runs() {
        let p = settings();
        let both = Plan::new(&p, true, true);
        assert_eq!(
            both.vrrp,
            Some(ThreadPlan {
                rt: Some(50),
                nice: None,
                cpus: vec![1],
                rttime_us: RT_RLIMIT_DEFAULT
            })
        );
        assert_eq!(both.checker.as_ref().unwrap().nice, Some(5));
        assert!(both.mlock);
        assert_eq!(both.auto, None);
        // -P: no checker, so checker_no_swap locks nothing.
        let vrrp_only = Plan::new(&p, true, false);
        assert!(vrrp_only.checker.is_none() && !vrrp_only.mlock);
        assert!(Plan::new(&ProcessSettings::default(), true, true)
            .vrrp
            .unwrap()
            .is_plain());
    }

    #[test]
    fn rttime_is_the_largest_real_time_limit_soft_at_half() {
        assert_eq!(rttime_limit([]), None);
        assert_eq!(rttime_limit([10_000]), Some((5_000, 10_000)));
        assert_eq!(rttime_limit([2, 30_001]), Some((15_000, 30_001)));
        assert_eq!(rttime_limit([2]), Some((1, 2)));
    }

    #[test]
    fn auto_priority_climbs_from_the_minimum_to_the_cap() {
        let auto = Auto {
            max: 3,
            min_delay: Duration::from_millis(100),
        };
        let mut e = Escalator::new(None, auto);
        assert_eq!(
            e.late(Duration::from_millis(100)),
            None,
            "not more than the delay"
        );
        assert_eq!(
            e.late(Duration::from_millis(101)),
            None,
            "within the timer slack"
        );
        assert_eq!(e.late(Duration::from_millis(150)), Some(1));
        assert_eq!(e.late(Duration::from_secs(1)), Some(2));
        assert_eq!(e.late(Duration::from_secs(1)), Some(3));
        assert_eq!(e.late(Duration::from_secs(1)), None, "capped");
        // A configured priority above the cap is never raised.
        let mut e = Escalator::new(Some(50), auto);
        assert_eq!(e.late(Duration::from_secs(1)), None);
    }

    #[test]
    fn umask_cli_wins_then_keyword_then_keepalived_default() {
        assert_eq!(umask_of(Some(0o27), Some(0o77)), 0o27);
        assert_eq!(umask_of(None, Some(0o77)), 0o77);
        assert_eq!(umask_of(None, None), 0o177);
    }
}
