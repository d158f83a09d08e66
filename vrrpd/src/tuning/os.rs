//! The system calls behind [`super`]: per-thread policy, nice and CPU affinity (by TID),
//! RLIMIT_RTTIME, `mlockall` and the umask. Errors are returned as `std::io::Error` for the
//! caller to log; nothing here decides anything.

use std::io;

use nix::sched::CpuSet;
use nix::unistd::Pid;

/// The calling thread's id.
pub fn gettid() -> Pid {
    nix::unistd::gettid()
}

/// SCHED_RR at `priority`, not inherited by threads or processes the thread starts.
pub fn set_rr(tid: Pid, priority: u8) -> io::Result<()> {
    set_scheduler(
        tid,
        libc::SCHED_RR | libc::SCHED_RESET_ON_FORK,
        i32::from(priority),
    )
}

/// SCHED_OTHER; with `reset_on_fork` a negative nice is not inherited either.
pub fn set_other(tid: Pid, reset_on_fork: bool) -> io::Result<()> {
    let flag = if reset_on_fork {
        libc::SCHED_RESET_ON_FORK
    } else {
        0
    };
    set_scheduler(tid, libc::SCHED_OTHER | flag, 0)
}

fn set_scheduler(tid: Pid, policy: i32, priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call, which only reads it.
    let rc = unsafe { libc::sched_setscheduler(tid.as_raw(), policy, &param) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The thread's policy (without the reset-on-fork flag), whether that flag is set, and its
/// real-time priority.
pub fn scheduler(tid: Pid) -> io::Result<(i32, bool, i32)> {
    // SAFETY: plain system call on an integer argument.
    let policy = unsafe { libc::sched_getscheduler(tid.as_raw()) };
    if policy == -1 {
        return Err(io::Error::last_os_error());
    }
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, writable sched_param for the duration of the call.
    if unsafe { libc::sched_getparam(tid.as_raw(), &mut param) } == -1 {
        return Err(io::Error::last_os_error());
    }
    let reset = policy & libc::SCHED_RESET_ON_FORK != 0;
    Ok((
        policy & !libc::SCHED_RESET_ON_FORK,
        reset,
        param.sched_priority,
    ))
}

/// The thread's nice value (Linux keeps one per thread; PRIO_PROCESS with a TID names it).
pub fn nice(tid: Pid) -> io::Result<i32> {
    nix::errno::Errno::clear();
    // SAFETY: plain system call on integer arguments.
    let n = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid.as_raw() as libc::id_t) };
    if n == -1 && nix::errno::Errno::last_raw() != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n)
}

pub fn set_nice(tid: Pid, nice: i32) -> io::Result<()> {
    // SAFETY: plain system call on integer arguments.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid.as_raw() as libc::id_t, nice) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPUs the thread may run on.
pub fn affinity(tid: Pid) -> io::Result<Vec<u16>> {
    let set = nix::sched::sched_getaffinity(tid).map_err(io::Error::from)?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .filter_map(|c| u16::try_from(c).ok())
        .collect())
}

pub fn set_affinity(tid: Pid, cpus: &[u16]) -> io::Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(usize::from(c)).map_err(io::Error::from)?;
    }
    nix::sched::sched_setaffinity(tid, &set).map_err(io::Error::from)
}

/// RLIMIT_RTTIME (soft, hard) in µs; `u64::MAX` is unlimited.
pub fn rttime() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut r) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

pub fn set_rttime(soft: u64, hard: u64) -> io::Result<()> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `r` is a valid rlimit for the duration of the call, which only reads it.
    if unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &r) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Locks every page of the process, present and future, as they are touched (keepalived's
/// flags: `MCL_ONFAULT` keeps thread stacks and the dataplane's tables from being faulted in
/// all at once). Kernels before 4.4 lack `MCL_ONFAULT`: then without it.
pub fn lock_memory() -> io::Result<()> {
    let all = libc::MCL_CURRENT | libc::MCL_FUTURE;
    // SAFETY: mlockall takes flags only and touches no memory of ours.
    if unsafe { libc::mlockall(all | libc::MCL_ONFAULT) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) {
        return Err(e);
    }
    // SAFETY: as above.
    if unsafe { libc::mlockall(all) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn unlock_memory() -> io::Result<()> {
    // SAFETY: munlockall takes no arguments and touches no memory of ours.
    if unsafe { libc::munlockall() } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the process umask; returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    let m = nix::sys::stat::Mode::from_bits_truncate(mask as libc::mode_t);
    nix::sys::stat::umask(m).bits() as u32
}

/// Why a scheduling call failed, in words an operator can act on.
pub fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (needs CAP_SYS_NICE, or RLIMIT_RTPRIO / RLIMIT_NICE)"
        }
        Some(libc::EINVAL) => " (not allowed here: offline or excluded CPUs?)",
        Some(libc::ENOMEM) | Some(libc::EAGAIN) => {
            " (needs CAP_IPC_LOCK or a larger RLIMIT_MEMLOCK)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a fresh thread (settings are per thread): read back what was set. Lowering our own
    /// priority (a higher nice, SCHED_OTHER) and narrowing our CPUs need no privilege.
    #[test]
    fn per_thread_settings_read_back() {
        std::thread::spawn(|| {
            let tid = gettid();
            assert_ne!(tid, nix::unistd::getpid(), "a thread of its own");
            let start = nice(tid).unwrap();
            let n = (start + 1).min(19);
            set_nice(tid, n).unwrap();
            assert_eq!(nice(tid).unwrap(), n);
            assert_eq!(
                nice(nix::unistd::getpid()).unwrap(),
                start,
                "main thread untouched"
            );
            set_other(tid, true).unwrap();
            assert_eq!(scheduler(tid).unwrap(), (libc::SCHED_OTHER, true, 0));
            let (soft, hard) = rttime().unwrap();
            assert!(soft <= hard);
            let cpus = affinity(tid).unwrap();
            assert!(!cpus.is_empty());
            set_affinity(tid, &cpus[..1]).unwrap();
            assert_eq!(affinity(tid).unwrap(), cpus[..1].to_vec());
        })
        .join()
        .unwrap();
    }
}
