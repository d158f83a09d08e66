//! `static_ipaddress`, `static_routes` and `static_rules`: installed when the daemon starts,
//! whatever the VRRP state, and removed when it exits (as keepalived does).

use tracing::warn;

use crate::netlink::Netlink;
use keepalived_conf::model::Config;

/// What was installed, for [`Statics::remove`].
pub(super) struct Statics {
    nl: Netlink,
    config: Config,
}

impl Statics {
    /// Installs addresses, then routes, then rules; a failure is logged, not fatal (keepalived
    /// carries on too).
    pub(super) async fn install(config: &Config, nl: &Netlink) -> Self {
        let config = Config {
            static_addresses: config.static_addresses.clone(),
            static_routes: config.static_routes.clone(),
            static_rules: config.static_rules.clone(),
            ..Config::default()
        };
        for a in &config.static_addresses {
            let Some(dev) = &a.dev else {
                warn!(addr = %a.addr, "static address without `dev`: not installed");
                continue;
            };
            match nl.link(dev).await {
                Ok(l) => {
                    if let Err(e) = nl.add_vip(l.index, dev, a).await {
                        warn!(error = %e, "adding static address failed");
                    }
                }
                Err(e) => warn!(error = %e, "adding static address failed"),
            }
        }
        for r in &config.static_routes {
            if let Err(e) = nl.add_route(r).await {
                warn!(error = %e, "adding static route failed");
            }
        }
        for r in &config.static_rules {
            if let Err(e) = nl.add_rule(r).await {
                warn!(error = %e, "adding static rule failed");
            }
        }
        Self {
            nl: nl.clone(),
            config,
        }
    }

    /// Removes everything [`Statics::install`] added, in reverse order.
    pub(super) async fn remove(self) {
        let nl = &self.nl;
        for r in &self.config.static_rules {
            if let Err(e) = nl.del_rule(r).await {
                warn!(error = %e, "removing static rule failed");
            }
        }
        for r in &self.config.static_routes {
            if let Err(e) = nl.del_route(r).await {
                warn!(error = %e, "removing static route failed");
            }
        }
        for a in &self.config.static_addresses {
            if let Some(dev) = &a.dev {
                if let Ok(l) = nl.link(dev).await {
                    if let Err(e) = nl.del_vip(l.index, dev, a).await {
                        warn!(error = %e, "removing static address failed");
                    }
                }
            }
        }
    }
}

/// Whether a reload changes the static addresses, routes or rules.
pub(super) fn differ(a: &Config, b: &Config) -> bool {
    a.static_addresses != b.static_addresses
        || a.static_routes != b.static_routes
        || a.static_rules != b.static_rules
}
