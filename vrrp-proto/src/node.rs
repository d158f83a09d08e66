//! Every instance of one daemon and their sync groups, sans-IO, with one timer queue.
//!
//! The driver feeds [`Event`]s for an instance ([`Node::handle`]) and wakes the node at
//! [`Node::poll_timeout`] ([`Node::handle_timeout`]); what the instances and groups must have
//! done comes back as [`Output`]s, in order. A sync group's requests to its other members are
//! delivered within the same call, so one member's move carries the group along at once.
//!
//! The timer queue costs nothing per idle instance: a min-heap holds at most one live entry per
//! instance; a deadline that moves later (a Backup hearing its Master, the common case) is not
//! touched until its old entry reaches the top, and is then queued again at its new time
//! ([`Node::poll_timeout`] always answers the true earliest deadline).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use crate::fsm::State;
use crate::instance::{Effect, Event, Instance, SyncPort};
use crate::sync::{Cmd, Group};

/// An instance of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(u32);

impl Id {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A sync group of the node (an index into the groups given to [`Node::set_groups`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub usize);

/// What a sync group does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEffect {
    /// Every member reached `State`: the group's notification (scripts, FIFO, mail).
    Entered(State),
    /// The group's FIFO line alone (a reload with `fifo_write_vrrp_states_on_reload`).
    Reloaded(State),
    /// Member `by` moved member `target` along (`Cmd::Master` or `Cmd::Backup`), for the log.
    Moved { by: Id, target: Id, cmd: Cmd },
}

/// An effect and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Instance(Id, Effect),
    Group(GroupId, GroupEffect),
}

#[derive(Debug)]
struct Slot {
    inst: Instance,
    /// The earliest deadline of this instance in the heap, if any.
    queued: Option<Duration>,
    /// Its sync group and its index there.
    group: Option<(usize, usize)>,
}

#[derive(Debug)]
struct GroupSlot {
    group: Group,
    members: Vec<u32>,
}

/// The instances and sync groups of one daemon.
#[derive(Debug, Default)]
pub struct Node {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    groups: Vec<GroupSlot>,
    heap: BinaryHeap<Reverse<(Duration, u32)>>,
    pending: VecDeque<(u32, Event)>,
}

/// A member's view of its group while it handles an event.
struct Port<'a> {
    group: &'a mut Group,
    me: usize,
    cmds: Vec<(usize, Cmd)>,
    entered: Vec<State>,
}

impl SyncPort for Port<'_> {
    fn transition(&mut self, from: State, to: State) {
        let m = self.group.transition(self.me, from, to);
        self.cmds.extend(m.cmds);
        self.entered.extend(m.group_entered);
    }

    fn set_own_fault(&mut self, fault: bool) {
        let cmds = self.group.set_own_fault(self.me, fault);
        self.cmds.extend(cmds);
    }

    fn may_go_master(&mut self) -> bool {
        self.group.may_go_master(self.me)
    }

    fn clear_want(&mut self) {
        self.group.clear_want(self.me);
    }
}

impl Node {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instance (not started: send it [`Event::Start`]).
    pub fn insert(&mut self, inst: Instance) -> Id {
        let slot = Slot {
            inst,
            queued: None,
            group: None,
        };
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(slot);
                Id(i)
            }
            None => {
                self.slots.push(Some(slot));
                Id(self.slots.len() as u32 - 1)
            }
        }
    }

    /// Takes an instance out (after its [`Event::Shutdown`]). Its sync group, if any, must be
    /// set again with [`Node::set_groups`].
    pub fn remove(&mut self, id: Id) -> Option<Instance> {
        let slot = self.slots.get_mut(id.index())?.take()?;
        self.free.push(id.0);
        self.pending.retain(|(i, _)| *i != id.0);
        Some(slot.inst)
    }

    /// Puts `inst` in `id`'s place (a reload changed its configuration); returns the old one.
    pub fn replace(&mut self, id: Id, inst: Instance) -> Option<Instance> {
        let slot = self.slots.get_mut(id.index())?.as_mut()?;
        slot.queued = None;
        Some(std::mem::replace(&mut slot.inst, inst))
    }

    pub fn get(&self, id: Id) -> Option<&Instance> {
        self.slots.get(id.index())?.as_ref().map(|s| &s.inst)
    }

    pub fn get_mut(&mut self, id: Id) -> Option<&mut Instance> {
        self.slots
            .get_mut(id.index())?
            .as_mut()
            .map(|s| &mut s.inst)
    }

    /// Every instance, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (Id, &Instance)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((Id(i as u32), &s.as_ref()?.inst)))
    }

    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sync groups, each a list of members (a member in two groups stays in the first).
    /// Groups are rebuilt from their members' current states: a reload that leaves them as
    /// they were notifies nothing (`reloaded` and `fifo_states`: the group's FIFO line then).
    pub fn set_groups(
        &mut self,
        now: Duration,
        groups: &[Vec<Id>],
        reloaded: bool,
        fifo_states: bool,
        out: &mut Vec<Output>,
    ) {
        for s in self.slots.iter_mut().flatten() {
            s.group = None;
        }
        self.groups.clear();
        for (g, members) in groups.iter().enumerate() {
            let mut ids = Vec::new();
            for m in members {
                let Some(Some(s)) = self.slots.get_mut(m.index()) else {
                    continue;
                };
                if s.group.is_none() {
                    s.group = Some((g, ids.len()));
                    ids.push(m.0);
                }
            }
            let states: Vec<(State, bool)> = ids
                .iter()
                .map(|&i| {
                    let inst = &self.slots[i as usize].as_ref().expect("member").inst;
                    (inst.state(), inst.own_fault())
                })
                .collect();
            let (group, cmds) = Group::resume(&states);
            if reloaded && fifo_states {
                if let Some(st) = group.state().filter(|s| *s != State::Initialize) {
                    out.push(Output::Group(GroupId(g), GroupEffect::Reloaded(st)));
                }
            }
            for (m, c) in cmds {
                self.pending.push_back((ids[m], Event::Group(c)));
            }
            self.groups.push(GroupSlot {
                group,
                members: ids,
            });
        }
        self.run(now, out);
    }

    /// Feeds `event` to instance `id` (and whatever its group asks of the others).
    pub fn handle(&mut self, now: Duration, id: Id, event: Event, out: &mut Vec<Output>) {
        self.pending.push_back((id.0, event));
        self.run(now, out);
    }

    /// A lower bound of [`Node::poll_timeout`], at no cost: the earliest entry of the queue,
    /// which may belong to an instance whose deadline has moved later since.
    pub fn poll_timeout_bound(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// The next instant [`Node::handle_timeout`] has something to do. Entries whose
    /// instance's deadline moved later are queued again at their new time on the way.
    pub fn poll_timeout(&mut self) -> Option<Duration> {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            let Some(Some(slot)) = self.slots.get_mut(i as usize) else {
                self.heap.pop();
                continue;
            };
            if slot.queued != Some(t) {
                self.heap.pop();
                continue;
            }
            match slot.inst.poll_timeout() {
                Some(real) if real <= t => return Some(t),
                real => {
                    self.heap.pop();
                    slot.queued = real;
                    if let Some(r) = real {
                        self.heap.push(Reverse((r, i)));
                    }
                }
            }
        }
        None
    }

    /// Runs every instance whose deadline passed.
    pub fn handle_timeout(&mut self, now: Duration, out: &mut Vec<Output>) {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            let Some(Some(slot)) = self.slots.get_mut(i as usize) else {
                continue;
            };
            if slot.queued != Some(t) {
                // Stale: a later push for an earlier deadline replaced it.
                continue;
            }
            slot.queued = None;
            if slot.inst.poll_timeout().is_some_and(|d| d <= now) {
                self.step(now, i, None, out);
            }
            self.requeue(i);
            self.run(now, out);
        }
    }

    /// Processes the queued events (a group's requests cascade through it).
    fn run(&mut self, now: Duration, out: &mut Vec<Output>) {
        while let Some((i, ev)) = self.pending.pop_front() {
            self.step(now, i, Some(ev), out);
            self.requeue(i);
        }
    }

    /// One event (or the timeout, `None`) for instance `i`.
    fn step(&mut self, now: Duration, i: u32, ev: Option<Event>, out: &mut Vec<Output>) {
        let Some(Some(slot)) = self.slots.get_mut(i as usize) else {
            return;
        };
        let mut effects = Vec::new();
        let mut port = slot.group.map(|(g, me)| {
            (
                g,
                Port {
                    group: &mut self.groups[g].group,
                    me,
                    cmds: Vec::new(),
                    entered: Vec::new(),
                },
            )
        });
        {
            let sync: &mut dyn SyncPort = match &mut port {
                Some((_, p)) => p,
                None => &mut crate::instance::NoGroup,
            };
            match ev {
                Some(ev) => slot.inst.handle_in(now, ev, sync, &mut effects),
                None => slot.inst.handle_timeout_in(now, sync, &mut effects),
            }
        }
        out.extend(effects.into_iter().map(|e| Output::Instance(Id(i), e)));
        if let Some((g, port)) = port {
            let Port { cmds, entered, .. } = port;
            let members = &self.groups[g].members;
            for (m, c) in cmds {
                let target = members[m];
                if matches!(c, Cmd::Master | Cmd::Backup) {
                    out.push(Output::Group(
                        GroupId(g),
                        GroupEffect::Moved {
                            by: Id(i),
                            target: Id(target),
                            cmd: c,
                        },
                    ));
                }
                self.pending.push_back((target, Event::Group(c)));
            }
            for st in entered {
                out.push(Output::Group(GroupId(g), GroupEffect::Entered(st)));
            }
        }
    }

    /// Queues instance `i`'s deadline if the heap does not already hold an earlier one.
    fn requeue(&mut self, i: u32) {
        let Some(Some(slot)) = self.slots.get_mut(i as usize) else {
            return;
        };
        let Some(d) = slot.inst.poll_timeout() else {
            return;
        };
        if slot.queued.is_none_or(|q| d < q) {
            slot.queued = Some(d);
            self.heap.push(Reverse((d, i)));
        }
    }

    /// The members of group `g`.
    pub fn group_members(&self, g: GroupId) -> Vec<Id> {
        self.groups
            .get(g.0)
            .map(|s| s.members.iter().map(|&i| Id(i)).collect())
            .unwrap_or_default()
    }

    /// The sync group of `id`.
    pub fn group_of(&self, id: Id) -> Option<GroupId> {
        let (g, _) = self.slots.get(id.index())?.as_ref()?.group?;
        Some(GroupId(g))
    }

    /// Entries in the timer heap (a bound on its growth is part of its contract).
    pub fn timer_entries(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::ScheduleConfig;
    use crate::fsm;
    use crate::instance::{Config, Counters};
    use crate::packet::{Advert, Auth, Version};
    use std::net::{IpAddr, Ipv4Addr};

    fn cfg(vrid: u8) -> Config {
        Config {
            vrrp: fsm::Config {
                vrid,
                version: Version::V3,
                priority: 100,
                advert_int: 10,
                preempt: true,
                preempt_delay: Duration::ZERO,
                start_master: false,
                primary_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                vips: vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, vrid))],
                auth: Auth::None,
                lower_prio_no_advert: false,
                answer_before_stepping_down: true,
                down_timer_adverts: 3,
                skip_check_adv_addr: false,
            },
            announce: ScheduleConfig::default(),
            ifindex: 2,
            track_primary: true,
            fifo_states_on_reload: false,
        }
    }

    fn advert(vrid: u8) -> Event {
        Event::Advert {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)),
            advert: Advert {
                version: Version::V3,
                vrid,
                priority: 200,
                max_adver_int: 10,
                addrs: vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, vrid))],
                auth: Auth::None,
            },
        }
    }

    /// 255 Backups hearing their Master every 100 ms for 60 s: nobody takes over, and the timer
    /// queue stays at one entry per instance (a deadline moving later costs no heap operation).
    #[test]
    fn idle_backups_cost_one_timer_entry_each() {
        let mut node = Node::new();
        let ids: Vec<Id> = (1..=255u8)
            .map(|v| node.insert(Instance::new(cfg(v))))
            .collect();
        let mut out = Vec::new();
        for &id in &ids {
            node.handle(Duration::ZERO, id, Event::Link(true), &mut out);
            node.handle(
                Duration::ZERO,
                id,
                Event::Start {
                    delay: Duration::ZERO,
                    resume: None,
                },
                &mut out,
            );
        }
        out.clear();
        let mut wakes = 0;
        for tick in 1..=600u64 {
            let now = Duration::from_millis(tick * 100);
            while let Some(d) = node.poll_timeout().filter(|d| *d <= now) {
                wakes += 1;
                node.handle_timeout(d, &mut out);
            }
            // Nothing is due before the earliest down timer of an instance that hears its
            // Master (a stale entry is never the answer).
            assert!(node
                .poll_timeout()
                .is_some_and(|d| d > now + Duration::from_millis(200)));
            for (v, &id) in ids.iter().enumerate() {
                node.handle(now, id, advert(v as u8 + 1), &mut out);
            }
            assert!(
                node.timer_entries() <= ids.len(),
                "{}",
                node.timer_entries()
            );
        }
        assert!(out.is_empty(), "{out:?}");
        assert!(node.iter().all(|(_, i)| i.state() == State::Backup));
        // Deadlines that only moved later never wake anybody.
        assert_eq!(wakes, 0);
    }

    /// A reload restarts a changed Master in place with its counters: it is Master again at
    /// once, which is not a `Became master` (keepalived 2.2.7 keeps the state and counts
    /// nothing); a fresh start that wins is one.
    #[test]
    fn a_master_resumed_by_a_reload_is_not_counted_as_becoming_master() {
        let mut out = Vec::new();
        let mut resumed = Instance::new(cfg(1));
        resumed.set_counters(Counters {
            became_master: 1,
            ..Counters::default()
        });
        resumed.handle(Duration::ZERO, Event::Link(true), &mut out);
        let start = |resume| Event::Start {
            delay: Duration::ZERO,
            resume,
        };
        resumed.handle(Duration::ZERO, start(Some(true)), &mut out);
        assert_eq!(resumed.state(), State::Master);
        assert_eq!(resumed.counters().became_master, 1);

        let mut fresh = Instance::new(cfg(1));
        fresh.handle(Duration::ZERO, Event::Link(true), &mut out);
        fresh.handle(Duration::ZERO, start(None), &mut out);
        let down = fresh.poll_timeout().expect("a down timer");
        fresh.handle_timeout(down, &mut out);
        assert_eq!(fresh.state(), State::Master);
        assert_eq!(fresh.counters().became_master, 1);
    }

    #[test]
    fn ids_are_reused_and_stale_entries_skipped() {
        let mut node = Node::new();
        let a = node.insert(Instance::new(cfg(1)));
        let mut out = Vec::new();
        let start = Event::Start {
            delay: Duration::ZERO,
            resume: None,
        };
        node.handle(Duration::ZERO, a, Event::Link(true), &mut out);
        node.handle(Duration::ZERO, a, start.clone(), &mut out);
        assert!(node.poll_timeout().is_some());
        node.handle(Duration::ZERO, a, Event::Shutdown, &mut out);
        assert!(node.remove(a).is_some());
        let b = node.insert(Instance::new(cfg(2)));
        assert_eq!(a, b, "the slot is reused");
        out.clear();
        // The removed instance's deadline comes up and does nothing.
        node.handle_timeout(Duration::from_secs(1), &mut out);
        assert!(out.is_empty());
        assert_eq!(node.len(), 1);
        assert_eq!(node.get(b).map(Instance::state), Some(State::Initialize));
    }
}
