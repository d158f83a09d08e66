//! Link-layer (AF_PACKET) socket addresses.

use socket2::{SockAddr, SockAddrStorage};

/// `sockaddr_ll` naming interface `ifindex` and ethertype `protocol` (host order; 0: none), for
/// `bind` or as the destination of one frame.
pub fn link_addr(ifindex: u32, protocol: u16) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_ll` is a sockaddr type of this platform and fits in the storage
    // (`view_as` asserts the size); all-zero is a valid `sockaddr_ll` we then fill in.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = protocol.to_be();
    ll.sll_ifindex = ifindex as i32;
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the storage holds an initialised `sockaddr_ll` of exactly `len` bytes.
    unsafe { SockAddr::new(storage, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_length() {
        let a = link_addr(7, 0x0806);
        assert_eq!(i32::from(a.family()), libc::AF_PACKET);
        assert_eq!(a.len() as usize, std::mem::size_of::<libc::sockaddr_ll>());
        // SAFETY: the address holds the `sockaddr_ll` written above; read unaligned from it.
        let ll: libc::sockaddr_ll =
            unsafe { std::ptr::read_unaligned(a.as_ptr().cast::<libc::sockaddr_ll>()) };
        assert_eq!((ll.sll_ifindex, u16::from_be(ll.sll_protocol)), (7, 0x0806));
    }
}
