//! Connection-count and weight based schedulers: lc, wlc, sed, nq, fo, ovf,
//! twos, and the extensions rtt and priority_group.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{wlc_among, Scheduler};
use crate::flow::{mix64, FlowKey};
use crate::pool::RealServer;

/// Index of the available server minimising `key`, first wins ties.
fn min_by<K: Ord>(pool: &[RealServer], key: impl Fn(&RealServer) -> K) -> Option<usize> {
    let mut best: Option<(usize, K)> = None;
    for (i, s) in pool.iter().enumerate().filter(|(_, s)| s.available()) {
        let k = key(s);
        if best.as_ref().is_none_or(|(_, bk)| k < *bk) {
            best = Some((i, k));
        }
    }
    best.map(|b| b.0)
}

/// Compares `a_num/a_den < b_num/b_den` without division (u128 cross products).
fn ratio_key(num: u64, den: u64) -> impl Ord {
    Ratio(num, den.max(1))
}

#[derive(PartialEq, Eq)]
struct Ratio(u64, u64);
impl PartialOrd for Ratio {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ratio {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0 as u128 * o.1 as u128).cmp(&(o.0 as u128 * self.1 as u128))
    }
}

/// `lc`: least (active×256 + inactive).
#[derive(Debug, Default)]
pub struct Lc;
impl Scheduler for Lc {
    fn pick(&self, _: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        min_by(pool, RealServer::overhead)
    }
}

/// `wlc`: least overhead / weight.
#[derive(Debug, Default)]
pub struct Wlc;
impl Scheduler for Wlc {
    fn pick(&self, _: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        wlc_among(pool, 0..pool.len())
    }
}

/// `sed`: least (active + 1) / weight (inactive connections ignored).
#[derive(Debug, Default)]
pub struct Sed;
impl Scheduler for Sed {
    fn pick(&self, _: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        min_by(pool, |s| {
            ratio_key(s.stats.active() as u64 + 1, s.weight as u64)
        })
    }
}

/// `nq`: the first idle (no active connection) server, else as sed.
#[derive(Debug, Default)]
pub struct Nq;
impl Scheduler for Nq {
    fn pick(&self, f: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        pool.iter()
            .position(|s| s.available() && s.stats.active() == 0)
            .or_else(|| Sed.pick(f, pool))
    }
}

/// `fo`: weighted failover, the available server with the highest weight.
#[derive(Debug, Default)]
pub struct Fo;
impl Scheduler for Fo {
    fn pick(&self, _: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        min_by(pool, |s| std::cmp::Reverse(s.weight))
    }
}

/// `ovf`: weighted overflow, the highest-weight available server whose active
/// connections are still below its weight; none when all are full.
#[derive(Debug, Default)]
pub struct Ovf;
impl Scheduler for Ovf {
    fn pick(&self, _: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, s) in pool.iter().enumerate() {
            if s.available()
                && s.stats.active() < s.weight
                && best.is_none_or(|b| s.weight > pool[b].weight)
            {
                best = Some(i);
            }
        }
        best
    }
}

/// `twos`: two weighted random candidates, the one with the lower wlc overhead
/// wins. Randomness is a cheap atomic sequence mixed with the flow.
#[derive(Debug, Default)]
pub struct Twos {
    seq: AtomicU64,
}
impl Scheduler for Twos {
    fn pick(&self, f: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        let total: u64 = pool
            .iter()
            .filter(|s| s.available())
            .map(|s| s.weight as u64)
            .sum();
        if total == 0 {
            return None;
        }
        let r =
            mix64(self.seq.fetch_add(1, Relaxed) ^ crate::flow::hash_addr_port(f.src, f.sport, 0));
        let draw = |x: u64| {
            let mut x = x % total;
            pool.iter().position(|s| {
                if !s.available() {
                    return false;
                }
                if x < s.weight as u64 {
                    return true;
                }
                x -= s.weight as u64;
                false
            })
        };
        let (a, b) = (draw(r)?, draw(mix64(r))?);
        wlc_among(pool, [a, b].into_iter())
    }
}

/// Extension `rtt`: least expected response time, (active + 1) × smoothed
/// probe RTT / weight. Servers without a sample count as the slowest known one,
/// so a fresh server is tried without being flooded.
#[derive(Debug, Default)]
pub struct Rtt;
impl Scheduler for Rtt {
    fn pick(&self, _: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        let worst = pool
            .iter()
            .filter_map(|s| s.stats.rtt_us())
            .max()
            .unwrap_or(1) as u64;
        min_by(pool, |s| {
            let rtt = s.stats.rtt_us().map_or(worst, u64::from);
            ratio_key((s.stats.active() as u64 + 1) * rtt, s.weight as u64)
        })
    }
}

/// Extension `priority_group`: only the lowest-numbered group with an
/// available server is used; wlc inside it. Spill-over to the next group
/// happens when a whole group is down, quiesced or overloaded.
#[derive(Debug, Default)]
pub struct PriorityGroup;
impl Scheduler for PriorityGroup {
    fn pick(&self, _: &FlowKey, pool: &[RealServer]) -> Option<usize> {
        let g = pool
            .iter()
            .filter(|s| s.available())
            .map(|s| s.priority_group)
            .min()?;
        wlc_among(
            pool,
            (0..pool.len()).filter(|&i| pool[i].priority_group == g),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{flow, load, pool};
    use super::*;

    fn pick(s: &dyn Scheduler, p: &[RealServer]) -> Option<usize> {
        s.pick(&flow(1, 1), p)
    }

    #[test]
    fn lc_counts_active_256_times_inactive() {
        let p = pool(&[1, 1, 1]);
        load(&p[0], 1, 0); // 256
        load(&p[1], 0, 255); // 255
        load(&p[2], 0, 256); // 256
        assert_eq!(pick(&Lc, &p), Some(1));
        load(&p[1], 0, 1); // all 256: first wins
        assert_eq!(pick(&Lc, &p), Some(0));
    }

    #[test]
    fn wlc_divides_by_weight() {
        let p = pool(&[1, 3, 0]);
        load(&p[0], 1, 0); // 256/1
        load(&p[1], 2, 0); // 512/3 ≈ 170
        assert_eq!(pick(&Wlc, &p), Some(1));
        load(&p[1], 1, 0); // 768/3 = 256: tie, first wins
        assert_eq!(pick(&Wlc, &p), Some(0));
        assert_eq!(pick(&Wlc, &pool(&[0, 0])), None);
    }

    #[test]
    fn sed_and_nq() {
        let p = pool(&[1, 2]);
        // sed: (0+1)/1 = 1 vs (0+1)/2 = .5 → 1
        assert_eq!(pick(&Sed, &p), Some(1));
        // nq: first idle server regardless of weight
        assert_eq!(pick(&Nq, &p), Some(0));
        load(&p[0], 1, 0);
        assert_eq!(pick(&Nq, &p), Some(1));
        load(&p[1], 3, 0);
        // both busy → sed: (1+1)/1 = 2 vs (3+1)/2 = 2: tie, first
        assert_eq!(pick(&Nq, &p), Some(0));
        // inactive connections don't count for sed
        load(&p[0], 0, 100);
        assert_eq!(pick(&Sed, &p), Some(0));
    }

    #[test]
    fn fo_takes_highest_weight_and_fails_over() {
        let mut p = pool(&[2, 5, 5, 1]);
        assert_eq!(pick(&Fo, &p), Some(1));
        p[1].weight = 0;
        assert_eq!(pick(&Fo, &p), Some(2));
        p[2].weight = 0;
        assert_eq!(pick(&Fo, &p), Some(0));
    }

    #[test]
    fn ovf_overflows_when_active_reaches_weight() {
        let p = pool(&[2, 3]);
        assert_eq!(pick(&Ovf, &p), Some(1));
        load(&p[1], 3, 0);
        assert_eq!(pick(&Ovf, &p), Some(0));
        load(&p[0], 2, 0);
        assert_eq!(pick(&Ovf, &p), None);
    }

    #[test]
    fn twos_never_picks_unavailable_and_follows_weight() {
        let p = pool(&[1, 0, 3]);
        let t = Twos::default();
        let mut c = [0u32; 3];
        for k in 0..4000 {
            let i = t.pick(&flow(k, 1), &p).unwrap();
            c[i] += 1;
        }
        assert_eq!(c[1], 0);
        // Idle servers tie, so the first draw wins: shares follow weight 1:3.
        assert!((800..1200).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn rtt_prefers_fast_servers_and_accounts_for_load() {
        let p = pool(&[1, 1, 1]);
        p[0].stats.observe_rtt(4000);
        p[1].stats.observe_rtt(1000);
        // p[2] unknown = worst (4000)
        assert_eq!(pick(&Rtt, &p), Some(1));
        load(&p[1], 4, 0); // 5 × 1000 = 5000 > 4000
        assert_eq!(pick(&Rtt, &p), Some(0));
        assert_eq!(pick(&Rtt, &pool(&[0])), None);
    }

    #[test]
    fn priority_group_spills_over_only_when_group_unavailable() {
        let mut p = pool(&[1, 1, 1, 1]);
        p[0].priority_group = 1;
        p[1].priority_group = 0;
        p[2].priority_group = 0;
        p[3].priority_group = 1;
        load(&p[1], 5, 0);
        assert_eq!(pick(&PriorityGroup, &p), Some(2));
        load(&p[2], 9, 0);
        assert_eq!(
            pick(&PriorityGroup, &p),
            Some(1),
            "busy but still in the best group"
        );
        p[1].weight = 0;
        p[2].weight = 0;
        assert_eq!(pick(&PriorityGroup, &p), Some(0));
    }
}
