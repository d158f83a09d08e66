//! The daemon: the VRRP loop, the health checks and the balancer, started from the resolved
//! config and stopped by a signal.
//!
//! Every VRRP instance runs on one loop ([`vrrp`]) on this thread, for the daemon's life; a
//! configuration (the first, or a reload's) is resolved against the kernel ([`vrrp::plan`]),
//! its trackers, notifiers and mail made ([`trackers`]), and adopted by the loop by difference.
//! The health checks run on their own thread, the balancer's workers on theirs. SIGTERM /
//! SIGINT release every instance gracefully (priority 0 advert, addresses removed) before the
//! process exits 0, as keepalived does.

mod ah;
mod balancer;
mod fifos;
mod health;
mod lastgasp;
mod statics;
use crate::observe::status;
mod trackers;
mod vrrp;

use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use tracing::{error, info, warn};

use crate::netlink::Netlink;
use crate::track::deleted::DeletionMonitor;
use crate::track::link::LinkMonitor;
use keepalived_conf::model::Config;

/// Longest we wait for the instances to release their addresses on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Longest the VRRP side waits for the checker side to start a configuration's health checks
/// (a SIGTERM or SIGINT meanwhile stops the wait at once): past it, the configuration runs
/// without them, and a checker side that stays stalled is [`CHECKER_STALL`]'s business.
const CHECKER_REPLY: Duration = Duration::from_secs(10);

/// A checker thread that has not run for this long is stalled for good: the health checks no
/// longer judge anything, so the daemon releases and exits for its supervisor to restart it.
const CHECKER_STALL: Duration = Duration::from_secs(30);

/// Which parts run (keepalived's `-P` and `-C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subsystems {
    /// The VRRP instances.
    pub vrrp: bool,
    /// The health checks and the balancer.
    pub checker: bool,
}

/// Keeps only the subsystems that run.
fn restrict(mut config: Config, parts: Subsystems) -> Config {
    if !parts.vrrp {
        config.instances.clear();
        config.sync_groups.clear();
    }
    if !parts.checker {
        if !config.virtual_servers.is_empty() {
            info!(
                "-P: {} virtual server(s) neither checked nor balanced",
                config.virtual_servers.len()
            );
        }
        config.virtual_servers.clear();
    }
    // keepalived's VRRP and checker processes only run with instances / virtual servers, and
    // each opens its own FIFO (and starts its script) only then.
    if config.instances.is_empty() {
        config.global.vrrp_notify_fifo = None;
    }
    if config.virtual_servers.is_empty() {
        config.global.lvs_notify_fifo = None;
    }
    config
}

/// Runs every configured instance, health check and virtual server until SIGTERM or SIGINT.
/// SIGHUP calls `reload` for a new configuration (keepalived's reload), on a blocking-pool
/// thread (a real-time main thread must not parse a large file): when it fails, the error is
/// logged and the running configuration goes on untouched. `umask_cli` is `-u`.
///
/// The VRRP side runs on the calling thread, the health checks on a `vrrpd-checker` thread
/// of their own, the balancer's workers are started from a plain `vrrpd-spawner` thread;
/// keepalived's process settings go to them as [`crate::tuning`] describes.
pub async fn run(
    config: Config,
    parts: Subsystems,
    umask_cli: Option<u32>,
    reload: impl Fn() -> Result<Config, String> + Send + Sync + 'static,
    systemd: crate::supervisor::systemd::SystemdNotify,
    observe: crate::observe::Settings,
    child: crate::supervisor::ChildStart,
) -> anyhow::Result<()> {
    let reload = std::sync::Arc::new(reload);
    let systemd = std::sync::Arc::new(systemd);
    if child.restarts > 0 {
        // The supervisor's count, for the dumps: this process is its latest restart.
        crate::components::set_record(
            "vrrp child process",
            crate::components::Record {
                restarts: u64::from(child.restarts),
                last_failure: child.last_exit.clone(),
                last_failure_at: None,
            },
        );
    }
    // From the VRRP thread (this one): a stalled VRRP side stops the pings, and systemd's
    // watchdog (through the supervisor) catches it.
    if let Some(every) = child.watchdog {
        let systemd = systemd.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                systemd.send("WATCHDOG=1");
            }
        });
    }
    let restarted = child.restarts > 0;
    let mut config = restrict(config, parts);
    // Caught from the start: a SIGTERM while starting is handled once started (releasing what
    // was set up), not the default action killing the daemon half-way. Turned into a watch,
    // so that whatever waits on the checker side (a reload) gives up as soon as one comes.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (stop_tx, mut stop_req) = watch::channel(None::<&'static str>);
    tokio::spawn(async move {
        let sig = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let _ = stop_tx.send(Some(sig));
    });
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut json = signal(SignalKind::from_raw(crate::process::sig_json()))?;
    let mut stats_clear = signal(SignalKind::from_raw(crate::process::sig_stats_clear()))?;
    let mut xcpu = signal(SignalKind::from_raw(libc::SIGXCPU))?;
    // Made before any setting, so that they start with the process's own scheduling.
    let checker = crate::tuning::CheckerThread::start().context("starting the checker thread")?;
    let spawner = crate::tuning::Spawner::start().context("starting the spawner thread")?;
    let mut tuner = crate::tuning::Tuner::new(&checker, umask_cli);
    tune(&mut tuner, &config);
    let stop_seen = stop_req.clone();
    let sides = Sides {
        checker: checker.handle(),
        spawner: &spawner,
        stop: &stop_seen,
    };
    let checker_beat = checker.heartbeat();
    let mut stall_check = tokio::time::interval(Duration::from_secs(1));
    stall_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The tasks the VRRP side cannot do without report here when they end.
    let mut vital = crate::components::vital_failures();
    let nl = Netlink::open().context("opening rtnetlink")?;
    let links = LinkMonitor::start()
        .await
        .context("subscribing to rtnetlink link events")?;
    let deletions =
        DeletionMonitor::start().context("subscribing to rtnetlink address/route/rule events")?;
    let garp = std::sync::Arc::new(garp::Sender::open().map_err(|e| match e {
        garp::Error::Socket(io) if sysio::is_descriptor_shortage(&io) => anyhow::anyhow!(
            "out of file descriptors opening the announcement socket ({io}); raise the open-files limit"
        ),
        e => anyhow::Error::new(e),
    })?);
    let (engine, vrrp) = vrrp::Engine::new(nl.clone(), &links, deletions.subscribe(), garp)
        .context("starting the VRRP loop")?;
    let mut engine = tokio::spawn(engine.run());
    let monitors = Monitors {
        links: &links,
        vrrp: &vrrp,
    };
    let mut statics = statics::Statics::install(&config, &nl).await;
    let mut firewall = crate::firewall::Firewall::install(&config).await;
    let boot = if restarted {
        vrrp::Start::Restart
    } else {
        vrrp::Start::Boot(config.global.vrrp_startup_delay.unwrap_or_default())
    };
    let started = match Staged::resolve(&config, None, &nl, &vrrp).await {
        Ok(staged) => Running::start(&config, staged, &nl, monitors, sides, boot, None).await,
        Err(e) => Err(e),
    };
    let mut running = match started {
        Ok(r) => r,
        Err(e) => {
            // What was set up goes before the error does.
            statics.remove().await;
            firewall.remove().await;
            return Err(e);
        }
    };
    // The control socket and the metrics endpoint ask the loop below.
    let (ask_tx, mut asked) = mpsc::channel(16);
    let _observers = observe.start(&config, ask_tx).await;
    info!(
        instances = config.instances.len(),
        virtual_servers = config.virtual_servers.len(),
        "vrrpd started"
    );
    systemd.send("READY=1");

    // Set when a component that must not fail did: everything is released, then the error
    // makes the process exit for its supervisor to start it again.
    // Where STATS_CLEAR zeroed the instances' counters (they count on through reloads).
    let mut cleared = status::ClearedStats::default();
    let mut failure: Option<crate::components::Failed> = None;
    loop {
        tokio::select! {
            Ok(()) = stop_req.changed() => {
                let sig = stop_req.borrow().unwrap_or("stop");
                info!("{sig}: releasing instances");
                systemd.send("STOPPING=1");
                break;
            }
            Some(f) = async { vital.as_mut()?.recv().await } => {
                error!("{f}; releasing everything and exiting for the supervisor to restart the daemon");
                failure = Some(f);
                systemd.send("STOPPING=1");
                break;
            }
            _ = stall_check.tick() => {
                let quiet = checker_beat.quiet_for();
                if running.health.is_some() && quiet >= CHECKER_STALL {
                    let reason = format!("the checker thread has not run for {quiet:?}");
                    error!("{reason}; releasing everything and exiting for the supervisor to restart the daemon");
                    failure = Some(crate::components::Failed { component: "checker thread".into(), reason });
                    systemd.send("STOPPING=1");
                    break;
                }
            }
            _ = usr1.recv() => running.dump(Dump::Data, &config, &cleared).await,
            _ = usr2.recv() => running.dump(Dump::Stats, &config, &cleared).await,
            _ = stats_clear.recv() => running.clear_stats(&config, &mut cleared).await,
            _ = json.recv() => running.dump(Dump::Json, &config, &cleared).await,
            Some(req) = asked.recv() => running.answer(req, &cleared).await,
            _ = xcpu.recv() => {
                let (soft, hard) = tuner.rttime().unwrap_or((0, 0));
                warn!("SIGXCPU: a real-time thread ran more than {soft} µs without blocking (RLIMIT_RTTIME soft limit); at {hard} µs the kernel kills the daemon - raise vrrp_rlimit_rttime / checker_rlimit_rttime");
            }
            _ = hup.recv() => { 'reload: {
                // keepalived's words: "Reloading", then "Reload complete".
                info!("Reloading");
                systemd.send("RELOADING=1");
                let parse = reload.clone();
                let next = match tokio::task::spawn_blocking(move || parse()).await {
                    Ok(Ok(c)) => restrict(c, parts),
                    Ok(Err(e)) => {
                        error!("reload failed, keeping the running configuration:\n{e}");
                        systemd.send("READY=1");
                        break 'reload;
                    }
                    Err(e) => {
                        error!("reload failed ({e}), keeping the running configuration");
                        systemd.send("READY=1");
                        break 'reload;
                    }
                };
                if next == config {
                    info!("reload: configuration unchanged");
                    systemd.send("READY=1");
                    break 'reload;
                }
                // Resolved first: a reload that cannot run leaves everything as it was.
                let staged = match Staged::resolve(&next, Some(&config), &nl, &vrrp).await {
                    Ok(s) => s,
                    Err(e) => {
                        error!("reload failed ({e:#}), keeping the running configuration");
                        systemd.send("READY=1");
                        break 'reload;
                    }
                };
                let balancer = running.handover().await;
                running = match Running::start(&next, staged, &nl, monitors, sides, vrrp::Start::Reload, balancer).await {
                    Ok(r) => {
                        tune(&mut tuner, &next);
                        for line in reload_changes(&config, &next) {
                            info!("{line}");
                        }
                        info!("Reload complete");
                        if statics::differ(&config, &next) {
                            statics.remove().await;
                            statics = statics::Statics::install(&next, &nl).await;
                        }
                        // Accept mode may have changed for any instance: the rule set follows.
                        firewall.remove().await;
                        firewall = crate::firewall::Firewall::install(&next).await;
                        // The instances go on counting through a reload.
                        cleared.keep_only(next.instances.iter().map(|i| i.name.as_str()));
                        config = next;
                        r
                    }
                    Err(e) => {
                        error!("reload failed ({e:#}); going back to the previous configuration");
                        let again = match Staged::resolve(&config, None, &nl, &vrrp).await {
                            Ok(s) => Running::start(&config, s, &nl, monitors, sides, vrrp::Start::Reload, None).await,
                            Err(e) => Err(e),
                        };
                        match again {
                            Ok(r) => r,
                            Err(e) => {
                                // Nothing runs: what the instances held is the supervisor's
                                // to release; ours goes now.
                                statics.remove().await;
                                firewall.remove().await;
                                return Err(crate::components::Failed {
                                    component: "reload".into(),
                                    reason: format!("the previous configuration did not start again: {e:#}"),
                                }
                                .into());
                            }
                        }
                    }
                };
                systemd.send("READY=1");
            } }
            res = &mut engine => {
                // The VRRP loop only ends on shutdown: ending earlier is a failure. The
                // instances' state is gone with it: the supervisor releases what they held
                // and starts the daemon again.
                let reason = match res {
                    Ok(Ok(())) => "stopped unexpectedly".to_string(),
                    Ok(Err(f)) => format!("failed: {f}"),
                    Err(e) if e.is_panic() => {
                        format!("panicked: {}", crate::components::panic_message(&*e.into_panic()))
                    }
                    Err(e) => format!("ended: {e}"),
                };
                error!("the VRRP loop {reason}; releasing everything and exiting for the supervisor to restart the daemon");
                failure = Some(crate::components::Failed { component: "VRRP loop".into(), reason });
                systemd.send("STOPPING=1");
                break;
            }
        }
    }
    // Every release runs, whatever ended the loop: a failure must not leave addresses behind.
    running.shutdown().await;
    statics.remove().await;
    firewall.remove().await;
    match failure {
        Some(f) => Err(f.into()),
        None => {
            info!("vrrpd stopped");
            Ok(())
        }
    }
}

/// What a reload changes that an operator wants in the log: instances and virtual servers
/// added and removed (by name / address).
fn reload_changes(old: &Config, new: &Config) -> Vec<String> {
    fn diff(kind: &str, old: &[String], new: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for n in new.iter().filter(|n| !old.contains(n)) {
            out.push(format!("Reload: {kind} {n} added"));
        }
        for o in old.iter().filter(|o| !new.contains(o)) {
            out.push(format!("Reload: {kind} {o} removed"));
        }
        out
    }
    let names =
        |c: &Config| -> Vec<String> { c.instances.iter().map(|i| i.name.clone()).collect() };
    let vs = |c: &Config| -> Vec<String> {
        use lbcore::spec::ServiceKey;
        c.virtual_servers
            .iter()
            .map(|v| {
                let s = &v.service;
                let key = match &s.key {
                    ServiceKey::Addr { addr, port } => format!("{addr} {}", port.unwrap_or(0)),
                    ServiceKey::Fwmark { mark, .. } => format!("fwmark {mark}"),
                    ServiceKey::Group(g) => format!("group {g}"),
                };
                format!("{key} {}", s.protocol.name())
            })
            .collect()
    };
    let mut out = diff("VRRP instance", &names(old), &names(new));
    out.extend(diff("virtual server", &vs(old), &vs(new)));
    out
}

/// keepalived's process settings for `config`: a side's apply when it runs (the VRRP one
/// with instances, the checker one with virtual servers).
fn tune(tuner: &mut crate::tuning::Tuner, config: &Config) {
    tuner.apply(
        &config.global.process,
        !config.instances.is_empty(),
        !config.virtual_servers.is_empty(),
    );
}

/// Where the non-VRRP work goes: the checker side's runtime and the plain thread that starts
/// the balancer's workers; and the stop request, which ends any wait on them.
#[derive(Clone, Copy)]
struct Sides<'a> {
    checker: &'a tokio::runtime::Handle,
    spawner: &'a crate::tuning::Spawner,
    stop: &'a watch::Receiver<Option<&'static str>>,
}

impl Sides<'_> {
    /// The checker side's answer, within [`CHECKER_REPLY`] and before any stop request;
    /// `None` (logged) otherwise.
    async fn answer_of<T>(&self, what: &str, task: tokio::task::JoinHandle<T>) -> Option<T> {
        let mut stop = self.stop.clone();
        tokio::select! {
            r = tokio::time::timeout(CHECKER_REPLY, task) => match r {
                Ok(Ok(v)) => Some(v),
                Ok(Err(e)) => {
                    error!("{what}: {e}");
                    None
                }
                Err(_) => {
                    error!("{what}: the checker thread did not answer within {CHECKER_REPLY:?}; going on without it");
                    None
                }
            },
            _ = stop.wait_for(Option::is_some) => {
                warn!("{what}: abandoned for the stop request");
                None
            }
        }
    }
}

/// The daemon's kernel-event monitors and the VRRP loop, shared by every configuration.
#[derive(Clone, Copy)]
struct Monitors<'a> {
    links: &'a LinkMonitor,
    vrrp: &'a vrrp::Handle,
}

/// A configuration's instances resolved against the kernel, before anything changes.
struct Staged {
    plans: Vec<vrrp::plan::Plan>,
    same_config: Vec<bool>,
    made: Vec<Option<crate::vmac::Vmac>>,
}

impl Staged {
    /// Resolves every instance of `config` (interfaces looked up once each; the VMACs the loop
    /// runs reused, new ones made); `running` is the configuration it replaces. On failure the
    /// VMACs made here are removed again.
    async fn resolve(
        config: &Config,
        running_config: Option<&Config>,
        nl: &Netlink,
        vrrp: &vrrp::Handle,
    ) -> anyhow::Result<Self> {
        let running = vrrp.plans().await;
        let mut lookups = vrrp::plan::Lookups::default();
        let mut plans = Vec::with_capacity(config.instances.len());
        let mut made = Vec::with_capacity(config.instances.len());
        for inst in &config.instances {
            let merged = trackers::with_group_trackers(config, inst);
            // `dynamic_interfaces`: an instance whose interface is not there yet waits for it.
            if config.global.dynamic_interfaces {
                if let Some(ifname) = vrrp::plan::missing_interface(nl, &merged).await {
                    plans.push(vrrp::plan::waiting(config, merged, ifname));
                    made.push(None);
                    continue;
                }
            }
            let previous = running.get(&inst.name).map(|p| &**p);
            match vrrp::plan::resolve(config, &merged, nl, previous, &mut lookups).await {
                Ok((p, m)) => {
                    plans.push(p);
                    made.push(m);
                }
                Err(e) => {
                    for v in made.into_iter().flatten() {
                        let _ = v.remove(nl.handle()).await;
                    }
                    return Err(e.context(format!("starting vrrp_instance {}", inst.name)));
                }
            }
        }
        let same_config = config
            .instances
            .iter()
            .map(|i| running_config.is_some_and(|r| vrrp::plan::same_config(r, config, &i.name)))
            .collect();
        Ok(Self {
            plans,
            same_config,
            made,
        })
    }
}

/// What one configuration runs beside the VRRP loop: its FIFOs, health checks, balancer.
struct Running {
    vrrp: vrrp::Handle,
    health: Option<health::Services>,
    balancer: Option<balancer::Balancer>,
    /// The notify FIFOs and their scripts.
    fifos: fifos::Fifos,
    /// `smtp_alert` delivery, when `notification_email` and `smtp_server` are set.
    mailer: Option<crate::mail::Mailer>,
}

impl Running {
    /// Starts `config` (resolved in `staged`): the loop adopts its instances, then the health
    /// checks and the balancer start; `balancer` is the one the previous configuration ran
    /// (kept if it fits).
    async fn start(
        config: &Config,
        staged: Staged,
        nl: &Netlink,
        monitors: Monitors<'_>,
        sides: Sides<'_>,
        start: vrrp::Start,
        balancer: Option<balancer::Balancer>,
    ) -> anyhow::Result<Self> {
        let env = trackers::ScriptEnv::new(config);
        let fifos = fifos::Fifos::open(&config.global, &env);
        let mailer =
            crate::mail::Settings::from_config(&config.global).map(crate::mail::Mailer::start);
        // The trackers report on this configuration's channel: their first reports are queued
        // before the loop adopts it, so an instance starts from what they say.
        let (track_tx, tracks) = mpsc::channel(1024 + 8 * config.instances.len());
        let txs: Vec<trackers::TrackTx> = config
            .instances
            .iter()
            .map(|i| trackers::TrackTx::new(track_tx.clone(), &i.name))
            .collect();
        drop(track_tx);
        trackers::start(config, &env, &txs, monitors.links, nl).await;
        let (attach, groups) = trackers::attach(config, &env, fifos.vrrp(), mailer.as_ref());
        tokio::task::yield_now().await;
        let adopted = monitors
            .vrrp
            .adopt(vrrp::Adoption {
                plans: staged.plans,
                same_config: staged.same_config,
                made: staged.made,
                attach,
                groups,
                tracks,
                start,
                fifo_states_on_reload: config.global.fifo_write_vrrp_states_on_reload,
                log_unknown_vrids: config.global.log_unknown_vrids,
            })
            .await;
        let adopted = match adopted {
            Ok(a) => a,
            Err(e) => {
                if let Some(b) = balancer {
                    b.stop().await;
                }
                return Err(e);
            }
        };
        let vs_trackers: std::collections::HashMap<String, trackers::TrackTx> = config
            .instances
            .iter()
            .zip(txs)
            .map(|(i, t)| (i.name.clone(), t))
            .collect();
        let owners: Vec<balancer::Owner> = adopted
            .owners
            .into_iter()
            .map(|(name, addrs, state)| balancer::Owner { name, addrs, state })
            .collect();
        let into = balancer.as_ref().map(balancer::Balancer::table);
        // The health checks run on the checker side's thread, sockets and timers included.
        let started = {
            let (config, fifos, mailer) = (config.clone(), fifos.lvs().to_vec(), mailer.clone());
            let env = env.clone();
            let task = sides.checker.spawn(async move {
                health::start(&config, &vs_trackers, into, &fifos, &env, mailer).await
            });
            // A stalled checker side must not hold the VRRP side (and its signals) with it.
            sides
                .answer_of("starting the health checks", task)
                .await
                .unwrap_or(Ok(None))
        };
        let health = match started {
            Ok(h) => h,
            Err(e) => {
                if let Some(b) = balancer {
                    b.stop().await;
                }
                return Err(e);
            }
        };
        let balancer = match &health {
            Some(h) => {
                balancer::Balancer::start(config, h.table(), owners, balancer, sides.spawner).await
            }
            None => {
                if let Some(b) = balancer {
                    b.stop().await;
                }
                None
            }
        };
        // What loading and resolving allocated is free now: back to the system.
        sysio::release_free_memory();
        Ok(Self {
            vrrp: monitors.vrrp.clone(),
            health,
            balancer,
            fifos,
            mailer,
        })
    }

    /// Ends this configuration's FIFOs and health checks for the next one; returns the
    /// balancer, still forwarding, for the next configuration to keep. The instances go on:
    /// the loop adopts the next configuration by difference.
    async fn handover(mut self) -> Option<balancer::Balancer> {
        // keepalived's reload: the FIFO scripts get SIGTERM, the FIFOs are closed and made
        // again by the next configuration, which starts the scripts again.
        self.fifos.terminate();
        // The checkers stop; what the balancer reads stays until the next ones publish.
        self.health = None;
        let balancer = self.balancer.take();
        // The FIFOs go and their scripts are given time to exit.
        self.stop_services().await;
        balancer
    }

    /// Releases everything (SIGTERM).
    async fn shutdown(mut self) {
        // First, as keepalived: the FIFO scripts get SIGTERM, then the STOP lines come.
        self.fifos.terminate();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.vrrp.shutdown())
            .await
            .is_err()
        {
            warn!("instances did not release within {SHUTDOWN_GRACE:?}; exiting anyway");
        }
        self.stop_services().await;
    }

    async fn stop_services(&mut self) {
        if let Some(b) = self.balancer.take() {
            b.stop().await;
        }
        // omega's lines and scripts come before the FIFOs close.
        if let Some(h) = self.health.take() {
            h.shutdown(SHUTDOWN_GRACE).await;
        }
        std::mem::take(&mut self.fifos).close().await;
    }

    /// Answers a control-socket or metrics request: the instances' status is taken here,
    /// the rest (a listing of the connection table may take a while) on a task of its own.
    async fn answer(&self, req: crate::observe::Request, cleared: &status::ClearedStats) {
        let sources = crate::observe::Sources {
            instances: self.statuses(cleared).await,
            sockets: self.vrrp.sockets().await,
            checkers: self
                .health
                .as_ref()
                .map(|h| h.snapshot())
                .unwrap_or_default(),
            dataplane: self.balancer.as_ref().map(|b| b.dataplane()),
        };
        tokio::spawn(async move {
            let _ = req
                .reply
                .send(crate::observe::answer(req.query, sources).await);
        });
    }

    /// Every instance's status, counted since the last STATS_CLEAR.
    async fn statuses(&self, cleared: &status::ClearedStats) -> Vec<status::InstanceStatus> {
        let mut all = self.vrrp.status().await;
        cleared.apply(&mut all);
        all
    }

    async fn dump(&self, what: Dump, config: &Config, cleared: &status::ClearedStats) {
        dump(
            self.statuses(cleared).await,
            self.health.as_ref(),
            self.balancer.as_ref(),
            self.mailer.as_ref(),
            what,
            config,
        )
    }

    /// STATS_CLEAR: the stats file as SIGUSR2 writes it, then every counter back to zero, as
    /// keepalived 2.2.7 (`vrrp_print_stats(true)`).
    async fn clear_stats(&self, config: &Config, cleared: &mut status::ClearedStats) {
        info!("Printing and clearing VRRP stats on signal");
        let raw = self.vrrp.status().await;
        let mut shown = raw.clone();
        cleared.apply(&mut shown);
        dump(
            shown,
            self.health.as_ref(),
            self.balancer.as_ref(),
            self.mailer.as_ref(),
            Dump::Stats,
            config,
        );
        cleared.clear(&raw);
    }
}

/// Which dump a signal asked for.
#[derive(Debug, Clone, Copy)]
enum Dump {
    Data,
    Stats,
    Json,
}

/// Writes the file keepalived writes for that signal, from every instance's status.
fn dump(
    all: Vec<status::InstanceStatus>,
    health: Option<&health::Services>,
    balancer: Option<&balancer::Balancer>,
    mailer: Option<&crate::mail::Mailer>,
    what: Dump,
    config: &Config,
) {
    let files = match what {
        Dump::Data => {
            let checkers = health.map(|h| h.snapshot()).unwrap_or_default();
            vec![(
                status::DATA_FILE,
                status::render_data(&all)
                    + &status::render_checkers(&checkers)
                    + &status::render_supervision(
                        &supervision(health, balancer),
                        crate::components::panics(),
                    ),
            )]
        }
        Dump::Stats => {
            let sync = balancer.and_then(|b| b.counters().sync);
            let tail = sync.map(|c| status::render_sync(&c)).unwrap_or_default();
            vec![(status::STATS_FILE, status::render_stats(&all) + &tail)]
        }
        // keepalived's file as keepalived writes it, and what only vrrpd has beside it.
        Dump::Json => vec![
            (
                status::JSON_FILE,
                crate::observe::keepalived_json::render(config, &all),
            ),
            (
                status::VRRPD_JSON_FILE,
                serde_json::to_string_pretty(&serde_json::json!({
                    "checkers": health.map(|h| h.snapshot()).unwrap_or_default(),
                    "balancer": balancer.map(|b| b.counters()),
                    "ipvs": balancer.map(|b| b.dataplane().listing()),
                    "smtp": mailer.map(|m| m.stats()),
                    "supervision": {
                        "supervised": crate::supervisor::link::supervised(),
                        "panics": crate::components::panics(),
                        "components": supervision(health, balancer),
                    },
                }))
                .unwrap_or_default(),
            ),
        ],
    };
    for (name, text) in files {
        let path = status::tmp_path(name);
        match std::fs::write(&path, text) {
            Ok(()) => info!("wrote {}", path.display()),
            Err(e) => warn!("cannot write {}: {e}", path.display()),
        }
    }
}

/// Every component that failed and was restarted: the registry's, with the checker scheduler's
/// and the balancer workers' restarts (counted where they run).
fn supervision(
    health: Option<&health::Services>,
    balancer: Option<&balancer::Balancer>,
) -> std::collections::BTreeMap<String, crate::components::Record> {
    let mut all = crate::components::snapshot();
    let counted = [
        (
            "checker scheduler",
            health
                .and_then(health::Services::scheduler_failures)
                .map(|f| (f.restarts, f.last)),
        ),
        (
            "balancer workers",
            balancer
                .map(balancer::Balancer::worker_failures)
                .map(|f| (f.restarts, f.last)),
        ),
    ];
    for (name, failures) in counted {
        if let Some((restarts, last_failure)) = failures.filter(|(n, _)| *n > 0) {
            let r = crate::components::Record {
                restarts,
                last_failure,
                last_failure_at: None,
            };
            all.insert(name.into(), r);
        }
    }
    all
}
