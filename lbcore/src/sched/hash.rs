//! `sh` (source hashing) and `dh` (destination hashing), IPVS style: a
//! 256-bucket table filled round robin, each server taking `weight`
//! consecutive buckets per turn (a weight-0 server keeps one bucket, so
//! quiescing it does not move other servers' clients).

use super::Scheduler;
use crate::flow::{hash_addr_port, FlowKey};
use crate::pool::RealServer;

/// IPVS's IP_VS_SH_TAB_SIZE / IP_VS_DH_TAB_SIZE.
pub const HASH_TABLE_SIZE: usize = 256;

/// Which address of the flow is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashTarget {
    /// `sh`: client address (and port with `sh-port`).
    Source,
    /// `dh`: destination address.
    Destination,
}

#[derive(Debug)]
pub struct HashScheduler {
    target: HashTarget,
    use_port: bool,
    fallback: bool,
    table: Vec<u32>,
}

impl HashScheduler {
    pub fn new(target: HashTarget, use_port: bool, fallback: bool, pool: &[RealServer]) -> Self {
        let mut table = Vec::with_capacity(HASH_TABLE_SIZE);
        if !pool.is_empty() {
            let (mut i, mut taken) = (0usize, 0u32);
            while table.len() < HASH_TABLE_SIZE {
                table.push(i as u32);
                taken += 1;
                if taken >= pool[i].weight.max(1) {
                    i = (i + 1) % pool.len();
                    taken = 0;
                }
            }
        }
        Self {
            target,
            use_port,
            fallback,
            table,
        }
    }

    fn bucket(&self, f: &FlowKey, offset: u64) -> usize {
        let (addr, port) = match self.target {
            HashTarget::Source => (f.src, f.sport),
            HashTarget::Destination => (f.dst, f.dport),
        };
        let port = if self.use_port { port } else { 0 };
        (hash_addr_port(addr, port, offset) % HASH_TABLE_SIZE as u64) as usize
    }
}

impl Scheduler for HashScheduler {
    /// Without fallback an unavailable hashed server means no server (IPVS);
    /// with `sh-fallback` the key is rehashed with successive offsets.
    fn pick(&self, f: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let i = self.table[self.bucket(f, 0)] as usize;
        if pool[i].available() {
            return Some(i);
        }
        if !self.fallback {
            return None;
        }
        (1..HASH_TABLE_SIZE as u64)
            .map(|o| self.table[self.bucket(f, o)] as usize)
            .find(|&i| pool[i].available())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::testutil::{flow, pool};
    use super::*;

    #[test]
    fn table_follows_weights() {
        let h = HashScheduler::new(HashTarget::Source, false, false, &pool(&[3, 1]));
        assert_eq!(&h.table[..8], &[0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(h.table.iter().filter(|&&i| i == 0).count(), 192);
    }

    #[test]
    fn sh_is_sticky_per_client_and_ignores_port_by_default() {
        let p = pool(&[1, 1, 1, 1]);
        let sh = HashScheduler::new(HashTarget::Source, false, false, &p);
        let mut seen = HashMap::new();
        for c in 0..200 {
            let first = sh.pick(&flow(c, 1000), &p).unwrap();
            for sport in 1001..1010 {
                assert_eq!(sh.pick(&flow(c, sport), &p), Some(first));
            }
            *seen.entry(first).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 4, "all servers used: {seen:?}");
    }

    #[test]
    fn sh_port_spreads_one_client() {
        let p = pool(&[1, 1, 1, 1]);
        let sh = HashScheduler::new(HashTarget::Source, true, false, &p);
        let used: std::collections::HashSet<_> = (1000..1100)
            .map(|s| sh.pick(&flow(7, s), &p).unwrap())
            .collect();
        assert_eq!(used.len(), 4);
        assert_eq!(sh.pick(&flow(7, 1234), &p), sh.pick(&flow(7, 1234), &p));
    }

    #[test]
    fn sh_fallback_only_with_flag() {
        let mut p = pool(&[1, 1]);
        let strict = HashScheduler::new(HashTarget::Source, false, false, &p);
        let fb = HashScheduler::new(HashTarget::Source, false, true, &p);
        let c = (0..100)
            .find(|&c| strict.pick(&flow(c, 1), &p) == Some(0))
            .unwrap();
        let other = (0..100)
            .find(|&c| strict.pick(&flow(c, 1), &p) == Some(1))
            .unwrap();
        p[0].weight = 0;
        assert_eq!(strict.pick(&flow(c, 1), &p), None);
        assert_eq!(fb.pick(&flow(c, 1), &p), Some(1));
        // Clients of the other server don't move.
        assert_eq!(strict.pick(&flow(other, 1), &p), Some(1));
    }

    #[test]
    fn dh_hashes_destination() {
        let p = pool(&[1, 1, 1]);
        let dh = HashScheduler::new(HashTarget::Destination, false, false, &p);
        let a = dh.pick(&flow(1, 1), &p);
        assert!(
            (2..300).all(|c| dh.pick(&flow(c, c as u16), &p) == a),
            "same destination, same server"
        );
    }
}
