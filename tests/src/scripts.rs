//! Scripts for tracker and notify tests, in a directory that passes keepalived's
//! `enable_script_security` check: under `/run` (root-owned, not group/other writable), unlike
//! the lab's scratch directory under the world-writable `/tmp`. Removed on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::Result;

/// A per-test directory of scripts.
#[derive(Debug)]
pub struct ScriptDir {
    pub dir: PathBuf,
}

impl ScriptDir {
    /// Creates `/run/vrrp-lab-scripts-<pid>-<n>` with mode 0755.
    pub fn new() -> Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = PathBuf::from(format!(
            "/run/vrrp-lab-scripts-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        crate::guard::register_dir(&dir);
        Ok(Self { dir })
    }

    /// Writes an executable `/bin/sh` script `name` with `body`; returns its path.
    pub fn script(&self, name: &str, body: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n"))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        Ok(p)
    }

    /// A copy of `/bin/sleep` named `tp<tag><pid><nanos>`, for `vrrp_track_process` tests:
    /// process names are global across namespaces, so the name must be this run's own; the
    /// kernel keeps 15 characters of it. Returns its path and name.
    pub fn unique_sleep(&self, tag: &str) -> Result<(PathBuf, String)> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let mut name = format!("tp{tag}{}{:x}", std::process::id(), nanos);
        name.truncate(15);
        let path = self.path(&name);
        std::fs::copy("/bin/sleep", &path)?;
        Ok((path, name))
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The text of `name` ("" if missing).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    pub fn as_path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ScriptDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        crate::guard::unregister_dir(&self.dir);
    }
}
