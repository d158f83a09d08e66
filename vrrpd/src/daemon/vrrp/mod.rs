//! The VRRP side of the daemon: every instance on one loop, on the thread keepalived's VRRP
//! process settings apply to.
//!
//! The loop owns the protocol ([`vrrp_proto::node::Node`]: every instance, their sync groups,
//! one timer queue), one VRRP socket per interface and family ([`crate::net::LinkSocket`]) and
//! one timerfd. It wakes for the earliest deadline of any instance, a readable socket, a
//! tracker's report, an interface or a deletion event, or a command (adopt a configuration,
//! status, stop). Received packets are split once, handed to the instance their VRID names,
//! decoded against what it expects, fed to the node; the adverts the instances send in one
//! wakeup leave together, one `sendmmsg` per socket. A socket with no Master on it lets its
//! adverts gather for a couple of milliseconds, off the reactor, and reads them in one go
//! ([`batch_window`]); each is fed as of its kernel receive timestamp, so no deadline moves.
//! Everything that waits for the kernel or a child process goes to the effects task
//! ([`effects`]), in order, so the loop never blocks.
//!
//! A reload is a new configuration adopted by difference ([`Handle::adopt`]): an instance
//! configured as before goes on untouched (a Master keeps advertising, nothing is torn down);
//! one whose settings changed restarts in place in the state it had; one no longer configured
//! is released; a new one starts. SIGTERM releases every instance (priority 0, addresses,
//! routes and rules) and waits for the effects task to finish.
//!
//! Failure points are explicit ([`Failure`]): the loop ends only on a command to stop, or when
//! something it cannot go on without fails; its caller then releases what is left and exits
//! for the supervisor.

pub(super) mod effects;
pub(super) mod plan;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::mail::StateMail;
use crate::net::{Demux, LinkSocket};
use crate::notify::Notifier;
use crate::track::deleted::Key;
use crate::track::link::LinkMonitor;
use crate::track::{Contribution, TrackKey};
use sysio::mmsg::OutMsg;
use sysio::timer::Timer;
use vrrp_proto::fsm::State;
use vrrp_proto::instance::{Effect, Event, Instance};
use vrrp_proto::node::{Id, Node, Output};
use vrrp_proto::packet::{self, Auth, DropReason, RxMeta};

use super::ah::AhSession;
use crate::observe::status::{InstanceStatus, SocketStatus, TrackerStatus};
use effects::{Feedback, GroupIo, Io, Job};
use plan::Plan;

/// Batches read from one socket per wakeup before the others and the timers get their turn.
const READ_BUDGET: usize = 4;

/// The longest a link with no Master on it leaves its adverts in the socket to read them
/// together ([`Engine::batch_window`]): the adverts of many instances arrive in bursts (their
/// Master sends those due together in one `sendmmsg`), and read as they trickle in they cost a
/// wakeup per two or three.
const BATCH_WINDOW: Duration = Duration::from_millis(2);

/// A shorter window is not worth its timer: the link is read at once.
const MIN_BATCH_WINDOW: Duration = Duration::from_micros(200);

/// The oldest a receive timestamp is believed: a wall clock stepped forward must not age an
/// advert towards its Master_Down deadline (younger is the safe side, a later deadline).
const MAX_RX_AGE: Duration = Duration::from_millis(20);

/// How often instances waiting for their source address ([`plan::SourceWait`]) or their
/// interface ([`plan::Pending`]) look for it.
const WAIT_POLL: Duration = Duration::from_secs(1);

/// The socket of an instance that has none (its interface does not exist yet).
const NO_LINK: usize = usize::MAX;

/// The interface index of an interface that does not exist yet.
const NO_IFINDEX: u32 = 0;

/// Why the loop stopped without being asked to.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    #[error("the protocol timer failed: {0}")]
    Timer(std::io::Error),
    #[error("the effects task is gone")]
    Effects,
    #[error("the daemon's command channel closed")]
    Commands,
}

/// A tracker's report for an instance, by name (the trackers of a configuration start before
/// the loop adopts it).
#[derive(Debug)]
pub(super) struct TrackMsg {
    pub instance: Arc<str>,
    pub key: TrackKey,
    pub contribution: Contribution,
}

/// How the instances of an adopted configuration start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// With the daemon, after `vrrp_startup_delay`.
    Boot(Duration),
    /// With a daemon its supervisor started again after the previous one died: at once, as
    /// Backup (the peer took over when the previous one died).
    Restart,
    /// After a reload.
    Reload,
}

/// What one instance is told besides its plan: who hears about it.
pub(super) struct Attach {
    pub notifier: Option<Notifier>,
    pub mail: Option<StateMail>,
}

/// A sync group of the configuration.
pub(super) struct GroupSpec {
    pub name: String,
    pub members: Vec<String>,
    pub notifier: Option<Notifier>,
    pub mail: Option<StateMail>,
}

/// A configuration for the loop to adopt.
pub(super) struct Adoption {
    pub plans: Vec<Plan>,
    /// Per plan: the reload left its configuration as it was (only then can it go on
    /// untouched, if its plan is the same too).
    pub same_config: Vec<bool>,
    /// VMACs made for the plans (same order), owned by the instances from now on.
    pub made: Vec<Option<crate::vmac::Vmac>>,
    pub attach: Vec<Attach>,
    pub groups: Vec<GroupSpec>,
    /// The reports of this configuration's trackers (their first ones are queued already).
    pub tracks: mpsc::Receiver<TrackMsg>,
    pub start: Start,
    /// `fifo_write_vrrp_states_on_reload` (for the groups; instances have it in their plan).
    pub fifo_states_on_reload: bool,
    /// `log_unknown_vrids`.
    pub log_unknown_vrids: bool,
}

/// An adopted configuration: each instance's addresses and state, for the balancer.
pub(super) struct Adopted {
    pub owners: Vec<(String, Vec<IpAddr>, watch::Receiver<State>)>,
}

enum Command {
    Plans(oneshot::Sender<HashMap<String, Arc<Plan>>>),
    Adopt(Box<Adoption>, oneshot::Sender<anyhow::Result<Adopted>>),
    Status(oneshot::Sender<Vec<InstanceStatus>>),
    Sockets(oneshot::Sender<Vec<SocketStatus>>),
    Shutdown(oneshot::Sender<()>),
}

/// The daemon's handle on the loop.
#[derive(Clone)]
pub(super) struct Handle {
    tx: mpsc::Sender<Command>,
}

impl Handle {
    /// The plans the loop runs now, by instance name.
    pub(super) async fn plans(&self) -> HashMap<String, Arc<Plan>> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Plans(tx)).await.is_err() {
            return HashMap::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Adopts a configuration (see the module's description).
    pub(super) async fn adopt(&self, a: Adoption) -> anyhow::Result<Adopted> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Adopt(Box::new(a), tx))
            .await
            .map_err(|_| anyhow::anyhow!("the VRRP loop is gone"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the VRRP loop is gone"))?
    }

    /// Every instance's status, in configuration order.
    pub(super) async fn status(&self) -> Vec<InstanceStatus> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Status(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// What each VRRP socket received.
    pub(super) async fn sockets(&self) -> Vec<SocketStatus> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Sockets(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Releases every instance and waits for the effects (addresses removed, STOP scripts run).
    pub(super) async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// One VRRP socket and which instance each of its packets is for.
struct LinkSlot {
    sock: LinkSocket,
    demux: Demux<Id>,
    /// Packets for no instance here (`log_unknown_vrids`), and packets refused before a VRID.
    unknown_vrid: u64,
    refused: u64,
    /// Packets read, and the system calls that read them.
    packets: u64,
    reads: u64,
    /// Set while the socket's packets gather ([`Engine::batch_window`]): when to read them.
    read_at: Option<Duration>,
    /// Whether an instance on the socket is Master (`None`: to be looked at again).
    has_master: Option<bool>,
}

impl LinkSlot {
    fn new(sock: LinkSocket) -> Self {
        Self {
            sock,
            demux: Demux::default(),
            unknown_vrid: 0,
            refused: 0,
            packets: 0,
            reads: 0,
            read_at: None,
            has_master: None,
        }
    }

    fn status(&self) -> SocketStatus {
        SocketStatus {
            interface: self.sock.ifname().to_string(),
            family: match self.sock.family() {
                crate::net::Family::V4 => "ipv4",
                crate::net::Family::V6 => "ipv6",
            },
            proto: match self.sock.proto() {
                crate::net::Proto::Vrrp => "vrrp",
                crate::net::Proto::Ah => "ah",
            },
            packets: self.packets,
            reads: self.reads,
            unknown_vrid: self.unknown_vrid,
            refused: self.refused,
        }
    }
}

/// The loop's side of one instance.
struct Slot {
    plan: Arc<Plan>,
    /// Its socket in `links`.
    link: usize,
    state: watch::Sender<State>,
    /// Priority in the last advert received (keepalived's `master_priority`).
    master_priority: u8,
    /// The last state change: Unix time and the state left.
    last_transition: (f64, Option<State>),
    /// `auth_type AH`: the sequence counter; adverts are sealed and opened here.
    ah: Option<AhSession>,
    /// Adverts carry keepalived's old unicast checksum ([`Plan::old_checksum`]): configured,
    /// or since a peer's advert carried it.
    old_checksum: bool,
}

/// What woke the loop.
enum Wake {
    Command(Option<Command>),
    Timer(std::io::Result<()>),
    Feedback(Option<Feedback>),
    Link(Option<(u32, bool)>),
    Deleted(Option<Key>),
    Track(Option<TrackMsg>),
    Readable,
    SourceCheck,
}

/// The VRRP loop.
pub(super) struct Engine {
    node: Node,
    epoch: Instant,
    slots: Vec<Option<Slot>>,
    names: HashMap<String, Id>,
    /// Instance names in configuration order.
    order: Vec<Id>,
    links: Vec<LinkSlot>,
    timer: Timer,
    /// What the timer is armed for (see [`Self::arm`]).
    armed: Option<Duration>,
    jobs: mpsc::UnboundedSender<Job>,
    feedback: mpsc::UnboundedReceiver<Feedback>,
    link_events: mpsc::UnboundedReceiver<(u32, bool)>,
    link_tx: mpsc::UnboundedSender<(u32, bool)>,
    link_monitor: LinkMonitor,
    watched: HashSet<u32>,
    deletions: Option<broadcast::Receiver<Key>>,
    tracks: Option<mpsc::Receiver<TrackMsg>>,
    commands: mpsc::Receiver<Command>,
    /// Instances adopted but not started: started once the trackers' first reports are in.
    starting: Vec<(Id, Event)>,
    out: Vec<Output>,
    /// Adverts to send at the end of this wakeup: (socket, bytes, instance, destination).
    outbox: Vec<(usize, Vec<u8>, Id, usize)>,
    log_unknown_vrids: bool,
    /// Runs while an instance waits for its source address.
    source_poll: Option<tokio::time::Interval>,
}

impl Engine {
    /// The loop and its handle; the effects task is spawned on the current runtime.
    pub(super) fn new(
        nl: crate::netlink::Netlink,
        links: &LinkMonitor,
        deletions: broadcast::Receiver<Key>,
        garp: Arc<garp::Sender>,
    ) -> std::io::Result<(Self, Handle)> {
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let (fb_tx, feedback) = mpsc::unbounded_channel();
        tokio::spawn(effects::run(jobs_rx, nl, garp, fb_tx));
        let (link_tx, link_events) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(16);
        let engine = Self {
            node: Node::new(),
            epoch: Instant::now(),
            slots: Vec::new(),
            names: HashMap::new(),
            order: Vec::new(),
            links: Vec::new(),
            timer: Timer::new()?,
            armed: None,
            jobs,
            feedback,
            link_events,
            link_tx,
            link_monitor: links.clone(),
            watched: HashSet::new(),
            deletions: Some(deletions),
            tracks: None,
            commands: rx,
            starting: Vec::new(),
            out: Vec::new(),
            outbox: Vec::new(),
            log_unknown_vrids: false,
            source_poll: None,
        };
        Ok((engine, Handle { tx }))
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// When the timer is to wake us: the earliest deadline, or the one it is armed for when
    /// that is earlier still. A Backup hearing its Master moves its deadline later with every
    /// advert; following each move would cost a system call per advert, waking a little early
    /// costs one pass that finds nothing due, a few times per down interval.
    fn arm(&mut self) -> Option<Duration> {
        let now = self.now();
        // Armed no later than anything queued: nothing to learn (the exact earliest deadline
        // costs a pass over the entries whose deadline moved, once per wakeup of the timer).
        if let (Some(a), Some(bound)) = (self.armed, self.node.poll_timeout_bound()) {
            if a <= bound && a > now {
                return Some(a);
            }
        }
        let want = self.node.poll_timeout();
        let arm = match (self.armed, want) {
            (Some(a), Some(w)) if a <= w && a > now => Some(a),
            _ => want,
        };
        self.armed = arm;
        arm
    }

    /// Runs until told to stop (`Ok`) or until something it needs fails.
    pub(super) async fn run(mut self) -> Result<(), Failure> {
        loop {
            if !self.starting.is_empty() {
                // The trackers' first reports (queued by tasks that may not have run yet) come
                // in before the instances start, so a failed one means INIT -> FAULT directly.
                tokio::task::yield_now().await;
                self.drain_tracks();
                self.start_adopted();
                self.flush()?;
                self.jobs.send(Job::Settled).map_err(|_| Failure::Effects)?;
            }
            let gather = self.links.iter().filter_map(|l| l.read_at).min();
            let deadline = match (self.arm(), gather) {
                (Some(a), Some(g)) => Some(a.min(g)),
                (a, g) => a.or(g),
            }
            .map(|d| self.epoch + d);
            let links = &self.links;
            let wake = tokio::select! {
                biased;
                c = self.commands.recv() => Wake::Command(c),
                r = self.timer.sleep_until(deadline) => Wake::Timer(r),
                f = self.feedback.recv() => Wake::Feedback(f),
                l = self.link_events.recv() => Wake::Link(l),
                d = recv_deletion(&mut self.deletions) => Wake::Deleted(d),
                t = recv_track(&mut self.tracks) => Wake::Track(t),
                () = std::future::poll_fn(|cx| poll_readable(links, cx)) => Wake::Readable,
                () = source_tick(&mut self.source_poll) => Wake::SourceCheck,
            };
            fault_inject::point("vrrp-loop");
            match wake {
                Wake::Command(None) => return Err(Failure::Commands),
                Wake::Command(Some(Command::Shutdown(done))) => {
                    self.shutdown().await?;
                    let _ = done.send(());
                    return Ok(());
                }
                Wake::Command(Some(c)) => self.command(c),
                Wake::Timer(Err(e)) => return Err(Failure::Timer(e)),
                Wake::Timer(Ok(())) => {
                    self.armed = None;
                    // What arrived before a deadline counts before it: a Backup whose Master's
                    // advert waits in a socket must not take over.
                    self.read_sockets(true);
                    let now = self.now();
                    self.node.handle_timeout(now, &mut self.out);
                }
                Wake::Feedback(Some(Feedback::Lost(id))) => self.feed(id, Event::Lost),
                Wake::Feedback(Some(Feedback::Source { id, from, found })) => {
                    self.source_found(id, &from, found)
                }
                Wake::SourceCheck => self.find_sources()?,
                Wake::Feedback(Some(Feedback::Resolved { id, from, found })) => {
                    self.resolved(id, &from, found)
                }
                Wake::Feedback(None) => return Err(Failure::Effects),
                Wake::Link(Some((ifindex, up))) => self.link_changed(ifindex, up),
                Wake::Link(None) => {}
                Wake::Deleted(k) => self.deleted(k),
                Wake::Track(Some(t)) => self.track(t),
                Wake::Track(None) => self.tracks = None,
                Wake::Readable => self.read_sockets(false),
            }
            self.flush()?;
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Plans(reply) => {
                let plans = self
                    .slots
                    .iter()
                    .flatten()
                    .map(|s| (s.plan.name.clone(), s.plan.clone()))
                    .collect();
                let _ = reply.send(plans);
            }
            Command::Adopt(a, reply) => {
                let r = self.adopt(*a);
                let _ = reply.send(r);
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Sockets(reply) => {
                let _ = reply.send(self.links.iter().map(LinkSlot::status).collect());
            }
            Command::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    /// Feeds one event to one instance.
    fn feed(&mut self, id: Id, ev: Event) {
        let now = self.now();
        self.node.handle(now, id, ev, &mut self.out);
    }

    /// Performs what the instances asked for: adverts into the outbox, the rest to the
    /// effects task; then sends the outbox.
    fn flush(&mut self) -> Result<(), Failure> {
        let now_wall = unix_now();
        for o in std::mem::take(&mut self.out) {
            match o {
                Output::Instance(id, Effect::Send(advert)) => {
                    let Some(slot) = self.slots.get_mut(id.index()).and_then(Option::as_mut) else {
                        continue;
                    };
                    let d = &slot.plan.dest;
                    match &mut slot.ah {
                        // Whole IPv4 packets: the header is part of what the ICV covers.
                        Some(ah) => {
                            let dsts: Vec<IpAddr> = d.targets().map(|(dst, _)| dst).collect();
                            for (i, bytes) in ah
                                .seal(&advert, d.src, d.ttl, &dsts)
                                .into_iter()
                                .enumerate()
                            {
                                self.outbox.push((slot.link, bytes, id, i));
                            }
                        }
                        None => {
                            for (i, (dst, _)) in d.targets().enumerate() {
                                let pseudo = checksum_dst(dst, slot.old_checksum);
                                self.outbox
                                    .push((slot.link, advert.encode(d.src, pseudo), id, i));
                            }
                        }
                    }
                }
                Output::Instance(id, e) => {
                    if let (Effect::Entered { from, to }, Some(Some(slot))) =
                        (&e, self.slots.get_mut(id.index()))
                    {
                        if let Some(l) = self.links.get_mut(slot.link) {
                            l.has_master = None;
                        }
                        slot.state.send_replace(*to);
                        slot.last_transition = (now_wall, Some(*from));
                        if let (Some(ah), State::Master) = (&mut slot.ah, to) {
                            ah.became_master();
                        }
                    }
                    self.jobs
                        .send(Job::Effect(id, e))
                        .map_err(|_| Failure::Effects)?;
                }
                Output::Group(g, e) => {
                    self.jobs
                        .send(Job::Group(g.0, e))
                        .map_err(|_| Failure::Effects)?;
                }
            }
        }
        self.send_outbox();
        Ok(())
    }

    /// Sends the adverts of this wakeup, one `sendmmsg` per socket.
    fn send_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        self.outbox.sort_by_key(|o| o.0);
        let mut at = 0;
        while at < self.outbox.len() {
            let link = self.outbox[at].0;
            let end = self.outbox[at..]
                .iter()
                .position(|o| o.0 != link)
                .map_or(self.outbox.len(), |k| at + k);
            let batch = &self.outbox[at..end];
            let msgs: Vec<OutMsg> = batch
                .iter()
                .filter_map(|(_, bytes, id, dst)| {
                    let slot = self.slots.get(id.index())?.as_ref()?;
                    let (_, to) = slot.plan.dest.targets().nth(*dst)?;
                    let m = OutMsg::new(bytes).to(to);
                    // An AH packet's own header says it all.
                    Some(match slot.ah {
                        Some(_) => m,
                        None => m.control(slot.plan.dest.control()),
                    })
                })
                .collect();
            let r = self.links[link].sock.send(&msgs);
            for (i, e) in &r.failed {
                // A full buffer or an unreachable peer must not stop the other adverts.
                debug!(error = %e, instance = ?batch.get(*i).map(|b| b.2), "sending advert failed");
            }
            if r.blocked {
                warn!(
                    interface = self.links[link].sock.ifname(),
                    unsent = r.unsent(msgs.len()),
                    "socket buffer full: adverts not sent"
                );
            }
            at = end;
        }
        self.outbox.clear();
    }

    /// How long link `l`'s packets may gather before they are read ([`batch_window`]).
    fn batch_window(&mut self, l: usize) -> Option<Duration> {
        let Engine {
            links, slots, node, ..
        } = self;
        let link = links.get_mut(l)?;
        let here = |id: Id| {
            slots
                .get(id.index())
                .and_then(Option::as_ref)
                .is_some_and(|s| s.link == l)
        };
        // Whether one is Master changes only with a state change or a join: known until then.
        if *link.has_master.get_or_insert_with(|| {
            node.iter()
                .any(|(id, i)| i.state() == State::Master && here(id))
        }) {
            return None;
        }
        batch_window(
            node.iter()
                .filter(|&(id, _)| here(id))
                .map(|(_, i)| (i.state(), i.vrrp().skew_time())),
        )
    }

    /// Reads what the sockets hold (a bounded number of batches each). A socket that became
    /// readable is read at once or left to gather for its [`Self::batch_window`], off the
    /// reactor (packets arriving meanwhile wake nobody); with `everything`, all are read now,
    /// gathering or not.
    fn read_sockets(&mut self, everything: bool) {
        let now = self.now();
        let mut cx = Context::from_waker(Waker::noop());
        for l in 0..self.links.len() {
            let link = &self.links[l];
            let read = match link.read_at {
                Some(t) => everything || t <= now,
                None if link.sock.poll_readable(&mut cx).is_pending() => false,
                None if everything => true,
                None => match self.batch_window(l) {
                    Some(w) => {
                        let link = &mut self.links[l];
                        link.sock.pause();
                        link.read_at = Some(now + w);
                        false
                    }
                    None => true,
                },
            };
            if read {
                self.read_link(l);
            }
        }
    }

    /// Reads link `l` (a bounded number of batches; a gathering one is then watched again):
    /// each packet goes to its instance as of when it arrived.
    fn read_link(&mut self, l: usize) {
        let mut cx = Context::from_waker(Waker::noop());
        let now = self.now();
        let wall = SystemTime::now();
        let Engine {
            links,
            slots,
            node,
            out,
            log_unknown_vrids,
            ..
        } = self;
        let Some(LinkSlot {
            sock,
            demux,
            unknown_vrid,
            refused,
            packets,
            reads,
            read_at,
            ..
        }) = links.get_mut(l)
        else {
            return;
        };
        let gathered = read_at.take().is_some();
        // For `log_unknown_vrids` only: no copy per read otherwise.
        let log_unknown = log_unknown_vrids.then(|| sock.ifname().to_string());
        let mut handle = |rx: Result<crate::net::Rx<'_>, DropReason>| {
            let rx = match rx {
                Ok(rx) => rx,
                Err(_) => {
                    *refused += 1;
                    return;
                }
            };
            let vrid = rx.vrid;
            let Some(id) = demux.lookup(vrid, rx.meta.src, rx.meta.dst) else {
                *unknown_vrid += 1;
                if let Some(ifname) = &log_unknown {
                    info!("Unknown VRID({vrid}) received on interface({ifname}). ignoring...");
                }
                return;
            };
            let Some(Some(slot)) = slots.get_mut(id.index()) else {
                return;
            };
            let p = &slot.plan;
            // AH: the packet is the whole IPv4 datagram; its ICV, SPI and sequence
            // number are checked before the advert is read.
            let mut ah_seq = None;
            let decoded =
                crate::net::accepts_from(rx.meta.src, p.dest.src, &p.peers, p.check_unicast_src)
                    .and_then(|()| match &mut slot.ah {
                        Some(ah) => ah.open(rx.payload).map(|(_, advert, seq)| {
                            ah_seq = Some(seq);
                            advert
                        }),
                        None => Ok(rx.payload),
                    })
                    .and_then(
                        |payload| match packet::decode(payload, &rx.meta, &p.expect) {
                            Err(DropReason::BadChecksum) if p.may_take_old_checksum() => {
                                let old = RxMeta {
                                    dst: packet::MCAST_V4.into(),
                                    ..rx.meta
                                };
                                let advert = packet::decode(payload, &old, &p.expect)
                                    .map_err(|_| DropReason::BadChecksum)?;
                                if !slot.old_checksum {
                                    slot.old_checksum = true;
                                    info!(
                                        "({}) Setting unicast VRRPv3 checksum to old version",
                                        p.name
                                    );
                                }
                                Ok(advert)
                            }
                            other => other,
                        },
                    );
            match decoded {
                Ok(advert) => {
                    slot.master_priority = advert.priority;
                    if let (Some(ah), Some(seq), Some(inst)) = (&mut slot.ah, ah_seq, node.get(id))
                    {
                        // A Master hearing a lower priority carries on from its number
                        // (keepalived's "Syncing seq_num").
                        if inst.state() == State::Master
                            && (advert.priority, rx.meta.src) < (inst.vrrp().priority(), p.dest.src)
                        {
                            ah.heard_lower(seq);
                        }
                    }
                    let ev = Event::Advert {
                        src: rx.meta.src,
                        advert,
                    };
                    node.handle(arrival(now, wall, rx.stamp), id, ev, out);
                }
                Err(DropReason::Own) => {}
                Err(reason) => {
                    if let Some(inst) = node.get_mut(id) {
                        let n = inst.counters_mut().drop(reason);
                        // One line per reason per power of two: a flood is not a log
                        // flood.
                        if n.is_power_of_two() {
                            debug!(instance = %p.name, src = %rx.meta.src, %reason, count = n, "dropped packet");
                        }
                    }
                }
            }
        };
        for _ in 0..READ_BUDGET {
            let r = if gathered {
                match sock.recv_now(&mut handle) {
                    Ok(n) if n > 0 => Poll::Ready(Ok(n)),
                    Ok(_) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            } else {
                sock.poll_recv(&mut cx, &mut handle)
            };
            match r {
                Poll::Ready(Ok(n)) => {
                    *reads += 1;
                    *packets += n as u64;
                }
                Poll::Ready(Err(e)) => {
                    warn!(interface = sock.ifname(), error = %e, "receive failed");
                    break;
                }
                Poll::Pending => break,
            }
        }
        if gathered {
            if let Err(e) = sock.resume() {
                // Read again after another window rather than never.
                warn!(interface = sock.ifname(), error = %e, "cannot watch the socket again");
                *read_at = Some(now + BATCH_WINDOW);
            }
        }
    }

    /// Asks the effects task to look for the source addresses instances wait for; the poll
    /// stops when none waits.
    fn find_sources(&mut self) -> Result<(), Failure> {
        let mut any = false;
        for &id in &self.order {
            let Some(Some(slot)) = self.slots.get(id.index()) else {
                continue;
            };
            let job = if slot.plan.pending.is_some() {
                Job::FindInterface(id)
            } else if slot.plan.source_wait.is_some() {
                Job::FindSource(id)
            } else {
                continue;
            };
            any = true;
            self.jobs.send(job).map_err(|_| Failure::Effects)?;
        }
        if !any {
            self.source_poll = None;
        }
        Ok(())
    }

    /// The source address instance `id` waited for is there (unless a reload replaced the plan
    /// it was found for): adverts go from it, and the FAULT it caused clears.
    fn source_found(&mut self, id: Id, from: &Arc<Plan>, found: Arc<Plan>) {
        let Some(Some(slot)) = self.slots.get_mut(id.index()) else {
            return;
        };
        if !Arc::ptr_eq(&slot.plan, from) {
            return;
        }
        let src = found.dest.src;
        info!("({}) source address {src} is now available", found.name);
        slot.plan = found;
        if let Some(inst) = self.node.get_mut(id) {
            inst.set_primary_addr(src);
        }
        self.feed(id, Event::Track(TrackKey::Source, Contribution::Delta(0)));
    }

    /// An instance whose source address is not there starts in FAULT, with keepalived's words,
    /// and the poll looks for the address.
    fn source_event(&mut self, id: Id, plan: &Plan) {
        let Some(wait) = plan.source_wait else {
            return;
        };
        wait.log_fault(&plan.name);
        self.feed(id, Event::Track(TrackKey::Source, Contribution::Fault));
        self.start_poll();
    }

    /// Starts the look for what instances wait for (a source address, an interface).
    fn start_poll(&mut self) {
        if self.source_poll.is_none() {
            let mut poll = tokio::time::interval(WAIT_POLL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            self.source_poll = Some(poll);
        }
    }

    /// The interface instance `id` waited for is there: the resolved plan takes the
    /// placeholder's place (unless a reload replaced it meanwhile) and the instance starts
    /// afresh, with what its trackers reported so far.
    fn resolved(&mut self, id: Id, from: &Arc<Plan>, plan: Arc<Plan>) {
        let Some(Some(slot)) = self.slots.get(id.index()) else {
            return;
        };
        if !Arc::ptr_eq(&slot.plan, from) {
            return;
        }
        let link = match self.join(id, &plan) {
            Ok(l) => l,
            Err(e) => {
                warn!("({}) {:#}", plan.name, open_error(e, &plan.vrrp_link.name));
                return;
            }
        };
        if let Some(p) = &from.pending {
            info!("interface {} appeared: starting", p.ifname);
        }
        let Some(old) = self.node.get(id) else {
            return;
        };
        let carried: Vec<(TrackKey, Contribution)> = old
            .trackers()
            .filter(|(k, _)| **k != TrackKey::Interface(NO_IFINDEX))
            .map(|(k, c)| (k.clone(), *c))
            .collect();
        let mut inst = Instance::new(plan.core.clone());
        inst.set_counters(old.counters().clone());
        self.node.replace(id, inst);
        let slot = self.slots[id.index()].as_mut().expect("slot");
        slot.link = link;
        slot.ah = ah_session(&plan);
        slot.old_checksum = plan.old_checksum();
        slot.plan = plan.clone();
        for (k, c) in carried {
            self.feed(id, Event::Track(k, c));
        }
        let _ = self.jobs.send(Job::RemoveLeftovers(vec![id]));
        self.link_event(id, &plan);
        self.source_event(id, &plan);
        self.watch_link(plan.link.index);
        self.feed(
            id,
            Event::Start {
                delay: Duration::ZERO,
                resume: None,
            },
        );
    }

    fn drain_tracks(&mut self) {
        while let Some(t) = self.tracks.as_mut().and_then(|r| r.try_recv().ok()) {
            self.track(t);
        }
    }

    fn track(&mut self, t: TrackMsg) {
        if let Some(&id) = self.names.get(&*t.instance) {
            self.feed(id, Event::Track(t.key, t.contribution));
        }
    }

    fn link_changed(&mut self, ifindex: u32, up: bool) {
        let ids: Vec<Id> = self
            .order
            .iter()
            .copied()
            .filter(|id| {
                self.slots[id.index()]
                    .as_ref()
                    .is_some_and(|s| s.plan.link.index == ifindex)
            })
            .collect();
        for id in ids {
            self.feed(id, Event::Link(up));
        }
    }

    /// Someone deleted an address, route or rule (`None`: events were missed): the Masters
    /// that track it check the kernel (the effects task) before stepping down.
    fn deleted(&mut self, key: Option<Key>) {
        for &id in &self.order {
            let Some(Some(slot)) = self.slots.get(id.index()) else {
                continue;
            };
            if self.node.get(id).map(Instance::state) != Some(State::Master) {
                continue;
            }
            let keys: Vec<Key> = match &key {
                Some(k) if slot.plan.tracked.contains(k) => vec![k.clone()],
                Some(_) => continue,
                None => slot.plan.tracked.to_vec(),
            };
            let _ = self.jobs.send(Job::CheckDeleted(id, keys));
        }
    }

    /// The socket for `plan`, opened on first use; `id` joins its demultiplexer.
    fn join(&mut self, id: Id, plan: &Plan) -> std::io::Result<usize> {
        if plan.pending.is_some() {
            // No interface yet: no socket.
            return Ok(NO_LINK);
        }
        let l = &plan.vrrp_link;
        let at = match self.links.iter().position(|s| {
            s.sock.ifindex() == l.index
                && (s.sock.family(), s.sock.proto()) == (plan.family, plan.proto)
        }) {
            Some(at) => at,
            None => {
                let sock = LinkSocket::open(&l.name, l.index, plan.family, plan.proto)?;
                self.links.push(LinkSlot::new(sock));
                self.links.len() - 1
            }
        };
        let slot = &mut self.links[at];
        slot.has_master = None;
        if plan.peers.is_empty() {
            slot.sock.join(plan.group)?;
        }
        if plan.vmac_source.is_some() {
            slot.sock.allow_foreign_source()?;
        }
        slot.demux.insert(plan.core.vrrp.vrid, id, &plan.peers);
        Ok(at)
    }

    fn leave(&mut self, id: Id) {
        if let Some(Some(slot)) = self.slots.get(id.index()) {
            let vrid = slot.plan.core.vrrp.vrid;
            if let Some(l) = self.links.get_mut(slot.link) {
                l.demux.remove(vrid, id);
                l.has_master = None;
            }
        }
    }

    /// Adopts a configuration by difference (see the module's description).
    fn adopt(&mut self, a: Adoption) -> anyhow::Result<Adopted> {
        let Adoption {
            plans,
            same_config,
            made,
            attach,
            groups,
            tracks,
            start,
            fifo_states_on_reload,
            log_unknown_vrids,
        } = a;
        self.log_unknown_vrids = log_unknown_vrids;
        // Every socket first: a failure (a descriptor shortage) changes nothing.
        for p in plans.iter().filter(|p| p.pending.is_none()) {
            let l = &p.vrrp_link;
            if !self.links.iter().any(|s| {
                s.sock.ifindex() == l.index
                    && (s.sock.family(), s.sock.proto()) == (p.family, p.proto)
            }) {
                let sock = LinkSocket::open(&l.name, l.index, p.family, p.proto)
                    .map_err(|e| open_error(e, &l.name))?;
                self.links.push(LinkSlot::new(sock));
            }
        }
        let reload = start == Start::Reload;
        // Instances no longer configured (or no longer the same instance): released.
        let gone: Vec<Id> = self
            .order
            .iter()
            .copied()
            .filter(|id| {
                let old = &self.slots[id.index()].as_ref().expect("slot").plan;
                !plans.iter().any(|p| p.same_identity(old))
            })
            .collect();
        for id in gone {
            self.feed(id, Event::Removed);
            self.feed(id, Event::Shutdown);
            self.flush_quietly();
            self.leave(id);
            let name = self.slots[id.index()]
                .take()
                .expect("slot")
                .plan
                .name
                .clone();
            self.names.remove(&name);
            self.node.remove(id);
            // The VMAC stays when the same name comes back as another instance.
            let remove_vmac = true;
            let _ = self.jobs.send(Job::Uninstall { id, remove_vmac });
        }
        let mut order = Vec::new();
        let mut owners = Vec::new();
        let mut leftovers = Vec::new();
        let delay = match start {
            Start::Boot(d) => d,
            _ => Duration::ZERO,
        };
        for (((plan, vmac), at), same) in plans.into_iter().zip(made).zip(attach).zip(same_config) {
            let plan = Arc::new(plan);
            let existing = self.names.get(&plan.name).copied();
            let id = match existing {
                Some(id) if same && self.slots[id.index()].as_ref().expect("slot").plan == plan => {
                    // As before: untouched, only told who hears about it now.
                    let _ = self.jobs.send(Job::Rewire {
                        id,
                        notifier: at.notifier,
                        mail: at.mail,
                    });
                    self.starting.push((id, Event::Reloaded));
                    id
                }
                Some(id) => {
                    // Changed settings: restarts in place, in the state it had.
                    let old = self.node.get(id).expect("instance");
                    let was_master = old.state() == State::Master;
                    // One that waited for its interface starts afresh (its FAULT was news,
                    // its start is too).
                    let waited = self.slots[id.index()]
                        .as_ref()
                        .is_some_and(|s| s.plan.pending.is_some());
                    let mut inst = Instance::new(plan.core.clone());
                    inst.set_counters(old.counters().clone());
                    self.leave(id);
                    self.node.replace(id, inst);
                    let link = self
                        .join(id, &plan)
                        .map_err(|e| open_error(e, &plan.vrrp_link.name))?;
                    let slot = self.slots[id.index()].as_mut().expect("slot");
                    slot.plan = plan.clone();
                    slot.link = link;
                    // keepalived keeps the AH counter across a reload: the peer's replay check
                    // goes on accepting our adverts.
                    let seq = slot.ah.as_ref().map(AhSession::sequence);
                    slot.ah = ah_session(&plan);
                    // What a peer's adverts taught stays, unless the file now says never.
                    slot.old_checksum =
                        plan.old_checksum() || (slot.old_checksum && plan.may_take_old_checksum());
                    if let (Some(ah), Some(seq)) = (&mut slot.ah, seq) {
                        ah.continue_from(seq);
                    }
                    let _ = self.jobs.send(Job::Replace {
                        id,
                        io: Box::new(Io {
                            plan: plan.clone(),
                            notifier: at.notifier,
                            mail: at.mail,
                            vmac,
                            sysctls: Default::default(),
                            vmac_source_added: false,
                        }),
                        was_master,
                    });
                    if !was_master {
                        leftovers.push(id);
                    }
                    self.link_event(id, &plan);
                    self.source_event(id, &plan);
                    self.starting.push((
                        id,
                        Event::Start {
                            delay: Duration::ZERO,
                            resume: (!waited).then_some(was_master),
                        },
                    ));
                    id
                }
                None => {
                    let id = self.node.insert(Instance::new(plan.core.clone()));
                    let link = self
                        .join(id, &plan)
                        .map_err(|e| open_error(e, &plan.vrrp_link.name))?;
                    if self.slots.len() <= id.index() {
                        self.slots.resize_with(id.index() + 1, || None);
                    }
                    self.slots[id.index()] = Some(Slot {
                        plan: plan.clone(),
                        link,
                        state: watch::channel(State::Initialize).0,
                        master_priority: 0,
                        last_transition: (0.0, None),
                        ah: ah_session(&plan),
                        old_checksum: plan.old_checksum(),
                    });
                    self.names.insert(plan.name.clone(), id);
                    let _ = self.jobs.send(Job::Install(
                        id,
                        Box::new(Io {
                            plan: plan.clone(),
                            notifier: at.notifier,
                            mail: at.mail,
                            vmac,
                            sysctls: Default::default(),
                            vmac_source_added: false,
                        }),
                    ));
                    leftovers.push(id);
                    if start == Start::Restart {
                        info!(
                            "({}) starting as BACKUP: the daemon was restarted after a failure",
                            plan.name
                        );
                    }
                    self.link_event(id, &plan);
                    self.source_event(id, &plan);
                    self.starting.push((
                        id,
                        Event::Start {
                            delay,
                            resume: None,
                        },
                    ));
                    id
                }
            };
            let addrs = match &plan.pending {
                Some(p) => p.addresses(),
                None => {
                    self.watch_link(plan.link.index);
                    plan.vips.iter().map(|(v, _)| v.addr).collect()
                }
            };
            let slot = self.slots[id.index()].as_ref().expect("slot");
            owners.push((plan.name.clone(), addrs, slot.state.subscribe()));
            order.push(id);
        }
        self.order = order;
        if !leftovers.is_empty() {
            let _ = self.jobs.send(Job::RemoveLeftovers(leftovers));
        }
        // The sync groups, rebuilt from their members' states.
        let mut ids = Vec::new();
        let mut gios = Vec::new();
        for g in groups {
            ids.push(
                g.members
                    .iter()
                    .filter_map(|m| self.names.get(m).copied())
                    .collect::<Vec<_>>(),
            );
            gios.push(GroupIo {
                name: g.name,
                notifier: g.notifier,
                mail: g.mail,
            });
        }
        let _ = self.jobs.send(Job::Groups(gios));
        let now = self.now();
        self.node
            .set_groups(now, &ids, reload, fifo_states_on_reload, &mut self.out);
        self.tracks = Some(tracks);
        Ok(Adopted { owners })
    }

    /// The interface's state now, before the instance starts.
    fn link_event(&mut self, id: Id, plan: &Plan) {
        if let Some(p) = &plan.pending {
            // keepalived's words.
            let ifname = &p.ifname;
            info!("Configuration specifies interface {ifname} which doesn't currently exist - will use if created");
            info!(
                "({}) entering FAULT state (interface {ifname} does not exist)",
                plan.name
            );
            self.feed(
                id,
                Event::Track(TrackKey::Interface(NO_IFINDEX), Contribution::Fault),
            );
            self.start_poll();
            return;
        }
        let up = self.link_monitor.is_index_up(plan.link.index);
        self.feed(id, Event::Link(up));
    }

    /// Follows interface `ifindex` (one forwarding task per interface, however many instances
    /// use it).
    fn watch_link(&mut self, ifindex: u32) {
        if !self.watched.insert(ifindex) {
            return;
        }
        let mut rx = self.link_monitor.subscribe(ifindex);
        let tx = self.link_tx.clone();
        tokio::spawn(async move {
            rx.borrow_and_update();
            while rx.changed().await.is_ok() {
                let up = *rx.borrow_and_update();
                if tx.send((ifindex, up)).is_err() {
                    return;
                }
            }
        });
    }

    /// Starts what [`Self::adopt`] queued (after the trackers' first reports).
    fn start_adopted(&mut self) {
        for (id, ev) in std::mem::take(&mut self.starting) {
            self.feed(id, ev);
        }
    }

    /// Sends what is queued, ignoring a gone effects task (it is reported by the loop).
    fn flush_quietly(&mut self) {
        let _ = self.flush();
    }

    /// SIGTERM: every instance releases (priority 0 in one batch per socket, then addresses,
    /// routes, rules); returns once the effects task has done it all, STOP scripts included.
    async fn shutdown(&mut self) -> Result<(), Failure> {
        for id in self.order.clone() {
            self.feed(id, Event::Shutdown);
        }
        self.flush()?;
        for id in std::mem::take(&mut self.order) {
            self.leave(id);
            self.node.remove(id);
            self.slots[id.index()] = None;
            self.jobs
                .send(Job::Uninstall {
                    id,
                    remove_vmac: true,
                })
                .map_err(|_| Failure::Effects)?;
        }
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Finish(tx))
            .map_err(|_| Failure::Effects)?;
        rx.await.map_err(|_| Failure::Effects)
    }

    fn status(&self) -> Vec<InstanceStatus> {
        self.order
            .iter()
            .filter_map(|&id| {
                let slot = self.slots.get(id.index())?.as_ref()?;
                let inst = self.node.get(id)?;
                Some(status_of(slot, inst))
            })
            .collect()
    }
}

/// How long a socket's packets may gather before they are read, given the state and
/// Skew_Time of each instance on it: none while one is Master (a Master answers an advert at
/// once: a higher priority makes it step down, a lower one gets an advert back). A Backup never
/// acts on an advert at once (RFC 5798 §6.4.2: it moves its Master_Down timer, from the
/// advert's arrival, which the receive timestamp keeps), so reading its adverts a little late
/// changes nothing but the wakeups they cost. The window stays under half the shortest
/// Skew_Time of a Backup: a priority-0 advert's Skew_Time then runs from its arrival and ends
/// after it is read.
fn batch_window(instances: impl Iterator<Item = (State, Duration)>) -> Option<Duration> {
    let mut window = BATCH_WINDOW;
    for (state, skew) in instances {
        match state {
            State::Master => return None,
            State::Backup => window = window.min(skew / 2),
            _ => {}
        }
    }
    (window >= MIN_BATCH_WINDOW).then_some(window)
}

/// When a packet read `now` (the loop's clock; `wall` the wall clock) arrived, from its
/// receive timestamp: at most [`MAX_RX_AGE`] earlier, never later.
fn arrival(now: Duration, wall: SystemTime, stamp: Option<SystemTime>) -> Duration {
    let age = stamp
        .and_then(|t| wall.duration_since(t).ok())
        .unwrap_or_default();
    now.saturating_sub(age.min(MAX_RX_AGE))
}

/// Whether any socket not gathering is readable (readiness is left set for
/// [`Engine::read_sockets`]; a gathering one is read when its time comes).
fn poll_readable(links: &[LinkSlot], cx: &mut Context<'_>) -> Poll<()> {
    let mut ready = false;
    for l in links.iter().filter(|l| l.read_at.is_none()) {
        if l.sock.poll_readable(cx).is_ready() {
            ready = true;
        }
    }
    if ready {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

/// The next deletion (`None`: events were missed); never once the monitor is gone.
async fn recv_deletion(rx: &mut Option<broadcast::Receiver<Key>>) -> Option<Key> {
    let Some(r) = rx else {
        return std::future::pending().await;
    };
    match r.recv().await {
        Ok(k) => Some(k),
        Err(broadcast::error::RecvError::Lagged(n)) => {
            warn!(
                missed = n,
                "deletion events missed; checking every tracked object"
            );
            None
        }
        Err(broadcast::error::RecvError::Closed) => {
            *rx = None;
            std::future::pending().await
        }
    }
}

/// The next look for source addresses; never when none is awaited.
async fn source_tick(poll: &mut Option<tokio::time::Interval>) {
    match poll {
        Some(p) => {
            p.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn recv_track(rx: &mut Option<mpsc::Receiver<TrackMsg>>) -> Option<TrackMsg> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// The AH state of an instance with `auth_type AH`.
/// The destination a v3 advert's checksum names: the packet's, or with keepalived's old
/// unicast checksum the IPv4 group (keepalived before 1.3.6 summed that for unicast too).
pub(super) fn checksum_dst(dst: IpAddr, old: bool) -> IpAddr {
    match dst {
        IpAddr::V4(v4) if old && !v4.is_multicast() => packet::MCAST_V4.into(),
        _ => dst,
    }
}

fn ah_session(plan: &Plan) -> Option<AhSession> {
    match plan.core.vrrp.auth {
        Auth::Ah(key) => Some(AhSession::new(key, !plan.peers.is_empty())),
        _ => None,
    }
}

/// A socket that could not be opened: a descriptor shortage said as such (keepalived's users
/// meet it under systemd's default soft limit of 1024), anything else with the interface.
fn open_error(e: std::io::Error, ifname: &str) -> anyhow::Error {
    if sysio::is_descriptor_shortage(&e) {
        anyhow::anyhow!(
            "out of file descriptors opening the VRRP socket on {ifname} ({e}); raise the open-files limit (LimitNOFILE)"
        )
    } else {
        anyhow::Error::new(e).context(format!("opening the VRRP socket on {ifname}"))
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn status_of(slot: &Slot, inst: &Instance) -> InstanceStatus {
    let p = &slot.plan;
    let vrrp = inst.vrrp();
    let cfg = vrrp.config();
    InstanceStatus {
        name: p.name.clone(),
        state: inst.state(),
        interface: p.link.name.clone(),
        vrid: cfg.vrid,
        version: cfg.version,
        base_priority: cfg.priority,
        effective_priority: vrrp.priority(),
        master_adver_int: f64::from(vrrp.master_adver_int()) / 100.0,
        master_addr: vrrp.master_addr(),
        source_addr: p.dest.src,
        unicast_peers: p.peers.clone(),
        preempt: cfg.preempt,
        vips: p.vips[..p.advertised]
            .iter()
            .map(|(v, _)| plan::vip_text(v))
            .collect(),
        excluded_vips: p.vips[p.advertised..]
            .iter()
            .map(|(v, _)| plan::vip_text(v))
            .collect(),
        trackers: inst
            .trackers()
            .map(|(k, c)| {
                let (kind, name) = match k {
                    TrackKey::Interface(i) if *i == p.link.index => {
                        ("interface", p.link.name.clone())
                    }
                    TrackKey::Interface(i) => (
                        "interface",
                        interface_name(*i).unwrap_or_else(|| format!("ifindex {i}")),
                    ),
                    TrackKey::Script(n) => ("script", n.clone()),
                    TrackKey::File(n) => ("file", n.clone()),
                    TrackKey::Process(n) => ("process", n.clone()),
                    TrackKey::VirtualServer(n) => ("virtual_server", n.clone()),
                    TrackKey::Source => ("source_address", p.dest.src.to_string()),
                };
                let delta = match c {
                    Contribution::Delta(d) => Some(*d),
                    Contribution::Fault => None,
                };
                TrackerStatus { kind, name, delta }
            })
            .collect(),
        counters: inst.counters().clone(),
        master_priority: slot.master_priority,
        last_transition: slot.last_transition.0,
        last_transition_from: slot.last_transition.1,
        last_transition_reason: inst.last_cause().map(|c| c.to_string()),
    }
}

/// The name of interface `index` in our network namespace (sysfs shows the namespace's own).
fn interface_name(index: u32) -> Option<String> {
    std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .find_map(|e| {
            let i: u32 = std::fs::read_to_string(e.path().join("ifindex"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            (i == index).then(|| e.file_name().to_string_lossy().into_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn only_links_without_a_master_gather_and_within_half_the_shortest_skew() {
        let skew = |ms: f64| Duration::from_secs_f64(ms / 1000.0);
        // Backups at priority 100, 0.1 s (Skew_Time 60.9 ms): the full window.
        let backups = [(State::Backup, skew(60.9)), (State::Backup, skew(60.9))];
        assert_eq!(batch_window(backups.into_iter()), Some(BATCH_WINDOW));
        // One Master among them: read at once.
        let mixed = [(State::Backup, skew(60.9)), (State::Master, skew(3.9))];
        assert_eq!(batch_window(mixed.into_iter()), None);
        // A Backup at 254 (Skew_Time 0.78 ms at 0.1 s): half of it.
        let high = [(State::Backup, skew(60.9)), (State::Backup, skew(0.78))];
        assert_eq!(batch_window(high.into_iter()), Some(skew(0.39)));
        // Shorter than a timer is worth: read at once.
        assert_eq!(batch_window([(State::Backup, skew(0.3))].into_iter()), None);
        // Instances that do not listen (Fault, Initialize) do not shorten it.
        let idle = [(State::Fault, skew(0.1)), (State::Initialize, skew(0.1))];
        assert_eq!(batch_window(idle.into_iter()), Some(BATCH_WINDOW));
    }

    #[test]
    fn arrival_is_the_receive_timestamp_bounded_to_the_safe_side() {
        let now = Duration::from_secs(100);
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // Received 1.5 ms before it was read.
        assert_eq!(
            arrival(now, wall, Some(wall - 3 * MS / 2)),
            now - 3 * MS / 2
        );
        // No timestamp, or one from the future (the wall clock stepped back): now.
        assert_eq!(arrival(now, wall, None), now);
        assert_eq!(arrival(now, wall, Some(wall + MS)), now);
        // The wall clock stepped forward: never more than MAX_RX_AGE old (a later deadline,
        // not a takeover while the Master is alive).
        let hour = Duration::from_secs(3600);
        assert_eq!(arrival(now, wall, Some(wall - hour)), now - MAX_RX_AGE);
        // Early in the loop's life.
        assert_eq!(arrival(MS, wall, Some(wall - 5 * MS)), Duration::ZERO);
    }
}
