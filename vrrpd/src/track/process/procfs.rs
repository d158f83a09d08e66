//! Reading processes from `/proc` (the root is a parameter so tests can use a fake tree).
//!
//! The name and the state come from `/proc/PID/stat` in one read, so a zombie (state `Z`) is
//! skipped as keepalived skips it: it is not running. `/proc/PID/cmdline` is read only when
//! asked (a `full_command` tracker exists).

use std::path::Path;

use super::{Pid, ProcInfo};

/// The name and state of a `/proc/PID/stat` line: `PID (NAME) S …`. The name may hold spaces
/// and parentheses, so it runs to the last `)`.
pub fn parse_stat(text: &str) -> Option<(&str, char)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?;
    let state = text.get(close + 1..)?.trim_start().chars().next()?;
    Some((comm, state))
}

/// The arguments of a `/proc/PID/cmdline`: NUL-terminated strings. A process that rewrote its
/// command line may leave one string with spaces, or trailing NULs (empty arguments), as
/// keepalived sees them too.
pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// What `root/PID` says now; `None` when the process is gone, a zombie, or unreadable.
pub fn read(root: &Path, pid: Pid, with_cmdline: bool) -> Option<ProcInfo> {
    let dir = root.join(pid.to_string());
    let stat = std::fs::read(dir.join("stat")).ok()?;
    let stat = String::from_utf8_lossy(&stat);
    let (comm, state) = parse_stat(&stat)?;
    if matches!(state, 'Z' | 'X' | 'x') {
        return None;
    }
    let argv = if with_cmdline {
        Some(parse_cmdline(&std::fs::read(dir.join("cmdline")).ok()?))
    } else {
        None
    };
    Some(ProcInfo {
        comm: comm.to_string(),
        argv,
    })
}

/// Every live process under `root` (`/proc/[0-9]*`). A process that exits during the scan is
/// left out.
pub fn scan(root: &Path, with_cmdline: bool) -> Vec<(Pid, ProcInfo)> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<Pid>().ok())
        .filter(|&pid| pid > 0)
        .filter_map(|pid| Some((pid, read(root, pid, with_cmdline)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_name_and_state() {
        assert_eq!(
            parse_stat("1234 (haproxy) S 1 1234 1234 0 -1"),
            Some(("haproxy", 'S'))
        );
        // Names may hold spaces and parentheses.
        assert_eq!(
            parse_stat("77 (Web Content) R 1 2"),
            Some(("Web Content", 'R'))
        );
        assert_eq!(parse_stat("9 (a) (b)) Z 1"), Some(("a) (b)", 'Z')));
        assert_eq!(parse_stat("9 () S 1"), Some(("", 'S')));
        for bad in ["", "12 haproxy S", "12 (x", "12 (x)", ")12 ("] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cmdline_words() {
        assert_eq!(
            parse_cmdline(b"/usr/sbin/haproxy\0-f\0/etc/h a.cfg\0"),
            ["/usr/sbin/haproxy", "-f", "/etc/h a.cfg"]
        );
        assert_eq!(
            parse_cmdline(b"nginx: worker process"),
            ["nginx: worker process"]
        );
        assert_eq!(parse_cmdline(b"app\0\0\0"), ["app", "", ""]);
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(parse_cmdline(b"\0"), Vec::<String>::new());
    }

    #[test]
    fn scans_a_proc_tree_skipping_zombies_and_junk() {
        let root = std::env::temp_dir().join(format!("vrrpd-procfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let put = |pid: &str, stat: &str, cmdline: &[u8]| {
            let d = root.join(pid);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("stat"), stat).unwrap();
            std::fs::write(d.join("cmdline"), cmdline).unwrap();
        };
        put("10", "10 (srv) S 1", b"/bin/srv\0-d\0");
        put("11", "11 (srv) Z 1", b"");
        put("12", "12 (kworker/0:1) I 2", b"");
        put("self", "1 (x) S 1", b"");
        std::fs::create_dir_all(root.join("13")).unwrap(); // exited mid-scan: no stat
        let mut all = scan(&root, true);
        all.sort_by_key(|p| p.0);
        assert_eq!(
            all,
            [
                (
                    10,
                    ProcInfo {
                        comm: "srv".into(),
                        argv: Some(vec!["/bin/srv".into(), "-d".into()])
                    }
                ),
                (
                    12,
                    ProcInfo {
                        comm: "kworker/0:1".into(),
                        argv: Some(vec![])
                    }
                ),
            ]
        );
        let names = scan(&root, false);
        assert!(names.iter().all(|(_, p)| p.argv.is_none()));
        assert_eq!(read(&root, 11, false), None, "zombie");
        assert_eq!(read(&root, 99, false), None, "gone");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn reads_this_process() {
        let me = read(Path::new("/proc"), std::process::id() as Pid, true).unwrap();
        assert!(!me.comm.is_empty() && me.comm.len() <= 15);
        let argv0 = std::env::args().next().unwrap();
        assert_eq!(me.argv.unwrap()[0], argv0);
    }
}
