//! A systemd unit run the way systemd would run it, as far as a lab without systemd can: its
//! command line (`ExecStart` with the `EnvironmentFile` variables) and the sandbox settings
//! that can be applied by hand: the capability bounding set and no_new_privs (setpriv), and
//! the read-only paths of `ProtectSystem` / `ProtectHome` / `ProtectControlGroups` in a private
//! mount namespace (unshare). The settings systemd applies with seccomp (`SystemCallFilter`,
//! `RestrictAddressFamilies`, `RestrictNamespaces`) are checked against an strace of the run
//! instead: [`SeccompCheck`].

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{LabError, Result};

/// The `[Service]` settings of a unit file, in file order.
#[derive(Debug, Clone)]
pub struct Unit {
    pub path: PathBuf,
    service: Vec<(String, String)>,
}

/// Settings this module knows how to apply or check; any other sandbox setting in the unit
/// makes [`Unit::sandbox`] fail, so that a new one cannot go untested.
const APPLIED: &[&str] = &[
    "CapabilityBoundingSet",
    "NoNewPrivileges",
    "ProtectSystem",
    "ProtectHome",
    "ProtectControlGroups",
    "PrivateTmp",
    "PrivateMounts",
    "UMask",
];
/// Applied through seccomp by systemd: checked by [`SeccompCheck`].
const CHECKED_BY_TRACE: &[&str] = &[
    "SystemCallFilter",
    "SystemCallErrorNumber",
    "SystemCallArchitectures",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "RestrictSUIDSGID",
    "LockPersonality",
];
/// Settings whose whole effect is a capability or device the bounding set already removes,
/// or kernel interfaces the daemon never touches (no feature can depend on them).
const NO_FEATURE_DEPENDS: &[&str] = &[
    "ProtectKernelModules", // CAP_SYS_MODULE, /usr/lib/modules
    "ProtectKernelLogs",    // CAP_SYSLOG, /dev/kmsg, /proc/kmsg
    "ProtectClock",         // CAP_SYS_TIME, CAP_WAKE_ALARM, the RTC device
    "ProtectHostname",      // a UTS namespace: sethostname fails
];
/// Not sandbox settings.
const NOT_SANDBOX: &[&str] = &[
    "Type",
    "EnvironmentFile",
    "ExecStart",
    "ExecReload",
    "Restart",
    "KillMode",
    "TimeoutStopSec",
    "WatchdogSec",
    "NotifyAccess",
    "RestartSec",
];

impl Unit {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let mut service = Vec::new();
        let mut in_service = false;
        let mut logical = String::new();
        for raw in text.lines() {
            // Continuation lines end with a backslash.
            if let Some(part) = raw.strip_suffix('\\') {
                logical.push_str(part);
                logical.push(' ');
                continue;
            }
            logical.push_str(raw);
            let line = std::mem::take(&mut logical);
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                in_service = line == "[Service]";
                continue;
            }
            if let (true, Some((k, v))) = (in_service, line.split_once('=')) {
                service.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            service,
        })
    }

    /// Every value of `key`, in order.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.service
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The last value of `key` (systemd's rule for single-valued settings).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values(key).last().copied()
    }

    /// Variables of the `EnvironmentFile`s (a leading `-` means optional).
    pub fn environment(&self) -> Result<HashMap<String, String>> {
        let mut env = HashMap::new();
        for file in self.values("EnvironmentFile") {
            let (optional, file) = match file.strip_prefix('-') {
                Some(f) => (true, f),
                None => (false, file),
            };
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(_) if optional => continue,
                Err(e) => return Err(e.into()),
            };
            for line in text.lines().map(str::trim) {
                if line.starts_with('#') || line.is_empty() {
                    continue;
                }
                if let Some((k, v)) = line.split_once('=') {
                    let v = v.trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v);
                    env.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
        Ok(env)
    }

    /// `ExecStart` as systemd splits it: words, "double-quoted" words, `$VAR` the variable's
    /// words, `${VAR}` one word.
    pub fn exec_start(&self) -> Result<Vec<String>> {
        let line = self
            .value("ExecStart")
            .ok_or_else(|| LabError::Unit(format!("{}: no ExecStart", self.path.display())))?;
        let env = self.environment()?;
        let mut words = Vec::new();
        for (quoted, word) in split_quoted(line) {
            if quoted {
                words.push(word);
                continue;
            }
            if let Some(name) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
                words.push(env.get(name).cloned().unwrap_or_default());
            } else if let Some(name) = word.strip_prefix('$') {
                if let Some(v) = env.get(name) {
                    words.extend(v.split_whitespace().map(String::from));
                }
            } else {
                words.push(word);
            }
        }
        Ok(words)
    }

    /// The capability names of `CapabilityBoundingSet` (`cap_net_admin`, ... as setpriv
    /// takes them); `None` when the unit does not bound them.
    pub fn capabilities(&self) -> Option<BTreeSet<String>> {
        let values = self.values("CapabilityBoundingSet");
        if values.is_empty() {
            return None;
        }
        Some(
            values
                .iter()
                .flat_map(|v| v.split_whitespace())
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        )
    }

    /// The command that runs `argv` in this unit's sandbox (the parts applicable without
    /// systemd).
    pub fn sandbox(&self, argv: &[String]) -> Result<Vec<String>> {
        for (k, _) in &self.service {
            let known = [APPLIED, CHECKED_BY_TRACE, NO_FEATURE_DEPENDS, NOT_SANDBOX]
                .iter()
                .any(|l| l.contains(&k.as_str()));
            if !known {
                return Err(LabError::Unit(format!(
                    "{}: {k}= is neither applied nor checked by the lab (tests/src/unit.rs)",
                    self.path.display()
                )));
            }
        }
        let mut ro: Vec<&str> = Vec::new();
        match self.value("ProtectSystem") {
            None | Some("no") | Some("false") => {}
            Some("yes") | Some("true") => ro.extend(["/usr", "/boot", "/efi"]),
            Some("full") => ro.extend(["/usr", "/boot", "/efi", "/etc"]),
            Some(other) => {
                return Err(LabError::Unit(format!(
                    "ProtectSystem={other} not reproduced by the lab"
                )))
            }
        }
        match self.value("ProtectHome") {
            None | Some("no") | Some("false") => {}
            Some("read-only") => ro.extend(["/home", "/root", "/run/user"]),
            Some(other) => {
                return Err(LabError::Unit(format!(
                    "ProtectHome={other} not reproduced by the lab"
                )))
            }
        }
        if self.value("ProtectControlGroups") == Some("yes") {
            ro.push("/sys/fs/cgroup");
        }
        if self.value("PrivateTmp") == Some("yes") {
            return Err(LabError::Unit(
                "PrivateTmp=yes: the lab's /tmp would have to be private".into(),
            ));
        }
        // Mounts first (they need CAP_SYS_ADMIN), then drop to the unit's capabilities.
        let mut script = String::from("set -e\n");
        for dir in ro {
            script += &format!(
                "if [ -d {dir} ]; then mount --bind {dir} {dir}; mount -o remount,bind,ro {dir}; fi\n"
            );
        }
        if let Some(umask) = self.value("UMask") {
            script += &format!("umask {umask}\n");
        }
        script += "exec \"$@\"\n";
        let mut cmd: Vec<String> = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sandbox",
            "setpriv",
            "--inh-caps=-all",
        ]
        .map(String::from)
        .to_vec();
        if let Some(caps) = self.capabilities() {
            let mut set = String::from("--bounding-set=-all");
            for c in caps {
                set.push_str(",+");
                set.push_str(c.trim_start_matches("cap_"));
            }
            cmd.push(set);
        }
        if self.value("NoNewPrivileges") == Some("yes") {
            cmd.push("--no-new-privs".into());
        }
        cmd.push("--".into());
        cmd.extend(argv.iter().cloned());
        Ok(cmd)
    }
}

/// Words of a command line, with whether each was in double quotes.
fn split_quoted(line: &str) -> Vec<(bool, String)> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            words.push((true, chars.by_ref().take_while(|&c| c != '"').collect()));
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
            words.push((false, w));
        }
    }
    words
}

/// Replace the value of option `flag` (e.g. `-f`) in `argv`.
pub fn set_option(argv: &mut [String], flag: &str, value: &str) -> Result<()> {
    let at = argv
        .iter()
        .position(|w| w == flag)
        .ok_or_else(|| LabError::Unit(format!("no {flag} in {argv:?}")))?;
    if at + 1 >= argv.len() {
        return Err(LabError::Unit(format!("{flag} has no value in {argv:?}")));
    }
    argv[at + 1] = value.to_string();
    Ok(())
}

/// What systemd's seccomp settings of a unit allow, checked against an strace log of a run
/// (`strace -f -qq -o FILE`): every system call made, every socket family opened, every
/// namespace made or entered.
#[derive(Debug)]
pub struct SeccompCheck {
    allowed_calls: Option<BTreeSet<String>>,
    families: Option<BTreeSet<String>>,
    namespaces_allowed: bool,
}

impl SeccompCheck {
    /// Expands the unit's `SystemCallFilter` groups with `systemd-analyze syscall-filter`.
    pub fn of(unit: &Unit) -> Result<Self> {
        let filters = unit.values("SystemCallFilter");
        let allowed_calls = if filters.is_empty() {
            None
        } else {
            let mut allowed = BTreeSet::new();
            for (i, f) in filters.iter().enumerate() {
                let (deny, list) = match f.strip_prefix('~') {
                    Some(l) => (true, l),
                    None => (false, *f),
                };
                if i == 0 && deny {
                    return Err(LabError::Unit(
                        "a deny-list SystemCallFilter first is not reproduced".into(),
                    ));
                }
                for item in list.split_whitespace() {
                    let calls = expand_calls(item)?;
                    if deny {
                        allowed.retain(|c| !calls.contains(c));
                    } else {
                        allowed.extend(calls);
                    }
                }
            }
            Some(allowed)
        };
        let families = unit.value("RestrictAddressFamilies").map(|v| {
            v.split_whitespace()
                .map(String::from)
                .collect::<BTreeSet<_>>()
        });
        let namespaces_allowed = unit.value("RestrictNamespaces") != Some("yes");
        Ok(Self {
            allowed_calls,
            families,
            namespaces_allowed,
        })
    }

    /// Everything in the strace log the unit's seccomp settings would refuse.
    pub fn violations(&self, log: &str) -> Vec<String> {
        let mut out = BTreeSet::new();
        for line in log.lines() {
            // "PID name(args) = ret" (or "<... name resumed>"), after the pid.
            let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
            if rest.starts_with("+++") || rest.starts_with("---") || rest.starts_with("<...") {
                continue;
            }
            let Some(name) = rest.split('(').next().filter(|n| {
                !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }) else {
                continue;
            };
            if let Some(allowed) = &self.allowed_calls {
                if !allowed.contains(name) {
                    out.insert(format!("system call {name}: {line}"));
                }
            }
            if let (Some(families), "socket" | "socketpair") = (&self.families, name) {
                let family = rest
                    .split(['(', ','])
                    .nth(1)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if !families.contains(&family) {
                    out.insert(format!("address family {family}: {line}"));
                }
            }
            let new_ns = matches!(name, "unshare" | "setns")
                || (matches!(name, "clone" | "clone3") && rest.contains("CLONE_NEW"));
            if new_ns && !self.namespaces_allowed {
                out.insert(format!("namespace: {line}"));
            }
        }
        out.into_iter().collect()
    }
}

/// A system call or `@group` as the list of calls systemd puts in the filter.
fn expand_calls(item: &str) -> Result<BTreeSet<String>> {
    if !item.starts_with('@') {
        return Ok([item.to_string()].into());
    }
    let out = Command::new("systemd-analyze")
        .args(["syscall-filter", item])
        .output()?;
    if !out.status.success() {
        return Err(LabError::Unit(format!(
            "systemd-analyze syscall-filter {item}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut calls = BTreeSet::new();
    for line in text.lines().skip(1).map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('@') {
            calls.extend(expand_calls(line)?);
        } else {
            calls.insert(line.to_string());
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_as_systemd_splits_them() {
        let words: Vec<String> = split_quoted(r#"/usr/sbin/nginx -c /x -g "daemon off;""#)
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(words, ["/usr/sbin/nginx", "-c", "/x", "-g", "daemon off;"]);
    }

    #[test]
    fn strace_lines_are_read() {
        let unit_text = "[Service]\nExecStart=/bin/x\nSystemCallFilter=read write socket\nRestrictAddressFamilies=AF_UNIX\nRestrictNamespaces=yes\n";
        let dir = std::env::temp_dir().join(format!("unit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.service");
        std::fs::write(&path, unit_text).unwrap();
        let unit = Unit::read(&path).unwrap();
        let check = SeccompCheck::of(&unit).unwrap();
        let log = "12 read(3, \"\", 1) = 0\n\
                   12 socket(AF_UNIX, SOCK_STREAM, 0) = 4\n\
                   13 socket(AF_PACKET, SOCK_RAW, 768) = 5\n\
                   13 mount(\"x\", \"/y\", NULL, MS_BIND, NULL) = 0\n\
                   13 <... read resumed>\"\", 1) = 0\n\
                   13 +++ exited with 0 +++\n";
        let v = check.violations(log);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].starts_with("address family AF_PACKET"), "{v:?}");
        assert!(v[1].starts_with("system call mount"), "{v:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A unit's daemon running in a lab host, in the unit's sandbox (killed on drop).
#[derive(Debug)]
pub struct UnitProc {
    pub child: crate::process::LabChild,
    pub log: PathBuf,
}

impl UnitProc {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Unit {
    /// Start the unit's `ExecStart` in `host` with `config` as the `-f` file and a pid file in
    /// the host's directory, in the sandbox; `wrap` goes between the sandbox and the daemon
    /// (e.g. `strace -f -o FILE`), `binary` replaces the unit's program when given.
    pub fn start_in(
        &self,
        host: &crate::lab::Host,
        config: &Path,
        binary: Option<&Path>,
        wrap: &[String],
    ) -> Result<UnitProc> {
        let mut argv = self.exec_start()?;
        if let Some(b) = binary {
            argv[0] = b.to_string_lossy().into_owned();
        }
        set_option(&mut argv, "-f", &config.to_string_lossy())?;
        let pid = host.dir.join("unit.pid");
        set_option(&mut argv, "-p", &pid.to_string_lossy())?;
        let full: Vec<String> = wrap.iter().cloned().chain(argv).collect();
        let cmd = self.sandbox(&full)?;
        let log = host.dir.join("unit.log");
        let child = host.spawn(&cmd[0], &cmd[1..], Some(&log))?;
        Ok(UnitProc { child, log })
    }
}
