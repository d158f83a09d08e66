//! The notify FIFOs of one configuration and the `*_fifo_script`s reading them.
//!
//! As keepalived: each FIFO is created if missing (mode 0600, given to its user, by default
//! the script user) and its script started with the FIFO's path as its last argument, as the
//! script user and vetted by `enable_script_security` like any script. `notify_fifo` gets the
//! VRRP and the checker lines, `vrrp_notify_fifo` the VRRP ones, `lvs_notify_fifo` the checker
//! ones. Stopping (shutdown or reload) goes in keepalived's order: SIGTERM to the scripts
//! ([`Fifos::terminate`]), the last lines (STOP) written, the FIFOs we created removed and
//! closed, then whatever script is still running killed ([`Fifos::close`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::notify::Fifo;
use crate::track::script::Service;
use keepalived_conf::model::{GlobalDefs, NotifyFifo};

use super::trackers::{self, ScriptEnv};

/// keepalived kills a FIFO script still running 1 s after its SIGTERM.
const SCRIPT_GRACE: Duration = Duration::from_secs(1);

/// Which lines a FIFO gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lines {
    All,
    Vrrp,
    Lvs,
}

#[derive(Default)]
pub(super) struct Fifos {
    vrrp: Vec<Arc<Fifo>>,
    lvs: Vec<Arc<Fifo>>,
    all: Vec<Arc<Fifo>>,
    scripts: Vec<Service>,
    terminated: bool,
}

impl Fifos {
    /// Opens the configured FIFOs (a path given twice is opened once, its first script run)
    /// and starts their scripts. A FIFO that cannot be opened is logged and left out.
    pub(super) fn open(global: &GlobalDefs, env: &ScriptEnv) -> Self {
        let mut me = Self::default();
        let configured = [
            (&global.notify_fifo, Lines::All, "notify_fifo"),
            (&global.vrrp_notify_fifo, Lines::Vrrp, "vrrp_notify_fifo"),
            (&global.lvs_notify_fifo, Lines::Lvs, "lvs_notify_fifo"),
        ];
        let mut opened: Vec<(PathBuf, Arc<Fifo>)> = Vec::new();
        for (spec, lines, keyword) in configured {
            let Some(spec) = spec else { continue };
            let fifo = match opened.iter().find(|(p, _)| p == &spec.path) {
                Some((_, f)) => {
                    warn!(
                        "{keyword} {} is also another FIFO: one FIFO gets both sets of lines",
                        spec.path.display()
                    );
                    f.clone()
                }
                None => {
                    let Some(f) = me.open_one(spec, env, keyword) else {
                        continue;
                    };
                    opened.push((spec.path.clone(), f.clone()));
                    f
                }
            };
            if matches!(lines, Lines::All | Lines::Vrrp) && !contains(&me.vrrp, &fifo) {
                me.vrrp.push(fifo.clone());
            }
            if matches!(lines, Lines::All | Lines::Lvs) && !contains(&me.lvs, &fifo) {
                me.lvs.push(fifo.clone());
            }
        }
        me.all = opened.into_iter().map(|(_, f)| f).collect();
        me
    }

    /// Creates or opens one FIFO and starts its script.
    fn open_one(&mut self, spec: &NotifyFifo, env: &ScriptEnv, keyword: &str) -> Option<Arc<Fifo>> {
        let owner = match &spec.owner {
            Some(o) => {
                let r = trackers::user(o);
                if r.is_none() {
                    error!("{keyword}: unknown user {o}; the FIFO stays root's");
                }
                r
            }
            None => env.default_user(),
        };
        let fifo = match Fifo::open(&spec.path, owner) {
            Ok(f) => Arc::new(f),
            Err(e) => {
                error!("{keyword} disabled: {e}");
                return None;
            }
        };
        if let Some(text) = &spec.script {
            // keepalived has no time limit for them: the timeout is not used.
            let cmd = env.command(text, spec.script_user.as_deref(), Duration::MAX);
            match cmd {
                Some(mut cmd) => {
                    cmd.argv.push(spec.path.to_string_lossy().into_owned());
                    if let Some(s) = Service::start(&cmd) {
                        info!("{keyword}_script started: {}", cmd.argv.join(" "));
                        self.scripts.push(s);
                    }
                }
                None => warn!("{keyword}_script {text} not started"),
            }
        }
        Some(fifo)
    }

    /// Where the VRRP lines go.
    pub(super) fn vrrp(&self) -> &[Arc<Fifo>] {
        &self.vrrp
    }

    /// Where the checker lines go.
    pub(super) fn lvs(&self) -> &[Arc<Fifo>] {
        &self.lvs
    }

    /// The first step of stopping: SIGTERM to the scripts, which may go on reading.
    pub(super) fn terminate(&mut self) {
        if std::mem::replace(&mut self.terminated, true) {
            return;
        }
        for s in &self.scripts {
            s.terminate();
        }
    }

    /// The last step: our FIFOs removed and closed (end of file for a reader once the last
    /// writer is gone), then the scripts given [`SCRIPT_GRACE`] to exit before being killed.
    pub(super) async fn close(mut self) {
        for f in std::mem::take(&mut self.all) {
            f.unlink();
        }
        self.vrrp.clear();
        self.lvs.clear();
        for s in std::mem::take(&mut self.scripts) {
            s.finish(SCRIPT_GRACE).await;
        }
    }
}

impl Drop for Fifos {
    /// Not closed (a configuration that failed to start): our FIFOs go; the scripts are
    /// killed by their own guards.
    fn drop(&mut self) {
        for f in &self.all {
            f.unlink();
        }
    }
}

fn contains(v: &[Arc<Fifo>], f: &Arc<Fifo>) -> bool {
    v.iter().any(|x| Arc::ptr_eq(x, f))
}
