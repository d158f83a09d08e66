//! Deterministic simulator: daemons on a virtual LAN with a virtual clock.
//!
//! Every simulated node runs a [`Node`]: one or more instances (VRIDs) and their sync groups,
//! driven exactly as the daemon drives them. Adverts are multicast: a `Send` reaches every other
//! live node in the same partition group, each copy with its own delay (uniform in the link's
//! `[delay_min, delay_max]`) and loss, and is handed to the instance of its VRID there. The
//! clock is a [`Duration`] since the start of the run (nanosecond resolution, so timers are
//! exact); randomness comes from one seeded [`SmallRng`], so a seed replays a run exactly.
//! Nodes can crash, shut down, lose their link (FAULT), change priority and reload their
//! configuration (adopted by difference, as the daemon does).
//!
//! Ordering at equal instants: deliveries first (in send order), then timers (lowest node index
//! first). A packet is dropped if its endpoints are partitioned at send *or* at delivery time;
//! a crash also drops every packet still in flight to the crashed node.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::announce::ScheduleConfig;
use super::fsm::{self, State};
use super::instance::{self, Effect, Event};
use super::node::{Id, Node, Output};
use super::packet::Advert;
use super::track::{Contribution, TrackKey};

/// Delay and loss of a directed link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    pub delay_min: Duration,
    pub delay_max: Duration,
    /// Probability in `[0, 1]` that one copy of an advert is lost.
    pub loss: f64,
}

impl LinkParams {
    /// A fixed delay, no loss.
    pub fn fixed(delay: Duration) -> Self {
        Self {
            delay_min: delay,
            delay_max: delay,
            loss: 0.0,
        }
    }
}

/// One state change of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEntry {
    pub at: Duration,
    pub node: usize,
    pub vrid: u8,
    pub from: State,
    pub to: State,
    /// The node crashed (its state was lost), rather than the machine transitioning.
    pub crash: bool,
}

/// One advert put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRecord {
    pub at: Duration,
    pub node: usize,
    pub vrid: u8,
    pub priority: u8,
}

/// One layer-2 announcement of the addresses (gratuitous ARP / unsolicited NA burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceRecord {
    pub at: Duration,
    pub node: usize,
}

/// One copy of an advert lost to link loss (not to a partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropRecord {
    pub at: Duration,
    pub from: usize,
    pub to: usize,
}

/// A running daemon: its node and, per configured instance, its id and whether it holds its
/// addresses.
#[derive(Debug)]
struct Live {
    node: Node,
    ids: Vec<Id>,
    vips: Vec<bool>,
}

#[derive(Debug)]
struct SimNode {
    cfgs: Vec<instance::Config>,
    /// Sync groups, as indexes into `cfgs`.
    groups: Vec<Vec<usize>>,
    live: Option<Live>,
    /// Whether the node's interface is up (down: every instance in FAULT).
    link_up: bool,
    /// Partition group: nodes talk only within a group.
    group: u32,
    /// Bumped on crash so in-flight packets to the old incarnation are dropped.
    epoch: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    at: Duration,
    seq: u64,
    to: usize,
    from: usize,
    epoch: u64,
}

/// The virtual LAN.
#[derive(Debug)]
pub struct Sim {
    now: Duration,
    rng: SmallRng,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<Pending>>,
    /// Payloads of `queue` and their source address, by `seq`.
    payloads: HashMap<u64, (IpAddr, Advert)>,
    seq: u64,
    default_link: LinkParams,
    trace: Vec<TraceEntry>,
    sends: Vec<SendRecord>,
    announces: Vec<AnnounceRecord>,
    drops: Vec<DropRecord>,
}

/// An instance configuration around a bare state machine's: one announcement round at once
/// for each reason to announce (recorded, see [`Sim::announcements`]), the interface tracked,
/// no reload options.
pub fn instance_config(vrrp: fsm::Config) -> instance::Config {
    instance::Config {
        vrrp,
        announce: ScheduleConfig {
            master_delay: Duration::ZERO,
            master_repeat: 1,
            lower_prio_delay: Duration::ZERO,
            lower_prio_repeat: 1,
            ..ScheduleConfig::default()
        },
        ifindex: 1,
        track_primary: true,
        fifo_states_on_reload: false,
    }
}

/// The tracker [`Sim::set_priority`] moves the priority with.
const PRIORITY_KNOB: &str = "sim-priority";

impl Sim {
    pub fn new(seed: u64, default_link: LinkParams) -> Self {
        Self {
            now: Duration::ZERO,
            rng: SmallRng::seed_from_u64(seed),
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            payloads: HashMap::new(),
            seq: 0,
            default_link,
            trace: Vec::new(),
            sends: Vec::new(),
            announces: Vec::new(),
            drops: Vec::new(),
        }
    }

    /// Add a node running one instance (not started: call [`Sim::start`]). Returns its index.
    pub fn add_node(&mut self, cfg: fsm::Config) -> usize {
        self.add_router(vec![instance_config(cfg)], Vec::new())
    }

    /// Add a node running several instances, with sync groups (indexes into `cfgs`).
    pub fn add_router(&mut self, cfgs: Vec<instance::Config>, groups: Vec<Vec<usize>>) -> usize {
        self.nodes.push(SimNode {
            cfgs,
            groups,
            live: None,
            link_up: true,
            group: 0,
            epoch: 0,
        });
        self.nodes.len() - 1
    }

    /// Boot the node (also the restart after a crash): every instance starts.
    pub fn start(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if n.live.is_some() {
            return;
        }
        let mut live = Live {
            node: Node::new(),
            ids: Vec::new(),
            vips: vec![false; n.cfgs.len()],
        };
        for c in &n.cfgs {
            live.ids
                .push(live.node.insert(instance::Instance::new(c.clone())));
        }
        let groups: Vec<Vec<Id>> = n
            .groups
            .iter()
            .map(|g| g.iter().map(|&i| live.ids[i]).collect())
            .collect();
        let ids = live.ids.clone();
        let up = n.link_up;
        let mut out = Vec::new();
        live.node
            .set_groups(self.now, &groups, false, false, &mut out);
        n.live = Some(live);
        self.apply(node, out);
        for id in &ids {
            self.feed(node, *id, Event::Link(up));
        }
        for id in ids {
            self.feed(
                node,
                id,
                Event::Start {
                    delay: Duration::ZERO,
                    resume: None,
                },
            );
        }
    }

    /// Same as [`Sim::start`].
    pub fn restart(&mut self, node: usize) {
        self.start(node);
    }

    /// The node stops dead: no priority 0, its state and in-flight inbound packets are lost.
    pub fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if let Some(live) = n.live.take() {
            n.epoch += 1;
            for (i, id) in live.ids.iter().enumerate() {
                let inst = live.node.get(*id).expect("instance");
                self.trace.push(TraceEntry {
                    at: self.now,
                    node,
                    vrid: n.cfgs[i].vrrp.vrid,
                    from: inst.state(),
                    to: State::Initialize,
                    crash: true,
                });
            }
        }
    }

    /// Graceful stop (a Master sends priority 0). The node can be started again.
    pub fn shutdown(&mut self, node: usize) {
        for id in self.ids(node) {
            self.feed(node, id, Event::Shutdown);
        }
        let n = &mut self.nodes[node];
        n.live = None;
        n.epoch += 1;
    }

    /// Change a live node's effective priority (of its first instance), as a tracker would.
    pub fn set_priority(&mut self, node: usize, prio: u8) {
        let base = i32::from(self.nodes[node].cfgs[0].vrrp.priority);
        if let Some(&id) = self.ids(node).first() {
            let c = Contribution::Delta(i32::from(prio) - base);
            self.feed(
                node,
                id,
                Event::Track(TrackKey::Script(PRIORITY_KNOB.into()), c),
            );
        }
    }

    /// A tracker of instance `index` of the node reports `c`.
    pub fn track(&mut self, node: usize, index: usize, key: TrackKey, c: Contribution) {
        if let Some(&id) = self.ids(node).get(index) {
            self.feed(node, id, Event::Track(key, c));
        }
    }

    /// The node's interface goes down: every instance in FAULT.
    pub fn fault(&mut self, node: usize) {
        self.set_interface(node, false);
    }

    /// The node's interface comes back: its instances leave FAULT.
    pub fn clear_fault(&mut self, node: usize) {
        self.set_interface(node, true);
    }

    fn set_interface(&mut self, node: usize, up: bool) {
        if self.nodes[node].live.is_none() {
            return;
        }
        self.nodes[node].link_up = up;
        for id in self.ids(node) {
            self.feed(node, id, Event::Link(up));
        }
    }

    /// The node reloads `cfgs` (and `groups`), adopting them by difference as the daemon does:
    /// an instance (by VRID) configured as before goes on untouched; one whose configuration
    /// changed starts again in the state it was in (a Master stays Master); one no longer
    /// configured is released; a new one starts.
    pub fn reload(&mut self, node: usize, cfgs: Vec<instance::Config>, groups: Vec<Vec<usize>>) {
        let Some(mut live) = self.nodes[node].live.take() else {
            self.nodes[node].cfgs = cfgs;
            self.nodes[node].groups = groups;
            return;
        };
        let old = std::mem::take(&mut self.nodes[node].cfgs);
        let mut out = Vec::new();
        let mut ids = Vec::new();
        let mut vips = Vec::new();
        let mut starts = Vec::new();
        let mut kept = Vec::new();
        for c in &cfgs {
            match old.iter().position(|o| o.vrrp.vrid == c.vrrp.vrid) {
                Some(i) if old[i] == *c => {
                    ids.push(live.ids[i]);
                    vips.push(live.vips[i]);
                    kept.push(live.ids[i]);
                }
                Some(i) => {
                    let id = live.ids[i];
                    let prev = live.node.get(id).expect("instance");
                    let was_master = prev.state() == State::Master;
                    let mut inst = instance::Instance::new(c.clone());
                    inst.set_counters(prev.counters().clone());
                    live.node.replace(id, inst);
                    ids.push(id);
                    vips.push(live.vips[i]);
                    starts.push((id, Some(was_master)));
                }
                None => {
                    let id = live.node.insert(instance::Instance::new(c.clone()));
                    ids.push(id);
                    vips.push(false);
                    starts.push((id, None));
                }
            }
        }
        let gone: Vec<(usize, Id)> = old
            .iter()
            .enumerate()
            .filter(|(_, o)| !cfgs.iter().any(|c| c.vrrp.vrid == o.vrrp.vrid))
            .map(|(i, _)| (i, live.ids[i]))
            .collect();
        // The dropped ones release as on a stop, under their old index.
        self.nodes[node].cfgs = old;
        self.nodes[node].live = Some(live);
        for &(_, id) in &gone {
            self.feed(node, id, Event::Removed);
            self.feed(node, id, Event::Shutdown);
        }
        let n = &mut self.nodes[node];
        let mut live = n.live.take().expect("live");
        for (_, id) in gone {
            live.node.remove(id);
        }
        live.ids = ids;
        live.vips = vips;
        n.cfgs = cfgs;
        n.groups = groups;
        let gids: Vec<Vec<Id>> = n
            .groups
            .iter()
            .map(|g| g.iter().map(|&i| live.ids[i]).collect())
            .collect();
        live.node.set_groups(self.now, &gids, true, false, &mut out);
        let up = n.link_up;
        n.live = Some(live);
        self.apply(node, out);
        for id in kept {
            self.feed(node, id, Event::Reloaded);
        }
        for (id, resume) in starts {
            self.feed(node, id, Event::Link(up));
            self.feed(
                node,
                id,
                Event::Start {
                    delay: Duration::ZERO,
                    resume,
                },
            );
        }
    }

    /// Split the LAN: each slice is a group; nodes not listed form one more group.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        for n in &mut self.nodes {
            n.group = u32::MAX;
        }
        for (g, members) in groups.iter().enumerate() {
            for &m in *members {
                self.nodes[m].group = g as u32;
            }
        }
    }

    /// Reconnect everyone.
    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.group = 0;
        }
    }

    /// Parameters of every link.
    pub fn set_default_link(&mut self, params: LinkParams) {
        self.default_link = params;
    }

    pub fn now(&self) -> Duration {
        self.now
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.nodes[a].group == self.nodes[b].group
    }

    fn ids(&self, node: usize) -> Vec<Id> {
        self.nodes[node]
            .live
            .as_ref()
            .map(|l| l.ids.clone())
            .unwrap_or_default()
    }

    /// Instance `index` of the node, `None` while the node is crashed or stopped.
    pub fn instance_at(&self, node: usize, index: usize) -> Option<&instance::Instance> {
        let live = self.nodes[node].live.as_ref()?;
        live.node.get(*live.ids.get(index)?)
    }

    /// The configuration of the node's instance `index`.
    pub fn instance_config_of(&self, node: usize, index: usize) -> instance::Config {
        self.nodes[node].cfgs[index].clone()
    }

    /// The machine of the node's (first) instance, `None` while crashed or stopped.
    pub fn instance(&self, node: usize) -> Option<&fsm::Instance> {
        self.instance_at(node, 0).map(instance::Instance::vrrp)
    }

    /// The state of the node's (first) instance.
    pub fn state(&self, node: usize) -> Option<State> {
        self.instance(node).map(fsm::Instance::state)
    }

    /// The state of the node's instance for `vrid`.
    pub fn state_of(&self, node: usize, vrid: u8) -> Option<State> {
        let i = self.index_of(node, vrid)?;
        self.instance_at(node, i).map(instance::Instance::state)
    }

    fn index_of(&self, node: usize, vrid: u8) -> Option<usize> {
        self.nodes[node]
            .cfgs
            .iter()
            .position(|c| c.vrrp.vrid == vrid)
    }

    /// Whether the node's (first) instance holds its virtual addresses.
    pub fn holds_vips(&self, node: usize) -> bool {
        self.holds(node, 0)
    }

    /// Whether the node's instance `index` holds its virtual addresses.
    pub fn holds(&self, node: usize, index: usize) -> bool {
        self.nodes[node]
            .live
            .as_ref()
            .is_some_and(|l| l.vips.get(index).copied().unwrap_or(false))
    }

    /// Nodes whose (first) instance is Master now.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.state(i) == Some(State::Master))
            .collect()
    }

    /// Nodes whose instance for `vrid` is Master now.
    pub fn masters_of(&self, vrid: u8) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.state_of(i, vrid) == Some(State::Master))
            .collect()
    }

    /// Nodes with an instance in Master at time `t` (after every event at `t`), from the trace.
    pub fn masters_at(&self, t: Duration) -> Vec<usize> {
        let mut state: HashMap<(usize, u8), State> = HashMap::new();
        for e in self.trace.iter().take_while(|e| e.at <= t) {
            state.insert((e.node, e.vrid), e.to);
        }
        let mut m: Vec<usize> = state
            .iter()
            .filter(|(_, s)| **s == State::Master)
            .map(|((n, _), _)| *n)
            .collect();
        m.sort_unstable();
        m.dedup();
        m
    }

    /// Every state change so far, in time order.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// Every advert sent so far, in time order.
    pub fn sends(&self) -> &[SendRecord] {
        &self.sends
    }

    /// Every announcement so far, in time order.
    pub fn announcements(&self) -> &[AnnounceRecord] {
        &self.announces
    }

    /// Where a client on the LAN sends traffic for the addresses at time `t`: the node whose
    /// announcement reached it last. The client's neighbour entry moves only on
    /// announcements (a quiet client never re-resolves an entry it has): the worst case, and
    /// the one a Master stepping down silently leaves stuck on its MAC.
    pub fn client_entry_at(&self, t: Duration) -> Option<usize> {
        self.announces
            .iter()
            .take_while(|a| a.at <= t)
            .last()
            .map(|a| a.node)
    }

    /// Every copy lost to link loss so far, in time order.
    pub fn drops(&self) -> &[DropRecord] {
        &self.drops
    }

    /// Advance the clock by `d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Process every event up to and including `t`, then set the clock to `t`.
    pub fn run_until(&mut self, t: Duration) {
        loop {
            let next_delivery = self.queue.peek().map(|Reverse(p)| p.at);
            let next_timer = self
                .nodes
                .iter_mut()
                .enumerate()
                .filter_map(|(i, n)| n.live.as_mut()?.node.poll_timeout().map(|d| (d, i)))
                .min();
            match (next_delivery, next_timer) {
                (Some(d), timer) if d <= t && timer.is_none_or(|(at, _)| d <= at) => {
                    self.now = self.now.max(d);
                    self.deliver();
                }
                (_, Some((at, node))) if at <= t => {
                    self.now = self.now.max(at);
                    let mut out = Vec::new();
                    if let Some(live) = self.nodes[node].live.as_mut() {
                        live.node.handle_timeout(self.now, &mut out);
                    }
                    self.apply(node, out);
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
    }

    fn deliver(&mut self) {
        let Some(Reverse(p)) = self.queue.pop() else {
            return;
        };
        let (src, advert) = self
            .payloads
            .remove(&p.seq)
            .expect("payload of a queued packet");
        let to = &self.nodes[p.to];
        if to.epoch != p.epoch || to.live.is_none() || !self.connected(p.from, p.to) {
            return;
        }
        let Some(i) = self.index_of(p.to, advert.vrid) else {
            return;
        };
        let id = self.ids(p.to)[i];
        self.feed(p.to, id, Event::Advert { src, advert });
    }

    fn feed(&mut self, node: usize, id: Id, event: Event) {
        let now = self.now;
        let mut out = Vec::new();
        if let Some(live) = self.nodes[node].live.as_mut() {
            live.node.handle(now, id, event, &mut out);
        }
        self.apply(node, out);
    }

    fn apply(&mut self, node: usize, out: Vec<Output>) {
        for o in out {
            let Output::Instance(id, effect) = o else {
                continue;
            };
            let n = &mut self.nodes[node];
            let Some(live) = n.live.as_mut() else {
                continue;
            };
            let Some(i) = live.ids.iter().position(|x| *x == id) else {
                continue;
            };
            let (vrid, src) = (n.cfgs[i].vrrp.vrid, n.cfgs[i].vrrp.primary_addr);
            match effect {
                Effect::Send(advert) => self.broadcast(node, src, advert),
                Effect::Entered { from, to } => self.trace.push(TraceEntry {
                    at: self.now,
                    node,
                    vrid,
                    from,
                    to,
                    crash: false,
                }),
                Effect::AddVips => live.vips[i] = true,
                Effect::RemoveVips => live.vips[i] = false,
                Effect::Announce(_) => self.announces.push(AnnounceRecord { at: self.now, node }),
                _ => {}
            }
        }
    }

    fn broadcast(&mut self, from: usize, src: IpAddr, advert: Advert) {
        self.sends.push(SendRecord {
            at: self.now,
            node: from,
            vrid: advert.vrid,
            priority: advert.priority,
        });
        for to in 0..self.nodes.len() {
            if to == from || self.nodes[to].live.is_none() || !self.connected(from, to) {
                continue;
            }
            let link = self.default_link;
            if link.loss > 0.0 && self.rng.random_bool(link.loss.min(1.0)) {
                self.drops.push(DropRecord {
                    at: self.now,
                    from,
                    to,
                });
                continue;
            }
            let lo = link.delay_min.as_nanos() as u64;
            let hi = (link.delay_max.as_nanos() as u64).max(lo);
            let delay = Duration::from_nanos(self.rng.random_range(lo..=hi));
            self.seq += 1;
            self.payloads.insert(self.seq, (src, advert.clone()));
            self.queue.push(Reverse(Pending {
                at: self.now + delay,
                seq: self.seq,
                to,
                from,
                epoch: self.nodes[to].epoch,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::Config;
    use crate::packet::{Auth, Version};
    use std::net::Ipv4Addr;

    fn cfg(i: u8, priority: u8) -> Config {
        Config {
            vrid: 1,
            version: Version::V3,
            priority,
            advert_int: 10,
            preempt: true,
            preempt_delay: Duration::ZERO,
            start_master: false,
            primary_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)),
            vips: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100))],
            auth: Auth::None,
            lower_prio_no_advert: false,
            answer_before_stepping_down: true,
            down_timer_adverts: 3,
            skip_check_adv_addr: false,
        }
    }

    #[test]
    fn partition_crash_and_masters_at() {
        let d = Duration::from_millis(1);
        let mut sim = Sim::new(1, LinkParams::fixed(d));
        let a = sim.add_node(cfg(1, 200));
        let b = sim.add_node(cfg(2, 100));
        sim.start(a);
        sim.start(b);
        let mdi_a = sim.instance(a).unwrap().master_down_interval();
        sim.run_for(Duration::from_secs(1));
        assert_eq!(sim.masters(), vec![a]);
        assert_eq!(
            sim.masters_at(mdi_a - Duration::from_nanos(1)),
            Vec::<usize>::new()
        );
        assert_eq!(sim.masters_at(mdi_a), vec![a]);
        // Partitioned, b stops hearing a and takes over as well.
        sim.partition(&[&[a], &[b]]);
        sim.run_for(Duration::from_secs(1));
        assert_eq!(sim.masters(), vec![a, b]);
        sim.heal();
        sim.run_for(Duration::from_secs(1));
        assert_eq!(sim.masters(), vec![a]);
        // A crash loses the state and shows in the trace.
        sim.crash(a);
        assert_eq!(sim.state(a), None);
        assert!(sim.trace().last().unwrap().crash);
        sim.run_for(Duration::from_secs(1));
        assert_eq!(sim.masters(), vec![b]);
        assert!(sim.holds_vips(b) && !sim.holds_vips(a));
        assert!(sim.drops().is_empty());
    }

    #[test]
    fn master_fault_hands_over_after_skew_and_returns_after_clear() {
        let d = Duration::from_millis(1);
        let mut sim = Sim::new(1, LinkParams::fixed(d));
        let a = sim.add_node(cfg(1, 200));
        let b = sim.add_node(cfg(2, 100));
        sim.start(a);
        sim.start(b);
        sim.run_for(Duration::from_secs(1));
        assert_eq!(sim.masters(), vec![a]);
        let t = sim.now();
        sim.fault(a);
        assert_eq!(sim.state(a), Some(State::Fault));
        assert!(!sim.holds_vips(a));
        // The priority-0 advert arrives after 1 ms; b takes over after its Skew_Time.
        let skew_b = sim.instance(b).unwrap().skew_time();
        sim.run_for(Duration::from_secs(1));
        assert_eq!(sim.masters(), vec![b]);
        let took = sim.trace().iter().rfind(|e| e.node == b).unwrap().at;
        assert_eq!(took, t + d + skew_b);
        // a sends nothing while in FAULT (only the priority-0 advert at t).
        assert!(sim
            .sends()
            .iter()
            .filter(|s| s.node == a && s.at >= t)
            .all(|s| s.priority == 0));
        sim.clear_fault(a);
        assert_eq!(sim.state(a), Some(State::Backup));
        sim.run_for(Duration::from_secs(1));
        assert_eq!(sim.masters(), vec![a]);
        assert!(sim.holds_vips(a) && !sim.holds_vips(b));
    }
}
