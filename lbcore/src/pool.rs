//! The live pool a scheduler chooses from: real servers with their effective
//! weight and shared connection counters.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use crate::spec::ForwardingMethod;
use crate::stats::Traffic;

/// Identity of a real server inside a service: address and optional port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId {
    pub addr: IpAddr,
    pub port: Option<u16>,
}

/// Counters shared by all dataplane workers and carried across snapshots, so
/// a health event that rebuilds the table does not reset lc/wlc state.
#[derive(Debug, Default)]
pub struct DestStats {
    active: AtomicU32,
    inactive: AtomicU32,
    /// Smoothed probe RTT in µs; 0 = no sample yet.
    rtt_us: AtomicU32,
    overloaded: AtomicBool,
    uthreshold: AtomicU32,
    lthreshold: AtomicU32,
    /// Connections, packets and bytes sent to this server (ipvsadm `--stats`).
    pub traffic: Traffic,
}

impl DestStats {
    /// Counters with keepalived's `uthreshold`/`lthreshold` (0 = none).
    pub fn with_thresholds(uthreshold: u32, lthreshold: u32) -> Self {
        let s = Self::default();
        s.set_thresholds(uthreshold, lthreshold);
        s
    }

    /// keepalived's `uthreshold` and `lthreshold` (0 = none).
    pub fn thresholds(&self) -> (u32, u32) {
        (self.uthreshold.load(Relaxed), self.lthreshold.load(Relaxed))
    }

    pub fn set_thresholds(&self, uthreshold: u32, lthreshold: u32) {
        self.uthreshold.store(uthreshold, Relaxed);
        self.lthreshold.store(lthreshold, Relaxed);
    }

    /// Established connections (IPVS "ActiveConn").
    pub fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }

    /// Other connections (IPVS "InActConn").
    pub fn inactive(&self) -> u32 {
        self.inactive.load(Relaxed)
    }

    /// Smoothed RTT in µs, `None` before the first probe.
    pub fn rtt_us(&self) -> Option<u32> {
        Some(self.rtt_us.load(Relaxed)).filter(|&v| v != 0)
    }

    /// Feeds one probe latency: EWMA with α = 1/8 (as TCP's SRTT).
    pub fn observe_rtt(&self, us: u32) {
        let us = us.max(1);
        let old = self.rtt_us.load(Relaxed);
        let new = if old == 0 {
            us
        } else {
            ((old as u64 * 7 + us as u64) / 8).max(1) as u32
        };
        self.rtt_us.store(new, Relaxed);
    }

    /// Over `uthreshold` and not yet back under `lthreshold`.
    pub fn overloaded(&self) -> bool {
        self.overloaded.load(Relaxed)
    }

    /// A connection was bound to this server (IPVS ip_vs_bind_dest).
    pub fn bind(&self, active: bool) {
        if active { &self.active } else { &self.inactive }.fetch_add(1, Relaxed);
        let u = self.uthreshold.load(Relaxed);
        if u != 0 && self.total() >= u {
            self.overloaded.store(true, Relaxed);
        }
    }

    /// A connection left this server (IPVS ip_vs_unbind_dest): the overload
    /// flag clears below `lthreshold`, or below 3/4 of `uthreshold` without one.
    pub fn unbind(&self, active: bool) {
        let c = if active { &self.active } else { &self.inactive };
        let _ = c.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
        let (u, l, n) = (
            self.uthreshold.load(Relaxed),
            self.lthreshold.load(Relaxed),
            self.total(),
        );
        let clear = if l != 0 {
            n < l
        } else if u != 0 {
            (n as u64) * 4 < (u as u64) * 3
        } else {
            true
        };
        if clear {
            self.overloaded.store(false, Relaxed);
        }
    }

    /// A connection moved between inactive and active (TCP state change).
    pub fn transfer(&self, to_active: bool) {
        let (from, to) = if to_active {
            (&self.inactive, &self.active)
        } else {
            (&self.active, &self.inactive)
        };
        let _ = from.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
        to.fetch_add(1, Relaxed);
    }

    fn total(&self) -> u32 {
        self.active().saturating_add(self.inactive())
    }
}

/// One real server as schedulers see it.
#[derive(Debug, Clone)]
pub struct RealServer {
    pub id: DestId,
    /// Effective weight: 0 = quiesced (inhibited), never chosen for new flows.
    pub weight: u32,
    pub forwarding: ForwardingMethod,
    /// Extension: lower groups are preferred by the priority_group scheduler.
    pub priority_group: u32,
    pub stats: Arc<DestStats>,
    /// The counters of the service this server belongs to (counted with the server's).
    pub service: Arc<Traffic>,
}

impl RealServer {
    /// A server with fresh counters (tests, benches).
    pub fn new(addr: IpAddr, port: Option<u16>, weight: u32) -> Self {
        Self {
            id: DestId { addr, port },
            weight,
            forwarding: ForwardingMethod::Nat,
            priority_group: 0,
            stats: Arc::new(DestStats::default()),
            service: Arc::default(),
        }
    }

    /// May take a new connection: weight > 0 and not overloaded (IPVS semantics).
    #[inline]
    pub fn available(&self) -> bool {
        self.weight > 0 && !self.stats.overloaded()
    }

    /// IPVS's lc/wlc overhead: active connections count 256 times more.
    #[inline]
    pub fn overhead(&self) -> u64 {
        ((self.stats.active() as u64) << 8) + self.stats.inactive() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_set_and_clear_overload_like_ipvs() {
        let s = DestStats::with_thresholds(4, 2);
        for _ in 0..3 {
            s.bind(false);
        }
        assert!(!s.overloaded());
        s.bind(true);
        assert!(s.overloaded(), "4 >= uthreshold 4");
        s.unbind(false);
        assert!(s.overloaded(), "3 is not below lthreshold 2");
        s.unbind(false);
        assert!(s.overloaded(), "2 is not below lthreshold 2");
        s.unbind(false);
        assert!(!s.overloaded(), "1 < 2");
        assert_eq!((s.active(), s.inactive()), (1, 0));
        // Without lthreshold: clears below 3/4 of uthreshold.
        let s = DestStats::with_thresholds(8, 0);
        (0..8).for_each(|_| s.bind(false));
        assert!(s.overloaded());
        s.unbind(false);
        s.unbind(false);
        assert!(s.overloaded(), "6 == 3/4 of 8 still overloaded");
        s.unbind(false);
        assert!(!s.overloaded());
    }

    #[test]
    fn rtt_is_smoothed() {
        let s = DestStats::default();
        assert_eq!(s.rtt_us(), None);
        s.observe_rtt(800);
        assert_eq!(s.rtt_us(), Some(800));
        s.observe_rtt(1600);
        assert_eq!(s.rtt_us(), Some(900));
    }

    #[test]
    fn transfer_moves_between_counters() {
        let s = DestStats::default();
        s.bind(false);
        s.transfer(true);
        assert_eq!((s.active(), s.inactive()), (1, 0));
        s.transfer(false);
        assert_eq!((s.active(), s.inactive()), (0, 1));
        s.unbind(false);
        s.unbind(false); // saturates, never wraps
        assert_eq!(s.inactive(), 0);
    }
}
