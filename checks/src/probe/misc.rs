//! MISC_CHECK: run `misc_path` in its own process group, kill the group at `misc_timeout`,
//! judge the exit status (with `misc_dynamic` weights).

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Group, Pid, User};
use tokio::process::Command;

use crate::health::Outcome;
use crate::probe::PrepareError;
use crate::spec::{MiscCheck, Timers};

/// How the script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this status.
    Code(i32),
    /// Killed by this signal (not by us).
    Signal(i32),
    /// Still running at `misc_timeout`; its process group was killed.
    TimedOut,
    /// Could not be started.
    SpawnFailed,
}

/// keepalived's verdict: 0 up; with `misc_dynamic` 2..=255 up with weight `code - 2`; anything
/// else down. With `misc_dynamic`, 0 restores the configured weight.
pub fn verdict(exit: Exit, dynamic: bool, configured_weight: u32) -> Outcome {
    match exit {
        Exit::Code(0) => Outcome::up("exited 0").with_weight(dynamic.then_some(configured_weight)),
        Exit::Code(c) if dynamic && (2..=255).contains(&c) => {
            Outcome::up(format!("exited {c}")).with_weight(Some(c as u32 - 2))
        }
        Exit::Code(c) => Outcome::down(format!("exited {c}")),
        Exit::Signal(s) => Outcome::down(format!("killed by signal {s}")),
        Exit::TimedOut => Outcome::down("misc_timeout: process group killed"),
        Exit::SpawnFailed => Outcome::down("could not start script"),
    }
}

/// A prepared MISC_CHECK.
pub struct MiscProbe {
    argv: Vec<String>,
    timeout: Duration,
    dynamic: bool,
    weight: u32,
    ids: Option<(u32, u32)>,
}

impl MiscProbe {
    /// Prepare: split argv, default `misc_timeout` to `delay_loop`, look up `user`.
    pub fn new(spec: &MiscCheck, timers: &Timers, weight: u32) -> Result<Self, PrepareError> {
        let argv = spec
            .argv()
            .map_err(|e| PrepareError::Invalid(format!("misc_path: {e}")))?;
        if argv.is_empty() {
            return Err(PrepareError::EmptyMiscPath);
        }
        let ids = match &spec.user {
            None => None,
            Some(name) => {
                let user = User::from_name(name)
                    .ok()
                    .flatten()
                    .ok_or_else(|| PrepareError::User(name.clone()))?;
                let gid = match &spec.group {
                    Some(g) => {
                        Group::from_name(g)
                            .ok()
                            .flatten()
                            .ok_or_else(|| PrepareError::User(g.clone()))?
                            .gid
                    }
                    None => user.gid,
                };
                Some((user.uid.as_raw(), gid.as_raw()))
            }
        };
        Ok(Self {
            argv,
            timeout: spec.misc_timeout.unwrap_or(timers.delay_loop),
            dynamic: spec.misc_dynamic,
            weight,
            ids,
        })
    }

    /// Run the script once.
    pub async fn run(&self) -> Outcome {
        verdict(self.execute().await, self.dynamic, self.weight)
    }

    async fn execute(&self) -> Exit {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(script = %self.argv[0], "MISC_CHECK spawn: {e}");
                return Exit::SpawnFailed;
            }
        };
        // Kills the script's whole group if this future is dropped (scheduler shutdown) or
        // the script overruns `misc_timeout`; disarmed when the script exits by itself.
        let mut group = GroupKill(child.id());
        match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) => {
                group.0 = None;
                use std::os::unix::process::ExitStatusExt;
                match (status.code(), status.signal()) {
                    (Some(c), _) => Exit::Code(c),
                    (None, Some(s)) => Exit::Signal(s),
                    _ => Exit::SpawnFailed,
                }
            }
            Ok(Err(_)) => Exit::SpawnFailed,
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
                Exit::TimedOut
            }
        }
    }
}

/// SIGKILL to a script's process group. The script leads its own group (`process_group(0)`),
/// so this reaches everything it forked, not just the script.
struct GroupKill(Option<u32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_exit_codes() {
        assert!(verdict(Exit::Code(0), false, 1).ok);
        assert_eq!(verdict(Exit::Code(0), false, 1).weight, None);
        assert!(!verdict(Exit::Code(1), false, 1).ok);
        assert!(
            !verdict(Exit::Code(5), false, 1).ok,
            "non-dynamic: any non-zero is down"
        );
        assert!(!verdict(Exit::TimedOut, false, 1).ok);
        assert!(!verdict(Exit::Signal(9), false, 1).ok);
    }

    #[test]
    fn dynamic_weights() {
        let o = verdict(Exit::Code(12), true, 1);
        assert!(o.ok);
        assert_eq!(o.weight, Some(10));
        assert_eq!(verdict(Exit::Code(2), true, 1).weight, Some(0));
        assert_eq!(verdict(Exit::Code(255), true, 1).weight, Some(253));
        assert_eq!(
            verdict(Exit::Code(0), true, 7).weight,
            Some(7),
            "0 restores configured weight"
        );
        assert!(!verdict(Exit::Code(1), true, 1).ok);
    }
}
