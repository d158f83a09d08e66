//! One worker's packet logic, without sockets: a frame and the time go in, a
//! verdict comes out (send this frame out of that interface, drop, or leave it
//! to the kernel). The worker thread owns an [`Engine`] and its rings.

use std::collections::{HashMap, HashSet};

use arc_swap::ArcSwap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use crate::conntrack::{Adopted, Conn, ConnRow, ConnState, DestRef, PageCursor, TcpState};
use crate::conntrack::{ConnTable, Dir, Evicted, NewConn, Packet, Timeouts, Touched};
use crate::flow::{FlowHashBuilder, FlowKey};
use crate::persist::{PersistKey, PersistTable};
use crate::pool::DestStats;
use crate::service::SharedTable;
use crate::spec::{ForwardingMethod, Protocol, ServiceKey};
use crate::stats::Writer;
use crate::sync::install::SyncedConn;
use crate::sync::send::{self, Template};
use crate::sync::table::SyncedConns;
use crate::sync::wire::Entry;
use crate::sync::{SyncCounters, SyncDrop};
use crate::time::Millis;

use super::counters::{Counters, DropReason};
use super::nat::{Binding, NatMap};
use super::neigh::{Hop, Iface, Neighbours};
use super::wire::{self, IpFrame, Mac, IPPROTO_TCP, IPPROTO_UDP};

/// How long a first fragment's decision waits for the other fragments.
const FRAG_TTL: Millis = 5_000;
/// Most remembered fragmented datagrams per worker.
const FRAG_MAX: usize = 4096;

/// State every worker shares.
#[derive(Debug)]
pub struct Shared {
    pub table: Arc<SharedTable>,
    pub persist: Arc<PersistTable>,
    pub nat: NatMap,
    pub neigh: Neighbours,
    /// The "only while Master" switch, for every service at once.
    pub forwarding: AtomicBool,
    /// Addresses whose services stand by (their VRRP instance is not Master) while
    /// `forwarding` is on; empty unless the owner gates services one by one.
    pub parked: ArcSwap<HashSet<IpAddr>>,
    pub ifaces: Vec<Iface>,
    /// One-arm NAT source ports (keep them outside the kernel's ephemeral range).
    pub snat_ports: RangeInclusive<u16>,
    /// One-arm NAT source addresses to prefer (with their prefix length): addresses VRRP
    /// moves with the Master, so real servers' replies reach whichever node forwards.
    pub snat_sources: Vec<(IpAddr, u8)>,
    /// IPVS's `sloppy_tcp`: a TCP packet other than a SYN may start a connection. Off (as
    /// IPVS's default), a segment of a connection nobody here knows is answered with a
    /// reset, as the stack of an IPVS director answers it.
    pub sloppy_tcp: bool,
    /// Connection synchronisation with the other node of the pair.
    pub sync: SyncShared,
}

/// What the dataplane workers and the sync driver share.
#[derive(Debug)]
pub struct SyncShared {
    /// Workers send what they track (this node is the sync Master).
    pub master: AtomicBool,
    /// Connections synchronised from the other node, until a worker takes them over.
    pub synced: SyncedConns,
    pub counters: Arc<SyncCounters>,
    /// Bumped when the Backup asks for the whole table: every worker sends all it tracks.
    pub dump: AtomicU64,
    /// Bumped when this node stops forwarding for the pair: workers let their flows go
    /// (the other node is now their owner and syncs them back).
    pub release: AtomicU64,
}

impl Default for SyncShared {
    fn default() -> Self {
        Self {
            master: AtomicBool::new(false),
            synced: SyncedConns::new(1 << 20),
            counters: Arc::default(),
            dump: AtomicU64::new(0),
            release: AtomicU64::new(0),
        }
    }
}

impl Shared {
    /// State for workers forwarding `table` on `ifaces`, forwarding switched `on`, nothing
    /// parked, no NAT binding or neighbour known yet.
    pub fn new(
        table: Arc<SharedTable>,
        persist: Arc<PersistTable>,
        ifaces: Vec<Iface>,
        snat_ports: RangeInclusive<u16>,
        on: bool,
    ) -> Self {
        Self {
            table,
            persist,
            nat: NatMap::default(),
            neigh: Neighbours::default(),
            forwarding: AtomicBool::new(on),
            parked: Default::default(),
            ifaces,
            snat_ports,
            snat_sources: Vec::new(),
            sloppy_tcp: false,
            sync: SyncShared::default(),
        }
    }

    /// The next hop towards a NAT connection's client: as its first packet came, or (a
    /// connection synchronised from the other node) by route and neighbour.
    fn client_hop(&self, b: &Binding) -> Option<(Mac, i32)> {
        b.client
            .or_else(|| self.neigh.get(b.fwd.src).map(|h| (h.mac, h.ifindex)))
    }

    /// The one-arm NAT source towards real server `rip`: a preferred (moving) address of
    /// its subnet or of our address's there, else our address on the way.
    fn snat_source(&self, rip: IpAddr, ours: IpAddr) -> IpAddr {
        self.snat_sources
            .iter()
            .find(|&&(a, plen)| {
                a.is_ipv4() == rip.is_ipv4()
                    && (super::neigh::same_subnet(a, rip, plen)
                        || super::neigh::same_subnet(a, ours, plen))
            })
            .map_or(ours, |&(a, _)| a)
    }

    /// Whether flows to virtual address `vip` are forwarded now.
    pub fn forwards(&self, vip: IpAddr) -> bool {
        if !self.forwarding.load(Relaxed) {
            return false;
        }
        let parked = self.parked.load();
        parked.is_empty() || !parked.contains(&vip)
    }

    fn iface_mac(&self, ifindex: i32) -> Mac {
        self.ifaces
            .iter()
            .find(|i| i.index == ifindex)
            .map(|i| i.mac)
            .unwrap_or_default()
    }
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// Not ours: the kernel handles it.
    Pass,
    Drop(DropReason),
    /// Send the (rewritten in place) frame out of this interface.
    Send(i32),
    /// Send [`Engine::out`] out of this interface.
    SendBuf(i32),
    /// Send each [`Engine::spans`] of [`Engine::out`] (fragments) out of this interface.
    SendSpans(i32),
    /// An ICMP error for a flow another worker may own: offer it to them.
    Foreign,
}

/// The rewrite a flow's packets (and their fragments) get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Dr {
        rip: IpAddr,
    },
    Tun {
        rip: IpAddr,
    },
    Nat {
        rip: IpAddr,
        rport: u16,
        snat: Option<(IpAddr, u16)>,
    },
    Reply {
        vip: IpAddr,
        vport: u16,
        client: Option<(IpAddr, u16)>,
        mac: Mac,
        ifindex: i32,
    },
}

/// (source, destination, identification, protocol) of a fragmented datagram.
type FragKey = (IpAddr, IpAddr, u32, u8);

/// A worker's connection shard and scratch space.
#[derive(Debug)]
pub struct Engine {
    sh: Arc<Shared>,
    pub counters: Arc<Counters>,
    worker: u32,
    workers: u32,
    /// This worker's slot in the traffic counters.
    writer: Writer,
    conns: ConnTable,
    /// NAT bindings of the connections this worker owns.
    local: HashMap<FlowKey, Arc<Binding>, FlowHashBuilder>,
    frags: HashMap<FragKey, (Plan, Millis)>,
    next_port: u32,
    /// Frames built rather than rewritten (TUN, ICMP answers).
    pub out: Vec<u8>,
    /// Frames in `out` for [`Out::SendSpans`].
    pub spans: Vec<(usize, usize)>,
    big: Vec<u8>,
    timeouts: Timeouts,
    /// Entries for the sync driver, when the pair synchronises connections.
    sync_tx: Option<SyncSender<Entry>>,
    /// The last full-table request and release this worker served.
    seen: (u64, u64),
}

impl Engine {
    pub fn new(
        sh: Arc<Shared>,
        worker: u32,
        workers: u32,
        capacity: usize,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            sh,
            counters: Arc::default(),
            worker,
            workers: workers.max(1),
            writer: Writer::new(worker, workers.max(1)),
            conns: ConnTable::new(capacity, timeouts),
            local: HashMap::default(),
            frags: HashMap::new(),
            next_port: 0,
            out: Vec::with_capacity(9216),
            spans: Vec::new(),
            big: Vec::new(),
            timeouts,
            sync_tx: None,
            seen: (0, 0),
        }
    }

    /// Sends this worker's connections to the sync driver (the pair synchronises them).
    pub fn set_sync_sender(&mut self, tx: SyncSender<Entry>) {
        self.seen = (
            self.sh.sync.dump.load(Relaxed),
            self.sh.sync.release.load(Relaxed),
        );
        self.sync_tx = Some(tx);
    }

    #[inline]
    fn syncing(&self) -> bool {
        self.sync_tx.is_some() && self.sh.sync.master.load(Relaxed)
    }

    /// Connections this worker tracks.
    pub fn conns(&self) -> usize {
        self.conns.len()
    }

    /// A page of this worker's connection table (see [`ConnTable::page`]).
    pub fn page(
        &self,
        after: Option<PageCursor>,
        max: usize,
        now: Millis,
        out: &mut Vec<ConnRow>,
    ) -> Option<PageCursor> {
        self.conns.page(after, max, now, out)
    }

    /// Handles one received frame. `partial` says the transport checksum was
    /// left to offload (completed here before rewriting); `foreign` marks an
    /// ICMP error relayed by another worker (never relayed again).
    pub fn process(
        &mut self,
        frame: &mut [u8],
        ingress: i32,
        now: Millis,
        partial: bool,
        foreign: bool,
    ) -> Out {
        let Ok(f) = wire::parse(frame) else {
            return Out::Pass;
        };
        if f.unsupported_ext() {
            // Hop-by-hop, routing, destination options...: IPVS would not
            // look past them either. Others' (MLD, say) go to the kernel.
            return self.ours_or_pass(f.dst, DropReason::Ipv6ExtHeader);
        }
        if partial {
            wire::fill_l4_csum(frame, &f);
        } else if f.udp6_zero_csum(frame) {
            return self.ours_or_pass(f.dst, DropReason::Malformed);
        }
        if f.proto == f.icmp_proto() {
            return match wire::icmp_error(frame, &f) {
                Some(e) => self.icmp(frame, &f, &e.inner, now, foreign),
                None => Out::Pass,
            };
        }
        if foreign {
            return Out::Pass;
        }
        if f.frag_off != 0 {
            return self.fragment(frame, &f, ingress, now);
        }
        let Some((sport, dport)) = f.ports else {
            return Out::Pass;
        };
        let proto = if f.proto == IPPROTO_TCP {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        let pkt = f.tcp.map_or(Packet::Udp, Packet::Tcp);
        let key = FlowKey {
            proto,
            src: f.src,
            sport,
            dst: f.dst,
            dport,
        };
        let on = self.sh.forwards(key.dst);
        // IPVS's conn_reuse_mode 1: a SYN on a connection that is over (the client reused
        // its port) starts a new one, scheduled afresh.
        if let Packet::Tcp(t) = pkt {
            if t.syn && !t.ack {
                let over = self.conns.get(&key, now).is_some_and(|c| {
                    matches!(
                        c.state,
                        ConnState::Tcp(TcpState::TimeWait | TcpState::Close)
                    )
                });
                if let Some(c) = over.then(|| self.conns.remove(&key)).flatten() {
                    self.cleanup(key, c, now);
                }
            }
        }
        let syncing = self.syncing();
        let plan = match self.conns.touch_or_expire(&key, Dir::Input, pkt, now) {
            Touched::Live(c) => {
                if !on {
                    return Out::Drop(DropReason::Standby);
                }
                count_in(&c.dest, self.writer, frame.len());
                let (rip, method) = (c.dest.id.addr, c.dest.forwarding);
                if syncing && send::due(c, &self.timeouts) {
                    self.sync_out(&key, now);
                }
                match self.plan_for(&key, rip, method) {
                    Some(p) => Some(p),
                    None => return Out::Drop(DropReason::Unsupported),
                }
            }
            Touched::Expired(c) => {
                self.cleanup(key, c, now);
                None
            }
            Touched::Absent => None,
        };
        let plan = match plan {
            Some(p) => p,
            None => match self.new_flow(frame, key, pkt, ingress, now, on) {
                Ok(Some(p)) => p,
                Err(DropReason::NoConn) if !self.sh.sloppy_tcp => {
                    return self.reset(frame, ingress)
                }
                Err(r) => return Out::Drop(r),
                Ok(None) => match self.sh.nat.by_reply(&key) {
                    Some(b) => {
                        if !self.sh.forwards(b.fwd.dst) {
                            return Out::Drop(DropReason::Standby);
                        }
                        if let Packet::Tcp(t) = pkt {
                            if t.fin || t.rst {
                                b.server_closed.store(true, Relaxed);
                            }
                        }
                        if self.local.contains_key(&b.fwd) {
                            let due = self
                                .conns
                                .touch(&b.fwd, Dir::Output, pkt, now)
                                .is_some_and(|c| syncing && send::due(c, &self.timeouts));
                            if due {
                                self.sync_out(&b.fwd, now);
                            }
                        }
                        Counters::inc(&self.counters.replies);
                        let bytes = l3_len(frame.len());
                        b.dest.traffic.packet_out(self.writer, bytes);
                        b.service.packet_out(self.writer, bytes);
                        match self.sh.client_hop(&b) {
                            Some(hop) => reply_plan(&b, hop),
                            None => return Out::Drop(DropReason::NoNeigh),
                        }
                    }
                    None => return Out::Pass,
                },
            },
        };
        if f.more_frags {
            self.remember_frag(&f, plan, now);
        }
        self.apply(frame, &f, plan, ingress)
    }

    /// The rewrite for a tracked flow going to `rip` by `method` (copied out of the entry:
    /// no reference count is touched per packet).
    fn plan_for(&self, key: &FlowKey, rip: IpAddr, method: ForwardingMethod) -> Option<Plan> {
        Some(match method {
            ForwardingMethod::Dr => Plan::Dr { rip },
            ForwardingMethod::Tun(_) => Plan::Tun { rip },
            ForwardingMethod::Nat | ForwardingMethod::NatOneArm => {
                let b = self.local.get(key)?;
                Plan::Nat {
                    rip,
                    rport: b.rs.1,
                    snat: b.snat,
                }
            }
        })
    }

    fn new_flow(
        &mut self,
        frame: &[u8],
        key: FlowKey,
        pkt: Packet,
        ingress: i32,
        now: Millis,
        on: bool,
    ) -> Result<Option<Plan>, DropReason> {
        let table = self.sh.table.load();
        let Some(svc) = table.lookup(key.proto, key.dst, key.dport, None) else {
            return Ok(None);
        };
        if !on {
            return Err(DropReason::Standby);
        }
        // A connection the other node forwarded until the takeover: forward it as it did
        // (unless it is over and the client starts a new one on its port, conn_reuse_mode).
        if let Some(s) = self.sh.sync.synced.take(&key) {
            let reused = matches!(pkt, Packet::Tcp(t) if t.syn && !t.ack)
                && matches!(
                    s.state,
                    ConnState::Tcp(TcpState::TimeWait | TcpState::Close)
                );
            if s.expires > now && !reused {
                drop(table);
                if let Some(p) = self.adopt(s, pkt, now) {
                    return Ok(Some(p));
                }
                return self.new_flow(frame, key, pkt, ingress, now, on);
            }
            release_synced(&self.sh, &s);
        }
        // A reset never starts a connection; without sloppy_tcp only a SYN does (IPVS).
        if let Packet::Tcp(t) = pkt {
            let starts = if self.sh.sloppy_tcp {
                t.syn || t.ack || t.fin
            } else {
                t.syn
            };
            if t.rst || !starts {
                return Err(DropReason::NoConn);
            }
        }
        let Some(choice) = svc.schedule(&key, now, &self.sh.persist) else {
            return Err(DropReason::NoServer);
        };
        let rs = choice.server;
        let timeout = svc.spec.persistence_timeout.unwrap_or(0) as Millis * 1000;
        let release = |sh: &Shared| {
            if let Some(k) = &choice.persist {
                sh.persist.release(k, timeout, now);
            }
        };
        // One family end to end (IPVS's mixed-family tunnels are not done).
        let rip = rs.id.addr;
        if rip.is_ipv4() != key.dst.is_ipv4() {
            release(&self.sh);
            return Err(DropReason::Unsupported);
        }
        let rport = rs.id.port.unwrap_or(key.dport);
        let (plan, binding) = match rs.forwarding {
            ForwardingMethod::Dr => (Plan::Dr { rip }, None),
            ForwardingMethod::Tun(_) => (Plan::Tun { rip }, None),
            m @ (ForwardingMethod::Nat | ForwardingMethod::NatOneArm) => {
                let snat = if m == ForwardingMethod::NatOneArm {
                    let Some(hop) = self.sh.neigh.get(rip) else {
                        release(&self.sh);
                        return Err(DropReason::NoNeigh);
                    };
                    let src = self.sh.snat_source(rip, hop.src_ip);
                    match self.alloc_port(key.proto, rip, rport, src, now) {
                        Some(p) => Some((src, p)),
                        None => {
                            release(&self.sh);
                            return Err(DropReason::PortsExhausted);
                        }
                    }
                } else {
                    None
                };
                let reply = match snat {
                    Some((ip, p)) => FlowKey {
                        proto: key.proto,
                        src: rip,
                        sport: rport,
                        dst: ip,
                        dport: p,
                    },
                    None => FlowKey {
                        proto: key.proto,
                        src: rip,
                        sport: rport,
                        dst: key.src,
                        dport: key.sport,
                    },
                };
                let b = Arc::new(Binding {
                    fwd: key,
                    reply,
                    rs: (rip, rport),
                    snat,
                    client: Some((wire::src_mac(frame), ingress)),
                    server_closed: AtomicBool::new(false),
                    dest: rs.stats.clone(),
                    service: rs.service.clone(),
                });
                if !self.sh.nat.insert(b.clone()) {
                    release(&self.sh);
                    return Err(DropReason::PortsExhausted);
                }
                (Plan::Nat { rip, rport, snat }, Some(b))
            }
        };
        rs.stats.traffic.conn(self.writer);
        rs.service.conn(self.writer);
        let new = NewConn {
            dest: DestRef::from(rs),
            first: pkt,
            reply: binding.as_ref().map(|b| b.reply),
            persist: choice.persist,
        };
        drop(table);
        let mut evicted = Vec::new();
        let c = self.conns.insert(key, new, now, |e| evicted.push(e));
        let due = self.sync_tx.is_some() && send::due(c, &self.timeouts);
        for Evicted(k, c) in evicted {
            self.cleanup(k, c, now);
        }
        if let Some(b) = binding {
            self.local.insert(key, b);
        }
        if due && self.syncing() {
            self.sync_out(&key, now);
        }
        Counters::inc(&self.counters.new_conns);
        if let Some(c) = self.conns.get(&key, now) {
            count_in(&c.dest, self.writer, frame.len());
        }
        Ok(Some(plan))
    }

    /// Takes over a synchronised connection: the same real server, rewrite and one-arm
    /// source as the node that forwarded it; `None` when that cannot be (its binding was
    /// lost), and the packet is handled as one of an unknown flow.
    fn adopt(&mut self, s: SyncedConn, pkt: Packet, now: Millis) -> Option<Plan> {
        let table = self.sh.table.load();
        let svc = table.services().iter().find(|x| x.id == s.svc)?.clone();
        drop(table);
        // A server the health checks took out still gets its connections (as IPVS without
        // expire_nodest_conn); its counters then live outside the pool.
        let dest = match svc.server(&s.dest) {
            Some(rs) => DestRef::from(rs),
            None => DestRef {
                id: s.dest,
                forwarding: s.forwarding,
                stats: Arc::new(DestStats::default()),
                service: svc.traffic.clone(),
            },
        };
        let binding = match s.nat {
            Some(n) => Some(self.sh.nat.by_fwd(&s.key).filter(|b| b.reply == n.reply)?),
            None => None,
        };
        let persist = s.persist.filter(|k| self.sh.persist.attach(k, s.dest, now));
        let a = Adopted {
            dest,
            state: s.state,
            expires: s.expires,
            no_output: s.no_output,
            reply: binding.as_ref().map(|b| b.reply),
            persist,
        };
        let mut evicted = Vec::new();
        self.conns.adopt(s.key, a, now, |e| evicted.push(e));
        for Evicted(k, c) in evicted {
            self.cleanup(k, c, now);
        }
        if let Some(b) = binding {
            self.local.insert(s.key, b);
        }
        // This packet moves it on like any other of the flow.
        let _ = self.conns.touch(&s.key, Dir::Input, pkt, now);
        SyncCounters::add(&self.sh.sync.counters.adopted, 1);
        let d = &self.conns.get(&s.key, now)?.dest;
        let (rip, method) = (d.id.addr, d.forwarding);
        self.plan_for(&s.key, rip, method)
    }

    /// Hands connection `key` (and its persistence template) to the sync driver.
    fn sync_out(&mut self, key: &FlowKey, now: Millis) {
        let Some(tx) = &self.sync_tx else { return };
        let Some(c) = self.conns.get(key, now) else {
            return;
        };
        let snat = self.local.get(key).and_then(|b| b.snat);
        let entry = send::conn_entry(key, c, snat, now);
        let tpl = c.persist.and_then(|pk| template_of(&self.sh, pk, key, now));
        for e in std::iter::once(entry).chain(tpl) {
            if let Err(TrySendError::Full(_)) = tx.try_send(e) {
                self.sh.sync.counters.drop_n(SyncDrop::QueueFull, 1);
            }
        }
        self.conns.mark_synced(key);
    }

    /// Serves a full-table request, and lets go of this worker's flows when the node stops
    /// forwarding for the pair (from the housekeeping tick).
    fn sync_tick(&mut self, now: Millis) {
        if self.sync_tx.is_none() {
            return;
        }
        let (dump, release) = (
            self.sh.sync.dump.load(Relaxed),
            self.sh.sync.release.load(Relaxed),
        );
        if release != self.seen.1 {
            self.seen.1 = release;
            let mut gone = Vec::new();
            self.conns.drain(|k, c| gone.push((k, c)));
            for (k, c) in gone {
                self.cleanup(k, c, now);
            }
        }
        if dump != self.seen.0 {
            self.seen.0 = dump;
            if self.syncing() {
                let keys: Vec<FlowKey> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.expires > now)
                    .map(|(k, _)| *k)
                    .collect();
                for k in keys {
                    self.sync_out(&k, now);
                }
            }
        }
    }

    /// A TCP segment of a connection nobody here knows: answered with a reset, as the stack
    /// of an IPVS director answers it (see [`Shared::sloppy_tcp`]).
    fn reset(&mut self, frame: &[u8], ingress: i32) -> Out {
        self.counters.count_drop(DropReason::NoConn);
        let Ok(f) = wire::parse(frame) else {
            return Out::Drop(DropReason::NoConn);
        };
        if f.tcp.is_none_or(|t| t.rst) {
            return Out::Drop(DropReason::NoConn);
        }
        wire::tcp_reset(frame, &f, &mut self.out);
        if self.out.is_empty() {
            return Out::Drop(DropReason::NoConn);
        }
        Out::SendBuf(ingress)
    }

    /// A one-arm source port from this worker's share of the range: a free
    /// one, else one held by a connection of ours that is over (TIME_WAIT,
    /// CLOSE, expired, or FINs seen from both sides), which is then dropped:
    /// with IPVS's 120 s TIME_WAIT
    /// the range would otherwise cap new connections per real server at
    /// about range/120 per second.
    fn alloc_port(
        &mut self,
        proto: Protocol,
        rip: IpAddr,
        rport: u16,
        lip: IpAddr,
        now: Millis,
    ) -> Option<u16> {
        let (lo, hi) = (
            *self.sh.snat_ports.start() as u32,
            *self.sh.snat_ports.end() as u32,
        );
        let per = (hi + 1).saturating_sub(lo) / self.workers;
        if per == 0 {
            return None;
        }
        let reply = |p: u16| FlowKey {
            proto,
            src: rip,
            sport: rport,
            dst: lip,
            dport: p,
        };
        let probes = per.min(512);
        let start = self.next_port;
        let port = |k: u32| (lo + self.worker + (k % per) * self.workers) as u16;
        for i in 0..probes {
            let p = port(start.wrapping_add(i));
            if self.sh.nat.reply_free(&reply(p)) {
                self.next_port = start.wrapping_add(i + 1);
                return Some(p);
            }
        }
        for i in 0..probes {
            let p = port(start.wrapping_add(i));
            let Some(b) = self.sh.nat.by_reply(&reply(p)) else {
                continue;
            };
            // Only a binding of this worker's own connections: one synchronised from the
            // other node (waiting, or taken over by another worker) is not ours to end.
            if !self.local.get(&b.fwd).is_some_and(|x| Arc::ptr_eq(x, &b)) {
                continue;
            }
            use TcpState::{CloseWait, FinWait, LastAck};
            let both_closed = b.server_closed.load(Relaxed);
            let over = match self.conns.get(&b.fwd, now).map(|c| c.state) {
                None => true,
                Some(ConnState::Tcp(TcpState::TimeWait | TcpState::Close)) => true,
                Some(ConnState::Tcp(FinWait | CloseWait | LastAck)) => both_closed,
                Some(_) => false,
            };
            if over {
                if let Some(c) = self.conns.remove(&b.fwd) {
                    self.cleanup(b.fwd, c, now);
                } else {
                    self.sh.nat.remove(&b);
                }
                self.next_port = start.wrapping_add(i + 1);
                return Some(p);
            }
        }
        None
    }

    /// Releases what a removed connection held.
    fn cleanup(&mut self, key: FlowKey, c: Conn, now: Millis) {
        if let Some(pk) = c.persist {
            let t = self
                .sh
                .table
                .load()
                .services()
                .iter()
                .find(|s| s.id == pk.svc)
                .and_then(|s| s.spec.persistence_timeout)
                .unwrap_or(0) as Millis
                * 1000;
            self.sh.persist.release(&pk, t, now);
        }
        if let Some(b) = self.local.remove(&key) {
            self.sh.nat.remove(&b);
        }
    }

    /// Periodic housekeeping: expired connections and fragment decisions, and the sync
    /// requests of the pair.
    pub fn expire(&mut self, now: Millis) -> usize {
        self.sync_tick(now);
        let mut gone = Vec::new();
        self.conns.expire(now, |k, c| gone.push((k, c)));
        let n = gone.len();
        for (k, c) in gone {
            self.cleanup(k, c, now);
        }
        self.frags.retain(|_, (_, t)| *t > now);
        n
    }

    fn remember_frag(&mut self, f: &IpFrame, plan: Plan, now: Millis) {
        if self.frags.len() >= FRAG_MAX {
            self.frags.retain(|_, (_, t)| *t > now);
            if self.frags.len() >= FRAG_MAX {
                return;
            }
        }
        self.frags
            .insert((f.src, f.dst, f.id, f.proto), (plan, now + FRAG_TTL));
    }

    /// Non-first fragments carry no ports: they follow their first fragment's
    /// decision. The kernel's fanout hash ignores ports for every fragment,
    /// so all fragments of a datagram reach the same worker.
    fn fragment(&mut self, frame: &mut [u8], f: &IpFrame, ingress: i32, now: Millis) -> Out {
        if let Some(&(plan, t)) = self.frags.get(&(f.src, f.dst, f.id, f.proto)) {
            if t > now {
                if !self.sh.forwards(f.dst) {
                    return Out::Drop(DropReason::Standby);
                }
                Counters::inc(&self.counters.frags);
                return self.apply(frame, f, plan, ingress);
            }
        }
        self.ours_or_pass(f.dst, DropReason::FragUnknown)
    }

    /// Drops (for `why`) a packet to one of our virtual addresses that we
    /// do not forward, passes anything else to the kernel.
    fn ours_or_pass(&self, dst: IpAddr, why: DropReason) -> Out {
        let ours = self
            .sh
            .table
            .load()
            .services()
            .iter()
            .any(|s| matches!(s.spec.key, ServiceKey::Addr { addr, .. } if addr == dst));
        if ours {
            Out::Drop(why)
        } else {
            Out::Pass
        }
    }

    /// ICMP errors quoting a tracked flow: towards the real server (about a
    /// packet sent to the client) or towards the client (about a packet we
    /// forwarded to a real server, NAT).
    fn icmp(
        &mut self,
        frame: &mut [u8],
        f: &IpFrame,
        inner: &IpFrame,
        now: Millis,
        foreign: bool,
    ) -> Out {
        let Some((isport, idport)) = inner.ports else {
            return Out::Pass;
        };
        let proto = match inner.proto {
            IPPROTO_TCP => Protocol::Tcp,
            IPPROTO_UDP => Protocol::Udp,
            _ => return Out::Pass,
        };
        // The quoted packet reversed: a reply key (NAT, towards the client)
        // or a forward key (towards the real server).
        let rev = FlowKey {
            proto,
            src: inner.dst,
            sport: idport,
            dst: inner.src,
            dport: isport,
        };
        if let Some(b) = self.sh.nat.by_reply(&rev) {
            if !self.sh.forwards(b.fwd.dst) {
                return Out::Drop(DropReason::Standby);
            }
            let (vip, client) = (b.fwd.dst, b.fwd.src);
            if f.src == b.rs.0 {
                wire::set_addr(frame, f, true, vip);
            }
            if b.snat.is_some() {
                wire::set_addr(frame, f, false, client);
                wire::set_addr(frame, inner, true, client);
                wire::set_port(frame, inner, true, b.fwd.sport);
            }
            wire::set_addr(frame, inner, false, vip);
            wire::set_port(frame, inner, false, b.fwd.dport);
            wire::fix_icmp_csum(frame, f);
            let Some((mac, ifindex)) = self.sh.client_hop(&b) else {
                return Out::Drop(DropReason::NoNeigh);
            };
            wire::set_macs(frame, mac, self.sh.iface_mac(ifindex));
            Counters::inc(&self.counters.icmp);
            return Out::Send(ifindex);
        }
        let dest = self.conns.get(&rev, now).map(|c| c.dest.clone());
        let binding = self
            .local
            .get(&rev)
            .cloned()
            .or_else(|| self.sh.nat.by_fwd(&rev));
        if dest.is_some() || binding.is_some() {
            if !self.sh.forwards(rev.dst) {
                return Out::Drop(DropReason::Standby);
            }
            Counters::inc(&self.counters.icmp);
            if let Some(b) = binding {
                let (rip, rport) = b.rs;
                wire::set_addr(frame, f, false, rip);
                wire::set_addr(frame, inner, true, rip);
                wire::set_port(frame, inner, true, rport);
                if let Some((ip, p)) = b.snat {
                    wire::set_addr(frame, inner, false, ip);
                    wire::set_port(frame, inner, false, p);
                }
                wire::fix_icmp_csum(frame, f);
                let Some(h) = self.sh.neigh.get(rip) else {
                    return Out::Drop(DropReason::NoNeigh);
                };
                wire::set_macs(frame, h.mac, h.src_mac);
                return Out::Send(h.ifindex);
            }
            let d = dest.expect("checked");
            let Some(plan) = self.plan_for(&rev, d.id.addr, d.forwarding) else {
                return Out::Drop(DropReason::Unsupported);
            };
            return self.apply(frame, f, plan, 0);
        }
        if foreign {
            return Out::Pass;
        }
        let ours = self
            .sh
            .table
            .load()
            .lookup(proto, rev.dst, rev.dport, None)
            .is_some();
        match (ours, self.workers > 1) {
            (true, true) => Out::Foreign,
            (true, false) => Out::Drop(DropReason::IcmpUntracked),
            (false, _) => Out::Pass,
        }
    }

    /// IP-in-IP (RFC 2003), as IPVS tunnels IPv4 services.
    fn tun4(
        &mut self,
        frame: &[u8],
        f: &IpFrame,
        rip: Ipv4Addr,
        src: Ipv4Addr,
        h: Hop,
        ingress: i32,
    ) -> Out {
        if f.end - f.ip + 20 > h.mtu as usize {
            if !f.dont_frag || f.proto == wire::IPPROTO_ICMP {
                // Fragment the outer datagram (RFC 2003 §5.1).
                wire::encap_ipip(frame, f, src, rip, &mut self.big);
                wire::set_macs(&mut self.big, h.mac, h.src_mac);
                self.out.clear();
                self.spans.clear();
                wire::fragment(&self.big, h.mtu, &mut self.out, &mut self.spans);
                Counters::inc(&self.counters.frags);
                return Out::SendSpans(h.ifindex);
            }
            // RFC 1191: tell the sender the path MTU through the tunnel.
            let IpAddr::V4(vip) = f.dst else {
                return Out::Drop(DropReason::Unsupported);
            };
            wire::frag_needed(frame, f, vip, h.mtu - 20, &mut self.out);
            self.counters.count_drop(DropReason::TooBig);
            return Out::SendBuf(ingress);
        }
        wire::encap_ipip(frame, f, src, rip, &mut self.out);
        wire::set_macs(&mut self.out, h.mac, h.src_mac);
        Out::SendBuf(h.ifindex)
    }

    /// IPv6-in-IPv6 (RFC 2473), as IPVS tunnels IPv6 services. IPv6 is
    /// never fragmented on the way: too big is answered with Packet Too Big
    /// (MTU − 40, at least 1280), except for ICMPv6 errors (never answered).
    fn tun6(
        &mut self,
        frame: &[u8],
        f: &IpFrame,
        rip: Ipv6Addr,
        src: Ipv6Addr,
        h: Hop,
        ingress: i32,
    ) -> Out {
        if f.end - f.ip + 40 > h.mtu as usize {
            self.counters.count_drop(DropReason::TooBig);
            let IpAddr::V6(vip) = f.dst else {
                return Out::Drop(DropReason::Unsupported);
            };
            if f.proto == wire::IPPROTO_ICMPV6 {
                return Out::Drop(DropReason::TooBig);
            }
            let mtu = (h.mtu as u32)
                .saturating_sub(40)
                .max(wire::IPV6_MIN_MTU as u32);
            wire::packet_too_big(frame, f, vip, mtu, &mut self.out);
            return Out::SendBuf(ingress);
        }
        wire::encap_ip6ip6(frame, f, src, rip, &mut self.out);
        wire::set_macs(&mut self.out, h.mac, h.src_mac);
        Out::SendBuf(h.ifindex)
    }

    fn apply(&mut self, frame: &mut [u8], f: &IpFrame, plan: Plan, ingress: i32) -> Out {
        match plan {
            Plan::Dr { rip } => {
                let Some(h) = self.sh.neigh.get(rip) else {
                    return Out::Drop(DropReason::NoNeigh);
                };
                wire::set_macs(frame, h.mac, h.src_mac);
                Out::Send(h.ifindex)
            }
            Plan::Tun { rip } => {
                let Some(h) = self.sh.neigh.get(rip) else {
                    return Out::Drop(DropReason::NoNeigh);
                };
                match (rip, h.src_ip) {
                    (IpAddr::V4(rip), IpAddr::V4(src)) => self.tun4(frame, f, rip, src, h, ingress),
                    (IpAddr::V6(rip), IpAddr::V6(src)) => self.tun6(frame, f, rip, src, h, ingress),
                    _ => Out::Drop(DropReason::Unsupported),
                }
            }
            Plan::Nat { rip, rport, snat } => {
                let Some(h) = self.sh.neigh.get(rip) else {
                    return Out::Drop(DropReason::NoNeigh);
                };
                wire::set_addr(frame, f, false, rip);
                wire::set_port(frame, f, false, rport);
                if let Some((ip, p)) = snat {
                    wire::set_addr(frame, f, true, ip);
                    wire::set_port(frame, f, true, p);
                }
                wire::set_macs(frame, h.mac, h.src_mac);
                Out::Send(h.ifindex)
            }
            Plan::Reply {
                vip,
                vport,
                client,
                mac,
                ifindex,
            } => {
                wire::set_addr(frame, f, true, vip);
                wire::set_port(frame, f, true, vport);
                if let Some((c, p)) = client {
                    wire::set_addr(frame, f, false, c);
                    wire::set_port(frame, f, false, p);
                }
                wire::set_macs(frame, mac, self.sh.iface_mac(ifindex));
                Out::Send(ifindex)
            }
        }
    }
}

/// The IP length of an Ethernet frame of `frame_len` bytes (what IPVS counts in bytes).
#[inline]
fn l3_len(frame_len: usize) -> u64 {
    frame_len.saturating_sub(wire::ETH_HLEN) as u64
}

/// A client packet of a tracked connection, for its real server's and service's counters.
#[inline]
fn count_in(d: &DestRef, w: Writer, frame_len: usize) {
    let bytes = l3_len(frame_len);
    d.stats.traffic.packet_in(w, bytes);
    d.service.packet_in(w, bytes);
}

fn reply_plan(b: &Binding, (mac, ifindex): (Mac, i32)) -> Plan {
    Plan::Reply {
        vip: b.fwd.dst,
        vport: b.fwd.dport,
        client: b.snat.map(|_| (b.fwd.src, b.fwd.sport)),
        mac,
        ifindex,
    }
}

/// Releases what a synchronised connection reserved (its NAT binding) when it expires
/// without being taken over.
pub fn release_synced(sh: &Shared, s: &SyncedConn) {
    if let Some(n) = s.nat {
        if let Some(b) = sh.nat.by_fwd(&s.key).filter(|b| b.reply == n.reply) {
            sh.nat.remove(&b);
        }
    }
}

/// The template entry for the persistence template `pk` controlling connection `key`.
pub fn template_of(sh: &Shared, pk: PersistKey, key: &FlowKey, now: Millis) -> Option<Entry> {
    let v = sh.persist.entry(&pk, now)?;
    let table = sh.table.load();
    let svc = table.services().iter().find(|s| s.id == pk.svc)?;
    let vport = match &svc.spec.key {
        ServiceKey::Addr { port, .. } => *port,
        _ => Some(key.dport),
    };
    let forwarding = svc
        .server(&v.dest)
        .map_or(svc.spec.forwarding, |s| s.forwarding);
    Some(send::template_entry(
        &Template {
            proto: key.proto,
            client: key.src,
            granularity: svc.spec.persistence_granularity,
            vip: key.dst,
            vport,
            dest: v.dest,
            forwarding,
            expires: v.expires,
            controlled: v.controlled,
            timeout: svc.spec.persistence_timeout.unwrap_or(0),
        },
        now,
    ))
}

#[cfg(test)]
mod tests;
