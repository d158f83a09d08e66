//! keepalived semantics: keyword tree → typed [`Config`], with keepalived's defaults and checks.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use super::blocks;
use super::diag::{Diagnostic, Diags, Pos};
use super::iproute;
use super::keywords::{
    dispatch, Context, Keyword, GLOBAL_UNSUPPORTED, INSTANCE_UNSUPPORTED, TOP_UNSUPPORTED,
};
use super::lexer::Token;
use super::model::{
    Authentication, Config, Garp, GarpGroup, GlobalDefs, InitialState, LvsSyncDaemon, Notify,
    NotifyFifo, Scope, SourceRef, SyncGroup, Track, TrackFile, TrackProcess, TrackVirtualServer,
    UseVmac, VirtualAddress, VirtualServer, VrrpInstance,
};
use super::process::{ProcessDraft, Side};
use super::tree::Node;
use vrrp_proto::packet::Version;

/// Checks that look at the machine, not the file (what keepalived's `-t` also does).
#[derive(Debug, Clone, Copy, Default)]
pub struct HostChecks {
    /// Interfaces named by instances must exist (in the current network namespace).
    pub interfaces: bool,
    /// Scripts that exist and would run as root need `enable_script_security`.
    pub scripts: bool,
    /// `*_cpu_affinity` CPU ids must be below the host's online CPU count.
    pub cpus: bool,
}

/// Build the model from the top-level statements. Diagnostics go to `diags`.
pub fn build(nodes: &[Node], diags: &mut Diags) -> Config {
    build_with(nodes, HostChecks::default(), diags)
}

/// [`build`] with host checks.
pub fn build_with(nodes: &[Node], host: HostChecks, diags: &mut Diags) -> Config {
    let mut draft = Draft::default();
    for n in nodes {
        dispatch(top_table(), Context::Top, &mut draft, n, diags);
    }
    draft.resolve(host, diags)
}

// ---------------------------------------------------------------- drafts

/// Garp keys as written (unset ones inherit).
#[derive(Debug, Default, Clone)]
struct GarpDraft {
    master_delay: Option<Duration>,
    master_repeat: Option<u32>,
    master_refresh: Option<Duration>,
    master_refresh_repeat: Option<u32>,
    lower_prio_delay: Option<Duration>,
    lower_prio_repeat: Option<u32>,
    interval: Option<Duration>,
    na_interval: Option<Duration>,
    lower_prio_no_advert: Option<bool>,
}

impl GarpDraft {
    /// keepalived: unset keys come from `base`; the lower-priority burst follows the master
    /// burst unless set itself.
    fn resolve(&self, base: &Garp, base_lower_explicit: (bool, bool)) -> Garp {
        let master_delay = self.master_delay.unwrap_or(base.master_delay);
        let master_repeat = self.master_repeat.unwrap_or(base.master_repeat);
        Garp {
            master_delay,
            master_repeat,
            master_refresh: self.master_refresh.unwrap_or(base.master_refresh),
            master_refresh_repeat: self
                .master_refresh_repeat
                .unwrap_or(base.master_refresh_repeat),
            lower_prio_delay: self.lower_prio_delay.unwrap_or(if base_lower_explicit.0 {
                base.lower_prio_delay
            } else {
                master_delay
            }),
            lower_prio_repeat: self.lower_prio_repeat.unwrap_or(if base_lower_explicit.1 {
                base.lower_prio_repeat
            } else {
                master_repeat
            }),
            interval: self.interval.unwrap_or(base.interval),
            na_interval: self.na_interval.unwrap_or(base.na_interval),
            lower_prio_no_advert: self
                .lower_prio_no_advert
                .unwrap_or(base.lower_prio_no_advert),
        }
    }
}

#[derive(Default)]
struct GlobalDraft {
    router_id: Option<String>,
    vrrp_version: Option<Version>,
    garp: GarpDraft,
    mcast_group4: Option<std::net::Ipv4Addr>,
    mcast_group6: Option<std::net::Ipv6Addr>,
    script_security: bool,
    script_user: Option<String>,
    vrrp_strict: bool,
    notify_fifo: FifoDraft,
    vrrp_notify_fifo: FifoDraft,
    lvs_notify_fifo: FifoDraft,
    notify_priority_changes: bool,
    metrics_listen: Option<std::net::SocketAddr>,
    startup_delay: Option<Duration>,
    net_namespace: Option<String>,
    down_timer_adverts: Option<u8>,
    higher_prio_send_advert: Option<bool>,
    check_unicast_src: bool,
    skip_check_adv_addr: bool,
    fifo_states_on_reload: bool,
    /// The `*_fifo_script` commands, for the script-security check.
    scripts_used: Vec<(String, Pos)>,
    mail: super::model::MailDefs,
    /// `vrrp_priority`, `checker_rt_priority`, `umask`, ...
    process: ProcessDraft,
    lvs_sync_daemon: Option<SyncDaemonDraft>,
}

/// `lvs_sync_daemon` as written; the instance is looked up once all are read.
struct SyncDaemonDraft {
    interface: String,
    instance: Option<String>,
    syncid: Option<u8>,
    maxlen: Option<u16>,
    port: Option<u16>,
    ttl: Option<u8>,
    group: Option<IpAddr>,
    pos: Pos,
}

impl SyncDaemonDraft {
    /// keepalived's parse: keyword options in any order, the old positional `VRRP_INSTANCE
    /// [SYNC_ID]` too; a bad value is reported and ignored, as keepalived ignores it.
    fn parse(n: &Node, d: &mut Diags) -> Option<Self> {
        let first = n.args.first().or_else(|| {
            d.push(Diagnostic::error(
                n.pos(),
                "lvs_sync_daemon requires interface",
            ));
            None
        })?;
        let mut s = Self {
            interface: first.text.clone(),
            instance: None,
            syncid: None,
            maxlen: None,
            port: None,
            ttl: None,
            group: None,
            pos: n.pos().clone(),
        };
        let args = &n.args;
        let mut i = 1;
        while i < args.len() {
            let word = args[i].text.as_str();
            let value = args.get(i + 1);
            let num = |d: &mut Diags, min: u32, max: u32, what: &str| -> Option<u32> {
                let Some(v) = value else {
                    d.push(Diagnostic::error(
                        &args[i].pos,
                        format!("No value specified for lvs_sync_daemon {word} - ignoring"),
                    ));
                    return None;
                };
                match v.text.parse::<u32>() {
                    Ok(x) if (min..=max).contains(&x) => Some(x),
                    _ => {
                        d.push(Diagnostic::error(
                            &v.pos,
                            format!("Invalid {what} ({}) - ignoring", v.text),
                        ));
                        None
                    }
                }
            };
            match word {
                "inst" => {
                    if let Some(v) = value {
                        s.instance.get_or_insert(v.text.clone());
                    }
                }
                "id" => s.syncid = num(d, 0, 255, "syncid").map(|v| v as u8).or(s.syncid),
                "maxlen" => {
                    s.maxlen = num(d, 1, 65535 - 20 - 8, "lvs_sync_daemon maxlen")
                        .map(|v| v as u16)
                        .or(s.maxlen)
                }
                "port" => {
                    s.port = num(d, 1, 65535, "lvs_sync_daemon port")
                        .map(|v| v as u16)
                        .or(s.port)
                }
                "ttl" => {
                    s.ttl = num(d, 1, 255, "lvs_sync_daemon ttl")
                        .map(|v| v as u8)
                        .or(s.ttl)
                }
                "group" => match value.map(|v| (v, v.text.parse::<IpAddr>())) {
                    Some((_, Ok(ip))) if ip.is_multicast() => s.group = Some(ip),
                    Some((v, _)) => d.push(Diagnostic::error(
                        &v.pos,
                        format!(
                            "lvs_sync_daemon group address {} is not multicast - ignoring",
                            v.text
                        ),
                    )),
                    None => d.push(Diagnostic::error(
                        &args[i].pos,
                        "No value specified for lvs_sync_daemon group - ignoring",
                    )),
                },
                // keepalived before 2.0: `INTERFACE VRRP_INSTANCE [SYNC_ID]`.
                _ if i == 1 => {
                    s.instance = Some(word.to_string());
                    i += 1;
                    continue;
                }
                _ if i == 2 => {
                    match word.parse::<u8>() {
                        Ok(v) => {
                            d.push(Diagnostic::warning(
                                &args[i].pos,
                                "Please use keyword \"id\" before lvs_sync_daemon SYNCID",
                            ));
                            s.syncid = Some(v);
                        }
                        Err(_) => d.push(Diagnostic::error(
                            &args[i].pos,
                            format!("Invalid syncid ({word}) - defaulting to vrid"),
                        )),
                    }
                    i += 1;
                    continue;
                }
                _ => {
                    d.push(Diagnostic::error(
                        &args[i].pos,
                        format!("Unknown option {word} specified for lvs_sync_daemon"),
                    ));
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        Some(s)
    }

    /// Looks the instance up: its virtual_router_id is the default sync id. Without one
    /// that exists nothing is synchronised (keepalived clears the setting too).
    fn resolve(&self, instances: &[VrrpInstance], d: &mut Diags) -> Option<LvsSyncDaemon> {
        let Some(name) = &self.instance else {
            // keepalived then runs a sending and a receiving daemon at once (active/active);
            // the balancer here forwards on one node at a time.
            d.push(
                Diagnostic::error(
                    &self.pos,
                    "lvs_sync_daemon without a VRRP instance is not supported: name the instance whose Master sends - clearing lvs_syncd config",
                )
                .not_flagged_by_keepalived(),
            );
            return None;
        };
        let Some(inst) = instances.iter().find(|i| &i.name == name) else {
            // keepalived says so when it starts, not under -t.
            d.push(
                Diagnostic::error(
                    &self.pos,
                    format!("Unable to find vrrp instance {name} for lvs_syncd - clearing lvs_syncd config"),
                )
                .not_flagged_by_keepalived(),
            );
            return None;
        };
        Some(LvsSyncDaemon {
            interface: self.interface.clone(),
            instance: name.clone(),
            syncid: self.syncid.unwrap_or(inst.virtual_router_id),
            maxlen: self.maxlen,
            port: self.port.unwrap_or(8848),
            ttl: self.ttl.unwrap_or(1),
            group: self.group,
        })
    }
}

/// One `*notify_fifo` and its `*notify_fifo_script`, in either order.
#[derive(Default)]
struct FifoDraft {
    path: Option<(std::path::PathBuf, Option<String>)>,
    /// Command, `USER [GROUP]`, where.
    script: Option<(String, Option<String>, Pos)>,
}

impl FifoDraft {
    /// `NAME PATH [USER [GROUP]]`.
    fn set_path(&mut self, n: &Node, d: &mut Diags) {
        if let Some(t) = one_arg(n, d) {
            self.path = Some((t.text.clone().into(), rest_words(n)));
        }
    }

    /// `NAME CMD [USER [GROUP]]`: the command is one word or one quoted string.
    fn set_script(&mut self, n: &Node, d: &mut Diags, used: &mut Vec<(String, Pos)>) {
        if let Some(t) = one_arg(n, d) {
            used.push((t.text.clone(), n.pos().clone()));
            self.script = Some((t.text.clone(), rest_words(n), n.pos().clone()));
        }
    }

    /// The FIFO, or `None` (a script without its FIFO is warned about: nothing to read).
    fn resolve(&self, fifo: &str, diags: &mut Diags) -> Option<NotifyFifo> {
        let Some((path, owner)) = &self.path else {
            if let Some((_, _, pos)) = &self.script {
                diags.push(
                    Diagnostic::warning(pos, format!("`{fifo}_script` without `{fifo}`: ignored"))
                        .not_flagged_by_keepalived(),
                );
            }
            return None;
        };
        Some(NotifyFifo {
            path: path.clone(),
            owner: owner.clone(),
            script: self.script.as_ref().map(|s| s.0.clone()),
            script_user: self.script.as_ref().and_then(|s| s.1.clone()),
        })
    }
}

/// The words after the first argument (`USER [GROUP]`), if any.
fn rest_words(n: &Node) -> Option<String> {
    let rest: Vec<&str> = n.args.iter().skip(1).map(|a| a.text.as_str()).collect();
    (!rest.is_empty()).then(|| rest.join(" "))
}

#[derive(Default)]
struct AuthDraft {
    kind: Option<(String, Pos)>,
    pass: Option<String>,
}

struct InstDraft {
    name: String,
    pos: Pos,
    state: Option<InitialState>,
    interface: Option<String>,
    vrid: Option<u8>,
    vrid_bad: bool,
    priority: Option<u8>,
    advert_int: Option<(f64, Pos)>,
    version: Option<(Version, Pos)>,
    nopreempt: Option<Pos>,
    preempt_delay: Option<Duration>,
    auth: Option<(AuthDraft, Pos)>,
    vips: Vec<(VirtualAddress, Pos)>,
    evips: Vec<VirtualAddress>,
    src_ip: Option<(IpAddr, Pos)>,
    peers: Vec<(IpAddr, Pos)>,
    unicast_ttl: Option<u8>,
    /// Where a unicast-only keyword (`unicast_src_ip`, `unicast_ttl`) was given.
    unicast_keyword: Option<Pos>,
    native_ipv6: Option<Pos>,
    garp: GarpDraft,
    interface_pos: Option<Pos>,
    strict: Option<bool>,
    track_scripts: Vec<(Track, Pos)>,
    track_interfaces: Vec<(Track, Pos)>,
    track_files: Vec<(Track, Pos)>,
    track_processes: Vec<(Track, Pos)>,
    track_virtual_servers: Vec<(TrackVirtualServer, Pos)>,
    use_vmac: Option<UseVmac>,
    vmac_xmit_base: bool,
    dont_track_primary: bool,
    promote_secondaries: bool,
    down_timer_adverts: Option<u8>,
    higher_prio_send_advert: Option<(bool, Pos)>,
    check_unicast_src: bool,
    skip_check_adv_addr: bool,
    notify: Notify,
    notify_priority_changes: Option<bool>,
    smtp_alert: Option<bool>,
    scripts_used: Vec<(String, Pos)>,
    virtual_routes: Vec<super::model::Route>,
    virtual_rules: Vec<super::model::Rule>,
    /// Interfaces the routes and rules name, checked with the host's.
    route_ifaces: Vec<IfaceRef>,
    /// `accept` (true) / `no_accept` (false), where given.
    accept: Option<(bool, Pos)>,
}

#[derive(Default)]
struct Draft {
    global: GlobalDraft,
    instances: Vec<InstDraft>,
    scripts: Vec<blocks::ScriptDraft>,
    sync_groups: Vec<(SyncGroup, Vec<Pos>, Pos)>,
    static_addresses: Vec<VirtualAddress>,
    static_routes: Vec<super::model::Route>,
    static_rules: Vec<super::model::Rule>,
    route_ifaces: Vec<IfaceRef>,
    virtual_servers: Vec<VirtualServer>,
    virtual_server_groups: Vec<lbcore::spec::VirtualServerGroupSpec>,
    track_files: Vec<TrackFile>,
    track_processes: Vec<TrackProcess>,
    garp_groups: Vec<GarpGroup>,
    ssl: Option<checks::spec::TlsSpec>,
    linkbeat_interfaces: Vec<String>,
    /// Every script command with where it was given, for the script security check.
    commands: Vec<(String, Pos)>,
}

// ---------------------------------------------------------------- registry tables

fn top_table() -> &'static [Keyword<Draft>] {
    static T: OnceLock<Vec<Keyword<Draft>>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = vec![
            Keyword::new("global_defs", top_global_defs),
            Keyword::new("vrrp_instance", top_vrrp_instance),
            Keyword::new("vrrp_script", |d, n, g| {
                if let Some(sd) = blocks::vrrp_script(n, g) {
                    if let (Some(s), Some(p)) = (&sd.script, &sd.script_pos) {
                        d.commands.push((s.script.clone(), p.clone()));
                    }
                    d.scripts.push(sd);
                }
            }),
            Keyword::new("vrrp_sync_group", |d, n, g| {
                d.sync_groups.extend(blocks::sync_group(n, g))
            }),
            Keyword::new("track_file", |d, n, g| {
                d.track_files.extend(blocks::track_file(n, g))
            }),
            Keyword::new("vrrp_track_file", |d, n, g| {
                d.track_files.extend(blocks::track_file(n, g))
            }),
            Keyword::new("vrrp_track_process", |d, n, g| {
                d.track_processes.extend(blocks::track_process(n, g))
            }),
            Keyword::inert(
                "garp_group",
                "modelled, no effect: each instance paces its own gratuitous ARPs / NAs",
                |d, n, g| d.garp_groups.push(blocks::garp_group(n, g)),
            ),
            Keyword::new("SSL", |d, n, g| d.ssl = Some(blocks::ssl(n, g))),
            Keyword::new("static_ipaddress", |d, n, g| {
                for c in &n.children {
                    d.static_addresses.extend(parse_vip(c, g));
                }
            }),
            Keyword::new("static_routes", |d, n, g| {
                for c in &n.children {
                    if let Some(r) = iproute::parse_route(c, false, g) {
                        d.route_ifaces.extend(IfaceRef::route(&r, c));
                        d.static_routes.push(r);
                    }
                }
            }),
            Keyword::new("static_rules", |d, n, g| {
                for c in &n.children {
                    if let Some(r) = iproute::parse_rule(c, g) {
                        d.route_ifaces.extend(IfaceRef::rule(&r, c));
                        d.static_rules.push(r);
                    }
                }
            }),
            Keyword::partial(
                "linkbeat_interfaces",
                "modelled; vrrpd follows every link through rtnetlink events, no polling",
                |d, n, _| {
                    d.linkbeat_interfaces
                        .extend(n.args.iter().map(|a| a.text.clone()));
                    d.linkbeat_interfaces
                        .extend(n.children.iter().map(|c| c.name().to_string()));
                },
            ),
            Keyword::partial(
                "virtual_server_group",
                "address and range entries are forwarded; `fwmark` entries are only checked",
                |d, n, g| d.virtual_server_groups.extend(blocks::vs_group(n, g)),
            ),
            Keyword::partial(
                "virtual_server",
                "checked, and balanced over IPv4 and IPv6 by vrrpd's own dataplane (no IPVS); `fwmark` and SCTP virtual servers are only checked (see `protocol`)",
                |d, n, g| {
                    for (kw, c) in scripts_in(n) {
                        d.commands.push((kw, c));
                    }
                    d.virtual_servers
                        .extend(blocks::virtual_server(n, &d.track_files, g));
                },
            ),
            Keyword::unsupported("bfd_instance", "vrrpd has no BFD; the block is skipped"),
        ];
        v.extend(
            TOP_UNSUPPORTED
                .iter()
                .map(|n| Keyword::unsupported(n, "the whole block is skipped")),
        );
        v
    })
}

fn global_table() -> &'static [Keyword<GlobalDraft>] {
    static T: OnceLock<Vec<Keyword<GlobalDraft>>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v: Vec<Keyword<GlobalDraft>> = vec![
            Keyword::new("router_id", |g, n, d| {
                g.router_id = one_arg(n, d).map(|t| t.text.clone())
            }),
            Keyword::new("vrrp_version", |g, n, d| g.vrrp_version = version_arg(n, d)),
            Keyword::new("vrrp_garp_master_delay", |g, n, d| {
                g.garp.master_delay = secs_arg(n, d, 0.0, 1000.0)
            }),
            Keyword::new("vrrp_garp_master_repeat", |g, n, d| {
                g.garp.master_repeat = u32_arg(n, d, 1, 10000)
            }),
            Keyword::new("vrrp_garp_master_refresh", |g, n, d| {
                g.garp.master_refresh = secs_arg(n, d, 0.0, 1e6)
            }),
            Keyword::new("vrrp_garp_master_refresh_repeat", |g, n, d| {
                g.garp.master_refresh_repeat = u32_arg(n, d, 1, 10000)
            }),
            Keyword::new("vrrp_garp_lower_prio_delay", |g, n, d| {
                g.garp.lower_prio_delay = secs_arg(n, d, 0.0, 1000.0)
            }),
            Keyword::new("vrrp_garp_lower_prio_repeat", |g, n, d| {
                g.garp.lower_prio_repeat = u32_arg(n, d, 0, 10000)
            }),
            Keyword::new("vrrp_garp_interval", |g, n, d| {
                g.garp.interval = secs_arg(n, d, 0.0, 1.0)
            }),
            Keyword::new("vrrp_down_timer_adverts", |g, n, d| {
                g.down_timer_adverts = int_arg(n, d, 1, 100, "vrrp_down_timer_adverts").map(|v| v as u8)
            }),
            Keyword::new("vrrp_check_unicast_src", |g, _, _| g.check_unicast_src = true),
            Keyword::new("vrrp_skip_check_adv_addr", |g, _, _| g.skip_check_adv_addr = true),
            Keyword::new("fifo_write_vrrp_states_on_reload", |g, _, _| {
                g.fifo_states_on_reload = true
            }),
            Keyword::new("vrrp_higher_prio_send_advert", |g, n, d| {
                g.higher_prio_send_advert = bool_arg(n, d)
            }),
            // keepalived: one gratuitous ARP / NA per address on becoming Master, no second
            // block, no refresh; keywords after it override.
            Keyword::new("vrrp_min_garp", |g, n, d| {
                if bool_arg(n, d) == Some(true) {
                    let gp = &mut g.garp;
                    gp.master_delay = Some(Duration::ZERO);
                    gp.master_repeat = Some(1);
                    gp.master_refresh = Some(Duration::ZERO);
                    gp.master_refresh_repeat = Some(1);
                    gp.lower_prio_delay = Some(Duration::ZERO);
                    gp.lower_prio_repeat = Some(1);
                }
            }),
            Keyword::new("net_namespace", |g, n, d| {
                g.net_namespace = one_arg(n, d).map(|t| t.text.clone())
            }),
            Keyword::new("vrrp_startup_delay", |g, n, d| {
                g.startup_delay = secs_arg(n, d, 0.001, 3600.0)
            }),
            Keyword::new("vrrp_gna_interval", |g, n, d| {
                g.garp.na_interval = secs_arg(n, d, 0.0, 1.0)
            }),
            Keyword::new("vrrp_lower_prio_no_advert", |g, n, d| {
                g.garp.lower_prio_no_advert = bool_arg(n, d)
            }),
            Keyword::new("lvs_sync_daemon", |g, n, d| {
                if let Some(s) = &g.lvs_sync_daemon {
                    d.push(Diagnostic::error(
                        n.pos(),
                        format!(
                            "lvs_sync_daemon has already been specified as {} {} - ignoring",
                            s.interface,
                            s.instance.as_deref().unwrap_or("")
                        ),
                    ));
                    return;
                }
                g.lvs_sync_daemon = SyncDaemonDraft::parse(n, d);
            }),
            Keyword::new("vrrp_mcast_group4", |g, n, d| {
                g.mcast_group4 = ip_arg(n, d).and_then(|ip| match ip {
                    IpAddr::V4(a) if a.is_multicast() => Some(a),
                    _ => bad(n, d, "vrrp_mcast_group4 must be an IPv4 multicast address"),
                })
            }),
            Keyword::new("vrrp_mcast_group6", |g, n, d| {
                g.mcast_group6 = ip_arg(n, d).and_then(|ip| match ip {
                    IpAddr::V6(a) if a.is_multicast() => Some(a),
                    _ => bad(n, d, "vrrp_mcast_group6 must be an IPv6 multicast address"),
                })
            }),
        ];
        v.push(Keyword::partial(
            "vrrp_strict",
            "keepalived's configuration rules apply and no_accept is the default (nftables drop of the VIPs' traffic); no other RFC-strict receive checks",
            |g, _, _| g.vrrp_strict = true,
        ));
        v.push(Keyword::new("enable_script_security", |g, _, _| {
            g.script_security = true
        }));
        v.push(Keyword::new("script_user", |g, n, d| {
            // `USER [GROUP]`, kept as written.
            g.script_user = one_arg(n, d).map(|_| {
                n.args.iter().map(|a| a.text.as_str()).collect::<Vec<_>>().join(" ")
            })
        }));
        v.extend::<[Keyword<GlobalDraft>; 7]>([
            Keyword::new("notify_fifo", |g, n, d| g.notify_fifo.set_path(n, d)),
            Keyword::new("vrrp_notify_fifo", |g, n, d| g.vrrp_notify_fifo.set_path(n, d)),
            Keyword::new("lvs_notify_fifo", |g, n, d| g.lvs_notify_fifo.set_path(n, d)),
            Keyword::new("notify_fifo_script", |g, n, d| {
                g.notify_fifo.set_script(n, d, &mut g.scripts_used)
            }),
            Keyword::new("vrrp_notify_fifo_script", |g, n, d| {
                g.vrrp_notify_fifo.set_script(n, d, &mut g.scripts_used)
            }),
            Keyword::new("lvs_notify_fifo_script", |g, n, d| {
                g.lvs_notify_fifo.set_script(n, d, &mut g.scripts_used)
            }),
            Keyword::new("vrrp_notify_priority_changes", |g, n, d| {
                g.notify_priority_changes = bool_arg(n, d).unwrap_or(false)
            }),
        ]);
        v.push(Keyword::extension(
            "vrrpd_metrics_listen",
            "ADDRESS:PORT ([IPv6]:PORT) of the Prometheus endpoint (off without it; --metrics wins)",
            |g, n, d| {
                g.metrics_listen = one_arg(n, d).and_then(|t| match t.text.parse() {
                    Ok(a) => Some(a),
                    Err(_) => bad_tok(
                        t,
                        d,
                        &format!("invalid address `{}` (expected ADDRESS:PORT)", t.text),
                    ),
                })
            },
        ));
        v.extend(mail_keywords());
        v.extend(process_keywords());
        v.extend(
            GLOBAL_UNSUPPORTED
                .iter()
                .map(|n| Keyword::unsupported(n, "the setting has no effect")),
        );
        v
    })
}

/// `global_defs`' mail keys, with keepalived's checks.
fn mail_keywords() -> [Keyword<GlobalDraft>; 10] {
    [
        Keyword::new("notification_email", |g, n, d| {
            let before = g.mail.notification_email.len();
            for c in &n.children {
                g.mail.notification_email.push(c.name().to_string());
                g.mail
                    .notification_email
                    .extend(c.args.iter().map(|a| a.text.clone()));
            }
            if g.mail.notification_email.len() == before {
                d.push(Diagnostic::warning(
                    n.pos(),
                    "Warning - empty notification_email block",
                ));
            }
        }),
        Keyword::new("notification_email_from", |g, n, d| {
            g.mail.notification_email_from = one_arg(n, d).map(|t| t.text.clone())
        }),
        Keyword::new("smtp_server", |g, n, d| {
            let Some(host) = one_arg(n, d) else { return };
            let port = match n.args.get(1) {
                None => Some(25),
                Some(p) => match p.text.parse::<u16>() {
                    Ok(p) if p > 0 => Some(p),
                    _ => bad_tok(
                        p,
                        d,
                        &format!("Invalid smtp server {} {}", host.text, p.text),
                    ),
                },
            };
            if let Some(port) = port {
                g.mail.smtp_server = Some(super::model::SmtpServer {
                    host: host.text.clone(),
                    port,
                });
            }
        }),
        Keyword::new("smtp_helo_name", |g, n, d| {
            g.mail.smtp_helo_name = one_arg(n, d).map(|t| t.text.clone())
        }),
        Keyword::new("smtp_connect_timeout", |g, n, d| {
            let Some(t) = one_arg(n, d) else { return };
            match t.text.parse::<u32>() {
                Ok(0) => {
                    d.push(Diagnostic::warning(
                        &t.pos,
                        "smtp_conect_timeout must be greater than 0, setting to 1",
                    ));
                    g.mail.smtp_connect_timeout = Duration::from_secs(1);
                }
                Ok(s) => g.mail.smtp_connect_timeout = Duration::from_secs(u64::from(s)),
                Err(_) => d.push(Diagnostic::warning(
                    &t.pos,
                    format!(
                        "smtp_connect_timeout '{}' must be in [0, {}] - ignoring",
                        t.text,
                        u32::MAX
                    ),
                )),
            }
        }),
        Keyword::new("smtp_alert", |g, n, d| g.mail.smtp_alert = bool_arg(n, d)),
        Keyword::new("smtp_alert_vrrp", |g, n, d| {
            g.mail.smtp_alert_vrrp = bool_arg(n, d)
        }),
        Keyword::new("smtp_alert_checker", |g, n, d| {
            g.mail.smtp_alert_checker = bool_arg(n, d)
        }),
        Keyword::new("no_email_faults", |g, _, _| g.mail.no_email_faults = true),
        Keyword::new("no_checker_emails", |g, n, d| {
            g.mail.no_checker_emails = bool_arg(n, d).unwrap_or(true)
        }),
    ]
}

/// keepalived's process keywords, applied to vrrpd's threads (see `crate::tuning`).
fn process_keywords() -> Vec<Keyword<GlobalDraft>> {
    const RTTIME: &str = "RLIMIT_RTTIME is per process: one limit, the largest of the sides that are or may go real-time, binds every real-time thread, and reaching the hard limit kills the whole daemon (keepalived restarts a killed child)";
    const NO_SWAP: &str = "mlockall(2) is per process: vrrpd is one process, so this locks the whole daemon (VRRP, health checks and balancer)";
    vec![
        Keyword::new("vrrp_priority", |g, n, d| g.process.nice(Side::Vrrp, n, d)),
        Keyword::new("checker_priority", |g, n, d| {
            g.process.nice(Side::Checker, n, d)
        }),
        Keyword::new("vrrp_rt_priority", |g, n, d| {
            g.process.rt_priority(Side::Vrrp, n, d)
        }),
        Keyword::new("checker_rt_priority", |g, n, d| {
            g.process.rt_priority(Side::Checker, n, d)
        }),
        Keyword::new("vrrp_cpu_affinity", |g, n, d| {
            g.process.cpu_affinity(Side::Vrrp, n, d)
        }),
        Keyword::new("checker_cpu_affinity", |g, n, d| {
            g.process.cpu_affinity(Side::Checker, n, d)
        }),
        Keyword::partial("vrrp_rlimit_rttime", RTTIME, |g, n, d| {
            g.process.rlimit_rttime(Side::Vrrp, n, d)
        }),
        Keyword::partial("checker_rlimit_rttime", RTTIME, |g, n, d| {
            g.process.rlimit_rttime(Side::Checker, n, d)
        }),
        Keyword::partial("vrrp_rlimit_rtime", RTTIME, |g, n, d| {
            g.process.rlimit_rttime(Side::Vrrp, n, d)
        }),
        Keyword::partial("checker_rlimit_rtime", RTTIME, |g, n, d| {
            g.process.rlimit_rttime(Side::Checker, n, d)
        }),
        Keyword::partial("vrrp_no_swap", NO_SWAP, |g, _, _| {
            g.process.no_swap(Side::Vrrp)
        }),
        Keyword::partial("checker_no_swap", NO_SWAP, |g, _, _| {
            g.process.no_swap(Side::Checker)
        }),
        Keyword::new("max_auto_priority", |g, n, d| {
            g.process.max_auto_priority(n, d)
        }),
        Keyword::new("min_auto_priority_delay", |g, n, d| {
            g.process.min_auto_priority_delay(n, d)
        }),
        Keyword::new("umask", |g, n, d| g.process.umask(n, d)),
    ]
}

fn instance_table() -> &'static [Keyword<InstDraft>] {
    static T: OnceLock<Vec<Keyword<InstDraft>>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v: Vec<Keyword<InstDraft>> = vec![
            Keyword::new("state", |i, n, d| {
                i.state = one_arg(n, d).and_then(|t| match t.text.as_str() {
                    "MASTER" => Some(InitialState::Master),
                    "BACKUP" => Some(InitialState::Backup),
                    _ => bad_tok(t, d, "state must be MASTER or BACKUP"),
                })
            }),
            Keyword::new("interface", |i, n, d| {
                i.interface = one_arg(n, d).map(|t| t.text.clone());
                i.interface_pos = Some(n.pos().clone());
            }),
            Keyword::new("virtual_router_id", |i, n, d| {
                i.vrid = int_arg(n, d, 1, 255, "VRID").map(|v| v as u8);
                i.vrid_bad = i.vrid.is_none();
            }),
            Keyword::new("priority", |i, n, d| {
                i.priority = int_arg(n, d, 1, 255, "priority").map(|v| v as u8)
            }),
            Keyword::new("advert_int", |i, n, d| {
                let pos = n.pos().clone();
                i.advert_int = f64_arg(n, d, 0.01, 255.0).map(|v| (v, pos));
            }),
            Keyword::new("version", |i, n, d| {
                i.version = version_arg(n, d).map(|v| (v, n.pos().clone()))
            }),
            Keyword::new("nopreempt", |i, n, _| i.nopreempt = Some(n.pos().clone())),
            Keyword::new("preempt", |i, _, _| i.nopreempt = None),
            Keyword::new("preempt_delay", |i, n, d| {
                i.preempt_delay = secs_arg(n, d, 0.0, 1000.0)
            }),
            Keyword::new("authentication", inst_auth),
            Keyword::new("virtual_ipaddress", inst_vips),
            Keyword::new("virtual_ipaddress_excluded", |i, n, d| {
                for c in &n.children {
                    if let Some(v) = parse_vip(c, d) {
                        i.evips.push(v);
                    }
                }
            }),
            Keyword::new("mcast_src_ip", inst_src_ip),
            Keyword::new("unicast_src_ip", |i, n, d| {
                i.unicast_keyword.get_or_insert_with(|| n.pos().clone());
                inst_src_ip(i, n, d)
            }),
            Keyword::new("unicast_peer", inst_peers),
            Keyword::new("unicast_ttl", |i, n, d| {
                i.unicast_keyword.get_or_insert_with(|| n.pos().clone());
                i.unicast_ttl = int_arg(n, d, 1, 255, "unicast_ttl").map(|v| v as u8)
            }),
            Keyword::new("garp_master_delay", |i, n, d| {
                i.garp.master_delay = secs_arg(n, d, 0.0, 1000.0)
            }),
            Keyword::new("garp_master_repeat", |i, n, d| {
                i.garp.master_repeat = u32_arg(n, d, 1, 10000)
            }),
            Keyword::new("garp_master_refresh", |i, n, d| {
                i.garp.master_refresh = secs_arg(n, d, 0.0, 1e6)
            }),
            Keyword::new("garp_master_refresh_repeat", |i, n, d| {
                i.garp.master_refresh_repeat = u32_arg(n, d, 1, 10000)
            }),
            Keyword::new("garp_lower_prio_delay", |i, n, d| {
                i.garp.lower_prio_delay = secs_arg(n, d, 0.0, 1000.0)
            }),
            Keyword::new("garp_lower_prio_repeat", |i, n, d| {
                i.garp.lower_prio_repeat = u32_arg(n, d, 0, 10000)
            }),
            Keyword::new("garp_interval", |i, n, d| {
                i.garp.interval = secs_arg(n, d, 0.0, 1.0)
            }),
            Keyword::new("gna_interval", |i, n, d| {
                i.garp.na_interval = secs_arg(n, d, 0.0, 1.0)
            }),
            Keyword::new("lower_prio_no_advert", |i, n, d| {
                i.garp.lower_prio_no_advert = bool_arg(n, d)
            }),
            Keyword::partial(
                "native_ipv6",
                "only checks that the addresses are IPv6",
                |i, n, _| i.native_ipv6 = Some(n.pos().clone()),
            ),
        ];
        v.extend::<[Keyword<InstDraft>; 27]>([
            Keyword::new("use_vmac", |i, n, d| i.use_vmac = Some(use_vmac(n, d))),
            Keyword::new("vmac_xmit_base", |i, _, _| i.vmac_xmit_base = true),
            Keyword::new("dont_track_primary", |i, _, _| i.dont_track_primary = true),
            Keyword::new("promote_secondaries", |i, _, _| i.promote_secondaries = true),
            Keyword::new("down_timer_adverts", |i, n, d| {
                i.down_timer_adverts = int_arg(n, d, 1, 100, "down_timer_adverts").map(|v| v as u8)
            }),
            Keyword::new("check_unicast_src", |i, _, _| i.check_unicast_src = true),
            Keyword::new("skip_check_adv_addr", |i, _, _| i.skip_check_adv_addr = true),
            Keyword::new("higher_prio_send_advert", |i, n, d| {
                i.higher_prio_send_advert = bool_arg(n, d).map(|b| (b, n.pos().clone()))
            }),
            Keyword::new("accept", |i, n, _| i.accept = Some((true, n.pos().clone()))),
            Keyword::new("no_accept", |i, n, _| {
                i.accept = Some((false, n.pos().clone()))
            }),
            Keyword::extension(
                "track_virtual_server",
                "a virtual server losing its quorum lowers the priority by the weight, or puts the instance in FAULT (weight 0)",
                |i, n, d| i.track_virtual_servers.extend(blocks::track_virtual_servers(n, d)),
            ),
            Keyword::partial(
                "strict_mode",
                "keepalived's configuration rules apply and no_accept is the default (nftables drop of the VIPs' traffic); no other RFC-strict receive checks",
                |i, n, d| i.strict = bool_arg(n, d),
            ),
            Keyword::new("track_script", |i, n, d| {
                i.track_scripts.extend(blocks::tracks(n, -254, 254, d))
            }),
            Keyword::new("track_interface", |i, n, d| {
                i.track_interfaces.extend(blocks::tracks(n, -254, 254, d))
            }),
            Keyword::new("track_file", |i, n, d| {
                i.track_files.extend(blocks::tracks(n, -254, 254, d))
            }),
            Keyword::new("track_process", |i, n, d| {
                i.track_processes.extend(blocks::tracks(n, -254, 254, d))
            }),
            Keyword::new("notify_master", |i, n, d| {
                i.notify.master = script_arg(i, n, d)
            }),
            Keyword::new("notify_backup", |i, n, d| {
                i.notify.backup = script_arg(i, n, d)
            }),
            Keyword::new("notify_fault", |i, n, d| {
                i.notify.fault = script_arg(i, n, d)
            }),
            Keyword::new("notify_stop", |i, n, d| {
                i.notify.stop = script_arg(i, n, d)
            }),
            Keyword::new("notify", |i, n, d| {
                i.notify.any = script_arg(i, n, d)
            }),
            Keyword::new("notify_master_rx_lower_pri", |i, n, d| {
                i.notify.master_rx_lower_pri = script_arg(i, n, d)
            }),
            Keyword::new("notify_priority_changes", |i, n, d| {
                i.notify_priority_changes = bool_arg(n, d)
            }),
            Keyword::new("smtp_alert", |i, n, d| i.smtp_alert = bool_arg(n, d)),
            Keyword::new(
                "virtual_routes",
                |i, n, d| {
                    for c in &n.children {
                        if let Some(r) = iproute::parse_route(c, true, d) {
                            i.route_ifaces.extend(IfaceRef::route(&r, c));
                            i.virtual_routes.push(r);
                        }
                    }
                },
            ),
            Keyword::new(
                "virtual_rules",
                |i, n, d| {
                    for c in &n.children {
                        if let Some(r) = iproute::parse_rule(c, d) {
                            i.route_ifaces.extend(IfaceRef::rule(&r, c));
                            i.virtual_rules.push(r);
                        }
                    }
                },
            ),
            Keyword::unsupported("lvs_sync_daemon_interface", "deprecated; vrrpd runs no LVS"),
        ]);
        v.extend(
            INSTANCE_UNSUPPORTED
                .iter()
                .map(|n| Keyword::unsupported(n, "the setting has no effect")),
        );
        v
    })
}

fn auth_table() -> &'static [Keyword<AuthDraft>] {
    static T: &[Keyword<AuthDraft>] = &[
        Keyword::new("auth_type", |a, n, d| {
            a.kind = one_arg(n, d).map(|t| (t.text.clone(), t.pos.clone()))
        }),
        Keyword::new("auth_pass", |a, n, d| {
            a.pass = one_arg(n, d).map(|t| t.text.clone())
        }),
    ];
    T
}

// ---------------------------------------------------------------- block handlers

fn top_global_defs(draft: &mut Draft, node: &Node, diags: &mut Diags) {
    for c in &node.children {
        dispatch(
            global_table(),
            Context::GlobalDefs,
            &mut draft.global,
            c,
            diags,
        );
    }
    draft.commands.append(&mut draft.global.scripts_used);
}

fn top_vrrp_instance(draft: &mut Draft, node: &Node, diags: &mut Diags) {
    let Some(name) = one_arg(node, diags) else {
        return;
    };
    if draft.instances.iter().any(|i| i.name == name.text) {
        diags.push(Diagnostic::error(
            &name.pos,
            format!("duplicate vrrp_instance `{}`", name.text),
        ));
        return;
    }
    let mut inst = InstDraft {
        name: name.text.clone(),
        pos: node.pos().clone(),
        state: None,
        interface: None,
        vrid: None,
        vrid_bad: false,
        priority: None,
        advert_int: None,
        version: None,
        nopreempt: None,
        preempt_delay: None,
        auth: None,
        vips: Vec::new(),
        evips: Vec::new(),
        src_ip: None,
        peers: Vec::new(),
        unicast_ttl: None,
        unicast_keyword: None,
        native_ipv6: None,
        garp: GarpDraft::default(),
        interface_pos: None,
        strict: None,
        track_scripts: Vec::new(),
        track_interfaces: Vec::new(),
        track_files: Vec::new(),
        track_processes: Vec::new(),
        track_virtual_servers: Vec::new(),
        use_vmac: None,
        vmac_xmit_base: false,
        dont_track_primary: false,
        promote_secondaries: false,
        down_timer_adverts: None,
        higher_prio_send_advert: None,
        check_unicast_src: false,
        skip_check_adv_addr: false,
        notify: Notify::default(),
        notify_priority_changes: None,
        smtp_alert: None,
        scripts_used: Vec::new(),
        virtual_routes: Vec::new(),
        virtual_rules: Vec::new(),
        route_ifaces: Vec::new(),
        accept: None,
    };
    for c in &node.children {
        dispatch(instance_table(), Context::VrrpInstance, &mut inst, c, diags);
    }
    if let Some(c) = node
        .children
        .iter()
        .find(|c| c.name() == "lvs_sync_daemon_interface")
    {
        diags.push(Diagnostic::warning(
            c.pos(),
            format!("({}) Specifying lvs_sync_daemon_interface against a vrrp is deprecated. Please use global lvs_sync_daemon", inst.name),
        ));
    }
    draft.commands.append(&mut inst.scripts_used);
    draft.instances.push(inst);
}

fn inst_auth(inst: &mut InstDraft, node: &Node, diags: &mut Diags) {
    let mut a = AuthDraft::default();
    for c in &node.children {
        dispatch(auth_table(), Context::Authentication, &mut a, c, diags);
    }
    inst.auth = Some((a, node.pos().clone()));
}

fn inst_src_ip(inst: &mut InstDraft, node: &Node, diags: &mut Diags) {
    if let Some(ip) = ip_arg(node, diags) {
        inst.src_ip = Some((ip, node.args[0].pos.clone()));
    }
}

fn inst_peers(inst: &mut InstDraft, node: &Node, diags: &mut Diags) {
    for c in &node.children {
        match c.name().parse::<IpAddr>() {
            Ok(ip) => inst.peers.push((ip, c.pos().clone())),
            Err(_) => diags.push(Diagnostic::error(
                c.pos(),
                format!("invalid unicast peer address `{}`", c.name()),
            )),
        }
        if let Some(a) = c.args.first() {
            diags.push(
                Diagnostic::warning(
                    &a.pos,
                    format!(
                        "unicast_peer option `{}` is not implemented yet; ignored",
                        a.text
                    ),
                )
                .not_flagged_by_keepalived(),
            );
        }
    }
}

fn inst_vips(inst: &mut InstDraft, node: &Node, diags: &mut Diags) {
    for c in &node.children {
        if let Some(v) = parse_vip(c, diags) {
            inst.vips.push((v, c.pos().clone()));
        }
    }
}

/// `ADDR[/LEN] [brd X] [dev IF] [scope S] [label L]`.
fn parse_vip(node: &Node, diags: &mut Diags) -> Option<VirtualAddress> {
    let (addr_s, len_s) = match node.name().split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (node.name(), None),
    };
    let Ok(addr) = addr_s.parse::<IpAddr>() else {
        return bad(
            node,
            diags,
            &format!("invalid virtual address `{}`", node.name()),
        );
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match len_s {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return bad(
                    node,
                    diags,
                    &format!("invalid prefix length `/{l}` (0..={max})"),
                )
            }
        },
    };
    let mut v = VirtualAddress {
        addr,
        prefix_len,
        broadcast: None,
        dev: None,
        scope: Scope::Global,
        label: None,
        no_track: false,
    };
    let mut it = node.args.iter();
    while let Some(opt) = it.next() {
        let takes_value = matches!(opt.text.as_str(), "brd" | "dev" | "scope" | "label");
        let val = if takes_value {
            match it.next() {
                Some(v) => v,
                None => {
                    diags.push(Diagnostic::error(
                        &opt.pos,
                        format!("`{}` needs a value", opt.text),
                    ));
                    return None;
                }
            }
        } else {
            opt
        };
        match opt.text.as_str() {
            "brd" => match val.text.parse() {
                Ok(b) if addr.is_ipv4() => v.broadcast = Some(b),
                _ => return bad_tok(val, diags, "brd needs an IPv4 address (IPv4 VIPs only)"),
            },
            "dev" => v.dev = Some(val.text.clone()),
            "label" => v.label = Some(val.text.clone()),
            "scope" => v.scope = parse_scope(val, diags)?,
            "no_track" => v.no_track = true,
            "track_group" | "preferred_lft" | "home" | "nodad" | "noprefixroute" | "autojoin"
            | "-" => {
                diags.push(
                    Diagnostic::warning(
                        &opt.pos,
                        format!(
                            "virtual_ipaddress option `{}` is not implemented yet; ignored",
                            opt.text
                        ),
                    )
                    .not_flagged_by_keepalived(),
                );
                if matches!(opt.text.as_str(), "track_group" | "preferred_lft") {
                    it.next();
                }
            }
            other => {
                let mut d = Diagnostic::error(
                    &opt.pos,
                    format!("unknown virtual_ipaddress option `{other}`"),
                );
                if let Some(s) = super::diag::suggest(other, ["brd", "dev", "scope", "label"]) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
                return None;
            }
        }
    }
    Some(v)
}

fn parse_scope(t: &Token, diags: &mut Diags) -> Option<Scope> {
    Some(match t.text.as_str() {
        "global" | "universe" => Scope::Global,
        "site" => Scope::Site,
        "link" => Scope::Link,
        "host" => Scope::Host,
        "nowhere" => Scope::Nowhere,
        s => match s.parse::<u8>() {
            Ok(n) => Scope::Other(n),
            Err(_) => {
                return bad_tok(
                    t,
                    diags,
                    "scope must be global, site, link, host, nowhere or 0..255",
                )
            }
        },
    })
}

// ---------------------------------------------------------------- resolution

/// A notify script argument (`"cmd args"` or unquoted words), remembered for script security.
fn script_arg(i: &mut InstDraft, n: &Node, d: &mut Diags) -> Option<String> {
    let first = one_arg(n, d)?;
    let cmd = std::iter::once(first.text.as_str())
        .chain(n.args[1..].iter().map(|a| a.text.as_str()))
        .collect::<Vec<_>>()
        .join(" ");
    i.scripts_used.push((cmd.clone(), n.pos().clone()));
    Some(cmd)
}

/// Script commands inside a virtual server (quorum_up/down, notify_up/down, misc_path).
fn scripts_in(node: &Node) -> Vec<(String, Pos)> {
    let mut out = Vec::new();
    for c in &node.children {
        if matches!(
            c.name(),
            "quorum_up" | "quorum_down" | "notify_up" | "notify_down" | "misc_path"
        ) {
            if let Some(a) = c.args.first() {
                out.push((a.text.clone(), c.pos().clone()));
            }
        }
        out.extend(scripts_in(c));
    }
    out
}

impl Draft {
    fn resolve(mut self, host: HostChecks, diags: &mut Diags) -> Config {
        self.cross_check(host, diags);
        let host_cpus = if host.cpus {
            super::process::online_cpus()
        } else {
            None
        };
        let process = std::mem::take(&mut self.global.process).resolve(host_cpus, diags);
        let g = &self.global;
        let mut global = GlobalDefs {
            router_id: g.router_id.clone(),
            ..GlobalDefs::default()
        };
        global.vrrp_version = g.vrrp_version.unwrap_or(Version::V2);
        global.garp = g.garp.resolve(&Garp::default(), (false, false));
        global.mcast_group4 = g.mcast_group4.unwrap_or(global.mcast_group4);
        global.mcast_group6 = g.mcast_group6.unwrap_or(global.mcast_group6);
        let lower_explicit = (
            g.garp.lower_prio_delay.is_some(),
            g.garp.lower_prio_repeat.is_some(),
        );
        global.script_security = g.script_security;
        global.script_user = g.script_user.clone();
        global.vrrp_strict = g.vrrp_strict;
        global.notify_fifo = g.notify_fifo.resolve("notify_fifo", diags);
        global.vrrp_notify_fifo = g.vrrp_notify_fifo.resolve("vrrp_notify_fifo", diags);
        global.lvs_notify_fifo = g.lvs_notify_fifo.resolve("lvs_notify_fifo", diags);
        global.vrrp_notify_priority_changes = g.notify_priority_changes;
        global.metrics_listen = g.metrics_listen;
        global.vrrp_startup_delay = g.startup_delay;
        global.net_namespace = g.net_namespace.clone();
        global.down_timer_adverts = g.down_timer_adverts.unwrap_or(3);
        global.higher_prio_send_advert = g.higher_prio_send_advert.unwrap_or(false);
        global.check_unicast_src = g.check_unicast_src;
        global.skip_check_adv_addr = g.skip_check_adv_addr;
        global.fifo_write_vrrp_states_on_reload = g.fifo_states_on_reload;
        global.mail = g.mail.clone();
        global.process = process;
        let instances: Vec<VrrpInstance> = self
            .instances
            .into_iter()
            .filter_map(|i| i.resolve(&global, lower_explicit, diags))
            .collect();
        global.lvs_sync_daemon = g
            .lvs_sync_daemon
            .as_ref()
            .and_then(|s| s.resolve(&instances, diags));
        Config {
            global,
            instances,
            scripts: self.scripts.into_iter().filter_map(|s| s.script).collect(),
            sync_groups: self.sync_groups.into_iter().map(|g| g.0).collect(),
            static_addresses: self.static_addresses,
            static_routes: self.static_routes,
            static_rules: self.static_rules,
            virtual_servers: with_ssl(self.virtual_servers, self.ssl.as_ref()),
            virtual_server_groups: self.virtual_server_groups,
            track_files: self.track_files,
            track_processes: self.track_processes,
            garp_groups: self.garp_groups,
            ssl: self.ssl,
            linkbeat_interfaces: self.linkbeat_interfaces,
        }
    }

    /// Checks across blocks, in keepalived's words where it has them.
    fn cross_check(&self, host: HostChecks, diags: &mut Diags) {
        if host.interfaces {
            let refs = self.instances.iter().flat_map(|i| &i.route_ifaces);
            for r in self.route_ifaces.iter().chain(refs) {
                if !interface_exists(&r.name) {
                    diags.push(Diagnostic::warning(
                        &r.pos,
                        format!(
                            "WARNING - interface {} for {} doesn't exist",
                            r.name, r.what
                        ),
                    ));
                }
            }
        }
        for i in &self.instances {
            for (t, pos) in &i.track_scripts {
                let ok = self
                    .scripts
                    .iter()
                    .any(|s| s.name == t.name && s.script.is_some());
                if !ok {
                    diags.push(Diagnostic::warning(
                        pos,
                        format!(
                            "({}) track script {} not found, ignoring...",
                            i.name, t.name
                        ),
                    ));
                }
            }
            for (t, pos) in &i.track_processes {
                if !self.track_processes.iter().any(|p| p.name == t.name) {
                    diags.push(Diagnostic::warning(
                        pos,
                        format!(
                            "({}) track process {} not found, ignoring...",
                            i.name, t.name
                        ),
                    ));
                }
            }
            if host.interfaces {
                if let (Some(ifname), Some(pos)) = (&i.interface, &i.interface_pos) {
                    if ifname == "lo" {
                        diags.push(Diagnostic::warning(
                            pos,
                            format!(
                                "({}) cannot use a loopback interface (lo) for vrrp - ignoring",
                                i.name
                            ),
                        ));
                    } else if !interface_exists(ifname) {
                        diags.push(Diagnostic::warning(
                            pos,
                            format!(
                                "WARNING - interface {ifname} for vrrp_instance {} doesn't exist",
                                i.name
                            ),
                        ));
                    }
                }
                for (t, pos) in &i.track_interfaces {
                    if !interface_exists(&t.name) {
                        diags.push(Diagnostic::warning(
                            pos,
                            format!("({}) tracked interface {} doesn't exist", i.name, t.name),
                        ));
                    }
                }
            }
        }
        for i in &self.instances {
            for (t, pos) in &i.track_virtual_servers {
                if !self
                    .virtual_servers
                    .iter()
                    .any(|vs| t.vs.matches(&vs.service.key))
                {
                    diags.push(Diagnostic::error(
                        pos,
                        format!(
                            "({}) track_virtual_server: no virtual_server {}",
                            i.name, t.vs
                        ),
                    ));
                }
            }
        }
        for (g, members, pos) in &self.sync_groups {
            let mut found = 0;
            for (m, mpos) in g.group.iter().zip(members) {
                if self.instances.iter().any(|i| &i.name == m) {
                    found += 1;
                } else {
                    diags.push(Diagnostic::warning(
                        mpos,
                        format!("Virtual router {m} specified in sync group {} doesn't exist - ignoring", g.name),
                    ));
                }
            }
            if found == 0 {
                diags.push(Diagnostic::warning(
                    pos,
                    format!("Sync group {} has no virtual router(s). removing", g.name),
                ));
            }
        }
        if host.scripts && !self.global.script_security {
            for (cmd, pos) in &self.commands {
                if let Some(path) = blocks::existing_script(cmd) {
                    // A warning: keepalived disables such scripts and still runs; `-t` exits 6.
                    diags.push(
                        Diagnostic::warning(
                            pos,
                            format!(
                                "SECURITY VIOLATION - scripts are being executed but script_security not enabled ({} would run as root)",
                                path.display()
                            ),
                        )
                        .with_help("add `enable_script_security` (and `script_user`) to global_defs")
                        .security(),
                    );
                }
            }
        }
    }
}

fn is_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(a) if a.is_unicast_link_local())
}

/// Does a network interface of this name exist in the current namespace?
/// An interface a route or rule names, where.
struct IfaceRef {
    name: String,
    pos: Pos,
    /// keepalived's word for the user: "VROUTE nexthop" or "rule".
    what: &'static str,
}

impl IfaceRef {
    fn route(r: &super::model::Route, at: &Node) -> Vec<Self> {
        let devs = r
            .dev
            .iter()
            .chain(r.nexthops.iter().filter_map(|n| n.dev.as_ref()));
        Self::all(devs, at, "VROUTE nexthop")
    }

    fn rule(r: &super::model::Rule, at: &Node) -> Vec<Self> {
        Self::all(r.iif.iter().chain(&r.oif), at, "rule")
    }

    fn all<'a>(
        names: impl Iterator<Item = &'a String>,
        at: &Node,
        what: &'static str,
    ) -> Vec<Self> {
        names
            .map(|n| Self {
                name: n.clone(),
                pos: at.pos().clone(),
                what,
            })
            .collect()
    }
}

fn interface_exists(name: &str) -> bool {
    !name.contains('/') && std::path::Path::new("/sys/class/net").join(name).exists()
}

impl InstDraft {
    fn resolve(
        self,
        global: &GlobalDefs,
        lower_explicit: (bool, bool),
        diags: &mut Diags,
    ) -> Option<VrrpInstance> {
        let name = &self.name;
        let errors_before = diags.0.iter().filter(|d| d.is_error()).count();
        let err =
            |diags: &mut Diags, pos: &Pos, msg: String| diags.push(Diagnostic::error(pos, msg));

        if self.vrid.is_none() && !self.vrid_bad {
            err(
                diags,
                &self.pos,
                format!("({name}) the virtual router id must be set"),
            );
        }
        if self.interface.is_none() {
            diags.push(
                Diagnostic::error(&self.pos, format!("({name}) no `interface` given"))
                    .with_help("add `interface IFNAME` to the vrrp_instance"),
            );
        }

        // Address family: the first VIP decides, as in keepalived.
        let v6 = self
            .vips
            .first()
            .map(|(v, _)| v.addr.is_ipv6())
            .or(self.src_ip.as_ref().map(|(ip, _)| ip.is_ipv6()))
            .unwrap_or(self.native_ipv6.is_some());
        let fam = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        for (v, pos) in &self.vips {
            if v.addr.is_ipv6() != v6 {
                diags.push(
                    Diagnostic::error(
                        pos,
                        format!(
                            "({name}) address family must match VRRP instance [{}]",
                            v.addr
                        ),
                    )
                    .with_help(format!(
                        "this instance is {}; put {} addresses in a separate vrrp_instance",
                        fam(v6),
                        fam(!v6)
                    )),
                );
            }
        }
        if let (Some(pos), true) = (&self.unicast_keyword, self.peers.is_empty()) {
            diags.push(Diagnostic::warning(
                pos,
                format!("({name}) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration."),
            ));
        }
        if let Some((ip, pos)) = &self.src_ip {
            if ip.is_ipv6() != v6 {
                err(
                    diags,
                    pos,
                    format!("({name}) source address {ip} is not {}", fam(v6)),
                );
            }
        }
        for (ip, pos) in &self.peers {
            if ip.is_ipv6() != v6 {
                err(
                    diags,
                    pos,
                    format!("({name}) unicast peer {ip} is not {}", fam(v6)),
                );
            }
        }

        let strict_mode = self.strict.unwrap_or(global.vrrp_strict);
        if self.vips.is_empty() {
            let need = if strict_mode { "required" } else { "sensible" };
            diags.push(Diagnostic::warning(
                &self.pos,
                format!("({name}) No VIP specified; at least one is {need}"),
            ));
        }
        if let (true, Some((v, pos))) = (strict_mode && v6, self.vips.first()) {
            if !is_link_local(v.addr) {
                diags.push(Diagnostic::warning(
                    pos,
                    format!("({name}) the first IPv6 VIP address must be link local"),
                ));
            }
        }

        let version = match self.version {
            Some((Version::V2, pos)) if v6 && strict_mode => {
                diags.push(Diagnostic::warning(
                    &pos,
                    format!("({name}) cannot use IPv6 with VRRP version 2; setting version 3"),
                ));
                Version::V3
            }
            Some((Version::V2, pos)) if v6 => {
                diags.push(
                    Diagnostic::error(
                        &pos,
                        format!("({name}) VRRP version 2 is not defined for IPv6"),
                    )
                    .with_help("use `version 3` (RFC 5798) for IPv6 instances")
                    .not_flagged_by_keepalived(),
                );
                Version::V2
            }
            Some((v, _)) => v,
            None if v6 && global.vrrp_version == Version::V2 => {
                diags.push(
                    Diagnostic::warning(
                        &self.pos,
                        format!("({name}) IPv6 instance uses VRRP version 3"),
                    )
                    .with_help("VRRPv2 is IPv4 only; set `version 3` to silence this")
                    .not_flagged_by_keepalived(),
                );
                Version::V3
            }
            None => global.vrrp_version,
        };

        let mut state = self.state.unwrap_or(InitialState::Backup);
        let priority = self.priority.unwrap_or(if state == InitialState::Master {
            255
        } else {
            100
        });
        // RFC 5798 §6.4.1: only the address owner starts as Master.
        if strict_mode && (state == InitialState::Master) != (priority == 255) {
            diags.push(Diagnostic::warning(
                &self.pos,
                format!("({name}) State MASTER must match being address owner"),
            ));
            state = if priority == 255 {
                InitialState::Master
            } else {
                InitialState::Backup
            };
        }
        let mut nopreempt = self.nopreempt.is_some();
        let np_pos = self.nopreempt.as_ref().unwrap_or(&self.pos);
        if nopreempt && priority == 255 {
            diags.push(Diagnostic::warning(
                np_pos,
                format!(
                    "({name}) nopreempt is incompatible with priority 255. resetting nopreempt"
                ),
            ));
            nopreempt = false;
        } else if nopreempt && state == InitialState::Master {
            diags.push(Diagnostic::warning(
                np_pos,
                format!("({name}) Warning - nopreempt will not work with initial state MASTER - clearing"),
            ));
            nopreempt = false;
        }
        if priority == 255 && state == InitialState::Backup && !strict_mode {
            diags.push(
                Diagnostic::warning(
                    &self.pos,
                    format!("({name}) priority 255 (address owner) with state BACKUP"),
                )
                .with_help(
                    "the owner always becomes Master; use `state MASTER` or a lower priority",
                )
                .not_flagged_by_keepalived(),
            );
        }

        let advert_int = match (self.advert_int, version) {
            (None, _) => 100,
            (Some((s, pos)), Version::V2) => {
                let whole = s.round().max(1.0);
                if whole != s {
                    diags.push(Diagnostic::warning(
                        &pos,
                        format!("({name}) VRRPv2 advertisement interval {s}s must be an integer. rounding to {whole}s"),
                    ));
                }
                (whole * 100.0) as u16
            }
            (Some((s, pos)), Version::V3) => {
                if s > 40.95 {
                    err(
                        diags,
                        &pos,
                        format!("({name}) VRRPv3 advertisement interval {s}s above 40.95s"),
                    );
                }
                (s * 100.0).round().clamp(1.0, 4095.0) as u16
            }
        };

        let higher_prio_send_advert = match self.higher_prio_send_advert {
            Some((true, pos)) if strict_mode => {
                diags.push(Diagnostic::warning(
                    &pos,
                    format!("({name}) strict mode requires higher_prio_send_advert to be clear. resetting"),
                ));
                false
            }
            Some((b, _)) => b,
            None => global.higher_prio_send_advert && !strict_mode,
        };
        // keepalived: no_accept by default under strict mode, never for the owner.
        let accept = match self.accept {
            Some((true, pos)) if strict_mode && version == Version::V2 => {
                diags.push(Diagnostic::warning(
                    &pos,
                    format!("({name}) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"),
                ));
                false
            }
            Some((a, _)) => a,
            None => !strict_mode,
        } || priority == 255;
        let auth = match self.auth {
            Some((_, pos)) if strict_mode => {
                diags.push(Diagnostic::warning(
                    &pos,
                    format!("({name}) Strict mode does not support authentication. Ignoring."),
                ));
                None
            }
            a => a,
        };
        let authentication = match auth {
            None => None,
            Some((a, pos)) => {
                match a.kind {
                    None => {
                        err(
                            diags,
                            &pos,
                            format!("({name}) authentication needs `auth_type PASS`"),
                        );
                        None
                    }
                    Some((k, kpos)) if k == "AH" => {
                        diags.push(
                            Diagnostic::error(
                                &kpos,
                                format!("({name}) auth_type AH is not supported by vrrpd"),
                            )
                            .with_help("use `auth_type PASS` or remove the authentication block")
                            .not_flagged_by_keepalived(),
                        );
                        None
                    }
                    Some((k, kpos)) if k != "PASS" => {
                        err(
                            diags,
                            &kpos,
                            format!("({name}) unknown auth_type `{k}` (PASS or AH)"),
                        );
                        None
                    }
                    Some(_) if version == Version::V3 => {
                        diags.push(Diagnostic::warning(
                        &pos,
                        format!("({name}) VRRP version 3 does not support authentication. Ignoring."),
                    ));
                        None
                    }
                    Some(_) => match a.pass {
                        None => {
                            err(
                                diags,
                                &pos,
                                format!("({name}) auth_type PASS needs `auth_pass`"),
                            );
                            None
                        }
                        Some(p) => {
                            if p.len() > 8 {
                                diags.push(Diagnostic::warning(
                                &pos,
                                format!("({name}) auth_pass longer than 8 characters: only the first 8 are used"),
                            ));
                            }
                            Some(Authentication::Pass(p))
                        }
                    },
                }
            }
        };

        if diags.0.iter().filter(|d| d.is_error()).count() > errors_before {
            return None;
        }
        Some(VrrpInstance {
            name: self.name,
            state,
            interface: self.interface.unwrap_or_default(),
            virtual_router_id: self.vrid.unwrap_or(0),
            priority,
            advert_int,
            version,
            nopreempt,
            preempt_delay: self.preempt_delay.unwrap_or(Duration::ZERO),
            authentication,
            virtual_ipaddress: self.vips.into_iter().map(|(v, _)| v).collect(),
            virtual_ipaddress_excluded: self.evips,
            src_ip: self.src_ip.map(|(ip, _)| ip),
            unicast_peers: self.peers.into_iter().map(|(ip, _)| ip).collect(),
            unicast_ttl: self.unicast_ttl.unwrap_or(255),
            garp: self.garp.resolve(&global.garp, lower_explicit),
            track_scripts: self.track_scripts.into_iter().map(|t| t.0).collect(),
            track_interfaces: self.track_interfaces.into_iter().map(|t| t.0).collect(),
            track_files: self.track_files.into_iter().map(|t| t.0).collect(),
            track_processes: self.track_processes.into_iter().map(|t| t.0).collect(),
            use_vmac: self.use_vmac,
            vmac_xmit_base: self.vmac_xmit_base,
            dont_track_primary: self.dont_track_primary,
            promote_secondaries: self.promote_secondaries,
            down_timer_adverts: self.down_timer_adverts.unwrap_or(global.down_timer_adverts),
            higher_prio_send_advert,
            check_unicast_src: self.check_unicast_src || global.check_unicast_src,
            skip_check_adv_addr: self.skip_check_adv_addr || global.skip_check_adv_addr,
            track_virtual_servers: self
                .track_virtual_servers
                .into_iter()
                .map(|t| t.0)
                .collect(),
            notify: self.notify,
            notify_priority_changes: self
                .notify_priority_changes
                .unwrap_or(global.vrrp_notify_priority_changes),
            smtp_alert: self.smtp_alert,
            strict_mode,
            accept,
            virtual_routes: self.virtual_routes,
            virtual_rules: self.virtual_rules,
            source: Some(SourceRef {
                file: self.pos.file.to_path_buf(),
                line: self.pos.line,
                col: self.pos.col,
            }),
        })
    }
}

// ---------------------------------------------------------------- argument helpers

fn bad<T>(node: &Node, diags: &mut Diags, msg: &str) -> Option<T> {
    let pos = node.args.first().map_or(node.pos(), |t| &t.pos);
    diags.push(Diagnostic::error(pos, msg));
    None
}

fn bad_tok<T>(t: &Token, diags: &mut Diags, msg: &str) -> Option<T> {
    diags.push(Diagnostic::error(&t.pos, msg));
    None
}

fn one_arg<'a>(node: &'a Node, diags: &mut Diags) -> Option<&'a Token> {
    let a = node.args.first();
    if a.is_none() {
        diags.push(Diagnostic::error(
            node.pos(),
            format!("`{}` needs a value", node.name()),
        ));
    }
    a
}

fn f64_arg(node: &Node, diags: &mut Diags, min: f64, max: f64) -> Option<f64> {
    let t = one_arg(node, diags)?;
    match t.text.parse::<f64>() {
        Ok(v) if v.is_finite() && (min..=max).contains(&v) => Some(v),
        Ok(_) => bad_tok(
            t,
            diags,
            &format!("number '{}' outside range [{min}, {max}]", t.text),
        ),
        Err(_) => bad_tok(t, diags, &format!("`{}` is not a number", t.text)),
    }
}

fn secs_arg(node: &Node, diags: &mut Diags, min: f64, max: f64) -> Option<Duration> {
    f64_arg(node, diags, min, max).map(Duration::from_secs_f64)
}

fn int_arg(node: &Node, diags: &mut Diags, min: i64, max: i64, what: &str) -> Option<i64> {
    let t = one_arg(node, diags)?;
    match t.text.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Some(v),
        _ => bad_tok(
            t,
            diags,
            &format!(
                "{what} '{}' not valid - must be between {min} & {max}",
                t.text
            ),
        ),
    }
}

fn u32_arg(node: &Node, diags: &mut Diags, min: i64, max: i64) -> Option<u32> {
    int_arg(node, diags, min, max, node.name()).map(|v| v as u32)
}

fn bool_arg(node: &Node, diags: &mut Diags) -> Option<bool> {
    match node.args.first().map(|t| t.text.as_str()) {
        None | Some("true" | "on" | "yes") => Some(true),
        Some("false" | "off" | "no") => Some(false),
        Some(_) => bad(node, diags, "expected true/false, on/off or yes/no"),
    }
}

fn version_arg(node: &Node, diags: &mut Diags) -> Option<Version> {
    match one_arg(node, diags)?.text.as_str() {
        "2" => Some(Version::V2),
        "3" => Some(Version::V3),
        _ => bad(node, diags, "VRRP version must be 2 or 3"),
    }
}

fn ip_arg(node: &Node, diags: &mut Diags) -> Option<IpAddr> {
    let t = one_arg(node, diags)?;
    match t.text.parse() {
        Ok(ip) => Some(ip),
        Err(_) => bad_tok(t, diags, &format!("invalid IP address `{}`", t.text)),
    }
}

/// Every keyword table of this module as (context, [(keyword, status)]), for the
/// compatibility table.
pub fn registry() -> Vec<(&'static str, Vec<(&'static str, super::keywords::Status)>)> {
    fn rows<T>(t: &[Keyword<T>]) -> Vec<(&'static str, super::keywords::Status)> {
        t.iter().map(|k| (k.name, k.status)).collect()
    }
    vec![
        ("Top level", rows(top_table())),
        ("global_defs", rows(global_table())),
        ("vrrp_instance", rows(instance_table())),
        ("authentication", rows(auth_table())),
    ]
}

/// keepalived's `SSL` block configures every `SSL_GET` checker that has no TLS settings.
fn with_ssl(
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

/// `use_vmac [NAME] [MAC]`: a word that reads as a MAC is the MAC, anything else the name.
fn use_vmac(n: &Node, d: &mut Diags) -> UseVmac {
    let mut v = UseVmac {
        name: None,
        mac: None,
    };
    for a in &n.args {
        let bytes: Vec<u8> = a
            .text
            .split(':')
            .filter_map(|b| u8::from_str_radix(b, 16).ok())
            .collect();
        if a.text.contains(':') {
            match <[u8; 6]>::try_from(bytes) {
                Ok(mac) => v.mac = Some(mac),
                Err(_) => d.push(Diagnostic::error(
                    &a.pos,
                    format!("invalid MAC address `{}`", a.text),
                )),
            }
        } else if a.text.len() > 15 {
            d.push(Diagnostic::error(
                &a.pos,
                format!("interface name `{}` is longer than 15 characters", a.text),
            ));
        } else {
            v.name = Some(a.text.clone());
        }
    }
    v
}
