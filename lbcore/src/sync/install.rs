//! How the Backup takes what the Master sent: each entry is checked against this node's own
//! configuration before anything is installed. A forged or stale entry can name only a
//! configured virtual service and one of its real servers, with that server's forwarding
//! method, and a one-arm NAT source that is one of this node's addresses and ports: it can
//! never make the Backup forward somewhere the configuration does not, or reserve a port
//! outside the one-arm range.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use super::counters::SyncDrop;
use super::wire::{flags, Entry};
use crate::conntrack::{ConnState, TcpState};
use crate::flow::FlowKey;
use crate::persist::PersistKey;
use crate::pool::DestId;
use crate::service::{Service, ServiceTable};
use crate::spec::{ForwardingMethod, Protocol};
use crate::time::{secs, Millis};

/// What entries are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Accept<'a> {
    pub table: &'a ServiceTable,
    pub snat_ports: &'a RangeInclusive<u16>,
    /// Addresses a one-arm NAT source may be: this node's, and those VRRP moves to it.
    pub snat_addrs: &'a [IpAddr],
}

/// A NAT connection's rewrite, as the Master made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatSpec {
    /// Real server → client (two-arm) or → one-arm source, as replies arrive.
    pub reply: FlowKey,
    pub rs: (IpAddr, u16),
    pub snat: Option<(IpAddr, u16)>,
}

/// A connection the Master tracks, waiting here for the packet that makes this node take
/// it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncedConn {
    /// Client → virtual service.
    pub key: FlowKey,
    /// The service's stable id.
    pub svc: u64,
    pub dest: DestId,
    pub forwarding: ForwardingMethod,
    pub state: ConnState,
    pub no_output: bool,
    pub expires: Millis,
    pub nat: Option<NatSpec>,
    pub persist: Option<PersistKey>,
}

/// What one entry becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    Conn(SyncedConn),
    Template {
        key: PersistKey,
        dest: DestId,
        expires: Millis,
    },
}

fn protocol(n: u8) -> Option<Protocol> {
    match n {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        _ => None,
    }
}

fn fwd_matches(m: ForwardingMethod, f: u32) -> bool {
    let f = f & flags::FWD_MASK;
    match m {
        ForwardingMethod::Nat | ForwardingMethod::NatOneArm => f == flags::MASQ,
        ForwardingMethod::Tun(_) => f == flags::TUNNEL,
        ForwardingMethod::Dr => f == flags::DROUTE,
    }
}

/// The configured real server (or sorry server) `daddr:dport` of `svc`, and its method.
fn dest_of(svc: &Service, e: &Entry) -> Option<(DestId, ForwardingMethod)> {
    let spec = &svc.spec;
    let matches =
        |addr: IpAddr, port: Option<u16>| addr == e.daddr && port.unwrap_or(e.vport) == e.dport;
    spec.real_servers
        .iter()
        .find(|r| matches(r.addr, r.port))
        .map(|r| {
            (
                DestId {
                    addr: r.addr,
                    port: r.port,
                },
                spec.forwarding_of(r),
            )
        })
        .or_else(|| {
            let s = spec.sorry_server.as_ref()?;
            matches(s.addr, s.port).then(|| {
                (
                    DestId {
                        addr: s.addr,
                        port: s.port,
                    },
                    s.forwarding.unwrap_or(spec.forwarding),
                )
            })
        })
        .filter(|(_, m)| fwd_matches(*m, e.flags))
}

/// Checks one entry and says what to install.
pub fn plan(e: &Entry, a: &Accept<'_>, now: Millis) -> Result<Install, SyncDrop> {
    if e.timeout == 0 {
        return Err(SyncDrop::TooOld);
    }
    let proto = protocol(e.protocol).ok_or(SyncDrop::Protocol)?;
    let svc = a
        .table
        .lookup(proto, e.vaddr, e.vport, None)
        .ok_or(SyncDrop::UnknownService)?;
    let (dest, forwarding) = dest_of(svc, e).ok_or(SyncDrop::UnknownDest)?;
    let expires = now + secs(e.timeout);
    let persist = svc
        .spec
        .persistence_timeout
        .map(|_| PersistKey::new(svc.id, e.caddr, svc.spec.persistence_granularity));
    if e.is_template() {
        let key = persist.ok_or(SyncDrop::UnknownService)?;
        if e.snat.is_some() {
            return Err(SyncDrop::BadSnat);
        }
        return Ok(Install::Template { key, dest, expires });
    }
    let state = match proto {
        Protocol::Tcp => ConnState::Tcp(TcpState::from_ipvs(e.state).ok_or(SyncDrop::State)?),
        _ if e.state == 0 => ConnState::Udp,
        _ => return Err(SyncDrop::State),
    };
    let key = FlowKey {
        proto,
        src: e.caddr,
        sport: e.cport,
        dst: e.vaddr,
        dport: e.vport,
    };
    let rs = (e.daddr, e.dport);
    let reply_to = |(ip, port): (IpAddr, u16)| FlowKey {
        proto,
        src: rs.0,
        sport: rs.1,
        dst: ip,
        dport: port,
    };
    let nat = match (forwarding, e.snat) {
        (ForwardingMethod::Nat, None) => Some(NatSpec {
            reply: reply_to((e.caddr, e.cport)),
            rs,
            snat: None,
        }),
        (ForwardingMethod::NatOneArm, Some(s)) => {
            let ours = a.snat_addrs.contains(&s.0) && a.snat_ports.contains(&s.1);
            if !ours || s.0.is_ipv4() != e.caddr.is_ipv4() {
                return Err(SyncDrop::BadSnat);
            }
            Some(NatSpec {
                reply: reply_to(s),
                rs,
                snat: Some(s),
            })
        }
        (ForwardingMethod::Dr | ForwardingMethod::Tun(_), None) => None,
        _ => return Err(SyncDrop::BadSnat),
    };
    Ok(Install::Conn(SyncedConn {
        key,
        svc: svc.id,
        dest,
        forwarding,
        state,
        no_output: e.flags & flags::NOOUTPUT != 0,
        expires,
        nat,
        persist,
    }))
}

#[cfg(test)]
mod tests;
