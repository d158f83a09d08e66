//! What the Master tells the Backup, and when (IPVS's `sync_threshold` /
//! `sync_refresh_period` ideas, by time rather than packet counts).
//!
//! A connection is sent when it reaches a state worth keeping (TCP established or closing,
//! any UDP flow), on every later state change, and again whenever its deadline has moved by
//! half its timeout (at least 10 s) since the Backup last heard of it, so the Backup's copy
//! never expires before the Master's while traffic flows. Half-open TCP connections are not
//! sent (as IPVS): a client whose handshake is cut by a failover sends its SYN again.
//! A connection controlled by a persistence template carries the template with it.

use std::net::IpAddr;

use super::install::SyncedConn;
use super::wire::{flags, Entry};
use crate::conntrack::{Conn, ConnState, TcpState, Timeouts};
use crate::flow::{mask_ip, FlowKey};
use crate::pool::DestId;
use crate::spec::{ForwardingMethod, Protocol};
use crate::time::{secs_left, Millis, SECOND};

/// IPVS's floor for the refresh interval (`10 * HZ` in ip_vs_sync_conn_needed).
const MIN_REFRESH: Millis = 10 * SECOND;

/// States worth sending (ip_vs_sync_conn_needed's list, and LAST_ACK, whose one-arm port
/// must stay reserved on the Backup).
fn worth_sending(s: ConnState) -> bool {
    use TcpState::*;
    match s {
        ConnState::Tcp(t) => matches!(
            t,
            Established | FinWait | Close | CloseWait | TimeWait | LastAck
        ),
        ConnState::Udp => true,
        // The dataplane does not forward SCTP.
        ConnState::Sctp { .. } => false,
    }
}

/// Whether `c` should be sent to the Backup now.
pub fn due(c: &Conn, timeouts: &Timeouts) -> bool {
    if !worth_sending(c.state) {
        return false;
    }
    match c.synced {
        None => true,
        Some((state, _)) if state != c.state => true,
        Some((_, expires)) => {
            let refresh = (timeouts.of(c.state) / 2).max(MIN_REFRESH);
            c.expires.saturating_sub(expires) >= refresh
        }
    }
}

fn fwd_flag(m: ForwardingMethod) -> u32 {
    match m {
        ForwardingMethod::Nat | ForwardingMethod::NatOneArm => flags::MASQ,
        ForwardingMethod::Tun(_) => flags::TUNNEL,
        ForwardingMethod::Dr => flags::DROUTE,
    }
}

fn ip_proto(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

/// The entry for connection `key` (client → virtual service), with the one-arm NAT source
/// it is hidden behind, if any.
pub fn conn_entry(key: &FlowKey, c: &Conn, snat: Option<(IpAddr, u16)>, now: Millis) -> Entry {
    let s = Synced {
        dest: c.dest.id,
        forwarding: c.dest.forwarding,
        state: c.state,
        no_output: c.no_output(),
        expires: c.expires,
        snat,
    };
    entry(key, &s, now)
}

/// The entry for a connection synchronised here and not taken over yet (a node that took
/// over sends it on to the node that comes back).
pub fn synced_entry(c: &SyncedConn, now: Millis) -> Entry {
    let s = Synced {
        dest: c.dest,
        forwarding: c.forwarding,
        state: c.state,
        no_output: c.no_output,
        expires: c.expires,
        snat: c.nat.and_then(|n| n.snat),
    };
    entry(&c.key, &s, now)
}

/// What an entry says of a connection besides its key.
struct Synced {
    dest: DestId,
    forwarding: ForwardingMethod,
    state: ConnState,
    no_output: bool,
    expires: Millis,
    snat: Option<(IpAddr, u16)>,
}

fn entry(key: &FlowKey, c: &Synced, now: Millis) -> Entry {
    let (state, established) = match c.state {
        ConnState::Tcp(t) => (t as u16, t == TcpState::Established),
        _ => (0, false),
    };
    let mut f = fwd_flag(c.forwarding);
    if !established {
        f |= flags::INACTIVE;
    }
    if c.no_output {
        f |= flags::NOOUTPUT;
    }
    Entry {
        protocol: ip_proto(key.proto),
        flags: f,
        state,
        cport: key.sport,
        vport: key.dport,
        dport: c.dest.port.unwrap_or(key.dport),
        fwmark: 0,
        timeout: secs_left(c.expires, now),
        caddr: key.src,
        vaddr: key.dst,
        daddr: c.dest.addr,
        snat: match c.forwarding {
            ForwardingMethod::NatOneArm => c.snat,
            _ => None,
        },
    }
}

/// A persistence template as IPVS syncs one: `<protocol, client network, 0, VIP, port,
/// server, server port>`, port 0 for a port-less (all ports) service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    pub proto: Protocol,
    /// The client address (masked with `persistence_granularity` here).
    pub client: IpAddr,
    pub granularity: Option<u8>,
    pub vip: IpAddr,
    pub vport: Option<u16>,
    pub dest: DestId,
    pub forwarding: ForwardingMethod,
    pub expires: Millis,
    /// Connections hold it: it lives at least `timeout` after the last of them.
    pub controlled: bool,
    /// `persistence_timeout` in seconds.
    pub timeout: u32,
}

/// The entry for a template.
pub fn template_entry(t: &Template, now: Millis) -> Entry {
    let vport = t.vport.unwrap_or(0);
    let left = secs_left(t.expires, now);
    Entry {
        protocol: ip_proto(t.proto),
        flags: flags::TEMPLATE | fwd_flag(t.forwarding),
        state: 0,
        cport: 0,
        vport,
        dport: t.dest.port.unwrap_or(vport),
        fwmark: 0,
        timeout: if t.controlled {
            left.max(t.timeout)
        } else {
            left
        },
        caddr: mask_ip(t.client, t.granularity),
        vaddr: t.vip,
        daddr: t.dest.addr,
        snat: None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::conntrack::{ConnTable, DestRef, Dir, NewConn, Packet};
    use crate::flow::TcpFlags;
    use crate::pool::RealServer;

    fn key(proto: Protocol) -> FlowKey {
        FlowKey {
            proto,
            src: Ipv4Addr::new(203, 0, 113, 10).into(),
            sport: 40000,
            dst: Ipv4Addr::new(203, 0, 113, 100).into(),
            dport: 80,
        }
    }

    fn table(first: Packet, proto: Protocol, m: ForwardingMethod) -> ConnTable {
        let mut rs = RealServer::new(Ipv4Addr::new(198, 51, 100, 11).into(), Some(8080), 1);
        rs.forwarding = m;
        let mut t = ConnTable::new(8, Timeouts::default());
        let new = NewConn {
            dest: DestRef::from(&rs),
            first,
            reply: None,
            persist: None,
        };
        t.insert(key(proto), new, 0, |_| {});
        t
    }

    #[test]
    fn tcp_is_sent_once_established_then_on_changes_and_refreshes() {
        let to = Timeouts::default();
        let k = key(Protocol::Tcp);
        let mut t = table(
            Packet::Tcp(TcpFlags::SYN),
            Protocol::Tcp,
            ForwardingMethod::Dr,
        );
        assert!(!due(t.get(&k, 0).unwrap(), &to), "SYN_RECV is not sent");
        t.touch(&k, Dir::Input, Packet::Tcp(TcpFlags::ACK), 10);
        assert!(due(t.get(&k, 10).unwrap(), &to), "established");
        t.mark_synced(&k);
        t.touch(&k, Dir::Input, Packet::Tcp(TcpFlags::ACK), 20);
        assert!(!due(t.get(&k, 20).unwrap(), &to), "nothing new");
        // 450 s (half of ESTABLISHED's 900) later the Backup's copy is refreshed.
        t.touch(&k, Dir::Input, Packet::Tcp(TcpFlags::ACK), 10 + 449_999);
        assert!(!due(t.get(&k, 0).unwrap(), &to));
        t.touch(&k, Dir::Input, Packet::Tcp(TcpFlags::ACK), 10 + 450_000);
        assert!(due(t.get(&k, 0).unwrap(), &to));
        t.mark_synced(&k);
        t.touch(&k, Dir::Input, Packet::Tcp(TcpFlags::FIN_ACK), 460_100);
        let c = t.get(&k, 460_100).unwrap();
        assert!(due(c, &to), "a state change is sent at once");
        let e = conn_entry(&k, c, None, 460_100);
        assert_eq!(e.state, TcpState::FinWait as u16);
        assert_eq!(e.flags, flags::DROUTE | flags::INACTIVE | flags::NOOUTPUT);
        assert_eq!(e.timeout, 120);
        assert_eq!((e.cport, e.vport, e.dport), (40000, 80, 8080));
    }

    #[test]
    fn udp_is_sent_at_once_with_its_one_arm_source() {
        let to = Timeouts::default();
        let k = key(Protocol::Udp);
        let t = table(Packet::Udp, Protocol::Udp, ForwardingMethod::NatOneArm);
        let c = t.get(&k, 0).unwrap();
        assert!(due(c, &to));
        let snat = Some((Ipv4Addr::new(198, 51, 100, 1).into(), 61000));
        let e = conn_entry(&k, c, snat, 1500);
        assert_eq!((e.protocol, e.state, e.timeout), (17, 0, 299));
        assert_eq!(e.flags, flags::MASQ | flags::INACTIVE | flags::NOOUTPUT);
        assert_eq!(e.snat, snat);
    }

    #[test]
    fn templates_are_masked_and_held_while_controlled() {
        let t = Template {
            proto: Protocol::Tcp,
            client: Ipv4Addr::new(203, 0, 113, 77).into(),
            granularity: Some(24),
            vip: Ipv4Addr::new(203, 0, 113, 100).into(),
            vport: None,
            dest: DestId {
                addr: Ipv4Addr::new(198, 51, 100, 12).into(),
                port: None,
            },
            forwarding: ForwardingMethod::Nat,
            expires: 5000,
            controlled: true,
            timeout: 360,
        };
        let e = template_entry(&t, 1000);
        assert_eq!(e.caddr, IpAddr::from(Ipv4Addr::new(203, 0, 113, 0)));
        assert_eq!((e.cport, e.vport, e.dport, e.state), (0, 0, 0, 0));
        assert_eq!(e.flags, flags::TEMPLATE);
        assert_eq!(
            e.timeout, 360,
            "controlled: at least the persistence timeout"
        );
        let e = template_entry(
            &Template {
                controlled: false,
                ..t
            },
            1000,
        );
        assert_eq!(e.timeout, 4);
    }
}
