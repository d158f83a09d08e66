//! `no_accept` (the default under `vrrp_strict`): a Master that is not the address owner must
//! not accept traffic for its virtual addresses (RFC 5798 §6.4.3, Accept_Mode False).
//!
//! keepalived does it with nftables (`table ip keepalived`, sets of VIPs dropped in input and
//! output at priority filter - 1, neighbour discovery let through); we load the same shape as
//! `table inet vrrpd_vrrp` with `nft -f -`, once at start for every such instance's addresses
//! (they are only local while Master, so the rules only bite then) and remove it at exit.
//! Announcements leave by AF_PACKET and adverts from the primary address, so neither is hit.

use std::collections::BTreeSet;
use std::net::IpAddr;

use sysio::nft::NftError;
use tracing::{info, warn};

use keepalived_conf::model::Config;

pub const TABLE: &str = "vrrpd_vrrp";

/// One blocked address; IPv6 link-local ones are matched with their interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Blocked {
    pub addr: IpAddr,
    pub dev: String,
}

/// The addresses of every instance without accept mode.
pub fn blocked(config: &Config) -> Vec<Blocked> {
    let set: BTreeSet<Blocked> = config
        .instances
        .iter()
        .filter(|i| !i.accept)
        .flat_map(|i| {
            i.addresses().map(|v| Blocked {
                addr: v.addr,
                dev: v.dev.clone().unwrap_or_else(|| i.interface.clone()),
            })
        })
        .collect();
    set.into_iter().collect()
}

fn link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(a) if a.is_unicast_link_local())
}

fn set(name: &str, ty: &str, elems: &[String]) -> String {
    let mut s = format!("  set {name} {{\n    type {ty}\n");
    if !elems.is_empty() {
        s += &format!("    elements = {{ {} }}\n", elems.join(", "));
    }
    s + "  }\n"
}

/// The `nft -f` input: replaces any earlier version of the table atomically.
pub fn render(blocked: &[Blocked]) -> String {
    let v4: Vec<String> = blocked
        .iter()
        .filter(|b| b.addr.is_ipv4())
        .map(|b| b.addr.to_string())
        .collect();
    let v6: Vec<String> = blocked
        .iter()
        .filter(|b| b.addr.is_ipv6() && !link_local(&b.addr))
        .map(|b| b.addr.to_string())
        .collect();
    let ll: Vec<String> = blocked
        .iter()
        .filter(|b| link_local(&b.addr))
        .map(|b| format!("{} . \"{}\"", b.addr, b.dev))
        .collect();
    let mut s =
        format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n");
    s += &set("vips4", "ipv4_addr", &v4);
    s += &set("vips6", "ipv6_addr", &v6);
    s += &set("vips6_ll", "ipv6_addr . ifname", &ll);
    for (chain, hook, dir, ifdir) in [
        ("in", "input", "daddr", "iifname"),
        ("out", "output", "saddr", "oifname"),
    ] {
        s += &format!(
            "  chain {chain} {{\n    type filter hook {hook} priority filter - 1; policy accept;\n    \
             icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept\n    \
             ip {dir} @vips4 drop\n    \
             ip6 {dir} . {ifdir} @vips6_ll drop\n    \
             ip6 {dir} @vips6 drop\n  }}\n"
        );
    }
    s + "}\n"
}

/// [`sysio::nft::apply`] off the runtime's threads.
async fn nft(input: &str) -> Result<(), NftError> {
    let input = input.to_string();
    tokio::task::spawn_blocking(move || sysio::nft::apply(&input))
        .await
        .unwrap_or_else(|e| Err(NftError::Failed(format!("nft task: {e}"))))
}

/// The loaded table, removed by [`Firewall::remove`].
pub struct Firewall {
    loaded: bool,
}

impl Firewall {
    /// Loads the drop rules when some instance has no accept mode; failing is logged (the
    /// VRRP side still works, as keepalived carries on without its firewall).
    pub async fn install(config: &Config) -> Self {
        let b = blocked(config);
        if b.is_empty() {
            return Self { loaded: false };
        }
        crate::host::record(table());
        match nft(&render(&b)).await {
            Ok(()) => {
                info!(
                    table = TABLE,
                    addresses = b.len(),
                    "no_accept: traffic to the virtual addresses is dropped"
                );
                Self { loaded: true }
            }
            Err(e) => {
                warn!(error = %e, "no_accept: cannot load the nftables drop rules");
                Self { loaded: false }
            }
        }
    }

    pub async fn remove(self) {
        if self.loaded {
            if let Err(e) = nft(&format!(
                "table inet {TABLE} {{}}\ndelete table inet {TABLE}\n"
            ))
            .await
            {
                warn!(error = %e, "removing the nftables table failed");
                return;
            }
        }
        crate::host::undone(&table());
    }
}

/// Our table, as the host journal knows it.
fn table() -> crate::host::Change {
    crate::host::Change::NftTable {
        family: "inet".into(),
        name: TABLE.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sets_and_both_directions() {
        let b = [
            Blocked {
                addr: "192.0.2.100".parse().unwrap(),
                dev: "eth0".into(),
            },
            Blocked {
                addr: "2001:db8::100".parse().unwrap(),
                dev: "eth0".into(),
            },
            Blocked {
                addr: "fe80::1:100".parse().unwrap(),
                dev: "eth0".into(),
            },
        ];
        let t = render(&b);
        assert!(t.starts_with("table inet vrrpd_vrrp {}\ndelete table inet vrrpd_vrrp\n"));
        assert!(t.contains("elements = { 192.0.2.100 }"));
        assert!(t.contains("elements = { 2001:db8::100 }"));
        assert!(t.contains("elements = { fe80::1:100 . \"eth0\" }"));
        assert!(t.contains("ip daddr @vips4 drop") && t.contains("ip saddr @vips4 drop"));
        assert!(t.contains("ip6 saddr . oifname @vips6_ll drop"));
        assert_eq!(t.matches("nd-neighbor-solicit").count(), 2);
        assert_eq!(t.matches('{').count(), t.matches('}').count());
    }

    #[test]
    fn only_instances_without_accept() {
        let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n no_accept\n virtual_ipaddress {\n 192.0.2.100/24\n }\n}\n\
                    vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 192.0.2.101/24\n }\n}\n\
                    vrrp_instance C {\n interface eth0\n virtual_router_id 3\n strict_mode on\n priority 255\n state MASTER\n virtual_ipaddress {\n 192.0.2.102/24\n }\n}\n";
        let dir = std::env::temp_dir().join(format!("vrrpd-fw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("k.conf");
        std::fs::write(&f, text).unwrap();
        let (config, _) = keepalived_conf::load(&f, &Default::default()).expect("loads");
        let _ = std::fs::remove_dir_all(&dir);
        let b = blocked(&config);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].addr, "192.0.2.100".parse::<IpAddr>().unwrap());
    }
}
