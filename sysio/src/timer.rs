//! A sub-millisecond one-shot timer on the reactor.
//!
//! tokio's timer wheel has millisecond ticks and rounds deadlines up, so a Backup would take
//! over about a millisecond after its Master_Down_Interval. keepalived wakes within tens of
//! microseconds; a timerfd on the runtime's reactor gives us the same precision.

use std::io;
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::Interest;
use tokio::time::Instant;

use crate::fd::Registered;

/// A one-shot timer, armed for the deadline of each wait.
#[derive(Debug)]
pub struct Timer {
    fd: Registered<TimerFd>,
    /// The deadline the timerfd is armed for, so a wait for the same deadline (the common
    /// case: a packet arrived and the deadline did not move) costs no system call.
    armed: Option<Instant>,
}

impl Timer {
    pub fn new() -> io::Result<Self> {
        let tfd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(Self {
            fd: Registered::new(tfd, Interest::READABLE)?,
            armed: None,
        })
    }

    /// Waits until `deadline`; forever when there is none. Cancel-safe: a dropped wait leaves
    /// the timer armed; the next call keeps it for the same deadline or re-arms it (which also
    /// clears stale expirations).
    pub async fn sleep_until(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let Some(deadline) = deadline else {
            return std::future::pending().await;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        if self.armed != Some(deadline) {
            // A zero it_value would disarm the timer; anything left is at least a nanosecond.
            let left = left.max(Duration::from_nanos(1));
            self.fd.get_ref().set(
                Expiration::OneShot(TimeSpec::from_duration(left)),
                TimerSetTimeFlags::empty(),
            )?;
            self.armed = Some(deadline);
        }
        let res = self
            .fd
            .read_with(|t| t.wait().map_err(io::Error::from))
            .await;
        self.armed = None;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_after_the_deadline_not_before() {
        let mut t = Timer::new().unwrap();
        let start = Instant::now();
        let deadline = start + Duration::from_micros(2500);
        t.sleep_until(Some(deadline)).await.unwrap();
        assert!(Instant::now() >= deadline);
    }

    #[tokio::test]
    async fn past_deadline_returns_at_once_and_rearming_works() {
        let mut t = Timer::new().unwrap();
        t.sleep_until(Some(Instant::now() - Duration::from_millis(1)))
            .await
            .unwrap();
        // A wait abandoned half-way must not make the next one return early.
        let _ = tokio::time::timeout(
            Duration::from_millis(1),
            t.sleep_until(Some(Instant::now() + Duration::from_millis(50))),
        )
        .await;
        let deadline = Instant::now() + Duration::from_millis(5);
        t.sleep_until(Some(deadline)).await.unwrap();
        assert!(Instant::now() >= deadline);
    }
}
