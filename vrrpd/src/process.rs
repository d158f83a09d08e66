//! Process plumbing keepalived users rely on: pid files, forking, log destination.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A pid file that is removed again when the daemon exits.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

/// Why a pid file could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("{path}: daemon already running with pid {pid}")]
    Running { path: PathBuf, pid: i32 },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl PidFile {
    /// Writes our pid to `path`, refusing when it names a process that is still alive
    /// (keepalived refuses a second daemon the same way). A stale file is replaced.
    pub fn create(path: &Path) -> Result<Self, PidFileError> {
        let io_err = |source| PidFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Ok(text) = fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                let alive = pid > 0
                    && pid != std::process::id() as i32
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
                if alive {
                    return Err(PidFileError::Running {
                        path: path.to_path_buf(),
                        pid,
                    });
                }
            }
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut f = fs::File::create(path).map_err(io_err)?;
        // 0644 whatever the umask, as keepalived writes its pid files.
        f.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(io_err)?;
        writeln!(f, "{}", std::process::id()).map_err(io_err)?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Clears the signal mask inherited from whoever started us. A parent that blocks SIGTERM
/// (a supervisor, a test harness waiting in `sigwait`) passes the block on through exec, and a
/// blocked SIGTERM would never reach our handler: the daemon would not release on stop.
/// keepalived resets its mask the same way. Must run before any thread starts.
pub fn reset_signal_mask() -> nix::Result<()> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// Until the daemon's handlers are in place, a dump request (SIGUSR1, SIGUSR2, the JSON and
/// STATS_CLEAR signals) would kill it (their default action): ignore them meanwhile. The
/// handlers the daemon installs later replace this.
pub fn ignore_dump_signals() {
    for sig in dump_signals() {
        // SAFETY: SIG_IGN runs no code of ours in signal context, so nothing here can be
        // async-signal-unsafe; only the disposition of these four signals changes.
        if unsafe { libc::signal(sig, libc::SIG_IGN) } == libc::SIG_ERR {
            let e = std::io::Error::last_os_error();
            tracing::warn!(signal = sig, error = %e, "cannot ignore a dump signal during startup");
        }
    }
}

/// `-s NAME` / `net_namespace NAME`: moves this process into the named network namespace
/// (`/run/netns/NAME`, as `ip netns add` makes them; like keepalived 2.2.7, a missing one is
/// an error, not created), with its own view of `/sys` as `ip netns exec` gives, so interface
/// names read there are the namespace's. Must run before any thread starts: threads made
/// later inherit the namespace, earlier ones would not.
pub fn enter_netns(name: &str) -> Result<(), String> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    use nix::sched::{setns, unshare, CloneFlags};
    let path = format!("/run/netns/{name}");
    let f = fs::File::open(&path).map_err(|e| format!("Failed to open {path}: {e}"))?;
    setns(f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("Unable to set network namespace {name}: {e}"))?;
    // /sys shows the namespace that mounted it: a private mount table with a fresh sysfs.
    let remount = || -> nix::Result<()> {
        unshare(CloneFlags::CLONE_NEWNS)?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )?;
        umount2("/sys", MntFlags::MNT_DETACH)?;
        mount(
            Some(name),
            "/sys",
            Some("sysfs"),
            MsFlags::empty(),
            None::<&str>,
        )
    };
    if let Err(e) = remount() {
        tracing::warn!(error = %e, "cannot mount the namespace's /sys; interface names in the dumps may be wrong");
    }
    Ok(())
}

/// Detaches from the terminal like keepalived without `-n`. Must run before any thread starts.
pub fn daemonize() -> nix::Result<()> {
    nix::unistd::daemon(false, false)
}

/// The daemon's exit statuses that its supervisor acts on ([`crate::supervisor`]); the
/// binary's others (usage, `-t`) are its own.
pub mod exit {
    /// Cannot run at all (keepalived's `KEEPALIVED_EXIT_FATAL`): not started again.
    pub const FATAL: u8 = 3;
    /// A file it cannot run (keepalived's `KEEPALIVED_EXIT_CONFIG`): not started again.
    pub const CONFIG: u8 = 2;
    /// A component that must not fail did (keepalived's `KEEPALIVED_EXIT_PROGRAM_ERROR`): its
    /// supervisor releases for it and starts it again.
    pub const PROGRAM_ERROR: u8 = 70;
}

/// The signal keepalived uses for each control function (`--signum`).
pub fn signum(func: &str) -> Option<i32> {
    Some(match func {
        "STOP" => libc::SIGTERM,
        "RELOAD" => libc::SIGHUP,
        "DATA" => libc::SIGUSR1,
        "STATS" => libc::SIGUSR2,
        "STATS_CLEAR" => sig_stats_clear(),
        "JSON" => sig_json(),
        _ => return None,
    })
}

/// keepalived's `SIGJSON`: write the JSON dumps.
pub fn sig_json() -> i32 {
    libc::SIGRTMIN() + 2
}

/// keepalived's `SIGSTATS_CLEAR`: write the stats file, then zero the counters.
pub fn sig_stats_clear() -> i32 {
    libc::SIGRTMAX() - 1
}

/// The signals that ask for a dump: their default action would kill the daemon.
pub fn dump_signals() -> [i32; 4] {
    [libc::SIGUSR1, libc::SIGUSR2, sig_json(), sig_stats_clear()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inherited_signal_block_is_cleared() {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        // Block SIGTERM in a fresh thread (masks are per thread), then reset.
        std::thread::spawn(|| {
            let mut term = SigSet::empty();
            term.add(Signal::SIGTERM);
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&term), None).unwrap();
            assert!(SigSet::thread_get_mask().unwrap().contains(Signal::SIGTERM));
            reset_signal_mask().unwrap();
            assert!(!SigSet::thread_get_mask().unwrap().contains(Signal::SIGTERM));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn pid_file_written_and_removed() {
        let dir = std::env::temp_dir().join(format!("vrrpd-pid-{}", std::process::id()));
        let path = dir.join("x.pid");
        {
            let _p = PidFile::create(&path).unwrap();
            let text = fs::read_to_string(&path).unwrap();
            assert_eq!(text.trim(), std::process::id().to_string());
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        assert!(!path.exists());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn live_pid_refused_stale_pid_replaced() {
        let dir = std::env::temp_dir().join(format!("vrrpd-pid2-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("y.pid");
        // pid 1 is always alive.
        fs::write(&path, "1\n").unwrap();
        assert!(matches!(
            PidFile::create(&path),
            Err(PidFileError::Running { pid: 1, .. })
        ));
        // A pid beyond pid_max cannot be alive.
        fs::write(&path, "2147483646\n").unwrap();
        let p = PidFile::create(&path).unwrap();
        drop(p);
        let _ = fs::remove_dir_all(dir);
    }
}
