//! `lvs_sync_daemon INTERFACE [VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]`
//! of `global_defs`: IPVS's connection sync, driven by an instance's state.

use std::net::IpAddr;

use crate::diag::{Diagnostic, Pos};
use crate::model::{LvsSyncDaemon, VrrpInstance};
use crate::registry::Cx;
use crate::tree::Node;

/// `lvs_sync_daemon` as written; the instance is looked up once all are read.
#[derive(Debug, Clone)]
pub struct SyncDaemonDraft {
    pub interface: String,
    pub instance: Option<String>,
    syncid: Option<u8>,
    maxlen: Option<u16>,
    port: Option<u16>,
    ttl: Option<u8>,
    group: Option<IpAddr>,
    pos: Pos,
}

impl SyncDaemonDraft {
    /// keepalived's parse: keyword options in any order, the old positional `VRRP_INSTANCE
    /// [SYNC_ID]` too; a bad value is reported and ignored, as keepalived ignores it.
    pub fn parse<'a>(n: &Node<'a>, cx: &mut Cx<'_, 'a>) -> Option<Self> {
        let Some(first) = n.args.first() else {
            cx.push(Diagnostic::warning(
                n.pos(),
                "lvs_sync_daemon requires interface",
            ));
            return None;
        };
        let mut s = Self {
            interface: first.text.to_string(),
            instance: None,
            syncid: None,
            maxlen: None,
            port: None,
            ttl: None,
            group: None,
            pos: n.pos().clone(),
        };
        let args = &n.args;
        let mut i = 1;
        while i < args.len() {
            let word = &*args[i].text;
            let value = args.get(i + 1);
            let num = |cx: &mut Cx, min: u32, max: u32, what: &str| -> Option<u32> {
                let Some(v) = value else {
                    cx.push(Diagnostic::warning(
                        &args[i].pos,
                        format!("No value specified for lvs_sync_daemon {word} - ignoring"),
                    ));
                    return None;
                };
                match v.text.parse::<u32>() {
                    Ok(x) if (min..=max).contains(&x) => Some(x),
                    _ => {
                        cx.push(Diagnostic::warning(
                            &v.pos,
                            format!("Invalid {what} ({}) - ignoring", v.text),
                        ));
                        None
                    }
                }
            };
            match word {
                "inst" => {
                    if let Some(v) = value {
                        s.instance.get_or_insert(v.text.to_string());
                    }
                }
                "id" => s.syncid = num(cx, 0, 255, "syncid").map(|v| v as u8).or(s.syncid),
                "maxlen" => {
                    s.maxlen = num(cx, 1, 65535 - 20 - 8, "lvs_sync_daemon maxlen")
                        .map(|v| v as u16)
                        .or(s.maxlen)
                }
                "port" => {
                    s.port = num(cx, 1, 65535, "lvs_sync_daemon port")
                        .map(|v| v as u16)
                        .or(s.port)
                }
                "ttl" => {
                    s.ttl = num(cx, 1, 255, "lvs_sync_daemon ttl")
                        .map(|v| v as u8)
                        .or(s.ttl)
                }
                "group" => {
                    match value.map(|v| (v, crate::registry::sockaddr_ip(&v.text).ok_or(()))) {
                        Some((_, Ok(ip))) if ip.is_multicast() => s.group = Some(ip),
                        Some((v, _)) => cx.push(Diagnostic::warning(
                            &v.pos,
                            format!(
                                "lvs_sync_daemon group address {} is not multicast - ignoring",
                                v.text
                            ),
                        )),
                        None => cx.push(Diagnostic::warning(
                            &args[i].pos,
                            "No value specified for lvs_sync_daemon group - ignoring",
                        )),
                    }
                }
                // keepalived before 2.0: `INTERFACE VRRP_INSTANCE [SYNC_ID]`.
                _ if i == 1 => {
                    s.instance = Some(word.to_string());
                    i += 1;
                    continue;
                }
                _ if i == 2 => {
                    match word.parse::<u8>() {
                        Ok(v) => {
                            cx.push(Diagnostic::warning(
                                &args[i].pos,
                                "Please use keyword \"id\" before lvs_sync_daemon SYNCID",
                            ));
                            s.syncid = Some(v);
                        }
                        Err(_) => cx.push(Diagnostic::warning(
                            &args[i].pos,
                            format!("Invalid syncid ({word}) - defaulting to vrid"),
                        )),
                    }
                    i += 1;
                    continue;
                }
                _ => {
                    cx.push(Diagnostic::warning(
                        &args[i].pos,
                        format!("Unknown option {word} specified for lvs_sync_daemon"),
                    ));
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        Some(s)
    }

    /// Looks the instance up: its virtual_router_id is the default sync id. Without one that
    /// exists nothing is synchronised (keepalived clears the setting too, and runs).
    pub fn resolve(&self, instances: &[VrrpInstance], cx: &mut Cx) -> Option<LvsSyncDaemon> {
        let Some(name) = &self.instance else {
            // keepalived then runs a sending and a receiving daemon at once (active/active);
            // the balancer here forwards on one node at a time.
            cx.push(Diagnostic::notice(
                &self.pos,
                "lvs_sync_daemon without a VRRP instance is not supported: name the instance whose Master sends - clearing lvs_syncd config",
            ));
            return None;
        };
        let Some(inst) = instances.iter().find(|i| &i.name == name) else {
            // keepalived says so when it starts, not under -t.
            cx.push(Diagnostic::notice(
                &self.pos,
                format!(
                    "Unable to find vrrp instance {name} for lvs_syncd - clearing lvs_syncd config"
                ),
            ));
            return None;
        };
        Some(LvsSyncDaemon {
            interface: self.interface.clone(),
            instance: name.clone(),
            syncid: self.syncid.unwrap_or(inst.virtual_router_id),
            maxlen: self.maxlen,
            port: self.port.unwrap_or(8848),
            ttl: self.ttl.unwrap_or(1),
            group: self.group,
        })
    }
}
