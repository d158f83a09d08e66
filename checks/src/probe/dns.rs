//! DNS_CHECK: one query over UDP; up when the answer is a NOERROR response to our query with at
//! least one answer record.

use std::net::SocketAddr;
use std::time::Duration;

use crate::health::Outcome;
use crate::probe::udp::{self, Heard};
use crate::probe::PrepareError;
use crate::spec::{Connect, DnsCheck, Target};

/// The numeric code of a `type` keyword.
pub fn qtype_code(name: &str) -> Option<u16> {
    Some(match name.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "RRSIG" => 46,
        "DNSKEY" => 48,
        _ => return None,
    })
}

/// Encode a query (RD set, class IN).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        q.push(label.len().min(63) as u8);
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// Judge a response to the query with `id`.
pub fn judge(id: u16, resp: &[u8]) -> Result<(), String> {
    if resp.len() < 12 {
        return Err(format!("short response ({} bytes)", resp.len()));
    }
    if u16::from_be_bytes([resp[0], resp[1]]) != id {
        return Err("response id mismatch".into());
    }
    if resp[2] & 0x80 == 0 {
        return Err("not a response".into());
    }
    let rcode = resp[3] & 0x0f;
    if rcode != 0 {
        return Err(format!("rcode {rcode}"));
    }
    if u16::from_be_bytes([resp[6], resp[7]]) == 0 {
        return Err("no answer".into());
    }
    Ok(())
}

/// A prepared DNS_CHECK.
pub struct DnsProbe {
    connect: Connect,
    dest: SocketAddr,
    name: String,
    qtype: u16,
}

impl DnsProbe {
    /// Prepare: validate the type.
    pub fn new(spec: &DnsCheck, target: &Target) -> Result<Self, PrepareError> {
        let qtype = qtype_code(&spec.qtype)
            .ok_or_else(|| PrepareError::Invalid(format!("DNS type {}", spec.qtype)))?;
        Ok(Self {
            connect: spec.connect.clone(),
            dest: spec.connect.destination(target, 53),
            name: spec.name.clone(),
            qtype,
        })
    }

    /// Query once, waiting up to `wait`.
    pub async fn run(&self, wait: Duration) -> Outcome {
        let id: u16 = rand::random();
        match udp::exchange(
            &self.connect,
            self.dest,
            &build_query(id, &self.name, self.qtype),
            wait,
        )
        .await
        {
            Heard::Reply(r) => match judge(id, &r) {
                Ok(()) => Outcome::up("answered"),
                Err(e) => Outcome::down(e),
            },
            Heard::Silence => Outcome::down("no response"),
            Heard::Refused => Outcome::down("port unreachable"),
            Heard::Error(e) => Outcome::down(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        let q = build_query(0x1234, "example.test.", 1);
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..], b"\x07example\x04test\x00\x00\x01\x00\x01");
        assert_eq!(&build_query(1, ".", 6)[12..], b"\x00\x00\x06\x00\x01");
    }

    #[test]
    fn response_judgement() {
        let mut r = build_query(7, ".", 6);
        r[2] |= 0x80;
        assert_eq!(judge(7, &r).unwrap_err(), "no answer");
        r[7] = 1;
        assert!(judge(7, &r).is_ok());
        assert!(judge(8, &r).unwrap_err().contains("id"));
        r[3] = 3;
        assert_eq!(judge(7, &r).unwrap_err(), "rcode 3");
        assert!(judge(7, &r[..5]).is_err());
        assert_eq!(qtype_code("aaaa"), Some(28));
        assert_eq!(qtype_code("BOGUS"), None);
    }
}
