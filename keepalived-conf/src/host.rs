//! Everything the parser asks of the machine, behind one small trait, so parsing itself is
//! pure and deterministic: the daemon and `-t` pass [`RealHost`], tests and the fuzzer a
//! [`FakeHost`] (files in memory, no system calls, a fixed "random" sequence).
//!
//! Lookups that only keepalived's host checks need answer `None` ("not checked") when those
//! checks are off, so converting a file on another machine does not complain about its
//! interfaces.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The machine the configuration is read on.
pub trait Host: Send + Sync + std::fmt::Debug {
    /// Does this network interface exist (in the current namespace)? `None`: not checked.
    fn interface_exists(&self, name: &str) -> Option<bool>;
    /// The address keepalived sends from on this interface when no source is configured
    /// (its first IPv4 address, or its IPv6 link-local one). `None`: none, or not checked.
    fn interface_address(&self, _name: &str, _v6: bool) -> Option<std::net::IpAddr> {
        None
    }
    /// A routing table named in iproute2's `rt_tables`.
    fn rt_table(&self, name: &str) -> Option<u32>;
    /// Does this host name resolve (through the system's resolver, as keepalived looks up an
    /// `smtp_server` given by name)? `None`: not checked.
    fn resolves(&self, _name: &str) -> Option<bool> {
        None
    }
    /// The executable a script line starts with: `Some(Some(path))` when it exists (a bare
    /// name through PATH), `Some(None)` when it does not, `None` when scripts are not checked.
    fn program(&self, first_word: &str) -> Option<Option<PathBuf>>;
    /// Do this user and group (the user's own when `None`) exist? `None`: not checked.
    fn user_exists(&self, name: &str, group: Option<&str>) -> Option<bool>;
    /// The number of online CPUs, when CPU ids are checked.
    fn online_cpus(&self) -> Option<usize>;
    /// The host name (keepalived's default config id is its first label).
    fn hostname(&self) -> String;
    /// An environment variable (`${_ENV NAME}`).
    fn env(&self, name: &str) -> Option<String>;
    /// A number in `lo..=hi` (`${_RANDOM}`).
    fn random(&self, lo: u64, hi: u64) -> u64;
    /// The bytes of a configuration file.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// Regular files matching a glob, sorted.
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String>;
    /// The canonical name of a file (include loops are found by it).
    fn canonical(&self, path: &Path) -> PathBuf;
}

/// Which of keepalived's host checks run (its `-t` and its daemon do them all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostChecks {
    /// Interfaces named by instances, routes and rules must exist.
    pub interfaces: bool,
    /// Scripts are looked up (existence, security, users).
    pub scripts: bool,
    /// `*_cpu_affinity` CPU ids must be below the online CPU count.
    pub cpus: bool,
    /// Host names (`smtp_server`) must resolve.
    pub names: bool,
}

impl HostChecks {
    /// Every check, as keepalived's daemon and `-t` do.
    pub const ALL: Self = Self {
        interfaces: true,
        scripts: true,
        cpus: true,
        names: true,
    };
}

/// This machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHost {
    pub checks: HostChecks,
}

impl RealHost {
    /// With every host check, as the daemon and `-t` read a file.
    pub fn checking() -> Self {
        Self {
            checks: HostChecks::ALL,
        }
    }
}

/// keepalived's PATH when the environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Host for RealHost {
    fn interface_exists(&self, name: &str) -> Option<bool> {
        self.checks.interfaces.then(|| {
            !name.is_empty()
                && !name.contains('/')
                && Path::new("/sys/class/net").join(name).exists()
        })
    }

    fn interface_address(&self, name: &str, v6: bool) -> Option<std::net::IpAddr> {
        if !self.checks.interfaces {
            return None;
        }
        nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
            if a.interface_name != name {
                return None;
            }
            let addr = a.address?;
            if v6 {
                let ip = addr.as_sockaddr_in6()?.ip();
                ip.is_unicast_link_local().then_some(ip.into())
            } else {
                Some(addr.as_sockaddr_in()?.ip().into())
            }
        })
    }

    fn resolves(&self, name: &str) -> Option<bool> {
        use std::net::ToSocketAddrs;
        self.checks.names.then(|| {
            (name, 25)
                .to_socket_addrs()
                .is_ok_and(|mut a| a.next().is_some())
        })
    }

    fn rt_table(&self, name: &str) -> Option<u32> {
        ["/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .find_map(|t| rt_tables_lookup(&t, name))
    }

    fn program(&self, first_word: &str) -> Option<Option<PathBuf>> {
        if !self.checks.scripts {
            return None;
        }
        let p = Path::new(first_word);
        if first_word.contains('/') {
            return Some(p.is_file().then(|| p.to_path_buf()));
        }
        let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        Some(
            std::env::split_paths(&path)
                .map(|d| d.join(first_word))
                .find(|f| f.is_file()),
        )
    }

    fn user_exists(&self, name: &str, group: Option<&str>) -> Option<bool> {
        use nix::unistd::{Group, User};
        self.checks.scripts.then(|| {
            User::from_name(name).ok().flatten().is_some()
                && group.is_none_or(|g| Group::from_name(g).ok().flatten().is_some())
        })
    }

    fn online_cpus(&self) -> Option<usize> {
        if !self.checks.cpus {
            return None;
        }
        nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .and_then(|n| usize::try_from(n).ok())
    }

    fn hostname(&self) -> String {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default()
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn random(&self, lo: u64, hi: u64) -> u64 {
        rand::random_range(lo..=hi)
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let paths = glob::glob(pattern).map_err(|e| e.to_string())?;
        let mut v: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        v.sort();
        Ok(v)
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
    }
}

/// The number iproute2's `rt_tables` text gives `name`.
pub fn rt_tables_lookup(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let n = w.next()?;
        if n.starts_with('#') {
            return None;
        }
        let n = match n.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16).ok()?,
            None => n.parse().ok()?,
        };
        (w.next()? == name).then_some(n)
    })
}

/// A machine made up for tests and fuzzing: what it has is what it was given, every check
/// runs against that, nothing touches the real system.
#[derive(Debug, Default)]
pub struct FakeHost {
    pub interfaces: BTreeSet<String>,
    /// (interface, is IPv6) → the address keepalived would send from.
    pub addresses: BTreeMap<(String, bool), std::net::IpAddr>,
    pub programs: BTreeSet<PathBuf>,
    pub users: BTreeSet<String>,
    /// Groups besides those of the users' names.
    pub groups: BTreeSet<String>,
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    pub rt_tables: BTreeMap<String, u32>,
    /// Host names that resolve.
    pub names: BTreeSet<String>,
    pub env: BTreeMap<String, String>,
    pub cpus: Option<usize>,
    pub hostname: String,
    next: AtomicU64,
}

impl FakeHost {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_interfaces(mut self, names: &[&str]) -> Self {
        self.interfaces.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// An interface with the address keepalived would send from on it.
    pub fn with_address(mut self, name: &str, addr: std::net::IpAddr) -> Self {
        self.interfaces.insert(name.into());
        self.addresses.insert((name.into(), addr.is_ipv6()), addr);
        self
    }

    pub fn with_file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.into(), text.as_bytes().to_vec());
        self
    }

    pub fn with_programs(mut self, paths: &[&str]) -> Self {
        self.programs.extend(paths.iter().map(PathBuf::from));
        self
    }

    pub fn with_users(mut self, names: &[&str]) -> Self {
        self.users.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Starts the `${_RANDOM}` sequence again: a load after this reads what the first did (a
    /// fuzz target's run must not depend on the runs before it).
    pub fn restart_random(&self) {
        self.next.store(0, Ordering::Relaxed);
    }
}

impl Host for FakeHost {
    fn interface_exists(&self, name: &str) -> Option<bool> {
        Some(self.interfaces.contains(name))
    }

    fn interface_address(&self, name: &str, v6: bool) -> Option<std::net::IpAddr> {
        self.addresses.get(&(name.to_string(), v6)).copied()
    }

    fn rt_table(&self, name: &str) -> Option<u32> {
        self.rt_tables.get(name).copied()
    }

    fn resolves(&self, name: &str) -> Option<bool> {
        Some(self.names.contains(name))
    }

    fn program(&self, first_word: &str) -> Option<Option<PathBuf>> {
        let found = if first_word.contains('/') {
            self.programs.get(Path::new(first_word)).cloned()
        } else {
            self.programs
                .iter()
                .find(|p| p.file_name().is_some_and(|n| n == first_word))
                .cloned()
        };
        Some(found)
    }

    fn user_exists(&self, name: &str, group: Option<&str>) -> Option<bool> {
        // Each user has a group of its name, as on Debian.
        let known = |n: &str| n == "root" || self.users.contains(n);
        Some(known(name) && group.is_none_or(|g| known(g) || self.groups.contains(g)))
    }

    fn online_cpus(&self) -> Option<usize> {
        self.cpus
    }

    fn hostname(&self) -> String {
        self.hostname.clone()
    }

    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    fn random(&self, lo: u64, hi: u64) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        lo + n % (hi - lo).saturating_add(1).max(1)
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let pat = glob::Pattern::new(pattern).map_err(|e| e.to_string())?;
        Ok(self
            .files
            .keys()
            .filter(|p| pat.matches_path(p))
            .cloned()
            .collect())
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rt_tables_text() {
        let t = "# reserved\n255\tlocal\n254 main\n0x10 vpn\n100 web # comment\n";
        assert_eq!(rt_tables_lookup(t, "main"), Some(254));
        assert_eq!(rt_tables_lookup(t, "vpn"), Some(16));
        assert_eq!(rt_tables_lookup(t, "web"), Some(100));
        assert_eq!(rt_tables_lookup(t, "reserved"), None);
        assert_eq!(rt_tables_lookup(t, "nope"), None);
    }

    #[test]
    fn fake_host_answers_only_what_it_was_given() {
        let h = FakeHost::new()
            .with_interfaces(&["eth0"])
            .with_programs(&["/usr/bin/check"])
            .with_file("/etc/k/a.conf", "x");
        assert_eq!(h.interface_exists("eth0"), Some(true));
        assert_eq!(h.interface_exists("eth1"), Some(false));
        assert_eq!(h.program("check"), Some(Some("/usr/bin/check".into())));
        assert_eq!(h.program("/usr/bin/nope"), Some(None));
        assert_eq!(
            h.glob("/etc/k/*.conf").unwrap(),
            [PathBuf::from("/etc/k/a.conf")]
        );
        assert_eq!(h.random(5, 5), 5);
        let r = h.random(0, 9);
        assert!(r <= 9);
        let again = |h: &FakeHost| (0..4).map(|_| h.random(0, 9)).collect::<Vec<_>>();
        h.restart_random();
        let first = again(&h);
        assert_ne!(first, again(&h), "the sequence moves on");
        h.restart_random();
        assert_eq!(first, again(&h), "and starts again when told");
    }

    #[test]
    fn real_host_without_checks_checks_nothing() {
        let h = RealHost::default();
        assert_eq!(h.interface_exists("lo"), None);
        assert_eq!(h.program("sh"), None);
        assert_eq!(h.user_exists("root", None), None);
        assert_eq!(h.online_cpus(), None);
        let c = RealHost::checking();
        assert_eq!(c.interface_exists("lo"), Some(true));
        assert!(matches!(c.program("sh"), Some(Some(_))));
        assert_eq!(c.program("/nonexistent/x"), Some(None));
    }
}
