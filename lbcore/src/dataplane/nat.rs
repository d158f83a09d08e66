//! NAT bindings shared by all workers.
//!
//! PACKET_FANOUT hashes a packet's own 5-tuple, and a NAT reply's tuple
//! (real server → client, or → balancer in one-arm mode) differs from the
//! forward one, so a reply usually lands on another worker than the one that
//! owns the connection. Bindings are immutable once made, so the reply side
//! only needs a lookup: a sharded map (mutex per shard, held for one hash
//! lookup) from the reply key to the binding. The owning worker inserts and
//! removes; TCP state is tracked from the input direction (as IPVS does for DR).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::flow::{FlowHashBuilder, FlowKey};
use crate::pool::DestStats;
use crate::stats::Traffic;

use super::wire::Mac;

const SHARDS: usize = 64;

/// How one NAT connection is rewritten, in both directions.
#[derive(Debug)]
pub struct Binding {
    /// Client → VIP, as received.
    pub fwd: FlowKey,
    /// Real server → client (two-arm) or → balancer (one-arm), as it will be received.
    pub reply: FlowKey,
    /// Real server address and port.
    pub rs: (IpAddr, u16),
    /// One-arm: the balancer's address and port the client is hidden behind.
    pub snat: Option<(IpAddr, u16)>,
    /// Where replies go: the client's (or its router's) MAC and our interface, as seen on
    /// the first packet; `None` for a connection synchronised from the other node, whose
    /// replies take this node's route and neighbour towards the client.
    pub client: Option<(Mac, i32)>,
    /// The real server sent FIN or RST (seen by whichever worker got the
    /// reply; the owner may never see replies): lets the owner reuse a
    /// one-arm port once the client has closed too.
    pub server_closed: AtomicBool,
    /// The real server's counters and its service's, for replies counted by any worker.
    pub dest: Arc<DestStats>,
    pub service: Arc<Traffic>,
}

type Shard = HashMap<FlowKey, Arc<Binding>, FlowHashBuilder>;

/// Reply-key and forward-key indexes of the live bindings.
#[derive(Debug)]
pub struct NatMap {
    by_reply: Box<[Mutex<Shard>]>,
    by_fwd: Box<[Mutex<Shard>]>,
    hasher: FlowHashBuilder,
}

impl Default for NatMap {
    fn default() -> Self {
        let mk = || {
            (0..SHARDS)
                .map(|_| Mutex::new(Shard::default()))
                .collect::<Vec<_>>()
                .into_boxed_slice()
        };
        Self {
            by_reply: mk(),
            by_fwd: mk(),
            hasher: FlowHashBuilder::default(),
        }
    }
}

impl NatMap {
    fn shard<'a>(&self, v: &'a [Mutex<Shard>], k: &FlowKey) -> MutexGuard<'a, Shard> {
        use std::hash::BuildHasher;
        let i = (self.hasher.hash_one(k) % SHARDS as u64) as usize;
        // Poisoning only means a panic elsewhere between plain map operations.
        v[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a binding unless its reply key is taken (a one-arm port in use).
    pub fn insert(&self, b: Arc<Binding>) -> bool {
        {
            let mut r = self.shard(&self.by_reply, &b.reply);
            if r.contains_key(&b.reply) {
                return false;
            }
            r.insert(b.reply, b.clone());
        }
        self.shard(&self.by_fwd, &b.fwd).insert(b.fwd, b);
        true
    }

    /// Is this reply key free (one-arm port allocation)?
    pub fn reply_free(&self, k: &FlowKey) -> bool {
        !self.shard(&self.by_reply, k).contains_key(k)
    }

    /// Removes `b` itself: a newer binding for the same keys (a connection synchronised
    /// again, or taken over) stays.
    pub fn remove(&self, b: &Binding) {
        let mut r = self.shard(&self.by_reply, &b.reply);
        if r.get(&b.reply).is_some_and(|x| std::ptr::eq(&**x, b)) {
            r.remove(&b.reply);
        }
        drop(r);
        let mut f = self.shard(&self.by_fwd, &b.fwd);
        if f.get(&b.fwd).is_some_and(|x| std::ptr::eq(&**x, b)) {
            f.remove(&b.fwd);
        }
    }

    pub fn by_reply(&self, k: &FlowKey) -> Option<Arc<Binding>> {
        self.shard(&self.by_reply, k).get(k).cloned()
    }

    pub fn by_fwd(&self, k: &FlowKey) -> Option<Arc<Binding>> {
        self.shard(&self.by_fwd, k).get(k).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_reply
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Protocol;

    fn b(sport: u16, lport: u16) -> Arc<Binding> {
        let fwd = FlowKey {
            proto: Protocol::Tcp,
            src: [203, 0, 113, 10].into(),
            sport,
            dst: [203, 0, 113, 100].into(),
            dport: 80,
        };
        let reply = FlowKey {
            proto: Protocol::Tcp,
            src: [198, 51, 100, 11].into(),
            sport: 8080,
            dst: [198, 51, 100, 1].into(),
            dport: lport,
        };
        Arc::new(Binding {
            fwd,
            reply,
            rs: ([198, 51, 100, 11].into(), 8080),
            snat: Some(([198, 51, 100, 1].into(), lport)),
            client: Some(([2, 0, 0, 0, 0, 1], 2)),
            server_closed: AtomicBool::new(false),
            dest: Arc::default(),
            service: Arc::default(),
        })
    }

    #[test]
    fn reply_keys_are_unique_and_removal_is_exact() {
        let m = NatMap::default();
        assert!(m.insert(b(1000, 61000)));
        assert!(
            !m.insert(b(1001, 61000)),
            "port 61000 to that server is taken"
        );
        assert!(m.insert(b(1001, 61001)));
        assert_eq!(m.by_reply(&b(0, 61000).reply).unwrap().fwd.sport, 1000);
        assert_eq!(m.by_fwd(&b(1001, 0).fwd).unwrap().reply.dport, 61001);
        // Removing a stale copy, even an equal one, does not remove the live binding.
        m.remove(&b(1000, 61001));
        m.remove(&b(1000, 61000));
        assert_eq!(m.len(), 2);
        let live = m.by_reply(&b(0, 61000).reply).unwrap();
        m.remove(&live);
        assert!(m.reply_free(&b(0, 61000).reply));
        assert_eq!(m.len(), 1);
    }
}
