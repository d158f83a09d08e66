//! The daemon: one actor per VRRP instance, started from the resolved config and stopped by a
//! signal.
//!
//! Each actor owns its sockets and timers and drives its sans-IO state machine; the only shared
//! things are the netlink connection, the link monitor (interface up/down events), the tracker
//! tasks feeding the actors ([`trackers`]) and the sync groups ([`sync`]). SIGTERM / SIGINT
//! release every instance gracefully (priority 0 advert, addresses removed) before the process
//! exits 0, as keepalived does.

mod health;
mod instance;
mod statics;
pub mod status;
mod sync;
mod timer;
mod trackers;

use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::config::model::Config;
use crate::netlink::Netlink;
use crate::track::link::LinkMonitor;

pub use instance::{Control, InstanceDriver};

/// Longest we wait for the instances to release their addresses on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Runs every configured instance until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let nl = Netlink::open().context("opening rtnetlink")?;
    let links = LinkMonitor::start()
        .await
        .context("subscribing to rtnetlink link events")?;
    let statics = statics::Statics::install(&config, &nl).await;
    let firewall = crate::firewall::Firewall::install(&config).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut controls = Vec::new();
    let mut drivers = Vec::with_capacity(config.instances.len());
    let mut vs_trackers = std::collections::HashMap::new();
    for inst in &config.instances {
        let driver = InstanceDriver::new(&config.global, inst, nl.clone(), &links)
            .await
            .with_context(|| format!("starting vrrp_instance {}", inst.name))?;
        vs_trackers.insert(inst.name.clone(), driver.tracker());
        drivers.push(driver);
    }
    trackers::start(&config, &mut drivers, &links, &nl).await;
    for driver in drivers {
        let (ctl_tx, ctl_rx) = mpsc::channel(4);
        controls.push(ctl_tx);
        tasks.spawn(driver.run(stop_rx.clone(), ctl_rx));
    }
    let health = health::start(&config, &vs_trackers).await?;
    info!(instances = config.instances.len(), "vrrpd started");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut json = signal(SignalKind::from_raw(
        crate::cli::signum("JSON").unwrap_or(libc::SIGRTMIN() + 2),
    ))?;
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: releasing instances"); break; }
            _ = int.recv() => { info!("SIGINT: releasing instances"); break; }
            _ = usr1.recv() => dump(&controls, health.as_ref(), Dump::Data).await,
            _ = usr2.recv() => dump(&controls, health.as_ref(), Dump::Stats).await,
            _ = json.recv() => dump(&controls, health.as_ref(), Dump::Json).await,
            _ = hup.recv() => warn!("SIGHUP: configuration reload is not implemented yet; keeping the running configuration"),
            Some(res) = tasks.join_next() => {
                // An instance actor only ends on shutdown; ending earlier is a bug worth dying for.
                res.context("instance task panicked")?;
                anyhow::bail!("an instance stopped unexpectedly");
            }
        }
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("instances did not release within {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    statics.remove().await;
    firewall.remove().await;
    info!("vrrpd stopped");
    Ok(())
}

/// Which dump a signal asked for.
#[derive(Debug, Clone, Copy)]
enum Dump {
    Data,
    Stats,
    Json,
}

/// Collects every instance's status and writes the file keepalived writes for that signal.
async fn dump(controls: &[mpsc::Sender<Control>], health: Option<&health::Health>, what: Dump) {
    let mut all = Vec::with_capacity(controls.len());
    for c in controls {
        let (tx, rx) = oneshot::channel();
        if c.send(Control::Status(tx)).await.is_ok() {
            if let Ok(s) = rx.await {
                all.push(s);
            }
        }
    }
    let (path, text) = match what {
        Dump::Data => {
            let checkers = health.map(|h| h.snapshot()).unwrap_or_default();
            (
                status::DATA_FILE,
                status::render_data(&all) + &status::render_checkers(&checkers),
            )
        }
        Dump::Stats => (status::STATS_FILE, status::render_stats(&all)),
        // The runtime counterpart of `--dump-config`: every instance and every checker.
        Dump::Json => (
            status::JSON_FILE,
            serde_json::to_string_pretty(&serde_json::json!({
                "instances": all,
                "checkers": health.map(|h| h.snapshot()).unwrap_or_default(),
            }))
            .unwrap_or_default(),
        ),
    };
    match std::fs::write(path, text) {
        Ok(()) => info!("wrote {path}"),
        Err(e) => warn!("cannot write {path}: {e}"),
    }
}
