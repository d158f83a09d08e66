//! Deterministic simulator: many state machines on a virtual LAN with a virtual clock.
//!
//! Every node runs one [`Instance`] for the same VRID. Adverts are multicast: a `Send` reaches
//! every other live node in the same partition group, each copy with its own delay (uniform in
//! the link's `[delay_min, delay_max]`) and loss. The clock is a [`Duration`] since the start of
//! the run (nanosecond resolution, so timers are exact); randomness comes from one seeded
//! [`SmallRng`], so a seed replays a run exactly.
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

use super::fsm::{Action, Config, Input, Instance, State};
use super::packet::Advert;

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

/// One state change of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEntry {
    pub at: Duration,
    pub node: usize,
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

#[derive(Debug)]
struct Node {
    cfg: Config,
    inst: Option<Instance>,
    /// Partition group: nodes talk only within a group.
    group: u32,
    /// Bumped on crash so in-flight packets to the old incarnation are dropped.
    epoch: u64,
    vips: bool,
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
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<Pending>>,
    /// Payloads of `queue`, by `seq`.
    payloads: HashMap<u64, Advert>,
    seq: u64,
    default_link: LinkParams,
    links: HashMap<(usize, usize), LinkParams>,
    trace: Vec<TraceEntry>,
    sends: Vec<SendRecord>,
    announces: Vec<AnnounceRecord>,
    drops: Vec<DropRecord>,
}

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
            links: HashMap::new(),
            trace: Vec::new(),
            sends: Vec::new(),
            announces: Vec::new(),
            drops: Vec::new(),
        }
    }

    /// Add a node (not started: call [`Sim::start`]). Returns its index.
    pub fn add_node(&mut self, cfg: Config) -> usize {
        self.nodes.push(Node {
            cfg,
            inst: None,
            group: 0,
            epoch: 0,
            vips: false,
        });
        self.nodes.len() - 1
    }

    /// Boot a fresh instance on `node` (also the restart after a crash).
    pub fn start(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if n.inst.is_some() {
            return;
        }
        n.inst = Some(Instance::new(n.cfg.clone()));
        self.input(node, Input::Startup);
    }

    /// Same as [`Sim::start`].
    pub fn restart(&mut self, node: usize) {
        self.start(node);
    }

    /// The node stops dead: no priority 0, its state and in-flight inbound packets are lost.
    pub fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if let Some(inst) = n.inst.take() {
            n.epoch += 1;
            n.vips = false;
            self.trace.push(TraceEntry {
                at: self.now,
                node,
                from: inst.state(),
                to: State::Initialize,
                crash: true,
            });
        }
    }

    /// Graceful stop (a Master sends priority 0). The node can be started again.
    pub fn shutdown(&mut self, node: usize) {
        self.input(node, Input::Shutdown);
        let n = &mut self.nodes[node];
        n.inst = None;
        n.epoch += 1;
    }

    /// Change a live node's effective priority.
    pub fn set_priority(&mut self, node: usize, prio: u8) {
        let now = self.now;
        let mut out = Vec::new();
        if let Some(inst) = self.nodes[node].inst.as_mut() {
            inst.set_priority(now, prio, &mut out);
        }
        self.apply(node, out);
    }

    /// Put a live node in FAULT (its interface went down, a weight-0 tracker failed).
    pub fn fault(&mut self, node: usize) {
        self.input(node, Input::Fault);
    }

    /// Clear a live node's fault: it goes back to Backup (or Master for an owner).
    pub fn clear_fault(&mut self, node: usize) {
        self.input(node, Input::FaultCleared);
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

    /// Parameters of the directed link `from -> to`.
    pub fn set_link(&mut self, from: usize, to: usize, params: LinkParams) {
        self.links.insert((from, to), params);
    }

    /// Parameters of every link without an override.
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

    /// The node's machine, `None` while crashed or stopped.
    pub fn instance(&self, node: usize) -> Option<&Instance> {
        self.nodes[node].inst.as_ref()
    }

    pub fn state(&self, node: usize) -> Option<State> {
        self.instance(node).map(Instance::state)
    }

    /// Whether the node currently holds the virtual addresses.
    pub fn holds_vips(&self, node: usize) -> bool {
        self.nodes[node].vips
    }

    /// Nodes in Master now.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.state(i) == Some(State::Master))
            .collect()
    }

    /// Nodes in Master at time `t` (after every event at `t`), from the trace.
    pub fn masters_at(&self, t: Duration) -> Vec<usize> {
        let mut state = vec![State::Initialize; self.nodes.len()];
        for e in self.trace.iter().take_while(|e| e.at <= t) {
            state[e.node] = e.to;
        }
        (0..state.len())
            .filter(|&i| state[i] == State::Master)
            .collect()
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
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.inst.as_ref()?.poll_timeout().map(|d| (d, i)))
                .min();
            match (next_delivery, next_timer) {
                (Some(d), timer) if d <= t && timer.is_none_or(|(at, _)| d <= at) => {
                    self.now = self.now.max(d);
                    self.deliver();
                }
                (_, Some((at, node))) if at <= t => {
                    self.now = self.now.max(at);
                    self.input(node, Input::Timeout);
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
        let advert = self
            .payloads
            .remove(&p.seq)
            .expect("payload of a queued packet");
        let to = &self.nodes[p.to];
        if to.epoch != p.epoch || to.inst.is_none() || !self.connected(p.from, p.to) {
            return;
        }
        let src: IpAddr = self.nodes[p.from].cfg.primary_addr;
        self.input(p.to, Input::Advert { src, advert });
    }

    fn input(&mut self, node: usize, input: Input) {
        let now = self.now;
        let mut out = Vec::new();
        if let Some(inst) = self.nodes[node].inst.as_mut() {
            inst.handle(now, input, &mut out);
        }
        self.apply(node, out);
    }

    fn apply(&mut self, node: usize, out: Vec<Action>) {
        for action in out {
            match action {
                Action::Send(advert) => self.broadcast(node, advert),
                Action::Transition { from, to } => self.trace.push(TraceEntry {
                    at: self.now,
                    node,
                    from,
                    to,
                    crash: false,
                }),
                Action::AddVips => self.nodes[node].vips = true,
                Action::RemoveVips => self.nodes[node].vips = false,
                Action::Announce(_) => self.announces.push(AnnounceRecord { at: self.now, node }),
            }
        }
    }

    fn broadcast(&mut self, from: usize, advert: Advert) {
        self.sends.push(SendRecord {
            at: self.now,
            node: from,
            priority: advert.priority,
        });
        for to in 0..self.nodes.len() {
            if to == from || self.nodes[to].inst.is_none() || !self.connected(from, to) {
                continue;
            }
            let link = self
                .links
                .get(&(from, to))
                .copied()
                .unwrap_or(self.default_link);
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
            self.payloads.insert(self.seq, advert.clone());
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
