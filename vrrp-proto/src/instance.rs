//! One VRRP instance as keepalived runs it, sans-IO.
//!
//! [`crate::fsm`] is RFC 5798's machine; what a daemon decides around it lives here, as pure code
//! fed [`Event`]s with the time as an argument and returning [`Effect`]s to perform in order:
//!
//! - FAULT and the effective priority from the trackers and the instance's own interface
//!   ([`crate::track`]);
//! - the sync group's rules, through a [`SyncPort`] (the [`crate::node::Node`] that owns the
//!   group provides it);
//! - start-up: `vrrp_startup_delay`, and INIT → FAULT at once when the interface is down or a
//!   weight-0 tracker has already failed;
//! - resuming after a reload: a Master stays Master, and the state it takes up is no news (no
//!   notify script, no mail; the FIFO line only with `fifo_write_vrrp_states_on_reload`);
//! - a Master whose tracked address, route or rule someone else deleted;
//! - when to announce the addresses ([`crate::announce`]);
//! - the counters and what keepalived logs about received adverts.
//!
//! The driver owns the sockets, netlink, scripts and mail; it validates received packets (the
//! codec and the source checks), feeds the adverts in, and performs the effects.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::announce::{self, Schedule, ScheduleConfig};
use crate::fsm::{self, Action, Announce, Input, State};
use crate::packet::{Advert, DropReason};
use crate::sync;
use crate::track::{Contribution, Effective, TrackKey, TrackSet, Weight};

/// Everything one instance is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub vrrp: fsm::Config,
    pub announce: ScheduleConfig,
    /// The instance's own interface, tracked with weight 0 (down is FAULT) unless
    /// `dont_track_primary` (`track_primary` false).
    pub ifindex: u32,
    pub track_primary: bool,
    /// `fifo_write_vrrp_states_on_reload`.
    pub fifo_states_on_reload: bool,
}

/// What happens to an instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Start now, or after `delay` (`vrrp_startup_delay`). `resume`: a reload restarts an
    /// instance that ran before; whether it was Master.
    Start {
        delay: Duration,
        resume: Option<bool>,
    },
    /// A validated advert for us (the driver checked the packet and its source).
    Advert { src: IpAddr, advert: Advert },
    /// A tracked object's contribution (before the start: recorded for it).
    Track(TrackKey, Contribution),
    /// The instance's own interface went up (true) or down.
    Link(bool),
    /// A tracked address, route or rule is gone from the kernel (the driver checked it is not
    /// the echo of our own removal): a Master steps down and takes it back.
    Lost,
    /// A sync group's request ([`crate::node::Node`] delivers them).
    Group(sync::Cmd),
    /// Graceful stop: a Master sends priority 0 and releases everything.
    Shutdown,
    /// A reload drops this instance (it is shut down next): keepalived 2.2.7 mails it as
    /// entering FAULT.
    Removed,
    /// A reload kept this instance as it was.
    Reloaded,
}

/// keepalived's FIFO words besides the states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEvent {
    /// The Master heard a lower priority (split brain healing): `MASTER_RX_LOWER_PRI`.
    MasterRxLowerPri,
    /// The effective priority changed while Master (`notify_priority_changes`).
    MasterPriority,
    /// The effective priority changed in any other state.
    BackupPriority,
}

/// What the driver logs; keepalived's words are the driver's business.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// Staying in INIT for `vrrp_startup_delay`.
    StartDelayed(Duration),
    /// The instance's interface is up / down.
    Link { up: bool },
    /// The trackers moved the effective priority.
    Priority { from: u8, to: u8 },
    /// An advert whose address list is not ours, dropped (RFC 3768 §7.1, as keepalived).
    /// Noted for the first and then every power-of-two occurrence.
    AddressMismatch {
        src: IpAddr,
        count: u64,
        error: fsm::AddressListError,
    },
    /// The down timer fired but the sync group is not ready for Master.
    SyncHold,
    /// A tracked object was deleted: leaving Master to reinstate it.
    Lost,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Transmit this advert (to the group or the unicast peers).
    Send(Advert),
    /// Add the virtual addresses, then the virtual routes and rules.
    AddVips,
    /// Remove the virtual rules, routes, then addresses.
    RemoveVips,
    /// Send this many rounds of announcements (one per virtual address each).
    Announce(u32),
    /// The instance entered `to`: log it, tell whoever follows its state.
    Entered { from: State, to: State },
    /// Run the notify scripts for `state` and write its FIFO line; `scripts` false: the FIFO
    /// line alone (a reload with `fifo_write_vrrp_states_on_reload`).
    Notify {
        state: State,
        priority: u8,
        scripts: bool,
    },
    /// One of keepalived's other FIFO words (and `notify_master_rx_lower_pri`).
    NotifyEvent(NotifyEvent, u8),
    /// `smtp_alert`: the instance entered `state` (the mailer applies `no_email_faults`).
    Mail(State),
    /// Something to log.
    Note(Note),
}

/// The input a transition came from, kept without allocating (adverts arrive every interval);
/// written out only for the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Startup,
    Reload,
    Advert { src: IpAddr, priority: u8 },
    Timeout,
    Shutdown,
    Fault,
    FaultCleared,
    SyncMaster,
    SyncBackup,
    Lost,
    SyncHold,
}

impl Cause {
    fn of(input: &Input) -> Self {
        match input {
            Input::Startup => Self::Startup,
            Input::Resume { .. } => Self::Reload,
            Input::Advert { src, advert } => Self::Advert {
                src: *src,
                priority: advert.priority,
            },
            Input::Timeout => Self::Timeout,
            Input::Shutdown => Self::Shutdown,
            Input::Fault => Self::Fault,
            Input::FaultCleared => Self::FaultCleared,
            Input::SyncMaster => Self::SyncMaster,
            Input::SyncBackup => Self::SyncBackup,
            Input::Lost => Self::Lost,
            Input::SyncHold => Self::SyncHold,
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Startup => f.write_str("startup"),
            Self::Reload => f.write_str("configuration reload"),
            Self::Advert { src, priority } => {
                write!(f, "advert from {src} with priority {priority}")
            }
            Self::Timeout => f.write_str("master down timer expired"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Fault => f.write_str("a tracked object failed or the interface is down"),
            Self::FaultCleared => f.write_str("every fault cleared"),
            Self::SyncMaster => f.write_str("sync group member became master"),
            Self::SyncBackup => f.write_str("sync group member fell back to backup"),
            Self::Lost => f.write_str("a virtual address, route or rule was deleted"),
            Self::SyncHold => f.write_str("sync group not ready for master"),
        }
    }
}

/// Counters of one instance, as keepalived keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub adverts_received: u64,
    /// Adverts handed to the driver to send.
    pub adverts_sent: u64,
    pub became_master: u64,
    pub released_master: u64,
    pub priority_zero_received: u64,
    pub priority_zero_sent: u64,
    /// Adverts whose address list is not ours (dropped, as keepalived 2.2.7 does).
    #[serde(default)]
    pub address_list_mismatch: u64,
    /// Dropped packets by reason (the codec's [`DropReason`] text).
    pub drops: BTreeMap<String, u64>,
}

impl Counters {
    /// Counts a dropped packet; returns how many of that reason so far.
    pub fn drop(&mut self, reason: DropReason) -> u64 {
        let n = self.drops.entry(reason.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Drops of any of `reasons`.
    pub fn drops_of(&self, reasons: &[DropReason]) -> u64 {
        reasons
            .iter()
            .map(|r| self.drops.get(&r.to_string()).copied().unwrap_or(0))
            .sum()
    }

    // keepalived 2.2.7's error counters (`vrrp_check_packet`), by its names, as its stats file
    // and keepalived-exporter show them: each takes the drop reasons keepalived counts there.

    /// Every length inconsistency: a count that does not fit the payload (by the packet's own
    /// version), a short or cut IP packet.
    pub fn packet_len_err(&self) -> u64 {
        use DropReason as D;
        self.drops_of(&[D::TooShort, D::BadIpHeader, D::BadAddrCount, D::BadFamily])
    }

    pub fn ip_ttl_err(&self) -> u64 {
        self.drops_of(&[DropReason::BadTtl])
    }

    /// Not an advertisement (a version error is SNMP-only in keepalived: JSON only here).
    pub fn invalid_type_rcvd(&self) -> u64 {
        self.drops_of(&[DropReason::BadType])
    }

    /// v2 interval mismatches: keepalived drops them without counting (its counter stays 0);
    /// we count them.
    pub fn advert_interval_err(&self) -> u64 {
        self.drops_of(&[DropReason::IntervalMismatch])
    }

    /// Adverts whose address list is not ours.
    pub fn addr_list_err(&self) -> u64 {
        self.address_list_mismatch
    }

    pub fn invalid_authtype(&self) -> u64 {
        self.drops_of(&[DropReason::BadAuthType])
    }

    pub fn authtype_mismatch(&self) -> u64 {
        self.drops_of(&[DropReason::AuthTypeMismatch])
    }

    pub fn auth_failure(&self) -> u64 {
        self.drops_of(&[DropReason::AuthFailure])
    }

    /// What was counted after `base` (a snapshot of the same counters).
    pub fn since(&self, base: &Counters) -> Counters {
        let minus = |now: u64, then: u64| now.saturating_sub(then);
        Counters {
            adverts_received: minus(self.adverts_received, base.adverts_received),
            adverts_sent: minus(self.adverts_sent, base.adverts_sent),
            became_master: minus(self.became_master, base.became_master),
            released_master: minus(self.released_master, base.released_master),
            priority_zero_received: minus(self.priority_zero_received, base.priority_zero_received),
            priority_zero_sent: minus(self.priority_zero_sent, base.priority_zero_sent),
            address_list_mismatch: minus(self.address_list_mismatch, base.address_list_mismatch),
            drops: self
                .drops
                .iter()
                .map(|(k, n)| {
                    (
                        k.clone(),
                        minus(*n, base.drops.get(k).copied().unwrap_or(0)),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// The instance's side of its sync group.
pub trait SyncPort {
    /// We entered `to` from `from`.
    fn transition(&mut self, from: State, to: State);
    /// Our own trackers report a fault (or none).
    fn set_own_fault(&mut self, fault: bool);
    /// Our down timer fired: may we go Master? (records that we want to)
    fn may_go_master(&mut self) -> bool;
    /// We heard a Master we do not preempt.
    fn clear_want(&mut self);
}

/// Not in a sync group.
pub struct NoGroup;

impl SyncPort for NoGroup {
    fn transition(&mut self, _: State, _: State) {}
    fn set_own_fault(&mut self, _: bool) {}
    fn may_go_master(&mut self) -> bool {
        true
    }
    fn clear_want(&mut self) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Made, not started.
    Idle,
    /// `vrrp_startup_delay` runs until `until`.
    Delayed {
        until: Duration,
        resume: Option<bool>,
    },
    Running,
}

/// One instance.
#[derive(Debug, Clone)]
pub struct Instance {
    fsm: fsm::Instance,
    schedule: Schedule,
    track: TrackSet,
    ifindex: u32,
    track_primary: bool,
    fifo_states_on_reload: bool,
    phase: Phase,
    /// The last state of the instance's interface.
    link_up: Option<bool>,
    /// Another member of the sync group has a fault of its own: we are in FAULT too.
    group_fault: bool,
    /// Our own fault, as last told to the group.
    own_fault: bool,
    /// Started by a reload: leaving INIT is no news.
    resumed: bool,
    counters: Counters,
    /// Why the last transition happened.
    last_cause: Option<Cause>,
}

impl Instance {
    pub fn new(cfg: Config) -> Self {
        Self {
            track: TrackSet::new(cfg.vrrp.priority),
            fsm: fsm::Instance::new(cfg.vrrp),
            schedule: Schedule::new(cfg.announce),
            ifindex: cfg.ifindex,
            track_primary: cfg.track_primary,
            fifo_states_on_reload: cfg.fifo_states_on_reload,
            phase: Phase::Idle,
            link_up: None,
            group_fault: false,
            own_fault: false,
            resumed: false,
            counters: Counters::default(),
            last_cause: None,
        }
    }

    /// The state machine (state, priority, Master, timers).
    pub fn vrrp(&self) -> &fsm::Instance {
        &self.fsm
    }

    pub fn state(&self) -> State {
        self.fsm.state()
    }

    /// Every tracked object's current contribution.
    pub fn trackers(&self) -> impl Iterator<Item = (&TrackKey, &Contribution)> {
        self.track.contributions()
    }

    /// Whether our own trackers or interface put us in FAULT (a sync group's fault aside).
    pub fn own_fault(&self) -> bool {
        self.track.effective().fault
    }

    /// The source address became known (the driver held the instance in FAULT with
    /// [`TrackKey::Source`] until then): it breaks priority ties from now on.
    pub fn set_primary_addr(&mut self, addr: IpAddr) {
        self.fsm.set_primary_addr(addr);
    }

    /// The input the last transition came from.
    pub fn last_cause(&self) -> Option<Cause> {
        self.last_cause
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// For the driver's drops (packets refused before they were adverts).
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Carries the counters over from the run a reload replaces.
    pub fn set_counters(&mut self, c: Counters) {
        self.counters = c;
    }

    /// The next instant [`Self::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Idle => None,
            Phase::Delayed { until, .. } => Some(until),
            Phase::Running => [self.fsm.poll_timeout(), self.schedule.poll_timeout()]
                .into_iter()
                .flatten()
                .min(),
        }
    }

    /// Feeds one event outside any sync group.
    pub fn handle(&mut self, now: Duration, event: Event, out: &mut Vec<Effect>) {
        self.handle_in(now, event, &mut NoGroup, out)
    }

    /// The deadline passed (outside any sync group).
    pub fn handle_timeout(&mut self, now: Duration, out: &mut Vec<Effect>) {
        self.handle_timeout_in(now, &mut NoGroup, out)
    }

    /// Feeds one event; `group` is the instance's sync group.
    pub fn handle_in(
        &mut self,
        now: Duration,
        event: Event,
        group: &mut dyn SyncPort,
        out: &mut Vec<Effect>,
    ) {
        let running = self.phase == Phase::Running;
        match event {
            Event::Start { delay, resume } if self.phase == Phase::Idle => {
                if delay.is_zero() {
                    self.start(now, resume, group, out);
                } else {
                    out.push(Effect::Note(Note::StartDelayed(delay)));
                    self.phase = Phase::Delayed {
                        until: now + delay,
                        resume,
                    };
                }
            }
            Event::Start { .. } => {}
            Event::Advert { src, advert } if running => {
                self.on_advert(now, src, advert, group, out)
            }
            Event::Advert { .. } => {}
            Event::Track(key, c) => {
                if let (Some(eff), true) = (self.track.set(key, c), running) {
                    self.apply_effective(now, eff, group, out);
                }
            }
            Event::Link(up) => {
                self.link_up = Some(up);
                let c = Weight::new(0, false).binary(up || !self.track_primary);
                let changed = self.track.set(TrackKey::Interface(self.ifindex), c);
                if running {
                    out.push(Effect::Note(Note::Link { up }));
                    if let Some(eff) = changed {
                        self.apply_effective(now, eff, group, out);
                    }
                }
            }
            Event::Lost => {
                if self.fsm.state() == State::Master {
                    out.push(Effect::Note(Note::Lost));
                    self.step(now, Input::Lost, group, out);
                }
            }
            Event::Group(sync::Cmd::Fault(f)) => {
                self.group_fault = f;
                if running {
                    let eff = self.track.effective();
                    self.apply_effective(now, eff, group, out);
                }
            }
            Event::Group(sync::Cmd::Master) => self.step(now, Input::SyncMaster, group, out),
            Event::Group(sync::Cmd::Backup) => self.step(now, Input::SyncBackup, group, out),
            Event::Shutdown => {
                self.step(now, Input::Shutdown, group, out);
                self.phase = Phase::Idle;
            }
            Event::Removed => out.push(Effect::Mail(State::Fault)),
            Event::Reloaded => {
                if running && self.fifo_states_on_reload {
                    out.push(Effect::Notify {
                        state: self.fsm.state(),
                        priority: self.fsm.priority(),
                        scripts: false,
                    });
                }
            }
        }
    }

    /// The deadline from [`Self::poll_timeout`] passed; `group` is the instance's sync group.
    pub fn handle_timeout_in(
        &mut self,
        now: Duration,
        group: &mut dyn SyncPort,
        out: &mut Vec<Effect>,
    ) {
        match self.phase {
            Phase::Idle => {}
            Phase::Delayed { until, resume } => {
                if now >= until {
                    self.start(now, resume, group, out);
                }
            }
            Phase::Running => {
                if self.fsm.poll_timeout().is_some_and(|t| t <= now) {
                    if self.fsm.state() == State::Backup && !group.may_go_master() {
                        out.push(Effect::Note(Note::SyncHold));
                        self.step(now, Input::SyncHold, group, out);
                    } else {
                        self.step(now, Input::Timeout, group, out);
                    }
                }
                self.announce_due(now, out);
            }
        }
    }

    /// Start from what the trackers already said, so a down interface or a failed weight-0
    /// tracker means INIT → FAULT directly, as keepalived does, rather than BACKUP then FAULT.
    fn start(
        &mut self,
        now: Duration,
        resume: Option<bool>,
        group: &mut dyn SyncPort,
        out: &mut Vec<Effect>,
    ) {
        self.phase = Phase::Running;
        self.resumed = resume.is_some();
        if let Some(up) = self.link_up {
            out.push(Effect::Note(Note::Link { up }));
        }
        let eff = self.track.effective();
        self.apply_effective(now, eff, group, out);
        if self.fsm.state() == State::Initialize {
            let input = match resume {
                Some(master) => Input::Resume { master },
                None => Input::Startup,
            };
            self.step(now, input, group, out);
        }
    }

    fn on_advert(
        &mut self,
        now: Duration,
        src: IpAddr,
        advert: Advert,
        group: &mut dyn SyncPort,
        out: &mut Vec<Effect>,
    ) {
        if let Err(error) = self.fsm.check_addresses(src, &advert) {
            self.address_list_error(src, error, out);
            return;
        }
        self.counters.adverts_received += 1;
        if advert.priority == 0 {
            self.counters.priority_zero_received += 1;
        }
        if advert.priority >= self.fsm.priority() {
            group.clear_want();
        }
        self.step(now, Input::Advert { src, advert }, group, out);
    }

    /// An advert with another address list is dropped (the machine's check,
    /// [`fsm::Instance::check_addresses`]) and counted as keepalived counts it: a wrong count is
    /// not a received advert, a wrong address is.
    fn address_list_error(
        &mut self,
        src: IpAddr,
        error: fsm::AddressListError,
        out: &mut Vec<Effect>,
    ) {
        if let fsm::AddressListError::Missing(_) = error {
            self.counters.adverts_received += 1;
        }
        self.counters.address_list_mismatch += 1;
        let count = self.counters.address_list_mismatch;
        if count.is_power_of_two() {
            out.push(Effect::Note(Note::AddressMismatch { src, count, error }));
        }
    }

    /// A new tracker result: priority first (so leaving FAULT uses it), then FAULT entered or
    /// cleared; the sync group hears about our own fault.
    fn apply_effective(
        &mut self,
        now: Duration,
        eff: Effective,
        group: &mut dyn SyncPort,
        out: &mut Vec<Effect>,
    ) {
        let before = self.fsm.priority();
        if eff.priority != before {
            out.push(Effect::Note(Note::Priority {
                from: before,
                to: eff.priority,
            }));
            let mut acts = Vec::new();
            self.fsm.set_priority(now, eff.priority, &mut acts);
            for a in acts {
                self.act(now, a, group, out);
            }
            let after = self.fsm.priority();
            if after != before {
                // keepalived words it by the state it is in: Master, or anything else.
                let ev = if self.fsm.state() == State::Master {
                    NotifyEvent::MasterPriority
                } else {
                    NotifyEvent::BackupPriority
                };
                out.push(Effect::NotifyEvent(ev, after));
            }
        }
        if eff.fault != self.own_fault {
            self.own_fault = eff.fault;
            group.set_own_fault(eff.fault);
        }
        match (eff.fault || self.group_fault, self.fsm.state()) {
            (true, s) if s != State::Fault => self.step(now, Input::Fault, group, out),
            (false, State::Fault) => self.step(now, Input::FaultCleared, group, out),
            _ => {}
        }
    }

    /// Feeds the machine one input and turns its actions into effects, in order.
    fn step(
        &mut self,
        now: Duration,
        input: Input,
        group: &mut dyn SyncPort,
        out: &mut Vec<Effect>,
    ) {
        let cause = Cause::of(&input);
        let mut acts = Vec::new();
        self.fsm.handle(now, input, &mut acts);
        if acts.iter().any(|a| matches!(a, Action::Transition { .. })) {
            self.last_cause = Some(cause);
        }
        for a in acts {
            self.act(now, a, group, out);
        }
    }

    fn act(
        &mut self,
        now: Duration,
        action: Action,
        group: &mut dyn SyncPort,
        out: &mut Vec<Effect>,
    ) {
        match action {
            Action::Send(advert) => {
                self.counters.adverts_sent += 1;
                if advert.priority == 0 {
                    self.counters.priority_zero_sent += 1;
                }
                out.push(Effect::Send(advert));
            }
            Action::Transition { from, to } => {
                group.transition(from, to);
                // A reload is no news (keepalived 2.2.7 notifies nothing and counts no
                // `Became master`: its instance stays Master), unless
                // `fifo_write_vrrp_states_on_reload` asks for the FIFO lines.
                let resuming = self.resumed && from == State::Initialize;
                if from == State::Master {
                    self.schedule.stop();
                    self.counters.released_master += 1;
                }
                if to == State::Master && !resuming {
                    self.counters.became_master += 1;
                }
                out.push(Effect::Entered { from, to });
                let priority = self.fsm.priority();
                if !resuming {
                    out.push(Effect::Notify {
                        state: to,
                        priority,
                        scripts: true,
                    });
                    out.push(Effect::Mail(to));
                } else if self.fifo_states_on_reload {
                    out.push(Effect::Notify {
                        state: to,
                        priority,
                        scripts: false,
                    });
                }
            }
            Action::AddVips => out.push(Effect::AddVips),
            Action::RemoveVips => out.push(Effect::RemoveVips),
            Action::Announce(why) => {
                let reason = match why {
                    Announce::BecameMaster => announce::Reason::BecameMaster,
                    Announce::LowerPriorityHeard => {
                        // Where keepalived notifies MASTER_RX_LOWER_PRI: a Master heard a lower
                        // priority (or an equal one from a lower address).
                        out.push(Effect::NotifyEvent(
                            NotifyEvent::MasterRxLowerPri,
                            self.fsm.priority(),
                        ));
                        announce::Reason::LowerPriority
                    }
                };
                self.schedule.start(now, reason);
                self.announce_due(now, out);
            }
        }
    }

    fn announce_due(&mut self, now: Duration, out: &mut Vec<Effect>) {
        let rounds = self.schedule.poll(now);
        if rounds > 0 {
            out.push(Effect::Announce(rounds));
        }
    }
}
