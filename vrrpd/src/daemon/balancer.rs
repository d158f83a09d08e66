//! The in-process L4 balancer: the `lbcore` dataplane forwarding the virtual servers of the
//! config with the service table the health checks keep ([`super::health`]).
//!
//! A virtual address is forwarded only while the VRRP instance holding it is Master: the
//! others are "parked" in the dataplane (their packets dropped and counted as `standby`), so a
//! Backup that still sees traffic for a VIP — a stale neighbour entry, a split brain — never
//! forwards it too. Addresses no instance holds (a balancer run with `-C`, or a VIP managed
//! elsewhere) are always forwarded, as IPVS would.
//!
//! The dataplane listens on the interfaces of the instances holding the virtual addresses and
//! on those facing on-link real servers (IPv4 and IPv6 alike). A reload that needs the same
//! interfaces keeps it running, so connections, NAT bindings and persistence live on.
//!
//! With `lvs_sync_daemon`, connections are synchronised with the other node (IPVS's sync
//! protocol, `lbcore::sync`): where its instance is Master this node sends, elsewhere it
//! receives, switched on every transition as keepalived switches IPVS's sync daemons. Every
//! VRRP-managed address is a preferred one-arm NAT source, so real servers answer an address
//! that moves with the Master.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use lbcore::dataplane::{Dataplane, DataplaneConfig, SyncdConfig};
use lbcore::persist::PersistTable;
use lbcore::service::SharedTable;
use lbcore::sync::Role;
use tokio::sync::watch;
use tracing::{info, warn};

use keepalived_conf::model::Config;
use vrrp_proto::fsm::State;

/// Longest [`Balancer::stop`] waits for the dataplane's threads.
const STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Persistence templates the balancer keeps at most.
const PERSIST_CAPACITY: usize = 1 << 16;

/// A VRRP instance as the balancer sees it: the addresses it holds and its state.
pub(super) struct Owner {
    pub name: String,
    pub addrs: Vec<IpAddr>,
    pub state: watch::Receiver<State>,
}

/// The running balancer; [`Balancer::stop`] ends it and removes its firewall rules.
pub(super) struct Balancer {
    dp: Arc<Dataplane>,
    gate: tokio::task::JoinHandle<()>,
    ifaces: Vec<String>,
    table: Arc<SharedTable>,
    sync: Option<SyncdConfig>,
}

/// The sync daemon `lvs_sync_daemon` asks for (the instance is followed by [`gate`]).
fn sync_config(config: &Config) -> Option<SyncdConfig> {
    let s = config.global.lvs_sync_daemon.as_ref()?;
    let mut c = SyncdConfig::new(&s.interface);
    c.group = s.group.unwrap_or(c.group);
    c.port = s.port;
    c.ttl = s.ttl;
    c.session.syncid = s.syncid;
    // 0: from the interface's MTU, as Linux.
    c.session.maxlen = s.maxlen.map_or(0, usize::from);
    Some(c)
}

impl Balancer {
    /// Starts the dataplane for `table` when the config has virtual servers with an address
    /// (IPv4 or IPv6), or keeps `previous` (the balancer of the configuration before a reload)
    /// when it reads `table` on the same interfaces. Errors are logged, not fatal: VRRP and the
    /// health checks go on without forwarding.
    pub(super) async fn start(
        config: &Config,
        table: Arc<SharedTable>,
        owners: Vec<Owner>,
        previous: Option<Balancer>,
        spawner: &crate::tuning::Spawner,
    ) -> Option<Self> {
        let snapshot = table.load_full();
        let vips = snapshot.addrs();
        if vips.is_empty() {
            if let Some(p) = previous {
                p.stop().await;
            }
            return None;
        }
        let mut ifaces: Vec<String> = Vec::new();
        for inst in &config.instances {
            for vip in inst.addresses() {
                if vips.contains(&vip.addr) {
                    ifaces.push(vip.dev.clone().unwrap_or_else(|| inst.interface.clone()));
                }
            }
        }
        let rips: Vec<IpAddr> = snapshot
            .services()
            .iter()
            .flat_map(|s| s.spec.real_servers.iter().map(|r| r.addr))
            .collect();
        ifaces.extend(lbcore::dataplane::ifaces_facing(&rips));
        ifaces.sort();
        ifaces.dedup();
        let sync = sync_config(config);
        let sync_owner = config
            .global
            .lvs_sync_daemon
            .as_ref()
            .map(|s| s.instance.clone());
        if let Some(p) = previous {
            if p.ifaces == ifaces && Arc::ptr_eq(&p.table, &table) && p.sync == sync {
                return Some(p.keep(owners, vips.into_iter().collect(), sync_owner).await);
            }
            p.stop().await;
        }
        if ifaces.is_empty() {
            warn!("no interface holds a virtual server's address or faces its real servers; not forwarding");
            return None;
        }
        let cfg = DataplaneConfig {
            ifaces: ifaces.clone(),
            // Parked addresses are set before the first packet: nothing forwards until then.
            forwarding: false,
            snat_sources: config
                .instances
                .iter()
                .flat_map(|i| i.addresses().map(|v| (v.addr, v.prefix_len)))
                .collect(),
            sync: sync.clone(),
            ledger: Some(crate::host::ledger()),
            ..Default::default()
        };
        let shared = table.clone();
        // Started from the spawner thread, the workers get the process's original scheduling
        // (never the VRRP side's SCHED_RR, nice or CPUs: a busy worker must not starve it).
        let started = spawner
            .run(move || {
                Dataplane::start(cfg, shared, Arc::new(PersistTable::new(PERSIST_CAPACITY)))
            })
            .await;
        let dp = match started {
            Some(Ok(dp)) => Arc::new(dp),
            Some(Err(e)) => {
                warn!("balancer not started: {e}");
                return None;
            }
            None => {
                warn!("balancer not started: the spawner thread is gone");
                return None;
            }
        };
        info!(interfaces = ?ifaces, virtual_addresses = vips.len(), "balancer started");
        let gate = spawn_gate(dp.clone(), owners, vips.into_iter().collect(), sync_owner);
        Some(Self {
            dp,
            gate,
            ifaces,
            table,
            sync,
        })
    }

    /// Goes on with the running dataplane for a reloaded configuration: its firewall rules
    /// follow the new services, and the new instances decide what is parked.
    async fn keep(
        self,
        owners: Vec<Owner>,
        vips: HashSet<IpAddr>,
        sync_owner: Option<String>,
    ) -> Self {
        self.gate.abort();
        let _ = self.gate.await;
        let dp = self.dp.clone();
        match tokio::task::spawn_blocking(move || dp.refresh_nft()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!("balancer firewall rules not updated: {e}"),
            Err(e) => warn!("balancer firewall rules not updated: {e}"),
        }
        info!(interfaces = ?self.ifaces, virtual_addresses = vips.len(), "balancer kept across the reload");
        let gate = spawn_gate(self.dp.clone(), owners, vips, sync_owner);
        Self { gate, ..self }
    }

    /// The table the dataplane reads: the next configuration's health checks publish into it.
    pub(super) fn table(&self) -> Arc<SharedTable> {
        self.table.clone()
    }

    /// The running dataplane (listings, counters).
    pub(super) fn dataplane(&self) -> Arc<Dataplane> {
        self.dp.clone()
    }

    /// The dataplane threads' own failures (they restart in place).
    pub(super) fn worker_failures(&self) -> lbcore::dataplane::Failures {
        self.dp.failures()
    }

    /// The dataplane's counters, summed over its workers.
    pub(super) fn counters(&self) -> lbcore::dataplane::CounterSnapshot {
        self.dp.counters()
    }

    /// Stops forwarding and removes the firewall rules.
    pub(super) async fn stop(self) {
        self.gate.abort();
        let _ = self.gate.await;
        self.dp.set_forwarding(false);
        // A listing in progress holds the dataplane for a moment (bounded by its timeout).
        let mut dp = self.dp;
        for _ in 0..200 {
            match Arc::try_unwrap(dp) {
                Ok(dp) => {
                    // Bounded: a stalled worker must not hold the daemon's stop.
                    let stopping = tokio::task::spawn_blocking(move || dp.stop());
                    if tokio::time::timeout(STOP_LIMIT, stopping).await.is_err() {
                        warn!("balancer threads did not stop within {STOP_LIMIT:?}; leaving them");
                    }
                    return;
                }
                Err(still) => {
                    dp = still;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        warn!("balancer still referenced at stop; its threads end with the process");
    }
}

/// [`gate`] in a supervised task: restarted if it fails, since without it a VIP would stay
/// parked (or forwarded), and the sync daemon in its role, whatever the instances do.
fn spawn_gate(
    dp: Arc<Dataplane>,
    owners: Vec<Owner>,
    vips: HashSet<IpAddr>,
    sync_owner: Option<String>,
) -> tokio::task::JoinHandle<()> {
    let mut watched = Vec::new();
    let mut sync = None;
    for o in owners {
        let syncs = sync_owner.as_ref() == Some(&o.name);
        let held: Vec<IpAddr> = o.addrs.into_iter().filter(|a| vips.contains(a)).collect();
        if held.is_empty() && !syncs {
            continue;
        }
        if syncs {
            sync = Some(watched.len());
        }
        watched.push((held, o.state));
    }
    crate::components::spawn(
        "balancer gate".into(),
        (dp, watched, sync),
        |(dp, watched, sync)| Box::pin(gate(dp, watched, *sync)),
    )
}

/// Keeps the parked set equal to the virtual addresses whose instance is not Master, and the
/// sync daemon sending where `owners[sync]` is Master, receiving elsewhere: at start and at
/// every state change of an instance it watches.
async fn gate(
    dp: &Dataplane,
    owners: &mut [(Vec<IpAddr>, watch::Receiver<State>)],
    sync: Option<usize>,
) {
    loop {
        let mut parked = HashSet::new();
        for (held, rx) in owners.iter_mut() {
            if *rx.borrow_and_update() != State::Master {
                parked.extend(held.iter().copied());
            }
        }
        info!(parked = ?parked, "balancer forwarding for every virtual address but the parked ones");
        // The sync role first: a Master's workers send what they forward from the first packet.
        if let Some((_, rx)) = sync.and_then(|i| owners.get(i)) {
            let master = *rx.borrow() == State::Master;
            dp.set_sync_role(if master { Role::Master } else { Role::Backup });
        }
        dp.set_parked(parked);
        dp.set_forwarding(true);
        // An instance gone (its sender dropped) changes nothing more.
        let changes: Vec<_> = owners
            .iter_mut()
            .filter(|(_, rx)| rx.has_changed().is_ok())
            .map(|(_, rx)| Box::pin(rx.changed()))
            .collect();
        if changes.is_empty() {
            return std::future::pending().await;
        }
        let _ = futures::future::select_all(changes).await;
    }
}
