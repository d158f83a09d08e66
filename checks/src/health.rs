//! Sans-IO health state of one checker: keepalived's retry/alpha semantics plus rise hysteresis.
//!
//! The scheduler feeds probe outcomes in and gets back when to probe next and what changed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::Timers;

/// What one probe concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The probe passed.
    pub ok: bool,
    /// Human-readable reason ("connected", "status 500 not accepted", ...).
    pub reason: String,
    /// A weight reported by the probe (misc_dynamic, FILE_CHECK); `None` keeps the configured one.
    pub weight: Option<u32>,
}

impl Outcome {
    /// A pass.
    pub fn up(reason: impl Into<String>) -> Self {
        Self {
            ok: true,
            reason: reason.into(),
            weight: None,
        }
    }

    /// A failure.
    pub fn down(reason: impl Into<String>) -> Self {
        Self {
            ok: false,
            reason: reason.into(),
            weight: None,
        }
    }

    /// Attach a dynamic weight.
    pub fn with_weight(mut self, weight: Option<u32>) -> Self {
        self.weight = weight;
        self
    }
}

/// A state change worth telling consumers about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The target came up (or its first verdict was up).
    Up,
    /// The target went down (or its first verdict was down).
    Down,
    /// Still up, but the probe reported a new weight.
    Weight,
}

/// The result of feeding one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Delay until the next probe.
    pub next: Duration,
    /// What changed, if anything.
    pub change: Option<Change>,
}

/// Health of one checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Current verdict.
    pub up: bool,
    /// Whether any outcome was fed yet (the first one is always reported).
    pub has_run: bool,
    /// Retries spent since the last success (keepalived's `retry_it`).
    pub retry_it: u32,
    /// Consecutive successes while down (for `rise`).
    pub rise_it: u32,
    /// Consecutive failed probes.
    pub consecutive_failures: u32,
    /// Dynamic weight from the last passing probe, if it reported one.
    pub weight: Option<u32>,
}

impl Health {
    /// Initial state: down with `alpha`, up otherwise (keepalived).
    pub fn new(timers: &Timers) -> Self {
        Self {
            up: !timers.alpha,
            has_run: false,
            retry_it: 0,
            rise_it: 0,
            consecutive_failures: 0,
            weight: None,
        }
    }

    /// Feed a probe outcome.
    ///
    /// keepalived: a failure of an up checker is retried `retry` times, `delay_before_retry`
    /// apart, before the checker goes down; but the very first verdict is taken at once (no
    /// retries before anything ran). A down checker is probed every `dead_interval`.
    pub fn on_outcome(&mut self, timers: &Timers, outcome: &Outcome) -> Step {
        let first = !self.has_run;
        self.has_run = true;
        if outcome.ok {
            self.consecutive_failures = 0;
            self.retry_it = 0;
            let weight_changed = outcome.weight.is_some() && outcome.weight != self.weight;
            if outcome.weight.is_some() {
                self.weight = outcome.weight;
            }
            if self.up {
                let change = if first {
                    Some(Change::Up)
                } else if weight_changed {
                    Some(Change::Weight)
                } else {
                    None
                };
                return Step {
                    next: timers.delay_loop,
                    change,
                };
            }
            self.rise_it += 1;
            if self.rise_it >= timers.rise.max(1) {
                self.up = true;
                self.rise_it = 0;
                return Step {
                    next: timers.delay_loop,
                    change: Some(Change::Up),
                };
            }
            // Still rising: keep probing at the healthy pace.
            return Step {
                next: timers.delay_loop,
                change: first.then_some(Change::Down),
            };
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.rise_it = 0;
        if self.up {
            if !first && self.retry_it < timers.retry {
                self.retry_it += 1;
                return Step {
                    next: timers.delay_before_retry,
                    change: None,
                };
            }
            self.up = false;
            self.retry_it = 0;
            return Step {
                next: timers.dead_interval,
                change: Some(Change::Down),
            };
        }
        Step {
            next: timers.dead_interval,
            change: first.then_some(Change::Down),
        }
    }
}

/// When a checker's next probe is due: keepalived waits `wait` after a probe ends. The wait
/// counts from when the probe would have ended had it started on time (`due`, then `took`) and
/// been seen at once, so neither the scheduler's lateness nor the delay before it looked shifts
/// the checker's phase (probes delayed together are not bunched together for good); never
/// before `seen`. Generic over the clock: the scheduler's instants, or plain durations.
pub fn next_due<T>(due: T, took: Duration, wait: Duration, seen: T) -> T
where
    T: Copy + Ord + std::ops::Add<Duration, Output = T>,
{
    (due + took + wait).max(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timers(retry: u32) -> Timers {
        Timers {
            delay_loop: Duration::from_secs(10),
            delay_before_retry: Duration::from_secs(2),
            dead_interval: Duration::from_secs(30),
            retry,
            ..Timers::default()
        }
    }

    #[test]
    fn up_target_survives_retry_failures_then_goes_down() {
        let t = timers(2);
        let mut h = Health::new(&t);
        assert_eq!(
            h.on_outcome(&t, &Outcome::up("ok")).change,
            Some(Change::Up)
        );
        let s = h.on_outcome(&t, &Outcome::down("refused"));
        assert_eq!(
            (s.next, s.change, h.up),
            (Duration::from_secs(2), None, true)
        );
        let s = h.on_outcome(&t, &Outcome::down("refused"));
        assert_eq!((s.next, s.change), (Duration::from_secs(2), None));
        let s = h.on_outcome(&t, &Outcome::down("refused"));
        assert_eq!(
            (s.next, s.change, h.up),
            (Duration::from_secs(30), Some(Change::Down), false)
        );
        assert_eq!(h.consecutive_failures, 3);
        let s = h.on_outcome(&t, &Outcome::down("refused"));
        assert_eq!(
            (s.next, s.change),
            (Duration::from_secs(30), None),
            "down: dead interval"
        );
        let s = h.on_outcome(&t, &Outcome::up("ok"));
        assert_eq!(
            (s.next, s.change, h.consecutive_failures),
            (Duration::from_secs(10), Some(Change::Up), 0)
        );
    }

    #[test]
    fn success_resets_retry_budget() {
        let t = timers(1);
        let mut h = Health::new(&t);
        h.on_outcome(&t, &Outcome::up("ok"));
        assert_eq!(h.on_outcome(&t, &Outcome::down("x")).change, None);
        h.on_outcome(&t, &Outcome::up("ok"));
        assert_eq!(
            h.on_outcome(&t, &Outcome::down("x")).change,
            None,
            "budget restored"
        );
        assert_eq!(
            h.on_outcome(&t, &Outcome::down("x")).change,
            Some(Change::Down)
        );
    }

    #[test]
    fn first_failure_is_taken_at_once() {
        let t = timers(3);
        let mut h = Health::new(&t);
        assert_eq!(
            h.on_outcome(&t, &Outcome::down("x")).change,
            Some(Change::Down)
        );
        assert!(!h.up);
    }

    #[test]
    fn alpha_starts_down_and_rise_needs_consecutive_successes() {
        let mut t = timers(1);
        t.alpha = true;
        t.rise = 3;
        let mut h = Health::new(&t);
        assert!(!h.up);
        assert_eq!(
            h.on_outcome(&t, &Outcome::up("ok")).change,
            Some(Change::Down),
            "initial report"
        );
        assert_eq!(h.on_outcome(&t, &Outcome::down("x")).change, None);
        assert_eq!(h.on_outcome(&t, &Outcome::up("ok")).change, None);
        assert_eq!(h.on_outcome(&t, &Outcome::up("ok")).change, None);
        assert_eq!(
            h.on_outcome(&t, &Outcome::up("ok")).change,
            Some(Change::Up)
        );
        assert!(h.up);
    }

    #[test]
    fn dynamic_weight_change_is_reported_once() {
        let t = timers(0);
        let mut h = Health::new(&t);
        assert_eq!(
            h.on_outcome(&t, &Outcome::up("ok").with_weight(Some(5)))
                .change,
            Some(Change::Up)
        );
        assert_eq!(
            h.on_outcome(&t, &Outcome::up("ok").with_weight(Some(5)))
                .change,
            None
        );
        assert_eq!(
            h.on_outcome(&t, &Outcome::up("ok").with_weight(Some(7)))
                .change,
            Some(Change::Weight)
        );
        assert_eq!(h.weight, Some(7));
    }

    #[test]
    fn the_next_probe_keeps_the_checkers_phase() {
        let ms = Duration::from_millis;
        // Due at 1000, took 30, interval 1000: due again at 2030 however late it started or
        // was seen...
        assert_eq!(next_due(ms(1000), ms(30), ms(1000), ms(1100)), ms(2030));
        // ...but never in the past of when the outcome was seen.
        assert_eq!(next_due(ms(1000), ms(30), ms(1000), ms(2500)), ms(2500));
    }
}
