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

/// Detaches from the terminal like keepalived without `-n`. Must run before any thread starts.
pub fn daemonize() -> nix::Result<()> {
    nix::unistd::daemon(false, false)
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
