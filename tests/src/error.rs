//! Typed errors of the lab harness.

use std::io;

/// Anything that can go wrong while building or driving the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("running {cmd}: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: io::Error,
    },
    #[error("command `{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(std::time::Duration, String),
    #[error("daemon binary not found: {0}")]
    DaemonNotFound(String),
    #[error("no host named {0:?} in the lab")]
    NoSuchHost(String),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("system call: {0}")]
    Sys(#[from] nix::Error),
    #[error("{0}")]
    Other(String),
    /// A systemd unit the lab cannot run or check as written.
    #[error("unit: {0}")]
    Unit(String),
}

pub type Result<T> = std::result::Result<T, LabError>;
