//! `virtual_routes` / `static_routes` and `virtual_rules` / `static_rules` lines: keepalived's
//! ip-route / ip-rule syntax → typed [`Route`] / [`Rule`], with keepalived's checks in its words.
//!
//! The model is what the daemon installs through rtnetlink (`crate::netlink`); options keepalived
//! accepts but vrrpd does not install are kept in `ignored` and said so with a warning.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::diag::{Diagnostic, Diags, Pos};
use super::model::Scope;
use super::tree::Node;

/// An address prefix (`ADDR[/LEN]`; a bare address is a host prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.len == 0 && self.addr.is_unspecified() {
            return f.write_str("default");
        }
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// `ip route` route types (`RTN_*`); a plain route is `Unicast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteType {
    Unicast,
    Local,
    Broadcast,
    Anycast,
    Multicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Nat,
}

impl RouteType {
    const NAMES: [(&'static str, RouteType); 10] = [
        ("unicast", RouteType::Unicast),
        ("local", RouteType::Local),
        ("broadcast", RouteType::Broadcast),
        ("anycast", RouteType::Anycast),
        ("multicast", RouteType::Multicast),
        ("blackhole", RouteType::Blackhole),
        ("unreachable", RouteType::Unreachable),
        ("prohibit", RouteType::Prohibit),
        ("throw", RouteType::Throw),
        ("nat", RouteType::Nat),
    ];

    fn from_name(s: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|(_, t)| *t)
    }

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }

    /// The `RTN_*` number.
    pub fn as_u8(self) -> u8 {
        match self {
            RouteType::Unicast => 1,
            RouteType::Local => 2,
            RouteType::Broadcast => 3,
            RouteType::Anycast => 4,
            RouteType::Multicast => 5,
            RouteType::Blackhole => 6,
            RouteType::Unreachable => 7,
            RouteType::Prohibit => 8,
            RouteType::Throw => 9,
            RouteType::Nat => 10,
        }
    }
}

/// One path of a multipath route (`nexthop via GW dev IF weight N`, or the deprecated `or GW`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nexthop {
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// 1..=256 (default 1).
    pub weight: Option<u16>,
    #[serde(default)]
    pub onlink: bool,
}

/// `[src ADDR] [TYPE] [to] PREFIX [via|gw GW] [dev IF] [scope S] [table T] [metric M] …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(rename = "type")]
    pub kind: RouteType,
    pub dst: Prefix,
    /// `src`: the preferred source address.
    pub src: Option<IpAddr>,
    /// `from`: source prefix (IPv6 only).
    pub from: Option<Prefix>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    #[serde(default)]
    pub onlink: bool,
    /// `nexthop …` / `or GW`: a multipath route (the first path is `via`/`dev` when given).
    #[serde(default)]
    pub nexthops: Vec<Nexthop>,
    pub scope: Option<Scope>,
    /// Routing table (default main, 254).
    pub table: Option<u32>,
    /// `metric` / `preference` / `priority`.
    pub metric: Option<u32>,
    /// `protocol` (default keepalived's, 18).
    pub protocol: Option<u8>,
    pub tos: Option<u8>,
    pub mtu: Option<u32>,
    pub advmss: Option<u32>,
    pub realms: Option<u32>,
    /// `pref low|medium|high` (IPv6 router preference).
    pub pref: Option<u8>,
    /// `no_track`: someone else deleting it while we are Master is left alone.
    #[serde(default)]
    pub no_track: bool,
    /// Options accepted as keepalived does but not installed by vrrpd, as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

impl Route {
    pub fn is_ipv6(&self) -> bool {
        self.dst.addr.is_ipv6()
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind != RouteType::Unicast {
            write!(f, "{} ", self.kind.name())?;
        }
        write!(f, "{}", self.dst)?;
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        if let Some(t) = self.table {
            write!(f, " table {t}")?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        for nh in &self.nexthops {
            f.write_str(" nexthop")?;
            if let Some(v) = nh.via {
                write!(f, " via {v}")?;
            }
            if let Some(d) = &nh.dev {
                write!(f, " dev {d}")?;
            }
        }
        Ok(())
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// `table|lookup T` (default main).
    Table(u32),
    Goto(u32),
    Nop,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// `[not] [from P] [to P] [tos T] [fwmark M[/MASK]] [iif IF] [oif IF] preference N ACTION …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Address family: from the addresses, IPv4 when there are none.
    pub ipv6: bool,
    /// `from`/`to`; `all` is `None`.
    pub from: Option<Prefix>,
    pub to: Option<Prefix>,
    #[serde(default)]
    pub not: bool,
    /// `preference` / `priority`; keepalived's 16384 when missing.
    pub priority: u32,
    pub action: RuleAction,
    pub tos: Option<u8>,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub realms: Option<u32>,
    pub suppress_prefixlength: Option<u32>,
    pub suppress_ifgroup: Option<u32>,
    pub uidrange: Option<(u32, u32)>,
    pub ipproto: Option<u8>,
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    #[serde(default)]
    pub l3mdev: bool,
    #[serde(default)]
    pub no_track: bool,
}

impl Default for Rule {
    /// `ip rule add` with nothing else: IPv4, every address, keepalived's priority, main table.
    fn default() -> Self {
        Self {
            ipv6: false,
            from: None,
            to: None,
            not: false,
            priority: DEFAULT_RULE_PRIORITY,
            action: RuleAction::Table(TABLE_MAIN),
            tos: None,
            fwmark: None,
            fwmask: None,
            iif: None,
            oif: None,
            realms: None,
            suppress_prefixlength: None,
            suppress_ifgroup: None,
            uidrange: None,
            ipproto: None,
            sport: None,
            dport: None,
            l3mdev: false,
            no_track: false,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", if self.not { "not " } else { "" })?;
        match self.from {
            Some(p) => write!(f, "from {p}")?,
            None => f.write_str("from all")?,
        }
        if let Some(p) = self.to {
            write!(f, " to {p}")?;
        }
        if let Some(m) = self.fwmark {
            write!(f, " fwmark {m:#x}")?;
        }
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(o) = &self.oif {
            write!(f, " oif {o}")?;
        }
        match self.action {
            RuleAction::Table(t) => write!(f, " lookup {t}")?,
            RuleAction::Goto(t) => write!(f, " goto {t}")?,
            RuleAction::Nop => f.write_str(" nop")?,
            RuleAction::Blackhole => f.write_str(" blackhole")?,
            RuleAction::Unreachable => f.write_str(" unreachable")?,
            RuleAction::Prohibit => f.write_str(" prohibit")?,
        }
        write!(f, " priority {}", self.priority)
    }
}

/// keepalived's preference for a rule that gives none.
pub const DEFAULT_RULE_PRIORITY: u32 = 16384;
/// `RTPROT_KEEPALIVED`: the protocol keepalived marks its routes with.
pub const RTPROT_KEEPALIVED: u8 = 18;
/// `RT_TABLE_MAIN`.
pub const TABLE_MAIN: u32 = 254;

type Tok<'a> = (&'a str, &'a Pos);

fn tokens(c: &Node) -> Vec<Tok<'_>> {
    std::iter::once((c.name(), c.pos()))
        .chain(c.args.iter().map(|a| (a.text.as_str(), &a.pos)))
        .collect()
}

/// A number as keepalived reads it (decimal, or hex with 0x).
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn u32_of(s: &str) -> Option<u32> {
    number(s).and_then(|n| u32::try_from(n).ok())
}

fn prefix(s: &str) -> Option<Prefix> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l {
        None => max,
        Some(l) => l.parse::<u8>().ok().filter(|n| *n <= max)?,
    };
    Some(Prefix { addr, len })
}

/// `main`, `local`, `default`, a number, or a name from iproute2's rt_tables.
fn table(s: &str) -> Option<u32> {
    match s {
        "main" => return Some(254),
        "local" => return Some(255),
        "default" => return Some(253),
        "unspec" => return Some(0),
        _ => {}
    }
    if let Some(n) = u32_of(s) {
        return Some(n);
    }
    ["/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    let n = u32_of(w.next()?)?;
                    (w.next()? == s).then_some(n)
                })
                .collect::<Vec<_>>()
        })
        .next()
}

fn scope(s: &str) -> Option<Scope> {
    Some(match s {
        "global" | "universe" => Scope::Global,
        "site" => Scope::Site,
        "link" => Scope::Link,
        "host" => Scope::Host,
        "nowhere" => Scope::Nowhere,
        _ => match u32_of(s)? {
            n @ 0..=255 => Scope::Other(n as u8),
            _ => return None,
        },
    })
}

fn protocol(s: &str) -> Option<u8> {
    const NAMES: &[(&str, u8)] = &[
        ("redirect", 1),
        ("kernel", 2),
        ("boot", 3),
        ("static", 4),
        ("gated", 8),
        ("ra", 9),
        ("mrt", 10),
        ("zebra", 11),
        ("bird", 12),
        ("dnrouted", 13),
        ("xorp", 14),
        ("ntk", 15),
        ("dhcp", 16),
        ("keepalived", 18),
        ("babel", 42),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .or_else(|| u32_of(s).and_then(|n| u8::try_from(n).ok()))
}

fn range<T: TryFrom<u64>>(s: &str) -> Option<(T, T)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    Some((T::try_from(number(a)?).ok()?, T::try_from(number(b)?).ok()?))
}

/// Route metrics and options keepalived accepts that vrrpd does not install (each with a value).
const ROUTE_IGNORED: &[&str] = &[
    "rtt",
    "rttvar",
    "window",
    "cwnd",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "hoplimit",
    "ssthresh",
    "reordering",
    "congctl",
    "fastopen_no_cookie",
    "rto_min",
    "expires",
    "ttl-propagate",
];

/// Parses one route line. `tracked`: a `virtual_routes` line (keepalived warns when it cannot
/// track the route). Errors go to `diags`; `None` when the line is unusable.
pub fn parse_route(c: &Node, tracked: bool, diags: &mut Diags) -> Option<Route> {
    let toks = tokens(c);
    let errors = diags.0.iter().filter(|d| d.is_error()).count();
    let line = c.pos();
    let mut r = Route {
        kind: RouteType::Unicast,
        dst: Prefix {
            addr: IpAddr::from([0, 0, 0, 0]),
            len: 0,
        },
        src: None,
        from: None,
        via: None,
        dev: None,
        onlink: false,
        nexthops: Vec::new(),
        scope: None,
        table: None,
        metric: None,
        protocol: None,
        tos: None,
        mtu: None,
        advmss: None,
        realms: None,
        pref: None,
        no_track: false,
        ignored: Vec::new(),
    };
    let mut dst: Option<(&str, &Pos)> = None;
    let mut default_dst = false;
    let mut nexthop: Option<Nexthop> = None;
    let mut i = 0;
    let err = |diags: &mut Diags, pos: &Pos, msg: String| diags.push(Diagnostic::error(pos, msg));
    while i < toks.len() {
        let (w, pos) = toks[i];
        let arg = toks.get(i + 1).copied();
        // The keyword's value, or an error saying it is missing.
        let val = |diags: &mut Diags| match arg {
            Some(a) => Some(a),
            None => {
                err(diags, pos, format!("route keyword `{w}` needs a value"));
                None
            }
        };
        let mut step = 2;
        if let Some(nh) = nexthop.as_mut() {
            match w {
                "via" | "gw" | "dev" | "weight" | "onlink" | "nexthop" => {}
                _ => {
                    err(diags, pos, format!("unknown nexthop keyword {w}"));
                    i += 1;
                    continue;
                }
            }
            match w {
                "via" | "gw" => match val(diags) {
                    Some((v, vp)) => match v.parse() {
                        Ok(a) => nh.via = Some(a),
                        Err(_) => err(diags, vp, format!("invalid nexthop via address {v}")),
                    },
                    None => break,
                },
                "dev" => match val(diags) {
                    Some((v, _)) => nh.dev = Some(v.to_string()),
                    None => break,
                },
                "weight" => match val(diags) {
                    Some((v, vp)) => match u32_of(v).filter(|n| (1..=256).contains(n)) {
                        Some(n) => nh.weight = Some(n as u16),
                        None => err(diags, vp, format!("Invalid nexthop weight {v}")),
                    },
                    None => break,
                },
                "onlink" => {
                    nh.onlink = true;
                    step = 1;
                }
                _ => {
                    // "nexthop": the next path.
                    r.nexthops.extend(nexthop.take());
                    nexthop = Some(Nexthop {
                        via: None,
                        dev: None,
                        weight: None,
                        onlink: false,
                    });
                    step = 1;
                }
            }
            i += step;
            continue;
        }
        match w {
            "src" => match val(diags) {
                Some((v, vp)) => match v.parse() {
                    Ok(a) => r.src = Some(a),
                    Err(_) => err(diags, vp, format!("invalid route src address {v}")),
                },
                None => break,
            },
            "from" => match val(diags) {
                Some((v, vp)) => match prefix(v) {
                    Some(p) => r.from = Some(p),
                    None => err(diags, vp, format!("invalid route from address {v}")),
                },
                None => break,
            },
            "via" | "gw" => {
                if w == "gw" {
                    diags.push(Diagnostic::warning(
                        pos,
                        "\"gw\" for routes is deprecated. Please use \"via\"",
                    ));
                }
                match val(diags) {
                    Some((v, vp)) => match v.parse() {
                        // A second `via` replaces the first, as in keepalived.
                        Ok(a) => r.via = Some(a),
                        Err(_) => err(diags, vp, format!("invalid route via address {v}")),
                    },
                    None => break,
                }
            }
            "or" => {
                diags.push(Diagnostic::warning(
                    pos,
                    "\"or\" for routes is deprecated. Please use \"nexthop\"",
                ));
                match val(diags) {
                    Some((v, vp)) => match v.parse() {
                        Ok(a) => r.nexthops.push(Nexthop {
                            via: Some(a),
                            dev: None,
                            weight: None,
                            onlink: false,
                        }),
                        Err(_) => err(diags, vp, format!("invalid route or address {v}")),
                    },
                    None => break,
                }
            }
            "nexthop" => {
                nexthop = Some(Nexthop {
                    via: None,
                    dev: None,
                    weight: None,
                    onlink: false,
                });
                step = 1;
            }
            "dev" | "oif" => match val(diags) {
                Some((v, _)) => r.dev = Some(v.to_string()),
                None => break,
            },
            "onlink" => {
                r.onlink = true;
                step = 1;
            }
            "no_track" => {
                r.no_track = true;
                step = 1;
            }
            "scope" => match val(diags) {
                Some((v, vp)) => match scope(v) {
                    Some(s) => r.scope = Some(s),
                    None => err(
                        diags,
                        vp,
                        format!("Scope {v} not found or invalid for route"),
                    ),
                },
                None => break,
            },
            "table" => match val(diags) {
                Some((v, vp)) => match table(v) {
                    Some(t) => r.table = Some(t),
                    None => err(diags, vp, format!("Routing table {v} not found for route")),
                },
                None => break,
            },
            "metric" | "preference" | "priority" => match val(diags) {
                Some((v, vp)) => match u32_of(v) {
                    Some(m) => r.metric = Some(m),
                    None => err(diags, vp, format!("Invalid metric {v} specified for route")),
                },
                None => break,
            },
            "protocol" => match val(diags) {
                Some((v, vp)) => match protocol(v) {
                    Some(p) => r.protocol = Some(p),
                    None => err(
                        diags,
                        vp,
                        format!("Protocol {v} not found or invalid for route"),
                    ),
                },
                None => break,
            },
            "tos" | "dsfield" => match val(diags) {
                Some((v, vp)) => match u32_of(v).and_then(|n| u8::try_from(n).ok()) {
                    Some(t) => r.tos = Some(t),
                    None => err(diags, vp, format!("TOS value {v} is invalid")),
                },
                None => break,
            },
            "mtu" | "advmss" | "realms" => match val(diags) {
                Some((v, vp)) => {
                    let v = v.strip_prefix("lock ").unwrap_or(v);
                    match u32_of(v) {
                        Some(n) if w == "mtu" => r.mtu = Some(n),
                        Some(n) if w == "advmss" => r.advmss = Some(n),
                        Some(n) => r.realms = Some(n),
                        None => err(diags, vp, format!("Invalid {w} {v} specified for route")),
                    }
                }
                None => break,
            },
            "pref" => match val(diags) {
                Some((v, vp)) => match v {
                    "low" => r.pref = Some(3),
                    "medium" => r.pref = Some(0),
                    "high" => r.pref = Some(1),
                    _ => err(diags, vp, format!("Invalid pref {v} specified for route")),
                },
                None => break,
            },
            "encap" => {
                diags.push(
                    Diagnostic::error(pos, "route `encap` is not supported by vrrpd")
                        .not_flagged_by_keepalived(),
                );
                break;
            }
            _ if ROUTE_IGNORED.contains(&w) => match val(diags) {
                Some((v, _)) => r.ignored.push(format!("{w} {v}")),
                None => break,
            },
            "to" if dst.is_none() && !default_dst => step = 1,
            _ if dst.is_none() && !default_dst => {
                step = 1;
                if let Some(t) = RouteType::from_name(w) {
                    r.kind = t;
                } else if w == "default" {
                    default_dst = true;
                } else {
                    match w.split_once('/') {
                        Some((a, l)) if a.parse::<IpAddr>().is_ok() => {
                            let max = if a.contains(':') { 128 } else { 32 };
                            if l.parse::<u8>().map_or(true, |n| n > max) {
                                err(
                                    diags,
                                    pos,
                                    format!("Invalid address prefix len {l} for address {w}"),
                                );
                            }
                        }
                        _ if w.parse::<IpAddr>().is_ok() => {}
                        _ => err(diags, pos, format!("unknown route keyword {w}")),
                    }
                    dst = Some((w, pos));
                }
            }
            _ => {
                err(diags, pos, format!("unknown route keyword {w}"));
                step = 1;
            }
        }
        i += step;
    }
    r.nexthops.extend(nexthop.take());
    if !r.ignored.is_empty() {
        diags.push(
            Diagnostic::warning(
                line,
                format!(
                    "route options not installed by vrrpd: {}",
                    r.ignored.join(", ")
                ),
            )
            .not_flagged_by_keepalived(),
        );
    }
    if diags.0.iter().filter(|d| d.is_error()).count() > errors {
        return None;
    }
    // The family comes from the destination, or from the other addresses for `default`.
    let others: Vec<IpAddr> = [r.via, r.src]
        .into_iter()
        .flatten()
        .chain(r.from.map(|p| p.addr))
        .chain(r.nexthops.iter().filter_map(|n| n.via))
        .collect();
    match dst {
        Some((w, _)) => r.dst = prefix(w)?,
        None if default_dst => {
            if others.first().is_some_and(IpAddr::is_ipv6) {
                r.dst.addr = IpAddr::from([0u16; 8]);
            }
        }
        None => {
            err(diags, line, "Route must have a destination".to_string());
            return None;
        }
    }
    if others.iter().any(|a| a.is_ipv6() != r.is_ipv6()) {
        err(
            diags,
            line,
            "Cannot mix IPv4 and IPv6 addresses for route".to_string(),
        );
        return None;
    }
    if let Some(f) = r.from {
        if !r.is_ipv6() {
            err(
                diags,
                line,
                format!("route from address only supported with IPv6 ({f})"),
            );
            return None;
        }
    }
    // keepalived tracks a route by its own `dev` only (not a multipath route's).
    if tracked && r.dev.is_none() && !r.no_track {
        diags.push(Diagnostic::warning(
            line,
            format!(
                "Warning - cannot track route {} with no interface specified, not tracking",
                r.dst
            ),
        ));
    }
    Some(r)
}

/// Parses one rule line (see [`parse_route`]).
pub fn parse_rule(c: &Node, diags: &mut Diags) -> Option<Rule> {
    let toks = tokens(c);
    let errors = diags.0.iter().filter(|d| d.is_error()).count();
    let line = c.pos();
    let mut r = Rule::default();
    let mut has_pref = false;
    let mut i = 0;
    let err = |diags: &mut Diags, pos: &Pos, msg: String| diags.push(Diagnostic::error(pos, msg));
    while i < toks.len() {
        let (w, pos) = toks[i];
        let flag = matches!(
            w,
            "not" | "l3mdev" | "no_track" | "nop" | "blackhole" | "unreachable" | "prohibit"
        );
        if flag {
            match w {
                "not" => r.not = true,
                "l3mdev" => r.l3mdev = true,
                "no_track" => r.no_track = true,
                "nop" => r.action = RuleAction::Nop,
                "blackhole" => r.action = RuleAction::Blackhole,
                "unreachable" => r.action = RuleAction::Unreachable,
                _ => r.action = RuleAction::Prohibit,
            }
            i += 1;
            continue;
        }
        const VALUED: &[&str] = &[
            "from",
            "to",
            "tos",
            "dsfield",
            "fwmark",
            "iif",
            "dev",
            "oif",
            "table",
            "lookup",
            "preference",
            "priority",
            "goto",
            "realms",
            "suppress_prefixlength",
            "suppress_ifgroup",
            "uidrange",
            "ipproto",
            "sport",
            "dport",
        ];
        if !VALUED.contains(&w) {
            err(diags, pos, format!("Unknown rule option {w}"));
            i += 1;
            continue;
        }
        let Some(&(v, vp)) = toks.get(i + 1) else {
            err(diags, pos, format!("rule option `{w}` needs a value"));
            break;
        };
        let bad = |diags: &mut Diags, what: &str| {
            err(diags, vp, format!("Invalid rule {what} {v}"));
        };
        match w {
            "from" | "to" => {
                let p = if v == "all" {
                    Ok(None)
                } else {
                    prefix(v).ok_or(()).map(Some)
                };
                match p {
                    Ok(p) if w == "from" => r.from = p,
                    Ok(p) => r.to = p,
                    Err(()) => bad(diags, &format!("{w} address")),
                }
            }
            "tos" | "dsfield" => match u32_of(v).and_then(|n| u8::try_from(n).ok()) {
                Some(t) => r.tos = Some(t),
                None => bad(diags, "tos"),
            },
            "fwmark" => {
                let (m, mask) = match v.split_once('/') {
                    Some((m, k)) => (u32_of(m), Some(u32_of(k))),
                    None => (u32_of(v), None),
                };
                match (m, mask) {
                    (Some(m), None) => r.fwmark = Some(m),
                    (Some(m), Some(Some(k))) => {
                        r.fwmark = Some(m);
                        r.fwmask = Some(k);
                    }
                    _ => bad(diags, "fwmark"),
                }
            }
            "iif" | "dev" => r.iif = Some(v.to_string()),
            "oif" => r.oif = Some(v.to_string()),
            "table" | "lookup" => match table(v) {
                Some(t) => r.action = RuleAction::Table(t),
                None => err(diags, vp, format!("Routing table {v} not found for rule")),
            },
            "preference" | "priority" => match u32_of(v) {
                Some(p) => {
                    r.priority = p;
                    has_pref = true;
                }
                None => err(diags, vp, format!("Invalid rule preference {w} specified")),
            },
            "goto" => match u32_of(v) {
                Some(g) => r.action = RuleAction::Goto(g),
                None => bad(diags, "goto"),
            },
            "realms" => match u32_of(v) {
                Some(n) => r.realms = Some(n),
                None => bad(diags, "realms"),
            },
            "suppress_prefixlength" => match u32_of(v) {
                Some(n) => r.suppress_prefixlength = Some(n),
                None => bad(diags, "suppress_prefixlength"),
            },
            "suppress_ifgroup" => match u32_of(v) {
                Some(n) => r.suppress_ifgroup = Some(n),
                None => bad(diags, "suppress_ifgroup"),
            },
            "uidrange" => match range(v) {
                Some(u) => r.uidrange = Some(u),
                None => bad(diags, "uidrange"),
            },
            "ipproto" => match ip_proto(v) {
                Some(p) => r.ipproto = Some(p),
                None => bad(diags, "ipproto"),
            },
            "sport" => match range(v) {
                Some(p) => r.sport = Some(p),
                None => bad(diags, "sport"),
            },
            _ => match range(v) {
                Some(p) => r.dport = Some(p),
                None => bad(diags, "dport"),
            },
        }
        i += 2;
    }
    if diags.0.iter().filter(|d| d.is_error()).count() > errors {
        return None;
    }
    let fams: Vec<bool> = [r.from, r.to]
        .into_iter()
        .flatten()
        .map(|p| p.addr.is_ipv6())
        .collect();
    if fams.windows(2).any(|w| w[0] != w[1]) {
        err(
            diags,
            line,
            "rule specification has mixed IPv4 and IPv6".to_string(),
        );
        return None;
    }
    r.ipv6 = fams.first().copied().unwrap_or(false);
    if !has_pref {
        diags.push(Diagnostic::warning(
            line,
            "Rule has no preference specified - setting to 16384. This is probably not what you want.",
        ));
    }
    Some(r)
}

fn ip_proto(s: &str) -> Option<u8> {
    match s {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "ipv6-icmp" | "icmpv6" => Some(58),
        "sctp" => Some(132),
        _ => u32_of(s).and_then(|n| u8::try_from(n).ok()),
    }
}

/// One `virtual_routes` / `virtual_rules` line as the parser sees it, for tests.
fn node(line: &str) -> Node {
    use crate::{lexer, tree};
    let text = format!("x {{\n  {line}\n}}\n");
    let file: std::sync::Arc<std::path::Path> = std::path::Path::new("t.conf").into();
    let (toks, _) = lexer::lex(&text, &file);
    let nodes = tree::parse(&toks, &mut Diags::default());
    nodes[0].children[0].clone()
}

/// One `virtual_routes` line parsed on its own (tests here and in the daemon's crate).
pub fn parse_route_text(line: &str) -> Option<Route> {
    parse_route(&node(line), true, &mut Diags::default())
}

/// One `virtual_rules` line parsed on its own.
pub fn parse_rule_text(line: &str) -> Option<Rule> {
    parse_rule(&node(line), &mut Diags::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(line: &str) -> (Option<Route>, Diags) {
        let mut d = Diags::default();
        let r = parse_route(&node(line), true, &mut d);
        (r, d)
    }

    fn rule(line: &str) -> (Option<Rule>, Diags) {
        let mut d = Diags::default();
        let r = parse_rule(&node(line), &mut d);
        (r, d)
    }

    #[test]
    fn route_via_dev_and_options() {
        let (r, d) =
            route("src 192.0.2.1 203.0.113.0/24 via 192.0.2.254 dev eth0 table 100 metric 5 scope link onlink");
        let r = r.expect("route");
        assert!(d.0.is_empty(), "{:?}", d.0);
        assert_eq!(r.dst, prefix("203.0.113.0/24").unwrap());
        assert_eq!(r.src, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(r.via, Some("192.0.2.254".parse().unwrap()));
        assert_eq!(r.dev.as_deref(), Some("eth0"));
        assert_eq!((r.table, r.metric), (Some(100), Some(5)));
        assert_eq!(r.scope, Some(Scope::Link));
        assert!(r.onlink);
    }

    #[test]
    fn route_types_default_and_multipath() {
        let (r, _) = route("blackhole 203.0.113.0/24");
        assert_eq!(r.unwrap().kind, RouteType::Blackhole);
        let (r, _) = route("default via 2001:db8::1 dev eth0");
        let r = r.unwrap();
        assert!(r.is_ipv6() && r.dst.len == 0);
        let (r, d) = route("203.0.113.0/24 via 192.0.2.1 or 192.0.2.2 dev eth0");
        assert_eq!(r.unwrap().nexthops.len(), 1);
        assert_eq!(d.0.len(), 1, "deprecated `or` warns");
        let (r, _) =
            route("203.0.113.0/24 nexthop via 192.0.2.1 dev eth0 weight 2 nexthop via 192.0.2.2");
        let r = r.unwrap();
        assert_eq!(r.nexthops.len(), 2);
        assert_eq!(r.nexthops[0].weight, Some(2));
    }

    #[test]
    fn route_errors_in_keepalived_words() {
        for (line, msg) in [
            ("203.0.113.0/33 dev eth0", "Invalid address prefix len 33"),
            ("203.0.113.0/24 via 2001:db8::1", "Cannot mix IPv4 and IPv6"),
            ("203.0.113.0/24 dev eth0 metric abc", "Invalid metric abc"),
            ("203.0.113.0/24 dev eth0 foo", "unknown route keyword foo"),
            (
                "203.0.113.0/24 dev eth0 table nosuch",
                "Routing table nosuch",
            ),
            ("203.0.113.0/24 dev eth0 scope bogus", "Scope bogus"),
            ("via 192.0.2.1", "Route must have a destination"),
            (
                "203.0.113.0/24 via bogus",
                "invalid route via address bogus",
            ),
            (
                "203.0.113.0/24 dev eth0 from 198.51.100.0/24",
                "only supported with IPv6",
            ),
            (
                "203.0.113.0/24 dev eth0 proto static",
                "unknown route keyword proto",
            ),
        ] {
            let (r, d) = route(line);
            assert!(r.is_none(), "{line} must fail");
            assert!(
                d.0.iter()
                    .any(|x| x.is_error() && x.message.contains(msg) && x.line == 2),
                "{line}: {:?}",
                d.0
            );
        }
        let (_, d) = route("203.0.113.0/24 via 192.0.2.1");
        assert!(d.0[0].message.contains("cannot track route 203.0.113.0/24"));
    }

    #[test]
    fn rules() {
        let (r, d) = rule("from 192.0.2.0/24 fwmark 0x10/0xff goto 200 priority 10");
        let r = r.unwrap();
        assert!(d.0.is_empty());
        assert_eq!((r.fwmark, r.fwmask), (Some(0x10), Some(0xff)));
        assert_eq!(r.action, RuleAction::Goto(200));
        let (r, d) = rule("from 2001:db8::/32 table 100");
        let r = r.unwrap();
        assert!(r.ipv6);
        assert_eq!(r.priority, DEFAULT_RULE_PRIORITY);
        assert!(d.0[0].message.contains("no preference"));
        let (r, _) = rule("iif eth0 lookup main priority 5 not");
        let r = r.unwrap();
        assert!(r.not && !r.ipv6);
        assert_eq!(r.action, RuleAction::Table(254));
        for (line, msg) in [
            (
                "from 192.0.2.0/24 to 2001:db8::/32 table 1 priority 1",
                "mixed IPv4 and IPv6",
            ),
            (
                "from bogus table 1 priority 1",
                "Invalid rule from address bogus",
            ),
            (
                "from 192.0.2.0/24 table 1 priority x",
                "Invalid rule preference",
            ),
            (
                "to 192.0.2.0/24 lookup 1 pref 50",
                "Unknown rule option pref",
            ),
        ] {
            let (r, d) = rule(line);
            assert!(r.is_none(), "{line}");
            assert!(
                d.0.iter().any(|x| x.message.contains(msg)),
                "{line}: {:?}",
                d.0
            );
        }
    }
}
