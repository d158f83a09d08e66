//! Persistence templates (`persistence_timeout`, `persistence_granularity`):
//! a client network keeps going to the same real server.
//!
//! Unlike connection entries these are shared by all workers: PACKET_FANOUT
//! spreads one client's connections (different source ports) over workers.
//! The table is split into mutex-protected shards by client hash so workers
//! rarely contend. A template lives while connections it controls exist and
//! for `persistence_timeout` after its last use.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::MutexGuard;

use crate::flow::mask_ip;
use crate::pool::DestId;
use crate::sharded::Sharded;
use crate::time::Millis;

/// Template key: service identity and the masked client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersistKey {
    /// Stable service identity (see `service::Service::id`).
    pub svc: u64,
    pub client: IpAddr,
}

impl PersistKey {
    /// Key for `client` under `persistence_granularity` (prefix length).
    pub fn new(svc: u64, client: IpAddr, granularity: Option<u8>) -> Self {
        Self {
            svc,
            client: mask_ip(client, granularity),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Template {
    dest: DestId,
    expires: Millis,
    controlled: u32,
}

impl Template {
    fn alive(&self, now: Millis) -> bool {
        self.controlled > 0 || self.expires > now
    }
}

/// What [`PersistTable::entry`] shows of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateView {
    pub dest: DestId,
    pub expires: Millis,
    /// Connections it controls are alive (it lives at least as long as they do).
    pub controlled: bool,
}

/// Shared, bounded template table.
#[derive(Debug)]
pub struct PersistTable {
    map: Sharded<PersistKey, Template>,
}

impl PersistTable {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Sharded::new(capacity),
        }
    }

    fn shard(&self, k: &PersistKey) -> MutexGuard<'_, HashMap<PersistKey, Template>> {
        self.map.shard(k)
    }

    /// Schedules through the template for `key`: `choose` receives the
    /// template's server if one is alive and returns the server to use (the
    /// same one, or a new pick when it is no longer usable), or `None` to
    /// refuse. The template then points at the result, controls one more
    /// connection and is refreshed to `now + timeout`.
    pub fn schedule(
        &self,
        key: PersistKey,
        timeout: Millis,
        now: Millis,
        choose: impl FnOnce(Option<DestId>) -> Option<DestId>,
    ) -> Option<DestId> {
        let mut m = self.shard(&key);
        let existing = m.get(&key).filter(|t| t.alive(now)).map(|t| t.dest);
        let dest = choose(existing)?;
        if self.map.full_for(&m, &key) {
            m.retain(|_, t| t.alive(now));
            if self.map.full_for(&m, &key) {
                // Evict the uncontrolled template expiring soonest; if all are
                // controlled, serve this connection without persistence.
                let victim = m
                    .iter()
                    .filter(|(_, t)| t.controlled == 0)
                    .min_by_key(|(_, t)| t.expires)
                    .map(|(k, _)| *k);
                match victim {
                    Some(v) => {
                        m.remove(&v);
                    }
                    None => return Some(dest),
                }
            }
        }
        let t = m.entry(key).or_insert(Template {
            dest,
            expires: 0,
            controlled: 0,
        });
        if !t.alive(now) || t.dest != dest {
            // A new binding: connections of the old one no longer count for it.
            *t = Template {
                dest,
                expires: 0,
                controlled: 0,
            };
        }
        t.controlled += 1;
        t.expires = now + timeout;
        Some(dest)
    }

    /// A connection controlled by `key` went away: the template stays for
    /// another `timeout` after it.
    pub fn release(&self, key: &PersistKey, timeout: Millis, now: Millis) {
        if let Some(t) = self.shard(key).get_mut(key) {
            t.controlled = t.controlled.saturating_sub(1);
            t.expires = t.expires.max(now + timeout);
        }
    }

    /// The server a live template points at (no refresh).
    pub fn get(&self, key: &PersistKey, now: Millis) -> Option<DestId> {
        self.shard(key)
            .get(key)
            .filter(|t| t.alive(now))
            .map(|t| t.dest)
    }

    /// A live template: its server, deadline and whether connections hold it (no refresh).
    pub fn entry(&self, key: &PersistKey, now: Millis) -> Option<TemplateView> {
        self.shard(key)
            .get(key)
            .filter(|t| t.alive(now))
            .map(|t| TemplateView {
                dest: t.dest,
                expires: t.expires,
                controlled: t.controlled > 0,
            })
    }

    /// Installs a template the other node of the pair made (connection sync): it points at
    /// `dest` until `expires` (the sender's deadline wins), connections this node takes over
    /// attach to it with [`PersistTable::attach`].
    pub fn install(&self, key: PersistKey, dest: DestId, expires: Millis, now: Millis) -> bool {
        let mut m = self.shard(&key);
        if self.map.full_for(&m, &key) {
            m.retain(|_, t| t.alive(now));
            if self.map.full_for(&m, &key) {
                return false;
            }
        }
        let t = m.entry(key).or_insert(Template {
            dest,
            expires,
            controlled: 0,
        });
        if t.dest != dest {
            t.controlled = 0;
        }
        t.dest = dest;
        t.expires = expires;
        true
    }

    /// A connection taken over from the other node is controlled by the template for `key`
    /// (if it is alive and points at `dest`): it now lives at least as long as the connection.
    pub fn attach(&self, key: &PersistKey, dest: DestId, now: Millis) -> bool {
        match self.shard(key).get_mut(key) {
            Some(t) if t.alive(now) && t.dest == dest => {
                t.controlled += 1;
                true
            }
            _ => false,
        }
    }

    /// Drops dead templates; returns how many.
    pub fn expire(&self, now: Millis) -> usize {
        let mut gone = 0;
        self.map.for_each_shard(|m| {
            let before = m.len();
            m.retain(|_, t| t.alive(now));
            gone += before - m.len();
        });
        gone
    }

    /// Live templates (key, server, time left): the `IP` entries of `ipvsadm -c`. One shard
    /// is locked at a time, as briefly as a copy of it takes.
    pub fn templates(&self, now: Millis) -> Vec<(PersistKey, DestId, Millis)> {
        let mut out = Vec::new();
        self.map.for_each_shard(|m| {
            out.extend(
                m.iter()
                    .filter(|(_, t)| t.alive(now))
                    .map(|(k, t)| (*k, t.dest, t.expires.saturating_sub(now))),
            )
        });
        out
    }

    /// Live templates per service and server (ipvsadm's `PersistConn`).
    pub fn per_dest(&self, now: Millis) -> HashMap<(u64, DestId), u32> {
        let mut out = HashMap::new();
        for (k, d, _) in self.templates(now) {
            *out.entry((k.svc, d)).or_default() += 1;
        }
        out
    }

    pub fn len(&self) -> usize {
        let mut n = 0;
        self.map.for_each_shard(|m| n += m.len());
        n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharded::SHARDS;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn d(n: u8) -> DestId {
        DestId {
            addr: IpAddr::from([192, 0, 2, n]),
            port: Some(80),
        }
    }

    const T: Millis = 360_000;

    #[test]
    fn granularity_groups_clients() {
        let t = PersistTable::new(64);
        let k1 = PersistKey::new(1, ip("198.51.100.7"), Some(24));
        let k2 = PersistKey::new(1, ip("198.51.100.200"), Some(24));
        let k3 = PersistKey::new(1, ip("198.51.101.7"), Some(24));
        assert_eq!(k1, k2);
        assert_ne!(k1, k3);
        assert_eq!(t.schedule(k1, T, 0, |e| e.or(Some(d(1)))), Some(d(1)));
        // Second client of the same /24 reuses the template.
        assert_eq!(t.schedule(k2, T, 10, |e| e.or(Some(d(2)))), Some(d(1)));
        assert_eq!(t.schedule(k3, T, 10, |e| e.or(Some(d(2)))), Some(d(2)));
        // Different service, different template.
        assert_eq!(
            t.schedule(PersistKey { svc: 2, ..k1 }, T, 10, |e| e.or(Some(d(3)))),
            Some(d(3))
        );
    }

    #[test]
    fn template_outlives_connections_by_timeout_exactly() {
        let t = PersistTable::new(64);
        let k = PersistKey::new(1, ip("198.51.100.7"), None);
        t.schedule(k, T, 0, |e| e.or(Some(d(1))));
        // Controlled: alive long past the timeout.
        assert_eq!(t.get(&k, 10 * T), Some(d(1)));
        t.release(&k, T, 10 * T);
        assert_eq!(t.get(&k, 11 * T - 1), Some(d(1)));
        assert_eq!(t.get(&k, 11 * T), None);
        assert_eq!(t.expire(11 * T), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn unusable_server_is_replaced() {
        let t = PersistTable::new(64);
        let k = PersistKey::new(1, ip("198.51.100.7"), None);
        t.schedule(k, T, 0, |e| e.or(Some(d(1))));
        // The chooser rejects d(1) (down) and picks d(2).
        let got = t.schedule(k, T, 5, |e| {
            assert_eq!(e, Some(d(1)));
            Some(d(2))
        });
        assert_eq!(got, Some(d(2)));
        assert_eq!(t.get(&k, 5), Some(d(2)));
    }

    #[test]
    fn bounded_with_eviction_of_uncontrolled() {
        let t = PersistTable::new(SHARDS); // one template per shard
        let k = PersistKey::new(1, ip("198.51.100.7"), None);
        t.schedule(k, T, 0, |_| Some(d(1)));
        for n in 0..=255u8 {
            t.schedule(
                PersistKey::new(1, IpAddr::from([203, 0, 113, n]), None),
                T,
                1,
                |_| Some(d(2)),
            );
        }
        assert!(t.len() <= SHARDS, "{}", t.len());
        // All controlled: a new client is still served, just not remembered.
        let fresh = PersistKey::new(1, ip("2001:db8::1"), None);
        let before = t.len();
        assert_eq!(t.schedule(fresh, T, 2, |_| Some(d(3))), Some(d(3)));
        assert_eq!(t.len(), before);
    }

    #[test]
    fn installed_templates_steer_and_attached_connections_hold_them() {
        let t = PersistTable::new(64);
        let k = PersistKey::new(1, ip("198.51.100.7"), None);
        assert!(t.install(k, d(2), 100, 0));
        assert_eq!(t.schedule(k, T, 10, |e| e.or(Some(d(1)))), Some(d(2)));
        assert!(
            !t.attach(&k, d(1), 20),
            "another server: not this template's"
        );
        // A fresh install: the sender's deadline wins, then a taken-over connection holds it.
        let k2 = PersistKey::new(1, ip("198.51.100.8"), None);
        t.install(k2, d(3), 50, 0);
        assert!(t.attach(&k2, d(3), 10));
        assert_eq!(
            t.get(&k2, 1000),
            Some(d(3)),
            "controlled: alive past its deadline"
        );
        let v = t.entry(&k2, 1000).unwrap();
        assert_eq!((v.dest, v.expires, v.controlled), (d(3), 50, true));
        t.release(&k2, T, 1000);
        assert_eq!(t.get(&k2, 1000 + T), None);
    }
}
