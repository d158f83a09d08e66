//! The daemon: one actor per VRRP instance, started from the resolved config and stopped by a
//! signal.
//!
//! Each actor owns its sockets and timers and drives its sans-IO state machine; the only shared
//! thing is the netlink connection. SIGTERM / SIGINT release every instance gracefully
//! (priority 0 advert, addresses removed) before the process exits 0, as keepalived does.

mod instance;

use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::model::Config;
use crate::netlink::Netlink;

pub use instance::InstanceDriver;

/// Longest we wait for the instances to release their addresses on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Runs every configured instance until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let nl = Netlink::open().context("opening rtnetlink")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for inst in &config.instances {
        let driver = InstanceDriver::new(&config.global, inst, nl.clone())
            .await
            .with_context(|| format!("starting vrrp_instance {}", inst.name))?;
        tasks.spawn(driver.run(stop_rx.clone()));
    }
    info!(instances = config.instances.len(), "vrrpd started");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: releasing instances"); break; }
            _ = int.recv() => { info!("SIGINT: releasing instances"); break; }
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
    info!("vrrpd stopped");
    Ok(())
}
