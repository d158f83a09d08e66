//! `vrrp_sync_group` at run time: the members' actors share one [`Group`] and keep each other
//! in step the way keepalived's `vrrp_sync.c` does.
//!
//! - A member's own fault (its trackers, its interface) puts every other member in FAULT; they
//!   leave it when no member has a fault of its own ([`Group::set_own_fault`]).
//! - A member that becomes Master pulls the Backups along at once (`vrrp_sync_master`).
//! - A Master that falls back to Backup pushes the other Masters back (`vrrp_sync_backup`).
//! - A Backup whose down timer fires goes Master only if every other member is Master or
//!   wants to be (its own timer fired too); otherwise it waits another down interval
//!   (`vrrp_sync_can_goto_master`).
//!
//! The group's notify scripts / FIFO lines run when every member has reached the same state.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tracing::info;

use crate::mail::StateMail;
use crate::notify::{Notifier, NotifyState};
use vrrp_proto::fsm::State;

/// What the group asks of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCmd {
    /// Another member has (true) / no member has (false) a fault of its own.
    Fault(bool),
    /// Follow to Master.
    Master,
    /// Follow to Backup.
    Backup,
}

struct Member {
    name: String,
    state: State,
    wants_master: bool,
    own_fault: bool,
    /// The last [`GroupCmd::Fault`] sent.
    group_fault: bool,
    tx: mpsc::UnboundedSender<GroupCmd>,
}

struct Inner {
    members: Vec<Member>,
    /// The state last notified for the whole group.
    notified: Option<State>,
}

/// One sync group, shared by its members' actors.
pub struct Group {
    name: String,
    inner: Mutex<Inner>,
    notifier: Option<Notifier>,
    /// `smtp_alert` mails of the group.
    mail: Mutex<Option<StateMail>>,
}

/// A member's handle on its group.
pub struct GroupLink {
    group: Arc<Group>,
    idx: usize,
    rx: mpsc::UnboundedReceiver<GroupCmd>,
}

impl Group {
    /// A group of the named members; returns one link per member, in order.
    pub fn start(
        name: &str,
        members: &[String],
        notifier: Option<Notifier>,
        mail: Option<StateMail>,
    ) -> Vec<GroupLink> {
        let mut rxs = Vec::new();
        let members = members
            .iter()
            .map(|m| {
                let (tx, rx) = mpsc::unbounded_channel();
                rxs.push(rx);
                Member {
                    name: m.clone(),
                    state: State::Initialize,
                    wants_master: false,
                    own_fault: false,
                    group_fault: false,
                    tx,
                }
            })
            .collect();
        let group = Arc::new(Group {
            name: name.to_string(),
            inner: Mutex::new(Inner {
                members,
                notified: None,
            }),
            notifier,
            mail: Mutex::new(mail),
        });
        rxs.into_iter()
            .enumerate()
            .map(|(idx, rx)| GroupLink {
                group: group.clone(),
                idx,
                rx,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("sync group lock poisoned")
    }
}

impl GroupLink {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.group.name
    }

    /// The next command for this member (pending forever once the group is gone).
    pub async fn recv(&mut self) -> GroupCmd {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    /// This member entered `to` from `from`.
    pub fn transition(&self, from: State, to: State) {
        let mut g = self.group.lock();
        let me = self.idx;
        g.members[me].state = to;
        g.members[me].wants_master = false;
        let name = g.members[me].name.clone();
        for (i, m) in g.members.iter().enumerate() {
            if i == me {
                continue;
            }
            let cmd = match (to, m.state) {
                (State::Master, State::Backup) => Some(GroupCmd::Master),
                (State::Backup, State::Master) if from == State::Master => Some(GroupCmd::Backup),
                _ => None,
            };
            if let Some(c) = cmd {
                info!(
                    "VRRP_Group({}) {name} is {}: moving {} along",
                    self.group.name,
                    if c == GroupCmd::Master {
                        "MASTER"
                    } else {
                        "BACKUP"
                    },
                    m.name
                );
                let _ = m.tx.send(c);
            }
        }
        // The group as a whole reached a state: its notify.
        let all_same = g.members.iter().all(|m| m.state == to);
        if all_same && g.notified != Some(to) {
            g.notified = Some(to);
            drop(g);
            info!(
                "VRRP_Group({}) Syncing instances to {} state",
                self.group.name,
                state_word(to)
            );
            let st = match to {
                State::Master => NotifyState::Master,
                State::Backup => NotifyState::Backup,
                State::Fault => NotifyState::Fault,
                State::Initialize => NotifyState::Stop,
            };
            if let Some(n) = &self.group.notifier {
                n.notify(st, 0);
            }
            if let Some(m) = self
                .group
                .mail
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
            {
                m.transition(st);
            }
        }
    }

    /// This member's own trackers report a fault (or none); every other member is told
    /// whether some member other than itself has one.
    pub fn set_own_fault(&self, fault: bool) {
        let mut g = self.group.lock();
        g.members[self.idx].own_fault = fault;
        let faults: Vec<bool> = g.members.iter().map(|m| m.own_fault).collect();
        for (i, m) in g.members.iter_mut().enumerate() {
            let other = faults.iter().enumerate().any(|(j, f)| j != i && *f);
            if other != m.group_fault {
                m.group_fault = other;
                let _ = m.tx.send(GroupCmd::Fault(other));
            }
        }
    }

    /// Our down timer fired: may we go Master? Records that we want to either way.
    pub fn may_go_master(&self) -> bool {
        let mut g = self.group.lock();
        g.members[self.idx].wants_master = true;
        g.members
            .iter()
            .enumerate()
            .all(|(i, m)| i == self.idx || m.state == State::Master || m.wants_master)
    }

    /// We heard a Master we do not preempt: we no longer want Master.
    pub fn clear_want(&self) {
        self.group.lock().members[self.idx].wants_master = false;
    }

    /// Runs the group's queued notify scripts to the end (on shutdown).
    pub async fn finish(self) {
        let GroupLink { group, .. } = self;
        if let Ok(g) = Arc::try_unwrap(group) {
            if let Some(n) = g.notifier {
                n.finish().await;
            }
        }
    }
}

fn state_word(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(n: usize) -> Vec<GroupLink> {
        let names: Vec<String> = (0..n).map(|i| format!("VI_{i}")).collect();
        Group::start("G", &names, None, None)
    }

    fn drain(l: &mut GroupLink) -> Vec<GroupCmd> {
        let mut v = Vec::new();
        while let Ok(c) = l.rx.try_recv() {
            v.push(c);
        }
        v
    }

    #[test]
    fn master_pulls_backups_and_backup_pushes_masters() {
        let mut l = links(3);
        for x in &l {
            x.transition(State::Initialize, State::Backup);
        }
        // Gate: the first to want Master waits for the others.
        assert!(!l[0].may_go_master());
        assert!(!l[1].may_go_master());
        assert!(l[2].may_go_master());
        l[2].transition(State::Backup, State::Master);
        assert_eq!(drain(&mut l[0]), vec![GroupCmd::Master]);
        assert_eq!(drain(&mut l[1]), vec![GroupCmd::Master]);
        assert!(drain(&mut l[2]).is_empty());
        l[0].transition(State::Backup, State::Master);
        l[1].transition(State::Backup, State::Master);
        // l[0] became Master while l[1] was still Backup: it was pulled (again, harmlessly).
        assert_eq!(drain(&mut l[1]), vec![GroupCmd::Master]);
        // One falls back: the other Masters follow; nothing is sent for FAULT or STOP.
        l[1].transition(State::Master, State::Backup);
        assert_eq!(drain(&mut l[0]), vec![GroupCmd::Backup]);
        assert_eq!(drain(&mut l[2]), vec![GroupCmd::Backup]);
        l[0].transition(State::Master, State::Fault);
        l[2].transition(State::Master, State::Initialize);
        assert!(drain(&mut l[1]).is_empty());
        // A wish is forgotten on hearing a Master we do not preempt.
        l[0].transition(State::Fault, State::Backup);
        l[2].transition(State::Initialize, State::Backup);
        assert!(!l[0].may_go_master());
        l[0].clear_want();
        assert!(!l[1].may_go_master());
        assert!(!l[2].may_go_master(), "l[0] no longer wants Master");
    }

    #[test]
    fn one_own_fault_faults_the_others_until_none_left() {
        let mut l = links(3);
        l[0].set_own_fault(true);
        assert!(
            drain(&mut l[0]).is_empty(),
            "its own fault is its own business"
        );
        assert_eq!(drain(&mut l[1]), vec![GroupCmd::Fault(true)]);
        assert_eq!(drain(&mut l[2]), vec![GroupCmd::Fault(true)]);
        l[1].set_own_fault(true);
        assert_eq!(drain(&mut l[0]), vec![GroupCmd::Fault(true)]);
        assert!(drain(&mut l[2]).is_empty());
        l[0].set_own_fault(false);
        // l[1] stays in FAULT by its own trackers; l[1] still faults l[0] and l[2].
        assert_eq!(drain(&mut l[1]), vec![GroupCmd::Fault(false)]);
        assert!(drain(&mut l[0]).is_empty());
        assert!(drain(&mut l[2]).is_empty());
        l[1].set_own_fault(false);
        assert_eq!(drain(&mut l[0]), vec![GroupCmd::Fault(false)]);
        assert_eq!(drain(&mut l[2]), vec![GroupCmd::Fault(false)]);
    }
}
