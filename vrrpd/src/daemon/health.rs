//! Health checks in the daemon and the service table they drive.
//!
//! Every virtual server's checkers run in one `checks` scheduler; a `checks::pool::Pool` per
//! virtual server turns checker verdicts into real-server liveness (every checker up), and one
//! `lbcore::service::Controller` applies keepalived's membership rules (removal or
//! `inhibit_on_failure`, `quorum` / `hysteresis`, `sorry_server`) and publishes the snapshot
//! the balancer forwards with. The instances that `track_virtual_server` a virtual server hear
//! when its quorum comes and goes, as a priority delta or FAULT like any other tracker.
//!
//! keepalived cannot do this on a kernel without IPVS (its checker exits); here the verdicts
//! only need sockets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use checks::pool::{Pool, RealServer};
use lbcore::service::{Controller, Event as SvcEvent, HealthEvent, SharedTable};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::trackers::ScriptEnv;
use crate::mail::{Alert, Mailer};
use crate::notify::{fifo, Fifo};
use crate::track::{TrackKey, Weight};
use keepalived_conf::model::{Config, VirtualServer};

/// Where a virtual server's quorum goes: an instance's tracker channel and the weight it gave.
type Subscriber = (super::trackers::TrackTx, Weight);

/// One virtual server as the daemon follows it.
struct Followed {
    label: String,
    pool: Pool,
    subscribers: Vec<Subscriber>,
    /// `smtp_alert` of the virtual server (quorum) and of each real server (checkers).
    vs_mail: bool,
    rs_mail: Vec<bool>,
}

/// Mails of the checkers (`smtp_alert`).
struct Mail {
    mailer: Mailer,
    /// `no_checker_emails`: only a real server's own change mails.
    only_servers: bool,
}

/// keepalived puts no limit on these scripts; a hung one must still not pile up forever.
const SCRIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs a virtual server's script in the background (keepalived does not wait for them), in
/// `scripts` so that a shutdown can let the last ones finish. It runs as its own user, else
/// the default script user, and is vetted as every script is (`env`).
fn run_script(spec: Option<&lbcore::spec::ScriptSpec>, env: &ScriptEnv, scripts: &mut JoinSet<()>) {
    let Some(spec) = spec else { return };
    let user = spec.user.as_ref().map(|u| match &spec.group {
        Some(g) => format!("{u} {g}"),
        None => u.clone(),
    });
    let Some(cmd) = env.command(&spec.command, user.as_deref(), SCRIPT_TIMEOUT) else {
        return;
    };
    let text = spec.command.clone();
    scripts.spawn(async move {
        let outcome = crate::track::script::run(&cmd).await;
        tracing::debug!(script = %text, ?outcome, "virtual server script");
    });
}

/// The virtual servers: their live service table and the checkers keeping it; dropping it
/// stops the checkers, and nothing they still report reaches the table.
pub(super) struct Services {
    table: Arc<SharedTable>,
    handle: Option<checks::Handle>,
    /// The task applying the checkers' verdicts; it ends after their last one.
    events: Option<tokio::task::JoinHandle<()>>,
    /// Whether this set of checkers may still publish into `table` (a reload hands the table
    /// to the next set).
    publishing: Arc<Mutex<bool>>,
}

impl Drop for Services {
    fn drop(&mut self) {
        *self.publishing.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }
}

impl Services {
    /// The snapshot the balancer forwards with, replaced on every membership change.
    pub(super) fn table(&self) -> Arc<SharedTable> {
        self.table.clone()
    }

    /// Stops the checkers with keepalived's omega pass: the up real servers of `omega` virtual
    /// servers go down (notify_down, then quorum_down), and their scripts run to the end,
    /// within `grace`.
    pub(super) async fn shutdown(mut self, grace: std::time::Duration) {
        if let Some(h) = self.handle.take() {
            h.shutdown_within(grace).await;
        }
        if let Some(t) = self.events.take() {
            if tokio::time::timeout(grace, t).await.is_err() {
                warn!("virtual server scripts still running after {grace:?}; exiting anyway");
            }
        }
    }

    /// The checker scheduler's own failures (it restarts itself).
    pub(super) fn scheduler_failures(&self) -> Option<checks::Failures> {
        self.handle.as_ref().map(|h| h.failures())
    }

    /// Status of every checker, for the SIGUSR1 dump.
    pub(super) fn snapshot(&self) -> Vec<checks::CheckerStatus> {
        self.handle
            .as_ref()
            .map(|h| h.snapshot())
            .unwrap_or_default()
    }
}

/// Builds the service table of every virtual server and starts their checkers. `trackers`
/// maps instance names to their tracker channels. The table is published into `into` when
/// given (the table a running balancer reads, kept across a reload). Returns `None` without
/// virtual servers. `fifos` get keepalived's `VS …` / `RS …` lines.
pub(super) async fn start(
    config: &Config,
    trackers: &HashMap<String, super::trackers::TrackTx>,
    into: Option<Arc<SharedTable>>,
    fifos: &[Arc<Fifo>],
    env: &ScriptEnv,
    mailer: Option<Mailer>,
) -> anyhow::Result<Option<Services>> {
    if config.virtual_servers.is_empty() {
        return Ok(None);
    }
    let mut specs = Vec::new();
    let mut followed = Vec::new();
    // Checker index → virtual server index.
    let mut owner = Vec::new();
    for (v, vs) in config.virtual_servers.iter().enumerate() {
        let (servers, resolved) = pool_of(&env.misc_checks(vs), specs.len());
        owner.extend(std::iter::repeat_n(v, resolved.len()));
        specs.extend(resolved);
        let subscribers = config
            .instances
            .iter()
            .flat_map(|i| {
                i.track_virtual_servers
                    .iter()
                    .filter(|t| t.vs.matches(&vs.service.key))
                    .filter_map(|t| {
                        Some((trackers.get(&i.name)?.clone(), Weight::new(t.weight, false)))
                    })
            })
            .collect();
        let defs = &config.global.mail;
        followed.push(Followed {
            label: label(vs),
            pool: Pool::new(servers),
            subscribers,
            vs_mail: defs.virtual_server_alert(vs.smtp_alert),
            rs_mail: vs
                .real_servers
                .iter()
                .map(|r| defs.real_server_alert(r.smtp_alert))
                .collect(),
        });
    }
    let alive: Vec<Vec<bool>> = followed.iter().map(|f| f.pool.alive_all()).collect();
    let (controller, actions) = Controller::with_alive(
        config
            .virtual_servers
            .iter()
            .map(|vs| vs.service.clone())
            .collect(),
        config.virtual_server_groups.clone(),
        &alive,
    )
    .context("building the service table")?;
    let table = match into {
        Some(t) => {
            t.store(controller.table());
            t
        }
        None => Arc::new(SharedTable::new(controller.table())),
    };
    let publishing = Arc::new(Mutex::new(true));
    for (svc, f) in followed.iter().enumerate() {
        info!(virtual_server = %f.label, quorum = controller.quorum_up(svc), "following virtual server");
        tell(f, controller.quorum_up(svc)).await;
    }
    let fifos = fifos.to_vec();
    let mut scripts = JoinSet::new();
    let mail = mailer.map(|mailer| Mail {
        mailer,
        only_servers: config.global.mail.no_checker_emails,
    });
    // keepalived's checker state: up unless `alpha`, until its first verdict.
    let checker_up: Vec<bool> = specs.iter().map(|r| !r.timers.alpha).collect();
    let out = Out {
        env,
        fifos: &fifos,
        mail: mail.as_ref(),
        init: true,
    };
    report(&followed, &controller, &actions, "", &mut scripts, &out);
    let (handle, events) = if specs.is_empty() {
        (None, None)
    } else {
        let (handle, events) = checks::spawn(specs).context("starting health checkers")?;
        let follow = Follow {
            events,
            scripts,
            owner,
            followed,
            controller,
            checker_up,
            mail,
            table: table.clone(),
            publishing: publishing.clone(),
            fifos,
            env: env.clone(),
            in_hand: None,
        };
        let events =
            crate::components::spawn("health events".into(), follow, |f| Box::pin(f.serve()));
        (Some(handle), Some(events))
    };
    Ok(Some(Services {
        table,
        handle,
        events,
        publishing,
    }))
}

/// What turns checker verdicts into the service table, scripts, FIFO lines, mails and tracker
/// contributions; owned by its task and kept across a restart of it.
struct Follow {
    events: mpsc::UnboundedReceiver<checks::Event>,
    scripts: JoinSet<()>,
    /// Checker index → virtual server index.
    owner: Vec<usize>,
    followed: Vec<Followed>,
    controller: Controller,
    checker_up: Vec<bool>,
    mail: Option<Mail>,
    table: Arc<SharedTable>,
    publishing: Arc<Mutex<bool>>,
    fifos: Vec<Arc<Fifo>>,
    env: ScriptEnv,
    /// The verdict being applied, and whether it is a second try: a verdict lost to a panic
    /// would leave a dead server in the pool until its next change, so the restarted task
    /// applies it once more (and drops one that fails twice).
    in_hand: Option<(checks::Event, bool)>,
}

impl Follow {
    /// Applies every verdict until the checkers stop, then lets the last scripts finish.
    async fn serve(&mut self) {
        let Follow {
            events,
            scripts,
            owner,
            followed,
            controller,
            checker_up,
            mail,
            table,
            publishing,
            fifos,
            env,
            in_hand,
        } = self;
        let mut retry = match in_hand.take() {
            Some((ev, false)) => {
                warn!(real_server = %ev.target.id, change = ?ev.change, "applying again the verdict in hand when the health events task failed");
                Some(ev)
            }
            Some((ev, true)) => {
                error!(real_server = %ev.target.id, change = ?ev.change, "verdict dropped: applying it failed twice");
                None
            }
            None => None,
        };
        loop {
            let ev = match retry.take() {
                Some(ev) => {
                    *in_hand = Some((ev.clone(), true));
                    ev
                }
                None => {
                    let Some(ev) = events.recv().await else {
                        break;
                    };
                    *in_hand = Some((ev.clone(), false));
                    ev
                }
            };
            fault_inject::point("health-events");
            while scripts.try_join_next().is_some() {}
            let Some(svc) = owner.get(ev.checker).copied() else {
                continue;
            };
            let f = &mut followed[svc];
            let Some(rs) = f.pool.server_of(ev.checker) else {
                continue;
            };
            if let Some(latency) = ev.latency {
                let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
                controller.apply(HealthEvent::Rtt { svc, rs, micros });
            }
            let alive_before = f.pool.alive(rs);
            let pool_change = f.pool.on_event(&ev);
            // keepalived mails a checker's own change (after the real server's and the
            // virtual server's notifications); none on the shutdown report.
            let rs_mail = checker_mail(
                &ev,
                checker_up,
                mail.as_ref(),
                f.rs_mail.get(rs).copied().unwrap_or(false),
                alive_before != f.pool.alive(rs),
            )
            .and_then(|body| {
                let spec = &controller.specs()[svc];
                Some(Alert::RealServer {
                    rs: fifo::rs_text(spec, spec.real_servers.get(rs)?),
                    vs: fifo::vs_text(spec),
                    up: f.pool.alive(rs),
                    body,
                })
            });
            let Some(change) = pool_change else {
                if let (Some(m), Some(a)) = (&mail, rs_mail) {
                    m.mailer.send(&a);
                }
                continue;
            };
            let before = controller.quorum_up(svc);
            let actions = controller.apply(match change {
                checks::pool::Action::Up(rs, _) => HealthEvent::Up { svc, rs },
                checks::pool::Action::Down(rs) => HealthEvent::Down { svc, rs },
                checks::pool::Action::Weight(rs, weight) => {
                    info!(virtual_server = %followed[svc].label, real_server = %ev.target.id, weight, "real server weight");
                    HealthEvent::Weight { svc, rs, weight }
                }
            });
            {
                let open = publishing.lock().unwrap_or_else(|e| e.into_inner());
                if !*open {
                    break;
                }
                table.store(controller.table());
            }
            let out = Out {
                env,
                fifos,
                mail: mail.as_ref(),
                init: false,
            };
            report(followed, controller, &actions, &ev.reason, scripts, &out);
            if let (Some(m), Some(a)) = (&mail, rs_mail) {
                m.mailer.send(&a);
            }
            let after = controller.quorum_up(svc);
            if after != before {
                tell(&followed[svc], after).await;
            }
        }
        *in_hand = None;
        while scripts.join_next().await.is_some() {}
    }
}

/// The body of a checker's mail, when its change is worth one: the checker itself went
/// down (up) from up (down), and its real server mails, either changed (`server_changed`) or
/// not under `no_checker_emails`. Keeps `checker_up` current.
fn checker_mail(
    ev: &checks::Event,
    checker_up: &mut [bool],
    mail: Option<&Mail>,
    rs_alert: bool,
    server_changed: bool,
) -> Option<String> {
    let now_up = match ev.change {
        checks::Change::Up => true,
        checks::Change::Down => false,
        checks::Change::Weight => return None,
    };
    let was_up = std::mem::replace(checker_up.get_mut(ev.checker)?, now_up);
    let mail = mail?;
    let wanted = was_up != now_up
        && ev.latency.is_some()
        && rs_alert
        && (server_changed || !mail.only_servers);
    if !wanted {
        return None;
    }
    crate::mail::message::checker_body(&ev.kind, now_up, &ev.reason)
}

/// Where [`report`] writes besides the log and scripts.
struct Out<'a> {
    env: &'a ScriptEnv,
    fifos: &'a [Arc<Fifo>],
    mail: Option<&'a Mail>,
    /// The initial evaluation (keepalived's "Starting with quorum …").
    init: bool,
}

/// Logs what membership changes did, runs their scripts (`notify_up`, `quorum_down`, ...),
/// writes their FIFO lines (script first, then line, as keepalived) and mails quorum changes.
fn report(
    followed: &[Followed],
    c: &Controller,
    actions: &[lbcore::service::Action],
    why: &str,
    scripts: &mut JoinSet<()>,
    out: &Out<'_>,
) {
    let fifos = out.fifos;
    for a in actions {
        let (svc, rs) = match a.event {
            SvcEvent::ServerUp { svc, rs } | SvcEvent::ServerDown { svc, rs } => (svc, Some(rs)),
            SvcEvent::QuorumGained { svc } | SvcEvent::QuorumLost { svc } => (svc, None),
        };
        let vs = followed.get(svc).map_or("?", |f| f.label.as_str());
        let spec = &c.specs()[svc];
        let server = rs.and_then(|i| spec.real_servers.get(i));
        let addr = server.map(|r| match r.port {
            Some(p) => std::net::SocketAddr::new(r.addr, p).to_string(),
            None => r.addr.to_string(),
        });
        match a.event {
            SvcEvent::ServerUp { .. } => {
                info!(virtual_server = %vs, real_server = addr.as_deref().unwrap_or("?"), "real server up: {why}")
            }
            SvcEvent::ServerDown { .. } => {
                let inhibited = server.is_some_and(|r| spec.inhibit_of(r));
                warn!(virtual_server = %vs, real_server = addr.as_deref().unwrap_or("?"), inhibited, "real server down: {why}")
            }
            SvcEvent::QuorumGained { .. } => info!(virtual_server = %vs, "quorum gained"),
            SvcEvent::QuorumLost { .. } => warn!(virtual_server = %vs, "quorum lost"),
        }
        run_script(a.script.as_ref(), out.env, scripts);
        if let (Some(m), SvcEvent::QuorumGained { .. } | SvcEvent::QuorumLost { .. }) =
            (out.mail, a.event)
        {
            if followed.get(svc).is_some_and(|f| f.vs_mail) {
                let up = matches!(a.event, SvcEvent::QuorumGained { .. });
                m.mailer.send(&Alert::VirtualServer {
                    vs: fifo::vs_text(spec),
                    up,
                    body: crate::mail::message::quorum_body(
                        up,
                        out.init,
                        spec.quorum,
                        spec.hysteresis,
                        c.live_weight(svc),
                    ),
                });
            }
        }
        if !fifos.is_empty() {
            let line = match (a.event, server) {
                (SvcEvent::ServerUp { .. }, Some(r)) => fifo::rs_line(spec, r, true),
                (SvcEvent::ServerDown { .. }, Some(r)) => fifo::rs_line(spec, r, false),
                (SvcEvent::QuorumGained { .. }, _) => fifo::vs_line(spec, true),
                (SvcEvent::QuorumLost { .. }, _) => fifo::vs_line(spec, false),
                _ => continue,
            };
            for f in fifos {
                f.write_line(&line);
            }
        }
    }
}

/// Sends the quorum to every instance tracking the virtual server.
async fn tell(f: &Followed, up: bool) {
    for (tx, weight) in &f.subscribers {
        let key = TrackKey::VirtualServer(f.label.clone());
        // An instance that has stopped no longer cares.
        let _ = tx.send((key, weight.binary(up))).await;
    }
}

/// The real servers (with their checker indices, starting at `first`) and the resolved
/// checkers of one virtual server.
fn pool_of(vs: &VirtualServer, first: usize) -> (Vec<RealServer>, Vec<checks::spec::Resolved>) {
    let resolved = vs.resolved_checkers();
    let mut next = first;
    let mut real_servers = Vec::new();
    for (rs, rc) in vs.service.real_servers.iter().zip(&vs.real_servers) {
        let checkers: Vec<usize> = (next..next + rc.checkers.len()).collect();
        let alpha = checkers
            .first()
            .and_then(|c| resolved.get(c - first))
            .is_some_and(|r| r.timers.alpha);
        next += rc.checkers.len();
        real_servers.push(RealServer {
            target: checks::spec::Target::new(rs.addr, rs.port.unwrap_or(0)),
            weight: rs.weight,
            checkers,
            alpha,
        });
    }
    (real_servers, resolved)
}

/// The virtual server as keepalived writes it (`IP PORT`, `fwmark N`, `group NAME`).
fn label(vs: &VirtualServer) -> String {
    use lbcore::spec::ServiceKey as K;
    match &vs.service.key {
        K::Addr {
            addr,
            port: Some(p),
        } => format!("{addr} {p}"),
        K::Addr { addr, port: None } => addr.to_string(),
        K::Fwmark { mark, .. } => format!("fwmark {mark}"),
        K::Group(g) => format!("group {g}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A virtual server's scripts and a `MISC_CHECK` without a user of their own run as the
    /// default script user (`script_user`), as every other script does, never as root. The
    /// server starts down (`alpha`): its check passing brings the quorum, and `quorum_up`.
    #[tokio::test]
    async fn checker_scripts_run_as_the_default_script_user() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (scripts run as another user)");
            return;
        }
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .expect("nobody exists on this host");
        let dir = std::env::temp_dir().join(format!("vrrpd-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let d = dir.display();
        let text = format!(
            "global_defs {{\n script_user nobody\n}}\n\
             virtual_server 192.0.2.1 80 {{\n delay_loop 1\n alpha\n protocol TCP\n \
             quorum_up \"/bin/sh -c 'id -u > {d}/quorum'\"\n \
             real_server 198.51.100.1 80 {{\n  MISC_CHECK {{\n   misc_path \"/bin/sh -c 'id -u > {d}/misc'\"\n  }}\n }}\n}}\n"
        );
        let (config, diags) = keepalived_conf::load_str(&text, std::path::Path::new("u.conf"));
        assert!(config.virtual_servers.len() == 1, "{diags:?}");
        let env = ScriptEnv::new(&config);
        let services = start(&config, &HashMap::new(), None, &[], &env, None)
            .await
            .unwrap()
            .expect("a virtual server");
        let mut ran = Vec::new();
        for _ in 0..100 {
            ran = ["quorum", "misc"]
                .map(|f| std::fs::read_to_string(dir.join(f)).ok())
                .to_vec();
            if ran.iter().all(|r| r.is_some()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        services.shutdown(std::time::Duration::from_secs(2)).await;
        std::fs::remove_dir_all(&dir).unwrap();
        let uid = format!("{}\n", nobody.uid);
        assert_eq!(ran, [Some(uid.clone()), Some(uid)], "quorum_up, MISC_CHECK");
    }

    /// A `MISC_CHECK` that cannot run is removed as keepalived removes it (program not found,
    /// not executable by its user, refused by `enable_script_security`), and its real server
    /// is judged without it (up: it has no other checker) instead of failed by a script that
    /// never started. The one that can run does, as the default script user.
    #[tokio::test]
    async fn misc_checks_that_cannot_run_are_removed() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (scripts owned by and run as other users)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("vrrpd-misc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, mode) in [("ok", 0o755), ("root-only", 0o700), ("writable", 0o777)] {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let d = dir.display();
        let rs = |last: u8, check: &str| {
            format!(" real_server 198.51.100.{last} 80 {{\n  MISC_CHECK {{\n{check}  }}\n }}\n")
        };
        let text = format!(
            "global_defs {{\n enable_script_security\n script_user nobody\n}}\n\
             virtual_server 192.0.2.1 80 {{\n delay_loop 1\n alpha\n protocol TCP\n{}{}{}{}}}\n",
            rs(1, &format!("   misc_path {d}/missing\n")),
            rs(2, &format!("   misc_path {d}/root-only\n")),
            rs(3, &format!("   misc_path {d}/writable\n   user root\n")),
            rs(4, &format!("   misc_path \"{d}/ok arg\"\n")),
        );
        let (config, diags) = keepalived_conf::load_str(&text, std::path::Path::new("m.conf"));
        let checkers = |c: &keepalived_conf::Config| -> usize {
            c.virtual_servers[0]
                .real_servers
                .iter()
                .map(|r| r.checkers.len())
                .sum()
        };
        assert_eq!(checkers(&config), 4, "the model keeps them all: {diags:?}");
        let env = ScriptEnv::new(&config);
        let services = start(&config, &HashMap::new(), None, &[], &env, None)
            .await
            .unwrap()
            .expect("a virtual server");
        let live = || services.table().load().services()[0].servers.len();
        for _ in 0..100 {
            if live() == 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (live, snapshot) = (live(), services.snapshot());
        services.shutdown(std::time::Duration::from_secs(2)).await;
        std::fs::remove_dir_all(&dir).unwrap();
        let targets: Vec<String> = snapshot.iter().map(|c| c.target.id.clone()).collect();
        assert_eq!(
            targets,
            ["198.51.100.4:80"],
            "only the checker that can run"
        );
        assert_eq!(live, 4, "the others' servers have no checker left: up");
    }
}
