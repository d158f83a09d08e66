//! Connections synchronised from the Master, waiting on the Backup.
//!
//! The dataplane workers each own a shard of the connection table chosen by the kernel's
//! fanout hash, which user space cannot compute: an entry cannot be put straight into the
//! worker that will see the flow. It waits here instead (a sharded map, a lock held for one
//! lookup) and the worker that receives the flow's first packet after a takeover takes it
//! over; only packets of flows a worker does not know look here, and only while something
//! is waiting.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::install::SyncedConn;
use crate::flow::{FlowHashBuilder, FlowKey};
use crate::sharded::Sharded;
use crate::time::Millis;

/// The table has no room for another connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Synchronised connections by client key, bounded.
#[derive(Debug)]
pub struct SyncedConns {
    map: Sharded<FlowKey, SyncedConn, FlowHashBuilder>,
    len: AtomicUsize,
}

impl SyncedConns {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Sharded::new(capacity),
            len: AtomicUsize::new(0),
        }
    }

    /// Puts `c` in (replacing the entry for its key, handed back). A full shard first drops
    /// what has expired, then refuses.
    pub fn insert(&self, c: SyncedConn, now: Millis) -> Result<Option<SyncedConn>, Full> {
        let mut m = self.map.shard(&c.key);
        if self.map.full_for(&m, &c.key) {
            let before = m.len();
            m.retain(|_, e| e.expires > now);
            self.len.fetch_sub(before - m.len(), Relaxed);
            if self.map.full_for(&m, &c.key) {
                return Err(Full);
            }
        }
        let old = m.insert(c.key, c);
        if old.is_none() {
            self.len.fetch_add(1, Relaxed);
        }
        Ok(old)
    }

    /// Removes and returns the entry for `key` (expired or not: the caller releases it).
    pub fn take(&self, key: &FlowKey) -> Option<SyncedConn> {
        if self.is_empty() {
            return None;
        }
        let c = self.map.shard(key).remove(key);
        if c.is_some() {
            self.len.fetch_sub(1, Relaxed);
        }
        c
    }

    /// Removes the expired entries, handing each to `f`.
    pub fn expire(&self, now: Millis, mut f: impl FnMut(SyncedConn)) {
        self.map.for_each_shard(|m| {
            let gone: Vec<FlowKey> = m
                .values()
                .filter(|c| c.expires <= now)
                .map(|c| c.key)
                .collect();
            for k in gone {
                if let Some(c) = m.remove(&k) {
                    self.len.fetch_sub(1, Relaxed);
                    f(c);
                }
            }
        });
    }

    /// Calls `f` on every live entry (a full sync from a node that took over).
    pub fn for_each_live(&self, now: Millis, mut f: impl FnMut(&SyncedConn)) {
        self.map
            .for_each_shard(|m| m.values().filter(|c| c.expires > now).for_each(&mut f));
    }

    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use crate::sharded::SHARDS;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::conntrack::{ConnState, TcpState};
    use crate::pool::DestId;
    use crate::spec::{ForwardingMethod, Protocol};

    fn c(port: u16, expires: Millis) -> SyncedConn {
        SyncedConn {
            key: FlowKey {
                proto: Protocol::Tcp,
                src: Ipv4Addr::new(192, 0, 2, 50).into(),
                sport: port,
                dst: Ipv4Addr::new(192, 0, 2, 100).into(),
                dport: 80,
            },
            svc: 1,
            dest: DestId {
                addr: Ipv4Addr::new(192, 0, 2, 11).into(),
                port: Some(80),
            },
            forwarding: ForwardingMethod::Dr,
            state: ConnState::Tcp(TcpState::Established),
            no_output: true,
            expires,
            nat: None,
            persist: None,
        }
    }

    #[test]
    fn bounded_replaced_taken_and_expired() {
        let t = SyncedConns::new(SHARDS); // one per shard
        assert!(t.take(&c(1, 0).key).is_none());
        assert_eq!(t.insert(c(1, 100), 0), Ok(None));
        assert_eq!(
            t.insert(c(1, 200), 0),
            Ok(Some(c(1, 100))),
            "a refresh replaces"
        );
        assert_eq!(t.len(), 1);
        // Fill every shard, then one more key cannot get in until something expires.
        let mut p = 2;
        while t.len() < SHARDS {
            let _ = t.insert(c(p, 50), 0);
            p += 1;
        }
        let refused = (p..p + 64).find(|&q| t.insert(c(q, 500), 0).is_err());
        assert!(refused.is_some(), "a full shard refuses");
        let mut gone = Vec::new();
        t.expire(60, |x| gone.push(x.key.sport));
        assert_eq!(gone.len(), SHARDS - 1, "all but the refreshed one");
        let mut live = 0;
        t.for_each_live(60, |_| live += 1);
        assert_eq!((t.len(), live), (1, 1));
        assert_eq!(t.take(&c(1, 0).key), Some(c(1, 200)));
        assert!(t.is_empty() && t.take(&c(1, 0).key).is_none());
    }
}
