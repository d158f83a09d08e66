//! Layer-2 announcements of virtual addresses: gratuitous ARP for IPv4, unsolicited neighbour
//! advertisements for IPv6.
//!
//! [`frame`] builds and parses the frames (pure), [`sender`] puts frames on the wire with one
//! AF_PACKET socket for every interface. When to send them is protocol, not I/O:
//! `vrrp_proto::announce`.

pub mod frame;
pub mod sender;

pub use sender::{Error, Port, Sender};
