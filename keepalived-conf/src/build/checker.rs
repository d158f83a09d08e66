//! The checkers of a `real_server`: `HTTP_GET`, `SSL_GET` (and their `url`), `TCP_CHECK`,
//! `SMTP_CHECK` (and its `host`), `DNS_CHECK`, `UDP_CHECK`, `PING_CHECK`, `MISC_CHECK`,
//! `FILE_CHECK`, with keepalived 2.2.7's keywords in each.

use std::time::Duration;

use checks::spec::{
    CheckSpec, Connect, DnsCheck, FileCheck, HttpCheck, HttpProtocol, MiscCheck, PingCheck,
    ProbeSpec, SmtpCheck, StatusRange, TcpCheck, TimerOverrides, UdpCheck, UrlSpec,
};

use crate::diag::{Diagnostic, Pos, Spanned};
use crate::model::TrackFile;
use crate::process::Side;
use crate::registry::{dispatch_block, kw, missing, ok, skip, Arg, Cx, Keyword, Status};
use crate::tree::Node;

/// One checker as written; which fields matter depends on its kind.
#[derive(Default)]
pub struct CheckDraft {
    pub connect: Connect,
    pub timers: TimerOverrides,
    pub log_all_failures: bool,
    http: HttpCheck,
    /// `url` blocks given (an HTTP checker without one is dropped, as keepalived does).
    urls: usize,
    tcp: TcpCheck,
    helo_name: Option<String>,
    /// The last `host` block of an SMTP_CHECK.
    smtp_host: Option<Connect>,
    dns_type: Option<String>,
    dns_name: Option<String>,
    udp: UdpCheck,
    misc: MiscCheck,
    misc_path: Option<Spanned<String>>,
    /// A `user` the host does not have: keepalived removes the checker.
    misc_user_missing: bool,
    file: Option<String>,
    file_weight: Option<(i32, bool)>,
}

/// Timer keys (inherited from the real and virtual server when unset).
macro_rules! timer_rows {
    ($($extra:expr),* $(,)?) => {
        &[
            ok("retry", Arg::Int(0, u32::MAX as i64, |c: &mut CheckDraft, v| c.timers.retry = Some(v.value as u32))),
            ok("delay_before_retry", Arg::Secs(0.0, 1e9, |c: &mut CheckDraft, v| c.timers.delay_before_retry = Some(v.value))),
            ok("warmup", Arg::Secs(0.0, 1e9, |c: &mut CheckDraft, v| c.timers.warmup = Some(v.value))),
            ok("delay_loop", Arg::Secs(0.000_001, 1e9, |c: &mut CheckDraft, v| c.timers.delay_loop = Some(v.value))),
            ok("alpha", Arg::Bool(|c: &mut CheckDraft, v| c.timers.alpha = Some(v.value))),
            ok("log_all_failures", Arg::Bool(|c: &mut CheckDraft, v| c.log_all_failures = v.value)),
            $($extra),*
        ]
    };
}

/// Connection keys of the socket checkers, then the timer keys.
macro_rules! connect_rows {
    ($($extra:expr),* $(,)?) => {
        timer_rows!(
            ok("connect_ip", Arg::Ip(|c: &mut CheckDraft, v| c.connect.connect_ip = Some(v.value))),
            ok("connect_port", Arg::Int(0, 65535, |c: &mut CheckDraft, v| c.connect.connect_port = Some(v.value as u16))),
            ok("bindto", Arg::Ip(|c: &mut CheckDraft, v| c.connect.bindto = Some(v.value))),
            ok("bind_port", Arg::Int(0, 65535, |c: &mut CheckDraft, v| c.connect.bind_port = Some(v.value as u16))),
            ok("bind_if", Arg::Word(|c: &mut CheckDraft, v| c.connect.bind_if = Some(v.value))),
            ok("fwmark", Arg::Int(0, u32::MAX as i64, |c: &mut CheckDraft, v| c.connect.fwmark = Some(v.value as u32))),
            ok("connect_timeout", Arg::Secs(0.0, 1e9, |c: &mut CheckDraft, v| c.timers.connect_timeout = Some(one_if_zero(v.value)))),
            $($extra),*
        )
    };
}

/// keepalived reads a `connect_timeout` of 0 as 1 s.
pub fn one_if_zero(d: Duration) -> Duration {
    if d.is_zero() {
        Duration::from_secs(1)
    } else {
        d
    }
}

pub static HTTP_GET: &[Keyword<CheckDraft>] = connect_rows!(
    ok("url", Arg::Block("url", url)),
    missing(
        "Missing http_protocol version",
        ok(
            "http_protocol",
            Arg::Choice(&["1.0", "1.0C", "1.0c", "1.1"], |c, v| {
                c.http.http_protocol = match v.value {
                    "1.0C" | "1.0c" => HttpProtocol::Http10C,
                    "1.1" => HttpProtocol::Http11,
                    _ => HttpProtocol::Http10,
                }
            })
        ),
    ),
    missing(
        "HTTP_GET virtualhost name missing",
        ok(
            "virtualhost",
            Arg::Word(|c, v| c.http.virtualhost = Some(v.value))
        ),
    ),
    kw(
        "fast_recovery",
        Status::Partial("always on: every url is fetched at each check, `off` has no effect"),
        Arg::Bool(|_, _| {})
    ),
    ok("enable_sni", Arg::Bool(|c, v| c.http.enable_sni = v.value)),
    ok(
        "nb_get_retry",
        Arg::Custom("N (deprecated: retry)", |c, n, cx| {
            cx.push(Diagnostic::warning(
                n.pos(),
                "nb_get_retry is deprecated - please use 'retry'",
            ));
            let Some(t) = n.args.first() else {
                crate::registry::missing_value(n, &mut cx.diags);
                return;
            };
            match t.text.parse::<u32>() {
                Ok(r) => c.timers.retry = Some(r),
                Err(_) => cx.push(Diagnostic::warning(
                    &t.pos,
                    format!("Invalid nb_get_retry value '{}'", t.text),
                )),
            }
        })
    ),
);

pub static URL: &[Keyword<UrlSpec>] = &[
    ok("path", Arg::Line(|u, v| u.path = v.value)),
    kw(
        "digest",
        Status::Partial("MD5 of the decoded body: with `http_protocol 1.1` and a chunked reply keepalived also hashes the chunk framing"),
        Arg::Word(|u, v| u.digest = Some(v.value)),
    ),
    ok("status_code", Arg::Custom("CODE|LO-HI…", status_codes)),
    missing(
        "Missing HTTP_GET virtualhost name",
        ok("virtualhost", Arg::Word(|u, v| u.virtualhost = Some(v.value))),
    ),
    kw(
        "regex",
        Status::Partial("Rust regex syntax, not PCRE2: no look-around or back-references"),
        Arg::Line(|u, v| u.regex = Some(v.value)),
    ),
    ok("regex_no_match", Arg::Flag(|u, _| u.regex_no_match = true)),
    skip("regex_options", "PCRE2 options are not applied: use inline flags such as `(?i)` in the regex"),
    skip("regex_stack", "no effect: the regex engine has no PCRE2 JIT stack"),
    ok("regex_min_offset", Arg::Int(0, u32::MAX as i64, |u, v| u.regex_min_offset = Some(v.value as usize))),
    ok("regex_max_offset", Arg::Int(0, u32::MAX as i64, |u, v| u.regex_max_offset = Some(v.value as usize))),
];

pub static TCP_CHECK: &[Keyword<CheckDraft>] = connect_rows!(
    kw(
        "half_open",
        Status::Extension("SYN only: a SYN/ACK is up, an RST down; the kernel resets the SYN/ACK, so the server's application never sees a connection (needs CAP_NET_RAW)"),
        Arg::Bool(|c, v| c.tcp.half_open = v.value)
    ),
    kw(
        "reset_close",
        Status::Extension("close a successful connect with an RST (SO_LINGER 0) instead of keepalived's FIN: no TIME_WAIT on the checker"),
        Arg::Bool(|c, v| c.tcp.reset_close = v.value)
    ),
);

pub static PING_CHECK: &[Keyword<CheckDraft>] = connect_rows!();

pub static SMTP_CHECK: &[Keyword<CheckDraft>] = connect_rows!(
    missing(
        "SMTP_CHECK helo name missing",
        ok("helo_name", Arg::Word(|c, v| c.helo_name = Some(v.value))),
    ),
    kw(
        "host",
        Status::Partial("only the last `host` block is checked, with its own connection options only (keepalived: one checker per host, inheriting the checker's options)"),
        Arg::Block("SMTP_CHECK host", |c, n, cx| {
            let mut h = CheckDraft::default();
            dispatch_block(PING_CHECK, "host", &mut h, n, cx);
            c.smtp_host = Some(h.connect);
        })
    ),
);

pub static DNS_CHECK: &[Keyword<CheckDraft>] = connect_rows!(
    ok("type", Arg::Word(|c, v| c.dns_type = Some(v.value))),
    ok("name", Arg::Word(|c, v| c.dns_name = Some(v.value))),
);

pub static UDP_CHECK: &[Keyword<CheckDraft>] = connect_rows!(
    kw(
        "payload",
        Status::Partial("contiguous hex digits only; keepalived's free format and its random default payload are not supported"),
        Arg::Custom("HEX", |c, n, cx| match n.args.first().and_then(|a| hex(&a.text)) {
            Some(p) => c.udp.payload = p,
            None => cx.push(Diagnostic::warning(n.pos(), "UDP_CHECK payload is not hex digits - ignoring")),
        })
    ),
    kw(
        "require_reply",
        Status::Partial("contiguous hex digits only (no `X` wildcards), and a reply must begin with all of them (keepalived compares up to the shorter)"),
        Arg::Custom("[HEX]", |c, n, _| {
            c.udp.require_reply = true;
            c.udp.reply_data = n.args.first().and_then(|a| hex(&a.text));
        })
    ),
    ok("min_reply_length", Arg::Int(0, u32::MAX as i64, |c, v| c.udp.min_reply_length = Some(v.value as usize))),
    kw(
        "max_reply_length",
        Status::Partial("no default limit (keepalived: 255)"),
        Arg::Int(0, u32::MAX as i64, |c, v| c.udp.max_reply_length = Some(v.value as usize))
    ),
);

pub static MISC_CHECK: &[Keyword<CheckDraft>] = timer_rows!(
    ok("misc_path", Arg::Command(|c, v| c.misc_path = Some(v))),
    ok(
        "misc_timeout",
        Arg::Secs(0.000_001, 1e9, |c, v| c.misc.misc_timeout = Some(v.value))
    ),
    ok("misc_dynamic", Arg::Flag(|c, _| c.misc.misc_dynamic = true)),
    ok(
        "user",
        Arg::Custom("USER [GROUP]", |c, n, cx| {
            c.misc.user = n.args.first().map(|a| a.text.to_string());
            c.misc.group = n.args.get(1).map(|a| a.text.to_string());
            let (user, group) = (c.misc.user.as_deref(), c.misc.group.as_deref());
            if user.is_some_and(|u| cx.host.user_exists(u, group) == Some(false)) {
                let script = c
                    .misc_path
                    .as_ref()
                    .map_or(String::new(), |p| cmd_str(&p.value));
                cx.push(Diagnostic::warning(
                    n.pos(),
                    format!("Failed to set uid/gid for misc checker script {script} - removing"),
                ));
                c.misc_user_missing = true;
            }
        })
    ),
);

pub static FILE_CHECK: &[Keyword<CheckDraft>] = &[
    ok("track_file", Arg::Word(|c, v| c.file = Some(v.value))),
    ok(
        "weight",
        Arg::Custom("-254..254 [reverse]", |c, n, cx| {
            let Some(a) = n.args.first() else {
                crate::registry::missing_value(n, &mut cx.diags);
                return;
            };
            match crate::registry::parse_int(&a.text).filter(|w| (-254..=254).contains(w)) {
                Some(w) => {
                    let reverse = n.args.get(1).is_some_and(|r| r.text == "reverse");
                    c.file_weight = Some((w as i32, reverse));
                }
                None => cx.push(Diagnostic::warning(
                    &a.pos,
                    format!("weight {} must be in [-254, 254]", a.text),
                )),
            }
        }),
    ),
];

pub static BFD_CHECK: &[Keyword<CheckDraft>] = &[
    kw(
        "name",
        Status::Unsupported("vrrpd has no BFD"),
        Arg::Custom("NAME", |_, n, cx| {
            let Some(name) = n.args.first() else { return };
            if !cx.bfd_instances.iter().any(|b| *b == name.text) {
                cx.push(Diagnostic::warning(
                    n.pos(),
                    format!("BFD_CHECK - BFD {} not configured", name.text),
                ));
            }
        }),
    ),
    skip("alpha", "vrrpd has no BFD"),
];

/// Every checker block: keepalived's name, its table.
pub const CHECKERS: &[(&str, &[Keyword<CheckDraft>])] = &[
    ("HTTP_GET", HTTP_GET),
    ("SSL_GET", HTTP_GET),
    ("TCP_CHECK", TCP_CHECK),
    ("SMTP_CHECK", SMTP_CHECK),
    ("DNS_CHECK", DNS_CHECK),
    ("UDP_CHECK", UDP_CHECK),
    ("PING_CHECK", PING_CHECK),
    ("MISC_CHECK", MISC_CHECK),
    ("FILE_CHECK", FILE_CHECK),
];

fn url<'a>(c: &mut CheckDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    // keepalived's url has no default path: an empty one is "not given".
    let mut u = UrlSpec {
        path: String::new(),
        ..UrlSpec::default()
    };
    dispatch_block(URL, "url", &mut u, n, cx);
    if u.path.is_empty() {
        let end = n.close.as_ref().unwrap_or(n.pos());
        cx.push(Diagnostic::warning(
            end,
            "HTTP/SSL_GET checker url has no path - ignoring",
        ));
        return;
    }
    c.urls += 1;
    c.http.urls.push(u);
}

/// `status_code 200 300-399 …`.
fn status_codes<'a>(u: &mut UrlSpec, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    for a in &n.args {
        let (lo, hi) = a.text.split_once('-').unwrap_or((&a.text, &a.text));
        match (lo.parse::<u16>(), hi.parse::<u16>()) {
            (Ok(lo), Ok(hi)) if lo <= hi && (100..=599).contains(&lo) && hi <= 599 => {
                u.status_code.push(StatusRange { lo, hi })
            }
            _ => cx.push(Diagnostic::warning(
                &a.pos,
                format!("Invalid HTTP_GET status code '{}' - ignoring", a.text),
            )),
        }
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_start_matches("0x");
    (s.len() % 2 == 0)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

/// One checker block of a real server, or `None` (reported) when keepalived drops it.
/// `track_files` are those defined so far, which a FILE_CHECK may name.
pub fn checker<'a>(
    c: &Node<'a>,
    table: &[Keyword<CheckDraft>],
    track_files: &[TrackFile],
    cx: &mut Cx<'_, 'a>,
    scripts: &mut Vec<Spanned<String>>,
) -> Option<CheckSpec> {
    let mut d = CheckDraft::default();
    dispatch_block(table, c.name(), &mut d, c, cx);
    let end: Pos = c.close.clone().unwrap_or_else(|| c.pos().clone());
    let probe = match c.name() {
        "HTTP_GET" | "SSL_GET" => {
            if d.urls == 0 {
                cx.push(Diagnostic::warning(
                    &end,
                    "HTTP/SSL_GET checker has no urls specified - ignoring",
                ));
                return None;
            }
            let h = HttpCheck {
                connect: d.connect,
                ..d.http
            };
            if c.name() == "HTTP_GET" {
                ProbeSpec::HttpGet(h)
            } else {
                ProbeSpec::SslGet(h)
            }
        }
        "TCP_CHECK" => ProbeSpec::TcpCheck(TcpCheck {
            connect: d.connect,
            ..d.tcp
        }),
        "PING_CHECK" => ProbeSpec::PingCheck(PingCheck { connect: d.connect }),
        "SMTP_CHECK" => ProbeSpec::SmtpCheck(SmtpCheck {
            connect: d.smtp_host.unwrap_or(d.connect),
            helo_name: d.helo_name,
        }),
        "DNS_CHECK" => ProbeSpec::DnsCheck(DnsCheck {
            connect: d.connect,
            qtype: d.dns_type.unwrap_or_else(|| "SOA".into()),
            name: d.dns_name.unwrap_or_else(|| ".".into()),
        }),
        "UDP_CHECK" => ProbeSpec::UdpCheck(UdpCheck {
            connect: d.connect,
            ..d.udp
        }),
        "MISC_CHECK" => {
            // Removed at its `user` line, as keepalived removes it.
            if d.misc_user_missing {
                return None;
            }
            let Some(path) = d.misc_path else {
                cx.push(Diagnostic::warning(
                    &end,
                    "No script path has been specified for MISC_CHECKER - skipping",
                ));
                return None;
            };
            let misc = MiscCheck {
                misc_path: path.value.clone(),
                ..d.misc
            };
            if misc.user.is_none() && !cx.script_user.available(Side::Checker, &end) {
                cx.push(Diagnostic::warning(
                    &end,
                    format!(
                        "Unable to set default user for misc script {} - removing",
                        cmd_str(&misc.misc_path)
                    ),
                ));
                return None;
            }
            scripts.push(path);
            ProbeSpec::MiscCheck(misc)
        }
        "FILE_CHECK" => {
            // keepalived: `track_file` names a track_file block defined before, whose weight
            // (and reverse) apply unless the checker sets its own.
            let Some(tf) = d
                .file
                .as_ref()
                .and_then(|n| track_files.iter().find(|t| &t.name == n))
            else {
                let what = d.file.map_or("FILE_CHECK has no track_file".into(), |n| {
                    format!("track_file {n} not found")
                });
                cx.push(Diagnostic::warning(c.pos(), what));
                return None;
            };
            let (weight, reverse) = d.file_weight.unwrap_or((tf.weight, tf.reverse));
            ProbeSpec::FileCheck(FileCheck {
                file: tf.file.clone(),
                weight,
                reverse,
            })
        }
        _ => return None,
    };
    Some(CheckSpec {
        probe,
        timers: d.timers,
        log_all_failures: d.log_all_failures,
    })
}

/// A script line as keepalived quotes it in messages: each word in single quotes.
fn cmd_str(line: &str) -> String {
    checks::script::cmd_str(&checks::script::words(line).unwrap_or_default())
}
