//! Owned descriptors on tokio's reactor.
//!
//! `AsyncFd::register_with_interest` is `unsafe`: the descriptor must stay open, and be the same
//! descriptor, for as long as it is registered. [`OwnsFd`] is implemented here, once, for the
//! types that guarantee that (they open their descriptor when made, close it when dropped and
//! never swap it), and [`Registered`] hands out `&T` only, so nothing can replace the
//! descriptor under the reactor. Registering is then safe for every caller.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;

mod sealed {
    pub trait Sealed {}
}

/// A type that owns one descriptor for its whole life: opened by its constructor, closed by its
/// `Drop`, never replaced through a shared reference. Sealed: implemented here only.
pub trait OwnsFd: AsFd + sealed::Sealed {}

macro_rules! owns_fd {
    ($($t:ty),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl OwnsFd for $t {}
    )*};
}

owns_fd!(
    OwnedFd,
    socket2::Socket,
    std::net::UdpSocket,
    nix::sys::timerfd::TimerFd,
    nix::sys::inotify::Inotify,
    Epoll,
);
#[cfg(feature = "netlink")]
owns_fd!(netlink_sys::Socket);

/// An epoll instance that can be registered (nix's `Epoll` shows its descriptor only as a
/// public field).
#[derive(Debug)]
pub struct Epoll(nix::sys::epoll::Epoll);

impl Epoll {
    pub fn new(inner: nix::sys::epoll::Epoll) -> Self {
        Self(inner)
    }

    pub fn get(&self) -> &nix::sys::epoll::Epoll {
        &self.0
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0 .0.as_fd()
    }
}

/// `AsyncFd` wants `AsRawFd`; the owning types above give `AsFd`.
#[derive(Debug)]
pub struct Owned<T>(T);

impl<T: OwnsFd> AsRawFd for Owned<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// An owned descriptor registered with the current tokio reactor (deregistered and closed on
/// drop).
#[derive(Debug)]
pub struct Registered<T: OwnsFd> {
    fd: AsyncFd<Owned<T>>,
}

/// The operation would block (readiness was stale and has been cleared): wait again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldBlock;

/// Readiness of a [`Registered`] descriptor, as tokio reports it.
pub struct ReadyGuard<'a, T: OwnsFd>(AsyncFdReadyGuard<'a, Owned<T>>);

impl<T: OwnsFd> Registered<T> {
    /// Registers `io` for `interest` with the reactor of the current runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `AsyncFd` does).
    pub fn new(io: T, interest: Interest) -> io::Result<Self> {
        Self::try_new(io, interest).map_err(|(_, e)| e)
    }

    /// As [`Self::new`], handing `io` back when it cannot be registered.
    pub fn try_new(io: T, interest: Interest) -> Result<Self, (T, io::Error)> {
        // SAFETY: `T: OwnsFd` owns its descriptor, keeps it open until it is dropped and never
        // replaces it; `Owned<T>::as_raw_fd` always returns that descriptor. The `AsyncFd` owns
        // the `Owned<T>` and `Registered` gives out `&T` only, so the descriptor is the same
        // open one until the `AsyncFd` (and with it `T`) is dropped or taken apart by
        // `into_inner`, deregistering first.
        match unsafe { AsyncFd::register_with_interest(Owned(io), interest) } {
            Ok(fd) => Ok(Self { fd }),
            Err(e) => {
                let (Owned(io), e) = e.into_parts();
                Err((io, e))
            }
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.fd.get_ref().0
    }

    /// Takes the descriptor off the reactor (the kernel stops waking it for this one).
    pub fn into_inner(self) -> T {
        self.fd.into_inner().0
    }

    pub fn poll_read_ready<'a>(
        &'a self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<ReadyGuard<'a, T>>> {
        self.fd.poll_read_ready(cx).map_ok(ReadyGuard)
    }

    pub fn poll_write_ready<'a>(
        &'a self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<ReadyGuard<'a, T>>> {
        self.fd.poll_write_ready(cx).map_ok(ReadyGuard)
    }

    pub async fn readable(&self) -> io::Result<ReadyGuard<'_, T>> {
        self.fd.readable().await.map(ReadyGuard)
    }

    pub async fn writable(&self) -> io::Result<ReadyGuard<'_, T>> {
        self.fd.writable().await.map(ReadyGuard)
    }

    /// Waits until `f` (a non-blocking read) gets past `WouldBlock`, clearing stale readiness.
    pub async fn read_with<R>(&self, mut f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            let mut guard = self.readable().await?;
            if let Ok(r) = guard.try_io(&mut f) {
                return r;
            }
        }
    }
}

impl<T: OwnsFd> ReadyGuard<'_, T> {
    pub fn get_ref(&self) -> &T {
        &self.0.get_ref().get_ref().0
    }

    /// The descriptor is no longer ready: the next wait sleeps until the kernel says so.
    pub fn clear_ready(&mut self) {
        self.0.clear_ready();
    }

    /// Runs `f`; a `WouldBlock` from it clears the readiness and comes back as [`WouldBlock`].
    pub fn try_io<R>(
        &mut self,
        f: impl FnOnce(&T) -> io::Result<R>,
    ) -> Result<io::Result<R>, WouldBlock> {
        self.0
            .try_io(|fd| f(&fd.get_ref().0))
            .map_err(|_| WouldBlock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registered_udp_socket_reads_what_was_sent() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        let to = a.local_addr().unwrap();
        let r = Registered::new(a, Interest::READABLE).unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.send_to(b"ping", to).unwrap();
        let mut buf = [0u8; 8];
        let n = r.read_with(|s| s.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        // Nothing more: the readiness was cleared by the would-block read.
        let more = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            r.read_with(|s| s.recv(&mut buf)),
        )
        .await;
        assert!(more.is_err());
    }
}
