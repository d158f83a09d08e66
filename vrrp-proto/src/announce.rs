//! When to announce: keepalived's gratuitous ARP / NA schedule, sans-IO.
//!
//! On becoming Master a burst of `master_repeat` rounds, and a second burst `master_delay` later
//! (switches that missed the first, or a peer's stale entry, get corrected); while Master a
//! refresh of `master_refresh_repeat` rounds every `master_refresh`. A Master that hears a
//! lower-priority advert (a split brain healing) sends `lower_prio_repeat` rounds now and again
//! after `lower_prio_delay`. Within a burst rounds are `interval` apart (0: back to back).
//!
//! A round is one message per virtual address; the caller sends them.

use std::collections::VecDeque;
use std::time::Duration;

/// keepalived's keys; a zero duration switches the corresponding step off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleConfig {
    pub master_delay: Duration,
    pub master_repeat: u32,
    pub master_refresh: Duration,
    pub master_refresh_repeat: u32,
    pub lower_prio_delay: Duration,
    pub lower_prio_repeat: u32,
    pub interval: Duration,
}

impl Default for ScheduleConfig {
    /// keepalived's defaults.
    fn default() -> Self {
        Self {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
            interval: Duration::ZERO,
        }
    }
}

/// Why announcing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    BecameMaster,
    LowerPriority,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Burst {
    next: Duration,
    remaining: u32,
}

/// The pending announcements of one instance.
#[derive(Debug, Clone)]
pub struct Schedule {
    cfg: ScheduleConfig,
    bursts: VecDeque<Burst>,
    next_refresh: Option<Duration>,
}

impl Schedule {
    pub fn new(cfg: ScheduleConfig) -> Self {
        Self {
            cfg,
            bursts: VecDeque::new(),
            next_refresh: None,
        }
    }

    /// Starts the bursts for `reason` at `now`.
    pub fn start(&mut self, now: Duration, reason: Reason) {
        let (repeat, delay) = match reason {
            Reason::BecameMaster => {
                self.bursts.clear();
                self.next_refresh =
                    (!self.cfg.master_refresh.is_zero()).then(|| now + self.cfg.master_refresh);
                (self.cfg.master_repeat, self.cfg.master_delay)
            }
            Reason::LowerPriority => (self.cfg.lower_prio_repeat, self.cfg.lower_prio_delay),
        };
        self.push(Burst {
            next: now,
            remaining: repeat,
        });
        if !delay.is_zero() {
            self.push(Burst {
                next: now + delay,
                remaining: repeat,
            });
        }
    }

    /// No longer Master: nothing more to announce.
    pub fn stop(&mut self) {
        self.bursts.clear();
        self.next_refresh = None;
    }

    /// How many rounds are due at `now`; advances the schedule past them.
    pub fn poll(&mut self, now: Duration) -> u32 {
        let mut rounds: u32 = 0;
        for b in self.bursts.iter_mut().filter(|b| b.next <= now) {
            // Counts are keepalived's (any u32): bursts due together saturate.
            if self.cfg.interval.is_zero() {
                rounds = rounds.saturating_add(b.remaining);
                b.remaining = 0;
            } else {
                rounds = rounds.saturating_add(1);
                b.remaining -= 1;
                b.next += self.cfg.interval;
            }
        }
        self.bursts.retain(|b| b.remaining > 0);
        if let Some(t) = self.next_refresh.filter(|t| *t <= now) {
            rounds = rounds.saturating_add(self.cfg.master_refresh_repeat);
            self.next_refresh = Some(t + self.cfg.master_refresh);
        }
        rounds
    }

    /// The next instant `poll` has something to do.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.bursts
            .iter()
            .map(|b| b.next)
            .chain(self.next_refresh)
            .min()
    }

    fn push(&mut self, b: Burst) {
        if b.remaining > 0 {
            self.bursts.push_back(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn master_bursts_back_to_back_then_delayed() {
        let mut s = Schedule::new(ScheduleConfig::default());
        assert_eq!(s.poll_timeout(), None);
        s.start(ms(1000), Reason::BecameMaster);
        assert_eq!(s.poll_timeout(), Some(ms(1000)));
        assert_eq!(s.poll(ms(1000)), 5);
        assert_eq!(s.poll_timeout(), Some(ms(6000)));
        assert_eq!(s.poll(ms(5999)), 0);
        assert_eq!(s.poll(ms(6000)), 5);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn spaced_rounds_and_refresh() {
        let mut s = Schedule::new(ScheduleConfig {
            master_delay: Duration::ZERO,
            master_repeat: 3,
            master_refresh: ms(10_000),
            master_refresh_repeat: 2,
            interval: ms(100),
            ..ScheduleConfig::default()
        });
        s.start(ms(0), Reason::BecameMaster);
        assert_eq!(s.poll(ms(0)), 1);
        assert_eq!(s.poll_timeout(), Some(ms(100)));
        assert_eq!(s.poll(ms(100)), 1);
        assert_eq!(s.poll(ms(200)), 1);
        assert_eq!(s.poll_timeout(), Some(ms(10_000)));
        assert_eq!(s.poll(ms(10_000)), 2);
        assert_eq!(s.poll_timeout(), Some(ms(20_000)));
        s.stop();
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.poll(ms(30_000)), 0);
    }

    #[test]
    fn lower_priority_adds_bursts_keeps_refresh() {
        let mut s = Schedule::new(ScheduleConfig {
            master_refresh: ms(60_000),
            lower_prio_repeat: 2,
            lower_prio_delay: ms(500),
            ..ScheduleConfig::default()
        });
        s.start(ms(0), Reason::BecameMaster);
        assert_eq!(s.poll(ms(0)), 5);
        s.start(ms(1000), Reason::LowerPriority);
        assert_eq!(s.poll(ms(1000)), 2);
        assert_eq!(s.poll(ms(1500)), 2);
        assert_eq!(
            s.poll_timeout(),
            Some(ms(5000)),
            "the master's second burst is still due"
        );
        assert_eq!(s.poll(ms(5000)), 5);
        assert_eq!(s.poll_timeout(), Some(ms(60_000)));
    }

    #[test]
    fn the_largest_counts_saturate() {
        let mut s = Schedule::new(ScheduleConfig {
            master_repeat: u32::MAX,
            master_refresh: ms(1),
            master_refresh_repeat: u32::MAX,
            lower_prio_repeat: u32::MAX,
            interval: Duration::ZERO,
            ..ScheduleConfig::default()
        });
        s.start(ms(0), Reason::BecameMaster);
        s.start(ms(0), Reason::LowerPriority);
        assert_eq!(s.poll(ms(1)), u32::MAX);
    }

    #[test]
    fn zero_repeat_sends_nothing() {
        let mut s = Schedule::new(ScheduleConfig {
            master_repeat: 0,
            ..ScheduleConfig::default()
        });
        s.start(ms(0), Reason::BecameMaster);
        assert_eq!(s.poll_timeout(), None);
    }
}
