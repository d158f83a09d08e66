//! `vrrp-lab bench sync`: what connection sync costs and how far behind the Backup is, on two
//! in-process dataplanes (`lb` Master, `lb2` Backup) in front of nginx, DR and one-arm NAT.
//!
//! - **lag**: a new connection established on the Master (the client's `connect` returned) to
//!   its entry installed on the Backup, one connection at a time, p50/p99;
//! - **bytes per new connection**: the Master's sync bytes over the connections opened and closed
//!   by a connection-per-request wrk run (every state change is sent);
//! - **cost**: wrk at `vrrp-lab bench lb`'s load (2 threads, 32 keep-alive connections) and with a
//!   new connection per request, sync on versus off (both nodes' dataplanes run either way, as
//!   in a pair), interleaved; req/s and the CPU the Master's dataplane threads used (workers,
//!   resolver and sync thread, from /proc).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lbcore::dataplane::{DataplaneConfig, SyncdConfig};
use lbcore::spec::{ForwardingMethod, Protocol, SchedulerKind, ServiceSpec};
use lbcore::sync::Role;
use serde::Serialize;

use crate::error::{LabError, Result};
use crate::lab::Host;
use crate::lb::{in_netns, service, tables, Balancer, KeepAlive, LbLab, Plan};
use crate::lbbench::{parse_wrk, WrkResult};
use crate::scenario::median;

/// Bench parameters.
#[derive(Debug, Clone, Serialize)]
pub struct SyncBenchSpec {
    pub runs: usize,
    pub seconds: u32,
    pub workers: usize,
    /// Connections timed one by one for the lag.
    pub lag_samples: usize,
}

impl Default for SyncBenchSpec {
    fn default() -> Self {
        Self {
            runs: 3,
            seconds: 5,
            workers: 2,
            lag_samples: 200,
        }
    }
}

/// This process's dataplane threads (named `lb-…`) now: the Master's, when taken right after
/// it starts and before the Backup's.
fn dataplane_threads() -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .map(|t| t.path())
        .filter(|p| std::fs::read_to_string(p.join("comm")).is_ok_and(|n| n.starts_with("lb-")))
        .collect()
}

/// CPU seconds (user + system) the threads `tasks` used so far.
fn cpu_secs(tasks: &[std::path::PathBuf]) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for p in tasks {
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        // Fields after the ")" that ends the command name: state is 3rd, utime 14th, stime 15th.
        let rest = stat.rsplit_once(')').map_or("", |r| r.1);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        total += (num(11) + num(12)) / tick;
    }
    total
}

fn wrk(client: &Host, url: &str, s: &SyncBenchSpec, close: bool) -> Result<WrkResult> {
    let mut args = vec![
        "-t2".to_string(),
        "-c32".into(),
        format!("-d{}s", s.seconds),
        "--latency".into(),
    ];
    if close {
        args.extend(["-H".into(), "Connection: close".into()]);
    }
    args.push(url.into());
    let out = client.exec("wrk", &args)?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| LabError::Other(format!("wrk {url}: {text}")))
}

/// Both nodes' dataplanes (a real pair runs both, sync or not).
struct Pair {
    a: Balancer,
    b: Balancer,
    /// The Master's threads.
    a_threads: Vec<std::path::PathBuf>,
}

fn start(lab: &LbLab, method: ForwardingMethod, s: &SyncBenchSpec, sync: bool) -> Result<Pair> {
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Rr,
        forwarding: method,
        ..service(lab, Protocol::Tcp, 80)
    };
    let cfg = |forwarding| DataplaneConfig {
        workers: s.workers,
        forwarding,
        snat_sources: lab.snat_sources(),
        sync: sync.then(|| SyncdConfig::new("eth0")),
        ..Default::default()
    };
    let (_ca, ta, pa) = tables(vec![spec.clone()]);
    let a = lab.start(cfg(true), ta, pa)?;
    let a_threads = dataplane_threads();
    let (_cb, tb, pb) = tables(vec![spec]);
    let b = lab.start_on(lab.lab.host("lb2"), cfg(false), tb, pb)?;
    a.dp().set_sync_role(Role::Master);
    b.dp().set_sync_role(Role::Backup);
    Ok(Pair { a, b, a_threads })
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Lag of `n` connections opened one at a time (kept open until the end).
fn lag(lab: &LbLab, p: &Pair, n: usize) -> Result<Vec<f64>> {
    let b = &p.b;
    let installed = || b.dp().sync_counters().map_or(0, |s| s.installed);
    let vip = SocketAddr::new(lab.vip.into(), 80);
    let mut keep = Vec::new();
    let mut lags = Vec::new();
    for _ in 0..n {
        let before = installed();
        let t0 = Instant::now();
        let c = in_netns(lab.client(), || KeepAlive::connect(vip))??;
        let ok =
            crate::wait::wait_until(Duration::from_secs(2), Duration::from_micros(200), || {
                installed() > before
            });
        if ok {
            lags.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        keep.push(c);
    }
    Ok(lags)
}

/// Runs the bench and returns its JSON report.
pub fn run(s: &SyncBenchSpec, progress: &mut dyn FnMut(&str)) -> Result<serde_json::Value> {
    let mut report = serde_json::Map::new();
    for (name, plan, method) in [
        ("dr", Plan::Dr, ForwardingMethod::Dr),
        ("nat_one_arm", Plan::Nat, ForwardingMethod::NatOneArm),
    ] {
        let lab = LbLab::new_pair(plan, 2)?;
        let url = format!("http://{}/", lab.vip);
        // Lag, and sync bytes per new connection.
        let p = start(&lab, method, s, true)?;
        let mut lags = lag(&lab, &p, s.lag_samples)?;
        let sent0 = p.a.dp().sync_counters().unwrap_or_default();
        let w = wrk(lab.client(), &url, s, true)?;
        std::thread::sleep(Duration::from_millis(200));
        let sent1 = p.a.dp().sync_counters().unwrap_or_default();
        drop(p);
        // One connection per request (`Connection: close`); the client reuses its ports, so
        // the dataplane's new-connection counter would undercount them.
        let new_conns = (w.rps * s.seconds as f64).round() as u64;
        let per_conn = |x: u64| (x as f64 / new_conns.max(1) as f64 * 10.0).round() / 10.0;
        progress(&format!(
            "{name}: lag p50 {:.1} ms p99 {:.1} ms; {new_conns} new connections at {:.0} req/s, {} sync bytes",
            percentile(&mut lags, 0.5),
            percentile(&mut lags, 0.99),
            w.rps,
            sent1.bytes_sent - sent0.bytes_sent
        ));
        // Throughput and CPU, sync off and on, interleaved.
        let mut runs: Vec<serde_json::Value> = Vec::new();
        let mut rps: [[Vec<f64>; 2]; 2] = Default::default();
        let mut cpu: [[Vec<f64>; 2]; 2] = Default::default();
        for run in 0..s.runs {
            for (li, close) in [(0, false), (1, true)] {
                // Alternate which goes first: the machine's background load drifts.
                let order = if run % 2 == 0 {
                    [(0, false), (1, true)]
                } else {
                    [(1, true), (0, false)]
                };
                for (si, sync) in order {
                    let p = start(&lab, method, s, sync)?;
                    let c0 = cpu_secs(&p.a_threads);
                    let t0 = Instant::now();
                    let w = wrk(lab.client(), &url, s, close)?;
                    let used = (cpu_secs(&p.a_threads) - c0) / t0.elapsed().as_secs_f64();
                    drop(p);
                    progress(&format!(
                        "run {} {name} {} sync {}: {:.0} req/s, dataplane CPU {:.2} cores, errors {}",
                        run + 1,
                        if close { "new-connection" } else { "keep-alive" },
                        if sync { "on" } else { "off" },
                        w.rps,
                        used,
                        w.errors
                    ));
                    rps[li][si].push(w.rps);
                    cpu[li][si].push(used);
                    runs.push(serde_json::json!({
                        "load": if close { "new_connection" } else { "keep_alive" },
                        "sync": sync, "rps": w.rps, "cpu_cores": used, "errors": w.errors,
                    }));
                }
            }
        }
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        let load = |li: usize| {
            let (off, on) = (median(&rps[li][0]), median(&rps[li][1]));
            serde_json::json!({
                "rps_sync_off": off.round(),
                "rps_sync_on": on.round(),
                "rps_on_vs_off": r2(on / off),
                "cpu_cores_sync_off": r2(median(&cpu[li][0])),
                "cpu_cores_sync_on": r2(median(&cpu[li][1])),
            })
        };
        report.insert(
            name.into(),
            serde_json::json!({
                "lag_ms": {
                    "samples": lags.len(),
                    "p50": r2(percentile(&mut lags, 0.5)),
                    "p99": r2(percentile(&mut lags, 0.99)),
                },
                "master_sync_counters": sent1,
                "per_new_connection": {
                    "connections": new_conns,
                    "sync_bytes": per_conn(sent1.bytes_sent - sent0.bytes_sent),
                    "sync_entries": per_conn(sent1.entries_sent - sent0.entries_sent),
                    "sync_messages": per_conn(sent1.messages_sent - sent0.messages_sent),
                },
                "keep_alive_load": load(0),
                "new_connection_load": load(1),
                "runs": runs,
            }),
        );
    }
    Ok(serde_json::json!({
        "bench": "sync",
        "spec": s,
        "modes": report,
        "targets": { "rps_on_vs_off": ">= 0.95 at the keep-alive (bench lb) load" },
    }))
}
