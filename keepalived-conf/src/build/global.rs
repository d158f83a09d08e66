//! `global_defs { … }`: its table and draft.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use vrrp_proto::packet::Version;

use crate::diag::{Diagnostic, Pos, Spanned};
use crate::model::{Garp, GlobalDefs, NotifyFifo, SmtpServer};
use crate::process::{ProcessDraft, Side};
use crate::registry::{
    checked, kw, missing, ok, skip, when_missing, Arg, Cx, Keyword, Status, WhenMissing,
};
use crate::tree::Node;

/// Garp keys as written (unset ones inherit).
#[derive(Debug, Default, Clone)]
pub struct GarpDraft {
    pub master_delay: Option<Duration>,
    pub master_repeat: Option<u32>,
    pub master_refresh: Option<Duration>,
    pub master_refresh_repeat: Option<u32>,
    pub lower_prio_delay: Option<Duration>,
    pub lower_prio_repeat: Option<u32>,
    pub interval: Option<Duration>,
    pub na_interval: Option<Duration>,
    pub lower_prio_no_advert: Option<bool>,
}

impl GarpDraft {
    /// keepalived: unset keys come from `base`; the lower-priority burst follows the master
    /// burst unless set itself.
    pub fn resolve(&self, base: &Garp, base_lower_explicit: (bool, bool)) -> Garp {
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

/// `global_defs` as written.
#[derive(Default)]
pub struct GlobalDraft {
    defs: GlobalDefs,
    vrrp_version: Option<Version>,
    garp: GarpDraft,
    notify_fifo: FifoDraft,
    vrrp_notify_fifo: FifoDraft,
    lvs_notify_fifo: FifoDraft,
    /// The `*_fifo_script` commands, for the host's script checks.
    pub scripts_used: Vec<Spanned<String>>,
    /// `vrrp_priority`, `checker_rt_priority`, `umask`, ...
    process: ProcessDraft,
    script_user: Option<Spanned<String>>,
    /// Resolved with the instances (its default sync id is the instance's VRID).
    pub lvs_sync_daemon: Option<super::sync_daemon::SyncDaemonDraft>,
}

/// One `*notify_fifo` and its `*notify_fifo_script`, in either order.
#[derive(Default)]
struct FifoDraft {
    path: Option<(PathBuf, Option<String>)>,
    /// Command, `USER [GROUP]`, where.
    script: Option<(String, Option<String>, Pos)>,
}

impl FifoDraft {
    /// `NAME PATH [USER [GROUP]]`.
    fn set_path<'a>(&mut self, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
        if let Some(t) = first(n, cx).filter(|t| has_user(n, n.args.len() > 1, &t.text, "", cx)) {
            self.path = Some((t.text.to_string().into(), rest_words(n)));
        }
    }

    /// `NAME CMD [USER [GROUP]]`: the command is one word or one quoted string.
    fn set_script<'a>(
        &mut self,
        n: &Node<'a>,
        cx: &mut Cx<'_, 'a>,
        used: &mut Vec<Spanned<String>>,
    ) {
        let Some(line) = crate::registry::script_statement(n, &mut cx.diags) else {
            return;
        };
        if has_user(n, !line.rest.is_empty(), &line.command, " script", cx) {
            used.push(Spanned::new(line.command.clone(), n.pos()));
            let user = (!line.rest.is_empty()).then(|| line.rest.join(" "));
            self.script = Some((line.command, user, n.pos().clone()));
        }
    }

    /// The FIFO, or `None` (a script without its FIFO is warned about: nothing to read).
    fn resolve(&self, fifo: &str, cx: &mut Cx) -> Option<NotifyFifo> {
        let Some((path, owner)) = &self.path else {
            if let Some((_, _, pos)) = &self.script {
                cx.push(Diagnostic::notice(
                    pos,
                    format!("`{fifo}_script` without `{fifo}`: ignored"),
                ));
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

fn first<'n, 'a>(n: &'n Node<'a>, cx: &mut Cx) -> Option<&'n crate::lexer::Token<'a>> {
    let t = n.args.first();
    if t.is_none() {
        crate::registry::missing_value(n, &mut cx.diags);
    }
    t
}

/// `vrrp_garp_master_repeat` / `vrrp_garp_master_refresh_repeat`, as keepalived's handlers
/// read them (`vrrp_garp_rep_handler`): any unsigned count, 0 taken as 1.
fn repeats<'a>(n: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<u32> {
    let what = n.name();
    let invalid = |w: &str| format!("{what} '{w}' invalid - ignoring");
    let zero = format!("{what} must be greater than 0, setting to 1");
    super::read_count(n, cx, u32::MAX.into(), &invalid, Some(&zero)).map(|v| v.value as u32)
}

/// Whether a FIFO line (`what` of `n.name()`) has a user: its own, or the default script
/// user's; keepalived ignores the line otherwise. `notify_fifo` is read by both of its
/// processes, the checker first.
fn has_user(n: &Node, own: bool, value: &str, what: &str, cx: &mut Cx) -> bool {
    let side = match n.name().starts_with("vrrp_") {
        true => Side::Vrrp,
        false => Side::Checker,
    };
    if own || cx.script_user.available(side, n.pos()) {
        return true;
    }
    let what = format!(
        "Failed to set default user for {}{what} {value} - ignoring",
        n.name(),
    );
    cx.push(Diagnostic::notice(n.pos(), what));
    false
}

/// The words after the first argument (`USER [GROUP]`), if any.
fn rest_words(n: &Node) -> Option<String> {
    let rest: Vec<&str> = n.args.iter().skip(1).map(|a| &*a.text).collect();
    (!rest.is_empty()).then(|| rest.join(" "))
}

const NO_EFFECT: &str = "the setting has no effect";
const NO_IPVS: &str = "vrrpd runs no IPVS: its balancer is its own dataplane";
const NO_BFD: &str = "vrrpd has no BFD";
const NO_SNMP: &str = "vrrpd has no SNMP agent";
const ONE_PROCESS: &str = "vrrpd is one process; its threads keep their own names";
const NETLINK_BUFS: &str = "vrrpd sizes its netlink buffers itself";
const NFT: &str = "vrrpd always uses nftables, with its own table `vrrpd_vrrp`";
const RELOAD: &str =
    "a SIGHUP reloads at once; vrrpd keeps its running configuration when the new file has errors";
const RTTIME: &str = "RLIMIT_RTTIME is per process: one limit, the largest of the sides that are or may go real-time, binds every real-time thread, and reaching the hard limit kills the whole daemon (keepalived restarts a killed child)";
const NO_SWAP: &str = "mlockall(2) is per process: vrrpd is one process, so this locks the whole daemon (VRRP, health checks and balancer)";
const STRICT: &str = "keepalived's configuration rules apply and no_accept is the default (nftables drop of the VIPs' traffic); no other RFC-strict receive checks";

/// `global_defs`.
pub static TABLE: &[Keyword<GlobalDraft>] = &[
    missing(
        "routerid name missing - ignoring",
        ok(
            "router_id",
            Arg::Line(|g, v| g.defs.router_id = Some(v.value)),
        ),
    ),
    ok(
        "vrrp_version",
        Arg::Choice(&["2", "3"], |g, v| {
            g.vrrp_version = Some(if v.value == "3" {
                Version::V3
            } else {
                Version::V2
            })
        }),
    ),
    ok(
        "vrrp_garp_master_delay",
        Arg::Int(0, 4294, |g, v| {
            g.garp.master_delay = Some(Duration::from_secs(v.value as u64))
        }),
    ),
    ok(
        "vrrp_garp_master_repeat",
        Arg::Custom("COUNT", |g, n, cx| {
            g.garp.master_repeat = repeats(n, cx).or(g.garp.master_repeat)
        }),
    ),
    ok(
        "vrrp_garp_master_refresh",
        Arg::Int(0, u32::MAX as i64, |g, v| {
            g.garp.master_refresh = Some(Duration::from_secs(v.value as u64))
        }),
    ),
    ok(
        "vrrp_garp_master_refresh_repeat",
        Arg::Custom("COUNT", |g, n, cx| {
            g.garp.master_refresh_repeat = repeats(n, cx).or(g.garp.master_refresh_repeat)
        }),
    ),
    ok(
        "vrrp_garp_lower_prio_delay",
        Arg::Int(0, 4294, |g, v| {
            g.garp.lower_prio_delay = Some(Duration::from_secs(v.value as u64))
        }),
    ),
    ok(
        "vrrp_garp_lower_prio_repeat",
        Arg::Custom("0..2147483647", |g, n, cx| {
            let invalid = |w: &str| format!("Invalid vrrp_garp_lower_prio_repeat '{w}'");
            if let Some(v) = super::read_count(n, cx, i32::MAX as u64, &invalid, None) {
                g.garp.lower_prio_repeat = Some(v.value as u32);
            }
        }),
    ),
    ok(
        "vrrp_garp_interval",
        Arg::Secs(0.000001, 4294.967295, |g, v| g.garp.interval = Some(v.value)),
    ),
    ok(
        "vrrp_gna_interval",
        Arg::Secs(0.000001, 4294.967295, |g, v| g.garp.na_interval = Some(v.value)),
    ),
    ok(
        "vrrp_down_timer_adverts",
        Arg::Int(1, 100, |g, v| g.defs.down_timer_adverts = v.value as u8),
    ),
    ok(
        "vrrp_check_unicast_src",
        Arg::Flag(|g, _| g.defs.check_unicast_src = true),
    ),
    ok(
        "vrrp_skip_check_adv_addr",
        Arg::Flag(|g, _| g.defs.skip_check_adv_addr = true),
    ),
    ok(
        "fifo_write_vrrp_states_on_reload",
        Arg::Flag(|g, _| g.defs.fifo_write_vrrp_states_on_reload = true),
    ),
    ok(
        "log_unknown_vrids",
        Arg::Flag(|g, _| g.defs.log_unknown_vrids = true),
    ),
    ok(
        "vrrp_higher_prio_send_advert",
        Arg::Bool(|g, v| g.defs.higher_prio_send_advert = v.value),
    ),
    // keepalived: one gratuitous ARP / NA per address on becoming Master, no second block, no
    // refresh; keywords after it override.
    ok(
        "vrrp_min_garp",
        Arg::Bool(|g, v| {
            if v.value {
                let gp = &mut g.garp;
                gp.master_delay = Some(Duration::ZERO);
                gp.master_repeat = Some(1);
                gp.master_refresh = Some(Duration::ZERO);
                gp.master_refresh_repeat = Some(1);
                gp.lower_prio_delay = Some(Duration::ZERO);
                gp.lower_prio_repeat = Some(1);
            }
        }),
    ),
    ok(
        "vrrp_startup_delay",
        Arg::Secs(0.001, 3600.0, |g, v| {
            g.defs.vrrp_startup_delay = Some(v.value)
        }),
    ),
    ok(
        "vrrp_lower_prio_no_advert",
        Arg::Bool(|g, v| g.garp.lower_prio_no_advert = Some(v.value)),
    ),
    ok(
        "vrrp_mcast_group4",
        Arg::Custom("IPv4 MULTICAST", |g, n, cx| match mcast(n, cx) {
            Some(IpAddr::V4(a)) => g.defs.mcast_group4 = a,
            Some(_) => bad_group(n, cx),
            None => {}
        }),
    ),
    ok(
        "vrrp_mcast_group6",
        Arg::Custom("IPv6 MULTICAST", |g, n, cx| match mcast(n, cx) {
            Some(IpAddr::V6(a)) => g.defs.mcast_group6 = a,
            Some(_) => bad_group(n, cx),
            None => {}
        }),
    ),
    kw(
        "vrrp_strict",
        Status::Partial(STRICT),
        Arg::Flag(|g, _| g.defs.vrrp_strict = true),
    ),
    ok(
        "enable_script_security",
        Arg::Flag(|g, _| g.defs.script_security = true),
    ),
    // `USER [GROUP]`, kept as written.
    missing(
        "No script username specified",
        ok(
            "script_user",
            Arg::Custom("USER [GROUP]", |g, n, cx| {
                let Some(u) = first(n, cx) else { return };
                let group = n.args.get(1).map(|g| &*g.text);
                if cx.host.user_exists(&u.text, group) == Some(false) {
                    cx.push(Diagnostic::warning(
                        n.pos(),
                        "Error setting global script uid/gid",
                    ));
                }
                g.script_user = Some(Spanned::new(crate::registry::words(n), n.pos()));
            }),
        ),
    ),
    missing(
        "No notify_fifo name specified",
        ok(
            "notify_fifo",
            Arg::Custom("PATH [USER [GROUP]]", |g, n, cx| {
                g.notify_fifo.set_path(n, cx)
            }),
        ),
    ),
    missing(
        "No vrrp_notify_fifo name specified",
        ok(
            "vrrp_notify_fifo",
            Arg::Custom("PATH [USER [GROUP]]", |g, n, cx| {
                g.vrrp_notify_fifo.set_path(n, cx)
            }),
        ),
    ),
    missing(
        "No lvs_notify_fifo name specified",
        ok(
            "lvs_notify_fifo",
            Arg::Custom("PATH [USER [GROUP]]", |g, n, cx| {
                g.lvs_notify_fifo.set_path(n, cx)
            }),
        ),
    ),
    missing(
        "No notify_fifo_script specified",
        ok(
            "notify_fifo_script",
            Arg::Custom("COMMAND [USER [GROUP]]", |g, n, cx| {
                g.notify_fifo.set_script(n, cx, &mut g.scripts_used)
            }),
        ),
    ),
    missing(
        "No vrrp_notify_fifo_script specified",
        ok(
            "vrrp_notify_fifo_script",
            Arg::Custom("COMMAND [USER [GROUP]]", |g, n, cx| {
                g.vrrp_notify_fifo.set_script(n, cx, &mut g.scripts_used)
            }),
        ),
    ),
    missing(
        "No lvs_notify_fifo_script specified",
        ok(
            "lvs_notify_fifo_script",
            Arg::Custom("COMMAND [USER [GROUP]]", |g, n, cx| {
                g.lvs_notify_fifo.set_script(n, cx, &mut g.scripts_used)
            }),
        ),
    ),
    ok(
        "vrrp_notify_priority_changes",
        Arg::Bool(|g, v| g.defs.vrrp_notify_priority_changes = v.value),
    ),
    kw(
        "vrrpd_metrics_listen",
        Status::Extension(
            "ADDRESS:PORT ([IPv6]:PORT) of the Prometheus endpoint (off without it; --metrics wins)",
        ),
        Arg::Custom("ADDRESS:PORT", |g, n, cx| {
            let Some(t) = first(n, cx) else { return };
            match t.text.parse() {
                Ok(a) => g.defs.metrics_listen = Some(a),
                Err(_) => cx.push(Diagnostic::warning(
                    &t.pos,
                    format!("invalid address `{}` (expected ADDRESS:PORT)", t.text),
                )),
            }
        }),
    ),
    ok(
        "notification_email",
        Arg::Items("ADDRESS…", notification_email),
    ),
    missing(
        "emailfrom missing - ignoring",
        ok(
            "notification_email_from",
            Arg::Word(|g, v| g.defs.mail.notification_email_from = Some(v.value)),
        ),
    ),
    ok("smtp_server", Arg::Custom("HOST [PORT]", smtp_server)),
    when_missing(
        WhenMissing::Ignore,
        ok(
            "smtp_helo_name",
            Arg::Word(|g, v| g.defs.mail.smtp_helo_name = Some(v.value)),
        ),
    ),
    ok(
        "smtp_connect_timeout",
        Arg::Custom("SECONDS", smtp_connect_timeout),
    ),
    ok(
        "smtp_alert",
        Arg::Bool(|g, v| g.defs.mail.smtp_alert = Some(v.value)),
    ),
    ok(
        "smtp_alert_vrrp",
        Arg::Bool(|g, v| g.defs.mail.smtp_alert_vrrp = Some(v.value)),
    ),
    ok(
        "smtp_alert_checker",
        Arg::Bool(|g, v| g.defs.mail.smtp_alert_checker = Some(v.value)),
    ),
    ok(
        "no_email_faults",
        Arg::Flag(|g, _| g.defs.mail.no_email_faults = true),
    ),
    ok(
        "no_checker_emails",
        Arg::Bool(|g, v| g.defs.mail.no_checker_emails = v.value),
    ),
    ok(
        "vrrp_priority",
        Arg::Custom("-20..19", |g, n, cx| {
            g.process.nice(Side::Vrrp, n, &mut cx.diags)
        }),
    ),
    ok(
        "checker_priority",
        Arg::Custom("-20..19", |g, n, cx| {
            g.process.nice(Side::Checker, n, &mut cx.diags)
        }),
    ),
    ok(
        "vrrp_rt_priority",
        Arg::Custom("1..99", |g, n, cx| {
            g.process.rt_priority(Side::Vrrp, n, &mut cx.diags)
        }),
    ),
    ok(
        "checker_rt_priority",
        Arg::Custom("1..99", |g, n, cx| {
            g.process.rt_priority(Side::Checker, n, &mut cx.diags)
        }),
    ),
    ok(
        "vrrp_cpu_affinity",
        Arg::Custom("CPU…", |g, n, cx| {
            g.process.cpu_affinity(Side::Vrrp, n, &mut cx.diags)
        }),
    ),
    ok(
        "checker_cpu_affinity",
        Arg::Custom("CPU…", |g, n, cx| {
            g.process.cpu_affinity(Side::Checker, n, &mut cx.diags)
        }),
    ),
    when_missing(
        WhenMissing::Abort,
    kw(
            "vrrp_rlimit_rttime",
            Status::Partial(RTTIME),
            Arg::Custom("USECS", |g, n, cx| {
                g.process.rlimit_rttime(Side::Vrrp, n, &mut cx.diags)
            }),
        )
    ),
    when_missing(
        WhenMissing::Abort,
    kw(
            "checker_rlimit_rttime",
            Status::Partial(RTTIME),
            Arg::Custom("USECS", |g, n, cx| {
                g.process.rlimit_rttime(Side::Checker, n, &mut cx.diags)
            }),
        )
    ),
    when_missing(
        WhenMissing::Abort,
    kw(
            "vrrp_rlimit_rtime",
            Status::Partial(RTTIME),
            Arg::Custom("USECS", |g, n, cx| {
                g.process.rlimit_rttime(Side::Vrrp, n, &mut cx.diags)
            }),
        )
    ),
    when_missing(
        WhenMissing::Abort,
    kw(
            "checker_rlimit_rtime",
            Status::Partial(RTTIME),
            Arg::Custom("USECS", |g, n, cx| {
                g.process.rlimit_rttime(Side::Checker, n, &mut cx.diags)
            }),
        )
    ),
    kw(
        "vrrp_no_swap",
        Status::Partial(NO_SWAP),
        Arg::Flag(|g, _| g.process.no_swap(Side::Vrrp)),
    ),
    kw(
        "checker_no_swap",
        Status::Partial(NO_SWAP),
        Arg::Flag(|g, _| g.process.no_swap(Side::Checker)),
    ),
    ok(
        "max_auto_priority",
        Arg::Custom("[-1..99]", |g, n, cx| {
            g.process.max_auto_priority(n, &mut cx.diags)
        }),
    ),
    ok(
        "min_auto_priority_delay",
        Arg::Custom("USECS", |g, n, cx| {
            g.process.min_auto_priority_delay(n, &mut cx.diags)
        }),
    ),
    // umask_handler reads the first word before it counts the words.
    when_missing(
        WhenMissing::Abort,
        ok(
            "umask",
            Arg::Custom("NUMBER | BIT[|BIT]…", |g, n, cx| {
                g.process.umask(n, &mut cx.diags)
            }),
        ),
    ),
    kw(
        "dynamic_interfaces",
        Status::Partial("an instance whose interface (or an address's `dev`) does not exist at start waits in FAULT and starts when it appears (looked for each second); one deleted and made again while the instance runs needs a reload; `allow_if_changes` has no effect"),
        Arg::Custom("[allow_if_changes]", |g, n, cx| {
            g.defs.dynamic_interfaces = true;
            if let Some(o) = n.args.first().filter(|o| o.text != "allow_if_changes") {
                let what = format!("Unknown dynamic_interfaces option '{}'", o.text);
                cx.push(Diagnostic::warning(&o.pos, what));
            }
        }),
    ),
    missing(
        "default_interface requires interface name",
        ok(
            "default_interface",
            Arg::Word(|g, v| g.defs.default_interface = Some(v.value)),
        ),
    ),
    ok(
        "reload_check_config",
        Arg::Custom("[LOG_FILE]", |g, n, _| {
            g.defs.reload_check_config = Some(
                n.args
                    .first()
                    .map_or_else(|| PathBuf::from("/dev/null"), |t| PathBuf::from(&*t.text)),
            )
        }),
    ),
    skip("process_names", ONE_PROCESS),
    when_missing(WhenMissing::Abort, skip("process_name", ONE_PROCESS)),
    when_missing(WhenMissing::Abort, skip("vrrp_process_name", ONE_PROCESS)),
    when_missing(WhenMissing::Abort, skip("checker_process_name", ONE_PROCESS)),
    when_missing(WhenMissing::Abort, skip("lvs_process_name", ONE_PROCESS)),
    when_missing(WhenMissing::Abort, skip("bfd_process_name", ONE_PROCESS)),
    missing(
        "startup script missing",
        skip(
            "startup_script",
            "not run: vrrpd starts its instances at once",
        ),
    ),
    missing(
        "startup_script_timeout requires value",
        checked(
            "startup_script_timeout",
            "not run: vrrpd starts its instances at once",
            Arg::Int(1, 1000, |_, _| {}),
        ),
    ),
    missing("shutdown script missing", skip("shutdown_script", "not run when vrrpd stops")),
    missing(
        "shutdown_script_timeout requires value",
        checked(
            "shutdown_script_timeout",
            "not run when vrrpd stops",
            Arg::Int(1, 1000, |_, _| {}),
        ),
    ),
    checked(
        "checker_log_all_failures",
        "set `log_all_failures` on the checkers themselves",
        Arg::Bool(|_, _| {}),
    ),
    skip("disable_local_igmp", NO_EFFECT),
    checked(
        "lvs_timeouts",
        NO_IPVS,
        Arg::Custom("tcp N | tcpfin N | udp N …", lvs_timeouts),
    ),
    skip("lvs_flush", NO_IPVS),
    skip("lvs_flush_on_stop", NO_IPVS),
    skip("lvs_flush_onstop", NO_IPVS),
    // The connection sync of vrrpd's balancer (IPVS's protocol), switched by the instance.
    ok(
        "lvs_sync_daemon",
        Arg::Custom(
            "INTERFACE [VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]",
            |g, n, cx| {
                if let Some(s) = &g.lvs_sync_daemon {
                    cx.push(Diagnostic::warning(
                        n.pos(),
                        format!(
                            "lvs_sync_daemon has already been specified as {} {} - ignoring",
                            s.interface,
                            s.instance.as_deref().unwrap_or("")
                        ),
                    ));
                    return;
                }
                g.lvs_sync_daemon = super::sync_daemon::SyncDaemonDraft::parse(n, cx);
            },
        ),
    ),
    missing("vrrp_garp_extra_if specified without time - ignoring", skip("vrrp_garp_extra_if", NO_EFFECT)),
    missing("vrrp_vmac_garp_intvl specified without time - ignoring", skip("vrrp_vmac_garp_intvl", NO_EFFECT)),
    // keepalived built for nftables (Debian's) says so and uses nftables: `-t` counts it.
    kw(
        "vrrp_iptables",
        Status::Unsupported(NFT),
        Arg::Custom("[CHAIN [CHAIN]]", |_, n, cx| {
            cx.push(Diagnostic::warning(
                n.pos(),
                "iptables not supported, using nftables instead. Please replace 'vrrp_iptables and 'vrrp_ipsets' with 'nftables' config option",
            ))
        }),
    ),
    skip("nftables", NFT),
    when_missing(WhenMissing::Abort, skip("nftables_priority", NFT)),
    skip("nftables_ifindex", NFT),
    skip("nftables_ipvs", NO_IPVS),
    when_missing(WhenMissing::Abort, skip("nftables_ipvs_priority", NO_IPVS)),
    when_missing(WhenMissing::Abort, skip("nftables_ipvs_start_fwmark", NO_IPVS)),
    skip("nftables_counters", NFT),
    missing("No bfd process priority specified", skip("bfd_priority", NO_BFD)),
    skip("bfd_no_swap", NO_BFD),
    missing("No bfd process real-time priority specified", skip("bfd_rt_priority", NO_BFD)),
    missing("No bfd cpu_id set specified", skip("bfd_cpu_affinity", NO_BFD)),
    skip("bfd_rlimit_rttime", NO_BFD),
    skip("bfd_rlimit_rtime", NO_BFD),
    missing("SNMP error : snmp socket name missing", skip("snmp_socket", NO_SNMP)),
    skip("enable_traps", NO_SNMP),
    skip("enable_snmp_vrrp", NO_SNMP),
    skip("enable_snmp_keepalived", NO_SNMP),
    skip("enable_snmp_rfc", NO_SNMP),
    skip("enable_snmp_rfcv2", NO_SNMP),
    skip("enable_snmp_rfcv3", NO_SNMP),
    skip("enable_snmp_checker", NO_SNMP),
    skip(
        "enable_dbus",
        "vrrpd has no D-Bus interface (its control socket and signals report state)",
    ),
    missing(
        "dbus_service_name missing - ignoring",
        skip("dbus_service_name", "vrrpd has no D-Bus interface"),
    ),
    missing(
        "vrrp_netlink_cmd_rcv_bufs size missing",
        checked("vrrp_netlink_cmd_rcv_bufs", NETLINK_BUFS, Arg::Int(0, 4_294_967_295, |_, _| {})),
    ),
    checked("vrrp_netlink_cmd_rcv_bufs_force", NETLINK_BUFS, Arg::Bool(|_, _| {})),
    missing(
        "vrrp_netlink_monitor_rcv_bufs size missing",
        checked("vrrp_netlink_monitor_rcv_bufs", NETLINK_BUFS, Arg::Int(0, 4_294_967_295, |_, _| {})),
    ),
    checked("vrrp_netlink_monitor_rcv_bufs_force", NETLINK_BUFS, Arg::Bool(|_, _| {})),
    missing(
        "process_monitor_rcv_bufs size missing",
        checked("process_monitor_rcv_bufs", NETLINK_BUFS, Arg::Int(0, 4_294_967_295, |_, _| {})),
    ),
    checked("process_monitor_rcv_bufs_force", NETLINK_BUFS, Arg::Bool(|_, _| {})),
    missing(
        "lvs_netlink_cmd_rcv_bufs size missing",
        checked("lvs_netlink_cmd_rcv_bufs", NETLINK_BUFS, Arg::Int(0, 4_294_967_295, |_, _| {})),
    ),
    checked("lvs_netlink_cmd_rcv_bufs_force", NETLINK_BUFS, Arg::Bool(|_, _| {})),
    missing(
        "lvs_netlink_monitor_rcv_bufs size missing",
        checked("lvs_netlink_monitor_rcv_bufs", NETLINK_BUFS, Arg::Int(0, 4_294_967_295, |_, _| {})),
    ),
    checked("lvs_netlink_monitor_rcv_bufs_force", NETLINK_BUFS, Arg::Bool(|_, _| {})),
    skip(
        "rs_init_notifies",
        "real servers' first state is not notified",
    ),
    missing(
        "vrrp_rx_bufs_policy missing",
        skip(
            "vrrp_rx_bufs_policy",
            "vrrpd sizes its receive buffers itself",
        ),
    ),
    missing(
        "Invalid vrrp_rx_bufs_multiplier",
    checked(
            "vrrp_rx_bufs_multiplier",
            "vrrpd sizes its receive buffers itself",
            Arg::Int(1, 4_294_967_295, |_, _| {}),
        )
    ),
    when_missing(
        WhenMissing::Abort,
        skip(
            "vmac_prefix",
            "VMAC interfaces are named vrrp.VRID or as use_vmac says",
        ),
    ),
    when_missing(
        WhenMissing::Abort,
        skip(
            "vmac_addr_prefix",
            "VMAC interfaces are named vrrp.VRID or as use_vmac says",
        ),
    ),
    checked("random_seed", NO_EFFECT, Arg::Int(0, 4_294_967_295, |_, _| {})),
    missing("reload_time_file invalid", skip("reload_time_file", RELOAD)),
    skip("reload_repeat", RELOAD),
    skip("reload_file", RELOAD),
    skip(
        "include_check",
        "a missing include is a warning; -e is not implemented",
    ),
    when_missing(WhenMissing::Abort, skip("config_save_dir", NO_EFFECT)),
    missing("tmp_config_directory missing directory name", skip("tmp_config_directory", NO_EFFECT)),
    skip("data_use_instance", NO_EFFECT),
];

fn mcast<'a>(n: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<IpAddr> {
    let t = first(n, cx)?;
    match crate::registry::sockaddr_ip(&t.text) {
        Some(ip) if ip.is_multicast() => Some(ip),
        _ => {
            bad_group(n, cx);
            None
        }
    }
}

fn bad_group<'a>(n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    cx.push(Diagnostic::warning(
        n.args.first().map_or(n.pos(), |t| &t.pos),
        format!("{} address is invalid - ignoring", n.name()),
    ));
}

fn notification_email<'a>(g: &mut GlobalDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let before = g.defs.mail.notification_email.len();
    for c in &n.children {
        let m = &mut g.defs.mail.notification_email;
        m.push(c.name().to_string());
        m.extend(c.args.iter().map(|a| a.text.to_string()));
    }
    if g.defs.mail.notification_email.len() == before {
        // keepalived finds it empty once it has read the block: on the `}` line.
        cx.push(Diagnostic::warning(
            n.close.as_ref().unwrap_or(n.pos()),
            "Warning - empty notification_email block",
        ));
    }
}

fn smtp_server<'a>(g: &mut GlobalDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(host) = first(n, cx) else { return };
    let port = match n.args.get(1) {
        None => Some(25),
        Some(p) => match p.text.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                cx.push(Diagnostic::warning(
                    &p.pos,
                    format!("Invalid smtp server {} {}", host.text, p.text),
                ));
                None
            }
        },
    };
    // keepalived resolves a name at once, and says so when it cannot.
    let ip = crate::registry::sockaddr_ip(&host.text).filter(|_| !host.text.contains(['-', '/']));
    if let (None, Some(false), Some(port)) = (ip, cx.host.resolves(&host.text), port) {
        cx.push(Diagnostic::warning(
            &host.pos,
            format!("Invalid smtp server {} {port}", host.text),
        ));
        return;
    }
    if let Some(port) = port {
        g.defs.mail.smtp_server = Some(SmtpServer {
            host: host.text.to_string(),
            port,
        });
    }
}

fn smtp_connect_timeout<'a>(g: &mut GlobalDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(t) = first(n, cx) else { return };
    let max = crate::registry::UINT_MAX / 1_000_000;
    let num = crate::registry::unsigned(
        0,
        max,
        "smtp_connect_timeout '{}' must be in [0, 4294] - ignoring",
    );
    let read = num.read(t, &mut cx.diags);
    let secs = match read.kept {
        None => return,
        // keepalived allows 0 (as before 2.0.7) and makes it 1 s, saying so where its `-t`
        // takes the value.
        Some(0) => {
            if read.taken {
                cx.push(Diagnostic::warning(
                    &t.pos,
                    "smtp_conect_timeout must be greater than 0, setting to 1",
                ));
            }
            1
        }
        Some(s) => s,
    };
    g.defs.mail.smtp_connect_timeout = Duration::from_secs(secs);
}

impl GlobalDraft {
    /// `script_user`'s user, if given.
    pub fn script_user(&self) -> Option<&str> {
        self.script_user
            .as_ref()
            .and_then(|u| u.value.split_whitespace().next())
    }

    pub fn script_security(&self) -> bool {
        self.defs.script_security
    }

    /// The global settings, and whether the lower-priority garp keys were given (instances
    /// follow their own master burst otherwise).
    pub fn resolve(self, cx: &mut Cx) -> (GlobalDefs, (bool, bool)) {
        let mut g = self.defs;
        g.vrrp_version = self.vrrp_version.unwrap_or(Version::V2);
        g.garp = self.garp.resolve(&Garp::default(), (false, false));
        g.notify_fifo = self.notify_fifo.resolve("notify_fifo", cx);
        g.vrrp_notify_fifo = self.vrrp_notify_fifo.resolve("vrrp_notify_fifo", cx);
        g.lvs_notify_fifo = self.lvs_notify_fifo.resolve("lvs_notify_fifo", cx);
        g.process = self.process.resolve(cx.host.online_cpus(), &mut cx.diags);
        g.script_user = self.script_user.map(|u| u.value);
        let lower_explicit = (
            self.garp.lower_prio_delay.is_some(),
            self.garp.lower_prio_repeat.is_some(),
        );
        (g, lower_explicit)
    }
}

/// `lvs_timeouts`: checked as keepalived checks it (options `tcp`, `tcpfin`, `udp`, each with
/// seconds up to 31 days), though vrrpd runs no IPVS.
fn lvs_timeouts<'a>(_: &mut GlobalDraft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    const MAX: i64 = 86_400 * 31;
    if n.args.len() < 2 {
        cx.push(Diagnostic::warning(
            n.pos(),
            "lvs_timeouts requires at least one option",
        ));
        return;
    }
    let mut words = n.args.iter();
    while let Some(w) = words.next() {
        let what = match &*w.text {
            "tcp" | "tcpfin" | "udp" => match words.next() {
                None => format!("No value specified for lvs_timeout {} - ignoring", w.text),
                Some(v)
                    if crate::registry::parse_int(&v.text)
                        .is_some_and(|t| (0..=MAX).contains(&t)) =>
                {
                    continue
                }
                Some(v) => format!("Invalid lvs_timeout {} ({}) - ignoring", w.text, v.text),
            },
            other => format!("Unknown option {other} specified for lvs_timeouts"),
        };
        cx.push(Diagnostic::warning(&w.pos, what));
    }
}
