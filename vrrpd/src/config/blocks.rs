//! Model builders for keepalived blocks beyond the VRRP instance core: vrrp_script, sync
//! groups, tracking lists, static addresses/routes/rules and virtual servers. Each validates
//! against its [`schema`](super::schema) first, then reads the values.

use std::net::IpAddr;
use std::time::Duration;

use super::diag::{Diagnostic, Diags, Pos};
use super::model::{Checker, RealServer, SyncGroup, Track, Url, VirtualServer, VrrpScript, VsKey};
use super::schema::{self, Spec};
use super::tree::Node;

/// The first statement named `name` among `node`'s children.
fn child<'a>(node: &'a Node, name: &str) -> Option<&'a Node> {
    node.children.iter().rev().find(|c| c.name() == name)
}

fn text(node: &Node, name: &str) -> Option<String> {
    child(node, name).and_then(|c| {
        (!c.args.is_empty()).then(|| {
            c.args
                .iter()
                .map(|a| a.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
    })
}

fn num<T: std::str::FromStr>(node: &Node, names: &[&str]) -> Option<T> {
    names
        .iter()
        .find_map(|n| child(node, n))
        .and_then(|c| c.args.first())
        .and_then(|a| a.text.parse().ok())
}

fn secs(node: &Node, name: &str) -> Option<Duration> {
    num::<f64>(node, &[name])
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
}

fn boolean(node: &Node, name: &str) -> bool {
    child(node, name).is_some_and(|c| {
        !matches!(
            c.args.first().map(|a| a.text.as_str()),
            Some("off" | "false" | "no")
        )
    })
}

/// `weight N [reverse]` with its range.
fn weight(node: &Node, lo: i64, hi: i64, diags: &mut Diags) -> (Option<i32>, bool) {
    let Some(c) = child(node, "weight") else {
        return (None, false);
    };
    let Some(a) = c.args.first() else {
        diags.push(Diagnostic::error(c.pos(), "`weight` needs a value"));
        return (None, false);
    };
    let reverse = c.args.get(1).is_some_and(|r| r.text == "reverse");
    match a.text.parse::<i64>() {
        Ok(w) if (lo..=hi).contains(&w) => (Some(w as i32), reverse),
        _ => {
            diags.push(Diagnostic::error(
                &a.pos,
                format!(
                    "weight '{}' invalid - must be between {lo} and {hi}",
                    a.text
                ),
            ));
            (None, reverse)
        }
    }
}

/// A parsed `vrrp_script`, with where its block ends (keepalived reports a missing script there).
pub struct ScriptDraft {
    pub script: Option<VrrpScript>,
    pub name: String,
    pub end: Pos,
    pub script_pos: Option<Pos>,
}

pub fn vrrp_script(node: &Node, diags: &mut Diags) -> Option<ScriptDraft> {
    let name = name_arg(node, diags)?;
    schema::check(schema::VRRP_SCRIPT, "vrrp_script", node, diags);
    let end = node.close.clone().unwrap_or_else(|| node.pos().clone());
    let (w, reverse) = weight(node, -253, 253, diags);
    let interval = secs(node, "interval").unwrap_or(Duration::from_secs(1));
    let script_node = child(node, "script");
    let script = text(node, "script").map(|s| VrrpScript {
        name: name.clone(),
        script: s,
        interval,
        timeout: secs(node, "timeout").unwrap_or(interval),
        weight: w.unwrap_or(0),
        weight_reverse: reverse,
        rise: num(node, &["rise"]).unwrap_or(1),
        fall: num(node, &["fall"]).unwrap_or(1),
        user: text(node, "user"),
        init_fail: child(node, "init_fail").is_some(),
    });
    if script.is_none() {
        diags.push(Diagnostic::warning(
            &end,
            format!("No script set for vrrp_script {name} - removing"),
        ));
    }
    Some(ScriptDraft {
        script,
        name,
        end,
        script_pos: script_node.map(|n| n.pos().clone()),
    })
}

fn name_arg(node: &Node, diags: &mut Diags) -> Option<String> {
    match node.args.first() {
        Some(a) => Some(a.text.clone()),
        None => {
            diags.push(Diagnostic::error(
                node.pos(),
                format!("`{}` needs a name", node.name()),
            ));
            None
        }
    }
}

/// `vrrp_sync_group NAME { group { … } … }` with each member's position.
pub fn sync_group(node: &Node, diags: &mut Diags) -> Option<(SyncGroup, Vec<Pos>, Pos)> {
    let name = name_arg(node, diags)?;
    schema::check(schema::SYNC_GROUP, "vrrp_sync_group", node, diags);
    let mut group = Vec::new();
    let mut pos = Vec::new();
    if let Some(g) = child(node, "group") {
        for m in &g.children {
            group.push(m.name().to_string());
            pos.push(m.pos().clone());
        }
    }
    Some((SyncGroup { name, group }, pos, node.pos().clone()))
}

/// `track_script { NAME [weight N [reverse]] }` and friends, with each entry's position.
pub fn tracks(node: &Node, lo: i64, hi: i64, diags: &mut Diags) -> Vec<(Track, Pos)> {
    node.children
        .iter()
        .map(|c| {
            let mut t = Track {
                name: c.name().to_string(),
                weight: None,
                reverse: false,
            };
            let mut it = c.args.iter();
            while let Some(a) = it.next() {
                match a.text.as_str() {
                    "weight" => match it.next().map(|v| (v, v.text.parse::<i64>())) {
                        Some((_, Ok(w))) if (lo..=hi).contains(&w) => t.weight = Some(w as i32),
                        Some((v, _)) => diags.push(Diagnostic::error(
                            &v.pos,
                            format!(
                                "weight '{}' invalid - must be between {lo} and {hi}",
                                v.text
                            ),
                        )),
                        None => diags.push(Diagnostic::error(&a.pos, "`weight` needs a value")),
                    },
                    "reverse" => t.reverse = true,
                    other => diags.push(Diagnostic::error(
                        &a.pos,
                        format!("unknown option `{other}` for tracked `{}`", c.name()),
                    )),
                }
            }
            (t, c.pos().clone())
        })
        .collect()
}

/// Where a route entry names no interface: keepalived cannot track it (it says so).
pub fn route_line(c: &Node, tracked: bool, diags: &mut Diags) -> String {
    let words: Vec<&str> = std::iter::once(c.name())
        .chain(c.args.iter().map(|a| a.text.as_str()))
        .collect();
    let mut i = 0;
    let mut dest = None;
    let mut dev = false;
    let mut no_track = false;
    while i < words.len() {
        let w = words[i];
        let (argc, pos) = (1, if i == 0 { c.pos() } else { &c.args[i - 1].pos });
        match w {
            "src" | "via" | "dev" | "scope" | "table" | "metric" | "proto" | "protocol"
            | "realms" | "mtu" | "advmss" | "pref" | "tos" | "dsfield" | "nexthop" | "weight"
            | "preference" | "prio" | "priority" | "onlink" | "encap" | "expires" | "rtt"
            | "rttvar" | "window" | "cwnd" | "initcwnd" | "initrwnd" | "features" | "quickack"
            | "hoplimit" | "ssthresh" | "reordering" | "congctl" | "fastopen_no_cookie"
            | "rto_min" | "ttl-propagate" => {
                if w == "dev" {
                    dev = true;
                }
                if matches!(w, "onlink") {
                    i += 1;
                    continue;
                }
                if w == "src" && dest.is_none() && i == 0 {
                    i += 2;
                    continue;
                }
                i += 1 + argc;
            }
            "gw" | "or" => {
                let msg = if w == "gw" {
                    "\"gw\" for routes is deprecated. Please use \"via\""
                } else {
                    "\"or\" for routes is deprecated. Please use \"nexthop\""
                };
                diags.push(Diagnostic::warning(pos, msg));
                i += 2;
            }
            "no_track" => {
                no_track = true;
                i += 1;
            }
            "blackhole" | "unreachable" | "prohibit" | "throw" | "unicast" | "local"
            | "broadcast" | "multicast" | "nat" | "anycast"
                if dest.is_none() =>
            {
                i += 1
            }
            _ if dest.is_none() => {
                if !valid_prefix(w) {
                    diags.push(Diagnostic::error(
                        pos,
                        format!("invalid route destination `{w}`"),
                    ));
                }
                dest = Some(w.to_string());
                i += 1;
            }
            _ => i += 1,
        }
    }
    if tracked && !dev && !no_track {
        if let Some(d) = &dest {
            diags.push(Diagnostic::warning(
                c.pos(),
                format!(
                    "Warning - cannot track route {d} with no interface specified, not tracking"
                ),
            ));
        }
    }
    words.join(" ")
}

fn valid_prefix(w: &str) -> bool {
    let (a, l) = match w.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (w, None),
    };
    let Ok(ip) = a.parse::<IpAddr>() else {
        return w == "default";
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    l.is_none_or(|l| l.parse::<u8>().is_ok_and(|n| n <= max))
}

/// A `static_rules` / `virtual_rules` line; keepalived insists on addresses and warns when no
/// preference is given.
pub fn rule_line(c: &Node, diags: &mut Diags) -> String {
    let toks: Vec<(&str, &Pos)> = std::iter::once((c.name(), c.pos()))
        .chain(c.args.iter().map(|a| (a.text.as_str(), &a.pos)))
        .collect();
    let mut has_pref = false;
    let mut i = 0;
    while i < toks.len() {
        let (w, pos) = toks[i];
        match w {
            "from" | "to" => {
                if let Some((v, vpos)) = toks.get(i + 1) {
                    if *v != "all" && !valid_prefix(v) {
                        diags.push(Diagnostic::error(
                            vpos,
                            format!("Invalid rule {w} address {v}"),
                        ));
                    }
                } else {
                    diags.push(Diagnostic::error(pos, format!("`{w}` needs an address")));
                }
                i += 2;
            }
            "preference" | "prio" | "priority" => {
                has_pref = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    if !has_pref {
        diags.push(Diagnostic::warning(
            c.pos(),
            "Rule has no preference specified. This is probably not what you want.",
        ));
    }
    toks.iter().map(|t| t.0).collect::<Vec<_>>().join(" ")
}

/// Checker-level keys that inherit virtual server → real server → checker.
#[derive(Clone, Copy, Default)]
struct Inherit {
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    delay_loop: Option<Duration>,
    warmup: Option<Duration>,
}

impl Inherit {
    fn over(self, node: &Node) -> Self {
        Self {
            connect_timeout: secs(node, "connect_timeout").or(self.connect_timeout),
            retry: num(node, &["retry", "nb_get_retry"]).or(self.retry),
            delay_before_retry: secs(node, "delay_before_retry").or(self.delay_before_retry),
            delay_loop: secs(node, "delay_loop").or(self.delay_loop),
            warmup: secs(node, "warmup").or(self.warmup),
        }
    }
}

const CHECKERS: &[&str] = &[
    "HTTP_GET",
    "SSL_GET",
    "TCP_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "MISC_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "ICMP_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
];

fn ip_port(node: &Node, diags: &mut Diags) -> Option<(IpAddr, Option<u16>)> {
    let a = node.args.first()?;
    let Ok(ip) = a.text.parse::<IpAddr>() else {
        diags.push(Diagnostic::error(
            &a.pos,
            format!("invalid {} address `{}`", node.name(), a.text),
        ));
        return None;
    };
    let port = match node.args.get(1) {
        None => None,
        Some(p) => match p.text.parse::<u16>() {
            Ok(p) => Some(p),
            Err(_) => {
                diags.push(Diagnostic::error(
                    &p.pos,
                    format!("invalid port `{}` (0..65535)", p.text),
                ));
                return None;
            }
        },
    };
    Some((ip, port))
}

/// `virtual_server` with its real servers and checkers.
pub fn virtual_server(node: &Node, diags: &mut Diags) -> Option<VirtualServer> {
    schema::check(schema::VIRTUAL_SERVER, "virtual_server", node, diags);
    let key = match node.args.first().map(|a| a.text.as_str()) {
        None => {
            diags.push(Diagnostic::error(
                node.pos(),
                "`virtual_server` needs IP [PORT], `fwmark N` or `group NAME`",
            ));
            return None;
        }
        Some("fwmark") => match node.args.get(1).map(|a| a.text.parse::<u32>()) {
            Some(Ok(m)) => VsKey::Fwmark(m),
            _ => {
                diags.push(Diagnostic::error(node.pos(), "`fwmark` needs a number"));
                return None;
            }
        },
        Some("group") => match node.args.get(1) {
            Some(g) => VsKey::Group(g.text.clone()),
            None => {
                diags.push(Diagnostic::error(node.pos(), "`group` needs a name"));
                return None;
            }
        },
        Some(_) => {
            let (ip, port) = ip_port(node, diags)?;
            VsKey::Addr { ip, port }
        }
    };
    if let (VsKey::Fwmark(m), Some(p)) = (&key, child(node, "protocol")) {
        diags.push(Diagnostic::warning(
            p.pos(),
            format!("Warning: Virtual server FWM {m}: protocol specified for fwmark - protocol will be ignored"),
        ));
    }
    let vs_inh = Inherit::default().over(node);
    let mut real_servers = Vec::new();
    for rs in node.children.iter().filter(|c| c.name() == "real_server") {
        let Some((ip, port)) = ip_port(rs, diags).or_else(|| {
            if rs.args.is_empty() {
                diags.push(Diagnostic::error(
                    rs.pos(),
                    "`real_server` needs an address",
                ));
            }
            None
        }) else {
            continue;
        };
        let rs_inh = vs_inh.over(rs);
        let checkers = rs
            .children
            .iter()
            .filter(|c| CHECKERS.contains(&c.name()))
            .map(|c| checker(c, rs_inh))
            .collect();
        real_servers.push(RealServer {
            ip,
            port,
            weight: num(rs, &["weight"]).unwrap_or(1),
            inhibit_on_failure: boolean(rs, "inhibit_on_failure"),
            notify_up: text(rs, "notify_up"),
            notify_down: text(rs, "notify_down"),
            checkers,
        });
    }
    let persistence_timeout = child(node, "persistence_timeout").map(|c| {
        c.args
            .first()
            .and_then(|a| a.text.parse().ok())
            .unwrap_or(360)
    });
    let lvs_method = text(node, "lvs_method")
        .or_else(|| text(node, "lb_kind"))
        .unwrap_or_else(|| "NAT".into());
    Some(VirtualServer {
        key,
        lvs_sched: text(node, "lvs_sched").or_else(|| text(node, "lb_algo")),
        lvs_method,
        protocol: text(node, "protocol").unwrap_or_else(|| "TCP".into()),
        persistence_timeout,
        quorum: num(node, &["quorum"]).unwrap_or(1),
        hysteresis: num(node, &["hysteresis"]).unwrap_or(0),
        virtualhost: text(node, "virtualhost"),
        sorry_server: text(node, "sorry_server"),
        real_servers,
    })
}

fn checker(c: &Node, inh: Inherit) -> Checker {
    let inh = inh.over(c);
    let kind = c.name().to_string();
    let default_retry = match kind.as_str() {
        "MISC_CHECK" => 0,
        "DNS_CHECK" => 3,
        _ => 1,
    };
    let delay_loop = inh.delay_loop.unwrap_or(Duration::from_secs(60));
    Checker {
        connect_ip: num(c, &["connect_ip"]),
        connect_port: num(c, &["connect_port"]),
        connect_timeout: inh.connect_timeout.unwrap_or(Duration::from_secs(5)),
        retry: inh.retry.unwrap_or(default_retry),
        delay_before_retry: inh.delay_before_retry.unwrap_or(Duration::from_secs(1)),
        delay_loop,
        warmup: inh.warmup.unwrap_or(delay_loop),
        urls: c
            .children
            .iter()
            .filter(|u| u.name() == "url")
            .map(|u| Url {
                path: text(u, "path").unwrap_or_default(),
                digest: text(u, "digest"),
                status_code: text(u, "status_code"),
            })
            .collect(),
        misc_path: text(c, "misc_path"),
        misc_timeout: secs(c, "misc_timeout"),
        helo_name: text(c, "helo_name"),
        kind,
    }
}

/// Validate a block against a schema and keep nothing (known, not modelled).
pub fn validate_only(specs: &[Spec], node: &Node, diags: &mut Diags) {
    schema::check(specs, node.name(), node, diags);
}

/// The executable a script line starts with, when it exists (keepalived's script security
/// check only concerns scripts that exist).
pub fn existing_script(cmd: &str) -> Option<std::path::PathBuf> {
    let first = cmd.split_whitespace().next()?;
    let p = std::path::Path::new(first);
    if first.contains('/') {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(first))
            .find(|f| f.is_file())
    })
}
