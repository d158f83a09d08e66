//! The sans-IO core of process tracking: which live processes match which tracker, how many
//! each tracker has, and whether it has its quorum, debounced by `fork_delay` and
//! `terminate_delay`. Inputs are the kernel's process events (or a full rescan) with the time
//! they were seen; outputs are the trackers whose status changed. No `/proc`, no clock.
//!
//! A process's membership is a set recomputed from what it is now, so an event seen twice (a
//! fork both in the start-up scan and in the event stream, an `exec` of the same program) never
//! counts a process twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Pid, ProcInfo, ProcSpec};

/// A tracker's status changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Index of the tracker in the specs the table was built with.
    pub index: usize,
    /// Whether it now has its quorum.
    pub up: bool,
    /// How many matching processes run now.
    pub count: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Status {
    count: u32,
    up: bool,
    /// A change waiting out its delay (always towards `!up`): when it is decided.
    pending: Option<Instant>,
}

/// Every tracked process's matching processes and status.
#[derive(Debug)]
pub struct Table {
    specs: Vec<ProcSpec>,
    /// Processes matching at least one tracker, with the trackers they match.
    pids: HashMap<Pid, Vec<usize>>,
    status: Vec<Status>,
}

impl Table {
    /// A table from the processes running now; each status is decided at once (no delay),
    /// as keepalived does at start.
    pub fn new(specs: Vec<ProcSpec>, procs: impl IntoIterator<Item = (Pid, ProcInfo)>) -> Self {
        let mut t = Self {
            status: vec![Status::default(); specs.len()],
            specs,
            pids: HashMap::new(),
        };
        for (pid, info) in procs {
            let set = t.matching(&info);
            for &i in &set {
                t.status[i].count += 1;
            }
            if !set.is_empty() {
                t.pids.insert(pid, set);
            }
        }
        for (s, spec) in t.status.iter_mut().zip(&t.specs) {
            s.up = spec.ok(s.count);
        }
        t
    }

    pub fn specs(&self) -> &[ProcSpec] {
        &self.specs
    }

    /// Whether tracker `i` has its quorum.
    pub fn up(&self, i: usize) -> bool {
        self.status[i].up
    }

    /// How many processes match tracker `i`.
    pub fn count(&self, i: usize) -> u32 {
        self.status[i].count
    }

    /// Whether any tracker matches command lines (so `/proc/PID/cmdline` must be read).
    pub fn needs_cmdline(&self) -> bool {
        self.specs.iter().any(|s| s.full_command)
    }

    /// When the earliest pending change is decided.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.status.iter().filter_map(|s| s.pending).min()
    }

    /// `parent` forked `child`: the child runs the same program, so it counts for the same
    /// trackers (decided after `fork_delay`). An untracked parent's child is left for its
    /// `exec`.
    pub fn fork(&mut self, now: Instant, parent: Pid, child: Pid) -> Vec<Change> {
        let Some(set) = self.pids.get(&parent).cloned() else {
            return Vec::new();
        };
        self.set(now, child, set, |s, _| s.fork_delay)
    }

    /// `pid` ran a new program (`info` is what `/proc` says now; `None` if it is already gone).
    pub fn exec(&mut self, now: Instant, pid: Pid, info: Option<&ProcInfo>) -> Vec<Change> {
        let set = info.map(|i| self.matching(i)).unwrap_or_default();
        self.set(now, pid, set, |_, _| Duration::ZERO)
    }

    /// `pid` renamed itself (`prctl(PR_SET_NAME)`): name trackers follow; command-line ones
    /// do not (the command line did not change).
    pub fn comm(&mut self, now: Instant, pid: Pid, comm: &str) -> Vec<Change> {
        let old = self.pids.get(&pid).cloned().unwrap_or_default();
        let set = (0..self.specs.len())
            .filter(|&i| {
                let s = &self.specs[i];
                if s.full_command {
                    old.contains(&i)
                } else {
                    s.process == comm
                }
            })
            .collect();
        self.set(now, pid, set, |_, _| Duration::ZERO)
    }

    /// `pid` exited (a zombie no longer counts): decided after `terminate_delay`.
    pub fn exit(&mut self, now: Instant, pid: Pid) -> Vec<Change> {
        self.set(now, pid, Vec::new(), |s, _| s.terminate_delay)
    }

    /// Every live process (the fallback's periodic scan, or after lost events): what appeared
    /// is decided after `fork_delay`, what went after `terminate_delay`.
    pub fn rescan(
        &mut self,
        now: Instant,
        procs: impl IntoIterator<Item = (Pid, ProcInfo)>,
    ) -> Vec<Change> {
        let mut seen: HashMap<Pid, Vec<usize>> = HashMap::new();
        for (pid, info) in procs {
            let set = self.matching(&info);
            if !set.is_empty() || self.pids.contains_key(&pid) {
                seen.insert(pid, set);
            }
        }
        let gone: Vec<Pid> = self
            .pids
            .keys()
            .filter(|p| !seen.contains_key(p))
            .copied()
            .collect();
        let changed = gone
            .into_iter()
            .map(|p| (p, Vec::new()))
            .chain(seen)
            .collect::<Vec<_>>();
        let mut out = Vec::new();
        for (pid, set) in changed {
            out.extend(self.set(now, pid, set, |s, joined| {
                if joined {
                    s.fork_delay
                } else {
                    s.terminate_delay
                }
            }));
        }
        out
    }

    /// Decides the changes whose delay is over.
    pub fn tick(&mut self, now: Instant) -> Vec<Change> {
        let mut out = Vec::new();
        for (i, s) in self.status.iter_mut().enumerate() {
            if s.pending.is_some_and(|at| at <= now) {
                s.pending = None;
                let ok = self.specs[i].ok(s.count);
                if ok != s.up {
                    s.up = ok;
                    out.push(Change {
                        index: i,
                        up: ok,
                        count: s.count,
                    });
                }
            }
        }
        out
    }

    /// The trackers `info` matches.
    fn matching(&self, info: &ProcInfo) -> Vec<usize> {
        (0..self.specs.len())
            .filter(|&i| self.specs[i].matches(info))
            .collect()
    }

    /// `pid` now matches `set`; each tracker it joined or left is settled with
    /// `delay(spec, joined)`.
    fn set(
        &mut self,
        now: Instant,
        pid: Pid,
        set: Vec<usize>,
        delay: impl Fn(&ProcSpec, bool) -> Duration,
    ) -> Vec<Change> {
        let old = self.store(pid, &set);
        let mut out = Vec::new();
        for i in 0..self.specs.len() {
            let (was, is) = (old.contains(&i), set.contains(&i));
            if was != is {
                let s = &mut self.status[i];
                s.count = if is { s.count + 1 } else { s.count - 1 };
                let d = delay(&self.specs[i], is);
                self.settle(now, i, d, &mut out);
            }
        }
        out
    }

    /// Records `pid`'s new set; returns the old one.
    fn store(&mut self, pid: Pid, set: &[usize]) -> Vec<usize> {
        if set.is_empty() {
            self.pids.remove(&pid).unwrap_or_default()
        } else {
            self.pids.insert(pid, set.to_vec()).unwrap_or_default()
        }
    }

    /// Tracker `i`'s count changed: a status back where it was cancels a pending change; a new
    /// one is decided now, or after `delay` (a change already waiting keeps its deadline).
    fn settle(&mut self, now: Instant, i: usize, delay: Duration, out: &mut Vec<Change>) {
        let s = &mut self.status[i];
        let ok = self.specs[i].ok(s.count);
        if ok == s.up {
            s.pending = None;
        } else if s.pending.is_none() {
            if delay.is_zero() {
                s.up = ok;
                out.push(Change {
                    index: i,
                    up: ok,
                    count: s.count,
                });
            } else {
                s.pending = Some(now + delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::process::ParamMatch;

    fn spec(name: &str, process: &str) -> ProcSpec {
        ProcSpec::simple(name, process)
    }

    fn named(comm: &str) -> ProcInfo {
        ProcInfo {
            comm: comm.into(),
            argv: None,
        }
    }

    fn cmd(comm: &str, argv: &[&str]) -> ProcInfo {
        ProcInfo {
            comm: comm.into(),
            argv: Some(argv.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn ch(index: usize, up: bool, count: u32) -> Change {
        Change { index, up, count }
    }

    #[test]
    fn start_counts_and_decides_at_once() {
        let mut two = spec("two", "web");
        two.quorum = 2;
        let t = Table::new(
            vec![spec("db", "db"), two, spec("none", "nothing")],
            [(10, named("db")), (11, named("web")), (12, named("web"))],
        );
        assert_eq!((t.count(0), t.up(0)), (1, true));
        assert_eq!((t.count(1), t.up(1)), (2, true));
        assert_eq!((t.count(2), t.up(2)), (0, false));
        assert_eq!(t.next_deadline(), None);
        assert!(!t.needs_cmdline());
    }

    #[test]
    fn exec_fork_exit_follow_the_quorum() {
        let now = Instant::now();
        let mut q2 = spec("q2", "srv");
        q2.quorum = 2;
        let mut t = Table::new(vec![spec("q1", "srv"), q2], []);
        // A shell forks (untracked parent: nothing), the child execs srv.
        assert!(t.fork(now, 1, 100).is_empty());
        assert_eq!(t.exec(now, 100, Some(&named("srv"))), [ch(0, true, 1)]);
        // srv forks a worker: the child counts at once (no fork_delay).
        assert_eq!(t.fork(now, 100, 101), [ch(1, true, 2)]);
        assert_eq!((t.count(0), t.count(1)), (2, 2));
        // The same exec again (or the fork seen twice) never counts a process twice.
        assert!(t.exec(now, 100, Some(&named("srv"))).is_empty());
        assert!(t.fork(now, 100, 101).is_empty());
        assert_eq!(t.count(0), 2);
        // The worker execs something else: it leaves both trackers.
        assert_eq!(t.exec(now, 101, Some(&named("other"))), [ch(1, false, 1)]);
        // Exit of an untracked or unknown pid changes nothing; the master's exit loses q1.
        assert!(t.exit(now, 101).is_empty());
        assert!(t.exit(now, 555).is_empty());
        assert_eq!(t.exit(now, 100), [ch(0, false, 0)]);
        // An exec whose process is already gone (unreadable) matches nothing.
        assert!(t.exec(now, 102, None).is_empty());
    }

    #[test]
    fn quorum_max_and_must_not_run() {
        let now = Instant::now();
        let mut one = spec("one", "srv");
        one.quorum_max = 1;
        let mut never = spec("never", "srv");
        never.quorum = 0;
        never.quorum_max = 0;
        let mut t = Table::new(vec![one, never], []);
        assert!(!t.up(0) && t.up(1));
        let ev = t.exec(now, 1, Some(&named("srv")));
        assert_eq!(ev, [ch(0, true, 1), ch(1, false, 1)]);
        // A second instance breaks quorum_max.
        assert_eq!(t.exec(now, 2, Some(&named("srv"))), [ch(0, false, 2)]);
        assert_eq!(t.exit(now, 2), [ch(0, true, 1)]);
        assert_eq!(t.exit(now, 1), [ch(0, false, 0), ch(1, true, 0)]);
    }

    #[test]
    fn comm_change_moves_name_trackers_only() {
        let now = Instant::now();
        let mut full = spec("full", "/bin/app");
        full.full_command = true;
        let mut t = Table::new(
            vec![spec("app", "app"), spec("renamed", "worker"), full],
            [(7, cmd("app", &["/bin/app"]))],
        );
        assert!(t.up(0) && !t.up(1) && t.up(2));
        assert!(t.needs_cmdline());
        assert_eq!(t.comm(now, 7, "worker"), [ch(0, false, 0), ch(1, true, 1)]);
        assert!(t.up(2), "the command line did not change");
        // An unknown process taking a tracked name joins.
        assert_eq!(t.comm(now, 8, "app"), [ch(0, true, 1)]);
        // The same name again: nothing.
        assert!(t.comm(now, 8, "app").is_empty());
    }

    #[test]
    fn full_command_trackers_need_the_command_line() {
        let now = Instant::now();
        let s = ProcSpec {
            params: vec!["-f".into(), "/etc/srv.cfg".into()],
            param_match: Some(ParamMatch::Exact),
            full_command: true,
            ..spec("srv", "/usr/sbin/srv")
        };
        let mut t = Table::new(vec![s], []);
        assert!(t
            .exec(now, 1, Some(&cmd("srv", &["/usr/sbin/srv", "-f"])))
            .is_empty());
        assert_eq!(
            t.exec(
                now,
                2,
                Some(&cmd("srv", &["/usr/sbin/srv", "-f", "/etc/srv.cfg"]))
            ),
            [ch(0, true, 1)]
        );
    }

    #[test]
    fn terminate_delay_rides_out_a_restart() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = spec("srv", "srv");
        s.terminate_delay = ms(500);
        let mut t = Table::new(vec![s], [(1, named("srv"))]);
        assert!(t.exit(t0, 1).is_empty(), "held by terminate_delay");
        assert_eq!(t.next_deadline(), Some(t0 + ms(500)));
        assert!(t.tick(t0 + ms(499)).is_empty());
        // Restarted within the delay: the pending loss is cancelled, nothing reported.
        assert!(t.exec(t0 + ms(300), 2, Some(&named("srv"))).is_empty());
        assert_eq!(t.next_deadline(), None);
        assert!(t.tick(t0 + ms(600)).is_empty());
        assert!(t.up(0));
        // Gone for good: lost when the delay is over, not before.
        assert!(t.exit(t0 + ms(1000), 2).is_empty());
        assert!(t.tick(t0 + ms(1499)).is_empty());
        assert_eq!(t.tick(t0 + ms(1500)), [ch(0, false, 0)]);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn fork_delay_holds_forks_not_execs() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = spec("srv", "srv");
        s.quorum = 2;
        s.quorum_max = 2;
        s.fork_delay = ms(200);
        let mut t = Table::new(vec![s], [(1, named("srv"))]);
        // fork: quorum reached, but only after fork_delay.
        assert!(t.fork(t0, 1, 2).is_empty());
        assert_eq!(t.tick(t0 + ms(200)), [ch(0, true, 2)]);
        // A third by fork breaks quorum_max after the delay too; its exit within the delay
        // cancels it (the bounce keepalived's fork_delay is for).
        assert!(t.fork(t0 + ms(300), 1, 3).is_empty());
        assert!(t.exit(t0 + ms(350), 3).is_empty());
        assert!(t.tick(t0 + ms(600)).is_empty());
        assert!(t.up(0));
        // exec is decided at once even with a fork_delay.
        assert_eq!(
            t.exec(t0 + ms(700), 4, Some(&named("srv"))),
            [ch(0, false, 3)]
        );
        // Its exit restores the quorum at once (no terminate_delay).
        assert_eq!(t.exit(t0 + ms(800), 4), [ch(0, true, 2)]);
    }

    #[test]
    fn a_pending_change_keeps_its_deadline() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = spec("srv", "srv");
        s.quorum = 2;
        s.terminate_delay = ms(100);
        let procs = [(1, named("srv")), (2, named("srv")), (3, named("srv"))];
        let mut t = Table::new(vec![s], procs);
        assert!(t.exit(t0, 1).is_empty(), "still two: no change at all");
        assert_eq!(t.next_deadline(), None);
        assert!(t.exit(t0, 2).is_empty());
        assert_eq!(t.next_deadline(), Some(t0 + ms(100)));
        // A further loss does not push the deadline back.
        assert!(t.exit(t0 + ms(50), 3).is_empty());
        assert_eq!(t.next_deadline(), Some(t0 + ms(100)));
        assert_eq!(t.tick(t0 + ms(100)), [ch(0, false, 0)]);
    }

    #[test]
    fn rescan_adds_removes_and_uses_both_delays() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut slow = spec("slow", "srv");
        slow.fork_delay = ms(100);
        slow.terminate_delay = ms(300);
        let mut t = Table::new(vec![spec("fast", "srv"), slow], []);
        let ev = t.rescan(t0, [(1, named("srv")), (2, named("sh"))]);
        assert_eq!(ev, [ch(0, true, 1)]);
        assert_eq!(t.tick(t0 + ms(100)), [ch(1, true, 1)]);
        // The same scan again changes nothing; a zombie or exited process is simply absent.
        assert!(t.rescan(t0 + ms(200), [(1, named("srv"))]).is_empty());
        let ev = t.rescan(t0 + ms(300), [(2, named("sh"))]);
        assert_eq!(ev, [ch(0, false, 0)]);
        assert!(t.tick(t0 + ms(599)).is_empty());
        assert_eq!(t.tick(t0 + ms(600)), [ch(1, false, 0)]);
        // A pid reused by another program leaves the trackers.
        t.rescan(t0 + ms(700), [(5, named("srv"))]);
        assert_eq!(t.count(0), 1);
        t.rescan(t0 + ms(800), [(5, named("bash"))]);
        assert_eq!(t.count(0), 0);
    }
}
