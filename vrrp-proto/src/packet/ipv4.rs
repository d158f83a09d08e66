//! IPv4 raw sockets (`IPPROTO_VRRP`) deliver the IP header with the payload; this strips it.

use std::net::{IpAddr, Ipv4Addr};

use super::{DropReason, RxMeta, IPPROTO_VRRP};

/// Minimum IPv4 header (IHL 5).
const MIN_HEADER: usize = 20;

/// Splits a received IPv4 packet into what the decoder needs and the VRRP payload.
///
/// The payload ends at the header's total length (trailing link padding is cut off). The header
/// checksum is not verified: the kernel dropped bad ones before the raw socket saw them.
/// Fragments are refused: the kernel reassembles before raw delivery and VRRP never fragments,
/// so one here is a malformed capture.
pub fn split_ipv4(packet: &[u8]) -> Result<(RxMeta, &[u8]), DropReason> {
    let h: &[u8; MIN_HEADER] = packet
        .get(..MIN_HEADER)
        .and_then(|h| h.try_into().ok())
        .ok_or(DropReason::BadIpHeader)?;
    if h[0] >> 4 != 4 {
        return Err(DropReason::BadIpHeader);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if ihl < MIN_HEADER || total < ihl || total > packet.len() {
        return Err(DropReason::BadIpHeader);
    }
    let frag = u16::from_be_bytes([h[6], h[7]]);
    // More-fragments flag or a non-zero offset; DF (0x4000) is fine.
    if frag & 0x3fff != 0 {
        return Err(DropReason::BadIpHeader);
    }
    if h[9] != IPPROTO_VRRP {
        return Err(DropReason::NotVrrp);
    }
    let meta = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
        dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
        ttl: h[8],
    };
    Ok((meta, &packet[ihl..total]))
}
