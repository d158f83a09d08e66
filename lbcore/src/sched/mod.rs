//! Schedulers with ipvsadm's names and semantics, plus `rtt` and
//! `priority_group`.
//!
//! A scheduler is built for one pool (the servers of one service snapshot)
//! and is `Sync`: its mutable state (round-robin cursor, lblc table) is atomic,
//! so every dataplane worker picks from the same instance without locks and
//! rr/wrr stay exact across workers.

mod hash;
mod lblc;
mod least;
mod maglev;
mod rr;

use crate::flow::FlowKey;
use crate::pool::RealServer;
use crate::spec::{SchedFlags, SchedulerKind};

pub use hash::{HashScheduler, HashTarget, HASH_TABLE_SIZE};
pub use lblc::Lblc;
pub use least::{Fo, Lc, Nq, Ovf, PriorityGroup, Rtt, Sed, Twos, Wlc};
pub use maglev::{Maglev, MAGLEV_TABLE_SIZE};
pub use rr::{Rr, Wrr};

/// Picks a real server for a new flow.
pub trait Scheduler: Send + Sync + std::fmt::Debug {
    /// Index into `pool` of the chosen server, or `None` when no server may
    /// take the flow. `pool` must be the pool the scheduler was built for.
    fn pick(&self, flow: &FlowKey, pool: &[RealServer]) -> Option<usize>;
}

/// Builds the scheduler `kind` for `pool`. `lblcr` is served by `lblc`
/// (no replication sets yet).
pub fn build(kind: SchedulerKind, flags: SchedFlags, pool: &[RealServer]) -> Box<dyn Scheduler> {
    match kind {
        SchedulerKind::Rr => Box::new(Rr::default()),
        SchedulerKind::Wrr => Box::new(Wrr::new(pool)),
        SchedulerKind::Lc => Box::new(Lc),
        SchedulerKind::Wlc => Box::new(Wlc),
        SchedulerKind::Sed => Box::new(Sed),
        SchedulerKind::Nq => Box::new(Nq),
        SchedulerKind::Sh => Box::new(HashScheduler::new(
            HashTarget::Source,
            flags.sh_port,
            flags.sh_fallback,
            pool,
        )),
        SchedulerKind::Dh => Box::new(HashScheduler::new(
            HashTarget::Destination,
            false,
            flags.sh_fallback,
            pool,
        )),
        SchedulerKind::Mh => Box::new(Maglev::new(
            pool,
            MAGLEV_TABLE_SIZE,
            flags.mh_port,
            flags.mh_fallback,
        )),
        SchedulerKind::Fo => Box::new(Fo),
        SchedulerKind::Ovf => Box::new(Ovf),
        SchedulerKind::Lblc | SchedulerKind::Lblcr => Box::new(Lblc::default()),
        SchedulerKind::Twos => Box::new(Twos::default()),
        SchedulerKind::Rtt => Box::new(Rtt),
        SchedulerKind::PriorityGroup => Box::new(PriorityGroup),
    }
}

/// Weighted-least-connection choice over `candidates` (IPVS wlc: lowest
/// overhead/weight, first one wins ties). Shared by wlc, lblc and priority groups.
pub(crate) fn wlc_among(
    pool: &[RealServer],
    candidates: impl Iterator<Item = usize>,
) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for i in candidates {
        let s = &pool[i];
        if !s.available() {
            continue;
        }
        let (oh, w) = (s.overhead(), s.weight as u64);
        match best {
            Some((_, boh, bw)) if (oh as u128) * (bw as u128) >= (boh as u128) * (w as u128) => {}
            _ => best = Some((i, oh, w)),
        }
    }
    best.map(|b| b.0)
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::net::{IpAddr, Ipv4Addr};

    use crate::flow::FlowKey;
    use crate::pool::RealServer;
    use crate::spec::Protocol;

    pub(crate) fn pool(weights: &[u32]) -> Vec<RealServer> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                RealServer::new(
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + i as u8)),
                    Some(80),
                    w,
                )
            })
            .collect()
    }

    pub(crate) fn flow(client: u32, sport: u16) -> FlowKey {
        FlowKey {
            proto: Protocol::Tcp,
            src: IpAddr::V4(Ipv4Addr::from(0xc633_6400u32.wrapping_add(client))),
            sport,
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            dport: 80,
        }
    }

    /// Sets a server's counters to `active`/`inactive`.
    pub(crate) fn load(s: &RealServer, active: u32, inactive: u32) {
        (0..active).for_each(|_| s.stats.bind(true));
        (0..inactive).for_each(|_| s.stats.bind(false));
    }
}
