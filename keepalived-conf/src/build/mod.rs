//! keepalived semantics: keyword tree → typed [`Config`], with keepalived's defaults and checks.
//!
//! Each block family has its module and its table ([`crate::registry`] rows): `global_defs` in
//! [`global`], `vrrp_instance` in [`instance`], addresses in [`vip`], scripts, tracked objects
//! and sync groups in [`track`], virtual servers in [`vs`] and their checkers in [`checker`].
//! Statements fill drafts; checks that need several values (or several blocks) run when the
//! drafts resolve, here and in each module's `resolve`.

pub mod checker;
pub mod global;
pub mod instance;
pub mod sync_daemon;
pub mod track;
pub mod vip;
pub mod vs;

use std::collections::HashSet;

use super::diag::{Diagnostic, Pos, Spanned};
use super::iproute;
use super::model::{Config, GarpGroup, Route, Rule, TrackFile, TrackProcess};
use super::model::{VirtualAddress, VirtualServer};
use super::registry::{
    dispatch_block, kw, missing, ok, skip, skip_block, when_missing, Arg, Context, Cx, Keyword,
    Status, WhenMissing,
};
use super::tree::Node;

/// Everything read so far.
#[derive(Default)]
pub struct Draft {
    pub global: global::GlobalDraft,
    pub instances: Vec<instance::InstDraft>,
    instance_names: HashSet<String>,
    pub scripts: Vec<track::ScriptDraft>,
    pub sync_groups: Vec<track::SyncDraft>,
    pub static_addresses: Vec<VirtualAddress>,
    /// The static addresses without `dev` (as written, and where): they go on
    /// `default_interface`, which must exist.
    pub static_defaulted: Vec<(String, Pos)>,
    pub static_routes: Vec<Route>,
    pub static_rules: Vec<Rule>,
    /// Interfaces named by static routes and rules.
    pub route_ifaces: Vec<IfaceRef>,
    pub virtual_servers: Vec<VirtualServer>,
    pub virtual_server_groups: Vec<lbcore::spec::VirtualServerGroupSpec>,
    pub track_files: Vec<TrackFile>,
    pub track_processes: Vec<TrackProcess>,
    pub garp_groups: Vec<GarpGroup>,
    pub ssl: Option<checks::spec::TlsSpec>,
    pub linkbeat_interfaces: Vec<String>,
    /// Top-level `net_namespace NAME`.
    pub net_namespace: Option<String>,
    /// Every script command of the VRRP side with where it was given, for the host's script
    /// checks.
    pub commands: Vec<Spanned<String>>,
    /// The same for the checker's scripts, checked even when the VRRP side stops.
    pub checker_commands: Vec<Spanned<String>>,
}

/// Build the model from the top-level statements and the `}`s among them (each after that
/// many statements).
pub fn build<'a>(nodes: &[Node<'a>], closes: &[(usize, Pos)], cx: &mut Cx<'_, 'a>) -> Config {
    let mut draft = Draft::default();
    cx.bfd_instances = nodes
        .iter()
        .filter(|n| n.name() == "bfd_instance")
        .filter_map(|n| Some(n.args.first()?.text.to_string()))
        .collect();
    cx.script_user = crate::script_user::DefaultUser::of_file(nodes, cx.host);
    crate::registry::dispatch_top(TOP, &mut draft, nodes, closes, cx);
    let config = draft.resolve(cx);
    cx.script_user.report(&mut cx.diags);
    config
}

const NO_BFD: &str = "vrrpd has no BFD; the block is skipped";

/// The top level.
pub static TOP: &[Keyword<Draft>] = &[
    ok(
        "global_defs",
        Arg::Block("global_defs", |d, n, cx| {
            dispatch_block(global::TABLE, "global_defs", &mut d.global, n, cx)
        }),
    ),
    ok("vrrp_instance", Arg::Custom("NAME { vrrp_instance }", top_instance)),
    ok("vrrp_script", Arg::Custom("NAME { vrrp_script }", track::vrrp_script)),
    ok("vrrp_sync_group", Arg::Custom("NAME { vrrp_sync_group }", track::sync_group)),
    ok("track_file", Arg::Custom("NAME { track_file }", track::track_file)),
    ok("vrrp_track_file", Arg::Custom("NAME { vrrp_track_file }", track::track_file)),
    ok(
        "vrrp_track_process",
        Arg::Custom("NAME { vrrp_track_process }", track::track_process),
    ),
    kw(
        "garp_group",
        Status::Unsupported("modelled, no effect: each instance paces its own gratuitous ARPs / NAs"),
        Arg::Block("garp_group", track::garp_group),
    ),
    ok("static_ipaddress", Arg::Items("ADDRESS…", vip::static_addresses)),
    ok("static_routes", Arg::Items("ROUTE…", static_routes)),
    ok("static_rules", Arg::Items("RULE…", static_rules)),
    kw(
        "linkbeat_interfaces",
        Status::Partial("modelled; vrrpd follows every link through rtnetlink events, no polling"),
        Arg::Custom("{ IFNAME… }", |d, n, _| {
            d.linkbeat_interfaces
                .extend(n.children.iter().map(|c| c.name().to_string()));
        }),
    ),
    missing(
        "net_namespace name missing - ignoring",
        ok(
            "net_namespace",
            Arg::Word(|d, v| d.net_namespace = Some(v.value)),
        ),
    ),
    ok("SSL", Arg::Block("SSL", vs::ssl)),
    kw(
        "virtual_server_group",
        Status::Partial("address and range entries are forwarded; `fwmark` entries are only checked"),
        Arg::Custom("NAME { ENTRY… }", vs::vs_group),
    ),
    kw(
        "virtual_server",
        Status::Partial("checked, and balanced over IPv4 and IPv6 by vrrpd's own dataplane (no IPVS); `fwmark` and SCTP virtual servers are only checked (see `protocol`)"),
        Arg::Custom("IP PORT | fwmark N | group NAME { virtual_server }", vs::virtual_server),
    ),
    kw(
        "bfd_instance",
        Status::Unsupported(NO_BFD),
        Arg::Custom("NAME { bfd_instance }", |_, n, cx| {
            crate::registry::dispatch_quiet(BFD_INSTANCE, "bfd_instance", &mut (), n, cx)
        }),
    ),
    skip("net_namespace_ipvs", "vrrpd runs no IPVS"),
    skip("namespace_with_ipsets", "vrrpd uses no ipsets"),
    skip("use_pid_dir", "vrrpd's pid files are where -p / -r say"),
    missing(
        "instance name missing - ignoring",
        skip("instance", "vrrpd's files are named by -p / -r and the config file"),
    ),
    when_missing(
        WhenMissing::Abort,
        skip("child_wait_time", "vrrpd is one process: there are no children to wait for"),
    ),
    skip("linkbeat_use_polling", "vrrpd follows links through rtnetlink events"),
    kw(
        "track_group",
        Status::Unsupported("tracking groups are not implemented; the block is skipped"),
        Arg::Custom("NAME { group { INSTANCE… } }", |_, n, cx| {
            if n.args.is_empty() {
                cx.push(Diagnostic::warning(n.pos(), "track_group must have a name - skipping"));
                return;
            }
            crate::registry::dispatch_quiet(TRACK_GROUP, "track_group", &mut (), n, cx)
        }),
    ),
    skip_block(
        "interface_up_down_delays",
        "link changes take effect at once; the block is skipped",
    ),
];

/// `bfd_instance NAME { … }`: known, skipped; a value left out stops keepalived's reading
/// (its handlers read the word unchecked).
pub static BFD_INSTANCE: &[Keyword<()>] = &[
    when_missing(WhenMissing::Abort, skip("source_ip", NO_BFD)),
    when_missing(WhenMissing::Abort, skip("neighbor_ip", NO_BFD)),
    when_missing(WhenMissing::Abort, skip("neighbour_ip", NO_BFD)),
    when_missing(WhenMissing::Abort, skip("min_rx", NO_BFD)),
    when_missing(WhenMissing::Abort, skip("min_tx", NO_BFD)),
    when_missing(WhenMissing::Abort, skip("idle_tx", NO_BFD)),
    when_missing(WhenMissing::Abort, skip("multiplier", NO_BFD)),
    skip("passive", NO_BFD),
    when_missing(WhenMissing::Abort, skip("ttl", NO_BFD)),
    when_missing(WhenMissing::Abort, skip("hoplimit", NO_BFD)),
    when_missing(WhenMissing::Abort, skip("max_hops", NO_BFD)),
    when_missing(WhenMissing::Abort, skip("weight", NO_BFD)),
    skip("vrrp", NO_BFD),
    skip("checker", NO_BFD),
];

/// `track_group NAME { group { … } }`: known, skipped.
pub static TRACK_GROUP: &[Keyword<()>] =
    &[skip_block("group", "tracking groups are not implemented")];

/// The tables of every block, for the compatibility table and the registry test.
pub fn contexts() -> Vec<Context> {
    let mut v = vec![
        Context::of("", TOP),
        Context::of("global_defs", global::TABLE),
        Context::of("vrrp_instance", instance::TABLE),
        Context::of("vrrp_instance/authentication", instance::AUTH),
        Context::of("bfd_instance", BFD_INSTANCE),
        Context::of("track_group", TRACK_GROUP),
    ];
    v.extend(track::contexts());
    v.extend(vs::contexts());
    v
}

fn top_instance<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    if !cx.sides.vrrp {
        return;
    }
    let Some(name) = name_arg(n, cx) else { return };
    if !d.instance_names.insert(name.value.clone()) {
        // keepalived reports it, skips the block and runs the first one.
        cx.push(
            Diagnostic::warning(
                &name.pos,
                format!("vrrp instance {} already defined", name.value),
            )
            .with_help("this block is skipped; rename it if both are meant"),
        );
        return;
    }
    let mut inst = instance::InstDraft::new(name, n.pos());
    inst.close = n.close.clone();
    dispatch_block(instance::TABLE, "vrrp_instance", &mut inst, n, cx);
    d.commands.append(&mut inst.scripts_used);
    let owner = inst.name.value.clone();
    track::check_known(&owner, &mut inst.track_scripts, track::Kind::Script, d, cx);
    track::check_known(
        &owner,
        &mut inst.track_processes,
        track::Kind::Process,
        d,
        cx,
    );
    track::check_known(&owner, &mut inst.track_files, track::Kind::File, d, cx);
    d.instances.push(inst);
}

fn static_routes<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    for c in &n.children {
        if let Some(r) = iproute::parse_route(c, false, cx) {
            d.route_ifaces.extend(IfaceRef::route(&r, c));
            d.static_routes.push(r);
        }
    }
}

fn static_rules<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    for c in &n.children {
        if let Some(r) = iproute::parse_rule(c, cx) {
            d.route_ifaces.extend(IfaceRef::rule(&r, c));
            d.static_rules.push(r);
        }
    }
}

/// A block's name (`vrrp_instance NAME`), or keepalived's complaint. keepalived 2.2.7 skips
/// an instance or sync group whose name is not one word (none, or a template's
/// `<%= name %>`) and runs; any other nameless block (`vrrp_script {`,
/// `vrrp_track_process {`, `track_file {`, `virtual_server_group {`) stops it reading the
/// file (its missing-parameter abort), so the file is refused, and words after the name are
/// ignored.
pub fn name_arg<'a>(node: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<Spanned<String>> {
    let one_word = matches!(node.name(), "vrrp_instance" | "vrrp_sync_group");
    if let Some(a) = node
        .args
        .first()
        .filter(|_| !one_word || node.args.len() == 1)
    {
        return Some(Spanned::new(a.text.to_string(), &a.pos));
    }
    match node.name() {
        "vrrp_instance" => cx.push(Diagnostic::warning(
            node.pos(),
            "vrrp_instance must have a name",
        )),
        "vrrp_sync_group" => cx.push(Diagnostic::warning(
            node.pos(),
            "vrrp_sync_group must have a name - skipping",
        )),
        _ => super::registry::missing_value(node, &mut cx.diags),
    }
    None
}

/// A count keepalived reads with `read_unsigned` in `0..=max` and 0 taken as 1
/// (`garp_master_repeat`, a vrrp_script's `interval`): a refused word is reported in the
/// reader's words and then the handler's (`invalid`, given the word), and nothing is set;
/// 0 is reported with `zero` (when the handler says so) and read as 1. keepalived reads the
/// word unchecked, so a line without it stops the file.
pub fn read_count<'a>(
    n: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
    max: u64,
    invalid: &dyn Fn(&str) -> String,
    zero: Option<&str>,
) -> Option<Spanned<u64>> {
    let Some(t) = n.args.first() else {
        super::registry::missing_value(n, &mut cx.diags);
        return None;
    };
    match (super::registry::read_unsigned(&t.text, 0, max), zero) {
        (Err(said), _) => {
            cx.push(Diagnostic::warning(&t.pos, said));
            cx.push(Diagnostic::warning(&t.pos, invalid(&t.text)));
            None
        }
        (Ok(0), Some(zero)) => {
            cx.push(Diagnostic::warning(&t.pos, zero));
            Some(Spanned::new(1, &t.pos))
        }
        (Ok(v), _) => Some(Spanned::new(v, &t.pos)),
    }
}

/// A notify script line (`notify_master "…" [USER [GROUP]]`): the command to put in `slot`
/// and the user it runs as, or `None` when there is
/// nothing to set. keepalived 2.2.7 keeps the first of a repeated notify keyword and reports
/// the others ("already specified - ignoring"); a copy-pasted `notify_master` line meant as
/// `notify_backup` must not replace the script the Master runs.
pub fn notify_line<'a>(
    slot: &Option<String>,
    owner: &str,
    n: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
) -> Option<(Spanned<String>, Option<String>)> {
    if let (Some(_), Some(first)) = (slot, n.args.first()) {
        cx.push(Diagnostic::warning(
            &first.pos,
            format!(
                "{owner} {} script already specified - ignoring {}",
                n.name(),
                first.text
            ),
        ));
        return None;
    }
    let line = super::registry::script_statement(n, &mut cx.diags)?;
    let cmd = &line.command;
    // keepalived reads `COMMAND [USER [GROUP]]`: an unquoted command's first argument is
    // taken as the user, and the script is dropped when there is no such user.
    let user_at = n.args.get(1).map_or(n.pos(), |a| &a.pos);
    let dropped = match line.rest.first() {
        None => (!cx
            .script_user
            .available(crate::process::Side::Vrrp, n.pos()))
        .then(|| {
            let what = format!(
                "Failed to set default user for notify script {} - ignoring",
                first_word(cmd)
            );
            Diagnostic::notice(n.pos(), what)
        }),
        Some(u) if cx.host.user_exists(u, line.rest.get(1).map(String::as_str)) == Some(false) => {
            let what = format!("Invalid user/group for notify script {cmd} - ignoring");
            Some(Diagnostic::notice(user_at, what).with_help(format!(
                "`{}` names a user (and group) that does not exist; if it is an argument, put the command and its arguments in double quotes",
                line.rest.join(" ")
            )))
        }
        Some(_) => None,
    };
    if let Some(d) = dropped {
        cx.push(d);
        return None;
    }
    let user_group = (!line.rest.is_empty()).then(|| {
        let user_group: Vec<&str> = line.rest.iter().take(2).map(String::as_str).collect();
        user_group.join(" ")
    });
    let at = n.args.first().map_or(n.pos(), |a| &a.pos);
    Some((Spanned::new(line.command, at), user_group))
}

/// An interface a route or rule names, where.
pub struct IfaceRef {
    pub name: String,
    pub pos: Pos,
    /// keepalived's words for the user: "VROUTE nexthop", "rule", "ip address 192.0.2.1".
    pub what: String,
}

impl IfaceRef {
    /// The `dev` of an address line (`at`), if it has one.
    pub fn address(v: &VirtualAddress, at: &Node) -> Option<Self> {
        Some(Self {
            name: v.dev.clone()?,
            pos: at.pos().clone(),
            what: format!("ip address {}", at.name()),
        })
    }

    pub fn route(r: &Route, at: &Node) -> Vec<Self> {
        let devs = r
            .dev
            .iter()
            .chain(r.nexthops.iter().filter_map(|n| n.dev.as_ref()));
        Self::all(devs, at, "VROUTE nexthop")
    }

    pub fn rule(r: &Rule, at: &Node) -> Vec<Self> {
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
                what: what.to_string(),
            })
            .collect()
    }
}

impl Draft {
    fn resolve(mut self, cx: &mut Cx) -> Config {
        let sync_daemon = self.global.lvs_sync_daemon.take();
        let (mut global, lower_explicit) = std::mem::take(&mut self.global).resolve(cx);
        if global.net_namespace.is_none() {
            global.net_namespace = self.net_namespace.take();
        }
        for a in &mut self.static_addresses {
            // keepalived puts a static address without `dev` on the default interface.
            a.dev.get_or_insert_with(|| {
                global
                    .default_interface
                    .clone()
                    .unwrap_or_else(|| "eth0".into())
            });
        }
        // keepalived's VRRP process stops at a missing interface, before its script checks, and
        // has nothing to check without an instance (a `vrrp_script` alone is never vetted).
        let vrrp_stops = self.check_interfaces(&global, cx) || self.instances.is_empty();
        self.check_tracked_virtual_servers(cx);
        if !vrrp_stops {
            self.disable_missing_scripts(cx);
        }
        self.check_script_security(&global, vrrp_stops, cx);
        let known = instance::Known {
            global: &global,
            lower_explicit,
        };
        let keys: Vec<_> = self.instances.iter().filter_map(|i| i.vrid_key()).collect();
        let mut instances: Vec<_> = std::mem::take(&mut self.instances)
            .into_iter()
            .filter_map(|i| i.resolve(&known, cx))
            .collect();
        // The collect reuses the drafts' larger allocation: at 255 instances, 175 slots
        // (120 KB) the daemon would carry for its life.
        instances.shrink_to_fit();
        instance::check_vrid_conflicts(&keys, cx);
        let sync_groups =
            track::resolve_sync_groups(std::mem::take(&mut self.sync_groups), &instances, cx);
        global.lvs_sync_daemon = sync_daemon.and_then(|s| s.resolve(&instances, cx));
        let scripts: Vec<_> = self
            .scripts
            .iter()
            .filter_map(|s| s.script.clone())
            .collect();
        track::no_weights_in_groups(
            &mut instances,
            &sync_groups,
            &scripts,
            &self.track_files,
            cx,
        );
        Config {
            global,
            instances,
            scripts,
            sync_groups,
            static_addresses: self.static_addresses,
            static_routes: self.static_routes,
            static_rules: self.static_rules,
            virtual_servers: vs::with_ssl(self.virtual_servers, self.ssl.as_ref()),
            virtual_server_groups: self.virtual_server_groups,
            track_files: self.track_files,
            track_processes: self.track_processes,
            garp_groups: self.garp_groups,
            ssl: self.ssl,
            linkbeat_interfaces: self.linkbeat_interfaces,
        }
    }

    /// keepalived's VRRP process stops on any interface it cannot find (the instance's, a
    /// tracked one, a route's), unless `dynamic_interfaces` lets it wait for them: whether
    /// it does.
    fn check_interfaces(&self, global: &crate::model::GlobalDefs, cx: &mut Cx) -> bool {
        if global.dynamic_interfaces {
            return false;
        }
        let mut missing = false;
        let mut check = |cx: &mut Cx, name: &str, pos: &Pos, msg: String| {
            if cx.host.interface_exists(name) == Some(false) {
                cx.push(Diagnostic::error(pos, msg));
                missing = true;
            }
        };
        for i in &self.instances {
            let iname = &i.name.value;
            if let Some(ifname) = i.interface.as_ref().filter(|i| i.value == "lo") {
                // keepalived knows the interface's type: a loopback has no VRRP, and the
                // instance is then left without an interface, which stops its VRRP process.
                if cx.host.interface_exists("lo").is_some() {
                    cx.push(
                        Diagnostic::error(
                            &ifname.pos,
                            format!("({iname}) cannot use a loopback interface (lo) for vrrp - ignoring"),
                        )
                        .with_help("name the interface the peers are reached on"),
                    );
                }
                continue;
            }
            if let Some(ifname) = &i.interface {
                check(
                    cx,
                    &ifname.value,
                    &ifname.pos,
                    format!(
                        "WARNING - interface {} for vrrp_instance {iname} doesn't exist",
                        ifname.value
                    ),
                );
            }
            for t in &i.track_interfaces {
                let n = &t.value.name;
                check(
                    cx,
                    n,
                    &t.pos,
                    format!("({iname}) tracked interface {n} doesn't exist"),
                );
            }
        }
        let default_if = global.default_interface.as_deref().unwrap_or("eth0");
        for (text, pos) in &self.static_defaulted {
            check(
                cx,
                default_if,
                pos,
                format!("Static address {text} requires either an interface or default interface must exist"),
            );
        }
        let refs = self.instances.iter().flat_map(|i| &i.route_ifaces);
        for r in self.route_ifaces.iter().chain(refs) {
            check(
                cx,
                &r.name,
                &r.pos,
                format!(
                    "WARNING - interface {} for {} doesn't exist",
                    r.name, r.what
                ),
            );
        }
        if missing {
            if let Some(first) = cx.diags.list().iter().rev().find(|d| d.is_error()) {
                let pos = Pos::new(&first.file, 0, 0);
                cx.push(
                    Diagnostic::error(&pos, "Non-existent interface specified in configuration")
                        .flagged(crate::diag::Flag::Fatal)
                        .with_help("create the interface first, or add `dynamic_interfaces` to global_defs to wait for it in FAULT"),
                );
            }
        }
        missing
    }

    /// vrrpd's `track_virtual_server` must name a virtual server of this file (when the
    /// checker side is read at all).
    fn check_tracked_virtual_servers(&self, cx: &mut Cx) {
        if !cx.sides.checker {
            return;
        }
        for i in &self.instances {
            for t in &i.track_virtual_servers {
                if !self
                    .virtual_servers
                    .iter()
                    .any(|vs| t.value.vs.matches(&vs.service.key))
                {
                    cx.push(Diagnostic::error(
                        &t.pos,
                        format!(
                            "({}) track_virtual_server: no virtual_server {}",
                            i.name.value, t.value.vs
                        ),
                    ));
                }
            }
        }
    }

    /// keepalived disables a script whose program cannot be found, tracked or not, once the
    /// file has an instance (its security check of every `vrrp_script`); the instances
    /// tracking it run without it.
    fn disable_missing_scripts(&mut self, cx: &mut Cx) {
        if self.instances.is_empty() {
            return;
        }
        for s in &mut self.scripts {
            let (Some(script), Some(cmd)) = (&s.script, &s.command) else {
                continue;
            };
            let prog = first_word(&script.script);
            if opens_a_file(&script.script) || cx.host.program(&prog) != Some(None) {
                continue;
            }
            cx.push(
                Diagnostic::warning(
                    &cmd.pos,
                    format!(
                        "Disabling track script {} since not found/accessible",
                        s.name
                    ),
                )
                .with_help(format!("`{prog}` does not exist (or is not on PATH)")),
            );
            s.script = None;
        }
        let gone: Vec<String> = self
            .scripts
            .iter()
            .filter(|s| s.script.is_none())
            .map(|s| s.name.clone())
            .collect();
        for i in &mut self.instances {
            i.track_scripts.retain(|t| !gone.contains(&t.value.name));
        }
        for g in &mut self.sync_groups {
            g.forget_scripts(&gone);
        }
    }

    /// A script that exists and would run as root needs `enable_script_security`: keepalived
    /// runs it all the same, and its `-t` exits 6. The VRRP side's are not checked when it
    /// stops (`vrrp_stops`).
    fn check_script_security(
        &self,
        global: &crate::model::GlobalDefs,
        vrrp_stops: bool,
        cx: &mut Cx,
    ) {
        if global.script_security {
            return;
        }
        let vrrp = if vrrp_stops {
            &[][..]
        } else {
            &self.commands[..]
        };
        let commands = self.checker_commands.iter().chain(vrrp);
        for cmd in commands.filter(|c| !opens_a_file(&c.value)) {
            if let Some(Some(path)) = cx.host.program(&first_word(&cmd.value)) {
                cx.push(
                    Diagnostic::warning(
                        &cmd.pos,
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

/// keepalived's "is this file openable" scripts (`</dev/tcp/127.0.0.1/443`): run through the
/// shell, never looked up as a program.
pub fn opens_a_file(cmd: &str) -> bool {
    cmd.trim_start()
        .strip_prefix('<')
        .is_some_and(|r| r.trim_start_matches([' ', '\t']).starts_with('/'))
}

/// The program a script line runs, as keepalived splits it.
pub fn first_word(cmd: &str) -> String {
    let words = checks::script::words(cmd).unwrap_or_default();
    words.into_iter().next().unwrap_or_default()
}
