//! VRRP sockets: raw IP protocol 112, multicast and unicast.
