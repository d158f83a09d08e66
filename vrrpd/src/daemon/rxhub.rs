//! The daemon's VRRP sockets, shared by the instance actors: one per interface, family and
//! protocol (VRRP, or AH for `auth_type AH`: [`crate::net::LinkSocket`]), read by one task that hands each packet to the instance its
//! VRID (and source) names. Adverts for a VRID nobody here runs are dropped there and counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::net::{Demux, Family, LinkSocket, Proto};
use sysio::mmsg::{OutMsg, SendReport};
use vrrp_proto::packet::{DropReason, RxMeta};

/// Packets queued per instance before the receive task drops them.
const QUEUE: usize = 64;

/// A packet for one instance, or the reason the IP layer refused it.
pub type Packet = Result<(RxMeta, Vec<u8>), DropReason>;

/// Every VRRP socket of the daemon.
#[derive(Default)]
pub struct Hub {
    links: Mutex<HashMap<(u32, Family, Proto), Arc<Link>>>,
    /// `log_unknown_vrids`.
    log_unknown: bool,
}

struct Link {
    sock: Mutex<LinkSocket>,
    members: Mutex<Members>,
}

#[derive(Default)]
struct Members {
    demux: Demux<u64>,
    txs: HashMap<u64, mpsc::Sender<Packet>>,
    next: u64,
    unknown_vrid: u64,
}

/// An instance's place on a link: it sends through it and receives its packets; leaves on drop.
pub struct Membership {
    link: Arc<Link>,
    key: u64,
    vrid: u8,
}

impl Hub {
    pub fn new(log_unknown: bool) -> Self {
        Self {
            links: Mutex::default(),
            log_unknown,
        }
    }

    /// Joins instance `vrid` (unicast to `peers`, or multicast to `group`) to the socket of
    /// `ifname` for `family` and `proto`, opening it on first use.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &self,
        ifname: &str,
        ifindex: u32,
        family: Family,
        proto: Proto,
        group: IpAddr,
        vrid: u8,
        peers: &[IpAddr],
        foreign_source: bool,
    ) -> std::io::Result<(Membership, mpsc::Receiver<Packet>)> {
        let link = {
            let mut links = self.links.lock().expect("hub lock");
            match links.get(&(ifindex, family, proto)) {
                Some(l) => l.clone(),
                None => {
                    let sock = LinkSocket::open(ifname, ifindex, family, proto)?;
                    let l = Arc::new(Link {
                        sock: Mutex::new(sock),
                        members: Mutex::default(),
                    });
                    tokio::spawn(receive(l.clone(), self.log_unknown));
                    links.insert((ifindex, family, proto), l.clone());
                    l
                }
            }
        };
        {
            let mut s = link.sock.lock().expect("socket lock");
            if peers.is_empty() {
                s.join(group)?;
            }
            if foreign_source {
                s.allow_foreign_source()?;
            }
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let key = {
            let mut m = link.members.lock().expect("members lock");
            let key = m.next;
            m.next += 1;
            m.demux.insert(vrid, key, peers);
            m.txs.insert(key, tx);
            key
        };
        Ok((Membership { link, key, vrid }, rx))
    }
}

impl Membership {
    pub fn send(&self, msgs: &[OutMsg<'_>]) -> SendReport {
        self.link.sock.lock().expect("socket lock").send(msgs)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut m = self.link.members.lock().expect("members lock");
        m.demux.remove(self.vrid, self.key);
        m.txs.remove(&self.key);
    }
}

/// Reads one link's socket for the daemon's life, handing packets to their instances.
async fn receive(link: Arc<Link>, log_unknown: bool) {
    loop {
        let res = std::future::poll_fn(|cx| {
            let mut sock = link.sock.lock().expect("socket lock");
            let ifname = sock.ifname().to_string();
            let mut m = link.members.lock().expect("members lock");
            sock.poll_recv(cx, |rx| {
                let rx = match rx {
                    Ok(rx) => rx,
                    Err(_) => return,
                };
                let vrid = rx.vrid;
                match m.demux.lookup(vrid, rx.meta.src, rx.meta.dst) {
                    Some(k) => {
                        if let Some(tx) = m.txs.get(&k) {
                            let _ = tx.try_send(Ok((rx.meta, rx.payload.to_vec())));
                        }
                    }
                    None => {
                        m.unknown_vrid += 1;
                        if log_unknown {
                            info!(
                                "Unknown VRID({vrid}) received on interface({ifname}). ignoring..."
                            );
                        }
                    }
                }
            })
        })
        .await;
        if let Err(e) = res {
            warn!(error = %e, "receive failed");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
