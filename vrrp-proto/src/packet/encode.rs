//! Advert → VRRP payload. The kernel builds the IP header (TTL 255 is the socket's job).

use std::net::IpAddr;

use super::wire::{self, AUTH_AH, AUTH_LEN, AUTH_NONE, AUTH_PASS, HEADER_LEN, TYPE_ADVERT};
use super::{Advert, Auth, Version};

impl Advert {
    /// Length of the encoded payload.
    pub fn wire_len(&self) -> usize {
        let addrs: usize = self.addrs.iter().map(wire::addr_len).sum();
        let auth = match self.version {
            Version::V2 => AUTH_LEN,
            Version::V3 => 0,
        };
        HEADER_LEN + addrs + auth
    }

    /// Encodes the VRRP payload. `src`/`dst` are the IP addresses the packet will carry: v3
    /// checksums cover them through the pseudo-header; v2 ignores them.
    ///
    /// The caller (config validation) guarantees a consistent advert: v2 is IPv4 only, all
    /// `addrs` are of `src`'s family, at most 255 of them. Debug builds assert it; release builds
    /// encode what they are given (v2 interval saturates at 255 s, v3 at 4095 cs).
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.wire_len());
        self.encode_into(src, dst, &mut buf);
        buf
    }

    /// [`Advert::encode`] into a reused buffer (cleared first), for an allocation-free send path.
    pub fn encode_into(&self, src: IpAddr, dst: IpAddr, buf: &mut Vec<u8>) {
        debug_assert!(
            self.addrs.len() <= usize::from(u8::MAX),
            "too many addresses"
        );
        debug_assert!(
            self.addrs.iter().all(|a| a.is_ipv4() == src.is_ipv4()),
            "address family differs from the carrying packet"
        );
        debug_assert!(
            self.version == Version::V3 || src.is_ipv4(),
            "VRRPv2 is IPv4 only"
        );
        buf.clear();
        let version_nibble = match self.version {
            Version::V2 => 2u8,
            Version::V3 => 3u8,
        };
        buf.extend_from_slice(&[
            (version_nibble << 4) | TYPE_ADVERT,
            self.vrid,
            self.priority,
            self.addrs.len() as u8,
        ]);
        match self.version {
            Version::V2 => {
                let auth_type = match self.auth {
                    Auth::None => AUTH_NONE,
                    Auth::Pass(_) => AUTH_PASS,
                    Auth::Ah(_) => AUTH_AH,
                };
                let secs = (self.max_adver_int / 100).min(u16::from(u8::MAX)) as u8;
                buf.extend_from_slice(&[auth_type, secs]);
            }
            Version::V3 => {
                let cs = self.max_adver_int.min(wire::V3_INTERVAL_MASK);
                buf.extend_from_slice(&cs.to_be_bytes());
            }
        }
        buf.extend_from_slice(&[0, 0]); // checksum, filled below
        for a in &self.addrs {
            match a {
                IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
            }
        }
        let acc = match self.version {
            Version::V2 => {
                // Auth data is always present in v2; zeros but for a password (AH protects the
                // packet from outside it).
                let data = match self.auth {
                    Auth::None | Auth::Ah(_) => [0; AUTH_LEN],
                    Auth::Pass(p) => p,
                };
                buf.extend_from_slice(&data);
                0
            }
            Version::V3 => wire::pseudo_header_sum(&src, &dst, buf.len()),
        };
        let sum = !wire::fold(wire::sum_words(acc, buf));
        buf[wire::CHECKSUM_OFFSET..wire::CHECKSUM_OFFSET + 2].copy_from_slice(&sum.to_be_bytes());
    }
}
