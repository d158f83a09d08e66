//! Declarative keyword schemas for the blocks outside `global_defs` / `vrrp_instance` core:
//! what each keyword takes (value type, range), how far we support it, and nested blocks.
//! [`check`] validates a block against its schema (unknown words get "did you mean"); the
//! model builders in `keepalived` then read the already validated values.

use super::diag::{suggest, Diagnostic, Diags};
use super::keywords::Status;
use super::tree::Node;

/// What a keyword takes.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    /// No value.
    Flag,
    /// An optional BOOL word (`on|off|true|false|yes|no`); absent means true.
    OptBool,
    /// At least one word.
    Str,
    /// Anything (free-form; checked by the model builder where it matters).
    Rest,
    /// An integer in range.
    Int(i64, i64),
    /// A TIMER: seconds, fractions allowed.
    Timer(f64, f64),
    /// An IP address.
    Ip,
    /// One of these words.
    Enum(&'static [&'static str]),
    /// A nested block with its own keywords.
    Block(&'static [Spec]),
    /// A block of free-form lines (addresses, names, routes …), checked by the builder.
    Lines,
}

/// One keyword of a block.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub arg: Arg,
    pub status: Status,
}

/// Parsed and modelled, not acted upon by vrrpd yet.
const fn m(name: &'static str, arg: Arg) -> Spec {
    Spec {
        name,
        arg,
        status: Status::Partial("parsed and validated into the model; not acted on by vrrpd yet"),
    }
}
/// Supported: acted on as keepalived does.
const fn s(name: &'static str, arg: Arg) -> Spec {
    Spec {
        name,
        arg,
        status: Status::Supported,
    }
}
const fn p(name: &'static str, arg: Arg, why: &'static str) -> Spec {
    Spec {
        name,
        arg,
        status: Status::Partial(why),
    }
}
/// Validated only: not kept in the model.
const fn v(name: &'static str, arg: Arg) -> Spec {
    Spec {
        name,
        arg,
        status: Status::Partial("validated, not kept in the model or acted on"),
    }
}
const fn u(name: &'static str, arg: Arg, why: &'static str) -> Spec {
    Spec {
        name,
        arg,
        status: Status::Unsupported(why),
    }
}

const BOOL_WORDS: &[&str] = &["on", "off", "true", "false", "yes", "no"];
const T: Arg = Arg::Timer(0.0, 1e9);
const U32: Arg = Arg::Int(0, u32::MAX as i64);
const PORT: Arg = Arg::Int(0, 65535);

pub const VRRP_SCRIPT: &[Spec] = &[
    s("script", Arg::Str),
    s("interval", T),
    s("timeout", T),
    s("weight", Arg::Rest),
    s("rise", Arg::Int(1, u32::MAX as i64)),
    s("fall", Arg::Int(1, u32::MAX as i64)),
    s("user", Arg::Str),
    s("init_fail", Arg::Flag),
];

pub const TRACK_FILE: &[Spec] = &[
    s("file", Arg::Str),
    s("weight", Arg::Rest),
    s("init_file", Arg::Rest),
];

/// keepalived's range for the process delays (it reads microseconds, at least 1).
const PROC_DELAY: Arg = Arg::Timer(0.000_001, 3600.0);

pub const TRACK_PROCESS: &[Spec] = &[
    s("process", Arg::Str),
    // Bare `param_match` is keepalived's "exactly these parameters"; the word is checked by
    // the model builder.
    s("param_match", Arg::Rest),
    s("weight", Arg::Rest),
    s("quorum", Arg::Int(1, 65535)),
    s("quorum_max", Arg::Int(0, 65535)),
    s("fork_delay", PROC_DELAY),
    s("terminate_delay", PROC_DELAY),
    s("delay", PROC_DELAY),
    s("full_command", Arg::Flag),
];

pub const SYNC_GROUP: &[Spec] = &[
    s("group", Arg::Lines),
    s("track_interface", Arg::Lines),
    s("track_script", Arg::Lines),
    s("track_file", Arg::Lines),
    s("track_process", Arg::Lines),
    m("track_bfd", Arg::Lines),
    s("notify_master", Arg::Str),
    s("notify_backup", Arg::Str),
    s("notify_fault", Arg::Str),
    s("notify_stop", Arg::Str),
    s("notify", Arg::Str),
    m("smtp_alert", Arg::OptBool),
    p(
        "global_tracking",
        Arg::Flag,
        "accepted (deprecated in keepalived 2): a member's own fault takes the whole group to FAULT anyway",
    ),
    s("sync_group_tracking_weight", Arg::Flag),
];

pub const GARP_GROUP: &[Spec] = &[
    v("garp_interval", Arg::Timer(0.0, 1.0)),
    v("gna_interval", Arg::Timer(0.0, 1.0)),
    v("interface", Arg::Str),
    v("interfaces", Arg::Lines),
];

pub const BFD_INSTANCE: &[Spec] = &[
    u("neighbor_ip", Arg::Ip, "vrrpd has no BFD"),
    u("source_ip", Arg::Ip, "vrrpd has no BFD"),
    u("min_rx", U32, "vrrpd has no BFD"),
    u("min_tx", U32, "vrrpd has no BFD"),
    u("idle_tx", U32, "vrrpd has no BFD"),
    u("multiplier", Arg::Int(1, 255), "vrrpd has no BFD"),
    u("passive", Arg::Flag, "vrrpd has no BFD"),
    u("ttl", Arg::Int(1, 255), "vrrpd has no BFD"),
    u("max_hops", Arg::Int(0, 255), "vrrpd has no BFD"),
    u("disabled", Arg::Flag, "vrrpd has no BFD"),
];

pub const SSL: &[Spec] = &[
    v("password", Arg::Str),
    v("ca", Arg::Str),
    v("certificate", Arg::Str),
    v("key", Arg::Str),
];

pub const URL: &[Spec] = &[
    m("path", Arg::Str),
    m("digest", Arg::Str),
    m("status_code", Arg::Str),
    m("virtualhost", Arg::Str),
    m("regex", Arg::Str),
    m("regex_no_match", Arg::Flag),
    m("regex_options", Arg::Rest),
    m("regex_stack", Arg::Rest),
    m("regex_min_offset", U32),
    m("regex_max_offset", U32),
];

/// Keys every checker accepts (inherited from the real and virtual server when unset).
macro_rules! checker_common {
    ($($extra:expr),* $(,)?) => {
        &[
            m("connect_ip", Arg::Ip),
            m("connect_port", PORT),
            m("bindto", Arg::Ip),
            m("bind_if", Arg::Str),
            m("bind_port", PORT),
            m("fwmark", U32),
            m("alpha", Arg::OptBool),
            m("connect_timeout", T),
            m("retry", U32),
            m("nb_get_retry", U32),
            m("delay_before_retry", T),
            m("warmup", T),
            m("delay_loop", T),
            m("log_all_failures", Arg::OptBool),
            $($extra),*
        ]
    };
}

pub const HTTP_CHECK: &[Spec] = checker_common!(
    m("url", Arg::Block(URL)),
    m("http_protocol", Arg::Str),
    m("virtualhost", Arg::Str),
    m("fast_recovery", Arg::OptBool),
    m("enable_sni", Arg::OptBool),
    m("tls_compliant", Arg::OptBool),
    m("nb_sock_retry", U32),
);
/// A vrrpd extension, parsed into the model.
const fn x(name: &'static str, arg: Arg, what: &'static str) -> Spec {
    Spec {
        name,
        arg,
        status: Status::Extension(what),
    }
}

pub const TCP_CHECK: &[Spec] = checker_common!(
    x(
        "half_open",
        Arg::OptBool,
        "SYN only: a SYN/ACK is up, an RST down; the kernel resets the SYN/ACK, so the server's application never sees a connection (needs CAP_NET_RAW)"
    ),
    x(
        "reset_close",
        Arg::OptBool,
        "close a successful connect with an RST (SO_LINGER 0) instead of keepalived's FIN: no TIME_WAIT on the checker"
    ),
);
pub const PING_CHECK: &[Spec] = checker_common!();
pub const SMTP_CHECK: &[Spec] =
    checker_common!(m("helo_name", Arg::Str), m("host", Arg::Block(PING_CHECK)),);
pub const DNS_CHECK: &[Spec] = checker_common!(m("type", Arg::Str), m("name", Arg::Str));
pub const UDP_CHECK: &[Spec] = checker_common!(
    m("payload", Arg::Str),
    m("require_reply", Arg::Rest),
    m("min_reply_length", U32),
    m("max_reply_length", U32),
);
pub const MISC_CHECK: &[Spec] = &[
    m("misc_path", Arg::Str),
    m("misc_timeout", T),
    m("misc_dynamic", Arg::Flag),
    m("user", Arg::Str),
    m("alpha", Arg::OptBool),
    m("retry", U32),
    m("nb_get_retry", U32),
    m("delay_before_retry", T),
    m("warmup", T),
    m("delay_loop", T),
    m("log_all_failures", Arg::OptBool),
];
pub const FILE_CHECK: &[Spec] = &[m("track_file", Arg::Str), m("weight", Arg::Rest)];
pub const BFD_CHECK: &[Spec] = &[u("name", Arg::Str, "vrrpd has no BFD")];

const LVS_SCHED: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos",
    "rtt",
];

macro_rules! server_common {
    ($($extra:expr),* $(,)?) => {
        &[
            m("connect_timeout", T),
            m("retry", U32),
            m("nb_get_retry", U32),
            m("delay_before_retry", T),
            m("warmup", T),
            m("delay_loop", T),
            m("alpha", Arg::OptBool),
            m("inhibit_on_failure", Arg::OptBool),
            m("smtp_alert", Arg::OptBool),
            m("virtualhost", Arg::Str),
            m("snmp_name", Arg::Str),
            m("lvs_method", Arg::Rest),
            m("lb_kind", Arg::Rest),
            m("HTTP_GET", Arg::Block(HTTP_CHECK)),
            m("SSL_GET", Arg::Block(HTTP_CHECK)),
            m("TCP_CHECK", Arg::Block(TCP_CHECK)),
            m("SMTP_CHECK", Arg::Block(SMTP_CHECK)),
            m("DNS_CHECK", Arg::Block(DNS_CHECK)),
            m("MISC_CHECK", Arg::Block(MISC_CHECK)),
            m("UDP_CHECK", Arg::Block(UDP_CHECK)),
            m("PING_CHECK", Arg::Block(PING_CHECK)),
            m("ICMP_CHECK", Arg::Block(PING_CHECK)),
            m("FILE_CHECK", Arg::Block(FILE_CHECK)),
            u("BFD_CHECK", Arg::Block(BFD_CHECK), "vrrpd has no BFD"),
            $($extra),*
        ]
    };
}

pub const REAL_SERVER: &[Spec] = server_common!(
    m("weight", Arg::Int(0, 65535)),
    m("notify_up", Arg::Str),
    m("notify_down", Arg::Str),
    m("uthreshold", U32),
    m("lthreshold", U32),
);

pub const VIRTUAL_SERVER: &[Spec] = server_common!(
    m("lvs_sched", Arg::Enum(LVS_SCHED)),
    m("lb_algo", Arg::Enum(LVS_SCHED)),
    m("persistence_engine", Arg::Str),
    m("persistence_timeout", Arg::Rest),
    m("persistence_granularity", Arg::Str),
    m("protocol", Arg::Enum(&["TCP", "UDP", "SCTP"])),
    m("ha_suspend", Arg::Flag),
    m("omega", Arg::Flag),
    m("ops", Arg::Flag),
    m("one_packet_scheduler", Arg::Flag),
    m("quorum", Arg::Int(1, u32::MAX as i64)),
    m("hysteresis", U32),
    m("quorum_up", Arg::Str),
    m("quorum_down", Arg::Str),
    m("ip_family", Arg::Enum(&["inet", "inet6"])),
    m("sorry_server", Arg::Rest),
    m("sorry_server_lvs_method", Arg::Rest),
    m("sorry_server_inhibit", Arg::OptBool),
    m("real_server", Arg::Block(REAL_SERVER)),
    m("hash", Arg::Rest),
    m("flag-1", Arg::Flag),
    m("flag-2", Arg::Flag),
    m("flag-3", Arg::Flag),
    m("sh-port", Arg::Flag),
    m("sh-fallback", Arg::Flag),
    m("mh-port", Arg::Flag),
    m("mh-fallback", Arg::Flag),
);

/// Validate `node`'s children against `specs`, recursively. `ctx` names the block.
pub fn check(specs: &[Spec], ctx: &str, node: &Node, diags: &mut Diags) {
    for c in &node.children {
        check_one(specs, ctx, c, diags);
    }
}

/// Validate one statement against `specs`.
pub fn check_one(specs: &[Spec], ctx: &str, c: &Node, diags: &mut Diags) {
    let Some(spec) = specs.iter().find(|s| s.name == c.name()) else {
        let mut d = Diagnostic::error(
            c.pos(),
            format!("unknown keyword `{}` in `{ctx}`", c.name()),
        );
        if let Some(s) = suggest(c.name(), specs.iter().map(|s| s.name)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        diags.push(d);
        return;
    };
    if let Status::Unsupported(why) = spec.status {
        diags.push(
            Diagnostic::warning(
                c.pos(),
                format!("`{}` is not implemented yet; ignored", spec.name),
            )
            .with_help(why)
            .not_flagged_by_keepalived(),
        );
    }
    check_arg(spec, c, diags);
}

fn check_arg(spec: &Spec, c: &Node, diags: &mut Diags) {
    let first = c.args.first();
    let err = |diags: &mut Diags, msg: String| {
        let pos = first.map_or(c.pos(), |t| &t.pos);
        diags.push(Diagnostic::error(pos, msg));
    };
    let needs_block = matches!(spec.arg, Arg::Block(_) | Arg::Lines);
    if needs_block && c.block.is_none() {
        err(diags, format!("`{}` needs a `{{ … }}` block", c.name()));
        return;
    }
    if !needs_block && c.block.is_some() {
        diags.push(Diagnostic::error(
            c.block.as_ref().unwrap_or(c.pos()),
            format!("`{}` does not take a block", c.name()),
        ));
    }
    let Some(v) = first.map(|t| t.text.as_str()) else {
        if matches!(
            spec.arg,
            Arg::Str | Arg::Int(..) | Arg::Timer(..) | Arg::Ip | Arg::Enum(_)
        ) {
            err(diags, format!("`{}` needs a value", c.name()));
        }
        if let Arg::Block(inner) = spec.arg {
            check(inner, spec.name, c, diags);
        }
        return;
    };
    match spec.arg {
        Arg::Flag | Arg::Str | Arg::Rest | Arg::Lines => {}
        Arg::OptBool => {
            if !BOOL_WORDS.contains(&v) {
                err(
                    diags,
                    format!("`{v}` is not a BOOL (on|off|true|false|yes|no)"),
                );
            }
        }
        Arg::Int(lo, hi) => match v.parse::<i64>() {
            Ok(n) if (lo..=hi).contains(&n) => {}
            _ => err(
                diags,
                format!(
                    "{} '{v}' invalid - must be an integer between {lo} and {hi}",
                    c.name()
                ),
            ),
        },
        Arg::Timer(lo, hi) => match v.parse::<f64>() {
            Ok(n) if n.is_finite() && (lo..=hi).contains(&n) => {}
            _ => err(
                diags,
                format!(
                    "{} '{v}' invalid - must be a time in seconds between {lo} and {hi}",
                    c.name()
                ),
            ),
        },
        Arg::Ip => {
            if v.parse::<std::net::IpAddr>().is_err() {
                err(diags, format!("invalid IP address `{v}`"));
            }
        }
        Arg::Enum(words) => {
            if !words.contains(&v) {
                let mut d = Diagnostic::error(
                    &c.args[0].pos,
                    format!("invalid {} `{v}` (one of {})", c.name(), words.join(", ")),
                );
                if let Some(s) = suggest(v, words.iter().copied()) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
            }
        }
        Arg::Block(inner) => check(inner, spec.name, c, diags),
    }
}

/// Every schema context with its name, for the compatibility table.
pub fn contexts() -> Vec<(&'static str, &'static [Spec])> {
    vec![
        ("vrrp_script", VRRP_SCRIPT),
        ("track_file", TRACK_FILE),
        ("vrrp_track_process", TRACK_PROCESS),
        ("vrrp_sync_group", SYNC_GROUP),
        ("garp_group", GARP_GROUP),
        ("bfd_instance", BFD_INSTANCE),
        ("SSL", SSL),
        ("virtual_server", VIRTUAL_SERVER),
        ("real_server", REAL_SERVER),
        ("HTTP_GET / SSL_GET", HTTP_CHECK),
        ("url", URL),
        ("TCP_CHECK", TCP_CHECK),
        ("PING_CHECK / ICMP_CHECK / SMTP_CHECK host", PING_CHECK),
        ("SMTP_CHECK", SMTP_CHECK),
        ("DNS_CHECK", DNS_CHECK),
        ("UDP_CHECK", UDP_CHECK),
        ("MISC_CHECK", MISC_CHECK),
        ("FILE_CHECK", FILE_CHECK),
        ("BFD_CHECK", BFD_CHECK),
    ]
}
