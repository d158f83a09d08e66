//! keepalived.conf rendering for one lab node. vrrpd reads the same format, so both daemons
//! under test get identical text.

use std::fmt::Write;

/// Initial state of the instance (`state MASTER|BACKUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Master,
    Backup,
}

/// One node's VRRP instance.
#[derive(Debug, Clone)]
pub struct NodeConf {
    pub router_id: String,
    pub vrid: u8,
    pub priority: u8,
    pub state: NodeState,
    /// Seconds; fractions need VRRPv3.
    pub advert_int: f64,
    /// 2 or 3.
    pub version: u8,
    /// Virtual addresses with prefix length, e.g. `192.0.2.100/24`.
    pub vips: Vec<String>,
    /// Interface inside the node (`eth0` in the lab).
    pub interface: String,
    pub unicast_src: Option<String>,
    pub unicast_peers: Vec<String>,
    pub nopreempt: bool,
    /// VRRPv2 simple password (ignored by v3).
    pub auth_pass: Option<String>,
    /// With `auth_pass`: `auth_type AH` (IPsec AH, HMAC-MD5-96) instead of PASS.
    pub auth_ah: bool,
    /// Extra lines for `global_defs` (e.g. `vrrp_garp_master_delay 0`).
    pub extra_global: Option<String>,
    /// Extra top-level text between `global_defs` and the instance (`vrrp_script` blocks,
    /// more instances, sync groups).
    pub extra_top: Option<String>,
    /// Extra lines inside the instance (`track_script { … }`, `notify_master …`).
    pub extra_instance: Option<String>,
    /// Extra top-level blocks after the instance (`virtual_server`, …).
    pub extra_blocks: Option<String>,
}

impl NodeConf {
    /// The lab's demo instance: VRID 51, VIP 192.0.2.100 on eth0, VRRPv3 every 100 ms.
    pub fn demo(router_id: &str, state: NodeState, priority: u8) -> Self {
        Self {
            router_id: router_id.into(),
            vrid: 51,
            priority,
            state,
            advert_int: 0.1,
            version: 3,
            vips: vec!["192.0.2.100/24".into()],
            interface: crate::lab::HOST_IF.into(),
            unicast_src: None,
            unicast_peers: Vec::new(),
            nopreempt: false,
            auth_pass: None,
            auth_ah: false,
            extra_global: None,
            extra_top: None,
            extra_instance: None,
            extra_blocks: None,
        }
    }

    /// Render the config file text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "global_defs {{\n    router_id {}", self.router_id);
        if let Some(extra) = &self.extra_global {
            let _ = writeln!(s, "    {extra}");
        }
        let _ = writeln!(s, "}}\n");
        if let Some(extra) = &self.extra_top {
            let _ = writeln!(s, "{extra}\n");
        }
        let _ = writeln!(s, "vrrp_instance VI_{} {{", self.vrid);
        let state = match self.state {
            NodeState::Master => "MASTER",
            NodeState::Backup => "BACKUP",
        };
        let _ = writeln!(s, "    state {state}");
        let _ = writeln!(s, "    interface {}", self.interface);
        let _ = writeln!(s, "    virtual_router_id {}", self.vrid);
        let _ = writeln!(s, "    priority {}", self.priority);
        let _ = writeln!(s, "    advert_int {}", self.advert_int);
        let _ = writeln!(s, "    version {}", self.version);
        if self.nopreempt {
            let _ = writeln!(s, "    nopreempt");
        }
        if let Some(pass) = &self.auth_pass {
            let kind = if self.auth_ah { "AH" } else { "PASS" };
            let _ = writeln!(
                s,
                "    authentication {{\n        auth_type {kind}\n        auth_pass {pass}\n    }}"
            );
        }
        if let Some(src) = &self.unicast_src {
            let _ = writeln!(s, "    unicast_src_ip {src}");
        }
        if !self.unicast_peers.is_empty() {
            let _ = writeln!(s, "    unicast_peer {{");
            for p in &self.unicast_peers {
                let _ = writeln!(s, "        {p}");
            }
            let _ = writeln!(s, "    }}");
        }
        if let Some(extra) = &self.extra_instance {
            let _ = writeln!(s, "    {extra}");
        }
        let _ = writeln!(s, "    virtual_ipaddress {{");
        for v in &self.vips {
            let _ = writeln!(s, "        {v} dev {}", self.interface);
        }
        let _ = writeln!(s, "    }}");
        let _ = writeln!(s, "}}");
        if let Some(extra) = &self.extra_blocks {
            let _ = writeln!(s, "{extra}");
        }
        s
    }

    /// VIP addresses without prefix length.
    pub fn vip_addrs(&self) -> Vec<std::net::IpAddr> {
        self.vips
            .iter()
            .filter_map(|v| v.split('/').next()?.parse().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_options() {
        let mut c = NodeConf::demo("a", NodeState::Backup, 150);
        c.nopreempt = true;
        c.version = 2;
        c.advert_int = 1.0;
        c.auth_pass = Some("secret".into());
        c.unicast_src = Some("192.0.2.1".into());
        c.unicast_peers = vec!["192.0.2.2".into()];
        let t = c.render();
        for want in [
            "state BACKUP",
            "interface eth0",
            "virtual_router_id 51",
            "priority 150",
            "advert_int 1\n",
            "version 2",
            "nopreempt",
            "auth_pass secret",
            "unicast_src_ip 192.0.2.1",
            "        192.0.2.2\n",
            "192.0.2.100/24 dev eth0",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        assert_eq!(t.matches('{').count(), t.matches('}').count());
    }

    #[test]
    fn demo_matches_example_files() {
        let strip = |t: &str| -> String {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let a = include_str!("../../etc/keepalived-a.conf");
        let b = include_str!("../../etc/keepalived-b.conf");
        assert_eq!(
            NodeConf::demo("lab_a", NodeState::Master, 150).render(),
            strip(a)
        );
        assert_eq!(
            NodeConf::demo("lab_b", NodeState::Backup, 100).render(),
            strip(b)
        );
    }
}
