//! What a daemon under test costs, from /proc: CPU time and proportional memory of every
//! process of its process group (keepalived forks a VRRP child; vrrpd is one process).

use std::path::Path;

/// Every process whose process group is `pgid` (the lab starts each daemon as a group leader).
pub fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            stat_fields(*pid).is_some_and(|f| f.get(2).and_then(|g| g.parse().ok()) == Some(pgid))
        })
        .collect()
}

/// The fields of /proc/PID/stat after the command name (field 3 onwards: state, ppid, pgrp…).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// User plus system CPU time of `pid` (all its threads), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    // utime and stime are fields 14 and 15 of stat: 11 and 12 after the command name.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// CPU seconds of the whole group.
pub fn group_cpu_seconds(pgid: u32) -> f64 {
    group_pids(pgid).into_iter().filter_map(cpu_seconds).sum()
}

/// Proportional set size of `pid` in kB (its share of shared pages).
pub fn pss_kb(pid: u32) -> Option<u64> {
    rollup_kb(pid, "Pss:")
}

/// The anonymous part of `pid`'s PSS in kB: its heap, stacks and copied-on-write pages, which
/// other processes mapping the same files (the same binary or libraries) do not share.
pub fn pss_anon_kb(pid: u32) -> Option<u64> {
    rollup_kb(pid, "Pss_Anon:")
}

fn rollup_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// PSS of the whole group, kB.
pub fn group_pss_kb(pgid: u32) -> u64 {
    group_pids(pgid).into_iter().filter_map(pss_kb).sum()
}

/// Anonymous PSS of the whole group, kB.
pub fn group_pss_anon_kb(pgid: u32) -> u64 {
    group_pids(pgid).into_iter().filter_map(pss_anon_kb).sum()
}

/// Open descriptors of the whole group.
pub fn group_fds(pgid: u32) -> usize {
    group_pids(pgid)
        .into_iter()
        .filter_map(|p| std::fs::read_dir(Path::new("/proc").join(p.to_string()).join("fd")).ok())
        .map(|rd| rd.count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        let f = stat_fields(me).unwrap();
        assert_eq!(f[0].len(), 1, "state letter: {f:?}");
        assert!(cpu_seconds(me).is_some());
        assert!(pss_kb(me).unwrap_or(1) > 0);
        // The heap of a running test is anonymous; it is part of the whole.
        let (all, anon) = (pss_kb(me).unwrap_or(1), pss_anon_kb(me).unwrap_or(1));
        assert!(anon > 0 && anon <= all, "anon {anon} of {all} kB");
        let pgid = f[2].parse().unwrap();
        assert!(group_pids(pgid).contains(&me));
        assert!(group_fds(pgid) >= 3);
    }
}
