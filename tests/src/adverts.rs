//! Live view of VRRP adverts on the lab LAN: an AF_PACKET socket in one namespace (normally
//! the client) timestamps every advert. Benches use it to act at a fixed phase after the
//! Master's advert and to time takeovers.

use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{LabError, Result};
use crate::lab::Host;

const IPPROTO_VRRP: u8 = 112;

/// One advert as seen on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvertSeen {
    pub at: Instant,
    /// Source MAC, lower-case `aa:bb:..` like `ip link` prints it.
    pub src_mac: String,
    pub src: IpAddr,
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
}

/// An ICMP / ICMPv6 echo reply as seen on the wire: who answered, from which MAC.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplySeen {
    pub at: Instant,
    pub src_mac: String,
    pub src: IpAddr,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<AdvertSeen>>,
    replies: Mutex<Vec<ReplySeen>>,
    cond: Condvar,
}

/// A running advert watcher (stops on drop).
pub struct AdvertWatch {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

fn mac_str(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parse an Ethernet frame carrying a VRRP advert (IPv4 or IPv6 without extension headers).
pub fn parse_frame(frame: &[u8], at: Instant) -> Option<AdvertSeen> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(14..)?;
    let (src, vrrp) = match ethertype {
        0x0800 => {
            if ip.len() < 20 || ip[9] != IPPROTO_VRRP {
                return None;
            }
            let ihl = (ip[0] as usize & 0x0f) * 4;
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            (IpAddr::V4(src), ip.get(ihl..)?)
        }
        0x86dd => {
            if ip.len() < 40 || ip[6] != IPPROTO_VRRP {
                return None;
            }
            let src: [u8; 16] = ip[8..24].try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(src)), ip.get(40..)?)
        }
        _ => return None,
    };
    if vrrp.len() < 4 {
        return None;
    }
    Some(AdvertSeen {
        at,
        src_mac: mac_str(&frame[6..12]),
        src,
        version: vrrp[0] >> 4,
        vrid: vrrp[1],
        priority: vrrp[2],
    })
}

/// Parse an Ethernet frame carrying an echo reply (ICMP type 0, ICMPv6 type 129).
pub fn parse_reply(frame: &[u8], at: Instant) -> Option<ReplySeen> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(14..)?;
    let src = match ethertype {
        0x0800 => {
            let ihl = (*ip.first()? as usize & 0x0f) * 4;
            if ip.len() < 20 || ip[9] != 1 || *ip.get(ihl)? != 0 {
                return None;
            }
            IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]))
        }
        0x86dd => {
            if ip.len() < 41 || ip[6] != 58 || ip[40] != 129 {
                return None;
            }
            let src: [u8; 16] = ip[8..24].try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(src))
        }
        _ => return None,
    };
    Some(ReplySeen {
        at,
        src_mac: mac_str(&frame[6..12]),
        src,
    })
}

impl AdvertWatch {
    /// Start watching all adverts that reach `host`.
    pub fn start(host: &Host) -> Result<Self> {
        let ns = File::open(host.netns_path())?;
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Result<()>>();
        let (sh, st) = (shared.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("lab-adverts".into())
            .spawn(move || {
                let sock = setns(&ns, CloneFlags::CLONE_NEWNET)
                    .map_err(LabError::from)
                    .and_then(|_| {
                        let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
                        let s =
                            Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(proto)))?;
                        s.set_read_timeout(Some(Duration::from_millis(20)))?;
                        Ok(s)
                    });
                let sock = match sock {
                    Ok(s) => {
                        let _ = tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let mut reader: &Socket = &sock;
                let mut buf = [0u8; 2048];
                while !st.load(Ordering::Relaxed) {
                    let Ok(n) = reader.read(&mut buf) else {
                        continue;
                    };
                    let now = Instant::now();
                    if let Some(a) = parse_frame(&buf[..n], now) {
                        sh.seen.lock().unwrap_or_else(|e| e.into_inner()).push(a);
                        sh.cond.notify_all();
                    } else if let Some(r) = parse_reply(&buf[..n], now) {
                        sh.replies.lock().unwrap_or_else(|e| e.into_inner()).push(r);
                    }
                }
            })?;
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| LabError::Other("advert watcher did not start".into()))??;
        Ok(Self {
            shared,
            stop,
            handle: Some(handle),
        })
    }

    /// Everything seen so far.
    pub fn snapshot(&self) -> Vec<AdvertSeen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Wait (bounded) for the first advert after `after` that satisfies `pred`.
    pub fn wait_for(
        &self,
        after: Instant,
        timeout: Duration,
        pred: impl Fn(&AdvertSeen) -> bool,
    ) -> Option<AdvertSeen> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.shared.seen.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(a) = seen.iter().find(|a| a.at > after && pred(a)) {
                return Some(a.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            seen = self
                .shared
                .cond
                .wait_timeout(seen, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The first echo reply after `after` satisfying `pred` (no wait: what was seen so far).
    pub fn first_reply(
        &self,
        after: Instant,
        pred: impl Fn(&ReplySeen) -> bool,
    ) -> Option<ReplySeen> {
        self.shared
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|r| r.at > after && pred(r))
            .cloned()
    }

    /// The first advert after `after` satisfying `pred`, seen so far (no wait).
    pub fn first_after(
        &self,
        after: Instant,
        pred: impl Fn(&AdvertSeen) -> bool,
    ) -> Option<AdvertSeen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|a| a.at > after && pred(a))
            .cloned()
    }

    /// Last advert before `before` satisfying `pred`.
    pub fn last_before(
        &self,
        before: Instant,
        pred: impl Fn(&AdvertSeen) -> bool,
    ) -> Option<AdvertSeen> {
        self.snapshot()
            .into_iter()
            .rfind(|a| a.at <= before && pred(a))
    }
}

/// Sends crafted VRRP packets from one lab host: a raw IP socket (protocol 112) opened in the
/// host's namespace, multicast out of its lab interface with TTL 255, as a router would.
pub struct AdvertSender {
    sock: Socket,
    /// The host's address: the packets' source.
    pub src: Ipv4Addr,
}

impl AdvertSender {
    /// A sender on `host`, from its IPv4 address.
    pub fn open(host: &Host) -> Result<Self> {
        let IpAddr::V4(src) = host.v4 else {
            return Err(LabError::Other(format!(
                "{} has no IPv4 address",
                host.name
            )));
        };
        let ns = File::open(host.netns_path())?;
        // The socket keeps the namespace it was made in: make it on a thread that joined it.
        let sock = std::thread::spawn(move || -> Result<Socket> {
            setns(&ns, CloneFlags::CLONE_NEWNET)?;
            let s = Socket::new(
                Domain::IPV4,
                Type::RAW,
                Some(Protocol::from(i32::from(IPPROTO_VRRP))),
            )?;
            s.set_multicast_ttl_v4(255)?;
            s.set_ttl_v4(255)?;
            s.set_multicast_if_v4(&src)?;
            s.set_multicast_loop_v4(false)?;
            Ok(s)
        })
        .join()
        .map_err(|_| LabError::Other("advert sender thread panicked".into()))??;
        Ok(Self { sock, src })
    }

    /// TTL of the packets sent from now on (255 unless changed: what VRRP requires).
    pub fn set_ttl(&self, ttl: u32) -> Result<()> {
        self.sock.set_multicast_ttl_v4(ttl)?;
        Ok(())
    }

    /// Sends one VRRP payload (the kernel adds the IP header) to 224.0.0.18.
    pub fn send(&self, payload: &[u8]) -> Result<()> {
        let dst = std::net::SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 18), 0);
        self.sock.send_to(payload, &dst.into())?;
        Ok(())
    }

    /// Encodes `advert` from this sender to the VRRP group and sends it.
    pub fn send_advert(&self, advert: &vrrp_proto::packet::Advert) -> Result<()> {
        let dst = IpAddr::V4(vrrp_proto::packet::MCAST_V4);
        self.send(&advert.encode(IpAddr::V4(self.src), dst))
    }
}

impl Drop for AdvertWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_vrrp_frame() {
        let mut f = vec![0x01, 0, 0x5e, 0, 0, 0x12, 0, 0, 0x5e, 0, 1, 51, 0x08, 0x00];
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[9] = 112;
        ip[12..16].copy_from_slice(&[192, 0, 2, 1]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x31, 51, 150, 1, 0, 10, 0, 0]);
        let a = parse_frame(&f, Instant::now()).expect("advert");
        assert_eq!(a.src, IpAddr::from([192, 0, 2, 1]));
        assert_eq!((a.version, a.vrid, a.priority), (3, 51, 150));
        assert_eq!(a.src_mac, "00:00:5e:00:01:33");
        f[14 + 9] = 1; // ICMP, not VRRP
        assert!(parse_frame(&f, Instant::now()).is_none());
    }
}
