//! VRRP advertisement codec (RFC 3768 v2, RFC 5798 v3) for IPv4 and IPv6.
//!
//! Only bytes in, values out: a received packet that fails validation is a [`DropReason`]
//! the driver counts, never a panic or a log line per packet.
//!
//! Layout: [`wire`] holds the header layout and the Internet checksum, `encode` builds payloads,
//! `decode` validates them, [`ipv4`] strips the IPv4 header raw sockets deliver. IPv6 raw sockets
//! deliver the payload alone; the driver builds [`RxMeta`] from the control messages.

use std::net::IpAddr;

pub mod ah;
mod decode;
mod encode;
pub mod ipv4;
pub mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod vectors;

pub use decode::{decode, decode_unchecked};
pub use ipv4::split_ipv4;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// IPv4 multicast group of VRRP (224.0.0.18).
pub const MCAST_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (ff02::12).
pub const MCAST_V6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// Protocol version on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Version {
    V2,
    V3,
}

/// v2 authentication (RFC 3768 §5.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    #[default]
    None,
    /// Simple text password: the first 8 bytes, zero padded, as keepalived sends it.
    Pass([u8; 8]),
    /// IPsec AH ([`ah`]) keyed with the password's first 8 bytes, zero padded. The advert
    /// itself carries auth type 2 and zeros; the AH header around it authenticates it.
    Ah([u8; 8]),
}

/// One decoded (or to-be-encoded) advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2 carries whole seconds; stored ×100).
    pub max_adver_int: u16,
    pub addrs: Vec<IpAddr>,
    /// Always [`Auth::None`] for v3.
    pub auth: Auth,
}

/// What the receive path knows about the IP packet that carried the advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
}

/// What this instance expects, to validate a received advert against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub version: Version,
    pub vrid: u8,
    pub auth: Auth,
    /// v2 only: our advert interval in centiseconds; a mismatch is dropped (RFC 3768 §7.1).
    pub adver_int: u16,
    /// Drop adverts whose TTL / hop limit is not 255. Multicast only: keepalived does not check
    /// unicast adverts (a peer may be routed, and its IPv6 unicast adverts carry the default
    /// hop limit).
    pub check_ttl: bool,
}

/// Why a received packet was dropped. Each is a counter in the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DropReason {
    #[error("packet too short")]
    TooShort,
    #[error("TTL / hop limit is not 255")]
    BadTtl,
    #[error("bad version")]
    BadVersion,
    #[error("bad type")]
    BadType,
    #[error("bad checksum")]
    BadChecksum,
    #[error("VRID is not ours")]
    VridMismatch,
    #[error("address count or length inconsistent")]
    BadAddrCount,
    #[error("address family does not match the carrying IP packet")]
    BadFamily,
    /// v2 authentication type other than 0 (none), 1 (password) or 2 (AH).
    #[error("invalid authentication type")]
    BadAuthType,
    /// v2 authentication type not ours.
    #[error("authentication type mismatch")]
    AuthTypeMismatch,
    /// v2 password not ours, or an AH packet whose ICV or SPI does not check out.
    #[error("authentication failure")]
    AuthFailure,
    /// An AH sequence number already seen (a replayed advert).
    #[error("AH sequence number already seen")]
    AhReplay,
    #[error("advertisement interval mismatch (v2)")]
    IntervalMismatch,
    #[error("malformed IP header")]
    BadIpHeader,
    #[error("not VRRP")]
    NotVrrp,
    /// Our own advert looped back (not counted).
    #[error("our own advert")]
    Own,
    #[error("unicast source address is not a unicast peer")]
    NotAPeer,
}
