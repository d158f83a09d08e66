//! Probe start times of every checker: a min-heap of compact keys (nanoseconds since an origin
//! and the checker's index packed in one `u128`), so that ordering is one integer comparison
//! and 10k entries stay small in cache.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use tokio::time::Instant;

/// When each checker probes next.
pub(crate) struct Timeline {
    origin: Instant,
    heap: BinaryHeap<Reverse<u128>>,
}

impl Timeline {
    /// Empty; instants before `origin` count as `origin`.
    pub(crate) fn new(origin: Instant, capacity: usize) -> Self {
        Self {
            origin,
            heap: BinaryHeap::with_capacity(capacity),
        }
    }

    /// Schedule checker `i` at `at`; an instant more than 584 years on (a keepalived timer
    /// can be 2^64 µs) is kept at that bound rather than wrapped into the past.
    pub(crate) fn push(&mut self, at: Instant, i: usize) {
        let ns = at.saturating_duration_since(self.origin).as_nanos();
        let ns = u64::try_from(ns).unwrap_or(u64::MAX);
        self.heap
            .push(Reverse((u128::from(ns) << 32) | (i as u32) as u128));
    }

    /// The earliest scheduled instant.
    pub(crate) fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(k)| self.unpack(*k).0)
    }

    /// The earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, usize)> {
        let (at, _) = self.unpack(self.heap.peek()?.0);
        if at > now {
            return None;
        }
        self.heap.pop().map(|Reverse(k)| self.unpack(k))
    }

    fn unpack(&self, k: u128) -> (Instant, usize) {
        let at = self.origin + Duration::from_nanos((k >> 32) as u64);
        (at, (k & u128::from(u32::MAX)) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_due_entries_in_time_order() {
        let t0 = Instant::now();
        let mut t = Timeline::new(t0, 4);
        let ms = Duration::from_millis;
        t.push(t0 + ms(30), 7);
        t.push(t0 + ms(10), 3);
        t.push(t0 + ms(20), 100_000);
        assert_eq!(t.peek(), Some(t0 + ms(10)));
        assert_eq!(t.pop_due(t0 + ms(5)), None, "nothing due yet");
        assert_eq!(t.pop_due(t0 + ms(25)), Some((t0 + ms(10), 3)));
        assert_eq!(t.pop_due(t0 + ms(25)), Some((t0 + ms(20), 100_000)));
        assert_eq!(t.pop_due(t0 + ms(25)), None);
        assert_eq!(t.pop_due(t0 + ms(30)), Some((t0 + ms(30), 7)));
        assert_eq!(t.peek(), None);
    }

    #[test]
    fn a_timer_of_keepalived_maximum_stays_in_the_future() {
        // delay_loop 99999999999 (accepted by keepalived): 10^20 ns does not fit a u64.
        let t0 = Instant::now();
        let mut t = Timeline::new(t0, 2);
        t.push(t0 + Duration::from_secs(99_999_999_999), 1);
        t.push(t0 + Duration::from_secs(1), 2);
        assert_eq!(t.pop_due(t0 + Duration::from_secs(1)).map(|e| e.1), Some(2));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(10_000)), None);
        assert!(t
            .peek()
            .is_some_and(|at| at > t0 + Duration::from_secs(500 * 365 * 86_400)));
    }
}
