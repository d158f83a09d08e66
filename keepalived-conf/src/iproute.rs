//! `virtual_routes` / `static_routes` and `virtual_rules` / `static_rules` lines: keepalived's
//! ip-route / ip-rule syntax → typed [`Route`] / [`Rule`], with keepalived's checks in its words.
//!
//! The model is what the daemon installs through rtnetlink (`crate::netlink`); options keepalived
//! accepts but vrrpd does not install are kept in `ignored` and said so with a warning.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::diag::{Diagnostic, Diags, Pos};
use super::host::Host;
use super::model::Scope;
use super::registry::Cx;
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

fn tokens<'n>(c: &'n Node<'_>) -> Vec<Tok<'n>> {
    std::iter::once((c.name(), c.pos()))
        .chain(c.args.iter().map(|a| (&*a.text, &a.pos)))
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

/// `main`, `local`, `default`, a number, or a name from the host's iproute2 `rt_tables`.
fn table(s: &str, host: &dyn Host) -> Option<u32> {
    match s {
        "main" => Some(254),
        "local" => Some(255),
        "default" => Some(253),
        "unspec" => Some(0),
        _ => u32_of(s).or_else(|| host.rt_table(s)),
    }
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

/// keepalived reports a bad route or rule line and skips it; the daemon goes on.
fn bad(cx: &mut Cx, pos: &Pos, msg: String) {
    cx.push(Diagnostic::warning(pos, msg));
}

/// A route line as it is read, word by word.
struct RouteLine<'a> {
    r: Route,
    dst: Option<Tok<'a>>,
    default_dst: bool,
    /// The `nexthop` being read, when inside one.
    nexthop: Option<Nexthop>,
    /// A word was bad: keepalived skips the whole line.
    failed: bool,
    /// The line's first word and how many it has, for a missing value's complaint.
    whole: Whole<'a>,
}

/// A line's first word and its number of words: keepalived reads a route's or rule's
/// values unchecked, so a value missing at the end of the line stops the file, and its
/// complaint names both.
#[derive(Clone, Copy)]
struct Whole<'a>(&'a str, usize);

impl<'a> Whole<'a> {
    fn of(toks: &[Tok<'a>]) -> Self {
        Self(toks.first().map_or("", |t| t.0), toks.len())
    }
}

/// What one word did: how many tokens it used, or stop (a value is missing).
type Step = Option<usize>;

impl<'a> RouteLine<'a> {
    fn new(whole: Whole<'a>) -> Self {
        Self {
            whole,
            r: Route {
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
            },
            dst: None,
            default_dst: false,
            nexthop: None,
            failed: false,
        }
    }

    /// A word of a `nexthop` clause.
    fn nexthop_word(&mut self, w: &str, pos: &Pos, arg: Option<Tok>, cx: &mut Cx) -> Step {
        let (failed, whole) = (&mut self.failed, self.whole);
        let nh = self.nexthop.as_mut()?;
        let mut bad = |cx: &mut Cx, pos: &Pos, msg: String| {
            *failed = true;
            bad(cx, pos, msg)
        };
        let val = |cx: &mut Cx| value(whole, w, pos, arg, cx);
        match w {
            "via" | "gw" => {
                let (v, vp) = val(cx)?;
                match v.parse() {
                    Ok(a) => nh.via = Some(a),
                    Err(_) => bad(cx, vp, format!("invalid nexthop via address {v}")),
                }
                Some(2)
            }
            "dev" => {
                nh.dev = Some(val(cx)?.0.to_string());
                Some(2)
            }
            "weight" => {
                let (v, vp) = val(cx)?;
                match u32_of(v).filter(|n| (1..=256).contains(n)) {
                    Some(n) => nh.weight = Some(n as u16),
                    None => bad(cx, vp, format!("Invalid nexthop weight {v}")),
                }
                Some(2)
            }
            "onlink" => {
                nh.onlink = true;
                Some(1)
            }
            "nexthop" => {
                self.r
                    .nexthops
                    .extend(self.nexthop.replace(Nexthop::default()));
                Some(1)
            }
            _ => {
                bad(cx, pos, format!("unknown nexthop keyword {w}"));
                Some(1)
            }
        }
    }

    /// A word of the route itself.
    fn route_word(&mut self, w: &'a str, pos: &'a Pos, arg: Option<Tok>, cx: &mut Cx) -> Step {
        let (r, failed, whole) = (&mut self.r, &mut self.failed, self.whole);
        // keepalived knows the family from the destination read so far.
        let v4_dst = self.dst.is_some_and(|(d, _)| {
            d.split('/')
                .next()
                .is_some_and(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        });
        let mut bad = |cx: &mut Cx, pos: &Pos, msg: String| {
            *failed = true;
            bad(cx, pos, msg)
        };
        let val = |cx: &mut Cx| value(whole, w, pos, arg, cx);
        // A word with a value parsed by `parse`, stored by `set`, or reported with `what`.
        macro_rules! valued {
            ($parse:expr, $what:expr, |$x:ident| $set:expr) => {{
                let (v, vp) = val(cx)?;
                match $parse(v) {
                    Some($x) => $set,
                    None => bad(cx, vp, format!($what, v = v)),
                }
                Some(2)
            }};
        }
        match w {
            "src" => valued!(
                |v: &str| v.parse().ok(),
                "invalid route src address {v}",
                |a| r.src = Some(a)
            ),
            "from" => valued!(prefix, "invalid route from address {v}", |p| r.from =
                Some(p)),
            "via" | "gw" => {
                if w == "gw" {
                    cx.push(Diagnostic::warning(
                        pos,
                        "\"gw\" for routes is deprecated. Please use \"via\"",
                    ));
                }
                // A second `via` replaces the first, as in keepalived.
                valued!(
                    |v: &str| v.parse().ok(),
                    "invalid route via address {v}",
                    |a| r.via = Some(a)
                )
            }
            "or" => {
                cx.push(Diagnostic::warning(
                    pos,
                    "\"or\" for routes is deprecated. Please use \"nexthop\"",
                ));
                valued!(
                    |v: &str| v.parse().ok(),
                    "invalid route or address {v}",
                    |a| r.nexthops.push(Nexthop {
                        via: Some(a),
                        ..Nexthop::default()
                    })
                )
            }
            "nexthop" => {
                self.nexthop = Some(Nexthop::default());
                Some(1)
            }
            "dev" | "oif" => {
                r.dev = Some(val(cx)?.0.to_string());
                Some(2)
            }
            "onlink" => {
                r.onlink = true;
                Some(1)
            }
            "no_track" => {
                r.no_track = true;
                Some(1)
            }
            "scope" => valued!(scope, "Scope {v} not found or invalid for route", |s| r
                .scope =
                Some(s)),
            "table" => {
                let (v, vp) = val(cx)?;
                match table(v, cx.host) {
                    Some(t) => r.table = Some(t),
                    None => bad(cx, vp, format!("Routing table {v} not found for route")),
                }
                Some(2)
            }
            "metric" | "preference" | "priority" => {
                valued!(u32_of, "Invalid metric {v} specified for route", |m| r
                    .metric =
                    Some(m))
            }
            "protocol" => valued!(
                protocol,
                "Protocol {v} not found or invalid for route",
                |p| r.protocol = Some(p)
            ),
            "tos" | "dsfield" => valued!(
                |v| u32_of(v).and_then(|n| u8::try_from(n).ok()),
                "TOS value {v} is invalid",
                |t| r.tos = Some(t)
            ),
            "mtu" => valued!(u32_of, "Invalid mtu {v} specified for route", |n| r.mtu =
                Some(n)),
            "advmss" => valued!(u32_of, "Invalid advmss {v} specified for route", |n| r
                .advmss =
                Some(n)),
            "realms" => valued!(u32_of, "Invalid realms {v} specified for route", |n| r
                .realms =
                Some(n)),
            "pref" if v4_dst => {
                // Said before the value is read, so a missing one does not stop the file.
                bad(cx, pos, "pref is only valid for IPv6".into());
                None
            }
            "pref" => valued!(
                |v| match v {
                    "low" => Some(3),
                    "medium" => Some(0),
                    "high" => Some(1),
                    _ => None,
                },
                "Invalid pref {v} specified for route",
                |p| r.pref = Some(p)
            ),
            "encap" => {
                cx.push(Diagnostic::notice(
                    pos,
                    "route `encap` is not supported by vrrpd: the route is not installed",
                ));
                None
            }
            _ if ROUTE_IGNORED.contains(&w) => {
                let (v, _) = val(cx)?;
                r.ignored.push(format!("{w} {v}"));
                Some(2)
            }
            _ if self.dst.is_none() && !self.default_dst => {
                if w == "to" {
                } else if let Some(t) = RouteType::from_name(w) {
                    r.kind = t;
                } else if w == "default" {
                    self.default_dst = true;
                } else {
                    self.failed |= !check_dst(w, pos, cx);
                    self.dst = Some((w, pos));
                }
                Some(1)
            }
            // keepalived reads such a word as the destination again, fails, and drops the
            // route there: the words after it are not read.
            _ => {
                bad(cx, pos, format!("unknown route keyword {w}"));
                None
            }
        }
    }

    /// The route, with keepalived's checks across its words.
    fn finish(mut self, line: &Pos, tracked: bool, cx: &mut Cx) -> Option<Route> {
        let mut r = self.r;
        r.nexthops.extend(self.nexthop.take());
        if !r.ignored.is_empty() {
            cx.push(Diagnostic::notice(
                line,
                format!(
                    "route options not installed by vrrpd: {}",
                    r.ignored.join(", ")
                ),
            ));
        }
        // The family comes from the destination, or from the other addresses for `default`.
        let others: Vec<IpAddr> = [r.via, r.src]
            .into_iter()
            .flatten()
            .chain(r.from.map(|p| p.addr))
            .chain(r.nexthops.iter().filter_map(|n| n.via))
            .collect();
        match self.dst {
            Some((w, _)) => r.dst = prefix(w)?,
            None if self.default_dst => {
                if others.first().is_some_and(IpAddr::is_ipv6) {
                    r.dst.addr = IpAddr::from([0u16; 8]);
                }
            }
            None => {
                bad(cx, line, "Route must have a destination".into());
                return None;
            }
        }
        if others.iter().any(|a| a.is_ipv6() != r.is_ipv6()) {
            bad(
                cx,
                line,
                "Cannot mix IPv4 and IPv6 addresses for route".into(),
            );
            return None;
        }
        if let Some(f) = r.from {
            if !r.is_ipv6() {
                bad(
                    cx,
                    line,
                    format!("route from address only supported with IPv6 ({f})"),
                );
                return None;
            }
        }
        // keepalived tracks a route by its own `dev` only (not a multipath route's).
        if tracked && r.dev.is_none() && !r.no_track {
            cx.push(Diagnostic::warning(
                line,
                format!(
                    "Warning - cannot track route {} with no interface specified, not tracking",
                    r.dst
                ),
            ));
        }
        Some(r)
    }
}

/// A keyword's value, or keepalived's complaint that it has none (it stops the file).
fn value<'t>(
    whole: Whole,
    w: &str,
    pos: &Pos,
    arg: Option<Tok<'t>>,
    cx: &mut Cx,
) -> Option<Tok<'t>> {
    if arg.is_none() {
        crate::registry::missing_word(pos, whole.0, w, whole.1 + 1, &mut cx.diags);
    }
    arg
}

/// A destination word: an address or prefix. False (reported) when it is neither.
fn check_dst(w: &str, pos: &Pos, cx: &mut Cx) -> bool {
    match w.split_once('/') {
        Some((a, l)) if a.parse::<IpAddr>().is_ok() => {
            let max = if a.contains(':') { 128 } else { 32 };
            if l.parse::<u8>().map_or(true, |n| n > max) {
                bad(
                    cx,
                    pos,
                    format!("Invalid address prefix len {l} for address {w}"),
                );
                return false;
            }
            true
        }
        _ if w.parse::<IpAddr>().is_ok() => true,
        _ => {
            bad(cx, pos, format!("unknown route keyword {w}"));
            false
        }
    }
}

/// Parses one route line. `tracked`: a `virtual_routes` line (keepalived warns when it cannot
/// track the route). `None` (reported) when the line is unusable.
pub fn parse_route<'a>(c: &Node<'a>, tracked: bool, cx: &mut Cx<'_, 'a>) -> Option<Route> {
    let toks = tokens(c);
    let mut line = RouteLine::new(Whole::of(&toks));
    let mut i = 0;
    while i < toks.len() {
        let (w, pos) = toks[i];
        let mut arg = toks.get(i + 1).copied();
        // `via inet6 ADDR`: iproute2's optional family word before a next hop, which the
        // address must then be of (keepalived refuses the route otherwise).
        let family =
            arg.filter(|(f, _)| matches!(w, "via" | "gw") && matches!(*f, "inet" | "inet6"));
        if let Some((f, fpos)) = family {
            arg = toks.get(i + 2).copied();
            let v6 = f == "inet6";
            if arg
                .and_then(|(a, _)| a.parse::<IpAddr>().ok())
                .is_some_and(|a| a.is_ipv6() != v6)
            {
                let msg = if line.nexthop.is_some() {
                    "IPv4/6 mismatch for nexthop"
                } else {
                    "Cannot mix IPv4 and IPv6 addresses for route"
                };
                cx.push(Diagnostic::warning(fpos, msg));
                return None;
            }
        }
        let step = if line.nexthop.is_some() {
            line.nexthop_word(w, pos, arg, cx)
        } else {
            line.route_word(w, pos, arg, cx)
        };
        match step {
            Some(n) => i += n + usize::from(family.is_some()),
            None => return None,
        }
    }
    if line.failed {
        return None;
    }
    line.finish(c.pos(), tracked, cx)
}

/// Rule options that take a value.
const RULE_VALUED: &[&str] = &[
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

/// A rule option without a value; false when `w` is not one.
fn rule_flag(r: &mut Rule, w: &str) -> bool {
    match w {
        "not" => r.not = true,
        "l3mdev" => r.l3mdev = true,
        "no_track" => r.no_track = true,
        "nop" => r.action = RuleAction::Nop,
        "blackhole" => r.action = RuleAction::Blackhole,
        "unreachable" => r.action = RuleAction::Unreachable,
        "prohibit" => r.action = RuleAction::Prohibit,
        _ => return false,
    }
    true
}

/// A rule option with its value; false when the value is bad (reported).
fn rule_option(r: &mut Rule, w: &str, v: &str, vp: &Pos, cx: &mut Cx) -> bool {
    let ok = match w {
        "from" | "to" => {
            let p = if v == "all" {
                Some(None)
            } else {
                prefix(v).map(Some)
            };
            match (p, w) {
                (Some(p), "from") => r.from = p,
                (Some(p), _) => r.to = p,
                (None, _) => {}
            }
            p.is_some()
        }
        "tos" | "dsfield" => u32_of(v)
            .and_then(|n| u8::try_from(n).ok())
            .map(|t| r.tos = Some(t))
            .is_some(),
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
                _ => {}
            }
            r.fwmark.is_some() && !matches!(mask, Some(None))
        }
        "iif" | "dev" => {
            r.iif = Some(v.to_string());
            true
        }
        "oif" => {
            r.oif = Some(v.to_string());
            true
        }
        "table" | "lookup" => match table(v, cx.host) {
            Some(t) => {
                r.action = RuleAction::Table(t);
                true
            }
            None => {
                bad(cx, vp, format!("Routing table {v} not found for rule"));
                return false;
            }
        },
        "preference" | "priority" => match u32_of(v) {
            Some(p) => {
                r.priority = p;
                true
            }
            None => {
                bad(cx, vp, format!("Invalid rule preference {w} specified"));
                return false;
            }
        },
        "goto" => u32_of(v).map(|g| r.action = RuleAction::Goto(g)).is_some(),
        "realms" => u32_of(v).map(|n| r.realms = Some(n)).is_some(),
        "suppress_prefixlength" => u32_of(v)
            .map(|n| r.suppress_prefixlength = Some(n))
            .is_some(),
        "suppress_ifgroup" => u32_of(v).map(|n| r.suppress_ifgroup = Some(n)).is_some(),
        "uidrange" => range(v).map(|u| r.uidrange = Some(u)).is_some(),
        "ipproto" => ip_proto(v).map(|p| r.ipproto = Some(p)).is_some(),
        "sport" => range(v).map(|p| r.sport = Some(p)).is_some(),
        _ => range(v).map(|p| r.dport = Some(p)).is_some(),
    };
    if !ok {
        let what = match w {
            "from" | "to" => format!("{w} address"),
            "dsfield" => "tos".into(),
            other => other.to_string(),
        };
        bad(cx, vp, format!("Invalid rule {what} {v}"));
    }
    ok
}

/// Parses one rule line (see [`parse_route`]).
pub fn parse_rule<'a>(c: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<Rule> {
    let toks = tokens(c);
    let line = c.pos();
    let mut r = Rule::default();
    let mut has_pref = false;
    let mut failed = false;
    let mut i = 0;
    while i < toks.len() {
        let (w, pos) = toks[i];
        if rule_flag(&mut r, w) {
            i += 1;
            continue;
        }
        if !RULE_VALUED.contains(&w) {
            bad(cx, pos, format!("Unknown rule option {w}"));
            failed = true;
            i += 1;
            continue;
        }
        let Some(&(v, vp)) = toks.get(i + 1) else {
            let whole = Whole::of(&toks);
            value(whole, w, pos, None, cx);
            return None;
        };
        failed |= !rule_option(&mut r, w, v, vp, cx);
        has_pref |= matches!(w, "preference" | "priority");
        i += 2;
    }
    if failed {
        return None;
    }
    let fams: Vec<bool> = [r.from, r.to]
        .into_iter()
        .flatten()
        .map(|p| p.addr.is_ipv6())
        .collect();
    if fams.windows(2).any(|w| w[0] != w[1]) {
        bad(
            cx,
            line,
            "rule specification has mixed IPv4 and IPv6".to_string(),
        );
        return None;
    }
    r.ipv6 = fams.first().copied().unwrap_or(false);
    if !has_pref {
        cx.push(Diagnostic::warning(
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
fn node(line: &str) -> Node<'static> {
    use crate::{lexer, tree};
    let text = format!("x {{\n  {line}\n}}\n");
    let file: std::sync::Arc<std::path::Path> = std::path::Path::new("t.conf").into();
    let (toks, _) = lexer::lex(&text, &file);
    let nodes = tree::parse(toks, &mut Diags::default());
    nodes[0].children[0].clone()
}

fn with_cx<T>(f: impl FnOnce(&mut Cx) -> T) -> (T, Vec<Diagnostic>) {
    let host = crate::host::FakeHost::new();
    let mut cx = Cx::new(&host, crate::registry::Sides::default());
    let v = f(&mut cx);
    (v, cx.diags.into_vec())
}

/// One `virtual_routes` line parsed on its own (tests here and in the daemon's crate).
pub fn parse_route_text(line: &str) -> Option<Route> {
    with_cx(|cx| parse_route(&node(line), true, cx)).0
}

/// One `virtual_rules` line parsed on its own.
pub fn parse_rule_text(line: &str) -> Option<Rule> {
    with_cx(|cx| parse_rule(&node(line), cx)).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(line: &str) -> (Option<Route>, Vec<Diagnostic>) {
        with_cx(|cx| parse_route(&node(line), true, cx))
    }

    fn rule(line: &str) -> (Option<Rule>, Vec<Diagnostic>) {
        with_cx(|cx| parse_rule(&node(line), cx))
    }

    #[test]
    fn route_via_dev_and_options() {
        let (r, d) =
            route("src 192.0.2.1 203.0.113.0/24 via 192.0.2.254 dev eth0 table 100 metric 5 scope link onlink");
        let r = r.expect("route");
        assert!(d.is_empty(), "{:?}", d);
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
        assert_eq!(d.len(), 1, "deprecated `or` warns");
        let (r, _) =
            route("203.0.113.0/24 nexthop via 192.0.2.1 dev eth0 weight 2 nexthop via 192.0.2.2");
        let r = r.unwrap();
        assert_eq!(r.nexthops.len(), 2);
        assert_eq!(r.nexthops[0].weight, Some(2));
    }

    #[test]
    fn a_next_hop_may_name_its_family() {
        let (r, d) = route("default via inet6 2001:db8::1 dev eth0");
        let r = r.expect("route");
        assert!(d.is_empty(), "{d:?}");
        assert!(r.is_ipv6() && r.via == Some("2001:db8::1".parse().unwrap()));
        let (r, _) = route("203.0.113.0/24 nexthop via inet 192.0.2.1 dev eth0");
        assert_eq!(r.expect("route").nexthops.len(), 1);
        // A family word that does not match: see `route_errors_in_keepalived_words`.
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
            (
                "default via inet 2001:db8::1 dev eth0",
                "Cannot mix IPv4 and IPv6 addresses for route",
            ),
            (
                "2001:db8:1::/64 nexthop via inet 2001:db8::2 dev eth0",
                "IPv4/6 mismatch for nexthop",
            ),
        ] {
            let (r, d) = route(line);
            assert!(r.is_none(), "{line} must fail");
            assert!(
                d.iter()
                    .any(|x| x.keepalived_flags() && x.message.contains(msg) && x.line == 2),
                "{line}: {:?}",
                d
            );
        }
        let (_, d) = route("203.0.113.0/24 via 192.0.2.1");
        assert!(d[0].message.contains("cannot track route 203.0.113.0/24"));
    }

    #[test]
    fn rules() {
        let (r, d) = rule("from 192.0.2.0/24 fwmark 0x10/0xff goto 200 priority 10");
        let r = r.unwrap();
        assert!(d.is_empty());
        assert_eq!((r.fwmark, r.fwmask), (Some(0x10), Some(0xff)));
        assert_eq!(r.action, RuleAction::Goto(200));
        let (r, d) = rule("from 2001:db8::/32 table 100");
        let r = r.unwrap();
        assert!(r.ipv6);
        assert_eq!(r.priority, DEFAULT_RULE_PRIORITY);
        assert!(d[0].message.contains("no preference"));
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
            assert!(d.iter().any(|x| x.message.contains(msg)), "{line}: {:?}", d);
        }
    }
}
