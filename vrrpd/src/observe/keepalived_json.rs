//! keepalived 2.2.7's JSON dump (`--signum=JSON` → `$TMPDIR/keepalived.json`), field for
//! field as its vrrp_json.c writes it: an array with one `{"data": {...}, "stats": {...}}`
//! per instance, keys in its order, numbers as its json_writer prints them (`%g` for
//! intervals, `%f` for the last transition, 0/1 for some flags and true/false for others),
//! `/` escaped as `\/`, optional keys (scripts, address lists, tracked objects,
//! authentication) only when set. keepalived-exporter's `--ka.json` and other readers of that
//! file get what they expect.
//!
//! What keepalived does not have goes under a `"vrrpd"` key of each instance (readers ignore
//! keys they do not know); daemon-wide sections (checkers, balancer, mail) go to
//! `$TMPDIR/vrrpd.json`.

use std::fmt::Write;
use std::net::IpAddr;

use keepalived_conf::model::{Authentication, Config, Scope, VirtualAddress, VrrpInstance};
use vrrp_proto::fsm::State;

use super::status::InstanceStatus;

use super::metrics::state_number;

/// A JSON object written key by key, in order.
struct Obj(String);

impl Obj {
    fn new() -> Self {
        Self(String::from("{"))
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        string(&mut self.0, k);
        self.0.push(':');
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        string(&mut self.0, v);
    }

    fn uint(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.0, "{v}");
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.0.push_str(if v { "true" } else { "false" });
    }

    /// `%g`, as jsonw_float_field.
    fn float(&mut self, k: &str, v: f64) {
        self.key(k);
        self.0.push_str(&fmt_g(v));
    }

    /// A literal already in JSON form.
    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.0.push_str(v);
    }

    /// An array of strings, left out when empty (as vrrp_json_array_dump does).
    fn strings(&mut self, k: &str, v: &[String]) {
        if v.is_empty() {
            return;
        }
        self.key(k);
        self.0.push('[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            string(&mut self.0, s);
        }
        self.0.push(']');
    }

    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A string as keepalived's json_writer escapes it (`/` included).
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// C's `%g`: six significant digits, no trailing zeros, no exponent for the values a dump
/// holds (intervals from 0.01 s to hours).
fn fmt_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = 6 - (v.abs().log10().floor() as i32 + 1);
    let s = format!("{v:.*}", digits.max(0) as usize);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A script line as keepalived's cmd_str shows it: each word quoted, the program by its real
/// path.
fn cmd_str(line: &str) -> String {
    let mut words = checks::script::words(line).unwrap_or_default();
    if let Some(p) = words.first_mut().filter(|p| p.starts_with('/')) {
        if let Ok(real) = std::fs::canonicalize(&*p) {
            *p = real.display().to_string();
        }
    }
    checks::script::cmd_str(&words)
}

fn scope_name(s: Scope) -> String {
    match s {
        Scope::Global => "global".into(),
        Scope::Site => "site".into(),
        Scope::Link => "link".into(),
        Scope::Host => "host".into(),
        Scope::Nowhere => "nowhere".into(),
        Scope::Other(n) => n.to_string(),
    }
}

/// A virtual address as format_ipaddress writes it (`set` while it is configured).
fn address(v: &VirtualAddress, dev: &str, set: bool) -> String {
    let full = matches!(
        (v.addr, v.prefix_len),
        (IpAddr::V4(_), 32) | (IpAddr::V6(_), 128)
    );
    let mut s = if full {
        v.addr.to_string()
    } else {
        format!("{}/{}", v.addr, v.prefix_len)
    };
    if let Some(b) = v.broadcast {
        let _ = write!(s, " brd {b}");
    }
    let _ = write!(
        s,
        " dev {} scope {}",
        v.dev.as_deref().unwrap_or(dev),
        scope_name(v.scope)
    );
    if let Some(l) = &v.label {
        let _ = write!(s, " label {l}");
    }
    if v.no_track {
        s.push_str(" no_track");
    }
    if v.addr.is_ipv6() {
        s.push_str(" preferred_lft forever");
    }
    if set {
        s.push_str(" set");
    }
    s
}

fn data(cfg: &VrrpInstance, st: &InstanceStatus, config: &Config) -> String {
    let flag = |b: bool| u64::from(b);
    let mut o = Obj::new();
    o.str("iname", &cfg.name);
    o.uint("dont_track_primary", flag(cfg.dont_track_primary));
    o.uint("skip_check_adv_addr", flag(cfg.skip_check_adv_addr));
    o.uint("strict_mode", flag(cfg.strict_mode));
    let vmac = cfg.use_vmac.as_ref().map(|v| {
        v.name
            .clone()
            .unwrap_or_else(|| format!("vrrp.{}", cfg.virtual_router_id))
    });
    o.str("vmac_ifname", vmac.as_deref().unwrap_or(""));
    o.str("ifp_ifname", &st.interface);
    o.uint("master_priority", st.master_priority as u64);
    o.raw("last_transition", &format!("{:.6}", st.last_transition));
    let g = &cfg.garp;
    o.float("garp_delay", g.master_delay.as_secs_f64());
    o.uint("garp_refresh", g.master_refresh.as_secs());
    o.uint("garp_rep", g.master_repeat as u64);
    o.uint("garp_refresh_rep", g.master_refresh_repeat as u64);
    o.uint("garp_lower_prio_delay", g.lower_prio_delay.as_secs());
    o.uint("garp_lower_prio_rep", g.lower_prio_repeat as u64);
    o.uint("lower_prio_no_advert", flag(g.lower_prio_no_advert));
    o.uint("higher_prio_send_advert", flag(cfg.higher_prio_send_advert));
    o.uint("vrid", cfg.virtual_router_id as u64);
    o.uint("base_priority", st.base_priority as u64);
    o.uint("effective_priority", st.effective_priority as u64);
    let master = st.state == State::Master;
    o.bool("vipset", master);
    o.bool("promote_secondaries", cfg.promote_secondaries);
    o.float("adver_int", f64::from(cfg.advert_int) / 100.0);
    o.float("master_adver_int", st.master_adver_int);
    o.uint("accept", flag(cfg.accept));
    o.bool("nopreempt", cfg.nopreempt);
    o.uint("preempt_delay", cfg.preempt_delay.as_secs());
    o.uint("state", state_number(st.state) as u64);
    o.uint("wantstate", state_number(st.state) as u64);
    let version = match cfg.version {
        vrrp_proto::packet::Version::V2 => 2,
        vrrp_proto::packet::Version::V3 => 3,
    };
    o.uint("version", version);
    o.bool("smtp_alert", config.global.mail.vrrp_alert(cfg.smtp_alert));
    o.bool("notify_deleted", false);
    let n = &cfg.notify;
    for (k, v) in [
        ("script_backup", &n.backup),
        ("script_master", &n.master),
        ("script_fault", &n.fault),
        ("script_stop", &n.stop),
        ("script", &n.any),
        ("script_master_rx_lower_pri", &n.master_rx_lower_pri),
    ] {
        if let Some(s) = v {
            o.str(k, &cmd_str(s));
        }
    }
    let addrs = |l: &[VirtualAddress]| -> Vec<String> {
        l.iter()
            .map(|v| address(v, &cfg.interface, master))
            .collect()
    };
    o.strings("vips", &addrs(&cfg.virtual_ipaddress));
    o.strings("evips", &addrs(&cfg.virtual_ipaddress_excluded));
    let routes: Vec<String> = cfg.virtual_routes.iter().map(|r| r.to_string()).collect();
    o.strings("vroutes", &routes);
    let rules: Vec<String> = cfg.virtual_rules.iter().map(|r| r.to_string()).collect();
    o.strings("vrules", &rules);
    // keepalived tracks the instance's own interface anyway and lists only the others.
    let ifs: Vec<String> = cfg
        .track_interfaces
        .iter()
        .filter(|t| t.name != cfg.interface)
        .map(|t| t.name.clone())
        .collect();
    o.strings("track_ifp", &ifs);
    let scripts: Vec<String> = cfg
        .track_scripts
        .iter()
        .filter_map(|t| config.scripts.iter().find(|s| s.name == t.name))
        .map(|s| cmd_str(&s.script))
        .collect();
    o.strings("track_script", &scripts);
    match &cfg.authentication {
        Some(a @ (Authentication::Pass(p) | Authentication::Ah(p))) => {
            o.uint(
                "auth_type",
                if matches!(a, Authentication::Ah(_)) {
                    2
                } else {
                    1
                },
            );
            o.str("auth_data", &p.chars().take(8).collect::<String>());
        }
        None => o.uint("auth_type", 0),
    }
    o.end()
}

fn stats(st: &InstanceStatus) -> String {
    let mut o = Obj::new();
    for ((name, _, _), read) in super::metrics::VRRP_COUNTERS {
        let key = match name {
            "keepalived_advertisements_received_total" => "advert_rcvd",
            "keepalived_advertisements_sent_total" => "advert_sent",
            "keepalived_become_master_total" => "become_master",
            "keepalived_release_master_total" => "release_master",
            "keepalived_packet_length_errors_total" => "packet_len_err",
            "keepalived_advertisements_interval_errors_total" => "advert_interval_err",
            "keepalived_ip_ttl_errors_total" => "ip_ttl_err",
            "keepalived_invalid_type_received_total" => "invalid_type_rcvd",
            "keepalived_address_list_errors_total" => "addr_list_err",
            "keepalived_authentication_invalid_total" => "invalid_authtype",
            "keepalived_authentication_mismatch_total" => "authtype_mismatch",
            "keepalived_authentication_failure_total" => "auth_failure",
            "keepalived_priority_zero_received_total" => "pri_zero_rcvd",
            "keepalived_priority_zero_sent_total" => "pri_zero_sent",
            _ => continue,
        };
        o.uint(key, read(&st.counters));
    }
    o.end()
}

/// The dump: instances in configuration order (an instance without status is left out).
pub fn render(config: &Config, statuses: &[InstanceStatus]) -> String {
    let mut out = String::from("[");
    let mut first = true;
    for cfg in &config.instances {
        let Some(st) = statuses.iter().find(|s| s.name == cfg.name) else {
            continue;
        };
        if !first {
            out.push(',');
        }
        first = false;
        let mut o = Obj::new();
        o.raw("data", &data(cfg, st, config));
        o.raw("stats", &stats(st));
        let extra = serde_json::to_string(st).unwrap_or_else(|_| "{}".into());
        o.raw("vrrpd", &extra);
        out.push_str(&o.end());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_as_keepalived_prints_them() {
        assert_eq!(fmt_g(5.0), "5");
        assert_eq!(fmt_g(0.1), "0.1");
        assert_eq!(fmt_g(1.25), "1.25");
        assert_eq!(fmt_g(0.0), "0");
        assert_eq!(fmt_g(3600.0), "3600");
        let mut s = String::new();
        string(&mut s, "192.0.2.100/24 \"x\"\n");
        assert_eq!(s, "\"192.0.2.100\\/24 \\\"x\\\"\\n\"");
        assert_eq!(cmd_str("/nonexistent/x a b"), "'/nonexistent/x' 'a' 'b'");
    }

    #[test]
    fn addresses_as_format_ipaddress() {
        let v = VirtualAddress {
            addr: "192.0.2.100".parse().unwrap(),
            prefix_len: 24,
            broadcast: None,
            dev: None,
            scope: Scope::Global,
            label: None,
            no_track: false,
        };
        assert_eq!(
            address(&v, "eth0", true),
            "192.0.2.100/24 dev eth0 scope global set"
        );
        let full = VirtualAddress {
            prefix_len: 32,
            ..v.clone()
        };
        assert_eq!(
            address(&full, "eth0", false),
            "192.0.2.100 dev eth0 scope global"
        );
    }
}
