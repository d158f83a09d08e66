//! `vrrp_track_process`: how many running processes match a name (or a command line), against
//! a quorum, as keepalived.conf(5) "VRRP track processes" describes.
//!
//! The pieces, from pure to thin:
//! - [`ProcSpec`] holds one tracked process's rules and says whether a process matches;
//! - [`Table`] is the sans-IO core: which live processes match which tracker, the counts, and
//!   the `fork_delay` / `terminate_delay` debounce, driven by events and explicit times;
//! - [`connector`] encodes and decodes the kernel's process events connector messages
//!   (`linux/cn_proc.h`) and owns the netlink socket;
//! - [`procfs`] reads `/proc` (the start-up scan, a process after `exec`, the fallback rescan);
//! - [`Watcher`] ties them together: one for every tracked process of the configuration.

pub mod connector;
pub mod procfs;
mod table;
mod watch;

use std::time::Duration;

pub use keepalived_conf::model::ParamMatch;
use keepalived_conf::model::TrackProcess;
pub use table::{Change, Table};
pub use watch::{Source, Watcher, ACK_WAIT, RESCAN_INTERVAL};

/// A process id as the kernel reports it (a thread group id: the process, not a thread).
pub type Pid = i32;

/// What `/proc` says about one live process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcInfo {
    /// The process name (`/proc/PID/comm`, at most 15 bytes).
    pub comm: String,
    /// The command line split on NUL (`/proc/PID/cmdline`), when it was read: only trackers
    /// with `full_command` need it, and reading it may touch the process's swapped-out memory.
    pub argv: Option<Vec<String>>,
}

/// One `vrrp_track_process`, as the runtime needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcSpec {
    pub name: String,
    /// The process name, or with `full_command` the first word of the command line.
    pub process: String,
    pub params: Vec<String>,
    pub param_match: Option<ParamMatch>,
    pub full_command: bool,
    pub quorum: u32,
    /// `u32::MAX` when not configured.
    pub quorum_max: u32,
    /// How long a change a fork caused must last before it counts (0: at once).
    pub fork_delay: Duration,
    /// How long a change an exit caused must last before it counts (0: at once).
    pub terminate_delay: Duration,
}

#[cfg(test)]
impl ProcSpec {
    /// `name` tracking one process called `process`: no parameters, quorum 1, no delays.
    pub(crate) fn simple(name: &str, process: &str) -> Self {
        Self {
            name: name.into(),
            process: process.into(),
            params: Vec::new(),
            param_match: None,
            full_command: false,
            quorum: 1,
            quorum_max: u32::MAX,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
        }
    }
}

impl From<&TrackProcess> for ProcSpec {
    fn from(p: &TrackProcess) -> Self {
        // As keepalived: parameters mean an exact match unless told otherwise, and any
        // parameter matching reads the command line (TOML may leave these implied).
        let param_match = p
            .param_match
            .or((!p.params.is_empty()).then_some(ParamMatch::Exact));
        Self {
            name: p.name.clone(),
            process: p.process.clone(),
            params: p.params.clone(),
            param_match,
            full_command: p.full_command || param_match.is_some(),
            quorum: p.quorum,
            quorum_max: p.quorum_max.unwrap_or(u32::MAX),
            fork_delay: p.fork_delay.or(p.delay).unwrap_or_default(),
            terminate_delay: p.terminate_delay.or(p.delay).unwrap_or_default(),
        }
    }
}

impl ProcSpec {
    /// Whether `p` is one of this tracker's processes: an exact name match (no pattern, unlike
    /// pgrep), or with `full_command` the first word of the command line and the parameters.
    pub fn matches(&self, p: &ProcInfo) -> bool {
        if !self.full_command {
            return p.comm == self.process;
        }
        let Some((arg0, args)) = p.argv.as_deref().and_then(<[String]>::split_first) else {
            return false;
        };
        *arg0 == self.process && params_match(self.param_match, &self.params, args)
    }

    /// Whether `n` matching processes are a quorum.
    pub fn ok(&self, n: u32) -> bool {
        self.quorum <= n && n <= self.quorum_max
    }
}

/// keepalived's `param_match`: exact; partial (these first, more may follow); initial (as
/// partial, and the last one given may be the start of the process's argument).
fn params_match(how: Option<ParamMatch>, want: &[String], got: &[String]) -> bool {
    match how {
        None => true,
        Some(ParamMatch::Exact) => got == want,
        Some(ParamMatch::Partial) => got.starts_with(want),
        Some(ParamMatch::Initial) => match want.split_last() {
            None => true,
            Some((last, first)) => {
                got.starts_with(first)
                    && got
                        .get(first.len())
                        .is_some_and(|g| g.starts_with(last.as_str()))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(process: &str) -> ProcSpec {
        ProcSpec::simple("t", process)
    }

    fn proc(comm: &str, argv: &[&str]) -> ProcInfo {
        ProcInfo {
            comm: comm.into(),
            argv: Some(argv.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn with_params(process: &str, params: &[&str], how: Option<ParamMatch>) -> ProcSpec {
        ProcSpec {
            params: params.iter().map(|s| s.to_string()).collect(),
            param_match: how,
            full_command: true,
            ..spec(process)
        }
    }

    #[test]
    fn name_is_an_exact_match_of_comm() {
        let s = spec("haproxy");
        assert!(s.matches(&proc("haproxy", &["/usr/sbin/haproxy", "-f", "x"])));
        // pgrep haproxy would match these; keepalived (pgrep "^haproxy$") does not.
        assert!(!s.matches(&proc("haproxy2", &[])));
        assert!(!s.matches(&proc("hapro", &[])));
        assert!(!s.matches(&proc("HAPROXY", &[])));
        // The command line does not count without full_command.
        assert!(!s.matches(&proc("sh", &["haproxy"])));
        // Nothing read from cmdline is needed for a name match.
        let bare = ProcInfo {
            comm: "haproxy".into(),
            argv: None,
        };
        assert!(s.matches(&bare));
    }

    #[test]
    fn full_command_matches_the_first_word_then_parameters() {
        let s = ProcSpec {
            full_command: true,
            ..spec("/usr/sbin/haproxy")
        };
        assert!(s.matches(&proc("haproxy", &["/usr/sbin/haproxy", "-f", "x"])));
        assert!(s.matches(&proc("anything", &["/usr/sbin/haproxy"])));
        assert!(!s.matches(&proc("haproxy", &["haproxy", "-f", "x"])));
        // Kernel threads and zombies have no command line; unread means no match either.
        assert!(!s.matches(&proc("haproxy", &[])));
        assert!(!s.matches(&ProcInfo {
            comm: "haproxy".into(),
            argv: None
        }));
    }

    #[test]
    fn exact_parameters() {
        use ParamMatch::Exact;
        let s = with_params("/bin/srv", &["-c", "a b"], Some(Exact));
        assert!(s.matches(&proc("srv", &["/bin/srv", "-c", "a b"])));
        assert!(!s.matches(&proc("srv", &["/bin/srv", "-c", "a", "b"])));
        assert!(!s.matches(&proc("srv", &["/bin/srv", "-c", "a b", "-d"])));
        assert!(!s.matches(&proc("srv", &["/bin/srv", "-c"])));
        assert!(!s.matches(&proc("srv", &["/bin/srv", "-c", "a bc"])));
        // Bare `param_match`, no parameters: the process must have none.
        let none = with_params("/bin/srv", &[], Some(Exact));
        assert!(none.matches(&proc("srv", &["/bin/srv"])));
        assert!(!none.matches(&proc("srv", &["/bin/srv", "-d"])));
        assert!(!none.matches(&proc("srv", &["/bin/srv", ""])));
    }

    #[test]
    fn partial_parameters() {
        let s = with_params("srv", &["-c", "x"], Some(ParamMatch::Partial));
        assert!(s.matches(&proc("srv", &["srv", "-c", "x"])));
        assert!(s.matches(&proc("srv", &["srv", "-c", "x", "-d", "1"])));
        assert!(!s.matches(&proc("srv", &["srv", "-c", "xy"])));
        assert!(!s.matches(&proc("srv", &["srv", "-c"])));
        assert!(!s.matches(&proc("srv", &["srv", "-d", "-c", "x"])));
        // Without parameters, partial accepts any.
        let any = with_params("srv", &[], Some(ParamMatch::Partial));
        assert!(any.matches(&proc("srv", &["srv", "-q"])));
    }

    #[test]
    fn initial_parameters() {
        let s = with_params("srv", &["-c", "/etc/srv"], Some(ParamMatch::Initial));
        assert!(s.matches(&proc("srv", &["srv", "-c", "/etc/srv"])));
        assert!(s.matches(&proc("srv", &["srv", "-c", "/etc/srv/main.cfg"])));
        assert!(s.matches(&proc("srv", &["srv", "-c", "/etc/srv.cfg", "-d"])));
        // Only the last one may be longer.
        assert!(!s.matches(&proc("srv", &["srv", "-cc", "/etc/srv"])));
        assert!(!s.matches(&proc("srv", &["srv", "-c", "/etc/sr"])));
        assert!(!s.matches(&proc("srv", &["srv", "-c"])));
        let empty_last = with_params("srv", &[""], Some(ParamMatch::Initial));
        assert!(empty_last.matches(&proc("srv", &["srv", "x"])));
        assert!(!empty_last.matches(&proc("srv", &["srv"])));
    }

    #[test]
    fn quorum_bounds() {
        let mut s = spec("x");
        assert!(!s.ok(0));
        assert!(s.ok(1) && s.ok(1000));
        s.quorum = 2;
        s.quorum_max = 3;
        assert!(!s.ok(1) && s.ok(2) && s.ok(3) && !s.ok(4));
        // `quorum_max 0`: must not run.
        s.quorum = 0;
        s.quorum_max = 0;
        assert!(s.ok(0) && !s.ok(1));
    }

    #[test]
    fn spec_from_config_resolves_delays_and_bounds() {
        let (cfg, diags) = keepalived_conf::load_str(
            "vrrp_track_process a {\n process x\n delay 2\n fork_delay 0.5\n quorum 2\n}\n\
             vrrp_track_process b {\n process y\n quorum_max 0\n}",
            std::path::Path::new("t.conf"),
        );
        assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
        let a = ProcSpec::from(&cfg.track_processes[0]);
        assert_eq!(a.fork_delay, Duration::from_millis(500));
        assert_eq!(a.terminate_delay, Duration::from_secs(2));
        assert_eq!((a.quorum, a.quorum_max), (2, u32::MAX));
        let b = ProcSpec::from(&cfg.track_processes[1]);
        assert_eq!((b.quorum, b.quorum_max), (0, 0));
        assert_eq!(b.fork_delay, Duration::ZERO);
    }
}
