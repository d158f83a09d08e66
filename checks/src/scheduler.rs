//! One async scheduler for every checker: a timer heap drives probe starts, probes run as tasks,
//! their outcomes feed each checker's [`Health`], and every change becomes an [`Event`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::event::Event;
use crate::health::{Change, Health, Outcome};
use crate::probe::{PrepareError, Prepared};
use crate::spec::Resolved;
use crate::status::{CheckerStatus, Lateness};

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
}

/// Control and status of a running scheduler.
pub struct Handle {
    status: Arc<Mutex<Vec<CheckerStatus>>>,
    lateness: Arc<Mutex<Lateness>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

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

    /// Stop probing. Checkers with `omega` that are up are reported down (keepalived runs
    /// their notify_down on exit).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
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
        checkers.push(Checker {
            spec,
            probe,
            health,
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
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(run(checkers, status.clone(), lateness.clone(), tx, stop_rx));
    Ok((
        Handle {
            status,
            lateness,
            stop: Some(stop_tx),
            task,
        },
        rx,
    ))
}

async fn run(
    mut checkers: Vec<Checker>,
    status: Arc<Mutex<Vec<CheckerStatus>>>,
    lateness: Arc<Mutex<Lateness>>,
    events: mpsc::UnboundedSender<Event>,
    mut stop: oneshot::Receiver<()>,
) {
    let start = Instant::now();
    let mut heap = BinaryHeap::with_capacity(checkers.len());
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
            heap.push(Reverse((start + spread, i)));
        }
    }
    let mut running: JoinSet<(Outcome, Duration)> = JoinSet::new();
    let mut owner: HashMap<tokio::task::Id, usize> = HashMap::new();
    // One timer, re-armed to the heap's head, instead of a new one per loop turn.
    let timer = tokio::time::sleep_until(start);
    tokio::pin!(timer);
    loop {
        let next = heap.peek().map(|Reverse((at, _))| *at);
        if let Some(next) = next {
            if timer.deadline() != next {
                timer.as_mut().reset(next);
            }
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = &mut timer, if next.is_some() => {
                let now = Instant::now();
                let mut late = Vec::new();
                while let Some(Reverse((at, i))) = heap.peek().copied() {
                    if at > now {
                        break;
                    }
                    heap.pop();
                    late.push(now.saturating_duration_since(at));
                    let probe = checkers[i].probe.run(&checkers[i].spec.timers);
                    let handle = running.spawn(async move {
                        let t0 = Instant::now();
                        let outcome = probe.await;
                        (outcome, t0.elapsed())
                    });
                    owner.insert(handle.id(), i);
                }
                lateness.lock().expect("lateness lock").record(&late);
            }
            Some(joined) = running.join_next_with_id(), if !running.is_empty() => {
                let (id, outcome, latency) = match joined {
                    Ok((id, (o, l))) => (id, o, l),
                    Err(e) => (e.id(), Outcome::down(format!("probe failed: {e}")), Duration::ZERO),
                };
                let Some(i) = owner.remove(&id) else { continue };
                let c = &mut checkers[i];
                let step = c.health.on_outcome(&c.spec.timers, &outcome);
                status.lock().expect("status lock")[i].record(&c.health, &outcome, latency);
                if let Some(change) = step.change {
                    log_change(c, change, &outcome);
                    let _ = events.send(Event::new(i, &c.spec, &c.health, change, outcome.reason, Some(latency)));
                } else if !outcome.ok && c.spec.log_all_failures {
                    tracing::info!(target_id = %c.spec.target.id, kind = c.spec.probe.keyword(), "check failed: {}", outcome.reason);
                }
                heap.push(Reverse((Instant::now() + step.next, i)));
            }
        }
    }
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
