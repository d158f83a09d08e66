//! vrrp-lab: a VRRP pair in network namespaces, a client probing the VIP every millisecond,
//! and measured failovers, for vrrpd or keepalived (same flags, same config).
//!
//! `vrrp-lab` runs the demo; `vrrp-lab bench failover` compares both daemons.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lab::scenario::{median, run_failover, FailoverRun, FailoverSpec, Scenario};
use lab::Daemon;
use serde_json::json;

const DEMO_A: &str = include_str!("../../../etc/keepalived-a.conf");
const DEMO_B: &str = include_str!("../../../etc/keepalived-b.conf");

#[derive(Parser)]
#[command(
    version,
    about = "VRRP failover lab in network namespaces (needs root)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Daemon on both nodes for the demo.
    #[arg(long, default_value = "vrrpd")]
    daemon: Daemon,
    /// Config for node a (default: the bundled etc/keepalived-a.conf).
    #[arg(long)]
    config_a: Option<PathBuf>,
    /// Config for node b (default: the bundled etc/keepalived-b.conf).
    #[arg(long)]
    config_b: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measurements.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
    /// The fault matrix (docs/FAULTS.md): each fault on a vrrpd pair and a keepalived pair,
    /// who held the VIP every 10 ms and the client's longest gap.
    Faults {
        /// Daemons to compare, in order.
        #[arg(long, value_delimiter = ',', default_value = "vrrpd,keepalived")]
        daemons: Vec<Daemon>,
        /// Faults to run (default: all of them).
        #[arg(long, value_delimiter = ',')]
        only: Vec<lab::faults::Fault>,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// `-t` on files of N instances with one warning each: wall and CPU time per daemon
    /// (issue 18 item 7: linear in N, not quadratic), in a namespace of spare interfaces.
    ConfigCheck {
        /// Runs per daemon and size (the report gives medians).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Instance counts.
        #[arg(long, value_delimiter = ',', default_value = "10000,20000,40000")]
        counts: Vec<usize>,
        /// Daemons to compare, in order.
        #[arg(long, value_delimiter = ',', default_value = "vrrpd,keepalived")]
        daemons: Vec<Daemon>,
    },
    /// Crash and SIGTERM failovers, VRRPv3 advert_int 0.1 and VRRPv2 advert_int 1.
    Failover {
        /// Runs per daemon, scenario and protocol version.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Daemons to compare, in order.
        #[arg(long, value_delimiter = ',', default_value = "vrrpd,keepalived")]
        daemons: Vec<Daemon>,
        /// Events: crash (SIGKILL of every process, VIP removed, link cut), sigterm, and
        /// kill-vrrp (SIGKILL of the VRRP process alone, as the OOM killer does).
        #[arg(long, value_delimiter = ',', default_value = "crash,sigterm,kill-vrrp")]
        scenarios: Vec<Scenario>,
    },
    /// N VRRP instances on one link: idle CPU and PSS of Master and Backup, start-up, reload
    /// and stop, for each daemon (JSON).
    Instances {
        /// Runs per daemon, instance count and advert interval (the report gives medians).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Instance counts.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64,255")]
        counts: Vec<usize>,
        /// Advert intervals in seconds.
        #[arg(long, value_delimiter = ',', default_value = "0.1,1")]
        advert_ints: Vec<f64>,
        /// Seconds of the idle CPU window.
        #[arg(long, default_value_t = 60)]
        window: u64,
        /// Daemons to compare, in order.
        #[arg(long, value_delimiter = ',', default_value = "vrrpd,keepalived")]
        daemons: Vec<Daemon>,
        /// Skip the 10 ms period under load.
        #[arg(long)]
        no_period: bool,
    },
    /// The in-process balancer (DR, NAT) against direct and HAProxy, with wrk.
    Lb {
        /// Runs per mode (the report gives medians).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        /// Dataplane worker threads.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Real servers behind the VIP (direct mode always talks to the first).
        #[arg(long, default_value_t = 2)]
        real_servers: usize,
    },
    /// Connection sync (lvs_sync_daemon) on two dataplanes: lag, bytes per new connection, and
    /// req/s and dataplane CPU with sync on versus off.
    Sync {
        /// Runs per load and setting (the report gives medians).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        /// Dataplane worker threads.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Connections timed one by one for the lag.
        #[arg(long, default_value_t = 200)]
        lag_samples: usize,
    },
    /// What looking costs: a listing of the connection table and a metrics scrape with
    /// `conns` entries in the table, and the dataplane's req/s while they run.
    Observe {
        /// Runs (the report gives medians).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        /// UDP flows in the connection table.
        #[arg(long, default_value_t = 100_000)]
        conns: usize,
    },
}

/// `advert_int` from a config text (for bounding waits), default 1 s.
fn advert_int_of(conf: &str) -> f64 {
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("advert_int"))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(1.0)
}

fn version_of(conf: &str) -> u8 {
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("version"))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(2)
}

fn demo(cli: &Cli) -> anyhow::Result<()> {
    let read = |p: &Option<PathBuf>, dflt: &str| -> anyhow::Result<String> {
        Ok(match p {
            Some(p) => std::fs::read_to_string(p)?,
            None => dflt.to_string(),
        })
    };
    let (ca, cb) = (read(&cli.config_a, DEMO_A)?, read(&cli.config_b, DEMO_B)?);
    cli.daemon.binary()?;
    let mut spec = FailoverSpec::new(
        cli.daemon,
        Scenario::Crash,
        version_of(&ca),
        advert_int_of(&ca),
    );
    spec.configs = Some((ca, cb));
    let json = cli.json;
    if !json {
        println!(
            "vrrp-lab demo: {} on nodes a (priority 150) and b (priority 100), VIP 192.0.2.100,\n\
             VRRPv{} advert_int {} s (a fast setting for the demo; keepalived's classic is v2, 1 s)",
            cli.daemon, spec.version, spec.advert_int
        );
    }
    let mut progress = |s: &str| {
        if !json {
            println!("  {s}");
        }
    };
    let run = run_failover(&spec, &mut progress)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "daemon": cli.daemon,
                "version": spec.version,
                "advert_int": spec.advert_int,
                "initial_master": "a",
                "event": "crash (SIGKILL, VIP removed, link cut)",
                "new_master": run.new_master,
                "blackout_ms": run.blackout_ms,
                "takeover_after_last_advert_ms": run.takeover_after_last_advert_ms,
                "lab_setup_ms": run.lab_setup_ms,
                "probe": run.probe,
            }))?
        );
    } else {
        println!(
            "result: Master a crashed; the client saw {:.1} ms without replies \
             ({} of {} probes answered); new Master: {}; b took over {:.1} ms after a's last advert",
            run.blackout_ms, run.probe.received, run.probe.sent, run.new_master,
            run.takeover_after_last_advert_ms.unwrap_or(f64::NAN)
        );
        println!("lab removed");
    }
    Ok(())
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

fn stats(xs: &[f64]) -> serde_json::Value {
    let r = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "median": if xs.is_empty() { serde_json::Value::Null } else { json!(r(median(xs))) },
        "runs": xs.iter().map(|x| r(*x)).collect::<Vec<_>>(),
    })
}

fn bench_failover(
    runs: usize,
    daemons: &[Daemon],
    scenarios: &[Scenario],
    json: bool,
) -> anyhow::Result<()> {
    for d in daemons {
        if let Err(e) = d.binary() {
            anyhow::bail!("{e}; run with `--daemons keepalived` to bench keepalived alone");
        }
    }
    let mut results = Vec::new();
    for &daemon in daemons {
        for (version, adv) in [(3u8, 0.1f64), (2, 1.0)] {
            for &scenario in scenarios {
                let spec = FailoverSpec::new(daemon, scenario, version, adv);
                let mut ok: Vec<FailoverRun> = Vec::new();
                let mut errors = Vec::new();
                for i in 0..runs {
                    match run_failover(&spec, &mut |_| {}) {
                        Ok(r) => {
                            eprintln!(
                                "{daemon:>10} {scenario:<9} v{version} advert_int {adv:<3} run {}/{runs}: \
                                 blackout {:7.1} ms  event to: a's priority 0 {:>6} ms, b's advert {:>6} ms, \
                                 reply via b {:>6} ms, a released {:>6} ms; VIP left on a: {}; new Master {}",
                                i + 1,
                                r.blackout_ms,
                                opt_ms(r.event_to_release_advert_ms),
                                opt_ms(r.event_to_peer_advert_ms),
                                opt_ms(r.reply_via_peer_ms),
                                opt_ms(r.dead_node_released_ms),
                                r.vip_left_on_dead_node,
                                r.new_master,
                            );
                            ok.push(r);
                        }
                        Err(e) => {
                            eprintln!("{daemon} {scenario} v{version} run {}: FAILED: {e}", i + 1);
                            errors.push(e.to_string());
                        }
                    }
                }
                let col = |f: fn(&FailoverRun) -> f64| ok.iter().map(f).collect::<Vec<_>>();
                results.push(json!({
                    "daemon": daemon,
                    "scenario": scenario,
                    "version": version,
                    "advert_int": adv,
                    "blackout_ms": stats(&col(|r| r.blackout_ms)),
                    "takeover_after_last_advert_ms": stats(&ok.iter().filter_map(|r| r.takeover_after_last_advert_ms).collect::<Vec<_>>()),
                    "event_to_peer_advert_ms": stats(&ok.iter().filter_map(|r| r.event_to_peer_advert_ms).collect::<Vec<_>>()),
                    "event_to_release_advert_ms": stats(&ok.iter().filter_map(|r| r.event_to_release_advert_ms).collect::<Vec<_>>()),
                    "peer_took_over_runs": ok.iter().filter(|r| r.event_to_peer_advert_ms.is_some()).count(),
                    "event_after_advert_ms": stats(&col(|r| r.event_after_advert_ms)),
                    "lab_setup_ms": stats(&col(|r| r.lab_setup_ms)),
                    "event_to_reply_via_peer_ms": stats(&ok.iter().filter_map(|r| r.reply_via_peer_ms).collect::<Vec<_>>()),
                    "vip_left_on_dead_node_runs": ok.iter().filter(|r| r.vip_left_on_dead_node).count(),
                    "event_to_dead_node_released_ms": stats(&ok.iter().filter_map(|r| r.dead_node_released_ms).collect::<Vec<_>>()),
                    "dead_node_never_released_runs": ok.iter().filter(|r| r.dead_node_released_ms.is_none()).count(),
                    "errors": errors,
                }));
            }
        }
    }
    let report = json!({
        "bench": "failover",
        "runs": runs,
        "backup_priority": 100,
        "master_priority": 150,
        "event_phase_after_master_advert_ms": 10,
        "scenarios": {
            "crash": "Master daemon SIGKILLed (all processes), VIP removed, link cut",
            "sigterm": "Master daemon SIGTERMed (graceful handover)",
            "kill-vrrp": "Master's VRRP process (the -r pid) SIGKILLed alone, the host and the main process alive; a runs nopreempt",
        },
        "results": results,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{:<11} {:<10} {:<14} {:>18} {:>26} {:>22} {:>14}",
            "daemon",
            "event",
            "protocol",
            "blackout median",
            "takeover after last advert",
            "event to reply via b",
            "VIP left on a"
        );
        for r in &results {
            let m = |k: &str| {
                r[k]["median"]
                    .as_f64()
                    .map_or("-".into(), |v| format!("{v:.1} ms"))
            };
            println!(
                "{:<11} {:<10} {:<14} {:>18} {:>26} {:>22} {:>14}",
                r["daemon"].as_str().unwrap_or(""),
                r["scenario"].as_str().unwrap_or(""),
                format!("v{} {} s", r["version"], r["advert_int"]),
                m("blackout_ms"),
                m("takeover_after_last_advert_ms"),
                m("event_to_reply_via_peer_ms"),
                format!("{}/{}", r["vip_left_on_dead_node_runs"], runs),
            );
        }
    }
    Ok(())
}

fn bench_config_check(
    runs: usize,
    counts: &[usize],
    daemons: &[Daemon],
    json: bool,
) -> anyhow::Result<()> {
    use lab::checkbench;
    for d in daemons {
        d.binary()?;
    }
    let bench = checkbench::Bench::new(counts.iter().copied().max().unwrap_or(0))?;
    let mut results = Vec::new();
    for &n in counts {
        let path = bench.write_config(n)?;
        for &d in daemons {
            let mut all = Vec::new();
            for _ in 0..runs {
                let c = bench.check(d, &path)?;
                eprintln!(
                    "{:>10} {n:>6} instances: {:8.1} ms wall, {:8.1} ms CPU, exit {:?}, {} lines, {} unknown-keyword lines",
                    d.to_string(),
                    c.wall_ms,
                    c.cpu_ms,
                    c.exit,
                    c.output_lines,
                    c.unknown_keyword_lines
                );
                all.push(c);
            }
            results.push(json!({
                "daemon": d,
                "instances": n,
                "wall_ms": stats(&all.iter().map(|c| c.wall_ms).collect::<Vec<_>>()),
                "cpu_ms": stats(&all.iter().map(|c| c.cpu_ms).collect::<Vec<_>>()),
                "cpu_us_per_instance": stats(&all.iter().map(|c| c.cpu_ms * 1e3 / n as f64).collect::<Vec<_>>()),
                "exit": all.first().and_then(|c| c.exit),
                "output_lines": all.first().map(|c| c.output_lines),
                "unknown_keyword_lines": all.first().map(|c| c.unknown_keyword_lines),
            }));
        }
    }
    let report = json!({
        "bench": "config-check",
        "runs": runs,
        "file": "N vrrp_instance blocks, each with one unknown keyword (one warning each), 255 per interface (no VRID shared on an interface)",
        "results": results,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{:<11} {:>9} {:>14} {:>14} {:>18}",
            "daemon", "instances", "wall median", "CPU median", "CPU per instance"
        );
        for r in &results {
            println!(
                "{:<11} {:>9} {:>11.1} ms {:>11.1} ms {:>15.1} µs",
                r["daemon"].as_str().unwrap_or(""),
                r["instances"],
                r["wall_ms"]["median"].as_f64().unwrap_or(f64::NAN),
                r["cpu_ms"]["median"].as_f64().unwrap_or(f64::NAN),
                r["cpu_us_per_instance"]["median"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
            );
        }
    }
    Ok(())
}

fn faults(daemons: &[Daemon], only: &[lab::faults::Fault], json: bool) -> anyhow::Result<()> {
    use lab::faults::{self, Fault};
    for d in daemons {
        d.binary()?;
    }
    let list = if only.is_empty() {
        Fault::all()
    } else {
        only.to_vec()
    };
    let mut runs = Vec::new();
    if !json {
        println!(
            "{:<18} {:<11} {:>12} {:>11} {:>11} {:>7} {:>9}  timeline (from the fault, 10 ms samples)",
            "fault", "daemon", "longest gap", "both held", "none held", "final", "a alive"
        );
    }
    for f in list {
        for &d in daemons {
            match faults::run(d, f) {
                Ok(r) => {
                    if !json {
                        println!(
                            "{:<18} {:<11} {:>9.1} ms {:>8.0} ms {:>8.0} ms {:>7} {:>9}  {}",
                            r.fault,
                            r.daemon.to_string(),
                            r.longest_gap_ms,
                            r.both_held_ms,
                            r.none_held_ms,
                            r.final_holder,
                            r.a_running,
                            r.timeline
                        );
                        for n in &r.notes {
                            println!("{:<31} {n}", "");
                        }
                    }
                    runs.push(serde_json::to_value(&r)?);
                }
                Err(e) => {
                    eprintln!("{} on {d}: FAILED: {e}", f.name());
                    runs.push(json!({"fault": f.name(), "daemon": d, "error": e.to_string()}));
                }
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"matrix": "faults", "runs": runs}))?
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !lab::is_root() {
        eprintln!("vrrp-lab needs root (it creates network namespaces)");
        return ExitCode::from(2);
    }
    if let Err(e) = lab::guard::install_signal_guard() {
        eprintln!("cannot install the interrupt guard: {e}");
        return ExitCode::FAILURE;
    }
    let r = match &cli.cmd {
        None => demo(&cli),
        Some(Cmd::Bench {
            what:
                BenchCmd::ConfigCheck {
                    runs,
                    counts,
                    daemons,
                },
        }) => bench_config_check(*runs, counts, daemons, cli.json),
        Some(Cmd::Faults { daemons, only }) => faults(daemons, only, cli.json),
        Some(Cmd::Bench {
            what:
                BenchCmd::Failover {
                    runs,
                    daemons,
                    scenarios,
                },
        }) => bench_failover(*runs, daemons, scenarios, cli.json),
        Some(Cmd::Bench {
            what:
                BenchCmd::Instances {
                    runs,
                    counts,
                    advert_ints,
                    window,
                    daemons,
                    no_period,
                },
        }) => {
            let spec = lab::instbench::Spec {
                daemons: daemons.clone(),
                counts: counts.clone(),
                advert_ints: advert_ints.clone(),
                runs: *runs,
                window: std::time::Duration::from_secs(*window),
                period: !no_period,
            };
            lab::instbench::run(&spec, &mut |l| eprintln!("{l}"))
                .map_err(anyhow::Error::from)
                .and_then(|r| {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                    Ok(())
                })
        }
        Some(Cmd::Bench {
            what:
                BenchCmd::Lb {
                    runs,
                    seconds,
                    workers,
                    real_servers,
                },
        }) => {
            let spec = lab::lbbench::LbBenchSpec {
                runs: *runs,
                seconds: *seconds,
                workers: *workers,
                real_servers: *real_servers,
                ..Default::default()
            };
            lab::lbbench::run(&spec, &mut |l| eprintln!("{l}"))
                .map_err(anyhow::Error::from)
                .and_then(|r| {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                    Ok(())
                })
        }
        Some(Cmd::Bench {
            what:
                BenchCmd::Sync {
                    runs,
                    seconds,
                    workers,
                    lag_samples,
                },
        }) => {
            let spec = lab::syncbench::SyncBenchSpec {
                runs: *runs,
                seconds: *seconds,
                workers: *workers,
                lag_samples: *lag_samples,
            };
            lab::syncbench::run(&spec, &mut |l| eprintln!("{l}"))
                .map_err(anyhow::Error::from)
                .and_then(|r| {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                    Ok(())
                })
        }
        Some(Cmd::Bench {
            what:
                BenchCmd::Observe {
                    runs,
                    seconds,
                    conns,
                },
        }) => {
            let spec = lab::obsbench::ObsBenchSpec {
                runs: *runs,
                seconds: *seconds,
                conns: *conns,
            };
            lab::obsbench::run(&spec, &mut |l| eprintln!("{l}"))
                .map_err(anyhow::Error::from)
                .and_then(|r| {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                    Ok(())
                })
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vrrp-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
