//! What the daemon changes on the host beyond the addresses, routes and rules it holds as
//! Master (those are the supervisor's to release): interface sysctls (`promote_secondaries`,
//! a VMAC parent's `arp_*`), NIC offloads (the balancer turns GRO off), nftables tables
//! (`no_accept`, the balancer's), VMAC interfaces. Each component puts back what it changed
//! when it stops; this module writes each change down *before* it is made, in a small state
//! file next to the pid file, so that after a crash (SIGKILL, OOM, a restarted child) the next
//! start puts the host back as it was found first. keepalived 2.2.7 restores on a clean stop
//! only.
//!
//! Each change is known by what it changes ([`Change::key`]): recording one already recorded
//! keeps the first, older value (a sysctl set twice was, before us, what the first record
//! says), so a reload that hands an interface over records nothing new.

pub mod sysctl;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use lbcore::dataplane::offload::{self, Offload};
use lbcore::dataplane::{HostChange, HostLedger};

/// One change to the host, with what undoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A sysctl file (`/proc/sys/...`) and the value it had.
    Sysctl { path: PathBuf, was: String },
    /// A NIC offload (ethtool's name: `gro`) and whether it was on.
    Offload {
        ifname: String,
        offload: String,
        was: bool,
    },
    /// An nftables table we created, whole.
    NftTable { family: String, name: String },
    /// A macvlan (VMAC) we created, known by its name and MAC: an interface of that name with
    /// another MAC is not ours and is left alone.
    Link { name: String, mac: String },
}

impl Change {
    /// What the change is to: one record per thing changed.
    fn key(&self) -> (u8, &str, &str) {
        match self {
            Change::Sysctl { path, .. } => (0, path.to_str().unwrap_or_default(), ""),
            Change::Offload {
                ifname, offload, ..
            } => (1, ifname, offload),
            Change::NftTable { family, name } => (2, family, name),
            Change::Link { name, .. } => (3, name, ""),
        }
    }

    /// Puts the host back (synchronous, except links: see [`recover`]).
    fn undo(&self) -> Result<(), String> {
        match self {
            Change::Sysctl { path, was } => sysctl::set(path, was).map_err(|e| e.to_string()),
            Change::Offload {
                ifname,
                offload,
                was,
            } => {
                let what = Offload::from_name(offload).ok_or("unknown offload")?;
                match offload::set(ifname, what, *was) {
                    // The interface went away with whatever we set on it.
                    Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
                    r => r.map_err(|e| e.to_string()),
                }
            }
            Change::NftTable { family, name } => lbcore::dataplane::nft::apply(&format!(
                "table {family} {name} {{}}\ndelete table {family} {name}\n"
            ))
            .map_err(|e| e.to_string()),
            Change::Link { .. } => Err("links are removed by recover()".into()),
        }
    }
}

/// The recorded changes and where they are kept.
#[derive(Debug)]
struct Journal {
    path: PathBuf,
    changes: Vec<Change>,
}

impl Journal {
    /// Reads `path` and puts back whatever a previous run left recorded there (it died before
    /// it could); what cannot be put back stays recorded. Returns the journal and what was
    /// found.
    async fn open(path: &Path) -> (Self, Vec<Change>) {
        let left: Vec<Change> = match std::fs::read(path) {
            Ok(text) => serde_json::from_slice(&text).unwrap_or_else(|e| {
                warn!(path = %path.display(), error = %e, "host state file unreadable; ignored");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        let mut j = Self {
            path: path.to_path_buf(),
            changes: left.clone(),
        };
        j.put_back("put back what a previous run left").await;
        (j, left)
    }

    /// Records `c` unless its thing is recorded already (the first value is the host's).
    fn record(&mut self, c: Change) {
        if self.changes.iter().all(|x| x.key() != c.key()) {
            self.changes.push(c);
            self.save();
        }
    }

    fn undone(&mut self, c: &Change) {
        let before = self.changes.len();
        self.changes.retain(|x| x.key() != c.key());
        if self.changes.len() != before {
            self.save();
        }
    }

    /// Undoes everything recorded, last first; what fails stays recorded.
    async fn put_back(&mut self, what: &str) {
        let mut failed = Vec::new();
        for c in std::mem::take(&mut self.changes).into_iter().rev() {
            let r = match &c {
                Change::Link { name, mac } => remove_link(name, mac).await,
                c => c.undo(),
            };
            match r {
                Ok(()) => info!(change = ?c, "{what}"),
                Err(e) => {
                    warn!(change = ?c, error = %e, "cannot {what}");
                    failed.push(c);
                }
            }
        }
        failed.reverse();
        self.changes = failed;
        self.save();
    }

    /// Writes the file (atomically: a crash mid-write leaves the previous one), or removes it
    /// when nothing is recorded.
    fn save(&self) {
        let r = if self.changes.is_empty() {
            match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        } else {
            let tmp = self.path.with_extension("tmp");
            serde_json::to_vec_pretty(&self.changes)
                .map_err(std::io::Error::other)
                .and_then(|text| std::fs::write(&tmp, text))
                .and_then(|()| std::fs::rename(&tmp, &self.path))
        };
        if let Err(e) = r {
            warn!(path = %self.path.display(), error = %e, "cannot write the host state file");
        }
    }
}

/// The daemon's journal, once [`recover`] opened it.
static JOURNAL: Mutex<Option<Journal>> = Mutex::new(None);

fn journal() -> std::sync::MutexGuard<'static, Option<Journal>> {
    JOURNAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The state file of the daemon whose pid file is `pid_file` (`/run/vrrpd.pid` →
/// `/run/vrrpd.host`): one per daemon, as its control socket.
pub fn state_file(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("host")
}

/// At start: puts back whatever a previous run left recorded in `path`, then records this
/// run's changes there. Returns what the previous run had left.
pub async fn recover(path: &Path) -> Vec<Change> {
    let (j, left) = Journal::open(path).await;
    *journal() = Some(j);
    left
}

/// Records `c` before it is made (nothing without [`recover`]: tests, tools).
pub fn record(c: Change) {
    if let Some(j) = journal().as_mut() {
        j.record(c);
    }
}

/// `c` is put back: forget it.
pub fn undone(c: &Change) {
    if let Some(j) = journal().as_mut() {
        j.undone(c);
    }
}

/// At stop, after every component put back its own: whatever is still recorded (a component
/// that could not, or died) is put back now.
pub async fn restore_all() {
    let Some(mut j) = journal().take() else {
        return;
    };
    j.put_back("put back at stop").await;
    *journal() = Some(j);
}

/// Deletes interface `name` if it is still the one we made (its MAC is `mac`).
async fn remove_link(name: &str, mac: &str) -> Result<(), String> {
    let sys = Path::new("/sys/class/net").join(name);
    let Ok(found) = std::fs::read_to_string(sys.join("address")) else {
        return Ok(()); // gone already
    };
    if !found.trim().eq_ignore_ascii_case(mac) {
        return Err(format!("{name} now has MAC {}: not ours", found.trim()));
    }
    let index: u32 = std::fs::read_to_string(sys.join("ifindex"))
        .ok()
        .and_then(|i| i.trim().parse().ok())
        .ok_or("no ifindex")?;
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let r = handle.link().del(index).execute().await;
    conn.abort();
    r.map_err(|e| e.to_string())
}

/// The balancer's changes, into the journal.
#[derive(Debug)]
struct Ledger;

impl Ledger {
    fn change(c: &HostChange) -> Change {
        match c {
            HostChange::Offload {
                ifname,
                offload,
                was,
            } => Change::Offload {
                ifname: ifname.clone(),
                offload: offload.name().into(),
                was: *was,
            },
            HostChange::NftTable { family, name } => Change::NftTable {
                family: (*family).into(),
                name: (*name).into(),
            },
        }
    }
}

impl HostLedger for Ledger {
    fn changing(&self, c: &HostChange) {
        record(Self::change(c));
    }

    fn undone(&self, c: &HostChange) {
        undone(&Self::change(c));
    }
}

/// What the balancer's dataplane tells of its changes to the host.
pub fn ledger() -> Arc<dyn HostLedger> {
    Arc::new(Ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Vec<Change> {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A journal of its own (the daemon's is process-wide): recorded before the change, the
    /// first value kept, put back by the next start after a crash, or at stop.
    #[test]
    fn records_first_values_persists_and_puts_back_after_a_crash() {
        let dir = std::env::temp_dir().join(format!("vrrpd-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = state_file(&dir.join("vrrpd.pid"));
        assert_eq!(state, dir.join("vrrpd.host"));
        let knob = dir.join("knob");
        std::fs::write(&knob, "0").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (mut j, left) = rt.block_on(Journal::open(&state));
        assert!(left.is_empty());
        assert!(!state.exists(), "nothing recorded, no file");

        let first = Change::Sysctl {
            path: knob.clone(),
            was: "0".into(),
        };
        j.record(first.clone());
        std::fs::write(&knob, "1").unwrap();
        j.record(Change::Sysctl {
            path: knob.clone(),
            was: "1".into(),
        });
        assert_eq!(read(&state), vec![first.clone()]);

        // The process dies here; the next start puts the value back and forgets it.
        drop(j);
        let (mut j, left) = rt.block_on(Journal::open(&state));
        assert_eq!(left, vec![first.clone()]);
        assert_eq!(std::fs::read_to_string(&knob).unwrap(), "0");
        assert!(!state.exists());

        // A clean stop: undone by its owner, nothing left; put_back does the rest.
        j.record(first.clone());
        j.undone(&first);
        assert!(!state.exists());
        std::fs::write(&knob, "1").unwrap();
        j.record(first);
        rt.block_on(j.put_back("put back at stop"));
        assert_eq!(std::fs::read_to_string(&knob).unwrap(), "0");
        assert!(!state.exists());

        // A link that is not ours any more (another MAC) is left alone and kept on record.
        let lo = Change::Link {
            name: "lo".into(),
            mac: "02:00:5e:00:01:33".into(),
        };
        std::fs::write(
            &state,
            serde_json::to_vec(std::slice::from_ref(&lo)).unwrap(),
        )
        .unwrap();
        let (_j, left) = rt.block_on(Journal::open(&state));
        assert_eq!(left, vec![lo.clone()]);
        assert!(Path::new("/sys/class/net/lo").exists());
        assert_eq!(read(&state), vec![lo]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
