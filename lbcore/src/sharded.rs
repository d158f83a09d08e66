//! A bounded map shared by the dataplane workers: split into mutex-protected shards by key
//! hash, so a lookup locks one shard for one map operation and workers rarely meet. What to do
//! when a shard is full (evict, refuse) is the user's rule; the map only says when it is.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard};

/// Shards per map: a few per worker on the machines vrrpd runs on.
pub const SHARDS: usize = 16;

/// `capacity` entries in [`SHARDS`] shards, each holding at most `capacity / SHARDS` (rounded
/// up, at least one).
#[derive(Debug)]
pub struct Sharded<K, V, S = std::hash::RandomState> {
    shards: Box<[Mutex<HashMap<K, V, S>>]>,
    hasher: S,
    per_shard: usize,
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> Sharded<K, V, S> {
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(S::default())))
                .collect(),
            hasher: S::default(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// The shard `k` lives in, locked.
    pub fn shard(&self, k: &K) -> MutexGuard<'_, HashMap<K, V, S>> {
        let i = (self.hasher.hash_one(k) % SHARDS as u64) as usize;
        lock(&self.shards[i])
    }

    /// Whether `k` would be a new entry in a shard that is already at its bound.
    pub fn full_for(&self, m: &HashMap<K, V, S>, k: &K) -> bool {
        !m.contains_key(k) && m.len() >= self.per_shard
    }

    /// Every shard in turn, each locked only while `f` runs on it.
    pub fn for_each_shard(&self, mut f: impl FnMut(&mut HashMap<K, V, S>)) {
        for s in self.shards.iter() {
            f(&mut lock(s));
        }
    }
}

/// Poisoning only means a panic elsewhere between plain map operations: the data is whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shard_is_bounded_and_iterated() {
        let m: Sharded<u32, u32> = Sharded::new(SHARDS);
        let mut refused = 0;
        for k in 0..100 {
            let mut s = m.shard(&k);
            if m.full_for(&s, &k) {
                refused += 1;
            } else {
                s.insert(k, k);
            }
        }
        let mut n = 0;
        m.for_each_shard(|s| {
            assert!(s.len() <= 1);
            n += s.len();
        });
        assert_eq!(n + refused, 100);
        assert!(n <= SHARDS);
    }
}
