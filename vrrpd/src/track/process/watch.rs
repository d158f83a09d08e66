//! The driver: one [`Watcher`] for every tracked process of the configuration. It subscribes
//! to the kernel's process events, reads `/proc` once, then follows fork / exec / rename /
//! exit events as keepalived does, with no polling.
//!
//! When the connector cannot be used it says why and rescans `/proc` every
//! [`RESCAN_INTERVAL`] instead: without root, with a kernel lacking `CONFIG_PROC_EVENTS`, or
//! in a network namespace of its own (the kernel sends process events to the initial network,
//! user and PID namespaces only; keepalived then counts no process at all).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::connector::{Connector, Event};
use super::{procfs, Change, ProcSpec, Table};

/// How often the fallback reads every process (about what `pgrep` in a `vrrp_script` with
/// keepalived's default interval costs).
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// How long the kernel has to acknowledge the listen request before the fallback takes over.
pub const ACK_WAIT: Duration = Duration::from_secs(1);

/// Where process changes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The kernel's process events connector.
    Connector,
    /// A periodic scan of `/proc`.
    Rescan,
}

/// The process table and what feeds it.
pub struct Watcher {
    table: Table,
    conn: Option<Connector>,
    root: PathBuf,
    interval: Duration,
}

impl Watcher {
    /// Subscribes to the process events (when `want` is [`Source::Connector`] and the kernel
    /// lets it), then reads every process under `root` (`/proc`): subscribing first, so
    /// nothing that happens during the scan is missed. `interval` is the fallback's.
    pub fn start(specs: Vec<ProcSpec>, root: &Path, want: Source, interval: Duration) -> Self {
        let conn = match want {
            Source::Rescan => None,
            Source::Connector => match Connector::open() {
                Ok(c) => Some(c),
                Err(e) => {
                    warn!(
                        "track_process: process events connector unavailable ({e}); \
                         rescanning /proc every {interval:?} instead"
                    );
                    None
                }
            },
        };
        let with_cmdline = specs.iter().any(|s| s.full_command);
        let table = Table::new(specs, procfs::scan(root, with_cmdline));
        if conn.is_some() {
            info!("track_process: following the kernel's process events");
        }
        Self {
            table,
            conn,
            root: root.to_path_buf(),
            interval,
        }
    }

    /// The table as read at start (statuses to report before [`Self::run`]).
    pub fn table(&self) -> &Table {
        &self.table
    }

    pub fn source(&self) -> Source {
        if self.conn.is_some() {
            Source::Connector
        } else {
            Source::Rescan
        }
    }

    /// Follows the processes and sends every status change to `tx`; ends when `tx` closes.
    pub async fn run(&mut self, tx: &mpsc::Sender<Change>) {
        let mut ack_by = self.conn.is_some().then(|| Instant::now() + ACK_WAIT);
        let mut rescans = tokio::time::interval(self.interval);
        rescans.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        rescans.reset();
        loop {
            let deadline = self.table.next_deadline();
            let changes = tokio::select! {
                _ = tx.closed() => return,
                r = recv(&mut self.conn) => match r {
                    // The first datagram answers the listen request.
                    Ok(events) => match ack_by.take().and_then(|_| refused(&events)) {
                        Some(err) => {
                            let e = std::io::Error::from_raw_os_error(err as i32);
                            self.fall_back(&format!("the kernel refused to send process events ({e})"));
                            self.rescan().await
                        }
                        None => self.apply(events),
                    },
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        warn!("track_process: process events lost (receive buffer full); rescanning /proc");
                        self.rescan().await
                    }
                    Err(e) => {
                        ack_by = None;
                        self.fall_back(&format!("receiving process events: {e}"));
                        self.rescan().await
                    }
                },
                _ = sleep_until(ack_by) => {
                    ack_by = None;
                    self.fall_back(&format!(
                        "no reply to the listen request within {ACK_WAIT:?}: \
                         the kernel sends process events to the initial user and PID namespaces only"
                    ));
                    self.rescan().await
                }
                _ = rescans.tick(), if self.conn.is_none() => self.rescan().await,
                _ = sleep_until(deadline) => self.table.tick(Instant::now()),
            };
            // A panic here loses these changes: the restarted watcher rescans /proc.
            fault_inject::point("process-watcher");
            for c in changes {
                if tx.send(c).await.is_err() {
                    return;
                }
            }
        }
    }

    fn fall_back(&mut self, why: &str) {
        self.conn = None;
        warn!(
            "track_process: process events connector unusable ({why}); \
             rescanning /proc every {:?} instead",
            self.interval
        );
    }

    /// Feeds connector events to the table; an `exec` is looked up in `/proc` (the new
    /// program's name and, when needed, its command line).
    fn apply(&mut self, events: Vec<Event>) -> Vec<Change> {
        let now = Instant::now();
        let with_cmdline = self.table.needs_cmdline();
        let mut out = Vec::new();
        for ev in events {
            debug!(?ev, "process event");
            out.extend(match ev {
                Event::Ack { .. } => Vec::new(),
                Event::Fork { parent, child } => self.table.fork(now, parent, child),
                Event::Exec(pid) => {
                    let info = procfs::read(&self.root, pid, with_cmdline);
                    self.table.exec(now, pid, info.as_ref())
                }
                Event::Comm { pid, comm } => self.table.comm(now, pid, &comm),
                Event::Exit(pid) => self.table.exit(now, pid),
            });
        }
        out
    }

    /// Reads every process again (off the async threads: it is one read per process).
    pub async fn rescan(&mut self) -> Vec<Change> {
        let root = self.root.clone();
        let with_cmdline = self.table.needs_cmdline();
        let procs = tokio::task::spawn_blocking(move || procfs::scan(&root, with_cmdline))
            .await
            .unwrap_or_default();
        self.table.rescan(Instant::now(), procs)
    }
}

/// The error of a refused listen request, if the events hold one.
fn refused(events: &[Event]) -> Option<u32> {
    events.iter().find_map(|e| match e {
        Event::Ack { err } if *err != 0 => Some(*err),
        _ => None,
    })
}

async fn recv(conn: &mut Option<Connector>) -> std::io::Result<Vec<Event>> {
    match conn {
        Some(c) => c.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// Copies of system programs under names unique to this run (process names are global),
    /// and the processes started from them, killed and removed on drop (also on panic).
    struct Progs {
        dir: PathBuf,
        kids: Vec<Child>,
    }

    impl Progs {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("vrrpd-tp-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self {
                dir,
                kids: Vec::new(),
            }
        }

        /// `/bin/<prog>` copied as a unique name of at most 15 characters.
        fn copy(&self, prog: &str, tag: &str) -> (PathBuf, String) {
            let name = format!("tw{tag}{}", std::process::id() % 1_000_000);
            assert!(name.len() <= 15);
            let path = self.dir.join(&name);
            std::fs::copy(Path::new("/bin").join(prog), &path).unwrap();
            (path, name)
        }

        fn start(&mut self, path: &Path, args: &[&str]) -> u32 {
            let kid = Command::new(path).args(args).spawn().unwrap();
            let pid = kid.id();
            self.kids.push(kid);
            pid
        }

        fn kill(&mut self, pid: u32) {
            let i = self.kids.iter().position(|k| k.id() == pid).unwrap();
            let mut kid = self.kids.remove(i);
            kid.kill().unwrap();
            kid.wait().unwrap();
        }
    }

    impl Drop for Progs {
        fn drop(&mut self) {
            for k in &mut self.kids {
                let _ = k.kill();
                let _ = k.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn spec(process: &str) -> ProcSpec {
        ProcSpec::simple("t", process)
    }

    async fn next(rx: &mut mpsc::Receiver<Change>) -> Change {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a change in time")
            .expect("watcher running")
    }

    /// The status follows a real process: up while it runs, down once killed (before it is
    /// reaped it is a zombie, which does not count), up again when restarted.
    async fn follows_a_process(source: Source, tag: &str) -> Option<()> {
        let mut progs = Progs::new(tag);
        let (sleep, name) = progs.copy("sleep", tag);
        let pid = progs.start(&sleep, &["600"]);
        let w = Watcher::start(
            vec![spec(&name), spec("no-such-proc")],
            Path::new("/proc"),
            source,
            Duration::from_millis(50),
        );
        if w.source() != source {
            eprintln!("skipped: the process events connector is not usable here");
            return None;
        }
        // The start-up scan may race the exec of the child: wait for its name.
        let t = w.table();
        assert!(!t.up(1));
        let (tx, mut rx) = mpsc::channel(8);
        let up_at_start = t.up(0);
        tokio::spawn(async move {
            let mut w = w;
            w.run(&tx).await
        });
        if !up_at_start {
            assert_eq!(
                next(&mut rx).await,
                Change {
                    index: 0,
                    up: true,
                    count: 1
                }
            );
        }
        let t0 = Instant::now();
        progs.kill(pid);
        assert_eq!(
            next(&mut rx).await,
            Change {
                index: 0,
                up: false,
                count: 0
            }
        );
        eprintln!("{source:?}: the kill was seen after {:?}", t0.elapsed());
        let a = progs.start(&sleep, &["600"]);
        assert_eq!(
            next(&mut rx).await,
            Change {
                index: 0,
                up: true,
                count: 1
            }
        );
        let b = progs.start(&sleep, &["600"]);
        progs.kill(a);
        progs.kill(b);
        assert_eq!(
            next(&mut rx).await,
            Change {
                index: 0,
                up: false,
                count: 0
            }
        );
        Some(())
    }

    #[tokio::test]
    async fn rescan_follows_a_process() {
        follows_a_process(Source::Rescan, "r").await;
    }

    #[tokio::test]
    async fn connector_follows_a_process() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: the process events connector needs root");
            return;
        }
        follows_a_process(Source::Connector, "c").await;
    }

    /// A shell that forks a child per command: with `quorum_max 1`, each fork is a second
    /// process until the child execs `sleep`; `fork_delay` rides that out, so the status never
    /// flaps. Then a rename (`exec -a` is argv only; a new program changes the name) is seen.
    #[tokio::test]
    async fn connector_fork_delay_rides_out_fork_then_exec() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: the process events connector needs root");
            return;
        }
        let mut progs = Progs::new("f");
        let (sh, name) = progs.copy("sh", "f");
        let mut s = spec(&name);
        s.quorum_max = 1;
        s.fork_delay = Duration::from_secs(2);
        let w = Watcher::start(
            vec![s],
            Path::new("/proc"),
            Source::Connector,
            RESCAN_INTERVAL,
        );
        if w.source() != Source::Connector {
            eprintln!("skipped: the process events connector is not usable here");
            return;
        }
        let (tx, mut rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let mut w = w;
            w.run(&tx).await
        });
        let pid = progs.start(&sh, &["-c", "while :; do sleep 0.1; done"]);
        assert_eq!(
            next(&mut rx).await,
            Change {
                index: 0,
                up: true,
                count: 1
            }
        );
        // Many fork+exec cycles: no change reported.
        let quiet = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
        assert!(quiet.is_err(), "status flapped: {quiet:?}");
        progs.kill(pid);
        assert_eq!(
            next(&mut rx).await,
            Change {
                index: 0,
                up: false,
                count: 0
            }
        );
    }
}
