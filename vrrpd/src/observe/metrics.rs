//! Prometheus text exposition (format 0.0.4) of the daemon's state, with the metric names
//! dashboards already use: keepalived-exporter's for VRRP (`keepalived_vrrp_state`,
//! `keepalived_advertisements_sent_total`, ... labelled `iname`, `intf`, `vrid`) and
//! node_exporter's IPVS collector's for the balancer (`node_ipvs_*`, backends labelled
//! `local_address`, `local_port`, `local_mark`, `proto`, `remote_address`, `remote_port`).
//! What neither exporter has (health checkers, priorities, dataplane drops) is `vrrpd_*`.

use std::fmt::Write;

use lbcore::ipvsadm::Listing;
use vrrp_proto::fsm::State;

use super::Snapshot;

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metric families in the order they were first declared, each with its samples together
/// (the format requires a family's samples to be contiguous).
#[derive(Default)]
struct Exposition {
    families: Vec<Family>,
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: String,
}

impl Exposition {
    fn sample(
        &mut self,
        (name, kind, help): (&'static str, &'static str, &'static str),
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    kind,
                    help,
                    samples: String::new(),
                });
                self.families.len() - 1
            }
        };
        let s = &mut self.families[i].samples;
        s.push_str(name);
        if !labels.is_empty() {
            s.push('{');
            for (n, (k, v)) in labels.iter().enumerate() {
                if n > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{k}=\"{}\"", escape(v));
            }
            s.push('}');
        }
        let _ = writeln!(s, " {}", number(value));
    }

    fn render(self) -> String {
        let mut out = String::new();
        for f in self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            out.push_str(&f.samples);
        }
        out
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

pub(super) type Desc = (&'static str, &'static str, &'static str);

const UP: Desc = ("keepalived_up", "gauge", "Status");
const VRRP_STATE: Desc = ("keepalived_vrrp_state", "gauge", "State of vrrp");
const VRRP_EXCLUDED_STATE: Desc = (
    "keepalived_vrrp_excluded_state",
    "gauge",
    "State of vrrp with excluded VIP",
);

/// How to read one counter from an instance's.
pub(super) type Read = fn(&crate::observe::status::Counters) -> u64;

/// keepalived-exporter's per-instance counters, and how to read each from ours.
pub(super) const VRRP_COUNTERS: [(Desc, Read); 14] = {
    use crate::observe::status::Counters as C;
    [
        (
            (
                "keepalived_advertisements_received_total",
                "counter",
                "Advertisements received",
            ),
            |c: &C| c.adverts_received,
        ),
        (
            (
                "keepalived_advertisements_sent_total",
                "counter",
                "Advertisements sent",
            ),
            |c: &C| c.adverts_sent,
        ),
        (
            ("keepalived_become_master_total", "counter", "Became master"),
            |c: &C| c.became_master,
        ),
        (
            (
                "keepalived_release_master_total",
                "counter",
                "Released master",
            ),
            |c: &C| c.released_master,
        ),
        (
            (
                "keepalived_packet_length_errors_total",
                "counter",
                "Packet length errors",
            ),
            C::packet_len_err,
        ),
        (
            (
                "keepalived_advertisements_interval_errors_total",
                "counter",
                "Advertisement interval errors",
            ),
            C::advert_interval_err,
        ),
        (
            ("keepalived_ip_ttl_errors_total", "counter", "TTL errors"),
            C::ip_ttl_err,
        ),
        (
            (
                "keepalived_invalid_type_received_total",
                "counter",
                "Invalid type errors",
            ),
            C::invalid_type_rcvd,
        ),
        (
            (
                "keepalived_address_list_errors_total",
                "counter",
                "Address list errors",
            ),
            C::addr_list_err,
        ),
        (
            (
                "keepalived_authentication_invalid_total",
                "counter",
                "Authentication invalid",
            ),
            C::invalid_authtype,
        ),
        (
            (
                "keepalived_authentication_mismatch_total",
                "counter",
                "Authentication mismatch",
            ),
            C::authtype_mismatch,
        ),
        (
            (
                "keepalived_authentication_failure_total",
                "counter",
                "Authentication failure",
            ),
            C::auth_failure,
        ),
        (
            (
                "keepalived_priority_zero_received_total",
                "counter",
                "Priority zero received",
            ),
            |c: &C| c.priority_zero_received,
        ),
        (
            (
                "keepalived_priority_zero_sent_total",
                "counter",
                "Priority zero sent",
            ),
            |c: &C| c.priority_zero_sent,
        ),
    ]
};

/// keepalived's numbering of states (the exporter reports it as is).
pub fn state_number(s: State) -> u8 {
    match s {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

/// The address of a VIP as keepalived's dump writes it (`192.0.2.100/24 dev eth0 ...`), as
/// the exporter's `ip_address` label has it: without prefix length or options.
fn vip_address(v: &str) -> &str {
    let first = v.split_whitespace().next().unwrap_or("");
    first.split('/').next().unwrap_or(first)
}

/// The device of a VIP (`dev NAME`), else the instance's interface.
fn vip_device<'a>(v: &'a str, default: &'a str) -> &'a str {
    let mut words = v.split_whitespace();
    while let Some(w) = words.next() {
        if w == "dev" {
            return words.next().unwrap_or(default);
        }
    }
    default
}

/// The whole exposition for one scrape.
pub fn render(s: &Snapshot) -> String {
    let mut e = Exposition::default();
    e.sample(UP, &[], 1.0);
    for i in &s.instances {
        let vrid = i.vrid.to_string();
        let base = [
            ("iname", i.name.as_str()),
            ("intf", i.interface.as_str()),
            ("vrid", vrid.as_str()),
        ];
        for (desc, get) in VRRP_COUNTERS {
            e.sample(desc, &base, get(&i.counters) as f64);
        }
        let state = state_number(i.state) as f64;
        for (desc, vips) in [
            (VRRP_STATE, &i.vips),
            (VRRP_EXCLUDED_STATE, &i.excluded_vips),
        ] {
            for v in vips.iter() {
                let labels = [
                    ("iname", i.name.as_str()),
                    ("intf", vip_device(v, &i.interface)),
                    ("vrid", vrid.as_str()),
                    ("ip_address", vip_address(v)),
                ];
                e.sample(desc, &labels, state);
            }
        }
        if i.vips.is_empty() {
            let labels = [
                ("iname", i.name.as_str()),
                ("intf", i.interface.as_str()),
                ("vrid", vrid.as_str()),
                ("ip_address", ""),
            ];
            e.sample(VRRP_STATE, &labels, state);
        }
        e.sample(
            ("vrrpd_vrrp_priority", "gauge", "Configured priority"),
            &base,
            i.base_priority as f64,
        );
        e.sample(
            (
                "vrrpd_vrrp_effective_priority",
                "gauge",
                "Priority advertised now, trackers' deltas applied",
            ),
            &base,
            i.effective_priority as f64,
        );
        for t in &i.trackers {
            let labels = [
                ("iname", i.name.as_str()),
                ("kind", t.kind),
                ("name", t.name.as_str()),
            ];
            e.sample(
                (
                    "vrrpd_vrrp_tracker_fault",
                    "gauge",
                    "1 when the tracked object puts the instance in FAULT",
                ),
                &labels,
                if t.delta.is_none() { 1.0 } else { 0.0 },
            );
            e.sample(
                (
                    "vrrpd_vrrp_tracker_priority_delta",
                    "gauge",
                    "What the tracked object adds to the priority now",
                ),
                &labels,
                t.delta.unwrap_or(0) as f64,
            );
        }
    }
    for k in &s.sockets {
        let labels = [
            ("intf", k.interface.as_str()),
            ("family", k.family),
            ("proto", k.proto),
        ];
        for (desc, v) in [
            (
                (
                    "vrrpd_vrrp_socket_packets_total",
                    "counter",
                    "Packets received on the VRRP socket",
                ),
                k.packets,
            ),
            (
                (
                    "vrrpd_vrrp_socket_reads_total",
                    "counter",
                    "System calls that read them (several packets each)",
                ),
                k.reads,
            ),
            (
                (
                    "vrrpd_vrrp_socket_unknown_vrid_total",
                    "counter",
                    "Packets for a VRID no instance on the socket runs",
                ),
                k.unknown_vrid,
            ),
            (
                (
                    "vrrpd_vrrp_socket_refused_total",
                    "counter",
                    "Packets refused before their VRID could be read",
                ),
                k.refused,
            ),
        ] {
            e.sample(desc, &labels, v as f64);
        }
    }
    for c in &s.checkers {
        let port = c.target.port.to_string();
        let addr = c.target.address.to_string();
        let labels = [
            ("kind", c.kind.as_str()),
            ("address", addr.as_str()),
            ("port", port.as_str()),
        ];
        e.sample(
            (
                "vrrpd_checker_up",
                "gauge",
                "Health checker verdict (1 up, 0 down)",
            ),
            &labels,
            if c.up { 1.0 } else { 0.0 },
        );
        e.sample(
            ("vrrpd_checker_probes_total", "counter", "Probes completed"),
            &labels,
            c.probes as f64,
        );
        e.sample(
            (
                "vrrpd_checker_consecutive_failures",
                "gauge",
                "Failed probes in a row",
            ),
            &labels,
            c.consecutive_failures as f64,
        );
        if let Some(ms) = c.last_latency_ms {
            e.sample(
                (
                    "vrrpd_checker_latency_seconds",
                    "gauge",
                    "Duration of the last probe",
                ),
                &labels,
                ms / 1000.0,
            );
        }
    }
    if let Some(l) = &s.listing {
        ipvs(&mut e, l);
    }
    if let Some(c) = &s.dataplane {
        for (dir, v) in [("rx", c.rx), ("tx", c.tx)] {
            e.sample(
                (
                    "vrrpd_dataplane_frames_total",
                    "counter",
                    "Frames received and sent by the balancer's dataplane",
                ),
                &[("direction", dir)],
                v as f64,
            );
        }
        for (reason, n) in &c.dropped {
            e.sample(
                (
                    "vrrpd_dataplane_dropped_total",
                    "counter",
                    "Packets for a service or tracked flow not forwarded, by reason",
                ),
                &[("reason", reason)],
                *n as f64,
            );
        }
        if let Some(sync) = &c.sync {
            for (what, v) in [
                ("messages_sent", sync.messages_sent),
                ("entries_sent", sync.entries_sent),
                ("bytes_sent", sync.bytes_sent),
                ("messages_received", sync.messages_received),
                ("entries_received", sync.entries_received),
                ("installed", sync.installed),
                ("adopted", sync.adopted),
                ("resync_requests_sent", sync.resync_requests_sent),
                ("resync_requests_received", sync.resync_requests_received),
            ] {
                e.sample(
                    (
                        "vrrpd_sync_total",
                        "counter",
                        "Connection sync (IPVS sync protocol v1) messages, entries and bytes",
                    ),
                    &[("what", what)],
                    v as f64,
                );
            }
            for (reason, n) in &sync.dropped {
                e.sample(
                    (
                        "vrrpd_sync_dropped_total",
                        "counter",
                        "Connection sync entries not installed, by reason",
                    ),
                    &[("reason", reason)],
                    *n as f64,
                );
            }
        }
        e.sample(
            (
                "vrrpd_dataplane_ring_drops_total",
                "counter",
                "Frames the kernel dropped because a ring was full",
            ),
            &[],
            c.ring_drops as f64,
        );
    }
    e.render()
}

/// node_exporter's IPVS collector, from the balancer's listing.
fn ipvs(e: &mut Exposition, l: &Listing) {
    let mut total = lbcore::stats::Totals::default();
    for v in &l.services {
        total += v.stats;
    }
    for (desc, value) in [
        (
            (
                "node_ipvs_connections_total",
                "counter",
                "The total number of connections made.",
            ),
            total.conns,
        ),
        (
            (
                "node_ipvs_incoming_packets_total",
                "counter",
                "The total number of incoming packets.",
            ),
            total.inpkts,
        ),
        (
            (
                "node_ipvs_outgoing_packets_total",
                "counter",
                "The total number of outgoing packets.",
            ),
            total.outpkts,
        ),
        (
            (
                "node_ipvs_incoming_bytes_total",
                "counter",
                "The total amount of incoming data.",
            ),
            total.inbytes,
        ),
        (
            (
                "node_ipvs_outgoing_bytes_total",
                "counter",
                "The total amount of outgoing data.",
            ),
            total.outbytes,
        ),
    ] {
        e.sample(desc, &[], value as f64);
    }
    for v in &l.services {
        let local_address = v.address.map(|a| a.to_string()).unwrap_or_default();
        let local_port = v.port.to_string();
        let local_mark = v.fwmark.map(|m| m.to_string()).unwrap_or_default();
        let proto = match (v.fwmark, v.protocol) {
            (Some(_), _) => "FWM",
            (None, Some(p)) => p.name(),
            (None, None) => "",
        };
        for d in &v.dests {
            let remote_address = d.address.to_string();
            let remote_port = d.port.to_string();
            let labels = [
                ("local_address", local_address.as_str()),
                ("local_port", local_port.as_str()),
                ("remote_address", remote_address.as_str()),
                ("remote_port", remote_port.as_str()),
                ("proto", proto),
                ("local_mark", local_mark.as_str()),
            ];
            e.sample(
                (
                    "node_ipvs_backend_connections_active",
                    "gauge",
                    "The current active connections by local and remote address.",
                ),
                &labels,
                d.active as f64,
            );
            e.sample(
                (
                    "node_ipvs_backend_connections_inactive",
                    "gauge",
                    "The current inactive connections by local and remote address.",
                ),
                &labels,
                d.inactive as f64,
            );
            e.sample(
                (
                    "node_ipvs_backend_weight",
                    "gauge",
                    "The current backend weight by local and remote address.",
                ),
                &labels,
                d.weight as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_stay_together_and_labels_escape() {
        let mut e = Exposition::default();
        let d = ("x_total", "counter", "X");
        e.sample(d, &[("a", "1")], 1.0);
        e.sample(("y", "gauge", "Y"), &[], 0.5);
        e.sample(d, &[("a", "q\"\\\n")], 2.0);
        assert_eq!(
            e.render(),
            "# HELP x_total X\n# TYPE x_total counter\nx_total{a=\"1\"} 1\nx_total{a=\"q\\\"\\\\\\n\"} 2\n# HELP y Y\n# TYPE y gauge\ny 0.5\n"
        );
    }

    /// A whole exposition: keepalived-exporter's names and labels for the instance, one
    /// HELP and TYPE per family, sync counters when the dataplane synchronises.
    #[test]
    fn instance_and_dataplane_families() {
        let dp = lbcore::dataplane::CounterSnapshot {
            sync: Some(lbcore::sync::SyncSnapshot {
                entries_sent: 42,
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = Snapshot {
            instances: vec![crate::observe::status::tests::sample()],
            sockets: vec![crate::observe::status::SocketStatus {
                interface: "eth0".into(),
                family: "ipv4",
                proto: "vrrp",
                packets: 640,
                reads: 10,
                unknown_vrid: 3,
                refused: 1,
            }],
            dataplane: Some(dp),
            ..Default::default()
        };
        let text = render(&s);
        assert!(text.contains(
            "keepalived_vrrp_state{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\",ip_address=\"192.0.2.100\"} 2\n"
        ), "{text}");
        assert!(text.contains(
            "keepalived_advertisements_received_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 7\n"
        ));
        assert!(text.contains(
            "keepalived_ip_ttl_errors_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 1\n"
        ));
        assert!(text.contains(
            "vrrpd_vrrp_tracker_priority_delta{iname=\"VI_1\",kind=\"script\",name=\"chk\"} -20\n"
        ));
        assert!(
            text.contains("vrrpd_vrrp_tracker_fault{iname=\"VI_1\",kind=\"file\",name=\"tf\"} 1\n")
        );
        assert!(text.contains("vrrpd_sync_total{what=\"entries_sent\"} 42\n"));
        assert!(text.contains(
            "vrrpd_vrrp_socket_unknown_vrid_total{intf=\"eth0\",family=\"ipv4\",proto=\"vrrp\"} 3\n"
        ));
        assert!(text.contains(
            "vrrpd_vrrp_socket_reads_total{intf=\"eth0\",family=\"ipv4\",proto=\"vrrp\"} 10\n"
        ));
        let mut seen = std::collections::HashSet::new();
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(seen.insert(l.to_string()), "{l} twice");
        }
        assert_eq!(
            text.lines().filter(|l| l.starts_with("# HELP ")).count(),
            seen.len()
        );
    }

    #[test]
    fn vip_words_as_the_exporter_reads_them() {
        assert_eq!(
            vip_address("192.0.2.100/24 dev eth0 scope global"),
            "192.0.2.100"
        );
        assert_eq!(vip_device("192.0.2.100/24 dev eth1", "eth0"), "eth1");
        assert_eq!(vip_device("192.0.2.100", "eth0"), "eth0");
    }
}
