//! Model builders for keepalived blocks beyond the VRRP instance core: vrrp_script, sync
//! groups, tracking lists, static addresses/routes/rules and virtual servers. Each validates
//! against its [`schema`](super::schema) first, then reads the values.

use std::net::IpAddr;
use std::time::Duration;

use checks::spec::{
    CheckSpec, Connect, DnsCheck, FileCheck, HttpCheck, HttpProtocol, MiscCheck, PingCheck,
    ProbeSpec, SmtpCheck, StatusRange, TcpCheck, TimerOverrides, UdpCheck, UrlSpec,
};
use lbcore::spec::{
    ForwardingMethod, GroupEntry, IpFamily, Protocol, RealServerSpec, SchedFlags, SchedulerKind,
    ScriptSpec, ServiceKey, ServiceSpec, SorryServerSpec, TunCsum, TunOptions, TunType,
    VirtualServerGroupSpec, DEFAULT_PERSISTENCE_TIMEOUT,
};

use super::diag::{suggest, Diagnostic, Diags, Pos};
use super::model::{
    GarpGroup, InitFile, Notify, ParamMatch, RealServerChecks, SyncGroup, Track, TrackFile,
    TrackProcess, TrackVirtualServer, VirtualServer, VrrpScript, VsRef,
};
use super::schema;
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
    // The schema has reported out-of-range values; never panic on them here.
    num::<f64>(node, &[name]).and_then(|v| Duration::try_from_secs_f64(v).ok())
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
    let mut list = |key: &str| -> Vec<Track> {
        child(node, key)
            .map(|c| {
                tracks(c, -254, 254, diags)
                    .into_iter()
                    .map(|t| t.0)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (track_interfaces, track_scripts) = (list("track_interface"), list("track_script"));
    let (track_files, track_processes) = (list("track_file"), list("track_process"));
    let group = SyncGroup {
        name,
        group,
        track_interfaces,
        track_scripts,
        track_files,
        track_processes,
        notify: Notify {
            master: text(node, "notify_master"),
            backup: text(node, "notify_backup"),
            fault: text(node, "notify_fault"),
            stop: text(node, "notify_stop"),
            any: text(node, "notify"),
            master_rx_lower_pri: None,
        },
        global_tracking: child(node, "global_tracking").is_some(),
        sync_group_tracking_weight: child(node, "sync_group_tracking_weight").is_some(),
        smtp_alert: smtp_alert(node),
    };
    Some((group, pos, node.pos().clone()))
}

/// `track_virtual_server { 192.0.2.100 80 [weight N] | fwmark N [weight N] | group NAME … }`.
pub fn track_virtual_servers(node: &Node, diags: &mut Diags) -> Vec<(TrackVirtualServer, Pos)> {
    let mut out = Vec::new();
    for c in &node.children {
        let words: Vec<&str> = std::iter::once(c.name())
            .chain(c.args.iter().map(|a| a.text.as_str()))
            .collect();
        let (vs, rest) = match words.as_slice() {
            ["fwmark", m, rest @ ..] => match m.parse() {
                Ok(m) => (VsRef::Fwmark(m), rest),
                Err(_) => {
                    diags.push(Diagnostic::error(
                        c.pos(),
                        format!("fwmark '{m}' is not a number"),
                    ));
                    continue;
                }
            },
            ["group", g, rest @ ..] => (VsRef::Group(g.to_string()), rest),
            [ip, rest @ ..] => match ip.parse::<IpAddr>() {
                Ok(addr) => match rest {
                    [p, more @ ..] if *p != "weight" => match p.parse() {
                        Ok(port) => (
                            VsRef::Addr {
                                addr,
                                port: Some(port),
                            },
                            more,
                        ),
                        Err(_) => {
                            diags.push(Diagnostic::error(
                                c.pos(),
                                format!("port '{p}' is not a number"),
                            ));
                            continue;
                        }
                    },
                    _ => (VsRef::Addr { addr, port: None }, rest),
                },
                Err(_) => {
                    diags.push(
                        Diagnostic::error(
                            c.pos(),
                            format!("track_virtual_server: '{ip}' is not a virtual server"),
                        )
                        .with_help("write `IP PORT`, `fwmark N` or `group NAME`, then `weight N`"),
                    );
                    continue;
                }
            },
            [] => continue,
        };
        let weight = match rest {
            [] => 0,
            ["weight", w] => match w.parse::<i32>() {
                Ok(w) if (-254..=254).contains(&w) => w,
                _ => {
                    diags.push(Diagnostic::error(
                        c.pos(),
                        format!("weight '{w}' invalid - must be between -254 and 254"),
                    ));
                    continue;
                }
            },
            other => {
                diags.push(Diagnostic::error(
                    c.pos(),
                    format!("track_virtual_server: unexpected '{}'", other.join(" ")),
                ));
                continue;
            }
        };
        out.push((TrackVirtualServer { vs, weight }, c.pos().clone()));
    }
    out
}

/// `track_file NAME { … }` (also `vrrp_track_file`).
pub fn track_file(node: &Node, diags: &mut Diags) -> Option<TrackFile> {
    let name = name_arg(node, diags)?;
    schema::check(schema::TRACK_FILE, node.name(), node, diags);
    let Some(file) = text(node, "file") else {
        diags.push(Diagnostic::warning(
            node.pos(),
            format!("No file set for track_file {name} - removing"),
        ));
        return None;
    };
    let (w, reverse) = weight(node, -254, 254, diags);
    let init_file = child(node, "init_file").map(|c| {
        let mut value = 0;
        let mut overwrite = false;
        for a in &c.args {
            match a.text.parse::<i64>() {
                Ok(v) => value = v,
                Err(_) if a.text == "overwrite" => overwrite = true,
                Err(_) => diags.push(Diagnostic::error(
                    &a.pos,
                    format!(
                        "init_file: '{}' is neither a number nor `overwrite`",
                        a.text
                    ),
                )),
            }
        }
        InitFile { value, overwrite }
    });
    Some(TrackFile {
        name,
        file: file.into(),
        weight: w.unwrap_or(1),
        reverse,
        init_file,
    })
}

/// `vrrp_track_process NAME { … }`, with keepalived's defaults and its rules between
/// `process` parameters, `param_match`, `full_command`, `quorum` and `quorum_max`.
pub fn track_process(node: &Node, diags: &mut Diags) -> Option<TrackProcess> {
    let name = name_arg(node, diags)?;
    schema::check(schema::TRACK_PROCESS, node.name(), node, diags);
    let Some((process, params)) = child(node, "process").and_then(|c| {
        let (first, rest) = c.args.split_first()?;
        Some((
            first.text.clone(),
            rest.iter().map(|a| a.text.clone()).collect::<Vec<_>>(),
        ))
    }) else {
        diags.push(Diagnostic::warning(
            node.pos(),
            format!("track process '{name}' process name not specified"),
        ));
        return None;
    };
    let mut param_match = (!params.is_empty()).then_some(ParamMatch::Exact);
    if let Some(c) = child(node, "param_match") {
        match c.args.first().map(|a| a.text.as_str()) {
            None => param_match = Some(ParamMatch::Exact),
            Some("initial") => param_match = Some(ParamMatch::Initial),
            Some("partial") => param_match = Some(ParamMatch::Partial),
            Some(other) => diags.push(
                Diagnostic::error(
                    &c.args[0].pos,
                    format!("Invalid param_match type {other} - ignoring"),
                )
                .with_help(
                    "`param_match` alone (exact), `param_match initial` or `param_match partial`",
                ),
            ),
        }
    }
    let full_command = child(node, "full_command").is_some() || param_match.is_some();
    if !full_command && process.len() > 15 {
        diags.push(
            Diagnostic::warning(
                child(node, "process").map_or(node.pos(), Node::pos),
                format!(
                    "track process {name}: '{process}' is longer than a process name can be (15 characters), so it never matches"
                ),
            )
            .with_help("add `full_command` to match the command line instead")
            .not_flagged_by_keepalived(),
        );
    }
    let (w, reverse) = weight(node, -254, 254, diags);
    let delay = |key| secs(node, key).filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600));
    // Out-of-range values were reported by the schema and are ignored, as keepalived does.
    let mut quorum: u32 = num(node, &["quorum"])
        .filter(|q| (1..=65535).contains(q))
        .unwrap_or(1);
    let mut quorum_max: Option<u32> = num(node, &["quorum_max"]).filter(|q| *q <= 65535);
    if let Some(max) = quorum_max {
        // keepalived allows `quorum_max 0` with the default quorum: "must not run".
        if (max != 0 || quorum > 1) && max < quorum {
            diags.push(Diagnostic::error(
                child(node, "quorum_max").map_or(node.pos(), Node::pos),
                "quorum_max is less than quorum - ignoring",
            ));
            quorum_max = None;
        } else if max == 0 {
            quorum = 0;
        }
    }
    Some(TrackProcess {
        name,
        process,
        params,
        param_match,
        weight: w.unwrap_or(0),
        reverse,
        quorum,
        quorum_max,
        fork_delay: delay("fork_delay"),
        terminate_delay: delay("terminate_delay"),
        delay: delay("delay"),
        full_command,
    })
}

/// `garp_group { … }`.
pub fn garp_group(node: &Node, diags: &mut Diags) -> GarpGroup {
    schema::check_inert(schema::GARP_GROUP, node.name(), node, diags);
    let mut interfaces: Vec<String> = text(node, "interface").into_iter().collect();
    if let Some(list) = child(node, "interfaces") {
        interfaces.extend(list.children.iter().map(|c| c.name().to_string()));
    }
    GarpGroup {
        garp_interval: secs(node, "garp_interval"),
        gna_interval: secs(node, "gna_interval"),
        interfaces,
    }
}

/// The top-level `SSL { … }` block.
pub fn ssl(node: &Node, diags: &mut Diags) -> checks::spec::TlsSpec {
    schema::check(schema::SSL, node.name(), node, diags);
    checks::spec::TlsSpec {
        ca: text(node, "ca").map(Into::into),
        certificate: text(node, "certificate").map(Into::into),
        key: text(node, "key").map(Into::into),
        password: text(node, "password"),
    }
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
                    // keepalived spells it both ways (track_script / track_file).
                    "noreverse" | "no_reverse" => t.reverse = false,
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

/// Timer keys of one level (virtual server, real server or checker); `None` inherits.
fn timers(node: &Node) -> TimerOverrides {
    TimerOverrides {
        // keepalived reads a connect_timeout of 0 as 1 s.
        connect_timeout: secs(node, "connect_timeout").map(|d| {
            if d.is_zero() {
                Duration::from_secs(1)
            } else {
                d
            }
        }),
        retry: num(node, &["retry", "nb_get_retry"]),
        delay_before_retry: secs(node, "delay_before_retry"),
        delay_loop: secs(node, "delay_loop"),
        warmup: secs(node, "warmup"),
        alpha: child(node, "alpha").map(|_| boolean(node, "alpha")),
        omega: child(node, "omega").map(|_| boolean(node, "omega")),
        ..TimerOverrides::default()
    }
}

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

/// `lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`.
fn forwarding(node: &Node, names: &[&str], diags: &mut Diags) -> Option<ForwardingMethod> {
    let c = names.iter().find_map(|n| child(node, n))?;
    let words: Vec<&str> = c.args.iter().map(|a| a.text.as_str()).collect();
    let bad = |diags: &mut Diags, msg: String| {
        diags.push(Diagnostic::error(
            c.args.first().map_or(c.pos(), |a| &a.pos),
            msg,
        ));
        None
    };
    match words.first().copied() {
        Some("NAT") => Some(ForwardingMethod::Nat),
        Some("DR") => Some(ForwardingMethod::Dr),
        Some("TUN") => {
            let mut t = TunOptions::default();
            let mut i = 1;
            while i < words.len() {
                match words[i] {
                    "type" => match words.get(i + 1).copied() {
                        Some("ipip") => t.tun_type = TunType::Ipip,
                        Some("gre") => t.tun_type = TunType::Gre,
                        Some("gue") => {
                            let port = words.get(i + 3).and_then(|p| p.parse().ok());
                            match (words.get(i + 2).copied(), port) {
                                (Some("port"), Some(port)) => {
                                    t.tun_type = TunType::Gue { port };
                                    i += 2;
                                }
                                _ => return bad(diags, "`type gue` needs `port N`".into()),
                            }
                        }
                        other => {
                            return bad(
                                diags,
                                format!("unknown tunnel type {other:?} (ipip, gue, gre)"),
                            )
                        }
                    },
                    "nocsum" => t.csum = TunCsum::Nocsum,
                    "csum" => t.csum = TunCsum::Csum,
                    "remcsum" => t.csum = TunCsum::Remcsum,
                    other => return bad(diags, format!("unknown TUN option `{other}`")),
                }
                i += if words[i] == "type" { 2 } else { 1 };
            }
            Some(ForwardingMethod::Tun(t))
        }
        Some(other) => {
            let mut d = Diagnostic::error(
                &c.args[0].pos,
                format!("invalid {} `{other}` (NAT, DR or TUN)", c.name()),
            );
            if let Some(s) = suggest(other, ["NAT", "DR", "TUN"]) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
            None
        }
        None => bad(diags, format!("`{}` needs a value", c.name())),
    }
}

fn script(node: &Node, name: &str) -> Option<ScriptSpec> {
    let c = child(node, name)?;
    Some(ScriptSpec {
        command: c.args.first()?.text.clone(),
        user: c.args.get(1).map(|a| a.text.clone()),
        group: c.args.get(2).map(|a| a.text.clone()),
    })
}

/// A netmask (`255.255.255.0`) or prefix length as a prefix length.
fn granularity(node: &Node, diags: &mut Diags) -> Option<u8> {
    let c = child(node, "persistence_granularity")?;
    let a = c.args.first()?;
    if let Ok(n) = a.text.parse::<u8>() {
        if n <= 128 {
            return Some(n);
        }
    }
    match a.text.parse::<IpAddr>() {
        Ok(IpAddr::V4(m)) => {
            let bits = u32::from(m);
            if bits.leading_ones() + bits.trailing_zeros() == 32 {
                return Some(bits.leading_ones() as u8);
            }
        }
        Ok(IpAddr::V6(m)) => {
            let bits = u128::from(m);
            if bits.leading_ones() + bits.trailing_zeros() == 128 {
                return Some(bits.leading_ones() as u8);
            }
        }
        Err(_) => {}
    }
    diags.push(Diagnostic::error(
        &a.pos,
        format!("invalid persistence_granularity `{}` (a netmask)", a.text),
    ));
    None
}

/// `virtual_server` mapped onto `lbcore::spec::ServiceSpec` and `checks::spec::CheckSpec`.
/// `track_files` are those defined so far, which a FILE_CHECK may name.
pub fn virtual_server(
    node: &Node,
    track_files: &[TrackFile],
    diags: &mut Diags,
) -> Option<VirtualServer> {
    schema::check(schema::VIRTUAL_SERVER, "virtual_server", node, diags);
    let family = match text(node, "ip_family").as_deref() {
        Some("inet6") => IpFamily::Inet6,
        _ => IpFamily::Inet,
    };
    let key = match node.args.first().map(|a| a.text.as_str()) {
        None => {
            diags.push(Diagnostic::error(
                node.pos(),
                "`virtual_server` needs IP [PORT], `fwmark N` or `group NAME`",
            ));
            return None;
        }
        Some("fwmark") => match node.args.get(1).map(|a| a.text.parse::<u32>()) {
            Some(Ok(mark)) => ServiceKey::Fwmark { mark, family },
            _ => {
                diags.push(Diagnostic::error(node.pos(), "`fwmark` needs a number"));
                return None;
            }
        },
        Some("group") => match node.args.get(1) {
            Some(g) => ServiceKey::Group(g.text.clone()),
            None => {
                diags.push(Diagnostic::error(node.pos(), "`group` needs a name"));
                return None;
            }
        },
        Some(_) => {
            let (addr, port) = ip_port(node, diags)?;
            ServiceKey::Addr { addr, port }
        }
    };
    if let (ServiceKey::Fwmark { mark, .. }, Some(p)) = (&key, child(node, "protocol")) {
        diags.push(Diagnostic::warning(
            p.pos(),
            format!("Warning: Virtual server FWM {mark}: protocol specified for fwmark - protocol will be ignored"),
        ));
    }
    let mut service = ServiceSpec {
        key,
        protocol: match text(node, "protocol").as_deref() {
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            _ => Protocol::Tcp,
        },
        scheduler: text(node, "lvs_sched")
            .or_else(|| text(node, "lb_algo"))
            .and_then(|s| SchedulerKind::from_name(&s))
            .unwrap_or(SchedulerKind::Wlc),
        sched_flags: SchedFlags {
            // IPVS: flag-1 is the *-fallback bit, flag-2 the *-port bit, of sh and mh alike.
            sh_port: child(node, "sh-port").is_some() || child(node, "flag-2").is_some(),
            sh_fallback: child(node, "sh-fallback").is_some() || child(node, "flag-1").is_some(),
            mh_port: child(node, "mh-port").is_some() || child(node, "flag-2").is_some(),
            mh_fallback: child(node, "mh-fallback").is_some() || child(node, "flag-1").is_some(),
            flag_3: child(node, "flag-3").is_some(),
        },
        forwarding: forwarding(node, &["lvs_method", "lb_kind"], diags).unwrap_or_default(),
        persistence_timeout: child(node, "persistence_timeout").map(|c| {
            c.args
                .first()
                .and_then(|a| a.text.parse().ok())
                .unwrap_or(DEFAULT_PERSISTENCE_TIMEOUT)
        }),
        persistence_granularity: granularity(node, diags),
        persistence_engine: text(node, "persistence_engine"),
        quorum: num(node, &["quorum"]).unwrap_or(1),
        hysteresis: num(node, &["hysteresis"]).unwrap_or(0),
        quorum_up: script(node, "quorum_up"),
        quorum_down: script(node, "quorum_down"),
        sorry_server: None,
        inhibit_on_failure: boolean(node, "inhibit_on_failure"),
        virtualhost: text(node, "virtualhost"),
        ha_suspend: child(node, "ha_suspend").is_some(),
        ops: child(node, "ops").is_some() || child(node, "one_packet_scheduler").is_some(),
        alpha: boolean(node, "alpha"),
        omega: boolean(node, "omega"),
        delay_loop: secs(node, "delay_loop").map_or(60, |d| d.as_secs().max(1) as u32),
        real_servers: Vec::new(),
    };
    if let Some(c) = child(node, "sorry_server") {
        if let Some((addr, port)) = ip_port(c, diags) {
            service.sorry_server = Some(SorryServerSpec {
                addr,
                port,
                inhibit: boolean(node, "sorry_server_inhibit"),
                forwarding: forwarding(node, &["sorry_server_lvs_method"], diags),
            });
        }
    }
    let vs_timers = timers(node);
    let mut real_servers = Vec::new();
    for rs in node.children.iter().filter(|c| c.name() == "real_server") {
        let Some((addr, port)) = ip_port(rs, diags).or_else(|| {
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
        let checkers = rs
            .children
            .iter()
            .filter_map(|c| checker(c, track_files, diags))
            .collect();
        service.real_servers.push(RealServerSpec {
            addr,
            port,
            weight: num(rs, &["weight"]).unwrap_or(1),
            inhibit_on_failure: child(rs, "inhibit_on_failure")
                .map(|_| boolean(rs, "inhibit_on_failure")),
            notify_up: script(rs, "notify_up"),
            notify_down: script(rs, "notify_down"),
            forwarding: forwarding(rs, &["lvs_method", "lb_kind"], diags),
            uthreshold: num(rs, &["uthreshold"]).unwrap_or(0),
            lthreshold: num(rs, &["lthreshold"]).unwrap_or(0),
            virtualhost: text(rs, "virtualhost"),
            ..RealServerSpec::default()
        });
        real_servers.push(RealServerChecks {
            timers: timers(rs),
            checkers,
            smtp_alert: smtp_alert(rs),
        });
    }
    Some(VirtualServer {
        service,
        timers: vs_timers,
        real_servers,
        smtp_alert: smtp_alert(node),
    })
}

/// `smtp_alert [BOOL]` of a block, if given (the value is checked by the schema).
fn smtp_alert(node: &Node) -> Option<bool> {
    child(node, "smtp_alert").map(|_| boolean(node, "smtp_alert"))
}

fn connect(c: &Node) -> Connect {
    Connect {
        connect_ip: num(c, &["connect_ip"]),
        connect_port: num(c, &["connect_port"]),
        bindto: num(c, &["bindto"]),
        bind_port: num(c, &["bind_port"]),
        bind_if: text(c, "bind_if"),
        fwmark: num(c, &["fwmark"]),
    }
}

/// `status_code 200 300-399 …`.
fn status_codes(u: &Node, diags: &mut Diags) -> Vec<StatusRange> {
    let Some(c) = child(u, "status_code") else {
        return Vec::new();
    };
    c.args
        .iter()
        .filter_map(|a| {
            let (lo, hi) = a.text.split_once('-').unwrap_or((&a.text, &a.text));
            match (lo.parse::<u16>(), hi.parse::<u16>()) {
                (Ok(lo), Ok(hi)) if lo <= hi && (100..=599).contains(&lo) && hi <= 599 => {
                    Some(StatusRange { lo, hi })
                }
                _ => {
                    diags.push(Diagnostic::error(
                        &a.pos,
                        format!("invalid status_code `{}` (100..599 or a range)", a.text),
                    ));
                    None
                }
            }
        })
        .collect()
}

fn http(c: &Node, diags: &mut Diags) -> HttpCheck {
    HttpCheck {
        connect: connect(c),
        urls: c
            .children
            .iter()
            .filter(|u| u.name() == "url")
            .map(|u| UrlSpec {
                path: text(u, "path").unwrap_or_else(|| "/".into()),
                status_code: status_codes(u, diags),
                digest: text(u, "digest"),
                regex: text(u, "regex"),
                regex_no_match: child(u, "regex_no_match").is_some(),
                regex_min_offset: num(u, &["regex_min_offset"]),
                regex_max_offset: num(u, &["regex_max_offset"]),
                virtualhost: text(u, "virtualhost"),
            })
            .collect(),
        virtualhost: text(c, "virtualhost"),
        http_protocol: match text(c, "http_protocol").as_deref() {
            Some("1.0C" | "1.0c") => HttpProtocol::Http10C,
            Some("1.1") => HttpProtocol::Http11,
            _ => HttpProtocol::Http10,
        },
        enable_sni: boolean(c, "enable_sni"),
        ..HttpCheck::default()
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

/// One checker block, or `None` for a real_server key that is not a checker (or a FILE_CHECK
/// naming no known track_file).
fn checker(c: &Node, track_files: &[TrackFile], diags: &mut Diags) -> Option<CheckSpec> {
    let probe = match c.name() {
        "HTTP_GET" => ProbeSpec::HttpGet(http(c, diags)),
        "SSL_GET" => ProbeSpec::SslGet(http(c, diags)),
        "TCP_CHECK" => ProbeSpec::TcpCheck(TcpCheck {
            connect: connect(c),
            half_open: boolean(c, "half_open"),
            reset_close: boolean(c, "reset_close"),
        }),
        "PING_CHECK" | "ICMP_CHECK" => ProbeSpec::PingCheck(PingCheck {
            connect: connect(c),
        }),
        "SMTP_CHECK" => ProbeSpec::SmtpCheck(SmtpCheck {
            connect: child(c, "host").map_or_else(|| connect(c), connect),
            helo_name: text(c, "helo_name"),
        }),
        "DNS_CHECK" => ProbeSpec::DnsCheck(DnsCheck {
            connect: connect(c),
            qtype: text(c, "type").unwrap_or_else(|| "SOA".into()),
            name: text(c, "name").unwrap_or_else(|| ".".into()),
        }),
        "UDP_CHECK" => {
            let payload = child(c, "payload").and_then(|p| p.args.first());
            ProbeSpec::UdpCheck(UdpCheck {
                connect: connect(c),
                payload: payload.and_then(|p| hex(&p.text)).unwrap_or_default(),
                require_reply: child(c, "require_reply").is_some(),
                reply_data: child(c, "require_reply")
                    .and_then(|r| r.args.first())
                    .and_then(|a| hex(&a.text)),
                min_reply_length: num(c, &["min_reply_length"]),
                max_reply_length: num(c, &["max_reply_length"]),
            })
        }
        "MISC_CHECK" => {
            let user = child(c, "user");
            ProbeSpec::MiscCheck(MiscCheck {
                misc_path: text(c, "misc_path").unwrap_or_default(),
                misc_timeout: secs(c, "misc_timeout"),
                misc_dynamic: child(c, "misc_dynamic").is_some(),
                user: user.and_then(|u| u.args.first()).map(|a| a.text.clone()),
                group: user.and_then(|u| u.args.get(1)).map(|a| a.text.clone()),
            })
        }
        "FILE_CHECK" => {
            // keepalived: `track_file` names a track_file block defined before, whose weight
            // (and reverse) apply unless the checker sets its own.
            let name = text(c, "track_file");
            let Some(tf) = track_files.iter().find(|t| Some(&t.name) == name.as_ref()) else {
                let what = name.map_or("FILE_CHECK has no track_file".into(), |n| {
                    format!("track_file {n} not found")
                });
                diags.push(Diagnostic::error(c.pos(), what));
                return None;
            };
            let (w, reverse) = weight(c, -254, 254, diags);
            ProbeSpec::FileCheck(FileCheck {
                file: tf.file.clone(),
                weight: w.unwrap_or(tf.weight),
                reverse: if w.is_some() { reverse } else { tf.reverse },
            })
        }
        _ => return None,
    };
    if matches!(c.name(), "MISC_CHECK") && child(c, "misc_path").is_none() {
        diags.push(Diagnostic::error(c.pos(), "MISC_CHECK needs `misc_path`"));
    }
    Some(CheckSpec {
        probe,
        timers: timers(c),
        log_all_failures: boolean(c, "log_all_failures"),
    })
}

/// `virtual_server_group NAME { IP[-LAST] [PORT] | fwmark N [inet|inet6] … }`.
pub fn vs_group(node: &Node, diags: &mut Diags) -> Option<VirtualServerGroupSpec> {
    let name = name_arg(node, diags)?;
    let mut entries = Vec::new();
    for c in &node.children {
        if c.name() == "fwmark" {
            let mark = c.args.first().and_then(|a| a.text.parse().ok());
            let family = match c.args.get(1).map(|a| a.text.as_str()) {
                Some("inet") => Some(IpFamily::Inet),
                Some("inet6") => Some(IpFamily::Inet6),
                _ => None,
            };
            match mark {
                Some(mark) => entries.push(GroupEntry::Fwmark { mark, family }),
                None => diags.push(Diagnostic::error(c.pos(), "`fwmark` needs a number")),
            }
            continue;
        }
        let (first_s, last_s) = match c.name().rsplit_once('-') {
            Some((a, l)) if !a.contains(':') || l.chars().all(|c| c.is_ascii_hexdigit()) => {
                (a, Some(l))
            }
            _ => (c.name(), None),
        };
        let Ok(first) = first_s.parse::<IpAddr>() else {
            diags.push(Diagnostic::error(
                c.pos(),
                format!("invalid virtual_server_group address `{}`", c.name()),
            ));
            continue;
        };
        let last = match (first, last_s) {
            (_, None) => Some(first),
            (IpAddr::V4(a), Some(l)) => l.parse::<u8>().ok().map(|l| {
                let mut o = a.octets();
                o[3] = l;
                IpAddr::from(o)
            }),
            (IpAddr::V6(a), Some(l)) => u16::from_str_radix(l, 16).ok().map(|l| {
                let mut s = a.segments();
                s[7] = l;
                IpAddr::from(s)
            }),
        };
        let port = c.args.first().map(|p| p.text.parse::<u16>());
        match (last, port) {
            (Some(last), None) => entries.push(GroupEntry::Range {
                first,
                last,
                port: None,
            }),
            (Some(last), Some(Ok(p))) => entries.push(GroupEntry::Range {
                first,
                last,
                port: Some(p),
            }),
            _ => diags.push(Diagnostic::error(
                c.pos(),
                format!("invalid virtual_server_group entry `{}`", c.name()),
            )),
        }
    }
    Some(VirtualServerGroupSpec { name, entries })
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
