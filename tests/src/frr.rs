//! FRRouting's VRRP (Debian's `frr` package) as a foreign router on a lab node: another
//! implementation of RFC 3768 / RFC 5798, written apart from keepalived, for interop tests.
//!
//! zebra and vrrpd run in the node's namespace as FRR's own `frr` user, with their pid files and
//! vty sockets in the node's directory, so several labs can run FRR at once. FRR's VRRP needs a
//! macvlan per family on the parent interface holding the virtual MAC and the virtual addresses
//! (its documentation has the operator make them; FRR only sets their protodown flag): made
//! here.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::lab::Host;
use crate::process::LabChild;
use crate::wait::wait_until;

const ZEBRA: &str = "/usr/lib/frr/zebra";
const VRRPD: &str = "/usr/lib/frr/vrrpd";

/// One VRRP router as FRR is told it (`interface eth0` / `vrrp VRID ...`).
#[derive(Debug, Clone)]
pub struct FrrRouter {
    pub vrid: u8,
    pub version: u8,
    pub priority: u8,
    /// Milliseconds (FRR's unit; a multiple of 1000 under version 2).
    pub advert_ms: u32,
    /// Virtual addresses with their prefix length, one family.
    pub vips: Vec<String>,
}

impl FrrRouter {
    fn v6(&self) -> bool {
        self.vips.iter().any(|v| v.contains(':'))
    }

    /// The virtual MAC of RFC 5798 §7.3 for this router's family.
    pub fn vmac(&self) -> String {
        format!(
            "00:00:5e:00:{:02x}:{:02x}",
            if self.v6() { 2 } else { 1 },
            self.vrid
        )
    }

    fn config(&self) -> String {
        let Self {
            vrid,
            version,
            priority,
            advert_ms,
            ..
        } = self;
        let mut c = format!(
            "hostname frr\nlog stdout informational\ninterface eth0\n vrrp {vrid} version {version}\n \
             vrrp {vrid} priority {priority}\n vrrp {vrid} advertisement-interval {advert_ms}\n"
        );
        for v in &self.vips {
            let addr = v.split('/').next().unwrap_or(v);
            let kw = if self.v6() { "ipv6" } else { "ip" };
            c += &format!(" vrrp {vrid} {kw} {addr}\n");
        }
        c
    }
}

/// FRR's zebra and vrrpd on one node (both killed on drop).
pub struct Frr {
    host: Host,
    dir: PathBuf,
    router: FrrRouter,
    _zebra: LabChild,
    vrrpd: Option<LabChild>,
}

impl Frr {
    /// Is FRR's VRRP installed? (`frr` package.)
    pub fn available() -> bool {
        Path::new(ZEBRA).is_file() && Path::new(VRRPD).is_file()
    }

    /// Make the router's macvlan on `host` and start zebra, then vrrpd.
    pub fn start(host: &Host, router: FrrRouter) -> Result<Frr> {
        let dir = host.dir.join("frr");
        std::fs::create_dir_all(&dir)?;
        // FRR drops to its own user, which must write its pid files and vty sockets here.
        let frr = nix::unistd::User::from_name("frr")
            .ok()
            .flatten()
            .ok_or_else(|| LabError::Other("no `frr` user (frr package)".into()))?;
        nix::unistd::chown(&dir, Some(frr.uid), Some(frr.gid))
            .map_err(|e| LabError::Other(format!("chown {}: {e}", dir.display())))?;
        add_macvlan(host, &router)?;
        std::fs::write(dir.join("vrrpd.conf"), router.config())?;
        let zebra = spawn(host, &dir, "zebra", Path::new("/dev/null"))?;
        let api = dir.join("zserv.api");
        if !wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            api.exists()
        }) {
            return Err(LabError::Timeout(
                Duration::from_secs(5),
                format!("zebra's socket {}", api.display()),
            ));
        }
        let mut f = Frr {
            host: host.clone(),
            dir,
            router,
            _zebra: zebra,
            vrrpd: None,
        };
        f.start_vrrpd()?;
        Ok(f)
    }

    /// (Re)start vrrpd with the router's configuration.
    pub fn start_vrrpd(&mut self) -> Result<()> {
        let conf = self.dir.join("vrrpd.conf");
        self.vrrpd = Some(spawn(&self.host, &self.dir, "vrrpd", &conf)?);
        Ok(())
    }

    /// SIGKILL vrrpd: a crash, no priority-0 advert. FRR then leaves its macvlan as it was.
    pub fn kill_vrrpd(&mut self) {
        if let Some(mut c) = self.vrrpd.take() {
            c.kill_hard();
        }
    }

    /// The router's state as FRR reports it (`Initialize`, `Backup`, `Master`), from
    /// `show vrrp VRID json`.
    pub fn status(&self) -> Option<String> {
        let out = self
            .vtysh(&format!("show vrrp {} json", self.router.vrid))
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let family = if self.router.v6() { "v6" } else { "v4" };
        v[0][family]["status"].as_str().map(str::to_string)
    }

    /// Wait (bounded) until FRR reports `status`.
    pub fn wait_status(&self, status: &str, timeout: Duration) -> Result<()> {
        if wait_until(timeout, Duration::from_millis(20), || {
            self.status().as_deref() == Some(status)
        }) {
            return Ok(());
        }
        Err(LabError::Timeout(
            timeout,
            format!(
                "FRR on {} to be {status} (is {:?}); its log:\n{}",
                self.host.name,
                self.status(),
                self.log_text()
            ),
        ))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("vrrpd.log")).unwrap_or_default()
    }

    fn vtysh(&self, cmd: &str) -> Result<Output> {
        let dir = self.dir.to_string_lossy().into_owned();
        self.host.exec("vtysh", &["--vty_socket", &dir, "-c", cmd])
    }
}

/// `ip link add vrrp4-VRID link eth0 type macvlan mode bridge`, the virtual MAC, the
/// addresses, up. An IPv6 one gets a random link-local address: one derived from the shared
/// virtual MAC would be the same on every router.
fn add_macvlan(host: &Host, r: &FrrRouter) -> Result<()> {
    let name = format!("vrrp{}-{}", if r.v6() { "6" } else { "4" }, r.vrid);
    let mut steps: Vec<Vec<String>> = vec![
        [
            "link", "add", &name, "link", "eth0", "type", "macvlan", "mode", "bridge",
        ]
        .map(String::from)
        .to_vec(),
        ["link", "set", &name, "address", &r.vmac()]
            .map(String::from)
            .to_vec(),
    ];
    if r.v6() {
        steps.push(
            ["link", "set", &name, "addrgenmode", "random"]
                .map(String::from)
                .to_vec(),
        );
    }
    for v in &r.vips {
        let mut add: Vec<String> = ["addr", "add", v, "dev", &name].map(String::from).to_vec();
        if r.v6() {
            add.push("nodad".into());
        }
        steps.push(add);
    }
    steps.push(["link", "set", &name, "up"].map(String::from).to_vec());
    // The parent must not speak ARP for the addresses on the macvlan: by default Linux answers
    // for any local address on any interface (a Backup, its macvlan in protodown, would still
    // answer) and names the packet's source address in its own requests (a reply from the
    // virtual address would teach the client the parent's MAC). As FRR's deployments set it.
    if !r.v6() {
        for s in ["arp_ignore=1", "arp_announce=2"] {
            let key = format!("net.ipv4.conf.eth0.{s}");
            let out = host.exec("sysctl", &["-qw", &key])?;
            if !out.status.success() {
                return Err(LabError::Other(format!(
                    "sysctl {key}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
        }
    }
    for s in steps {
        let out = host.exec("ip", &s)?;
        if !out.status.success() {
            return Err(LabError::Other(format!(
                "ip {}: {}",
                s.join(" "),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    Ok(())
}

/// One FRR daemon in the foreground, its files in `dir`, its log in `dir/NAME.log`.
fn spawn(host: &Host, dir: &Path, name: &str, conf: &Path) -> Result<LabChild> {
    let d = dir.to_string_lossy().into_owned();
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let args = [
        "-z".to_string(),
        path("zserv.api"),
        "-i".into(),
        path(&format!("{name}.pid")),
        "--vty_socket".into(),
        d,
        "-f".into(),
        conf.to_string_lossy().into_owned(),
        // No TCP vty.
        "-P".into(),
        "0".into(),
        "--log".into(),
        format!("file:{}", path(&format!("{name}.log"))),
    ];
    host.spawn(
        &format!("/usr/lib/frr/{name}"),
        &args,
        Some(&dir.join(format!("{name}.out"))),
    )
}
