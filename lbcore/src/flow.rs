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
}
