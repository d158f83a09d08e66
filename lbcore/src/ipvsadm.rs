//! The balancer as `ipvsadm` 1.31 shows IPVS: `-L -n` with `--stats`, `--rate`,
//! `--thresholds`, `--persistent-conn`, `--exact`, and `-c` (the connection table).
//!
//! Operators' scripts parse ipvsadm's output, so the layout is ipvsadm's to the column: the
//! same titles, field widths, sort order (services by fwmark, family, protocol, address, port;
//! real servers by address and port) and large-number abbreviations (K, M, G, T). Names are
//! always numeric (as `-n`): the balancer never resolves addresses for a listing.
//!
//! [`Listing::of`] takes a consistent copy of a service table (weights, connection counters,
//! traffic and rates); the renderers are pure functions of that copy.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::conntrack::ConnRow;
use crate::pool::DestId;
use crate::service::{IpvsKey, ServiceTable};
use crate::spec::{ForwardingMethod, IpFamily, Protocol, SchedulerKind};
use crate::stats::{Rates, Totals};

/// The IPVS version ipvsadm reports (the kernel's has been 1.2.1 for years).
pub const IPVS_VERSION: &str = "1.2.1";

/// A copy of the balancer's services as IPVS would hold them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    /// The `size=` of the header: the connection table's capacity.
    pub size: usize,
    pub services: Vec<VirtualEntry>,
}

/// One IPVS virtual service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualEntry {
    /// `None` for a fwmark service.
    pub protocol: Option<Protocol>,
    pub address: Option<IpAddr>,
    /// 0 for a port-less (persistent) service.
    pub port: u16,
    pub fwmark: Option<u32>,
    pub ipv6: bool,
    pub scheduler: &'static str,
    /// Scheduler flags by ipvsadm's names (`sh-port`, `flag-3`...).
    pub sched_flags: Vec<&'static str>,
    /// `persistence_timeout` in seconds.
    pub persistent: Option<u32>,
    /// `persistence_granularity` as a prefix length.
    pub netmask: Option<u8>,
    pub pe: Option<String>,
    pub ops: bool,
    pub stats: Totals,
    pub rates: Rates,
    pub dests: Vec<DestEntry>,
}

/// One IPVS destination (real server, or the sorry server while quorum is lost).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestEntry {
    pub address: IpAddr,
    pub port: u16,
    /// `Masq`, `Route`, `Tunnel` (ipvsadm's names).
    pub forward: &'static str,
    /// 0 while inhibited (`inhibit_on_failure`) or not in use (`sorry_server_inhibit`).
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
    pub persist_conns: u32,
    pub uthreshold: u32,
    pub lthreshold: u32,
    pub stats: Totals,
    pub rates: Rates,
}

/// ipvsadm's name for a forwarding method.
pub fn forward_name(m: ForwardingMethod) -> &'static str {
    match m {
        ForwardingMethod::Nat | ForwardingMethod::NatOneArm => "Masq",
        ForwardingMethod::Dr => "Route",
        ForwardingMethod::Tun(_) => "Tunnel",
    }
}

impl Listing {
    /// The services of `table`; `persist_conns` counts live persistence templates per
    /// (service id, server) (see `PersistTable::per_dest`).
    pub fn of(
        table: &ServiceTable,
        persist_conns: &HashMap<(u64, DestId), u32>,
        size: usize,
    ) -> Self {
        let services = table.services();
        let mut out: Vec<VirtualEntry> = table
            .ipvs_keys()
            .into_iter()
            .map(|(key, i)| {
                let svc = &services[i];
                let spec = &svc.spec;
                let (protocol, address, port, fwmark, ipv6) = match key {
                    IpvsKey::Addr(p, a, port) => (Some(p), Some(a), port, None, a.is_ipv6()),
                    IpvsKey::Mark(f, m) => (None, None, 0, Some(m), f == IpFamily::Inet6),
                };
                let f = spec.sched_flags;
                let (fallback, port_flag) = match spec.scheduler {
                    SchedulerKind::Sh => (f.sh_fallback, f.sh_port),
                    SchedulerKind::Mh => (f.mh_fallback, f.mh_port),
                    _ => (f.sh_fallback || f.mh_fallback, f.sh_port || f.mh_port),
                };
                let names: [&'static str; 3] = match spec.scheduler {
                    SchedulerKind::Sh => ["sh-fallback", "sh-port", "flag-3"],
                    SchedulerKind::Mh => ["mh-fallback", "mh-port", "flag-3"],
                    _ => ["flag-1", "flag-2", "flag-3"],
                };
                let sched_flags = [fallback, port_flag, f.flag_3]
                    .iter()
                    .zip(names)
                    .filter(|(on, _)| **on)
                    .map(|(_, n)| n)
                    .collect();
                let mut dests: Vec<DestEntry> = svc
                    .servers
                    .iter()
                    .map(|r| {
                        let (uthreshold, lthreshold) = r.stats.thresholds();
                        DestEntry {
                            address: r.id.addr,
                            port: r.id.port.unwrap_or(port),
                            forward: forward_name(r.forwarding),
                            weight: r.weight,
                            active: r.stats.active(),
                            inactive: r.stats.inactive(),
                            persist_conns: persist_conns.get(&(svc.id, r.id)).copied().unwrap_or(0),
                            uthreshold,
                            lthreshold,
                            stats: r.stats.traffic.totals(),
                            rates: r.stats.traffic.rates(),
                        }
                    })
                    .collect();
                dests.sort_by_key(|d| (d.address.is_ipv6(), d.address, d.port));
                VirtualEntry {
                    protocol,
                    address,
                    port,
                    fwmark,
                    ipv6,
                    scheduler: spec.scheduler.name(),
                    sched_flags,
                    persistent: spec.persistence_timeout,
                    netmask: spec.persistence_granularity,
                    pe: spec.persistence_engine.clone(),
                    ops: spec.ops,
                    stats: svc.traffic.totals(),
                    rates: svc.traffic.rates(),
                    dests,
                }
            })
            .collect();
        // ipvsadm's order (libipvs ipvs_cmp_services): fwmark, family, protocol, address, port.
        out.sort_by_key(|s| {
            (
                s.fwmark.unwrap_or(0),
                s.ipv6,
                s.protocol.map_or(0, Protocol::number),
                s.address,
                s.port,
            )
        });
        Self {
            size,
            services: out,
        }
    }
}

/// Which listing: ipvsadm's `-L` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    /// `-x`/`--exact`: whole numbers, never K/M/G/T.
    pub exact: bool,
}

fn addr_port(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v) => format!("{v}:{port}"),
        IpAddr::V6(v) => format!("[{v}]:{port}"),
    }
}

/// ipvsadm's print_largenum: 9 columns, abbreviated past 10^8 unless exact.
fn largenum(s: &mut String, i: u64, exact: bool) {
    let _ = if exact {
        let len = i.to_string().len();
        write!(s, "{i:>w$}", w = if len <= 8 { 9 } else { len + 1 })
    } else if i < 100_000_000 {
        write!(s, "{i:>9}")
    } else if i < 1_000_000_000 {
        write!(s, "{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        write!(s, "{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        write!(s, "{:>8}G", i / 1_000_000_000)
    } else {
        write!(s, "{:>8}T", i / 1_000_000_000_000)
    };
}

fn title(s: &mut String, f: Format) {
    let cols = |s: &mut String, names: [&str; 5]| {
        let _ = writeln!(
            s,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", names[0], names[1], names[2], names[3], names[4]
        );
    };
    if f.stats {
        cols(s, ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]);
    } else if f.rate {
        cols(s, ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]);
    } else if f.thresholds {
        let _ = writeln!(
            s,
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        );
    } else if f.persistent_conn {
        let _ = writeln!(
            s,
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
    } else {
        s.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        s.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
}

fn service_name(v: &VirtualEntry) -> String {
    match (v.fwmark, v.protocol, v.address) {
        (Some(m), _, _) if v.ipv6 => format!("FWM  {m} IPv6"),
        (Some(m), _, _) => format!("FWM  {m}"),
        (None, Some(p), Some(a)) => format!("{}  {}", p.name(), addr_port(a, v.port)),
        _ => String::new(),
    }
}

fn service_line(s: &mut String, v: &VirtualEntry, f: Format) {
    let name = service_name(v);
    if f.stats || f.rate {
        let (a, b, c, d, e) = if f.stats {
            let t = v.stats;
            (t.conns, t.inpkts, t.outpkts, t.inbytes, t.outbytes)
        } else {
            let r = v.rates;
            (r.cps, r.inpps, r.outpps, r.inbps, r.outbps)
        };
        let _ = write!(s, "{name:<33}");
        for x in [a, b, c, d, e] {
            largenum(s, x, f.exact);
        }
        s.push('\n');
        return;
    }
    let _ = write!(s, "{name} {}", v.scheduler);
    if !v.sched_flags.is_empty() {
        let _ = write!(s, " ({})", v.sched_flags.join(","));
    }
    if let Some(t) = v.persistent {
        let _ = write!(s, " persistent {t}");
        match (v.netmask, v.ipv6) {
            (Some(p), false) if p < 32 => {
                let mask =
                    std::net::Ipv4Addr::from(u32::MAX.checked_shl(32 - p as u32).unwrap_or(0));
                let _ = write!(s, " mask {mask}");
            }
            (Some(p), true) if p < 128 => {
                let _ = write!(s, " mask {p}");
            }
            _ => {}
        }
        if let Some(pe) = &v.pe {
            let _ = write!(s, " pe {pe}");
        }
    }
    if v.ops {
        s.push_str(" ops");
    }
    s.push('\n');
}

fn dest_line(s: &mut String, d: &DestEntry, f: Format) {
    let name = addr_port(d.address, d.port);
    if f.stats {
        let _ = write!(s, "  -> {name:<28}");
        let t = d.stats;
        for x in [t.conns, t.inpkts, t.outpkts, t.inbytes, t.outbytes] {
            largenum(s, x, f.exact);
        }
        s.push('\n');
    } else if f.rate {
        let r = d.rates;
        let _ = write!(
            s,
            "  -> {name:<28} {:>8} {:>8} {:>8}",
            r.cps, r.inpps, r.outpps
        );
        largenum(s, r.inbps, f.exact);
        largenum(s, r.outbps, f.exact);
        s.push('\n');
    } else if f.thresholds {
        let _ = writeln!(
            s,
            "  -> {name:<28} {:<10} {:<10} {:<10} {:<10}",
            d.uthreshold, d.lthreshold, d.active, d.inactive
        );
    } else if f.persistent_conn {
        let _ = writeln!(
            s,
            "  -> {name:<28} {:<9} {:<11} {:<10} {:<10}",
            d.weight, d.persist_conns, d.active, d.inactive
        );
    } else {
        let _ = writeln!(
            s,
            "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}",
            d.forward, d.weight, d.active, d.inactive
        );
    }
}

/// `ipvsadm -L -n` with the options of `f`.
pub fn render(l: &Listing, f: Format) -> String {
    let mut s = format!(
        "IP Virtual Server version {IPVS_VERSION} (size={})\n",
        l.size
    );
    title(&mut s, f);
    for v in &l.services {
        service_line(&mut s, v, f);
        for d in &v.dests {
            dest_line(&mut s, d, f);
        }
    }
    s
}

/// The one service `ipvsadm -L -t|-u|--sctp-service ADDR[:PORT]` or `-f MARK [-6]` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceSel {
    Addr(Protocol, SocketAddr),
    Fwmark { mark: u32, ipv6: bool },
}

impl ServiceSel {
    fn matches(&self, v: &VirtualEntry) -> bool {
        match *self {
            ServiceSel::Addr(p, a) => {
                v.protocol == Some(p) && v.address == Some(a.ip()) && v.port == a.port()
            }
            ServiceSel::Fwmark { mark, ipv6 } => v.fwmark == Some(mark) && v.ipv6 == ipv6,
        }
    }
}

/// `ipvsadm -L -n -t|-u|-f SERVICE`: the titles and that service alone, without the version
/// line (as ipvsadm's `list_service`); `None` when there is no such service.
pub fn render_service(l: &Listing, f: Format, sel: ServiceSel) -> Option<String> {
    let v = l.services.iter().find(|v| sel.matches(v))?;
    let mut s = String::new();
    title(&mut s, f);
    service_line(&mut s, v, f);
    for d in &v.dests {
        dest_line(&mut s, d, f);
    }
    Some(s)
}

/// `ipvsadm -L -n -c`: the connection table, one line per entry (persistence templates as
/// IPVS lists them, protocol `IP`).
pub fn render_conns(rows: &[ConnRow]) -> String {
    let mut s = String::from("IPVS connection entries\n");
    let _ = writeln!(
        s,
        "pro expire {:<11} {:<18} {:<18} destination",
        "state", "source", "virtual"
    );
    for r in rows {
        // IPVS reports whole seconds left (jiffies / HZ, rounded down).
        let secs = r.expires_ms / 1000;
        let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
        let _ = writeln!(
            s,
            "{:<3} {expire:<6} {:<11} {:<18} {:<18} {}",
            r.proto,
            r.state,
            addr_port(r.client.0, r.client.1),
            addr_port(r.virt.0, r.virt.1),
            addr_port(r.dest.0, r.dest.1),
        );
    }
    s
}

#[cfg(test)]
mod tests;
