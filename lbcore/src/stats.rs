//! Traffic counters per virtual service and per real server, and IPVS's rate estimator.
//!
//! The dataplane workers count every forwarded packet, so the counters must cost no lock and
//! no shared cache line: each [`Traffic`] holds one cache-line-sized slot per worker (workers
//! beyond [`SLOTS`] share slots, still correct since adds are atomic), and a reader sums the
//! slots. Rates are computed as IPVS's estimator does (net/netfilter/ipvs/ip_vs_est.c): every
//! 2 seconds, an exponentially weighted average with weight 1/4 of the last interval's rate,
//! kept in fixed point (pps and cps scaled by 2^10, bps by 2^5) and rounded the same way when
//! read, so `--rate` shows the numbers an IPVS user knows.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::Serialize;

/// Slots per counter set: more workers than this share slots.
pub const SLOTS: usize = 8;

/// IPVS's estimator period: rates are recomputed this often, in milliseconds.
pub const ESTIMATOR_PERIOD_MS: u64 = 2000;

/// One worker's share, alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot {
    conns: AtomicU64,
    inpkts: AtomicU64,
    outpkts: AtomicU64,
    inbytes: AtomicU64,
    outbytes: AtomicU64,
}

/// Totals as IPVS keeps them (`ip_vs_stats_user`'s counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Self) {
        self.conns += o.conns;
        self.inpkts += o.inpkts;
        self.outpkts += o.outpkts;
        self.inbytes += o.inbytes;
        self.outbytes += o.outbytes;
    }
}

/// Rates per second as IPVS reports them (`ip_vs_stats_user`'s rates).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// IPVS's estimator state for one counter set: the totals at the last tick and the smoothed
/// rates in fixed point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimator {
    last: Totals,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

impl Estimator {
    /// One 2-second tick with the current totals.
    pub fn tick(&mut self, now: Totals) {
        // Counts per 2 s scaled by 2^10 / 2 (pps, cps) or 2^5 / 2 (bps) = << 9 and << 4.
        fn avg(acc: &mut i64, cur: u64, last: u64, shift: u32) {
            let rate = (cur.wrapping_sub(last) << shift) as i64;
            *acc += (rate - *acc) >> 2;
        }
        avg(&mut self.cps, now.conns, self.last.conns, 9);
        avg(&mut self.inpps, now.inpkts, self.last.inpkts, 9);
        avg(&mut self.outpps, now.outpkts, self.last.outpkts, 9);
        avg(&mut self.inbps, now.inbytes, self.last.inbytes, 4);
        avg(&mut self.outbps, now.outbytes, self.last.outbytes, 4);
        self.last = now;
    }

    /// The rates, rounded as IPVS rounds them when read.
    pub fn rates(&self) -> Rates {
        let pps = |v: i64| (v.max(0) as u64 + 0x1ff) >> 10;
        let bps = |v: i64| (v.max(0) as u64 + 0xf) >> 5;
        Rates {
            cps: pps(self.cps),
            inpps: pps(self.inpps),
            outpps: pps(self.outpps),
            inbps: bps(self.inbps),
            outbps: bps(self.outbps),
        }
    }
}

/// Which slot a dataplane worker writes, and whether it is the slot's only writer (then a
/// load and a store do, as for the dataplane's own counters; else an atomic add).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer {
    slot: u32,
    exclusive: bool,
}

impl Writer {
    /// Worker `worker` of `workers`.
    pub fn new(worker: u32, workers: u32) -> Self {
        Self {
            slot: worker % SLOTS as u32,
            exclusive: workers as usize <= SLOTS,
        }
    }

    #[inline]
    fn add(self, c: &AtomicU64, n: u64) {
        if self.exclusive {
            c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
        } else {
            c.fetch_add(n, Relaxed);
        }
    }
}

/// Counters of one virtual service or real server, written by the dataplane workers.
#[derive(Debug, Default)]
pub struct Traffic {
    slots: [Slot; SLOTS],
    est: Mutex<Estimator>,
}

impl Traffic {
    #[inline]
    fn slot(&self, w: Writer) -> &Slot {
        &self.slots[w.slot as usize]
    }

    /// A connection was scheduled.
    #[inline]
    pub fn conn(&self, w: Writer) {
        w.add(&self.slot(w).conns, 1);
    }

    /// A packet from the client (IP length in bytes).
    #[inline]
    pub fn packet_in(&self, w: Writer, bytes: u64) {
        let s = self.slot(w);
        w.add(&s.inpkts, 1);
        w.add(&s.inbytes, bytes);
    }

    /// A packet from the real server.
    #[inline]
    pub fn packet_out(&self, w: Writer, bytes: u64) {
        let s = self.slot(w);
        w.add(&s.outpkts, 1);
        w.add(&s.outbytes, bytes);
    }

    /// The sum over the slots.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.slots {
            t += Totals {
                conns: s.conns.load(Relaxed),
                inpkts: s.inpkts.load(Relaxed),
                outpkts: s.outpkts.load(Relaxed),
                inbytes: s.inbytes.load(Relaxed),
                outbytes: s.outbytes.load(Relaxed),
            };
        }
        t
    }

    /// The estimator's tick (every [`ESTIMATOR_PERIOD_MS`]).
    pub fn estimate(&self) {
        let now = self.totals();
        self.est.lock().unwrap_or_else(|e| e.into_inner()).tick(now);
    }

    pub fn rates(&self) -> Rates {
        self.est.lock().unwrap_or_else(|e| e.into_inner()).rates()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_sum_and_workers_beyond_slots_share() {
        let t = Traffic::default();
        let n = SLOTS as u32 * 2;
        for w in (0..n).map(|w| Writer::new(w, n)) {
            t.conn(w);
            t.packet_in(w, 60);
            t.packet_out(w, 1500);
        }
        let s = t.totals();
        let n = SLOTS as u64 * 2;
        assert_eq!(
            s,
            Totals {
                conns: n,
                inpkts: n,
                outpkts: n,
                inbytes: 60 * n,
                outbytes: 1500 * n,
            }
        );
    }

    /// A steady 1000 packets/s of 100 bytes converges to what IPVS shows: 1000 pps and
    /// 100000 B/s; the first tick shows a quarter of the rate, as IPVS's does.
    #[test]
    fn estimator_converges_like_ipvs() {
        let mut e = Estimator::default();
        let mut t = Totals::default();
        let step = |t: &mut Totals| {
            t.inpkts += 2000;
            t.inbytes += 200_000;
            t.conns += 20;
        };
        step(&mut t);
        e.tick(t);
        let r = e.rates();
        assert_eq!((r.inpps, r.inbps, r.cps), (250, 25_000, 2));
        for _ in 0..60 {
            step(&mut t);
            e.tick(t);
        }
        let r = e.rates();
        assert_eq!((r.inpps, r.inbps, r.cps, r.outpps), (1000, 100_000, 10, 0));
        // Traffic stops: the rates decay towards zero.
        for _ in 0..60 {
            e.tick(t);
        }
        assert_eq!(e.rates(), Rates::default());
    }
}
