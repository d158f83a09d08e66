//! `dynamic_interfaces`: an instance whose interface does not exist yet (a VLAN, bond,
//! container veth or VRF made after the daemon starts) waits in FAULT, as keepalived 2.2.7's
//! does, and starts when the interface appears, instead of the daemon refusing to start.
//!
//! A [`Waiting`] instance takes everything a running one is given (tracker reports, notify,
//! mail, its sync group, the state the balancer follows) and answers the daemon as a FAULT
//! instance would. It looks for its interface every [`POLL`]; once there, it builds the
//! [`InstanceDriver`], hands it all of that and runs it in its place.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use keepalived_conf::model::{GlobalDefs, VrrpInstance};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{info, info_span, warn, Instrument};

use super::instance::{Control, Exit, InstanceDriver, Resume};
use super::rxhub::Hub;
use super::status::{Counters, InstanceStatus};
use super::sync::GroupLink;
use crate::netlink::Netlink;
use crate::notify::{Notifier, NotifyState};
use crate::track::deleted::Key;
use crate::track::link::LinkMonitor;
use crate::track::{Contribution, TrackKey};
use vrrp_proto::fsm::State;

/// How often a waiting instance looks for its interface.
pub const POLL: Duration = Duration::from_secs(1);

/// The two ends of an instance's tracker reports.
pub type Track = (
    mpsc::Sender<(TrackKey, Contribution)>,
    mpsc::Receiver<(TrackKey, Contribution)>,
);

/// What an instance needs to start once its interface is there.
pub struct Start {
    pub global: GlobalDefs,
    pub inst: VrrpInstance,
    pub nl: Netlink,
    pub links: LinkMonitor,
    pub hub: Arc<Hub>,
    pub garp: Arc<garp::Sender>,
}

/// An instance waiting in FAULT for its interface.
pub struct Waiting {
    start: Start,
    /// The interface not there yet (the instance's, or an address's `dev`).
    ifname: String,
    track: Track,
    state_tx: watch::Sender<State>,
    notifier: Option<Notifier>,
    mail: Option<crate::mail::StateMail>,
    group: Option<GroupLink>,
    deletions: Option<broadcast::Receiver<Key>>,
    start_delay: Option<Duration>,
    resume: Option<Resume>,
}

/// One instance of a configuration: running, or waiting for its interface.
pub enum Slot {
    Running(Box<InstanceDriver>),
    Waiting(Box<Waiting>),
}

impl Slot {
    pub fn tracker(&self) -> mpsc::Sender<(TrackKey, Contribution)> {
        match self {
            Slot::Running(d) => d.tracker(),
            Slot::Waiting(w) => w.track.0.clone(),
        }
    }

    pub fn state_watch(&self) -> watch::Receiver<State> {
        match self {
            Slot::Running(d) => d.state_watch(),
            Slot::Waiting(w) => w.state_tx.subscribe(),
        }
    }

    pub fn set_notifier(&mut self, n: Notifier) {
        match self {
            Slot::Running(d) => d.set_notifier(n),
            Slot::Waiting(w) => w.notifier = Some(n),
        }
    }

    pub fn set_mail(&mut self, m: crate::mail::StateMail) {
        match self {
            Slot::Running(d) => d.set_mail(m),
            Slot::Waiting(w) => w.mail = Some(m),
        }
    }

    pub fn set_group(&mut self, g: GroupLink) {
        match self {
            Slot::Running(d) => d.set_group(g),
            Slot::Waiting(w) => w.group = Some(g),
        }
    }

    pub fn watch_deletions(&mut self, rx: broadcast::Receiver<Key>) {
        match self {
            Slot::Running(d) => d.watch_deletions(rx),
            Slot::Waiting(w) => w.deletions = Some(rx),
        }
    }

    pub fn delay_start(&mut self, delay: Duration) {
        match self {
            Slot::Running(d) => d.delay_start(delay),
            Slot::Waiting(w) => w.start_delay = Some(delay),
        }
    }

    pub fn resume(&mut self, previous: Resume) {
        match self {
            Slot::Running(d) => d.resume(previous),
            Slot::Waiting(w) => w.resume = Some(previous),
        }
    }

    pub async fn run(self, stop: watch::Receiver<bool>, control: mpsc::Receiver<Control>) -> Exit {
        match self {
            Slot::Running(d) => d.run(stop, control).await,
            Slot::Waiting(w) => {
                let span = info_span!("instance", name = %w.start.inst.name);
                w.run(stop, control).instrument(span).await
            }
        }
    }
}

impl Waiting {
    pub fn new(start: Start, ifname: String) -> Self {
        Self {
            start,
            ifname,
            track: mpsc::channel(16),
            state_tx: watch::channel(State::Initialize).0,
            notifier: None,
            mail: None,
            group: None,
            deletions: None,
            start_delay: None,
            resume: None,
        }
    }

    async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut control: mpsc::Receiver<Control>,
    ) -> Exit {
        let (name, ifname) = (&self.start.inst.name, &self.ifname);
        info!("Configuration specifies interface {ifname} which doesn't currently exist - will use if created");
        info!("({name}) entering FAULT state (interface {ifname} does not exist)");
        self.enter_fault();
        // Apart from `self`, so that its commands can be waited for beside the rest.
        let mut group = self.group.take();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    if *stop.borrow() {
                        self.group = group;
                        return self.finish(true).await;
                    }
                }
                c = control.recv() => match c {
                    Some(Control::Status(reply)) => {
                        let _ = reply.send(self.status());
                    }
                    Some(Control::Removed) => {}
                    Some(Control::Handover { .. }) | None => {
                        self.group = group;
                        return self.finish(false).await;
                    }
                },
                // Sync group commands cannot move an instance in FAULT.
                _ = group_cmd(&mut group) => {}
                _ = tick.tick() => {
                    if missing_interface(&self.start.nl, &self.start.inst).await.is_some() {
                        continue;
                    }
                    let s = &self.start;
                    match InstanceDriver::new(&s.global, &s.inst, s.nl.clone(), &s.links, &s.hub, &s.garp).await {
                        Ok(d) => {
                            info!("interface {} appeared: starting", self.ifname);
                            self.group = group;
                            return self.into_driver(d).run(stop, control).await;
                        }
                        // Its interface is there, something else it names may not be yet.
                        Err(e) => warn!("not starting yet: {e:#}"),
                    }
                }
            }
        }
    }

    fn enter_fault(&self) {
        self.state_tx.send_replace(State::Fault);
        let priority = self.start.inst.priority;
        if let Some(n) = &self.notifier {
            n.notify(NotifyState::Fault, priority);
        }
        if let Some(g) = &self.group {
            g.set_own_fault(true);
            g.transition(State::Initialize, State::Fault);
        }
    }

    /// The driver of the instance, given what this one was given.
    fn into_driver(self, mut d: InstanceDriver) -> InstanceDriver {
        d.take_over(self.track, self.state_tx);
        if let Some(n) = self.notifier {
            d.set_notifier(n);
        }
        if let Some(m) = self.mail {
            d.set_mail(m);
        }
        if let Some(g) = self.group {
            // The driver tells the group its own faults from here on.
            g.set_own_fault(false);
            d.set_group(g);
        }
        if let Some(rx) = self.deletions {
            d.watch_deletions(rx.resubscribe());
        }
        if let Some(delay) = self.start_delay {
            d.delay_start(delay);
        }
        if let Some(r) = self.resume {
            d.resume(r);
        }
        d
    }

    /// Stopped (`released`: STOP is notified, as keepalived does for an instance in FAULT)
    /// or handed over to a reload.
    async fn finish(self, released: bool) -> Exit {
        if let Some(n) = self.notifier {
            if released {
                n.notify(NotifyState::Stop, self.start.inst.priority);
            }
            n.finish().await;
        }
        if let Some(g) = self.group {
            g.finish().await;
        }
        Exit {
            name: self.start.inst.name.clone(),
            resume: Resume {
                state: State::Fault,
                ah: self.resume.map(|r| r.ah).unwrap_or_default(),
            },
        }
    }

    fn status(&self) -> InstanceStatus {
        let inst = &self.start.inst;
        let v6 = inst
            .virtual_ipaddress
            .first()
            .is_some_and(|v| v.addr.is_ipv6());
        InstanceStatus {
            name: inst.name.clone(),
            state: State::Fault,
            interface: inst.interface.clone(),
            vrid: inst.virtual_router_id,
            version: inst.version,
            base_priority: inst.priority,
            effective_priority: inst.priority,
            master_adver_int: f64::from(inst.advert_int) / 100.0,
            master_addr: None,
            source_addr: inst.src_ip.unwrap_or(if v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }),
            unicast_peers: inst.unicast_peers.clone(),
            preempt: !inst.nopreempt,
            vips: Vec::new(),
            excluded_vips: Vec::new(),
            trackers: Vec::new(),
            counters: Counters::default(),
            master_priority: 0,
            last_transition: 0.0,
            last_transition_from: None,
            last_transition_reason: Some(format!("interface {} does not exist", inst.interface)),
        }
    }
}

/// The first interface `inst` names that does not exist: its own, or an address's `dev`.
pub async fn missing_interface(nl: &Netlink, inst: &VrrpInstance) -> Option<String> {
    let devs = inst.addresses().filter_map(|v| v.dev.as_deref());
    for name in std::iter::once(inst.interface.as_str()).chain(devs) {
        if nl.link(name).await.is_err() {
            return Some(name.to_string());
        }
    }
    None
}

async fn group_cmd(g: &mut Option<GroupLink>) {
    match g {
        Some(g) => {
            g.recv().await;
        }
        None => std::future::pending().await,
    }
}
