//! TCP_CHECK `half_open`: SYN over a raw socket; a SYN/ACK means the port is open, an RST that
//! it is closed. The kernel answers the SYN/ACK with an RST (our source port is held by a bound,
//! unconnected socket), so the server's application never sees a connection.

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use crate::health::Outcome;
use crate::probe::ping::checksum;
use crate::spec::{Connect, Target, TcpCheck};

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// What the server answered to our SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// SYN/ACK acknowledging our sequence number: listening.
    Open,
    /// RST: nothing listening.
    Closed,
}

/// A SYN segment (with an MSS option) and its checksum over the pseudo-header.
pub fn build_syn(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut seg = Vec::with_capacity(24);
    seg.extend_from_slice(&sport.to_be_bytes());
    seg.extend_from_slice(&dport.to_be_bytes());
    seg.extend_from_slice(&seq.to_be_bytes());
    seg.extend_from_slice(&0u32.to_be_bytes());
    seg.extend_from_slice(&[6 << 4, SYN]);
    seg.extend_from_slice(&64240u16.to_be_bytes());
    seg.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    seg.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let c = checksum(&[pseudo_header(src, dst, seg.len()), seg.clone()].concat());
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    seg
}

fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, 6]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            p.extend_from_slice(&v6(s));
            p.extend_from_slice(&v6(d));
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 6]);
        }
    }
    p
}

/// Classify a packet read from the raw TCP socket (IPv4 ones carry the IP header). Only the
/// server's answer to our SYN counts.
pub fn classify(
    v6: bool,
    packet: &[u8],
    server: SocketAddr,
    sport: u16,
    seq: u32,
) -> Option<Answer> {
    let seg = if v6 {
        packet
    } else {
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        if packet.len() < ihl
            || packet.get(12..16)?
                != match server.ip() {
                    IpAddr::V4(a) => a.octets(),
                    IpAddr::V6(_) => return None,
                }
        {
            return None;
        }
        &packet[ihl..]
    };
    if seg.len() < 20
        || seg[0..2] != server.port().to_be_bytes()
        || seg[2..4] != sport.to_be_bytes()
    {
        return None;
    }
    let flags = seg[13];
    let ack = u32::from_be_bytes([seg[8], seg[9], seg[10], seg[11]]);
    if flags & RST != 0 {
        return Some(Answer::Closed);
    }
    (flags & (SYN | ACK) == SYN | ACK && ack == seq.wrapping_add(1)).then_some(Answer::Open)
}

/// A prepared half-open TCP_CHECK.
pub struct HalfOpenProbe {
    connect: Connect,
    dest: SocketAddr,
}

impl HalfOpenProbe {
    /// Prepare.
    pub fn new(spec: &TcpCheck, target: &Target) -> Self {
        Self {
            connect: spec.connect.clone(),
            dest: spec.connect.destination(target, 0),
        }
    }

    /// One SYN; the caller bounds the wait.
    pub async fn run(&self) -> Outcome {
        match self.syn().await {
            Ok(Answer::Open) => Outcome::up(format!("SYN/ACK from {}", self.dest)),
            Ok(Answer::Closed) => Outcome::down(format!("RST from {}", self.dest)),
            Err(e) => Outcome::down(format!("half-open {}: {e}", self.dest)),
        }
    }

    async fn syn(&self) -> io::Result<Answer> {
        let v6 = self.dest.is_ipv6();
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        // Hold the source port with a bound, never connected socket so that no other socket
        // uses it and the kernel resets the server's SYN/ACK.
        let holder = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        if let Some(dev) = &self.connect.bind_if {
            holder.bind_device(Some(dev.as_bytes()))?;
        }
        let src_ip = match self.connect.bindto {
            Some(ip) => ip,
            None => local_ip_towards(self.dest)?,
        };
        holder.bind(&SocketAddr::new(src_ip, self.connect.bind_port.unwrap_or(0)).into())?;
        let sport = holder
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .unwrap_or(0);

        let raw = Socket::new(domain, Type::RAW, Some(Protocol::TCP))?;
        raw.set_nonblocking(true)?;
        if let Some(dev) = &self.connect.bind_if {
            raw.bind_device(Some(dev.as_bytes()))?;
        }
        if let Some(mark) = self.connect.fwmark {
            raw.set_mark(mark)?;
        }
        // tokio's UdpSocket only issues send/recv syscalls, which suit a raw socket too.
        let raw = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(raw))?;
        let seq: u32 = rand::random();
        raw.send_to(
            &build_syn(src_ip, self.dest.ip(), sport, self.dest.port(), seq),
            SocketAddr::new(self.dest.ip(), 0),
        )
        .await?;
        let mut buf = [0u8; 1500];
        loop {
            let n = raw.recv(&mut buf).await?;
            if let Some(a) = classify(v6, &buf[..n], self.dest, sport, seq) {
                drop(holder);
                return Ok(a);
            }
        }
    }
}

/// The source address the kernel would pick towards `dest` (a connected UDP socket sends
/// nothing).
fn local_ip_towards(dest: SocketAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = if dest.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let s = std::net::UdpSocket::bind(any)?;
    s.connect(SocketAddr::new(dest.ip(), dest.port().max(1)))?;
    Ok(s.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn syn_checksum_verifies() {
        let (s, d) = (v4("192.0.2.1"), v4("192.0.2.2"));
        let seg = build_syn(s, d, 40000, 80, 7);
        assert_eq!(seg.len(), 24);
        assert_eq!(seg[13], SYN);
        assert_eq!(
            checksum(&[pseudo_header(s, d, seg.len()), seg.clone()].concat()),
            0
        );
        let (s6, d6) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let seg6 = build_syn(s6, d6, 40000, 80, 7);
        assert_eq!(
            checksum(&[pseudo_header(s6, d6, seg6.len()), seg6].concat()),
            0
        );
    }

    fn reply(flags: u8, ack: u32) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1,
        ];
        p.extend_from_slice(&80u16.to_be_bytes());
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&ack.to_be_bytes());
        p.extend_from_slice(&[5 << 4, flags, 0, 0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn classifies_answers_to_our_syn_only() {
        let server: SocketAddr = "192.0.2.2:80".parse().unwrap();
        assert_eq!(
            classify(false, &reply(SYN | ACK, 8), server, 40000, 7),
            Some(Answer::Open)
        );
        assert_eq!(
            classify(false, &reply(RST | ACK, 8), server, 40000, 7),
            Some(Answer::Closed)
        );
        assert_eq!(
            classify(false, &reply(SYN | ACK, 9), server, 40000, 7),
            None,
            "wrong ack"
        );
        assert_eq!(
            classify(false, &reply(SYN | ACK, 8), server, 40001, 7),
            None,
            "other port"
        );
        let other: SocketAddr = "192.0.2.3:80".parse().unwrap();
        assert_eq!(
            classify(false, &reply(SYN | ACK, 8), other, 40000, 7),
            None,
            "other host"
        );
        assert_eq!(
            classify(
                true,
                &reply(SYN | ACK, 8)[20..],
                "[2001:db8::2]:80".parse().unwrap(),
                40000,
                7
            ),
            Some(Answer::Open)
        );
    }
}
