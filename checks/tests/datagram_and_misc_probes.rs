//! End-to-end: UDP_CHECK, DNS_CHECK, SMTP_CHECK, FILE_CHECK against servers this test opens on
//! loopback, and PING_CHECK inside a network namespace the test creates.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use checks::spec::{DnsCheck, FileCheck, PingCheck, ProbeSpec, SmtpCheck, UdpCheck};
use checks::Change;
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

/// Computes a UDP reply from the request.
type Answer = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// A UDP responder whose answer is computed from the request; closing it makes the port
/// unreachable.
struct Udp {
    addr: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
    answer: Answer,
}

impl Udp {
    async fn start(answer: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let answer: Answer = Arc::new(answer);
        let task = Some(tokio::spawn(udp_loop(sock, answer.clone())));
        Self { addr, task, answer }
    }

    fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    async fn restart(&mut self) {
        self.stop();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sock = UdpSocket::bind(self.addr).await.unwrap();
        self.task = Some(tokio::spawn(udp_loop(sock, self.answer.clone())));
    }
}

async fn udp_loop(sock: UdpSocket, answer: Answer) {
    let mut buf = [0u8; 2048];
    while let Ok((n, from)) = sock.recv_from(&mut buf).await {
        let _ = sock.send_to(&answer(&buf[..n]), from).await;
    }
}

#[tokio::test]
async fn udp_check_reply_data_and_port_unreachable() {
    let mut srv = Udp::start(|req| [b"PONG ".as_slice(), req].concat()).await;
    let spec = UdpCheck {
        payload: b"PING".to_vec(),
        require_reply: true,
        reply_data: Some(b"PONG PING".to_vec()),
        ..Default::default()
    };
    let r = resolved(srv.addr, ProbeSpec::UdpCheck(spec));
    let b = bound(&r);
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    expect(&mut rx, Change::Up, b).await;
    srv.stop();
    let (e, took) = expect(&mut rx, Change::Down, b).await;
    assert!(e.reason.contains("unreachable"), "{e:?}");
    eprintln!("UDP down after {took:?}");
    srv.restart().await;
    expect(&mut rx, Change::Up, b).await;
    h.shutdown().await;
}

#[tokio::test]
async fn dns_check_noerror_with_answer_up_servfail_down() {
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = healthy.clone();
    let srv = Udp::start(move |q| {
        let mut r = q.to_vec();
        r[2] |= 0x80;
        if flag.load(Ordering::SeqCst) {
            r[7] = 1; // one answer (the record itself is not inspected)
        } else {
            r[3] = (r[3] & 0xf0) | 2; // SERVFAIL
        }
        r
    })
    .await;
    let spec = DnsCheck {
        qtype: "A".into(),
        name: "www.example.test".into(),
        ..Default::default()
    };
    let r = resolved(srv.addr, ProbeSpec::DnsCheck(spec));
    let b = bound(&r);
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    expect(&mut rx, Change::Up, b).await;
    healthy.store(false, Ordering::SeqCst);
    let (e, _) = expect(&mut rx, Change::Down, b).await;
    assert_eq!(e.reason, "rcode 2");
    healthy.store(true, Ordering::SeqCst);
    expect(&mut rx, Change::Up, b).await;
    h.shutdown().await;
}

#[tokio::test]
async fn smtp_check_helo_accepted_or_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = healthy.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let ok = flag.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(b"220 test ESMTP\r\n").await;
                let mut line = String::new();
                let _ = r.read_line(&mut line).await;
                assert!(line.starts_with("HELO checker.test"), "{line}");
                let reply: &[u8] = if ok {
                    b"250-test\r\n250 hello\r\n"
                } else {
                    b"554 go away\r\n"
                };
                let _ = w.write_all(reply).await;
                line.clear();
                let _ = r.read_line(&mut line).await;
            });
        }
    });
    let spec = SmtpCheck {
        helo_name: Some("checker.test".into()),
        ..Default::default()
    };
    let r = resolved(addr, ProbeSpec::SmtpCheck(spec));
    let b = bound(&r);
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    expect(&mut rx, Change::Up, b).await;
    healthy.store(false, Ordering::SeqCst);
    let (e, _) = expect(&mut rx, Change::Down, b).await;
    assert!(e.reason.contains("554"), "{e:?}");
    healthy.store(true, Ordering::SeqCst);
    expect(&mut rx, Change::Up, b).await;
    h.shutdown().await;
    server.abort();
}

#[tokio::test]
async fn file_check_status_and_weight() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("value");
    std::fs::write(&f, "0\n").unwrap();
    let spec = FileCheck {
        file: f.clone(),
        weight: 3,
        reverse: false,
    };
    let r = resolved("127.0.0.1:80".parse().unwrap(), ProbeSpec::FileCheck(spec));
    let b = bound(&r);
    let (h, mut rx) = checks::spawn(vec![r]).unwrap();
    let (e, _) = expect(&mut rx, Change::Up, b).await;
    assert_eq!(e.weight, 1);
    std::fs::write(&f, "4\n").unwrap();
    let (e, _) = expect(&mut rx, Change::Weight, b).await;
    assert_eq!(e.weight, 13, "1 + 4 × 3");
    std::fs::write(&f, "-100\n").unwrap();
    expect(&mut rx, Change::Down, b).await;
    h.shutdown().await;
}

/// PING_CHECK in a fresh network namespace (this thread only): a documentation address on its
/// loopback answers; once the address is removed it does not.
#[test]
fn ping_check_follows_address_in_private_namespace() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (raw ICMP socket and a private network namespace)");
        return;
    }
    std::thread::spawn(|| {
        // The new namespace belongs to this thread (and the `ip` children it forks) alone and
        // vanishes with it.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare netns");
        let ip = |args: &[&str]| {
            let st = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["link", "set", "lo", "up"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for (addr, fam, cidr) in [
                ("192.0.2.1", "-4", "192.0.2.1/32"),
                ("2001:db8::1", "-6", "2001:db8::1/128"),
            ] {
                ip(&[fam, "addr", "add", cidr, "dev", "lo"]);
                let target = SocketAddr::new(addr.parse().unwrap(), 0);
                let r = resolved(target, ProbeSpec::PingCheck(PingCheck::default()));
                let b = bound(&r);
                let (h, mut rx) = checks::spawn(vec![r]).unwrap();
                let (e, _) = expect(&mut rx, Change::Up, b).await;
                assert_eq!(e.kind, "PING_CHECK");
                ip(&[fam, "addr", "del", cidr, "dev", "lo"]);
                let (e, took) = expect(&mut rx, Change::Down, b).await;
                eprintln!("PING {addr} down after {took:?}: {}", e.reason);
                ip(&[fam, "addr", "add", cidr, "dev", "lo"]);
                let (_, took) = expect(&mut rx, Change::Up, b).await;
                eprintln!("PING {addr} up after {took:?}");
                h.shutdown().await;
            }
        });
    })
    .join()
    .unwrap();
}
