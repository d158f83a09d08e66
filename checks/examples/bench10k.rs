//! Bench: N real servers (listeners on 127.0.0.0/8 addresses inside a private network
//! namespace) checked by TCP_CHECK with `delay_loop 1`. Reports probe lateness against schedule
//! (p50/p99), CPU seconds per minute and peak RSS of the checking process.
//!
//! `cargo run --release -p checks --example bench10k -- [targets] [seconds]` (root: it creates
//! the namespace with unshare; the listeners run in a child process so their accept work is not
//! counted).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use checks::spec::{resolve, CheckSpec, ProbeSpec, Target, TcpCheck, TimerOverrides};

fn addr(i: usize) -> SocketAddr {
    let i = i as u32 + 1;
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 1, (i >> 8) as u8, i as u8)),
        8080,
    )
}

/// Soft open-file limit up to the hard one (10k listeners need about 10k descriptors).
fn raise_nofile() {
    let pid = std::process::id().to_string();
    let hard = std::process::Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .unwrap();
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_string();
    let _ = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status();
}

fn serve(n: usize) {
    raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        for i in 0..n {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind(addr(i)).unwrap();
            let l = sock.listen(1024).unwrap();
            tokio::spawn(async move {
                loop {
                    if let Ok((s, _)) = l.accept().await {
                        drop(s);
                    }
                }
            });
        }
        println!("ready");
        std::future::pending::<()>().await;
    });
}

/// User + system CPU seconds of this process, from /proc/self/stat (all threads).
fn cpu_seconds(clk_tck: f64) -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (
        f[11].parse::<f64>().unwrap() / clk_tck,
        f[12].parse::<f64>().unwrap() / clk_tck,
    )
}

fn clk_tck() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}

/// Peak resident set (VmHWM) in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return serve(args[2].parse().unwrap());
    }
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(60);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (private network namespace)");
        return;
    }
    // Still single-threaded here: the whole process, and its children, enter the namespace.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
    assert!(std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    raise_nofile();
    let mut server = std::process::Command::new(&args[0])
        .args(["--serve", &n.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(server.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async move {
        let vs = TimerOverrides {
            delay_loop: Some(Duration::from_secs(1)),
            warmup: Some(Duration::from_secs(1)),
            connect_timeout: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let rs = TimerOverrides::default();
        let checks = (0..n)
            .map(|i| {
                let a = addr(i);
                resolve(
                    &vs,
                    &rs,
                    &CheckSpec::new(ProbeSpec::TcpCheck(TcpCheck::default())),
                    Target::new(a.ip(), a.port()),
                    1,
                )
            })
            .collect();
        let (h, mut rx) = checks::spawn(checks).unwrap();
        let drain = tokio::spawn(async move {
            let mut downs = 0u64;
            while let Some(e) = rx.recv().await {
                if !e.up {
                    downs += 1;
                }
            }
            downs
        });
        // Let warmup pass before measuring.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let tck = clk_tck();
        let (cpu0, t0, probes0) = (cpu_seconds(tck), Instant::now(), h.lateness().started);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let cpu1 = cpu_seconds(tck);
        let (user, sys) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
        let (cpu, wall) = (user + sys, t0.elapsed().as_secs_f64());
        let lat = h.lateness();
        let snap = h.snapshot();
        let up = snap.iter().filter(|s| s.up).count();
        h.shutdown().await;
        let downs = drain.await.unwrap();
        let rss_kb = peak_rss_kib();
        serde_json::json!({
            "targets": n,
            "seconds": wall,
            "probes": lat.started - probes0,
            "probes_per_second": (lat.started - probes0) as f64 / wall,
            "lateness_p50_ms": lat.quantile(0.5).unwrap().as_secs_f64() * 1e3,
            "lateness_p99_ms": lat.quantile(0.99).unwrap().as_secs_f64() * 1e3,
            "lateness_max_ms": lat.quantile(1.0).unwrap().as_secs_f64() * 1e3,
            "cpu_seconds_per_minute": cpu / wall * 60.0,
            "cpu_percent_of_one_core": cpu / wall * 100.0,
            "user_seconds_per_minute": user / wall * 60.0,
            "system_seconds_per_minute": sys / wall * 60.0,
            "peak_rss_mib": rss_kb as f64 / 1024.0,
            "up_at_end": up,
            "down_events": downs,
        })
    });
    let _ = server.kill();
    let _ = server.wait();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
