//! Sync counters: atomics the driver and the workers bump, summed into a snapshot for dumps.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Why a sync message or entry was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncDrop {
    /// A message for another sync id (another pair on the segment).
    BadSyncId,
    /// A message that does not parse (dropped whole).
    Malformed,
    /// An entry with no time left.
    TooOld,
    /// A protocol the dataplane does not forward, or a fwmark template.
    Protocol,
    /// A state number the protocol does not have.
    State,
    /// No virtual service here for the entry's protocol, address and port.
    UnknownService,
    /// No such real server in the service, or another forwarding method.
    UnknownDest,
    /// A one-arm NAT source that is not ours or not in our port range, or one where none
    /// belongs: never trusted to reserve a port.
    BadSnat,
    /// Persistence-engine data or an unknown mandatory option (skipped as Linux does).
    Skipped,
    /// Connection entries received while this node is the sender.
    NotBackup,
    /// The entry's NAT reply address and port are held by another live connection here.
    Conflict,
    /// The Master's queue to the sender was full (entries lost, sent again on change).
    QueueFull,
    /// The kernel refused a datagram.
    TxError,
}

impl SyncDrop {
    pub const ALL: [SyncDrop; 13] = [
        Self::BadSyncId,
        Self::Malformed,
        Self::TooOld,
        Self::Protocol,
        Self::State,
        Self::UnknownService,
        Self::UnknownDest,
        Self::BadSnat,
        Self::Skipped,
        Self::NotBackup,
        Self::Conflict,
        Self::QueueFull,
        Self::TxError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::BadSyncId => "bad_syncid",
            Self::Malformed => "malformed",
            Self::TooOld => "too_old",
            Self::Protocol => "protocol",
            Self::State => "state",
            Self::UnknownService => "unknown_service",
            Self::UnknownDest => "unknown_dest",
            Self::BadSnat => "bad_snat",
            Self::Skipped => "skipped",
            Self::NotBackup => "not_backup",
            Self::Conflict => "conflict",
            Self::QueueFull => "queue_full",
            Self::TxError => "tx_error",
        }
    }
}

/// Counters of one sync daemon (shared by its driver and the dataplane workers).
#[derive(Debug, Default)]
pub struct SyncCounters {
    pub messages_sent: AtomicU64,
    pub entries_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub entries_received: AtomicU64,
    /// Connections and templates put in this node's tables.
    pub installed: AtomicU64,
    /// Synchronised connections a worker took over with a packet (after a takeover).
    pub adopted: AtomicU64,
    pub resync_requests_sent: AtomicU64,
    pub resync_requests_received: AtomicU64,
    drops: [AtomicU64; SyncDrop::ALL.len()],
}

impl SyncCounters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn drop_n(&self, r: SyncDrop, n: u64) {
        self.drops[r as usize].fetch_add(n, Relaxed);
    }

    pub fn dropped(&self, r: SyncDrop) -> u64 {
        self.drops[r as usize].load(Relaxed)
    }

    pub fn snapshot(&self) -> SyncSnapshot {
        let l = |c: &AtomicU64| c.load(Relaxed);
        SyncSnapshot {
            messages_sent: l(&self.messages_sent),
            entries_sent: l(&self.entries_sent),
            bytes_sent: l(&self.bytes_sent),
            messages_received: l(&self.messages_received),
            entries_received: l(&self.entries_received),
            installed: l(&self.installed),
            adopted: l(&self.adopted),
            resync_requests_sent: l(&self.resync_requests_sent),
            resync_requests_received: l(&self.resync_requests_received),
            dropped: SyncDrop::ALL
                .iter()
                .map(|&r| (r.name(), self.dropped(r)))
                .filter(|&(_, n)| n > 0)
                .collect(),
        }
    }
}

/// The counters at one moment, for the dumps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncSnapshot {
    pub messages_sent: u64,
    pub entries_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub entries_received: u64,
    pub installed: u64,
    pub adopted: u64,
    pub resync_requests_sent: u64,
    pub resync_requests_received: u64,
    /// Non-zero drop counters by reason name.
    pub dropped: BTreeMap<&'static str, u64>,
}
