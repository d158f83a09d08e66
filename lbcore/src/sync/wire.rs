//! IPVS connection synchronisation, protocol version 1, byte for byte as Linux sends it
//! (`net/netfilter/ipvs/ip_vs_sync.c`), plus vrrpd's trailer extension.
//!
//! A message (one UDP datagram, by default to 224.0.0.81:8848):
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+-------------------------------+
//! |  0 (v0 count) |    SyncID     |        Size (whole message)   |
//! +---------------+---------------+-------------------------------+
//! |  Count Conns  |  Version (1)  |        Spare, zero            |
//! +---------------+---------------+-------------------------------+
//! |  Count Conns entries, each padded to 32 bits                  |
//! +---------------------------------------------------------------+
//! |  [vrrpd trailer: "VRPD", version, records]                    |
//! +---------------------------------------------------------------+
//! ```
//!
//! An entry: type (bit 0: IPv6), protocol, version (4 bits, 0) and size (12 bits, options
//! included, padding excluded), flags (`IP_VS_CONN_F_*`), state, client/virtual/destination
//! ports, fwmark, timeout in seconds, then the client, virtual and destination addresses
//! (IPv4: 36 bytes in all, IPv6: 72), then options (type, length, data).
//!
//! **The trailer.** What IPVS has no field for (the one-arm NAT source address and port)
//! travels after the last counted entry, inside the message size: Linux's receiver walks
//! `Count Conns` entries and never looks past them, and Wireshark's `ipvs` dissector does
//! the same, so every standard field stays decodable by both. (An entry option would not:
//! Wireshark assumes fixed-size entries and misreads everything after one.) The trailer is
//! the magic `VRPD`, a version byte (1), then records of (entry index, type, length, data).
//! A message with no entry and a [`RESYNC`] record is a Backup asking the Master for its
//! whole table; a Linux receiver sees a message with no entry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPVS's default multicast group.
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// IPVS's default UDP port.
pub const DEFAULT_PORT: u16 = 8848;

/// Message header length.
pub const HEADER_LEN: usize = 8;
/// Entry lengths without options.
pub const V4_LEN: usize = 36;
pub const V6_LEN: usize = 72;
/// The smallest `maxlen` that holds a header, an IPv6 entry and its trailer record.
pub const MIN_MAXLEN: usize = HEADER_LEN + V6_LEN + TRAILER_HEAD + 3 + 18;

const VERSION: u8 = 1;
const TYPE_INET6: u8 = 1;
const SVER_SHIFT: u16 = 12;
const SVER_MASK: u16 = 0x0fff;

/// `IP_VS_CONN_F_*` (include/uapi/linux/ip_vs.h).
pub mod flags {
    pub const FWD_MASK: u32 = 0x0007;
    pub const MASQ: u32 = 0x0000;
    pub const TUNNEL: u32 = 0x0002;
    pub const DROUTE: u32 = 0x0003;
    pub const NOOUTPUT: u32 = 0x0080;
    pub const INACTIVE: u32 = 0x0100;
    pub const SEQ_MASK: u32 = 0x0600;
    pub const TEMPLATE: u32 = 0x1000;
}

/// Entry options (`IPVS_OPT_*`); a type with [`OPT_F_PARAM`] may be skipped when unknown.
const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
const OPT_F_PARAM: u8 = 1 << 6;
const SEQ_DATA_LEN: usize = 24;

const MAGIC: &[u8; 4] = b"VRPD";
const TRAILER_VERSION: u8 = 1;
const TRAILER_HEAD: usize = 5;
/// Trailer record: the one-arm NAT source (address, port) of the entry it names.
pub const SNAT: u8 = 1;
/// Trailer record (entry index 255, no data): send me your whole table.
pub const RESYNC: u8 = 2;

/// One connection entry (or persistence template, with [`flags::TEMPLATE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP; 0 for fwmark templates).
    pub protocol: u8,
    pub flags: u32,
    /// IPVS state number (for TCP: `conntrack::TcpState as u16`).
    pub state: u16,
    pub cport: u16,
    pub vport: u16,
    pub dport: u16,
    pub fwmark: u32,
    /// Seconds until the entry expires.
    pub timeout: u32,
    /// Client, virtual and destination addresses, all of one family.
    pub caddr: IpAddr,
    pub vaddr: IpAddr,
    pub daddr: IpAddr,
    /// Extension: the one-arm NAT source address and port.
    pub snat: Option<(IpAddr, u16)>,
}

impl Entry {
    fn v6(&self) -> bool {
        self.caddr.is_ipv6()
    }

    /// Bytes of the entry itself (no option is ever sent).
    pub fn wire_len(&self) -> usize {
        if self.v6() {
            V6_LEN
        } else {
            V4_LEN
        }
    }

    /// Bytes of its trailer record, if it has one.
    fn ext_len(&self) -> usize {
        match self.snat {
            Some((IpAddr::V4(_), _)) => 3 + 6,
            Some((IpAddr::V6(_), _)) => 3 + 18,
            None => 0,
        }
    }

    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
}

/// Why a message was dropped whole (nothing in it is used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("shorter than a header")]
    Short,
    #[error("size field {declared} but {actual} bytes")]
    Size { declared: u16, actual: usize },
    #[error("not a version 1 message")]
    Version,
    #[error("entry {0} runs past the message")]
    Truncated(u8),
    #[error("entry {0} has an unknown version")]
    EntryVersion(u8),
    #[error("entry {0} has an unknown type")]
    EntryType(u8),
    #[error("entry {0} has a bad option")]
    Option(u8),
    #[error("bad trailer record")]
    Trailer,
}

/// Why one entry was skipped (the rest of the message is used), as Linux skips it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Persistence-engine data (SIP): no engine here.
    PersistenceEngine,
    /// An option Linux would also refuse (unknown and mandatory).
    UnknownOption,
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub syncid: u8,
    pub entries: Vec<Result<Entry, Skipped>>,
    /// The sender asks for a full table ([`RESYNC`]).
    pub resync: bool,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr(b: &[u8], v6: bool) -> IpAddr {
    if v6 {
        let o: [u8; 16] = b[..16].try_into().expect("16 bytes");
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// Decodes one message, with Linux's checks in Linux's order (size, then version, then each
/// entry's bounds, version, type and options). Whatever is malformed drops the whole
/// message: a forged datagram installs nothing.
pub fn decode(buf: &[u8]) -> Result<Message, Malformed> {
    if buf.len() < HEADER_LEN {
        return Err(Malformed::Short);
    }
    let declared = be16(buf, 2);
    if declared as usize != buf.len() {
        return Err(Malformed::Size {
            declared,
            actual: buf.len(),
        });
    }
    // Version 0 (first byte = count) is not spoken: a v0 sender is a kernel set to
    // sync_version 0, whose entries cannot say IPv6, timeout or fwmark.
    if buf[0] != 0 || buf[5] != VERSION || be16(buf, 6) != 0 {
        return Err(Malformed::Version);
    }
    let count = buf[4];
    let mut m = Message {
        syncid: buf[1],
        entries: Vec::with_capacity(count as usize),
        resync: false,
    };
    let mut p = HEADER_LEN;
    for i in 0..count {
        if p + V4_LEN > buf.len() {
            return Err(Malformed::Truncated(i));
        }
        let ver_size = be16(buf, p + 2);
        let size = (ver_size & SVER_MASK) as usize;
        let end = p + size;
        if end > buf.len() {
            return Err(Malformed::Truncated(i));
        }
        if ver_size >> SVER_SHIFT != 0 {
            return Err(Malformed::EntryVersion(i));
        }
        m.entries.push(decode_entry(&buf[p..end], i)?);
        p += (size + 3) & !3;
    }
    if p < buf.len() {
        decode_trailer(&buf[p..], &mut m)?;
    }
    Ok(m)
}

fn decode_entry(e: &[u8], i: u8) -> Result<Result<Entry, Skipped>, Malformed> {
    // A size smaller than the fixed part (Linux: "p > msg_end" once past it).
    if e.len() < V4_LEN {
        return Err(Malformed::Truncated(i));
    }
    let v6 = match e[0] {
        0 => false,
        TYPE_INET6 => true,
        _ => return Err(Malformed::EntryType(i)),
    };
    let base = if v6 { V6_LEN } else { V4_LEN };
    if e.len() < base {
        return Err(Malformed::Truncated(i));
    }
    let alen = if v6 { 16 } else { 4 };
    let entry = Entry {
        protocol: e[1],
        flags: be32(e, 4),
        state: be16(e, 8),
        cport: be16(e, 10),
        vport: be16(e, 12),
        dport: be16(e, 14),
        fwmark: be32(e, 16),
        timeout: be32(e, 20),
        caddr: addr(&e[24..], v6),
        vaddr: addr(&e[24 + alen..], v6),
        daddr: addr(&e[24 + 2 * alen..], v6),
        snat: None,
    };
    let mut skipped = None;
    // Each option at most once, as Linux checks.
    let mut seen = [false; 4];
    let mut o = base;
    while o < e.len() {
        if o + 2 > e.len() {
            return Err(Malformed::Option(i));
        }
        let (ptype, plen) = (e[o], e[o + 1] as usize);
        o += 2;
        if plen == 0 || o + plen > e.len() {
            return Err(Malformed::Option(i));
        }
        let kind = ptype & !OPT_F_PARAM;
        match kind {
            OPT_SEQ_DATA | OPT_PE_DATA | OPT_PE_NAME => {
                if std::mem::replace(&mut seen[kind as usize], true)
                    || (kind == OPT_SEQ_DATA && plen != SEQ_DATA_LEN)
                {
                    return Err(Malformed::Option(i));
                }
                // Sequence adjustments (FTP helpers) are not done here: read, not used.
                if kind != OPT_SEQ_DATA {
                    skipped = Some(Skipped::PersistenceEngine);
                }
            }
            _ if ptype & OPT_F_PARAM != 0 => {}
            _ => skipped = skipped.or(Some(Skipped::UnknownOption)),
        }
        o += plen;
    }
    Ok(match skipped {
        Some(s) => Err(s),
        None => Ok(entry),
    })
}

fn decode_trailer(t: &[u8], m: &mut Message) -> Result<(), Malformed> {
    // Another implementation's bytes after the entries are its business, as for Linux.
    if t.len() < TRAILER_HEAD || &t[..4] != MAGIC || t[4] != TRAILER_VERSION {
        return Ok(());
    }
    let mut o = TRAILER_HEAD;
    while o < t.len() {
        if o + 3 > t.len() {
            return Err(Malformed::Trailer);
        }
        let (idx, kind, len) = (t[o], t[o + 1], t[o + 2] as usize);
        o += 3;
        if o + len > t.len() {
            return Err(Malformed::Trailer);
        }
        let data = &t[o..o + len];
        o += len;
        match kind {
            RESYNC if len == 0 => m.resync = true,
            SNAT => {
                let Some(Ok(e)) = m.entries.get_mut(idx as usize) else {
                    // A record for a skipped entry goes with it.
                    if matches!(m.entries.get(idx as usize), Some(Err(_))) {
                        continue;
                    }
                    return Err(Malformed::Trailer);
                };
                let v6 = e.caddr.is_ipv6();
                if len != if v6 { 18 } else { 6 } || e.snat.is_some() {
                    return Err(Malformed::Trailer);
                }
                let at = len - 2;
                e.snat = Some((addr(data, v6), be16(data, at)));
            }
            _ => {} // unknown records are skipped, so newer senders stay readable
        }
    }
    Ok(())
}

/// Builds messages up to `maxlen` bytes.
#[derive(Debug, Clone)]
pub struct Builder {
    syncid: u8,
    maxlen: usize,
    buf: Vec<u8>,
    trailer: Vec<u8>,
    count: u8,
    resync: bool,
}

impl Builder {
    pub fn new(syncid: u8, maxlen: usize) -> Self {
        let maxlen = maxlen.clamp(MIN_MAXLEN, u16::MAX as usize);
        let mut b = Self {
            syncid,
            maxlen,
            buf: Vec::with_capacity(maxlen),
            trailer: Vec::new(),
            count: 0,
            resync: false,
        };
        b.reset();
        b
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.buf
            .extend_from_slice(&[0, self.syncid, 0, HEADER_LEN as u8, 0, VERSION, 0, 0]);
        self.trailer.clear();
        self.count = 0;
        self.resync = false;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0 && !self.resync
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    fn total_with(&self, extra: usize, ext: usize) -> usize {
        let trailer = match (self.trailer.len(), ext) {
            (0, 0) => 0,
            (0, n) => TRAILER_HEAD + n,
            (t, n) => t + n,
        };
        self.buf.len() + extra + trailer
    }

    /// Adds `e` unless the message would exceed `maxlen` or 255 entries: `false` then
    /// (send this one with [`Builder::finish`] and push again).
    pub fn push(&mut self, e: &Entry) -> bool {
        if self.count == u8::MAX || self.total_with(e.wire_len(), e.ext_len()) > self.maxlen {
            return false;
        }
        let v6 = e.v6();
        let start = self.buf.len();
        self.buf.push(if v6 { TYPE_INET6 } else { 0 });
        self.buf.push(e.protocol);
        self.buf
            .extend_from_slice(&(e.wire_len() as u16).to_be_bytes());
        self.buf.extend_from_slice(&e.flags.to_be_bytes());
        for v in [e.state, e.cport, e.vport, e.dport] {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self.buf.extend_from_slice(&e.fwmark.to_be_bytes());
        self.buf.extend_from_slice(&e.timeout.to_be_bytes());
        for a in [e.caddr, e.vaddr, e.daddr] {
            push_addr(&mut self.buf, a, v6);
        }
        debug_assert_eq!(self.buf.len() - start, e.wire_len());
        if let Some((a, port)) = e.snat {
            self.trailer_head();
            self.trailer
                .extend_from_slice(&[self.count, SNAT, (e.ext_len() - 3) as u8]);
            push_addr(&mut self.trailer, a, v6);
            self.trailer.extend_from_slice(&port.to_be_bytes());
        }
        self.count += 1;
        true
    }

    fn trailer_head(&mut self) {
        if self.trailer.is_empty() {
            self.trailer.extend_from_slice(MAGIC);
            self.trailer.push(TRAILER_VERSION);
        }
    }

    /// Marks the message as a request for the peer's whole table.
    pub fn request_resync(&mut self) {
        if !self.resync {
            self.trailer_head();
            self.trailer.extend_from_slice(&[u8::MAX, RESYNC, 0]);
            self.resync = true;
        }
    }

    /// Writes the message into `out` (replacing its contents) and starts a new one.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.buf);
        out.extend_from_slice(&self.trailer);
        out[4] = self.count;
        let size = out.len() as u16;
        out[2..4].copy_from_slice(&size.to_be_bytes());
        self.reset();
    }
}

fn push_addr(out: &mut Vec<u8>, a: IpAddr, v6: bool) {
    match (a, v6) {
        (IpAddr::V4(a), false) => out.extend_from_slice(&a.octets()),
        (IpAddr::V6(a), true) => out.extend_from_slice(&a.octets()),
        // Families are checked where entries are made; never send a mixed one.
        (IpAddr::V4(a), true) => out.extend_from_slice(&a.to_ipv6_mapped().octets()),
        (IpAddr::V6(_), false) => out.extend_from_slice(&[0; 4]),
    }
}

#[cfg(test)]
mod tests;
