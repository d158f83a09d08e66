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
