//! Declarative service specs, filled by the config layer from keepalived.conf's
//! `virtual_server`, `virtual_server_group` and `real_server` blocks (or TOML).
//!
//! These types carry configuration only; live state (health, connection counts)
//! lives in [`crate::service`]. Defaults are keepalived 2.2's (keepalived.conf(5)).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// keepalived's `persistence_timeout` with no argument: 6 minutes.
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;

/// Address family, for fwmark services and groups (`ip_family inet|inet6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    /// `inet` (keepalived's default for fwmark services).
    #[default]
    Inet,
    /// `inet6`.
    Inet6,
}

/// What identifies a virtual service: the argument of `virtual_server`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKey {
    /// `virtual_server <IPADDR> [<PORT>]`; the port may be omitted only for a
    /// persistent service (then it matches every port).
    Addr { addr: IpAddr, port: Option<u16> },
    /// `virtual_server fwmark <INTEGER>`, with the `ip_family` of the service.
    Fwmark { mark: u32, family: IpFamily },
    /// `virtual_server group <STRING>`, naming a [`VirtualServerGroupSpec`].
    Group(String),
}

/// One line of a `virtual_server_group <STRING> { ... }` block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupEntry {
    /// `<IPADDR> [<PORT>]` or `<IPADDR RANGE> [<PORT>]`: every address from
    /// `first` to `last` inclusive (equal for a single address).
    Range {
        first: IpAddr,
        last: IpAddr,
        port: Option<u16>,
    },
    /// `fwmark <INTEGER> [inet|inet6]`.
    Fwmark { mark: u32, family: Option<IpFamily> },
}

/// `virtual_server_group <STRING> { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualServerGroupSpec {
    /// The group name, referenced by `virtual_server group <STRING>`.
    pub name: String,
    /// Addresses, ranges and fwmarks, in config order.
    pub entries: Vec<GroupEntry>,
}

/// `protocol TCP|UDP|SCTP` (keepalived's default is TCP).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The name IPVS and ipvsadm print.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        }
    }

    /// The IP protocol number (the order ipvsadm sorts services in).
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
        }
    }
}

/// `lvs_sched` / `lb_algo`: ipvsadm's scheduler names plus our extensions.
/// keepalived leaves the choice to IPVS when unset, whose default is `wlc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    /// `rr`: round robin.
    Rr,
    /// `wrr`: weighted round robin.
    Wrr,
    /// `lc`: least connections.
    Lc,
    /// `wlc`: weighted least connections (IPVS default).
    #[default]
    Wlc,
    /// `sed`: shortest expected delay.
    Sed,
    /// `nq`: never queue.
    Nq,
    /// `sh`: source hashing.
    Sh,
    /// `dh`: destination hashing.
    Dh,
    /// `mh`: Maglev hashing.
    Mh,
    /// `fo`: weighted failover.
    Fo,
    /// `ovf`: weighted overflow.
    Ovf,
    /// `lblc`: locality-based least connections.
    Lblc,
    /// `lblcr`: locality-based least connections with replication.
    Lblcr,
    /// `twos`: weighted random of two choices.
    Twos,
    /// Extension `rtt`: least expected response time, fed by probe latency.
    Rtt,
    /// Extension `priority_group`: use only the best (lowest) priority group that
    /// has an available server, weighted least connections inside it.
    PriorityGroup,
}

impl SchedulerKind {
    /// The name as written in keepalived.conf / ipvsadm.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Sh => "sh",
            Self::Dh => "dh",
            Self::Mh => "mh",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Twos => "twos",
            Self::Rtt => "rtt",
            Self::PriorityGroup => "priority_group",
        }
    }

    /// Every scheduler, in ipvsadm's order then ours.
    pub const ALL: [SchedulerKind; 16] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Sh,
        SchedulerKind::Dh,
        SchedulerKind::Mh,
        SchedulerKind::Fo,
        SchedulerKind::Ovf,
        SchedulerKind::Lblc,
        SchedulerKind::Lblcr,
        SchedulerKind::Twos,
        SchedulerKind::Rtt,
        SchedulerKind::PriorityGroup,
    ];

    /// Parses a keepalived/ipvsadm scheduler name (`priority-group` also accepted).
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.replace('-', "_").to_ascii_lowercase();
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Scheduler flags (`-b` in ipvsadm). `flag-1` is sh/mh-fallback and `flag-2`
/// is sh/mh-port in IPVS, so the config layer maps `flag-N` onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SchedFlags {
    /// `sh-port`: hash the source port too.
    pub sh_port: bool,
    /// `sh-fallback`: skip an unavailable server chosen by the hash.
    pub sh_fallback: bool,
    /// `mh-port`: hash the source port too.
    pub mh_port: bool,
    /// `mh-fallback`: skip an unavailable server chosen by the hash.
    pub mh_fallback: bool,
    /// `flag-3` (unused by the IPVS schedulers we implement; kept for round trips).
    pub flag_3: bool,
}

/// Tunnel encapsulation, `lvs_method TUN [type {ipip|gue port NUM|gre}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TunType {
    #[default]
    Ipip,
    Gue {
        port: u16,
    },
    Gre,
}

/// Tunnel checksum option `[nocsum|csum|remcsum]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TunCsum {
    #[default]
    Nocsum,
    Csum,
    Remcsum,
}

/// Options of the TUN forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TunOptions {
    /// `type ipip|gue port NUM|gre`.
    pub tun_type: TunType,
    /// `nocsum|csum|remcsum`.
    pub csum: TunCsum,
}

/// `lvs_method` / `lb_kind`: how packets reach the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ForwardingMethod {
    /// `NAT` (keepalived's default): destination rewrite, replies route back via us.
    #[default]
    Nat,
    /// Extension: one-arm NAT, the source is also rewritten to the balancer's address
    /// so replies come back without routing changes on the real servers.
    NatOneArm,
    /// `DR`: direct return, only the destination MAC changes.
    Dr,
    /// `TUN`: encapsulation to the real server.
    Tun(TunOptions),
}

/// A script with optional user/group: `notify_up <STRING> [username [groupname]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptSpec {
    /// The command line, as written (quoted strings already unquoted).
    pub command: String,
    /// Run as this user.
    pub user: Option<String>,
    /// Run as this group.
    pub group: Option<String>,
}

/// `real_server <IPADDR> [<PORT>] { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RealServerSpec {
    /// `<IPADDR>` of `real_server`.
    pub addr: IpAddr,
    /// `[<PORT>]` of `real_server`; `None` keeps the client's destination port.
    pub port: Option<u16>,
    /// `weight <INTEGER>`, default 1.
    pub weight: u32,
    /// `inhibit_on_failure <BOOL>`; `None` inherits the virtual server's setting.
    pub inhibit_on_failure: Option<bool>,
    /// `notify_up`.
    pub notify_up: Option<ScriptSpec>,
    /// `notify_down`.
    pub notify_down: Option<ScriptSpec>,
    /// `lvs_method` of the real server; `None` inherits the virtual server's.
    pub forwarding: Option<ForwardingMethod>,
    /// `uthreshold <INTEGER>`: no new connections above this many (0 = unlimited).
    pub uthreshold: u32,
    /// `lthreshold <INTEGER>`: once over `uthreshold`, take new connections again
    /// only below this many (0 = as soon as below `uthreshold`).
    pub lthreshold: u32,
    /// `virtualhost <STRING>` for HTTP checkers; `None` inherits.
    pub virtualhost: Option<String>,
    /// Extension `priority_group <INTEGER>`: lower is preferred by the
    /// `priority_group` scheduler. Default 0.
    pub priority_group: u32,
}

impl Default for RealServerSpec {
    fn default() -> Self {
        Self {
            addr: IpAddr::from([0, 0, 0, 0]),
            port: None,
            weight: 1,
            inhibit_on_failure: None,
            notify_up: None,
            notify_down: None,
            forwarding: None,
            uthreshold: 0,
            lthreshold: 0,
            virtualhost: None,
            priority_group: 0,
        }
    }
}

/// `sorry_server <IPADDR> [<PORT>]` with its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SorryServerSpec {
    /// `<IPADDR>`.
    pub addr: IpAddr,
    /// `[<PORT>]`.
    pub port: Option<u16>,
    /// `sorry_server_inhibit`: the sorry server stays in the table with weight 0
    /// while quorum holds, instead of being absent.
    pub inhibit: bool,
    /// `sorry_server_lvs_method`; `None` uses the virtual server's method.
    pub forwarding: Option<ForwardingMethod>,
}

/// `virtual_server ... { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceSpec {
    /// The `virtual_server` argument.
    pub key: ServiceKey,
    /// `protocol TCP|UDP|SCTP`, default TCP.
    pub protocol: Protocol,
    /// `lvs_sched` / `lb_algo`, default `wlc`.
    pub scheduler: SchedulerKind,
    /// `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`, `flag-N`.
    pub sched_flags: SchedFlags,
    /// `lvs_method` / `lb_kind`, default NAT.
    pub forwarding: ForwardingMethod,
    /// `persistence_timeout [<INTEGER>]` in seconds; `None` = not persistent,
    /// keyword alone = [`DEFAULT_PERSISTENCE_TIMEOUT`].
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity <NETMASK>` as a prefix length; `None` = whole
    /// address (/32 or /128).
    pub persistence_granularity: Option<u8>,
    /// `persistence_engine <STRING>` (keepalived knows only `sip`).
    pub persistence_engine: Option<String>,
    /// `quorum <INTEGER>`: minimum total weight of live servers, default 1.
    pub quorum: u32,
    /// `hysteresis <INTEGER>`: flap dampener around `quorum`, default 0.
    pub hysteresis: u32,
    /// `quorum_up`.
    pub quorum_up: Option<ScriptSpec>,
    /// `quorum_down`.
    pub quorum_down: Option<ScriptSpec>,
    /// `sorry_server` (with `sorry_server_inhibit`, `sorry_server_lvs_method`).
    pub sorry_server: Option<SorryServerSpec>,
    /// `inhibit_on_failure`: a failed real server gets weight 0 instead of being
    /// removed, so its existing connections keep flowing.
    pub inhibit_on_failure: bool,
    /// `virtualhost <STRING>`: default Host for HTTP/SSL checkers.
    pub virtualhost: Option<String>,
    /// `ha_suspend`: suspend checkers while the VIP is not configured here.
    pub ha_suspend: bool,
    /// `ops`: one-packet scheduling for UDP (no connection entry).
    pub ops: bool,
    /// `alpha`: real servers start down until their checks pass.
    pub alpha: bool,
    /// `omega`: run quorum/notify_down scripts at shutdown.
    pub omega: bool,
    /// `delay_loop <TIMER>` in seconds, default 60 (checkers' period).
    pub delay_loop: u32,
    /// `real_server` blocks, in config order.
    pub real_servers: Vec<RealServerSpec>,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        Self {
            key: ServiceKey::Addr {
                addr: IpAddr::from([0, 0, 0, 0]),
                port: None,
            },
            protocol: Protocol::Tcp,
            scheduler: SchedulerKind::Wlc,
            sched_flags: SchedFlags::default(),
            forwarding: ForwardingMethod::Nat,
            persistence_timeout: None,
            persistence_granularity: None,
            persistence_engine: None,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            inhibit_on_failure: false,
            virtualhost: None,
            ha_suspend: false,
            ops: false,
            alpha: false,
            omega: false,
            delay_loop: 60,
            real_servers: Vec::new(),
        }
    }
}

impl ServiceSpec {
    /// The forwarding method a real server actually uses (its own or inherited).
    pub fn forwarding_of(&self, rs: &RealServerSpec) -> ForwardingMethod {
        rs.forwarding.unwrap_or(self.forwarding)
    }

    /// Whether a failed real server is kept at weight 0 rather than removed.
    pub fn inhibit_of(&self, rs: &RealServerSpec) -> bool {
        rs.inhibit_on_failure.unwrap_or(self.inhibit_on_failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_keepalived_defaults() {
        let s = ServiceSpec::default();
        assert_eq!(s.scheduler, SchedulerKind::Wlc);
        assert_eq!(s.forwarding, ForwardingMethod::Nat);
        assert_eq!(s.protocol, Protocol::Tcp);
        assert_eq!(s.quorum, 1);
        assert_eq!(s.hysteresis, 0);
        assert_eq!(s.delay_loop, 60);
        assert_eq!(s.persistence_timeout, None);
        assert_eq!(RealServerSpec::default().weight, 1);
    }

    #[test]
    fn scheduler_names_round_trip() {
        for n in [
            "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh", "fo", "ovf", "lblc", "lblcr",
            "twos", "rtt",
        ] {
            assert_eq!(SchedulerKind::from_name(n).unwrap().name(), n);
        }
        assert_eq!(
            SchedulerKind::from_name("priority-group"),
            Some(SchedulerKind::PriorityGroup)
        );
        assert_eq!(SchedulerKind::from_name("WRR"), Some(SchedulerKind::Wrr));
        assert_eq!(SchedulerKind::from_name("bogus"), None);
    }

    #[test]
    fn inheritance_of_method_and_inhibit() {
        let vs = ServiceSpec {
            forwarding: ForwardingMethod::Dr,
            inhibit_on_failure: true,
            ..Default::default()
        };
        let rs = RealServerSpec::default();
        assert_eq!(vs.forwarding_of(&rs), ForwardingMethod::Dr);
        assert!(vs.inhibit_of(&rs));
        let rs2 = RealServerSpec {
            forwarding: Some(ForwardingMethod::Tun(TunOptions::default())),
            inhibit_on_failure: Some(false),
            ..Default::default()
        };
        assert_eq!(
            vs.forwarding_of(&rs2),
            ForwardingMethod::Tun(TunOptions::default())
        );
        assert!(!vs.inhibit_of(&rs2));
    }

    #[test]
    fn serde_round_trip_and_partial_input() {
        let vs = ServiceSpec {
            key: ServiceKey::Group("web".into()),
            scheduler: SchedulerKind::Mh,
            sched_flags: SchedFlags {
                mh_port: true,
                ..Default::default()
            },
            forwarding: ForwardingMethod::Tun(TunOptions {
                tun_type: TunType::Gue { port: 6080 },
                csum: TunCsum::Csum,
            }),
            persistence_timeout: Some(DEFAULT_PERSISTENCE_TIMEOUT),
            persistence_granularity: Some(24),
            real_servers: vec![RealServerSpec {
                addr: "192.0.2.10".parse().unwrap(),
                port: Some(8080),
                weight: 3,
                ..Default::default()
            }],
            ..Default::default()
        };
        let j = serde_json::to_string(&vs).unwrap();
        assert_eq!(serde_json::from_str::<ServiceSpec>(&j).unwrap(), vs);
        // Omitted fields take keepalived defaults.
        let v: ServiceSpec = serde_json::from_str(
            r#"{"key":{"addr":{"addr":"192.0.2.1","port":80}},"real_servers":[{"addr":"192.0.2.10"}]}"#,
        )
        .unwrap();
        assert_eq!(v.quorum, 1);
        assert_eq!(v.real_servers[0].weight, 1);
        assert_eq!(v.scheduler, SchedulerKind::Wlc);
    }
}
