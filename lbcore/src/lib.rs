//! Pure (sans-IO) core of vrrpd's in-process L4 balancer.
//!
//! - [`spec`]: service specs the config layer fills from keepalived.conf.
//!
//! Nothing here touches sockets or clocks: time is always an argument, so the
//! dataplane (AF_PACKET workers) and tests drive it the same way.

pub mod spec;
