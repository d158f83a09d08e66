//! Many non-blocking TCP connects waited on together: one epoll instance (registered once with
//! the tokio reactor) watches every connect in flight, and a FIFO per `connect_timeout` value
//! holds their deadlines (started in time order with one timeout, they expire in that order).
//!
//! Why not a task per connect: each would register its socket with the reactor (two epoll_ctl),
//! ask SO_ERROR after the wake, and arm a timer for `connect_timeout`. Here a connect costs
//! socket + connect + one EPOLL_CTL_ADD + close; the outcome is read from the event's flags
//! (SO_ERROR only for failures), close removes the registration, and timeouts are heap entries.

use std::io;
use std::task::{Context, Poll};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use socket2::Socket;
use std::time::Duration;
use sysio::fd::{Epoll as EpollFd, Registered};
use tokio::io::Interest;
use tokio::time::Instant;

use crate::flights::Flights;

struct InFlight {
    sock: Socket,
    checker: usize,
}

/// A finished connect (or, with `R` = the answer, half-open probe).
pub(crate) struct Finished<R = io::Result<()>> {
    /// The checker that started it.
    pub checker: usize,
    /// Connected, or why not; `None`: the deadline passed first.
    pub result: Option<R>,
    /// The earliest instant it can have finished: epoll is read in batches, so a connect is seen
    /// a while after it finished; the scheduler counts from here, not from when it looked.
    pub not_before: Instant,
}

/// Connects in flight.
pub(crate) struct Connector {
    epoll: Registered<EpollFd>,
    flights: Flights<InFlight>,
    /// Ready slots with their event flags and the earliest instant they can have finished,
    /// drained from epoll, not yet judged.
    ready: Vec<(u32, EpollFlags, Instant)>,
    /// When the last epoll_wait that emptied the ready list started: a connect it did not
    /// return was not finished then.
    drained_at: Instant,
    events: Vec<EpollEvent>,
}

/// Events taken from the kernel per epoll_wait.
const BATCH: usize = 256;

impl Connector {
    /// A new epoll instance on the current tokio reactor.
    pub(crate) fn new() -> io::Result<Self> {
        let epoll = EpollFd::new(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
        let epoll = Registered::new(epoll, Interest::READABLE)?;
        Ok(Self {
            epoll,
            flights: Flights::new(),
            ready: Vec::new(),
            drained_at: Instant::now(),
            events: vec![EpollEvent::empty(); BATCH],
        })
    }

    /// Watch a socket whose connect started at `now`, until it is writable or `timeout` passes.
    /// `now` must not go backwards between calls.
    pub(crate) fn watch(
        &mut self,
        sock: Socket,
        checker: usize,
        now: Instant,
        timeout: Duration,
    ) -> io::Result<()> {
        let epoll = &self.epoll.get_ref().get();
        self.flights.insert(now, timeout, |slot, _| {
            // Level-triggered EPOLLOUT: the socket is closed at its first event, so it fires
            // once.
            epoll.add(
                &sock,
                EpollEvent::new(EpollFlags::EPOLLOUT, u64::from(slot)),
            )?;
            Ok(InFlight { sock, checker })
        })
    }

    /// The earliest deadline still pending (possibly of a connect already finished).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.flights.next_deadline()
    }

    /// Take what the kernel has ready, without judging it yet (cheap: no per-socket syscall).
    /// Ready when anything was taken; otherwise the task is woken when epoll has events.
    pub(crate) fn poll_collect(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let before = self.ready.len();
        // Stops at Pending, or if the reactor failed (nothing becomes ready through it then).
        while let Poll::Ready(Ok(mut guard)) = self.epoll.poll_read_ready(cx) {
            let n = collect_into(
                self.epoll.get_ref().get(),
                &mut self.events,
                &mut self.ready,
                &mut self.drained_at,
            );
            if n < BATCH {
                // Drained: wait for the next edge (a newer one is not lost by clearing).
                guard.clear_ready();
            }
        }
        if self.ready.len() > before {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// One non-blocking epoll_wait into the ready list, whatever the reactor knows (used between
    /// dispatches, so that finished connects are seen and closed during a long burst).
    pub(crate) fn collect(&mut self) -> usize {
        collect_into(
            self.epoll.get_ref().get(),
            &mut self.events,
            &mut self.ready,
            &mut self.drained_at,
        )
    }

    /// Whether collected events wait to be judged.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Judge and close up to `max` collected connects.
    pub(crate) fn finish_ready(&mut self, max: usize, out: &mut Vec<Finished>) {
        let take = max.min(self.ready.len());
        let start = self.ready.len() - take;
        for i in start..self.ready.len() {
            let (slot, flags, not_before) = self.ready[i];
            let Some(f) = self.flights.release(slot) else {
                continue;
            };
            let result = judge(flags, || f.sock.take_error());
            out.push(Finished {
                checker: f.checker,
                result: Some(result),
                not_before,
            });
            // Dropping the socket closes it, which also removes it from the epoll set.
        }
        self.ready.truncate(start);
    }

    /// Give up on connects whose deadline passed.
    /// Deadlines of connects that already finished are dropped from the front too, so that the
    /// scheduler's timer is not armed for them.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<Finished>) {
        self.flights.expire(now, |_, f, at| {
            out.push(Finished {
                checker: f.checker,
                result: None,
                not_before: at,
            })
        });
    }
}

/// One non-blocking epoll_wait: ready slots go to `ready`, stamped with the previous drain.
fn collect_into(
    epoll: &Epoll,
    events: &mut [EpollEvent],
    ready: &mut Vec<(u32, EpollFlags, Instant)>,
    drained_at: &mut Instant,
) -> usize {
    let now = Instant::now();
    let n = epoll.wait(events, EpollTimeout::ZERO).unwrap_or(0);
    let not_before = *drained_at;
    ready.extend(
        events[..n]
            .iter()
            .map(|e| (e.data() as u32, e.events(), not_before)),
    );
    if n < events.len() {
        *drained_at = now;
    }
    n
}

/// A connect's result from its epoll flags: writable without error or hang-up is connected;
/// otherwise the socket's pending error says why (`error` is asked only then).
fn judge(
    flags: EpollFlags,
    error: impl FnOnce() -> io::Result<Option<io::Error>>,
) -> io::Result<()> {
    if !flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP)
        && flags.contains(EpollFlags::EPOLLOUT)
    {
        return Ok(());
    }
    match error() {
        Ok(Some(e)) | Err(e) => Err(e),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "connection closed during the handshake",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_is_connected_without_asking_so_error() {
        let r = judge(EpollFlags::EPOLLOUT, || panic!("SO_ERROR asked"));
        assert!(r.is_ok());
    }

    #[test]
    fn error_flags_report_the_pending_error() {
        let refused = || Ok(Some(io::Error::from_raw_os_error(libc::ECONNREFUSED)));
        let r = judge(
            EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP,
            refused,
        );
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ECONNREFUSED));
        let r = judge(EpollFlags::EPOLLHUP, || Ok(None));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
    }
}
