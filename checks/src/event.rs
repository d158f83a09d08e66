//! Typed health events for the consumers (real-server membership, VRRP tracking).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::health::{Change, Health};
use crate::spec::{Resolved, Target};

/// A checker changed state (or reported its first verdict, or a new dynamic weight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Index of the checker in the list given to the scheduler (a real server may have several).
    pub checker: usize,
    /// The real server.
    pub target: Target,
    /// keepalived block name of the checker (`HTTP_GET`, ...).
    pub kind: String,
    /// What happened.
    pub change: Change,
    /// The checker's verdict after the change.
    pub up: bool,
    /// Effective weight: the probe's dynamic weight, else the configured one.
    pub weight: u32,
    /// Why.
    pub reason: String,
    /// Duration of the probe that decided (`None` for the shutdown/omega report).
    pub latency: Option<Duration>,
}

impl Event {
    pub(crate) fn new(
        checker: usize,
        spec: &Resolved,
        health: &Health,
        change: Change,
        reason: String,
        latency: Option<Duration>,
    ) -> Self {
        Self {
            checker,
            target: spec.target.clone(),
            kind: spec.probe.keyword().into(),
            change,
            up: health.up,
            weight: health.weight.unwrap_or(spec.weight),
            reason,
            latency,
        }
    }
}
