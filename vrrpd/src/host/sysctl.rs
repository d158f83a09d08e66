//! Per-interface sysctls (`/proc/sys/net/ipv{4,6}/conf/IF/KEY`) and the values to put back:
//! what keepalived changes on an interface it restores when it is done with it.

use std::path::PathBuf;

use tracing::warn;

#[derive(Debug, thiserror::Error)]
#[error("sysctl {}: {source}", path.display())]
pub struct Error {
    pub path: PathBuf,
    pub source: std::io::Error,
}

pub fn path4(ifname: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv4/conf/{ifname}/{key}"))
}

pub fn path6(ifname: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv6/conf/{ifname}/{key}"))
}

pub fn get(path: &PathBuf) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| Error {
            path: path.clone(),
            source,
        })
}

pub fn set(path: &PathBuf, value: &str) -> Result<(), Error> {
    std::fs::write(path, value).map_err(|source| Error {
        path: path.clone(),
        source,
    })
}

/// Sysctls we changed, with the values they had (also in the host journal, [`crate::host`],
/// for a start after a crash to put back).
#[derive(Debug, Default)]
pub struct Saved(Vec<(PathBuf, String)>);

impl Saved {
    /// Sets `path` to `value`, remembering the old value if it differed.
    pub fn set(&mut self, path: PathBuf, value: &str) -> Result<(), Error> {
        let old = get(&path)?;
        if old != value {
            super::record(super::Change::Sysctl {
                path: path.clone(),
                was: old.clone(),
            });
            set(&path, value)?;
            self.0.push((path, old));
        }
        Ok(())
    }

    /// Puts every changed value back, last change first.
    pub fn restore(&mut self) {
        for (path, was) in self.0.drain(..).rev() {
            match set(&path, &was) {
                Ok(()) => super::undone(&super::Change::Sysctl { path, was }),
                Err(e) => warn!(error = %e, "restoring a sysctl failed"),
            }
        }
    }
}
