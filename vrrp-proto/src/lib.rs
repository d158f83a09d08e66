//! The VRRP protocol as pure values: no sockets, no clocks, no threads.
//!
//! [`packet`] turns bytes into adverts and back; [`fsm`] is the RFC 5798 §6 state machine with
//! keepalived's behaviours; [`instance`] is one instance as a daemon runs it (trackers and
//! FAULT, start-up and reload rules, announcements, counters) and [`node`] every instance of a
//! daemon with their sync groups ([`sync`]) and one timer queue. Time is always an argument: a
//! [`Duration`](std::time::Duration) since the driver's epoch, one convention for the machine,
//! the announcement schedule ([`announce`]) and the node. `sim` (feature `sim`) runs nodes on a
//! virtual LAN with loss, delay, partitions, crashes and reloads. The crate depends on no
//! runtime and no libc, and forbids `unsafe`: the compiler keeps those promises.

#![forbid(unsafe_code)]

pub mod announce;
pub mod fsm;
pub mod instance;
pub mod node;
pub mod packet;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sync;
pub mod track;
