//! rtnetlink: interface lookup, virtual addresses, routes and rules.
//!
//! A thin async wrapper over `rtnetlink`: the daemon speaks in [`VirtualAddress`]es, [`Route`]s
//! and [`Rule`]s, this module speaks netlink. Addresses are added exactly as configured (prefix,
//! broadcast, scope, label); IPv6 ones with `IFA_F_NODAD`, so a new Master answers at once
//! instead of after DAD. Routes and rules carry keepalived's protocol number (18) unless the
//! line sets one.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::Handle;

use keepalived_conf::model::{Route, Rule, VirtualAddress};

pub(crate) mod routes;

/// Netlink failures, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("interface {0} not found")]
    NoSuchInterface(String),
    #[error("{op} {addr} on {ifname}: {source}")]
    Address {
        op: &'static str,
        addr: IpAddr,
        ifname: String,
        source: Box<rtnetlink::Error>,
    },
    #[error("{op} route {route}: {source}")]
    Route {
        op: &'static str,
        route: String,
        source: Box<rtnetlink::Error>,
    },
    #[error("{op} rule {rule}: {source}")]
    Rule {
        op: &'static str,
        rule: String,
        source: Box<rtnetlink::Error>,
    },
    #[error("netlink: {0}")]
    Netlink(#[from] Box<rtnetlink::Error>),
}

/// What the daemon needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    pub up: bool,
}

/// One rtnetlink connection, cheap to clone.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens the connection and spawns its driver on the current tokio runtime.
    pub fn open() -> Result<Self, Error> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        crate::components::spawn_vital("rtnetlink connection", conn);
        Ok(Self { handle })
    }

    /// The underlying rtnetlink handle, for the modules that speak rtnetlink themselves.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Looks an interface up by name.
    pub async fn link(&self, name: &str) -> Result<Link, Error> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let msg = match links.try_next().await {
            Ok(Some(msg)) => msg,
            Ok(None) | Err(_) => return Err(Error::NoSuchInterface(name.to_string())),
        };
        let mut mac = [0u8; 6];
        for attr in &msg.attributes {
            if let LinkAttribute::Address(bytes) = attr {
                if bytes.len() == 6 {
                    mac.copy_from_slice(bytes);
                }
            }
        }
        let up = msg
            .header
            .flags
            .contains(netlink_packet_route::link::LinkFlags::Up);
        Ok(Link {
            name: name.to_string(),
            index: msg.header.index,
            mac,
            up,
        })
    }

    /// The addresses currently on an interface, with their prefix length.
    pub async fn addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, Error> {
        let mut out = Vec::new();
        let mut msgs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(msg) = msgs.try_next().await.map_err(Box::new)? {
            if let Some(addr) = local_address(&msg) {
                out.push((addr, msg.header.prefix_len));
            }
        }
        Ok(out)
    }

    /// Adds a virtual address. Already present is not an error (keepalived re-adds too).
    pub async fn add_vip(
        &self,
        index: u32,
        ifname: &str,
        vip: &VirtualAddress,
    ) -> Result<(), Error> {
        let mut req = self.handle.address().add(index, vip.addr, vip.prefix_len);
        fill_message(req.message_mut(), vip);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(source) => Err(Error::Address {
                op: "add",
                addr: vip.addr,
                ifname: ifname.to_string(),
                source: Box::new(source),
            }),
        }
    }

    /// Removes a virtual address. Already absent is not an error.
    pub async fn del_vip(
        &self,
        index: u32,
        ifname: &str,
        vip: &VirtualAddress,
    ) -> Result<(), Error> {
        match self
            .handle
            .address()
            .del(del_vip_message(index, vip))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) || is_errno(&e, libc::ENOENT) => Ok(()),
            Err(source) => Err(Error::Address {
                op: "delete",
                addr: vip.addr,
                ifname: ifname.to_string(),
                source: Box::new(source),
            }),
        }
    }
}

impl Netlink {
    /// Interface indexes of the names a route uses.
    async fn index_of(&self, dev: &Option<String>) -> Result<Option<u32>, Error> {
        match dev {
            Some(d) => Ok(Some(self.link(d).await?.index)),
            None => Ok(None),
        }
    }

    pub(crate) async fn route_message(
        &self,
        r: &Route,
        delete: bool,
    ) -> Result<RouteMessage, Error> {
        let oif = self.index_of(&r.dev).await?;
        let mut hops = Vec::with_capacity(r.nexthops.len());
        for nh in &r.nexthops {
            hops.push((nh, self.index_of(&nh.dev).await?));
        }
        Ok(routes::route_message(r, oif, &hops, delete))
    }

    /// Adds a route. Already present is not an error.
    pub async fn add_route(&self, r: &Route) -> Result<(), Error> {
        let msg = self.route_message(r, false).await?;
        match self.handle.route().add(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(source) => Err(Error::Route {
                op: "add",
                route: r.to_string(),
                source: Box::new(source),
            }),
        }
    }

    /// Removes a route. Already absent is not an error.
    pub async fn del_route(&self, r: &Route) -> Result<(), Error> {
        let msg = self.route_message(r, true).await?;
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ESRCH) || is_errno(&e, libc::ENOENT) => Ok(()),
            Err(source) => Err(Error::Route {
                op: "delete",
                route: r.to_string(),
                source: Box::new(source),
            }),
        }
    }

    /// Adds a policy-routing rule. Already present is not an error.
    pub async fn add_rule(&self, r: &Rule) -> Result<(), Error> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = routes::rule_message(r);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(source) => Err(Error::Rule {
                op: "add",
                rule: r.to_string(),
                source: Box::new(source),
            }),
        }
    }

    /// Removes a policy-routing rule. Already absent is not an error.
    pub async fn del_rule(&self, r: &Rule) -> Result<(), Error> {
        match self
            .handle
            .rule()
            .del(routes::rule_message(r))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ENOENT) || is_errno(&e, libc::ESRCH) => Ok(()),
            Err(source) => Err(Error::Rule {
                op: "delete",
                rule: r.to_string(),
                source: Box::new(source),
            }),
        }
    }
}

/// What removes `vip` from interface `index`.
fn del_vip_message(index: u32, vip: &VirtualAddress) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = vip.prefix_len;
    msg.header.family = family(vip.addr);
    msg.attributes.push(AddressAttribute::Local(vip.addr));
    if vip.addr.is_ipv6() {
        msg.attributes.push(AddressAttribute::Address(vip.addr));
    }
    msg
}

/// The removals of an instance's rules, routes and addresses (in [`Netlink::del_rule`],
/// [`Netlink::del_route`], [`Netlink::del_vip`]'s terms), as complete rtnetlink requests:
/// bytes another process replays when this one cannot ([`crate::supervisor`]).
pub struct Removals(Vec<Vec<u8>>);

impl Removals {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn rule(&mut self, r: &Rule) {
        self.push(RouteNetlinkMessage::DelRule(routes::rule_message(r)));
    }

    /// `msg` from [`Netlink::route_message`] with `delete`.
    pub fn route(&mut self, msg: RouteMessage) {
        self.push(RouteNetlinkMessage::DelRoute(msg));
    }

    pub fn address(&mut self, index: u32, vip: &VirtualAddress) {
        self.push(RouteNetlinkMessage::DelAddress(del_vip_message(index, vip)));
    }

    fn push(&mut self, msg: RouteNetlinkMessage) {
        use rtnetlink::packet_core::{
            NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
        };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        header.sequence_number = self.0.len() as u32 + 1;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        self.0.push(buf);
    }

    pub fn requests(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(Vec::as_slice)
    }
}

impl Default for Removals {
    fn default() -> Self {
        Self::new()
    }
}

/// Sets everything the configured address asks for; drops the broadcast rtnetlink guesses.
fn fill_message(msg: &mut AddressMessage, vip: &VirtualAddress) {
    msg.attributes
        .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
    if let Some(brd) = vip.broadcast {
        msg.attributes.push(AddressAttribute::Broadcast(brd));
    }
    if let Some(label) = &vip.label {
        msg.attributes.push(AddressAttribute::Label(label.clone()));
    }
    msg.header.scope = AddressScope::from(vip.scope.as_u8());
    if vip.addr.is_ipv6() {
        msg.header.flags |= AddressHeaderFlags::Nodad;
    }
}

fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The interface's own address of a message (`IFA_LOCAL`, or `IFA_ADDRESS` for IPv6).
pub(crate) fn local_address(msg: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => return Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    address
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.raw_code() == -errno,
        _ => false,
    }
}
