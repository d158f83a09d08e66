//! `vrrp-lab bench instances`: what N VRRP instances cost, side by side with keepalived in the
//! same run.
//!
//! Two nodes on the lab bridge run VRIDs 1..=N on eth0 (VRRPv3, one /32 VIP each): a is the
//! address owner of all (priority 255, so it adverts at once and the start-up figures measure
//! the daemon, not the protocol's down timer), b the Backup of all (priority 100). Per run:
//!
//! - **start**: b, then a; from a's exec to its first advert and to every VRID heard (an
//!   AF_PACKET watcher on the client);
//! - **idle cost**: after the start-up announcements (6 s), CPU time (user + system, every
//!   process of the daemon) over the window, per minute, and PSS, for the Master and the Backup;
//!   no watcher runs then (its copies would be charged to the sender);
//! - **reload**: a's `router_id` changes and a gets SIGHUP: the longest gap between two adverts
//!   of one VRID around it, and how many VRIDs b took over;
//! - **stop**: SIGTERM to a: how long until it exits, and how many VIPs it left behind.
//!
//! `period` adds one IPv6 instance advertising every 10 ms to 255 IPv4 instances at 1 s and
//! reports the 10 ms instance's periods, with and without the load.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::adverts::{AdvertSeen, AdvertWatch};
use crate::daemon::{Daemon, DaemonProc};
use crate::error::{LabError, Result};
use crate::lab::{Host, Lab};
use crate::procstat;
use crate::scenario::median;
use crate::wait::wait_until;

/// Bench parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub daemons: Vec<Daemon>,
    pub counts: Vec<usize>,
    pub advert_ints: Vec<f64>,
    pub runs: usize,
    pub window: Duration,
    /// Also measure the 10 ms period under the load of 255 instances.
    pub period: bool,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub first_advert_ms: f64,
    pub all_vrids_heard_ms: f64,
    pub master_cpu_s_per_min: f64,
    pub backup_cpu_s_per_min: f64,
    pub master_pss_kb: u64,
    pub backup_pss_kb: u64,
    /// The anonymous part of the PSS (what file sharing with other processes cannot lower).
    pub master_pss_anon_kb: u64,
    pub backup_pss_anon_kb: u64,
    pub master_fds: usize,
    pub backup_fds: usize,
    pub reload_max_gap_ms: f64,
    pub reload_takeovers: usize,
    pub stop_exit_ms: f64,
    pub stop_vips_left: usize,
}

/// The VIP of VRID `vrid`: 198.51.100.1..254, then 203.0.113.x.
pub fn vip(vrid: usize) -> String {
    if vrid <= 254 {
        format!("198.51.100.{vrid}")
    } else {
        format!("203.0.113.{}", vrid - 254)
    }
}

/// keepalived.conf text for one node: VRIDs 1..=`n` IPv4 at `priority` and `advert_int`
/// (`state MASTER` for 255), plus `extra` top-level text.
pub fn render(router_id: &str, n: usize, priority: u8, advert_int: f64, extra: &str) -> String {
    render_with(router_id, n, priority, advert_int, extra, |_| String::new())
}

/// [`render`] with `more(vrid)` lines inside each instance block.
pub fn render_with(
    router_id: &str,
    n: usize,
    priority: u8,
    advert_int: f64,
    extra: &str,
    more: impl Fn(usize) -> String,
) -> String {
    let mut s = format!("global_defs {{\n    router_id {router_id}\n}}\n");
    let state = if priority == 255 { "MASTER" } else { "BACKUP" };
    for v in 1..=n {
        let _ = write!(
            s,
            "vrrp_instance VI_{v} {{\n    state {state}\n    interface eth0\n    virtual_router_id {v}\n    \
             priority {priority}\n    advert_int {advert_int}\n    version 3\n{}    virtual_ipaddress {{\n        \
             {}/32 dev eth0\n    }}\n}}\n",
            more(v),
            vip(v)
        );
    }
    s + extra
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// How many of the bench VIPs `host` holds.
pub fn vips_held(host: &Host) -> usize {
    host.exec("ip", &["-o", "-4", "addr", "show", "dev", "eth0"])
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains(" 198.51.100.") || l.contains(" 203.0.113."))
                .count()
        })
        .unwrap_or(0)
}

/// Adverts from `src` per VRID.
fn by_vrid(seen: &[AdvertSeen], src: IpAddr) -> BTreeMap<u8, Vec<Instant>> {
    let mut m: BTreeMap<u8, Vec<Instant>> = BTreeMap::new();
    for a in seen.iter().filter(|a| a.src == src) {
        m.entry(a.vrid).or_default().push(a.at);
    }
    m
}

/// One run of `daemon` with `n` instances at `advert_int`.
pub fn run_once(
    daemon: Daemon,
    n: usize,
    advert_int: f64,
    window: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Run> {
    let lab = Lab::builder().build()?;
    let (ha, hb, client) = (lab.host("a"), lab.host("b"), lab.host("client"));
    let ca = render("bench_a", n, 255, advert_int, "");
    let cb = render("bench_b", n, 100, advert_int, "");
    let watch = AdvertWatch::start(client)?;
    let mut b = daemon.start(hb, &cb)?;
    let t0 = Instant::now();
    let mut a = daemon.start(ha, &ca)?;
    let from_a = |x: &AdvertSeen| x.src == ha.v4;
    let first = watch
        .wait_for(t0, Duration::from_secs(10), from_a)
        .ok_or_else(|| LabError::Other(format!("{daemon}: no advert from a\n{}", a.log_text())))?;
    let mut all = None;
    wait_until(Duration::from_secs(10), Duration::from_millis(1), || {
        let seen = watch.snapshot();
        let m = by_vrid(&seen, ha.v4);
        if m.len() >= n {
            all = m.values().filter_map(|v| v.first()).max().copied();
        }
        all.is_some()
    });
    let all = all.ok_or_else(|| LabError::Other(format!("{daemon}: not every VRID heard")))?;
    let settled = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        vips_held(ha) == n && vips_held(hb) == 0
    });
    if !settled {
        return Err(LabError::Other(format!(
            "{daemon}: a holds {} of {n} VIPs, b {}",
            vips_held(ha),
            vips_held(hb)
        )));
    }
    drop(watch);
    // The start-up announcements (a second burst 5 s after Master) are over.
    std::thread::sleep(Duration::from_secs(6));
    progress(&format!(
        "{daemon} n={n} advert_int={advert_int}: idle window {window:?}"
    ));
    let (pa, pb) = (a.pid(), b.pid());
    let (a0, b0) = (
        procstat::group_cpu_seconds(pa),
        procstat::group_cpu_seconds(pb),
    );
    let w0 = Instant::now();
    std::thread::sleep(window);
    let per_min = 60.0 / w0.elapsed().as_secs_f64();
    let (a1, b1) = (
        procstat::group_cpu_seconds(pa),
        procstat::group_cpu_seconds(pb),
    );
    let (master_pss_kb, backup_pss_kb) = (procstat::group_pss_kb(pa), procstat::group_pss_kb(pb));
    let (master_pss_anon_kb, backup_pss_anon_kb) = (
        procstat::group_pss_anon_kb(pa),
        procstat::group_pss_anon_kb(pb),
    );
    let (master_fds, backup_fds) = (procstat::group_fds(pa), procstat::group_fds(pb));

    let (reload_max_gap_ms, reload_takeovers) =
        reload(daemon, &mut a, ha, hb, client, &ca, n, advert_int)?;
    let (stop_exit_ms, stop_vips_left) = stop(&mut a, ha);
    b.terminate(Duration::from_secs(10));
    Ok(Run {
        first_advert_ms: ms(first.at - t0),
        all_vrids_heard_ms: ms(all - t0),
        master_cpu_s_per_min: ((a1 - a0) * per_min * 100.0).round() / 100.0,
        backup_cpu_s_per_min: ((b1 - b0) * per_min * 100.0).round() / 100.0,
        master_pss_kb,
        backup_pss_kb,
        master_pss_anon_kb,
        backup_pss_anon_kb,
        master_fds,
        backup_fds,
        reload_max_gap_ms,
        reload_takeovers,
        stop_exit_ms,
        stop_vips_left,
    })
}

/// SIGHUP with a harmlessly changed file: the longest advert gap of any VRID around it and the
/// VRIDs b took over.
#[allow(clippy::too_many_arguments)]
fn reload(
    daemon: Daemon,
    a: &mut DaemonProc,
    ha: &Host,
    hb: &Host,
    client: &Host,
    conf: &str,
    n: usize,
    advert_int: f64,
) -> Result<(f64, usize)> {
    let watch = AdvertWatch::start(client)?;
    let adv = Duration::from_secs_f64(advert_int);
    std::thread::sleep((adv * 3).max(Duration::from_millis(500)));
    std::fs::write(
        ha.dir.join(format!("{daemon}.conf")),
        conf.replace("router_id bench_a", "router_id bench_a_reloaded"),
    )?;
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .map_err(|e| LabError::Other(format!("SIGHUP: {e}")))?;
    std::thread::sleep((adv * 10).max(Duration::from_secs(3)));
    let seen = watch.snapshot();
    drop(watch);
    let from = t - adv * 2;
    let mut max_gap = Duration::ZERO;
    for times in by_vrid(&seen, ha.v4).values() {
        let around: Vec<Instant> = times.iter().copied().filter(|x| *x >= from).collect();
        for w in around.windows(2) {
            max_gap = max_gap.max(w[1] - w[0]);
        }
    }
    let taken: std::collections::BTreeSet<u8> = seen
        .iter()
        .filter(|x| x.src == hb.v4 && x.at >= t && x.priority > 0)
        .map(|x| x.vrid)
        .collect();
    if !a.is_running() {
        return Err(LabError::Other(format!(
            "{daemon} died on SIGHUP:\n{}",
            a.log_text()
        )));
    }
    let _ = n;
    Ok((ms(max_gap), taken.len()))
}

/// SIGTERM: time to exit, VIPs left behind.
fn stop(a: &mut DaemonProc, ha: &Host) -> (f64, usize) {
    let t = Instant::now();
    let done = a.terminate(Duration::from_secs(15));
    let took = if done { ms(t.elapsed()) } else { f64::NAN };
    (took, vips_held(ha))
}

/// The 10 ms instance's advert periods (p50, p99, max in ms, count) with `load` instances at
/// 1 s beside it.
pub fn period_run(daemon: Daemon, load: usize, seconds: u64) -> Result<serde_json::Value> {
    let lab = Lab::builder().build()?;
    let (ha, hb, client) = (lab.host("a"), lab.host("b"), lab.host("client"));
    let fast = |master: bool| {
        format!(
            "vrrp_instance FAST {{\n    state {}\n    interface eth0\n    virtual_router_id 1\n    \
             priority {}\n    advert_int 0.01\n    version 3\n    virtual_ipaddress {{\n        \
             2001:db8:0:1::1/128 dev eth0\n    }}\n}}\n",
            if master { "MASTER" } else { "BACKUP" },
            if master { 255 } else { 100 }
        )
    };
    let ca = render("period_a", load, 255, 1.0, &fast(true));
    let cb = render("period_b", load, 100, 1.0, &fast(false));
    let mut b = daemon.start(hb, &cb)?;
    let mut a = daemon.start(ha, &ca)?;
    wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        vips_held(ha) == load
    });
    std::thread::sleep(Duration::from_secs(6));
    let watch = AdvertWatch::start(client)?;
    std::thread::sleep(Duration::from_secs(seconds));
    let seen = watch.snapshot();
    drop(watch);
    a.terminate(Duration::from_secs(10));
    b.terminate(Duration::from_secs(10));
    let times: Vec<Instant> = seen
        .iter()
        .filter(|x| x.src.is_ipv6() && x.vrid == 1 && x.priority == 255)
        .map(|x| x.at)
        .collect();
    let mut periods: Vec<f64> = times.windows(2).map(|w| ms(w[1] - w[0])).collect();
    periods.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if periods.is_empty() {
            return f64::NAN;
        }
        periods[((periods.len() - 1) as f64 * p).round() as usize]
    };
    Ok(json!({
        "daemon": daemon,
        "load_instances": load,
        "adverts": times.len(),
        "period_p50_ms": pct(0.5),
        "period_p99_ms": pct(0.99),
        "period_max_ms": periods.last().copied().unwrap_or(f64::NAN),
    }))
}

fn stats(xs: &[f64]) -> serde_json::Value {
    json!({ "median": if xs.is_empty() { f64::NAN } else { median(xs) }, "runs": xs })
}

/// Least-squares slope of `ys` against `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return f64::NAN;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let num: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    num / den
}

/// Instance count, Master and Backup CPU medians (per daemon and advert interval).
type CpuPoint = (f64, f64, f64);

/// The whole matrix, as JSON.
pub fn run(spec: &Spec, progress: &mut dyn FnMut(&str)) -> Result<serde_json::Value> {
    let load_start = loadavg();
    let mut results = Vec::new();
    let mut lines: BTreeMap<(String, String), Vec<CpuPoint>> = BTreeMap::new();
    for &adv in &spec.advert_ints {
        for &n in &spec.counts {
            // The daemons alternate run by run, so a change in the machine's load falls on
            // both.
            let mut runs: Vec<Vec<Run>> = vec![Vec::new(); spec.daemons.len()];
            let mut errors: Vec<Vec<String>> = vec![Vec::new(); spec.daemons.len()];
            for i in 0..spec.runs {
                for (k, &d) in spec.daemons.iter().enumerate() {
                    match run_once(d, n, adv, spec.window, progress) {
                        Ok(r) => {
                            progress(&format!("{d} n={n} advert_int={adv} run {}: {r:?}", i + 1));
                            runs[k].push(r);
                        }
                        Err(e) => {
                            progress(&format!(
                                "{d} n={n} advert_int={adv} run {}: FAILED {e}",
                                i + 1
                            ));
                            errors[k].push(e.to_string());
                        }
                    }
                }
            }
            for (k, &d) in spec.daemons.iter().enumerate() {
                let runs = &runs[k];
                let col = |f: fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<_>>();
                let m = col(|r| r.master_cpu_s_per_min);
                let b = col(|r| r.backup_cpu_s_per_min);
                if !m.is_empty() {
                    lines
                        .entry((d.to_string(), adv.to_string()))
                        .or_default()
                        .push((n as f64, median(&m), median(&b)));
                }
                results.push(json!({
                    "daemon": d,
                    "instances": n,
                    "advert_int": adv,
                    "master_cpu_s_per_min": stats(&m),
                    "backup_cpu_s_per_min": stats(&b),
                    "master_pss_kb": stats(&col(|r| r.master_pss_kb as f64)),
                    "backup_pss_kb": stats(&col(|r| r.backup_pss_kb as f64)),
                    "master_pss_anon_kb": stats(&col(|r| r.master_pss_anon_kb as f64)),
                    "backup_pss_anon_kb": stats(&col(|r| r.backup_pss_anon_kb as f64)),
                    "master_fds": stats(&col(|r| r.master_fds as f64)),
                    "backup_fds": stats(&col(|r| r.backup_fds as f64)),
                    "first_advert_ms": stats(&col(|r| r.first_advert_ms)),
                    "all_vrids_heard_ms": stats(&col(|r| r.all_vrids_heard_ms)),
                    "reload_max_gap_ms": stats(&col(|r| r.reload_max_gap_ms)),
                    "reload_takeovers": stats(&col(|r| r.reload_takeovers as f64)),
                    "stop_exit_ms": stats(&col(|r| r.stop_exit_ms)),
                    "stop_vips_left": stats(&col(|r| r.stop_vips_left as f64)),
                    "errors": errors[k],
                }));
            }
        }
    }
    let slopes: Vec<serde_json::Value> = lines
        .iter()
        .map(|((d, adv), pts)| {
            let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
            let m: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let b: Vec<f64> = pts.iter().map(|p| p.2).collect();
            json!({
                "daemon": d,
                "advert_int": adv.parse::<f64>().unwrap_or(f64::NAN),
                "master_cpu_s_per_min_per_instance": slope(&xs, &m),
                "backup_cpu_s_per_min_per_instance": slope(&xs, &b),
            })
        })
        .collect();
    let mut period = Vec::new();
    if spec.period {
        for &d in &spec.daemons {
            for load in [0, 255] {
                progress(&format!("{d}: 10 ms period with {load} instances at 1 s"));
                match period_run(d, load, 10) {
                    Ok(v) => period.push(v),
                    Err(e) => period
                        .push(json!({"daemon": d, "load_instances": load, "error": e.to_string()})),
                }
            }
        }
    }
    Ok(json!({
        "bench": "instances",
        "spec": spec,
        "setup": "nodes a (owner of every VRID, priority 255) and b (Backup, 100) on one bridge; VRRPv3, one /32 VIP per instance on eth0",
        "results": results,
        "cpu_slope": slopes,
        "period_10ms": period,
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
    }))
}

/// The machine's load averages (1, 5, 15 minutes): other work on a shared machine.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_slope() {
        let t = render("r", 3, 255, 0.1, "");
        assert_eq!(t.matches("vrrp_instance").count(), 3);
        assert!(t.contains("198.51.100.3/32 dev eth0"));
        assert_eq!(vip(255), "203.0.113.1");
        assert!((slope(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 2.0).abs() < 1e-9);
    }
}
