//! keepalived-compatible health checks for real servers.
//!
//! - [`spec`]: configuration types the config layer fills from keepalived.conf, and
//!   [`spec::resolve`] for keepalived's virtual server → real server → checker inheritance.
//! - [`health`]: the sans-IO per-checker state machine (retry, alpha, rise, dead interval).
//! - [`probe`]: one module per checker kind, each with a pure verdict function.
//! - [`script`]: a script line's words, as keepalived splits them.
//! - [`pool`]: sans-IO real-server liveness (every checker up, dynamic weights).
//! - [`scheduler`]: one async scheduler for every checker; emits [`event::Event`]s and keeps a
//!   [`status::CheckerStatus`] snapshot.

mod connector;
pub mod event;
mod flights;
pub mod health;
pub mod pool;
pub mod probe;
pub mod scheduler;
pub mod script;
pub mod spec;
pub mod status;
mod synner;
mod timeline;

pub use event::Event;
pub use health::{Change, Outcome};
pub use scheduler::{spawn, Failures, Handle, SpawnError};
pub use status::CheckerStatus;
