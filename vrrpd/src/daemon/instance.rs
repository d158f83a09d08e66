//! The driver of one VRRP instance: sockets, netlink and timers around the state machine.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use std::collections::HashSet;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, info_span, trace, warn, Instrument};

use crate::net::{Destination, Family};
use crate::netlink::{Link, Netlink};
use crate::notify::{Event as NotifyEvent, Notifier, NotifyState};
use crate::track::deleted::{route_key, rule_key, Key};
use crate::track::link::LinkMonitor;
use crate::track::{Contribution, Effective, TrackKey, TrackSet, Weight};
use keepalived_conf::model::{
    Authentication, GlobalDefs, Route, Rule, VirtualAddress, VrrpInstance,
};

use super::ah::AhSession;
use super::rxhub::{Hub, Membership, Packet};
use super::status::{Counters, InstanceStatus, TrackerStatus};
use super::sync::{GroupCmd, GroupLink};
use sysio::timer::Timer;
use vrrp_proto::fsm::{self, Action, Announce, Input, State};
use vrrp_proto::packet::{self, Auth, DropReason, Expect};

/// One instance: its state machine and everything that executes the machine's actions.
pub struct InstanceDriver {
    name: String,
    fsm: fsm::Instance,
    /// The link's shared VRRP socket, and where our adverts go.
    sock: Membership,
    rx: mpsc::Receiver<Packet>,
    dest: Destination,
    peers: Vec<IpAddr>,
    check_unicast_src: bool,
    nl: Netlink,
    link: Link,
    /// Each virtual address with the index of the interface it goes on.
    vips: Vec<(VirtualAddress, Link)>,
    /// `virtual_routes` / `virtual_rules`: installed after the VIPs while MASTER.
    routes: Vec<Route>,
    rules: Vec<Rule>,
    expect: Expect,
    garp: std::sync::Arc<garp::Sender>,
    garp_port: garp::Port,
    garp_schedule: vrrp_proto::announce::Schedule,
    /// The VMAC interface we created (`use_vmac`), removed on stop.
    vmac: Option<crate::vmac::Vmac>,
    /// An IPv6 VMAC sending adverts: our source address on it, there only while we send
    /// (see [`crate::vmac::source_address`]), and whether it is there now.
    vmac_source: Option<(VirtualAddress, Link)>,
    vmac_source_added: bool,
    epoch: Instant,
    timer: Timer,
    counters: Counters,
    /// `master_priority` and the last transition, for the dumps.
    master_priority: u8,
    last_transition: (f64, Option<State>),
    /// Why the input being handled may change the state (see [`cause`]), and why the last
    /// transition happened.
    cause: Option<Cause>,
    last_cause: Option<Cause>,
    /// The configured addresses, as the status dump shows them.
    vip_text: Vec<String>,
    excluded_text: Vec<String>,
    /// Up/down of the instance's own interface (keepalived tracks it by default, weight 0:
    /// down means FAULT; not with `dont_track_primary`).
    link_state: watch::Receiver<bool>,
    track_primary: bool,
    /// Every tracker's contribution; its result drives FAULT and the effective priority.
    track: TrackSet,
    /// Tracker drivers (scripts, files, extra interfaces) report here; see [`Self::tracker`].
    track_tx: mpsc::Sender<(TrackKey, Contribution)>,
    track_rx: mpsc::Receiver<(TrackKey, Contribution)>,
    /// notify scripts / FIFO, when configured ([`Self::set_notifier`]).
    notifier: Option<Notifier>,
    /// `smtp_alert` mails, when configured ([`Self::set_mail`]).
    mail: Option<crate::mail::StateMail>,
    /// The sync group this instance belongs to ([`Self::set_group`]).
    group: Option<GroupLink>,
    /// Another member of the group has a fault: we are in FAULT too.
    group_fault: bool,
    /// Our own trackers' fault, as last told to the group.
    own_fault: bool,
    /// The state, for those who act on it (the balancer forwards only while Master).
    state_tx: watch::Sender<State>,
    /// Started again by a reload: whether the previous run was Master ([`Self::resume`]).
    resume: Option<bool>,
    /// The state the previous run ended in: taking it up again is no transition to log.
    resumed_from: Option<State>,
    /// Interface sysctls we set (`promote_secondaries`), put back when we end.
    sysctls: crate::sysctl::Saved,
    /// This run resumes one a reload ended: the state it takes up is not news, so it is not
    /// notified (keepalived 2.2.7 writes no FIFO line and runs no script on a reload).
    resumed: bool,
    /// `fifo_write_vrrp_states_on_reload`.
    fifo_states_on_reload: bool,
    /// `vrrp_startup_delay` at daemon start ([`Self::delay_start`]).
    start_delay: Option<Duration>,
    /// Deletions in the kernel ([`Self::watch_deletions`]) and what of ours they may hit:
    /// the addresses, routes (with a `dev`) and rules not marked `no_track`.
    deletions: Option<broadcast::Receiver<Key>>,
    tracked: HashSet<Key>,
    /// What the supervisor replays for us if the daemon dies while we are Master
    /// ([`super::lastgasp`]), registered before we add the first address.
    lastgasp: Vec<u8>,
    /// The source address is not there yet: FAULT until it is ([`SourceWatch`]).
    source_wait: Option<SourceWatch>,
    /// `auth_type AH`: adverts are sealed and opened here, on the link's AH socket.
    ah: Option<AhSession>,
}

/// How an instance actor ended.
#[derive(Debug)]
pub struct Exit {
    pub name: String,
    pub resume: Resume,
}

/// What an instance a reload ended hands to the one that replaces it.
#[derive(Debug, Clone, Copy)]
pub struct Resume {
    pub state: State,
    /// The AH sequence counter, which keepalived keeps across a reload.
    pub ah: vrrp_proto::packet::ah::AhSequence,
}

/// Requests from the daemon to a running instance.
pub enum Control {
    /// Reply with a status snapshot.
    Status(oneshot::Sender<InstanceStatus>),
    /// A reload replaces this actor by one running the new configuration: end without
    /// releasing anything (no priority-0 advert, the VMAC stays), except, when Master, the
    /// addresses, routes and rules the new configuration no longer has.
    Handover { keep: Box<VrrpInstance> },
    /// A reload drops this instance (it is then stopped): keepalived 2.2.7 mails it as
    /// entering FAULT.
    Removed,
}

/// What woke the actor up.
enum Event {
    Packet(Packet),
    Timer,
    Stop,
    Control(Control),
    /// The instance's interface went up (true) or down.
    Link(bool),
    /// A tracker reported a new contribution.
    Track(TrackKey, Contribution),
    /// The sync group asks something of us.
    Group(GroupCmd),
    /// Something was deleted in the kernel (`None`: we missed events).
    Deleted(Option<Key>),
    /// Time to look again for the source address we wait for.
    SourceCheck,
}

impl InstanceDriver {
    /// Resolves interfaces and addresses and opens the sockets of `inst`.
    pub async fn new(
        global: &GlobalDefs,
        inst: &VrrpInstance,
        nl: Netlink,
        links: &LinkMonitor,
        hub: &Hub,
        garp: &std::sync::Arc<garp::Sender>,
    ) -> anyhow::Result<Self> {
        let link = nl.link(&inst.interface).await?;
        let family_v6 = inst
            .virtual_ipaddress
            .first()
            .is_some_and(|v| v.addr.is_ipv6());
        let own = nl.addresses(link.index).await?;
        let (src, source_wait) =
            match resolve_source(inst.src_ip, &own, family_v6, inst.addresses()) {
                Ok(src) => (src, None),
                Err(wait) => (wait.placeholder(), Some(wait)),
            };
        let group = if family_v6 {
            IpAddr::V6(global.mcast_group6)
        } else {
            IpAddr::V4(global.mcast_group4)
        };
        // use_vmac: a macvlan with the virtual MAC holds the addresses and sends the
        // announcements and (unless vmac_xmit_base) the adverts, so the LAN's MAC for a VIP
        // never changes.
        let vmac = match &inst.use_vmac {
            Some(u) => {
                let vrid = inst.virtual_router_id;
                let mac = u
                    .mac
                    .unwrap_or_else(|| crate::vmac::vmac_address(vrid, family_v6));
                let name = match &u.name {
                    Some(n) => n.clone(),
                    None => crate::vmac::pick_name(nl.handle(), vrid, family_v6, mac).await?,
                };
                let spec = crate::vmac::VmacSpec {
                    name,
                    base_index: link.index,
                    base_name: link.name.clone(),
                    mac,
                    v6: family_v6,
                };
                let v = crate::vmac::Vmac::create(nl.handle(), &spec)
                    .await
                    .with_context(|| format!("creating VMAC interface {}", spec.name))?;
                Some((nl.link(&v.name).await?, v))
            }
            None => None,
        };
        let announce_link = vmac.as_ref().map_or(&link, |(l, _)| l).clone();
        let mut sysctls = crate::sysctl::Saved::default();
        if inst.promote_secondaries {
            let path = crate::sysctl::path4(&link.name, "promote_secondaries");
            if let Err(e) = sysctls.set(path, "1") {
                warn!(error = %e, "setting promote_secondaries failed");
            }
        }
        // Multicast adverts leave by the VMAC (unless vmac_xmit_base) so they carry the
        // virtual MAC, and are received there: a multicast frame whose source MAC is one of
        // our macvlans' is delivered to that macvlan only, never to the parent, so the peer's
        // adverts from the same virtual MAC reach us on the VMAC (keepalived does the same).
        // Unicast adverts go by the parent both ways: they are addressed to the parent's MAC,
        // and resolving the peer from a VMAC fails for the same reason (the peer's own VMAC
        // takes our ARP / NDP frames).
        let multicast = inst.unicast_peers.is_empty();
        let tx_link = match &vmac {
            Some((l, _)) if !inst.vmac_xmit_base && multicast => l,
            _ => &link,
        };
        let rx_link = tx_link;
        let vmac_source = match (src, &vmac) {
            (IpAddr::V6(src), Some((l, _))) if tx_link.index == l.index => {
                Some((crate::vmac::source_address(src), l.clone()))
            }
            _ => None,
        };
        let proto = match inst.authentication {
            Some(Authentication::Ah(_)) => crate::net::Proto::Ah,
            _ => crate::net::Proto::Vrrp,
        };
        let (sock, rx) = hub
            .join(
                &rx_link.name,
                rx_link.index,
                Family::of(src),
                proto,
                group,
                inst.virtual_router_id,
                &inst.unicast_peers,
                vmac_source.is_some(),
            )
            .map_err(|e| open_error(e, &rx_link.name))?;
        let dest = Destination::new(
            src,
            tx_link.index,
            group,
            &inst.unicast_peers,
            inst.unicast_ttl,
        );
        let source_wait = source_wait.map(|wait| SourceWatch {
            wait,
            group,
            unicast_ttl: inst.unicast_ttl,
            tick: tokio::time::interval(SOURCE_POLL),
        });

        // The excluded addresses come and go with the others but are not advertised, so
        // they may be of the other family.
        let mut vips = Vec::new();
        for vip in inst.addresses() {
            let vlink = match &vip.dev {
                Some(dev) if dev != &link.name => nl.link(dev).await?,
                _ => announce_link.clone(),
            };
            vips.push((vip.clone(), vlink));
        }
        if inst
            .virtual_ipaddress
            .iter()
            .any(|v| v.addr.is_ipv6() != family_v6)
        {
            bail!("IPv4 and IPv6 virtual addresses in one instance");
        }

        let auth = match &inst.authentication {
            Some(a @ Authentication::Pass(_)) => Auth::Pass(a.key()),
            Some(a @ Authentication::Ah(_)) => Auth::Ah(a.key()),
            None => Auth::None,
        };
        let ah = match auth {
            Auth::Ah(key) => Some(AhSession::new(key, !inst.unicast_peers.is_empty())),
            _ => None,
        };
        let cfg = fsm::Config {
            vrid: inst.virtual_router_id,
            version: inst.version,
            priority: inst.priority,
            advert_int: inst.advert_int,
            preempt: !inst.nopreempt,
            preempt_delay: inst.preempt_delay,
            start_master: inst.state == keepalived_conf::model::InitialState::Master,
            primary_addr: src,
            vips: inst.virtual_ipaddress.iter().map(|v| v.addr).collect(),
            auth,
            lower_prio_no_advert: inst.garp.lower_prio_no_advert,
            answer_before_stepping_down: !inst.strict_mode,
            down_timer_adverts: inst.down_timer_adverts,
            skip_check_adv_addr: inst.skip_check_adv_addr,
        };
        let expect = Expect {
            version: inst.version,
            vrid: inst.virtual_router_id,
            auth,
            adver_int: inst.advert_int,
            check_ttl: inst.unicast_peers.is_empty(),
        };
        let garp_port = garp::Port {
            ifindex: announce_link.index,
            mac: announce_link.mac,
        };
        let garp_schedule = vrrp_proto::announce::Schedule::new(inst.garp.schedule(family_v6));
        let link_state = links.subscribe(link.index);
        let (track_tx, track_rx) = mpsc::channel(16);
        let tracked = tracked_keys(&nl, &vips, &inst.virtual_routes, &inst.virtual_rules).await;
        let fsm = fsm::Instance::new(cfg);
        let lastgasp = super::lastgasp::recipe(
            &nl,
            &super::lastgasp::Holdings {
                dest: &dest,
                advert: &fsm.release_advert(),
                vips: &vips,
                routes: &inst.virtual_routes,
                rules: &inst.virtual_rules,
                vmac_source: vmac_source.as_ref(),
            },
        )
        .await;
        Ok(Self {
            lastgasp,
            source_wait,
            ah,
            deletions: None,
            tracked,
            sysctls,
            start_delay: None,
            vmac: vmac.map(|(_, v)| v),
            vmac_source,
            vmac_source_added: false,
            track_tx,
            track_rx,
            notifier: None,
            mail: None,
            group: None,
            group_fault: false,
            own_fault: false,
            state_tx: watch::channel(State::Initialize).0,
            resume: None,
            resumed_from: None,
            resumed: false,
            fifo_states_on_reload: global.fifo_write_vrrp_states_on_reload,
            track: TrackSet::new(inst.priority),
            link_state,
            track_primary: !inst.dont_track_primary,
            name: inst.name.clone(),
            fsm,
            sock,
            rx,
            dest,
            peers: inst.unicast_peers.clone(),
            check_unicast_src: inst.check_unicast_src,
            nl,
            link,
            vips,
            routes: inst.virtual_routes.clone(),
            rules: inst.virtual_rules.clone(),
            expect,
            garp: garp.clone(),
            garp_port,
            garp_schedule,
            epoch: Instant::now(),
            timer: Timer::new().context("creating a timerfd")?,
            counters: Counters::default(),
            master_priority: 0,
            last_transition: (0.0, None),
            cause: None,
            last_cause: None,
            vip_text: inst.virtual_ipaddress.iter().map(vip_text).collect(),
            excluded_text: inst
                .virtual_ipaddress_excluded
                .iter()
                .map(vip_text)
                .collect(),
        })
    }

    /// Where tracker drivers send `(key, contribution)` updates for this instance (e.g. a
    /// `vrrp_script` monitor mapped through the per-use [`Weight`]).
    pub fn tracker(&self) -> mpsc::Sender<(TrackKey, Contribution)> {
        self.track_tx.clone()
    }

    /// Runs notify scripts / FIFO lines on every transition (and STOP on shutdown).
    /// This instance replaces one a reload stopped in `previous` state: a Master goes on as
    /// Master without releasing its addresses first.
    pub fn resume(&mut self, previous: Resume) {
        if let Some(ah) = &mut self.ah {
            ah.continue_from(previous.ah);
        }
        let previous = previous.state;
        self.resume = Some(previous == State::Master);
        self.resumed_from = Some(previous);
        // A Master resumes with its addresses in place: whoever follows the state (the
        // balancer) must not see it leave Master in between.
        if previous == State::Master {
            self.state_tx.send_replace(State::Master);
        }
    }

    /// Follows the instance's state.
    pub fn state_watch(&self) -> watch::Receiver<State> {
        self.state_tx.subscribe()
    }

    pub fn set_notifier(&mut self, n: Notifier) {
        self.notifier = Some(n);
    }

    /// Mails each state entered (`smtp_alert`).
    pub fn set_mail(&mut self, m: crate::mail::StateMail) {
        self.mail = Some(m);
    }

    /// `vrrp_startup_delay`: stay in INIT this long before starting (daemon start only).
    pub fn delay_start(&mut self, delay: Duration) {
        self.start_delay = Some(delay);
    }

    /// Follows kernel deletions: a Master whose tracked address, route or rule goes away
    /// steps down and takes it back, as keepalived does.
    pub fn watch_deletions(&mut self, rx: broadcast::Receiver<Key>) {
        self.deletions = Some(rx);
    }

    /// A reload drops this instance: mailed as keepalived 2.2.7 does (FAULT).
    fn on_removed(&mut self) {
        if let Some(m) = &mut self.mail {
            m.transition(NotifyState::Fault);
        }
    }

    /// Makes this instance a member of a sync group.
    pub fn set_group(&mut self, g: GroupLink) {
        self.group = Some(g);
    }

    /// Takes the tracker reports and the state watch of the instance that waited for its
    /// interface ([`super::waiting`]): the trackers and the balancer already hold their ends.
    pub fn take_over(&mut self, track: super::waiting::Track, state_tx: watch::Sender<State>) {
        (self.track_tx, self.track_rx) = track;
        self.state_tx = state_tx;
    }

    /// Runs the instance until `stop` turns true (then releases it) or a reload hands it over.
    pub async fn run(self, stop: watch::Receiver<bool>, control: mpsc::Receiver<Control>) -> Exit {
        let span = info_span!("instance", name = %self.name);
        self.run_inner(stop, control).instrument(span).await
    }

    async fn run_inner(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut control: mpsc::Receiver<Control>,
    ) -> Exit {
        let resume = self.resume.take();
        self.resumed = resume.is_some();
        if resume != Some(true) {
            self.remove_leftovers().await;
        }
        if let Some(delay) = self.start_delay.take() {
            info!(
                "({}) delaying startup for {delay:?} (vrrp_startup_delay)",
                self.name
            );
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    _ = stop.changed() => return self.finish(None).await,
                    Some(c) = control.recv() => match c {
                        Control::Status(reply) => {
                            let _ = reply.send(self.status());
                        }
                        Control::Handover { keep } => return self.finish(Some(keep)).await,
                        Control::Removed => self.on_removed(),
                    },
                }
            }
        }
        // Start from what the trackers already know (their first reports are queued by now),
        // so a down interface or a failed weight-0 tracker means INIT → FAULT directly, as
        // keepalived does, rather than BACKUP then FAULT.
        tokio::task::yield_now().await;
        while let Ok((k, c)) = self.track_rx.try_recv() {
            self.track.set(k, c);
        }
        if let Some(w) = &self.source_wait {
            w.wait.log_fault(&self.name);
            self.track.set(TrackKey::Source, Contribution::Fault);
        }
        let up = *self.link_state.borrow_and_update();
        self.on_link(up).await;
        let eff = self.track.effective();
        self.apply_effective(eff).await;
        if self.fsm.state() == State::Initialize {
            let input = match resume {
                Some(master) => Input::Resume { master },
                None => Input::Startup,
            };
            self.step(input).await;
        }
        let mut handover = None;
        loop {
            let deadline = [self.fsm.poll_timeout(), self.garp_schedule.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .map(|d| self.epoch + d);
            let event = tokio::select! {
                biased;
                _ = stop.changed() => Event::Stop,
                _ = self.timer.sleep_until(deadline) => Event::Timer,
                Some(c) = control.recv() => Event::Control(c),
                Ok(()) = self.link_state.changed() => Event::Link(*self.link_state.borrow_and_update()),
                Some((k, c)) = self.track_rx.recv() => Event::Track(k, c),
                cmd = group_recv(&mut self.group) => Event::Group(cmd),
                k = deletion_recv(&mut self.deletions) => Event::Deleted(k),
                _ = source_tick(&mut self.source_wait) => Event::SourceCheck,
                Some(p) = self.rx.recv() => Event::Packet(p),
            };
            fault_inject::point("vrrp-loop");
            match event {
                Event::Stop => {
                    // A reload's word that we are dropped may still wait behind the stop.
                    while let Ok(c) = control.try_recv() {
                        if let Control::Removed = c {
                            self.on_removed();
                        }
                    }
                    break;
                }
                Event::Timer => self.on_timer().await,
                Event::Link(up) => self.on_link(up).await,
                Event::Track(k, c) => {
                    if let Some(eff) = self.track.set(k, c) {
                        self.apply_effective(eff).await;
                    }
                }
                Event::Group(cmd) => self.on_group(cmd).await,
                Event::Deleted(k) => self.on_deleted(k).await,
                Event::SourceCheck => self.check_source().await,
                Event::Control(Control::Status(reply)) => {
                    let _ = reply.send(self.status());
                }
                Event::Control(Control::Removed) => self.on_removed(),
                Event::Control(Control::Handover { keep }) => {
                    handover = Some(keep);
                    break;
                }
                Event::Packet(Ok((meta, payload))) => {
                    let accepted = crate::net::accepts_from(
                        meta.src,
                        self.dest.src,
                        &self.peers,
                        self.check_unicast_src,
                    );
                    match accepted {
                        Ok(()) => {}
                        Err(DropReason::Own) => continue,
                        Err(reason) => {
                            self.count_drop(reason, meta.src);
                            continue;
                        }
                    }
                    // AH: the packet is the whole IPv4 datagram; its ICV, SPI and sequence
                    // number are checked before the advert is read.
                    let (payload, ah_seq) = match &mut self.ah {
                        Some(ah) => match ah.open(&payload) {
                            Ok((_, advert, seq)) => (advert, Some(seq)),
                            Err(reason) => {
                                self.count_drop(reason, meta.src);
                                continue;
                            }
                        },
                        None => (&payload[..], None),
                    };
                    match packet::decode(payload, &meta, &self.expect) {
                        Ok(advert) => {
                            if let Err(e) = self.fsm.check_addresses(meta.src, &advert) {
                                self.count_address_list_error(e, meta.src);
                                continue;
                            }
                            self.counters.adverts_received += 1;
                            self.master_priority = advert.priority;
                            if advert.priority == 0 {
                                self.counters.priority_zero_received += 1;
                            }
                            trace!(src = %meta.src, prio = advert.priority, "advert");
                            if let (Some(ah), Some(seq)) = (&mut self.ah, ah_seq) {
                                if self.fsm.state() == State::Master
                                    && (advert.priority, meta.src)
                                        < (self.fsm.priority(), self.dest.src)
                                {
                                    ah.heard_lower(seq);
                                }
                            }
                            if let Some(g) = &self.group {
                                if advert.priority >= self.fsm.priority() {
                                    g.clear_want();
                                }
                            }
                            self.step(Input::Advert {
                                src: meta.src,
                                advert,
                            })
                            .await
                        }
                        Err(reason) => self.count_drop(reason, meta.src),
                    }
                }
                Event::Packet(Err(reason)) => {
                    self.counters.drop(reason);
                }
            }
        }
        self.finish(handover).await
    }

    /// Ends the actor: released on stop, or handed over to a reloaded configuration.
    async fn finish(mut self, handover: Option<Box<VrrpInstance>>) -> Exit {
        // A reloaded instance sets them again and so saves the original values.
        self.sysctls.restore();
        let state = self.fsm.state();
        match handover {
            Some(keep) => {
                info!(
                    "handing over to the reloaded configuration ({})",
                    state_name(state)
                );
                if let Some(v) = self.vmac.take() {
                    v.hand_over();
                }
                if state == State::Master {
                    self.release_dropped(&keep).await;
                }
            }
            None => {
                self.step(Input::Shutdown).await;
                if let Some(v) = self.vmac.take() {
                    let name = v.name.clone();
                    if let Err(e) = v.remove(self.nl.handle()).await {
                        warn!(vmac = %name, error = %e, "removing the VMAC interface failed");
                    }
                }
            }
        }
        if let Some(n) = self.notifier.take() {
            // notify_stop and anything still queued run before the actor ends.
            n.finish().await;
        }
        if let Some(g) = self.group.take() {
            g.finish().await;
        }
        Exit {
            name: self.name,
            resume: Resume {
                state,
                ah: self
                    .ah
                    .as_ref()
                    .map(AhSession::sequence)
                    .unwrap_or_default(),
            },
        }
    }

    /// A Master checks that what an event says is gone really is (the event may be the late
    /// echo of our own removal, and we are Master again), then steps down to take it back.
    async fn on_deleted(&mut self, key: Option<Key>) {
        if self.fsm.state() != State::Master {
            return;
        }
        let candidates: Vec<Key> = match key {
            Some(k) if self.tracked.contains(&k) => vec![k],
            Some(_) => return,
            None => self.tracked.iter().cloned().collect(),
        };
        for k in candidates {
            match crate::track::deleted::present(self.nl.handle(), &k).await {
                Ok(true) => {}
                Ok(false) => {
                    warn!(
                        "({}) {} deleted; leaving MASTER to reinstate it",
                        self.name,
                        describe(&k)
                    );
                    self.step(Input::Lost).await;
                    return;
                }
                Err(e) => warn!(error = %e, "checking a deleted object failed"),
            }
        }
    }

    /// Looks for the source address the instance waits for; once there, the adverts go from
    /// it and the FAULT it caused is cleared.
    async fn check_source(&mut self) {
        let Some(w) = &self.source_wait else {
            return;
        };
        let own = match self.nl.addresses(self.link.index).await {
            Ok(own) => own,
            Err(e) => {
                debug!(error = %e, "reading the interface's addresses failed");
                return;
            }
        };
        let vips = self.vips.iter().map(|(v, _)| v);
        let Ok(src) = resolve_source(w.wait.configured, &own, w.wait.v6, vips) else {
            return;
        };
        let w = self.source_wait.take().expect("checked above");
        info!("({}) source address {src} is now available", self.name);
        self.dest = Destination::new(src, self.dest.ifindex, w.group, &self.peers, w.unicast_ttl);
        self.fsm.set_primary_addr(src);
        if let (Some((v, _)), IpAddr::V6(s)) = (&mut self.vmac_source, src) {
            *v = crate::vmac::source_address(s);
        }
        self.lastgasp = super::lastgasp::recipe(
            &self.nl,
            &super::lastgasp::Holdings {
                dest: &self.dest,
                advert: &self.fsm.release_advert(),
                vips: &self.vips,
                routes: &self.routes,
                rules: &self.rules,
                vmac_source: self.vmac_source.as_ref(),
            },
        )
        .await;
        if let Some(eff) = self.track.set(TrackKey::Source, Contribution::Delta(0)) {
            self.apply_effective(eff).await;
        }
    }

    async fn on_group(&mut self, cmd: GroupCmd) {
        match cmd {
            GroupCmd::Fault(f) => {
                self.group_fault = f;
                let eff = self.track.effective();
                self.apply_effective(eff).await;
            }
            GroupCmd::Master => self.step(Input::SyncMaster).await,
            GroupCmd::Backup => self.step(Input::SyncBackup).await,
        }
    }

    /// The instance's own interface changed: an unweighted tracker (down is FAULT).
    async fn on_link(&mut self, up: bool) {
        if up {
            info!(interface = %self.link.name, "interface up");
        } else {
            info!(interface = %self.link.name, "interface down");
        }
        let c = Weight::new(0, false).binary(up || !self.track_primary);
        if let Some(eff) = self.track.set(TrackKey::Interface(self.link.index), c) {
            self.apply_effective(eff).await;
        }
    }

    /// Feeds a new tracker result to the machine: priority first (so leaving FAULT uses it),
    /// then FAULT entered or cleared.
    async fn apply_effective(&mut self, eff: Effective) {
        if eff.priority != self.fsm.priority() {
            info!(
                "changing effective priority from {} to {}",
                self.fsm.priority(),
                eff.priority
            );
            let before = self.fsm.priority();
            let mut out = Vec::new();
            self.fsm.set_priority(self.now(), eff.priority, &mut out);
            for action in out {
                self.execute(action).await;
            }
            let now = self.fsm.priority();
            if let (Some(n), true) = (&self.notifier, now != before) {
                // keepalived words it by the state it is in: Master, or anything else.
                let ev = if self.fsm.state() == State::Master {
                    NotifyEvent::MasterPriority
                } else {
                    NotifyEvent::BackupPriority
                };
                n.event(ev, now);
            }
        }
        if let Some(g) = &self.group {
            if eff.fault != self.own_fault {
                self.own_fault = eff.fault;
                g.set_own_fault(eff.fault);
            }
        }
        match (eff.fault || self.group_fault, self.fsm.state()) {
            (true, s) if s != State::Fault => self.step(Input::Fault).await,
            (false, State::Fault) => self.step(Input::FaultCleared).await,
            _ => {}
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    async fn on_timer(&mut self) {
        let now = self.now();
        if self.fsm.poll_timeout().is_some_and(|t| t <= now) {
            let held = self.fsm.state() == State::Backup
                && self.group.as_ref().is_some_and(|g| !g.may_go_master());
            if held {
                debug!("sync group not ready for MASTER; waiting");
                self.step(Input::SyncHold).await;
            } else {
                self.step(Input::Timeout).await;
            }
        }
        self.announce_due();
    }

    /// Feeds one input to the machine and executes what it asks for, in order.
    async fn step(&mut self, input: Input) {
        self.cause = Some(Cause::of(&input));
        let mut out = Vec::new();
        self.fsm.handle(self.now(), input, &mut out);
        for action in out {
            self.execute(action).await;
        }
    }

    async fn execute(&mut self, action: Action) {
        match action {
            Action::Send(advert) => {
                self.add_vmac_source().await;
                match self.send(&advert) {
                    Ok(()) => {
                        self.counters.adverts_sent += 1;
                        if advert.priority == 0 {
                            self.counters.priority_zero_sent += 1;
                        }
                    }
                    Err(e) => warn!(error = %e, "sending advert failed"),
                }
            }
            Action::Transition { from, to } => {
                if let Some(g) = &self.group {
                    g.transition(from, to);
                }
                if let (Some(ah), State::Master) = (&mut self.ah, to) {
                    ah.became_master();
                }
                let resuming = self.resumed && from == State::Initialize;
                let st = match to {
                    State::Master => NotifyState::Master,
                    State::Backup => NotifyState::Backup,
                    State::Fault => NotifyState::Fault,
                    State::Initialize => NotifyState::Stop,
                };
                if let Some(n) = &self.notifier {
                    // A reload is no news (keepalived 2.2.7 notifies nothing), unless
                    // `fifo_write_vrrp_states_on_reload` asks for the FIFO lines.
                    match (resuming, self.fifo_states_on_reload) {
                        (false, _) => n.notify(st, self.fsm.priority()),
                        (true, true) => n.state_line(st, self.fsm.priority()),
                        (true, false) => {}
                    }
                }
                if let (Some(m), false) = (&mut self.mail, resuming) {
                    m.transition(st);
                }
                // keepalived's words, which operators grep their logs for (and alert on): a
                // reload that leaves the instance where it was is no state entry.
                let unchanged = resuming && self.resumed_from == Some(to);
                if !unchanged {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    self.last_transition = (now, Some(from));
                    self.last_cause = self.cause;
                }
                if unchanged {
                    debug!(
                        "({}) kept {} STATE across the reload",
                        self.name,
                        state_name(to)
                    );
                } else {
                    info!(
                        "({}) Entering {} STATE (from {})",
                        self.name,
                        state_name(to),
                        state_name(from)
                    );
                }
                if from == State::Master {
                    self.garp_schedule.stop();
                    self.counters.released_master += 1;
                }
                if to == State::Master && !unchanged {
                    self.counters.became_master += 1;
                }
                self.state_tx.send_replace(to);
            }
            Action::AddVips => {
                crate::supervisor::link::master(&self.name, &self.lastgasp);
                for (vip, link) in &self.vips {
                    if let Err(e) = self.nl.add_vip(link.index, &link.name, vip).await {
                        warn!(error = %e, "adding virtual address failed");
                    }
                }
                // Routes may use the VIPs (`src VIP`, a gateway on the VIP's subnet): after them.
                for r in &self.routes {
                    if let Err(e) = self.nl.add_route(r).await {
                        warn!(error = %e, "adding virtual route failed");
                    }
                }
                for r in &self.rules {
                    if let Err(e) = self.nl.add_rule(r).await {
                        warn!(error = %e, "adding virtual rule failed");
                    }
                }
            }
            Action::RemoveVips => self.remove_vips().await,
            Action::Announce(why) => {
                let reason = match why {
                    Announce::BecameMaster => vrrp_proto::announce::Reason::BecameMaster,
                    Announce::LowerPriorityHeard => {
                        // Where keepalived notifies MASTER_RX_LOWER_PRI: a Master heard a
                        // lower priority (or an equal one from a lower address).
                        if let Some(n) = &self.notifier {
                            n.event(NotifyEvent::MasterRxLowerPri, self.fsm.priority());
                        }
                        vrrp_proto::announce::Reason::LowerPriority
                    }
                };
                self.garp_schedule.start(self.now(), reason);
                self.announce_due();
            }
        }
    }

    /// Rules, routes, then addresses: the reverse of [`Action::AddVips`]. The VMAC's source
    /// address goes last: leaving Master, the priority-0 adverts have been sent.
    async fn remove_vips(&mut self) {
        self.remove_routes().await;
        for (vip, link) in &self.vips {
            if let Err(e) = self.nl.del_vip(link.index, &link.name, vip).await {
                warn!(error = %e, "removing virtual address failed");
            }
        }
        if let Some((addr, link)) = &self.vmac_source {
            if let Err(e) = self.nl.del_vip(link.index, &link.name, addr).await {
                warn!(error = %e, "removing the source address from the VMAC failed");
            }
            self.vmac_source_added = false;
        }
        crate::supervisor::link::released(&self.name);
    }

    /// What a Master hands over to the reloaded `next` but `next` no longer configures:
    /// removed in the order [`Self::remove_vips`] uses.
    async fn release_dropped(&self, next: &VrrpInstance) {
        for r in self
            .rules
            .iter()
            .filter(|r| !next.virtual_rules.contains(r))
        {
            if let Err(e) = self.nl.del_rule(r).await {
                warn!(error = %e, "removing a virtual rule no longer configured failed");
            }
        }
        for r in self
            .routes
            .iter()
            .filter(|r| !next.virtual_routes.contains(r))
        {
            if let Err(e) = self.nl.del_route(r).await {
                warn!(error = %e, "removing a virtual route no longer configured failed");
            }
        }
        let kept = |a: IpAddr| next.addresses().any(|v| v.addr == a);
        for (vip, link) in self.vips.iter().filter(|(v, _)| !kept(v.addr)) {
            if let Err(e) = self.nl.del_vip(link.index, &link.name, vip).await {
                warn!(error = %e, "removing a virtual address no longer configured failed");
            }
        }
    }

    /// Puts our source address on an IPv6 VMAC before the first advert we send from it.
    async fn add_vmac_source(&mut self) {
        if let (Some((addr, link)), false) = (&self.vmac_source, self.vmac_source_added) {
            match self.nl.add_vip(link.index, &link.name, addr).await {
                Ok(()) => self.vmac_source_added = true,
                Err(e) => warn!(error = %e, "adding the source address to the VMAC failed"),
            }
        }
    }

    async fn remove_routes(&self) {
        for r in &self.rules {
            if let Err(e) = self.nl.del_rule(r).await {
                warn!(error = %e, "removing virtual rule failed");
            }
        }
        for r in &self.routes {
            if let Err(e) = self.nl.del_route(r).await {
                warn!(error = %e, "removing virtual route failed");
            }
        }
    }

    /// Sends the announcement rounds the schedule says are due.
    fn announce_due(&mut self) {
        let rounds = self.garp_schedule.poll(self.now());
        if rounds == 0 {
            return;
        }
        let addrs: Vec<IpAddr> = self.vips.iter().map(|(v, _)| v.addr).collect();
        let r = self.garp.announce(self.garp_port, &addrs, rounds);
        if let Some(e) = r.error {
            debug!(error = %e, "announcement failed");
        }
    }

    /// Encodes and sends an advert to the group or to every unicast peer.
    fn send(&mut self, advert: &packet::Advert) -> std::io::Result<()> {
        let bytes: Vec<(Vec<u8>, &socket2::SockAddr)> = match &mut self.ah {
            // Whole IPv4 packets: the header is part of what the ICV covers.
            Some(ah) => {
                let dsts: Vec<IpAddr> = self.dest.targets().map(|(d, _)| d).collect();
                let packets = ah.seal(advert, self.dest.src, self.dest.ttl, &dsts);
                packets
                    .into_iter()
                    .zip(self.dest.targets().map(|(_, to)| to))
                    .collect()
            }
            None => self
                .dest
                .targets()
                .map(|(dst, to)| (advert.encode(self.dest.src, dst), to))
                .collect(),
        };
        let msgs: Vec<sysio::mmsg::OutMsg> = bytes
            .iter()
            .map(|(b, to)| {
                let m = sysio::mmsg::OutMsg::new(b).to(to);
                match self.ah {
                    // The header we built says it all.
                    Some(_) => m,
                    None => m.control(self.dest.control()),
                }
            })
            .collect();
        // A full socket buffer or an unreachable peer must not stop the other peers.
        let r = self.sock.send(&msgs);
        match r.failed.into_iter().next() {
            Some((_, e)) => Err(e),
            None if r.blocked => Err(std::io::ErrorKind::WouldBlock.into()),
            None => Ok(()),
        }
    }

    /// Addresses of ours still on the interfaces were left by a run that did not release
    /// them (a crash, kill -9). We start as Backup, so holding them would put the same address
    /// on two hosts: remove them now; a Master adds them back when it gets there.
    async fn remove_leftovers(&self) {
        // Routes and rules of ours left by such a run go too (absent ones are not an error).
        self.remove_routes().await;
        for (vip, link) in &self.vips {
            let present = match self.nl.addresses(link.index).await {
                Ok(addrs) => addrs.iter().any(|(a, _)| *a == vip.addr),
                Err(_) => false,
            };
            if present {
                warn!(vip = %vip.addr, dev = %link.name, "removing virtual address left behind by an earlier run");
                if let Err(e) = self.nl.del_vip(link.index, &link.name, vip).await {
                    warn!(error = %e, "removing left-over address failed");
                }
            }
        }
        // A Backup's IPv6 VMAC holds no address: not ours from a crashed run, nor one the
        // kernel made before addr_gen_mode was set on an interface we adopted.
        if let Some((_, link)) = &self.vmac_source {
            for (a, _) in self.nl.addresses(link.index).await.unwrap_or_default() {
                let IpAddr::V6(a) = a else { continue };
                if !a.is_unicast_link_local() {
                    continue;
                }
                let addr = crate::vmac::source_address(a);
                if let Err(e) = self.nl.del_vip(link.index, &link.name, &addr).await {
                    warn!(error = %e, "removing a link-local address from the VMAC failed");
                }
            }
        }
    }

    fn status(&self) -> InstanceStatus {
        let cfg = self.fsm.config();
        InstanceStatus {
            name: self.name.clone(),
            state: self.fsm.state(),
            interface: self.link.name.clone(),
            vrid: cfg.vrid,
            version: cfg.version,
            base_priority: cfg.priority,
            effective_priority: self.fsm.priority(),
            master_adver_int: f64::from(self.fsm.master_adver_int()) / 100.0,
            master_addr: self.fsm.master_addr(),
            source_addr: self.dest.src,
            unicast_peers: self.peers.clone(),
            preempt: cfg.preempt,
            vips: self.vip_text.clone(),
            excluded_vips: self.excluded_text.clone(),
            trackers: self
                .track
                .contributions()
                .map(|(k, c)| {
                    let (kind, name) = match k {
                        TrackKey::Interface(i) if *i == self.link.index => {
                            ("interface", self.link.name.clone())
                        }
                        TrackKey::Interface(i) => (
                            "interface",
                            interface_name(*i).unwrap_or_else(|| format!("ifindex {i}")),
                        ),
                        TrackKey::Script(n) => ("script", n.clone()),
                        TrackKey::File(n) => ("file", n.clone()),
                        TrackKey::Process(n) => ("process", n.clone()),
                        TrackKey::VirtualServer(n) => ("virtual_server", n.clone()),
                        TrackKey::Source => ("source_address", self.dest.src.to_string()),
                    };
                    let delta = match c {
                        Contribution::Delta(d) => Some(*d),
                        Contribution::Fault => None,
                    };
                    TrackerStatus { kind, name, delta }
                })
                .collect(),
            counters: self.counters.clone(),
            master_priority: self.master_priority,
            last_transition: self.last_transition.0,
            last_transition_from: self.last_transition.1,
            last_transition_reason: self.last_cause.map(|c| c.to_string()),
        }
    }

    /// An advert with another address list was dropped (the protocol's decision,
    /// [`fsm::Instance::check_addresses`]): counted as keepalived counts it (a wrong count is
    /// not a received advert, a wrong address is) and logged at powers of two.
    fn count_address_list_error(&mut self, e: fsm::AddressListError, src: IpAddr) {
        if let fsm::AddressListError::Missing(_) = e {
            self.counters.adverts_received += 1;
        }
        self.counters.address_list_mismatch += 1;
        let n = self.counters.address_list_mismatch;
        if n.is_power_of_two() {
            // keepalived's words, which operators grep for.
            let vrid = self.fsm.config().vrid;
            match e {
                fsm::AddressListError::Missing(a) => warn!(
                    count = n, %src,
                    "({}) ip address associated with VRID {vrid} not present in MASTER advert: {a}",
                    self.name
                ),
                fsm::AddressListError::Count { got, want } => warn!(
                    count = n, %src,
                    "({}) received an unexpected ip number count {got}, expected {want}!",
                    self.name
                ),
            }
        }
    }

    fn count_drop(&mut self, reason: DropReason, src: IpAddr) {
        let n = self.counters.drop(reason);
        // One log line per reason per power of two keeps a flood from becoming a log flood.
        if n.is_power_of_two() {
            debug!(%src, %reason, count = n, "dropped packet");
        }
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

/// The next deletion, `None` when events were missed, or never without a monitor.
async fn deletion_recv(rx: &mut Option<broadcast::Receiver<Key>>) -> Option<Key> {
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

/// The keys of what a Master tracks: keepalived tracks every address and rule unless
/// `no_track`, and a route only when it names its `dev`.
async fn tracked_keys(
    nl: &Netlink,
    vips: &[(VirtualAddress, Link)],
    routes: &[Route],
    rules: &[Rule],
) -> HashSet<Key> {
    let mut keys = HashSet::new();
    for (v, link) in vips.iter().filter(|(v, _)| !v.no_track) {
        keys.insert(Key::Address {
            index: link.index,
            addr: v.addr,
        });
    }
    for r in routes.iter().filter(|r| r.dev.is_some() && !r.no_track) {
        match nl.route_message(r, false).await {
            Ok(m) => {
                keys.insert(Key::Route(route_key(&m)));
            }
            Err(e) => warn!(route = %r, error = %e, "not tracking a virtual route"),
        }
    }
    for r in rules.iter().filter(|r| !r.no_track) {
        keys.insert(Key::Rule(rule_key(&crate::netlink::routes::rule_message(
            r,
        ))));
    }
    keys
}

fn describe(k: &Key) -> String {
    match k {
        Key::Address { addr, .. } => format!("virtual address {addr}"),
        Key::Route(r) => match r.dst {
            Some(d) => format!("virtual route {d}/{} (table {})", r.dst_len, r.table),
            None => format!("virtual default route (table {})", r.table),
        },
        Key::Rule(r) => format!("virtual rule (priority {})", r.priority),
    }
}

/// The next command of `g`, or never.
async fn group_recv(g: &mut Option<GroupLink>) -> GroupCmd {
    match g {
        Some(g) => g.recv().await,
        None => std::future::pending().await,
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

/// A virtual address as keepalived's dump shows it.
fn vip_text(v: &VirtualAddress) -> String {
    let mut t = format!("{}/{}", v.addr, v.prefix_len);
    if let Some(brd) = v.broadcast {
        t += &format!(" brd {brd}");
    }
    if let Some(dev) = &v.dev {
        t += &format!(" dev {dev}");
    }
    if let Some(label) = &v.label {
        t += &format!(" label {label}");
    }
    t
}

/// The source keepalived would pick: the interface's first IPv4 address, or its IPv6
/// link-local address for an IPv6 instance.
/// A virtual address left behind by an earlier run is never the primary.
fn primary_address<'a>(
    addrs: &[(IpAddr, u8)],
    v6: bool,
    vips: impl Iterator<Item = &'a VirtualAddress>,
) -> Option<IpAddr> {
    let vips: Vec<IpAddr> = vips.map(|v| v.addr).collect();
    addrs
        .iter()
        .map(|(a, _)| *a)
        .filter(|a| !vips.contains(a))
        .find(|a| match a {
            IpAddr::V4(_) => !v6,
            IpAddr::V6(a) => v6 && a.is_unicast_link_local(),
        })
}

/// How often an instance waiting for its source address looks for it.
const SOURCE_POLL: Duration = Duration::from_secs(1);

/// An instance's source address that is not there yet. keepalived puts such an instance in
/// FAULT rather than stopping: an interface without an IPv4 address (until one is added), a
/// `unicast_src_ip` / `mcast_src_ip` that is not local (keepalived 2.2.7 stays in FAULT for
/// good; vrrpd leaves it once the address is added).
#[derive(Debug, Clone, Copy)]
struct SourceWait {
    configured: Option<IpAddr>,
    v6: bool,
}

impl SourceWait {
    /// Stands in for the source until it is known (nothing is sent in FAULT).
    fn placeholder(&self) -> IpAddr {
        match (self.configured, self.v6) {
            (Some(a), _) => a,
            (None, false) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            (None, true) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }

    /// keepalived's words.
    fn log_fault(&self, name: &str) {
        match self.configured {
            Some(a) => {
                warn!("bind unicast_src {a} failed 99 - Cannot assign requested address");
                warn!("({name}): entering FAULT state (src address not configured)");
            }
            None if self.v6 => {
                warn!("({name}) entering FAULT state (no IPv6 link local address for interface)")
            }
            None => warn!("({name}) entering FAULT state (no IPv4 address for interface)"),
        }
    }
}

/// [`SourceWait`] with what rebuilds the destination once the source is known.
struct SourceWatch {
    wait: SourceWait,
    group: IpAddr,
    unicast_ttl: u8,
    tick: tokio::time::Interval,
}

/// The next look for the source address; never when none is awaited.
async fn source_tick(w: &mut Option<SourceWatch>) {
    match w {
        Some(w) => {
            w.tick.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The source address as keepalived picks it: the configured one if it is local (keepalived
/// binds to it), else the interface's primary address.
fn resolve_source<'a>(
    configured: Option<IpAddr>,
    own: &[(IpAddr, u8)],
    v6: bool,
    vips: impl Iterator<Item = &'a VirtualAddress>,
) -> Result<IpAddr, SourceWait> {
    let wait = SourceWait { configured, v6 };
    match configured {
        Some(a) if own.iter().any(|(o, _)| *o == a) || is_local(a) => Ok(a),
        Some(_) => Err(wait),
        None => primary_address(own, v6, vips).ok_or(wait),
    }
}

/// Whether `addr` is an address of this host (on any interface), as a bind to it tells.
fn is_local(addr: IpAddr) -> bool {
    std::net::UdpSocket::bind(std::net::SocketAddr::new(addr, 0)).is_ok()
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// The input a transition came from, kept without allocating (adverts arrive every interval);
/// written out only for the status.
#[derive(Debug, Clone, Copy)]
enum Cause {
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
