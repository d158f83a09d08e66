//! Scheduler timer semantics (warmup, alpha, omega, dead interval, rise) with FILE_CHECK, which
//! needs no sockets.

mod common;

use std::time::{Duration, Instant};

use checks::spec::{resolve, CheckSpec, FileCheck, ProbeSpec, Target, TimerOverrides};
use checks::Change;
use common::*;

fn file_check(path: &std::path::Path, timers: TimerOverrides) -> checks::spec::Resolved {
    let mut c = CheckSpec::new(ProbeSpec::FileCheck(FileCheck {
        file: path.into(),
        weight: 0,
        reverse: false,
    }));
    c.timers = timers;
    resolve(
        &TimerOverrides::default(),
        &TimerOverrides::default(),
        &c,
        Target::new("192.0.2.1".parse().unwrap(), 80),
        1,
    )
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

#[tokio::test]
async fn warmup_spreads_first_checks() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v");
    std::fs::write(&f, "0").unwrap();
    let t = TimerOverrides {
        delay_loop: Some(Duration::from_secs(10)),
        warmup: ms(600),
        ..Default::default()
    };
    let (h, mut rx) = checks::spawn((0..30).map(|_| file_check(&f, t.clone())).collect()).unwrap();
    let t0 = Instant::now();
    let mut at = Vec::new();
    for _ in 0..30 {
        expect(&mut rx, Change::Up, Duration::from_secs(2)).await;
        at.push(t0.elapsed());
    }
    let (first, last) = (at[0], at[29]);
    eprintln!("first checks between {first:?} and {last:?}");
    assert!(
        last <= Duration::from_millis(900),
        "all within warmup: {last:?}"
    );
    assert!(
        last - first >= Duration::from_millis(200),
        "spread, not simultaneous: {first:?}..{last:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn alpha_starts_down_omega_reports_down_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v");
    std::fs::write(&f, "0").unwrap();
    let base = TimerOverrides {
        delay_loop: ms(100),
        warmup: ms(300),
        ..Default::default()
    };
    let alpha = TimerOverrides {
        alpha: Some(true),
        omega: Some(true),
        ..base.clone()
    };
    let (h, mut rx) = checks::spawn(vec![file_check(&f, base), file_check(&f, alpha)]).unwrap();
    let s = h.snapshot();
    assert!(s[0].up, "default: starts up");
    assert!(!s[1].up, "alpha: starts down");
    assert!(s.iter().all(|s| s.last_ok.is_none()));
    let mut ups = 0;
    while ups < 2 {
        expect(&mut rx, Change::Up, Duration::from_secs(1)).await;
        ups += 1;
    }
    assert!(h.snapshot().iter().all(|s| s.up));
    let json = h.snapshot_json();
    assert!(
        json.contains("\"consecutive_failures\": 0") && json.contains("\"kind\": \"FILE_CHECK\""),
        "{json}"
    );
    h.shutdown().await;
    let e = rx.recv().await.expect("omega event");
    assert_eq!((e.checker, e.change, e.up), (1, Change::Down, false));
    assert!(e.reason.contains("omega"));
    assert!(rx.recv().await.is_none(), "only the omega checker reports");
}

#[tokio::test]
async fn down_target_is_probed_at_dead_interval_and_rise_needs_successes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v");
    std::fs::write(&f, "1").unwrap();
    let t = TimerOverrides {
        delay_loop: ms(50),
        delay_before_retry: ms(50),
        dead_interval: ms(400),
        warmup: Some(Duration::ZERO),
        rise: Some(3),
        ..Default::default()
    };
    let (h, mut rx) = checks::spawn(vec![file_check(&f, t)]).unwrap();
    expect(&mut rx, Change::Down, Duration::from_secs(1)).await;
    let p0 = h.snapshot()[0].probes;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let s = h.snapshot()[0].clone();
    let during = s.probes - p0;
    assert!(
        (2..=3).contains(&during),
        "~1 s / 400 ms dead interval, not 1 s / 50 ms: {during}"
    );
    assert!(s.consecutive_failures >= 3 && s.last_ok == Some(false));
    std::fs::write(&f, "0").unwrap();
    let t0 = Instant::now();
    let (e, _) = expect(&mut rx, Change::Up, Duration::from_secs(2)).await;
    let took = t0.elapsed();
    // First success after ≤ 400 ms, then two more at delay_loop (50 ms) pace.
    assert!(
        took >= Duration::from_millis(90),
        "rise 3 needs three successes: {took:?}"
    );
    assert!(took <= Duration::from_millis(800), "{took:?}");
    assert!(e.up);
    h.shutdown().await;
}
