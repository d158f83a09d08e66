//! `vrrp-lab bench lb`: wrk from the client through the VIP, side by side in
//! one run: the client talking to a real server directly, the dataplane in
//! DR, NAT and one-arm NAT mode, and HAProxy (`mode tcp`, roundrobin) on the
//! balancer.

use std::sync::Arc;
use std::time::Duration;

use lbcore::dataplane::DataplaneConfig;
use lbcore::persist::PersistTable;
use lbcore::service::{Controller, SharedTable};
use lbcore::spec::{ForwardingMethod, Protocol, SchedulerKind, ServiceSpec};
use serde::Serialize;

use crate::error::{LabError, Result};
use crate::lab::Host;
use crate::lb::{service, Balancer, LbLab, Plan, NAT_RS_PORT};
use crate::process::LabChild;
use crate::scenario::median;

/// Bench parameters (the reference: 2 threads, 32 connections).
#[derive(Debug, Clone, Serialize)]
pub struct LbBenchSpec {
    pub runs: usize,
    pub seconds: u32,
    pub threads: u32,
    pub connections: u32,
    pub workers: usize,
    pub real_servers: usize,
}

impl Default for LbBenchSpec {
    fn default() -> Self {
        Self {
            runs: 3,
            seconds: 5,
            threads: 2,
            connections: 32,
            workers: 2,
            real_servers: 2,
        }
    }
}

/// One wrk run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WrkResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

fn to_ms(v: &str) -> Option<f64> {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let x: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => x / 1000.0,
        "ms" => x,
        "s" => x * 1000.0,
        "m" => x * 60_000.0,
        _ => return None,
    })
}

/// Parses `wrk --latency` output.
pub fn parse_wrk(out: &str) -> Option<WrkResult> {
    let mut r = WrkResult {
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
    };
    for l in out.lines().map(str::trim) {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["Requests/sec:", v] => r.rps = v.parse().ok()?,
            ["50%", v] => r.p50_ms = to_ms(v)?,
            ["99%", v] => r.p99_ms = to_ms(v)?,
            ["Socket", "errors:", rest @ ..] => {
                r.errors += rest
                    .iter()
                    .filter_map(|x| x.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            ["Non-2xx", "or", "3xx", "responses:", v] => r.errors += v.parse::<u64>().ok()?,
            _ => {}
        }
    }
    (!r.rps.is_nan()).then_some(r)
}

/// One wrk run from `client` against `url` with `s`'s threads, connections and duration.
pub fn wrk(client: &Host, url: &str, s: &LbBenchSpec) -> Result<WrkResult> {
    let out = client.exec(
        "wrk",
        &[
            format!("-t{}", s.threads),
            format!("-c{}", s.connections),
            format!("-d{}s", s.seconds),
            "--latency".into(),
            url.into(),
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| {
        LabError::Other(format!(
            "wrk {url}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    })
}

fn start(lab: &LbLab, method: ForwardingMethod, workers: usize) -> Result<Balancer> {
    let spec = ServiceSpec {
        scheduler: SchedulerKind::Rr,
        forwarding: method,
        ..service(lab, Protocol::Tcp, 80)
    };
    let (c, _) = Controller::new(vec![spec], vec![]).map_err(|e| LabError::Other(e.to_string()))?;
    lab.start(
        DataplaneConfig {
            workers,
            ..Default::default()
        },
        Arc::new(SharedTable::new(c.table())),
        Arc::new(PersistTable::new(1 << 16)),
    )
}

fn haproxy(lab: &LbLab) -> Result<LabChild> {
    let lb = lab.lb();
    let servers: String = lab
        .rs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("  server rs{} {a}:{NAT_RS_PORT}\n", i + 1))
        .collect();
    let conf = format!(
        "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  \
         timeout server 60s\nfrontend fe\n  bind 203.0.113.1:8000\n  default_backend be\n\
         backend be\n  balance roundrobin\n{servers}"
    );
    let path = lb.dir.join("haproxy.cfg");
    std::fs::write(&path, conf)?;
    let p = path.display().to_string();
    let child = lb.spawn(
        "haproxy",
        &["-db", "-f", p.as_str()],
        Some(&lb.dir.join("haproxy.log")),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    Ok(child)
}

/// Runs every mode `spec.runs` times (interleaved) and returns the JSON report.
pub fn run(spec: &LbBenchSpec, progress: &mut dyn FnMut(&str)) -> Result<serde_json::Value> {
    let direct_lab = LbLab::new(Plan::Dr, spec.real_servers, 0)?;
    let nat_lab = LbLab::new(Plan::Nat, spec.real_servers, 0)?;
    let _hap = haproxy(&nat_lab)?;
    let modes = ["direct", "dr", "nat", "haproxy", "nat_one_arm"];
    let mut res: Vec<Vec<WrkResult>> = vec![Vec::new(); modes.len()];
    for run in 0..spec.runs {
        for (i, m) in modes.iter().enumerate() {
            let r = match *m {
                "direct" => wrk(
                    direct_lab.client(),
                    &format!("http://{}/", direct_lab.rs[0]),
                    spec,
                )?,
                "dr" => {
                    let _b = start(&direct_lab, ForwardingMethod::Dr, spec.workers)?;
                    wrk(
                        direct_lab.client(),
                        &format!("http://{}/", direct_lab.vip),
                        spec,
                    )?
                }
                "nat" => {
                    let _b = start(&nat_lab, ForwardingMethod::Nat, spec.workers)?;
                    wrk(nat_lab.client(), &format!("http://{}/", nat_lab.vip), spec)?
                }
                "nat_one_arm" => {
                    let _b = start(&nat_lab, ForwardingMethod::NatOneArm, spec.workers)?;
                    wrk(nat_lab.client(), &format!("http://{}/", nat_lab.vip), spec)?
                }
                _ => wrk(nat_lab.client(), "http://203.0.113.1:8000/", spec)?,
            };
            progress(&format!(
                "run {} {m}: {:.0} req/s p50 {:.2} ms p99 {:.2} ms errors {}",
                run + 1,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.errors
            ));
            res[i].push(r);
        }
    }
    let summary = |v: &[WrkResult]| {
        let rps: Vec<f64> = v.iter().map(|r| r.rps).collect();
        let p50: Vec<f64> = v.iter().map(|r| r.p50_ms).collect();
        let p99: Vec<f64> = v.iter().map(|r| r.p99_ms).collect();
        serde_json::json!({
            "rps_median": median(&rps).round(),
            "p50_ms_median": (median(&p50) * 100.0).round() / 100.0,
            "p99_ms_median": (median(&p99) * 100.0).round() / 100.0,
            "errors": v.iter().map(|r| r.errors).sum::<u64>(),
            "runs": v,
        })
    };
    let mut modes_json = serde_json::Map::new();
    for (i, m) in modes.iter().enumerate() {
        modes_json.insert((*m).into(), summary(&res[i]));
    }
    let med = |i: usize| median(&res[i].iter().map(|r| r.rps).collect::<Vec<_>>());
    let p99 = |i: usize| median(&res[i].iter().map(|r| r.p99_ms).collect::<Vec<_>>());
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    Ok(serde_json::json!({
        "bench": "lb",
        "spec": spec,
        "modes": modes_json,
        "ratios": {
            "dr_vs_direct": round2(med(1) / med(0)),
            "nat_vs_haproxy": round2(med(2) / med(3)),
            "nat_p99_vs_haproxy_p99": round2(p99(2) / p99(3)),
            "dr_p99_vs_haproxy_p99": round2(p99(1) / p99(3)),
        },
        "targets": {
            "dr_vs_direct": ">= 0.9",
            "nat_vs_haproxy": ">= 1.1",
            "p99": "no worse than haproxy",
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_latency_output() {
        let out = "Running 5s test @ http://192.0.2.100/\n  2 threads and 32 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   812.21us  1.01ms  30.12ms   95.12%\n\
  Latency Distribution\n     50%  634.00us\n     75%  842.00us\n     90%    1.10ms\n     99%    3.61ms\n\
  201234 requests in 5.00s, 31.2MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n\
Requests/sec:  40246.80\nTransfer/sec:      6.24MB\n";
        let r = parse_wrk(out).unwrap();
        assert_eq!(r.rps, 40246.80);
        assert_eq!(r.p50_ms, 0.634);
        assert_eq!(r.p99_ms, 3.61);
        assert_eq!(r.errors, 3);
        assert!(parse_wrk("garbage").is_none());
    }
}
