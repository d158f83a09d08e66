//! Pure (sans-IO) core of vrrpd's in-process L4 balancer.
//!
//! - [`spec`]: service specs the config layer fills from keepalived.conf.
//! - [`sched`]: schedulers (ipvsadm names and semantics, plus `rtt` and `priority_group`).
//! - [`persist`]: persistence templates (client affinity), shared by workers.
//! - [`conntrack`]: per-worker connection table with IPVS TCP states and timeouts.
//! - [`service`]: snapshot service table (swapped with arc-swap) and the
//!   controller applying health events with keepalived's quorum semantics.
//! - [`flow`], [`pool`]: flow keys and TCP flags, deterministic hashing, live real servers.
//! - [`time`]: the one time type ([`time::Millis`]) every table takes as an argument.
//! - [`sync`]: connection synchronisation between the pair (IPVS sync protocol v1).
//! - [`stats`]: per-service and per-real-server traffic counters, IPVS's rate estimator.
//! - [`ipvsadm`]: what `ipvsadm -L` would show for the table, rendered as ipvsadm 1.31 does.
//! - `dataplane` (feature `dataplane`): the AF_PACKET workers and the sync daemon's
//!   socket, the only part doing I/O.
//!
//! Without the `dataplane` feature nothing here touches sockets or clocks (the crate then
//! builds without libc): time is always an argument, so the dataplane and tests drive the
//! core the same way.

pub mod conntrack;
#[cfg(feature = "dataplane")]
pub mod dataplane;
pub mod flow;
pub mod ipvsadm;
pub mod persist;
pub mod pool;
pub mod sched;
pub mod service;
pub mod sharded;
pub mod spec;
pub mod stats;
pub mod sync;
pub mod time;
