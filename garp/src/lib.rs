//! Layer-2 announcements of virtual addresses: gratuitous ARP for IPv4, unsolicited neighbour
//! advertisements for IPv6, and keepalived's schedule for sending them.
//!
//! [`frame`] builds and parses the frames (pure), [`schedule`] decides when (sans-IO, time as an
//! argument), [`sender`] puts frames on the wire with an AF_PACKET socket.

pub mod frame;
pub mod schedule;
pub mod sender;

pub use schedule::{Reason, Schedule, ScheduleConfig};
pub use sender::{Error, Sender};
