//! What instances track and how they group: `vrrp_script`, `track_file` / `vrrp_track_file`,
//! `vrrp_track_process`, `vrrp_sync_group`, `garp_group`, and the `track_*` lists inside an
//! instance or sync group.

use std::net::IpAddr;
use std::time::Duration;

use super::Draft;
use crate::diag::{Diagnostic, Pos, Spanned};
use crate::model::{
    GarpGroup, InitFile, Notify, ParamMatch, SyncGroup, Track, TrackFile, TrackProcess,
    TrackVirtualServer, VrrpInstance, VrrpScript, VsRef,
};
use crate::process::Side;
use crate::registry::{
    dispatch_block, kw, missing, ok, parse_int, parse_secs, when_missing, Arg, Context, Cx,
    Keyword, Status, WhenMissing,
};
use crate::tree::Node;

/// What a `track_*` list names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Script,
    Interface,
    File,
    Process,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Script => "track script",
            Kind::Interface => "track_interface",
            Kind::File => "track_file",
            Kind::Process => "track process",
        }
    }
}

/// `track_script { NAME [weight N [reverse|noreverse]] }` and friends, as keepalived's
/// `alloc_track_*` read each line: an entry with a bad option is dropped with a complaint, a
/// duplicate is ignored, a weight of ±254 becomes ±253 (scripts and interfaces).
pub fn tracks<'a>(
    node: &Node<'a>,
    kind: Kind,
    owner: &str,
    cx: &mut Cx<'_, 'a>,
) -> Vec<Spanned<Track>> {
    let mut out: Vec<Spanned<Track>> = Vec::new();
    for c in &node.children {
        let name = c.name();
        if kind == Kind::Interface && cx.host.interface_exists(name) == Some(false) {
            // keepalived looks the interface up before anything else on the line: the
            // instance's checks then say it does not exist.
            out.push(Spanned::new(
                Track {
                    name: name.to_string(),
                    weight: None,
                    reverse: false,
                },
                c.pos(),
            ));
            continue;
        }
        if out.iter().any(|t| t.value.name == name) {
            cx.push(Diagnostic::warning(
                c.pos(),
                format!("({owner}) duplicate {} {name} - ignoring", kind.word()),
            ));
            continue;
        }
        let mut t = Track {
            name: name.to_string(),
            weight: None,
            reverse: false,
        };
        let args: Vec<&str> = c.args.iter().map(|a| &*a.text).collect();
        let warn = |cx: &mut Cx, msg: String| cx.push(Diagnostic::warning(c.pos(), msg));
        match args.as_slice() {
            [] => {}
            [w, ..] if *w != "weight" => {
                warn(
                    cx,
                    format!(
                        "({owner}) unknown {} {name} option {w} - ignoring",
                        kind.word()
                    ),
                );
                continue;
            }
            [_] => {
                warn(
                    cx,
                    format!(
                        "({owner}) weight without value specified for {} {name} - ignoring",
                        kind.word()
                    ),
                );
                continue;
            }
            [_, w, rest @ ..] => {
                match parse_int(w).filter(|w| (-254..=254).contains(w)) {
                    Some(w) if w.abs() == 254 && kind != Kind::Process && kind != Kind::File => {
                        warn(
                            cx,
                            format!(
                                "({owner}) weight for {name} cannot be +/-254. Setting to +/-253"
                            ),
                        );
                        t.weight = Some(if w < 0 { -253 } else { 253 });
                    }
                    Some(w) => t.weight = Some(w as i32),
                    None => {
                        warn(cx, format!("({owner}) weight {w} for {name} must be between [-253..253] inclusive. Ignoring..."));
                        // keepalived keeps the entry with the object's own weight (0 for an
                        // interface: down is FAULT).
                    }
                }
                match rest.first().copied() {
                    None => {}
                    Some("reverse") => t.reverse = true,
                    Some("noreverse" | "no_reverse") if kind != Kind::Interface => {}
                    Some(o) => warn(
                        cx,
                        format!(
                            "({owner}) unknown {} {name} weight option {o} - ignoring",
                            kind.word()
                        ),
                    ),
                }
            }
        }
        out.push(Spanned::new(t, c.pos()));
    }
    out
}

/// A parsed `vrrp_script`, kept (with `script: None`) when keepalived removes it, so a
/// `track_script` naming it gets keepalived's "not found".
pub struct ScriptDraft {
    pub name: String,
    pub script: Option<VrrpScript>,
    /// The `script` line, for the host's script checks.
    pub command: Option<Spanned<String>>,
}

#[derive(Default)]
pub struct ScriptKeys {
    /// The script's name, for keepalived's messages.
    name: String,
    script: Option<Spanned<String>>,
    interval: Option<Spanned<Duration>>,
    timeout: Option<Spanned<Duration>>,
    weight: Option<(i32, bool)>,
    rise: Option<u32>,
    fall: Option<u32>,
    user: Option<Spanned<String>>,
    init_fail: bool,
}

/// `vrrp_script NAME { … }`.
pub static VRRP_SCRIPT: &[Keyword<ScriptKeys>] = &[
    // keepalived re-reads the raw line and finds no script: only the block's end says so.
    when_missing(
        WhenMissing::Ignore,
        ok("script", Arg::Command(|s, v| s.script = Some(v))),
    ),
    ok(
        "interval",
        Arg::Custom("SECONDS 1..4294", |s, n, cx| {
            let name = &s.name;
            let invalid = |w: &str| {
                format!(
                    "({name}): vrrp script interval '{w}' must be between 1 and 4294 - ignoring"
                )
            };
            let zero =
                format!("({name}): vrrp script interval must be greater than 0, setting to 1");
            s.interval = script_secs(n, cx, &invalid, &zero).or(s.interval.take());
        }),
    ),
    ok(
        "timeout",
        Arg::Custom("SECONDS 1..4294", |s, n, cx| {
            let name = &s.name;
            let invalid =
                |w: &str| format!("({name}): vrrp script timeout '{w}' invalid - ignoring");
            let zero =
                format!("({name}): vrrp script timeout must be greater than 0, setting to 1");
            s.timeout = script_secs(n, cx, &invalid, &zero).or(s.timeout.take());
        }),
    ),
    ok(
        "weight",
        Arg::Custom("-253..253 [reverse]", |s, n, cx| {
            s.weight = weight(n, WeightOf::Script(&s.name), cx)
        }),
    ),
    ok(
        "rise",
        Arg::Int(1, u32::MAX as i64, |s, v| s.rise = Some(v.value as u32)),
    ),
    ok(
        "fall",
        Arg::Int(1, u32::MAX as i64, |s, v| s.fall = Some(v.value as u32)),
    ),
    ok("user", Arg::Line(|s, v| s.user = Some(v))),
    ok("init_fail", Arg::Flag(|s, _| s.init_fail = true)),
];

/// A vrrp_script's `interval` or `timeout`: keepalived 2.2.7 reads whole seconds in
/// `0..=4294` (`UINT_MAX / TIMER_HZ`), 0 taken as 1 ([`super::read_count`]); a fraction is
/// taken as keepalived 2.3 takes it (noticed in [`vrrp_script`]).
fn script_secs<'a>(
    n: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
    invalid: &dyn Fn(&str) -> String,
    zero: &str,
) -> Option<Spanned<Duration>> {
    const MAX: u64 = u32::MAX as u64 / 1_000_000;
    if let Some(t) = n.args.first().filter(|t| t.text.contains('.')) {
        if let Some(v) = parse_secs(&t.text).filter(|v| *v > 0.0 && *v <= MAX as f64) {
            return Some(Spanned::new(Duration::from_secs_f64(v), &t.pos));
        }
    }
    super::read_count(n, cx, MAX, invalid, Some(zero)).map(|v| v.map(Duration::from_secs))
}

/// Whose `weight N [reverse]` line it is (and its name): each of keepalived's handlers says
/// it in its own words, and only the script's reads the value unchecked.
#[derive(Clone, Copy)]
enum WeightOf<'n> {
    Script(&'n str),
    File(&'n str),
    Process(&'n str),
}

/// `weight N [reverse]` of a script, file or process block.
fn weight<'a>(n: &Node<'a>, of: WeightOf, cx: &mut Cx<'_, 'a>) -> Option<(i32, bool)> {
    // The bound, the block's keyword and what a missing weight is said to lack.
    let (max, block, what, name) = match of {
        WeightOf::Script(name) => (253, "vrrp_script", "", name),
        WeightOf::File(name) => (254, "track_file", "track file", name),
        WeightOf::Process(name) => (254, "vrrp_track_process", "track process", name),
    };
    let Some(a) = n.args.first() else {
        match of {
            WeightOf::Script(_) => crate::registry::missing_value(n, &mut cx.diags),
            WeightOf::File(_) | WeightOf::Process(_) => {
                cx.push(Diagnostic::warning(
                    n.pos(),
                    format!("No weight specified for {what} {name} - ignoring"),
                ));
            }
        }
        return None;
    };
    let reverse = match n.args.get(1).map(|r| &*r.text) {
        None => false,
        Some("reverse") => true,
        Some(o) => {
            cx.push(Diagnostic::warning(
                &n.args[1].pos,
                format!("{block} {name} unknown weight option {o}"),
            ));
            false
        }
    };
    match parse_int(&a.text).filter(|w| (-max..=max).contains(w)) {
        Some(w) => Some((w as i32, reverse)),
        None => {
            let said = match of {
                WeightOf::Script(_) => format!("{block} {name} weight {} must be in [-{max}, {max}]", a.text),
                _ => format!("Weight ({}) for {block} {name} must be between [-{max}..{max}] inclusive. Ignoring...", a.text),
            };
            cx.push(Diagnostic::warning(&a.pos, said));
            None
        }
    }
}

pub fn vrrp_script<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    if !cx.sides.vrrp {
        return;
    }
    let Some(name) = super::name_arg(n, cx) else {
        return;
    };
    let mut k = ScriptKeys {
        name: name.value.clone(),
        ..Default::default()
    };
    dispatch_block(VRRP_SCRIPT, "vrrp_script", &mut k, n, cx);
    let end = n.close.clone().unwrap_or_else(|| n.pos().clone());
    let name = name.value;
    let Some(cmd) = k.script.clone() else {
        cx.push(Diagnostic::warning(
            &end,
            format!("No script set for vrrp_script {name} - removing"),
        ));
        d.scripts.push(ScriptDraft {
            name,
            script: None,
            command: None,
        });
        return;
    };
    // keepalived removes a script it cannot give a user: its own, else the default one.
    let removed = match &k.user {
        Some(u) => {
            let mut words = u.value.split_whitespace();
            let user = words.next().unwrap_or_default();
            let gone = cx.host.user_exists(user, words.next()) == Some(false);
            if gone {
                cx.push(Diagnostic::warning(
                    &u.pos,
                    format!("Unable to set uid/gid for script '{}'", cmd.value),
                ));
            }
            gone
        }
        None if !cx.script_user.available(Side::Vrrp, &end) => {
            cx.push(Diagnostic::warning(
                &end,
                format!("Unable to set default user for vrrp script {name} - removing"),
            ));
            true
        }
        None => false,
    };
    if removed {
        d.scripts.push(ScriptDraft {
            name,
            script: None,
            command: None,
        });
        return;
    }
    // keepalived 2.3 and later take milliseconds here; 2.2.7 whole seconds only.
    for (what, t) in [("interval", &k.interval), ("timeout", &k.timeout)] {
        let Some(t) = t.as_ref().filter(|t| t.value.subsec_nanos() != 0) else {
            continue;
        };
        let said = format!(
            "({name}) {what} of {:?} taken as written, as keepalived 2.3 and later take it \
             (keepalived 2.2.7 reads whole seconds only: an invalid number, and 1 s)",
            t.value
        );
        cx.push(Diagnostic::notice(&t.pos, said));
    }
    let interval = k.interval.map_or(Duration::from_secs(1), |i| i.value);
    let (w, reverse) = k.weight.unwrap_or((0, false));
    d.commands.push(cmd.clone());
    d.scripts.push(ScriptDraft {
        script: Some(VrrpScript {
            name: name.clone(),
            script: cmd.value.clone(),
            interval,
            timeout: k.timeout.map_or(interval, |t| t.value),
            weight: w,
            weight_reverse: reverse,
            rise: k.rise.unwrap_or(1),
            fall: k.fall.unwrap_or(1),
            user: k.user.map(|u| u.value),
            init_fail: k.init_fail,
        }),
        name,
        command: Some(cmd),
    });
}

/// A sync group as written, with each member's position.
pub struct SyncDraft {
    group: SyncGroup,
    members: Vec<Pos>,
    pos: Pos,
    /// The notify script lines, for the host's script checks.
    scripts_used: Vec<Spanned<String>>,
}

impl SyncDraft {
    /// A notify script line, remembered for the host's script checks; the first one
    /// written is kept, as in keepalived.
    fn notify<'a>(
        &mut self,
        n: &Node<'a>,
        cx: &mut Cx<'_, 'a>,
        slot: fn(&mut Notify) -> &mut Option<String>,
    ) {
        let owner = format!("vrrp group {}:", self.group.name);
        if let Some((v, user)) = super::notify_line(slot(&mut self.group.notify), &owner, n, cx) {
            self.scripts_used.push(v.clone());
            *slot(&mut self.group.notify) = Some(v.value);
            if let Some(u) = user {
                self.group.notify.users.insert(n.name().to_string(), u);
            }
        }
    }

    pub fn forget_scripts(&mut self, gone: &[String]) {
        self.group.track_scripts.retain(|t| !gone.contains(&t.name));
    }
}

/// `vrrp_sync_group NAME { … }`.
pub static SYNC_GROUP: &[Keyword<SyncDraft>] = &[
    ok(
        "group",
        Arg::Items("INSTANCE…", |g, n, cx| {
            if !g.group.group.is_empty() {
                cx.push(Diagnostic::warning(
                    n.pos(),
                    format!(
                        "Group list already specified for sync group {}",
                        g.group.name
                    ),
                ));
                return;
            }
            for m in &n.children {
                g.group.group.push(m.name().to_string());
                g.members.push(m.pos().clone());
                g.group
                    .group
                    .extend(m.args.iter().map(|a| a.text.to_string()));
                g.members.extend(m.args.iter().map(|a| a.pos.clone()));
            }
            if g.group.group.is_empty() {
                cx.push(Diagnostic::warning(
                    n.pos(),
                    format!(
                        "Warning - sync group {} has empty group block",
                        g.group.name
                    ),
                ));
            }
        }),
    ),
    ok(
        "track_interface",
        Arg::Items("IFNAME [weight N]…", |g, n, cx| {
            sg_tracks(g, n, Kind::Interface, cx)
        }),
    ),
    ok(
        "track_script",
        Arg::Items("NAME [weight N]…", |g, n, cx| {
            sg_tracks(g, n, Kind::Script, cx)
        }),
    ),
    ok(
        "track_file",
        Arg::Items("NAME [weight N]…", |g, n, cx| {
            sg_tracks(g, n, Kind::File, cx)
        }),
    ),
    ok(
        "track_process",
        Arg::Items("NAME [weight N]…", |g, n, cx| {
            sg_tracks(g, n, Kind::Process, cx)
        }),
    ),
    kw(
        "track_bfd",
        Status::Unsupported("vrrpd has no BFD"),
        Arg::Custom("{ NAME… }", |g, n, cx| {
            let name = g.group.name.clone();
            crate::registry::bfd_refs(&name, n, cx)
        }),
    ),
    ok(
        "notify_master",
        Arg::Custom(crate::build::instance::NOTIFY, |g, n, cx| {
            g.notify(n, cx, |s| &mut s.master)
        }),
    ),
    ok(
        "notify_backup",
        Arg::Custom(crate::build::instance::NOTIFY, |g, n, cx| {
            g.notify(n, cx, |s| &mut s.backup)
        }),
    ),
    ok(
        "notify_fault",
        Arg::Custom(crate::build::instance::NOTIFY, |g, n, cx| {
            g.notify(n, cx, |s| &mut s.fault)
        }),
    ),
    ok(
        "notify_stop",
        Arg::Custom(crate::build::instance::NOTIFY, |g, n, cx| {
            g.notify(n, cx, |s| &mut s.stop)
        }),
    ),
    ok(
        "notify",
        Arg::Custom(crate::build::instance::NOTIFY, |g, n, cx| {
            g.notify(n, cx, |s| &mut s.any)
        }),
    ),
    ok(
        "smtp_alert",
        Arg::Bool(|g, v| g.group.smtp_alert = Some(v.value)),
    ),
    // keepalived 2 reads it as `sync_group_tracking_weight` (and says it is deprecated).
    ok(
        "global_tracking",
        Arg::Custom("", |g, n, cx| {
            cx.push(Diagnostic::warning(
                n.pos(),
                format!("({}) global_tracking is deprecated. Use track_interface/script/file on the sync group", g.group.name),
            ));
            g.group.global_tracking = true;
        }),
    ),
    ok(
        "sync_group_tracking_weight",
        Arg::Flag(|g, _| g.group.sync_group_tracking_weight = true),
    ),
    kw(
        "notify_priority_changes",
        Status::Unsupported("priority changes are notified per instance"),
        Arg::Skip,
    ),
];

fn sg_tracks<'a>(g: &mut SyncDraft, n: &Node<'a>, kind: Kind, cx: &mut Cx<'_, 'a>) {
    let name = g.group.name.clone();
    let list = tracks(n, kind, &name, cx).into_iter().map(|t| t.value);
    match kind {
        Kind::Interface => g.group.track_interfaces.extend(list),
        Kind::Script => g.group.track_scripts.extend(list),
        Kind::File => g.group.track_files.extend(list),
        Kind::Process => g.group.track_processes.extend(list),
    }
}

pub fn sync_group<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    if !cx.sides.vrrp {
        return;
    }
    let Some(name) = super::name_arg(n, cx) else {
        return;
    };
    if d.sync_groups.iter().any(|g| g.group.name == name.value) {
        cx.push(Diagnostic::warning(
            &name.pos,
            format!("vrrp sync group {} already defined", name.value),
        ));
        return;
    }
    let mut g = SyncDraft {
        group: SyncGroup {
            name: name.value,
            group: Vec::new(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            track_processes: Vec::new(),
            notify: Notify::default(),
            global_tracking: false,
            sync_group_tracking_weight: false,
            smtp_alert: None,
        },
        members: Vec::new(),
        pos: n.pos().clone(),
        scripts_used: Vec::new(),
    };
    dispatch_block(SYNC_GROUP, "vrrp_sync_group", &mut g, n, cx);
    d.commands.append(&mut g.scripts_used);
    d.sync_groups.push(g);
}

/// Members checked against the instances keepalived kept, as its `vrrp_sync_set_group`.
pub fn resolve_sync_groups(
    groups: Vec<SyncDraft>,
    instances: &[VrrpInstance],
    cx: &mut Cx,
) -> Vec<SyncGroup> {
    let mut taken: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for mut g in groups {
        let name = g.group.name.clone();
        if g.group.group.is_empty() {
            cx.push(Diagnostic::warning(
                &g.pos,
                format!("Sync group {name} has no virtual router(s). removing"),
            ));
            continue;
        }
        let mut kept = Vec::new();
        for (m, pos) in g.group.group.iter().zip(&g.members) {
            if !instances.iter().any(|i| &i.name == m) {
                cx.push(Diagnostic::warning(
                    pos,
                    format!("Virtual router {m} specified in sync group {name} doesn't exist - ignoring"),
                ));
            } else if taken.contains(m) {
                cx.push(Diagnostic::warning(
                    pos,
                    format!("Virtual router {m} cannot exist in more than one sync group; ignoring {name}"),
                ));
            } else {
                taken.push(m.clone());
                kept.push(m.clone());
            }
        }
        match kept.len() {
            0 => {
                cx.push(Diagnostic::warning(
                    &g.pos,
                    format!("Sync group {name}, no matching virtual router found in group declaration - removing"),
                ));
                continue;
            }
            1 => cx.push(Diagnostic::warning(
                &g.pos,
                format!("Sync group {name} has only 1 virtual router(s) - this probably isn't what you want"),
            )),
            _ => {}
        }
        g.group.group = kept;
        out.push(g.group);
    }
    out
}

/// keepalived's rule for members of a sync group without `sync_group_tracking_weight`, and for
/// the address owner: their trackers may not move the priority. A weighted tracked interface
/// counts as FAULT only (its weight becomes 0; the owner stops tracking it); a weighted
/// script, or a tracked file with a weight of its own, is not tracked at all; a file with the
/// default weight counts as FAULT only.
pub fn no_weights_in_groups(
    instances: &mut [VrrpInstance],
    groups: &[SyncGroup],
    scripts: &[VrrpScript],
    files: &[TrackFile],
    cx: &mut Cx,
) {
    for i in instances {
        let group = groups.iter().find(|g| g.group.contains(&i.name));
        let in_group = group.is_some_and(|g| !(g.sync_group_tracking_weight || g.global_tracking));
        let owner = i.priority == 255;
        if !in_group && !owner {
            continue;
        }
        let why = if in_group {
            "SYNC group"
        } else {
            "address owner"
        };
        let pos = i.source.as_ref().map(|s| {
            let f: std::sync::Arc<std::path::Path> = s.file.as_path().into();
            Pos::new(&f, s.line, s.col)
        });
        let Some(pos) = pos else { continue };
        let name = i.name.clone();
        i.track_interfaces.retain_mut(|t| {
            if t.weight.unwrap_or(0) == 0 {
                return true;
            }
            let w = if in_group { "weight " } else { "" };
            cx.push(Diagnostic::warning(
                &pos,
                format!(
                    "({name}) ignoring {} tracked interface {w}due to {why}",
                    t.name
                ),
            ));
            t.weight = Some(0);
            in_group
        });
        i.track_scripts.retain(|t| {
            let weight = t.weight.unwrap_or_else(|| {
                scripts
                    .iter()
                    .find(|s| s.name == t.name)
                    .map_or(0, |s| s.weight)
            });
            if weight == 0 {
                return true;
            }
            let why = if in_group {
                "SYNC group"
            } else {
                "address_owner"
            };
            cx.push(Diagnostic::warning(
                &pos,
                format!(
                    "({name}) ignoring tracked script {} with weights due to {why}",
                    t.name
                ),
            ));
            false
        });
        i.track_files.retain_mut(|t| {
            let weight = t.weight.unwrap_or_else(|| {
                files.iter().find(|f| f.name == t.name).map_or(1, |f| f.weight)
            });
            let why = if in_group { "SYNC group" } else { "address_owner" };
            let file = files.iter().find(|f| f.name == t.name).map_or_else(
                || t.name.clone(),
                |f| f.file.display().to_string(),
            );
            match weight {
                0 => true,
                1 => {
                    cx.push(Diagnostic::warning(
                        &pos,
                        format!("({name}) ignoring weight from tracked file {file} due to {why}. specify weight 0"),
                    ));
                    t.weight = Some(0);
                    true
                }
                w => {
                    cx.push(Diagnostic::warning(
                        &pos,
                        format!("({name}) ignoring tracked file {file} with weight {w} due to {why}"),
                    ));
                    false
                }
            }
        });
    }
}

/// `track_virtual_server { 192.0.2.100 80 [weight N] | fwmark N [weight N] | group NAME … }`.
pub fn track_virtual_servers<'a>(
    node: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
) -> Vec<Spanned<TrackVirtualServer>> {
    let mut out = Vec::new();
    for c in &node.children {
        let words: Vec<&str> = std::iter::once(c.name())
            .chain(c.args.iter().map(|a| &*a.text))
            .collect();
        let err = |cx: &mut Cx, msg: String| cx.push(Diagnostic::warning(c.pos(), msg));
        let (vs, rest) = match words.as_slice() {
            ["fwmark", m, rest @ ..] => match m.parse() {
                Ok(m) => (VsRef::Fwmark(m), rest),
                Err(_) => {
                    err(cx, format!("fwmark '{m}' is not a number"));
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
                            err(cx, format!("port '{p}' is not a number"));
                            continue;
                        }
                    },
                    _ => (VsRef::Addr { addr, port: None }, rest),
                },
                Err(_) => {
                    cx.push(
                        Diagnostic::warning(
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
                    err(
                        cx,
                        format!("weight '{w}' invalid - must be between -254 and 254"),
                    );
                    continue;
                }
            },
            other => {
                err(
                    cx,
                    format!("track_virtual_server: unexpected '{}'", other.join(" ")),
                );
                continue;
            }
        };
        out.push(Spanned::new(TrackVirtualServer { vs, weight }, c.pos()));
    }
    out
}

#[derive(Default)]
pub struct FileKeys {
    /// The block's name, for keepalived's messages.
    name: String,
    file: Option<String>,
    weight: Option<(i32, bool)>,
    init_file: Option<InitFile>,
}

/// `track_file NAME { … }` (also `vrrp_track_file`).
pub static TRACK_FILE: &[Keyword<FileKeys>] = &[
    // track_file_file_handler checks for the word first; it takes the first word.
    missing(
        "track file file name missing",
        ok("file", Arg::Word(|f, v| f.file = Some(v.value))),
    ),
    ok(
        "weight",
        Arg::Custom("-254..254 [reverse]", |f, n, cx| {
            f.weight = weight(n, WeightOf::File(&f.name), cx).or(f.weight)
        }),
    ),
    ok(
        "init_file",
        Arg::Custom("[VALUE] [overwrite]", |f, n, cx| {
            let mut init = InitFile {
                value: 0,
                overwrite: false,
            };
            for a in &n.args {
                match parse_int(&a.text) {
                    Some(v) => init.value = v,
                    None if a.text == "overwrite" => init.overwrite = true,
                    None => cx.push(Diagnostic::warning(
                        &a.pos,
                        format!(
                            "init_file: '{}' is neither a number nor `overwrite`",
                            a.text
                        ),
                    )),
                }
            }
            f.init_file = Some(init);
        }),
    ),
];

pub fn track_file<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(name) = super::name_arg(n, cx) else {
        return;
    };
    let mut k = FileKeys {
        name: name.value.clone(),
        ..Default::default()
    };
    dispatch_block(TRACK_FILE, n.name(), &mut k, n, cx);
    let Some(file) = k.file else {
        // keepalived says it at the block's end (track_file_end_handler).
        cx.push(Diagnostic::warning(
            n.close.as_ref().unwrap_or(n.pos()),
            format!("No file set for track_file {} - ignoring", name.value),
        ));
        return;
    };
    let (weight, reverse) = k.weight.unwrap_or((1, false));
    d.track_files.push(TrackFile {
        name: name.value,
        file: file.into(),
        weight,
        reverse,
        init_file: k.init_file,
    });
}

#[derive(Default)]
pub struct ProcessKeys {
    /// The block's name, for keepalived's messages.
    name: String,
    process: Option<Spanned<Vec<String>>>,
    param_match: Option<Spanned<ParamMatch>>,
    weight: Option<(i32, bool)>,
    quorum: Option<u32>,
    quorum_max: Option<Spanned<u32>>,
    fork_delay: Option<Duration>,
    terminate_delay: Option<Duration>,
    delay: Option<Duration>,
    full_command: bool,
}

/// keepalived's range for the process delays (it reads microseconds, at least 1).
const PROC_DELAY: (f64, f64) = (0.000_001, 3600.0);

/// `vrrp_track_process NAME { … }`.
pub static TRACK_PROCESS: &[Keyword<ProcessKeys>] = &[
    ok(
        "process",
        Arg::Custom("NAME [PARAMETER…]", |p, n, cx| {
            if n.args.is_empty() {
                crate::registry::missing_value(n, &mut cx.diags);
                return;
            }
            let words = n.args.iter().map(|a| a.text.to_string()).collect();
            p.process = Some(Spanned::new(words, n.pos()));
        }),
    ),
    // Bare `param_match` is keepalived's "exactly these parameters".
    ok(
        "param_match",
        Arg::Custom("[initial|partial]", |p, n, cx| {
            let m = match n.args.first().map(|a| &*a.text) {
                None => ParamMatch::Exact,
                Some("initial") => ParamMatch::Initial,
                Some("partial") => ParamMatch::Partial,
                Some(other) => {
                    cx.push(
                        Diagnostic::warning(&n.args[0].pos, format!("Invalid param_match type {other} - ignoring"))
                            .with_help("`param_match` alone (exact), `param_match initial` or `param_match partial`"),
                    );
                    return;
                }
            };
            p.param_match = Some(Spanned::new(m, n.pos()));
        }),
    ),
    ok(
        "weight",
        Arg::Custom("-254..254 [reverse]", |p, n, cx| {
            p.weight = weight(n, WeightOf::Process(&p.name), cx).or(p.weight)
        }),
    ),
    ok(
        "quorum",
        Arg::Int(1, 65535, |p, v| p.quorum = Some(v.value as u32)),
    ),
    ok(
        "quorum_max",
        Arg::Int(0, 65535, |p, v| p.quorum_max = Some(v.map(|q| q as u32))),
    ),
    ok(
        "fork_delay",
        Arg::Secs(PROC_DELAY.0, PROC_DELAY.1, |p, v| {
            p.fork_delay = Some(v.value)
        }),
    ),
    ok(
        "terminate_delay",
        Arg::Secs(PROC_DELAY.0, PROC_DELAY.1, |p, v| {
            p.terminate_delay = Some(v.value)
        }),
    ),
    ok(
        "delay",
        Arg::Secs(PROC_DELAY.0, PROC_DELAY.1, |p, v| p.delay = Some(v.value)),
    ),
    ok("full_command", Arg::Flag(|p, _| p.full_command = true)),
];

/// `vrrp_track_process NAME { … }`, with keepalived's defaults and its rules between `process`
/// parameters, `param_match`, `full_command`, `quorum` and `quorum_max`.
pub fn track_process<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    if !cx.sides.vrrp {
        return;
    }
    let Some(name) = super::name_arg(n, cx) else {
        return;
    };
    let name = name.value;
    let mut k = ProcessKeys {
        name: name.clone(),
        ..Default::default()
    };
    dispatch_block(TRACK_PROCESS, "vrrp_track_process", &mut k, n, cx);
    let Some(Spanned {
        value: words,
        pos: ppos,
    }) = k.process
    else {
        cx.push(Diagnostic::warning(
            n.pos(),
            format!("track process '{name}' process name not specified"),
        ));
        return;
    };
    let (process, params) = (words[0].clone(), words[1..].to_vec());
    let param_match = k
        .param_match
        .map(|m| m.value)
        .or((!params.is_empty()).then_some(ParamMatch::Exact));
    let full_command = k.full_command || param_match.is_some();
    if !full_command && process.len() > 15 {
        cx.push(
            Diagnostic::notice(
                &ppos,
                format!("track process {name}: '{process}' is longer than a process name can be (15 characters), so it never matches"),
            )
            .with_help("add `full_command` to match the command line instead"),
        );
    }
    let (weight, reverse) = k.weight.unwrap_or((0, false));
    let mut quorum = k.quorum.unwrap_or(1);
    let mut quorum_max = k.quorum_max.as_ref().map(|q| q.value);
    if let Some(q) = &k.quorum_max {
        // keepalived allows `quorum_max 0` with the default quorum: "must not run".
        if (q.value != 0 || quorum > 1) && q.value < quorum {
            cx.push(Diagnostic::warning(
                &q.pos,
                "quorum_max is less than quorum - ignoring",
            ));
            quorum_max = None;
        } else if q.value == 0 {
            quorum = 0;
        }
    }
    d.track_processes.push(TrackProcess {
        name,
        process,
        params,
        param_match,
        weight,
        reverse,
        quorum,
        quorum_max,
        fork_delay: k.fork_delay,
        terminate_delay: k.terminate_delay,
        delay: k.delay,
        full_command,
    });
}

const NO_EFFECT: &str = "the setting has no effect";

/// `garp_group { … }`.
pub static GARP_GROUP: &[Keyword<GarpGroup>] = &[
    kw(
        "garp_interval",
        Status::Unsupported(NO_EFFECT),
        Arg::Secs(0.0, 1.0, |g, v| g.garp_interval = Some(v.value)),
    ),
    kw(
        "gna_interval",
        Status::Unsupported(NO_EFFECT),
        Arg::Secs(0.0, 1.0, |g, v| g.gna_interval = Some(v.value)),
    ),
    kw(
        "interface",
        Status::Unsupported(NO_EFFECT),
        Arg::Word(|g, v| g.interfaces.push(v.value)),
    ),
    kw(
        "interfaces",
        Status::Unsupported(NO_EFFECT),
        Arg::Items("IFNAME…", |g, n, _| {
            g.interfaces
                .extend(n.children.iter().map(|c| c.name().to_string()))
        }),
    ),
];

pub fn garp_group<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let mut g = GarpGroup {
        garp_interval: None,
        gna_interval: None,
        interfaces: Vec::new(),
    };
    crate::registry::dispatch_quiet(GARP_GROUP, "garp_group", &mut g, n, cx);
    d.garp_groups.push(g);
}

/// The tables of this module.
pub fn contexts() -> Vec<Context> {
    vec![
        Context::of("vrrp_script", VRRP_SCRIPT),
        Context::of("vrrp_sync_group", SYNC_GROUP),
        Context::of("track_file", TRACK_FILE),
        Context::of("vrrp_track_file", TRACK_FILE),
        Context::of("vrrp_track_process", TRACK_PROCESS),
        Context::of("garp_group", GARP_GROUP),
    ]
}

/// keepalived looks a `track_*` entry up when it reads it: a script, process or file defined
/// later in the file is "not found" for the instances before it. Checked as each instance
/// ends, against what the draft holds then.
pub fn check_known(
    owner: &str,
    tracks: &mut Vec<Spanned<Track>>,
    kind: Kind,
    d: &Draft,
    cx: &mut Cx,
) {
    tracks.retain(|t| {
        let n = &t.value.name;
        let found = match kind {
            Kind::Script => d.scripts.iter().any(|s| &s.name == n && s.script.is_some()),
            Kind::Process => d.track_processes.iter().any(|p| &p.name == n),
            Kind::File => d.track_files.iter().any(|f| &f.name == n),
            Kind::Interface => true,
        };
        if !found {
            let what = match kind {
                Kind::Script => "track script",
                Kind::Process => "track process",
                _ => "track file",
            };
            cx.push(Diagnostic::warning(
                &t.pos,
                format!("({owner}) {what} {n} not found, ignoring..."),
            ));
        }
        found
    });
}
