//! Notifications on state changes: `notify_master|backup|fault|stop`, the generic `notify`, and
//! the notify FIFOs — keepalived.conf(5) formats.
//!
//! - The state script (`notify_master` …) runs first, as configured, then the generic
//!   `notify` with four arguments appended: `INSTANCE|GROUP`, the name, the target state
//!   (`MASTER|BACKUP|FAULT|STOP|DELETED`) and the priority.
//! - Per instance (one [`Notifier`]), scripts run one at a time in transition order: a queue
//!   feeds one task that waits for each script (up to its timeout, whole process group killed
//!   after), so a slow `notify_backup` can never overtake or overlap the `notify_master` that
//!   follows it.
//! - The FIFOs get one line per transition, `INSTANCE "VI_1" MASTER 150`, written at once and
//!   in order, and one per instance [`Event`]: a Master hearing a lower priority
//!   (`MASTER_RX_LOWER_PRI`, with `notify_master_rx_lower_pri` run as configured, no
//!   arguments added) and, with `notify_priority_changes`, each change of the effective
//!   priority (`MASTER_PRIORITY` while Master, else `BACKUP_PRIORITY`). keepalived 2.2.7 was
//!   measured for all three.

pub mod fifo;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

pub use fifo::{Fifo, FifoError};

use crate::track::script::{self, Command, Outcome};

/// Whose notification: keepalived's first generic argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Instance,
    Group,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Instance => "INSTANCE",
            Kind::Group => "GROUP",
        }
    }
}

/// The target state of a transition, as notify scripts and the FIFO spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyState {
    Master,
    Backup,
    Fault,
    Stop,
    Deleted,
}

impl NotifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyState::Master => "MASTER",
            NotifyState::Backup => "BACKUP",
            NotifyState::Fault => "FAULT",
            NotifyState::Stop => "STOP",
            NotifyState::Deleted => "DELETED",
        }
    }
}

/// The notify settings of one instance or sync group (the config layer maps onto this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySpec {
    pub kind: Kind,
    pub name: String,
    pub master: Option<Command>,
    pub backup: Option<Command>,
    pub fault: Option<Command>,
    pub stop: Option<Command>,
    /// `notify`: called after the state script with the four extra arguments.
    pub generic: Option<Command>,
    /// `notify_master_rx_lower_pri`: run as configured on [`Event::MasterRxLowerPri`].
    pub master_rx_lower_pri: Option<Command>,
    /// `notify_priority_changes`: FIFO lines for [`Event::MasterPriority`] /
    /// [`Event::BackupPriority`].
    pub priority_changes: bool,
}

impl NotifySpec {
    /// The commands to run for `state`, in order, with their final argv.
    pub fn commands(&self, state: NotifyState, priority: u8) -> Vec<Command> {
        let specific = match state {
            NotifyState::Master => &self.master,
            NotifyState::Backup => &self.backup,
            NotifyState::Fault => &self.fault,
            NotifyState::Stop => &self.stop,
            NotifyState::Deleted => &None,
        };
        let mut cmds: Vec<Command> = specific.iter().cloned().collect();
        if let Some(g) = &self.generic {
            let mut g = g.clone();
            g.argv.extend([
                self.kind.as_str().to_string(),
                self.name.clone(),
                state.as_str().to_string(),
                priority.to_string(),
            ]);
            cmds.push(g);
        }
        cmds
    }
}

/// keepalived's FIFO line: `INSTANCE "VI_1" MASTER 150` plus a newline.
pub fn fifo_line(kind: Kind, name: &str, state: NotifyState, priority: u8) -> String {
    fifo::vrrp_line(kind.as_str(), name, state.as_str(), priority)
}

/// What happened to an instance besides a transition (FIFO words, as keepalived's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The Master heard an advert with a lower priority (split brain healing).
    MasterRxLowerPri,
    /// The effective priority changed while Master.
    MasterPriority,
    /// The effective priority changed in any other state.
    BackupPriority,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::MasterRxLowerPri => "MASTER_RX_LOWER_PRI",
            Event::MasterPriority => "MASTER_PRIORITY",
            Event::BackupPriority => "BACKUP_PRIORITY",
        }
    }
}

/// One instance's (or group's) notifier: FIFO lines now, scripts in order on a task.
pub struct Notifier {
    spec: Arc<NotifySpec>,
    fifos: Vec<Arc<Fifo>>,
    tx: mpsc::UnboundedSender<Vec<Command>>,
    task: JoinHandle<()>,
}

impl Notifier {
    /// Starts the script task on the current runtime. `fifos`: e.g. the global
    /// `vrrp_notify_fifo` and a group's `notify_fifo`.
    pub fn spawn(spec: NotifySpec, fifos: Vec<Arc<Fifo>>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<Vec<Command>>();
        let component = format!("notify {} {}", spec.kind.as_str(), spec.name);
        let task = crate::components::spawn(component, rx, |rx| {
            Box::pin(async move {
                while let Some(cmds) = rx.recv().await {
                    for c in cmds {
                        fault_inject::point("notifier");
                        let outcome = script::run(&c).await;
                        if outcome != Outcome::Exited(0) {
                            warn!(script = ?c.argv, ?outcome, "notify script failed");
                        } else {
                            debug!(script = ?c.argv, "notify script done");
                        }
                    }
                }
            })
        });
        Self {
            spec: Arc::new(spec),
            fifos,
            tx,
            task,
        }
    }

    /// Reports a transition to `state` with `priority`.
    pub fn notify(&self, state: NotifyState, priority: u8) {
        let line = fifo_line(self.spec.kind, &self.spec.name, state, priority);
        for f in &self.fifos {
            f.write_line(&line);
        }
        let cmds = self.spec.commands(state, priority);
        if !cmds.is_empty() {
            // Fails only if the task is gone (runtime shutting down): nothing left to run it.
            let _ = self.tx.send(cmds);
        }
    }

    /// The state line alone, on the FIFOs (`fifo_write_vrrp_states_on_reload`).
    pub fn state_line(&self, state: NotifyState, priority: u8) {
        let line = fifo_line(self.spec.kind, &self.spec.name, state, priority);
        for f in &self.fifos {
            f.write_line(&line);
        }
    }

    /// Reports `event` with the instance's `priority`: a FIFO line (priority changes only with
    /// `notify_priority_changes`) and, for [`Event::MasterRxLowerPri`], its script.
    pub fn event(&self, event: Event, priority: u8) {
        let script = match event {
            Event::MasterRxLowerPri => self.spec.master_rx_lower_pri.as_ref(),
            Event::MasterPriority | Event::BackupPriority => {
                if !self.spec.priority_changes {
                    return;
                }
                None
            }
        };
        let line = fifo::vrrp_line(
            self.spec.kind.as_str(),
            &self.spec.name,
            event.as_str(),
            priority,
        );
        for f in &self.fifos {
            f.write_line(&line);
        }
        if let Some(c) = script {
            let _ = self.tx.send(vec![c.clone()]);
        }
    }

    /// Waits until every queued script has run (e.g. `notify_stop` before exiting).
    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::PathBuf;
    use std::time::Duration;

    fn sh(script: &str) -> Command {
        Command {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into(), "sh".into()],
            user: None,
            timeout: Duration::from_secs(10),
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vrrpd-notify-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn arguments_and_fifo_format() {
        let spec = NotifySpec {
            kind: Kind::Instance,
            name: "VI_1".into(),
            master: Some(sh("m")),
            backup: None,
            fault: None,
            stop: None,
            generic: Some(Command {
                argv: vec!["/usr/local/bin/n".into(), "extra".into()],
                ..sh("")
            }),
            master_rx_lower_pri: None,
            priority_changes: false,
        };
        let cmds = spec.commands(NotifyState::Master, 150);
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0].argv[2], "m");
        assert_eq!(
            cmds[1].argv,
            [
                "/usr/local/bin/n",
                "extra",
                "INSTANCE",
                "VI_1",
                "MASTER",
                "150"
            ]
        );
        assert_eq!(spec.commands(NotifyState::Backup, 100).len(), 1);
        assert_eq!(
            fifo_line(Kind::Instance, "VI_1", NotifyState::Master, 100),
            "INSTANCE \"VI_1\" MASTER 100\n"
        );
        assert_eq!(
            fifo_line(Kind::Group, "VG", NotifyState::Fault, 0),
            "GROUP \"VG\" FAULT 0\n"
        );
    }

    /// Real scripts appending to one file: each run writes "start X" then (after a pause for
    /// the first ones) "end X". Strict alternation in transition order proves no overlap and
    /// no reordering.
    #[tokio::test]
    async fn scripts_run_one_at_a_time_in_order() {
        let dir = tmpdir("order");
        let log = dir.join("log");
        let step = |tag: &str, pause: &str| {
            sh(&format!(
                "echo start {tag} >> {l}; sleep {pause}; echo end {tag} >> {l}",
                l = log.display()
            ))
        };
        let generic = sh(&format!(
            "echo start n-$3-$4 >> {l}; echo end n-$3-$4 >> {l}",
            l = log.display()
        ));
        let spec = NotifySpec {
            kind: Kind::Instance,
            name: "VI_1".into(),
            master: Some(step("master", "0.3")),
            backup: Some(step("backup", "0.1")),
            fault: Some(step("fault", "0")),
            stop: Some(step("stop", "0")),
            generic: Some(generic),
            master_rx_lower_pri: None,
            priority_changes: false,
        };
        let n = Notifier::spawn(spec, vec![]);
        n.notify(NotifyState::Master, 150);
        n.notify(NotifyState::Backup, 150);
        n.notify(NotifyState::Fault, 150);
        n.notify(NotifyState::Master, 140);
        n.notify(NotifyState::Stop, 140);
        tokio::time::timeout(Duration::from_secs(20), n.finish())
            .await
            .expect("scripts finished");
        let text = std::fs::read_to_string(&log).unwrap();
        let want: Vec<String> = [
            "master",
            "n-MASTER-150",
            "backup",
            "n-BACKUP-150",
            "fault",
            "n-FAULT-150",
            "master",
            "n-MASTER-140",
            "stop",
            "n-STOP-140",
        ]
        .iter()
        .flat_map(|t| [format!("start {t}"), format!("end {t}")])
        .collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), want);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// FIFO lines come at once and in order (a slow script does not hold them back);
    /// priority lines only with `notify_priority_changes`; `notify_master_rx_lower_pri` runs
    /// without arguments, after the scripts queued before it.
    #[tokio::test]
    async fn fifo_lines_and_events_in_order() {
        let dir = tmpdir("fifo");
        let path = dir.join("fifo");
        let log = dir.join("log");
        let fifo = Arc::new(Fifo::open(&path, None).unwrap());
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let spec = |priority_changes| NotifySpec {
            kind: Kind::Instance,
            name: "VI_1".into(),
            master: Some(sh(&format!("sleep 1; echo master >> {}", log.display()))),
            backup: None,
            fault: None,
            stop: None,
            generic: None,
            master_rx_lower_pri: Some(sh(&format!("echo \"rx $#\" >> {}", log.display()))),
            priority_changes,
        };
        let n = Notifier::spawn(spec(true), vec![fifo.clone()]);
        n.event(Event::BackupPriority, 130);
        n.notify(NotifyState::Master, 130);
        n.event(Event::MasterRxLowerPri, 130);
        n.event(Event::MasterPriority, 30);
        n.notify(NotifyState::Backup, 30);
        let mut buf = String::new();
        reader.read_to_string(&mut buf).ok(); // EAGAIN once drained
        assert_eq!(
            buf,
            "INSTANCE \"VI_1\" BACKUP_PRIORITY 130\n\
             INSTANCE \"VI_1\" MASTER 130\n\
             INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 130\n\
             INSTANCE \"VI_1\" MASTER_PRIORITY 30\n\
             INSTANCE \"VI_1\" BACKUP 30\n"
        );
        tokio::time::timeout(Duration::from_secs(20), n.finish())
            .await
            .expect("scripts finished");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "master\nrx 0\n");

        let n = Notifier::spawn(spec(false), vec![fifo.clone()]);
        n.event(Event::MasterPriority, 30);
        n.event(Event::BackupPriority, 30);
        n.event(Event::MasterRxLowerPri, 30);
        let mut buf = String::new();
        reader.read_to_string(&mut buf).ok();
        assert_eq!(buf, "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 30\n");
        n.finish().await;
        fifo.unlink();
        std::fs::remove_dir_all(&dir).ok();
    }
}
