//! `vrrp_instance NAME { … }`: its table, its draft, and the checks keepalived's
//! `vrrp_complete_instance` makes once the whole block is read, one step per concern.

use std::net::IpAddr;
use std::time::Duration;

use vrrp_proto::packet::Version;

use super::global::GarpDraft;
use super::track::{self, Kind};
use super::{vip, IfaceRef};
use crate::diag::{Diagnostic, Pos, Spanned};
use crate::iproute;
use crate::model::{
    Authentication, GlobalDefs, InitialState, Notify, SourceRef, Track, TrackVirtualServer,
    UnicastChecksum, UseVmac, VirtualAddress, VrrpInstance,
};
use crate::registry::{
    kw, ok, parse_int, skip, when_missing, Arg, Cx, Keyword, Status, WhenMissing,
};
use crate::tree::Node;

/// Authentication as written.
#[derive(Debug, Default)]
pub struct AuthDraft {
    pub kind: Option<Spanned<String>>,
    pub pass: Option<Spanned<String>>,
}

/// An instance as written (unset values inherit or default when it resolves).
pub struct InstDraft {
    pub name: Spanned<String>,
    pos: Pos,
    /// The block's `}`, where keepalived reports what it checks at the end.
    pub close: Option<Pos>,
    state: Option<Spanned<InitialState>>,
    pub interface: Option<Spanned<String>>,
    vrid: Option<u8>,
    priority: Option<u8>,
    advert_int: Option<Spanned<f64>>,
    version: Option<Spanned<Version>>,
    nopreempt: Option<Pos>,
    preempt_delay: Option<Spanned<Duration>>,
    auth: Option<(AuthDraft, Pos)>,
    vips: Vec<Spanned<VirtualAddress>>,
    evips: Vec<VirtualAddress>,
    src_ip: Option<Spanned<IpAddr>>,
    peers: Vec<Spanned<IpAddr>>,
    unicast_ttl: Option<u8>,
    /// Where a unicast-only keyword (`unicast_src_ip`, `unicast_ttl`, `unicast_peer`) was given.
    unicast_keyword: Option<Pos>,
    native_ipv6: Option<Pos>,
    garp: GarpDraft,
    strict: Option<bool>,
    pub track_scripts: Vec<Spanned<Track>>,
    pub track_interfaces: Vec<Spanned<Track>>,
    pub track_files: Vec<Spanned<Track>>,
    pub track_processes: Vec<Spanned<Track>>,
    pub track_virtual_servers: Vec<Spanned<TrackVirtualServer>>,
    use_vmac: Option<UseVmac>,
    vmac_xmit_base: bool,
    dont_track_primary: bool,
    promote_secondaries: bool,
    down_timer_adverts: Option<u8>,
    higher_prio_send_advert: Option<Spanned<bool>>,
    check_unicast_src: bool,
    skip_check_adv_addr: bool,
    unicast_checksum: Option<UnicastChecksum>,
    notify: Notify,
    notify_priority_changes: Option<bool>,
    smtp_alert: Option<bool>,
    /// Script commands, for the host's script checks.
    pub scripts_used: Vec<Spanned<String>>,
    virtual_routes: Vec<crate::model::Route>,
    virtual_rules: Vec<crate::model::Rule>,
    /// Interfaces the routes and rules name, checked with the host's.
    pub route_ifaces: Vec<IfaceRef>,
    accept: Option<Spanned<bool>>,
}

impl InstDraft {
    pub fn new(name: Spanned<String>, pos: &Pos) -> Self {
        Self {
            name,
            pos: pos.clone(),
            close: None,
            state: None,
            interface: None,
            vrid: None,
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
            unicast_checksum: None,
            skip_check_adv_addr: false,
            notify: Notify::default(),
            notify_priority_changes: None,
            smtp_alert: None,
            scripts_used: Vec::new(),
            virtual_routes: Vec::new(),
            virtual_rules: Vec::new(),
            route_ifaces: Vec::new(),
            accept: None,
        }
    }

    fn iname(&self) -> &str {
        &self.name.value
    }
}

const NO_EFFECT: &str = "the setting has no effect";
const STRICT: &str = "keepalived's configuration rules apply and no_accept is the default (nftables drop of the VIPs' traffic); no other RFC-strict receive checks";

/// `vrrp_instance`.
pub static TABLE: &[Keyword<InstDraft>] = &[
    ok("state", Arg::Custom("MASTER|BACKUP", state)),
    ok("interface", Arg::Custom("IFNAME", interface)),
    ok(
        "virtual_router_id",
        Arg::Custom("1..255", |i, n, cx| {
            let Some(t) = first(n, cx) else { return };
            match parse_int(&t.text).filter(|v| (1..=255).contains(v)) {
                Some(v) => i.vrid = Some(v as u8),
                None => cx.push(Diagnostic::warning(
                    &t.pos,
                    format!("({}): VRID '{}' not valid - must be between 1 & 255", i.iname(), t.text),
                )),
            }
        }),
    ),
    ok(
        "priority",
        Arg::Custom("1..255", |i, n, cx| {
            let Some(t) = first(n, cx) else { return };
            match parse_int(&t.text).filter(|v| (1..=255).contains(v)) {
                Some(v) => i.priority = Some(v as u8),
                None => {
                    cx.push(Diagnostic::warning(
                        &t.pos,
                        format!("({}) Priority not valid! must be between 1 & 255. Using default 100", i.iname()),
                    ));
                    i.priority = Some(100);
                }
            }
        }),
    ),
    ok(
        "advert_int",
        Arg::Custom("SECONDS 0.01..255", |i, n, cx| {
            let Some(t) = first(n, cx) else { return };
            match crate::registry::read_secs(t, &mut cx.diags).filter(|v| (0.01..=255.0).contains(v)) {
                Some(v) => i.advert_int = Some(Spanned::new(v, n.pos())),
                None => cx.push(Diagnostic::warning(
                    &t.pos,
                    format!("({}) Advert interval ({}) not valid! Must be > 0 - ignoring", i.iname(), t.text),
                )),
            }
        }),
    ),
    ok(
        "version",
        Arg::Custom("2|3", |i, n, cx| {
            let Some(t) = first(n, cx) else { return };
            match &*t.text {
                "2" => i.version = Some(Spanned::new(Version::V2, n.pos())),
                "3" => i.version = Some(Spanned::new(Version::V3, n.pos())),
                _ => cx.push(Diagnostic::warning(
                    &t.pos,
                    format!("({}): Version must be either 2 or 3", i.iname()),
                )),
            }
        }),
    ),
    ok("nopreempt", Arg::Flag(|i, p| i.nopreempt = Some(p.clone()))),
    ok("preempt", Arg::Flag(|i, _| i.nopreempt = None)),
    ok(
        "preempt_delay",
        Arg::Secs(0.0, 1000.0, |i, v| i.preempt_delay = Some(v)),
    ),
    ok("authentication", Arg::Block("authentication", authentication)),
    ok("virtual_ipaddress", Arg::Items("ADDRESS…", |i, n, cx| vips(i, n, cx, false))),
    ok(
        "virtual_ipaddress_excluded",
        Arg::Items("ADDRESS…", |i, n, cx| vips(i, n, cx, true)),
    ),
    ok("mcast_src_ip", Arg::Custom("IP", src_ip)),
    ok(
        "unicast_src_ip",
        Arg::Custom("IP", |i, n, cx| {
            i.unicast_keyword.get_or_insert_with(|| n.pos().clone());
            src_ip(i, n, cx)
        }),
    ),
    ok("unicast_peer", Arg::Items("IP…", peers)),
    ok(
        "unicast_ttl",
        Arg::Int(1, 255, |i, v| {
            i.unicast_keyword.get_or_insert(v.pos);
            i.unicast_ttl = Some(v.value as u8)
        }),
    ),
    ok(
        "garp_master_delay",
        Arg::Int(0, 4294, |i, v| {
            i.garp.master_delay = Some(Duration::from_secs(v.value as u64))
        }),
    ),
    ok(
        "garp_master_repeat",
        Arg::Custom("COUNT", |i, n, cx| {
            i.garp.master_repeat = repeats(i.iname(), n, cx).or(i.garp.master_repeat)
        }),
    ),
    ok(
        "garp_master_refresh",
        Arg::Int(0, u32::MAX as i64, |i, v| {
            i.garp.master_refresh = Some(Duration::from_secs(v.value as u64))
        }),
    ),
    ok(
        "garp_master_refresh_repeat",
        Arg::Custom("COUNT", |i, n, cx| {
            i.garp.master_refresh_repeat =
                repeats(i.iname(), n, cx).or(i.garp.master_refresh_repeat)
        }),
    ),
    ok(
        "garp_lower_prio_delay",
        Arg::Int(0, 4294, |i, v| {
            i.garp.lower_prio_delay = Some(Duration::from_secs(v.value as u64))
        }),
    ),
    ok(
        "garp_lower_prio_repeat",
        Arg::Custom("0..2147483647", |i, n, cx| {
            let name = i.iname().to_string();
            let invalid = |w: &str| format!("({name}): Invalid garp_lower_prio_repeat '{w}'");
            if let Some(v) = super::read_count(n, cx, i32::MAX as u64, &invalid, None) {
                i.garp.lower_prio_repeat = Some(v.value as u32);
            }
        }),
    ),
    ok(
        "lower_prio_no_advert",
        Arg::Bool(|i, v| i.garp.lower_prio_no_advert = Some(v.value)),
    ),
    kw(
        "native_ipv6",
        Status::Partial("only checks that the addresses are IPv6"),
        Arg::Flag(|i, p| i.native_ipv6 = Some(p.clone())),
    ),
    ok(
        "use_vmac",
        Arg::Custom("[IFNAME] [MAC]", |i, n, cx| i.use_vmac = Some(use_vmac(i.use_vmac.take(), n, cx))),
    ),
    ok("vmac_xmit_base", Arg::Flag(|i, _| i.vmac_xmit_base = true)),
    ok("dont_track_primary", Arg::Flag(|i, _| i.dont_track_primary = true)),
    ok("promote_secondaries", Arg::Flag(|i, _| i.promote_secondaries = true)),
    ok(
        "down_timer_adverts",
        Arg::Int(1, 100, |i, v| i.down_timer_adverts = Some(v.value as u8)),
    ),
    ok(
        "check_unicast_src",
        Arg::Flag(|i, p| {
            // A unicast keyword, to keepalived (VRRP_FLAG_UNICAST_CONFIGURED).
            i.unicast_keyword.get_or_insert_with(|| p.clone());
            i.check_unicast_src = true
        }),
    ),
    ok("skip_check_adv_addr", Arg::Flag(|i, _| i.skip_check_adv_addr = true)),
    ok(
        "higher_prio_send_advert",
        Arg::Bool(|i, v| i.higher_prio_send_advert = Some(v)),
    ),
    ok("accept", Arg::Flag(|i, p| i.accept = Some(Spanned::new(true, p)))),
    ok("no_accept", Arg::Flag(|i, p| i.accept = Some(Spanned::new(false, p)))),
    kw(
        "track_virtual_server",
        Status::Extension("a virtual server losing its quorum lowers the priority by the weight, or puts the instance in FAULT (weight 0)"),
        Arg::Items("IP PORT | fwmark N | group NAME [weight N]…", |i, n, cx| {
            i.track_virtual_servers.extend(track::track_virtual_servers(n, cx))
        }),
    ),
    kw("strict_mode", Status::Partial(STRICT), Arg::Bool(|i, v| i.strict = Some(v.value))),
    ok(
        "track_script",
        Arg::Items("NAME [weight N [reverse|noreverse]]…", |i, n, cx| {
            let name = i.name.value.clone();
            i.track_scripts.extend(track::tracks(n, Kind::Script, &name, cx))
        }),
    ),
    ok(
        "track_interface",
        Arg::Items("IFNAME [weight N [reverse]]…", |i, n, cx| {
            let name = i.name.value.clone();
            i.track_interfaces.extend(track::tracks(n, Kind::Interface, &name, cx))
        }),
    ),
    ok(
        "track_file",
        Arg::Items("NAME [weight N [reverse|noreverse]]…", |i, n, cx| {
            let name = i.name.value.clone();
            i.track_files.extend(track::tracks(n, Kind::File, &name, cx))
        }),
    ),
    ok(
        "track_process",
        Arg::Items("NAME [weight N [reverse|noreverse]]…", |i, n, cx| {
            let name = i.name.value.clone();
            i.track_processes.extend(track::tracks(n, Kind::Process, &name, cx))
        }),
    ),
    ok("notify_master", Arg::Custom(NOTIFY, |i, n, cx| notify(i, n, cx, |s| &mut s.master))),
    ok("notify_backup", Arg::Custom(NOTIFY, |i, n, cx| notify(i, n, cx, |s| &mut s.backup))),
    ok("notify_fault", Arg::Custom(NOTIFY, |i, n, cx| notify(i, n, cx, |s| &mut s.fault))),
    ok("notify_stop", Arg::Custom(NOTIFY, |i, n, cx| notify(i, n, cx, |s| &mut s.stop))),
    ok("notify", Arg::Custom(NOTIFY, |i, n, cx| notify(i, n, cx, |s| &mut s.any))),
    ok(
        "notify_master_rx_lower_pri",
        Arg::Custom(NOTIFY, |i, n, cx| {
            notify(i, n, cx, |s| &mut s.master_rx_lower_pri)
        }),
    ),
    ok(
        "notify_priority_changes",
        Arg::Bool(|i, v| i.notify_priority_changes = Some(v.value)),
    ),
    ok("smtp_alert", Arg::Bool(|i, v| i.smtp_alert = Some(v.value))),
    ok(
        "virtual_routes",
        Arg::Items("ROUTE…", |i, n, cx| {
            for c in &n.children {
                if let Some(r) = iproute::parse_route(c, true, cx) {
                    i.route_ifaces.extend(IfaceRef::route(&r, c));
                    i.virtual_routes.push(r);
                }
            }
        }),
    ),
    ok(
        "virtual_rules",
        Arg::Items("RULE…", |i, n, cx| {
            for c in &n.children {
                if let Some(r) = iproute::parse_rule(c, cx) {
                    i.route_ifaces.extend(IfaceRef::rule(&r, c));
                    i.virtual_rules.push(r);
                }
            }
        }),
    ),
    kw(
        "lvs_sync_daemon_interface",
        Status::Unsupported("deprecated by keepalived; vrrpd runs no IPVS sync daemon"),
        Arg::Custom("IFNAME", |i, n, cx| {
            cx.push(Diagnostic::warning(
                n.pos(),
                format!("({}) Specifying lvs_sync_daemon_interface against a vrrp is deprecated. Please use global lvs_sync_daemon", i.iname()),
            ));
            // keepalived then reads the interface unchecked.
            if n.args.is_empty() {
                crate::registry::missing_value(n, &mut cx.diags);
            }
        }),
    ),
    skip("use_vmac_addr", "the addresses stay on the instance's interface"),
    skip("use_ipvlan", "vrrpd makes no ipvlan interfaces"),
    skip("unicast_fault_no_peer", NO_EFFECT),
    ok(
        "old_unicast_checksum",
        Arg::Custom("[never]", |i, n, cx| {
            i.unicast_keyword.get_or_insert_with(|| n.pos().clone());
            if let Some(c) = unicast_checksum(i.iname(), n, cx) {
                i.unicast_checksum = Some(c);
            }
        }),
    ),
    // keepalived reads the VRF's name unchecked.
    when_missing(WhenMissing::Abort, skip("vrf", "vrrpd does not bind to a VRF")),
    kw(
        "track_bfd",
        Status::Unsupported("vrrpd has no BFD"),
        Arg::Custom("{ NAME… }", |i, n, cx| crate::registry::bfd_refs(i.iname(), n, cx)),
    ),
    // keepalived reads the address unchecked.
    when_missing(
        WhenMissing::Abort,
        skip("mcast_dst_ip", "adverts go to vrrp_mcast_group4 / vrrp_mcast_group6"),
    ),
    skip("track_src_ip", NO_EFFECT),
    kw(
        "linkbeat_use_polling",
        Status::Unsupported("vrrpd follows links through rtnetlink events"),
        Arg::Custom("", |i, n, cx| {
            // keepalived counts it (vrrp_linkbeat_handler), whatever follows.
            cx.push(Diagnostic::warning(
                n.pos(),
                format!("({}) 'linkbeat_use_polling' in vrrp instance deprecated - use linkbeat_interfaces block", i.iname()),
            ));
        }),
    ),
    when_missing(WhenMissing::Abort, skip("debug", NO_EFFECT)),
    skip("notify_deleted", "the instance's notify scripts are not told about its deletion"),
    kw("garp_extra_if", Status::Unsupported(NO_EFFECT), Arg::Custom("[all] SECONDS", garp_extra_if)),
    kw("vmac_garp_intvl", Status::Unsupported(NO_EFFECT), Arg::Custom("[all] SECONDS", garp_extra_if)),
    kw(
        "kernel_rx_buf_size",
        Status::Unsupported("vrrpd sizes its receive buffers itself"),
        Arg::Custom("BYTES", |i, n, cx| {
            // kernel_rx_buf_size_handler: one unsigned word, else one complaint.
            let good = matches!(&n.args[..], [a] if crate::registry::read_unsigned(&a.text, 0, u32::MAX.into()).is_ok());
            if !good {
                cx.push(Diagnostic::warning(
                    n.pos(),
                    format!("({}) invalid kernel_rx_buf_size specified", i.iname()),
                ));
            }
        }),
    ),
];

/// `garp_extra_if` (and its old name `vmac_garp_intvl`), which vrrpd does not act on, checked
/// as keepalived's `vrrp_garp_extra_if_handler` checks it: `all` and a time in seconds, in
/// any order; no time is an error.
fn garp_extra_if<'a>(i: &mut InstDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let (iname, what) = (i.iname(), n.name());
    if what == "vmac_garp_intvl" {
        cx.push(Diagnostic::warning(
            n.pos(),
            "Keyword \"vmac_garp_intvl\" is deprecated - please use \"garp_extra_if\"",
        ));
    }
    let mut time = false;
    for a in n.args.iter().filter(|a| a.text != "all") {
        if let Err(said) = crate::registry::read_unsigned(&a.text, 0, 86400) {
            cx.push(Diagnostic::warning(&a.pos, said));
            cx.push(Diagnostic::warning(
                &a.pos,
                format!("({iname}): {what} '{}' invalid - ignoring", a.text),
            ));
            return;
        }
        time = true;
    }
    if !time {
        cx.push(Diagnostic::warning(
            n.pos(),
            format!("({iname}): {what} specified without time - ignoring"),
        ));
    }
}

/// `garp_master_repeat` / `garp_master_refresh_repeat` of instance `iname`, as keepalived's
/// handlers read them (`vrrp_garp_rep_handler`): any unsigned count, 0 taken as 1.
fn repeats<'a>(iname: &str, n: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<u32> {
    let what = n.name();
    let invalid = |w: &str| format!("({iname}): {what} '{w}' invalid - ignoring");
    let zero = format!("({iname}): {what} must be greater than 0, setting to 1");
    super::read_count(n, cx, u32::MAX.into(), &invalid, Some(&zero)).map(|v| v.value as u32)
}

/// `authentication { auth_type PASS|AH; auth_pass PASSWORD }`.
pub static AUTH: &[Keyword<AuthDraft>] = &[
    ok(
        "auth_type",
        Arg::Custom("PASS|AH", |a, n, cx| {
            let Some(t) = first(n, cx) else { return };
            if matches!(&*t.text, "PASS" | "AH") {
                a.kind = Some(Spanned::new(t.text.to_string(), &t.pos));
            } else {
                cx.push(Diagnostic::warning(
                    &t.pos,
                    format!("unknown authentication type '{}'", t.text),
                ));
            }
        }),
    ),
    ok(
        "auth_pass",
        Arg::Custom("PASSWORD", |a, n, cx| {
            let Some(t) = first(n, cx) else { return };
            if t.text.len() > 8 {
                // keepalived says so here, on the auth_pass line, and keeps the first 8.
                cx.push(Diagnostic::warning(
                    &t.pos,
                    "Truncating auth_pass to 8 characters",
                ));
            }
            a.pass = Some(Spanned::new(t.text.to_string(), &t.pos));
        }),
    ),
];

/// The first word of a statement, or keepalived's missing-parameter abort.
fn first<'n, 'a>(n: &'n Node<'a>, cx: &mut Cx) -> Option<&'n crate::lexer::Token<'a>> {
    let t = n.args.first();
    if t.is_none() {
        crate::registry::missing_value(n, &mut cx.diags);
    }
    t
}

fn state<'a>(i: &mut InstDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(t) = first(n, cx) else { return };
    let name = i.iname().to_string();
    let s = match &*t.text {
        "MASTER" => InitialState::Master,
        "BACKUP"
            if i.state
                .as_ref()
                .is_some_and(|s| s.value == InitialState::Master) =>
        {
            cx.push(Diagnostic::warning(
                &t.pos,
                format!("({name}) state previously set as MASTER - ignoring BACKUP"),
            ));
            return;
        }
        "BACKUP" => InitialState::Backup,
        other => {
            // `state SLAVE`, `state EQUAL` ...: keepalived runs it as BACKUP.
            cx.push(Diagnostic::warning(
                &t.pos,
                format!("({name}) unknown state '{other}', defaulting to BACKUP"),
            ));
            InitialState::Backup
        }
    };
    i.state = Some(Spanned::new(s, n.pos()));
}

fn interface<'a>(i: &mut InstDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(t) = first(n, cx) else { return };
    if t.text.len() >= 16 {
        cx.push(Diagnostic::warning(
            &t.pos,
            format!("Interface name '{}' too long - ignoring", t.text),
        ));
        return;
    }
    i.interface = Some(Spanned::new(t.text.to_string(), n.pos()));
}

fn authentication<'a>(i: &mut InstDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let mut a = AuthDraft::default();
    crate::registry::dispatch_block(AUTH, "authentication", &mut a, n, cx);
    i.auth = Some((a, n.pos().clone()));
}

fn vips<'a>(i: &mut InstDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>, excluded: bool) {
    for c in &n.children {
        let Some(v) = vip::parse(c, cx) else { continue };
        i.route_ifaces.extend(super::IfaceRef::address(&v.value, c));
        if excluded {
            i.evips.push(v.value);
            continue;
        }
        // keepalived: the first address (or source address) sets the family; others are
        // dropped with a complaint.
        match i.family() {
            Some(v6) if v6 != v.value.addr.is_ipv6() => cx.push(Diagnostic::warning(
                &v.pos,
                format!(
                    "({}): address family must match VRRP instance [{}] - ignoring",
                    i.iname(),
                    c.name()
                ),
            )),
            _ => i.vips.push(v),
        }
    }
}

fn src_ip<'a>(i: &mut InstDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(t) = first(n, cx) else { return };
    let Some(ip) = crate::registry::sockaddr_ip(&t.text) else {
        cx.push(Diagnostic::warning(
            &t.pos,
            format!(
                "Configuration error: VRRP instance[{}] malformed src address[{}]. Skipping...",
                i.iname(),
                t.text
            ),
        ));
        return;
    };
    match i.family() {
        Some(v6) if v6 != ip.is_ipv6() => cx.push(Diagnostic::warning(
            &t.pos,
            format!("Configuration error: VRRP instance[{}] and src address[{}] MUST be of the same family !!! Skipping...", i.iname(), t.text),
        )),
        _ => i.src_ip = Some(Spanned::new(ip, &t.pos)),
    }
}

fn peers<'a>(i: &mut InstDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    i.unicast_keyword.get_or_insert_with(|| n.pos().clone());
    for c in &n.children {
        let Some(ip) = crate::registry::sockaddr_ip(c.name()) else {
            cx.push(Diagnostic::warning(
                c.pos(),
                format!(
                    "Configuration error: VRRP instance[{}] malformed unicast peer address[{}]. Skipping...",
                    i.iname(),
                    c.name()
                ),
            ));
            continue;
        };
        if i.family().is_some_and(|v6| v6 != ip.is_ipv6()) {
            cx.push(Diagnostic::warning(
                c.pos(),
                format!(
                    "Configuration error: VRRP instance[{}] and unicast peer address[{}] MUST be of the same family !!! Skipping...",
                    i.iname(),
                    c.name()
                ),
            ));
            continue;
        }
        peer_options(i.iname(), c, cx);
        i.peers.push(Spanned::new(ip, c.pos()));
    }
}

/// The words after a peer's address, read as keepalived's `alloc_vrrp_unicast_peer` reads
/// them: pairs of an option and its value (`min_ttl N`, `max_ttl N`, N in 0..=255). A word
/// left without a value (a second address on the line) is an error and ends the options; so
/// does an unknown option (with a good value). vrrpd checks the values but does not apply
/// them (keepalived drops adverts whose TTL is outside the range).
fn peer_options<'a>(iname: &str, c: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let (mut min, mut max) = (0, 255);
    for pair in c.args.chunks(2) {
        let [opt, value] = pair else {
            cx.push(Diagnostic::warning(
                &pair[0].pos,
                format!("({iname}) {} is missing a value", pair[0].text),
            ));
            break;
        };
        let ttl = match crate::registry::read_unsigned(&value.text, 0, 255) {
            Ok(ttl) => ttl,
            Err(said) => {
                cx.push(Diagnostic::warning(&value.pos, said));
                continue;
            }
        };
        match &*opt.text {
            "min_ttl" => min = ttl,
            "max_ttl" => max = ttl,
            o => {
                cx.push(Diagnostic::warning(
                    &opt.pos,
                    format!("({iname}) unknown unicast_peer option {o}"),
                ));
                break;
            }
        }
        cx.push(Diagnostic::notice(
            &opt.pos,
            format!(
                "unicast_peer option `{}` is not implemented by vrrpd; ignored",
                opt.text
            ),
        ));
    }
    if min > max {
        cx.push(Diagnostic::warning(
            c.pos(),
            format!("({iname}) min_ttl {min} > max_ttl {max} - all packets will be discarded"),
        ));
    }
}

/// A notify script line, remembered for the host's script checks.
fn script(i: &mut InstDraft, v: Spanned<String>) -> String {
    i.scripts_used.push(v.clone());
    v.value
}

/// How a notify script line reads in the compatibility table.
pub(crate) const NOTIFY: &str = "\"COMMAND\" [USER [GROUP]]";

/// `notify_master "…"` and its siblings: the first one written is kept, as in keepalived.
fn notify<'a>(
    i: &mut InstDraft,
    n: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
    slot: fn(&mut Notify) -> &mut Option<String>,
) {
    let owner = format!("({})", i.name.value);
    if let Some((v, user)) = super::notify_line(slot(&mut i.notify), &owner, n, cx) {
        *slot(&mut i.notify) = Some(script(i, v));
        if let Some(u) = user {
            i.notify.users.insert(n.name().to_string(), u);
        }
    }
}

/// `old_unicast_checksum [never]`: the old checksum from the start, or never (not even when
/// a peer's adverts carry it); `None` (reported) for another word, which keepalived ignores
/// (the mode before stays).
fn unicast_checksum<'a>(iname: &str, n: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<UnicastChecksum> {
    match n.args.first() {
        None => Some(UnicastChecksum::Old),
        Some(a) if a.text == "never" => Some(UnicastChecksum::Never),
        Some(a) => {
            cx.push(Diagnostic::warning(
                &a.pos,
                format!(
                    "({iname}) Unknown old_unicast_chksum mode {} - ignoring",
                    a.text
                ),
            ));
            None
        }
    }
}

/// `use_vmac [IFNAME] [MAC]` as keepalived's `vrrp_vmac_handler` reads it: the first two
/// words only, a word with a `:` the MAC address, another the interface name; what a
/// `use_vmac` line before set stays, and a second name or address is refused.
fn use_vmac<'a>(before: Option<UseVmac>, n: &Node<'a>, cx: &mut Cx<'_, 'a>) -> UseVmac {
    let mut v = before.unwrap_or(UseVmac {
        name: None,
        mac: None,
    });
    let mut refuse =
        |a: &crate::lexer::Token, msg: String| cx.push(Diagnostic::warning(&a.pos, msg));
    for a in n.args.iter().take(2) {
        let w = &*a.text;
        if w.contains(':') {
            if v.mac.is_some() {
                refuse(a, "VMAC interface address already specified".into());
                continue;
            }
            if !w.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                refuse(a, format!("VMAC invalid MAC address {w}"));
                continue;
            }
            let bytes: Vec<u8> = w
                .split(':')
                .filter_map(|b| u8::from_str_radix(b, 16).ok())
                .collect();
            match <[u8; 6]>::try_from(bytes) {
                Err(_) => refuse(a, format!("VMAC invalid MAC address {w} - ignored")),
                Ok(mac) if mac[0] & 1 != 0 => {
                    refuse(a, format!("VMAC MAC address is multicast {w} - ignoring"))
                }
                Ok([0, 0, 0x5e, 0, 1 | 2, _]) => refuse(
                    a,
                    format!("VMAC MAC address not allowed to be RFC5798 address ({w}) - ignoring"),
                ),
                Ok(mac) => v.mac = Some(mac),
            }
        } else if v.name.is_some() {
            refuse(a, "VMAC interface name already specified".into());
        } else if !dev_name_valid(w) {
            refuse(
                a,
                format!("VMAC interface name '{w}' too long or invalid characters - ignoring"),
            );
        } else {
            v.name = Some(w.to_string());
        }
    }
    v
}

/// An interface name the kernel takes (its `dev_valid_name`, as keepalived copies it).
fn dev_name_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_ascii_whitespace() || c == '\x0b')
}

/// What an instance's checks need to know of the rest of the file.
pub struct Known<'a> {
    pub global: &'a GlobalDefs,
    /// `vrrp_garp_lower_prio_delay` / `_repeat` given in global_defs.
    pub lower_explicit: (bool, bool),
}

/// What keepalived compares to find two instances answering the same virtual router.
pub struct VridKey {
    name: String,
    pos: Pos,
    v6: bool,
    vrid: u8,
    interface: String,
    src: Option<IpAddr>,
    peers: Vec<IpAddr>,
}

/// keepalived refuses two instances with the same VRID and family on one interface and
/// multicast group (its VRRP process stops), and two unicast instances on one interface
/// and source address that share a peer. Unicast and multicast are separate VRID spaces.
pub fn check_vrid_conflicts(keys: &[VridKey], cx: &mut Cx) {
    // Pairs in keepalived's order, but only within a (family, VRID, interface) group: a file
    // of many instances stays linear.
    let mut groups: std::collections::HashMap<_, Vec<&VridKey>> = Default::default();
    for k in keys {
        groups
            .entry((k.v6, k.vrid, &k.interface))
            .or_default()
            .push(k);
    }
    // The host's address of an interface, asked once.
    let mut iface_addr = std::collections::HashMap::new();
    for a in keys {
        let group = &groups[&(a.v6, a.vrid, &a.interface)];
        let later = group.iter().skip_while(|k| !std::ptr::eq(**k, a)).skip(1);
        for b in later {
            match (a.peers.is_empty(), b.peers.is_empty()) {
                (true, true) => {
                    if cx.host.interface_exists(&a.interface) == Some(false) {
                        continue;
                    }
                    let family = if a.v6 { 6 } else { 4 };
                    cx.push(Diagnostic::error(
                        &b.pos,
                        format!(
                            "{} and {} both use VRID {} with IPv{family} on interface {}",
                            a.name, b.name, a.vrid, a.interface
                        ),
                    ));
                }
                (false, false) => {
                    if !a.peers.iter().any(|p| b.peers.contains(p)) {
                        continue;
                    }
                    // Without a configured source keepalived compares the interface's
                    // address; when that is unknown there is no conflict yet.
                    let mut src = |k: &VridKey| {
                        k.src.or_else(|| {
                            *iface_addr
                                .entry((k.interface.clone(), k.v6))
                                .or_insert_with(|| cx.host.interface_address(&k.interface, k.v6))
                        })
                    };
                    let (sa, sb) = (src(a), src(b));
                    if sa.is_some() && sa == sb {
                        cx.push(Diagnostic::error(
                            &a.pos,
                            format!(
                                "({}) duplicate VRID conflict with {} VRID {}",
                                a.name, b.name, a.vrid
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}

impl InstDraft {
    /// The family the addresses read so far set: keepalived decides on the first one.
    fn family(&self) -> Option<bool> {
        self.vips
            .first()
            .map(|v| v.value.addr.is_ipv6())
            .or(self.src_ip.as_ref().map(|s| s.value.is_ipv6()))
            .or(self.native_ipv6.as_ref().map(|_| true))
            // A unicast peer read before them sets it too (alloc_vrrp_unicast_peer).
            .or(self.peers.first().map(|p| p.value.is_ipv6()))
    }

    /// Its identity for [`check_vrid_conflicts`], when it has a VRID and an interface.
    pub fn vrid_key(&self) -> Option<VridKey> {
        Some(VridKey {
            name: self.name.value.clone(),
            pos: self.pos.clone(),
            v6: self.family().unwrap_or(false),
            vrid: self.vrid?,
            interface: self.interface.as_ref()?.value.clone(),
            src: self.src_ip.as_ref().map(|s| s.value),
            peers: self.peers.iter().map(|p| p.value).collect(),
        })
    }

    /// The instance keepalived would run, or `None` when keepalived's VRRP process refuses
    /// the file (an error) or drops the instance (a warning).
    pub fn resolve(mut self, known: &Known, cx: &mut Cx) -> Option<VrrpInstance> {
        let errors_before = cx.error_count();
        self.check_identity(cx);
        let v6 = self.check_family(cx);
        let strict = self.strict.unwrap_or(known.global.vrrp_strict);
        let version = self.version(known.global, v6, strict, cx);
        self.check_addresses(v6, version, strict, cx);
        self.check_tracks(cx);
        if self.unicast_keyword.is_some()
            && self.use_vmac.is_some()
            && self.interface.is_some()
            && !self.vmac_xmit_base
        {
            // keepalived's vrrp_end_handler, at the block's `}`: unicast adverts cannot
            // leave by the VMAC.
            cx.push(Diagnostic::warning(
                self.close.as_ref().unwrap_or(&self.pos),
                format!(
                    "({}) unicast with use_vmac requires vmac_xmit_base - setting",
                    self.iname()
                ),
            ));
            self.vmac_xmit_base = true;
        }
        if self.vmac_xmit_base && self.use_vmac.is_none() {
            // keepalived checks it once the instance is read, and clears it.
            cx.push(Diagnostic::warning(
                self.close.as_ref().unwrap_or(&self.pos),
                format!(
                    "({}) vmac_xmit_base is only valid with a vmac",
                    self.iname()
                ),
            ));
            self.vmac_xmit_base = false;
        }
        let (state, priority, nopreempt) = self.state_and_priority(strict, cx);
        let preempt_delay = self.preempt_delay(state, strict, nopreempt, cx);
        let advert_int = self.advert_int(version, cx);
        let higher_prio_send_advert = self.higher_prio(known.global, strict, cx);
        let accept = self.accept(strict, version, cx) || priority == 255;
        let (authentication, state) = self.authentication(strict, version, v6, state, priority, cx);
        if cx.error_count() > errors_before {
            return None;
        }
        let global = known.global;
        Some(VrrpInstance {
            name: self.name.value,
            state,
            interface: self.interface.map(|s| s.value).unwrap_or_default(),
            virtual_router_id: self.vrid.unwrap_or(0),
            priority,
            advert_int,
            version,
            nopreempt,
            preempt_delay,
            authentication,
            virtual_ipaddress: self.vips.into_iter().map(|v| v.value).collect(),
            virtual_ipaddress_excluded: self.evips,
            src_ip: self.src_ip.map(|s| s.value),
            unicast_peers: self.peers.into_iter().map(|p| p.value).collect(),
            unicast_ttl: self.unicast_ttl.unwrap_or(255),
            garp: self.garp.resolve(&global.garp, known.lower_explicit),
            track_scripts: values(self.track_scripts),
            track_interfaces: values(self.track_interfaces),
            track_files: values(self.track_files),
            track_processes: values(self.track_processes),
            use_vmac: self.use_vmac,
            vmac_xmit_base: self.vmac_xmit_base,
            dont_track_primary: self.dont_track_primary,
            promote_secondaries: self.promote_secondaries,
            down_timer_adverts: self.down_timer_adverts.unwrap_or(global.down_timer_adverts),
            higher_prio_send_advert,
            check_unicast_src: self.check_unicast_src || global.check_unicast_src,
            skip_check_adv_addr: self.skip_check_adv_addr || global.skip_check_adv_addr,
            unicast_checksum: self.unicast_checksum.unwrap_or_default(),
            track_virtual_servers: values(self.track_virtual_servers),
            notify: self.notify,
            notify_priority_changes: self
                .notify_priority_changes
                .unwrap_or(global.vrrp_notify_priority_changes),
            smtp_alert: self.smtp_alert,
            strict_mode: strict,
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

    /// A VRID and an interface: without them keepalived's VRRP process stops.
    fn check_identity(&self, cx: &mut Cx) {
        let name = self.iname();
        if self.vrid.is_none() {
            cx.push(Diagnostic::error(
                &self.pos,
                format!("({name}) the virtual router id must be set"),
            ));
        }
        match &self.interface {
            None if self.src_ip.is_none() => cx.push(
                Diagnostic::error(
                    &self.pos,
                    format!("({name}): Unicast instances must have unicast_src_ip or interface"),
                )
                .with_help("add `interface IFNAME` to the vrrp_instance"),
            ),
            None => cx.push(
                Diagnostic::error(
                    &self.pos,
                    format!("({name}) an instance without `interface` is not supported by vrrpd"),
                )
                .with_help("add `interface IFNAME` (the one unicast_src_ip is on)")
                .not_flagged_by_keepalived(),
            ),
            Some(_) => {}
        }
    }

    /// The address family (true: IPv6), from the first address as keepalived decides it.
    fn check_family(&self, cx: &mut Cx) -> bool {
        let name = self.iname();
        let v6 = self.family().unwrap_or(false);
        if let Some(pos) = &self.native_ipv6 {
            if !v6 {
                cx.push(Diagnostic::warning(
                    pos,
                    format!("({name}) Cannot specify native_ipv6 with IPv4 addresses"),
                ));
            }
        }
        v6
    }

    fn version(&self, global: &GlobalDefs, v6: bool, strict: bool, cx: &mut Cx) -> Version {
        let name = self.iname();
        match &self.version {
            Some(Spanned {
                value: Version::V2,
                pos,
            }) if v6 && strict => {
                cx.push(Diagnostic::warning(
                    pos,
                    format!("({name}) cannot use IPv6 with VRRP version 2; setting version 3"),
                ));
                Version::V3
            }
            Some(Spanned {
                value: Version::V2,
                pos,
            }) if v6 => {
                // keepalived runs it as VRRPv3 without a word (RFC 3768 is IPv4-only).
                cx.push(
                    Diagnostic::notice(
                        pos,
                        format!("({name}) VRRP version 2 is not defined for IPv6; running version 3, as keepalived does"),
                    )
                    .with_help("write `version 3` (RFC 5798) for IPv6 instances"),
                );
                Version::V3
            }
            Some(v) => v.value,
            None if v6 => Version::V3,
            None => global.vrrp_version,
        }
    }

    fn check_addresses(&mut self, v6: bool, version: Version, strict: bool, cx: &mut Cx) {
        let name = self.iname().to_string();
        if self.vips.is_empty() {
            if version == Version::V3 || strict {
                cx.push(Diagnostic::error(
                    &self.pos,
                    format!("({name}) No VIP specified; at least one is required"),
                ));
            } else {
                cx.push(Diagnostic::warning(
                    &self.pos,
                    format!("({name}) No VIP specified; at least one is sensible"),
                ));
            }
        }
        if let (true, Some(first)) = (v6, self.vips.first()) {
            let ll = matches!(first.value.addr, IpAddr::V6(a) if a.is_unicast_link_local());
            if !ll && strict {
                cx.push(Diagnostic::warning(
                    &first.pos,
                    format!("({name}) the first IPv6 VIP address must be link local"),
                ));
            }
        }
        if let (Some(_), true) = (self.unicast_ttl, self.peers.is_empty()) {
            // keepalived checks this when it reaches the block's `}`.
            cx.push(Diagnostic::warning(
                self.close.as_ref().unwrap_or(&self.pos),
                format!("({name}): Cannot use unicast_ttl without unicast peers - resetting"),
            ));
        }
        if let (Some(pos), true) = (&self.unicast_keyword, self.peers.is_empty()) {
            cx.push(
                Diagnostic::warning(
                    pos,
                    format!("({name}) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration."),
                ),
            );
        }
    }

    /// keepalived drops the instance's own interface from its track_interface list.
    fn check_tracks(&mut self, cx: &mut Cx) {
        let Some(own) = self.interface.as_ref().map(|i| i.value.clone()) else {
            return;
        };
        let name = self.name.value.clone();
        self.track_interfaces.retain(|t| {
            if t.value.name != own {
                return true;
            }
            cx.push(Diagnostic::warning(
                &t.pos,
                format!("({name}) Ignoring track_interface {own} since own interface"),
            ));
            false
        });
    }

    /// keepalived clears a preempt delay that cannot apply, in this order, with a warning `-t`
    /// counts: an instance that starts as Master never waits to preempt, strict mode and
    /// `nopreempt` rule it out.
    fn preempt_delay(
        &self,
        state: InitialState,
        strict: bool,
        nopreempt: bool,
        cx: &mut Cx,
    ) -> Duration {
        let Some(delay) = self.preempt_delay.as_ref().filter(|d| !d.value.is_zero()) else {
            return Duration::ZERO;
        };
        let name = self.iname();
        let why = if state == InitialState::Master {
            "Warning - preempt delay will not work with initial state MASTER - clearing"
        } else if strict {
            "preempt_delay is incompatible with strict mode - resetting"
        } else if nopreempt {
            "preempt_delay is incompatible with nopreempt mode - resetting"
        } else {
            return delay.value;
        };
        cx.push(Diagnostic::warning(&delay.pos, format!("({name}) {why}")));
        Duration::ZERO
    }

    fn state_and_priority(&self, strict: bool, cx: &mut Cx) -> (InitialState, u8, bool) {
        let name = self.iname();
        let mut state = self.state.as_ref().map(|s| s.value);
        let priority = self
            .priority
            .unwrap_or(if state == Some(InitialState::Master) {
                255
            } else {
                100
            });
        let given = state.unwrap_or(if priority == 255 {
            InitialState::Master
        } else {
            InitialState::Backup
        });
        if strict && (given == InitialState::Master) != (priority == 255) {
            cx.push(Diagnostic::warning(
                &self.pos,
                format!("({name}) State MASTER must match being address owner"),
            ));
            state = Some(if priority == 255 {
                InitialState::Master
            } else {
                InitialState::Backup
            });
        }
        let state = state.unwrap_or(given);
        let mut nopreempt = self.nopreempt.is_some();
        let np_pos = self.nopreempt.as_ref().unwrap_or(&self.pos);
        if nopreempt && priority == 255 {
            cx.push(Diagnostic::warning(
                np_pos,
                format!(
                    "({name}) nopreempt is incompatible with priority 255. resetting nopreempt"
                ),
            ));
            nopreempt = false;
        } else if nopreempt && state == InitialState::Master {
            cx.push(Diagnostic::warning(
                np_pos,
                format!("({name}) Warning - nopreempt will not work with initial state MASTER - clearing"),
            ));
            nopreempt = false;
        }
        if priority == 255
            && self
                .state
                .as_ref()
                .is_some_and(|s| s.value == InitialState::Backup)
            && !strict
        {
            cx.push(
                Diagnostic::notice(
                    &self.pos,
                    format!("({name}) priority 255 (address owner) with state BACKUP"),
                )
                .with_help(
                    "the owner always becomes Master; use `state MASTER` or a lower priority",
                ),
            );
        }
        (state, priority, nopreempt)
    }

    /// In centiseconds: whole seconds under v2 (rounded, as keepalived does).
    fn advert_int(&self, version: Version, cx: &mut Cx) -> u16 {
        let name = self.iname();
        match (&self.advert_int, version) {
            (None, _) => 100,
            (Some(Spanned { value: s, pos }), Version::V2) => {
                let whole = s.round().max(1.0);
                if whole != *s {
                    cx.push(Diagnostic::warning(
                        pos,
                        format!("({name}) VRRPv2 advertisement interval {s}s must be an integer. rounding to {whole}s"),
                    ));
                }
                (whole * 100.0) as u16
            }
            (Some(Spanned { value: s, pos }), Version::V3) => {
                if *s > 40.95 {
                    cx.push(Diagnostic::warning(
                        pos,
                        format!("({name}) VRRPv3 advertisement interval {s:.2}s will be limited to 40.95s"),
                    ));
                }
                (s * 100.0).round().clamp(1.0, 4095.0) as u16
            }
        }
    }

    fn higher_prio(&self, global: &GlobalDefs, strict: bool, cx: &mut Cx) -> bool {
        match &self.higher_prio_send_advert {
            Some(Spanned { value: true, pos }) if strict => {
                cx.push(Diagnostic::warning(
                    pos,
                    format!(
                        "({}) strict mode requires higher_prio_send_advert to be clear. resetting",
                        self.iname()
                    ),
                ));
                false
            }
            Some(v) => v.value,
            None => global.higher_prio_send_advert && !strict,
        }
    }

    /// keepalived: no_accept by default under strict mode (never for the owner, see caller).
    fn accept(&self, strict: bool, version: Version, cx: &mut Cx) -> bool {
        match &self.accept {
            Some(Spanned { value: true, pos }) if strict && version == Version::V2 => {
                cx.push(Diagnostic::warning(
                    pos,
                    format!("({}) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting", self.iname()),
                ));
                false
            }
            Some(a) => a.value,
            None => !strict,
        }
    }

    /// The authentication keepalived would use, in its order of checks; AH also moves an
    /// initial MASTER to BACKUP (it needs the peer's sequence number first).
    fn authentication(
        &self,
        strict: bool,
        version: Version,
        v6: bool,
        state: InitialState,
        priority: u8,
        cx: &mut Cx,
    ) -> (Option<Authentication>, InitialState) {
        let name = self.iname();
        let Some((a, pos)) = &self.auth else {
            return (None, state);
        };
        let Some(kind) = &a.kind else {
            // keepalived: no auth_type means no authentication, silently.
            return (None, state);
        };
        let warn = |cx: &mut Cx, msg: String| cx.push(Diagnostic::warning(pos, msg));
        if strict {
            warn(
                cx,
                format!("({name}) Strict mode does not support authentication. Ignoring."),
            );
            return (None, state);
        }
        if version == Version::V3 {
            warn(
                cx,
                format!("({name}) VRRP version 3 does not support authentication. Ignoring."),
            );
            return (None, state);
        }
        let Some(pass) = a.pass.as_ref().filter(|p| !p.value.is_empty()) else {
            warn(
                cx,
                format!("({name}) Authentication specified but no password given. Ignoring"),
            );
            return (None, state);
        };
        if kind.value == "AH" {
            if v6 {
                warn(
                    cx,
                    format!("({name}) Cannot use AH authentication with IPv6. ignoring"),
                );
                return (None, state);
            }
            // AH needs the peer's sequence number before it may send: keepalived starts such
            // an instance as Backup (an address owner excepted).
            let state = if state == InitialState::Master && priority != 255 {
                warn(cx, format!("({name}) Initial state master is incompatible with AH authentication - clearing"));
                InitialState::Backup
            } else {
                state
            };
            return (Some(Authentication::Ah(pass.value.clone())), state);
        }
        (Some(Authentication::Pass(pass.value.clone())), state)
    }
}

fn values<T>(v: Vec<Spanned<T>>) -> Vec<T> {
    v.into_iter().map(|s| s.value).collect()
}
