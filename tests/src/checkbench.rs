//! What checking a big file costs (`-t`, issue 18 item 7): N VRRP instances, one warning each
//! (an unknown keyword), checked by each daemon. A diagnostic must not cost a pass over the
//! file, so the time grows with N, not N²; `vrrp-lab bench config-check` reports the wall and
//! CPU time of each run, keepalived 2.2.7 beside vrrpd.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::daemon::Daemon;
use crate::error::Result;

/// A file of `n` instances on `interface`, each with one unknown keyword.
pub fn config(n: usize, interface: &str) -> String {
    let mut s = String::from("global_defs {\n    router_id bench\n}\n");
    for i in 0..n {
        let vrid = i % 255 + 1;
        s += &format!(
            "vrrp_instance VI_{i} {{\n    interface {interface}\n    virtual_router_id {vrid}\n    \
             priority 100\n    advert_int 1\n    unknown_keyword_{i} 1\n    virtual_ipaddress {{\n        \
             192.0.2.{}/32\n    }}\n}}\n",
            i % 250 + 1
        );
    }
    s
}

/// An interface the checks accept: the first that is not the loopback (whose instances
/// keepalived refuses, a second message each).
pub fn interface() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .find(|n| n != "lo")
        .unwrap_or_else(|| "lo".into())
}

/// One `-t` run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub wall_ms: f64,
    /// User and system time of the checker process.
    pub cpu_ms: f64,
    pub exit: Option<i32>,
    /// Lines of diagnostics it wrote.
    pub stderr_lines: usize,
    /// Lines that name the unknown keywords (one per instance expected).
    pub unknown_keyword_lines: usize,
}

/// Runs `daemon -t -f path`.
pub fn check(daemon: Daemon, path: &Path) -> Result<Check> {
    let cpu_before = children_cpu_ms();
    let t0 = Instant::now();
    let out = Command::new(daemon.binary()?)
        .arg("-t")
        .arg("-f")
        .arg(path)
        .stdin(Stdio::null())
        .output()?;
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    let cpu_ms = children_cpu_ms() - cpu_before;
    let text = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    Ok(Check {
        wall_ms,
        cpu_ms,
        exit: out.status.code(),
        stderr_lines: text.lines().count(),
        unknown_keyword_lines: text
            .lines()
            .filter(|l| l.contains("unknown_keyword_") && l.contains("nknown keyword"))
            .count(),
    })
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
