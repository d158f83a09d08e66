//! Namespaces, bridge and veths: the lab topology.
//!
//! Prefix `vl<pid>x<counter>-`. One namespace `<prefix>br` holds bridge `br0`; every host namespace `<prefix><name>` has an
//! interface `eth0` whose veth peer `v-<name>` is a port of `br0`. Interfaces are created
//! directly inside the namespaces (`ip -n`), so the root namespace is never touched.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{LabError, Result};
use crate::guard;
use crate::process::LabChild;

/// Interface name of every host's lab link, inside its namespace.
pub const HOST_IF: &str = "eth0";
/// Bridge device in the bridge namespace.
pub const BRIDGE_IF: &str = "br0";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One host of the lab.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub name: String,
    /// Address with prefix length, e.g. `192.0.2.1/24`.
    pub v4: String,
    /// Address with prefix length, e.g. `2001:db8::1/64`.
    pub v6: String,
}

impl HostSpec {
    pub fn new(name: &str, v4: &str, v6: &str) -> Self {
        Self {
            name: name.into(),
            v4: v4.into(),
            v6: v6.into(),
        }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct LabSpec {
    pub hosts: Vec<HostSpec>,
}

impl Default for LabSpec {
    /// a=.1, b=.2, client=.50 in 192.0.2.0/24 and 2001:db8::/64.
    fn default() -> Self {
        Self {
            hosts: vec![
                HostSpec::new("a", "192.0.2.1/24", "2001:db8::1/64"),
                HostSpec::new("b", "192.0.2.2/24", "2001:db8::2/64"),
                HostSpec::new("client", "192.0.2.50/24", "2001:db8::50/64"),
            ],
        }
    }
}

/// Builder for [`Lab`]; without hosts it builds the default a/b/client lab.
#[derive(Debug, Default)]
pub struct LabBuilder {
    hosts: Vec<HostSpec>,
}

impl LabBuilder {
    pub fn host(mut self, name: &str, v4: &str, v6: &str) -> Self {
        self.hosts.push(HostSpec::new(name, v4, v6));
        self
    }

    pub fn build(self) -> Result<Lab> {
        let spec = if self.hosts.is_empty() {
            LabSpec::default()
        } else {
            LabSpec { hosts: self.hosts }
        };
        Lab::new(spec)
    }
}

/// A host (network namespace) of the lab.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// Network namespace name (as in `ip netns list`).
    pub netns: String,
    /// Lab-side interface inside the host (`eth0`).
    pub ifname: String,
    /// Bridge port of this host's veth, in the bridge namespace.
    pub port: String,
    pub bridge_netns: String,
    /// Address without prefix length.
    pub v4: IpAddr,
    pub v6: IpAddr,
    /// Directory for this host's files (configs, pid files, logs).
    pub dir: PathBuf,
}

/// A running lab; dropping it deletes every namespace it created.
#[derive(Debug)]
pub struct Lab {
    pub prefix: String,
    pub bridge_netns: String,
    hosts: Vec<Host>,
    /// Per-run scratch directory (removed on drop).
    pub dir: PathBuf,
    created: Vec<String>,
}

fn cmd_string(cmd: &OsStr, args: &[&OsStr]) -> String {
    let mut s = cmd.to_string_lossy().into_owned();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command to completion; a non-zero exit is an error.
pub(crate) fn run<S: AsRef<OsStr>>(cmd: &str, args: &[S]) -> Result<Output> {
    let out = run_unchecked(cmd, args)?;
    if !out.status.success() {
        let a: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
        return Err(LabError::Command {
            cmd: cmd_string(OsStr::new(cmd), &a),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

pub(crate) fn run_unchecked<S: AsRef<OsStr>>(cmd: &str, args: &[S]) -> Result<Output> {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            cmd: cmd.to_string(),
            source,
        })
}

/// Feed `ip -n NS -batch -` a list of commands (one process instead of many).
fn ip_batch(netns: &str, lines: &[String]) -> Result<()> {
    let mut child = Command::new("ip")
        .args(["-n", netns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LabError::Spawn {
            cmd: "ip -batch".into(),
            source,
        })?;
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(lines.join("\n").as_bytes())?;
        stdin.write_all(b"\n")?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(LabError::Command {
            cmd: format!("ip -n {netns} -batch: {}", lines.join("; ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

fn strip_len(addr: &str) -> Result<IpAddr> {
    addr.split('/')
        .next()
        .unwrap_or(addr)
        .parse()
        .map_err(|e| LabError::Other(format!("bad address {addr:?}: {e}")))
}

impl Lab {
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// Build the topology. On error, whatever was created is removed again.
    pub fn new(spec: LabSpec) -> Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // The trailing dash keeps prefixes unambiguous (`vl1x1-` is not a prefix of `vl1x10-`).
        let prefix = format!("vl{}x{}-", std::process::id(), n);
        let dir = std::env::temp_dir().join(format!("vrrp-lab-{prefix}"));
        std::fs::create_dir_all(&dir)?;
        guard::register_dir(&dir);
        let mut lab = Lab {
            bridge_netns: format!("{prefix}br"),
            prefix,
            hosts: Vec::new(),
            dir,
            created: Vec::new(),
        };
        lab.setup(spec)?; // on error `lab` drops and cleans up
        Ok(lab)
    }

    fn add_netns(&mut self, name: &str) -> Result<()> {
        guard::register_netns(name);
        self.created.push(name.to_string());
        run("ip", &["netns", "add", name])?;
        Ok(())
    }

    fn setup(&mut self, spec: LabSpec) -> Result<()> {
        let br = self.bridge_netns.clone();
        self.add_netns(&br)?;
        for h in &spec.hosts {
            if h.name.len() > 13 {
                return Err(LabError::Other(format!("host name {:?} too long", h.name)));
            }
            let netns = format!("{}{}", self.prefix, h.name);
            self.add_netns(&netns)?;
            // No DAD: addresses (also link-local, which VRRPv3 over IPv6 needs) usable at once.
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &netns,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.dad_transmits=0",
                ],
            )?;
            let hdir = self.dir.join(&h.name);
            std::fs::create_dir_all(&hdir)?;
            self.hosts.push(Host {
                name: h.name.clone(),
                netns,
                ifname: HOST_IF.into(),
                port: format!("v-{}", h.name),
                bridge_netns: br.clone(),
                v4: strip_len(&h.v4)?,
                v6: strip_len(&h.v6)?,
                dir: hdir,
            });
        }
        // Bridge without STP delay or multicast snooping: VRRP multicast must flood at once.
        let mut lines = vec![
            "link set lo up".to_string(),
            format!(
                "link add {BRIDGE_IF} type bridge forward_delay 0 stp_state 0 mcast_snooping 0"
            ),
            format!("link set {BRIDGE_IF} up"),
        ];
        for h in &self.hosts {
            lines.push(format!(
                "link add {} type veth peer name {} netns {}",
                h.port, h.ifname, h.netns
            ));
            lines.push(format!("link set {} master {BRIDGE_IF}", h.port));
            lines.push(format!("link set {} up", h.port));
        }
        ip_batch(&br, &lines)?;
        for (h, s) in self.hosts.iter().zip(&spec.hosts) {
            ip_batch(
                &h.netns,
                &[
                    "link set lo up".into(),
                    format!("addr add {} dev {}", s.v4, h.ifname),
                    format!("addr add {} dev {} nodad", s.v6, h.ifname),
                    format!("link set {} up", h.ifname),
                ],
            )?;
        }
        Ok(())
    }

    /// The host called `name`. Panics if absent (a test bug); see [`Lab::get`].
    pub fn host(&self, name: &str) -> &Host {
        self.get(name)
            .unwrap_or_else(|| panic!("no host {name:?} in the lab"))
    }

    pub fn get(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Namespace names this lab created (for cleanup checks).
    pub fn namespaces(&self) -> &[String] {
        &self.created
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in self.created.drain(..).rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", &n])
                .stderr(Stdio::null())
                .status();
            guard::unregister_netns(&n);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        guard::unregister_dir(&self.dir);
    }
}

/// Namespaces currently present whose name starts with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/var/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

impl Host {
    fn ip<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Output> {
        let mut full: Vec<&OsStr> = vec![OsStr::new("-n"), OsStr::new(&self.netns)];
        full.extend(args.iter().map(|a| a.as_ref()));
        run("ip", &full)
    }

    /// Run `cmd args` inside the namespace and wait for it (any exit status is returned).
    pub fn exec<S: AsRef<OsStr>>(&self, cmd: &str, args: &[S]) -> Result<Output> {
        let mut full: Vec<&OsStr> = vec![
            OsStr::new("netns"),
            OsStr::new("exec"),
            OsStr::new(&self.netns),
            OsStr::new(cmd),
        ];
        full.extend(args.iter().map(|a| a.as_ref()));
        run_unchecked("ip", &full)
    }

    /// Start `cmd args` inside the namespace in its own process group, stdout/stderr to `log`
    /// (or discarded). Killed when the returned handle drops.
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        cmd: &str,
        args: &[S],
        log: Option<&Path>,
    ) -> Result<LabChild> {
        use std::os::unix::process::CommandExt;
        let (out, err) = match log {
            Some(p) => {
                let f = File::create(p)?;
                (Stdio::from(f.try_clone()?), Stdio::from(f))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns, cmd])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| LabError::Spawn {
                cmd: cmd.to_string(),
                source,
            })?;
        Ok(LabChild::new(child, format!("{}:{cmd}", self.name)))
    }

    /// `ip ARGS` in the namespace, its output as text (empty when it fails).
    pub fn ip_text(&self, args: &[&str]) -> String {
        self.exec("ip", args)
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Cut this host's cable: take its bridge port down (the host sees carrier loss).
    pub fn link_down(&self) -> Result<()> {
        run(
            "ip",
            &["-n", &self.bridge_netns, "link", "set", &self.port, "down"],
        )?;
        Ok(())
    }

    /// Plug the cable back in.
    pub fn link_up(&self) -> Result<()> {
        run(
            "ip",
            &["-n", &self.bridge_netns, "link", "set", &self.port, "up"],
        )?;
        Ok(())
    }

    /// The MAC address this host has in its neighbour table for `ip`, if resolved.
    pub fn neigh(&self, ip: IpAddr) -> Option<String> {
        let out = self.ip(&["neigh", "show", &ip.to_string()]).ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| !l.contains("FAILED"))?;
        let mut it = line.split_whitespace();
        it.find(|w| *w == "lladdr")?;
        it.next().map(str::to_string)
    }

    /// Does the host currently hold `ip` on any interface?
    pub fn has_addr(&self, ip: IpAddr) -> bool {
        let Ok(out) = self.ip(&["-o", "addr", "show"]) else {
            return false;
        };
        let needle = format!(" {ip}/");
        String::from_utf8_lossy(&out.stdout).contains(&needle)
    }

    /// Wait (bounded, sampled every 10 ms) until the host holds `ip`.
    pub fn gets_addr(&self, ip: IpAddr, timeout: std::time::Duration) -> bool {
        crate::wait::wait_until(timeout, std::time::Duration::from_millis(10), || {
            self.has_addr(ip)
        })
    }

    /// The host does not hold `ip` at any sample (every 10 ms) for `dur`.
    pub fn never_holds(&self, ip: IpAddr, dur: std::time::Duration) -> bool {
        !self.gets_addr(ip, dur)
    }

    /// MAC address of the lab interface.
    pub fn mac(&self) -> Result<String> {
        let out = self.ip(&["-o", "link", "show", &self.ifname])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace();
        it.find(|w| *w == "link/ether")
            .and(it.next())
            .map(str::to_string)
            .ok_or_else(|| LabError::Other(format!("no MAC on {}:{}", self.name, self.ifname)))
    }

    /// Add an address (with prefix length) to the lab interface by hand.
    pub fn addr_add(&self, cidr: &str) -> Result<()> {
        self.ip(&["addr", "add", cidr, "dev", &self.ifname, "nodad"])
            .or_else(|_| self.ip(&["addr", "add", cidr, "dev", &self.ifname]))?;
        Ok(())
    }

    /// Remove an address (with prefix length) from the lab interface; absent is fine.
    pub fn addr_del(&self, cidr: &str) -> Result<()> {
        let _ = run_unchecked(
            "ip",
            &["-n", &self.netns, "addr", "del", cidr, "dev", &self.ifname],
        )?;
        Ok(())
    }

    /// One ping from this host (true when answered within a second).
    pub fn ping(&self, dst: IpAddr) -> bool {
        self.exec("ping", &["-c", "1", "-W", "1", "-q", &dst.to_string()])
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Path of the namespace handle, for `setns`.
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.netns)
    }
}
