//! The resolved, typed configuration. `Serialize` so `--dump-config` can print it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use checks::spec::{opt_secs, secs};
use serde::{Deserialize, Serialize};

use vrrp_proto::packet::Version;

pub use super::iproute::{Nexthop, Prefix, Route, RouteType, Rule, RuleAction};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub global: GlobalDefs,
    pub instances: Vec<VrrpInstance>,
    /// `vrrp_script` blocks (run by `daemon::trackers`, once however many instances use them).
    #[serde(default)]
    pub scripts: Vec<VrrpScript>,
    /// `vrrp_sync_group` blocks (members kept in step by `daemon::sync`).
    #[serde(default)]
    pub sync_groups: Vec<SyncGroup>,
    /// `static_ipaddress`: installed at start (on their `dev`), removed at exit.
    #[serde(default)]
    pub static_addresses: Vec<VirtualAddress>,
    /// `static_routes`: installed at start, removed at exit.
    #[serde(default)]
    pub static_routes: Vec<Route>,
    /// `static_rules`: installed at start, removed at exit.
    #[serde(default)]
    pub static_rules: Vec<Rule>,
    /// `virtual_server` blocks, mapped onto `lbcore::spec` and `checks::spec`.
    #[serde(default)]
    pub virtual_servers: Vec<VirtualServer>,
    /// `virtual_server_group` blocks.
    #[serde(default)]
    pub virtual_server_groups: Vec<lbcore::spec::VirtualServerGroupSpec>,
    /// `track_file` / `vrrp_track_file` blocks (watched with inotify when an instance uses them).
    #[serde(default)]
    pub track_files: Vec<TrackFile>,
    /// `vrrp_track_process` blocks (watched through the kernel's process events when an
    /// instance or sync group tracks them).
    #[serde(default)]
    pub track_processes: Vec<TrackProcess>,
    /// `garp_group` blocks (modelled; not applied yet).
    #[serde(default)]
    pub garp_groups: Vec<GarpGroup>,
    /// The `SSL` block: the TLS settings of every `SSL_GET` checker.
    #[serde(default)]
    pub ssl: Option<checks::spec::TlsSpec>,
    /// `linkbeat_interfaces { … }` (vrrpd always follows links through rtnetlink events).
    #[serde(default)]
    pub linkbeat_interfaces: Vec<String>,
}

/// `track_file NAME { file PATH; weight N [reverse]; init_file [VALUE] [overwrite] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackFile {
    pub name: String,
    pub file: PathBuf,
    /// `weight` -254..254 (default 1): the file's number is multiplied by it.
    pub weight: i32,
    pub reverse: bool,
    /// `init_file`: create the file with this value at start if missing (or always with
    /// `overwrite`).
    pub init_file: Option<InitFile>,
}

/// `init_file [VALUE] [overwrite]` of a `track_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitFile {
    pub value: i64,
    pub overwrite: bool,
}

/// `vrrp_track_process NAME { … }`: how many processes match, against a quorum (run by
/// `track::process`, one watcher for every tracked process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackProcess {
    pub name: String,
    /// `process`: the process name (`/proc/PID/comm`), or with `full_command` the first word of
    /// its command line.
    pub process: String,
    /// The words after the name on the `process` line: the process's arguments (they imply
    /// `full_command` and an exact `param_match`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
    /// How `params` compare with the arguments; `None`: arguments are not looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_match: Option<ParamMatch>,
    /// `weight` -254..254, `reverse`. Default 0 (quorum lost is FAULT): keepalived 2.2.7 does
    /// so, although keepalived.conf(5) says 1.
    pub weight: i32,
    pub reverse: bool,
    /// `quorum` (default 1) and `quorum_max` (default none): the number of matching processes
    /// that is OK. `quorum_max 0` alone means "must not run" (quorum 0).
    pub quorum: u32,
    pub quorum_max: Option<u32>,
    /// `fork_delay`, `terminate_delay`: how long a gained / lost quorum must last before it
    /// counts; `delay` sets both (an explicit one wins).
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub fork_delay: Option<Duration>,
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub terminate_delay: Option<Duration>,
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// `full_command`: match `/proc/PID/cmdline` (argv) instead of the process name.
    pub full_command: bool,
}

/// `param_match`: how a `vrrp_track_process`'s parameters compare with a process's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamMatch {
    /// Exactly these arguments, no more (bare `param_match`, or parameters given).
    Exact,
    /// The first arguments are these; the last one given may be a prefix of the process's.
    Initial,
    /// The first arguments are these; more may follow.
    Partial,
}

/// `garp_group { garp_interval …; gna_interval …; interface … | interfaces { … } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GarpGroup {
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub garp_interval: Option<Duration>,
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub gna_interval: Option<Duration>,
    pub interfaces: Vec<String>,
}

/// `vrrp_script NAME { … }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpScript {
    pub name: String,
    pub script: String,
    /// `interval` (default 1 s).
    #[serde(with = "secs")]
    pub interval: Duration,
    /// `timeout` (default: the interval).
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// `weight` -253..253 (default 0), `reverse` flag.
    pub weight: i32,
    pub weight_reverse: bool,
    /// `rise` / `fall` (default 1).
    pub rise: u32,
    pub fall: u32,
    pub user: Option<String>,
    pub init_fail: bool,
}

/// `vrrp_sync_group NAME { group { … } }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncGroup {
    pub name: String,
    pub group: Vec<String>,
    /// Group-level trackers, applied to every member.
    #[serde(default)]
    pub track_interfaces: Vec<Track>,
    #[serde(default)]
    pub track_scripts: Vec<Track>,
    #[serde(default)]
    pub track_files: Vec<Track>,
    #[serde(default)]
    pub track_processes: Vec<Track>,
    /// `notify_*` / `notify` of the group (called with `GROUP`).
    #[serde(default)]
    pub notify: Notify,
    /// `global_tracking`: deprecated; keepalived 2 reads it as `sync_group_tracking_weight`.
    #[serde(default)]
    pub global_tracking: bool,
    /// `sync_group_tracking_weight`: group trackers' weights apply to members.
    #[serde(default)]
    pub sync_group_tracking_weight: bool,
    /// `smtp_alert [BOOL]`, if given ([`MailDefs::vrrp_alert`] has the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert: Option<bool>,
}

/// A `track_script` / `track_interface` / `track_file` entry: a name and optional weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Track {
    pub name: String,
    pub weight: Option<i32>,
    pub reverse: bool,
}

/// `use_vmac [NAME] [MAC]`: defaults `vrrp.VRID` and the RFC 5798 virtual MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseVmac {
    pub name: Option<String>,
    pub mac: Option<[u8; 6]>,
}

/// Which virtual server a `track_virtual_server` entry means, in keepalived's own words.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VsRef {
    Addr { addr: IpAddr, port: Option<u16> },
    Fwmark(u32),
    Group(String),
}

impl VsRef {
    /// Whether `key` (a `virtual_server` line) is the one meant.
    pub fn matches(&self, key: &lbcore::spec::ServiceKey) -> bool {
        use lbcore::spec::ServiceKey as K;
        match (self, key) {
            (VsRef::Addr { addr, port }, K::Addr { addr: a, port: p }) => addr == a && port == p,
            (VsRef::Fwmark(m), K::Fwmark { mark, .. }) => m == mark,
            (VsRef::Group(g), K::Group(name)) => g == name,
            _ => false,
        }
    }
}

impl std::fmt::Display for VsRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VsRef::Addr {
                addr,
                port: Some(p),
            } => write!(f, "{addr} {p}"),
            VsRef::Addr { addr, port: None } => write!(f, "{addr}"),
            VsRef::Fwmark(m) => write!(f, "fwmark {m}"),
            VsRef::Group(g) => write!(f, "group {g}"),
        }
    }
}

/// One `track_virtual_server` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackVirtualServer {
    pub vs: VsRef,
    /// Priority change while the quorum is lost (-254..254); 0 means FAULT.
    pub weight: i32,
}

/// Notify scripts of an instance or sync group (run in order by [`crate::notify::Notifier`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
    pub any: Option<String>,
    /// `notify_master_rx_lower_pri` (instances only): run, without extra arguments, each time
    /// the Master hears a lower priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_rx_lower_pri: Option<String>,
    /// `USER [GROUP]` written after a script's command (keepalived's syntax), by the script's
    /// keyword (`notify_master`, `notify`, …); a script without one runs as the script user.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub users: std::collections::BTreeMap<String, String>,
}

impl Notify {
    /// The `USER [GROUP]` the script of `keyword` runs as, if the line gave one.
    pub fn user(&self, keyword: &str) -> Option<&str> {
        self.users.get(keyword).map(String::as_str)
    }
}

/// `virtual_server … { … }`: the service as `lbcore` runs it, plus the health checkers as
/// `checks` runs them. Timer keys inherit virtual server → real server → checker
/// ([`VirtualServer::resolved_checkers`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualServer {
    pub service: lbcore::spec::ServiceSpec,
    /// Checker timer keys given at the virtual server level.
    #[serde(default)]
    pub timers: checks::spec::TimerOverrides,
    /// Per real server, in the order of `service.real_servers`.
    #[serde(default)]
    pub real_servers: Vec<RealServerChecks>,
    /// `smtp_alert [BOOL]`, if given ([`MailDefs::virtual_server_alert`] has the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert: Option<bool>,
}

/// The checker side of one `real_server`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerChecks {
    /// Checker timer keys given at the real server level.
    #[serde(default)]
    pub timers: checks::spec::TimerOverrides,
    #[serde(default)]
    pub checkers: Vec<checks::spec::CheckSpec>,
    /// `smtp_alert [BOOL]`, if given ([`MailDefs::real_server_alert`] has the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert: Option<bool>,
}

impl VirtualServer {
    /// Every checker with keepalived's inheritance and defaults applied. An HTTP_GET / SSL_GET
    /// without a `virtualhost` of its own takes the real server's, else the virtual server's
    /// (a url's own still wins in the probe).
    pub fn resolved_checkers(&self) -> Vec<checks::spec::Resolved> {
        use checks::spec::ProbeSpec;
        let mut out = Vec::new();
        for (rs, rc) in self.service.real_servers.iter().zip(&self.real_servers) {
            let vhost = rs
                .virtualhost
                .as_ref()
                .or(self.service.virtualhost.as_ref());
            for c in &rc.checkers {
                let port = rs.port.unwrap_or(0);
                let mut r = checks::spec::resolve(
                    &self.timers,
                    &rc.timers,
                    c,
                    checks::spec::Target::new(rs.addr, port),
                    rs.weight,
                );
                if let (ProbeSpec::HttpGet(h) | ProbeSpec::SslGet(h), Some(v)) =
                    (&mut r.probe, vhost)
                {
                    h.virtualhost.get_or_insert_with(|| v.clone());
                }
                out.push(r);
            }
        }
        out
    }
}

/// `global_defs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalDefs {
    /// `router_id`; defaults to the host name.
    pub router_id: Option<String>,
    /// `vrrp_version` (default 2).
    pub vrrp_version: Version,
    /// Defaults for each instance's gratuitous ARP / NA schedule (`vrrp_garp_*`, `vrrp_gna_*`).
    pub garp: Garp,
    /// `vrrp_mcast_group4` / `vrrp_mcast_group6`.
    pub mcast_group4: std::net::Ipv4Addr,
    pub mcast_group6: std::net::Ipv6Addr,
    /// `enable_script_security`.
    #[serde(default)]
    pub script_security: bool,
    /// `script_user USER [GROUP]`.
    #[serde(default)]
    pub script_user: Option<String>,
    /// `vrrp_strict`: RFC-strict instances by default (see [`VrrpInstance::strict_mode`]).
    #[serde(default)]
    pub vrrp_strict: bool,
    /// `notify_fifo`: every VRRP line (`INSTANCE "VI_1" MASTER 150`) and every checker line
    /// (`RS [198.51.100.1]:tcp:80 [192.0.2.100]:tcp:80 DOWN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fifo: Option<NotifyFifo>,
    /// `vrrp_notify_fifo`: the VRRP lines only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp_notify_fifo: Option<NotifyFifo>,
    /// `lvs_notify_fifo`: the checker lines only (`VS …` quorum, `RS …` real servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvs_notify_fifo: Option<NotifyFifo>,
    /// `vrrp_notify_priority_changes`: the default of each instance's
    /// [`VrrpInstance::notify_priority_changes`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vrrp_notify_priority_changes: bool,
    /// Extension `vrrpd_metrics_listen ADDRESS:PORT`: where the Prometheus endpoint listens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `vrrp_down_timer_adverts` (default 3) and `vrrp_higher_prio_send_advert`: the
    /// instances' defaults.
    #[serde(default = "three")]
    pub down_timer_adverts: u8,
    #[serde(default)]
    pub higher_prio_send_advert: bool,
    /// `vrrp_check_unicast_src`: every instance's default for `check_unicast_src`.
    #[serde(default)]
    pub check_unicast_src: bool,
    /// `fifo_write_vrrp_states_on_reload`: a reload writes each instance's state to the
    /// notify FIFOs (by default it notifies nothing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fifo_write_vrrp_states_on_reload: bool,
    /// `log_unknown_vrids`: log every advert for a VRID no instance on its interface runs
    /// (they are counted per socket either way).
    #[serde(default)]
    pub log_unknown_vrids: bool,
    /// `vrrp_skip_check_adv_addr`: every instance's default for `skip_check_adv_addr`.
    #[serde(default)]
    pub skip_check_adv_addr: bool,
    /// `dynamic_interfaces`: an instance whose interface does not exist yet waits for it in
    /// FAULT instead of stopping the daemon.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic_interfaces: bool,
    /// `default_interface` (keepalived's default `eth0`): where a `static_ipaddress` without
    /// `dev` goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_interface: Option<String>,
    /// `reload_check_config [FILE]`: a file keepalived's `-t` would fail is not run, at start
    /// or on reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload_check_config: Option<PathBuf>,
    /// `net_namespace NAME` (top level): the daemon runs in `/run/netns/NAME` (`-s` overrides;
    /// a reload cannot change it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_namespace: Option<String>,
    /// `vrrp_startup_delay SECS`: instances stay in INIT this long after the daemon starts.
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub vrrp_startup_delay: Option<Duration>,
    /// keepalived's per-process settings (`vrrp_priority`, `checker_rt_priority`, `*_no_swap`,
    /// `*_cpu_affinity`, `*_rlimit_rttime`, `max_auto_priority`, `umask`), applied to vrrpd's
    /// threads by [`crate::tuning`].
    #[serde(default, skip_serializing_if = "ProcessSettings::is_default")]
    pub process: ProcessSettings,
    /// Email alerts: recipients, server and the `smtp_alert` defaults.
    #[serde(default)]
    pub mail: MailDefs,
    /// `lvs_sync_daemon`: the balancer's connections synchronised with the other node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
}

/// `lvs_sync_daemon INTERFACE VRRP_INSTANCE [id SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL]
/// [group IP]`: IPVS's sync protocol on `interface`; the node where `instance` is Master
/// sends, the other receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvsSyncDaemon {
    pub interface: String,
    /// The VRRP instance whose state says which way connections go.
    pub instance: String,
    /// `id` (0..=255); the instance's virtual_router_id when not given, as keepalived.
    pub syncid: u8,
    /// `maxlen`: the largest message (UDP payload); the interface's MTU less the IP and UDP
    /// headers when not given, as Linux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxlen: Option<u16>,
    /// `port` (default 8848).
    pub port: u16,
    /// `ttl` (default 1).
    pub ttl: u8,
    /// `group` (default 224.0.0.81).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<std::net::IpAddr>,
}

/// The mail keys of `global_defs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailDefs {
    /// `notification_email { … }`: the recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification_email: Vec<String>,
    /// `notification_email_from` (default `USER@HOSTNAME`, as keepalived 2.2.7 does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_email_from: Option<String>,
    /// `smtp_server HOST [PORT]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_server: Option<SmtpServer>,
    /// `smtp_helo_name` (default: the host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_helo_name: Option<String>,
    /// `smtp_connect_timeout` (default 30 s): bounds the connection and every reply.
    #[serde(default = "thirty_secs", with = "secs")]
    pub smtp_connect_timeout: Duration,
    /// `smtp_alert`, `smtp_alert_vrrp`, `smtp_alert_checker`: defaults of the blocks' own
    /// `smtp_alert` (the specific one first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert_vrrp: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert_checker: Option<bool>,
    /// `no_email_faults`: no mail for FAULT.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_email_faults: bool,
    /// `no_checker_emails`: a checker's change mails only when its real server changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_checker_emails: bool,
}

impl Default for MailDefs {
    fn default() -> Self {
        Self {
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            smtp_connect_timeout: thirty_secs(),
            smtp_alert: None,
            smtp_alert_vrrp: None,
            smtp_alert_checker: None,
            no_email_faults: false,
            no_checker_emails: false,
        }
    }
}

fn thirty_secs() -> Duration {
    Duration::from_secs(30)
}

impl MailDefs {
    /// Whether an instance or sync group with `own` (its `smtp_alert`, if given) mails:
    /// default `smtp_alert_vrrp`, then `smtp_alert`, then no.
    pub fn vrrp_alert(&self, own: Option<bool>) -> bool {
        own.or(self.smtp_alert_vrrp)
            .or(self.smtp_alert)
            .unwrap_or(false)
    }

    /// The same for a virtual server (quorum changes): default `smtp_alert_checker`, then
    /// `smtp_alert`, then no.
    pub fn virtual_server_alert(&self, own: Option<bool>) -> bool {
        own.or(self.smtp_alert_checker)
            .or(self.smtp_alert)
            .unwrap_or(false)
    }

    /// The same for a real server (checker changes), whose last default is yes: keepalived
    /// keeps it for backward compatibility. The virtual server's own is not inherited.
    pub fn real_server_alert(&self, own: Option<bool>) -> bool {
        own.or(self.smtp_alert_checker)
            .or(self.smtp_alert)
            .unwrap_or(true)
    }
}

/// `smtp_server HOST [PORT]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpServer {
    /// An address or a name (resolved when a mail goes out).
    pub host: String,
    /// Default 25.
    pub port: u16,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        Self {
            router_id: None,
            vrrp_version: Version::V2,
            garp: Garp::default(),
            mcast_group4: vrrp_proto::packet::MCAST_V4,
            mcast_group6: vrrp_proto::packet::MCAST_V6,
            script_security: false,
            script_user: None,
            vrrp_strict: false,
            notify_fifo: None,
            vrrp_notify_fifo: None,
            lvs_notify_fifo: None,
            vrrp_notify_priority_changes: false,
            metrics_listen: None,
            vrrp_startup_delay: None,
            net_namespace: None,
            dynamic_interfaces: false,
            default_interface: None,
            reload_check_config: None,
            lvs_sync_daemon: None,
            down_timer_adverts: 3,
            higher_prio_send_advert: false,
            check_unicast_src: false,
            skip_check_adv_addr: false,
            fifo_write_vrrp_states_on_reload: false,
            log_unknown_vrids: false,
            mail: MailDefs::default(),
            process: ProcessSettings::default(),
        }
    }
}

/// Scheduling, memory locking and umask, as keepalived's `global_defs` give them to its VRRP
/// and checker processes. vrrpd is one process: the `vrrp` side is the thread running the VRRP
/// instances, the `checker` side the thread running the health checks (see [`crate::tuning`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSettings {
    /// `vrrp_priority`, `vrrp_rt_priority`, `vrrp_cpu_affinity`, `vrrp_rlimit_rttime`,
    /// `vrrp_no_swap`.
    #[serde(default, skip_serializing_if = "SideSettings::is_default")]
    pub vrrp: SideSettings,
    /// The same `checker_*` keywords.
    #[serde(default, skip_serializing_if = "SideSettings::is_default")]
    pub checker: SideSettings,
    /// `max_auto_priority [N]`: a side that runs late goes real-time and climbs up to this
    /// SCHED_RR priority (0, the default, and -1 turn it off).
    #[serde(default, skip_serializing_if = "is_zero_i8")]
    pub max_auto_priority: i8,
    /// `min_auto_priority_delay USECS`: how late a timer must fire to count (default 1 s).
    #[serde(default = "one_second_us")]
    pub min_auto_priority_delay_us: u32,
    /// `umask`: the process umask (the `-u` flag wins; keepalived's default is 0177).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        Self {
            vrrp: SideSettings::default(),
            checker: SideSettings::default(),
            max_auto_priority: 0,
            min_auto_priority_delay_us: one_second_us(),
            umask: None,
        }
    }
}

impl ProcessSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// One side's settings (keepalived's per-child values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideSettings {
    /// `*_priority`: the nice value (-20..19), used when not real-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nice: Option<i8>,
    /// `*_rt_priority`: SCHED_RR at this priority (1..99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rt_priority: Option<u8>,
    /// `*_cpu_affinity`: the CPUs to run on (empty: unchanged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_affinity: Vec<u16>,
    /// `*_rlimit_rttime`: RLIMIT_RTTIME hard limit in µs while real-time (soft is half;
    /// default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimit_rttime_us: Option<u32>,
    /// `*_no_swap`: lock the process in memory (mlockall).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_swap: bool,
}

impl SideSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn is_zero_i8(v: &i8) -> bool {
    *v == 0
}

fn one_second_us() -> u32 {
    1_000_000
}

/// A notify FIFO (`notify_fifo PATH [USER [GROUP]]`) and the script reading it
/// (`notify_fifo_script CMD [USER [GROUP]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFifo {
    pub path: PathBuf,
    /// `USER [GROUP]` a FIFO vrrpd creates is given to (default: the script user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Started with the FIFO's path appended as its last argument; stopped (SIGTERM) with the
    /// daemon or a reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// `USER [GROUP]` the script runs as (default `script_user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_user: Option<String>,
}

/// Gratuitous ARP / unsolicited NA schedule, keepalived's keys and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Garp {
    /// `garp_master_delay`: second burst this long after becoming Master (default 5 s; 0 = none).
    #[serde(with = "secs")]
    pub master_delay: Duration,
    /// `garp_master_repeat`: messages per burst (default 5).
    pub master_repeat: u32,
    /// `garp_master_refresh`: periodic refresh while Master (default 0 = off).
    #[serde(with = "secs")]
    pub master_refresh: Duration,
    /// `garp_master_refresh_repeat`: messages per refresh (default 1).
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_delay`: second burst after a lower-priority advert (default = master_delay).
    #[serde(with = "secs")]
    pub lower_prio_delay: Duration,
    /// `garp_lower_prio_repeat`: messages per lower-priority burst (default = master_repeat).
    pub lower_prio_repeat: u32,
    /// `garp_interval` / `vrrp_garp_interval`: gap between ARP messages in a burst (default 0).
    #[serde(with = "secs")]
    pub interval: Duration,
    /// `gna_interval` / `vrrp_gna_interval`: gap between NA messages in a burst (default 0).
    #[serde(with = "secs")]
    pub na_interval: Duration,
    /// `lower_prio_no_advert`: a Master does not answer a lower-priority advert with its own.
    pub lower_prio_no_advert: bool,
}

impl Default for Garp {
    /// keepalived's defaults; the schedule's own come from the `garp` crate, the one place
    /// they are written down.
    fn default() -> Self {
        let s = vrrp_proto::announce::ScheduleConfig::default();
        Self {
            master_delay: s.master_delay,
            master_repeat: s.master_repeat,
            master_refresh: s.master_refresh,
            master_refresh_repeat: s.master_refresh_repeat,
            lower_prio_delay: s.lower_prio_delay,
            lower_prio_repeat: s.lower_prio_repeat,
            interval: s.interval,
            na_interval: s.interval,
            lower_prio_no_advert: false,
        }
    }
}

impl Garp {
    /// The send schedule for an instance of the given family (NA spacing for IPv6).
    pub fn schedule(&self, ipv6: bool) -> vrrp_proto::announce::ScheduleConfig {
        vrrp_proto::announce::ScheduleConfig {
            master_delay: self.master_delay,
            master_repeat: self.master_repeat,
            master_refresh: self.master_refresh,
            master_refresh_repeat: self.master_refresh_repeat,
            lower_prio_delay: self.lower_prio_delay,
            lower_prio_repeat: self.lower_prio_repeat,
            interval: if ipv6 {
                self.na_interval
            } else {
                self.interval
            },
        }
    }
}

/// `state` keyword of a vrrp_instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitialState {
    Master,
    Backup,
}

/// `authentication { auth_type PASS|AH; auth_pass … }` (VRRPv2, IPv4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Authentication {
    /// The password as configured; the wire carries its first 8 bytes.
    Pass(String),
    /// IPsec AH (HMAC-MD5-96) keyed with the password's first 8 bytes, as keepalived does it.
    Ah(String),
}

impl Authentication {
    /// The password's first 8 bytes, zero padded: what PASS carries and what AH is keyed with.
    pub fn key(&self) -> [u8; 8] {
        let (Authentication::Pass(p) | Authentication::Ah(p)) = self;
        let mut bytes = [0u8; 8];
        let n = p.len().min(8);
        bytes[..n].copy_from_slice(&p.as_bytes()[..n]);
        bytes
    }
}

/// One address of `virtual_ipaddress`:
/// `ADDR[/PREFIX] [brd ADDR] [dev IFNAME] [scope SCOPE] [label LABEL]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualAddress {
    pub addr: IpAddr,
    /// Defaults to /32 (IPv4) or /128 (IPv6) as keepalived.
    pub prefix_len: u8,
    pub broadcast: Option<std::net::Ipv4Addr>,
    /// Interface to add it on; defaults to the instance's interface.
    pub dev: Option<String>,
    /// `host`, `link`, `site`, `global`/`universe` (default), `nowhere`, or a number.
    pub scope: Scope,
    pub label: Option<String>,
    /// `no_track`: someone else deleting it while we are Master is left alone (keepalived's
    /// default is to leave Master and take it back, which reinstates it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_track: bool,
}

/// Address scope (rtnetlink `ifa_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

impl Scope {
    /// The numeric `RT_SCOPE_*` value.
    pub fn as_u8(self) -> u8 {
        match self {
            Scope::Global => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
            Scope::Nowhere => 255,
            Scope::Other(n) => n,
        }
    }
}

/// `vrrp_instance NAME { … }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpInstance {
    pub name: String,
    pub state: InitialState,
    pub interface: String,
    pub virtual_router_id: u8,
    /// 1..=255 (default 100).
    pub priority: u8,
    /// `advert_int` in centiseconds (default 100).
    pub advert_int: u16,
    pub version: Version,
    /// `nopreempt` (cleared by `state MASTER`, as keepalived does).
    pub nopreempt: bool,
    #[serde(with = "secs")]
    pub preempt_delay: Duration,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VirtualAddress>,
    /// `virtual_ipaddress_excluded`: added and removed with the VIPs but not carried in the
    /// adverts, so they may be many, or of the other address family.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    /// `mcast_src_ip` / `unicast_src_ip`.
    pub src_ip: Option<IpAddr>,
    /// `unicast_peer { … }`: unicast mode when non-empty.
    pub unicast_peers: Vec<IpAddr>,
    /// `unicast_ttl` (default 255).
    pub unicast_ttl: u8,
    pub garp: Garp,
    /// `track_script { NAME [weight N [reverse]] }`: the per-use weight overrides the script's.
    #[serde(default)]
    pub track_scripts: Vec<Track>,
    /// `track_interface { IF [weight N] }`, besides the instance's own interface (weight 0:
    /// down is FAULT).
    #[serde(default)]
    pub track_interfaces: Vec<Track>,
    /// `track_file { NAME [weight N] }`: the file's value × the weight.
    #[serde(default)]
    pub track_files: Vec<Track>,
    /// `track_process { NAME [weight N [reverse|noreverse]] }`: the process quorum, weighted
    /// like a `track_script`.
    #[serde(default)]
    pub track_processes: Vec<Track>,
    /// `use_vmac [NAME] [MAC]`: the addresses live on a private macvlan with the VRRP virtual
    /// MAC (00:00:5e:00:01:VRID), so a failover does not change the MAC the LAN sees.
    #[serde(default)]
    pub use_vmac: Option<UseVmac>,
    /// `vmac_xmit_base`: adverts leave by the base interface instead of the VMAC one.
    #[serde(default)]
    pub vmac_xmit_base: bool,
    /// `promote_secondaries`: set on the instance's interface while we run, so removing the
    /// first address of a subnet keeps the others (the kernel would remove them all).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promote_secondaries: bool,
    /// `down_timer_adverts` (1..100, default 3): Master_Down_Interval in advert intervals.
    #[serde(default = "three")]
    pub down_timer_adverts: u8,
    /// `higher_prio_send_advert`: a Master hearing a higher priority adverts once more
    /// before stepping down (never under `strict_mode`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub higher_prio_send_advert: bool,
    /// `check_unicast_src`: in unicast mode, adverts from other sources than the peers are
    /// dropped (keepalived's default takes them from anybody).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check_unicast_src: bool,
    /// `skip_check_adv_addr`: the current Master's adverts are not checked against our
    /// address list (a mismatch is only ever logged and counted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_check_adv_addr: bool,
    /// `old_unicast_checksum [never]`: which checksum unicast VRRPv3 over IPv4 uses.
    #[serde(default, skip_serializing_if = "UnicastChecksum::is_auto")]
    pub unicast_checksum: UnicastChecksum,
    /// `dont_track_primary`: the instance's own interface going down is not a fault.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dont_track_primary: bool,
    /// `track_virtual_server { IP PORT | fwmark N | group NAME [weight N] }` (vrrpd extension):
    /// losing the virtual server's quorum lowers the priority by the weight, or with weight 0
    /// (the default) puts the instance in FAULT.
    #[serde(default)]
    pub track_virtual_servers: Vec<TrackVirtualServer>,
    /// `notify*` scripts, run in transition order.
    #[serde(default)]
    pub notify: Notify,
    /// `notify_priority_changes [BOOL]` (default `vrrp_notify_priority_changes`): a FIFO line
    /// `INSTANCE "VI_1" MASTER_PRIORITY 50` (`BACKUP_PRIORITY` when not Master) whenever the
    /// effective priority changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notify_priority_changes: bool,
    /// `smtp_alert [BOOL]`, if given ([`MailDefs::vrrp_alert`] has the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert: Option<bool>,
    /// `strict_mode [BOOL]` (default `vrrp_strict`): keepalived's config rules apply
    /// (authentication dropped, only the owner starts as MASTER, `no_accept` by default).
    #[serde(default)]
    pub strict_mode: bool,
    /// `accept` / `no_accept`: false means traffic to the VIPs is dropped (nftables) while
    /// the daemon runs, as keepalived does for a non-owner without accept mode. Default true,
    /// false under `strict_mode`; always true for the owner (priority 255).
    #[serde(default = "yes")]
    pub accept: bool,
    /// `virtual_routes` / `virtual_rules`: installed after the VIPs while MASTER, removed
    /// when leaving MASTER.
    #[serde(default)]
    pub virtual_routes: Vec<Route>,
    #[serde(default)]
    pub virtual_rules: Vec<Rule>,
    /// Where each item came from, for diagnostics.
    #[serde(skip)]
    pub source: Option<SourceRef>,
}

fn yes() -> bool {
    true
}

fn three() -> u8 {
    3
}

impl VrrpInstance {
    /// Every address the instance holds while Master: the advertised ones, then the excluded.
    pub fn addresses(&self) -> impl Iterator<Item = &VirtualAddress> {
        self.virtual_ipaddress
            .iter()
            .chain(&self.virtual_ipaddress_excluded)
    }
}

/// A place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
}

/// The checksum of unicast VRRPv3 adverts over IPv4. keepalived before 1.3.6 (CentOS 7's
/// 1.3.5, for one) put the multicast group 224.0.0.18 in the pseudo-header where RFC 5798 has
/// the packet's destination; keepalived since then switches to that form when a peer's adverts
/// carry it, as vrrpd does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnicastChecksum {
    /// The RFC's checksum, and the old one from the first advert that carries it.
    #[default]
    Auto,
    /// The RFC's checksum only (`old_unicast_checksum never`).
    Never,
    /// The old checksum from the start (`old_unicast_checksum`).
    Old,
}

impl UnicastChecksum {
    fn is_auto(&self) -> bool {
        *self == UnicastChecksum::Auto
    }
}
