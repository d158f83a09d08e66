//! The checker side: `virtual_server`, `real_server`, `virtual_server_group` and `SSL`, with
//! the checks keepalived's checker process makes once a virtual server is read (its
//! `validate_check_config`: defaults it sets and says so, ports it corrects).

use std::net::IpAddr;

use checks::spec::TimerOverrides;
use lbcore::spec::{
    ForwardingMethod, GroupEntry, IpFamily, Protocol, RealServerSpec, SchedFlags, SchedulerKind,
    ScriptSpec, ServiceKey, ServiceSpec, SorryServerSpec, TunCsum, TunOptions, TunType,
    VirtualServerGroupSpec, DEFAULT_PERSISTENCE_TIMEOUT,
};

use super::checker::{self, CheckDraft};
use super::Draft;
use crate::diag::{suggest, Diagnostic, Pos, Spanned};
use crate::model::{RealServerChecks, TrackFile, VirtualServer};
use crate::process::Side;
use crate::registry::read_unsigned;
use crate::registry::{
    dispatch_block, kw, missing, ok, parse_int, skip, timer, unsigned, unsigned_strict, Arg,
    Context, Cx, Keyword, Status, TIMER_MAX, UINT_MAX,
};
use crate::tree::Node;

/// keepalived's `IPVS_WEIGHT_LIMIT` (`INT32_MAX`).
const WEIGHT_MAX: u64 = i32::MAX as u64;

const NO_SNMP: &str = "vrrpd has no SNMP agent";
const TUN_IPIP: &str =
    "NAT, DR and TUN forward; TUN is IP-in-IP only (`type gue`/`gre` and the checksum options have no effect)";
const LBLCR: &str = "every scheduler but `lblcr`, which runs as `lblc` (no replication sets)";

/// keepalived 2.2.7's schedulers (its `lvs_schedulers`).
const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos",
];

/// A virtual server as written.
pub struct VsDraft {
    key: ServiceKey,
    pos: Pos,
    family: Option<IpFamily>,
    protocol: Option<Protocol>,
    scheduler: Option<SchedulerKind>,
    flags: SchedFlags,
    forwarding: Option<ForwardingMethod>,
    persistence_timeout: Option<u32>,
    persistence_granularity: Option<u8>,
    persistence_engine: Option<String>,
    quorum: Option<u32>,
    hysteresis: Option<u32>,
    quorum_up: Option<ScriptSpec>,
    quorum_down: Option<ScriptSpec>,
    sorry: Option<(IpAddr, Option<u16>)>,
    sorry_inhibit: bool,
    sorry_forwarding: Option<ForwardingMethod>,
    inhibit_on_failure: bool,
    virtualhost: Option<String>,
    ha_suspend: bool,
    ops: bool,
    timers: TimerOverrides,
    weight: Option<u32>,
    smtp_alert: Option<bool>,
    real_servers: Vec<RsDraft>,
    /// Script commands, for the host's script checks.
    scripts: Vec<Spanned<String>>,
    /// The track_files defined before this virtual server (FILE_CHECK names them).
    track_files: Vec<TrackFile>,
}

/// A real server as written.
pub struct RsDraft {
    spec: RealServerSpec,
    weight: Option<u32>,
    pos: Pos,
    checks: RealServerChecks,
    scripts: Vec<Spanned<String>>,
    /// The track_files a FILE_CHECK may name.
    track_files: Vec<TrackFile>,
}

/// `ADDRESS PORT` of a `real_server` or `sorry_server` line.
fn ip_port<'a>(node: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<(IpAddr, Option<u16>)> {
    let a = node.args.first()?;
    let port = node.args.get(1).map(|p| (p, p.text.parse::<u16>()));
    match (crate::registry::sockaddr_ip(&a.text).ok_or(()), port) {
        (Ok(ip), None) => Some((ip, None)),
        (Ok(ip), Some((_, Ok(p)))) => Some((ip, (p != 0).then_some(p))),
        (_, p) => {
            let port = p.map_or(String::new(), |(t, _)| format!("/{}", t.text));
            cx.push(Diagnostic::warning(
                &a.pos,
                format!(
                    "Invalid {} ip address/port {}{port} - skipping",
                    node.name(),
                    a.text
                ),
            ));
            None
        }
    }
}

/// `lvs_method NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`, read as
/// keepalived's `svr_forwarding_handler` reads it for a `who` ("virtual", "real", "sorry")
/// server: the method is set first, then the tunnel options are read (after any method); a
/// bad option is reported and leaves the options `before` had. An unknown method leaves
/// `before` whole.
fn forwarding<'a>(
    n: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
    who: &str,
    before: Option<ForwardingMethod>,
) -> Option<ForwardingMethod> {
    let Some(first) = n.args.first() else {
        crate::registry::missing_value(n, &mut cx.diags);
        return before;
    };
    let method = match &*first.text {
        "NAT" => ForwardingMethod::Nat,
        "DR" => ForwardingMethod::Dr,
        "TUN" => ForwardingMethod::Tun(TunOptions::default()),
        other => {
            let mut d = Diagnostic::warning(
                &first.pos,
                format!("PARSER : unknown [{other}] routing method for {who} server."),
            );
            if let Some(s) = suggest(other, ["NAT", "DR", "TUN"]) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            cx.push(d);
            return before;
        }
    };
    let with = |t: TunOptions| match method {
        ForwardingMethod::Tun(_) => ForwardingMethod::Tun(t),
        m => m,
    };
    let kept = match before {
        Some(ForwardingMethod::Tun(t)) => t,
        _ => TunOptions::default(),
    };
    let refuse = |cx: &mut Cx, at: &Pos, msg: String| {
        cx.push(Diagnostic::warning(at, msg));
        Some(with(kept))
    };
    let words = &n.args[1..];
    let (mut kind, mut port, mut csum) = ("ipip", None, TunCsum::Nocsum);
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        match &*w.text {
            "type" => {
                let Some(t) = words.get(i + 1) else {
                    return refuse(cx, &w.pos, format!("Missing tunnel type for {who} server."));
                };
                kind = match &*t.text {
                    "ipip" => "ipip",
                    "gue" => "gue",
                    "gre" => "gre",
                    other => {
                        let msg = format!("Unknown tunnel type {other} for {who} server.");
                        return refuse(cx, &t.pos, msg);
                    }
                };
                i += 1;
            }
            "port" => {
                let Some(p) = words.get(i + 1) else {
                    let msg = format!("Missing port for {who} server gue tunnel.");
                    return refuse(cx, &w.pos, msg);
                };
                match read_unsigned(&p.text, 1, 65535) {
                    Ok(v) => port = Some(v as u16),
                    Err(said) => {
                        cx.push(Diagnostic::warning(&p.pos, said));
                        let msg = format!("Invalid gue tunnel port {} for {who} server.", p.text);
                        return refuse(cx, &p.pos, msg);
                    }
                }
                i += 1;
            }
            "nocsum" => csum = TunCsum::Nocsum,
            "csum" => csum = TunCsum::Csum,
            "remcsum" => csum = TunCsum::Remcsum,
            other => {
                let msg = format!("Invalid tunnel option {other} for {who} server.");
                return refuse(cx, &w.pos, msg);
            }
        }
        i += 1;
    }
    let at = &first.pos;
    if (kind == "gue") != port.is_some() {
        let msg = "gue tunnels require port, otherwise cannot have port.".into();
        return refuse(cx, at, msg);
    }
    if kind == "ipip" && csum != TunCsum::Nocsum {
        return refuse(
            cx,
            at,
            "ipip tunnels do not support checksum option.".into(),
        );
    }
    if kind == "gre" && csum == TunCsum::Remcsum {
        return refuse(
            cx,
            at,
            "gre tunnels do not support remote checksum option.".into(),
        );
    }
    let tun_type = match (kind, port) {
        ("gue", Some(port)) => TunType::Gue { port },
        ("gre", _) => TunType::Gre,
        _ => TunType::Ipip,
    };
    Some(with(TunOptions { tun_type, csum }))
}

/// A `notify_up` / `quorum_up` … line: `COMMAND [USER [GROUP]]`; without a user, the
/// default script user's, and dropped when there is none.
fn script<'a>(
    n: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
    used: &mut Vec<Spanned<String>>,
) -> Option<ScriptSpec> {
    let line = crate::registry::script_statement(n, &mut cx.diags)?;
    let kind = match n.name().starts_with("quorum") {
        true => "quorum",
        false => "notify",
    };
    // Dropped, as keepalived drops it (logged, not counted), when it cannot have its user.
    let dropped = match line.rest.first() {
        None if !cx.script_user.available(Side::Checker, n.pos()) => {
            Some("Failed to set default user")
        }
        Some(u) if cx.host.user_exists(u, line.rest.get(1).map(String::as_str)) == Some(false) => {
            Some("Invalid user/group")
        }
        _ => None,
    };
    if let Some(why) = dropped {
        let what = format!("{why} for {kind} script {} - ignoring", line.command);
        cx.push(Diagnostic::notice(n.pos(), what));
        return None;
    }
    used.push(Spanned::new(line.command.clone(), n.pos()));
    let mut rest = line.rest.into_iter();
    Some(ScriptSpec {
        command: line.command,
        user: rest.next(),
        group: rest.next(),
    })
}

/// A netmask (`255.255.255.0`) or prefix length as a prefix length.
fn granularity<'a>(v: &mut VsDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(a) = n.args.first() else {
        crate::registry::missing_value(n, &mut cx.diags);
        return;
    };
    let len = match a.text.parse::<IpAddr>() {
        _ if a.text.parse::<u8>().is_ok_and(|l| l <= 128) => a.text.parse().ok(),
        Ok(IpAddr::V4(m)) => {
            let bits = u32::from(m);
            (bits.leading_ones() + bits.trailing_zeros() == 32).then(|| bits.leading_ones() as u8)
        }
        Ok(IpAddr::V6(m)) => {
            let bits = u128::from(m);
            (bits.leading_ones() + bits.trailing_zeros() == 128).then(|| bits.leading_ones() as u8)
        }
        Err(_) => None,
    };
    match len {
        Some(l) => v.persistence_granularity = Some(l),
        None => cx.push(Diagnostic::warning(
            &a.pos,
            format!(
                "Invalid IPv4 persistence_granularity specified - {}",
                a.text
            ),
        )),
    }
}

fn scheduler<'a>(v: &mut VsDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(a) = n.args.first() else {
        crate::registry::missing_value(n, &mut cx.diags);
        return;
    };
    match SCHEDULERS
        .contains(&&*a.text)
        .then(|| SchedulerKind::from_name(&a.text))
        .flatten()
    {
        Some(s) => v.scheduler = Some(s),
        None => {
            let mut d = Diagnostic::warning(
                &a.pos,
                format!("Invalid lvs_scheduler '{}' - ignoring", a.text),
            );
            if let Some(s) = suggest(&a.text, SCHEDULERS.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            cx.push(d);
        }
    }
}

/// Timer keys of a virtual or real server, with keepalived's words for each bad value
/// (`connect_timeout`, `delay_loop`, `delay_before_retry`, `warmup`), which differ by block.
macro_rules! server_timer_rows {
    ($t:ty, [$co:literal, $dl:literal, $dbr:literal, $wu:literal], $($extra:expr),* $(,)?) => {
        &[
            ok("retry", Arg::Unsigned(unsigned_strict(1, UINT_MAX, "retry value invalid - {}"), |s: &mut $t, v| s.timers_mut().retry = Some(v.value as u32))),
            ok("delay_before_retry", Arg::Timer(timer(0, TIMER_MAX, $dbr), |s: &mut $t, v| s.timers_mut().delay_before_retry = Some(v.value))),
            ok("warmup", Arg::Timer(timer(0, TIMER_MAX, $wu), |s: &mut $t, v| s.timers_mut().warmup = Some(v.value))),
            ok("connect_timeout", Arg::Timer(timer(1, UINT_MAX, $co), |s: &mut $t, v| s.timers_mut().connect_timeout = Some(v.value))),
            ok("delay_loop", Arg::Timer(timer(1, TIMER_MAX, $dl), |s: &mut $t, v| s.timers_mut().delay_loop = Some(v.value))),
            ok("smtp_alert", Arg::Bool(|s: &mut $t, v| *s.smtp_alert_mut() = Some(v.value))),
            skip("snmp_name", NO_SNMP),
            $($extra),*
        ]
    };
}

trait ServerDraft {
    fn timers_mut(&mut self) -> &mut TimerOverrides;
    fn smtp_alert_mut(&mut self) -> &mut Option<bool>;
}

impl ServerDraft for VsDraft {
    fn timers_mut(&mut self) -> &mut TimerOverrides {
        &mut self.timers
    }
    fn smtp_alert_mut(&mut self) -> &mut Option<bool> {
        &mut self.smtp_alert
    }
}

impl ServerDraft for RsDraft {
    fn timers_mut(&mut self) -> &mut TimerOverrides {
        &mut self.checks.timers
    }
    fn smtp_alert_mut(&mut self) -> &mut Option<bool> {
        &mut self.checks.smtp_alert
    }
}

/// `virtual_server … { … }`.
pub static VIRTUAL_SERVER: &[Keyword<VsDraft>] = server_timer_rows!(
    VsDraft,
    [
        "virtual server connect_timeout {} invalid - ignoring",
        "virtual server delay loop '{}' invalid - ignoring",
        "virtual server delay before retry '{}' invalid - ignoring",
        "virtual server warmup '{}' invalid - ignoring"
    ],
    kw("lvs_sched", Status::Partial(LBLCR), Arg::Custom("SCHEDULER", scheduler)),
    kw("lb_algo", Status::Partial(LBLCR), Arg::Custom("SCHEDULER", scheduler)),
    kw("lvs_method", Status::Partial(TUN_IPIP), Arg::Custom("NAT|DR|TUN …", |v, n, cx| {
        v.forwarding = forwarding(n, cx, "virtual", v.forwarding)
    })),
    kw("lb_kind", Status::Partial(TUN_IPIP), Arg::Custom("NAT|DR|TUN …", |v, n, cx| {
        v.forwarding = forwarding(n, cx, "virtual", v.forwarding)
    })),
    ok("ip_family", Arg::Choice(&["inet", "inet6"], |v, s| {
        v.family = Some(if s.value == "inet6" { IpFamily::Inet6 } else { IpFamily::Inet })
    })),
    ok("inhibit_on_failure", Arg::Bool(|v, b| v.inhibit_on_failure = b.value)),
    skip("hashed", "IPVS hash-table flag: no effect"),
    kw("ops", Status::Unsupported("no one-packet scheduling: the datagrams of a UDP flow go to one real server"), Arg::Flag(|v, _| v.ops = true)),
    ok("flag-1", Arg::Flag(|v, _| { v.flags.sh_fallback = true; v.flags.mh_fallback = true })),
    ok("flag-2", Arg::Flag(|v, _| { v.flags.sh_port = true; v.flags.mh_port = true })),
    kw("flag-3", Status::Unsupported("no scheduler uses it (nor does any of IPVS's)"), Arg::Flag(|v, _| v.flags.flag_3 = true)),
    ok("sh-port", Arg::Flag(|v, _| v.flags.sh_port = true)),
    ok("sh-fallback", Arg::Flag(|v, _| v.flags.sh_fallback = true)),
    ok("mh-port", Arg::Flag(|v, _| v.flags.mh_port = true)),
    ok("mh-fallback", Arg::Flag(|v, _| v.flags.mh_fallback = true)),
    kw("persistence_engine", Status::Unsupported("IPVS's SIP persistence engine: no effect"), Arg::Word(|v, s| v.persistence_engine = Some(s.value))),
    ok("persistence_timeout", Arg::Custom("[1..2678400]", |v, n, cx| {
        let Some(a) = n.args.first() else {
            v.persistence_timeout = Some(DEFAULT_PERSISTENCE_TIMEOUT);
            return;
        };
        if let Some(t) = unsigned_strict(1, 2_678_400, "persistence_timeout invalid").read(a, &mut cx.diags).kept {
            v.persistence_timeout = Some(t as u32);
        }
    })),
    ok("persistence_granularity", Arg::Custom("NETMASK|LENGTH", granularity)),
    kw("protocol", Status::Partial("TCP and UDP are forwarded; SCTP is only checked (packets to the virtual server are dropped)"), Arg::Custom("TCP|UDP|SCTP", |v, n, cx| {
        let Some(a) = n.args.first() else {
            crate::registry::missing_value(n, &mut cx.diags);
            return;
        };
        match a.text.to_ascii_uppercase().as_str() {
            "TCP" => v.protocol = Some(Protocol::Tcp),
            "UDP" => v.protocol = Some(Protocol::Udp),
            "SCTP" => v.protocol = Some(Protocol::Sctp),
            _ => cx.push(Diagnostic::warning(&a.pos, format!("Unknown protocol {} - ignoring", a.text))),
        }
    })),
    kw("ha_suspend", Status::Unsupported("the checkers run whether or not the virtual address is held here"), Arg::Flag(|v, _| v.ha_suspend = true)),
    missing(
        "virtual server virtualhost missing",
        ok("virtualhost", Arg::Word(|v, s| v.virtualhost = Some(s.value))),
    ),
    ok("alpha", Arg::Flag(|v, _| v.timers.alpha = Some(true))),
    ok("omega", Arg::Flag(|v, _| v.timers.omega = Some(true))),
    ok("quorum_up", Arg::Custom("COMMAND [USER [GROUP]]", |v, n, cx| v.quorum_up = script(n, cx, &mut v.scripts))),
    ok("quorum_down", Arg::Custom("COMMAND [USER [GROUP]]", |v, n, cx| v.quorum_down = script(n, cx, &mut v.scripts))),
    ok("quorum", Arg::Custom("1..", |v, n, cx| {
        let Some(a) = n.args.first() else {
            crate::registry::missing_value(n, &mut cx.diags);
            return;
        };
        // keepalived sets 1 where its reader refuses the value.
        let num = unsigned(1, UINT_MAX, "Quorum {} must be in [1, 4294967295]. Setting to 1.");
        v.quorum = Some(num.read(a, &mut cx.diags).kept.unwrap_or(1) as u32);
    })),
    ok("hysteresis", Arg::Unsigned(unsigned(0, UINT_MAX, "Hysteresis {} must be in [0, 4294967295] - ignoring"), |v, h| v.hysteresis = Some(h.value as u32))),
    ok("weight", Arg::Unsigned(unsigned(1, WEIGHT_MAX, "Virtual server weight {} is outside range 1-2147483647"), |v, w| v.weight = Some(w.value as u32))),
    ok("sorry_server", Arg::Custom("IP [PORT]", |v, n, cx| {
        if n.args.is_empty() {
            crate::registry::missing_value(n, &mut cx.diags);
            return;
        }
        v.sorry = ip_port(n, cx);
    })),
    ok("sorry_server_inhibit", Arg::Bool(|v, b| v.sorry_inhibit = b.value)),
    kw("sorry_server_lvs_method", Status::Partial(TUN_IPIP), Arg::Custom("NAT|DR|TUN …", |v, n, cx| {
        if v.sorry.is_none() {
            cx.push(Diagnostic::warning(n.pos(), "sorry_server forwarding used without sorry_server"));
            return;
        }
        v.sorry_forwarding = forwarding(n, cx, "sorry", v.sorry_forwarding)
    })),
    ok("real_server", Arg::Custom("IP [PORT] { real_server }", real_server)),
);

/// `real_server IP [PORT] { … }`.
pub static REAL_SERVER: &[Keyword<RsDraft>] = server_timer_rows!(
    RsDraft,
    [
        "real server connect_timeout {} invalid - ignoring",
        "real server delay_loop '{}' invalid - ignoring",
        "real server delay_before_retry '{}' invalid - ignoring",
        "real server warmup '{}' invalid - ignoring"
    ],
    ok(
        "weight",
        Arg::Unsigned(
            unsigned(
                0,
                WEIGHT_MAX,
                "Real server weight {} is outside range 0-2147483647"
            ),
            |r, w| r.weight = Some(w.value as u32)
        )
    ),
    kw(
        "lvs_method",
        Status::Partial(TUN_IPIP),
        Arg::Custom("NAT|DR|TUN …", |r, n, cx| r.spec.forwarding =
            forwarding(n, cx, "real", r.spec.forwarding))
    ),
    ok(
        "uthreshold",
        Arg::Unsigned(
            unsigned(
                0,
                UINT_MAX,
                "Invalid real_server uthreshold '{}' - ignoring"
            ),
            |r, v| r.spec.uthreshold = v.value as u32
        )
    ),
    ok(
        "lthreshold",
        Arg::Unsigned(
            unsigned(
                0,
                UINT_MAX,
                "Invalid real_server lthreshold '{}' - ignoring"
            ),
            |r, v| r.spec.lthreshold = v.value as u32
        )
    ),
    ok(
        "inhibit_on_failure",
        Arg::Bool(|r, b| r.spec.inhibit_on_failure = Some(b.value))
    ),
    ok(
        "notify_up",
        Arg::Custom("COMMAND [USER [GROUP]]", |r, n, cx| {
            r.spec.notify_up = script(n, cx, &mut r.scripts);
        })
    ),
    ok(
        "notify_down",
        Arg::Custom("COMMAND [USER [GROUP]]", |r, n, cx| {
            r.spec.notify_down = script(n, cx, &mut r.scripts);
        })
    ),
    ok(
        "alpha",
        Arg::Bool(|r, b| r.checks.timers.alpha = Some(b.value))
    ),
    missing(
        "real server virtualhost missing",
        ok(
            "virtualhost",
            Arg::Word(|r, s| r.spec.virtualhost = Some(s.value))
        ),
    ),
    ok(
        "HTTP_GET",
        Arg::Block("HTTP_GET", |r, n, cx| add_checker(
            r,
            n,
            checker::HTTP_GET,
            cx
        ))
    ),
    ok(
        "SSL_GET",
        Arg::Block("SSL_GET", |r, n, cx| add_checker(
            r,
            n,
            checker::HTTP_GET,
            cx
        ))
    ),
    ok(
        "TCP_CHECK",
        Arg::Block("TCP_CHECK", |r, n, cx| add_checker(
            r,
            n,
            checker::TCP_CHECK,
            cx
        ))
    ),
    ok(
        "SMTP_CHECK",
        Arg::Block("SMTP_CHECK", |r, n, cx| add_checker(
            r,
            n,
            checker::SMTP_CHECK,
            cx
        ))
    ),
    ok(
        "DNS_CHECK",
        Arg::Block("DNS_CHECK", |r, n, cx| add_checker(
            r,
            n,
            checker::DNS_CHECK,
            cx
        ))
    ),
    ok(
        "UDP_CHECK",
        Arg::Block("UDP_CHECK", |r, n, cx| add_checker(
            r,
            n,
            checker::UDP_CHECK,
            cx
        ))
    ),
    ok(
        "PING_CHECK",
        Arg::Block("PING_CHECK", |r, n, cx| add_checker(
            r,
            n,
            checker::PING_CHECK,
            cx
        ))
    ),
    ok(
        "MISC_CHECK",
        Arg::Block("MISC_CHECK", |r, n, cx| add_checker(
            r,
            n,
            checker::MISC_CHECK,
            cx
        ))
    ),
    ok(
        "FILE_CHECK",
        Arg::Block("FILE_CHECK", |r, n, cx| add_checker(
            r,
            n,
            checker::FILE_CHECK,
            cx
        ))
    ),
    kw(
        "BFD_CHECK",
        Status::Unsupported("vrrpd has no BFD"),
        Arg::Block("BFD_CHECK", |_, n, cx| {
            let mut d = CheckDraft::default();
            crate::registry::dispatch_quiet(checker::BFD_CHECK, "BFD_CHECK", &mut d, n, cx)
        })
    ),
);

fn add_checker<'a>(
    r: &mut RsDraft,
    n: &Node<'a>,
    table: &[Keyword<CheckDraft>],
    cx: &mut Cx<'_, 'a>,
) {
    if let Some(c) = checker::checker(n, table, &r.track_files, cx, &mut r.scripts) {
        r.checks.checkers.push(c);
    }
}

fn real_server<'a>(v: &mut VsDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    if n.args.is_empty() {
        crate::registry::missing_value(n, &mut cx.diags);
        return;
    }
    let Some((addr, port)) = ip_port(n, cx) else {
        return;
    };
    let mut r = RsDraft {
        spec: RealServerSpec {
            addr,
            port,
            ..RealServerSpec::default()
        },
        weight: None,
        pos: n.pos().clone(),
        checks: RealServerChecks::default(),
        scripts: Vec::new(),
        track_files: v.track_files.clone(),
    };
    if n.block.is_some() {
        dispatch_block(REAL_SERVER, "real_server", &mut r, n, cx);
    }
    v.scripts.append(&mut r.scripts);
    r.track_files.clear();
    // keepalived's rs_end_handler: the first server's family is the virtual server's.
    let fam = |ip: &IpAddr| {
        if ip.is_ipv6() {
            IpFamily::Inet6
        } else {
            IpFamily::Inet
        }
    };
    let tunnelled = matches!(r.spec.forwarding, Some(ForwardingMethod::Tun(_)));
    if !tunnelled {
        match v.family {
            None => v.family = Some(fam(&addr)),
            Some(f) if f != fam(&addr) => {
                cx.push(Diagnostic::warning(
                    n.pos(),
                    format!("Address family of virtual server and real server {addr} don't match - skipping real server."),
                ));
                return;
            }
            Some(_) => {}
        }
    }
    v.real_servers.push(r);
}

/// `virtual_server IP [PORT] | fwmark N | group NAME { … }`.
pub fn virtual_server<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    if !cx.sides.checker {
        return;
    }
    let key = match n.args.first().map(|a| &*a.text) {
        None => {
            crate::registry::missing_value(n, &mut cx.diags);
            return;
        }
        Some("fwmark") => match n.args.get(1).map(|a| parse_int(&a.text)) {
            Some(Some(m)) if (0..=u32::MAX as i64).contains(&m) => ServiceKey::Fwmark {
                mark: m as u32,
                family: IpFamily::Inet,
            },
            _ => {
                cx.push(Diagnostic::warning(
                    n.pos(),
                    "virtual server fwmark must be in [0, 4294967295] - skipping",
                ));
                return;
            }
        },
        Some("group") => match n.args.get(1) {
            Some(g) => ServiceKey::Group(g.text.to_string()),
            None => {
                crate::registry::missing_value(n, &mut cx.diags);
                return;
            }
        },
        Some(_) => {
            let Some((addr, port)) = ip_port(n, cx) else {
                return;
            };
            ServiceKey::Addr { addr, port }
        }
    };
    let family = match &key {
        ServiceKey::Addr { addr, .. } if addr.is_ipv6() => Some(IpFamily::Inet6),
        ServiceKey::Addr { .. } => Some(IpFamily::Inet),
        _ => None,
    };
    let mut v = VsDraft {
        key,
        pos: n.pos().clone(),
        family,
        protocol: None,
        scheduler: None,
        flags: SchedFlags::default(),
        forwarding: None,
        persistence_timeout: None,
        persistence_granularity: None,
        persistence_engine: None,
        quorum: None,
        hysteresis: None,
        quorum_up: None,
        quorum_down: None,
        sorry: None,
        sorry_inhibit: false,
        sorry_forwarding: None,
        inhibit_on_failure: false,
        virtualhost: None,
        ha_suspend: false,
        ops: false,
        timers: TimerOverrides::default(),
        weight: None,
        smtp_alert: None,
        real_servers: Vec::new(),
        scripts: Vec::new(),
        track_files: d.track_files.clone(),
    };
    dispatch_block(VIRTUAL_SERVER, "virtual_server", &mut v, n, cx);
    d.checker_commands.append(&mut v.scripts);
    // keepalived's check_data: a group address without a port needs persistence, as a
    // virtual server's own address does.
    if let ServiceKey::Group(g) = &v.key {
        let portless = d
            .virtual_server_groups
            .iter()
            .filter(|vsg| vsg.name == *g)
            .flat_map(|vsg| &vsg.entries)
            .any(|e| matches!(e, GroupEntry::Range { port: None, .. }));
        if portless && v.persistence_timeout.is_none() {
            let what = format!(
                "Virtual server {}:0: zero port only valid for persistent services - setting",
                v.name()
            );
            cx.push(Diagnostic::warning(n.pos(), what));
            v.persistence_timeout = Some(DEFAULT_PERSISTENCE_TIMEOUT);
        }
    }
    if let Some(vs) = v.resolve(cx) {
        d.virtual_servers.push(vs);
    }
}

impl VsDraft {
    fn name(&self) -> String {
        match &self.key {
            ServiceKey::Addr { addr, port } => match (addr, port) {
                (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
                (a, Some(p)) => format!("{a}:{p}"),
                (a, None) => a.to_string(),
            },
            ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
            ServiceKey::Group(g) => format!("[{g}]"),
        }
    }

    /// keepalived's `validate_check_config` for one virtual server.
    fn resolve(self, cx: &mut Cx) -> Option<VirtualServer> {
        let name = self.name();
        let pos = self.pos.clone();
        let warn = |cx: &mut Cx, msg: String| cx.push(Diagnostic::warning(&pos, msg));
        if self.real_servers.is_empty() {
            warn(
                cx,
                format!("Virtual server {name} has no real servers - ignoring"),
            );
            return None;
        }
        let fwmark = matches!(self.key, ServiceKey::Fwmark { .. });
        let group = matches!(self.key, ServiceKey::Group(_));
        let mut persistence_timeout = self.persistence_timeout;
        let mut protocol = self.protocol;
        if !fwmark {
            if protocol.is_none() && !group {
                // keepalived's default is UDP (what IPVS gets with protocol 0); vrrpd's is TCP.
                cx.push(
                    Diagnostic::warning(
                        &pos,
                        format!("Virtual server {name}: no protocol set - defaulting to UDP"),
                    )
                    .with_help("vrrpd defaults to TCP: write `protocol TCP` or `protocol UDP`"),
                );
            }
            if self.ops && protocol != Some(Protocol::Udp) {
                warn(
                    cx,
                    format!(
                        "Virtual server {name}: one packet scheduling requires UDP - resetting"
                    ),
                );
            }
            if let ServiceKey::Addr { port: None, .. } = self.key {
                if persistence_timeout.is_none() {
                    warn(cx, format!("Virtual server {name}: zero port only valid for persistent services - setting"));
                    persistence_timeout = Some(DEFAULT_PERSISTENCE_TIMEOUT);
                }
            }
        } else if protocol.is_some() {
            warn(cx, format!("Warning: Virtual server {name}: protocol specified for fwmark - protocol will be ignored"));
            protocol = None;
        }
        if self.scheduler.is_none() {
            warn(
                cx,
                format!("Virtual server {name}: no scheduler set, setting default 'wlc'"),
            );
        }
        let mut forwarding = self.forwarding;
        let mut real_servers: Vec<RsDraft> = Vec::new();
        let mut weight_sum: u64 = 0;
        for mut r in self.real_servers {
            if real_servers
                .iter()
                .any(|o| o.spec.addr == r.spec.addr && o.spec.port == r.spec.port)
            {
                warn(
                    cx,
                    format!(
                        "VS {name}: real server {} is duplicated - removing second rs",
                        r.spec.addr
                    ),
                );
                continue;
            }
            if r.spec.forwarding.is_none() && forwarding.is_none() {
                warn(
                    cx,
                    format!("Virtual server {name}: no forwarding method set, setting default NAT"),
                );
                forwarding = Some(ForwardingMethod::Nat);
            }
            r.spec.weight = r.weight.or(self.weight).unwrap_or(1);
            weight_sum += u64::from(r.spec.weight);
            real_servers.push(r);
        }
        if self.sorry.is_some() && self.sorry_forwarding.is_none() && forwarding.is_none() {
            warn(
                cx,
                format!("Virtual server {name}: no forwarding method set, setting default NAT"),
            );
            forwarding = Some(ForwardingMethod::Nat);
        }
        let forwarding = forwarding.unwrap_or_default();
        let mut quorum = self.quorum.unwrap_or(1);
        if u64::from(quorum) > weight_sum {
            warn(cx, format!("Warning - quorum {quorum} for {name} exceeds total weight of real servers {weight_sum}, reducing quorum to {weight_sum}"));
            quorum = weight_sum as u32;
        }
        let mut hysteresis = self.hysteresis.unwrap_or(0);
        if hysteresis >= quorum {
            warn(cx, format!("Virtual server {name}: hysteresis {hysteresis} >= quorum {quorum}; setting hysteresis to {}", quorum.saturating_sub(1)));
            hysteresis = quorum.saturating_sub(1);
        }
        // Ports: outside NAT the real server's port must be the virtual server's (or none for
        // fwmark services); keepalived corrects it and says so.
        let vs_port = match self.key {
            ServiceKey::Addr { port, .. } => port,
            _ => None,
        };
        for r in &mut real_servers {
            let fwd = r.spec.forwarding.unwrap_or(forwarding);
            if fwd == ForwardingMethod::Nat {
                continue;
            }
            if fwmark && r.spec.port.is_some() {
                cx.push(Diagnostic::warning(
                    &r.pos,
                    format!("WARNING - fwmark virtual server {name}, real server {} has port specified - clearing", r.spec.addr),
                ));
                r.spec.port = None;
            } else if !fwmark && !group && r.spec.port.is_some() && r.spec.port != vs_port {
                cx.push(Diagnostic::warning(
                    &r.pos,
                    format!("WARNING - virtual server {name} and real server {} ports don't match - resetting", r.spec.addr),
                ));
                r.spec.port = vs_port;
            }
        }
        let key = match self.key {
            ServiceKey::Fwmark { mark, .. } => ServiceKey::Fwmark {
                mark,
                family: self.family.unwrap_or_default(),
            },
            k => k,
        };
        let (specs, checks): (Vec<_>, Vec<_>) =
            real_servers.into_iter().map(|r| (r.spec, r.checks)).unzip();
        let service = ServiceSpec {
            key,
            protocol: protocol.unwrap_or(Protocol::Tcp),
            scheduler: self.scheduler.unwrap_or(SchedulerKind::Wlc),
            sched_flags: self.flags,
            forwarding,
            persistence_timeout,
            persistence_granularity: self.persistence_granularity,
            persistence_engine: self.persistence_engine,
            quorum,
            hysteresis,
            quorum_up: self.quorum_up,
            quorum_down: self.quorum_down,
            sorry_server: self.sorry.map(|(addr, port)| SorryServerSpec {
                addr,
                port,
                inhibit: self.sorry_inhibit,
                forwarding: self.sorry_forwarding,
            }),
            inhibit_on_failure: self.inhibit_on_failure,
            virtualhost: self.virtualhost,
            ha_suspend: self.ha_suspend,
            ops: self.ops && protocol == Some(Protocol::Udp),
            alpha: self.timers.alpha.unwrap_or(false),
            omega: self.timers.omega.unwrap_or(false),
            delay_loop: self
                .timers
                .delay_loop
                .map_or(60, |d| d.as_secs().clamp(1, u32::MAX.into()) as u32),
            real_servers: specs,
        };
        Some(VirtualServer {
            service,
            timers: self.timers,
            real_servers: checks,
            smtp_alert: self.smtp_alert,
        })
    }
}

/// `virtual_server_group NAME { IP[/MASK|-LAST] [PORT] | fwmark N [inet|inet6] … }`.
pub fn vs_group<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    if !cx.sides.checker {
        return;
    }
    let Some(name) = super::name_arg(n, cx) else {
        return;
    };
    let mut entries = Vec::new();
    for c in &n.children {
        if let Some(e) = group_entry(&name.value, c, cx) {
            entries.push(e);
        }
    }
    if entries.is_empty() {
        cx.push(Diagnostic::warning(
            n.pos(),
            format!(
                "virtual server group {} has no entries - removing",
                name.value
            ),
        ));
        return;
    }
    d.virtual_server_groups.push(VirtualServerGroupSpec {
        name: name.value,
        entries,
    });
}

fn group_entry<'a>(group: &str, c: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<GroupEntry> {
    let word = c.name();
    let warn = |cx: &mut Cx, msg: String| {
        cx.push(Diagnostic::warning(c.pos(), msg));
        None
    };
    if word == "fwmark" {
        let Some(mark) = c
            .args
            .first()
            .and_then(|a| parse_int(&a.text))
            .filter(|m| (0..=u32::MAX as i64).contains(m))
        else {
            let v = c.args.first().map_or("", |a| &*a.text);
            return warn(
                cx,
                format!("({group}): fwmark '{v}' must be in [0, 4294967295] - ignoring"),
            );
        };
        let family = match c.args.get(1).map(|a| &*a.text) {
            None => None,
            Some("inet") => Some(IpFamily::Inet),
            Some("inet6") => Some(IpFamily::Inet6),
            Some(f) => {
                return warn(
                    cx,
                    format!("({group}): fwmark '{mark}' family {f} unknown - ignoring"),
                )
            }
        };
        return Some(GroupEntry::Fwmark {
            mark: mark as u32,
            family,
        });
    }
    // A port of 0 means none (keepalived since v2.0.7).
    let port = match c.args.first().map(|p| p.text.parse::<u16>()) {
        None => None,
        Some(Ok(0)) => None,
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => {
            return warn(
                cx,
                format!("Invalid virtual server group IP address {word} - skipping"),
            )
        }
    };
    let bad = |cx: &mut Cx| {
        warn(
            cx,
            format!("Invalid virtual server group IP address {word} - skipping"),
        )
    };
    // IP/MASK: every address of the subnet (its host bits must be zero).
    if let Some((a, m)) = word.split_once('/') {
        let (Ok(first), Ok(mask)) = (a.parse::<IpAddr>(), m.parse::<u8>()) else {
            return bad(cx);
        };
        let max = if first.is_ipv4() { 32 } else { 128 };
        if mask == 0 || mask > max {
            return warn(cx, format!("Invalid netmask - {word} - skipping"));
        }
        let host_bits = |bits: u32| if bits >= 128 { 0 } else { u128::MAX >> bits };
        let (base, hostmask) = match first {
            IpAddr::V4(v) => (u128::from(u32::from(v)), host_bits(96 + u32::from(mask))),
            IpAddr::V6(v) => (u128::from(v), host_bits(u32::from(mask))),
        };
        if base & hostmask != 0 {
            return warn(
                cx,
                format!("Address mask bits not empty - {word} - skipping"),
            );
        }
        let last = match first {
            IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from((base | hostmask) as u32)),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(base | hostmask)),
        };
        return Some(GroupEntry::Range { first, last, port });
    }
    // IP-LAST (a whole address) or IP-N (the last byte / 16-bit group).
    let (first_s, last_s) = match word.rsplit_once('-') {
        Some((a, l)) if a.parse::<IpAddr>().is_ok() => (a, Some(l)),
        _ => (word, None),
    };
    let Ok(first) = first_s.parse::<IpAddr>() else {
        return bad(cx);
    };
    let last = match (first, last_s) {
        (_, None) => first,
        (_, Some(l)) if l.parse::<IpAddr>().is_ok() => {
            let last: IpAddr = l.parse().ok()?;
            if last.is_ipv4() != first.is_ipv4() {
                return warn(
                    cx,
                    format!("Range address families do not match {word} - skipping"),
                );
            }
            if last < first {
                return warn(
                    cx,
                    format!(
                        "Address range end is less than address range start - {word} - skipping"
                    ),
                );
            }
            last
        }
        (IpAddr::V4(a), Some(l)) => match l.parse::<u8>() {
            Ok(l) if l > a.octets()[3] => {
                let mut o = a.octets();
                o[3] = l;
                IpAddr::from(o)
            }
            Ok(_) => {
                return warn(
                    cx,
                    format!(
                    "Address range end is not greater than address range start - {word} - skipping"
                ),
                )
            }
            Err(_) => return bad(cx),
        },
        (IpAddr::V6(a), Some(l)) => match u16::from_str_radix(l, 16) {
            Ok(l) if l > a.segments()[7] => {
                let mut s = a.segments();
                s[7] = l;
                IpAddr::from(s)
            }
            Ok(_) => {
                return warn(
                    cx,
                    format!(
                    "Address range end is not greater than address range start - {word} - skipping"
                ),
                )
            }
            Err(_) => return bad(cx),
        },
    };
    Some(GroupEntry::Range { first, last, port })
}

/// The top-level `SSL { … }` block.
pub static SSL: &[Keyword<checks::spec::TlsSpec>] = &[
    kw(
        "password",
        Status::Unsupported("encrypted private keys cannot be loaded: the password is not used"),
        Arg::Word(|s, v| s.password = Some(v.value)),
    ),
    ok("ca", Arg::Word(|s, v| s.ca = Some(v.value.into()))),
    ok(
        "certificate",
        Arg::Word(|s, v| s.certificate = Some(v.value.into())),
    ),
    ok("key", Arg::Word(|s, v| s.key = Some(v.value.into()))),
];

pub fn ssl<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    if !cx.sides.checker {
        return;
    }
    if d.ssl.is_some() {
        cx.push(Diagnostic::warning(
            n.pos(),
            "SSL context already specified - replacing",
        ));
    }
    let mut s = checks::spec::TlsSpec::default();
    dispatch_block(SSL, "SSL", &mut s, n, cx);
    d.ssl = Some(s);
}

/// keepalived's `SSL` block configures every `SSL_GET` checker that has no TLS settings.
pub fn with_ssl(
    mut servers: Vec<VirtualServer>,
    ssl: Option<&checks::spec::TlsSpec>,
) -> Vec<VirtualServer> {
    let Some(ssl) = ssl else { return servers };
    for rs in servers.iter_mut().flat_map(|vs| vs.real_servers.iter_mut()) {
        for c in &mut rs.checkers {
            if let checks::spec::ProbeSpec::SslGet(h) = &mut c.probe {
                h.tls.get_or_insert_with(|| ssl.clone());
            }
        }
    }
    servers
}

/// The tables of this module and of the checkers.
pub fn contexts() -> Vec<Context> {
    let mut v = vec![
        Context::of("SSL", SSL),
        Context::of("virtual_server", VIRTUAL_SERVER),
        Context::of("virtual_server/real_server", REAL_SERVER),
    ];
    for (name, table) in checker::CHECKERS {
        v.push(Context::of(checker_path(name), table));
    }
    v.push(Context::of(
        "virtual_server/real_server/HTTP_GET/url",
        checker::URL,
    ));
    v.push(Context::of(
        "virtual_server/real_server/SSL_GET/url",
        checker::URL,
    ));
    v.push(Context::of(
        "virtual_server/real_server/SMTP_CHECK/host",
        checker::PING_CHECK,
    ));
    v.push(Context::of(
        "virtual_server/real_server/BFD_CHECK",
        checker::BFD_CHECK,
    ));
    v
}

fn checker_path(name: &str) -> &'static str {
    match name {
        "HTTP_GET" => "virtual_server/real_server/HTTP_GET",
        "SSL_GET" => "virtual_server/real_server/SSL_GET",
        "TCP_CHECK" => "virtual_server/real_server/TCP_CHECK",
        "SMTP_CHECK" => "virtual_server/real_server/SMTP_CHECK",
        "DNS_CHECK" => "virtual_server/real_server/DNS_CHECK",
        "UDP_CHECK" => "virtual_server/real_server/UDP_CHECK",
        "PING_CHECK" => "virtual_server/real_server/PING_CHECK",
        "MISC_CHECK" => "virtual_server/real_server/MISC_CHECK",
        _ => "virtual_server/real_server/FILE_CHECK",
    }
}
