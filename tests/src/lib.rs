//! The namespace lab: network namespaces joined by a bridge, a VRRP daemon pair under test
//! (vrrpd or keepalived, same CLI and config), a millisecond ICMP prober on the client and
//! packet capture helpers, an SMTP sink. Everything created is removed on drop, also on panic.
//!
//! Lab safety: all addresses come from documentation ranges and live only inside namespaces
//! created here with a unique per-run prefix; nothing is configured in the root namespace.

pub mod adverts;
pub mod capture;
pub mod checkbench;
pub mod conf;
pub mod daemon;
pub mod e2e;
pub mod error;
pub mod faults;
pub mod flows;
pub mod frr;
pub mod guard;
pub mod holders;
pub mod instbench;
pub mod lab;
pub mod lb;
pub mod lbbench;
pub mod obsbench;
pub mod prober;
pub mod process;
pub mod procstat;
pub mod scenario;
pub mod scripts;
pub mod smtp;
pub mod syncbench;
pub mod unit;
pub mod wait;

pub use adverts::{AdvertSeen, AdvertWatch, ReplySeen};
pub use capture::{Capture, PcapAdvert};
pub use conf::{NodeConf, NodeState};
pub use daemon::{Daemon, DaemonProc};
pub use error::LabError;
pub use holders::HolderWatch;
pub use lab::{Host, HostSpec, Lab, LabBuilder, LabSpec};
pub use prober::{ProbeReport, Prober};
pub use process::LabChild;
pub use scripts::ScriptDir;
pub use smtp::{Mail, SmtpSink};
pub use wait::wait_until;

/// The first of `tools` that is not installed (on PATH or in /usr/sbin, /sbin): a test that
/// needs it says it is skipped and why.
pub fn missing_tool<'a>(tools: &[&'a str]) -> Option<&'a str> {
    tools.iter().copied().find(|t| daemon::on_path(t).is_none())
}

/// True when running as root (namespaces and raw sockets need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Return early from a test (printing why) when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require_root!("network namespaces")
    };
    ($why:expr) => {
        if !$crate::is_root() {
            eprintln!("skipped: needs root ({})", $why);
            return;
        }
    };
}
