//! `vrrp-lab bench observe`: what looking costs. vrrpd balances a NAT virtual server (TCP to
//! nginx, UDP to an echo server) with `conns` UDP flows in its connection table; wrk measures
//! the dataplane's req/s alone, then while a loop lists the whole connection table through
//! the control socket (`vrrpd ipvsadm -L -n -c`), then while a loop scrapes the metrics
//! endpoint — back to back (the worst case on a 2-core box, where the loop itself takes a
//! core) and once a second (closer to an operator's `watch` or a scrape interval). Reported:
//! each listing's and scrape's time and size, req/s and p99 latency during them, medians over
//! `runs` interleaved runs.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::daemon::Daemon;
use crate::error::{LabError, Result};
use crate::lab::Host;
use crate::lb::{in_netns, LbLab, Plan, NAT_RS_PORT, UDP_PORT};
use crate::lbbench::{wrk, LbBenchSpec, WrkResult};
use crate::scenario::median;

const METRICS: &str = "127.0.0.1:9464";

/// One timed look at the daemon: (milliseconds, bytes of the answer).
type Probe = Arc<dyn Fn() -> Option<(f64, usize)> + Send + Sync>;

#[derive(Debug, Clone, Serialize)]
pub struct ObsBenchSpec {
    pub runs: usize,
    pub seconds: u32,
    /// UDP flows put in the connection table before measuring.
    pub conns: usize,
}

impl Default for ObsBenchSpec {
    fn default() -> Self {
        Self {
            runs: 3,
            seconds: 5,
            conns: 100_000,
        }
    }
}

fn conf(lab: &LbLab) -> String {
    let servers = |port: u16| -> String {
        lab.rs
            .iter()
            .map(|a| format!("    real_server {a} {port} {{\n    }}\n"))
            .collect()
    };
    format!(
        "global_defs {{\n    vrrpd_metrics_listen {METRICS}\n}}\n\
         virtual_server {vip} 80 {{\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n{tcp}}}\n\
         virtual_server {vip} {UDP_PORT} {{\n    lb_algo rr\n    lb_kind NAT\n    protocol UDP\n{udp}}}\n",
        vip = lab.vip,
        tcp = servers(NAT_RS_PORT),
        udp = servers(UDP_PORT),
    )
}

/// One request on `s` whose answer must start with `ok`: (time since `t`, bytes).
fn timed(t: Instant, mut s: impl Read + Write, req: &[u8], ok: &[u8]) -> Option<(f64, usize)> {
    s.write_all(req).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    out.starts_with(ok)
        .then(|| (t.elapsed().as_secs_f64() * 1000.0, out.len()))
}

/// One listing of the connection table on the control socket.
fn list(socket: &Path) -> Option<(f64, usize)> {
    let t = Instant::now();
    let s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    timed(t, s, b"ipvsadm -L -n -c\n", b"OK\n")
}

/// One scrape (from the balancer's namespace).
fn scrape() -> Option<(f64, usize)> {
    let t = Instant::now();
    let s = TcpStream::connect(METRICS).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    timed(t, s, b"GET /metrics HTTP/1.0\r\n\r\n", b"HTTP/1.1 200")
}

/// Puts `n` UDP flows (client addresses × source ports) in the table: one datagram each.
fn fill(lab: &LbLab, n: usize) -> Result<()> {
    let vip = SocketAddr::new(lab.vip.into(), UDP_PORT);
    let sources: Vec<Ipv4Addr> = std::iter::once(lab.client_addr())
        .chain(lab.clients.iter().copied())
        .collect();
    let per = n.div_ceil(sources.len());
    if per > 50_000 {
        return Err(LabError::Other(format!(
            "{n} flows need {} client addresses",
            n.div_ceil(50_000)
        )));
    }
    in_netns(lab.client(), || -> Result<()> {
        for (i, src) in sources.iter().enumerate() {
            for port in 10_000..10_000 + per.min(n - i * per) as u16 {
                let s = UdpSocket::bind((*src, port))?;
                s.send_to(b"x", vip)?;
                // A pause now and then: the dataplane's ring must not overflow.
                if port % 256 == 0 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
        Ok(())
    })?
}

/// Rows of a listing (2 title lines and the OK line excluded).
fn rows(socket: &Path) -> usize {
    let mut s = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(_) => return 0,
    };
    let _ = s.write_all(b"ipvsadm -L -n -c\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .filter(|l| l.starts_with("UDP ") || l.starts_with("TCP "))
        .count()
}

/// wrk while `probe` runs in a loop every `every` (back to back when zero), in `host`'s
/// namespace: (wrk's result, probe times, bytes of the last answer).
fn under(
    lab: &LbLab,
    host: &Host,
    spec: &LbBenchSpec,
    probe: Option<(Probe, Duration)>,
) -> Result<(WrkResult, Vec<f64>, usize)> {
    let stop = Arc::new(AtomicBool::new(false));
    let worker = probe.map(|(p, every)| {
        let (stop, host) = (stop.clone(), host.clone());
        std::thread::spawn(move || {
            in_netns(&host, || {
                let (mut times, mut bytes) = (Vec::new(), 0);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if let Some((ms, b)) = p() {
                        times.push(ms);
                        bytes = b;
                    }
                    while t.elapsed() < every && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                (times, bytes)
            })
            .unwrap_or_default()
        })
    });
    let r = wrk(lab.client(), &format!("http://{}/", lab.vip), spec);
    stop.store(true, Ordering::Relaxed);
    let (times, bytes) = worker
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    Ok((r?, times, bytes))
}

fn summary(xs: &[f64]) -> serde_json::Value {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    json!({
        "median": median(&v),
        "min": v.first(),
        "max": v.last(),
        "count": v.len(),
    })
}

pub fn run(spec: &ObsBenchSpec, progress: &mut dyn FnMut(&str)) -> Result<serde_json::Value> {
    let lab = LbLab::new(Plan::Nat, 2, spec.conns.div_ceil(50_000).saturating_sub(1))?;
    let lb = lab.lb().clone();
    let d = Daemon::Vrrpd.start(&lb, &conf(&lab))?;
    let socket = lb.dir.join("vrrpd.ctl");
    let vip80 = SocketAddr::new(lab.vip.into(), 80);
    let up = crate::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        socket.exists()
            && in_netns(lab.client(), || crate::lb::http_get(vip80, None).is_ok()).unwrap_or(false)
    });
    if !up || !socket.exists() {
        return Err(LabError::Other(format!(
            "vrrpd not balancing:\n{}",
            d.log_text()
        )));
    }
    progress(&format!("filling the table with {} UDP flows", spec.conns));
    let t = Instant::now();
    // A burst the ring could not hold loses flows: send again (known flows are only touched).
    let mut in_table = 0;
    for _ in 0..4 {
        fill(&lab, spec.conns)?;
        in_table = rows(&socket);
        if in_table * 100 >= spec.conns * 99 {
            break;
        }
    }
    progress(&format!(
        "{in_table} entries listed after {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let wrk_spec = LbBenchSpec {
        runs: spec.runs,
        seconds: spec.seconds,
        ..Default::default()
    };
    let sock = socket.clone();
    let lister: Arc<dyn Fn() -> Option<(f64, usize)> + Send + Sync> = Arc::new(move || list(&sock));
    let scraper: Arc<dyn Fn() -> Option<(f64, usize)> + Send + Sync> = Arc::new(scrape);
    // Each mode: req/s and p99 of every run, and the probe's times.
    let modes: [(&str, Option<(Probe, Duration)>); 5] = [
        ("alone", None),
        (
            "listing_back_to_back",
            Some((lister.clone(), Duration::ZERO)),
        ),
        ("listing_every_1s", Some((lister, Duration::from_secs(1)))),
        (
            "scraping_back_to_back",
            Some((scraper.clone(), Duration::ZERO)),
        ),
        ("scraping_every_1s", Some((scraper, Duration::from_secs(1)))),
    ];
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut p99: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let (mut list_ms, mut scrape_ms) = (vec![], vec![]);
    let (mut list_bytes, mut scrape_bytes) = (0, 0);
    for run in 0..spec.runs {
        progress(&format!("run {}/{}", run + 1, spec.runs));
        for (i, (name, probe)) in modes.iter().enumerate() {
            let (r, t, b) = under(&lab, &lb, &wrk_spec, probe.clone())?;
            rps[i].push(r.rps);
            p99[i].push(r.p99_ms);
            if name.starts_with("listing") {
                list_ms.extend(t);
                list_bytes = b;
            } else if name.starts_with("scraping") {
                scrape_ms.extend(t);
                scrape_bytes = b;
            }
        }
    }
    let dataplane: serde_json::Map<String, serde_json::Value> = modes
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            (
                name.to_string(),
                json!({"rps": summary(&rps[i]), "p99_ms": summary(&p99[i])}),
            )
        })
        .collect();
    Ok(json!({
        "bench": "observe",
        "spec": spec,
        "wrk": {"threads": wrk_spec.threads, "connections": wrk_spec.connections},
        "entries_in_table": in_table,
        "dataplane_workers": 1,
        "dataplane": dataplane,
        "listing": {"ms": summary(&list_ms), "bytes": list_bytes},
        "scrape": {"ms": summary(&scrape_ms), "bytes": scrape_bytes},
    }))
}
