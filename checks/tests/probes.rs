//! End-to-end: each probe against real servers on loopback listeners this test opens.

mod common;

use std::time::Duration;

use checks::spec::{HttpCheck, MiscCheck, ProbeSpec, TcpCheck, TlsSpec, UrlSpec};
use checks::Change;
use common::*;

#[tokio::test]
async fn tcp_check_down_on_close_up_on_reopen() {
    let mut srv = Server::start(None).await;
    let r = resolved(srv.addr, ProbeSpec::TcpCheck(TcpCheck::default()));
    let b = bound(&r);
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    let (e, _) = expect(&mut rx, Change::Up, b).await;
    assert!(e.up && e.kind == "TCP_CHECK" && e.latency.is_some());
    srv.stop();
    let (e, took) = expect(&mut rx, Change::Down, b).await;
    assert!(!e.up && e.reason.contains("connect"), "{e:?}");
    eprintln!("TCP down after {took:?} (bound {b:?})");
    srv.restart().await;
    let (_, took) = expect(&mut rx, Change::Up, b).await;
    eprintln!("TCP up after {took:?}");
    let s = &h.snapshot()[0];
    assert!(
        s.up && s.last_ok == Some(true)
            && s.consecutive_failures == 0
            && s.last_latency_ms.is_some()
    );
    h.shutdown().await;
}

fn http(urls: Vec<UrlSpec>) -> HttpCheck {
    HttpCheck {
        urls,
        ..Default::default()
    }
}

#[tokio::test]
async fn http_get_status_digest_regex_and_outage() {
    let mut srv = Server::start(None).await;
    let url = UrlSpec {
        path: "/health".into(),
        digest: Some(checks::probe::http::md5_hex(b"hello alive\n")),
        regex: Some("alive".into()),
        ..Default::default()
    };
    srv.set(200, "hello alive\n");
    let mut spec = http(vec![url]);
    spec.virtualhost = Some("www.example.test".into());
    let r = resolved(srv.addr, ProbeSpec::HttpGet(spec));
    let b = bound(&r);
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    expect(&mut rx, Change::Up, b).await;
    assert_eq!(
        srv.state.lock().unwrap().last_host.as_deref(),
        Some("www.example.test")
    );

    srv.set(500, "hello alive\n");
    let (e, took) = expect(&mut rx, Change::Down, b).await;
    assert!(e.reason.contains("status 500"), "{e:?}");
    eprintln!("HTTP wrong status down after {took:?}");
    srv.set(200, "hello alive\n");
    expect(&mut rx, Change::Up, b).await;

    srv.set(200, "hello alive!\n");
    let (e, _) = expect(&mut rx, Change::Down, b).await;
    assert!(e.reason.contains("digest"), "{e:?}");
    srv.set(200, "hello alive\n");
    expect(&mut rx, Change::Up, b).await;

    srv.stop();
    let (e, _) = expect(&mut rx, Change::Down, b).await;
    assert!(e.reason.contains("connect"), "{e:?}");
    srv.restart().await;
    let (_, took) = expect(&mut rx, Change::Up, b).await;
    eprintln!("HTTP recovered after {took:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn http_get_wrong_body_regex_is_down() {
    let srv = Server::start(None).await;
    srv.set(200, "status: degraded");
    let url = UrlSpec {
        regex: Some("status: ok".into()),
        ..Default::default()
    };
    let r = resolved(srv.addr, ProbeSpec::HttpGet(http(vec![url])));
    let b = bound(&r);
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    let (e, _) = expect(&mut rx, Change::Down, b).await;
    assert!(e.reason.contains("regex"), "{e:?}");
    srv.set(200, "status: ok");
    expect(&mut rx, Change::Up, b).await;
    h.shutdown().await;
}

#[tokio::test]
async fn ssl_get_unverified_by_default_verified_with_ca_and_sni() {
    let cert = generate_cert();
    let mut srv = Server::start(Some(acceptor(&cert))).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.cert_pem).unwrap();
    let other = dir.path().join("other.pem");
    std::fs::write(&other, generate_cert().cert_pem).unwrap();

    let plain = resolved(srv.addr, ProbeSpec::SslGet(http(vec![])));
    let verified = resolved(
        srv.addr,
        ProbeSpec::SslGet(HttpCheck {
            enable_sni: true,
            sni_name: Some("localhost".into()),
            tls: Some(TlsSpec {
                ca: Some(ca),
                ..Default::default()
            }),
            ..Default::default()
        }),
    );
    let wrong_ca = resolved(
        srv.addr,
        ProbeSpec::SslGet(HttpCheck {
            tls: Some(TlsSpec {
                ca: Some(other),
                ..Default::default()
            }),
            ..Default::default()
        }),
    );
    let b = bound(&plain);
    let (h, mut rx) = checks::spawn(vec![plain, verified, wrong_ca]).unwrap();
    let mut first = [None, None, None];
    for _ in 0..3 {
        let e = tokio::time::timeout(b, rx.recv()).await.unwrap().unwrap();
        let i = e.checker;
        first[i] = Some(e);
    }
    let [p, v, w] = first.map(Option::unwrap);
    assert!(p.up, "no CA: verification off, self-signed accepted: {p:?}");
    assert!(v.up, "CA + SNI localhost verifies: {v:?}");
    assert!(!w.up && w.reason.contains("TLS"), "wrong CA refused: {w:?}");
    // The verified checker sent SNI; the default one sends none (IP name).
    let sni_seen = srv.state.lock().unwrap().requests > 0;
    assert!(sni_seen);

    srv.stop();
    let mut downs = std::collections::HashSet::new();
    let t0 = std::time::Instant::now();
    while downs.len() < 2 {
        let (e, _) = expect(&mut rx, Change::Down, b).await;
        downs.insert(e.checker);
    }
    eprintln!("SSL down after {:?}", t0.elapsed());
    srv.restart().await;
    let mut ups = std::collections::HashSet::new();
    while ups.len() < 2 {
        let (e, _) = expect(&mut rx, Change::Up, b).await;
        ups.insert(e.checker);
    }
    assert_eq!(ups, [0, 1].into_iter().collect());
    h.shutdown().await;
}

#[tokio::test]
async fn ssl_get_sends_sni_only_when_enabled() {
    let cert = generate_cert();
    let srv = Server::start(Some(acceptor(&cert))).await;
    let with = resolved(
        srv.addr,
        ProbeSpec::SslGet(HttpCheck {
            enable_sni: true,
            sni_name: Some("localhost".into()),
            ..Default::default()
        }),
    );
    let b = bound(&with);
    let (h, mut rx) = checks::spawn(vec![with]).unwrap();
    expect(&mut rx, Change::Up, b).await;
    assert_eq!(
        srv.state.lock().unwrap().last_sni.as_deref(),
        Some("localhost")
    );
    h.shutdown().await;

    let srv2 = Server::start(Some(acceptor(&cert))).await;
    let without = resolved(srv2.addr, ProbeSpec::SslGet(HttpCheck::default()));
    let (h, mut rx) = checks::spawn(vec![without]).unwrap();
    expect(&mut rx, Change::Up, b).await;
    assert_eq!(srv2.state.lock().unwrap().last_sni, None);
    h.shutdown().await;
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.to_string_lossy().into_owned()
}

#[tokio::test]
async fn misc_check_exit_codes_and_dynamic_weight() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("code");
    std::fs::write(&state, "0").unwrap();
    let path = script(
        dir.path(),
        "check.sh",
        &format!("exit $(cat {})", state.display()),
    );
    let spec = MiscCheck {
        misc_path: path,
        misc_dynamic: true,
        ..Default::default()
    };
    let r = resolved("127.0.0.1:80".parse().unwrap(), ProbeSpec::MiscCheck(spec));
    let b = bound(&r);
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    let (e, _) = expect(&mut rx, Change::Up, b).await;
    assert_eq!(e.weight, 1, "exit 0 keeps the configured weight");
    std::fs::write(&state, "12").unwrap();
    let (e, _) = expect(&mut rx, Change::Weight, b).await;
    assert!(e.up);
    assert_eq!(e.weight, 10, "misc_dynamic: weight = exit code - 2");
    assert_eq!(h.snapshot()[0].weight, 10);
    std::fs::write(&state, "1").unwrap();
    let (e, took) = expect(&mut rx, Change::Down, b).await;
    assert!(e.reason.contains("exited 1"), "{e:?}");
    eprintln!("MISC down after {took:?}");
    std::fs::write(&state, "0").unwrap();
    let (e, _) = expect(&mut rx, Change::Up, b).await;
    assert_eq!(e.weight, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn misc_check_hung_script_group_killed_at_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // The script forks a child and both hang; both must die at misc_timeout.
    let path = script(
        dir.path(),
        "hang.sh",
        &format!(
            "sleep 30 &\necho $! > {p}\necho $$ >> {p}\nwait",
            p = pids.display()
        ),
    );
    let misc_timeout = Duration::from_millis(300);
    let spec = MiscCheck {
        misc_path: path,
        misc_timeout: Some(misc_timeout),
        ..Default::default()
    };
    let r = resolved("127.0.0.1:80".parse().unwrap(), ProbeSpec::MiscCheck(spec));
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    let t0 = std::time::Instant::now();
    let (e, _) = expect(&mut rx, Change::Down, Duration::from_secs(3)).await;
    let took = t0.elapsed();
    assert!(e.reason.contains("misc_timeout"), "{e:?}");
    assert!(
        took >= misc_timeout && took < misc_timeout + Duration::from_millis(700),
        "killed after {took:?}"
    );
    let latency = e.latency.unwrap();
    assert!(
        latency >= misc_timeout && latency < misc_timeout + Duration::from_millis(300),
        "{latency:?}"
    );
    h.shutdown().await;
    let listed = std::fs::read_to_string(&pids).unwrap();
    let alive = |pid: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.split_whitespace()
            .nth(2)
            .is_some_and(|s| s != "Z" && s != "X")
    };
    // SIGKILL is delivered asynchronously: allow the kernel a moment.
    let t0 = std::time::Instant::now();
    while listed.split_whitespace().any(alive) && t0.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pid in listed.split_whitespace() {
        assert!(!alive(pid), "pid {pid} of the script's group survived");
    }
}

#[tokio::test]
async fn tcp_half_open_never_completes_a_connection() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (raw TCP socket)");
        return;
    }
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spec = TcpCheck {
            half_open: true,
            ..Default::default()
        };
        let r = resolved(addr, ProbeSpec::TcpCheck(spec));
        let b = bound(&r);
        let (h, mut rx) = checks::spawn(vec![r]).unwrap();
        let (e, _) = expect(&mut rx, Change::Up, b).await;
        assert!(e.reason.contains("SYN/ACK"), "{e:?}");
        // Several probes later the application has still not seen a connection.
        let accepted = tokio::time::timeout(Duration::from_millis(700), listener.accept()).await;
        assert!(
            accepted.is_err(),
            "half-open check completed a handshake: {accepted:?}"
        );
        assert!(h.snapshot()[0].probes >= 3);
        drop(listener);
        let (e, took) = expect(&mut rx, Change::Down, b).await;
        assert!(e.reason.contains("RST"), "{e:?}");
        eprintln!("half-open {addr} down after {took:?}");
        let _relisten = tokio::net::TcpListener::bind(addr).await.unwrap();
        expect(&mut rx, Change::Up, b).await;
        h.shutdown().await;
    }
}

#[tokio::test]
async fn tcp_check_honours_connect_ip_port_and_bindto() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let spec = TcpCheck {
        connect: checks::spec::Connect {
            connect_ip: Some(addr.ip()),
            connect_port: Some(addr.port()),
            bindto: Some("127.0.0.2".parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    };
    // The real server itself is a documentation address that is never contacted.
    let r = resolved("192.0.2.99:80".parse().unwrap(), ProbeSpec::TcpCheck(spec));
    let b = bound(&r);
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    let (_, peer) = tokio::time::timeout(b, listener.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.2", "bindto sets the source");
    let (e, _) = expect(&mut rx, Change::Up, b).await;
    assert_eq!(e.target.id, "192.0.2.99:80");
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_check_times_out_when_syns_go_unanswered() {
    // A listener that never accepts, with its queue full: the kernel drops further SYNs, so
    // the probe's handshake never completes and connect_timeout decides.
    let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    l.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..3 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        fillers.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let timeout = Duration::from_millis(300);
    let mut r = resolved(addr, ProbeSpec::TcpCheck(TcpCheck::default()));
    r.timers.connect_timeout = timeout;
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    let (e, took) = expect(&mut rx, Change::Down, Duration::from_secs(2)).await;
    assert!(e.reason.contains("timeout after 0.300s"), "{e:?}");
    assert!(took >= timeout, "not before connect_timeout: {took:?}");
    let latency = e.latency.unwrap();
    assert!(
        latency >= timeout && latency < timeout + Duration::from_millis(200),
        "{latency:?}"
    );
    h.shutdown().await;
    drop(fillers);
}

/// 300 TCP checks at delay_loop 0.1 s on one scheduler: every one keeps probing, none runs
/// ahead of its schedule, and every probe is measured. On a loaded machine the scheduler may
/// be late (the rate and lateness are printed, not asserted); it must never probe faster
/// than `delay_loop` allows, nor leave a checker behind.
#[tokio::test]
async fn many_tcp_checks_keep_their_rate_and_schedule() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        }
    });
    let n = 300;
    let delay = Duration::from_millis(100);
    let checks = (0..n)
        .map(|_| {
            let mut r = resolved(addr, ProbeSpec::TcpCheck(TcpCheck::default()));
            r.timers.delay_loop = delay;
            r.timers.warmup = delay;
            r
        })
        .collect();
    let spawned = std::time::Instant::now();
    let (h, mut rx) = checks::spawn(checks).unwrap();
    for _ in 0..n {
        expect(&mut rx, Change::Up, Duration::from_secs(10)).await;
    }
    // Every checker reaches 10 probes: a scheduler that starved some would never get there.
    let want = 10;
    let deadline = spawned + Duration::from_secs(60);
    let after = loop {
        let s = h.snapshot();
        if s.iter().all(|c| c.probes >= want) || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = spawned.elapsed();
    let lateness = h.lateness();
    // Each probe waits delay_loop after the previous one's (scheduled) end, so no checker can
    // have started more than one probe per delay_loop since the spawn, however late the
    // scheduler was.
    let most = (elapsed.as_micros() / delay.as_micros()) as u64 + 1;
    for a in &after {
        assert!(
            (want..=most).contains(&a.probes),
            "checker {}: {} probes in {elapsed:?} (at least {want}, at most {most})",
            a.checker,
            a.probes
        );
        assert!(a.up && a.last_ok == Some(true), "{a:?}");
    }
    let total: u64 = after.iter().map(|a| a.probes).sum();
    assert!(
        lateness.started >= total,
        "{} probes measured for {total} made",
        lateness.started
    );
    let mut late = lateness.latest(total as usize);
    late.sort();
    let p99 = late[(late.len() - 1) * 99 / 100];
    eprintln!(
        "{total} probes in {elapsed:?} ({:.1}/s per checker, {:.1} on schedule), lateness p99 {p99:?}",
        total as f64 / n as f64 / elapsed.as_secs_f64(),
        1.0 / delay.as_secs_f64()
    );
    h.shutdown().await;
    accepts.abort();
}

/// How a successful TCP_CHECK ends the connection, seen by the server: FIN by default (read
/// returns end of stream, as with keepalived 2.2.7), an RST with `reset_close`.
#[tokio::test]
async fn tcp_check_closes_with_fin_or_with_reset_close_an_rst() {
    for reset_close in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let spec = TcpCheck {
            reset_close,
            ..Default::default()
        };
        let r = resolved(addr, ProbeSpec::TcpCheck(spec));
        let b = bound(&r);
        let (h, mut rx) = checks::spawn(vec![r]).unwrap();
        expect(&mut rx, Change::Up, b).await;
        h.shutdown().await;
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.read(&mut [0u8; 16]).map_err(|e| e.kind())
        })
        .await
        .unwrap();
        if reset_close {
            assert_eq!(read, Err(std::io::ErrorKind::ConnectionReset));
        } else {
            assert_eq!(read, Ok(0), "a FIN: end of stream");
        }
    }
}
