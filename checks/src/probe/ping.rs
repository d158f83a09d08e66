//! PING_CHECK: one ICMP/ICMPv6 echo over a raw socket; up on the matching echo reply.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::health::Outcome;
use crate::spec::{Connect, PingCheck, Target};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// RFC 1071 Internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from(chunk[0]) << 8
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request. For ICMPv6 the kernel fills the checksum (RFC 3542), so it stays 0.
pub fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether a packet read from the raw socket is our echo reply. IPv4 raw sockets deliver the IP
/// header, IPv6 ones do not.
pub fn is_reply(v6: bool, packet: &[u8], id: u16, seq: u16) -> bool {
    let icmp = if v6 {
        packet
    } else {
        let Some(first) = packet.first() else {
            return false;
        };
        let ihl = usize::from(first & 0x0f) * 4;
        if packet.len() < ihl {
            return false;
        }
        &packet[ihl..]
    };
    icmp.len() >= 8
        && icmp[0] == if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 }
        && icmp[1] == 0
        && icmp[4..6] == id.to_be_bytes()
        && icmp[6..8] == seq.to_be_bytes()
}

/// A prepared PING_CHECK.
pub struct PingProbe {
    connect: Connect,
    dest: IpAddr,
}

impl PingProbe {
    /// Prepare.
    pub fn new(spec: &PingCheck, target: &Target) -> Self {
        Self {
            connect: spec.connect.clone(),
            dest: spec.connect.connect_ip.unwrap_or(target.address),
        }
    }

    /// One echo, waiting up to `wait` for the reply.
    pub async fn run(&self, wait: Duration) -> Outcome {
        match tokio::time::timeout(wait, self.echo()).await {
            Ok(Ok(())) => Outcome::up("echo reply"),
            Ok(Err(e)) => Outcome::down(format!("ping {}: {e}", self.dest)),
            Err(_) => Outcome::down(format!("no echo reply from {}", self.dest)),
        }
    }

    async fn echo(&self) -> io::Result<()> {
        let v6 = self.dest.is_ipv6();
        let (domain, proto) = if v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let sock = Socket::new(domain, Type::RAW, Some(proto))?;
        sock.set_nonblocking(true)?;
        if let Some(dev) = &self.connect.bind_if {
            sock.bind_device(Some(dev.as_bytes()))?;
        }
        if let Some(src) = self.connect.bindto {
            sock.bind(&SocketAddr::new(src, 0).into())?;
        }
        let (id, seq): (u16, u16) = (rand::random(), rand::random());
        let req = echo_request(v6, id, seq, b"vrrpd-checks");
        // tokio's UdpSocket only issues send/recv syscalls, which work on any datagram-like
        // socket, raw ICMP included; it gives readiness without unsafe fd registration.
        let sock = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock))?;
        sock.send_to(&req, SocketAddr::new(self.dest, 0)).await?;
        let mut buf = [0u8; 1500];
        loop {
            let n = sock.recv(&mut buf).await?;
            if is_reply(v6, &buf[..n], id, seq) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksum_verifies() {
        let p = echo_request(false, 0x1234, 7, b"abc");
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(echo_request(true, 1, 2, b"")[..4], [128, 0, 0, 0]);
    }

    #[test]
    fn reply_matching() {
        let mut reply = vec![0x45u8; 1];
        reply.extend_from_slice(&[0; 19]);
        reply.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert!(is_reply(false, &reply, 0x1234, 7));
        assert!(!is_reply(false, &reply, 0x1234, 8), "other seq");
        reply[20] = 8;
        assert!(!is_reply(false, &reply, 0x1234, 7), "our own request");
        assert!(is_reply(true, &[129, 0, 0, 0, 0, 1, 0, 2], 1, 2));
        assert!(!is_reply(false, &[0x45], 1, 2));
    }
}
