//! Bench: N real servers (listeners on 127.0.0.0/8 addresses inside a private network
//! namespace) checked by TCP_CHECK with `delay_loop 1`. Reports probe lateness against schedule
//! (p50/p99), CPU seconds per minute (user and system) and peak RSS of the checking process, and
//! the kernel floor: the CPU of a minimal loop (no tokio, no scheduler) doing the same connects.
//!
//! `cargo run --release -p checks --example bench10k -- [targets] [seconds] [--runs R]
//! [--busy K] [--floor-seconds S] [--pin] [--modes rst,fin,halfopen]
//! [--floors epoll,blocking,blocking-rst,syn]` (root: it creates the namespace with unshare).
//!
//! Checker modes: `fin` TCP_CHECK as configured by default (FIN exchange, TIME_WAIT on the
//! checker, as keepalived 2.2.7), `rst` with `reset_close` (SO_LINGER 0),
//! `halfopen` with `half_open` (SYN, SYN/ACK, RST: no connection). Floors: `epoll` and
//! `blocking` connect + close (FIN), `blocking-rst` with SO_LINGER 0, `syn` raw SYNs in
//! sendmmsg batches and answers by recvmmsg, as the half-open engine.
//!
//! Every role runs in its own process, so each one's CPU and RSS are its own: the listeners
//! (`--serve`), each checker run (`--checker`), each floor run (`--floor MODE`) and, with
//! `--busy K`, K busy loops (`--spin`) that compete for the CPUs. The report is the median of
//! the runs, as JSON. On loopback the kernel processes both ends of a handshake in the context
//! of the process that sends the packet, so the connecting process is charged for part of the
//! listener's work too; the floor runs show how much that is.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use checks::spec::{resolve, CheckSpec, ProbeSpec, Target, TcpCheck, TimerOverrides};
use serde_json::{json, Map, Value};

fn addr(i: usize) -> SocketAddr {
    let i = i as u32 + 1;
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 1, (i >> 8) as u8, i as u8)),
        8080,
    )
}

/// Soft open-file limit up to the hard one (10k listeners need about 10k descriptors).
fn raise_nofile() {
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// The real servers: one listener per address, accepting and closing, on one thread.
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

/// User and system CPU seconds of this process, from /proc/self/stat (all threads).
fn cpu_seconds() -> (f64, f64) {
    cpu_seconds_of("self")
}

/// User and system CPU seconds of process `pid` ("self" for this one).
fn cpu_seconds_of(pid: &str) -> (f64, f64) {
    // SAFETY: sysconf only reads a constant of the C library.
    let tck = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        t if t > 0 => t as f64,
        _ => 100.0,
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (
        f[11].parse::<f64>().unwrap() / tck,
        f[12].parse::<f64>().unwrap() / tck,
    )
}

/// Peak resident set (VmHWM) in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// CPU figures over `wall` seconds from two [`cpu_seconds`] readings.
fn cpu_report(c0: (f64, f64), c1: (f64, f64), wall: f64) -> Map<String, Value> {
    let (user, sys) = (c1.0 - c0.0, c1.1 - c0.1);
    let mut m = Map::new();
    m.insert("seconds".into(), json!(wall));
    m.insert(
        "cpu_seconds_per_minute".into(),
        json!((user + sys) / wall * 60.0),
    );
    m.insert(
        "cpu_percent_of_one_core".into(),
        json!((user + sys) / wall * 100.0),
    );
    m.insert("user_seconds_per_minute".into(), json!(user / wall * 60.0));
    m.insert("system_seconds_per_minute".into(), json!(sys / wall * 60.0));
    m
}

/// One checker run: the crate's scheduler on a current-thread runtime, as the daemon runs it.
fn checker(n: usize, secs: u64, mode: &str) -> Value {
    let spec = match mode {
        "fin" => TcpCheck::default(),
        "rst" => TcpCheck {
            reset_close: true,
            ..Default::default()
        },
        "halfopen" => TcpCheck {
            half_open: true,
            ..Default::default()
        },
        other => panic!("unknown checker mode {other}"),
    };
    raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
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
                    &CheckSpec::new(ProbeSpec::TcpCheck(spec.clone())),
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
        let (c0, t0, probes0) = (cpu_seconds(), Instant::now(), h.lateness().started);
        // Collect every probe's lateness: the scheduler keeps a bounded window, read it often.
        // u32 microseconds: 600k samples stay ~2.4 MB of the RSS reported.
        let mut late_us: Vec<u32> = Vec::new();
        let mut windows = Vec::new();
        let mut seen = probes0;
        let end = t0 + Duration::from_secs(secs);
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            tokio::time::sleep((end - now).min(Duration::from_secs(4))).await;
            let l = h.lateness();
            let fresh = (l.started - seen) as usize;
            let mut w: Vec<u32> = l
                .latest(fresh)
                .iter()
                .map(|d| d.as_micros().min(u32::MAX.into()) as u32)
                .collect();
            late_us.extend(&w);
            // Per-window p99 and max, to see whether the tail is steady or a few stalls.
            w.sort_unstable();
            if let Some(&max) = w.last() {
                let p99 = w[(w.len() - 1) * 99 / 100];
                windows.push(json!([p99 as f64 / 1e3, max as f64 / 1e3]));
            }
            seen = l.started;
        }
        let c1 = cpu_seconds();
        let wall = t0.elapsed().as_secs_f64();
        let snap = h.snapshot();
        let up = snap.iter().filter(|s| s.up).count();
        let mut probe_ms: Vec<f64> = snap.iter().filter_map(|s| s.last_latency_ms).collect();
        probe_ms.sort_by(|a, b| a.total_cmp(b));
        h.shutdown().await;
        let downs = drain.await.unwrap();
        late_us.sort_unstable();
        let q = |p: f64| {
            let i = ((late_us.len() - 1) as f64 * p).round() as usize;
            late_us[i] as f64 / 1e3
        };
        let mut m = cpu_report(c0, c1, wall);
        m.insert("mode".into(), json!(mode));
        let probes = seen - probes0;
        m.insert("probes".into(), json!(probes));
        m.insert("probes_per_second".into(), json!(probes as f64 / wall));
        m.insert("lateness_samples".into(), json!(late_us.len()));
        m.insert("lateness_p50_ms".into(), json!(q(0.5)));
        m.insert("lateness_p99_ms".into(), json!(q(0.99)));
        m.insert("lateness_max_ms".into(), json!(q(1.0)));
        m.insert("peak_rss_mib".into(), json!(peak_rss_kib() as f64 / 1024.0));
        m.insert("up_at_end".into(), json!(up));
        if !probe_ms.is_empty() {
            let p = |q: f64| probe_ms[((probe_ms.len() - 1) as f64 * q) as usize];
            m.insert("probe_duration_p50_ms".into(), json!(p(0.5)));
            m.insert("probe_duration_p99_ms".into(), json!(p(0.99)));
        }
        m.insert("lateness_windows_p99_max_ms".into(), Value::Array(windows));
        m.insert("down_events".into(), json!(downs));
        Value::Object(m)
    })
}

/// The kernel floor: `n` connects per second, each target once a second, with the least work
/// around them. `epoll`: non-blocking socket + connect + EPOLL_CTL_ADD, one epoll_wait per
/// millisecond tick, close (what any event-driven checker must do). `blocking`: socket +
/// connect + close, which on loopback completes the handshake inside connect (the least any
/// TCP_CHECK can cost here).
fn floor(n: usize, secs: u64, mode: &str) -> Value {
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
    use socket2::{Domain, Socket, Type};
    raise_nofile();
    let targets: Vec<socket2::SockAddr> = (0..n).map(|i| addr(i).into()).collect();
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).unwrap();
    let mut pending: Vec<Option<(Socket, Instant)>> = Vec::new();
    let mut durations_us: Vec<u32> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = vec![EpollEvent::empty(); 1024];
    if mode == "syn" {
        return floor_syn(n, secs);
    }
    let (blocking, rst) = match mode {
        "epoll" => (false, false),
        "blocking" => (true, false),
        "blocking-rst" => (true, true),
        other => panic!("unknown floor mode {other}"),
    };
    let (mut ok, mut failed) = (0u64, 0u64);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(1);
    let end = measure_from + Duration::from_secs(secs);
    let mut c0 = None;
    let mut dispatched = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if c0.is_none() && now >= measure_from {
            c0 = Some((cpu_seconds(), now));
        }
        let due = (now.duration_since(start).as_secs_f64() * n as f64) as u64;
        while dispatched < due {
            let t = &targets[(dispatched % n as u64) as usize];
            dispatched += 1;
            if blocking {
                let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
                if rst {
                    s.set_linger(Some(Duration::ZERO)).unwrap();
                }
                match s.connect(t) {
                    Ok(()) => ok += 1,
                    Err(_) => failed += 1,
                }
                continue;
            }
            let s = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None).unwrap();
            match s.connect(t) {
                Ok(()) => ok += 1,
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    let slot = free.pop().unwrap_or_else(|| {
                        pending.push(None);
                        pending.len() - 1
                    });
                    epoll
                        .add(&s, EpollEvent::new(EpollFlags::EPOLLOUT, slot as u64))
                        .unwrap();
                    pending[slot] = Some((s, Instant::now()));
                }
                Err(_) => failed += 1,
            }
        }
        let got = epoll.wait(&mut events, 1u16).unwrap_or(0);
        for ev in &events[..got] {
            let slot = ev.data() as usize;
            if ev
                .events()
                .intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP)
            {
                failed += 1;
            } else {
                ok += 1;
            }
            if let Some((_, t)) = pending[slot].take() {
                durations_us.push(t.elapsed().as_micros() as u32);
            }
            free.push(slot);
        }
    }
    let (c0, t0) = c0.unwrap();
    let mut m = cpu_report(c0, cpu_seconds(), t0.elapsed().as_secs_f64());
    m.insert("mode".into(), json!(mode));
    durations_us.sort_unstable();
    if !durations_us.is_empty() {
        let p = |q: f64| durations_us[((durations_us.len() - 1) as f64 * q) as usize] as f64 / 1e3;
        m.insert("connect_pending_p50_ms".into(), json!(p(0.5)));
        m.insert("connect_pending_p99_ms".into(), json!(p(0.99)));
        m.insert("connects_pending".into(), json!(durations_us.len()));
    }
    m.insert("connects_ok".into(), json!(ok));
    m.insert("connects_failed".into(), json!(failed));
    m.insert("peak_rss_mib".into(), json!(peak_rss_kib() as f64 / 1024.0));
    Value::Object(m)
}

/// The half-open floor: `n` SYNs per second from 16 reserved ports through one raw socket with
/// the engine's filter, sent in sendmmsg batches every millisecond tick, answers read with
/// recvmmsg; no runtime, no matching beyond counting SYN/ACKs.
fn floor_syn(n: usize, secs: u64) -> Value {
    use checks::probe::halfopen::{reply_filter, syn_segment, FILTER_SNAPLEN, SYN_LEN};
    use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};
    use std::os::fd::AsRawFd;
    let holders: Vec<Socket> = (0..16)
        .map(|_| {
            let h = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            h.bind(&"0.0.0.0:0".parse::<SocketAddr>().unwrap().into())
                .unwrap();
            h
        })
        .collect();
    let ports: Vec<u16> = holders
        .iter()
        .map(|h| h.local_addr().unwrap().as_socket().unwrap().port())
        .collect();
    let raw = Socket::new(Domain::IPV4, Type::RAW.nonblocking(), Some(Protocol::TCP)).unwrap();
    let prog: Vec<SockFilter> = reply_filter(false, &ports)
        .into_iter()
        .map(|(c, jt, jf, k)| SockFilter::new(c, jt, jf, k))
        .collect();
    raw.attach_filter(&prog).unwrap();
    raw.set_recv_buffer_size(1 << 20).unwrap();
    let src = {
        let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        u.connect(addr(0)).unwrap();
        u.local_addr().unwrap().ip()
    };
    let targets: Vec<(SocketAddr, SockAddr)> = (0..n)
        .map(|i| (addr(i), SocketAddr::new(addr(i).ip(), 0).into()))
        .collect();
    const B: usize = 64;
    let mut segs = vec![[0u8; SYN_LEN]; B];
    let mut bufs = vec![[0u8; FILTER_SNAPLEN as usize]; B];
    let (mut sent, mut answered, mut syscalls) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(1);
    let end = measure_from + Duration::from_secs(secs);
    let mut c0 = None;
    let mut dispatched = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if c0.is_none() && now >= measure_from {
            c0 = Some((cpu_seconds(), now, sent, answered, syscalls));
        }
        let due = (now.duration_since(start).as_secs_f64() * n as f64) as u64;
        while dispatched < due {
            let k = ((due - dispatched) as usize).min(B);
            let mut names = Vec::with_capacity(k);
            for (j, seg) in segs.iter_mut().enumerate().take(k) {
                let i = ((dispatched + j as u64) % n as u64) as usize;
                let port = ports[(dispatched as usize + j) % ports.len()];
                let (dst, name) = &targets[i];
                *seg = syn_segment(src, dst.ip(), port, dst.port(), rand::random());
                names.push(name);
            }
            let mut iov: Vec<libc::iovec> = segs[..k]
                .iter()
                .map(|s| libc::iovec {
                    iov_base: s.as_ptr() as *mut libc::c_void,
                    iov_len: s.len(),
                })
                .collect();
            let mut msgs: Vec<libc::mmsghdr> = iov
                .iter_mut()
                .zip(&names)
                .map(|(iov, name)| {
                    // SAFETY: plain data; all-zero is an empty header.
                    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    m.msg_hdr.msg_name = name.as_ptr() as *mut libc::c_void;
                    m.msg_hdr.msg_namelen = name.len();
                    m.msg_hdr.msg_iov = iov;
                    m.msg_hdr.msg_iovlen = 1;
                    m
                })
                .collect();
            // SAFETY: the headers point at names, iovecs and segments alive across the call.
            let r = unsafe { libc::sendmmsg(raw.as_raw_fd(), msgs.as_mut_ptr(), k as u32, 0) };
            syscalls += 1;
            let r = r.max(1) as u64;
            sent += r;
            dispatched += r;
        }
        // Answers, then sleep to the next millisecond tick.
        loop {
            let mut iov: Vec<libc::iovec> = bufs
                .iter_mut()
                .map(|b| libc::iovec {
                    iov_base: b.as_mut_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                })
                .collect();
            let mut msgs: Vec<libc::mmsghdr> = iov
                .iter_mut()
                .map(|iov| {
                    // SAFETY: plain data; all-zero is an empty header.
                    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    m.msg_hdr.msg_iov = iov;
                    m.msg_hdr.msg_iovlen = 1;
                    m
                })
                .collect();
            // SAFETY: the headers point at buffers and iovecs alive across the call.
            let r = unsafe {
                libc::recvmmsg(
                    raw.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    B as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            syscalls += 1;
            if r <= 0 {
                break;
            }
            for (m, b) in msgs.iter().zip(&bufs).take(r as usize) {
                let p = &b[..m.msg_len as usize];
                let ihl = usize::from(p[0] & 0xf) * 4;
                if p.len() >= ihl + 14 && p[ihl + 13] & 0x12 == 0x12 {
                    answered += 1;
                }
            }
            if (r as usize) < B {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(1000).saturating_sub(now.elapsed()));
    }
    let (c0, t0, s0, a0, y0) = c0.unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let mut m = cpu_report(c0, cpu_seconds(), wall);
    m.insert("mode".into(), json!("syn"));
    m.insert("syns_per_second".into(), json!((sent - s0) as f64 / wall));
    m.insert(
        "syn_acks_per_second".into(),
        json!((answered - a0) as f64 / wall),
    );
    m.insert(
        "syscalls_per_second".into(),
        json!((syscalls - y0) as f64 / wall),
    );
    m.insert("peak_rss_mib".into(), json!(peak_rss_kib() as f64 / 1024.0));
    drop(holders);
    Value::Object(m)
}

/// Run this binary with `args` in a child process and parse the JSON line it prints; adds the
/// listeners' (process `server`) CPU over the same run, for comparison.
fn run_child(args: &[String], server: u32, pin: bool) -> Value {
    let me = std::env::current_exe().unwrap();
    let (s0, t0) = (cpu_seconds_of(&server.to_string()), Instant::now());
    let mut cmd = Command::new(me);
    if pin {
        cmd.env(PIN_ENV, "0");
    }
    let out = cmd.args(args).output().unwrap();
    let (s1, wall) = (
        cpu_seconds_of(&server.to_string()),
        t0.elapsed().as_secs_f64(),
    );
    assert!(out.status.success(), "{args:?}: {}", out.status);
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["listeners_user_seconds_per_minute"] = json!((s1.0 - s0.0) / wall * 60.0);
    v["listeners_system_seconds_per_minute"] = json!((s1.1 - s0.1) / wall * 60.0);
    v
}

/// Median of each numeric field over the runs; other fields from the first run.
fn median(runs: &[Value]) -> Value {
    let mut m = Map::new();
    for (k, v) in runs[0].as_object().unwrap() {
        if v.is_number() {
            let mut xs: Vec<f64> = runs.iter().filter_map(|r| r[k].as_f64()).collect();
            xs.sort_by(|a, b| a.total_cmp(b));
            m.insert(k.clone(), json!(xs[xs.len() / 2]));
        } else {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert("runs".into(), Value::Array(runs.to_vec()));
    Value::Object(m)
}

fn flag(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

/// With `--pin`, each child is told its CPU through this variable.
const PIN_ENV: &str = "BENCH10K_CPU";

fn pin_from_env() {
    if let Some(cpu) = std::env::var(PIN_ENV).ok().and_then(|c| c.parse().ok()) {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu).unwrap();
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
    }
}

fn main() {
    pin_from_env();
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--serve") => return serve(args[2].parse().unwrap()),
        Some("--spin") => loop {
            std::hint::black_box(0u64);
        },
        Some("--checker") => {
            let v = checker(args[2].parse().unwrap(), args[3].parse().unwrap(), &args[4]);
            return println!("{v}");
        }
        Some("--floor") => {
            let v = floor(args[3].parse().unwrap(), args[4].parse().unwrap(), &args[2]);
            return println!("{v}");
        }
        _ => {}
    }
    // Positional arguments: those that are neither a flag nor a flag's value.
    let pos: Vec<&String> = (1..args.len())
        .filter(|&i| !args[i].starts_with("--") && !args[i - 1].starts_with("--"))
        .map(|i| &args[i])
        .collect();
    let n: usize = pos.first().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let secs: u64 = pos.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let runs = flag(&args, "--runs").unwrap_or(3).max(1) as usize;
    let busy = flag(&args, "--busy").unwrap_or(0) as usize;
    let floor_secs = flag(&args, "--floor-seconds").unwrap_or(secs.min(20));
    // --pin: listeners on CPU 1, the measured process on CPU 0, as if the real servers were
    // elsewhere (no preemption of the checker by the listeners it wakes).
    let pin = args.iter().any(|a| a == "--pin");
    let list = |name: &str, default: &str| -> Vec<String> {
        let i = args.iter().position(|a| a == name);
        let v = i
            .and_then(|i| args.get(i + 1))
            .map_or(default, |s| s.as_str());
        v.split(',').map(String::from).collect()
    };
    let modes = list("--modes", "rst");
    let floors = list("--floors", "epoll,blocking");
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (private network namespace)");
        return;
    }
    // Still single-threaded here: the whole process, and its children, enter the namespace.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
    assert!(Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let me = std::env::current_exe().unwrap();
    let mut server = Command::new(&me);
    if pin {
        server.env(PIN_ENV, "1");
    }
    let mut server = server
        .args(["--serve", &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut line = String::new();
        std::io::BufReader::new(server.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let mut spinners: Vec<Child> = (0..busy)
        .map(|_| Command::new(&me).arg("--spin").spawn().unwrap())
        .collect();
    let (ns, ss, fs) = (n.to_string(), secs.to_string(), floor_secs.to_string());
    let mut checker_runs: Vec<Vec<Value>> = vec![Vec::new(); modes.len()];
    let mut floor_runs: Vec<Vec<Value>> = vec![Vec::new(); floors.len()];
    for run in 0..runs {
        for (mode, out) in modes.iter().zip(checker_runs.iter_mut()) {
            let r = run_child(
                &["--checker".into(), ns.clone(), ss.clone(), mode.clone()],
                server.id(),
                pin,
            );
            eprintln!("checker {mode} run {run}: {r}");
            out.push(r);
        }
        for (mode, out) in floors.iter().zip(floor_runs.iter_mut()) {
            let r = run_child(
                &["--floor".into(), mode.clone(), ns.clone(), fs.clone()],
                server.id(),
                pin,
            );
            eprintln!("floor {mode} run {run}: {r}");
            out.push(r);
        }
    }
    for s in &mut spinners {
        let _ = s.kill();
        let _ = s.wait();
    }
    let _ = server.kill();
    let _ = server.wait();
    let mut report = json!({
        "targets": n,
        "delay_loop_seconds": 1,
        "busy_loops": busy,
        "pinned": pin,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "loadavg_at_start": loadavg.trim(),
        "loadavg_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    });
    for (mode, r) in modes.iter().zip(&checker_runs) {
        report[format!("checker_{mode}")] = median(r);
    }
    for (mode, r) in floors.iter().zip(&floor_runs) {
        report[format!("floor_{}", mode.replace('-', "_"))] = median(r);
    }
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
