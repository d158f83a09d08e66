//! The service table: an immutable snapshot built from [`ServiceSpec`]s plus
//! health state, swapped atomically (`arc-swap`) under the dataplane workers.
//!
//! [`Controller`] owns the health state and applies keepalived's semantics:
//! a failed real server is removed, or kept at weight 0 with
//! `inhibit_on_failure`; `quorum`/`hysteresis` decide when the service is
//! degraded, and then the `sorry_server` replaces the real servers. Each
//! change yields a new snapshot and [`Action`]s (scripts to run) for the caller.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use thiserror::Error;

use crate::flow::{hash_addr_port, mix64, FlowKey};
use crate::persist::{PersistKey, PersistTable};
use crate::pool::{DestId, DestStats, RealServer};
use crate::sched::{self, Scheduler};
use crate::spec::{
    GroupEntry, IpFamily, Protocol, ScriptSpec, ServiceKey, ServiceSpec, VirtualServerGroupSpec,
};
use crate::stats::Traffic;
use crate::time::Millis;

/// Most addresses one group range may expand to.
pub const MAX_RANGE: u128 = 65536;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("virtual_server group {0:?} is not defined")]
    UnknownGroup(String),
    #[error("virtual_server_group range {0}-{1} is empty, mixes families or exceeds {MAX_RANGE} addresses")]
    BadRange(IpAddr, IpAddr),
    #[error("two virtual servers claim {0}")]
    Duplicate(String),
}

/// One virtual service in a snapshot.
#[derive(Debug)]
pub struct Service {
    pub spec: Arc<ServiceSpec>,
    /// Stable identity (hash of key and protocol): persistence templates survive reloads.
    pub id: u64,
    /// Position in the controller's spec list (what health events name).
    pub index: usize,
    /// The pool schedulers pick from: live real servers, inhibited ones at
    /// weight 0, or the sorry server while quorum is lost.
    pub servers: Vec<RealServer>,
    pub quorum_up: bool,
    pub sorry_active: bool,
    /// Connections, packets and bytes of the service (ipvsadm `--stats`), carried across
    /// snapshots like the real servers' counters.
    pub traffic: Arc<Traffic>,
    by_id: HashMap<DestId, usize>,
    sched: Box<dyn Scheduler>,
}

/// The outcome of scheduling a new flow.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    pub server: &'a RealServer,
    /// The template that now controls the connection (release it on removal).
    pub persist: Option<PersistKey>,
}

impl Service {
    /// Chooses a real server for a new flow, through the persistence template
    /// when the service is persistent. A template whose server is gone,
    /// quiesced or overloaded is re-pointed (as IPVS with
    /// expire_quiescent_template set).
    pub fn schedule<'a>(
        &'a self,
        flow: &FlowKey,
        now: Millis,
        persist: &PersistTable,
    ) -> Option<Choice<'a>> {
        let Some(timeout) = self.spec.persistence_timeout else {
            let i = self.sched.pick(flow, &self.servers)?;
            return Some(Choice {
                server: &self.servers[i],
                persist: None,
            });
        };
        let key = PersistKey::new(self.id, flow.src, self.spec.persistence_granularity);
        let usable = |d: &DestId| {
            self.by_id
                .get(d)
                .is_some_and(|&i| self.servers[i].available())
        };
        let dest = persist.schedule(key, timeout as Millis * 1000, now, |existing| {
            existing.filter(usable).or_else(|| {
                self.sched
                    .pick(flow, &self.servers)
                    .map(|i| self.servers[i].id)
            })
        })?;
        let server = &self.servers[*self.by_id.get(&dest)?];
        Some(Choice {
            server,
            persist: Some(key),
        })
    }

    /// Server by identity.
    pub fn server(&self, id: &DestId) -> Option<&RealServer> {
        self.by_id.get(id).map(|&i| &self.servers[i])
    }
}

/// An immutable set of services with lookup by packet fields.
#[derive(Debug, Default)]
pub struct ServiceTable {
    services: Vec<Arc<Service>>,
    by_addr: HashMap<(Protocol, IpAddr, u16), usize>,
    by_addr_any_port: HashMap<(Protocol, IpAddr), usize>,
    by_mark: HashMap<(IpFamily, u32), usize>,
}

impl ServiceTable {
    /// The service a packet belongs to: fwmark services first (as IPVS), then
    /// VIP:port, then port-less (persistent) VIPs.
    pub fn lookup(
        &self,
        proto: Protocol,
        dst: IpAddr,
        dport: u16,
        fwmark: Option<u32>,
    ) -> Option<&Arc<Service>> {
        let fam = if dst.is_ipv4() {
            IpFamily::Inet
        } else {
            IpFamily::Inet6
        };
        fwmark
            .and_then(|m| self.by_mark.get(&(fam, m)))
            .or_else(|| self.by_addr.get(&(proto, dst, dport)))
            .or_else(|| self.by_addr_any_port.get(&(proto, dst)))
            .map(|&i| &self.services[i])
    }

    /// Every virtual address a service listens on (groups expanded; fwmark services have none).
    pub fn addrs(&self) -> std::collections::BTreeSet<IpAddr> {
        self.listeners().map(|(_, a, _)| a).collect()
    }

    /// Every protocol, virtual address and port a service listens on, plain `virtual_server`s
    /// and group entries alike (ranges expanded); the port is `None` for a port-less
    /// (persistent) address. fwmark services and entries have none: only the mark, which the
    /// dataplane never sees, would tell their packets apart.
    pub fn listeners(&self) -> impl Iterator<Item = (Protocol, IpAddr, Option<u16>)> + '_ {
        self.by_addr
            .keys()
            .map(|&(p, a, port)| (p, a, Some(port)))
            .chain(self.by_addr_any_port.keys().map(|&(p, a)| (p, a, None)))
    }

    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// What IPVS would hold for this table: one entry per address, port and protocol (groups
    /// expanded, as keepalived adds one IPVS service per group entry) or fwmark, with the
    /// index of the service in [`ServiceTable::services`]; unsorted.
    pub fn ipvs_keys(&self) -> Vec<(IpvsKey, usize)> {
        let addrs = self
            .by_addr
            .iter()
            .map(|(&(p, a, port), &i)| (IpvsKey::Addr(p, a, port), i));
        let any = self
            .by_addr_any_port
            .iter()
            .map(|(&(p, a), &i)| (IpvsKey::Addr(p, a, 0), i));
        let marks = self
            .by_mark
            .iter()
            .map(|(&(f, m), &i)| (IpvsKey::Mark(f, m), i));
        addrs.chain(any).chain(marks).collect()
    }
}

/// One IPVS virtual service: protocol, address and port (0 for a persistent port-less
/// service), or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvsKey {
    Addr(Protocol, IpAddr, u16),
    Mark(IpFamily, u32),
}

/// The table as the dataplane sees it: a lock-free pointer to the current snapshot.
#[derive(Debug)]
pub struct SharedTable(ArcSwap<ServiceTable>);

impl SharedTable {
    pub fn new(t: Arc<ServiceTable>) -> Self {
        Self(ArcSwap::new(t))
    }

    /// Current snapshot (cheap, wait-free for readers).
    pub fn load(&self) -> Guard<Arc<ServiceTable>> {
        self.0.load()
    }

    /// Current snapshot as an owned `Arc` (for holding across a batch).
    pub fn load_full(&self) -> Arc<ServiceTable> {
        self.0.load_full()
    }

    pub fn store(&self, t: Arc<ServiceTable>) {
        self.0.store(t)
    }
}

/// A health-check result or measurement for real server `rs` of service `svc`
/// (indices into the spec list and its `real_servers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEvent {
    Up {
        svc: usize,
        rs: usize,
    },
    Down {
        svc: usize,
        rs: usize,
    },
    /// A checker set a new weight (e.g. MISC_CHECK's dynamic weight).
    Weight {
        svc: usize,
        rs: usize,
        weight: u32,
    },
    /// Probe latency, for the `rtt` scheduler; needs no new snapshot.
    Rtt {
        svc: usize,
        rs: usize,
        micros: u32,
    },
}

/// What happened, for logs and scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    ServerUp { svc: usize, rs: usize },
    ServerDown { svc: usize, rs: usize },
    QuorumGained { svc: usize },
    QuorumLost { svc: usize },
}

/// An event and the script configured for it (`notify_up`, `quorum_down`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub event: Event,
    pub script: Option<ScriptSpec>,
}

#[derive(Debug, Clone, Copy)]
struct RsState {
    alive: bool,
    weight: u32,
}

/// Health state and snapshot builder.
#[derive(Debug)]
pub struct Controller {
    specs: Vec<Arc<ServiceSpec>>,
    groups: HashMap<String, VirtualServerGroupSpec>,
    rs: Vec<Vec<RsState>>,
    quorum_up: Vec<bool>,
    stats: HashMap<(u64, DestId), Arc<DestStats>>,
    traffic: HashMap<u64, Arc<Traffic>>,
    built: Vec<Option<Arc<Service>>>,
    table: Arc<ServiceTable>,
}

/// Stable identity of a service.
pub fn service_id(key: &ServiceKey, proto: Protocol) -> u64 {
    let p = proto as u64 + 1;
    match key {
        ServiceKey::Addr { addr, port } => hash_addr_port(*addr, port.unwrap_or(0), p),
        ServiceKey::Fwmark { mark, family } => {
            mix64(((*mark as u64) << 8) ^ (*family as u64) ^ (p << 40) ^ 0xf3)
        }
        ServiceKey::Group(name) => name.bytes().fold(0xcbf2_9ce4_8422_2325u64 ^ p, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        }),
    }
}

impl Controller {
    /// Takes the config; real servers start alive unless the service has
    /// `alpha`. Returns the controller and the actions of the initial quorum
    /// evaluation (quorum starts up, as in keepalived, and may be lost at once).
    pub fn new(
        specs: Vec<ServiceSpec>,
        groups: Vec<VirtualServerGroupSpec>,
    ) -> Result<(Self, Vec<Action>), BuildError> {
        let alive: Vec<Vec<bool>> = specs
            .iter()
            .map(|s| vec![!s.alpha; s.real_servers.len()])
            .collect();
        Self::with_alive(specs, groups, &alive)
    }

    /// Like [`Controller::new`] with each real server's initial liveness given
    /// (`alive[svc][rs]`, missing entries alive): the health checker knows it
    /// per checker (`alpha` may be set on one checker, a server without
    /// checkers is always alive).
    pub fn with_alive(
        specs: Vec<ServiceSpec>,
        groups: Vec<VirtualServerGroupSpec>,
        alive: &[Vec<bool>],
    ) -> Result<(Self, Vec<Action>), BuildError> {
        let rs = specs
            .iter()
            .enumerate()
            .map(|(svc, s)| {
                s.real_servers
                    .iter()
                    .enumerate()
                    .map(|(i, r)| RsState {
                        alive: alive
                            .get(svc)
                            .and_then(|v| v.get(i))
                            .copied()
                            .unwrap_or(true),
                        weight: r.weight,
                    })
                    .collect()
            })
            .collect();
        let n = specs.len();
        let mut c = Self {
            specs: specs.into_iter().map(Arc::new).collect(),
            groups: groups.into_iter().map(|g| (g.name.clone(), g)).collect(),
            rs,
            quorum_up: vec![true; n],
            stats: HashMap::new(),
            traffic: HashMap::new(),
            built: vec![None; n],
            table: Arc::default(),
        };
        let mut actions = Vec::new();
        for svc in 0..n {
            c.update_quorum(svc, &mut actions);
        }
        c.rebuild()?;
        Ok((c, actions))
    }

    /// The current snapshot.
    pub fn table(&self) -> Arc<ServiceTable> {
        self.table.clone()
    }

    /// Index of a real server of service `svc` by address and port.
    pub fn rs_index(&self, svc: usize, id: DestId) -> Option<usize> {
        self.specs
            .get(svc)?
            .real_servers
            .iter()
            .position(|r| r.addr == id.addr && r.port == id.port)
    }

    /// Applies a health event. Returns the actions it caused; the snapshot in
    /// [`Controller::table`] is replaced when the pool changed. Out-of-range
    /// indices are ignored.
    pub fn apply(&mut self, ev: HealthEvent) -> Vec<Action> {
        let mut actions = Vec::new();
        let (svc, rs) = match ev {
            HealthEvent::Up { svc, rs }
            | HealthEvent::Down { svc, rs }
            | HealthEvent::Weight { svc, rs, .. } => (svc, rs),
            HealthEvent::Rtt { svc, rs, micros } => {
                if let Some(spec) = self.specs.get(svc) {
                    if let Some(r) = spec.real_servers.get(rs) {
                        self.stats_of(
                            svc,
                            DestId {
                                addr: r.addr,
                                port: r.port,
                            },
                        )
                        .observe_rtt(micros);
                    }
                }
                return actions;
            }
        };
        let Some(st) = self.rs.get_mut(svc).and_then(|v| v.get_mut(rs)) else {
            return actions;
        };
        let spec = self.specs[svc].clone();
        let r = &spec.real_servers[rs];
        let changed = match ev {
            HealthEvent::Up { .. } if !st.alive => {
                st.alive = true;
                actions.push(Action {
                    event: Event::ServerUp { svc, rs },
                    script: r.notify_up.clone(),
                });
                true
            }
            HealthEvent::Down { .. } if st.alive => {
                st.alive = false;
                actions.push(Action {
                    event: Event::ServerDown { svc, rs },
                    script: r.notify_down.clone(),
                });
                true
            }
            HealthEvent::Weight { weight, .. } if st.weight != weight => {
                st.weight = weight;
                true
            }
            _ => false,
        };
        if changed {
            self.update_quorum(svc, &mut actions);
            self.built[svc] = None;
            // Keys were validated when the controller was built.
            let _ = self.rebuild();
        }
        actions
    }

    /// Whether service `svc` has its quorum (false for an unknown index).
    pub fn quorum_up(&self, svc: usize) -> bool {
        self.quorum_up.get(svc).copied().unwrap_or(false)
    }

    /// The service specs, in the order health events index them.
    pub fn specs(&self) -> &[Arc<ServiceSpec>] {
        &self.specs
    }

    /// Total weight of live real servers (keepalived's weigh_live_realservers).
    pub fn live_weight(&self, svc: usize) -> u64 {
        self.rs[svc]
            .iter()
            .filter(|r| r.alive)
            .map(|r| r.weight as u64)
            .sum()
    }

    fn update_quorum(&mut self, svc: usize, actions: &mut Vec<Action>) {
        let spec = &self.specs[svc];
        let sum = self.live_weight(svc);
        let (q, h) = (spec.quorum as u64, spec.hysteresis as u64);
        let up = self.quorum_up[svc];
        if !up && sum >= q + h {
            self.quorum_up[svc] = true;
            actions.push(Action {
                event: Event::QuorumGained { svc },
                script: spec.quorum_up.clone(),
            });
        } else if up && (sum == 0 || sum < q.saturating_sub(h)) {
            self.quorum_up[svc] = false;
            actions.push(Action {
                event: Event::QuorumLost { svc },
                script: spec.quorum_down.clone(),
            });
        }
    }

    fn stats_of(&mut self, svc: usize, id: DestId) -> Arc<DestStats> {
        let sid = service_id(&self.specs[svc].key, self.specs[svc].protocol);
        self.stats.entry((sid, id)).or_default().clone()
    }

    fn build_service(&mut self, svc: usize) -> Service {
        let spec = self.specs[svc].clone();
        let quorum_up = self.quorum_up[svc];
        let sorry_active = !quorum_up && spec.sorry_server.is_some();
        let id = service_id(&spec.key, spec.protocol);
        let traffic = self.traffic.entry(id).or_default().clone();
        let mut servers = Vec::new();
        for (i, r) in spec.real_servers.iter().enumerate() {
            let st = self.rs[svc][i];
            let weight = match (st.alive && !sorry_active, spec.inhibit_of(r)) {
                (true, _) => st.weight,
                (false, true) => 0,
                (false, false) => continue,
            };
            let id = DestId {
                addr: r.addr,
                port: r.port,
            };
            let stats = self.stats_of(svc, id);
            stats.set_thresholds(r.uthreshold, r.lthreshold);
            servers.push(RealServer {
                id,
                weight,
                forwarding: spec.forwarding_of(r),
                priority_group: r.priority_group,
                stats,
                service: traffic.clone(),
            });
        }
        if let Some(s) = &spec.sorry_server {
            if sorry_active || s.inhibit {
                let id = DestId {
                    addr: s.addr,
                    port: s.port,
                };
                let stats = self.stats_of(svc, id);
                let weight = if sorry_active { 1 } else { 0 };
                servers.push(RealServer {
                    id,
                    weight,
                    forwarding: s.forwarding.unwrap_or(spec.forwarding),
                    priority_group: 0,
                    stats,
                    service: traffic.clone(),
                });
            }
        }
        let sched = sched::build(spec.scheduler, spec.sched_flags, &servers);
        let by_id = servers.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        Service {
            id,
            index: svc,
            spec,
            servers,
            quorum_up,
            sorry_active,
            traffic,
            by_id,
            sched,
        }
    }

    fn rebuild(&mut self) -> Result<(), BuildError> {
        let mut t = ServiceTable::default();
        for svc in 0..self.specs.len() {
            let s = match &self.built[svc] {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(self.build_service(svc));
                    self.built[svc] = Some(s.clone());
                    s
                }
            };
            let spec = self.specs[svc].clone();
            let idx = t.services.len();
            t.services.push(s);
            let entries = match &spec.key {
                ServiceKey::Addr { addr, port } => {
                    vec![GroupEntry::Range {
                        first: *addr,
                        last: *addr,
                        port: *port,
                    }]
                }
                ServiceKey::Fwmark { mark, family } => vec![GroupEntry::Fwmark {
                    mark: *mark,
                    family: Some(*family),
                }],
                ServiceKey::Group(name) => self
                    .groups
                    .get(name)
                    .ok_or_else(|| BuildError::UnknownGroup(name.clone()))?
                    .entries
                    .clone(),
            };
            for e in entries {
                index_entry(&mut t, &e, spec.protocol, idx)?;
            }
        }
        self.table = Arc::new(t);
        Ok(())
    }
}

fn claim<K: std::hash::Hash + Eq + std::fmt::Debug>(
    m: &mut HashMap<K, usize>,
    k: K,
    idx: usize,
) -> Result<(), BuildError> {
    if m.contains_key(&k) {
        return Err(BuildError::Duplicate(format!("{k:?}")));
    }
    m.insert(k, idx);
    Ok(())
}

fn index_entry(
    t: &mut ServiceTable,
    e: &GroupEntry,
    proto: Protocol,
    idx: usize,
) -> Result<(), BuildError> {
    match *e {
        GroupEntry::Fwmark { mark, family } => {
            claim(&mut t.by_mark, (family.unwrap_or_default(), mark), idx)
        }
        GroupEntry::Range { first, last, port } => {
            let (a, b, v4) = match (first, last) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    (u32::from(a) as u128, u32::from(b) as u128, true)
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), false),
                _ => return Err(BuildError::BadRange(first, last)),
            };
            if b < a || b - a >= MAX_RANGE {
                return Err(BuildError::BadRange(first, last));
            }
            for x in a..=b {
                let ip = if v4 {
                    IpAddr::from((x as u32).to_be_bytes())
                } else {
                    IpAddr::from(x.to_be_bytes())
                };
                match port {
                    Some(p) => claim(&mut t.by_addr, (proto, ip, p), idx)?,
                    None => claim(&mut t.by_addr_any_port, (proto, ip), idx)?,
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
