//! Applies a [`super::Plan`] to the daemon's threads, at start and on every reload, and
//! runs the `max_auto_priority` watch on each side's runtime. Failures (no CAP_SYS_NICE, a
//! CPU the kernel refuses) are logged and the daemon goes on, as keepalived does.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::unistd::Pid;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tracing::{info, warn};

use super::{os, rttime_limit, umask_of, Escalator, Plan, Side, ThreadPlan, RT_RLIMIT_DEFAULT};
use keepalived_conf::model::ProcessSettings;

/// How often each side checks that its timers fire on time (`max_auto_priority`).
pub const WATCH_TICK: Duration = Duration::from_millis(100);

/// The main thread's scheduling when the daemon started: what unset settings go back to.
#[derive(Debug, Clone)]
struct Original {
    nice: i32,
    cpus: Vec<u16>,
}

#[derive(Debug)]
struct SideState {
    side: Side,
    tid: Pid,
    /// Changed from the original by us, so a configuration without settings restores it.
    touched: bool,
    /// SCHED_RR priority it runs at (configured, or raised by `max_auto_priority`).
    rt: Option<u8>,
    /// RLIMIT_RTTIME it wants while real-time.
    rttime_us: u32,
    escalator: Option<Escalator>,
}

#[derive(Debug)]
struct State {
    original: Original,
    sides: [SideState; 2],
    /// RLIMIT_RTTIME as we last set it.
    rttime: Option<(u64, u64)>,
}

/// The daemon's process settings; see [`super`] for which thread gets what.
pub struct Tuner {
    state: Arc<Mutex<State>>,
    checker: Handle,
    watches: Vec<AbortHandle>,
    locked: bool,
    umask_cli: Option<u32>,
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tuner {
    /// Call on the main thread (the VRRP side's), before anything is set: what it runs with
    /// now is what unset settings mean. `umask_cli` is `-u`, which the keyword cannot override.
    pub fn new(checker: &super::CheckerThread, umask_cli: Option<u32>) -> Self {
        let main = os::gettid();
        let original = Original {
            nice: os::nice(main).unwrap_or(0),
            cpus: os::affinity(main).unwrap_or_default(),
        };
        let side = |side, tid| SideState {
            side,
            tid,
            touched: false,
            rt: None,
            rttime_us: RT_RLIMIT_DEFAULT,
            escalator: None,
        };
        Self {
            state: Arc::new(Mutex::new(State {
                original,
                sides: [side(Side::Vrrp, main), side(Side::Checker, checker.tid())],
                rttime: None,
            })),
            checker: checker.handle().clone(),
            watches: Vec::new(),
            locked: false,
            umask_cli,
        }
    }

    /// Applies `p` for a configuration in which the VRRP side runs (`vrrp_runs`: it has
    /// instances) and the checker side runs (`checker_runs`: it has virtual servers). Must be
    /// called from the main runtime (the VRRP side's watch is spawned on it).
    pub fn apply(&mut self, p: &ProcessSettings, vrrp_runs: bool, checker_runs: bool) {
        if self.umask_cli.is_some() && p.umask.is_some() {
            info!("umask command line option specified, ignoring config option");
        }
        os::set_umask(umask_of(self.umask_cli, p.umask));
        let plan = Plan::new(p, vrrp_runs, checker_runs);
        for w in self.watches.drain(..) {
            w.abort();
        }
        {
            let mut st = lock(&self.state);
            let original = st.original.clone();
            for s in &mut st.sides {
                let want = plan.side(s.side);
                s.rttime_us = want.map_or(RT_RLIMIT_DEFAULT, |w| w.rttime_us);
                let target = match want {
                    Some(w) if !w.is_plain() => w.clone(),
                    // Settings gone (a reload): back to the original.
                    _ if s.touched => ThreadPlan::default(),
                    _ => {
                        s.escalator = None;
                        continue;
                    }
                };
                s.rt = apply_thread(s.side, s.tid, &target, &original);
                s.touched = !target.is_plain();
            }
            for s in &mut st.sides {
                let runs = plan.side(s.side).is_some();
                s.escalator = plan.auto.filter(|_| runs).map(|a| Escalator::new(s.rt, a));
            }
            update_rttime(&mut st);
        }
        if plan.mlock != self.locked {
            self.set_locked(plan.mlock);
        }
        if plan.auto.is_some() {
            for side in Side::ALL {
                if plan.side(side).is_none() {
                    continue;
                }
                let watch = watch(side, self.state.clone());
                let task = match side {
                    Side::Vrrp => tokio::spawn(watch),
                    Side::Checker => self.checker.spawn(watch),
                };
                self.watches.push(task.abort_handle());
            }
        }
    }

    fn set_locked(&mut self, on: bool) {
        if on {
            match os::lock_memory() {
                Ok(()) => {
                    self.locked = true;
                    info!("*_no_swap: the whole daemon is locked in memory (mlockall; vrrpd is one process: VRRP, health checks and balancer)");
                }
                Err(e) => warn!("Unable to lock process in memory - {e}{}", os::hint(&e)),
            }
        } else {
            match os::unlock_memory() {
                Ok(()) => {
                    self.locked = false;
                    info!("no *_no_swap any more: memory unlocked (munlockall)");
                }
                Err(e) => warn!("cannot unlock memory - {e}"),
            }
        }
    }

    /// For the SIGXCPU warning: RLIMIT_RTTIME as set now.
    pub fn rttime(&self) -> Option<(u64, u64)> {
        lock(&self.state).rttime
    }
}

impl Drop for Tuner {
    fn drop(&mut self) {
        for w in self.watches.drain(..) {
            w.abort();
        }
    }
}

/// Sets `tid` to `t` (unset values: `original`), logs what it runs with, and returns the
/// SCHED_RR priority it got.
fn apply_thread(side: Side, tid: Pid, t: &ThreadPlan, original: &Original) -> Option<u8> {
    let who = format!("{} thread (TID {tid})", side.name());
    let mut rt = None;
    match t.rt {
        Some(p) => match os::set_rr(tid, p) {
            Ok(()) => rt = Some(p),
            Err(e) => warn!(
                "{who}: cannot raise priority to SCHED_RR {p} - {e}{}",
                os::hint(&e)
            ),
        },
        None => {
            // Not real-time; the nice value applies (keepalived ignores it with
            // `*_rt_priority`). A negative one is not passed on to helper threads and scripts.
            let nice = t.nice.map_or(original.nice, i32::from);
            if let Err(e) = os::set_other(tid, nice < 0) {
                warn!("{who}: cannot set SCHED_OTHER - {e}");
            }
            if os::nice(tid).ok() != Some(nice) {
                if let Err(e) = os::set_nice(tid, nice) {
                    warn!(
                        "{who}: Unable to set process priority to {nice} - {e}{}",
                        os::hint(&e)
                    );
                }
            }
        }
    }
    let cpus = if t.cpus.is_empty() {
        &original.cpus
    } else {
        &t.cpus
    };
    if !cpus.is_empty() && os::affinity(tid).ok().as_deref() != Some(cpus.as_slice()) {
        if let Err(e) = os::set_affinity(tid, cpus) {
            warn!(
                "{who}: unable to set cpu affinity to {cpus:?} - {e}{}",
                os::hint(&e)
            );
        }
    }
    let (policy, _, priority) = os::scheduler(tid).unwrap_or((-1, false, 0));
    let policy = match policy {
        libc::SCHED_RR => "SCHED_RR",
        libc::SCHED_OTHER => "SCHED_OTHER",
        _ => "other",
    };
    info!(
        side = side.name(),
        tid = tid.as_raw(),
        policy,
        priority,
        nice = os::nice(tid).unwrap_or(0),
        cpus = ?os::affinity(tid).unwrap_or_default(),
        "the {} thread runs with",
        side.name()
    );
    rt
}

/// Sets RLIMIT_RTTIME once a side runs real-time: the largest limit of the sides that run
/// or may go real-time (`max_auto_priority`), so that a second side going real-time later
/// need not raise the hard limit (which takes CAP_SYS_RESOURCE). Without a real-time thread
/// the limit binds nobody and is left alone.
fn update_rttime(st: &mut State) {
    if st.sides.iter().all(|s| s.rt.is_none()) {
        return;
    }
    let want = rttime_limit(
        st.sides
            .iter()
            .filter(|s| s.rt.is_some() || s.escalator.is_some())
            .map(|s| s.rttime_us),
    );
    let Some((soft, hard)) = want else { return };
    if want == st.rttime {
        return;
    }
    match os::set_rttime(soft, hard) {
        Ok(()) => {
            st.rttime = want;
            info!("RLIMIT_RTTIME {soft}/{hard} µs (soft/hard) for the real-time thread(s)");
        }
        Err(e) => {
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            warn!("child process cannot set realtime rlimit {soft}/{hard} µs - {e}{hint}")
        }
    }
}

/// `max_auto_priority`: wakes every [`WATCH_TICK`] on its side's runtime; a wake later than
/// `min_auto_priority_delay` means the side is not getting the CPU, and it goes real-time
/// (then one priority step higher each time, up to the cap), in keepalived's words.
async fn watch(side: Side, state: Arc<Mutex<State>>) {
    let mut due = tokio::time::Instant::now() + WATCH_TICK;
    loop {
        tokio::time::sleep_until(due).await;
        let now = tokio::time::Instant::now();
        let late = now.saturating_duration_since(due);
        due = now + WATCH_TICK;
        let mut st = lock(&state);
        let s = &mut st.sides[side as usize];
        let Some(p) = s.escalator.as_mut().and_then(|e| e.late(late)) else {
            continue;
        };
        info!(
            side = side.name(),
            "A thread timer expired {:.6} seconds ago",
            late.as_secs_f64()
        );
        match os::set_rr(s.tid, p) {
            Ok(()) => {
                s.rt = Some(p);
                s.touched = true;
                info!(
                    side = side.name(),
                    tid = s.tid.as_raw(),
                    "Set realtime priority {p}"
                );
                update_rttime(&mut st);
            }
            Err(e) => {
                warn!(
                    side = side.name(),
                    "cannot raise priority to SCHED_RR {p} - {e}{}; no further automatic increase",
                    os::hint(&e)
                );
                s.escalator = None;
            }
        }
    }
}
