//! `vrrp_sync_group`: keepalived's rules for keeping members in step (`vrrp_sync.c`), sans-IO.
//!
//! - A member's own fault (its trackers, its interface) puts every other member in FAULT; they
//!   leave it when no member has a fault of its own ([`Group::set_own_fault`]).
//! - A member that becomes Master pulls the Backups along at once (`vrrp_sync_master`).
//! - A Master that falls back to Backup pushes the other Masters back (`vrrp_sync_backup`).
//! - A Backup whose down timer fires goes Master only if every other member is Master or wants
//!   to be (its own timer fired too); otherwise it waits another down interval
//!   (`vrrp_sync_can_goto_master`, [`Group::may_go_master`]).
//! - The group as a whole is notified when every member has reached the same state.
//!
//! Members are indexes `0..n`; what the group asks of them comes back as [`Cmd`]s.

use crate::fsm::State;

/// What the group asks of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// Another member has (true) / no other member has (false) a fault of its own.
    Fault(bool),
    /// Follow to Master.
    Master,
    /// Follow to Backup.
    Backup,
}

#[derive(Debug, Clone)]
struct Member {
    state: State,
    wants_master: bool,
    own_fault: bool,
    /// The last [`Cmd::Fault`] sent.
    group_fault: bool,
}

/// One sync group's shared state.
#[derive(Debug, Clone)]
pub struct Group {
    members: Vec<Member>,
    /// The state last notified for the whole group.
    notified: Option<State>,
}

/// What a member's transition means for the group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moves {
    /// `(member, command)` for the others, in member order.
    pub cmds: Vec<(usize, Cmd)>,
    /// Every member is now in this state, not notified before: the group's notification.
    pub group_entered: Option<State>,
}

impl Group {
    /// A group of `n` members, all in INIT.
    pub fn new(n: usize) -> Self {
        Self {
            members: vec![
                Member {
                    state: State::Initialize,
                    wants_master: false,
                    own_fault: false,
                    group_fault: false,
                };
                n
            ],
            notified: None,
        }
    }

    /// A group rebuilt by a reload from its members' current states and own faults; the state
    /// they share, if any, counts as notified (a reload is no news).
    pub fn resume(members: &[(State, bool)]) -> (Self, Vec<(usize, Cmd)>) {
        let mut g = Self::new(members.len());
        for (m, &(state, _)) in g.members.iter_mut().zip(members) {
            m.state = state;
        }
        let first = members.first().map(|m| m.0);
        if first.is_some() && members.iter().all(|m| Some(m.0) == first) {
            g.notified = first;
        }
        let mut cmds = Vec::new();
        for (i, &(_, fault)) in members.iter().enumerate() {
            cmds.extend(g.set_own_fault(i, fault));
        }
        (g, cmds)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The state every member shares, if they do.
    pub fn state(&self) -> Option<State> {
        let first = self.members.first()?.state;
        self.members
            .iter()
            .all(|m| m.state == first)
            .then_some(first)
    }

    /// Member `me` entered `to` from `from`.
    pub fn transition(&mut self, me: usize, from: State, to: State) -> Moves {
        self.members[me].state = to;
        self.members[me].wants_master = false;
        let cmds = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != me)
            .filter_map(|(i, m)| match (to, m.state) {
                (State::Master, State::Backup) => Some((i, Cmd::Master)),
                (State::Backup, State::Master) if from == State::Master => Some((i, Cmd::Backup)),
                _ => None,
            })
            .collect();
        let all_same = self.members.iter().all(|m| m.state == to);
        let group_entered = (all_same && self.notified != Some(to)).then(|| {
            self.notified = Some(to);
            to
        });
        Moves {
            cmds,
            group_entered,
        }
    }

    /// Member `me`'s own trackers report a fault (or none): every member is told whether some
    /// member other than itself has one, when that changed.
    pub fn set_own_fault(&mut self, me: usize, fault: bool) -> Vec<(usize, Cmd)> {
        self.members[me].own_fault = fault;
        let faulty: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].own_fault)
            .collect();
        let mut cmds = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            let other = faulty.iter().any(|&j| j != i);
            if other != m.group_fault {
                m.group_fault = other;
                cmds.push((i, Cmd::Fault(other)));
            }
        }
        cmds
    }

    /// Whether another member has a fault of its own (member `me` must be in FAULT).
    pub fn group_fault(&self, me: usize) -> bool {
        self.members[me].group_fault
    }

    /// Member `me`'s down timer fired: may it go Master? Records that it wants to either way.
    pub fn may_go_master(&mut self, me: usize) -> bool {
        self.members[me].wants_master = true;
        self.members
            .iter()
            .enumerate()
            .all(|(i, m)| i == me || m.state == State::Master || m.wants_master)
    }

    /// Member `me` heard a Master it does not preempt: it no longer wants Master.
    pub fn clear_want(&mut self, me: usize) {
        self.members[me].wants_master = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::{Backup as B, Fault as F, Initialize as I, Master as M};

    #[test]
    fn master_pulls_backups_and_backup_pushes_masters() {
        let mut g = Group::new(3);
        for i in 0..3 {
            let m = g.transition(i, I, B);
            assert!(m.cmds.is_empty());
            assert_eq!(m.group_entered, (i == 2).then_some(B));
        }
        // Gate: the first to want Master waits for the others.
        assert!(!g.may_go_master(0));
        assert!(!g.may_go_master(1));
        assert!(g.may_go_master(2));
        let m = g.transition(2, B, M);
        assert_eq!(m.cmds, [(0, Cmd::Master), (1, Cmd::Master)]);
        assert_eq!(m.group_entered, None);
        assert_eq!(g.transition(0, B, M).cmds, [(1, Cmd::Master)]);
        assert_eq!(g.transition(1, B, M).group_entered, Some(M));
        // One falls back: the other Masters follow; nothing is sent for FAULT or STOP.
        let m = g.transition(1, M, B);
        assert_eq!(m.cmds, [(0, Cmd::Backup), (2, Cmd::Backup)]);
        assert!(g.transition(0, M, F).cmds.is_empty());
        assert!(g.transition(2, M, I).cmds.is_empty());
        // A wish is forgotten on hearing a Master we do not preempt.
        g.transition(0, F, B);
        g.transition(2, I, B);
        assert!(!g.may_go_master(0));
        g.clear_want(0);
        assert!(!g.may_go_master(1));
        assert!(!g.may_go_master(2), "0 no longer wants Master");
        assert_eq!(g.state(), Some(B));
    }

    #[test]
    fn one_own_fault_faults_the_others_until_none_left() {
        let mut g = Group::new(3);
        assert_eq!(
            g.set_own_fault(0, true),
            [(1, Cmd::Fault(true)), (2, Cmd::Fault(true))]
        );
        assert_eq!(g.set_own_fault(1, true), [(0, Cmd::Fault(true))]);
        // 1 still faults 0 and 2.
        assert_eq!(g.set_own_fault(0, false), [(1, Cmd::Fault(false))]);
        assert_eq!(
            g.set_own_fault(1, false),
            [(0, Cmd::Fault(false)), (2, Cmd::Fault(false))]
        );
        assert!(!g.group_fault(2));
    }

    #[test]
    fn resumed_group_is_not_news() {
        let (mut g, cmds) = Group::resume(&[(M, false), (M, false)]);
        assert!(cmds.is_empty());
        assert_eq!(g.transition(0, M, M).group_entered, None);
        let (g, cmds) = Group::resume(&[(B, true), (F, false)]);
        assert_eq!(cmds, [(1, Cmd::Fault(true))]);
        assert_eq!(g.state(), None);
    }
}
