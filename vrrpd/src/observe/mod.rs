//! What an operator asks a running daemon: the balancer as `ipvsadm -L -n` shows IPVS,
//! the VRRP and checker status, and Prometheus metrics.
//!
//! Questions come from the control socket ([`control`]: `vrrpd ipvsadm -L -n`, `vrrpd status
//! --json`, `vrrpd metrics`) and from the metrics endpoint ([`http`]); both hand a [`Request`]
//! to the daemon's main loop, which holds the state, and get the text back. The renderers are
//! pure functions of a [`Snapshot`].

pub mod control;
pub mod http;
pub mod keepalived_json;
pub mod metrics;
pub mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use keepalived_conf::model::Config;

use lbcore::dataplane::{CounterSnapshot, Dataplane};
use lbcore::ipvsadm::{self, Format, Listing, ServiceSel};
use lbcore::spec::Protocol;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use status::{InstanceStatus, SocketStatus};

/// Where the daemon answers: the control socket's path and the metrics endpoint's address
/// (from `--metrics`; the configuration's `vrrpd_metrics_listen` otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub control: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
}

/// The running listeners; they stop when dropped.
pub struct Observers {
    pub control: Option<control::ControlSocket>,
    pub metrics: Option<http::MetricsServer>,
}

impl Settings {
    /// Starts the listeners. Failing to bind one is logged: the daemon runs without it.
    pub async fn start(&self, config: &Config, to_daemon: mpsc::Sender<Request>) -> Observers {
        let control = self.control.as_ref().and_then(|p| {
            control::ControlSocket::bind(p, to_daemon.clone())
                .map_err(|e| warn!("no control socket at {}: {e}", p.display()))
                .ok()
        });
        let metrics = match self.metrics.or(config.global.metrics_listen) {
            Some(addr) => http::MetricsServer::bind(addr, to_daemon)
                .await
                .map_err(|e| warn!("no metrics endpoint on {addr}: {e}"))
                .ok(),
            None => None,
        };
        Observers { control, metrics }
    }
}

/// A question to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// `ipvsadm -L -n [options]` (one service with `-t|-u|-f`), or `-c` for the connection
    /// table.
    Ipvs {
        format: Format,
        conns: bool,
        service: Option<ServiceSel>,
    },
    /// Instances and checkers, readable or as JSON.
    Status { json: bool },
    /// The Prometheus exposition.
    Metrics,
}

impl Query {
    /// Reads a request line's words: `ipvsadm ARGS...`, `status [--json]`, `metrics`.
    pub fn parse(words: &[&str]) -> Result<Self, String> {
        match words.split_first() {
            Some((&"ipvsadm", args)) => ipvsadm_args(args),
            Some((&"status", args)) => match args {
                [] => Ok(Self::Status { json: false }),
                ["--json"] | ["-j"] => Ok(Self::Status { json: true }),
                _ => Err(format!("status: unexpected {}", args.join(" "))),
            },
            Some((&"metrics", [])) => Ok(Self::Metrics),
            _ => Err(format!(
                "unknown request {:?} (expected ipvsadm, status or metrics)",
                words.join(" ")
            )),
        }
    }
}

/// ipvsadm's listing options. vrrpd's services come from its configuration, so the editing
/// commands (`-A`, `-a`, `-E`...) are refused with that reason.
fn ipvsadm_args(args: &[&str]) -> Result<Query, String> {
    let mut format = Format::default();
    let mut conns = false;
    let mut list = false;
    // `-t|-u|--sctp-service ADDR[:PORT]`, `-f MARK`: the service, once its value is read.
    let mut pending: Option<char> = None;
    let mut service: Option<ServiceSel> = None;
    let mut ipv6 = false;
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        let mut wants = |kind: char, it: &mut std::slice::Iter<&str>| match it.next() {
            Some(v) => service_sel(kind, v).map(|s| service = Some(s)),
            None => Err(format!("ipvsadm: -{kind} needs a service")),
        };
        match a {
            "--list" => list = true,
            "--numeric" => {}
            "--stats" => format.stats = true,
            "--rate" => format.rate = true,
            "--thresholds" => format.thresholds = true,
            "--persistent-conn" => format.persistent_conn = true,
            "--exact" => format.exact = true,
            "--connection" => conns = true,
            "--ipv6" => ipv6 = true,
            "--tcp-service" => wants('t', &mut it)?,
            "--udp-service" => wants('u', &mut it)?,
            "--sctp-service" => wants('s', &mut it)?,
            "--fwmark-service" => wants('f', &mut it)?,
            s if s.starts_with('-') && !s.starts_with("--") && s.len() > 1 => {
                for c in s[1..].chars() {
                    match c {
                        'L' | 'l' => list = true,
                        'n' => {}
                        'x' => format.exact = true,
                        'c' => conns = true,
                        '6' => ipv6 = true,
                        't' | 'u' | 'f' => pending = Some(c),
                        'A' | 'E' | 'D' | 'C' | 'R' | 'S' | 'a' | 'e' | 'd' | 'Z' => {
                            return Err(format!(
                                "ipvsadm -{c}: the services come from the configuration (edit it and reload)"
                            ))
                        }
                        _ => return Err(format!("ipvsadm: option -{c} is not supported")),
                    }
                }
                if let Some(kind) = pending.take() {
                    wants(kind, &mut it)?;
                }
            }
            _ => return Err(format!("ipvsadm: option {a} is not supported")),
        }
    }
    if !list && !conns {
        return Err("ipvsadm: only listing (-L/-l, -c) is supported".into());
    }
    if let Some(ServiceSel::Fwmark { ipv6: v6, .. }) = service.as_mut() {
        *v6 = ipv6;
    }
    Ok(Query::Ipvs {
        format,
        conns,
        service,
    })
}

/// ipvsadm's service argument: `ADDR:PORT`, `[ADDR6]:PORT` or a bare address (port 0) for
/// `-t`/`-u`/`--sctp-service`, a mark for `-f`.
fn service_sel(kind: char, v: &str) -> Result<ServiceSel, String> {
    let bad = || format!("ipvsadm: illegal virtual server address {v:?}");
    let protocol = match kind {
        'f' => {
            let mark = v
                .parse()
                .map_err(|_| format!("ipvsadm: illegal fwmark {v:?}"))?;
            return Ok(ServiceSel::Fwmark { mark, ipv6: false });
        }
        't' => Protocol::Tcp,
        'u' => Protocol::Udp,
        _ => Protocol::Sctp,
    };
    let addr = v
        .parse::<SocketAddr>()
        .or_else(|_| {
            v.trim_matches(['[', ']'])
                .parse()
                .map(|ip| SocketAddr::new(ip, 0))
        })
        .map_err(|_| bad())?;
    Ok(ServiceSel::Addr(protocol, addr))
}

/// A question and where its answer goes (`Err` is shown to the asker as an error).
pub struct Request {
    pub query: Query,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// What the daemon holds at one moment, for the renderers.
#[derive(Debug, Default, Serialize)]
pub struct Snapshot {
    pub instances: Vec<InstanceStatus>,
    /// The VRRP sockets.
    pub sockets: Vec<SocketStatus>,
    pub checkers: Vec<checks::CheckerStatus>,
    /// The balancer's services (`None` without a balancer).
    pub listing: Option<Listing>,
    pub dataplane: Option<CounterSnapshot>,
}

/// The daemon's parts a question needs, taken on its main loop; the answer is built off it.
pub struct Sources {
    pub instances: Vec<InstanceStatus>,
    pub sockets: Vec<SocketStatus>,
    pub checkers: Vec<checks::CheckerStatus>,
    pub dataplane: Option<Arc<Dataplane>>,
}

/// Builds the answer to `q`. The connection table is read on a blocking thread (the workers
/// hand it over a page at a time).
pub async fn answer(q: Query, src: Sources) -> Result<String, String> {
    let dp = src.dataplane;
    let snapshot = |dp: &Option<Arc<Dataplane>>| Snapshot {
        instances: src.instances.clone(),
        sockets: src.sockets.clone(),
        checkers: src.checkers.clone(),
        listing: dp.as_ref().map(|d| d.listing()),
        dataplane: dp.as_ref().map(|d| d.counters()),
    };
    match q {
        Query::Ipvs { conns: true, .. } => {
            let Some(dp) = dp else {
                return Ok(ipvsadm::render_conns(&[]));
            };
            // Collected and rendered off the runtime: 100k rows take tens of milliseconds, which
            // the VRRP side's thread must not spend.
            tokio::task::spawn_blocking(move || ipvsadm::render_conns(&dp.connections()))
                .await
                .map_err(|e| format!("listing the connections: {e}"))
        }
        Query::Ipvs {
            format, service, ..
        } => {
            let listing = dp.as_ref().map(|d| d.listing()).unwrap_or(Listing {
                size: 0,
                services: Vec::new(),
            });
            match service {
                // ipvsadm's words for ESRCH.
                Some(sel) => ipvsadm::render_service(&listing, format, sel)
                    .ok_or_else(|| "No such service".to_string()),
                None => Ok(ipvsadm::render(&listing, format)),
            }
        }
        Query::Status { json: true } => serde_json::to_string_pretty(&snapshot(&dp))
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        Query::Status { json: false } => {
            let s = snapshot(&dp);
            Ok(status::render_data(&s.instances)
                + &transitions(&s.instances)
                + &status::render_stats(&s.instances)
                + &status::render_checkers(&s.checkers))
        }
        Query::Metrics => Ok(metrics::render(&snapshot(&dp))),
    }
}

/// Each instance's last state change: when, from what and why.
fn transitions(all: &[InstanceStatus]) -> String {
    use std::fmt::Write;
    let mut s = String::from("------< Last transitions >------\n");
    for i in all {
        let _ = match (i.last_transition_from, &i.last_transition_reason) {
            (Some(from), reason) => writeln!(
                s,
                " {}: {:?} -> {:?} at {:.3} ({})",
                i.name,
                from,
                i.state,
                i.last_transition,
                reason.as_deref().unwrap_or("unknown")
            ),
            (None, _) => writeln!(s, " {}: none yet ({:?})", i.name, i.state),
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_ipvsadm_reads_its_options() {
        let q = |s: &str| Query::parse(&s.split_whitespace().collect::<Vec<_>>());
        assert_eq!(
            q("ipvsadm -L -n"),
            Ok(Query::Ipvs {
                format: Format::default(),
                conns: false,
                service: None
            })
        );
        assert_eq!(
            q("ipvsadm -Ln --stats --exact"),
            Ok(Query::Ipvs {
                format: Format {
                    stats: true,
                    exact: true,
                    ..Default::default()
                },
                conns: false,
                service: None
            })
        );
        assert_eq!(
            q("ipvsadm -Lnc"),
            Ok(Query::Ipvs {
                format: Format::default(),
                conns: true,
                service: None
            })
        );
        assert!(matches!(
            q("ipvsadm -l --persistent-conn"),
            Ok(Query::Ipvs { format, .. }) if format.persistent_conn
        ));
        assert!(q("ipvsadm -A -t 192.0.2.1:80")
            .unwrap_err()
            .contains("configuration"));
        assert!(q("ipvsadm -n").is_err());
        let one = |s: &str| match q(s) {
            Ok(Query::Ipvs { service, .. }) => service,
            other => panic!("{s}: {other:?}"),
        };
        let tcp = |a: &str| Some(ServiceSel::Addr(Protocol::Tcp, a.parse().unwrap()));
        assert_eq!(
            one("ipvsadm -L -n -t 192.0.2.100:80"),
            tcp("192.0.2.100:80")
        );
        assert_eq!(one("ipvsadm -Lnt 192.0.2.100:80"), tcp("192.0.2.100:80"));
        assert_eq!(one("ipvsadm -Ln -t 192.0.2.100"), tcp("192.0.2.100:0"));
        assert_eq!(
            one("ipvsadm -Ln --udp-service [2001:db8::100]:53"),
            Some(ServiceSel::Addr(
                Protocol::Udp,
                "[2001:db8::100]:53".parse().unwrap()
            ))
        );
        assert_eq!(
            one("ipvsadm -Ln -f 7 -6"),
            Some(ServiceSel::Fwmark {
                mark: 7,
                ipv6: true
            })
        );
        assert!(q("ipvsadm -Ln -t").is_err());
        assert!(q("ipvsadm -Ln -t example").is_err());
        assert_eq!(q("status --json"), Ok(Query::Status { json: true }));
        assert_eq!(q("metrics"), Ok(Query::Metrics));
        assert!(q("reboot").is_err());
    }
}
