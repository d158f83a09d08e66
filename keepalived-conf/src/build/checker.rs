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
use crate::registry::{
    dispatch_block, kw, missing, ok, skip, timer, unsigned, Arg, Cx, Keyword, Status, TIMER_MAX,
    UINT_MAX,
};
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
            ok("retry", Arg::Unsigned(unsigned(0, UINT_MAX, "Invalid retry connection value '{}'"), |c: &mut CheckDraft, v| c.timers.retry = Some(v.value as u32))),
            ok("delay_before_retry", Arg::Timer(timer(0, TIMER_MAX, "Invalid delay_before_retry connection value '{}'"), |c: &mut CheckDraft, v| c.timers.delay_before_retry = Some(v.value))),
            ok("warmup", Arg::Timer(timer(0, TIMER_MAX, "Invalid warmup connection value '{}'"), |c: &mut CheckDraft, v| c.timers.warmup = Some(v.value))),
            ok("delay_loop", Arg::Timer(timer(1, TIMER_MAX, "delay_loop '{}' is invalid - ignoring"), |c: &mut CheckDraft, v| c.timers.delay_loop = Some(v.value))),
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
            ok("connect_ip", Arg::Custom("IP", |c: &mut CheckDraft, n, cx| address(c, n, cx, End::Connect))),
            ok("connect_port", Arg::Unsigned(unsigned(1, 65535, "Invalid checker connect_port '{}'"), |c: &mut CheckDraft, v| c.connect.connect_port = Some(v.value as u16))),
            ok("bindto", Arg::Custom("IP", |c: &mut CheckDraft, n, cx| address(c, n, cx, End::Bind))),
            ok("bind_port", Arg::Unsigned(unsigned(1, 65535, "Invalid checker bind_port '{}'"), |c: &mut CheckDraft, v| c.connect.bind_port = Some(v.value as u16))),
            ok("bind_if", Arg::Word(|c: &mut CheckDraft, v| c.connect.bind_if = Some(v.value))),
            ok("fwmark", Arg::Unsigned(unsigned(0, UINT_MAX, "Invalid fwmark connection value '{}'"), |c: &mut CheckDraft, v| c.connect.fwmark = Some(v.value as u32))),
            ok("connect_timeout", Arg::Timer(timer(1, UINT_MAX, "connect_timeout {} invalid - ignoring"), |c: &mut CheckDraft, v| c.timers.connect_timeout = Some(v.value))),
            $($extra),*
        )
    };
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
            let num = unsigned(0, UINT_MAX, "Invalid nb_get_retry value '{}'");
            if let Some(r) = num.read(t, &mut cx.diags).kept {
                c.timers.retry = Some(r as u32);
            }
        })
    ),
);

pub static URL: &[Keyword<UrlSpec>] = &[
    ok("path", Arg::Line(|u, v| u.path = v.value)),
    kw(
        "digest",
        Status::Partial("MD5 of the decoded body: with `http_protocol 1.1` and a chunked reply keepalived also hashes the chunk framing"),
        Arg::Custom("MD5-HEX", digest),
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
    ok(
        "type",
        Arg::Custom("A|NS|CNAME|SOA|MX|TXT|AAAA|RRSIG|DNSKEY", |c, n, cx| {
            let Some(t) = n.args.first() else {
                crate::registry::missing_value(n, &mut cx.diags);
                return;
            };
            match checks::probe::dns::qtype_code(&t.text) {
                Some(_) => c.dns_type = Some(t.text.to_string()),
                None => cx.push(Diagnostic::warning(
                    &t.pos,
                    format!("Unknown DNS check type {} - ignoring", t.text),
                )),
            }
        })
    ),
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
    // Whole seconds; 0 leaves the default (keepalived runs the script for `delay_loop`).
    ok(
        "misc_timeout",
        Arg::Unsigned(
            unsigned(0, UINT_MAX / 1_000_000, "Invalid misc_timeout value '{}'"),
            |c, v| c.misc.misc_timeout = (v.value > 0).then(|| Duration::from_secs(v.value))
        )
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
        Arg::Custom("-2147483647..2147483647 [reverse|noreverse]", file_weight),
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

/// A FILE_CHECK's `weight N [reverse|noreverse]`, as keepalived's `track_file_weight_handler`
/// reads it: a missing or bad value, or a bad option, is counted and sets nothing.
fn file_weight<'a>(c: &mut CheckDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(a) = n.args.first() else {
        cx.push(Diagnostic::warning(n.pos(), "track file weight missing"));
        return;
    };
    let max = i64::from(i32::MAX);
    let read = crate::registry::read_int(&a.text, -max, max, true);
    for m in &read.said {
        cx.push(Diagnostic::warning(&a.pos, m.clone()));
    }
    if !read.taken {
        cx.push(Diagnostic::warning(
            &a.pos,
            format!(
                "weight for track file must be in [{}..{max}] inclusive. Ignoring...",
                -max
            ),
        ));
    }
    let Some(w) = read.kept else { return };
    let reverse = match n.args.get(1).map(|r| &*r.text) {
        None | Some("noreverse") => false,
        Some("reverse") => true,
        Some(other) => {
            let at = &n.args[1].pos;
            let msg = format!("unknown track file weight option {other} - ignoring");
            cx.push(Diagnostic::warning(at, msg));
            return;
        }
    };
    c.file_weight = Some((w as i32, reverse));
}

/// Which address of a checker's connection a line sets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Connect,
    Bind,
}

/// `connect_ip IP` / `bindto IP`, as keepalived's `co_ip_handler` and `co_srcip_handler` read
/// them: a bad address is reported and ignored; one of the other address's family is
/// reported and leaves the address unset.
fn address<'a>(c: &mut CheckDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>, side: End) {
    let Some(t) = n.args.first() else {
        crate::registry::missing_value(n, &mut cx.diags);
        return;
    };
    let (name, other_name) = match side {
        End::Connect => ("connect_ip", "bindto"),
        End::Bind => ("bindto", "connect_ip"),
    };
    let Some(ip) = crate::registry::sockaddr_ip(&t.text) else {
        cx.push(Diagnostic::warning(
            &t.pos,
            format!("Invalid {name} address {} - ignoring", t.text),
        ));
        return;
    };
    let (mine, other) = match side {
        End::Connect => (&mut c.connect.connect_ip, c.connect.bindto),
        End::Bind => (&mut c.connect.bindto, c.connect.connect_ip),
    };
    if other.is_some_and(|o| o.is_ipv4() != ip.is_ipv4()) {
        cx.push(Diagnostic::warning(
            &t.pos,
            format!(
                "{name} address {} does not match address family of {other_name} - skipping",
                t.text
            ),
        ));
        *mine = None;
        return;
    }
    *mine = Some(ip);
}

/// `digest HEX`: the MD5 of the body, 32 hex digits, once per url (keepalived's
/// `digest_handler`, which reads the pairs from the last one and names the first it cannot).
fn digest<'a>(u: &mut UrlSpec, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(t) = n.args.first() else {
        crate::registry::missing_value(n, &mut cx.diags);
        return;
    };
    let text = &*t.text;
    let said = if u.digest.is_some() {
        format!("Digest '{text}' is a duplicate")
    } else if text.len() != 32 {
        format!(
            "digest '{text}' character length should be 32 rather than {}",
            text.len()
        )
    } else if let Some(i) = (0..16).rev().find(|i| {
        !text.as_bytes()[2 * i..2 * i + 2]
            .iter()
            .all(u8::is_ascii_hexdigit)
    }) {
        // keepalived cuts the string after the pair it names.
        let shown = String::from_utf8_lossy(&text.as_bytes()[..2 * i + 2]);
        format!(
            "Unable to interpret hex digit in '{shown}' at offset {}/{}",
            2 * i,
            2 * i + 1
        )
    } else {
        u.digest = Some(text.to_ascii_lowercase());
        return;
    };
    cx.push(Diagnostic::warning(&t.pos, said));
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
