//! On-the-wire layout shared by the encoder and decoder, and the Internet checksum.
//!
//! ```text
//!  0               1               2               3
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IPvX Addr|
//! v2: | Auth Type | Adver Int (s) |           Checksum             |
//! v3: |(rsvd)|  Max Adver Int (cs, 12 bits)  |     Checksum        |
//! |                 IPvX Address(es): count × 4 or 16               |
//! v2 only: |             Authentication Data (8 bytes)              |
//! ```

use std::net::IpAddr;

use super::IPPROTO_VRRP;

/// Fixed header: version/type, VRID, priority, count, auth/interval, checksum.
pub const HEADER_LEN: usize = 8;
/// v2 trailing authentication data, present whatever the auth type (RFC 3768 §5.1).
pub const AUTH_LEN: usize = 8;
/// The only packet type VRRP defines.
pub const TYPE_ADVERT: u8 = 1;
/// v2 auth types (RFC 3768 §5.3.6; AH is refused at config load).
pub const AUTH_NONE: u8 = 0;
pub const AUTH_PASS: u8 = 1;
pub const AUTH_AH: u8 = 2;
/// v3 interval is the low 12 bits of bytes 4..6; the top 4 are reserved (sent as zero).
pub const V3_INTERVAL_MASK: u16 = 0x0fff;
/// Byte offset of the checksum.
pub const CHECKSUM_OFFSET: usize = 6;
/// RFC 3768 §5.1 and RFC 5798 §5.1.1: sent and required TTL / hop limit.
pub const TTL: u8 = 255;

/// Address length on the wire for the family of `ip`.
pub const fn addr_len(ip: &IpAddr) -> usize {
    match ip {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

/// Adds big-endian 16-bit words of `bytes` to a one's complement accumulator (odd tail padded).
///
/// `u64` so no realistic input can overflow before [`fold`].
#[inline]
pub fn sum_words(mut acc: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds the accumulator to 16 bits (end-around carry). The checksum field is its complement.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Sum of the pseudo-header v3 covers (RFC 5798 §5.2.8).
///
/// IPv4 (src, dst, zero, proto, 16-bit length) and IPv6 (src, dst, 32-bit length, zeros, next
/// header) sum to the same 16-bit words, so one function serves both.
#[inline]
pub fn pseudo_header_sum(src: &IpAddr, dst: &IpAddr, len: usize) -> u64 {
    let mut acc = u64::from(IPPROTO_VRRP) + len as u64;
    acc = sum_ip(acc, src);
    sum_ip(acc, dst)
}

#[inline]
fn sum_ip(acc: u64, ip: &IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => sum_words(acc, &a.octets()),
        IpAddr::V6(a) => sum_words(acc, &a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3 worked example: words 0001 f203 f4f5 f6f7 sum to ddf2 after folding.
    #[test]
    fn rfc1071_example() {
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum_words(0, &bytes)), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum_words(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn pseudo_header_v4_matches_explicit_layout() {
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let dst: IpAddr = "224.0.0.18".parse().unwrap();
        let explicit = [192, 0, 2, 1, 224, 0, 0, 18, 0, 112, 0, 20];
        assert_eq!(
            fold(pseudo_header_sum(&src, &dst, 20)),
            fold(sum_words(0, &explicit))
        );
    }

    #[test]
    fn pseudo_header_v6_matches_explicit_layout() {
        let src: IpAddr = "fe80::1".parse().unwrap();
        let dst: IpAddr = "ff02::12".parse().unwrap();
        let mut explicit = Vec::new();
        if let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) {
            explicit.extend_from_slice(&s.octets());
            explicit.extend_from_slice(&d.octets());
        }
        explicit.extend_from_slice(&40u32.to_be_bytes());
        explicit.extend_from_slice(&[0, 0, 0, 112]);
        assert_eq!(
            fold(pseudo_header_sum(&src, &dst, 40)),
            fold(sum_words(0, &explicit))
        );
    }
}
