//! Building blocks of the end-to-end tests: node configs, mixed-daemon pairs, crash and
//! restart of one node, and bounded checks of who holds the VIP and what the client's
//! neighbour table says.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::conf::{NodeConf, NodeState};
use crate::daemon::{Daemon, DaemonProc};
use crate::error::{LabError, Result};
use crate::lab::{Host, Lab};
use crate::process::LabChild;
use crate::scenario::Pair;
use crate::wait::wait_until;

/// The lab's IPv4 VIP.
pub const VIP4: &str = "192.0.2.100/24";
/// The lab's IPv6 VIP.
pub const VIP6: &str = "2001:db8::100/64";

/// The address part of `cidr`. Panics on a bad literal (a test bug).
pub fn addr(cidr: &str) -> IpAddr {
    cidr.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bad address {cidr:?}"))
}

/// A node's instance: VRID 51 with `vip` on eth0.
pub fn node(id: &str, prio: u8, version: u8, advert_int: f64, vip: &str) -> NodeConf {
    let mut c = NodeConf::demo(id, NodeState::Backup, prio);
    c.version = version;
    c.advert_int = advert_int;
    c.vips = vec![vip.to_string()];
    c
}

/// Start `da` with `ca` on a, then `db` with `cb` on b; the pair watches `ca`'s first VIP.
pub fn start_pair(lab: Lab, da: Daemon, ca: &NodeConf, db: Daemon, cb: &NodeConf) -> Result<Pair> {
    let a = da.start(lab.host("a"), &ca.render())?;
    let b = db.start(lab.host("b"), &cb.render())?;
    let vip = ca.vip_addrs()[0];
    Ok(Pair { a, b, vip, lab })
}

/// A pair for a fault on a: `daemon` with `ca` on a until a holds the VIP, then with `cb` on
/// b until b is Backup and has heard a few of a's adverts. (Started together, a slow a can lose
/// the election, for good under `nopreempt`; a fault before b runs leaves b out of it.)
pub fn master_then_backup(lab: Lab, daemon: Daemon, ca: &NodeConf, cb: &NodeConf) -> Result<Pair> {
    let vip = ca.vip_addrs()[0];
    let a = daemon.start(lab.host("a"), &ca.render())?;
    let host = lab.host("a").clone();
    let limit = Duration::from_secs(5);
    if !wait_until(limit, Duration::from_millis(10), || host.has_addr(vip)) {
        return Err(LabError::Timeout(
            limit,
            format!("a to take {vip}:\n{}", a.log_text()),
        ));
    }
    let b = daemon.start(lab.host("b"), &cb.render())?;
    if !wait_until(limit, Duration::from_millis(10), || {
        b.log_text().contains("Entering BACKUP STATE")
    }) {
        return Err(LabError::Timeout(
            limit,
            format!("b to be Backup:\n{}", b.log_text()),
        ));
    }
    std::thread::sleep(Duration::from_secs_f64(ca.advert_int * 3.0));
    Ok(Pair { a, b, vip, lab })
}

/// False (with a message) when one of `daemons` is not installed / built.
pub fn available(daemons: &[Daemon]) -> bool {
    for d in daemons {
        if !d.available() {
            eprintln!("skipped: {d} binary not found");
            return false;
        }
    }
    true
}

/// Crash a node: SIGKILL its daemon (the VIP stays on its interface) and cut its cable.
pub fn crash(daemon: &mut DaemonProc, host: &Host) -> Result<()> {
    daemon.kill_hard();
    host.link_down()
}

/// Reboot-like restart after [`crash`]: plug the cable back in and start `daemon` with `conf`
/// at once (the daemon must deal with the VIP the crash left behind).
pub fn restart(daemon: Daemon, host: &Host, conf: &NodeConf) -> Result<DaemonProc> {
    host.link_up()?;
    daemon.start(host, &conf.render())
}

/// Check for `dur` that `node` stays the only VIP holder; the first deviation is an error.
pub fn holds_for(pair: &Pair, node: &str, dur: Duration) -> Result<()> {
    let end = Instant::now() + dur;
    while Instant::now() < end {
        let m = pair.master();
        if m != Some(node) {
            return Err(LabError::Other(format!(
                "expected {node} to stay the only VIP holder, found {m:?}; a log:\n{}\nb log:\n{}",
                pair.a.log_text(),
                pair.b.log_text()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Samples who holds the pair's VIP every 10 ms for `dur` (or until `stop` returns true);
/// returns the longest stretch during which `node` was not its only holder (zero when it held
/// it alone at every sample) and what was seen then.
pub fn longest_loss(
    pair: &Pair,
    node: &str,
    dur: Duration,
    mut stop: impl FnMut() -> bool,
) -> (Duration, Vec<Option<&'static str>>) {
    let end = Instant::now() + dur;
    let (mut longest, mut since, mut seen) = (Duration::ZERO, None::<Instant>, Vec::new());
    while Instant::now() < end && !stop() {
        let m = pair.master();
        let now = Instant::now();
        if m == Some(node) {
            since = None;
        } else {
            let from = *since.get_or_insert(now);
            longest = longest.max(now - from + Duration::from_millis(10));
            if !seen.contains(&m) {
                seen.push(m);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (longest, seen)
}

/// The SIGUSR2 stats file (keepalived's layout) as `instance -> "Section/Field" -> value`
/// ("Advertisements/Received", "Packet Errors/Address List", "Became master", …).
pub fn parse_stats(
    text: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> {
    let mut all = std::collections::BTreeMap::new();
    let (mut inst, mut section) = (String::new(), String::new());
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("VRRP Instance: ") {
            inst = name.to_string();
            continue;
        }
        let depth = line.len() - line.trim_start().len();
        let (key, value) = line.trim().split_once(':').unwrap_or((line.trim(), ""));
        let value = value.trim();
        if value.is_empty() {
            section = key.to_string();
            continue;
        }
        let key = if depth > 2 {
            format!("{section}/{key}")
        } else {
            key.to_string()
        };
        if let Ok(v) = value.parse() {
            all.entry(inst.clone())
                .or_insert_with(std::collections::BTreeMap::new)
                .insert(key, v);
        }
    }
    all
}

/// Wait until `host`'s neighbour entry for `ip` shows `mac` (without sending it traffic:
/// only an unsolicited announcement can change an existing entry that fast).
pub fn wait_neigh(host: &Host, ip: IpAddr, mac: &str, timeout: Duration) -> Result<()> {
    if wait_until(timeout, Duration::from_millis(10), || {
        host.neigh(ip).as_deref() == Some(mac)
    }) {
        return Ok(());
    }
    Err(LabError::Timeout(
        timeout,
        format!(
            "{}'s neighbour entry for {ip} to become {mac} (now {:?})",
            host.name,
            host.neigh(ip)
        ),
    ))
}

/// Ping `ip` from `host` until it answers (bounded), so the host has a neighbour entry.
pub fn reach(host: &Host, ip: IpAddr, timeout: Duration) -> Result<()> {
    if wait_until(timeout, Duration::from_millis(50), || host.ping(ip)) {
        return Ok(());
    }
    Err(LabError::Timeout(
        timeout,
        format!("{} to reach {ip}", host.name),
    ))
}

/// Signals `daemon` and returns the dump file it writes for that signal (removed first, so
/// nothing stale is read): SIGUSR1 `keepalived.data`, SIGUSR2 `keepalived.stats`, in its
/// `TMPDIR`.
pub fn signal_dump(daemon: &DaemonProc, sig: nix::sys::signal::Signal) -> Result<String> {
    signal_dump_in(daemon.pid(), sig, &daemon.tmp_dir)
}

/// [`signal_dump`] for a daemon started otherwise: process `pid`, dumps in `dir`.
pub fn signal_dump_in(pid: u32, sig: nix::sys::signal::Signal, dir: &Path) -> Result<String> {
    use nix::sys::signal::Signal;
    let file = match sig {
        Signal::SIGUSR1 => "keepalived.data",
        Signal::SIGUSR2 => "keepalived.stats",
        other => return Err(LabError::Other(format!("{other} writes no dump"))),
    };
    raw_signal_dump(pid, sig as i32, &dir.join(file))
}

/// Sends STATS_CLEAR, signal `signum` (as `--signum=STATS_CLEAR` prints it: a real-time
/// signal, outside nix's `Signal`), to `daemon`; returns the stats file written before the
/// counters were cleared.
pub fn stats_clear_dump(daemon: &DaemonProc, signum: i32) -> Result<String> {
    raw_signal_dump(
        daemon.pid(),
        signum,
        &daemon.tmp_dir.join("keepalived.stats"),
    )
}

/// Sends `signum` to `pid` and returns `path` (removed first, so nothing stale is read) once
/// written.
fn raw_signal_dump(pid: u32, signum: i32, path: &Path) -> Result<String> {
    let _ = std::fs::remove_file(path);
    let rc = std::process::Command::new("kill")
        .args(["-s", &signum.to_string(), &pid.to_string()])
        .status()?;
    if !rc.success() {
        return Err(LabError::Other(format!("kill -s {signum} {pid} failed")));
    }
    if !wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        path.exists()
    }) {
        return Err(LabError::Timeout(
            Duration::from_secs(3),
            format!("{} to be written", path.display()),
        ));
    }
    // Written in one call; give it a moment to be complete.
    std::thread::sleep(Duration::from_millis(20));
    Ok(std::fs::read_to_string(path)?)
}

/// Sends the JSON dump signal (SIGRTMIN+2, outside nix's `Signal`) to `daemon` and parses the
/// `keepalived.json` it writes in its `TMPDIR` (keepalived's format: an array of
/// `{data, stats}`, vrrpd's extras under `vrrpd`), once it is complete.
/// `vrrpd ARGS... --socket SOCKET`: a request to a daemon's control socket, its answer
/// (panics if the client fails: for tests).
pub fn ask(socket: &Path, args: &[&str]) -> String {
    let bin = Daemon::Vrrpd.binary().expect("vrrpd binary");
    let out = std::process::Command::new(bin)
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .expect("run vrrpd client");
    assert!(
        out.status.success(),
        "vrrpd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

pub fn json_dump(daemon: &DaemonProc) -> Result<serde_json::Value> {
    Ok(json_dumps(daemon)?.0)
}

/// [`json_dump`] and what vrrpd writes beside it, `vrrpd.json` (checkers, balancer, mail).
pub fn json_dumps(daemon: &DaemonProc) -> Result<(serde_json::Value, serde_json::Value)> {
    json_dumps_in(daemon.pid(), &daemon.tmp_dir)
}

/// [`json_dumps`] for a daemon started otherwise: process `pid`, dumps in `dir`.
pub fn json_dumps_in(pid: u32, dir: &Path) -> Result<(serde_json::Value, serde_json::Value)> {
    let extra_path = dir.join("vrrpd.json");
    let _ = std::fs::remove_file(&extra_path);
    let ka = json_file_dump(pid, &dir.join("keepalived.json"))?;
    let mut extra = None;
    wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        extra = std::fs::read_to_string(&extra_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        extra.is_some()
    });
    let extra = extra.ok_or_else(|| {
        LabError::Timeout(
            Duration::from_secs(3),
            format!("{} to be written", extra_path.display()),
        )
    })?;
    Ok((ka, extra))
}

/// Sends the JSON signal to `pid` and parses `path` once it is complete.
pub fn json_file_dump(pid: u32, path: &Path) -> Result<serde_json::Value> {
    let _ = std::fs::remove_file(path);
    let rc = std::process::Command::new("kill")
        .args(["-s", &(libc::SIGRTMIN() + 2).to_string(), &pid.to_string()])
        .status()?;
    if !rc.success() {
        return Err(LabError::Other(format!("kill -s RTMIN+2 {pid} failed")));
    }
    let mut parsed = None;
    wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        parsed = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        parsed.is_some()
    });
    parsed.ok_or_else(|| {
        LabError::Timeout(
            Duration::from_secs(3),
            format!("{} to be written", path.display()),
        )
    })
}

/// A real server for the checkers: Python's HTTP server on `host`, bound to `addr`:`port`.
pub fn http_server(host: &Host, addr: &str, port: u16) -> Result<LabChild> {
    host.spawn(
        "python3",
        &["-m", "http.server", "--bind", addr, &port.to_string()],
        None,
    )
}

/// Whether something accepts TCP connections on `addr`:`port` in `host`'s namespace.
pub fn serving(host: &Host, addr: &str, port: u16) -> bool {
    host.exec("bash", &["-c", &format!("exec 3<>/dev/tcp/{addr}/{port}")])
        .is_ok_and(|o| o.status.success())
}

/// Real servers on `host`'s loopback: each of `addrs` added as a /32 on `lo` with an HTTP
/// server on `port`, returned once all of them accept connections.
pub fn loopback_http_servers(host: &Host, addrs: &[&str], port: u16) -> Result<Vec<LabChild>> {
    let mut servers = Vec::with_capacity(addrs.len());
    for a in addrs {
        let o = host.exec("ip", &["addr", "add", &format!("{a}/32"), "dev", "lo"])?;
        if !o.status.success() {
            return Err(LabError::Other(format!("ip addr add {a}/32 dev lo: {o:?}")));
        }
        servers.push(http_server(host, a, port)?);
    }
    if !wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        addrs.iter().all(|a| serving(host, a, port))
    }) {
        return Err(LabError::Timeout(
            Duration::from_secs(5),
            format!("HTTP servers on {addrs:?}"),
        ));
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_parse_by_section() {
        let text = "VRRP Instance: VI_51\n  Advertisements:\n    Received: 12\n    Sent: 3\n  Became master: 1\n  Released master: 0\n  Packet Errors:\n    Length: 0\n    TTL: 2\n    Invalid Type: 0\n    Advertisement Interval: 0\n    Address List: 25\n  Authentication Errors:\n    Invalid Type: 4\n    Type Mismatch: 5\n    Failure: 6\n  Priority Zero:\n    Received: 7\n    Sent: 8\n";
        let s = &parse_stats(text)["VI_51"];
        assert_eq!(s["Advertisements/Received"], 12);
        assert_eq!(s["Became master"], 1);
        assert_eq!(s["Packet Errors/Address List"], 25);
        assert_eq!(s["Packet Errors/Invalid Type"], 0);
        assert_eq!(s["Authentication Errors/Invalid Type"], 4);
        assert_eq!(s["Priority Zero/Received"], 7);
        assert_eq!(s.len(), 14);
    }
}
