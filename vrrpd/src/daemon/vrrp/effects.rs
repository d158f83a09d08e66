//! The effects of the instances that wait for the kernel or a child process: addresses,
//! routes and rules (netlink), announcements, notify scripts and FIFO lines, mail, the VMAC,
//! the sysctls, the supervisor's release recipe. One task performs them in the order the
//! instances produced them, so the VRRP loop never waits: while an address is being added, the
//! other instances' adverts go out on time.
//!
//! Per instance the order is the protocol's (a new Master's advert leaves first, then its
//! addresses are added, then they are announced and the notify script runs); between instances
//! it is the order of the events.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::mail::StateMail;
use crate::netlink::Netlink;
use crate::notify::{Event as NotifyEvent, Notifier, NotifyState};
use crate::track::deleted::Key;
use vrrp_proto::fsm::{AddressListError, State};
use vrrp_proto::instance::{self, Effect, Note};
use vrrp_proto::node::{GroupEffect, Id};
use vrrp_proto::sync::Cmd;

use super::plan::Plan;

/// What one instance's effects need.
pub(crate) struct Io {
    pub plan: Arc<Plan>,
    pub notifier: Option<Notifier>,
    pub mail: Option<StateMail>,
    /// The VMAC this run made (removed when the instance is).
    pub vmac: Option<crate::vmac::Vmac>,
    /// Interface sysctls we set (`promote_secondaries`), put back when the instance goes.
    pub sysctls: crate::host::sysctl::Saved,
    /// An IPv6 VMAC's source address is on it now.
    pub vmac_source_added: bool,
}

/// What one sync group's effects need.
pub(crate) struct GroupIo {
    pub name: String,
    pub notifier: Option<Notifier>,
    pub mail: Option<StateMail>,
}

/// Work for the effects task.
pub(crate) enum Job {
    /// A new instance.
    Install(Id, Box<Io>),
    /// A reload changed the instance: `io` replaces its effects' state, keeping the VMAC (when
    /// the new plan has the same) and the saved sysctls. A Master first
    /// releases what the new plan no longer has.
    Replace {
        id: Id,
        io: Box<Io>,
        was_master: bool,
    },
    /// A reload kept the instance: its notifier and mail are the new configuration's.
    Rewire {
        id: Id,
        notifier: Option<Notifier>,
        mail: Option<StateMail>,
    },
    /// Instances about to start not as a resumed Master: remove what a run that died left
    /// behind (addresses, routes, rules): they start as Backup.
    RemoveLeftovers(Vec<Id>),
    Effect(Id, Effect),
    /// The sync groups of the configuration, in the node's order.
    Groups(Vec<GroupIo>),
    Group(usize, GroupEffect),
    /// A Master's tracked objects some deletion may have hit: reported back as lost when one
    /// is really gone (not the late echo of our own removal).
    CheckDeleted(Id, Vec<Key>),
    /// The instance waits for its source address: look for it (reported back when found).
    FindSource(Id),
    /// The instance waits for its interface: resolve its plan if it is there (reported back).
    FindInterface(Id),
    /// The instance is gone (after its shutdown effects); `remove_vmac`: delete its VMAC.
    Uninstall {
        id: Id,
        remove_vmac: bool,
    },
    /// A configuration's instances have started and their first effects are done.
    Settled,
    /// Done when every job before it is, including the notify scripts still queued.
    Finish(oneshot::Sender<()>),
}

/// What the effects task tells the loop.
#[derive(Debug)]
pub(crate) enum Feedback {
    /// A tracked object of this Master is gone.
    Lost(Id),
    /// The source address the instance waited for is there: `found` is plan `from` with it.
    Source {
        id: Id,
        from: Arc<Plan>,
        found: Arc<Plan>,
    },
    /// The interface the instance waited for is there: `found` is its plan, replacing `from`.
    Resolved {
        id: Id,
        from: Arc<Plan>,
        found: Arc<Plan>,
    },
}

/// Runs the effects until the job channel closes.
pub(crate) async fn run(
    mut jobs: mpsc::UnboundedReceiver<Job>,
    nl: Netlink,
    garp: Arc<garp::Sender>,
    feedback: mpsc::UnboundedSender<Feedback>,
) {
    let mut x = Executor {
        ios: HashMap::new(),
        groups: Vec::new(),
        nl,
        garp,
        feedback,
        finishing: JoinSet::new(),
    };
    while let Some(job) = jobs.recv().await {
        x.job(job).await;
    }
}

struct Executor {
    ios: HashMap<Id, Box<Io>>,
    groups: Vec<GroupIo>,
    nl: Netlink,
    garp: Arc<garp::Sender>,
    feedback: mpsc::UnboundedSender<Feedback>,
    /// Notifiers of removed instances and groups, running their last scripts.
    finishing: JoinSet<()>,
}

/// `promote_secondaries` on the instance's interface (put back when it goes).
fn promote_secondaries(io: &mut Io) {
    if io.plan.promote_secondaries {
        let path = crate::host::sysctl::path4(&io.plan.link.name, "promote_secondaries");
        if let Err(e) = io.sysctls.set(path, "1") {
            warn!(error = %e, "setting promote_secondaries failed");
        }
    }
}

fn notify_state(s: State) -> NotifyState {
    match s {
        State::Master => NotifyState::Master,
        State::Backup => NotifyState::Backup,
        State::Fault => NotifyState::Fault,
        State::Initialize => NotifyState::Stop,
    }
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

impl Executor {
    async fn job(&mut self, job: Job) {
        match job {
            Job::Install(id, mut io) => {
                promote_secondaries(&mut io);
                self.ios.insert(id, io);
            }
            Job::FindInterface(id) => {
                let Some(io) = self.ios.get_mut(&id) else {
                    return;
                };
                let Some(pending) = io.plan.pending.clone() else {
                    return;
                };
                match pending.resolve(&self.nl).await {
                    Ok(Some((plan, made))) => {
                        let found = Arc::new(plan);
                        let from = std::mem::replace(&mut io.plan, found.clone());
                        io.vmac = made;
                        promote_secondaries(io);
                        let _ = self.feedback.send(Feedback::Resolved { id, from, found });
                    }
                    Ok(None) => {}
                    // Its interface is there, something else it names may not be yet.
                    Err(e) => warn!("({}) not starting yet: {e:#}", io.plan.name),
                }
            }
            Job::Replace {
                id,
                mut io,
                was_master,
            } => {
                let Some(mut old) = self.ios.remove(&id) else {
                    self.ios.insert(id, io);
                    return;
                };
                if was_master {
                    self.release_dropped(&old.plan, &io.plan).await;
                }
                let same_vmac = old.plan.vmac.as_ref().map(|v| &v.name)
                    == io.plan.vmac.as_ref().map(|v| &v.name);
                match (old.vmac.take(), same_vmac) {
                    (Some(v), true) => io.vmac = Some(v),
                    (Some(v), false) => self.remove_vmac(v).await,
                    (None, _) => {}
                }
                io.sysctls = std::mem::take(&mut old.sysctls);
                if !io.plan.promote_secondaries {
                    io.sysctls.restore();
                }
                io.vmac_source_added = old.vmac_source_added && same_vmac;
                if let Some(n) = old.notifier.take() {
                    self.finishing.spawn(n.finish());
                }
                self.ios.insert(id, io);
            }
            Job::Rewire { id, notifier, mail } => {
                if let Some(io) = self.ios.get_mut(&id) {
                    if let Some(n) = std::mem::replace(&mut io.notifier, notifier) {
                        self.finishing.spawn(n.finish());
                    }
                    io.mail = mail;
                }
            }
            Job::RemoveLeftovers(ids) => self.remove_leftovers(&ids).await,
            Job::Effect(id, e) => self.effect(id, e).await,
            Job::Groups(g) => {
                for old in std::mem::replace(&mut self.groups, g) {
                    if let Some(n) = old.notifier {
                        self.finishing.spawn(n.finish());
                    }
                }
            }
            Job::Group(g, e) => self.group(g, e),
            Job::CheckDeleted(id, keys) => self.check_deleted(id, keys).await,
            Job::FindSource(id) => {
                let Some(io) = self.ios.get_mut(&id) else {
                    return;
                };
                if let Some(found) = io.plan.with_source_found(&self.nl).await {
                    let found = Arc::new(found);
                    let from = std::mem::replace(&mut io.plan, found.clone());
                    let _ = self.feedback.send(Feedback::Source { id, from, found });
                }
            }
            Job::Uninstall { id, remove_vmac } => {
                if let Some(mut io) = self.ios.remove(&id) {
                    io.sysctls.restore();
                    if let Some(v) = io.vmac.take() {
                        if remove_vmac {
                            self.remove_vmac(v).await;
                        }
                    }
                    if let Some(n) = io.notifier.take() {
                        self.finishing.spawn(n.finish());
                    }
                }
            }
            Job::Settled => {
                // What loading, resolving and starting needed is not needed again until the
                // next reload: the heap it freed and the code it ran leave the resident set
                // (the code comes back from the page cache when used).
                sysio::release_free_memory();
                let code = sysio::release_code_pages();
                debug!(bytes = code, "start-up memory released");
            }
            Job::Finish(done) => {
                for io in self.ios.values_mut() {
                    if let Some(n) = io.notifier.take() {
                        self.finishing.spawn(n.finish());
                    }
                }
                for g in &mut self.groups {
                    if let Some(n) = g.notifier.take() {
                        self.finishing.spawn(n.finish());
                    }
                }
                while self.finishing.join_next().await.is_some() {}
                let _ = done.send(());
            }
        }
    }

    async fn effect(&mut self, id: Id, e: Effect) {
        let Some(io) = self.ios.get_mut(&id) else {
            return;
        };
        let plan = io.plan.clone();
        let name = plan.name.as_str();
        match e {
            // The loop sends adverts itself.
            Effect::Send(_) => {}
            Effect::AddVips => {
                // Before the first address: however the daemon dies from now on, its
                // supervisor knows what to take back.
                crate::supervisor::link::master(name, &plan.lastgasp);
                add_vmac_source(&self.nl, io).await;
                let p = &plan;
                for (vip, link) in &p.vips {
                    if let Err(e) = self.nl.add_vip(link.index, &link.name, vip).await {
                        warn!(instance = %name, error = %e, "adding virtual address failed");
                    }
                }
                // Routes may use the VIPs (`src VIP`, a gateway on the VIP's subnet): after them.
                for r in &p.routes {
                    if let Err(e) = self.nl.add_route(r).await {
                        warn!(instance = %name, error = %e, "adding virtual route failed");
                    }
                }
                for r in &p.rules {
                    if let Err(e) = self.nl.add_rule(r).await {
                        warn!(instance = %name, error = %e, "adding virtual rule failed");
                    }
                }
            }
            Effect::RemoveVips => {
                remove_vips(&self.nl, io).await;
                crate::supervisor::link::released(name);
            }
            Effect::Announce(rounds) => {
                let addrs: Vec<IpAddr> = plan.vips.iter().map(|(v, _)| v.addr).collect();
                let r = self.garp.announce(plan.garp_port, &addrs, rounds);
                if let Some(e) = r.error {
                    debug!(instance = %name, error = %e, "announcement failed");
                }
            }
            Effect::Entered { from, to } => {
                // keepalived's words, which operators grep their logs for.
                info!(
                    "({name}) Entering {} STATE (from {})",
                    state_name(to),
                    state_name(from)
                );
            }
            Effect::Notify {
                state,
                priority,
                scripts,
            } => {
                if let Some(n) = &io.notifier {
                    if scripts {
                        n.notify(notify_state(state), priority);
                    } else {
                        n.state_line(notify_state(state), priority);
                    }
                }
            }
            Effect::NotifyEvent(ev, priority) => {
                if let Some(n) = &io.notifier {
                    let ev = match ev {
                        instance::NotifyEvent::MasterRxLowerPri => NotifyEvent::MasterRxLowerPri,
                        instance::NotifyEvent::MasterPriority => NotifyEvent::MasterPriority,
                        instance::NotifyEvent::BackupPriority => NotifyEvent::BackupPriority,
                    };
                    n.event(ev, priority);
                }
            }
            Effect::Mail(state) => {
                if let Some(m) = &mut io.mail {
                    m.transition(notify_state(state));
                }
            }
            Effect::Note(n) => note(name, &plan, n),
        }
    }

    fn group(&mut self, g: usize, e: GroupEffect) {
        let name = |ios: &HashMap<Id, Box<Io>>, id: Id| {
            ios.get(&id)
                .map_or_else(String::new, |io| io.plan.name.clone())
        };
        let Some(gio) = self.groups.get_mut(g) else {
            return;
        };
        match e {
            GroupEffect::Entered(st) => {
                info!(
                    "VRRP_Group({}) Syncing instances to {} state",
                    gio.name,
                    state_name(st)
                );
                if let Some(n) = &gio.notifier {
                    n.notify(notify_state(st), 0);
                }
                if let Some(m) = &mut gio.mail {
                    m.transition(notify_state(st));
                }
            }
            GroupEffect::Reloaded(st) => {
                if let Some(n) = &gio.notifier {
                    n.state_line(notify_state(st), 0);
                }
            }
            GroupEffect::Moved { by, target, cmd } => info!(
                "VRRP_Group({}) {} is {}: moving {} along",
                gio.name,
                name(&self.ios, by),
                if cmd == Cmd::Master {
                    "MASTER"
                } else {
                    "BACKUP"
                },
                name(&self.ios, target)
            ),
        }
    }

    /// A Master checks that what an event says is gone really is (the event may be the late
    /// echo of our own removal, and we are Master again), then steps down to take it back.
    async fn check_deleted(&mut self, id: Id, keys: Vec<Key>) {
        let Some(io) = self.ios.get(&id) else {
            return;
        };
        for k in keys {
            match crate::track::deleted::present(self.nl.handle(), &k).await {
                Ok(true) => {}
                Ok(false) => {
                    warn!(
                        "({}) {} deleted; leaving MASTER to reinstate it",
                        io.plan.name,
                        describe(&k)
                    );
                    let _ = self.feedback.send(Feedback::Lost(id));
                    return;
                }
                Err(e) => warn!(error = %e, "checking a deleted object failed"),
            }
        }
    }

    /// What a Master hands over to the reloaded `next` but `next` no longer configures:
    /// removed in the order [`remove_vips`] uses.
    async fn release_dropped(&self, old: &Plan, next: &Plan) {
        for r in old.rules.iter().filter(|r| !next.rules.contains(r)) {
            if let Err(e) = self.nl.del_rule(r).await {
                warn!(error = %e, "removing a virtual rule no longer configured failed");
            }
        }
        for r in old.routes.iter().filter(|r| !next.routes.contains(r)) {
            if let Err(e) = self.nl.del_route(r).await {
                warn!(error = %e, "removing a virtual route no longer configured failed");
            }
        }
        let kept = |a: IpAddr| next.vips.iter().any(|(v, _)| v.addr == a);
        for (vip, link) in old.vips.iter().filter(|(v, _)| !kept(v.addr)) {
            if let Err(e) = self.nl.del_vip(link.index, &link.name, vip).await {
                warn!(error = %e, "removing a virtual address no longer configured failed");
            }
        }
    }

    /// Addresses of ours still on the interfaces were left by a run that did not release
    /// them (a crash, kill -9). We start as Backup, so holding them would put the same address
    /// on two hosts: remove them now; a Master adds them back when it gets there. Each
    /// interface's addresses are read once for all the instances.
    async fn remove_leftovers(&self, ids: &[Id]) {
        let mut present: HashMap<u32, Vec<IpAddr>> = HashMap::new();
        for id in ids {
            let Some(io) = self.ios.get(id) else { continue };
            let p = &io.plan;
            // Routes and rules of ours left by such a run go too (absent ones are not an
            // error).
            remove_routes(&self.nl, p).await;
            for (vip, link) in &p.vips {
                if let std::collections::hash_map::Entry::Vacant(e) = present.entry(link.index) {
                    let addrs = self.nl.addresses(link.index).await.unwrap_or_default();
                    e.insert(addrs.into_iter().map(|(a, _)| a).collect());
                }
                if present[&link.index].contains(&vip.addr) {
                    warn!(vip = %vip.addr, dev = %link.name, "removing virtual address left behind by an earlier run");
                    if let Err(e) = self.nl.del_vip(link.index, &link.name, vip).await {
                        warn!(error = %e, "removing left-over address failed");
                    }
                }
            }
            // A Backup's IPv6 VMAC holds no address: not ours from a crashed run, nor one the
            // kernel made before addr_gen_mode was set on an interface we adopted.
            if let Some((_, link)) = &p.vmac_source {
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
    }

    async fn remove_vmac(&self, v: crate::vmac::Vmac) {
        let name = v.name.clone();
        if let Err(e) = v.remove(self.nl.handle()).await {
            warn!(vmac = %name, error = %e, "removing the VMAC interface failed");
        }
    }
}

/// Puts our source address on an IPv6 VMAC while Master.
async fn add_vmac_source(nl: &Netlink, io: &mut Io) {
    if let (Some((addr, link)), false) = (&io.plan.vmac_source, io.vmac_source_added) {
        match nl.add_vip(link.index, &link.name, addr).await {
            Ok(()) => io.vmac_source_added = true,
            Err(e) => warn!(error = %e, "adding the source address to the VMAC failed"),
        }
    }
}

/// Rules, routes, then addresses: the reverse of adding. The VMAC's source address goes last:
/// leaving Master, the priority-0 adverts have been sent.
async fn remove_vips(nl: &Netlink, io: &mut Io) {
    remove_routes(nl, &io.plan).await;
    for (vip, link) in &io.plan.vips {
        if let Err(e) = nl.del_vip(link.index, &link.name, vip).await {
            warn!(error = %e, "removing virtual address failed");
        }
    }
    if let Some((addr, link)) = &io.plan.vmac_source {
        if io.vmac_source_added {
            if let Err(e) = nl.del_vip(link.index, &link.name, addr).await {
                warn!(error = %e, "removing the source address from the VMAC failed");
            }
        }
        io.vmac_source_added = false;
    }
}

async fn remove_routes(nl: &Netlink, p: &Plan) {
    for r in &p.rules {
        if let Err(e) = nl.del_rule(r).await {
            warn!(error = %e, "removing virtual rule failed");
        }
    }
    for r in &p.routes {
        if let Err(e) = nl.del_route(r).await {
            warn!(error = %e, "removing virtual route failed");
        }
    }
}

/// The log lines of the instance core's notes.
fn note(name: &str, plan: &Plan, n: Note) {
    match n {
        Note::StartDelayed(d) => info!("({name}) delaying startup for {d:?} (vrrp_startup_delay)"),
        Note::Link { up } => info!(
            instance = %name,
            interface = %plan.link.name,
            "interface {}",
            if up { "up" } else { "down" }
        ),
        Note::Priority { from, to } => {
            info!(instance = %name, "changing effective priority from {from} to {to}")
        }
        Note::AddressMismatch { src, count, error } => {
            // keepalived's words, which operators grep for.
            let vrid = plan.core.vrrp.vrid;
            match error {
                AddressListError::Missing(a) => warn!(
                    count, %src,
                    "({name}) ip address associated with VRID {vrid} not present in MASTER advert: {a}"
                ),
                AddressListError::Count { got, want } => warn!(
                    count, %src,
                    "({name}) received an unexpected ip number count {got}, expected {want}!"
                ),
            }
        }
        Note::SyncHold => debug!(instance = %name, "sync group not ready for MASTER; waiting"),
        // The effects task logged which object (it checked the kernel).
        Note::Lost => {}
    }
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
