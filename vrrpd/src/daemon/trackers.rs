//! Config → runtime: the trackers (`vrrp_script`, `track_interface`, `track_file`,
//! `vrrp_track_process`), the notifiers and mail of every instance and sync group, made for
//! each configuration the VRRP loop adopts.
//!
//! Each tracked object runs once however many instances use it (one script monitor, one file
//! watcher, one link subscription, one process watcher for every tracked process); a fan-out
//! task maps its status through each user's per-use [`Weight`] and reports the contribution
//! for that instance ([`TrackTx`]). The tasks end by themselves when the configuration's report
//! channel is gone (the next configuration has its own).
//!
//! A sync group's trackers are added to each member, and members' tracker weights are ignored
//! (failure is FAULT) unless the group says `sync_group_tracking_weight`, as keepalived does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::vrrp::{Attach, GroupSpec, TrackMsg};
use crate::components;
use crate::mail::{Mailer, StateMail};
use crate::netlink::Netlink;
use crate::notify::{Fifo, Kind, Notifier, NotifySpec};
use crate::track::file::{self, FileSpec};
use crate::track::link::LinkMonitor;
use crate::track::process::{self, ProcSpec, Watcher};
use crate::track::script::{
    self, check_secure, resolve_user, Command, RunAs, ScriptSpec, ScriptState,
};
use crate::track::{Contribution, TrackKey, Weight};
use keepalived_conf::model::{Config, Notify, SyncGroup, Track, VrrpInstance};

/// How long a notify script may run before its process group is killed (keepalived has no
/// limit; a hung notify script would otherwise hold back every later notification).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a tracker reports for one instance (cheap to clone).
#[derive(Clone)]
pub(super) struct TrackTx {
    tx: mpsc::Sender<TrackMsg>,
    instance: Arc<str>,
}

impl TrackTx {
    /// The reporter for `instance` on a configuration's report channel.
    pub(super) fn new(tx: mpsc::Sender<TrackMsg>, instance: &str) -> Self {
        Self {
            tx,
            instance: instance.into(),
        }
    }

    fn msg(&self, (key, contribution): (TrackKey, Contribution)) -> TrackMsg {
        TrackMsg {
            instance: self.instance.clone(),
            key,
            contribution,
        }
    }

    /// Reports; an error once the configuration is gone.
    pub(super) async fn send(&self, report: (TrackKey, Contribution)) -> Result<(), ()> {
        self.tx.send(self.msg(report)).await.map_err(drop)
    }

    /// Reports without waiting; the report back when the channel is full or gone.
    fn try_send(&self, report: (TrackKey, Contribution)) -> Result<(), TrySend> {
        self.tx.try_send(self.msg(report)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(m) => TrySend::Full((m.key, m.contribution)),
            mpsc::error::TrySendError::Closed(_) => TrySend::Closed,
        })
    }

    /// Resolves once the configuration is gone.
    pub(super) async fn closed(&self) {
        self.tx.closed().await
    }
}

enum TrySend {
    Full((TrackKey, Contribution)),
    Closed,
}

/// Starts every tracker of `config`; `txs[i]` reports for `config.instances[i]`.
pub(super) async fn start(
    config: &Config,
    env: &ScriptEnv,
    txs: &[TrackTx],
    links: &LinkMonitor,
    nl: &Netlink,
) {
    let insts: Vec<VrrpInstance> = config
        .instances
        .iter()
        .map(|i| with_group_trackers(config, i))
        .collect();
    let insts = &insts[..];
    start_scripts(config, env, insts, txs);
    start_files(config, insts, txs);
    start_processes(config, insts, txs);
    for (inst, tx) in insts.iter().zip(txs) {
        start_interfaces(inst, tx, links, nl).await;
    }
}

/// The notifiers and mail of every instance (in configuration order) and sync group of
/// `config`; `fifos` get the VRRP lines.
pub(super) fn attach(
    config: &Config,
    env: &ScriptEnv,
    fifos: &[Arc<Fifo>],
    mailer: Option<&Mailer>,
) -> (Vec<Attach>, Vec<GroupSpec>) {
    let mail = &config.global.mail;
    let instances = config
        .instances
        .iter()
        .map(|inst| {
            let mail = mailer
                .filter(|_| mail.vrrp_alert(inst.smtp_alert))
                .map(|m| {
                    StateMail::new(m.clone(), Kind::Instance, &inst.name, mail.no_email_faults)
                });
            let mut spec = notify_spec(env, Kind::Instance, &inst.name, &inst.notify);
            spec.priority_changes = inst.notify_priority_changes;
            let notifier = (has_scripts(&spec) || !fifos.is_empty())
                .then(|| Notifier::spawn(spec, fifos.to_vec()));
            Attach { notifier, mail }
        })
        .collect();
    (instances, groups(config, env, fifos, mailer))
}

/// The sync group `inst` belongs to (keepalived allows one).
fn group_of<'a>(config: &'a Config, inst: &str) -> Option<&'a SyncGroup> {
    config
        .sync_groups
        .iter()
        .find(|g| g.group.iter().any(|m| m == inst))
}

/// `inst` with its group's trackers added. In a sync group, weights are ignored (a failing
/// tracker is FAULT for the whole group) unless the group has `sync_group_tracking_weight`,
/// as keepalived does.
pub(super) fn with_group_trackers(config: &Config, inst: &VrrpInstance) -> VrrpInstance {
    let mut i = inst.clone();
    let Some(g) = group_of(config, &inst.name) else {
        return i;
    };
    i.track_scripts.extend(g.track_scripts.iter().cloned());
    i.track_interfaces
        .extend(g.track_interfaces.iter().cloned());
    i.track_files.extend(g.track_files.iter().cloned());
    i.track_processes.extend(g.track_processes.iter().cloned());
    // keepalived 2 reads the deprecated `global_tracking` as `sync_group_tracking_weight`.
    if !(g.sync_group_tracking_weight || g.global_tracking) {
        let zero = |ts: &mut Vec<Track>, what: &str| {
            for t in ts {
                if t.weight != Some(0) {
                    warn!(
                        "({}) ignoring weight from {what} {} since in sync group {}",
                        inst.name, t.name, g.name
                    );
                }
                t.weight = Some(0);
            }
        };
        zero(&mut i.track_scripts, "tracking script");
        zero(&mut i.track_interfaces, "tracked interface");
        zero(&mut i.track_files, "track file");
        zero(&mut i.track_processes, "track process");
    }
    i
}

/// Every `vrrp_sync_group` with at least one configured member (a member in two groups
/// belongs to the first), with its notifier and mail.
fn groups(
    config: &Config,
    env: &ScriptEnv,
    fifos: &[Arc<Fifo>],
    mailer: Option<&Mailer>,
) -> Vec<GroupSpec> {
    let mail = &config.global.mail;
    let mut out = Vec::new();
    for g in &config.sync_groups {
        let members: Vec<String> = g
            .group
            .iter()
            .filter(|m| config.instances.iter().any(|i| &i.name == *m))
            .filter(|m| group_of(config, m).map(|x| &x.name) == Some(&g.name))
            .cloned()
            .collect();
        if members.is_empty() {
            continue;
        }
        let spec = notify_spec(env, Kind::Group, &g.name, &g.notify);
        let notifier = (has_scripts(&spec) || !fifos.is_empty())
            .then(|| Notifier::spawn(spec, fifos.to_vec()));
        let group_mail = mailer
            .filter(|_| mail.vrrp_alert(g.smtp_alert))
            .map(|m| StateMail::new(m.clone(), Kind::Group, &g.name, mail.no_email_faults));
        info!("VRRP sync group {} with {}", g.name, members.join(", "));
        out.push(GroupSpec {
            name: g.name.clone(),
            members,
            notifier,
            mail: group_mail,
        });
    }
    out
}

/// Who scripts run as, and whether `enable_script_security` vets them: keepalived 2.2.7's
/// rules, measured. A script that cannot run (missing, not executable, no usable user) is
/// disabled with keepalived's message; it never counts as a failing check.
#[derive(Debug, Clone)]
pub(super) struct ScriptEnv {
    security: bool,
    /// Scripts without their own user run as this: `Ok(None)` is root; `Err` means none could
    /// be set (a `script_user` that does not exist, or script security without the
    /// `keepalived_script` user), and keepalived then refuses those scripts.
    default_user: Result<Option<RunAs>, ()>,
    /// That user as written (`script_user`'s `USER [GROUP]`, or `keepalived_script`), for what
    /// looks users up by name (`MISC_CHECK`); `None` for root.
    default_name: Option<String>,
}

impl ScriptEnv {
    pub(super) fn new(config: &Config) -> Self {
        let security = config.global.script_security;
        let default_user = match &config.global.script_user {
            Some(u) => user(u).map(Some).ok_or_else(|| {
                error!("Script user '{u}' does not exist");
            }),
            None => match resolve_user("keepalived_script", None) {
                Some(r) => Ok(Some(r)),
                None if security => {
                    error!("Unable to set default user keepalived_script for script");
                    Err(())
                }
                None => {
                    info!("Script user 'keepalived_script' does not exist; scripts run as root");
                    Ok(None)
                }
            },
        };
        let default_name = match &config.global.script_user {
            Some(u) => Some(u.clone()),
            None => matches!(default_user, Ok(Some(_))).then(|| "keepalived_script".into()),
        };
        Self {
            security,
            default_user,
            default_name,
        }
    }

    /// A virtual server's `MISC_CHECK`s as keepalived runs them: one without a `user` of its
    /// own runs as the default script user; each is vetted as every script is
    /// ([`Self::command`]: its users exist, its program is found and executable by its user,
    /// `enable_script_security` accepts it) and runs the program that was vetted. One that
    /// cannot run is removed with its reason, as keepalived removes it: its real server is
    /// judged by its other checkers (up when it has none), never failed by a script that
    /// cannot start.
    pub(super) fn misc_checks<'v>(
        &self,
        vs: &'v keepalived_conf::model::VirtualServer,
    ) -> std::borrow::Cow<'v, keepalived_conf::model::VirtualServer> {
        use checks::spec::ProbeSpec;
        let is_misc = |c: &checks::spec::CheckSpec| matches!(c.probe, ProbeSpec::MiscCheck(_));
        if !vs
            .real_servers
            .iter()
            .flat_map(|r| &r.checkers)
            .any(is_misc)
        {
            return std::borrow::Cow::Borrowed(vs);
        }
        let mut vs = vs.clone();
        for rc in &mut vs.real_servers {
            rc.checkers.retain_mut(|c| {
                let ProbeSpec::MiscCheck(m) = &mut c.probe else {
                    return true;
                };
                if m.user.is_none() {
                    let mut words = self.default_name.iter().flat_map(|n| n.split_whitespace());
                    m.user = words.next().map(Into::into);
                    m.group = words.next().map(Into::into);
                }
                let user = m.user.as_ref().map(|u| match &m.group {
                    Some(g) => format!("{u} {g}"),
                    None => u.clone(),
                });
                let vetted = self.command(&m.misc_path, user.as_deref(), Duration::ZERO);
                match vetted {
                    Some(cmd) => {
                        m.misc_path = checks::script::join(&cmd.argv);
                        true
                    }
                    None => {
                        let words = checks::script::words(&m.misc_path).unwrap_or_default();
                        let cmd = checks::script::cmd_str(&words);
                        error!("Disabling misc script {cmd}: the checker is removed");
                        false
                    }
                }
            });
        }
        std::borrow::Cow::Owned(vs)
    }

    /// `script_user`, else `keepalived_script` if it exists, else root (`None`).
    pub(super) fn default_user(&self) -> Option<RunAs> {
        self.default_user.ok().flatten()
    }

    /// The command for a script line, or `None` (logged in keepalived's words) when it cannot
    /// or must not run.
    pub(super) fn command(
        &self,
        text: &str,
        user_spec: Option<&str>,
        timeout: Duration,
    ) -> Option<Command> {
        let Ok(mut argv) = checks::script::words(text) else {
            error!("Unable to parse script '{text}' - ignoring");
            return None;
        };
        let Some(prog) = argv.first().cloned() else {
            warn!("empty script command ignored");
            return None;
        };
        if keepalived_conf::build::opens_a_file(text) {
            // keepalived hands `</dev/tcp/HOST/PORT` and the like to the shell, unchecked.
            argv = vec!["/bin/sh".into(), "-c".into(), text.trim().to_string()];
        }
        let user = match (user_spec, self.default_user) {
            (Some(u), _) => match user(u) {
                Some(r) => Some(r),
                None => {
                    error!("Unable to set uid/gid for script '{prog}' - disabling.");
                    return None;
                }
            },
            (None, Ok(u)) => u,
            (None, Err(())) => {
                error!("Failed to set default user for script {prog} - ignoring");
                return None;
            }
        };
        // What is checked is what runs: a bare name is resolved through PATH once.
        let prog = argv[0].clone();
        let Some(path) = find_program(&prog) else {
            if prog.contains('/') {
                error!("Script {prog} cannot be accessed - No such file or directory");
            } else {
                error!("Cannot find script {prog} in path - disabling");
            }
            return None;
        };
        if !executable_by(&path, user) {
            let (uid, gid) = user.map_or((0, 0), |u| (u.uid, u.gid));
            error!(
                "WARNING - script '{prog}' is not executable for uid:gid {uid}:{gid} - disabling."
            );
            return None;
        }
        if self.security {
            let uid = user.map_or(0, |u| u.uid);
            if let Err(e) = check_secure(&path, uid) {
                error!("Unsafe permissions found for script '{prog}' - disabling. ({e})");
                return None;
            }
        }
        argv[0] = path.to_string_lossy().into_owned();
        Some(Command {
            argv,
            user,
            timeout,
        })
    }
}

/// `prog` itself when it has a slash and is a file, else the first file of that name on PATH
/// that is executable (keepalived's default PATH when unset).
fn find_program(prog: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if prog.contains('/') {
        return std::fs::metadata(prog)
            .is_ok_and(|m| m.is_file())
            .then(|| prog.into());
    }
    let path = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(prog))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether `user` (root when `None`) may execute `path`, as keepalived checks it.
fn executable_by(path: &Path, user: Option<RunAs>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let mode = m.mode();
    match user {
        None => mode & 0o111 != 0,
        Some(u) if u.uid == 0 => mode & 0o111 != 0,
        Some(u) if m.uid() == u.uid => mode & 0o100 != 0,
        Some(u) if m.gid() == u.gid => mode & 0o010 != 0,
        Some(_) => mode & 0o001 != 0,
    }
}

/// `USER [GROUP]`.
pub(super) fn user(spec: &str) -> Option<RunAs> {
    let mut words = spec.split_whitespace();
    resolve_user(words.next()?, words.next())
}

/// The per-use weight: the `track_*` entry's own, else the object's.
fn weight(t: &Track, default: i32, default_reverse: bool) -> Weight {
    match t.weight {
        Some(w) => Weight::new(w, t.reverse),
        None => Weight::new(default, default_reverse || t.reverse),
    }
}

/// Sends `c` for `key` to every user (mapped through its weight); false when all are gone.
async fn fan_out<T: Copy>(
    key: &TrackKey,
    users: &[(TrackTx, Weight)],
    status: T,
    map: impl Fn(Weight, T) -> Contribution,
) -> bool {
    let mut alive = false;
    for (tx, w) in users {
        alive |= tx.send((key.clone(), map(*w, status))).await.is_ok();
    }
    alive
}

fn start_scripts(config: &Config, env: &ScriptEnv, insts: &[VrrpInstance], txs: &[TrackTx]) {
    let mut users: BTreeMap<&str, Vec<(TrackTx, Weight)>> = BTreeMap::new();
    for (inst, tx) in insts.iter().zip(txs) {
        for t in &inst.track_scripts {
            match config.scripts.iter().find(|s| s.name == t.name) {
                Some(s) => users
                    .entry(&s.name)
                    .or_default()
                    .push((tx.clone(), weight(t, s.weight, s.weight_reverse))),
                None => warn!(instance = %inst.name, "track_script {} not found, ignoring", t.name),
            }
        }
    }
    for (name, users) in users {
        let Some(s) = config.scripts.iter().find(|s| s.name == name) else {
            continue;
        };
        let Some(command) = env.command(&s.script, s.user.as_deref(), s.timeout) else {
            // As keepalived: the instances run without it (it is not a failing check).
            warn!("Disabling track script {name} since not found/accessible");
            continue;
        };
        let spec = ScriptSpec {
            name: name.to_string(),
            command,
            interval: s.interval,
            rise: s.rise,
            fall: s.fall,
            init_fail: s.init_fail,
        };
        let key = TrackKey::Script(name.to_string());
        let init_up = !s.init_fail;
        let (tx, rx) = mpsc::channel(4);
        let verdict = ScriptState::new(spec.rise, spec.fall, spec.init_fail);
        components::spawn(
            format!("vrrp_script {name}"),
            (spec, tx, verdict),
            |(spec, tx, verdict)| Box::pin(script::watch(spec, tx, verdict)),
        );
        components::spawn(
            format!("vrrp_script {name} fan-out"),
            (rx, key, users, Some(init_up)),
            |(rx, key, users, init)| {
                Box::pin(async move {
                    if let Some(up) = init.take() {
                        if !fan_out(key, users, up, Weight::binary).await {
                            return;
                        }
                    }
                    while let Some(ev) = rx.recv().await {
                        if !fan_out(key, users, ev.up, Weight::binary).await {
                            return;
                        }
                    }
                })
            },
        );
    }
}

fn start_files(config: &Config, insts: &[VrrpInstance], txs: &[TrackTx]) {
    let mut users: BTreeMap<&str, Vec<(TrackTx, Weight)>> = BTreeMap::new();
    for (inst, tx) in insts.iter().zip(txs) {
        for t in &inst.track_files {
            match config.track_files.iter().find(|f| f.name == t.name) {
                Some(f) => users
                    .entry(&f.name)
                    .or_default()
                    .push((tx.clone(), weight(t, f.weight, f.reverse))),
                None => warn!(instance = %inst.name, "track_file {} not found, ignoring", t.name),
            }
        }
    }
    for (name, users) in users {
        let Some(f) = config.track_files.iter().find(|f| f.name == name) else {
            continue;
        };
        let spec = FileSpec {
            name: name.to_string(),
            path: f.file.clone(),
            init: f.init_file.as_ref().map(|i| (i.value, i.overwrite)),
        };
        let key = TrackKey::File(name.to_string());
        let (tx, rx) = mpsc::channel(4);
        components::spawn(format!("track_file {name}"), (spec, tx), |(spec, tx)| {
            // Started again, it reads the file as it is: init_file is for the first run.
            let run = spec.clone();
            spec.init = None;
            Box::pin(async move {
                let path = run.path.clone();
                if let Err(e) = file::watch(run, tx.clone()).await {
                    error!(file = %path.display(), error = %e, "track_file watcher stopped");
                }
            })
        });
        components::spawn(
            format!("track_file {name} fan-out"),
            (rx, key, users),
            |(rx, key, users)| {
                Box::pin(async move {
                    while let Some(ev) = rx.recv().await {
                        info!("track_file {} now {}", ev.name, ev.value);
                        if !fan_out(key, users, ev.value, Weight::file).await {
                            return;
                        }
                    }
                })
            },
        );
    }
}

/// Every tracked process in one [`Watcher`]: the statuses read at start are queued before the
/// instances run (so a weight-0 process that is not running means INIT → FAULT directly), then
/// a fan-out task maps each change through every user's weight.
fn start_processes(config: &Config, insts: &[VrrpInstance], txs: &[TrackTx]) {
    let mut users: BTreeMap<&str, Vec<(TrackTx, Weight)>> = BTreeMap::new();
    for (inst, tx) in insts.iter().zip(txs) {
        for t in &inst.track_processes {
            match config.track_processes.iter().find(|p| p.name == t.name) {
                Some(p) => users
                    .entry(&p.name)
                    .or_default()
                    .push((tx.clone(), weight(t, p.weight, p.reverse))),
                None => {
                    warn!(instance = %inst.name, "track_process {} not found, ignoring", t.name)
                }
            }
        }
    }
    if users.is_empty() {
        return;
    }
    let (specs, users): (Vec<ProcSpec>, Vec<_>) = users
        .into_iter()
        .filter_map(|(name, u)| {
            let p = config.track_processes.iter().find(|p| p.name == name)?;
            Some((ProcSpec::from(p), u))
        })
        .unzip();
    let watcher = Watcher::start(
        specs,
        Path::new("/proc"),
        process::Source::Connector,
        process::RESCAN_INTERVAL,
    );
    let table = watcher.table();
    let names: Vec<String> = table.specs().iter().map(|s| s.name.clone()).collect();
    let keys: Vec<TrackKey> = names.iter().cloned().map(TrackKey::Process).collect();
    for (i, (key, users)) in keys.iter().zip(&users).enumerate() {
        let (up, n) = (table.up(i), table.count(i));
        info!(
            "Tracked process {}: {n} running, quorum {}",
            names[i],
            if up { "achieved" } else { "not achieved" }
        );
        for (tx, w) in users {
            queue(tx, (key.clone(), w.binary(up)));
        }
    }
    let (tx, rx) = mpsc::channel(16);
    components::spawn(
        "vrrp_track_process watcher".into(),
        (watcher, tx, false),
        |(watcher, tx, restarted)| {
            Box::pin(async move {
                // Started again after a failure: what changed meanwhile is read afresh.
                if std::mem::replace(restarted, true) {
                    for c in watcher.rescan().await {
                        if tx.send(c).await.is_err() {
                            return;
                        }
                    }
                }
                watcher.run(tx).await
            })
        },
    );
    components::spawn(
        "vrrp_track_process fan-out".into(),
        (rx, users, keys, names),
        |(rx, users, keys, names)| {
            Box::pin(async move {
                loop {
                    let change = tokio::select! {
                        c = rx.recv() => c,
                        // Ends with the instances (a reload), not only at the next change.
                        _ = all_closed(users.iter().flatten()) => None,
                    };
                    let Some(c) = change else { return };
                    info!(
                        "Quorum {} for tracked process {} ({} running)",
                        if c.up { "gained" } else { "lost" },
                        names[c.index],
                        c.count
                    );
                    fan_out(&keys[c.index], &users[c.index], c.up, Weight::binary).await;
                }
            })
        },
    );
}

/// Queues a first status without waiting: the VRRP loop drains the channel when it adopts the
/// configuration (a full channel is sent to by a task instead).
fn queue(tx: &TrackTx, msg: (TrackKey, Contribution)) {
    if let Err(TrySend::Full(msg)) = tx.try_send(msg) {
        let tx = tx.clone();
        tokio::spawn(async move { tx.send(msg).await });
    }
}

/// Resolves once every user's channel is closed.
async fn all_closed<'a>(users: impl Iterator<Item = &'a (TrackTx, Weight)>) {
    for (tx, _) in users {
        tx.closed().await;
    }
}

/// Extra interfaces of one instance (its own is tracked by the instance itself).
async fn start_interfaces(inst: &VrrpInstance, tx: &TrackTx, links: &LinkMonitor, nl: &Netlink) {
    let own = nl.link(&inst.interface).await.ok().map(|l| l.index);
    for t in &inst.track_interfaces {
        let link = match nl.link(&t.name).await {
            Ok(l) => l,
            Err(e) => {
                warn!(instance = %inst.name, "track_interface {} not found, ignoring ({e})", t.name);
                continue;
            }
        };
        if Some(link.index) == own {
            info!(instance = %inst.name, "track_interface {}: the instance's own interface is always tracked", t.name);
            continue;
        }
        let w = weight(t, 0, false);
        let key = TrackKey::Interface(link.index);
        let users = vec![(tx.clone(), w)];
        let state = links.subscribe(link.index);
        let name = link.name.clone();
        components::spawn(
            format!("track_interface {name} ({})", inst.name),
            (state, key, users, name),
            |(state, key, users, name)| {
                Box::pin(async move {
                    loop {
                        let up = *state.borrow_and_update();
                        info!(
                            "tracked interface {name} is {}",
                            if up { "up" } else { "down" }
                        );
                        if !fan_out(key, users, up, Weight::binary).await {
                            return;
                        }
                        if state.changed().await.is_err() {
                            return;
                        }
                    }
                })
            },
        );
    }
}

/// The notify scripts of an instance or group (those refused are left out).
fn notify_spec(env: &ScriptEnv, kind: Kind, name: &str, n: &Notify) -> NotifySpec {
    // Each runs as the user its line names, else as the script user.
    let cmd = |s: &Option<String>, keyword: &str| {
        s.as_deref()
            .and_then(|t| env.command(t, n.user(keyword), NOTIFY_TIMEOUT))
    };
    NotifySpec {
        kind,
        name: name.to_string(),
        master: cmd(&n.master, "notify_master"),
        backup: cmd(&n.backup, "notify_backup"),
        fault: cmd(&n.fault, "notify_fault"),
        stop: cmd(&n.stop, "notify_stop"),
        generic: cmd(&n.any, "notify"),
        master_rx_lower_pri: cmd(&n.master_rx_lower_pri, "notify_master_rx_lower_pri"),
        priority_changes: false,
    }
}

fn has_scripts(s: &NotifySpec) -> bool {
    [
        &s.master,
        &s.backup,
        &s.fault,
        &s.stop,
        &s.generic,
        &s.master_rx_lower_pri,
    ]
    .iter()
    .any(|c| c.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_trackers_join_members_with_weights_ignored() {
        let text = "vrrp_script chk { script /bin/true\n weight -20 }\n\
            vrrp_track_process p { process x\n weight -7 }\n\
            vrrp_sync_group G { group { A }\n track_script { chk weight -5 }\n track_interface { eth9 }\n track_process { p } }\n\
            vrrp_sync_group H { group { B }\n sync_group_tracking_weight\n track_script { chk weight -5 } }\n\
            vrrp_sync_group K { group { D }\n global_tracking\n track_script { chk weight -5 } }\n\
            vrrp_instance A { interface e\n virtual_router_id 1\n track_script { chk weight -30 }\n virtual_ipaddress { 192.0.2.1 } }\n\
            vrrp_instance B { interface e\n virtual_router_id 2\n virtual_ipaddress { 192.0.2.2 } }\n\
            vrrp_instance C { interface e\n virtual_router_id 3\n track_script { chk }\n virtual_ipaddress { 192.0.2.3 } }\n\
            vrrp_instance D { interface e\n virtual_router_id 4\n virtual_ipaddress { 192.0.2.4 } }";
        let (cfg, _) = keepalived_conf::load_str(text, Path::new("t.conf"));
        let by = |n: &str| {
            with_group_trackers(&cfg, cfg.instances.iter().find(|i| i.name == n).unwrap())
        };
        let a = by("A");
        let w: Vec<_> = a.track_scripts.iter().map(|t| t.weight).collect();
        // A's own weighted script is not tracked at all (keepalived drops it: see
        // keepalived_conf's no_weights_in_groups); the group's counts as FAULT only.
        assert_eq!(w, [Some(0)], "in G: weights ignored");
        assert_eq!(a.track_interfaces[0].name, "eth9");
        assert_eq!(a.track_processes[0].name, "p");
        assert_eq!(
            a.track_processes[0].weight,
            Some(0),
            "in G: weights ignored"
        );
        let b = by("B");
        assert_eq!(b.track_scripts[0].weight, Some(-5), "H keeps weights");
        let d = by("D");
        assert_eq!(
            d.track_scripts[0].weight,
            Some(-5),
            "global_tracking is sync_group_tracking_weight"
        );
        let c = by("C");
        assert_eq!(c.track_scripts[0].weight, None, "not in a group: untouched");
    }

    #[test]
    fn bare_names_are_found_on_path() {
        let sh = find_program("sh").expect("sh on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"));
        assert_eq!(find_program("/bin/sh"), Some("/bin/sh".into()));
        assert_eq!(find_program("./no-such-script"), None);
        assert_eq!(find_program("no-such-program-vrrpd"), None);
    }

    /// keepalived disables what cannot run instead of counting it as a failing check.
    #[test]
    fn scripts_that_cannot_run_are_refused_not_failed() {
        let mut cfg = Config::default();
        let env = ScriptEnv::new(&cfg);
        let t = Duration::from_secs(1);
        assert!(env.command("/bin/true", None, t).is_some());
        let c = env.command("true --x", None, t).expect("found on PATH");
        assert!(c.argv[0].ends_with("/true") && c.argv[1] == "--x");
        assert!(env.command("/nonexistent/check.sh", None, t).is_none());
        assert!(env.command("no-such-program-vrrpd arg", None, t).is_none());
        assert!(env
            .command("/bin/true", Some("no-such-user-vrrpd"), t)
            .is_none());
        assert!(
            env.command("/etc/passwd", None, t).is_none(),
            "not executable"
        );
        let c = env.command("</dev/tcp/127.0.0.1/443", None, t).unwrap();
        assert_eq!(c.argv, ["/bin/sh", "-c", "</dev/tcp/127.0.0.1/443"]);
        // A script_user that does not exist: scripts without their own user are refused.
        cfg.global.script_user = Some("no-such-user-vrrpd".into());
        let env = ScriptEnv::new(&cfg);
        assert!(env.command("/bin/true", None, t).is_none());
        assert!(env.command("/bin/true", Some("root"), t).is_some());
    }

    /// `notify_master /x root`-style lines: the script runs as the user its line names
    /// (keepalived's `COMMAND [USER [GROUP]]`), the others as the script user.
    #[test]
    fn notify_scripts_run_as_the_user_their_line_names() {
        let text = "vrrp_instance V {\n interface e\n virtual_router_id 1\n \
                    notify_master \"/bin/true m\" nobody\n notify_backup /bin/true\n}\n";
        let (cfg, _) = keepalived_conf::load_str(text, std::path::Path::new("x"));
        let env = ScriptEnv::new(&Config::default());
        let spec = notify_spec(
            &env,
            crate::notify::Kind::Instance,
            "V",
            &cfg.instances[0].notify,
        );
        let master = spec.master.expect("notify_master runs");
        assert_eq!(master.argv[1], "m");
        assert_eq!(
            master.user,
            crate::track::script::resolve_user("nobody", None)
        );
        assert!(master.user.is_some(), "nobody exists on this host");
        let backup = spec.backup.expect("notify_backup runs");
        assert_eq!(backup.user, env.default_user());
    }

    #[test]
    fn per_use_weight_overrides() {
        let t = |w, r| Track {
            name: "x".into(),
            weight: w,
            reverse: r,
        };
        assert_eq!(weight(&t(None, false), -20, false), Weight::new(-20, false));
        assert_eq!(weight(&t(Some(5), false), -20, true), Weight::new(5, false));
        assert_eq!(weight(&t(Some(5), true), -20, false), Weight::new(5, true));
        assert_eq!(weight(&t(None, true), 3, false), Weight::new(3, true));
    }
}
