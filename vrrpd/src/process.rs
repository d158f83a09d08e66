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

/// systemd's readiness protocol (sd_notify(3)) for a `Type=notify` unit, as keepalived's:
/// `READY=1` once the configuration runs, `RELOADING=1` then `READY=1` around a reload,
/// `STOPPING=1` when releasing. Does nothing outside systemd (no `$NOTIFY_SOCKET`).
/// In a supervised child, the states go to the parent, which relays them: systemd takes them
/// from the main process only ([`crate::supervisor`]).
#[derive(Debug, Default)]
pub struct SystemdNotify {
    addr: Option<std::os::unix::net::SocketAddr>,
    relay: bool,
}

impl SystemdNotify {
    /// Takes `$NOTIFY_SOCKET` out of the environment, so the scripts we run cannot speak to
    /// systemd in our name. Call it before any other thread starts.
    pub fn from_env() -> Self {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Self::default();
        };
        std::env::remove_var("NOTIFY_SOCKET");
        Self::to(&path)
    }

    /// Notifies the socket `path` names (`@name`: an abstract socket).
    pub fn to(path: &std::ffi::OsStr) -> Self {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;
        let addr = match path.as_bytes().split_first() {
            Some((b'@', name)) => std::os::unix::net::SocketAddr::from_abstract_name(name),
            _ => std::os::unix::net::SocketAddr::from_pathname(path),
        };
        match addr {
            Ok(a) => Self {
                addr: Some(a),
                relay: false,
            },
            Err(e) => {
                tracing::warn!(error = %e, "NOTIFY_SOCKET {path:?} unusable; not notifying systemd");
                Self::default()
            }
        }
    }

    /// A supervised child's: through its parent.
    pub fn via_supervisor() -> Self {
        Self {
            addr: None,
            relay: true,
        }
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines); a failure is logged, never fatal.
    pub fn send(&self, state: &str) {
        if self.relay {
            crate::supervisor::link::notify(state);
            return;
        }
        let Some(addr) = &self.addr else { return };
        let sent = std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.send_to_addr(state.as_bytes(), addr));
        if let Err(e) = sent {
            tracing::warn!(error = %e, "notifying systemd failed");
        }
    }
}

/// systemd's watchdog interval for this process (sd_watchdog_enabled(3)): `WATCHDOG_USEC`,
/// unless `WATCHDOG_PID` names another process. Both are taken out of the environment so the
/// scripts we run do not see them. Call it before any other thread starts.
pub fn watchdog_from_env() -> Option<std::time::Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    std::env::remove_var("WATCHDOG_USEC");
    std::env::remove_var("WATCHDOG_PID");
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    Some(std::time::Duration::from_micros(usec))
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

    #[test]
    fn systemd_notify_reaches_path_and_abstract_sockets() {
        use std::os::linux::net::SocketAddrExt;
        let dir = std::env::temp_dir().join(format!("vrrpd-sdn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        SystemdNotify::to(path.as_os_str()).send("READY=1");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("vrrpd-sdn-{}", std::process::id());
        let abs = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = std::os::unix::net::UnixDatagram::bind_addr(&abs).unwrap();
        SystemdNotify::to(std::ffi::OsStr::new(&format!("@{name}"))).send("STOPPING=1");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        // Outside systemd: nothing to do, nothing fails.
        SystemdNotify::default().send("READY=1");
        std::fs::remove_dir_all(&dir).ok();
    }
}
