//! Health checks in the daemon: every virtual server's checkers run in one `checks`
//! scheduler; each virtual server's membership (live real servers, quorum with hysteresis) is
//! kept by a `checks::pool::Pool`; the instances that `track_virtual_server` it hear when its
//! quorum comes and goes, as a priority delta or FAULT like any other tracker.
//!
//! keepalived cannot do this on a kernel without IPVS (its checker exits); here the verdicts
//! only need sockets.

use std::collections::HashMap;

use anyhow::Context;
use checks::pool::{Action, Pool, PoolSpec, RealServer};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::model::{Config, VirtualServer};
use crate::track::{Contribution, TrackKey, Weight};

/// Where a virtual server's quorum goes: an instance's tracker channel and the weight it gave.
type Subscriber = (mpsc::Sender<(TrackKey, Contribution)>, Weight);

/// One virtual server as the daemon follows it.
struct Followed {
    label: String,
    pool: Pool,
    subscribers: Vec<Subscriber>,
    /// For its `quorum_up` / `quorum_down` and the real servers' `notify_up` / `notify_down`.
    service: lbcore::spec::ServiceSpec,
}

/// keepalived puts no limit on these scripts; a hung one must still not pile up forever.
const SCRIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs a virtual server's script in the background (keepalived does not wait for them).
fn run_script(spec: Option<&lbcore::spec::ScriptSpec>) {
    let Some(spec) = spec else { return };
    let cmd = crate::track::script::Command {
        argv: super::trackers::split_command(&spec.command),
        user: spec
            .user
            .as_deref()
            .and_then(|u| crate::track::script::resolve_user(u, spec.group.as_deref())),
        timeout: SCRIPT_TIMEOUT,
    };
    let text = spec.command.clone();
    tokio::spawn(async move {
        let outcome = crate::track::script::run(&cmd).await;
        tracing::debug!(script = %text, ?outcome, "virtual server script");
    });
}

impl Followed {
    /// The `real_server` behind a pool target.
    fn real_server(&self, t: &checks::spec::Target) -> Option<&lbcore::spec::RealServerSpec> {
        self.service
            .real_servers
            .iter()
            .find(|rs| checks::spec::Target::new(rs.addr, rs.port.unwrap_or(0)) == *t)
    }
}

/// The running checkers; dropping it stops them.
pub struct Health {
    handle: checks::Handle,
}

impl Health {
    /// Status of every checker, for the SIGUSR1 dump.
    pub fn snapshot(&self) -> Vec<checks::CheckerStatus> {
        self.handle.snapshot()
    }
}

/// Starts the checkers of every virtual server. `trackers` maps instance names to their
/// tracker channels. Returns `None` when there is nothing to check.
pub async fn start(
    config: &Config,
    trackers: &HashMap<String, mpsc::Sender<(TrackKey, Contribution)>>,
) -> anyhow::Result<Option<Health>> {
    let mut specs = Vec::new();
    let mut followed = Vec::new();
    // Checker index → virtual server index.
    let mut owner = Vec::new();
    for (v, vs) in config.virtual_servers.iter().enumerate() {
        let (pool, resolved) = pool_of(vs, specs.len());
        owner.extend(std::iter::repeat_n(v, resolved.len()));
        specs.extend(resolved);
        let subscribers = config
            .instances
            .iter()
            .flat_map(|i| {
                i.track_virtual_servers
                    .iter()
                    .filter(|t| t.vs.matches(&vs.service.key))
                    .filter_map(|t| {
                        Some((trackers.get(&i.name)?.clone(), Weight::new(t.weight, false)))
                    })
            })
            .collect();
        followed.push(Followed {
            label: label(vs),
            pool: Pool::new(pool),
            subscribers,
            service: vs.service.clone(),
        });
    }
    if specs.is_empty() && followed.iter().all(|f| f.subscribers.is_empty()) {
        return Ok(None);
    }
    for f in &followed {
        info!(virtual_server = %f.label, quorum = f.pool.quorum_up(), "following virtual server");
        tell(f).await;
    }
    let (handle, mut events) = checks::spawn(specs).context("starting health checkers")?;
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let Some(f) = owner.get(ev.checker).and_then(|v| followed.get_mut(*v)) else {
                continue;
            };
            let before = f.pool.quorum_up();
            for action in f.pool.on_event(&ev) {
                match action {
                    Action::Up(t, w) => {
                        info!(virtual_server = %f.label, real_server = %t.id, weight = w, "real server up: {}", ev.reason);
                        run_script(f.real_server(&t).and_then(|rs| rs.notify_up.as_ref()));
                    }
                    Action::Down { target, inhibited } => {
                        warn!(virtual_server = %f.label, real_server = %target.id, inhibited, "real server down: {}", ev.reason);
                        run_script(
                            f.real_server(&target)
                                .and_then(|rs| rs.notify_down.as_ref()),
                        );
                    }
                    Action::Weight(t, w) => {
                        info!(virtual_server = %f.label, real_server = %t.id, weight = w, "real server weight")
                    }
                    Action::QuorumUp => {
                        info!(virtual_server = %f.label, "quorum gained");
                        run_script(f.service.quorum_up.as_ref());
                    }
                    Action::QuorumDown => {
                        warn!(virtual_server = %f.label, "quorum lost");
                        run_script(f.service.quorum_down.as_ref());
                    }
                }
            }
            if f.pool.quorum_up() != before {
                tell(f).await;
            }
        }
    });
    Ok(Some(Health { handle }))
}

/// Sends the current quorum to every instance tracking the virtual server.
async fn tell(f: &Followed) {
    let up = f.pool.quorum_up();
    for (tx, weight) in &f.subscribers {
        let key = TrackKey::VirtualServer(f.label.clone());
        // An instance that has stopped no longer cares.
        let _ = tx.send((key, weight.binary(up))).await;
    }
}

/// The membership rules and resolved checkers of one virtual server; checker indices start at
/// `first`.
fn pool_of(vs: &VirtualServer, first: usize) -> (PoolSpec, Vec<checks::spec::Resolved>) {
    let resolved = vs.resolved_checkers();
    let mut next = first;
    let mut real_servers = Vec::new();
    for (rs, rc) in vs.service.real_servers.iter().zip(&vs.real_servers) {
        let checkers: Vec<usize> = (next..next + rc.checkers.len()).collect();
        let alpha = checkers
            .first()
            .and_then(|c| resolved.get(c - first))
            .is_some_and(|r| r.timers.alpha);
        next += rc.checkers.len();
        real_servers.push(RealServer {
            target: checks::spec::Target::new(rs.addr, rs.port.unwrap_or(0)),
            weight: rs.weight,
            inhibit_on_failure: rs
                .inhibit_on_failure
                .unwrap_or(vs.service.inhibit_on_failure),
            checkers,
            alpha,
        });
    }
    let spec = PoolSpec {
        quorum: u64::from(vs.service.quorum),
        hysteresis: u64::from(vs.service.hysteresis),
        sorry_server: vs
            .service
            .sorry_server
            .as_ref()
            .map(|s| checks::spec::Target::new(s.addr, s.port.unwrap_or(0))),
        real_servers,
    };
    (spec, resolved)
}

/// The virtual server as keepalived writes it (`IP PORT`, `fwmark N`, `group NAME`).
fn label(vs: &VirtualServer) -> String {
    use lbcore::spec::ServiceKey as K;
    match &vs.service.key {
        K::Addr {
            addr,
            port: Some(p),
        } => format!("{addr} {p}"),
        K::Addr { addr, port: None } => addr.to_string(),
        K::Fwmark { mark, .. } => format!("fwmark {mark}"),
        K::Group(g) => format!("group {g}"),
    }
}
