//! VRRP payload → Advert, with the receive-side checks of RFC 3768 §7.1 / RFC 5798 §7.1.
//!
//! Check order follows keepalived 2.2.7 where the outcome is visible (which counter a packet
//! lands in): the VRID first (keepalived's dispatcher hands a packet only to the instance of its
//! VRID), then the length the packet's own header implies (address count, and the auth trailer
//! when it says v2: a v2-sized packet claiming v3 is a length error, as in keepalived), TTL,
//! version, type, checksum. A packet for another VRID on the shared multicast group is
//! therefore only ever a [`DropReason::VridMismatch`], never a TTL, checksum or count error of
//! ours. Two deliberate differences: v2 auth and interval are checked last, after the checksum
//! (keepalived checks them before the version, so a corrupted packet could count as an auth
//! failure), and the IPv6 checksum is verified here too (keepalived leaves it to the kernel's
//! `IPV6_CHECKSUM`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::{self, AUTH_AH, AUTH_LEN, AUTH_NONE, AUTH_PASS, HEADER_LEN, TYPE_ADVERT};
use super::{Advert, Auth, DropReason, Expect, RxMeta, Version};

/// Fully validates a received payload against what this instance expects.
///
/// `payload` is the VRRP message alone (IPv4: after [`super::split_ipv4`]); `meta` carries the
/// IP source, destination and TTL / hop limit.
pub fn decode(payload: &[u8], meta: &RxMeta, expect: &Expect) -> Result<Advert, DropReason> {
    let hdr = Header::parse(payload)?;
    if hdr.vrid != expect.vrid {
        return Err(DropReason::VridMismatch);
    }
    // The length the packet's own header implies (an unknown version as v3, no trailer).
    let body = Body::parse(payload, meta, hdr.version.unwrap_or(Version::V3))?;
    if expect.check_ttl && meta.ttl != wire::TTL {
        return Err(DropReason::BadTtl);
    }
    if hdr.version != Some(expect.version) {
        return Err(DropReason::BadVersion);
    }
    if hdr.kind != TYPE_ADVERT {
        return Err(DropReason::BadType);
    }
    body.verify_checksum(payload, meta, expect.version)?;
    let mut auth = body.auth(hdr.auth_type)?;
    if expect.version == Version::V2 {
        match (auth, expect.auth) {
            // The AH header around the advert was checked with our key before it got here.
            (Auth::Ah(_), Auth::Ah(key)) => auth = Auth::Ah(key),
            (got, want) if got == want => {}
            (Auth::Pass(_), Auth::Pass(_)) => return Err(DropReason::AuthFailure),
            _ => return Err(DropReason::AuthTypeMismatch),
        }
        if hdr.interval(expect.version) != expect.adver_int {
            return Err(DropReason::IntervalMismatch);
        }
    }
    Ok(hdr.into_advert(expect.version, &body, auth))
}

/// Decodes structure and checksum only, taking the version from the packet (2 or 3): for
/// dumps and tools. No TTL, VRID, auth or interval expectations are checked; a v2 auth type
/// other than none or password is still an error since it cannot be represented.
pub fn decode_unchecked(payload: &[u8], meta: &RxMeta) -> Result<Advert, DropReason> {
    let hdr = Header::parse(payload)?;
    let version = hdr.version.ok_or(DropReason::BadVersion)?;
    if hdr.kind != TYPE_ADVERT {
        return Err(DropReason::BadType);
    }
    let body = Body::parse(payload, meta, version)?;
    body.verify_checksum(payload, meta, version)?;
    let auth = body.auth(hdr.auth_type)?;
    Ok(hdr.into_advert(version, &body, auth))
}

/// The fixed 8-byte header, fields not yet validated.
struct Header {
    /// `None` for a version nibble other than 2 or 3.
    version: Option<Version>,
    kind: u8,
    vrid: u8,
    priority: u8,
    /// v2 auth type (byte 4); meaningless in v3.
    auth_type: u8,
    /// Bytes 4..6: v2 auth type + seconds, v3 reserved bits + centiseconds.
    word1: u16,
}

impl Header {
    #[inline]
    fn parse(payload: &[u8]) -> Result<Self, DropReason> {
        let h: &[u8; HEADER_LEN] = payload
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DropReason::TooShort)?;
        let version = match h[0] >> 4 {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        };
        Ok(Self {
            version,
            kind: h[0] & 0x0f,
            vrid: h[1],
            priority: h[2],
            auth_type: h[4],
            word1: u16::from_be_bytes([h[4], h[5]]),
        })
    }

    /// Advert interval in centiseconds.
    #[inline]
    fn interval(&self, version: Version) -> u16 {
        match version {
            Version::V2 => (self.word1 & 0xff) * 100,
            Version::V3 => self.word1 & wire::V3_INTERVAL_MASK,
        }
    }

    fn into_advert(self, version: Version, body: &Body<'_>, auth: Auth) -> Advert {
        Advert {
            version,
            vrid: self.vrid,
            priority: self.priority,
            max_adver_int: self.interval(version),
            addrs: body.addrs(),
            auth,
        }
    }
}

/// The variable part after family, length and checksum checks passed.
struct Body<'a> {
    /// `count` addresses, 4 or 16 bytes each.
    addrs: &'a [u8],
    v6: bool,
    /// v2 only.
    auth_data: Option<&'a [u8; AUTH_LEN]>,
}

impl<'a> Body<'a> {
    /// Checks family and count against length; `payload` holds a full header.
    fn parse(payload: &'a [u8], meta: &RxMeta, version: Version) -> Result<Self, DropReason> {
        let v6 = meta.src.is_ipv6();
        if v6 != meta.dst.is_ipv6() || (v6 && version == Version::V2) {
            return Err(DropReason::BadFamily);
        }
        let count = usize::from(payload[3]);
        let (alen, other_alen) = if v6 { (16, 4) } else { (4, 16) };
        let trailer = match version {
            Version::V2 => AUTH_LEN,
            Version::V3 => 0,
        };
        let addrs_end = HEADER_LEN + count * alen;
        if payload.len() != addrs_end + trailer {
            // A v3 advert whose length fits the other family's addresses was sent over the
            // wrong family (e.g. an IPv6 VIP list in an IPv4 packet).
            if version == Version::V3
                && count > 0
                && payload.len() == HEADER_LEN + count * other_alen
            {
                return Err(DropReason::BadFamily);
            }
            return Err(DropReason::BadAddrCount);
        }
        Ok(Self {
            addrs: &payload[HEADER_LEN..addrs_end],
            v6,
            auth_data: payload[addrs_end..].try_into().ok(),
        })
    }

    /// The VRRP checksum of `payload` (v3: with the IP pseudo-header).
    fn verify_checksum(
        &self,
        payload: &[u8],
        meta: &RxMeta,
        version: Version,
    ) -> Result<(), DropReason> {
        let acc = match version {
            Version::V2 => 0,
            Version::V3 => wire::pseudo_header_sum(&meta.src, &meta.dst, payload.len()),
        };
        if wire::fold(wire::sum_words(acc, payload)) != 0xffff {
            return Err(DropReason::BadChecksum);
        }
        Ok(())
    }

    /// The v2 auth field as a value ([`Auth::None`] for v3). Data after auth type 0 is ignored,
    /// as RFC 3768 §5.3.6.1 says. AH comes back keyless (the key is not on the wire); any
    /// other type is invalid (keepalived's two counters).
    fn auth(&self, auth_type: u8) -> Result<Auth, DropReason> {
        match self.auth_data {
            None => Ok(Auth::None),
            Some(_) if auth_type == AUTH_NONE => Ok(Auth::None),
            Some(data) if auth_type == AUTH_PASS => Ok(Auth::Pass(*data)),
            Some(_) if auth_type == AUTH_AH => Ok(Auth::Ah([0; AUTH_LEN])),
            Some(_) => Err(DropReason::BadAuthType),
        }
    }

    fn addrs(&self) -> Vec<IpAddr> {
        if self.v6 {
            self.addrs
                .chunks_exact(16)
                .map(|c| {
                    let o: [u8; 16] = c.try_into().expect("chunk of 16");
                    IpAddr::V6(Ipv6Addr::from(o))
                })
                .collect()
        } else {
            self.addrs
                .chunks_exact(4)
                .map(|c| IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])))
                .collect()
        }
    }
}
