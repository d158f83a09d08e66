//! One async scheduler for every checker, in one task: a timeline of probe starts and one timer;
//! TCP_CHECK connects run inline on the [`Connector`]'s epoll and half-open TCP_CHECKs on the
//! [`Synner`]'s raw sockets (no task, no timer each), other kinds as tasks; outcomes feed each checker's [`Health`], and every change becomes an
//! [`Event`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::connector::{Connector, Finished};
use crate::event::Event;
use crate::health::{self, Change, Health, Outcome};
use crate::probe::halfopen::Answer;
use crate::probe::tcp::Started;
use crate::probe::{PrepareError, Prepared};
use crate::spec::Resolved;
use crate::status::{CheckerStatus, Lateness};
use crate::synner::Synner;
use crate::timeline::Timeline;

/// A configuration error, naming the checker.
#[derive(Debug, thiserror::Error)]
#[error("checker {index} ({target}): {source}")]
pub struct SpawnError {
    /// Index in the list given to [`spawn`].
    pub index: usize,
    /// The target's id.
    pub target: String,
    /// What is wrong.
    pub source: PrepareError,
}

struct Checker {
    spec: Resolved,
    probe: Prepared,
    health: Health,
    /// When the current (or last) probe was due.
    due: Instant,
    /// When it actually started.
    started: Instant,
}

/// Control and status of a running scheduler.
pub struct Handle {
    status: Arc<Mutex<Vec<CheckerStatus>>>,
    lateness: Arc<Mutex<Lateness>>,
    failures: Arc<Mutex<Failures>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// The scheduler's own failures: each panic is logged, counted here, and the scheduler goes
/// on (every checker keeps its verdict; the probes in flight are abandoned and rescheduled).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Failures {
    pub restarts: u64,
    pub last: Option<String>,
}

/// How long [`Handle::shutdown`] waits for the scheduler (a stalled one is abandoned).
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(3);

/// First wait before the scheduler runs again after a panic; doubled up to 5 s.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Handle {
    /// Current status of every checker, in the order given to [`spawn`].
    pub fn snapshot(&self) -> Vec<CheckerStatus> {
        self.status.lock().expect("status lock").clone()
    }

    /// [`Handle::snapshot`] as JSON.
    pub fn snapshot_json(&self) -> String {
        serde_json::to_string_pretty(&self.snapshot()).expect("status serializes")
    }

    /// Probe start lateness against schedule, over the most recent probes.
    pub fn lateness(&self) -> Lateness {
        self.lateness.lock().expect("lateness lock").clone()
    }

    /// The scheduler's own failures so far.
    pub fn failures(&self) -> Failures {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stop probing. Checkers with `omega` that are up are reported down (keepalived runs
    /// their notify_down on exit). Waits [`SHUTDOWN_LIMIT`] at most.
    pub async fn shutdown(self) {
        self.shutdown_within(SHUTDOWN_LIMIT).await;
    }

    /// [`Handle::shutdown`], waiting `limit` at most; false when the scheduler did not end in
    /// time (a stalled thread): it is then abandoned.
    pub async fn shutdown_within(mut self, limit: Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let ended = tokio::time::timeout(limit, &mut self.task).await.is_ok();
        if !ended {
            tracing::warn!("the checker scheduler did not stop within {limit:?}; abandoned");
        }
        ended
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Prepare every checker and start the scheduler on the current tokio runtime.
pub fn spawn(
    checks: Vec<Resolved>,
) -> Result<(Handle, mpsc::UnboundedReceiver<Event>), SpawnError> {
    let mut checkers = Vec::with_capacity(checks.len());
    for (index, spec) in checks.into_iter().enumerate() {
        let probe = Prepared::new(&spec).map_err(|source| SpawnError {
            index,
            target: spec.target.id.clone(),
            source,
        })?;
        let health = Health::new(&spec.timers);
        let now = Instant::now();
        checkers.push(Checker {
            spec,
            probe,
            health,
            due: now,
            started: now,
        });
    }
    let status = Arc::new(Mutex::new(
        checkers
            .iter()
            .enumerate()
            .map(|(i, c)| CheckerStatus::new(i, &c.spec, &c.health))
            .collect(),
    ));
    let lateness = Arc::new(Mutex::new(Lateness::default()));
    let failures = Arc::new(Mutex::new(Failures::default()));
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let run = Run::new(checkers, status.clone(), lateness.clone(), tx);
    let task = tokio::spawn(supervise(run, stop_rx, failures.clone()));
    Ok((
        Handle {
            status,
            lateness,
            failures,
            stop: Some(stop_tx),
            task,
        },
        rx,
    ))
}

/// The scheduler's state, owned by its one task.
struct Run {
    checkers: Vec<Checker>,
    /// Next probe start per checker.
    heap: Timeline,
    /// TCP_CHECK connects in flight; `None` if no epoll instance could be made (TCP_CHECK then
    /// runs as tasks like the other kinds).
    connector: Option<Connector>,
    /// Half-open TCP_CHECKs in flight; `None` if no raw socket could be opened (they then run
    /// as tasks, each on sockets of its own).
    synner: Option<Synner>,
    /// Probes of the other kinds, one task each.
    running: JoinSet<(Outcome, Duration)>,
    owner: HashMap<tokio::task::Id, usize>,
    status: Arc<Mutex<Vec<CheckerStatus>>>,
    lateness: Arc<Mutex<Lateness>>,
    events: mpsc::UnboundedSender<Event>,
    late: Vec<Duration>,
    finished: Vec<Finished>,
    answered: Vec<Finished<std::io::Result<Answer>>>,
}

/// Connects judged between two looks at the clock, so that a burst of completions does not hold
/// back probes falling due meanwhile.
const FINISH_CHUNK: usize = 64;
/// Probes started in a row before looking at finished connects (closing them, freeing their
/// descriptors), during a burst.
const COLLECT_EVERY: usize = 32;
/// Probes started per turn of the task before it yields to the others on the runtime (VRRP
/// shares it): a scheduler that is behind does not starve them.
const DISPATCH_TURN: usize = 256;

impl Run {
    /// Start the probes that are due, measuring each one's lateness when it really starts.
    /// Returns whether more are due (the turn's budget ran out).
    fn dispatch_due(&mut self) -> bool {
        let mut started = 0;
        let more = loop {
            let now = Instant::now();
            let Some((at, i)) = self.heap.pop_due(now) else {
                break false;
            };
            self.late.push(now.saturating_duration_since(at));
            self.start(i, at, now);
            started += 1;
            if started % COLLECT_EVERY == 0 {
                if let Some(conn) = self.connector.as_mut() {
                    conn.collect();
                }
                if let Some(syn) = self.synner.as_mut() {
                    // On loopback the answers come back inside the send.
                    syn.flush();
                    syn.collect();
                }
                self.judge(usize::MAX);
            }
            if started == DISPATCH_TURN {
                break self.heap.peek().is_some_and(|at| at <= Instant::now());
            }
        };
        if let Some(syn) = self.synner.as_mut() {
            syn.flush();
        }
        if !self.late.is_empty() {
            self.lateness
                .lock()
                .expect("lateness lock")
                .record(&self.late);
            self.late.clear();
        }
        more
    }

    fn start(&mut self, i: usize, due: Instant, now: Instant) {
        let c = &mut self.checkers[i];
        c.due = due;
        c.started = now;
        let timeout = c.spec.timers.connect_timeout;
        let decided = match (&c.probe, self.connector.as_mut()) {
            (Prepared::Tcp(p), Some(conn)) => match p.start() {
                Started::Pending(sock) => conn
                    .watch(sock, i, now, timeout)
                    .err()
                    .map(|e| p.verdict(Err(e))),
                Started::Done(r) => Some(p.verdict(r)),
            },
            (Prepared::HalfOpen(p), _) if p.shared_engine_can_send() && self.synner.is_some() => {
                let syn = self.synner.as_mut().expect("synner");
                syn.start(i, p.destination(), p.bindto(), now, timeout)
                    .err()
                    .map(|e| p.verdict(Err(e)))
            }
            (probe, _) => {
                let probe = probe.run(&c.spec.timers);
                let handle = self.running.spawn(async move {
                    let t0 = Instant::now();
                    let outcome = probe.await;
                    (outcome, t0.elapsed())
                });
                self.owner.insert(handle.id(), i);
                None
            }
        };
        if let Some(outcome) = decided {
            let ended = Instant::now();
            self.complete(i, outcome, ended, ended);
        }
    }

    /// Judge the collected connects, starting probes that fall due in between, then give up on
    /// those past their deadline. Returns whether more probes are due than one turn starts.
    fn finish_connects(&mut self) -> bool {
        while self.connector.as_ref().is_some_and(Connector::has_ready)
            || self.synner.as_ref().is_some_and(Synner::has_ready)
        {
            self.judge(FINISH_CHUNK);
            if self.dispatch_due() {
                return true;
            }
        }
        let now = Instant::now();
        if let Some(conn) = self.connector.as_mut() {
            conn.expire(now, &mut self.finished);
        }
        if let Some(syn) = self.synner.as_mut() {
            syn.expire(now, &mut self.answered);
        }
        self.complete_finished();
        false
    }

    /// Judge (and close) up to `max` collected connects.
    fn judge(&mut self, max: usize) {
        if let Some(conn) = self.connector.as_mut() {
            conn.finish_ready(max, &mut self.finished);
        }
        if let Some(syn) = self.synner.as_mut() {
            syn.finish_ready(max, &mut self.answered);
        }
        self.complete_finished();
    }

    fn complete_finished(&mut self) {
        if !self.answered.is_empty() {
            let ended = Instant::now();
            let mut answered = std::mem::take(&mut self.answered);
            for f in answered.drain(..) {
                let c = &self.checkers[f.checker];
                let Prepared::HalfOpen(p) = &c.probe else {
                    continue;
                };
                let outcome = match f.result {
                    Some(r) => p.verdict(r),
                    None => timeout_outcome(c.spec.timers.connect_timeout),
                };
                self.complete(f.checker, outcome, f.not_before, ended);
            }
            self.answered = answered;
        }
        if self.finished.is_empty() {
            return;
        }
        let ended = Instant::now();
        let mut finished = std::mem::take(&mut self.finished);
        for f in finished.drain(..) {
            let c = &self.checkers[f.checker];
            let Prepared::Tcp(p) = &c.probe else {
                continue;
            };
            let outcome = match f.result {
                Some(r) => p.verdict(r),
                None => timeout_outcome(c.spec.timers.connect_timeout),
            };
            self.complete(f.checker, outcome, f.not_before, ended);
        }
        self.finished = finished;
    }

    fn joined(
        &mut self,
        joined: Result<(tokio::task::Id, (Outcome, Duration)), tokio::task::JoinError>,
    ) {
        let (id, outcome, latency) = match joined {
            Ok((id, (o, l))) => (id, o, l),
            Err(e) => (
                e.id(),
                Outcome::down(format!("probe failed: {e}")),
                Duration::ZERO,
            ),
        };
        if let Some(i) = self.owner.remove(&id) {
            let finished = self.checkers[i].started + latency;
            self.complete(i, outcome, finished, Instant::now());
        }
    }

    /// Feed an outcome to the checker's health, publish it, and schedule the next probe.
    /// The probe finished at `finished` or later; the scheduler saw it at `seen`.
    fn complete(&mut self, i: usize, outcome: Outcome, finished: Instant, seen: Instant) {
        let c = &mut self.checkers[i];
        let latency = seen.saturating_duration_since(c.started);
        let step = c.health.on_outcome(&c.spec.timers, &outcome);
        self.status.lock().expect("status lock")[i].record(&c.health, &outcome, latency);
        if let Some(change) = step.change {
            log_change(c, change, &outcome);
            let _ = self.events.send(Event::new(
                i,
                &c.spec,
                &c.health,
                change,
                outcome.reason,
                Some(latency),
            ));
        } else if !outcome.ok && c.spec.log_all_failures {
            tracing::info!(target_id = %c.spec.target.id, kind = c.spec.probe.keyword(), "check failed: {}", outcome.reason);
        }
        let took = finished.saturating_duration_since(c.started);
        self.heap
            .push(health::next_due(c.due, took, step.next, seen), i);
    }

    /// The earliest instant something must happen.
    fn next_deadline(&self) -> Option<Instant> {
        let probe = self.heap.peek();
        let connect = self.connector.as_ref().and_then(Connector::next_deadline);
        let syn = self.synner.as_ref().and_then(Synner::next_deadline);
        [probe, connect, syn].into_iter().flatten().min()
    }
}

impl Run {
    /// The scheduler's state for `checkers`: every first probe within its `warmup`.
    fn new(
        checkers: Vec<Checker>,
        status: Arc<Mutex<Vec<CheckerStatus>>>,
        lateness: Arc<Mutex<Lateness>>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        let start = Instant::now();
        let mut heap = Timeline::new(start, checkers.len());
        {
            let mut rng = rand::rng();
            for (i, c) in checkers.iter().enumerate() {
                // keepalived: the first check starts at a random point within `warmup`.
                let w = c.spec.timers.warmup;
                let spread = if w.is_zero() {
                    Duration::ZERO
                } else {
                    w.mul_f64(rng.random::<f64>())
                };
                heap.push(start + spread, i);
            }
        }
        let needs_connector = checkers.iter().any(|c| matches!(c.probe, Prepared::Tcp(_)));
        let connector = if needs_connector {
            Connector::new()
                .inspect_err(|e| tracing::warn!("TCP_CHECK connects run as tasks: epoll: {e}"))
                .ok()
        } else {
            None
        };
        // Families of the half-open checkers the shared engine serves.
        let (mut v4, mut v6) = (false, false);
        for c in &checkers {
            if let Prepared::HalfOpen(p) = &c.probe {
                if p.shared_engine_can_send() {
                    v4 |= p.destination().is_ipv4();
                    v6 |= p.destination().is_ipv6();
                }
            }
        }
        let synner = if v4 || v6 {
            Synner::new(v4, v6)
                .inspect_err(|e| {
                    tracing::warn!(
                        "half-open TCP_CHECKs run on sockets of their own: raw socket: {e}"
                    )
                })
                .ok()
        } else {
            None
        };
        Self {
            checkers,
            heap,
            connector,
            synner,
            running: JoinSet::new(),
            owner: HashMap::new(),
            status,
            lateness,
            events,
            late: Vec::new(),
            finished: Vec::new(),
            answered: Vec::new(),
        }
    }

    /// The state after a panic: the checkers (and their verdicts) kept, everything in flight
    /// dropped, every checker due again within its warmup.
    fn restart(self) -> Self {
        let Run {
            checkers,
            status,
            lateness,
            events,
            ..
        } = self;
        Self::new(checkers, status, lateness, events)
    }

    /// Probes until `stop` fires.
    async fn serve(&mut self, stop: &mut oneshot::Receiver<()>) {
        let run = self;
        // One timer, re-armed to the earliest deadline, instead of one per probe.
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        loop {
            let next = run.next_deadline();
            if let Some(next) = next {
                if timer.deadline() != next {
                    timer.as_mut().reset(next);
                }
            }
            let mut joined = None;
            let go_on = std::future::poll_fn(|cx| {
                if Pin::new(&mut *stop).poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
                let mut woke = next.is_some() && timer.as_mut().poll(cx).is_ready();
                if let Some(conn) = run.connector.as_mut() {
                    // Also what a turn left unjudged when it ran out of budget.
                    woke |= conn.poll_collect(cx).is_ready() || conn.has_ready();
                }
                if let Some(syn) = run.synner.as_mut() {
                    if syn.has_outgoing() {
                        syn.poll_flush(cx);
                    }
                    woke |= syn.poll_collect(cx).is_ready() || syn.has_ready();
                }
                if !run.running.is_empty() {
                    if let Poll::Ready(Some(j)) = run.running.poll_join_next_with_id(cx) {
                        joined = Some(j);
                        woke = true;
                    }
                }
                if woke {
                    Poll::Ready(true)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if !go_on {
                return;
            }
            fault_inject::point("checker-scheduler");
            // Due probes first: completions never delay a start that is already late.
            let mut more = run.dispatch_due();
            if !more {
                more = run.finish_connects();
            }
            if let Some(j) = joined {
                run.joined(j);
            }
            while let Some(j) = run.running.try_join_next_with_id() {
                run.joined(j);
            }
            if more || run.dispatch_due() {
                // Behind schedule: let the runtime's other tasks run before the next batch.
                tokio::task::yield_now().await;
            }
        }
    }

    /// Stops: what runs is dropped, and up `omega` checkers are reported down.
    async fn finish(self) {
        let Run {
            mut checkers,
            mut running,
            events,
            ..
        } = self;
        running.shutdown().await;
        for (i, c) in checkers.iter_mut().enumerate() {
            if c.spec.timers.omega && c.health.up {
                c.health.up = false;
                let _ = events.send(Event::new(
                    i,
                    &c.spec,
                    &c.health,
                    Change::Down,
                    "shutdown (omega)".into(),
                    None,
                ));
            }
        }
    }
}

/// Runs the scheduler until `stop`, again after each panic: the failure is logged and counted
/// in `failures`, the checkers keep their verdicts, and probing resumes after a backoff (100 ms
/// doubling to 5 s). A scheduler that died silently would leave every real server as it last
/// was, dead ones included.
async fn supervise(mut run: Run, mut stop: oneshot::Receiver<()>, failures: Arc<Mutex<Failures>>) {
    use futures::FutureExt;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let served = std::panic::AssertUnwindSafe(run.serve(&mut stop))
            .catch_unwind()
            .await;
        let Err(panic) = served else { break };
        let why = fault_inject::panic_message(&*panic);
        let n = {
            let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
            f.restarts += 1;
            f.last = Some(why.clone());
            f.restarts
        };
        tracing::error!(
            "checker scheduler failed ({why}); restarting it in {backoff:?} (restart {n})"
        );
        let stopped = tokio::select! {
            _ = tokio::time::sleep(backoff) => false,
            _ = &mut stop => true,
        };
        backoff = (backoff * 2).min(MAX_BACKOFF);
        run = run.restart();
        if stopped {
            break;
        }
        tracing::info!("checker scheduler restarted");
    }
    run.finish().await;
}

fn timeout_outcome(limit: Duration) -> Outcome {
    Outcome::down(format!("timeout after {:.3}s", limit.as_secs_f64()))
}

fn log_change(c: &Checker, change: Change, outcome: &Outcome) {
    tracing::info!(
        target_id = %c.spec.target.id,
        kind = c.spec.probe.keyword(),
        ?change,
        weight = ?c.health.weight,
        "{}",
        outcome.reason
    );
}
