//! `vrrp_script`: the rise/fall verdict (pure) and the runner that executes the check.
//!
//! The runner starts the command directly (no shell, as keepalived does for a parsed `script`
//! line) in its own process group, optionally as another user, and kills the whole group
//! with SIGKILL at the timeout, so a hung check cannot leave children behind. Exit status 0 is
//! success; anything else, a signal or the timeout is failure.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Gid, Pid, Uid};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// keepalived's per-script counter: up after `rise` consecutive successes, down after `fall`
/// consecutive failures.
///
/// Start: with `init_fail` the script is down and needs `rise` successes; without it the
/// script is assumed up until its first result, which then decides at once (so an instance
/// does not start in FAULT or with a penalty because a check has not run yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptState {
    rise: u32,
    fall: u32,
    /// `None` before the first result (without `init_fail`).
    up: Option<bool>,
    /// Consecutive results against the current verdict.
    streak: u32,
}

impl ScriptState {
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            up: init_fail.then_some(false),
            streak: 0,
        }
    }

    /// Current verdict; assumed up before the first result.
    pub fn is_up(&self) -> bool {
        self.up.unwrap_or(true)
    }

    /// Records one result; returns the new verdict when it flipped (or was first decided).
    pub fn record(&mut self, success: bool) -> Option<bool> {
        match self.up {
            None => {
                self.up = Some(success);
                self.streak = 0;
                // Assumed up before: only a failure is a change.
                (!success).then_some(false)
            }
            Some(up) if up == success => {
                self.streak = 0;
                None
            }
            Some(up) => {
                self.streak += 1;
                let need = if up { self.fall } else { self.rise };
                if self.streak >= need {
                    self.up = Some(success);
                    self.streak = 0;
                    Some(success)
                } else {
                    None
                }
            }
        }
    }
}

/// Who runs a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// One command to run: argv (program first), identity, time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    pub user: Option<RunAs>,
    pub timeout: Duration,
}

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this status.
    Exited(i32),
    /// Killed by a signal (not by us).
    Signaled,
    /// Hit the timeout; its process group was killed.
    TimedOut,
    /// Could not be started.
    SpawnFailed,
}

impl Outcome {
    pub fn success(self) -> bool {
        self == Outcome::Exited(0)
    }
}

/// The process for `cmd`: no shell, its own process group, as its user, no stdio.
fn process(cmd: &Command) -> Option<tokio::process::Command> {
    let (prog, args) = cmd.argv.split_first()?;
    let mut c = tokio::process::Command::new(prog);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(u) = cmd.user {
        c.uid(u.uid).gid(u.gid);
    }
    Some(c)
}

/// Starts `c`, logging why not; the guard kills its process group however we leave.
fn spawn(
    mut c: tokio::process::Command,
    prog: &str,
) -> Option<(tokio::process::Child, GroupGuard)> {
    match c.spawn() {
        Ok(ch) => {
            let group = GroupGuard(ch.id().map(|p| Pid::from_raw(p as i32)));
            Some((ch, group))
        }
        Err(e) => {
            warn!(script = %prog, error = %e, "cannot start script");
            None
        }
    }
}

/// Runs `cmd` once to completion or timeout.
pub async fn run(cmd: &Command) -> Outcome {
    let Some(c) = process(cmd) else {
        return Outcome::SpawnFailed;
    };
    let prog = &cmd.argv[0];
    // Killed on every way out, also when this future is dropped (daemon shutdown).
    let Some((mut child, group)) = spawn(c, prog) else {
        return Outcome::SpawnFailed;
    };
    match tokio::time::timeout(cmd.timeout, child.wait()).await {
        Ok(Ok(st)) => match st.code() {
            Some(code) => Outcome::Exited(code),
            None => Outcome::Signaled,
        },
        Ok(Err(e)) => {
            warn!(script = %prog, error = %e, "waiting for script failed");
            Outcome::SpawnFailed
        }
        Err(_) => {
            info!(script = %prog, timeout = ?cmd.timeout, "script timed out; killing its process group");
            kill_group(group.0);
            let _ = child.wait().await;
            Outcome::TimedOut
        }
    }
}

/// A script that runs as long as the daemon (a notify FIFO's reader, keepalived's
/// `*_fifo_script`): stopped as keepalived stops it, SIGTERM to its process group first
/// ([`Service::terminate`]), SIGKILL a grace period later ([`Service::finish`]). If the daemon
/// itself dies, the kernel sends the script SIGTERM (`PR_SET_PDEATHSIG`, as keepalived sets).
pub struct Service {
    prog: String,
    group: GroupGuard,
    /// Waits for the script and logs its end; done once it has exited.
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    /// Starts `cmd` (its timeout does not apply); `None` (logged) if it cannot start.
    pub fn start(cmd: &Command) -> Option<Self> {
        let mut c = process(cmd)?;
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
        // which is async-signal-safe and touches no memory of the parent. It runs after the
        // uid/gid change, which would otherwise clear the setting.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let prog = cmd.argv[0].clone();
        let (mut child, group) = spawn(c, &prog)?;
        let name = prog.clone();
        let task = tokio::spawn(async move {
            match child.wait().await {
                Ok(st) => info!(script = %name, status = %st, "script exited"),
                Err(e) => warn!(script = %name, error = %e, "waiting for script failed"),
            }
        });
        Some(Self { prog, group, task })
    }

    /// SIGTERM to the script's process group; it may go on (reading until end of file).
    pub fn terminate(&self) {
        if let Some(p) = self.group.0 {
            let _ = killpg(p, Signal::SIGTERM);
        }
    }

    /// Waits up to `grace` for the script to exit, then kills whatever is left of its group.
    pub async fn finish(mut self, grace: Duration) {
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            info!(script = %self.prog, "script still running; killing its process group");
            kill_group(self.group.0);
            let _ = (&mut self.task).await;
        }
    }
}

/// Kills a script's process group (whatever it left behind) when dropped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

fn kill_group(pgid: Option<Pid>) {
    if let Some(p) = pgid {
        // ESRCH (nothing left) is the normal case.
        let _ = killpg(p, Signal::SIGKILL);
    }
}

/// A `vrrp_script` as the runtime needs it (the config layer maps onto this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSpec {
    pub name: String,
    pub command: Command,
    pub interval: Duration,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// A verdict change of one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptEvent {
    pub name: String,
    pub up: bool,
}

/// Runs `spec` every `interval` (the next run starts `interval` after the previous one
/// started, or at once if it took longer) and sends each verdict change to `tx`. Ends when
/// `tx` is closed.
pub async fn monitor(spec: ScriptSpec, tx: mpsc::Sender<ScriptEvent>) {
    let mut state = ScriptState::new(spec.rise, spec.fall, spec.init_fail);
    watch(&spec, &tx, &mut state).await
}

/// [`monitor`] with its verdict held by the caller, so that a monitor started again after a
/// failure goes on from the verdict it had reported (not from "assumed up", which would
/// swallow a recovery).
pub async fn watch(spec: &ScriptSpec, tx: &mpsc::Sender<ScriptEvent>, state: &mut ScriptState) {
    let mut tick = tokio::time::interval(spec.interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        fault_inject::point("script-monitor");
        let outcome = run(&spec.command).await;
        debug!(script = %spec.name, ?outcome, "script result");
        if let Some(up) = state.record(outcome.success()) {
            info!(script = %spec.name, "VRRP_Script({}) {}", spec.name, if up { "succeeded" } else { "failed" });
            let ev = ScriptEvent {
                name: spec.name.clone(),
                up,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    }
}

/// Looks a user (and optionally a group) up for [`RunAs`]; the group defaults to the user's.
pub fn resolve_user(user: &str, group: Option<&str>) -> Option<RunAs> {
    let u = nix::unistd::User::from_name(user).ok()??;
    let gid = match group {
        Some(g) => nix::unistd::Group::from_name(g).ok()??.gid,
        None => u.gid,
    };
    Some(RunAs {
        uid: Uid::as_raw(u.uid),
        gid: Gid::as_raw(gid),
    })
}

/// Why `enable_script_security` refuses a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Insecure {
    #[error("{0}: cannot resolve: {1}")]
    Resolve(std::path::PathBuf, String),
    #[error("{0} is owned by uid {1}, who could change what runs as uid {2}")]
    Owner(std::path::PathBuf, u32, u32),
    #[error("{0} is writable by group {1} or by everyone")]
    Writable(std::path::PathBuf, u32),
}

/// `enable_script_security`: a script that will run as root is refused if anyone but root
/// could change it — the file (symlinks resolved) and every directory above it must be owned
/// by root and not writable by group (unless the group is root) or others, except a sticky
/// directory such as `/tmp` (nobody else can replace what is in it). As keepalived 2.2.7
/// (measured: it runs a root-owned script in a 0755 directory under `/tmp`, and refuses one
/// in a world-writable directory without the sticky bit).
pub fn check_secure(path: &std::path::Path, run_uid: u32) -> Result<(), Insecure> {
    use std::os::unix::fs::MetadataExt;
    if run_uid != 0 {
        // keepalived.conf(5): only scripts "configured to be run as root" are checked; one
        // that runs as another user could do no more than that user can (measured on 2.2.7:
        // a world-writable script run as nobody runs).
        return Ok(());
    }
    let real = std::fs::canonicalize(path)
        .map_err(|e| Insecure::Resolve(path.to_path_buf(), e.to_string()))?;
    for p in real.ancestors() {
        let m =
            std::fs::metadata(p).map_err(|e| Insecure::Resolve(p.to_path_buf(), e.to_string()))?;
        if m.uid() != 0 && m.uid() != run_uid {
            return Err(Insecure::Owner(p.to_path_buf(), m.uid(), run_uid));
        }
        let mode = m.mode();
        let sticky_dir = m.is_dir() && mode & 0o1000 != 0;
        if !sticky_dir && (mode & 0o002 != 0 || (mode & 0o020 != 0 && m.gid() != 0)) {
            return Err(Insecure::Writable(p.to_path_buf(), m.gid()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn script_security() {
        use std::os::unix::fs::PermissionsExt;
        // A root-owned system binary is fine for root.
        assert_eq!(check_secure(std::path::Path::new("/bin/sh"), 0), Ok(()));
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (chown)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("vrrpd-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = dir.join("chk.sh");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        // /tmp is world-writable but sticky: a root-owned script in a 0755 directory there
        // is fine, as for keepalived; in a world-writable directory without the sticky bit,
        // refused.
        assert_eq!(check_secure(&f, 0), Ok(()));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(check_secure(&f, 0), Err(Insecure::Writable(p, _)) if p == dir));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(check_secure(&f, 0), Ok(()));
        // Checked from a root-owned base: the directory then the file decide.
        let base = std::path::Path::new("/run").join(format!("vrrpd-sec-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let g = base.join("chk.sh");
        std::fs::write(&g, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&g, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_secure(&g, 0), Ok(()));
        std::fs::set_permissions(&g, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(check_secure(&g, 0), Err(Insecure::Writable(..))));
        std::fs::set_permissions(&g, std::fs::Permissions::from_mode(0o755)).unwrap();
        nix::unistd::chown(&g, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        assert!(matches!(
            check_secure(&g, 0),
            Err(Insecure::Owner(_, 65534, 0))
        ));
        assert_eq!(
            check_secure(&g, 65534),
            Ok(()),
            "owned by the user it runs as"
        );
        std::fs::set_permissions(&g, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            check_secure(&g, 65534),
            Ok(()),
            "not run as root: not checked, as keepalived"
        );
        std::fs::remove_dir_all(&base).ok();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn rise_and_fall_counting() {
        let mut s = ScriptState::new(2, 3, false);
        assert!(s.is_up());
        assert_eq!(
            s.record(true),
            None,
            "first success confirms the assumption"
        );
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(true), None, "streak broken");
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), Some(false));
        assert!(!s.is_up());
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(true), Some(true));
        assert!(s.is_up());
    }

    #[test]
    fn first_result_decides_unless_init_fail() {
        let mut s = ScriptState::new(3, 3, false);
        assert_eq!(s.record(false), Some(false), "first failure: down at once");
        let mut s = ScriptState::new(2, 2, true);
        assert!(!s.is_up());
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(true), Some(true), "init_fail needs rise successes");
    }

    fn cmd(sh: &str, timeout_ms: u64) -> Command {
        Command {
            argv: vec!["/bin/sh".into(), "-c".into(), sh.into()],
            user: None,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn exit_status_is_the_verdict() {
        assert_eq!(run(&cmd("exit 0", 5000)).await, Outcome::Exited(0));
        assert_eq!(run(&cmd("exit 3", 5000)).await, Outcome::Exited(3));
        assert_eq!(run(&cmd("kill -9 $$", 5000)).await, Outcome::Signaled);
        let missing = Command {
            argv: vec!["/nonexistent/check".into()],
            ..cmd("", 1000)
        };
        assert_eq!(run(&missing).await, Outcome::SpawnFailed);
        assert!(!Outcome::Exited(1).success());
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = std::env::temp_dir().join(format!("vrrpd-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("child.pid");
        // A grandchild that would outlive a plain kill of the shell.
        let sh = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let t = Instant::now();
        assert_eq!(run(&cmd(&sh, 300)).await, Outcome::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Gone (or a zombie reaped by init shortly): poll briefly.
        let mut alive = true;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z") {
                alive = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive, "grandchild {pid} survived the timeout");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A long-running script: SIGTERM reaches it (its trap runs); one that ignores SIGTERM is
    /// killed with its whole group when the grace period is over.
    #[tokio::test]
    async fn service_terminates_then_kills() {
        let dir = std::env::temp_dir().join(format!("vrrpd-svc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let polite = cmd(
            &format!(
                "trap 'echo term >> {}; exit 0' TERM; sleep 30 & wait",
                log.display()
            ),
            1,
        );
        let s = Service::start(&polite).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.terminate();
        let t = Instant::now();
        s.finish(Duration::from_secs(5)).await;
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "did not end on SIGTERM"
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "term\n");

        let pidfile = dir.join("stubborn.pid");
        let stubborn = cmd(
            &format!("trap '' TERM; echo $$ > {}; sleep 30", pidfile.display()),
            1,
        );
        let s = Service::start(&stubborn).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.terminate();
        let t = Instant::now();
        s.finish(Duration::from_millis(300)).await;
        assert!(t.elapsed() < Duration::from_secs(3));
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "still running: {stat}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn runs_as_the_given_user() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (setuid to another user)");
            return;
        }
        let Some(nobody) = resolve_user("nobody", None) else {
            println!("skipped: no user nobody");
            return;
        };
        let c = Command {
            user: Some(nobody),
            ..cmd(&format!("test \"$(id -u)\" = {}", nobody.uid), 5000)
        };
        assert_eq!(run(&c).await, Outcome::Exited(0));
        let c = Command {
            user: Some(nobody),
            ..cmd("test \"$(id -u)\" = 0", 5000)
        };
        assert_eq!(run(&c).await, Outcome::Exited(1));
    }

    #[tokio::test]
    async fn monitor_reports_flips() {
        let dir = std::env::temp_dir().join(format!("vrrpd-mon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let flag = dir.join("ok");
        std::fs::write(&flag, "").unwrap();
        let spec = ScriptSpec {
            name: "chk".into(),
            command: cmd(&format!("test -e {}", flag.display()), 2000),
            interval: Duration::from_millis(50),
            rise: 2,
            fall: 2,
            init_fail: false,
        };
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(monitor(spec, tx));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(rx.try_recv().is_err(), "no event while up");
        std::fs::remove_file(&flag).unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert_eq!(
            ev,
            Some(ScriptEvent {
                name: "chk".into(),
                up: false
            })
        );
        std::fs::write(&flag, "").unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert_eq!(
            ev,
            Some(ScriptEvent {
                name: "chk".into(),
                up: true
            })
        );
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }
}
