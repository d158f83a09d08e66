//! The keyword registry: which keywords exist where, how far we support them, and who
//! handles them. Parsing is driven by these tables, so growing keepalived coverage means
//! adding rows, and unknown words get "did you mean" suggestions over all known names.

use super::diag::{suggest, Diagnostic, Diags};
use super::tree::Node;

/// Where a keyword may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Top,
    GlobalDefs,
    VrrpInstance,
    Authentication,
}

impl Context {
    pub fn describe(self) -> &'static str {
        match self {
            Context::Top => "at top level",
            Context::GlobalDefs => "in `global_defs`",
            Context::VrrpInstance => "in `vrrp_instance`",
            Context::Authentication => "in `authentication`",
        }
    }
}

/// How far a keyword is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Supported,
    /// Accepted, with the given limitation.
    Partial(&'static str),
    /// Known to keepalived but not implemented here: warned about and skipped with its block.
    Unsupported(&'static str),
    /// Ours, not keepalived's (keepalived refuses it): what it does.
    Extension(&'static str),
}

/// Applies one statement to the value being built.
pub type Handler<T> = fn(&mut T, &Node, &mut Diags);

pub struct Keyword<T: 'static> {
    pub name: &'static str,
    pub status: Status,
    pub handler: Handler<T>,
}

impl<T> Keyword<T> {
    pub const fn new(name: &'static str, handler: Handler<T>) -> Self {
        Self {
            name,
            status: Status::Supported,
            handler,
        }
    }
    pub const fn partial(name: &'static str, why: &'static str, handler: Handler<T>) -> Self {
        Self {
            name,
            status: Status::Partial(why),
            handler,
        }
    }
    pub const fn extension(name: &'static str, what: &'static str, handler: Handler<T>) -> Self {
        Self {
            name,
            status: Status::Extension(what),
            handler,
        }
    }
    /// Known and parsed into the model (so its values are still checked), but nothing acts
    /// on it: warned about like [`Keyword::unsupported`].
    pub const fn inert(name: &'static str, why: &'static str, handler: Handler<T>) -> Self {
        Self {
            name,
            status: Status::Unsupported(why),
            handler,
        }
    }
    pub const fn unsupported(name: &'static str, why: &'static str) -> Self {
        Self {
            name,
            status: Status::Unsupported(why),
            handler: ignore::<T>,
        }
    }
}

fn ignore<T>(_: &mut T, _: &Node, _: &mut Diags) {}

/// Handle `node` with the row of `table` named by its keyword.
pub fn dispatch<T>(
    table: &[Keyword<T>],
    ctx: Context,
    target: &mut T,
    node: &Node,
    diags: &mut Diags,
) {
    match table.iter().find(|k| k.name == node.name()) {
        Some(k) => {
            if let Status::Partial(why) = k.status {
                diags.push(
                    Diagnostic::warning(
                        node.pos(),
                        format!("`{}` is only partly implemented", k.name),
                    )
                    .with_help(why)
                    .not_flagged_by_keepalived(),
                );
            }
            if let Status::Unsupported(why) = k.status {
                diags.push(
                    Diagnostic::warning(
                        node.pos(),
                        format!("`{}` is not implemented yet; ignored", k.name),
                    )
                    .with_help(why)
                    .not_flagged_by_keepalived(),
                );
            }
            (k.handler)(target, node, diags);
        }
        None => {
            let mut d = Diagnostic::error(
                node.pos(),
                format!("unknown keyword `{}` {}", node.name(), ctx.describe()),
            );
            if let Some(s) = suggest(node.name(), table.iter().map(|k| k.name)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
        }
    }
}

/// keepalived's top-level blocks that we know but do not implement yet.
pub const TOP_UNSUPPORTED: &[&str] = &[
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "use_instance",
    "child_wait_time",
    "ip_family",
];

/// `global_defs` keywords of keepalived we know but do not implement yet.
pub const GLOBAL_UNSUPPORTED: &[&str] = &[
    "checker_log_all_failures",
    "lvs_id",
    "lvs_flush",
    "lvs_flush_onstop",
    "lvs_timeouts",
    "vrrp_iptables",
    "vrrp_ipsets",
    "vrrp_nftables",
    "vrrp_nftables_priority",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_cpu_affinity",
    "bfd_rlimit_rttime",
    "bfd_rlimit_rtime",
    "dynamic_interfaces",
    "enable_traps",
    "enable_snmp_vrrp",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "snmp_socket",
    "vrrp_garp_extra_if",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs",
    "default_interface",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "linkbeat_use_polling",
    "script_security",
    "dbus",
    "dbus_service_name",
    "instance",
    "vrrp_no_checksum",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "random_seed",
    "disable_local_igmp",
];

/// `vrrp_instance` keywords of keepalived we know but do not implement yet.
pub const INSTANCE_UNSUPPORTED: &[&str] = &[
    "track_bfd",
    "notify_deleted",
    "old_unicast_checksum",
    "linkbeat_use_polling",
    "kernel_rx_buf_size",
    "unicast_fault_no_peer",
    "debug",
    "track_src_ip",
    "mcast_group",
    "vrrp_group",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;
    use crate::tree::parse;
    use std::path::Path;
    use std::sync::Arc;

    fn set(t: &mut Vec<String>, n: &Node, _: &mut Diags) {
        t.push(n.name().to_string());
    }
    static TABLE: &[Keyword<Vec<String>>] = &[
        Keyword::new("priority", set),
        Keyword::unsupported("notify", "scripts are not run"),
    ];

    #[test]
    fn dispatch_by_status() {
        let f: Arc<Path> = Arc::from(Path::new("t.conf"));
        let (toks, _) = lex("priority 1\nnotify x\npriorty 2", &f);
        let mut d = Diags::default();
        let mut seen = Vec::new();
        for n in parse(&toks, &mut d) {
            dispatch(TABLE, Context::VrrpInstance, &mut seen, &n, &mut d);
        }
        assert_eq!(seen, vec!["priority"]);
        assert_eq!(d.0.len(), 2);
        assert_eq!(d.0[0].severity, crate::diag::Severity::Warning);
        assert_eq!(d.0[0].line, 2);
        assert!(d.0[1].is_error());
        assert_eq!(d.0[1].help.as_deref(), Some("did you mean `priority`?"));
    }
}
