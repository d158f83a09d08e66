//! What one configured instance needs at run time, resolved from keepalived.conf and the
//! kernel (interfaces, addresses, the VMAC) before the VRRP loop adopts it: the loop itself
//! never waits for netlink. A plan keeps what the instance uses, not the configuration block
//! it came from (the daemon keeps that once, for the next reload to compare with).

use std::collections::HashMap;
use std::net::IpAddr;

use anyhow::{bail, Context};
use keepalived_conf::model::{
    Authentication, Config, Route, Rule, UnicastChecksum, VirtualAddress, VrrpInstance,
};
use tracing::warn;

use crate::net::{Destination, Family, Proto};
use crate::netlink::{Link, Netlink};
use crate::track::deleted::{route_key, rule_key, Key};
use vrrp_proto::fsm;
use vrrp_proto::instance;
use vrrp_proto::packet::{Auth, Expect, Version};

/// One instance, resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub name: String,
    pub core: instance::Config,
    /// The instance's interface.
    pub link: Link,
    /// Where its adverts are received and sent: the interface, or the VMAC.
    pub vrrp_link: Link,
    pub family: Family,
    /// VRRP, or AH (`auth_type AH`).
    pub proto: Proto,
    /// The multicast group (joined on `vrrp_link` unless unicast).
    pub group: IpAddr,
    pub peers: Vec<IpAddr>,
    pub check_unicast_src: bool,
    pub dest: Destination,
    pub expect: Expect,
    /// Each virtual address, then each excluded one, with the interface it goes on.
    pub vips: Vec<(VirtualAddress, Link)>,
    /// How many of `vips` are advertised (the rest are `virtual_ipaddress_excluded`).
    pub advertised: usize,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    /// Where announcements go, with which MAC.
    pub garp_port: garp::Port,
    /// The VMAC (`use_vmac`).
    pub vmac: Option<crate::vmac::VmacSpec>,
    /// An IPv6 VMAC sending adverts: our source address on it, there only while Master
    /// ([`crate::vmac::source_address`]).
    pub vmac_source: Option<(VirtualAddress, Link)>,
    /// The addresses, routes (with a `dev`) and rules a Master takes back when someone else
    /// deletes them (not `no_track`).
    pub tracked: Vec<Key>,
    /// What the supervisor replays if the daemon dies while this instance is Master.
    pub lastgasp: Vec<u8>,
    /// `old_unicast_checksum [never]`.
    pub checksum: UnicastChecksum,
    /// `promote_secondaries` on the interface.
    pub promote_secondaries: bool,
    /// The source address is not there yet: the instance waits in FAULT until it is, with a
    /// stand-in source ([`SourceWait::placeholder`]).
    pub source_wait: Option<SourceWait>,
    /// `dynamic_interfaces`: an interface is missing; the instance waits in FAULT
    /// ([`waiting`]).
    pub pending: Option<std::sync::Arc<Pending>>,
}

impl Plan {
    /// Same instance, whatever its settings: same name, interface, VRID and family. A reload
    /// that keeps the identity but changes a setting restarts it in place, in its state.
    pub(crate) fn same_identity(&self, other: &Plan) -> bool {
        self.name == other.name
            && (self.link.index == other.link.index
                || self.pending.is_some()
                || other.pending.is_some())
            && self.core.vrrp.vrid == other.core.vrrp.vrid
            && self.family == other.family
    }
}

/// Interfaces and their addresses looked up once per resolution, however many instances use
/// them (255 instances on one interface: one lookup, not 255).
#[derive(Default)]
pub(crate) struct Lookups {
    links: HashMap<String, Link>,
    addrs: HashMap<u32, Vec<(IpAddr, u8)>>,
}

impl Lookups {
    async fn link(&mut self, nl: &Netlink, name: &str) -> anyhow::Result<Link> {
        if let Some(l) = self.links.get(name) {
            return Ok(l.clone());
        }
        let l = nl.link(name).await?;
        self.links.insert(name.to_string(), l.clone());
        Ok(l)
    }

    async fn addresses(&mut self, nl: &Netlink, index: u32) -> anyhow::Result<&[(IpAddr, u8)]> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.addrs.entry(index) {
            e.insert(nl.addresses(index).await?);
        }
        Ok(&self.addrs[&index])
    }
}

/// A VMAC made for a plan (the caller removes it if the plan is not adopted).
pub(crate) type Made = Option<crate::vmac::Vmac>;

/// Resolves `inst` (with its sync group's trackers already merged). `previous` is the plan of
/// the same name the loop runs now: its VMAC is reused rather than made again.
pub(crate) async fn resolve(
    config: &Config,
    inst: &VrrpInstance,
    nl: &Netlink,
    previous: Option<&Plan>,
    lookups: &mut Lookups,
) -> anyhow::Result<(Plan, Made)> {
    let global = &config.global;
    let link = lookups.link(nl, &inst.interface).await?;
    let v6 = inst
        .virtual_ipaddress
        .first()
        .is_some_and(|v| v.addr.is_ipv6());
    if inst
        .virtual_ipaddress
        .iter()
        .any(|v| v.addr.is_ipv6() != v6)
    {
        bail!("IPv4 and IPv6 virtual addresses in one instance");
    }
    let own = lookups.addresses(nl, link.index).await?;
    let (src, source_wait) = match resolve_source(inst.src_ip, own, v6, inst.addresses()) {
        Ok(src) => (src, None),
        Err(wait) => (wait.placeholder(), Some(wait)),
    };
    let group = if v6 {
        IpAddr::V6(global.mcast_group6)
    } else {
        IpAddr::V4(global.mcast_group4)
    };
    // use_vmac: a macvlan with the virtual MAC holds the addresses and sends the announcements
    // and (unless vmac_xmit_base) the adverts, so the LAN's MAC for a VIP never changes.
    let mut made = None;
    let vmac = match &inst.use_vmac {
        Some(u) => {
            let vrid = inst.virtual_router_id;
            let mac = u.mac.unwrap_or_else(|| crate::vmac::vmac_address(vrid, v6));
            let reuse = previous
                .and_then(|p| p.vmac.as_ref())
                .filter(|s| s.mac == mac && s.base_index == link.index)
                .filter(|s| u.name.as_ref().is_none_or(|n| *n == s.name));
            let spec = match reuse {
                Some(s) => s.clone(),
                None => {
                    let name = match &u.name {
                        Some(n) => n.clone(),
                        None => crate::vmac::pick_name(nl.handle(), vrid, v6, mac).await?,
                    };
                    let spec = crate::vmac::VmacSpec {
                        name,
                        base_index: link.index,
                        base_name: link.name.clone(),
                        mac,
                        v6,
                    };
                    made = Some(
                        crate::vmac::Vmac::create(nl.handle(), &spec)
                            .await
                            .with_context(|| format!("creating VMAC interface {}", spec.name))?,
                    );
                    spec
                }
            };
            let l = nl.link(&spec.name).await?;
            Some((l, spec))
        }
        None => None,
    };
    let announce_link = vmac.as_ref().map_or(&link, |(l, _)| l).clone();
    // Multicast adverts leave by the VMAC (unless vmac_xmit_base) so they carry the virtual
    // MAC, and are received there: a multicast frame whose source MAC is one of our macvlans'
    // is delivered to that macvlan only, never to the parent, so the peer's adverts from the
    // same virtual MAC reach us on the VMAC (keepalived does the same). Unicast adverts go by
    // the parent both ways: they are addressed to the parent's MAC, and resolving the peer
    // from a VMAC fails for the same reason (the peer's own VMAC takes our ARP / NDP frames).
    let multicast = inst.unicast_peers.is_empty();
    let vrrp_link = match &vmac {
        Some((l, _)) if !inst.vmac_xmit_base && multicast => l.clone(),
        _ => link.clone(),
    };
    let vmac_source = match (src, &vmac) {
        (IpAddr::V6(src), Some((l, _))) if vrrp_link.index == l.index => {
            Some((crate::vmac::source_address(src), l.clone()))
        }
        _ => None,
    };
    let dest = Destination::new(
        src,
        vrrp_link.index,
        group,
        &inst.unicast_peers,
        inst.unicast_ttl,
    );
    // The excluded addresses come and go with the others but are not advertised, so they may
    // be of the other family.
    let mut vips = Vec::new();
    for vip in inst.addresses() {
        let vlink = match &vip.dev {
            Some(dev) if dev != &link.name => lookups.link(nl, dev).await?,
            _ => announce_link.clone(),
        };
        vips.push((vip.clone(), vlink));
    }
    let (core, expect, proto) = core_config(global, inst, src, link.index, v6, multicast);
    let release = fsm::Instance::new(core.vrrp.clone()).release_advert();
    let mut tracked = tracked_keys(nl, &vips, &inst.virtual_routes, &inst.virtual_rules).await;
    // Kept for the daemon's life, 255 times over: no spare capacity.
    vips.shrink_to_fit();
    tracked.shrink_to_fit();
    let lastgasp = super::super::lastgasp::recipe(
        nl,
        &super::super::lastgasp::Holdings {
            dest: &dest,
            advert: &release,
            vips: &vips,
            routes: &inst.virtual_routes,
            rules: &inst.virtual_rules,
            vmac_source: vmac_source.as_ref(),
            old_checksum: inst.unicast_checksum == UnicastChecksum::Old
                && core.vrrp.version == Version::V3
                && !v6
                && !inst.unicast_peers.is_empty(),
        },
    )
    .await;
    let garp_port = garp::Port {
        ifindex: announce_link.index,
        mac: announce_link.mac,
    };
    let plan = Plan {
        name: inst.name.clone(),
        core,
        link,
        vrrp_link,
        family: Family::of(src),
        proto,
        group,
        peers: inst.unicast_peers.clone(),
        check_unicast_src: inst.check_unicast_src,
        dest,
        expect,
        vips,
        advertised: inst.virtual_ipaddress.len(),
        routes: inst.virtual_routes.clone(),
        rules: inst.virtual_rules.clone(),
        garp_port,
        vmac: vmac.map(|(_, s)| s),
        vmac_source,
        tracked,
        lastgasp,
        checksum: inst.unicast_checksum,
        promote_secondaries: inst.promote_secondaries,
        source_wait,
        pending: None,
    };
    Ok((plan, made))
}

impl Plan {
    /// Whether keepalived's old unicast checksum can apply: VRRPv3 to unicast IPv4 peers.
    fn old_checksum_applies(&self) -> bool {
        self.core.vrrp.version == Version::V3 && self.family == Family::V4 && !self.peers.is_empty()
    }

    /// Adverts carry the old checksum from the start (`old_unicast_checksum`).
    pub(crate) fn old_checksum(&self) -> bool {
        self.checksum == UnicastChecksum::Old && self.old_checksum_applies()
    }

    /// A peer's advert with the old checksum is taken (and answered in it), as keepalived
    /// since 1.3.6 does unless told `never`.
    pub(crate) fn may_take_old_checksum(&self) -> bool {
        self.checksum != UnicastChecksum::Never && self.old_checksum_applies()
    }

    /// The source address this plan waits for, if the interface has it now: the plan with it
    /// (adverts from it, the supervisor's recipe rebuilt), or `None` while it is not there.
    pub(crate) async fn with_source_found(&self, nl: &Netlink) -> Option<Plan> {
        let wait = self.source_wait?;
        let own = match nl.addresses(self.link.index).await {
            Ok(own) => own,
            Err(e) => {
                tracing::debug!(error = %e, "reading the interface's addresses failed");
                return None;
            }
        };
        let vips = self.vips.iter().map(|(v, _)| v);
        let src = resolve_source(wait.configured, &own, wait.v6, vips).ok()?;
        let mut p = self.clone();
        p.source_wait = None;
        p.core.vrrp.primary_addr = src;
        p.dest = Destination::new(src, p.vrrp_link.index, p.group, &p.peers, p.dest.ttl);
        if let (Some((v, _)), IpAddr::V6(s)) = (&mut p.vmac_source, src) {
            *v = crate::vmac::source_address(s);
        }
        let release = fsm::Instance::new(p.core.vrrp.clone()).release_advert();
        p.lastgasp = super::super::lastgasp::recipe(
            nl,
            &super::super::lastgasp::Holdings {
                dest: &p.dest,
                advert: &release,
                vips: &p.vips,
                routes: &p.routes,
                rules: &p.rules,
                vmac_source: p.vmac_source.as_ref(),
                old_checksum: p.old_checksum(),
            },
        )
        .await;
        Some(p)
    }
}

/// The protocol's side of an instance: its machine's and core's settings, what its adverts
/// must look like, and the IP protocol they travel in.
fn core_config(
    global: &keepalived_conf::model::GlobalDefs,
    inst: &VrrpInstance,
    src: IpAddr,
    ifindex: u32,
    v6: bool,
    multicast: bool,
) -> (instance::Config, Expect, Proto) {
    let auth = match &inst.authentication {
        Some(a @ Authentication::Pass(_)) => Auth::Pass(a.key()),
        Some(a @ Authentication::Ah(_)) => Auth::Ah(a.key()),
        None => Auth::None,
    };
    // AH adverts travel in IP protocol 51, on sockets of their own.
    let proto = match auth {
        Auth::Ah(_) => Proto::Ah,
        _ => Proto::Vrrp,
    };
    let vrrp = fsm::Config {
        vrid: inst.virtual_router_id,
        version: inst.version,
        priority: inst.priority,
        advert_int: inst.advert_int,
        preempt: !inst.nopreempt,
        preempt_delay: inst.preempt_delay,
        start_master: inst.state == keepalived_conf::model::InitialState::Master,
        primary_addr: src,
        vips: inst.virtual_ipaddress.iter().map(|v| v.addr).collect(),
        auth,
        lower_prio_no_advert: inst.garp.lower_prio_no_advert,
        answer_before_stepping_down: !inst.strict_mode,
        down_timer_adverts: inst.down_timer_adverts,
        skip_check_adv_addr: inst.skip_check_adv_addr,
    };
    let expect = Expect {
        version: inst.version,
        vrid: inst.virtual_router_id,
        auth,
        adver_int: inst.advert_int,
        check_ttl: multicast,
    };
    let core = instance::Config {
        vrrp,
        announce: inst.garp.schedule(v6),
        ifindex,
        track_primary: !inst.dont_track_primary,
        fifo_states_on_reload: global.fifo_write_vrrp_states_on_reload,
    };
    (core, expect, proto)
}

/// `dynamic_interfaces`: what an instance whose interface (or an address's `dev`) does not
/// exist yet needs to be resolved once it does.
#[derive(Debug, PartialEq)]
pub(crate) struct Pending {
    /// The interface not there yet.
    pub ifname: String,
    global: keepalived_conf::model::GlobalDefs,
    inst: VrrpInstance,
}

impl Pending {
    /// Its virtual addresses, for the balancer to follow.
    pub(crate) fn addresses(&self) -> Vec<IpAddr> {
        self.inst.addresses().map(|v| v.addr).collect()
    }

    /// The plan, once every interface the instance names exists (`Ok(None)` until then).
    pub(crate) async fn resolve(&self, nl: &Netlink) -> anyhow::Result<Option<(Plan, Made)>> {
        if missing_interface(nl, &self.inst).await.is_some() {
            return Ok(None);
        }
        let config = Config {
            global: self.global.clone(),
            ..Config::default()
        };
        resolve(&config, &self.inst, nl, None, &mut Lookups::default())
            .await
            .map(Some)
    }
}

/// The first interface `inst` names that does not exist: its own, or an address's `dev`.
pub(crate) async fn missing_interface(nl: &Netlink, inst: &VrrpInstance) -> Option<String> {
    let devs = inst.addresses().filter_map(|v| v.dev.as_deref());
    for name in std::iter::once(inst.interface.as_str()).chain(devs) {
        if nl.link(name).await.is_err() {
            return Some(name.to_string());
        }
    }
    None
}

/// The plan of an instance waiting for interface `ifname` ([`Pending`]): it joins no socket,
/// holds nothing and stays in FAULT until the loop swaps in the resolved plan.
pub(crate) fn waiting(config: &Config, inst: VrrpInstance, ifname: String) -> Plan {
    let v6 = inst
        .virtual_ipaddress
        .first()
        .is_some_and(|v| v.addr.is_ipv6());
    let wait = SourceWait {
        configured: inst.src_ip,
        v6,
    };
    let src = wait.placeholder();
    let multicast = inst.unicast_peers.is_empty();
    let group = if v6 {
        IpAddr::V6(config.global.mcast_group6)
    } else {
        IpAddr::V4(config.global.mcast_group4)
    };
    let (core, expect, proto) = core_config(&config.global, &inst, src, 0, v6, multicast);
    let link = Link {
        name: inst.interface.clone(),
        index: 0,
        mac: [0; 6],
        up: false,
    };
    Plan {
        name: inst.name.clone(),
        core,
        vrrp_link: link.clone(),
        garp_port: garp::Port {
            ifindex: 0,
            mac: [0; 6],
        },
        link,
        family: Family::of(src),
        proto,
        group,
        peers: inst.unicast_peers.clone(),
        check_unicast_src: inst.check_unicast_src,
        dest: Destination::new(src, 0, group, &inst.unicast_peers, inst.unicast_ttl),
        expect,
        vips: Vec::new(),
        advertised: 0,
        routes: Vec::new(),
        rules: Vec::new(),
        vmac: None,
        vmac_source: None,
        tracked: Vec::new(),
        lastgasp: Vec::new(),
        checksum: inst.unicast_checksum,
        promote_secondaries: false,
        source_wait: None,
        pending: Some(std::sync::Arc::new(Pending {
            ifname,
            global: config.global.clone(),
            inst,
        })),
    }
}

/// An instance's source address that is not there yet. keepalived puts such an instance in
/// FAULT rather than stopping: an interface without an IPv4 address (until one is added), a
/// `unicast_src_ip` / `mcast_src_ip` that is not local (keepalived 2.2.7 stays in FAULT for
/// good; vrrpd leaves it once the address is added).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceWait {
    configured: Option<IpAddr>,
    v6: bool,
}

impl SourceWait {
    /// Stands in for the source until it is known (nothing is sent in FAULT).
    fn placeholder(&self) -> IpAddr {
        match (self.configured, self.v6) {
            (Some(a), _) => a,
            (None, false) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            (None, true) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }

    /// keepalived's words.
    pub(crate) fn log_fault(&self, name: &str) {
        match self.configured {
            Some(a) => {
                warn!("bind unicast_src {a} failed 99 - Cannot assign requested address");
                warn!("({name}): entering FAULT state (src address not configured)");
            }
            None if self.v6 => {
                warn!("({name}) entering FAULT state (no IPv6 link local address for interface)")
            }
            None => warn!("({name}) entering FAULT state (no IPv4 address for interface)"),
        }
    }
}

/// The source address as keepalived picks it: the configured one if it is local (keepalived
/// binds to it), else the interface's primary address.
fn resolve_source<'a>(
    configured: Option<IpAddr>,
    own: &[(IpAddr, u8)],
    v6: bool,
    vips: impl Iterator<Item = &'a VirtualAddress>,
) -> Result<IpAddr, SourceWait> {
    let wait = SourceWait { configured, v6 };
    match configured {
        Some(a) if own.iter().any(|(o, _)| *o == a) || is_local(a) => Ok(a),
        Some(_) => Err(wait),
        None => primary_address(own, v6, vips).ok_or(wait),
    }
}

/// Whether `addr` is an address of this host (on any interface), as a bind to it tells.
fn is_local(addr: IpAddr) -> bool {
    std::net::UdpSocket::bind(std::net::SocketAddr::new(addr, 0)).is_ok()
}

/// The keys of what a Master tracks: keepalived tracks every address and rule unless
/// `no_track`, and a route only when it names its `dev`.
async fn tracked_keys(
    nl: &Netlink,
    vips: &[(VirtualAddress, Link)],
    routes: &[Route],
    rules: &[Rule],
) -> Vec<Key> {
    let mut keys = Vec::new();
    for (v, link) in vips.iter().filter(|(v, _)| !v.no_track) {
        keys.push(Key::Address {
            index: link.index,
            addr: v.addr,
        });
    }
    for r in routes.iter().filter(|r| r.dev.is_some() && !r.no_track) {
        match nl.route_message(r, false).await {
            Ok(m) => keys.push(Key::Route(route_key(&m))),
            Err(e) => warn!(route = %r, error = %e, "not tracking a virtual route"),
        }
    }
    for r in rules.iter().filter(|r| !r.no_track) {
        keys.push(Key::Rule(rule_key(&crate::netlink::routes::rule_message(
            r,
        ))));
    }
    keys.dedup();
    keys
}

/// Whether a reload leaves instance `name`'s configuration as it was: its block (with its
/// group's trackers) and the definitions of what it tracks.
pub(crate) fn same_config(old: &Config, new: &Config, name: &str) -> bool {
    let (Some(o), Some(n)) = (
        old.instances.iter().find(|i| i.name == name),
        new.instances.iter().find(|i| i.name == name),
    ) else {
        return false;
    };
    let (o, n) = (
        crate::daemon::trackers::with_group_trackers(old, o),
        crate::daemon::trackers::with_group_trackers(new, n),
    );
    o == n && tracked_defs(old, &o) == tracked_defs(new, &n)
}

/// The definitions of what an instance tracks (`None`: not defined).
fn tracked_defs<'a>(config: &'a Config, inst: &VrrpInstance) -> impl PartialEq + 'a {
    (
        inst.track_scripts
            .iter()
            .map(|t| config.scripts.iter().find(|s| s.name == t.name))
            .collect::<Vec<_>>(),
        inst.track_files
            .iter()
            .map(|t| config.track_files.iter().find(|f| f.name == t.name))
            .collect::<Vec<_>>(),
        inst.track_processes
            .iter()
            .map(|t| config.track_processes.iter().find(|p| p.name == t.name))
            .collect::<Vec<_>>(),
    )
}

/// A virtual address as keepalived's dump shows it.
pub(crate) fn vip_text(v: &VirtualAddress) -> String {
    let mut t = format!("{}/{}", v.addr, v.prefix_len);
    if let Some(brd) = v.broadcast {
        t += &format!(" brd {brd}");
    }
    if let Some(dev) = &v.dev {
        t += &format!(" dev {dev}");
    }
    if let Some(label) = &v.label {
        t += &format!(" label {label}");
    }
    t
}

/// The source keepalived would pick: the interface's first IPv4 address, or its IPv6
/// link-local address for an IPv6 instance. A virtual address left behind by an earlier run
/// is never the primary.
fn primary_address<'a>(
    addrs: &[(IpAddr, u8)],
    v6: bool,
    vips: impl Iterator<Item = &'a VirtualAddress>,
) -> Option<IpAddr> {
    let vips: Vec<IpAddr> = vips.map(|v| v.addr).collect();
    addrs
        .iter()
        .map(|(a, _)| *a)
        .filter(|a| !vips.contains(a))
        .find(|a| match a {
            IpAddr::V4(_) => !v6,
            IpAddr::V6(a) => v6 && a.is_unicast_link_local(),
        })
}
