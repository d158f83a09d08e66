//! `lblc`: locality-based least connections. A destination address keeps
//! its server (cache affinity) until that server is unavailable or overloaded
//! (more active connections than its weight while some other server is below
//! half its weight); then wlc picks a new one and the entry is replaced.
//!
//! The locality table is lossy and lock-free: 4096 atomic slots indexed by a
//! hash of the destination, holding `server index + 1`. IPVS expires entries
//! after inactivity; here colliding destinations simply overwrite each other.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::{wlc_among, Scheduler};
use crate::flow::{hash_addr_port, FlowKey};
use crate::pool::RealServer;

const SLOTS: usize = 4096;

#[derive(Debug)]
pub struct Lblc {
    slots: Box<[AtomicU32]>,
}

impl Default for Lblc {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

fn overloaded(s: &RealServer, pool: &[RealServer]) -> bool {
    s.stats.active() > s.weight
        && pool
            .iter()
            .any(|o| o.available() && (o.stats.active() as u64) * 2 < o.weight as u64)
}

impl Scheduler for Lblc {
    fn pick(&self, f: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        let slot = &self.slots[(hash_addr_port(f.dst, 0, 0x6c62) % SLOTS as u64) as usize];
        let cur = slot.load(Relaxed) as usize;
        if let Some(s) = cur.checked_sub(1).and_then(|i| pool.get(i).map(|s| (i, s))) {
            if s.1.available() && !overloaded(s.1, pool) {
                return Some(s.0);
            }
        }
        let i = wlc_among(pool, 0..pool.len())?;
        slot.store(i as u32 + 1, Relaxed);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{flow, load, pool};
    use super::*;

    #[test]
    fn keeps_locality_until_overloaded() {
        let p = pool(&[2, 4]);
        let l = Lblc::default();
        let f = flow(1, 1);
        // wlc: both idle → first.
        assert_eq!(l.pick(&f, &p), Some(0));
        load(&p[0], 2, 0);
        assert_eq!(l.pick(&f, &p), Some(0), "at weight, not over it");
        load(&p[0], 1, 0); // 3 > 2 and p[1] idle (0 < 4/2)
        assert_eq!(l.pick(&f, &p), Some(1));
        assert_eq!(l.pick(&f, &p), Some(1), "new locality is remembered");
    }

    #[test]
    fn moves_when_server_is_quiesced() {
        let mut p = pool(&[1, 1]);
        let l = Lblc::default();
        let f = flow(1, 1);
        assert_eq!(l.pick(&f, &p), Some(0));
        p[0].weight = 0;
        assert_eq!(l.pick(&f, &p), Some(1));
    }
}
