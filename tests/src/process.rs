//! Child processes that die with their handle: each runs in its own process group, which is
//! signalled on drop (SIGTERM, then SIGKILL after a bounded wait).

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::guard;

/// How long a child gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(2);

/// A spawned process (leader of its own process group), killed on drop.
#[derive(Debug)]
pub struct LabChild {
    child: Child,
    label: String,
    done: Option<ExitStatus>,
}

impl LabChild {
    pub(crate) fn new(child: Child, label: String) -> Self {
        guard::register_group(child.id() as i32);
        Self {
            child,
            label,
            done: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Send `sig` to the leader only (e.g. SIGTERM for a graceful daemon shutdown).
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        if self.done.is_some() {
            return Ok(());
        }
        kill(Pid::from_raw(self.pid() as i32), sig)
    }

    /// Send `sig` to the whole process group (the daemon and the children it forked).
    pub fn signal_group(&self, sig: Signal) -> nix::Result<()> {
        if self.done.is_some() {
            return Ok(());
        }
        killpg(Pid::from_raw(self.pid() as i32), sig)
    }

    /// Non-blocking: has the leader exited?
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.done.is_none() {
            self.done = self.child.try_wait().ok().flatten();
        }
        self.done
    }

    /// Wait up to `timeout` for the leader to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL the whole group now and reap the leader.
    pub fn kill_hard(&mut self) {
        let _ = self.signal_group(Signal::SIGKILL);
        let _ = self.wait_timeout(TERM_GRACE);
    }

    /// SIGTERM the group, SIGKILL it after `grace`; returns once the leader is reaped.
    pub fn stop(&mut self, grace: Duration) {
        if self.try_wait().is_none() {
            let _ = self.signal_group(Signal::SIGTERM);
            if self.wait_timeout(grace).is_none() {
                self.kill_hard();
            }
        }
        // Leftover group members (e.g. forked children) must not outlive the handle.
        let _ = killpg(Pid::from_raw(self.pid() as i32), Signal::SIGKILL);
    }
}

impl Drop for LabChild {
    fn drop(&mut self) {
        self.stop(TERM_GRACE);
        guard::unregister_group(self.pid() as i32);
    }
}
