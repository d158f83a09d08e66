//! One node's sync daemon as a state machine: entries and datagrams go in with the time,
//! datagrams to send and entries to install come out. The driver owns the socket and the
//! clock; nothing here touches either.
//!
//! The Master batches entries into messages of up to `maxlen` bytes and sends a message
//! when it is full or `flush` after its first entry (IPVS sends queued buffers after
//! `IPVS_SYNC_SEND_DELAY`, 20 ms). The Backup takes messages of its sync id (any, with id
//! 0, as Linux). A node becoming Backup asks the Master for its whole table (an entry-less
//! message with a [`wire::RESYNC`] record), again each second until it hears from it: a
//! node that comes back after a crash or a handover knows every connection before it
//! preempts, not only those that change afterwards.

use std::collections::VecDeque;
use std::sync::Arc;

use super::counters::{SyncCounters, SyncDrop};
use super::wire::{self, Builder, Entry, Skipped};
use crate::time::{Millis, SECOND};

/// Sync parameters (`lvs_sync_daemon ... id SYNC_ID maxlen LEN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    pub syncid: u8,
    /// Largest message (UDP payload) in bytes.
    pub maxlen: usize,
    /// Longest an entry waits for others to share its message.
    pub flush: Millis,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            syncid: 0,
            // An Ethernet MTU less the IPv4 and UDP headers, as Linux's default.
            maxlen: 1500 - 28,
            flush: 20,
        }
    }
}

/// Which way connections flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Neither (the instance is in FAULT or INIT, or sync is being set up).
    #[default]
    Idle,
    /// This node forwards: it sends.
    Master,
    /// The peer forwards: this node receives and installs.
    Backup,
}

/// How often a Backup that has heard nothing asks again for a full table.
const RESYNC_RETRY: Millis = SECOND;
/// A Master answers at most one full-table request per this long.
const DUMP_HOLDOFF: Millis = SECOND;

/// What a received datagram asks of the driver.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Entries to check and install (Backup).
    Entries(Vec<Entry>),
    /// Send the whole table (Master).
    Resync,
    /// Nothing to do (dropped and counted, or an answered request held off).
    Nothing,
}

/// The sync state machine of one node.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    role: Role,
    builder: Builder,
    /// When the message being built got its first entry.
    first_at: Option<Millis>,
    ready: VecDeque<Vec<u8>>,
    /// Backup: when to ask for a full table next (`None`: heard from the Master).
    ask_at: Option<Millis>,
    last_dump: Option<Millis>,
    counters: Arc<SyncCounters>,
}

impl Session {
    pub fn new(cfg: SessionConfig, counters: Arc<SyncCounters>) -> Self {
        Self {
            builder: Builder::new(cfg.syncid, cfg.maxlen),
            cfg,
            role: Role::Idle,
            first_at: None,
            ready: VecDeque::new(),
            ask_at: None,
            last_dump: None,
            counters,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn counters(&self) -> &Arc<SyncCounters> {
        &self.counters
    }

    /// The VRRP instance the daemon follows changed state.
    pub fn set_role(&mut self, role: Role, now: Millis) {
        if role == self.role {
            return;
        }
        self.role = role;
        // What a Master had not sent yet is stale for any other role.
        self.builder = Builder::new(self.cfg.syncid, self.cfg.maxlen);
        self.first_at = None;
        self.ready.clear();
        self.ask_at = (role == Role::Backup).then_some(now);
    }

    /// Queues one entry for the Backup (ignored unless Master).
    pub fn queue(&mut self, e: &Entry, now: Millis) {
        if self.role != Role::Master {
            return;
        }
        if !self.builder.push(e) {
            self.seal();
            let pushed = self.builder.push(e);
            debug_assert!(pushed, "an entry always fits an empty message");
        }
        self.first_at.get_or_insert(now);
    }

    fn seal(&mut self) {
        if self.builder.is_empty() {
            return;
        }
        let entries = self.builder.len() as u64;
        let mut out = Vec::new();
        self.builder.finish(&mut out);
        self.first_at = None;
        SyncCounters::add(&self.counters.entries_sent, entries);
        self.ready.push_back(out);
    }

    /// The next datagram to send now, if any.
    pub fn poll_transmit(&mut self, now: Millis) -> Option<Vec<u8>> {
        if self.first_at.is_some_and(|t| now >= t + self.cfg.flush) {
            self.seal();
        }
        if self.role == Role::Backup && self.ask_at.is_some_and(|t| now >= t) {
            self.ask_at = Some(now + RESYNC_RETRY);
            let mut b = Builder::new(self.cfg.syncid, self.cfg.maxlen);
            b.request_resync();
            let mut out = Vec::new();
            b.finish(&mut out);
            SyncCounters::add(&self.counters.resync_requests_sent, 1);
            self.ready.push_back(out);
        }
        let d = self.ready.pop_front()?;
        SyncCounters::add(&self.counters.messages_sent, 1);
        SyncCounters::add(&self.counters.bytes_sent, d.len() as u64);
        Some(d)
    }

    /// When [`Session::poll_transmit`] next has something to say.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if !self.ready.is_empty() {
            return Some(0);
        }
        let flush = self.first_at.map(|t| t + self.cfg.flush);
        let ask = self.ask_at.filter(|_| self.role == Role::Backup);
        match (flush, ask) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A datagram from the segment.
    pub fn receive(&mut self, buf: &[u8], now: Millis) -> Received {
        let c = &self.counters;
        SyncCounters::add(&c.messages_received, 1);
        let m = match wire::decode(buf) {
            Ok(m) => m,
            Err(_) => {
                c.drop_n(SyncDrop::Malformed, 1);
                return Received::Nothing;
            }
        };
        if self.cfg.syncid != 0 && m.syncid != self.cfg.syncid {
            c.drop_n(SyncDrop::BadSyncId, 1);
            return Received::Nothing;
        }
        SyncCounters::add(&c.entries_received, m.entries.len() as u64);
        if m.resync {
            SyncCounters::add(&c.resync_requests_received, 1);
        }
        match self.role {
            Role::Master => {
                if !m.entries.is_empty() {
                    // Another sender on our id: split brain, or a misconfigured peer.
                    c.drop_n(SyncDrop::NotBackup, m.entries.len() as u64);
                }
                if m.resync && self.last_dump.is_none_or(|t| now >= t + DUMP_HOLDOFF) {
                    self.last_dump = Some(now);
                    return Received::Resync;
                }
                Received::Nothing
            }
            Role::Backup => {
                if !m.entries.is_empty() {
                    self.ask_at = None;
                }
                let mut out = Vec::with_capacity(m.entries.len());
                for e in m.entries {
                    match e {
                        Ok(e) => out.push(e),
                        Err(Skipped::PersistenceEngine | Skipped::UnknownOption) => {
                            c.drop_n(SyncDrop::Skipped, 1)
                        }
                    }
                }
                Received::Entries(out)
            }
            Role::Idle => {
                c.drop_n(SyncDrop::NotBackup, m.entries.len() as u64);
                Received::Nothing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::sync::wire::flags;

    fn e(port: u16) -> Entry {
        Entry {
            protocol: 6,
            flags: flags::DROUTE,
            state: 1,
            cport: port,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout: 900,
            caddr: Ipv4Addr::new(192, 0, 2, 50).into(),
            vaddr: Ipv4Addr::new(192, 0, 2, 100).into(),
            daddr: Ipv4Addr::new(192, 0, 2, 11).into(),
            snat: None,
        }
    }

    fn session(syncid: u8, maxlen: usize) -> Session {
        let cfg = SessionConfig {
            syncid,
            maxlen,
            flush: 20,
        };
        Session::new(cfg, Arc::default())
    }

    #[test]
    fn master_batches_until_full_or_flush_time() {
        let mut s = session(5, 8 + 36 * 2);
        s.queue(&e(1), 0);
        assert_eq!(s.poll_transmit(0), None, "an Idle node sends nothing");
        s.set_role(Role::Master, 0);
        s.queue(&e(1), 100);
        assert_eq!(s.poll_timeout(), Some(120));
        assert_eq!(s.poll_transmit(119), None);
        s.queue(&e(2), 110);
        s.queue(&e(3), 115); // does not fit: the first two go
        let d = s.poll_transmit(115).expect("a full message");
        assert_eq!(wire::decode(&d).unwrap().entries.len(), 2);
        assert_eq!(s.poll_timeout(), Some(135), "the third waits its own flush");
        let d = s.poll_transmit(135).expect("flushed");
        let m = wire::decode(&d).unwrap();
        assert_eq!((m.syncid, m.entries.len()), (5, 1));
        let c = s.counters().snapshot();
        assert_eq!((c.messages_sent, c.entries_sent), (2, 3));
    }

    #[test]
    fn backup_asks_for_the_table_until_it_hears_the_master() {
        let mut master = session(5, 1472);
        let mut backup = session(5, 1472);
        master.set_role(Role::Master, 0);
        backup.set_role(Role::Backup, 0);
        let ask = backup.poll_transmit(0).expect("asks at once");
        assert_eq!(backup.poll_transmit(500), None);
        assert_eq!(master.receive(&ask, 0), Received::Resync);
        assert_eq!(master.receive(&ask, 10), Received::Nothing, "held off");
        assert!(backup.poll_transmit(1000).is_some(), "asks again");
        master.queue(&e(1), 1000);
        let d = master.poll_transmit(1020).unwrap();
        assert_eq!(backup.receive(&d, 1021), Received::Entries(vec![e(1)]));
        assert_eq!(backup.poll_transmit(5000), None, "heard: stops asking");
        assert_eq!(master.receive(&ask, 1500), Received::Resync);
    }

    #[test]
    fn foreign_ids_malformed_and_wrong_roles_are_counted() {
        let mut m = session(5, 1472);
        m.set_role(Role::Master, 0);
        m.queue(&e(1), 0);
        let d = m.poll_transmit(20).unwrap();
        let mut other = session(6, 1472);
        other.set_role(Role::Backup, 0);
        assert_eq!(other.receive(&d, 0), Received::Nothing);
        assert_eq!(other.receive(&d[..7], 0), Received::Nothing);
        let mut any = session(0, 1472);
        any.set_role(Role::Backup, 0);
        assert!(
            matches!(any.receive(&d, 0), Received::Entries(v) if v.len() == 1),
            "id 0 takes any"
        );
        assert_eq!(m.receive(&d, 0), Received::Nothing);
        let c = other.counters().snapshot();
        assert_eq!((c.dropped["bad_syncid"], c.dropped["malformed"]), (1, 1));
        assert_eq!(m.counters().snapshot().dropped["not_backup"], 1);
    }
}
