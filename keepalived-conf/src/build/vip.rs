//! Address lines: `virtual_ipaddress`, `virtual_ipaddress_excluded` and `static_ipaddress`,
//! `ADDR[/LEN] [dev IF] [scope S] [brd X] [label L] [no_track] …`, as keepalived's
//! `alloc_ipaddress` reads them: an unusable address is reported and skipped, an unknown or
//! bad option is reported and ignored.

use std::net::IpAddr;

use super::Draft;
use crate::diag::{Diagnostic, Spanned};
use crate::model::{Scope, VirtualAddress};
use crate::registry::Cx;
use crate::tree::Node;

/// Options keepalived accepts that vrrpd does not apply (each with a value or not).
const IGNORED: &[(&str, bool)] = &[
    ("peer", true),
    ("preferred_lft", true),
    ("track_group", true),
    ("home", false),
    ("-nodad", false),
    ("mngtmpaddr", false),
    ("noprefixroute", false),
    ("autojoin", false),
    ("use_vmac", false),
];

/// One address line, or `None` (reported) when the address itself is unusable.
pub fn parse<'a>(node: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<Spanned<VirtualAddress>> {
    let word = node.name();
    let (addr_s, len_s) = match word.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (word, None),
    };
    let Ok(addr) = addr_s.parse::<IpAddr>() else {
        cx.push(Diagnostic::warning(
            node.pos(),
            format!("VRRP parsed invalid IP {word}. skipping IP..."),
        ));
        return None;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match len_s {
        None => max,
        // keepalived's read_unsigned: `+24` is 24, and nothing after the `/` is 0.
        Some(l) => match crate::registry::read_unsigned(l, 0, max.into()) {
            Ok(n) => n as u8,
            Err(said) => {
                cx.push(Diagnostic::warning(node.pos(), said));
                cx.push(Diagnostic::warning(
                    node.pos(),
                    format!("Invalid address prefix len {l} for address {word} - using {max}"),
                ));
                max
            }
        },
    };
    let mut v = VirtualAddress {
        addr,
        prefix_len,
        broadcast: None,
        dev: None,
        scope: Scope::Global,
        label: None,
        no_track: false,
    };
    let mut it = node.args.iter();
    while let Some(opt) = it.next() {
        let o = &*opt.text;
        let takes_value = matches!(o, "brd" | "broadcast" | "dev" | "scope" | "label")
            || IGNORED.iter().any(|(n, val)| *n == o && *val);
        let val = if takes_value {
            match it.next() {
                Some(v) => Some(v),
                None => {
                    cx.push(Diagnostic::warning(
                        &opt.pos,
                        format!("No {o} parameter specified for {word}"),
                    ));
                    break;
                }
            }
        } else {
            None
        };
        match (o, val) {
            ("brd" | "broadcast", Some(b)) => match b.text.parse() {
                Ok(b) if addr.is_ipv4() => v.broadcast = Some(b),
                // `brd +` / `brd -`: the kernel's own broadcast, which is what is used anyway.
                _ if addr.is_ipv4() && matches!(&*b.text, "+" | "-") => {}
                _ => cx.push(Diagnostic::warning(
                    &b.pos,
                    format!(
                        "VRRP is trying to assign invalid broadcast {}. skipping",
                        b.text
                    ),
                )),
            },
            ("dev", Some(d)) => {
                if v.dev.is_some() {
                    cx.push(Diagnostic::warning(
                        &d.pos,
                        format!("Cannot specify ipaddress device more than once for {word}"),
                    ));
                } else {
                    v.dev = Some(d.text.to_string());
                }
            }
            ("label", Some(l)) => {
                if l.text.len() > 15 {
                    cx.push(Diagnostic::warning(
                        &l.pos,
                        format!(
                            "Address label {} is longer than maximum length 15 - removing address",
                            l.text
                        ),
                    ));
                    return None;
                }
                v.label = Some(l.text.to_string());
            }
            ("scope", Some(s)) => match scope(&s.text) {
                Some(sc) => v.scope = sc,
                None => cx.push(Diagnostic::warning(
                    &s.pos,
                    format!("Invalid scope '{}' specified for {word} - ignoring", s.text),
                )),
            },
            ("no_track", _) => v.no_track = true,
            (o, _) if IGNORED.iter().any(|(n, _)| *n == o) => cx.push(Diagnostic::notice(
                &opt.pos,
                format!("address option `{o}` is not implemented by vrrpd; ignored"),
            )),
            _ => {
                let mut d = Diagnostic::warning(
                    &opt.pos,
                    format!("Unknown configuration entry '{o}' for ip address - ignoring"),
                );
                if let Some(s) =
                    crate::diag::suggest(o, ["brd", "dev", "scope", "label", "no_track"])
                {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                cx.push(d);
            }
        }
    }
    if addr.is_ipv6() {
        // keepalived drops both for an IPv6 address, which has no scope or label to set.
        let mut ignored = |what: &str| {
            let said =
                format!("Cannot specify {what} for IPv6 addresses ({word}) - ignoring {what}");
            cx.push(Diagnostic::warning(node.pos(), said));
        };
        if v.scope != Scope::Global {
            ignored("scope");
            v.scope = Scope::Global;
        }
        if v.label.take().is_some() {
            ignored("label");
        }
    }
    Some(Spanned::new(v, node.pos()))
}

/// `scope` words as `ip address` takes them.
pub fn scope(s: &str) -> Option<Scope> {
    Some(match s {
        "global" | "universe" => Scope::Global,
        "site" => Scope::Site,
        "link" => Scope::Link,
        "host" => Scope::Host,
        "nowhere" => Scope::Nowhere,
        _ => Scope::Other(s.parse::<u8>().ok()?),
    })
}

/// `static_ipaddress { … }`: each needs a `dev` or the default interface.
pub fn static_addresses<'a>(d: &mut Draft, n: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    if !cx.sides.vrrp {
        return;
    }
    for c in &n.children {
        if let Some(v) = parse(c, cx) {
            match super::IfaceRef::address(&v.value, c) {
                Some(dev) => d.route_ifaces.push(dev),
                None => d
                    .static_defaulted
                    .push((c.name().to_string(), c.pos().clone())),
            }
            d.static_addresses.push(v.value);
        }
    }
}
