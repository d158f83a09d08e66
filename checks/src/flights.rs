//! Probes in flight, for the multiplexers that run many at once ([`crate::connector`],
//! [`crate::synner`]): a slab whose slots are reused with a generation, so a stale deadline,
//! event or answer cannot hit a later probe, and one FIFO of deadlines per distinct timeout
//! (started in time order with one timeout, they expire in that order).

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use tokio::time::Instant;

struct Slot<T> {
    /// Bumped when the slot is freed.
    generation: u32,
    flight: Option<T>,
}

/// (deadline, slot, generation of the slot).
type Deadline = (Instant, u32, u32);

pub(crate) struct Flights<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    /// Per distinct timeout: deadlines, oldest first.
    deadlines: Vec<(Duration, VecDeque<Deadline>)>,
}

impl<T> Flights<T> {
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            deadlines: Vec::new(),
        }
    }

    /// Stores the flight `make` builds from its slot and generation (it may need them first,
    /// as an epoll token or in a queued packet), due to end `timeout` after `now`. `now` must
    /// not go backwards between calls. When `make` fails nothing is stored.
    pub(crate) fn insert(
        &mut self,
        now: Instant,
        timeout: Duration,
        make: impl FnOnce(u32, u32) -> io::Result<T>,
    ) -> io::Result<()> {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    flight: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.slots[slot as usize].generation;
        let flight = match make(slot, generation) {
            Ok(f) => f,
            Err(e) => {
                self.free.push(slot);
                return Err(e);
            }
        };
        self.slots[slot as usize].flight = Some(flight);
        let queue = match self.deadlines.iter().position(|(t, _)| *t == timeout) {
            Some(q) => q,
            None => {
                self.deadlines.push((timeout, VecDeque::new()));
                self.deadlines.len() - 1
            }
        };
        self.deadlines[queue]
            .1
            .push_back((now + timeout, slot, generation));
        Ok(())
    }

    /// The flight in `slot`, if it is still the one of `generation`.
    pub(crate) fn get(&self, slot: u32, generation: u32) -> Option<&T> {
        let s = self.slots.get(slot as usize)?;
        (s.generation == generation).then_some(s.flight.as_ref()?)
    }

    /// The flight in `slot` and its generation.
    pub(crate) fn current(&self, slot: u32) -> Option<(&T, u32)> {
        let s = self.slots.get(slot as usize)?;
        Some((s.flight.as_ref()?, s.generation))
    }

    /// Ends the flight in `slot` and frees the slot.
    pub(crate) fn release(&mut self, slot: u32) -> Option<T> {
        let s = self.slots.get_mut(slot as usize)?;
        let f = s.flight.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot);
        Some(f)
    }

    /// The earliest deadline still pending (possibly of a flight already ended).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines
            .iter()
            .filter_map(|(_, q)| q.front().map(|(at, _, _)| *at))
            .min()
    }

    /// Ends the flights whose deadline passed, handing each to `expired` with its slot and
    /// deadline. Deadlines of flights that already ended are dropped from the front too, so
    /// that no timer is armed for them.
    pub(crate) fn expire(&mut self, now: Instant, mut expired: impl FnMut(u32, T, Instant)) {
        for q in 0..self.deadlines.len() {
            while let Some((at, slot, generation)) = self.deadlines[q].1.front().copied() {
                let stale = self.slots[slot as usize].generation != generation;
                if at > now && !stale {
                    break;
                }
                self.deadlines[q].1.pop_front();
                if stale {
                    continue;
                }
                if let Some(f) = self.release(slot) {
                    expired(slot, f, at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_with_a_new_generation_and_deadlines_expire_in_order() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut f: Flights<&str> = Flights::new();
        f.insert(t0, s, |slot, g| {
            assert_eq!((slot, g), (0, 0));
            Ok("a")
        })
        .unwrap();
        f.insert(t0, 2 * s, |_, _| Ok("b")).unwrap();
        assert!(f.insert(t0, s, |_, _| Err(io::Error::other("no"))).is_err());
        assert_eq!(f.next_deadline(), Some(t0 + s));
        // "a" ends early: its slot comes back with generation 1, its deadline is stale.
        assert_eq!(f.release(0), Some("a"));
        assert_eq!(f.get(0, 0), None);
        f.insert(t0, 3 * s, |slot, g| {
            assert_eq!((slot, g), (0, 1));
            Ok("c")
        })
        .unwrap();
        assert_eq!(f.get(0, 1), Some(&"c"));
        let mut out = vec![];
        f.expire(t0 + 2 * s, |slot, x, at| out.push((slot, x, at)));
        assert_eq!(out, vec![(1, "b", t0 + 2 * s)]);
        assert_eq!(f.next_deadline(), Some(t0 + 3 * s));
        f.expire(t0 + 3 * s, |slot, x, at| out.push((slot, x, at)));
        assert_eq!(out.last(), Some(&(0, "c", t0 + 3 * s)));
        assert_eq!(f.next_deadline(), None);
    }
}
