//! The daemon's threads besides the main one: the checker side's runtime, and a plain thread
//! that starts the balancer's dataplane workers with the process's original scheduling.
//! Both are made before any setting is applied, so they start with the original policy,
//! nice and CPUs.

use std::io;
use std::sync::mpsc;
use std::time::Duration;

use nix::unistd::Pid;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long the checker runtime waits, at exit, for blocking work still running on its pool.
const BLOCKING_GRACE: Duration = Duration::from_secs(1);

/// The health checks' own thread (`vrrpd-checker`) with a current-thread tokio runtime;
/// stopped (and its remaining tasks dropped) on drop.
pub struct CheckerThread {
    handle: Handle,
    tid: Pid,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CheckerThread {
    pub fn start() -> io::Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("vrrpd-checker".into())
            .spawn(move || {
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
        })
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
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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
                    job();
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
