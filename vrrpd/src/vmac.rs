//! VMAC (`use_vmac`): a private-mode macvlan carrying the VRRP virtual MAC, so the VIP keeps
//! one MAC address (00:00:5e:00:01:VRID, or :02: for IPv6, RFC 5798 §7.3) whichever node is
//! Master and a failover needs no neighbour-cache change on the clients.
//!
//! The sysctls are keepalived's (`vrrp_if_config.c`):
//! - on the macvlan: `arp_ignore=1` (answer ARP only for addresses on it), `accept_local=1`
//!   (hear adverts sent from a local address by another instance), `rp_filter=0` (receive
//!   while it has no address), `promote_secondaries=1` (removing one VIP keeps the others);
//! - on its parent: `arp_ignore=1`, `arp_filter=1` (the parent must not answer ARP for the
//!   VIPs with its own MAC). These two are restored to their old values on removal.
//!
//! Not done here (keepalived does it): lowering `net.ipv4.conf.all.rp_filter` (the effective
//! value is the maximum of `all` and the interface's, so a host with `all.rp_filter=1` still
//! filters on the macvlan).

use crate::host::sysctl::{self, Saved};

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, MacVlanMode};
use rtnetlink::{Handle, LinkMacVlan};

use keepalived_conf::model::{Scope, VirtualAddress};
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("interface {0} not found")]
    NoSuchInterface(String),
    #[error("{name} exists but is not our VMAC (MAC {found})")]
    Foreign { name: String, found: String },
    #[error("no free VMAC interface name for VRID {0}")]
    NoFreeName(u8),
    #[error(transparent)]
    Sysctl(#[from] crate::host::sysctl::Error),
}

/// The VRRP virtual MAC for `vrid` (RFC 5798 §7.3).
pub fn vmac_address(vrid: u8, v6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if v6 { 0x02 } else { 0x01 }, vrid]
}

/// keepalived's interface names when `use_vmac` names none, in the order it tries them:
/// `vrrp.VRID`, then `vrrpN.VRID` for N = 1, 2, … (an IPv6 instance tries N = 6 first, so an
/// IPv4 and an IPv6 instance of one VRID get `vrrp.VRID` and `vrrp6.VRID`).
pub fn default_names(vrid: u8, v6: bool) -> impl Iterator<Item = String> {
    let first = v6.then_some(6);
    let rest = (1u8..).filter(move |n| !v6 || *n != 6);
    std::iter::once(format!("vrrp.{vrid}")).chain(
        first
            .into_iter()
            .chain(rest)
            .map(move |n| format!("vrrp{n}.{vrid}")),
    )
}

/// The first of [`default_names`] that is free or already our VMAC (same MAC: adopted).
pub async fn pick_name(h: &Handle, vrid: u8, v6: bool, mac: [u8; 6]) -> Result<String, Error> {
    for name in default_names(vrid, v6).take(16) {
        match link_by_name(h, &name).await? {
            None => return Ok(name),
            Some(m) if mac_of(&m).as_deref() == Some(&mac[..]) => return Ok(name),
            Some(_) => continue,
        }
    }
    Err(Error::NoFreeName(vrid))
}

/// The address an IPv6 VMAC carries while Master: the instance's source (the parent's
/// link-local, or `unicast_src_ip`), as keepalived does, so adverts leave the VMAC with the
/// virtual MAC from the address the peer knows. No DAD: the parent's copy passed it.
pub fn source_address(src: std::net::Ipv6Addr) -> VirtualAddress {
    VirtualAddress {
        addr: src.into(),
        prefix_len: 64,
        broadcast: None,
        dev: None,
        scope: if src.is_unicast_link_local() {
            Scope::Link
        } else {
            Scope::Global
        },
        label: None,
        no_track: true,
    }
}

/// What to create (the config layer maps `use_vmac [name] [mac]` onto this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmacSpec {
    pub name: String,
    pub base_index: u32,
    pub base_name: String,
    pub mac: [u8; 6],
    /// An IPv6 instance's VMAC: IPv6 stays on, without an address of its own (see
    /// [`Vmac::create`]).
    pub v6: bool,
}

/// A VMAC interface we created (or adopted), with the parent's sysctls to restore.
#[derive(Debug)]
pub struct Vmac {
    pub name: String,
    pub index: u32,
    /// Its MAC, as `ip link` prints it.
    mac: String,
    /// Parent sysctls as they were before us.
    saved: Saved,
}

/// Current sysctl value of `ifname` (for checks and tests).
pub fn sysctl(ifname: &str, key: &str) -> Result<String, Error> {
    Ok(sysctl::get(&sysctl::path4(ifname, key))?)
}

async fn link_by_name(
    h: &Handle,
    name: &str,
) -> Result<Option<netlink_packet_route::link::LinkMessage>, Error> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    match s.try_next().await {
        Ok(m) => Ok(m),
        // ENODEV: no such interface.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn mac_of(msg: &netlink_packet_route::link::LinkMessage) -> Option<Vec<u8>> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(m) => Some(m.clone()),
        _ => None,
    })
}

fn fmt_mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The macvlan `spec` describes, as the host journal knows it: recorded before it is made.
fn journal_entry(spec: &VmacSpec) -> crate::host::Change {
    crate::host::Change::Link {
        name: spec.name.clone(),
        mac: fmt_mac(&spec.mac),
    }
}

impl Vmac {
    /// Creates the macvlan (private mode, the virtual MAC, up) and sets the sysctls. An
    /// existing interface of that name with the same MAC is adopted (it survived a reload or
    /// a crash); one with another MAC is refused.
    ///
    /// An IPv6 VMAC generates no link-local address (`addr_gen_mode` 1, set before it comes
    /// up, RFC 5798 §7.4): one derived from the virtual MAC would be the same on both nodes.
    /// The instance puts its own source address on it while Master ([`source_address`]), so a
    /// Backup's VMAC holds no address and sends nothing, not even MLD reports, which would
    /// teach the switches the virtual MAC at the Backup's port.
    pub async fn create(h: &Handle, spec: &VmacSpec) -> Result<Self, Error> {
        let existing = link_by_name(h, &spec.name).await?;
        let msg = match existing {
            Some(m) => {
                let found = mac_of(&m).unwrap_or_default();
                if found != spec.mac {
                    return Err(Error::Foreign {
                        name: spec.name.clone(),
                        found: fmt_mac(&found),
                    });
                }
                info!(vmac = %spec.name, "adopting existing VMAC interface");
                m
            }
            None => {
                crate::host::record(journal_entry(spec));
                // Down until the sysctls below are set: coming up is when IPv6 would make its
                // link-local address.
                h.link()
                    .add(
                        LinkMacVlan::new(&spec.name, spec.base_index, MacVlanMode::Private)
                            .address(spec.mac.to_vec())
                            .build(),
                    )
                    .execute()
                    .await?;
                info!(vmac = %spec.name, mac = %fmt_mac(&spec.mac), base = %spec.base_name, "created VMAC interface");
                link_by_name(h, &spec.name)
                    .await?
                    .ok_or_else(|| Error::NoSuchInterface(spec.name.clone()))?
            }
        };
        let index = msg.header.index;
        let mac = fmt_mac(&spec.mac);
        // Adopted or made, it is ours to remove (a run that adopts one made by a previous run
        // that crashed takes over its removal).
        crate::host::record(journal_entry(spec));
        // An IPv4 VMAC needs no IPv6 (keepalived turns it off too); an IPv6 one must not
        // make its own link-local address.
        let v6_settings: &[(&str, &str)] = if spec.v6 {
            &[("disable_ipv6", "0"), ("addr_gen_mode", "1")]
        } else {
            &[("disable_ipv6", "1")]
        };
        for (k, v) in v6_settings {
            sysctl::set(&sysctl::path6(&spec.name, k), v)?;
        }
        h.link()
            .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await?;
        for (k, v) in [
            ("arp_ignore", "1"),
            ("accept_local", "1"),
            ("rp_filter", "0"),
            ("promote_secondaries", "1"),
        ] {
            sysctl::set(&sysctl::path4(&spec.name, k), v)?;
        }
        let mut saved = Saved::default();
        // arp_announce 2: ARP requests the parent sends for replies sourced from a VIP carry the
        // parent's own address, so they do not repoint neighbours' entries for the VIP at the
        // parent's MAC (the VIP must stay at the virtual MAC).
        for (k, v) in [
            ("arp_ignore", "1"),
            ("arp_filter", "1"),
            ("arp_announce", "2"),
        ] {
            saved.set(sysctl::path4(&spec.base_name, k), v)?;
        }
        Ok(Self {
            name: spec.name.clone(),
            index,
            mac,
            saved,
        })
    }

    /// Keeps the macvlan for the instance a reload starts next, which adopts it: the parent's
    /// sysctls go back to what they were, so the next one saves the original values again.
    pub fn hand_over(mut self) {
        self.saved.restore();
    }

    /// Deletes the macvlan and restores the parent's sysctls.
    pub async fn remove(mut self, h: &Handle) -> Result<(), Error> {
        self.saved.restore();
        h.link().del(self.index).execute().await?;
        info!(vmac = %self.name, "removed VMAC interface");
        crate::host::undone(&crate::host::Change::Link {
            name: self.name.clone(),
            mac: self.mac.clone(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names() {
        assert_eq!(vmac_address(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(vmac_address(255, true), [0, 0, 0x5e, 0, 2, 255]);
        let names = |v6| default_names(51, v6).take(8).collect::<Vec<_>>();
        assert_eq!(
            names(false),
            [
                "vrrp.51", "vrrp1.51", "vrrp2.51", "vrrp3.51", "vrrp4.51", "vrrp5.51", "vrrp6.51",
                "vrrp7.51"
            ]
        );
        assert_eq!(
            names(true),
            [
                "vrrp.51", "vrrp6.51", "vrrp1.51", "vrrp2.51", "vrrp3.51", "vrrp4.51", "vrrp5.51",
                "vrrp7.51"
            ]
        );
    }

    /// In a private network namespace (this thread only), on a veth: create the VMAC, check
    /// mode/MAC/sysctls, adopt it again, refuse a foreign MAC, remove it and see the parent's
    /// sysctls restored.
    #[test]
    fn create_adopt_and_remove_in_a_namespace() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (network namespace, macvlan)");
            return;
        }
        crate::testutil::in_netns_with_veth("vt-base0", "vt-peer0", |h| async move {
            let base = link_by_name(&h, "vt-base0").await.unwrap().unwrap();
            let base_index = base.header.index;
            h.link()
                .set(
                    rtnetlink::LinkUnspec::new_with_index(base_index)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .unwrap();
            let before = (
                sysctl("vt-base0", "arp_ignore").unwrap(),
                sysctl("vt-base0", "arp_filter").unwrap(),
            );
            assert_eq!(before, ("0".to_string(), "0".to_string()));
            let spec = VmacSpec {
                name: "vrrp.51".into(),
                base_index,
                base_name: "vt-base0".into(),
                mac: vmac_address(51, false),
                v6: false,
            };
            let v = Vmac::create(&h, &spec).await.unwrap();
            let out = std::process::Command::new("ip")
                .args(["-d", "link", "show", "vrrp.51"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("macvlan mode private"), "{text}");
            assert!(text.contains("link/ether 00:00:5e:00:01:33"), "{text}");
            assert!(text.contains("vrrp.51@vt-base0"), "{text}");
            for (k, want) in [
                ("arp_ignore", "1"),
                ("accept_local", "1"),
                ("rp_filter", "0"),
                ("promote_secondaries", "1"),
            ] {
                assert_eq!(sysctl("vrrp.51", k).unwrap(), want, "{k}");
            }
            assert_eq!(sysctl("vt-base0", "arp_ignore").unwrap(), "1");
            assert_eq!(sysctl("vt-base0", "arp_filter").unwrap(), "1");
            // Adopted on a second create (reload); the same index.
            let again = Vmac::create(&h, &spec).await.unwrap();
            assert_eq!(again.index, v.index);
            // A different MAC under that name is not ours.
            let foreign = VmacSpec {
                mac: vmac_address(52, false),
                ..spec.clone()
            };
            assert!(matches!(
                Vmac::create(&h, &foreign).await,
                Err(Error::Foreign { .. })
            ));
            // The first create saved the parent's original values; removing restores them.
            drop(again);
            v.remove(&h).await.unwrap();
            assert!(link_by_name(&h, "vrrp.51").await.unwrap().is_none());
            assert_eq!(sysctl("vt-base0", "arp_ignore").unwrap(), "0");
            assert_eq!(sysctl("vt-base0", "arp_filter").unwrap(), "0");
        });
    }

    /// An IPv6 VMAC comes up without an address of its own (addr_gen_mode none), with IPv6 on;
    /// an IPv4 one has IPv6 off.
    #[test]
    fn ipv6_vmac_makes_no_link_local() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (network namespace, macvlan)");
            return;
        }
        crate::testutil::in_netns_with_veth("vt-base1", "vt-peer1", |h| async move {
            let base = link_by_name(&h, "vt-base1").await.unwrap().unwrap();
            let base_index = base.header.index;
            h.link()
                .set(
                    rtnetlink::LinkUnspec::new_with_index(base_index)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .unwrap();
            let v6 = Vmac::create(
                &h,
                &VmacSpec {
                    name: "vrrp6.7".into(),
                    base_index,
                    base_name: "vt-base1".into(),
                    mac: vmac_address(7, true),
                    v6: true,
                },
            )
            .await
            .unwrap();
            let v4 = Vmac::create(
                &h,
                &VmacSpec {
                    name: "vrrp.7".into(),
                    base_index,
                    base_name: "vt-base1".into(),
                    mac: vmac_address(7, false),
                    v6: false,
                },
            )
            .await
            .unwrap();
            let six = |name: &str, key: &str| sysctl::get(&sysctl::path6(name, key)).unwrap();
            assert_eq!(six("vrrp6.7", "addr_gen_mode"), "1");
            assert_eq!(six("vrrp6.7", "disable_ipv6"), "0");
            assert_eq!(six("vrrp.7", "disable_ipv6"), "1");
            // Up long enough for the kernel to have made an address if it were going to.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let ip = |args: &[&str]| {
                let out = std::process::Command::new("ip")
                    .args(args)
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            let link = ip(&["link", "show", "dev", "vrrp6.7"]);
            assert!(link.contains(",UP"), "{link}");
            let addrs = ip(&["-6", "addr", "show", "dev", "vrrp6.7"]);
            assert!(!addrs.contains("inet6"), "{addrs}");
            v6.remove(&h).await.unwrap();
            v4.remove(&h).await.unwrap();
        });
    }
}
