//! The sync daemon's driver: one thread owning the multicast socket, running a
//! [`Session`] and applying what it decides to the shared tables. The decisions (what to
//! send, what to accept) are in [`crate::sync`]; this only moves bytes and entries.
//!
//! As Linux's sync threads: UDP to the group (224.0.0.81:8848 by default) on the sync
//! interface, multicast loop off, the configured TTL; the receiving socket bound to the
//! group and the interface.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol as SockProto, Socket, Type};

use super::engine::{release_synced, Shared};
use super::nat::Binding;
use crate::sync::install::{plan, Accept, Install, SyncedConn};
use crate::sync::send;
use crate::sync::session::{Received, Role, Session, SessionConfig};
use crate::sync::wire::{self, Entry};
use crate::sync::{SyncCounters, SyncDrop};
use crate::time::Millis;

/// `lvs_sync_daemon INTERFACE VRRP_INSTANCE [id SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL]
/// [group IP]`, less the instance (the owner switches the role). A `session.maxlen` of 0 is
/// the interface's MTU less the IP and UDP headers, as Linux's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncdConfig {
    pub iface: String,
    pub group: IpAddr,
    pub port: u16,
    pub ttl: u8,
    pub session: SessionConfig,
}

impl SyncdConfig {
    /// IPVS's defaults on `iface`: 224.0.0.81:8848, TTL 1, sync id 0, maxlen from the MTU.
    pub fn new(iface: &str) -> Self {
        Self {
            iface: iface.into(),
            group: wire::DEFAULT_GROUP.into(),
            port: wire::DEFAULT_PORT,
            ttl: 1,
            session: SessionConfig::default(),
        }
    }
}

/// The role the owner wants, read by the driver thread.
#[derive(Debug, Default)]
pub struct RoleSwitch(AtomicU8);

impl RoleSwitch {
    pub fn set(&self, r: Role) {
        self.0.store(
            match r {
                Role::Idle => 0,
                Role::Master => 1,
                Role::Backup => 2,
            },
            Relaxed,
        );
    }

    pub fn get(&self) -> Role {
        match self.0.load(Relaxed) {
            1 => Role::Master,
            2 => Role::Backup,
            _ => Role::Idle,
        }
    }
}

/// Opens the socket: bound to the group and port on `ifindex` (device `iface`), joined,
/// sending there with loop off and `ttl`.
pub fn open(cfg: &SyncdConfig, ifindex: u32, local: Option<Ipv4Addr>) -> std::io::Result<Socket> {
    let s = Socket::new(
        Domain::for_address(SocketAddr::new(cfg.group, cfg.port)),
        Type::DGRAM,
        Some(SockProto::UDP),
    )?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(cfg.iface.as_bytes()))?;
    s.bind(&SocketAddr::new(cfg.group, cfg.port).into())?;
    match cfg.group {
        IpAddr::V4(g) => {
            s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(ifindex))?;
            if let Some(a) = local {
                s.set_multicast_if_v4(&a)?;
            }
            s.set_multicast_loop_v4(false)?;
            s.set_multicast_ttl_v4(cfg.ttl as u32)?;
        }
        IpAddr::V6(g) => {
            s.join_multicast_v6(&g, ifindex)?;
            s.set_multicast_if_v6(ifindex)?;
            s.set_multicast_loop_v6(false)?;
            s.set_multicast_hops_v6(cfg.ttl as u32)?;
        }
    }
    s.set_read_timeout(Some(Duration::from_millis(5)))?;
    Ok(s)
}

/// What the driver thread needs.
pub struct Driver {
    pub sh: Arc<Shared>,
    pub cfg: SyncdConfig,
    pub sock: Socket,
    pub rx: Receiver<Entry>,
    pub role: Arc<RoleSwitch>,
    pub stop: Arc<AtomicBool>,
    pub origin: Instant,
    pub failures: Arc<std::sync::Mutex<super::Failures>>,
}

impl Driver {
    /// Runs until `stop`.
    pub fn run(self) {
        let Driver {
            sh,
            cfg,
            sock,
            rx,
            role,
            stop,
            origin,
            failures,
        } = self;
        let mut backoff = Duration::ZERO;
        let counters = sh.sync.counters.clone();
        let mut session = Session::new(cfg.session, counters.clone());
        let to = SocketAddr::new(cfg.group, cfg.port).into();
        let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 65536];
        let mut last_expire = 0;
        while !stop.load(Relaxed) {
            // A panicking turn is logged and counted; the thread goes on with its session.
            super::guarded("lb-syncd", &failures, &mut backoff, || {
                let now = origin.elapsed().as_millis() as Millis;
                let want = role.get();
                if want != session.role() {
                    switch(&sh, &mut session, want, now);
                }
                while let Ok(e) = rx.try_recv() {
                    session.queue(&e, now);
                }
                while let Some(d) = session.poll_transmit(now) {
                    if sock.send_to(&d, &to).is_err() {
                        counters.drop_n(SyncDrop::TxError, 1);
                    }
                }
                if let Ok(n) = sock.recv(&mut buf) {
                    // SAFETY: recv initialised the first `n` bytes of `buf`.
                    let msg: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
                    let now = origin.elapsed().as_millis() as Millis;
                    match session.receive(msg, now) {
                        Received::Entries(es) => install(&sh, &es, now),
                        Received::Resync => dump(&sh, &mut session, now),
                        Received::Nothing => {}
                    }
                }
                if now >= last_expire + 100 {
                    last_expire = now;
                    sh.sync.synced.expire(now, |s| release_synced(&sh, &s));
                }
            });
        }
    }
}

fn switch(sh: &Shared, session: &mut Session, want: Role, now: Millis) {
    let was = session.role();
    session.set_role(want, now);
    sh.sync.master.store(want == Role::Master, Relaxed);
    if was == Role::Master {
        // The peer owns the flows now and tells us about them again.
        sh.sync.release.fetch_add(1, Relaxed);
    }
    if want == Role::Master {
        // What the workers tracked before the switch is news to the peer too.
        sh.sync.dump.fetch_add(1, Relaxed);
    }
    tracing::info!(from = ?was, to = ?want, "connection sync role");
}

/// A Backup asked for everything: the workers send what they track, this thread what is
/// still waiting here from before a takeover.
fn dump(sh: &Shared, session: &mut Session, now: Millis) {
    sh.sync.dump.fetch_add(1, Relaxed);
    let mut waiting: Vec<SyncedConn> = Vec::new();
    sh.sync.synced.for_each_live(now, |c| waiting.push(*c));
    for c in &waiting {
        session.queue(&send::synced_entry(c, now), now);
        if let Some(pk) = c.persist {
            if let Some(t) = super::engine::template_of(sh, pk, &c.key, now) {
                session.queue(&t, now);
            }
        }
    }
}

/// Checks and installs received entries.
pub fn install(sh: &Shared, entries: &[Entry], now: Millis) {
    let table = sh.table.load();
    let addrs: Vec<IpAddr> = sh
        .snat_sources
        .iter()
        .map(|s| s.0)
        .chain(sh.ifaces.iter().flat_map(|i| i.addrs.iter().map(|a| a.0)))
        .collect();
    let accept = Accept {
        table: &table,
        snat_ports: &sh.snat_ports,
        snat_addrs: &addrs,
    };
    let c = &sh.sync.counters;
    for e in entries {
        let done = match plan(e, &accept, now) {
            Ok(Install::Template { key, dest, expires }) => {
                if sh.persist.install(key, dest, expires, now) {
                    Ok(())
                } else {
                    Err(SyncDrop::Conflict)
                }
            }
            Ok(Install::Conn(s)) => install_conn(sh, s, now),
            Err(r) => Err(r),
        };
        match done {
            Ok(()) => SyncCounters::add(&c.installed, 1),
            Err(r) => c.drop_n(r, 1),
        }
    }
}

fn install_conn(sh: &Shared, s: SyncedConn, now: Millis) -> Result<(), SyncDrop> {
    if let Some(n) = s.nat {
        let same = sh.nat.by_fwd(&s.key);
        match same {
            Some(b) if b.reply == n.reply => {} // already bound so (a refresh)
            other => {
                if let Some(old) = other {
                    sh.nat.remove(&old);
                }
                // Replies count for the real server and service the connection belongs to.
                let (dest, service) = sh
                    .table
                    .load()
                    .services()
                    .iter()
                    .find(|x| x.id == s.svc)
                    .map(|svc| {
                        let rs = svc.server(&s.dest).map(|r| r.stats.clone());
                        (rs.unwrap_or_default(), svc.traffic.clone())
                    })
                    .unwrap_or_default();
                let b = Arc::new(Binding {
                    fwd: s.key,
                    reply: n.reply,
                    rs: n.rs,
                    snat: n.snat,
                    client: None,
                    server_closed: AtomicBool::new(false),
                    dest,
                    service,
                });
                if !sh.nat.insert(b.clone()) {
                    // The Master reused a one-arm port whose connection it knows is over:
                    // a synchronised holder gives way, one of this node's own does not.
                    match sh.nat.by_reply(&n.reply) {
                        Some(holder) if holder.client.is_none() => {
                            if let Some(w) = sh.sync.synced.take(&holder.fwd) {
                                release_synced(sh, &w);
                            }
                            sh.nat.remove(&holder);
                            if !sh.nat.insert(b) {
                                return Err(SyncDrop::Conflict);
                            }
                        }
                        _ => return Err(SyncDrop::Conflict),
                    }
                }
            }
        }
        // Resolve the client's next hop now, not when the first reply needs it.
        let _ = sh.neigh.get(s.key.src);
    }
    let _ = sh.neigh.get(s.dest.addr);
    match sh.sync.synced.insert(s, now) {
        Ok(_) => Ok(()),
        Err(_) => {
            release_synced(sh, &s);
            Err(SyncDrop::Conflict)
        }
    }
}
