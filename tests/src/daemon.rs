//! The VRRP daemon under test. vrrpd and keepalived take the same flags and config, so the
//! choice is only which binary to run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::{LabError, Result};
use crate::lab::Host;
use crate::process::LabChild;

/// Which implementation runs on the lab nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Daemon {
    Vrrpd,
    Keepalived,
}

impl fmt::Display for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Daemon::Vrrpd => "vrrpd",
            Daemon::Keepalived => "keepalived",
        })
    }
}

impl FromStr for Daemon {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "vrrpd" => Ok(Daemon::Vrrpd),
            "keepalived" => Ok(Daemon::Keepalived),
            _ => Err(format!("unknown daemon {s:?} (vrrpd|keepalived)")),
        }
    }
}

pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// vrrpd next to the running executable: target/<profile>/vrrpd from target/<profile>/ (the
/// vrrp-lab binary) or target/<profile>/deps/ (test executables).
fn vrrpd_near_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("vrrpd"))
        .find(|p| p.is_file())
}

impl Daemon {
    /// Path of the binary: `VRRPD_BIN` or next to the current executable for vrrpd, `PATH`
    /// (or /usr/sbin) for keepalived.
    pub fn binary(self) -> Result<PathBuf> {
        match self {
            Daemon::Vrrpd => std::env::var_os("VRRPD_BIN")
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .or_else(vrrpd_near_exe)
                .ok_or_else(|| {
                    LabError::DaemonNotFound(
                        "vrrpd (set VRRPD_BIN or `cargo build -p vrrpd`)".into(),
                    )
                }),
            Daemon::Keepalived => {
                on_path("keepalived").ok_or_else(|| LabError::DaemonNotFound("keepalived".into()))
            }
        }
    }

    pub fn available(self) -> bool {
        self.binary().is_ok()
    }

    /// Write `config` into the host's directory and start the daemon in the host's namespace:
    /// `DAEMON [-P] -n -l -f FILE -p PID -r VRRPPID`, output to `<host dir>/<daemon>.log`.
    pub fn start(self, host: &Host, config: &str) -> Result<DaemonProc> {
        self.start_file(host, &format!("{self}.conf"), config)
    }

    /// [`Daemon::start`] with the configuration in `file` (vrrpd reads `*.toml` as its native
    /// TOML).
    pub fn start_file(self, host: &Host, file: &str, config: &str) -> Result<DaemonProc> {
        self.start_opts(host, file, config, None)
    }

    /// [`Daemon::start`] under a soft open-files limit of `nofile` (systemd's default is 1024),
    /// set by `prlimit`, which then runs the daemon in its place.
    pub fn start_nofile(self, host: &Host, config: &str, nofile: u64) -> Result<DaemonProc> {
        self.start_opts(host, &format!("{self}.conf"), config, Some(nofile))
    }

    fn start_opts(
        self,
        host: &Host,
        file: &str,
        config: &str,
        nofile: Option<u64>,
    ) -> Result<DaemonProc> {
        let bin = self.binary()?;
        let conf = host.dir.join(file);
        std::fs::write(&conf, config)?;
        let pid = host.dir.join(format!("{self}.pid"));
        let vrrp_pid = host.dir.join(format!("{self}-vrrp.pid"));
        let log = host.dir.join(format!("{self}.log"));
        for p in [&pid, &vrrp_pid] {
            let _ = std::fs::remove_file(p);
        }
        let bin_s = bin.to_string_lossy().into_owned();
        // keepalived's checker needs kernel IPVS: only its VRRP side (-P) runs here. vrrpd
        // runs everything (VRRP, health checks, balancer).
        let only_vrrp = (self == Daemon::Keepalived).then(|| "-P".to_string());
        let args = only_vrrp.into_iter().chain([
            "-n".into(),
            "-l".into(),
            "-f".into(),
            conf.to_string_lossy().into_owned(),
            "-p".into(),
            pid.to_string_lossy().into_owned(),
            "-r".into(),
            vrrp_pid.to_string_lossy().into_owned(),
        ]);
        // Dumps go to `$TMPDIR` (both daemons, as keepalived): the host's directory, so
        // concurrent tests never read each other's /tmp/keepalived.* files. vrrpd's fault
        // points (a build with `fault-injection`) are armed from the node's `faults`
        // directory ([`DaemonProc::arm`]). `nofile`: the soft open-files limit it starts under.
        let faults = host.dir.join("faults");
        std::fs::create_dir_all(&faults)?;
        let tmp = format!("TMPDIR={}", host.dir.display());
        let env = format!("VRRPD_FAULTS={}", faults.display());
        let mut full = vec![tmp, env];
        if let Some(n) = nofile {
            full.extend(["prlimit".into(), format!("--nofile={n}:"), "--".into()]);
        }
        full.push(bin_s);
        full.extend(args);
        let child = host.spawn("env", &full, Some(&log))?;
        Ok(DaemonProc {
            daemon: self,
            host: host.name.clone(),
            child,
            log,
            tmp_dir: host.dir.clone(),
            vrrp_pid_file: vrrp_pid,
            faults,
        })
    }
}

/// A running daemon on one node (killed on drop).
#[derive(Debug)]
pub struct DaemonProc {
    pub daemon: Daemon,
    pub host: String,
    child: LabChild,
    pub log: PathBuf,
    /// The daemon's `TMPDIR`, where its signal dumps go.
    pub tmp_dir: PathBuf,
    /// `-r`: where the process running the VRRP instances writes its pid.
    vrrp_pid_file: PathBuf,
    /// Where vrrpd's fault points look for arming files.
    faults: PathBuf,
}

impl DaemonProc {
    /// Crash: SIGKILL the daemon and every process it forked (keepalived's VRRP child would
    /// otherwise shut down gracefully when its parent dies).
    pub fn kill_hard(&mut self) {
        self.child.kill_hard();
    }

    /// Graceful stop: SIGTERM to the main process (it tells its children), bounded wait.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = self.child.signal(Signal::SIGTERM);
        let done = self.child.wait_timeout(timeout).is_some();
        self.child.stop(Duration::from_millis(100));
        done
    }

    /// Graceful stop that reports how the daemon exited: SIGTERM to the main process, bounded
    /// wait; None (and a SIGKILL) when it did not exit in time.
    pub fn terminate_status(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = self.child.signal(Signal::SIGTERM);
        let status = self.child.wait_timeout(timeout);
        self.child.stop(Duration::from_millis(100));
        status
    }

    /// How the main process exited, once it has (no wait).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().is_none()
    }

    /// The main process (`-p`): vrrpd's supervisor, keepalived's parent.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The process running the VRRP instances (`-r`: vrrpd's supervised child, keepalived's
    /// VRRP child), once its pid file names a live process other than `not` (bounded wait).
    pub fn vrrp_pid(&self, not: Option<u32>, timeout: Duration) -> Result<u32> {
        let mut found = None;
        let live = crate::wait::wait_until(timeout, Duration::from_millis(5), || {
            found = std::fs::read_to_string(&self.vrrp_pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .filter(|p| Some(*p) != not && Path::new(&format!("/proc/{p}")).exists());
            found.is_some()
        });
        match found {
            Some(p) if live => Ok(p),
            _ => Err(LabError::Timeout(
                timeout,
                format!(
                    "{} to name a running VRRP process other than {not:?}; log:\n{}",
                    self.vrrp_pid_file.display(),
                    self.log_text()
                ),
            )),
        }
    }

    /// Arms vrrpd's fault point `point` (docs/SUPERVISION.md) with `fault` (`panic` or
    /// `stall MS`): the next pass through it fires. Fails, saying why, when the binary was
    /// built without the `fault-injection` feature (it logs that the points are on at start).
    pub fn arm(&self, point: &str, fault: &str) -> Result<()> {
        let on = crate::wait::wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            self.log_text().contains("fault points armed from")
        });
        if !on {
            return Err(LabError::Other(format!(
                "{} has no fault points: build it with `cargo build -p vrrpd --features \
                 fault-injection` (cargo test does); log:\n{}",
                self.daemon,
                self.log_text()
            )));
        }
        std::fs::write(self.faults.join(point), fault)?;
        // A point looks for its file at most every 10 ms (fault_inject::CHECK_EVERY): one
        // passed just before the arming would skip the next pass if it came within that
        // window (seen: a FAULT mail 9.8 ms after the MASTER one went out unfaulted). After
        // this wait, whatever the caller does next meets an armed point.
        std::thread::sleep(Duration::from_millis(25));
        Ok(())
    }

    /// Whether armed fault `point` has fired (its file is consumed when it does).
    pub fn fired(&self, point: &str) -> bool {
        !self.faults.join(point).exists()
    }

    /// SIGKILL the process running the VRRP instances, alone (as the OOM killer does): the
    /// main process lives on. Returns the pid killed.
    pub fn kill_vrrp(&self) -> Result<u32> {
        let pid = self.vrrp_pid(None, Duration::from_secs(5))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL)
            .map_err(|e| LabError::Other(format!("kill -9 {pid}: {e}")))?;
        Ok(pid)
    }

    /// The daemon's log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (bounded, sampled every 10 ms) until the daemon's log holds `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        crate::wait::wait_until(timeout, Duration::from_millis(10), || {
            self.log_text().contains(needle)
        })
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Where the daemon writes dump `file` (`keepalived.data`, `.stats`, `.json`).
    pub fn dump_path(&self, file: &str) -> PathBuf {
        self.tmp_dir.join(file)
    }
}
