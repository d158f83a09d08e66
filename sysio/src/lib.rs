//! The system calls vrrpd makes beyond std, tokio and socket2, written once and audited once.
//!
//! - [`fd`]: registering an owned descriptor with tokio's reactor (the one `unsafe` contract
//!   tokio asks for, argued here for every type that may be registered);
//! - [`mmsg`]: `sendmmsg` / `recvmmsg` batches with one error policy;
//! - [`cmsg`]: building and reading ancillary data (packet info, TTL / hop limit);
//! - [`link`]: link-layer socket addresses for AF_PACKET;
//! - [`timer`]: a one-shot timerfd on the reactor, for deadlines finer than tokio's millisecond;
//! - [`nft`]: loading an nftables rule set.
//!
//! Callers see safe functions; every `unsafe` block in the workspace's socket code that is not
//! here is a defect to move here.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod cmsg;
#[cfg(feature = "async")]
pub mod fd;
pub mod link;
pub mod mmsg;
pub mod nft;
#[cfg(feature = "async")]
pub mod timer;

/// Whether `e` says the process (or the system) ran out of file descriptors: callers report
/// that as what it is, not as the failure of whatever they were opening.
pub fn is_descriptor_shortage(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Gives the heap's free memory back to the system. Parsing a configuration (tokens, a tree,
/// text) allocates far more than the daemon keeps; without this the freed pages stay resident
/// for the daemon's life. glibc only (elsewhere a no-op); cheap enough to call after each load.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only returns free heap memory to the
    // kernel and never touches memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Drops this process's resident pages of its own executable's code: start-up code (argument
/// and configuration parsing, resolution) is read once and then stays mapped for the process's
/// life. The pages stay in the page cache and come back on the next use; text is never written,
/// so nothing is lost. Returns the bytes advised.
pub fn release_code_pages() -> usize {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let exe = exe.to_string_lossy();
    let mut total = 0;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("");
        // The executable's code only: read-only, executable, private, file-backed.
        if perms != "r-xp" || path != exe {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: [a, b) is a whole mapping of this process (from /proc/self/maps): our own
        // executable's code, mapped read-only and executable, private and never written (no
        // copy-on-write page to lose). MADV_DONTNEED only drops the page table entries; the
        // next access faults the same bytes back in from the file.
        let r = unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
        if r == 0 {
            total += b - a;
        }
    }
    total
}
