//! Status snapshot of every checker, serializable for SIGUSR1 dumps and the runtime dump.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::health::{Health, Outcome};
use crate::spec::{Resolved, Target};

/// Health of one checker at snapshot time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckerStatus {
    /// Index of the checker.
    pub checker: usize,
    /// The real server.
    pub target: Target,
    /// keepalived block name.
    pub kind: String,
    /// Current verdict ("alpha" checkers start down).
    pub up: bool,
    /// Effective weight.
    pub weight: u32,
    /// Probes completed.
    pub probes: u64,
    /// Whether the last probe passed (`None` before the first).
    pub last_ok: Option<bool>,
    /// Reason given by the last probe.
    pub last_reason: Option<String>,
    /// Consecutive failed probes.
    pub consecutive_failures: u32,
    /// Duration of the last probe, in milliseconds.
    pub last_latency_ms: Option<f64>,
    #[serde(skip)]
    configured_weight: u32,
}

impl CheckerStatus {
    pub(crate) fn new(checker: usize, spec: &Resolved, health: &Health) -> Self {
        Self {
            checker,
            target: spec.target.clone(),
            kind: spec.probe.keyword().into(),
            up: health.up,
            weight: spec.weight,
            probes: 0,
            last_ok: None,
            last_reason: None,
            consecutive_failures: 0,
            last_latency_ms: None,
            configured_weight: spec.weight,
        }
    }

    pub(crate) fn record(&mut self, health: &Health, outcome: &Outcome, latency: Duration) {
        self.up = health.up;
        self.weight = health.weight.unwrap_or(self.configured_weight);
        self.probes += 1;
        self.last_ok = Some(outcome.ok);
        // Most probes repeat the last reason: keep the string rather than copy it again.
        if self.last_reason.as_deref() != Some(outcome.reason.as_str()) {
            self.last_reason = Some(outcome.reason.clone());
        }
        self.consecutive_failures = health.consecutive_failures;
        self.last_latency_ms = Some(latency.as_secs_f64() * 1e3);
    }
}

/// Probe start lateness against schedule over a bounded window of recent probes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lateness {
    /// Probes started since the scheduler began.
    pub started: u64,
    /// Recent lateness samples in microseconds (ring of [`Lateness::WINDOW`]).
    samples_us: Vec<u32>,
    next: usize,
}

impl Lateness {
    /// Samples kept.
    pub const WINDOW: usize = 1 << 17;

    pub(crate) fn record(&mut self, late: &[Duration]) {
        for d in late {
            let us = d.as_micros().min(u128::from(u32::MAX)) as u32;
            if self.samples_us.len() < Self::WINDOW {
                self.samples_us.push(us);
            } else {
                self.samples_us[self.next] = us;
                self.next = (self.next + 1) % Self::WINDOW;
            }
            self.started += 1;
        }
    }

    /// The `count` most recent samples (at most the window), oldest first: a reader polling
    /// more often than the window fills sees every probe.
    pub fn latest(&self, count: usize) -> Vec<Duration> {
        let len = self.samples_us.len();
        let count = count.min(len);
        // `next` is the oldest sample once the ring is full, else the end of the vector.
        let end = if len < Self::WINDOW { len } else { self.next };
        (0..count)
            .map(|k| (end + len - count + k) % len)
            .map(|i| Duration::from_micros(u64::from(self.samples_us[i])))
            .collect()
    }

    /// The `q` quantile (0.0..=1.0) of recent lateness.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.samples_us.is_empty() {
            return None;
        }
        let mut v = self.samples_us.clone();
        v.sort_unstable();
        let idx = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(Duration::from_micros(u64::from(v[idx])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_quantiles() {
        let mut l = Lateness::default();
        assert_eq!(l.quantile(0.5), None);
        let v: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        l.record(&v);
        assert_eq!(l.started, 100);
        assert_eq!(l.quantile(0.0), Some(Duration::from_millis(1)));
        assert_eq!(l.quantile(1.0), Some(Duration::from_millis(100)));
        let p50 = l.quantile(0.5).unwrap();
        assert!(p50 >= Duration::from_millis(50) && p50 <= Duration::from_millis(51));
    }

    #[test]
    fn latest_samples_in_order_across_the_ring_wrap() {
        let mut l = Lateness::default();
        let us = |n: u64| Duration::from_micros(n);
        l.record(&[us(1), us(2), us(3)]);
        assert_eq!(l.latest(2), vec![us(2), us(3)]);
        assert_eq!(
            l.latest(10),
            vec![us(1), us(2), us(3)],
            "at most what is kept"
        );
        let more: Vec<_> = (4..=Lateness::WINDOW as u64 + 5).map(us).collect();
        l.record(&more);
        let last = Lateness::WINDOW as u64 + 5;
        assert_eq!(l.latest(3), vec![us(last - 2), us(last - 1), us(last)]);
        assert_eq!(l.latest(usize::MAX).len(), Lateness::WINDOW);
        assert_eq!(
            l.latest(usize::MAX)[0],
            us(last - Lateness::WINDOW as u64 + 1)
        );
    }
}
