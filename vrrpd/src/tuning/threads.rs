//! The daemon's threads besides the main one: the checker side's runtime, and a plain thread
//! that starts the balancer's dataplane workers with the process's original scheduling.
//! Both are made before any setting is applied, so they start with the original policy,
//! nice and CPUs.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use nix::unistd::Pid;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long the checker runtime waits, at exit, for blocking work still running on its pool.
const BLOCKING_GRACE: Duration = Duration::from_secs(1);

/// How long stopping the checker thread waits for it; a stalled one is left behind (the
/// process is exiting, or going on without it).
const STOP_GRACE: Duration = Duration::from_secs(1);

/// How often the checker thread shows it runs.
const BEAT: Duration = Duration::from_millis(500);

/// When the checker thread last ran its heartbeat task: a thread stuck in a task (a
/// blocking call, a loop) stops beating.
#[derive(Clone)]
pub struct Heartbeat {
    origin: std::time::Instant,
    /// Milliseconds since `origin` at the last beat.
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
            last: Arc::default(),
        }
    }

    fn beat(&self) {
        self.last
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long since the last beat.
    pub fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}

/// The health checks' own thread (`vrrpd-checker`) with a current-thread tokio runtime;
/// stopped (and its remaining tasks dropped) on drop.
pub struct CheckerThread {
    handle: Handle,
    tid: Pid,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Closed when the thread ends.
    done: mpsc::Receiver<()>,
    heartbeat: Heartbeat,
}

impl CheckerThread {
    pub fn start() -> io::Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let (done_tx, done) = mpsc::channel::<()>();
        let heartbeat = Heartbeat::new();
        let beats = heartbeat.clone();
        let thread = std::thread::Builder::new()
            .name("vrrpd-checker".into())
            .spawn(move || {
                let _done = done_tx;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name("checker-blocking")
                    .build();
                let rt = match rt {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((rt.handle().clone(), super::os::gettid())));
                // The runtime runs its tasks while this thread waits here.
                rt.block_on(async {
                    tokio::spawn(async move {
                        loop {
                            beats.beat();
                            tokio::time::sleep(BEAT).await;
                        }
                    });
                    let _ = stopped.await;
                });
                rt.shutdown_timeout(BLOCKING_GRACE);
            })?;
        let (handle, tid) = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the checker thread ended before its runtime ran"))??;
        Ok(Self {
            handle,
            tid,
            stop: Some(stop),
            thread: Some(thread),
            done,
            heartbeat,
        })
    }

    /// The thread's heartbeat, for stall detection.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Where the checker side's tasks are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub fn tid(&self) -> Pid {
        self.tid
    }
}

impl Drop for CheckerThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // A stalled thread is not waited for: stopping must not hang on it.
        match self.done.recv_timeout(STOP_GRACE) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!("the checker thread did not stop within {STOP_GRACE:?}; leaving it");
            }
            _ => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread (`vrrpd-spawner`) that runs closures one after the other, so that the threads
/// they start inherit its scheduling: the one the process started with.
pub struct Spawner {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spawner {
    pub fn start() -> io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("vrrpd-spawner".into())
            .spawn(move || {
                for job in rx {
                    // A job that panics is lost (its caller hears nothing back), not the
                    // thread: the next reload can start a balancer again.
                    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
                        let why = fault_inject::panic_message(&*p);
                        crate::components::record_restart("balancer spawner", &why);
                    }
                }
            })?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the spawner thread; `None` if that thread is gone (a job panicked).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.as_ref()?.send(job).ok()?;
        rx.await.ok()
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // Closing the queue ends the thread once the job at hand is done.
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_runtime_runs_tasks_on_its_own_thread() {
        let c = CheckerThread::start().unwrap();
        let main = super::super::os::gettid();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let on = rt
            .block_on(c.handle().spawn(async { super::super::os::gettid() }))
            .unwrap();
        assert_eq!(on, c.tid());
        assert_ne!(on, main);
        drop(c);
    }

    #[test]
    fn spawner_runs_jobs_on_its_thread() {
        let s = Spawner::start().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let name = rt
            .block_on(s.run(|| std::thread::current().name().map(str::to_string)))
            .unwrap();
        assert_eq!(name.as_deref(), Some("vrrpd-spawner"));
    }
}
