//! TCP_CHECK: a full connect (see [`super::halfopen`] for `half_open`), closed with FIN as
//! keepalived 2.2.7 closes it, or with an RST (SO_LINGER 0: no FIN exchange, no TIME_WAIT on
//! the checker) with `reset_close`.
//!
//! The scheduler drives many of these at once without a task each: [`TcpProbe::start`] opens
//! the socket and starts the connect, the scheduler's [`crate::connector::Connector`] waits for
//! the answers on one epoll instance, and [`TcpProbe::verdict`] judges them.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{SockAddr, Socket};

use crate::health::Outcome;
use crate::probe::net;
use crate::spec::{Connect, Target, TcpCheck};

/// A prepared TCP_CHECK.
pub struct TcpProbe {
    connect: Connect,
    dest: SocketAddr,
    dest_raw: SockAddr,
    /// Close with FIN rather than RST.
    reset_close: bool,
    /// The success reason, formatted once rather than per probe.
    up_reason: String,
}

/// A connect in progress, or already decided (loopback and refusals often are).
pub enum Started {
    /// The handshake is under way: wait for the socket to become writable.
    Pending(Socket),
    /// The connect finished (`Ok`) or failed at once.
    Done(io::Result<()>),
}

impl TcpProbe {
    /// Prepare.
    pub fn new(spec: &TcpCheck, target: &Target) -> Self {
        let dest = spec.connect.destination(target, 0);
        Self {
            connect: spec.connect.clone(),
            dest,
            dest_raw: dest.into(),
            reset_close: spec.reset_close,
            up_reason: format!("connected to {dest}"),
        }
    }

    /// Open a non-blocking socket and start connecting; no waiting.
    pub fn start(&self) -> Started {
        let sock = match self.socket() {
            Ok(s) => s,
            Err(e) => return Started::Done(Err(e)),
        };
        match sock.connect(&self.dest_raw) {
            Ok(()) => Started::Done(Ok(())),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Started::Pending(sock),
            Err(e) => Started::Done(Err(e)),
        }
    }

    /// The probe's socket: connection options applied and, with `reset_close`, SO_LINGER 0.
    fn socket(&self) -> io::Result<Socket> {
        let sock = net::socket(&self.connect, self.dest)?;
        if self.reset_close {
            sock.set_linger(Some(Duration::ZERO))?;
        }
        Ok(sock)
    }

    /// Judge a finished connect.
    pub fn verdict(&self, result: io::Result<()>) -> Outcome {
        match result {
            Ok(()) => Outcome::up(self.up_reason.clone()),
            Err(e) => Outcome::down(format!("connect {}: {e}", self.dest)),
        }
    }

    /// Connect and close, on its own (the scheduler uses [`TcpProbe::start`] instead).
    pub async fn run(&self) -> Outcome {
        let connect = async {
            let sock = tokio::net::TcpSocket::from_std_stream(self.socket()?.into());
            sock.connect(self.dest).await.map(drop)
        };
        self.verdict(connect.await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> TcpProbe {
        TcpProbe::new(
            &TcpCheck::default(),
            &Target::new("192.0.2.7".parse().unwrap(), 8080),
        )
    }

    #[test]
    fn verdicts_name_the_destination() {
        let p = probe();
        let up = p.verdict(Ok(()));
        assert!(
            up.ok && up.reason == "connected to 192.0.2.7:8080",
            "{up:?}"
        );
        let down = p.verdict(Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)));
        assert!(!down.ok, "{down:?}");
        assert!(
            down.reason.starts_with("connect 192.0.2.7:8080: ") && down.reason.contains("refused"),
            "{down:?}"
        );
    }
}
