//! Time as the balancer core sees it: milliseconds of a monotonic clock the caller reads.
//!
//! One type for every table (connections, persistence templates, the service snapshot, sync):
//! nothing in the core reads a clock, so the dataplane, the sync driver and tests hand the
//! same values in and tests can step time by hand.

/// Milliseconds of a monotonic clock (any origin, the same for everything compared).
pub type Millis = u64;

/// One second in [`Millis`].
pub const SECOND: Millis = 1000;

/// `secs` whole seconds in [`Millis`] (timeouts are configured in seconds, as IPVS's).
#[inline]
pub const fn secs(secs: u32) -> Millis {
    secs as Millis * SECOND
}

/// Whole seconds left from `now` until `deadline`, rounded up (0 once it has passed): what
/// travels in a sync entry's timeout field.
#[inline]
pub fn secs_left(deadline: Millis, now: Millis) -> u32 {
    u32::try_from(deadline.saturating_sub(now).div_ceil(SECOND)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_trip_and_round_up() {
        assert_eq!(secs(900), 900_000);
        assert_eq!(secs_left(10_000, 10_000), 0);
        assert_eq!(secs_left(10_001, 10_000), 1);
        assert_eq!(secs_left(12_000, 10_000), 2);
        assert_eq!(secs_left(5, 10_000), 0, "past deadlines are 0, not a wrap");
    }
}
