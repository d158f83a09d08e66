//! Long-lived flows through a VIP, as a client of an active/standby pair sees them: TCP
//! keep-alive connections with a request and its answer every 100 ms, and UDP flows (one
//! source port each) with a datagram and its echo as often. Each flow remembers which real
//! server answered first; a reset, a timeout (a lost byte TCP never recovers within it) or an
//! answer from another server breaks it.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::lab::Host;
use crate::lb::{in_netns, KeepAlive};

/// One flow's story.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlowReport {
    pub kind: &'static str,
    /// The real server of the first answer ("rs1", ...).
    pub server: String,
    pub exchanges: u64,
    /// When it was opened, in ms since the flows started.
    pub opened_ms: u64,
    /// Datagrams without an answer (UDP only: loss is allowed there, a change of server is not).
    pub unanswered: u64,
    /// What broke it, and when (ms since the flows started).
    pub broken: Option<(u64, String)>,
}

/// Flows running on a thread of their own until [`Flows::stop`].
pub struct Flows {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<FlowReport>>>,
    progress: Arc<Mutex<u64>>,
}

enum Flow {
    Tcp(KeepAlive),
    Udp(UdpSocket),
}

fn server_of(body: &str) -> String {
    body.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

impl Flows {
    /// Opens `tcp` keep-alive connections to `vip:80` and `udp` flows to `vip:udp_port` from
    /// `client`'s namespace, each with one exchange done, then keeps every flow exchanging
    /// every `period`.
    pub fn start(
        client: &Host,
        vip: IpAddr,
        udp_port: u16,
        tcp: usize,
        udp: usize,
        period: Duration,
    ) -> Result<Self> {
        let t0 = Instant::now();
        let mut flows: Vec<(Flow, FlowReport)> = Vec::new();
        let to = SocketAddr::new(vip, 80);
        for _ in 0..tcp {
            let mut c = in_netns(client, || KeepAlive::connect(to))??;
            let server = server_of(&c.get()?);
            flows.push((Flow::Tcp(c), report("tcp", server, t0)));
        }
        let to = SocketAddr::new(vip, udp_port);
        for _ in 0..udp {
            let any: IpAddr = if vip.is_ipv4() {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            };
            let s = in_netns(client, || UdpSocket::bind(SocketAddr::new(any, 0)))??;
            s.connect(to)?;
            s.set_read_timeout(Some(Duration::from_millis(300)))?;
            let server = server_of(
                &udp_exchange(&s, 3)
                    .ok_or_else(|| LabError::Other("no UDP answer from the VIP".into()))?,
            );
            flows.push((Flow::Udp(s), report("udp", server, t0)));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new(0));
        let (s2, p2) = (stop.clone(), progress.clone());
        let thread = std::thread::spawn(move || run(flows, s2, p2, period, t0));
        Ok(Self {
            stop,
            thread: Some(thread),
            progress,
        })
    }

    /// Rounds of exchanges completed so far.
    pub fn rounds(&self) -> u64 {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (bounded) for `n` more rounds.
    pub fn wait_rounds(&self, n: u64, timeout: Duration) -> bool {
        let target = self.rounds() + n;
        crate::wait::wait_until(timeout, Duration::from_millis(20), || {
            self.rounds() >= target
        })
    }

    /// Stops the flows and returns their reports.
    pub fn stop(mut self) -> Vec<FlowReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Flows {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn report(kind: &'static str, server: String, t0: Instant) -> FlowReport {
    FlowReport {
        kind,
        server,
        exchanges: 1,
        opened_ms: t0.elapsed().as_millis() as u64,
        unanswered: 0,
        broken: None,
    }
}

fn udp_exchange(s: &UdpSocket, tries: usize) -> Option<String> {
    let mut buf = [0u8; 256];
    for _ in 0..tries {
        if s.send(b"ping").is_err() {
            continue;
        }
        if let Ok(n) = s.recv(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    None
}

fn run(
    mut flows: Vec<(Flow, FlowReport)>,
    stop: Arc<AtomicBool>,
    progress: Arc<Mutex<u64>>,
    period: Duration,
    t0: Instant,
) -> Vec<FlowReport> {
    while !stop.load(Ordering::Relaxed) {
        let round = Instant::now();
        for (f, r) in flows.iter_mut().filter(|(_, r)| r.broken.is_none()) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let at = t0.elapsed().as_millis() as u64;
            let answer = match f {
                Flow::Tcp(c) => c.get().map_err(|e| e.to_string()),
                Flow::Udp(s) => match udp_exchange(s, 1) {
                    Some(a) => Ok(a),
                    None => {
                        r.unanswered += 1;
                        continue;
                    }
                },
            };
            match answer {
                Ok(body) if server_of(&body) == r.server => r.exchanges += 1,
                Ok(body) => r.broken = Some((at, format!("answered by {body:?}"))),
                Err(e) => r.broken = Some((at, e)),
            }
        }
        *progress.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        if let Some(rest) = period.checked_sub(round.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    flows.into_iter().map(|(_, r)| r).collect()
}
