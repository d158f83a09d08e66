//! The VRRP protocol as pure values: no sockets, no clocks, no threads.
//!
//! [`packet`] turns bytes into adverts and back, [`fsm`] is the RFC 5798 §6 state machine with
//! keepalived's behaviours (time comes in as an argument), [`track`] what trackers do to an
//! instance, and `sim` (feature `sim`) runs many machines on a virtual LAN with loss, delay,
//! partitions and crashes. The crate depends on no runtime and no libc, and forbids `unsafe`:
//! the compiler keeps those promises.

#![forbid(unsafe_code)]

pub mod announce;
pub mod fsm;
pub mod packet;
#[cfg(feature = "sim")]
pub mod sim;
pub mod track;
