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
//! - [`dataplane`]: the AF_PACKET workers (the only part doing I/O).
//!
//! Nothing here touches sockets or clocks: time is always an argument, so the
//! dataplane (AF_PACKET workers) and tests drive it the same way.

pub mod conntrack;
pub mod dataplane;
pub mod flow;
pub mod persist;
pub mod pool;
pub mod sched;
pub mod service;
pub mod spec;
pub mod sync;
pub mod time;
