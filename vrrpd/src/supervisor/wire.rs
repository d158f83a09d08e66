//! What the VRRP child tells its supervisor, as bytes on a `SOCK_SEQPACKET` pair (one
//! message per datagram, so no framing and no partial reads).
//!
//! The central piece is the **release recipe** of an instance: the exact priority-0 adverts
//! (payload, source, destination, interface, TTL) and the exact rtnetlink requests that remove
//! its addresses, routes and rules. The child builds it once per instance and registers it
//! before it adds the first address as Master; the parent only replays bytes, so it needs no
//! VRRP, no configuration and no allocation to hand over when the child dies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const TAG_MASTER: u8 = b'M';
const TAG_RELEASED: u8 = b'R';
const TAG_NOTIFY: u8 = b'N';

const ITEM_ADVERT: u8 = b'A';
const ITEM_NETLINK: u8 = b'L';

/// The largest message either side handles (the parent drops a larger one).
pub const MAX_MESSAGE: usize = 1 << 20;

/// One message from the child.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// `name` is (about to be) Master: if the child dies, replay `recipe`.
    Master { name: &'a str, recipe: &'a [u8] },
    /// `name` released everything itself: nothing to replay for it any more.
    Released { name: &'a str },
    /// An sd_notify(3) state for systemd (`READY=1`, `WATCHDOG=1`, ...), which only accepts
    /// them from the main process: the parent relays it.
    Notify(&'a str),
}

impl Message<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Message::Master { name, recipe } => {
                out.push(TAG_MASTER);
                put_str(&mut out, name);
                out.extend_from_slice(recipe);
            }
            Message::Released { name } => {
                out.push(TAG_RELEASED);
                put_str(&mut out, name);
            }
            Message::Notify(text) => {
                out.push(TAG_NOTIFY);
                out.extend_from_slice(text.as_bytes());
            }
        }
        out
    }

    /// `None` for anything malformed (a bug on the other side, ignored rather than trusted).
    pub fn decode(buf: &[u8]) -> Option<Message<'_>> {
        let (&tag, rest) = buf.split_first()?;
        match tag {
            TAG_MASTER => {
                let (name, recipe) = take_str(rest)?;
                Items(recipe).all(|i| i.is_some()).then_some(())?;
                Some(Message::Master { name, recipe })
            }
            TAG_RELEASED => {
                let (name, rest) = take_str(rest)?;
                rest.is_empty().then_some(Message::Released { name })
            }
            TAG_NOTIFY => std::str::from_utf8(rest).ok().map(Message::Notify),
            _ => None,
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

fn take_str(buf: &[u8]) -> Option<(&str, &[u8])> {
    let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
    let s = std::str::from_utf8(buf.get(2..2 + len)?).ok()?;
    Some((s, &buf[2 + len..]))
}

/// One priority-0 advert of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert<'a> {
    pub ifindex: u32,
    pub ttl: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The VRRP payload, checksum included (it covers `src` and `dst`).
    pub payload: &'a [u8],
}

/// One step of a recipe, in the order it is replayed (adverts before removals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    Advert(Advert<'a>),
    /// A complete rtnetlink request (header included).
    Netlink(&'a [u8]),
}

/// Builds a release recipe.
#[derive(Debug, Default, Clone)]
pub struct Recipe {
    bytes: Vec<u8>,
}

impl Recipe {
    pub fn advert(&mut self, a: &Advert<'_>) -> &mut Self {
        let mut body = Vec::with_capacity(40 + a.payload.len());
        body.extend_from_slice(&a.ifindex.to_be_bytes());
        body.push(a.ttl);
        match (a.src, a.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                body.push(4);
                body.extend_from_slice(&s.octets());
                body.extend_from_slice(&d.octets());
            }
            (s, d) => {
                body.push(6);
                body.extend_from_slice(&v6(s).octets());
                body.extend_from_slice(&v6(d).octets());
            }
        }
        body.extend_from_slice(a.payload);
        self.item(ITEM_ADVERT, &body)
    }

    pub fn netlink(&mut self, request: &[u8]) -> &mut Self {
        self.item(ITEM_NETLINK, request)
    }

    fn item(&mut self, kind: u8, body: &[u8]) -> &mut Self {
        // An item that does not fit is left out rather than cut (a request cut short would
        // be refused anyway); netlink requests and adverts are far below 64 KiB.
        if let Ok(len) = u16::try_from(body.len()) {
            self.bytes.push(kind);
            self.bytes.extend_from_slice(&len.to_be_bytes());
            self.bytes.extend_from_slice(body);
        }
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// The steps of a recipe's bytes; `Some(None)` marks a malformed one (and ends the walk).
pub struct Items<'a>(pub &'a [u8]);

impl<'a> Iterator for Items<'a> {
    type Item = Option<Item<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let item = parse_item(self.0);
        match item {
            Some((item, rest)) => {
                self.0 = rest;
                Some(Some(item))
            }
            None => {
                self.0 = &[];
                Some(None)
            }
        }
    }
}

fn parse_item(buf: &[u8]) -> Option<(Item<'_>, &[u8])> {
    let kind = *buf.first()?;
    let len = usize::from(u16::from_be_bytes([*buf.get(1)?, *buf.get(2)?]));
    let body = buf.get(3..3 + len)?;
    let rest = &buf[3 + len..];
    let item = match kind {
        ITEM_NETLINK => Item::Netlink(body),
        ITEM_ADVERT => {
            let ifindex = u32::from_be_bytes(body.get(..4)?.try_into().ok()?);
            let ttl = *body.get(4)?;
            let (src, dst, payload) = match *body.get(5)? {
                4 => {
                    let a: [u8; 4] = body.get(6..10)?.try_into().ok()?;
                    let b: [u8; 4] = body.get(10..14)?.try_into().ok()?;
                    (
                        IpAddr::V4(Ipv4Addr::from(a)),
                        IpAddr::V4(Ipv4Addr::from(b)),
                        &body[14..],
                    )
                }
                6 => {
                    let a: [u8; 16] = body.get(6..22)?.try_into().ok()?;
                    let b: [u8; 16] = body.get(22..38)?.try_into().ok()?;
                    (
                        IpAddr::V6(Ipv6Addr::from(a)),
                        IpAddr::V6(Ipv6Addr::from(b)),
                        &body[38..],
                    )
                }
                _ => return None,
            };
            Item::Advert(Advert {
                ifindex,
                ttl,
                src,
                dst,
                payload,
            })
        }
        _ => return None,
    };
    Some((item, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> Vec<u8> {
        let mut r = Recipe::default();
        r.advert(&Advert {
            ifindex: 7,
            ttl: 255,
            src: "192.0.2.1".parse().unwrap(),
            dst: "224.0.0.18".parse().unwrap(),
            payload: &[0x31, 51, 0, 1, 0, 10, 0xab, 0xcd, 192, 0, 2, 100],
        })
        .advert(&Advert {
            ifindex: 8,
            ttl: 64,
            src: "fe80::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            payload: &[0x31, 52, 0, 0],
        })
        .netlink(&[1, 2, 3, 4]);
        r.into_bytes()
    }

    #[test]
    fn recipe_round_trips_in_order() {
        let bytes = recipe();
        let items: Vec<_> = Items(&bytes).map(Option::unwrap).collect();
        assert_eq!(items.len(), 3);
        let Item::Advert(a) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!((a.ifindex, a.ttl), (7, 255));
        assert_eq!(a.dst, "224.0.0.18".parse::<IpAddr>().unwrap());
        assert_eq!(a.payload.len(), 12);
        let Item::Advert(b) = &items[1] else {
            panic!("{items:?}")
        };
        assert_eq!(b.src, "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!(b.payload, &[0x31, 52, 0, 0]);
        assert_eq!(items[2], Item::Netlink(&[1, 2, 3, 4]));
    }

    #[test]
    fn messages_round_trip() {
        let r = recipe();
        for m in [
            Message::Master {
                name: "VI_1",
                recipe: &r,
            },
            Message::Released { name: "VI_1" },
            Message::Notify("READY=1"),
        ] {
            assert_eq!(Message::decode(&m.encode()), Some(m));
        }
    }

    #[test]
    fn malformed_is_refused_not_trusted() {
        let r = recipe();
        let good = Message::Master {
            name: "VI_1",
            recipe: &r,
        }
        .encode();
        // A cut on an item boundary leaves a shorter valid recipe; any other is malformed.
        let head = 1 + 2 + "VI_1".len();
        let mut boundaries = vec![head];
        let mut at = 0;
        while at < r.len() {
            at += 3 + usize::from(u16::from_be_bytes([r[at + 1], r[at + 2]]));
            boundaries.push(head + at);
        }
        for cut in 1..=good.len() {
            let d = Message::decode(&good[..cut]);
            assert_eq!(d.is_some(), boundaries.contains(&cut), "cut {cut}: {d:?}");
        }
        assert_eq!(Message::decode(b""), None);
        assert_eq!(Message::decode(b"X"), None);
        assert_eq!(Message::decode(b"R\x00\x04VI_1extra"), None);
        assert_eq!(Message::decode(b"N\xff"), None);
    }
}
