//! Who holds the VIP, sampled: a thread per node reads the node's addresses (getifaddrs in the
//! node's namespace, no process spawned) every period and records each change. The fault
//! matrix prints the timeline at 10 ms; benches sample faster to time when a dead node lets go.

use std::fs::File;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

use crate::error::{LabError, Result};
use crate::lab::Host;

/// One change seen on one node: from `at` on, `node` holds the VIP or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at: Instant,
    pub node: String,
    pub holds: bool,
}

/// A running sampler (stops on drop).
pub struct HolderWatch {
    changes: Arc<Mutex<Vec<Change>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    nodes: Vec<String>,
    pub started: Instant,
}

fn holds(vip: IpAddr) -> bool {
    nix::ifaddrs::getifaddrs().is_ok_and(|mut all| {
        all.any(|a| {
            a.address.is_some_and(|s| {
                s.as_sockaddr_in().map(|v| IpAddr::V4(v.ip())) == Some(vip)
                    || s.as_sockaddr_in6().map(|v| IpAddr::V6(v.ip())) == Some(vip)
            })
        })
    })
}

impl HolderWatch {
    /// Samples `vip` on each of `nodes` every `period`.
    pub fn start(nodes: &[&Host], vip: IpAddr, period: Duration) -> Result<Self> {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        for h in nodes {
            let ns = File::open(h.netns_path())?;
            let (changes, stop, name, ready) = (
                changes.clone(),
                stop.clone(),
                h.name.clone(),
                ready_tx.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("lab-holder-{name}"))
                    .spawn(move || {
                        if let Err(e) = setns(&ns, CloneFlags::CLONE_NEWNET) {
                            let _ = ready.send(Err(e.into()));
                            return;
                        }
                        let mut last = holds(vip);
                        let push = |holds: bool| {
                            changes
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(Change {
                                    at: Instant::now(),
                                    node: name.clone(),
                                    holds,
                                })
                        };
                        push(last);
                        let _ = ready.send(Ok(()));
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(period);
                            let now = holds(vip);
                            if now != last {
                                push(now);
                                last = now;
                            }
                        }
                    })?,
            );
        }
        for _ in nodes {
            ready_rx
                .recv_timeout(Duration::from_secs(5))
                .map_err(|_| LabError::Other("VIP sampler did not start".into()))??;
        }
        Ok(Self {
            changes,
            stop,
            threads,
            nodes: nodes.iter().map(|h| h.name.clone()).collect(),
            started: Instant::now(),
        })
    }

    /// Every change so far, in time order.
    pub fn changes(&self) -> Vec<Change> {
        let mut c = self
            .changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        c.sort_by_key(|c| c.at);
        c
    }

    /// Whether `node` held the VIP at `at` (as last sampled before it).
    pub fn held_at(&self, node: &str, at: Instant) -> bool {
        self.changes()
            .iter()
            .rfind(|c| c.node == node && c.at <= at)
            .is_some_and(|c| c.holds)
    }

    /// When `node` was first seen (after `after`) holding the VIP (`holds`) or not.
    pub fn first(&self, node: &str, holds: bool, after: Instant) -> Option<Instant> {
        self.changes()
            .iter()
            .find(|c| c.node == node && c.holds == holds && c.at >= after)
            .map(|c| c.at)
    }

    /// The holders at every `step` from `from` to `to`: "a", "b", "a+b" or "-" per sample.
    pub fn timeline(&self, from: Instant, to: Instant, step: Duration) -> Vec<String> {
        let changes = self.changes();
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            let held: Vec<&str> = self
                .nodes
                .iter()
                .filter(|n| {
                    changes
                        .iter()
                        .rfind(|c| &&c.node == n && c.at <= t)
                        .is_some_and(|c| c.holds)
                })
                .map(String::as_str)
                .collect();
            out.push(if held.is_empty() {
                "-".to_string()
            } else {
                held.join("+")
            });
            t += step;
        }
        out
    }
}

impl Drop for HolderWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
