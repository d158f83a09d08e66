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

/// Supported: acted on as keepalived does.
const fn s(name: &'static str, arg: Arg) -> Spec {
    Spec {
        name,
        arg,
        status: Status::Supported,
    }
}
/// Partly supported: `why` says what is missing.
const fn p(name: &'static str, arg: Arg, why: &'static str) -> Spec {
    Spec {
        name,
        arg,
        status: Status::Partial(why),
    }
}
/// Known, parsed and validated, but nothing acts on it: warned about with `why`.
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

/// Reasons shared by several keywords.
const NO_EFFECT: &str = "the setting has no effect";
const NO_BFD: &str = "vrrpd has no BFD";
const NO_SNMP: &str = "vrrpd has no SNMP";
const TUN_IPIP: &str =
    "NAT, DR and TUN forward; TUN is IP-in-IP only (`type gue`/`gre` and the checksum options have no effect)";
const LBLCR: &str = "every scheduler but `lblcr`, which runs as `lblc` (no replication sets)";
const CHECKER_HERE: &str = "checkers belong in a real_server (keepalived refuses them here)";

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
    u("track_bfd", Arg::Lines, NO_BFD),
    s("notify_master", Arg::Str),
    s("notify_backup", Arg::Str),
    s("notify_fault", Arg::Str),
    s("notify_stop", Arg::Str),
    s("notify", Arg::Str),
    s("smtp_alert", Arg::OptBool),
    // keepalived 2 reads it as `sync_group_tracking_weight` (and says it is deprecated).
    s("global_tracking", Arg::Flag),
    s("sync_group_tracking_weight", Arg::Flag),
];

pub const GARP_GROUP: &[Spec] = &[
    u("garp_interval", Arg::Timer(0.0, 1.0), NO_EFFECT),
    u("gna_interval", Arg::Timer(0.0, 1.0), NO_EFFECT),
    u("interface", Arg::Str, NO_EFFECT),
    u("interfaces", Arg::Lines, NO_EFFECT),
];

pub const BFD_INSTANCE: &[Spec] = &[
    u("neighbor_ip", Arg::Ip, NO_BFD),
    u("source_ip", Arg::Ip, NO_BFD),
    u("min_rx", U32, NO_BFD),
    u("min_tx", U32, NO_BFD),
    u("idle_tx", U32, NO_BFD),
    u("multiplier", Arg::Int(1, 255), NO_BFD),
    u("passive", Arg::Flag, NO_BFD),
    u("ttl", Arg::Int(1, 255), NO_BFD),
    u("max_hops", Arg::Int(0, 255), NO_BFD),
    u("disabled", Arg::Flag, NO_BFD),
];

pub const SSL: &[Spec] = &[
    u(
        "password",
        Arg::Str,
        "encrypted private keys cannot be loaded: the password is not used",
    ),
    s("ca", Arg::Str),
    s("certificate", Arg::Str),
    s("key", Arg::Str),
];

pub const URL: &[Spec] = &[
    s("path", Arg::Str),
    p(
        "digest",
        Arg::Str,
        "MD5 of the decoded body: with `http_protocol 1.1` and a chunked reply keepalived also hashes the chunk framing",
    ),
    s("status_code", Arg::Str),
    s("virtualhost", Arg::Str),
    p(
        "regex",
        Arg::Str,
        "Rust regex syntax, not PCRE2: no look-around or back-references",
    ),
    s("regex_no_match", Arg::Flag),
    u(
        "regex_options",
        Arg::Rest,
        "PCRE2 options are not applied: use inline flags such as `(?i)` in the regex",
    ),
    u(
        "regex_stack",
        Arg::Rest,
        "no effect: the regex engine has no PCRE2 JIT stack",
    ),
    s("regex_min_offset", U32),
    s("regex_max_offset", U32),
];

/// Keys every checker accepts (inherited from the real and virtual server when unset).
macro_rules! checker_common {
    ($($extra:expr),* $(,)?) => {
        &[
            s("connect_ip", Arg::Ip),
            s("connect_port", PORT),
            s("bindto", Arg::Ip),
            s("bind_if", Arg::Str),
            s("bind_port", PORT),
            s("fwmark", U32),
            s("alpha", Arg::OptBool),
            s("connect_timeout", T),
            s("retry", U32),
            s("nb_get_retry", U32),
            s("delay_before_retry", T),
            s("warmup", T),
            s("delay_loop", T),
            s("log_all_failures", Arg::OptBool),
            $($extra),*
        ]
    };
}

pub const HTTP_CHECK: &[Spec] = checker_common!(
    s("url", Arg::Block(URL)),
    s("http_protocol", Arg::Str),
    s("virtualhost", Arg::Str),
    p(
        "fast_recovery",
        Arg::OptBool,
        "always on: every url is fetched at each check, `off` has no effect"
    ),
    s("enable_sni", Arg::OptBool),
    u("tls_compliant", Arg::OptBool, NO_EFFECT),
    u("nb_sock_retry", U32, NO_EFFECT),
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
pub const SMTP_CHECK: &[Spec] = checker_common!(
    s("helo_name", Arg::Str),
    p(
        "host",
        Arg::Block(PING_CHECK),
        "only the last `host` block is checked, with its own connection options only (keepalived: one checker per host, inheriting the checker's options)"
    ),
);
pub const DNS_CHECK: &[Spec] = checker_common!(s("type", Arg::Str), s("name", Arg::Str));
pub const UDP_CHECK: &[Spec] = checker_common!(
    p(
        "payload",
        Arg::Str,
        "contiguous hex digits only; keepalived's free format and its random default payload are not supported"
    ),
    p(
        "require_reply",
        Arg::Rest,
        "contiguous hex digits only (no `X` wildcards), and a reply must begin with all of them (keepalived compares up to the shorter)"
    ),
    s("min_reply_length", U32),
    p("max_reply_length", U32, "no default limit (keepalived: 255)"),
);
pub const MISC_CHECK: &[Spec] = &[
    s("misc_path", Arg::Str),
    s("misc_timeout", T),
    s("misc_dynamic", Arg::Flag),
    s("user", Arg::Str),
    s("alpha", Arg::OptBool),
    s("retry", U32),
    s("nb_get_retry", U32),
    s("delay_before_retry", T),
    s("warmup", T),
    s("delay_loop", T),
    s("log_all_failures", Arg::OptBool),
];
pub const FILE_CHECK: &[Spec] = &[s("track_file", Arg::Str), s("weight", Arg::Rest)];
pub const BFD_CHECK: &[Spec] = &[u("name", Arg::Str, NO_BFD)];

const LVS_SCHED: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos",
    "rtt",
];

/// Keys of both the virtual and the real server.
macro_rules! server_common {
    ($($extra:expr),* $(,)?) => {
        &[
            s("connect_timeout", T),
            s("retry", U32),
            s("nb_get_retry", U32),
            s("delay_before_retry", T),
            s("warmup", T),
            s("delay_loop", T),
            s("alpha", Arg::OptBool),
            s("inhibit_on_failure", Arg::OptBool),
            s("smtp_alert", Arg::OptBool),
            s("virtualhost", Arg::Str),
            u("snmp_name", Arg::Str, NO_SNMP),
            p("lvs_method", Arg::Rest, TUN_IPIP),
            p("lb_kind", Arg::Rest, TUN_IPIP),
            u("BFD_CHECK", Arg::Block(BFD_CHECK), NO_BFD),
            $($extra),*
        ]
    };
}

pub const REAL_SERVER: &[Spec] = server_common!(
    s("weight", Arg::Int(0, 65535)),
    s("notify_up", Arg::Str),
    s("notify_down", Arg::Str),
    s("uthreshold", U32),
    s("lthreshold", U32),
    s("HTTP_GET", Arg::Block(HTTP_CHECK)),
    s("SSL_GET", Arg::Block(HTTP_CHECK)),
    s("TCP_CHECK", Arg::Block(TCP_CHECK)),
    s("SMTP_CHECK", Arg::Block(SMTP_CHECK)),
    s("DNS_CHECK", Arg::Block(DNS_CHECK)),
    s("MISC_CHECK", Arg::Block(MISC_CHECK)),
    s("UDP_CHECK", Arg::Block(UDP_CHECK)),
    s("PING_CHECK", Arg::Block(PING_CHECK)),
    s("ICMP_CHECK", Arg::Block(PING_CHECK)),
    s("FILE_CHECK", Arg::Block(FILE_CHECK)),
);

pub const VIRTUAL_SERVER: &[Spec] = server_common!(
    p("lvs_sched", Arg::Enum(LVS_SCHED), LBLCR),
    p("lb_algo", Arg::Enum(LVS_SCHED), LBLCR),
    u(
        "persistence_engine",
        Arg::Str,
        "IPVS's SIP persistence engine: no effect"
    ),
    s("persistence_timeout", Arg::Rest),
    s("persistence_granularity", Arg::Str),
    p(
        "protocol",
        Arg::Enum(&["TCP", "UDP", "SCTP"]),
        "TCP and UDP are forwarded; SCTP is only checked (packets to the virtual server are dropped); the default is TCP (keepalived 2.2.7: UDP)"
    ),
    u(
        "ha_suspend",
        Arg::Flag,
        "the checkers run whether or not the virtual address is held here"
    ),
    s("omega", Arg::Flag),
    u(
        "ops",
        Arg::Flag,
        "no one-packet scheduling: the datagrams of a UDP flow go to one real server"
    ),
    u(
        "one_packet_scheduler",
        Arg::Flag,
        "no one-packet scheduling: the datagrams of a UDP flow go to one real server"
    ),
    s("quorum", Arg::Int(1, u32::MAX as i64)),
    s("hysteresis", U32),
    s("quorum_up", Arg::Str),
    s("quorum_down", Arg::Str),
    u(
        "ip_family",
        Arg::Enum(&["inet", "inet6"]),
        "only for fwmark virtual servers, which are checked but not forwarded"
    ),
    s("sorry_server", Arg::Rest),
    p("sorry_server_lvs_method", Arg::Rest, TUN_IPIP),
    s("sorry_server_inhibit", Arg::OptBool),
    s("real_server", Arg::Block(REAL_SERVER)),
    u("hashed", Arg::Flag, "IPVS hash-table flag: no effect"),
    s("flag-1", Arg::Flag),
    s("flag-2", Arg::Flag),
    u(
        "flag-3",
        Arg::Flag,
        "no scheduler uses it (nor does any of IPVS's)"
    ),
    s("sh-port", Arg::Flag),
    s("sh-fallback", Arg::Flag),
    s("mh-port", Arg::Flag),
    s("mh-fallback", Arg::Flag),
    u("HTTP_GET", Arg::Block(HTTP_CHECK), CHECKER_HERE),
    u("SSL_GET", Arg::Block(HTTP_CHECK), CHECKER_HERE),
    u("TCP_CHECK", Arg::Block(TCP_CHECK), CHECKER_HERE),
    u("SMTP_CHECK", Arg::Block(SMTP_CHECK), CHECKER_HERE),
    u("DNS_CHECK", Arg::Block(DNS_CHECK), CHECKER_HERE),
    u("MISC_CHECK", Arg::Block(MISC_CHECK), CHECKER_HERE),
    u("UDP_CHECK", Arg::Block(UDP_CHECK), CHECKER_HERE),
    u("PING_CHECK", Arg::Block(PING_CHECK), CHECKER_HERE),
    u("ICMP_CHECK", Arg::Block(PING_CHECK), CHECKER_HERE),
    u("FILE_CHECK", Arg::Block(FILE_CHECK), CHECKER_HERE),
);

/// Validate `node`'s children against `specs`, recursively. `ctx` names the block.
pub fn check(specs: &[Spec], ctx: &str, node: &Node, diags: &mut Diags) {
    for c in &node.children {
        check_one(specs, ctx, c, diags);
    }
}

/// [`check`] for a block that is itself unsupported: its values are still checked, but its
/// keywords are not warned about one by one (the block's own warning covers them).
pub fn check_inert(specs: &[Spec], ctx: &str, node: &Node, diags: &mut Diags) {
    let mut all = Diags::default();
    check(specs, ctx, node, &mut all);
    diags.0.extend(all.0.into_iter().filter(|d| d.is_error()));
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
