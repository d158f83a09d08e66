//! Per-worker counters (one writer each, relaxed atomics) and their sum.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Why a packet addressed to a service (or a tracked reply) was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// Forwarding is switched off (this node is not Master).
    Standby,
    /// Truncated or inconsistent headers.
    Malformed,
    /// The scheduler found no available real server.
    NoServer,
    /// A TCP RST (or other packet) that cannot start a connection.
    NoConn,
    /// The real server's next hop is not resolved yet (ARP pending).
    NoNeigh,
    /// A non-first fragment whose first fragment was not seen.
    FragUnknown,
    /// An ICMP error about a flow no worker tracks.
    IcmpUntracked,
    /// TUN: too big for the tunnel and DF set (answered with "fragmentation needed").
    TooBig,
    /// TUN: too big for the tunnel, DF clear (kept for compatibility of the
    /// counter set; such packets are now sent as outer fragments).
    TooBigNoDf,
    /// One-arm NAT: no free source port towards that real server.
    PortsExhausted,
    /// SCTP, a real server of the other address family, or a method this
    /// dataplane does not implement.
    Unsupported,
    /// IPv6 with an extension header other than Fragment (hop-by-hop,
    /// routing, destination options, AH, ESP...) to a virtual address.
    Ipv6ExtHeader,
    /// The kernel refused the frame on transmit.
    TxError,
}

impl DropReason {
    pub const ALL: [DropReason; 13] = [
        Self::Standby,
        Self::Malformed,
        Self::NoServer,
        Self::NoConn,
        Self::NoNeigh,
        Self::FragUnknown,
        Self::IcmpUntracked,
        Self::TooBig,
        Self::TooBigNoDf,
        Self::PortsExhausted,
        Self::Unsupported,
        Self::Ipv6ExtHeader,
        Self::TxError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Standby => "standby",
            Self::Malformed => "malformed",
            Self::NoServer => "no_server",
            Self::NoConn => "no_conn",
            Self::NoNeigh => "no_neigh",
            Self::FragUnknown => "frag_unknown",
            Self::IcmpUntracked => "icmp_untracked",
            Self::TooBig => "too_big",
            Self::TooBigNoDf => "too_big_no_df",
            Self::PortsExhausted => "ports_exhausted",
            Self::Unsupported => "unsupported",
            Self::Ipv6ExtHeader => "ipv6_ext_header",
            Self::TxError => "tx_error",
        }
    }
}

/// One worker's counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// Frames left to the kernel (not for a service or tracked flow).
    pub passed: AtomicU64,
    pub new_conns: AtomicU64,
    /// NAT replies rewritten back to the VIP.
    pub replies: AtomicU64,
    /// ICMP errors translated or relayed for tracked flows.
    pub icmp: AtomicU64,
    /// Non-first fragments forwarded with their flow, and TUN packets sent
    /// as outer fragments.
    pub frags: AtomicU64,
    /// Kernel ring drops (PACKET_STATISTICS).
    pub ring_drops: AtomicU64,
    /// Frames larger than a ring slot: seen truncated, never forwarded.
    pub truncated: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

impl Counters {
    #[inline]
    pub fn inc(c: &AtomicU64) {
        // Single writer: a load and store is cheaper than a locked add.
        c.store(c.load(Relaxed) + 1, Relaxed);
    }

    #[inline]
    pub fn count_drop(&self, r: DropReason) {
        Self::inc(&self.drops[r as usize]);
    }

    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize].load(Relaxed)
    }
}

/// Sum over workers, for logs, tests and the bench.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    pub rx: u64,
    pub tx: u64,
    pub passed: u64,
    pub new_conns: u64,
    pub replies: u64,
    pub icmp: u64,
    pub frags: u64,
    pub ring_drops: u64,
    pub truncated: u64,
    /// Non-zero drop counters by reason name.
    pub dropped: BTreeMap<&'static str, u64>,
    /// The connection sync daemon's, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<crate::sync::SyncSnapshot>,
}

impl CounterSnapshot {
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Counters>) -> Self {
        let mut s = Self::default();
        for c in all {
            s.rx += c.rx.load(Relaxed);
            s.tx += c.tx.load(Relaxed);
            s.passed += c.passed.load(Relaxed);
            s.new_conns += c.new_conns.load(Relaxed);
            s.replies += c.replies.load(Relaxed);
            s.icmp += c.icmp.load(Relaxed);
            s.frags += c.frags.load(Relaxed);
            s.ring_drops += c.ring_drops.load(Relaxed);
            s.truncated += c.truncated.load(Relaxed);
            for r in DropReason::ALL {
                let n = c.dropped(r);
                if n > 0 {
                    *s.dropped.entry(r.name()).or_default() += n;
                }
            }
        }
        s
    }

    pub fn dropped(&self, r: DropReason) -> u64 {
        self.dropped.get(r.name()).copied().unwrap_or(0)
    }
}
