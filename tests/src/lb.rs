//! Balancer labs: a client, a balancer running `lbcore::dataplane` (in this
//! process, on threads started inside the balancer's namespace) and real
//! servers running nginx (HTTP, each answering with its name and the peer
//! address it saw) and a small UDP echo server.
//!
//! Two address plans (all on the lab bridge):
//! - [`Plan::Nat`]: client 203.0.113.10, VIP 203.0.113.100 on the balancer
//!   (203.0.113.1 and 198.51.100.1), real servers 198.51.100.11.. routing back
//!   through 198.51.100.1. Used for NAT and one-arm NAT.
//! - [`Plan::Direct`]: everything in 192.0.2.0/24, VIP 192.0.2.100; real
//!   servers hold the VIP on `lo` (DR) or on `tunl0` (TUN) with
//!   arp_ignore=1/arp_announce=2.
//!
//! Every lab is dual-stack (addresses `nodad`): NAT plans put the client in
//! 2001:db8:1::/64 (VIP 2001:db8:1::100) and the real servers in
//! 2001:db8:2::/64 routed through 2001:db8:2::1; DR/TUN plans use
//! 2001:db8::/64 with VIP 2001:db8::100 (on `lo` or `tun0` of the real servers,
//! which IPv6 does not announce on eth0). nginx and the UDP echo answer on both.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use lbcore::dataplane::{Dataplane, DataplaneConfig};
use lbcore::persist::PersistTable;
use lbcore::service::{Controller, SharedTable};
use lbcore::spec::ServiceSpec;
use nix::sched::{setns, CloneFlags};
use socket2::{Domain, Socket, Type};

use crate::error::{LabError, Result};
use crate::lab::{Host, Lab};
use crate::process::LabChild;

/// Address plan of a balancer lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Client and real servers in different subnets, routed through the balancer.
    Nat,
    /// One subnet; real servers hold the VIP on `lo`.
    Dr,
    /// One subnet; real servers hold the VIP on an IP-in-IP `tunl0`.
    Tun,
}

/// Port nginx listens on behind NAT (the VIP's port 80 is mapped to it).
pub const NAT_RS_PORT: u16 = 8080;
/// UDP echo port on every real server.
pub const UDP_PORT: u16 = 5353;

/// Runs `f` with the calling thread inside `host`'s network namespace, then
/// switches back (also when `f` panics).
pub fn in_netns<T>(host: &Host, f: impl FnOnce() -> T) -> Result<T> {
    struct Back(File);
    impl Drop for Back {
        fn drop(&mut self) {
            let _ = setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET);
        }
    }
    let home = Back(File::open("/proc/thread-self/ns/net")?);
    let ns = File::open(host.netns_path())?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)?;
    let r = f();
    drop(home);
    Ok(r)
}

/// A running balancer lab.
#[derive(Debug)]
pub struct LbLab {
    pub lab: Lab,
    pub plan: Plan,
    pub vip: Ipv4Addr,
    /// Real server addresses, in order (`rs1`, `rs2`, ...).
    pub rs: Vec<Ipv4Addr>,
    /// Extra client source addresses (for per-client stickiness).
    pub clients: Vec<Ipv4Addr>,
    /// The balancer's address on the real servers' side.
    pub lb_addr: Ipv4Addr,
    /// The IPv6 virtual address, real servers, client and balancer (real servers' side).
    pub vip6: Ipv6Addr,
    pub rs6: Vec<Ipv6Addr>,
    pub client6: Ipv6Addr,
    pub lb_addr6: Ipv6Addr,
    nginx: Vec<LabChild>,
    udp: Vec<(Arc<AtomicBool>, JoinHandle<()>)>,
}

fn nginx_conf(dir: &Path, name: &str, port: u16) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx.err;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n\
           fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n\
           keepalive_requests 100000;\n\
           server {{\n    listen {port} reuseport backlog=4096;\n\
               listen [::]:{port} reuseport backlog=4096;\n\
               location / {{ default_type text/plain; return 200 \"{name} $remote_addr\\n\"; }}\n  }}\n}}\n"
    )
}

impl LbLab {
    /// Builds the plan with `n` real servers (and `extra_clients` more client addresses).
    pub fn new(plan: Plan, n: usize, extra_clients: usize) -> Result<Self> {
        Self::build(plan, n, extra_clients, false, true)
    }

    /// Like [`LbLab::new`] with a second balancer `lb2`, for failovers: the addresses that
    /// move with the Master ([`LbLab::moving`]) start on `lb`. DR/TUN: `lb2` is 192.0.2.2;
    /// NAT: the balancers have their own addresses (203.0.113.1/.2, 198.51.100.2/.3,
    /// 2001:db8:1::2/::3, 2001:db8:2::2/::3) and the real servers' gateway 198.51.100.1
    /// (2001:db8:2::1) moves, as keepalived LVS-NAT setups make it a virtual address.
    pub fn new_pair(plan: Plan, n: usize) -> Result<Self> {
        Self::build(plan, n, 0, true, true)
    }

    /// A pair `lb` / `lb2` for two daemons: nobody holds the moving addresses yet, VRRP
    /// will float them.
    pub fn new_vrrp_pair(plan: Plan, n: usize) -> Result<Self> {
        Self::build(plan, n, 0, true, false)
    }

    /// The addresses (with prefix length) that move with the Master: the VIPs and, behind
    /// NAT, the real servers' gateway (the one-arm NAT source too).
    pub fn moving(&self) -> Vec<String> {
        let mut v = vec![format!("{}/32", self.vip), format!("{}/128", self.vip6)];
        if self.plan == Plan::Nat {
            v.push(format!("{}/24", self.lb_addr));
            v.push(format!("{}/64", self.lb_addr6));
        }
        v
    }

    /// The moving addresses as the dataplane's preferred one-arm NAT sources.
    pub fn snat_sources(&self) -> Vec<(IpAddr, u8)> {
        self.moving()
            .iter()
            .filter_map(|c| {
                let (a, p) = c.split_once('/')?;
                Some((a.parse().ok()?, p.parse().ok()?))
            })
            .collect()
    }

    /// Moves the moving addresses from `from` to `to` and points the client's and the real
    /// servers' neighbour entries at `to`, as its gratuitous ARP and unsolicited neighbour
    /// advertisements would.
    pub fn move_addrs(&self, from: &Host, to: &Host) -> Result<()> {
        for a in self.moving() {
            from.addr_del(&a)?;
            to.addr_add(&a)?;
        }
        let mac = to.mac()?;
        let mut peers = vec![(
            self.client(),
            vec![self.vip.to_string(), self.vip6.to_string()],
        )];
        if self.plan == Plan::Nat {
            for i in 0..self.rs.len() {
                let h = self.lab.host(&format!("rs{}", i + 1));
                peers.push((h, vec![self.lb_addr.to_string(), self.lb_addr6.to_string()]));
            }
        }
        for (h, addrs) in peers {
            for a in addrs {
                let out = h.exec(
                    "ip",
                    &["neigh", "replace", &a, "lladdr", &mac, "dev", "eth0"],
                )?;
                if !out.status.success() {
                    return Err(LabError::Other(format!(
                        "{}: ip neigh replace {a}: {}",
                        h.name,
                        String::from_utf8_lossy(&out.stderr)
                    )));
                }
            }
        }
        Ok(())
    }

    fn build(
        plan: Plan,
        n: usize,
        extra_clients: usize,
        pair: bool,
        vip_on_lb: bool,
    ) -> Result<Self> {
        let mut b = Lab::builder();
        let (vip, lb_addr, rs, clients): (Ipv4Addr, Ipv4Addr, Vec<Ipv4Addr>, Vec<Ipv4Addr>) =
            match plan {
                Plan::Nat => (
                    Ipv4Addr::new(203, 0, 113, 100),
                    Ipv4Addr::new(198, 51, 100, 1),
                    (0..n)
                        .map(|i| Ipv4Addr::new(198, 51, 100, 11 + i as u8))
                        .collect(),
                    (0..extra_clients)
                        .map(|i| Ipv4Addr::new(203, 0, 113, 20 + i as u8))
                        .collect(),
                ),
                Plan::Dr | Plan::Tun => (
                    Ipv4Addr::new(192, 0, 2, 100),
                    Ipv4Addr::new(192, 0, 2, 1),
                    (0..n)
                        .map(|i| Ipv4Addr::new(192, 0, 2, 11 + i as u8))
                        .collect(),
                    (0..extra_clients)
                        .map(|i| Ipv4Addr::new(192, 0, 2, 60 + i as u8))
                        .collect(),
                ),
            };
        let (client, lb, lb2) = match plan {
            Plan::Nat => ("203.0.113.10/24", "203.0.113.1/24", "203.0.113.2/24"),
            _ => ("192.0.2.50/24", "192.0.2.1/24", "192.0.2.2/24"),
        };
        b = b
            .host("client", client, "2001:db8::50/64")
            .host("lb", lb, "2001:db8::1/64");
        if pair {
            b = b.host("lb2", lb2, "2001:db8::2/64");
        }
        for (i, a) in rs.iter().enumerate() {
            b = b.host(
                &format!("rs{}", i + 1),
                &format!("{a}/24"),
                &format!("2001:db8::{}/64", 11 + i),
            );
        }
        let lab = b.build()?;
        let lbh = lab.host("lb");
        if vip_on_lb {
            lbh.addr_add(&format!("{vip}/32"))?;
        }
        if plan == Plan::Nat && pair {
            // Own addresses on both sides; the gateway moves (see `moving`).
            for (h, n) in [("lb", 2), ("lb2", 3)] {
                let h = lab.host(h);
                h.addr_add(&format!("198.51.100.{n}/24"))?;
                h.addr_add(&format!("2001:db8:1::{n}/64"))?;
                h.addr_add(&format!("2001:db8:2::{n}/64"))?;
            }
            if vip_on_lb {
                lbh.addr_add("198.51.100.1/24")?;
                lbh.addr_add("2001:db8:2::1/64")?;
            }
        } else if plan == Plan::Nat {
            lbh.addr_add("198.51.100.1/24")?;
        }
        let v6 = |s: &str| s.parse::<Ipv6Addr>().expect("v6 literal");
        let (vip6, lb_addr6, client6, rs6): (Ipv6Addr, Ipv6Addr, Ipv6Addr, Vec<Ipv6Addr>) =
            match plan {
                Plan::Nat => (
                    v6("2001:db8:1::100"),
                    v6("2001:db8:2::1"),
                    v6("2001:db8:1::10"),
                    (0..n)
                        .map(|i| v6(&format!("2001:db8:2::{}", 11 + i)))
                        .collect(),
                ),
                Plan::Dr | Plan::Tun => (
                    v6("2001:db8::100"),
                    v6("2001:db8::1"),
                    v6("2001:db8::50"),
                    (0..n)
                        .map(|i| v6(&format!("2001:db8::{}", 11 + i)))
                        .collect(),
                ),
            };
        if vip_on_lb {
            lbh.addr_add(&format!("{vip6}/128"))?;
        }
        if plan == Plan::Nat {
            if !pair {
                lbh.addr_add("2001:db8:1::1/64")?;
                lbh.addr_add("2001:db8:2::1/64")?;
            }
            lab.host("client").addr_add("2001:db8:1::10/64")?;
            for (i, a) in rs6.iter().enumerate() {
                let h = lab.host(&format!("rs{}", i + 1));
                h.addr_add(&format!("{a}/64"))?;
                let out = h.exec(
                    "ip",
                    &["-6", "route", "add", "default", "via", "2001:db8:2::1"],
                )?;
                if !out.status.success() {
                    return Err(LabError::Other(format!(
                        "{}: v6 default route: {}",
                        h.name,
                        String::from_utf8_lossy(&out.stderr)
                    )));
                }
            }
        }
        // The balancer is not a router: NAT replies reach the kernel only to be dropped.
        for h in lab.hosts().iter().filter(|h| h.name.starts_with("lb")) {
            h.exec(
                "sysctl",
                &[
                    "-q",
                    "-w",
                    "net.ipv4.ip_forward=0",
                    "net.ipv6.conf.all.forwarding=0",
                ],
            )?;
        }
        for c in &clients {
            lab.host("client").addr_add(&format!("{c}/24"))?;
        }
        // Like a wire: senders segment themselves (no TSO/GSO super-frames on the veths).
        for h in lab.hosts().iter().filter(|h| h.name != "lb") {
            in_netns(h, || -> std::io::Result<()> {
                use lbcore::dataplane::offload::{set, Offload};
                set("eth0", Offload::Tso, false)?;
                set("eth0", Offload::Gso, false)
            })??;
        }
        let mut me = Self {
            plan,
            vip,
            rs: rs.clone(),
            clients,
            lb_addr,
            vip6,
            rs6,
            client6,
            lb_addr6,
            nginx: Vec::new(),
            udp: Vec::new(),
            lab,
        };
        for (i, _) in rs.iter().enumerate() {
            let name = format!("rs{}", i + 1);
            let h = me.lab.host(&name).clone();
            let sh = |args: &str| -> Result<()> {
                let out = h.exec("sh", &["-c", args])?;
                if !out.status.success() {
                    return Err(LabError::Other(format!(
                        "{name}: {args}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )));
                }
                Ok(())
            };
            match plan {
                Plan::Nat => sh("ip route add default via 198.51.100.1")?,
                Plan::Dr => sh(&format!(
                    "ip addr add {vip}/32 dev lo && ip addr add {vip6}/128 dev lo nodad && sysctl -q -w net.ipv4.conf.all.arp_ignore=1 \
                     net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.eth0.arp_ignore=1 \
                     net.ipv4.conf.eth0.arp_announce=2"
                ))?,
                // The VIP goes on the decapsulator's tun0 (see `ipip_decap`).
                Plan::Tun => sh("sysctl -q -w net.ipv4.conf.all.arp_ignore=1 \
                     net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.all.rp_filter=0 \
                     net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0")?,
            }
            let port = if plan == Plan::Nat { NAT_RS_PORT } else { 80 };
            let conf = h.dir.join("nginx.conf");
            std::fs::write(&conf, nginx_conf(&h.dir, &name, port))?;
            let log = h.dir.join("nginx.log");
            let conf_s = conf.display().to_string();
            let prefix = h.dir.display().to_string();
            me.nginx.push(h.spawn(
                "nginx",
                &["-p", prefix.as_str(), "-c", conf_s.as_str()],
                Some(&log),
            )?);
            // A UDP server answers from the address it is bound to: behind DR/TUN
            // that must be the VIP (bound to 0.0.0.0 it would answer from its own).
            let bind: Ipv4Addr = if plan == Plan::Nat {
                Ipv4Addr::UNSPECIFIED
            } else {
                vip
            };
            // Its own address behind NAT: bound to [::] it would answer from
            // 2001:db8::1x (longest match with the client's 2001:db8:1::10).
            let bind6: Ipv6Addr = if plan == Plan::Nat { me.rs6[i] } else { vip6 };
            if plan == Plan::Tun {
                me.udp.push(ipip_decap(&h, vip, vip6)?);
            }
            me.udp.push(udp_echo(&h, &name, bind.into())?);
            me.udp.push(udp_echo(&h, &name, bind6.into())?);
        }
        // nginx is up once every real server answers on its own address.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        for (i, a) in me.rs.clone().iter().enumerate() {
            let port = if plan == Plan::Nat { NAT_RS_PORT } else { 80 };
            let via = if plan == Plan::Nat { "lb" } else { "client" };
            loop {
                let ok = in_netns(me.lab.host(via), || {
                    http_get(SocketAddr::new((*a).into(), port), None).is_ok()
                })?;
                if ok {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(LabError::Timeout(
                        Duration::from_secs(10),
                        format!("nginx on rs{}", i + 1),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(me)
    }

    /// Stops real server `i`'s (0-based) HTTP server, as a crash of the application would.
    pub fn stop_http(&mut self, i: usize) {
        if let Some(n) = self.nginx.get_mut(i) {
            n.stop(Duration::from_secs(2));
        }
    }

    pub fn client(&self) -> &Host {
        self.lab.host("client")
    }

    pub fn lb(&self) -> &Host {
        self.lab.host("lb")
    }

    /// The client's primary address.
    pub fn client_addr(&self) -> Ipv4Addr {
        match self.client().v4 {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => unreachable!("v4 plan"),
        }
    }

    /// Starts the dataplane in the balancer's namespace.
    pub fn start(
        &self,
        cfg: DataplaneConfig,
        table: Arc<SharedTable>,
        persist: Arc<PersistTable>,
    ) -> Result<Balancer> {
        self.start_on(self.lb(), cfg, table, persist)
    }

    /// Starts the dataplane in `host`'s namespace (`lb` or `lb2`).
    pub fn start_on(
        &self,
        host: &Host,
        mut cfg: DataplaneConfig,
        table: Arc<SharedTable>,
        persist: Arc<PersistTable>,
    ) -> Result<Balancer> {
        cfg.ifaces = vec!["eth0".into()];
        let dp = in_netns(host, || Dataplane::start(cfg, table.clone(), persist))?
            .map_err(|e| LabError::Other(format!("dataplane: {e}")))?;
        if !dp.wait_resolved(Duration::from_secs(5)) {
            return Err(LabError::Other(format!(
                "real servers not resolved: {:?}",
                dp.hops()
            )));
        }
        Ok(Balancer {
            dp: Some(dp),
            lb: host.clone(),
            table,
        })
    }

    /// HTTP GET to the VIP (port 80) from the client, optionally from `src`.
    pub fn get(&self, src: Option<Ipv4Addr>) -> Result<String> {
        let vip = SocketAddr::new(self.vip.into(), 80);
        in_netns(self.client(), || http_get(vip, src))?
    }

    /// HTTP GET to the IPv6 VIP (port 80) from the client's IPv6 address.
    pub fn get6(&self) -> Result<String> {
        let vip = SocketAddr::new(self.vip6.into(), 80);
        let src = Some(self.client6.into());
        in_netns(self.client(), || http_get_from(vip, src))?
    }

    /// One UDP request to the IPv6 VIP's `UDP_PORT` from the client (see [`LbLab::udp`]).
    pub fn udp6(&self, sport: u16) -> Result<String> {
        self.udp_to(self.vip6.into(), self.client6.into(), sport)
    }

    /// One UDP request to the VIP's `UDP_PORT` from the client; the answer
    /// (which must come from the VIP) names the real server.
    pub fn udp(&self, sport: u16) -> Result<String> {
        self.udp_to(self.vip.into(), self.client().v4, sport)
    }

    fn udp_to(&self, vip: IpAddr, client: IpAddr, sport: u16) -> Result<String> {
        let vip = SocketAddr::new(vip, UDP_PORT);
        let src = SocketAddr::new(client, sport);
        in_netns(self.client(), || -> Result<String> {
            let s = UdpSocket::bind(src)?;
            s.connect(vip)?; // only datagrams from the VIP are accepted
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut buf = [0u8; 256];
            for _ in 0..3 {
                s.send(b"hello")?;
                if let Ok(n) = s.recv(&mut buf) {
                    return Ok(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
            Err(LabError::Other("no UDP answer from the VIP".into()))
        })?
    }
}

impl Drop for LbLab {
    fn drop(&mut self) {
        for (stop, _) in &self.udp {
            stop.store(true, Ordering::Relaxed);
        }
        for (_, h) in self.udp.drain(..) {
            let _ = h.join();
        }
        self.nginx.clear();
    }
}

/// A running dataplane; stopped (and its nftables rules removed) on drop.
#[derive(Debug)]
pub struct Balancer {
    dp: Option<Dataplane>,
    lb: Host,
    pub table: Arc<SharedTable>,
}

impl Balancer {
    pub fn dp(&self) -> &Dataplane {
        self.dp.as_ref().expect("running")
    }

    /// Publishes the controller's current snapshot (after a health event).
    pub fn publish(&self, c: &Controller) {
        self.table.store(c.table());
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(dp) = self.dp.take() {
            let _ = in_netns(&self.lb, || dp.stop());
        }
    }
}

/// An HTTP/1.1 keep-alive connection (for requests on one TCP connection).
#[derive(Debug)]
pub struct KeepAlive(TcpStream);

impl KeepAlive {
    /// Connects from the calling thread's namespace (the socket stays in it).
    pub fn connect(to: SocketAddr) -> Result<Self> {
        let t = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        t.set_read_timeout(Some(Duration::from_secs(3)))?;
        Ok(Self(t))
    }

    /// The client's port of the connection.
    pub fn local_port(&self) -> Result<u16> {
        Ok(self.0.local_addr()?.port())
    }

    /// One GET on the connection; returns the body.
    pub fn get(&mut self) -> Result<String> {
        self.0.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if self.0.read(&mut byte)? == 0 || head.len() > 8192 {
                return Err(LabError::Other("connection closed mid-response".into()));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| LabError::Other(format!("no content-length: {head:?}")))?;
        let mut body = vec![0u8; len];
        self.0.read_exact(&mut body)?;
        Ok(String::from_utf8_lossy(&body).trim().to_string())
    }
}

/// An HTTP/1.0 POST of `size` bytes; returns the body of the answer.
pub fn http_post(to: SocketAddr, size: usize) -> Result<String> {
    let mut t = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
    t.set_read_timeout(Some(Duration::from_secs(10)))?;
    t.set_write_timeout(Some(Duration::from_secs(10)))?;
    t.write_all(
        format!("POST / HTTP/1.0\r\nHost: lab\r\nContent-Length: {size}\r\n\r\n").as_bytes(),
    )?;
    t.write_all(&vec![b'x'; size])?;
    let mut resp = String::new();
    t.read_to_string(&mut resp)?;
    resp.split_once("\r\n\r\n")
        .filter(|_| resp.starts_with("HTTP/1.1 200"))
        .map(|(_, b)| b.trim().to_string())
        .ok_or_else(|| LabError::Other(format!("bad HTTP response {resp:?}")))
}

/// A minimal HTTP/1.0 GET; returns the body.
pub fn http_get(to: SocketAddr, src: Option<Ipv4Addr>) -> Result<String> {
    http_get_from(to, src.map(IpAddr::from))
}

/// [`http_get`] over IPv4 or IPv6 (the family of `to`), optionally from `src`.
pub fn http_get_from(to: SocketAddr, src: Option<IpAddr>) -> Result<String> {
    let s = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    if let Some(a) = src {
        s.bind(&SocketAddr::new(a, 0).into())?;
    }
    s.connect_timeout(&to.into(), Duration::from_secs(3))?;
    let mut t: TcpStream = s.into();
    t.set_read_timeout(Some(Duration::from_secs(3)))?;
    t.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")?;
    let mut resp = String::new();
    t.read_to_string(&mut resp)?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .ok_or_else(|| LabError::Other(format!("bad HTTP response {resp:?}")))?;
    if !resp.starts_with("HTTP/1.1 200") {
        return Err(LabError::Other(format!("HTTP status: {resp:?}")));
    }
    Ok(body)
}

/// The real server's end of the IP-in-IP tunnel, in user space because this
/// kernel has no `ipip` module: a raw IPPROTO_IPIP socket receives the
/// encapsulated packets and writes the inner datagram into a `tun0` device
/// holding the VIP, where the real server's stack takes it as if it had
/// arrived directly (rp_filter off: the client is routed via eth0).
/// IPv6-in-IPv6 (next header 41) takes the same way: an IPv6 raw socket hands
/// over the payload, which is the inner datagram.
fn ipip_decap(
    host: &Host,
    vip: Ipv4Addr,
    vip6: Ipv6Addr,
) -> Result<(Arc<AtomicBool>, JoinHandle<()>)> {
    let ns = File::open(host.netns_path())?;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let h = std::thread::spawn(move || {
        let setup = || -> std::io::Result<(File, Socket, Socket)> {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)?;
            let tun = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")?;
            // SAFETY: ifreq is plain data; the name is NUL-terminated within
            // IFNAMSIZ; TUNSETIFF reads the struct during the call only.
            unsafe {
                use std::os::fd::AsRawFd;
                let mut req: libc::ifreq = std::mem::zeroed();
                for (d, s) in req.ifr_name.iter_mut().zip(b"tun0") {
                    *d = *s as libc::c_char;
                }
                req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
                if libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut req) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let raw = Socket::new(Domain::IPV4, Type::RAW, Some(socket2::Protocol::from(4)))?;
            raw.set_nonblocking(true)?;
            let raw6 = Socket::new(Domain::IPV6, Type::RAW, Some(socket2::Protocol::from(41)))?;
            raw6.set_nonblocking(true)?;
            Ok((tun, raw, raw6))
        };
        let (mut tun, raw, raw6) = match setup() {
            Ok(x) => {
                let _ = tx.send(Ok(()));
                x
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 65536];
        while !s2.load(Ordering::Relaxed) {
            // Both sockets at once: one waiting on the other would cap the tunnel at a
            // packet per timeout.
            {
                use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
                use std::os::fd::AsFd;
                let mut fds = [
                    PollFd::new(raw.as_fd(), PollFlags::POLLIN),
                    PollFd::new(raw6.as_fd(), PollFlags::POLLIN),
                ];
                let _ = poll(&mut fds, PollTimeout::from(25u8));
            }
            while let Ok(n) = raw6.recv(&mut buf) {
                // SAFETY: recv initialised the first `n` bytes.
                let pkt: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
                if n >= 40 {
                    let _ = tun.write_all(pkt);
                }
            }
            while let Ok(n) = raw.recv(&mut buf) {
                // SAFETY: recv initialised the first `n` bytes.
                let pkt: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
                let ihl = (pkt.first().copied().unwrap_or(0) & 0x0f) as usize * 4;
                if n > ihl + 20 {
                    let _ = tun.write_all(&pkt[ihl..]);
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .map_err(|_| LabError::Other("ipip decapsulator did not start".into()))??;
    let out = host.exec(
        "sh",
        &[
            "-c",
            &format!(
                "ip link set tun0 up && ip addr add {vip}/32 dev tun0 && \
                 ip addr add {vip6}/128 dev tun0 nodad && \
                 sysctl -q -w net.ipv4.conf.tun0.rp_filter=0"
            ),
        ],
    )?;
    if !out.status.success() {
        return Err(LabError::Other(format!(
            "tun0: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok((stop, h))
}

/// A UDP server in `host`'s namespace answering "<name> <peer address>".
fn udp_echo(host: &Host, name: &str, bind: IpAddr) -> Result<(Arc<AtomicBool>, JoinHandle<()>)> {
    let ns = File::open(host.netns_path())?;
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, name) = (stop.clone(), name.to_string());
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let sock = setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)
            .and_then(|_| {
                // IPv6 only, so [::] does not collide with the IPv4 socket's port.
                let s = Socket::new(Domain::for_address((bind, 0).into()), Type::DGRAM, None)?;
                if bind.is_ipv6() {
                    s.set_only_v6(true)?;
                }
                s.bind(&SocketAddr::new(bind, UDP_PORT).into())?;
                Ok(UdpSocket::from(s))
            })
            .and_then(|s| {
                s.set_read_timeout(Some(Duration::from_millis(50)))?;
                Ok(s)
            });
        let s = match sock {
            Ok(s) => {
                let _ = tx.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let mut buf = [0u8; 2048];
        while !s2.load(Ordering::Relaxed) {
            if let Ok((_, peer)) = s.recv_from(&mut buf) {
                let _ = s.send_to(format!("{name} {}", peer.ip()).as_bytes(), peer);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .map_err(|_| LabError::Other("udp echo did not start".into()))??;
    Ok((stop, h))
}

/// Service spec for the lab's VIP with the real servers, one per address.
pub fn service(lab: &LbLab, proto: lbcore::spec::Protocol, port: u16) -> ServiceSpec {
    use lbcore::spec::{RealServerSpec, ServiceKey};
    let rs_port = match (lab.plan, proto) {
        (Plan::Nat, lbcore::spec::Protocol::Tcp) => Some(NAT_RS_PORT),
        _ => Some(port),
    };
    ServiceSpec {
        key: ServiceKey::Addr {
            addr: lab.vip.into(),
            port: Some(port),
        },
        protocol: proto,
        real_servers: lab
            .rs
            .iter()
            .map(|a| RealServerSpec {
                addr: (*a).into(),
                port: rs_port,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Like [`service`] for the lab's IPv6 VIP and real servers.
pub fn service6(lab: &LbLab, proto: lbcore::spec::Protocol, port: u16) -> ServiceSpec {
    let mut s = service(lab, proto, port);
    s.key = lbcore::spec::ServiceKey::Addr {
        addr: lab.vip6.into(),
        port: Some(port),
    };
    for (r, a) in s.real_servers.iter_mut().zip(&lab.rs6) {
        r.addr = (*a).into();
    }
    s
}

/// A controller for `specs` with the shared table and persistence templates the dataplane
/// reads.
pub fn tables(
    specs: Vec<ServiceSpec>,
) -> (
    lbcore::service::Controller,
    Arc<lbcore::service::SharedTable>,
    Arc<lbcore::persist::PersistTable>,
) {
    let (c, _) = lbcore::service::Controller::new(specs, vec![]).expect("valid specs");
    let t = Arc::new(lbcore::service::SharedTable::new(c.table()));
    (c, t, Arc::new(lbcore::persist::PersistTable::new(4096)))
}

/// Counts answers per real server name ("rs1 203.0.113.10" -> "rs1").
pub fn tally(answers: &[String]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for a in answers {
        *m.entry(a.split_whitespace().next().unwrap_or("").to_string())
            .or_default() += 1;
    }
    m
}
