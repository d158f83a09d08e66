//! The daemon's internal components and what happens when one fails (docs/SUPERVISION.md has
//! the table): it is restarted, with the failure logged, counted and shown in the dumps, or the
//! daemon releases its addresses and exits non-zero ([`Failed`]), and its supervisor
//! ([`crate::supervisor`]) starts it again.
//!
//! Nothing dies silently: every panic is logged through the daemon's log ([`install_panic_hook`],
//! not only on a stderr nobody reads), and every restart is in the registry the dumps show.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use serde::Serialize;
use tracing::{error, info};

/// A component that must not fail did: the daemon releases and exits for its supervisor to
/// start it again (exit status 70, keepalived's `KEEPALIVED_EXIT_PROGRAM_ERROR`).
#[derive(Debug, thiserror::Error)]
#[error("{component} failed: {reason}")]
pub struct Failed {
    pub component: String,
    pub reason: String,
}

/// Failures of one component, as the dumps show them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Record {
    /// Times it failed and was started again.
    pub restarts: u64,
    /// Why, the last time.
    pub last_failure: Option<String>,
    /// When, the last time (seconds since the Unix epoch).
    pub last_failure_at: Option<u64>,
}

static REGISTRY: Mutex<BTreeMap<String, Record>> = Mutex::new(BTreeMap::new());
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Records that `component` failed (`why`) and is being restarted; returns its count.
pub fn record_restart(component: &str, why: &str) -> u64 {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let r = reg.entry(component.to_string()).or_default();
    r.restarts += 1;
    r.last_failure = Some(why.to_string());
    r.last_failure_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs());
    r.restarts
}

/// Sets `component`'s record outright (counters kept elsewhere: the supervisor's restarts of
/// the whole child, the checker scheduler's, the balancer workers').
pub fn set_record(component: &str, record: Record) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.insert(component.to_string(), record);
}

/// Every component that has failed, with its record.
pub fn snapshot() -> BTreeMap<String, Record> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Panics in this process so far (restarted or not).
pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// Sends every panic to the daemon's log (syslog, file, console as configured) with its
/// thread and location, and counts it. Replaces the default hook, whose one line on stderr is
/// lost when the daemon logs elsewhere.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let at = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        error!(
            "thread '{name}' panicked{at}: {}",
            panic_message(info.payload())
        );
    }));
}

pub use fault_inject::panic_message;

/// First wait before a restart; doubled after each failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A run this long resets the backoff.
const GOOD_RUN: Duration = Duration::from_secs(60);

/// One run of a component's body over its state, borrowed so that what it owns (channels,
/// sockets) survives a panic and serves the next run.
pub type BoxRun<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Runs `body` over `state` until it returns; a panic is logged and counted under `component`,
/// and the body runs again after a backoff (100 ms doubling to 5 s, reset by a minute's run).
pub async fn supervise<S>(
    component: &str,
    state: &mut S,
    mut body: impl for<'a> FnMut(&'a mut S) -> BoxRun<'a>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        match AssertUnwindSafe(body(state)).catch_unwind().await {
            Ok(()) => return,
            Err(p) => {
                let why = panic_message(&*p);
                let n = record_restart(component, &why);
                if started.elapsed() >= GOOD_RUN {
                    backoff = FIRST_BACKOFF;
                }
                error!("{component} failed ({why}); restarting it in {backoff:?} (restart {n})");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                info!("{component} restarted");
            }
        }
    }
}

/// Where [`spawn_vital`] reports, once [`vital_failures`] has been called.
static VITAL: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Failed>> =
    std::sync::OnceLock::new();

/// The failures of vital tasks, for the daemon's loop to act on (release and exit): call it
/// once, before the tasks start.
pub fn vital_failures() -> Option<tokio::sync::mpsc::UnboundedReceiver<Failed>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    VITAL.set(tx).ok().map(|()| rx)
}

/// Spawns a task the VRRP side cannot work without and cannot restart alone (the rtnetlink
/// connection, the link and deletion event streams: what they knew is gone with them). Its
/// end, by panic or otherwise, is a [`Failed`] for the daemon to release and exit on.
pub fn spawn_vital(
    component: &'static str,
    task: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let reason = match AssertUnwindSafe(task).catch_unwind().await {
            Ok(()) => "ended".to_string(),
            Err(p) => format!("panicked: {}", panic_message(&*p)),
        };
        if let Some(tx) = VITAL.get() {
            let _ = tx.send(Failed {
                component: component.into(),
                reason,
            });
        }
    })
}

/// [`supervise`] in a task of its own.
pub fn spawn<S: Send + 'static>(
    component: String,
    mut state: S,
    body: impl for<'a> FnMut(&'a mut S) -> BoxRun<'a> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { supervise(&component, &mut state, body).await })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_body_is_run_again_with_its_state() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(8);
        for i in 0..4 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let mut seen = Vec::new();
        let mut state = (rx, Vec::new());
        supervise("unit-test component", &mut state, |(rx, seen)| {
            Box::pin(async move {
                while let Some(i) = rx.recv().await {
                    if i == 1 && !seen.contains(&100) {
                        seen.push(100);
                        panic!("injected");
                    }
                    seen.push(i);
                }
            })
        })
        .await;
        seen.extend(state.1);
        rx = state.0;
        assert!(rx.recv().await.is_none());
        // 1 was taken by the run that panicked: the next run goes on from 2.
        assert_eq!(seen, [0, 100, 2, 3]);
        let r = &snapshot()["unit-test component"];
        assert_eq!(r.restarts, 1);
        assert_eq!(r.last_failure.as_deref(), Some("injected"));
    }
}
