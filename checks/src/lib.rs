//! keepalived-compatible health checks for real servers.
//!
//! [`spec`] holds the configuration types the config layer fills from keepalived.conf.

pub mod spec;
