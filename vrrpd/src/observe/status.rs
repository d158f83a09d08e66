//! What an operator sees: per-instance status and counters, written where keepalived writes
//! them so existing habits keep working: SIGUSR1 → `/tmp/keepalived.data`, SIGUSR2 →
//! `/tmp/keepalived.stats` (keepalived's layout), the JSON signal (`--signum=JSON`) →
//! `/tmp/keepalived.json` in keepalived's format ([`super::keepalived_json`]) and
//! `/tmp/vrrpd.json` (checkers, balancer, mail). `$TMPDIR` moves them, as keepalived's.

use std::fmt::Write;
use std::net::IpAddr;

use serde::Serialize;

use vrrp_proto::fsm::State;
use vrrp_proto::packet::Version;

/// The dumps' file names, in `$TMPDIR` (when absolute) or /tmp, as keepalived.
pub const DATA_FILE: &str = "keepalived.data";
pub const STATS_FILE: &str = "keepalived.stats";
pub const JSON_FILE: &str = "keepalived.json";
/// What keepalived's JSON has no place for: checkers, balancer, mail.
pub const VRRPD_JSON_FILE: &str = "vrrpd.json";

/// `name` in keepalived's temporary directory: `$TMPDIR` if it is an absolute path, else /tmp.
pub fn tmp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("TMPDIR")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| "/tmp".into());
    dir.join(name)
}

/// Counters of one instance, as keepalived keeps them (kept by the instance core).
pub use vrrp_proto::instance::Counters;

/// Where `STATS_CLEAR` (`vrrpd --signum=STATS_CLEAR`) put each instance's counters back to
/// zero, as keepalived 2.2.7 does after writing its stats file. The instances count on; every
/// view (dumps, control socket, metrics) shows what they counted since. An instance counts
/// on through a reload that keeps it, so this is kept too, for the instances still there.
#[derive(Debug, Default)]
pub struct ClearedStats(std::collections::BTreeMap<String, Counters>);

impl ClearedStats {
    /// Zero every instance of `all` from now on.
    pub fn clear(&mut self, all: &[InstanceStatus]) {
        self.0 = all
            .iter()
            .map(|i| (i.name.clone(), i.counters.clone()))
            .collect();
    }

    /// Forgets the instances not `named` (gone with a reload: one added again later counts
    /// from its start).
    pub fn keep_only<'a>(&mut self, named: impl IntoIterator<Item = &'a str>) {
        let named: std::collections::BTreeSet<&str> = named.into_iter().collect();
        self.0.retain(|name, _| named.contains(name.as_str()));
    }

    /// `all` as counted since the last clear.
    pub fn apply(&self, all: &mut [InstanceStatus]) {
        for i in all {
            if let Some(base) = self.0.get(&i.name) {
                i.counters = i.counters.since(base);
            }
        }
    }
}

/// A snapshot of one instance.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InstanceStatus {
    pub name: String,
    pub state: State,
    pub interface: String,
    pub vrid: u8,
    pub version: Version,
    pub base_priority: u8,
    pub effective_priority: u8,
    /// Master_Adver_Interval in seconds (learned from the Master in v3).
    pub master_adver_int: f64,
    pub master_addr: Option<IpAddr>,
    pub source_addr: IpAddr,
    pub unicast_peers: Vec<IpAddr>,
    pub preempt: bool,
    pub vips: Vec<String>,
    /// `virtual_ipaddress_excluded`, as keepalived's dump lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_vips: Vec<String>,
    /// What each tracked object does to the instance now.
    #[serde(default)]
    pub trackers: Vec<TrackerStatus>,
    pub counters: Counters,
    /// Priority in the last advert received (keepalived's `master_priority`; 0 before any).
    #[serde(default)]
    pub master_priority: u8,
    /// The last state change: Unix time in seconds (0 before any), and the state left.
    #[serde(default)]
    pub last_transition: f64,
    #[serde(default)]
    pub last_transition_from: Option<State>,
    /// What caused it: `advert from 192.0.2.2 with priority 200`, `master down timer expired`...
    #[serde(default)]
    pub last_transition_reason: Option<String>,
}

/// One VRRP socket (an interface and address family, shared by the instances on it): what it
/// received.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SocketStatus {
    pub interface: String,
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    /// `vrrp`, or `ah` for VRRPv2 adverts inside IPsec AH.
    pub proto: &'static str,
    /// Packets read, and the system calls that read them (`recvmmsg`, each several packets).
    pub packets: u64,
    pub reads: u64,
    /// Packets for a VRID no instance on the socket runs (`log_unknown_vrids` logs each).
    pub unknown_vrid: u64,
    /// Packets refused before their VRID could be read (truncated, a bad IP header).
    pub refused: u64,
}

/// One tracked object of an instance and its current effect.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrackerStatus {
    /// `interface`, `script`, `file`, `process` or `virtual_server`.
    pub kind: &'static str,
    pub name: String,
    /// The priority delta it adds now, or `None` when it puts the instance in FAULT.
    pub delta: Option<i32>,
}

fn state_word(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// The SIGUSR1 dump: configuration and state, readable.
pub fn render_data(all: &[InstanceStatus]) -> String {
    let mut s = String::from("------< VRRP Topology >------\n");
    for i in all {
        let _ = writeln!(s, " VRRP Instance = {}", i.name);
        let _ = writeln!(s, "   State = {}", state_word(i.state));
        let master = i.master_addr.map_or("none".to_string(), |a| a.to_string());
        let _ = writeln!(s, "   Master router = {master}");
        let _ = writeln!(s, "   Interface = {}", i.interface);
        let _ = writeln!(s, "   Using src_ip = {}", i.source_addr);
        let _ = writeln!(s, "   Virtual Router ID = {}", i.vrid);
        let v = match i.version {
            Version::V2 => 2,
            Version::V3 => 3,
        };
        let _ = writeln!(s, "   VRRP Version = {v}");
        let _ = writeln!(s, "   Priority = {}", i.base_priority);
        let _ = writeln!(s, "   Effective priority = {}", i.effective_priority);
        let _ = writeln!(s, "   Master advert interval = {} sec", i.master_adver_int);
        let _ = writeln!(
            s,
            "   Preempt = {}",
            if i.preempt { "enabled" } else { "disabled" }
        );
        if !i.unicast_peers.is_empty() {
            let _ = writeln!(s, "   Unicast Peer = {}", i.unicast_peers.len());
            for p in &i.unicast_peers {
                let _ = writeln!(s, "     {p}");
            }
        }
        let _ = writeln!(s, "   Virtual IP = {}", i.vips.len());
        for v in &i.vips {
            let _ = writeln!(s, "     {v}");
        }
        if !i.excluded_vips.is_empty() {
            let _ = writeln!(s, "   Virtual IP Excluded = {}", i.excluded_vips.len());
            for v in &i.excluded_vips {
                let _ = writeln!(s, "     {v}");
            }
        }
        for kind in ["interface", "script", "file", "process", "virtual_server"] {
            let mut of_kind = i.trackers.iter().filter(|t| t.kind == kind).peekable();
            if of_kind.peek().is_none() {
                continue;
            }
            let _ = writeln!(s, "   Tracked {kind}s :");
            for t in of_kind {
                match t.delta {
                    Some(d) => {
                        let _ = writeln!(s, "     {} effect {d:+}", t.name);
                    }
                    None => {
                        let _ = writeln!(s, "     {} effect FAULT", t.name);
                    }
                }
            }
        }
    }
    s
}

/// The health checkers' part of the SIGUSR1 dump: one block per checker with its verdict,
/// the last probe's reason and latency, and the failures in a row.
pub fn render_checkers(all: &[checks::CheckerStatus]) -> String {
    if all.is_empty() {
        return String::new();
    }
    let mut s = String::from("------< Health checkers >------\n");
    for c in all {
        let _ = writeln!(s, " Checker = {} {}", c.kind, c.target.id);
        let _ = writeln!(s, "   State = {}", if c.up { "UP" } else { "DOWN" });
        let _ = writeln!(s, "   Weight = {}", c.weight);
        let _ = writeln!(s, "   Probes = {}", c.probes);
        let last = match c.last_ok {
            None => "none yet",
            Some(true) => "success",
            Some(false) => "failure",
        };
        let _ = writeln!(s, "   Last verdict = {last}");
        if let Some(r) = &c.last_reason {
            let _ = writeln!(s, "   Last reason = {r}");
        }
        if let Some(ms) = c.last_latency_ms {
            let _ = writeln!(s, "   Last latency = {ms:.3} ms");
        }
        let _ = writeln!(s, "   Consecutive failures = {}", c.consecutive_failures);
    }
    s
}

/// The supervision part of the SIGUSR1 dump: every internal component that failed and was
/// restarted (nothing when none did), and the panics counted in this process.
pub fn render_supervision(
    all: &std::collections::BTreeMap<String, crate::components::Record>,
    panics: u64,
) -> String {
    if all.is_empty() && panics == 0 {
        return String::new();
    }
    let mut s = String::from("------< Supervision >------\n");
    let _ = writeln!(s, " Panics = {panics}");
    for (name, r) in all {
        let _ = writeln!(s, " Component = {name}");
        let _ = writeln!(s, "   Restarts = {}", r.restarts);
        if let Some(why) = &r.last_failure {
            let _ = writeln!(s, "   Last failure = {why}");
        }
    }
    s
}

/// The connection sync daemon's counters, after the instances in the stats file.
pub fn render_sync(c: &lbcore::sync::SyncSnapshot) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "LVS sync daemon:");
    let _ = writeln!(
        s,
        "  Messages sent: {} ({} bytes)",
        c.messages_sent, c.bytes_sent
    );
    let _ = writeln!(s, "  Entries sent: {}", c.entries_sent);
    let _ = writeln!(s, "  Messages received: {}", c.messages_received);
    let _ = writeln!(s, "  Entries received: {}", c.entries_received);
    let _ = writeln!(s, "  Installed: {}", c.installed);
    let _ = writeln!(s, "  Taken over: {}", c.adopted);
    let _ = writeln!(
        s,
        "  Full-table requests: {} sent, {} received",
        c.resync_requests_sent, c.resync_requests_received
    );
    let _ = writeln!(s, "  Dropped:");
    for (why, n) in &c.dropped {
        let _ = writeln!(s, "    {why}: {n}");
    }
    s
}

/// The SIGUSR2 dump, line for line keepalived 2.2.7's (`vrrp_print_stats`, built with
/// VRRP_AUTH as Debian's): scripts read it by position. Each counter holds what keepalived
/// counts there (see [`Counters::packet_len_err`] and the others); the drop reasons keepalived
/// keeps for SNMP only (version, checksum) or not at all (another VRID, a source that is not a
/// unicast peer) are in the JSON dump's `drops`, not here.
pub fn render_stats(all: &[InstanceStatus]) -> String {
    let mut s = String::new();
    for i in all {
        let c = &i.counters;
        let _ = writeln!(s, "VRRP Instance: {}", i.name);
        let _ = writeln!(s, "  Advertisements:");
        let _ = writeln!(s, "    Received: {}", c.adverts_received);
        let _ = writeln!(s, "    Sent: {}", c.adverts_sent);
        let _ = writeln!(s, "  Became master: {}", c.became_master);
        let _ = writeln!(s, "  Released master: {}", c.released_master);
        let _ = writeln!(s, "  Packet Errors:");
        let _ = writeln!(s, "    Length: {}", c.packet_len_err());
        let _ = writeln!(s, "    TTL: {}", c.ip_ttl_err());
        let _ = writeln!(s, "    Invalid Type: {}", c.invalid_type_rcvd());
        let interval = c.advert_interval_err();
        let _ = writeln!(s, "    Advertisement Interval: {interval}");
        let _ = writeln!(s, "    Address List: {}", c.addr_list_err());
        let _ = writeln!(s, "  Authentication Errors:");
        let _ = writeln!(s, "    Invalid Type: {}", c.invalid_authtype());
        let _ = writeln!(s, "    Type Mismatch: {}", c.authtype_mismatch());
        let _ = writeln!(s, "    Failure: {}", c.auth_failure());
        let _ = writeln!(s, "  Priority Zero:");
        let _ = writeln!(s, "    Received: {}", c.priority_zero_received);
        let _ = writeln!(s, "    Sent: {}", c.priority_zero_sent);
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vrrp_proto::packet::DropReason;

    pub(crate) fn sample() -> InstanceStatus {
        let mut counters = Counters {
            adverts_received: 7,
            adverts_sent: 3,
            became_master: 1,
            ..Counters::default()
        };
        counters.drop(DropReason::BadTtl);
        counters.drop(DropReason::BadChecksum);
        counters.drop(DropReason::BadChecksum);
        InstanceStatus {
            name: "VI_1".into(),
            state: State::Master,
            interface: "eth0".into(),
            vrid: 51,
            version: Version::V3,
            base_priority: 150,
            effective_priority: 150,
            master_adver_int: 0.1,
            master_addr: Some("192.0.2.1".parse().unwrap()),
            source_addr: "192.0.2.1".parse().unwrap(),
            unicast_peers: vec![],
            preempt: true,
            vips: vec!["192.0.2.100/24 dev eth0".into()],
            excluded_vips: vec!["2001:db8::100/64 dev eth0".into()],
            trackers: vec![
                TrackerStatus {
                    kind: "interface",
                    name: "eth0".into(),
                    delta: Some(0),
                },
                TrackerStatus {
                    kind: "script",
                    name: "chk".into(),
                    delta: Some(-20),
                },
                TrackerStatus {
                    kind: "file",
                    name: "tf".into(),
                    delta: None,
                },
            ],
            counters,
            master_priority: 0,
            last_transition: 0.0,
            last_transition_from: None,
            last_transition_reason: None,
        }
    }

    /// Line for line what keepalived 2.2.7 writes for one instance (`vrrp_print_stats`), each
    /// drop reason under the counter keepalived uses for it.
    #[test]
    fn cleared_stats_count_from_the_clear() {
        let mut all = vec![sample()];
        let mut cleared = ClearedStats::default();
        cleared.clear(&all);
        cleared.apply(&mut all);
        assert_eq!(all[0].counters, Counters::default());
        let mut later = vec![sample()];
        later[0].counters.adverts_received += 2;
        later[0].counters.drop(DropReason::BadTtl);
        later[0].counters.drop(DropReason::BadAuthType);
        cleared.apply(&mut later);
        let c = &later[0].counters;
        assert_eq!((c.adverts_received, c.adverts_sent), (2, 0));
        assert_eq!((c.ip_ttl_err(), c.invalid_authtype()), (1, 1));
        assert!(render_stats(&later).contains("    TTL: 1\n"));
        // Another instance (added by no reload: one the clear did not see) keeps its counts.
        let mut other = vec![sample()];
        other[0].name = "VI_2".into();
        cleared.apply(&mut other);
        assert_eq!(other[0].counters.adverts_received, 7);
        // A reload that drops VI_51 forgets its clear.
        cleared.keep_only(["VI_2"]);
        let mut again = vec![sample()];
        cleared.apply(&mut again);
        assert_eq!(again[0].counters.adverts_received, 7);
    }

    #[test]
    fn stats_in_keepalived_layout() {
        let mut i = sample();
        let c = &mut i.counters;
        c.address_list_mismatch = 4;
        c.priority_zero_received = 1;
        for (reason, n) in [
            (DropReason::BadAddrCount, 2),
            (DropReason::BadType, 3),
            (DropReason::BadVersion, 5),
            (DropReason::IntervalMismatch, 1),
            (DropReason::BadAuthType, 6),
            (DropReason::AuthTypeMismatch, 7),
            (DropReason::AuthFailure, 8),
            (DropReason::VridMismatch, 9),
        ] {
            for _ in 0..n {
                c.drop(reason);
            }
        }
        let want = "VRRP Instance: VI_1
  Advertisements:
    Received: 7
    Sent: 3
  Became master: 1
  Released master: 0
  Packet Errors:
    Length: 2
    TTL: 1
    Invalid Type: 3
    Advertisement Interval: 1
    Address List: 4
  Authentication Errors:
    Invalid Type: 6
    Type Mismatch: 7
    Failure: 8
  Priority Zero:
    Received: 1
    Sent: 0
";
        assert_eq!(render_stats(&[i.clone()]), want);
        assert_eq!(render_stats(&[i.clone(), i]), format!("{want}{want}"));
    }

    #[test]
    fn data_names_state_and_vips() {
        let text = render_data(&[sample()]);
        assert!(
            text.contains(" VRRP Instance = VI_1\n   State = MASTER\n"),
            "{text}"
        );
        assert!(
            text.contains("   Virtual IP = 1\n     192.0.2.100/24 dev eth0\n"),
            "{text}"
        );
        assert!(
            text.contains("   Virtual IP Excluded = 1\n     2001:db8::100/64 dev eth0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "   Tracked interfaces :\n     eth0 effect +0\n   Tracked scripts :\n     chk effect -20\n   Tracked files :\n     tf effect FAULT\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_round_trips_through_serde() {
        let v = serde_json::to_value([sample()]).unwrap();
        assert_eq!(v[0]["state"], "Master");
        assert_eq!(v[0]["counters"]["drops"]["bad checksum"], 2);
    }
}
