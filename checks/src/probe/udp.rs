//! UDP_CHECK: send `payload` on a connected socket; with `require_reply` a (matching) reply is
//! needed, without it only an ICMP port unreachable (seen as ECONNREFUSED) fails.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::health::Outcome;
use crate::spec::{Connect, Target, UdpCheck};

/// What came back within the wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A datagram.
    Reply(Vec<u8>),
    /// ICMP port unreachable.
    Refused,
    /// Nothing within the wait.
    Silence,
    /// Another socket error.
    Error(String),
}

/// keepalived's UDP_CHECK verdict.
pub fn verdict(spec: &UdpCheck, heard: &Heard) -> Outcome {
    match heard {
        Heard::Refused => Outcome::down("port unreachable"),
        Heard::Error(e) => Outcome::down(e.clone()),
        Heard::Silence if spec.require_reply => Outcome::down("no reply"),
        Heard::Silence => Outcome::up("no ICMP error"),
        Heard::Reply(data) => {
            if spec.min_reply_length.is_some_and(|m| data.len() < m) {
                return Outcome::down(format!("reply of {} bytes too short", data.len()));
            }
            if spec.max_reply_length.is_some_and(|m| data.len() > m) {
                return Outcome::down(format!("reply of {} bytes too long", data.len()));
            }
            if let Some(want) = &spec.reply_data {
                if !data.starts_with(want) {
                    return Outcome::down("reply data mismatch");
                }
            }
            Outcome::up(format!("reply of {} bytes", data.len()))
        }
    }
}

/// A prepared UDP_CHECK.
pub struct UdpProbe {
    spec: UdpCheck,
    dest: SocketAddr,
}

impl UdpProbe {
    /// Prepare.
    pub fn new(spec: &UdpCheck, target: &Target) -> Self {
        Self {
            spec: spec.clone(),
            dest: spec.connect.destination(target, 0),
        }
    }

    /// Send and listen for up to `wait`.
    pub async fn run(&self, wait: Duration) -> Outcome {
        verdict(
            &self.spec,
            &exchange(&self.spec.connect, self.dest, &self.spec.payload, wait).await,
        )
    }
}

/// Send one datagram on a connected socket and wait for one back.
pub async fn exchange(opts: &Connect, dest: SocketAddr, payload: &[u8], wait: Duration) -> Heard {
    let sock = match bind(opts, dest).await {
        Ok(s) => s,
        Err(e) => return Heard::Error(format!("socket: {e}")),
    };
    if let Err(e) = sock.connect(dest).await {
        return Heard::Error(format!("connect {dest}: {e}"));
    }
    if let Err(e) = sock.send(payload).await {
        return match e.kind() {
            io::ErrorKind::ConnectionRefused => Heard::Refused,
            _ => Heard::Error(format!("send: {e}")),
        };
    }
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(wait, sock.recv(&mut buf)).await {
        Err(_) => Heard::Silence,
        Ok(Ok(n)) => Heard::Reply(buf[..n].to_vec()),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Heard::Refused,
        Ok(Err(e)) => Heard::Error(format!("recv: {e}")),
    }
}

async fn bind(opts: &Connect, dest: SocketAddr) -> io::Result<UdpSocket> {
    let domain = if dest.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    s.set_nonblocking(true)?;
    if let Some(dev) = &opts.bind_if {
        s.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(mark) = opts.fwmark {
        s.set_mark(mark)?;
    }
    if let Some(src) = opts.source(&dest) {
        s.bind(&src.into())?;
    }
    UdpSocket::from_std(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_require_reply_only_refusal_fails() {
        let s = UdpCheck::default();
        assert!(verdict(&s, &Heard::Silence).ok);
        assert!(verdict(&s, &Heard::Reply(vec![1])).ok);
        assert!(!verdict(&s, &Heard::Refused).ok);
    }

    #[test]
    fn require_reply_checks_length_and_data() {
        let s = UdpCheck {
            require_reply: true,
            reply_data: Some(b"PONG".to_vec()),
            min_reply_length: Some(4),
            max_reply_length: Some(8),
            ..Default::default()
        };
        assert!(!verdict(&s, &Heard::Silence).ok);
        assert!(verdict(&s, &Heard::Reply(b"PONG ok".to_vec())).ok);
        assert!(!verdict(&s, &Heard::Reply(b"PING ok".to_vec())).ok);
        assert!(!verdict(&s, &Heard::Reply(b"PON".to_vec())).ok);
        assert!(!verdict(&s, &Heard::Reply(b"PONG too long".to_vec())).ok);
    }
}
