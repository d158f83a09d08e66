//! Connection table: client 5-tuple → real server, with IPVS's TCP state
//! machine and timeouts.
//!
//! One table per dataplane worker (no sharing, no locks): `&mut self`
//! everywhere. Time is an argument in milliseconds of any monotonic clock.
//! Expiry is lazy: a packet only rewrites the entry's deadline; the timer index
//! (ordered by deadline) is corrected when an old deadline comes due, so the
//! per-packet cost is one hash lookup.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use crate::flow::{FlowHashBuilder, FlowKey, TcpFlags};
use crate::persist::PersistKey;
use crate::pool::{DestId, DestStats, RealServer};
use crate::spec::ForwardingMethod;
use crate::stats::Traffic;
use crate::time::{secs, Millis};

/// IPVS's TCP connection states (ip_vs_proto_tcp.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    SynAck,
}

impl TcpState {
    /// In IPVS's numbering (ip_vs_proto_tcp.c), which the enum follows.
    pub const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state IPVS numbers `n` (a sync entry's state field).
    pub fn from_ipvs(n: u16) -> Option<Self> {
        Self::ALL.get(n as usize).copied()
    }
}

/// Connection state per protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Tcp(TcpState),
    Udp,
    /// SCTP is tracked coarsely: alive, or closing after ABORT/SHUTDOWN_COMPLETE.
    Sctp {
        closing: bool,
    },
}

/// Timeouts in seconds; `Default` is IPVS's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Indexed by `TcpState as usize`.
    pub tcp: [u32; 11],
    pub udp: u32,
    pub sctp: u32,
    pub sctp_closing: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            //     NONE ES   SS   SR  FW   TW   CL  CW  LA  LI   SA
            tcp: [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120],
            udp: 300,
            sctp: 900,
            sctp_closing: 10,
        }
    }
}

impl Timeouts {
    /// Timeout of a state, in milliseconds.
    pub fn of(&self, s: ConnState) -> Millis {
        let t = match s {
            ConnState::Tcp(t) => self.tcp[t as usize],
            ConnState::Udp => self.udp,
            ConnState::Sctp { closing: false } => self.sctp,
            ConnState::Sctp { closing: true } => self.sctp_closing,
        };
        secs(t)
    }
}

/// Packet direction relative to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client → virtual service.
    Input,
    /// Real server → client (seen only in NAT modes).
    Output,
}

/// What the dataplane saw in one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    Tcp(TcpFlags),
    Udp,
    Sctp { closing: bool },
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// IPVS's transition table, rows syn/fin/ack/rst, columns the current state
/// in `TcpState` order; one block per direction (input, output, input-only).
const TCP_NEXT: [[[TcpState; 11]; 4]; 3] = [
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// Next TCP state. `input_only` is set while no output packet has been seen
/// (DR/TUN, or NAT before the first reply). A packet without syn/fin/ack/rst
/// closes the entry, as in IPVS.
pub fn tcp_next(cur: TcpState, dir: Dir, input_only: bool, f: TcpFlags) -> TcpState {
    let row = if f.rst {
        3
    } else if f.syn {
        0
    } else if f.fin {
        1
    } else if f.ack {
        2
    } else {
        return CL;
    };
    let block = match dir {
        Dir::Output => 1,
        Dir::Input if input_only => 2,
        Dir::Input => 0,
    };
    TCP_NEXT[block][row][cur as usize]
}

impl TcpState {
    /// IPVS's name for the state (ip_vs_proto_tcp.c), as `ipvsadm -c` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Established => "ESTABLISHED",
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::FinWait => "FIN_WAIT",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::Listen => "LISTEN",
            Self::SynAck => "SYNACK",
        }
    }
}

impl ConnState {
    /// The state as IPVS names it (`UDP` for UDP entries).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp(t) => t.name(),
            Self::Udp => "UDP",
            Self::Sctp { closing: false } => "ESTABLISHED",
            Self::Sctp { closing: true } => "CLOSED",
        }
    }
}

/// Where [`ConnTable::page`] goes on from: a timer index position.
pub type PageCursor = (Millis, FlowKey);

/// One connection as a listing shows it (`ipvsadm -c`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConnRow {
    /// `TCP`, `UDP`, `SCTP`, or `IP` for a persistence template.
    pub proto: &'static str,
    pub client: (IpAddr, u16),
    pub virt: (IpAddr, u16),
    pub dest: (IpAddr, u16),
    pub state: &'static str,
    /// Time left before the entry expires.
    pub expires_ms: Millis,
}

impl ConnRow {
    fn of(key: &FlowKey, c: &Conn, now: Millis) -> Self {
        Self {
            proto: key.proto.name(),
            client: (key.src, key.sport),
            virt: (key.dst, key.dport),
            dest: (c.dest.id.addr, c.dest.id.port.unwrap_or(key.dport)),
            state: c.state.name(),
            expires_ms: c.expires.saturating_sub(now),
        }
    }
}

/// Where a tracked connection goes.
#[derive(Debug, Clone)]
pub struct DestRef {
    pub id: DestId,
    pub forwarding: ForwardingMethod,
    pub stats: Arc<DestStats>,
    /// The service's traffic counters.
    pub service: Arc<Traffic>,
}

impl Conn {
    /// No reply seen yet (IPVS's `NOOUTPUT`).
    pub fn no_output(&self) -> bool {
        self.no_output
    }
}

impl From<&RealServer> for DestRef {
    fn from(s: &RealServer) -> Self {
        Self {
            id: s.id,
            forwarding: s.forwarding,
            stats: s.stats.clone(),
            service: s.service.clone(),
        }
    }
}

/// One tracked connection.
#[derive(Debug, Clone)]
pub struct Conn {
    pub dest: DestRef,
    pub state: ConnState,
    pub expires: Millis,
    /// Reply-direction key (real server → client, after NAT), if indexed.
    pub reply: Option<FlowKey>,
    /// The persistence template controlling this connection, to release on removal.
    pub persist: Option<PersistKey>,
    /// What the pair's other node was last told (state and deadline), for
    /// [`crate::sync::send::due`]; `None` until it is told anything.
    pub synced: Option<(ConnState, Millis)>,
    no_output: bool,
    counted_active: bool,
    timer_at: Millis,
}

/// What a new connection is bound to.
#[derive(Debug, Clone)]
pub struct NewConn {
    pub dest: DestRef,
    /// The first (input) packet.
    pub first: Packet,
    /// Reply-direction key to index (NAT).
    pub reply: Option<FlowKey>,
    /// Persistence template controlling the connection.
    pub persist: Option<PersistKey>,
}

/// A connection the other node of the pair tracked, as [`ConnTable::adopt`] takes it.
#[derive(Debug, Clone)]
pub struct Adopted {
    pub dest: DestRef,
    pub state: ConnState,
    pub expires: Millis,
    /// No reply seen yet (IPVS's `NOOUTPUT`): the input-only transitions apply.
    pub no_output: bool,
    pub reply: Option<FlowKey>,
    pub persist: Option<PersistKey>,
}

/// Result of [`ConnTable::touch_or_expire`].
#[derive(Debug)]
pub enum Touched<'a> {
    Live(&'a Conn),
    /// The entry had expired and is now removed.
    Expired(Conn),
    Absent,
}

/// Why `insert` removed another entry.
#[derive(Debug)]
pub struct Evicted(pub FlowKey, pub Conn);

/// Per-worker connection table with bounded size.
#[derive(Debug)]
pub struct ConnTable {
    map: HashMap<FlowKey, Conn, FlowHashBuilder>,
    reply: HashMap<FlowKey, FlowKey, FlowHashBuilder>,
    timers: BTreeSet<(Millis, FlowKey)>,
    capacity: usize,
    timeouts: Timeouts,
}

impl ConnTable {
    pub fn new(capacity: usize, timeouts: Timeouts) -> Self {
        Self {
            map: HashMap::with_capacity_and_hasher(
                capacity.min(1 << 20),
                FlowHashBuilder::default(),
            ),
            reply: HashMap::default(),
            timers: BTreeSet::new(),
            capacity: capacity.max(1),
            timeouts,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Up to `max` live entries after `after` (in deadline order) appended to `out`, and the
    /// cursor to continue from (`None`: the end). A worker lists its table a page at a time
    /// between bursts, so a listing of a large table never stalls forwarding; entries that
    /// change meanwhile are seen once, in their state at the time of their page (as
    /// /proc/net/ip_vs_conn reads IPVS's table while it changes).
    pub fn page(
        &self,
        after: Option<PageCursor>,
        max: usize,
        now: Millis,
        out: &mut Vec<ConnRow>,
    ) -> Option<PageCursor> {
        use std::ops::Bound;
        let from = match after {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        let mut last = None;
        for (n, &(at, key)) in self.timers.range((from, Bound::Unbounded)).enumerate() {
            if n == max {
                return last;
            }
            last = Some((at, key));
            if let Some(c) = self.map.get(&key).filter(|c| c.expires > now) {
                out.push(ConnRow::of(&key, c, now));
            }
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Tracks a new connection whose first (input) packet is `new.first`, sent
    /// to `new.dest`. When the table is full, expired entries go first, then the one
    /// due soonest; the evicted entries are handed to `on_evict` (to release
    /// persistence templates). Replaces an existing entry for `key`.
    pub fn insert(
        &mut self,
        key: FlowKey,
        new: NewConn,
        now: Millis,
        mut on_evict: impl FnMut(Evicted),
    ) -> &Conn {
        let NewConn {
            dest,
            first,
            reply,
            persist,
        } = new;
        if let Some(old) = self.remove(&key) {
            on_evict(Evicted(key, old));
        }
        if self.map.len() >= self.capacity {
            self.expire(now, |k, c| on_evict(Evicted(k, c)));
        }
        while self.map.len() >= self.capacity {
            match self.pop_soonest() {
                Some((k, c)) => on_evict(Evicted(k, c)),
                None => break,
            }
        }
        let state = match first {
            Packet::Tcp(f) => ConnState::Tcp(tcp_next(TcpState::None, Dir::Input, true, f)),
            Packet::Udp => ConnState::Udp,
            Packet::Sctp { closing } => ConnState::Sctp { closing },
        };
        let active = state == ConnState::Tcp(TcpState::Established);
        dest.stats.bind(active);
        let expires = now + self.timeouts.of(state);
        if let Some(r) = reply {
            self.reply.insert(r, key);
        }
        self.timers.insert((expires, key));
        let conn = Conn {
            dest,
            state,
            expires,
            reply,
            persist,
            synced: None,
            no_output: true,
            counted_active: active,
            timer_at: expires,
        };
        self.map.entry(key).insert_entry(conn).into_mut()
    }

    /// Takes over a connection the other node of the pair tracked (connection sync): its
    /// state and deadline as synchronised, nothing recomputed. Eviction as for
    /// [`ConnTable::insert`].
    pub fn adopt(
        &mut self,
        key: FlowKey,
        a: Adopted,
        now: Millis,
        mut on_evict: impl FnMut(Evicted),
    ) -> &Conn {
        if let Some(old) = self.remove(&key) {
            on_evict(Evicted(key, old));
        }
        if self.map.len() >= self.capacity {
            self.expire(now, |k, c| on_evict(Evicted(k, c)));
        }
        while self.map.len() >= self.capacity {
            match self.pop_soonest() {
                Some((k, c)) => on_evict(Evicted(k, c)),
                None => break,
            }
        }
        let active = a.state == ConnState::Tcp(TcpState::Established);
        a.dest.stats.bind(active);
        if let Some(r) = a.reply {
            self.reply.insert(r, key);
        }
        self.timers.insert((a.expires, key));
        let conn = Conn {
            dest: a.dest,
            state: a.state,
            expires: a.expires,
            reply: a.reply,
            persist: a.persist,
            synced: Some((a.state, a.expires)),
            no_output: a.no_output,
            counted_active: active,
            timer_at: a.expires,
        };
        self.map.entry(key).insert_entry(conn).into_mut()
    }

    /// Every entry, live or not yet collected (for a full sync to the other node).
    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Conn)> {
        self.map.iter()
    }

    /// Records what the other node was told about `key`.
    pub fn mark_synced(&mut self, key: &FlowKey) {
        if let Some(c) = self.map.get_mut(key) {
            c.synced = Some((c.state, c.expires));
        }
    }

    /// Removes every entry, handing each to `f` (this node stops owning its flows).
    pub fn drain(&mut self, mut f: impl FnMut(FlowKey, Conn)) {
        let keys: Vec<FlowKey> = self.map.keys().copied().collect();
        for k in keys {
            if let Some(c) = self.remove(&k) {
                f(k, c);
            }
        }
    }

    /// The live entry for `key`, without touching it.
    pub fn get(&self, key: &FlowKey, now: Millis) -> Option<&Conn> {
        self.map.get(key).filter(|c| c.expires > now)
    }

    /// Forward key of the connection whose reply direction is `reply_key`.
    pub fn forward_key(&self, reply_key: &FlowKey) -> Option<FlowKey> {
        self.reply.get(reply_key).copied()
    }

    /// Like [`ConnTable::touch`], but an entry past its deadline is handed
    /// back (so the caller can release its persistence template and NAT
    /// binding) instead of being dropped silently.
    pub fn touch_or_expire(
        &mut self,
        key: &FlowKey,
        dir: Dir,
        pkt: Packet,
        now: Millis,
    ) -> Touched<'_> {
        match self.map.get(key) {
            None => Touched::Absent,
            Some(c) if c.expires <= now => match self.remove(key) {
                Some(c) => Touched::Expired(c),
                None => Touched::Absent,
            },
            Some(_) => match self.touch(key, dir, pkt, now) {
                Some(c) => Touched::Live(c),
                None => Touched::Absent,
            },
        }
    }

    /// A packet of a tracked flow (`key` is the client-side key in both
    /// directions): advances the state and re-arms the timeout. An entry
    /// already past its deadline is removed and `None` returned, so the caller
    /// schedules the packet as a new flow.
    pub fn touch(&mut self, key: &FlowKey, dir: Dir, pkt: Packet, now: Millis) -> Option<&Conn> {
        if self.map.get(key)?.expires <= now {
            self.remove(key);
            return None;
        }
        let c = self.map.get_mut(key)?;
        c.state = match (c.state, pkt) {
            (ConnState::Tcp(s), Packet::Tcp(f)) => {
                let input_only = c.no_output && dir == Dir::Input;
                if dir == Dir::Output {
                    c.no_output = false;
                }
                ConnState::Tcp(tcp_next(s, dir, input_only, f))
            }
            (
                ConnState::Sctp { closing },
                Packet::Sctp {
                    closing: now_closing,
                },
            ) => ConnState::Sctp {
                closing: closing || now_closing,
            },
            (s, _) => s,
        };
        let active = c.state == ConnState::Tcp(TcpState::Established);
        if active != c.counted_active {
            c.dest.stats.transfer(active);
            c.counted_active = active;
        }
        c.expires = now + self.timeouts.of(c.state);
        Some(c)
    }

    /// Removes every entry past its deadline, handing each to `f`; returns how
    /// many were removed.
    pub fn expire(&mut self, now: Millis, mut f: impl FnMut(FlowKey, Conn)) -> usize {
        let mut n = 0;
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(c) = self.map.get_mut(&key) else {
                continue;
            };
            if c.expires > now {
                c.timer_at = c.expires;
                self.timers.insert((c.expires, key));
            } else {
                c.timer_at = Millis::MAX; // already out of the index
                let c = self.remove(&key).expect("present");
                f(key, c);
                n += 1;
            }
        }
        n
    }

    /// Removes `key`, releasing its counters.
    pub fn remove(&mut self, key: &FlowKey) -> Option<Conn> {
        let c = self.map.remove(key)?;
        self.timers.remove(&(c.timer_at, *key));
        if let Some(r) = &c.reply {
            self.reply.remove(r);
        }
        c.dest.stats.unbind(c.counted_active);
        Some(c)
    }

    /// Evicts the entry with the earliest real deadline.
    fn pop_soonest(&mut self) -> Option<(FlowKey, Conn)> {
        for _ in 0..=self.map.len() {
            let (at, key) = self.timers.pop_first()?;
            let Some(c) = self.map.get_mut(&key) else {
                continue;
            };
            if c.expires > at {
                c.timer_at = c.expires;
                self.timers.insert((c.expires, key));
                continue;
            }
            c.timer_at = Millis::MAX;
            return self.remove(&key).map(|c| (key, c));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use crate::spec::Protocol;

    use super::*;
    use TcpState::None as NO;

    fn key(n: u16) -> FlowKey {
        FlowKey {
            proto: Protocol::Tcp,
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            sport: n,
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            dport: 80,
        }
    }

    fn dest() -> DestRef {
        DestRef::from(&RealServer::new(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            Some(80),
            1,
        ))
    }

    const S: Millis = 1000;

    fn nc(dest: DestRef, first: Packet, reply: Option<FlowKey>) -> NewConn {
        NewConn {
            dest,
            first,
            reply,
            persist: None,
        }
    }

    fn state(t: &ConnTable, k: u16, now: Millis) -> Option<ConnState> {
        t.get(&key(k), now).map(|c| c.state)
    }

    /// Paging visits every live entry once, whatever the page size, and skips expired ones.
    #[test]
    fn pages_cover_the_table_once() {
        let mut t = ConnTable::new(100, Timeouts::default());
        for n in 0..10u16 {
            let first = if n % 2 == 0 {
                Packet::Tcp(TcpFlags::SYN)
            } else {
                Packet::Udp
            };
            t.insert(key(n), nc(dest(), first, None), n as Millis * S, |_| {});
        }
        // The first SYN_RECV entry (inserted at 0 s, 60 s timeout) is gone at 61 s.
        let now = 61 * S;
        let mut rows = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            cursor = t.page(cursor, 3, now, &mut rows);
            pages += 1;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(pages, 4);
        let mut ports: Vec<u16> = rows.iter().map(|r| r.client.1).collect();
        ports.sort();
        assert_eq!(ports, (1..10).collect::<Vec<_>>());
        let r = rows.iter().find(|r| r.client.1 == 2).unwrap();
        assert_eq!((r.proto, r.state, r.expires_ms), ("TCP", "SYN_RECV", S));
        let u = rows.iter().find(|r| r.client.1 == 1).unwrap();
        assert_eq!((u.proto, u.state, u.dest.1), ("TCP", "UDP", 80));
    }

    #[test]
    fn default_timeouts_are_ipvs() {
        let t = Timeouts::default();
        assert_eq!(t.of(ConnState::Tcp(ES)), 900 * S);
        assert_eq!(t.of(ConnState::Tcp(SR)), 60 * S);
        assert_eq!(t.of(ConnState::Tcp(FW)), 120 * S);
        assert_eq!(t.of(ConnState::Tcp(TW)), 120 * S);
        assert_eq!(t.of(ConnState::Tcp(CL)), 10 * S);
        assert_eq!(t.of(ConnState::Tcp(CW)), 60 * S);
        assert_eq!(t.of(ConnState::Tcp(LA)), 30 * S);
        assert_eq!(t.of(ConnState::Tcp(NO)), 2 * S);
        assert_eq!(t.of(ConnState::Udp), 300 * S);
    }

    #[test]
    fn nat_handshake_and_close_with_exact_timeouts() {
        let mut t = ConnTable::new(16, Timeouts::default());
        let d = dest();
        let stats = d.stats.clone();
        let c = t.insert(key(1), nc(d, Packet::Tcp(TcpFlags::SYN), None), 0, |_| {});
        assert_eq!(c.state, ConnState::Tcp(SR));
        assert_eq!(c.expires, 60 * S);
        assert_eq!((stats.active(), stats.inactive()), (0, 1));
        // Server's SYN-ACK (output), client's ACK (input).
        t.touch(&key(1), Dir::Output, Packet::Tcp(TcpFlags::SYN_ACK), 5);
        assert_eq!(state(&t, 1, 5), Some(ConnState::Tcp(SR)));
        let c = t
            .touch(&key(1), Dir::Input, Packet::Tcp(TcpFlags::ACK), 10)
            .unwrap();
        assert_eq!(c.state, ConnState::Tcp(ES));
        assert_eq!(c.expires, 10 + 900 * S);
        assert_eq!((stats.active(), stats.inactive()), (1, 0));
        // Client FIN: close-wait (60 s); server FIN: time-wait... as IPVS input/output.
        let c = t
            .touch(&key(1), Dir::Input, Packet::Tcp(TcpFlags::FIN_ACK), 20)
            .unwrap();
        assert_eq!(c.state, ConnState::Tcp(CW));
        assert_eq!(c.expires, 20 + 60 * S);
        assert_eq!((stats.active(), stats.inactive()), (0, 1));
        let c = t
            .touch(&key(1), Dir::Output, Packet::Tcp(TcpFlags::FIN_ACK), 30)
            .unwrap();
        assert_eq!(c.state, ConnState::Tcp(TW));
        assert_eq!(c.expires, 30 + 120 * S);
        // Gone exactly at the deadline, not a millisecond before.
        assert_eq!(t.expire(30 + 120 * S - 1, |_, _| {}), 0);
        assert_eq!(t.expire(30 + 120 * S, |_, _| {}), 1);
        assert!(t.is_empty());
        assert_eq!((stats.active(), stats.inactive()), (0, 0));
    }

    #[test]
    fn dr_input_only_fin_is_fin_wait_and_rst_is_close() {
        let mut t = ConnTable::new(16, Timeouts::default());
        t.insert(
            key(1),
            nc(dest(), Packet::Tcp(TcpFlags::SYN), None),
            0,
            |_| {},
        );
        t.touch(&key(1), Dir::Input, Packet::Tcp(TcpFlags::ACK), 1);
        let c = t
            .touch(&key(1), Dir::Input, Packet::Tcp(TcpFlags::FIN_ACK), 2)
            .unwrap();
        assert_eq!(
            c.state,
            ConnState::Tcp(FW),
            "input-only table: ES --fin--> FIN_WAIT"
        );
        assert_eq!(c.expires, 2 + 120 * S);
        let c = t
            .touch(&key(1), Dir::Input, Packet::Tcp(TcpFlags::RST), 3)
            .unwrap();
        assert_eq!(c.state, ConnState::Tcp(CL));
        assert_eq!(c.expires, 3 + 10 * S);
    }

    #[test]
    fn udp_timeout_is_refreshed_by_traffic() {
        let mut t = ConnTable::new(16, Timeouts::default());
        let mut k = key(1);
        k.proto = Protocol::Udp;
        t.insert(k, nc(dest(), Packet::Udp, None), 0, |_| {});
        assert_eq!(t.get(&k, 0).unwrap().expires, 300 * S);
        t.touch(&k, Dir::Input, Packet::Udp, 200 * S);
        assert_eq!(t.expire(300 * S, |_, _| {}), 0, "refreshed at 200 s");
        assert!(t.get(&k, 499 * S).is_some());
        assert!(t.get(&k, 500 * S).is_none());
        assert_eq!(t.expire(500 * S, |_, _| {}), 1);
    }

    #[test]
    fn touch_or_expire_hands_back_expired_entries() {
        let mut t = ConnTable::new(16, Timeouts::default());
        let d = dest();
        let stats = d.stats.clone();
        t.insert(key(1), nc(d, Packet::Tcp(TcpFlags::SYN), None), 0, |_| {});
        assert!(matches!(
            t.touch_or_expire(&key(1), Dir::Input, Packet::Tcp(TcpFlags::ACK), 1),
            Touched::Live(c) if c.state == ConnState::Tcp(ES)
        ));
        assert!(matches!(
            t.touch_or_expire(&key(2), Dir::Input, Packet::Udp, 1),
            Touched::Absent
        ));
        let late = 1 + 900 * S;
        match t.touch_or_expire(&key(1), Dir::Input, Packet::Tcp(TcpFlags::ACK), late) {
            Touched::Expired(c) => assert_eq!(c.state, ConnState::Tcp(ES)),
            other => panic!("{other:?}"),
        }
        assert!(t.is_empty());
        assert_eq!((stats.active(), stats.inactive()), (0, 0));
    }

    #[test]
    fn touching_an_expired_entry_drops_it() {
        let mut t = ConnTable::new(16, Timeouts::default());
        t.insert(
            key(1),
            nc(dest(), Packet::Tcp(TcpFlags::SYN), None),
            0,
            |_| {},
        );
        assert!(t
            .touch(&key(1), Dir::Input, Packet::Tcp(TcpFlags::ACK), 60 * S)
            .is_none());
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_evicts_expired_then_soonest() {
        let mut t = ConnTable::new(3, Timeouts::default());
        let d = dest();
        let stats = d.stats.clone();
        for k in 1..=3 {
            t.insert(
                key(k),
                nc(d.clone(), Packet::Tcp(TcpFlags::SYN), None),
                k as Millis * S,
                |_| {},
            );
        }
        // Conn 1 would expire first (60 s after 1 s) but is established now.
        t.touch(&key(1), Dir::Input, Packet::Tcp(TcpFlags::ACK), 4 * S);
        let mut ev = vec![];
        t.insert(
            key(4),
            nc(d.clone(), Packet::Tcp(TcpFlags::SYN), None),
            5 * S,
            |e| ev.push(e.0.sport),
        );
        assert_eq!(ev, vec![2], "conn 2 was due soonest (62 s)");
        assert_eq!(t.len(), 3);
        // At 100 s, conns 3 and 4 have expired: both go before anything live.
        ev.clear();
        t.insert(
            key(5),
            nc(d.clone(), Packet::Tcp(TcpFlags::SYN), None),
            100 * S,
            |e| ev.push(e.0.sport),
        );
        ev.sort();
        assert_eq!(ev, vec![3, 4]);
        assert_eq!(t.len(), 2);
        assert!(t.get(&key(1), 100 * S).is_some());
        assert_eq!((stats.active(), stats.inactive()), (1, 1));
    }

    #[test]
    fn reply_index_finds_forward_key() {
        let mut t = ConnTable::new(4, Timeouts::default());
        let r = FlowKey {
            proto: Protocol::Tcp,
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            sport: 8080,
            dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            dport: 1,
        };
        t.insert(
            key(1),
            nc(dest(), Packet::Tcp(TcpFlags::SYN), Some(r)),
            0,
            |_| {},
        );
        assert_eq!(t.forward_key(&r), Some(key(1)));
        t.remove(&key(1));
        assert_eq!(t.forward_key(&r), None);
    }

    #[test]
    fn transitions_match_ipvs_table_samples() {
        // Input: ack on NONE closes (no state from a stray ack).
        assert_eq!(tcp_next(NO, Dir::Input, false, TcpFlags::ACK), CL);
        // Output: syn-ack on SYN_RECV stays SYN_RECV; output fin from ES → FIN_WAIT.
        assert_eq!(tcp_next(SR, Dir::Output, false, TcpFlags::SYN_ACK), SR);
        assert_eq!(tcp_next(ES, Dir::Output, false, TcpFlags::FIN_ACK), FW);
        // rst beats syn; no flags closes.
        let syn_rst = TcpFlags {
            syn: true,
            rst: true,
            ..Default::default()
        };
        assert_eq!(tcp_next(ES, Dir::Input, false, syn_rst), CL);
        assert_eq!(tcp_next(ES, Dir::Input, false, TcpFlags::default()), CL);
    }
}
