//! The child's end of the link to its supervisor: one process-wide socket, set once when the
//! child starts ([`install`]). Outside a supervised child (unit tests, tools) every call is a
//! no-op, so callers need not care.
//!
//! Sends are synchronous and bounded ([`SEND_TIMEOUT`]): a Master registers its release
//! recipe *before* it adds the first address, so that however the child dies afterwards, the
//! parent knows what to take back.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::socket::{send, MsgFlags};

use super::wire::Message;

/// Longest a send may block (the parent reads continuously; a full buffer means it is stuck).
const SEND_TIMEOUT: Duration = Duration::from_millis(200);

struct Link {
    sock: OwnedFd,
    failures: AtomicU64,
}

static LINK: OnceLock<Link> = OnceLock::new();

/// Makes `sock` (a `SOCK_SEQPACKET` to the parent) this process's link. Once, in the child.
pub fn install(sock: OwnedFd) {
    let timeout = nix::sys::time::TimeVal::new(0, SEND_TIMEOUT.as_micros() as i64);
    if let Err(e) =
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::SendTimeout, &timeout)
    {
        tracing::warn!(error = %e, "supervisor link: cannot bound sends");
    }
    let _ = LINK.set(Link {
        sock,
        failures: AtomicU64::new(0),
    });
}

/// Whether this process runs under a supervisor.
pub fn supervised() -> bool {
    LINK.get().is_some()
}

/// `name` goes Master: should this process die, the parent replays `recipe`
/// ([`super::wire::Recipe`]).
pub fn master(name: &str, recipe: &[u8]) {
    tell(&Message::Master { name, recipe });
}

/// `name` released everything itself.
pub fn released(name: &str) {
    tell(&Message::Released { name });
}

/// An sd_notify(3) state for the parent to relay to systemd. False when not supervised.
pub fn notify(state: &str) -> bool {
    supervised() && tell(&Message::Notify(state))
}

fn tell(m: &Message<'_>) -> bool {
    let Some(link) = LINK.get() else {
        return false;
    };
    let bytes = m.encode();
    match send(link.sock.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL) {
        Ok(_) => true,
        Err(e) => {
            let n = link.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::error!(error = %e, failures = n, "cannot tell the supervisor; if this process dies, what it holds may stay behind");
            }
            false
        }
    }
}
