//! Connection synchronisation between the two nodes of a pair (keepalived's
//! `lvs_sync_daemon`), sans-IO: IPVS's sync protocol version 1 on the wire, so `tshark`
//! and Linux read it.
//!
//! - [`wire`]: the message codec, and vrrpd's trailer extension (one-arm NAT sources, full
//!   table requests).
//! - [`send`]: which connections the Master sends, and when.
//! - [`install`]: what the Backup accepts, checked against its own configuration.
//! - [`table`]: synchronised connections waiting for the worker that takes them over.
//! - [`session`]: one node's daemon as a state machine (batching, roles, full-table requests).
//! - [`counters`]: sent, received, installed, dropped by reason.
//!
//! The dataplane's driver (`dataplane::syncd`) owns the multicast socket and applies
//! [`install::Install`]s to the shared tables.

pub mod counters;
pub mod install;
pub mod send;
pub mod session;
pub mod table;
pub mod wire;

pub use counters::{SyncCounters, SyncDrop, SyncSnapshot};
pub use session::{Role, Session, SessionConfig};
