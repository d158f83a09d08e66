//! Trackers: what moves an instance's effective priority or puts it in FAULT.
//!
//! What a status means for an instance is protocol ([`vrrp_proto::track`]: weights,
//! contributions, the folded priority and fault). Here are the drivers that produce the
//! statuses ([`script`], [`link`], [`file`], [`process`]) and [`deleted`], which reports the
//! tracked addresses, routes and rules someone else removes.

pub mod deleted;
pub mod file;
pub mod link;
pub mod process;
pub mod script;

pub use vrrp_proto::track::{
    effective_priority, Contribution, Effective, TrackKey, TrackSet, Weight, MAX_WEIGHT,
};
