//! Interface up/down from rtnetlink link events (RTNLGRP_LINK multicast; no polling).
//!
//! "Up" is keepalived's test: `IFF_UP` and `IFF_RUNNING` both set, so an interface that is
//! administratively up but has lost its carrier (cable, peer veth down) counts as down.
//! One monitor serves the whole daemon; each user subscribes to the indexes it cares about and
//! gets a [`watch::Receiver`] that changes only when the state flips.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::MulticastGroup;
use tokio::sync::watch;
use tracing::{debug, warn};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the rtnetlink link-event socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("dumping links: {0}")]
    Dump(#[from] rtnetlink::Error),
}

/// keepalived's `IF_ISUP`: up and running.
pub fn is_up(msg: &LinkMessage) -> bool {
    let f = msg.header.flags;
    f.contains(LinkFlags::Up) && f.contains(LinkFlags::Running)
}

type Table = Arc<Mutex<HashMap<u32, watch::Sender<bool>>>>;

/// A running link monitor; cheap to clone.
#[derive(Clone)]
pub struct LinkMonitor {
    table: Table,
}

impl LinkMonitor {
    /// Subscribes to link events, then dumps the current links (in that order, so no change
    /// is missed), and keeps the table current from a background task on the current runtime.
    pub async fn start() -> Result<Self, Error> {
        let (conn, handle, mut events) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link])?;
        crate::components::spawn_vital("rtnetlink link events", conn);
        let table: Table = Arc::default();
        let mut links = handle.link().get().execute();
        while let Some(msg) = links.try_next().await? {
            update(&table, msg.header.index, is_up(&msg));
        }
        let t = table.clone();
        crate::components::spawn_vital("link monitor", async move {
            // Keep the handle (and so the connection) alive as long as we listen.
            let _handle = handle;
            while let Some((msg, _)) = events.next().await {
                fault_inject::point("link-monitor");
                match msg.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                        update(&t, m.header.index, is_up(&m))
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
                        update(&t, m.header.index, false)
                    }
                    _ => {}
                }
            }
            warn!("rtnetlink link-event stream ended; interface states are frozen");
        });
        Ok(Self { table })
    }

    /// The state of `index` now and on every flip; an unknown interface is down.
    pub fn subscribe(&self, index: u32) -> watch::Receiver<bool> {
        let mut t = self.table.lock().expect("link table poisoned");
        t.entry(index)
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// Current state of `index` (false if unknown).
    pub fn is_index_up(&self, index: u32) -> bool {
        let t = self.table.lock().expect("link table poisoned");
        t.get(&index).is_some_and(|s| *s.borrow())
    }
}

fn update(table: &Table, index: u32, up: bool) {
    let mut t = table.lock().expect("link table poisoned");
    let tx = t.entry(index).or_insert_with(|| watch::channel(up).0);
    let changed = tx.send_if_modified(|v| std::mem::replace(v, up) != up);
    if changed {
        debug!(index, up, "link state changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// In a private network namespace (this thread only), on a veth pair: the new interface
    /// is down; up once both ends are up; down when only the *peer* goes down (carrier lost,
    /// the interface itself still administratively up); each within a second.
    #[test]
    fn reports_flips_of_a_veth_including_carrier_loss() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (network namespace)");
            return;
        }
        crate::testutil::in_netns_with_veth("vt-dummy0", "vt-peer0", |handle| async move {
            let idx = crate::testutil::link_index(&handle, "vt-dummy0").await;
            let mon = LinkMonitor::start().await.unwrap();
            let mut rx = mon.subscribe(idx);
            assert!(!*rx.borrow_and_update(), "new dummy is down");
            let peer = crate::testutil::link_index(&handle, "vt-peer0").await;
            let set_if = |i: u32, up: bool| {
                let h = handle.clone();
                async move {
                    let m = rtnetlink::LinkUnspec::new_with_index(i);
                    let m = if up { m.up() } else { m.down() };
                    h.link().set(m.build()).execute().await.unwrap();
                }
            };
            set_if(peer, true).await;
            set_if(idx, true).await;
            tokio::time::timeout(Duration::from_secs(1), rx.changed())
                .await
                .expect("up event")
                .unwrap();
            assert!(*rx.borrow_and_update());
            assert!(mon.is_index_up(idx));
            set_if(peer, false).await;
            tokio::time::timeout(Duration::from_secs(1), rx.changed())
                .await
                .expect("down event")
                .unwrap();
            assert!(!*rx.borrow_and_update());
            // Unknown index: down.
            assert!(!*mon.subscribe(999_999).borrow());
        });
    }
}
