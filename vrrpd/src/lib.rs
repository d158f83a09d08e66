//! vrrpd: a keepalived-compatible VRRP pair manager.
//!
//! The protocol lives in the `vrrp-proto` crate as sans-IO values (codec, state machine,
//! simulator); the drivers that give it sockets, netlink and timers live in [`net`],
//! [`netlink`] and [`daemon`].

pub mod components;
pub mod daemon;
pub mod firewall;
pub mod genhash;
pub mod host;
pub mod log;
pub mod mail;
pub mod net;
pub mod netlink;
pub mod notify;
pub mod observe;
pub mod process;
pub mod supervisor;
#[cfg(test)]
mod testutil;
pub mod track;
pub mod tuning;
pub mod vmac;
