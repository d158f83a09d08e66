//! rr and wrr.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::Scheduler;
use crate::flow::FlowKey;
use crate::pool::RealServer;

/// Longest precomputed wrr cycle; longer ones are scaled down (proportions kept
/// to within 1/`MAX_CYCLE` of the total weight).
const MAX_CYCLE: usize = 1 << 16;

/// `rr`: next available server in order. The cursor only moves by a
/// successful compare-exchange, so picks stay exact across worker threads.
#[derive(Debug, Default)]
pub struct Rr {
    cursor: AtomicUsize,
}

impl Scheduler for Rr {
    fn pick(&self, _flow: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        let n = pool.len();
        if n == 0 {
            return None;
        }
        loop {
            let seen = self.cursor.load(Relaxed);
            let i = (0..n)
                .map(|t| (seen + t) % n)
                .find(|&i| pool[i].available())?;
            if self
                .cursor
                .compare_exchange(seen, (i + 1) % n, Relaxed, Relaxed)
                .is_ok()
            {
                return Some(i);
            }
        }
    }
}

/// `wrr`: IPVS's interleaved weighted round robin. The sequence of one cycle
/// (current weight stepping down from max by gcd, servers whose weight reaches
/// it in order) is precomputed at build time; picking walks it with an atomic cursor.
#[derive(Debug)]
pub struct Wrr {
    seq: Vec<u32>,
    cursor: AtomicUsize,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Wrr {
    pub fn new(pool: &[RealServer]) -> Self {
        let mut w: Vec<u32> = pool.iter().map(|s| s.weight).collect();
        let total = |w: &[u32]| -> usize {
            let g = w.iter().copied().fold(0, gcd).max(1);
            w.iter().map(|&x| (x / g) as usize).sum()
        };
        let len = total(&w);
        if len > MAX_CYCLE {
            let f = len.div_ceil(MAX_CYCLE) as u32;
            w.iter_mut()
                .for_each(|x| *x = if *x == 0 { 0 } else { (*x / f).max(1) });
        }
        let g = w.iter().copied().fold(0, gcd).max(1);
        let mw = w.iter().copied().max().unwrap_or(0);
        let mut seq = Vec::new();
        let mut cw = mw;
        while cw > 0 {
            seq.extend((0..w.len()).filter(|&i| w[i] >= cw).map(|i| i as u32));
            cw -= g;
        }
        Self {
            seq,
            cursor: AtomicUsize::new(0),
        }
    }

    /// One full cycle of the sequence (tests).
    pub fn cycle(&self) -> &[u32] {
        &self.seq
    }
}

impl Scheduler for Wrr {
    fn pick(&self, _flow: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        let n = self.seq.len();
        if n == 0 || !pool.iter().any(RealServer::available) {
            return None;
        }
        loop {
            let seen = self.cursor.load(Relaxed);
            let pos = (0..n)
                .map(|t| (seen + t) % n)
                .find(|&p| pool[self.seq[p] as usize].available())?;
            if self
                .cursor
                .compare_exchange(seen, (pos + 1) % n, Relaxed, Relaxed)
                .is_ok()
            {
                return Some(self.seq[pos] as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{flow, load, pool};
    use super::*;

    fn picks(s: &dyn Scheduler, pool: &[RealServer], n: usize) -> Vec<usize> {
        (0..n)
            .map(|k| s.pick(&flow(k as u32, 1000), pool).unwrap())
            .collect()
    }

    #[test]
    fn rr_is_exact_and_skips_unavailable() {
        let mut p = pool(&[1, 1, 1]);
        let rr = Rr::default();
        assert_eq!(picks(&rr, &p, 7), vec![0, 1, 2, 0, 1, 2, 0]);
        p[1].weight = 0;
        assert_eq!(picks(&rr, &p, 4), vec![2, 0, 2, 0]);
        p.iter_mut().for_each(|s| s.weight = 0);
        assert_eq!(rr.pick(&flow(0, 1), &p), None);
        assert_eq!(Rr::default().pick(&flow(0, 1), &[]), None);
    }

    #[test]
    fn rr_skips_overloaded() {
        let p = pool(&[1, 1]);
        p[0].stats.set_thresholds(1, 0);
        load(&p[0], 1, 0);
        let rr = Rr::default();
        assert_eq!(picks(&rr, &p, 3), vec![1, 1, 1]);
    }

    #[test]
    fn wrr_sequence_matches_ipvs() {
        // IPVS wrr with weights 4,3,2: cw 4 → a; 3 → a b; 2 → a b c; 1 → a b c.
        let p = pool(&[4, 3, 2]);
        let w = Wrr::new(&p);
        assert_eq!(w.cycle(), &[0, 0, 1, 0, 1, 2, 0, 1, 2]);
        assert_eq!(
            picks(&w, &p, 18),
            [w.cycle(), w.cycle()]
                .concat()
                .iter()
                .map(|&x| x as usize)
                .collect::<Vec<_>>()
        );
        // gcd stepping: 4,2 behave as 2,1.
        assert_eq!(Wrr::new(&pool(&[4, 2])).cycle(), &[0, 0, 1]);
        // weight 0 never appears.
        assert_eq!(Wrr::new(&pool(&[0, 2])).cycle(), &[1]);
        assert!(Wrr::new(&pool(&[0, 0]))
            .pick(&flow(0, 1), &pool(&[0, 0]))
            .is_none());
    }

    #[test]
    fn wrr_proportions_exact_over_a_cycle() {
        let weights = [5, 1, 3, 7];
        let p = pool(&weights);
        let w = Wrr::new(&p);
        let total: u32 = weights.iter().sum();
        let mut count = [0u32; 4];
        picks(&w, &p, total as usize * 3)
            .into_iter()
            .for_each(|i| count[i] += 1);
        assert_eq!(count, [15, 3, 9, 21]);
    }

    #[test]
    fn wrr_huge_weights_are_scaled() {
        let p = pool(&[1_000_000, 500_000]);
        let w = Wrr::new(&p);
        assert!(w.cycle().len() <= MAX_CYCLE);
        let c0 = w.cycle().iter().filter(|&&i| i == 0).count();
        assert_eq!(c0 * 3, w.cycle().len() * 2);
    }

    #[test]
    fn rr_and_wrr_stay_exact_across_threads() {
        let p = pool(&[3, 1, 2]);
        let (rr, wrr) = (Rr::default(), Wrr::new(&p));
        let mut rc = [0usize; 3];
        let mut wc = [0usize; 3];
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let (mut a, mut b) = ([0usize; 3], [0usize; 3]);
                        for k in 0..6000 {
                            a[rr.pick(&flow(k, 1), &p).unwrap()] += 1;
                            b[wrr.pick(&flow(k, 1), &p).unwrap()] += 1;
                        }
                        (a, b)
                    })
                })
                .collect();
            for h in hs {
                let (a, b) = h.join().unwrap();
                (0..3).for_each(|i| {
                    rc[i] += a[i];
                    wc[i] += b[i];
                });
            }
        });
        assert_eq!(rc, [8000, 8000, 8000]);
        assert_eq!(wc, [12000, 4000, 8000]);
    }

    proptest::proptest! {
        /// Over whole cycles every server gets exactly weight/gcd picks per cycle.
        #[test]
        fn wrr_distribution_is_exact(weights in proptest::collection::vec(0u32..20, 1..8), cycles in 1usize..4) {
            let p = pool(&weights);
            let w = Wrr::new(&p);
            let g = weights.iter().copied().fold(0, gcd).max(1);
            let per_cycle: usize = weights.iter().map(|&x| (x / g) as usize).sum();
            let mut count = vec![0usize; weights.len()];
            for k in 0..per_cycle * cycles {
                count[w.pick(&flow(k as u32, 1), &p).unwrap()] += 1;
            }
            for (i, &x) in weights.iter().enumerate() {
                proptest::prop_assert_eq!(count[i], (x / g) as usize * cycles);
            }
        }
    }
}
