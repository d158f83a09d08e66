//! Bounded waiting: every wait in the lab has a deadline.

use std::time::{Duration, Instant};

/// Poll `cond` every `poll` until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, poll: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(poll.min(deadline - now));
    }
}
