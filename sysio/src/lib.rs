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

/// Drops this process's resident pages of its own executable's code and read-only data:
/// start-up code and its tables (argument and configuration parsing, resolution, help texts)
/// are read once and then stay mapped for the process's life. The pages stay in the page cache
/// and come back on the next use. Only mappings that hold no copy-on-write page are advised
/// (the relocated RELRO data is read-only but written once at start: dropping it would lose
/// the relocations), so nothing is lost. Returns the bytes advised.
pub fn release_code_pages() -> usize {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    // Read line by line: the whole text is large, and would stay in the heap once freed.
    let Ok(smaps) = std::fs::File::open("/proc/self/smaps") else {
        return 0;
    };
    let lines = std::io::BufRead::lines(std::io::BufReader::new(smaps)).map_while(Result::ok);
    let mut total = 0;
    for (a, b) in clean_readonly_mappings(lines, &exe.to_string_lossy()) {
        // SAFETY: [a, b) is a whole mapping of this process (from /proc/self/smaps): our own
        // executable, mapped read-only and private, with no anonymous (copy-on-write) page:
        // every page is the file's bytes. MADV_DONTNEED only drops the page table entries; the
        // next access faults the same bytes back in from the file.
        let r = unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
        if r == 0 {
            total += b - a;
        }
    }
    total
}

/// The mappings of `exe` in `smaps` (the lines of /proc/self/smaps) that are read-only
/// (`r-xp`, `r--p`) and hold no anonymous page: start and end addresses.
fn clean_readonly_mappings(
    smaps: impl Iterator<Item = impl AsRef<str>>,
    exe: &str,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // The mapping being read: its range, if it is a read-only mapping of `exe`.
    let mut current: Option<(usize, usize)> = None;
    for line in smaps {
        let line = line.as_ref();
        if let Some(kb) = line.strip_prefix("Anonymous:") {
            let anon = kb.trim().trim_end_matches("kB").trim().parse::<u64>();
            if let (Some(range), Ok(0)) = (current.take(), anon) {
                out.push(range);
            }
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        // A header line: "start-end perms offset dev inode path".
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("");
        current = ((perms == "r-xp" || perms == "r--p") && path == exe).then_some((a, b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_readonly_mappings_of_the_executable() {
        let smaps = "\
5000-6000 r--p 00000000 fe:00 12 /usr/sbin/vrrpd
Rss:                   4 kB
Anonymous:             0 kB
6000-8000 r-xp 00001000 fe:00 12 /usr/sbin/vrrpd
Anonymous:             0 kB
8000-9000 r--p 00003000 fe:00 12 /usr/sbin/vrrpd
Anonymous:             4 kB
9000-a000 rw-p 00004000 fe:00 12 /usr/sbin/vrrpd
Anonymous:             0 kB
b000-c000 r-xp 00000000 fe:00 13 /usr/lib/libc.so.6
Anonymous:             0 kB
";
        assert_eq!(
            clean_readonly_mappings(smaps.lines(), "/usr/sbin/vrrpd"),
            vec![(0x5000, 0x6000), (0x6000, 0x8000)]
        );
    }

    #[test]
    fn releasing_our_own_pages_keeps_us_running() {
        let advised = release_code_pages();
        assert!(advised > 0);
        // Code, constants and relocated data come back from the file.
        let text = format!("{:?}", std::hint::black_box(vec![1u8, 2, 3]));
        assert_eq!(text, "[1, 2, 3]");
    }
}
