//! What checking a big file costs (`-t`, issue 18 item 7): N VRRP instances, one warning each
//! (an unknown keyword), checked by each daemon. A diagnostic must not cost a pass over the
//! file, so the time grows with N, not N²; `vrrp-lab bench config-check` reports the wall and
//! CPU time of each run, keepalived 2.2.7 beside vrrpd.
//!
//! The instances are spread over interfaces (bridges) of a lab namespace, 255 VRIDs each, so that
//! no two share a VRID on an interface: a conflict is reported for every pair (both daemons),
//! which would make the output itself quadratic.

use std::path::Path;
use std::time::Instant;

use crate::daemon::Daemon;
use crate::error::{LabError, Result};
use crate::lab::{Host, Lab};

/// Interface `k` of the bench's namespace.
fn interface(k: usize) -> String {
    format!("bk{k}")
}

/// A namespace with enough (bridge) interfaces for `max_instances`.
pub struct Bench {
    lab: Lab,
}

impl Bench {
    pub fn new(max_instances: usize) -> Result<Self> {
        let lab = Lab::builder()
            .host("a", "192.0.2.1/24", "2001:db8::1/64")
            .build()?;
        let batch = lab.host("a").dir.join("dummies.ip");
        let lines: String = (0..max_instances.div_ceil(255))
            .map(|k| format!("link add {} up type bridge\n", interface(k)))
            .collect();
        std::fs::write(&batch, lines)?;
        let out = lab
            .host("a")
            .exec("ip", &["-batch", &batch.to_string_lossy()])?;
        if !out.status.success() {
            return Err(LabError::Other(format!(
                "ip -batch: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(Self { lab })
    }

    fn host(&self) -> &Host {
        self.lab.host("a")
    }

    /// Writes the file of `n` instances; returns its path.
    pub fn write_config(&self, n: usize) -> Result<std::path::PathBuf> {
        let path = self.host().dir.join(format!("instances-{n}.conf"));
        std::fs::write(&path, config(n))?;
        Ok(path)
    }

    /// Runs `daemon -t -f path` in the namespace.
    pub fn check(&self, daemon: Daemon, path: &Path) -> Result<Check> {
        let bin = daemon.binary()?;
        let cpu_before = children_cpu_ms();
        let t0 = Instant::now();
        let out = self.host().exec(
            &bin.to_string_lossy(),
            &["-t", "-f", &path.to_string_lossy()],
        )?;
        let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
        let cpu_ms = children_cpu_ms() - cpu_before;
        let text = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
        let lines = || text.lines().filter(|l| !l.trim().is_empty());
        Ok(Check {
            wall_ms,
            cpu_ms,
            exit: out.status.code(),
            output_lines: lines().count(),
            unknown_keyword_lines: lines()
                .filter(|l| l.contains("unknown_keyword_") && l.contains("nknown keyword"))
                .count(),
        })
    }
}

/// A file of `n` instances, each with one unknown keyword, no two with the same VRID on an
/// interface.
pub fn config(n: usize) -> String {
    let mut s = String::from("global_defs {\n    router_id bench\n}\n");
    for i in 0..n {
        s += &format!(
            "vrrp_instance VI_{i} {{\n    interface {}\n    virtual_router_id {}\n    \
             priority 100\n    advert_int 1\n    unknown_keyword_{i} 1\n    virtual_ipaddress {{\n        \
             192.0.2.{}/32\n    }}\n}}\n",
            interface(i / 255),
            i % 255 + 1,
            i % 250 + 1
        );
    }
    s
}

/// One `-t` run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub wall_ms: f64,
    /// User and system time of the checker process.
    pub cpu_ms: f64,
    pub exit: Option<i32>,
    /// Non-empty lines it wrote.
    pub output_lines: usize,
    /// Lines that name the unknown keywords (one per instance expected).
    pub unknown_keyword_lines: usize,
}

/// CPU time of this process's reaped children so far.
fn children_cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own and reads nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}
