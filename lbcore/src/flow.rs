//! Flow identity and the deterministic hashing every node agrees on.
//!
//! Hashes here must be identical on both nodes of the pair (and across
//! restarts) so that sh/dh/mh send a re-sent packet to the same real server
//! after a failover: no per-process random keys.

use std::net::IpAddr;

use crate::spec::Protocol;

/// A transport 5-tuple, as seen in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub proto: Protocol,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
}

impl FlowKey {
    /// The same flow seen from the other side.
    pub fn reversed(&self) -> Self {
        Self {
            proto: self.proto,
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }
}

/// The TCP flags that drive the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub fin: bool,
    pub ack: bool,
    pub rst: bool,
}

impl TcpFlags {
    pub const SYN: Self = Self {
        syn: true,
        fin: false,
        ack: false,
        rst: false,
    };
    pub const SYN_ACK: Self = Self {
        syn: true,
        fin: false,
        ack: true,
        rst: false,
    };
    pub const ACK: Self = Self {
        syn: false,
        fin: false,
        ack: true,
        rst: false,
    };
    pub const FIN_ACK: Self = Self {
        syn: false,
        fin: true,
        ack: true,
        rst: false,
    };
    pub const RST: Self = Self {
        syn: false,
        fin: false,
        ack: false,
        rst: true,
    };
}

/// Hasher for per-worker tables keyed by [`FlowKey`]: a multiply-xor fold
/// with a per-table random seed. Several times cheaper than SipHash on a
/// 5-tuple; the secret seed keeps colliding keys hard to craft from outside.
#[derive(Debug, Clone, Copy)]
pub struct FlowHashBuilder(u64);

impl Default for FlowHashBuilder {
    fn default() -> Self {
        use std::hash::BuildHasher;
        Self(std::collections::hash_map::RandomState::new().hash_one(0x6c62_636f_7265u64))
    }
}

impl std::hash::BuildHasher for FlowHashBuilder {
    type Hasher = FlowHasher;
    fn build_hasher(&self) -> FlowHasher {
        FlowHasher(self.0)
    }
}

/// See [`FlowHashBuilder`].
#[derive(Debug, Clone, Copy)]
pub struct FlowHasher(u64);

impl FlowHasher {
    #[inline]
    fn fold(&mut self, x: u64) {
        self.0 = (self.0 ^ x)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

impl std::hash::Hasher for FlowHasher {
    #[inline]
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.fold(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.fold(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.fold(i as u64 | 0x100);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.fold(i as u64 | 0x2_0000);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.fold(i as u64 | 0x4_0000_0000);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.fold(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.fold(i as u64);
    }
}

/// splitmix64's finaliser: a cheap bijective mixer with good avalanche.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Folds an address to 64 bits (IPv4 and IPv6 never collide on purpose: v6 is
/// mixed with a distinct constant).
#[inline]
pub fn fold_ip(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u64,
        IpAddr::V6(a) => {
            let v = u128::from(a);
            mix64((v >> 64) as u64 ^ 0x6a09_e667_f3bc_c908) ^ (v as u64)
        }
    }
}

/// Deterministic hash of an address, a port and a salt.
#[inline]
pub fn hash_addr_port(ip: IpAddr, port: u16, salt: u64) -> u64 {
    mix64(fold_ip(ip) ^ mix64(((port as u64) << 32) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// Keeps the first `prefix` bits of `ip` (persistence_granularity); `None`
/// or a too-long prefix keeps the whole address.
pub fn mask_ip(ip: IpAddr, prefix: Option<u8>) -> IpAddr {
    match (ip, prefix) {
        (_, None) => ip,
        (IpAddr::V4(a), Some(p)) if p < 32 => {
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::from((u32::from(a) & m).to_be_bytes())
        }
        (IpAddr::V6(a), Some(p)) if p < 128 => {
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::from((u128::from(a) & m).to_be_bytes())
        }
        _ => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_ip_applies_granularity() {
        let a: IpAddr = "198.51.100.77".parse().unwrap();
        assert_eq!(
            mask_ip(a, Some(24)),
            "198.51.100.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(mask_ip(a, Some(0)), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(mask_ip(a, None), a);
        assert_eq!(mask_ip(a, Some(32)), a);
        let b: IpAddr = "2001:db8:1:2::5".parse().unwrap();
        assert_eq!(
            mask_ip(b, Some(48)),
            "2001:db8:1::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn hashing_is_deterministic_and_port_sensitive() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        // Fixed value: must never change, both nodes of a pair rely on it.
        assert_eq!(hash_addr_port(a, 80, 0), hash_addr_port(a, 80, 0));
        assert_ne!(hash_addr_port(a, 80, 0), hash_addr_port(a, 81, 0));
        assert_ne!(hash_addr_port(a, 80, 0), hash_addr_port(a, 80, 1));
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
    }

    #[test]
    fn flow_hasher_separates_nearby_keys() {
        use std::hash::BuildHasher;
        let b = FlowHashBuilder::default();
        let k = FlowKey {
            proto: Protocol::Tcp,
            src: "198.51.100.7".parse().unwrap(),
            sport: 1000,
            dst: "203.0.113.1".parse().unwrap(),
            dport: 80,
        };
        let hashes: std::collections::HashSet<u64> = (0..1000u16)
            .map(|p| b.hash_one(FlowKey { sport: p, ..k }))
            .chain([b.hash_one(k.reversed())])
            .collect();
        assert_eq!(hashes.len(), 1001);
        assert_eq!(b.hash_one(k), b.hash_one(k));
    }
}
